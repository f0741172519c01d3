"""``dsar redact``: take other people's personal data out of a text before it goes to the subject.

The text comes on standard input and the redacted text goes to standard output, so a reviewer
can pipe a ticket export through it. The subject file says whose copy it is: their own data is
kept, and the identifiers our systems hold for other people (``others``) are always redacted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

if TYPE_CHECKING:  # imported when used: building the ``dsar`` parser must stay cheap
    from dsar.redaction import SubjectProfile

__all__ = ["SUBJECT_FILE_HELP", "RedactInputError", "SubjectFile", "SubjectFileError", "load_subject", "run"]

SUBJECT_FILE_HELP = """\
subject.json is one JSON object; every field is a list of strings and all are optional, but at
least one identifier of the subject is needed:
  {"names": ["Margaret Ellis", "Maggie Ellis"], "emails": ["margaret.ellis@example.com"],
   "phones": ["+44 7911 123456"], "addresses": ["12 Orchard Lane, Coventry CV3 4LP"],
   "postcodes": ["CV3 4LP"], "accounts": ["NW100001"], "dates_of_birth": ["1961-03-12"],
   "others": ["Peter Ellis", "peter.ellis@example.net", "07700 900461"]}
names/emails/phones/addresses/postcodes/accounts/dates_of_birth are the subject's own data
(kept); "others" are identifiers our systems hold for other people (always redacted).
Redactions read [REDACTED: third party]."""


class RedactInputError(ValueError):
    """Input that cannot be redacted; the message says why and never repeats the contents."""


class SubjectFileError(RedactInputError):
    """The subject file cannot be used."""


@dataclass(frozen=True)
class SubjectFile:
    """A parsed subject file: whose copy it is, and who else our systems know."""

    subject: SubjectProfile
    others: tuple[str, ...]


def load_subject(path: Path) -> SubjectFile:
    """Read and validate ``subject.json`` (see ``SUBJECT_FILE_HELP``)."""
    from dsar.redaction import SubjectProfile, SubjectProfileError

    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SubjectFileError(
            f"cannot read the subject file {path}: {e.strerror or type(e).__name__}"
        ) from None
    try:
        data: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        raise SubjectFileError(f"the subject file {path} is not valid JSON{where}") from None
    if not isinstance(data, Mapping):
        raise SubjectFileError(f"the subject file {path} must hold a JSON object (names, emails, ...)")
    try:
        subject = SubjectProfile.from_mapping(data)
    except SubjectProfileError as e:
        raise SubjectFileError(f"the subject file {path}: {e}") from None
    others = data.get("others") or []
    if not isinstance(others, list) or not all(isinstance(x, str) for x in others):
        raise SubjectFileError(f"the subject file {path}: others: expected a list of strings")
    return SubjectFile(subject=subject, others=tuple(others))


def run(subject_path: Path, stdin: BinaryIO, stdout: TextIO, *, as_json: bool = False) -> int:
    """Redact stdin for the subject in ``subject_path``; print the text (or JSON with the spans)."""
    from dsar.redaction import Redactor

    subject_file = load_subject(subject_path)
    try:
        text = stdin.read().decode("utf-8")
    except UnicodeDecodeError:
        raise RedactInputError("the text on standard input is not UTF-8") from None
    result = Redactor(subject_file.subject, subject_file.others).redact(text)
    if as_json:
        spans = [
            {**asdict(span), "kind": span.kind.value, "source": span.source.value} for span in result.spans
        ]
        stdout.write(json.dumps({"text": result.text, "spans": spans}, ensure_ascii=False) + "\n")
    else:
        stdout.write(result.text)
    return 0
