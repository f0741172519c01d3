"""MIME decoding: content types, transfer encodings, character sets and HTML to text.

Payloads are decoded here, leniently (a truncated base64 body is still read), and a text part
is capped in size before it is decoded.
"""

from __future__ import annotations

import base64
import codecs
import re
from email.message import Message

from bs4 import BeautifulSoup

from intake.mail.message import MB

_MIME_DEBRIS = re.compile(r"^(?:--\S+|[A-Za-z][\w-]*:\s.*|[A-Za-z0-9+/=]{16,})$")


def salvage_text(part: Message) -> str:
    """A multipart whose boundary never appears: keep the lines that are not MIME debris
    (boundaries, part headers, base64), which is the person's text if there is any."""
    text = part_text(part, []) or ""
    kept = [line for line in text.splitlines() if not _MIME_DEBRIS.match(line.strip())]
    return "\n".join(kept).strip()


def part_content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "application/octet-stream"


def is_attachment(part: Message, ctype: str) -> bool:
    disposition = (part.get("content-disposition") or "").__str__().lower()
    if disposition.strip().startswith("attachment"):
        return True
    return ctype not in ("text/plain", "text/html")


_MAX_TEXT_PART_BYTES = 2 * MB


def part_text(part: Message, notes: list[str]) -> str | None:
    payload = decoded_payload(part)
    if payload is None:
        return None
    if len(payload) > _MAX_TEXT_PART_BYTES:
        notes.append(f"a text part of {len(payload)} bytes was cut to {_MAX_TEXT_PART_BYTES} bytes")
        payload = payload[:_MAX_TEXT_PART_BYTES]
    declared = part.get_content_charset()
    if part_content_type(part) == "text/html" and not declared:
        return html_to_text(payload)
    text, note = decode_bytes(payload, declared)
    if note:
        notes.append(note)
    return html_to_text(text) if part_content_type(part) == "text/html" else text


def decoded_payload(part: Message) -> bytes | None:
    """The part's bytes. Base64 is decoded here, leniently: the stdlib hands back the encoded
    text when a body is truncated mid-quantum, and a cut-off message should still be read."""
    cte = str(part.get("content-transfer-encoding") or "").strip().lower()
    if cte == "base64":
        payload = part.get_payload()
        if not isinstance(payload, str):
            return None
        compact = re.sub(r"[^A-Za-z0-9+/]", "", payload.split("=", 1)[0])
        if len(compact) % 4 == 1:  # a lone sixth of a byte: nothing to recover
            compact = compact[:-1]
        return base64.b64decode(compact + "=" * (-len(compact) % 4))
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else None


_LATIN_FAMILY = {"ascii", "latin_1", "cp1252", "iso8859_15"}


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, str | None]:
    """Decode with the declared charset when it fits; a wrong or unknown one falls back to
    UTF-8 and then Windows-1252 (what mislabelled mail almost always is)."""
    codec: str | None = None
    note: str | None = None
    if declared:
        try:
            codec = codecs.lookup(declared.strip().strip('"')).name.replace("-", "_")
        except (LookupError, ValueError):
            note = "unknown charset declared: read as UTF-8 or Windows-1252"
    if codec and codec.replace("_", "") in {c.replace("_", "") for c in _LATIN_FAMILY} and not data.isascii():
        try:
            return data.decode("utf-8"), "charset declared as a Latin one but the text is UTF-8"
        except UnicodeDecodeError:
            pass
    if codec:
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            note = "declared charset did not fit the text: read as UTF-8 or Windows-1252"
    try:
        return data.decode("utf-8"), note
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), note


#: what follows each element, as a browser lays it out: a line break, or a paragraph's blank line
_BREAK_AFTER = {
    "div": "\n",
    "tr": "\n",
    "li": "\n",
    "table": "\n",
    "hr": "\n",
    "blockquote": "\n",
    "p": "\n\n",
}


_BREAK_AFTER.update({f"h{n}": "\n\n" for n in range(1, 7)})


def html_to_text(html: str | bytes) -> str:
    """HTML body to plain lines: block elements become line breaks, scripts and styles go."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head", "title", "noscript"]):
        tag.decompose()
    for node in soup.find_all(string=True):  # source line breaks are spaces to a browser
        if node.parent is not None and node.parent.name != "pre":
            node.replace_with(re.sub(r"\s+", " ", str(node)))
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for tag in soup.find_all(list(_BREAK_AFTER)):
        tag.insert_after(_BREAK_AFTER[tag.name])
        if tag.previous_sibling is not None and not str(tag.previous_sibling).endswith("\n"):
            tag.insert_before("\n")
    text = soup.get_text().replace("\xa0", " ")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
