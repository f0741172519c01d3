"""Rebuild ``types.json`` from the email corpus: ``python -m intake.training.extract``.

Only the sets the rules were tuned on are read (TRAINING_SETS); the sets kept unseen (holdout-5,
holdout-6, ...) are never, so they still measure the rules and the model on mail neither has
seen. Labels are the corpus's expected types; a message expected in triage or ignored without a
type is a "none" example (not a request). Replies without a type are left out: what they say
("here is my passport") belongs to a case, not to a request type.
"""

from __future__ import annotations

import json
from pathlib import Path

from intake.mail import MailboxPolicy, classification_text
from intake.training.classifier import NOT_A_REQUEST, TRAINING_FILE

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "emails"
#: the corpus sets the phrase rules were tuned on (tests/test_mailparse.py TUNED_SETS)
TRAINING_SETS = frozenset({"tuning", "holdout-1", "holdout-2", "holdout-3", "holdout-4"})


def training_rows(corpus: Path = CORPUS) -> list[dict[str, str]]:
    rows = []
    for line in (corpus / "expected.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        expected = json.loads(line)
        if expected["set"] not in TRAINING_SETS:
            continue
        if expected["type"] is not None:
            label = expected["type"]
        elif expected["outcome"] in ("triage", "ignored"):
            label = NOT_A_REQUEST
        else:
            continue
        text = classification_text((corpus / expected["file"]).read_bytes(), MailboxPolicy())
        if text.strip():
            rows.append({"text": text, "label": label, "source": f"{expected['set']}/{expected['file']}"})
    return rows


def main() -> None:
    rows = training_rows()
    body = ",\n".join(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in rows)
    TRAINING_FILE.write_text(f"[\n{body}\n]\n", encoding="utf-8")
    print(f"{len(rows)} training texts written to {TRAINING_FILE.name}")


if __name__ == "__main__":
    main()
