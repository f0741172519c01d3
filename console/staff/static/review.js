// The review workbench: words selected in a field's original fill that record's
// "Words to remove" box. Without JavaScript the reviewer types them; nothing else depends on it.
document.addEventListener("mouseup", () => {
  const selection = window.getSelection();
  const text = selection ? selection.toString().trim() : "";
  if (!text || !selection.anchorNode) return;
  const cell = selection.anchorNode.parentElement && selection.anchorNode.parentElement.closest("td.original");
  if (!cell) return;
  const record = cell.closest("article.record");
  const form = record && record.querySelector(`form.redact-words[data-field="${cell.dataset.field}"]`);
  if (!form) return;
  form.closest("details").open = true;
  const box = form.querySelector("input.words");
  box.value = text;
  box.focus();
});
