"""One gate for everything people and other systems send us: text, emails, phones, numbers.

Every channel (the JSON API, the public request form and the person's pages, email intake, the
CLI) passes what it received through these functions before any of it reaches a case. A value
that cannot be carried safely to the end of a case is refused at the door, with a message that
names the field and the rule (never the value): otherwise it is accepted with a 201 and fails
later, where nobody sees it (a letter that cannot be encoded, a register write PostgreSQL
refuses, a matching query a driver cannot bind).

What is refused, and why:

* an unpaired surrogate (``"\\ud800"`` in JSON): it cannot be encoded as UTF-8, so no letter,
  log line or database row can hold it;
* NUL: PostgreSQL text cannot hold it;
* control characters, and the line and paragraph separators U+2028, U+2029 and U+0085 (NEL):
  in a header they split it (header injection), in a log line they forge another line;
* bidirectional controls and the byte-order mark: they make text read differently from what it
  is ("Trojan source");
* the same, hidden in an RFC 2047 encoded word (``=?utf-8?q?a=0D=0Ab?=``): a mail library
  decodes it when the value is put in a header;
* line breaks, except where a field is written on several lines (a postal address, a reason).

Everything accepted is normalised to NFC, so the same name typed on two keyboards is one name.
Pure: no I/O, importable from the workflow (its validators use :func:`text_problem`).
"""

from __future__ import annotations

import binascii
import email.header
import re
import unicodedata
from collections.abc import Mapping
from typing import Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from dsar.model import IdentifierKind

#: How long a value may be (after normalisation).
MAX_TEXT = 500
MAX_REASON = 2000
MAX_IDENTIFIERS = 20
MAX_KEY = 200
#: The largest page and the furthest offset a list accepts: a register of 10 million cases,
#: read 500 at a time, needs no more; past that is a client's bug or an attack (a number SQLite
#: cannot bind is a 500, not an empty page).
MAX_PAGE = 500
MAX_OFFSET = 10_000_000

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_BOM = "\ufeff"
_LINE_SEPARATORS = frozenset("\u2028\u2029\u0085")
_KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_ENCODED_WORD = re.compile(r"=\?[^?\s]{1,40}\?[QqBb]\?[^?\s]*\?=")

Lines = Literal["refuse", "join", "keep"]


class InputRefused(ValueError):
    """A value we will not take. The message names the field and the rule, never the value,
    so it is safe in a 422, a log line and a page."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _character_problem(ch: str, lines: Lines) -> str | None:
    if ch == "\x00":
        return "contains a NUL character"
    if "\ud800" <= ch <= "\udfff":
        return "contains an unpaired surrogate (not valid Unicode text)"
    if ch in _LINE_SEPARATORS:
        return "contains a line or paragraph separator (U+2028, U+2029 or U+0085)"
    if ch in "\r\n":
        return None if lines != "refuse" else "contains a line break"
    category = unicodedata.category(ch)
    if category == "Cc":
        return "contains a control character"
    if ch in BIDI_CONTROLS or ch == _BOM:
        return "contains an invisible direction or byte-order mark"
    if category == "Cn" and (0xFDD0 <= ord(ch) <= 0xFDEF or ord(ch) & 0xFFFE == 0xFFFE):
        return "contains a Unicode non-character"
    return None


def text_problem(value: str, lines: Lines = "refuse") -> str | None:
    """Why ``value`` cannot be taken as it is ("contains a NUL character"), or None. Checks the
    text itself and what any RFC 2047 encoded word in it decodes to."""
    for ch in value:
        problem = _character_problem(ch, lines)
        if problem is not None:
            return problem
    if "=?" in value:
        for word in _ENCODED_WORD.findall(value):
            decoded = _decode_word(word)
            if decoded is not None and any(
                ch in "\r\n" or _character_problem(ch, "refuse") is not None for ch in decoded
            ):
                return "contains an encoded line break or control character (RFC 2047)"
    return None


def _decode_word(word: str) -> str | None:
    try:
        parts = email.header.decode_header(word)
    except (binascii.Error, ValueError, LookupError, UnicodeError):
        return None
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            try:
                out.append(chunk.decode(charset or "ascii", errors="replace"))
            except LookupError:
                out.append(chunk.decode("latin-1"))
        else:
            out.append(chunk)
    return "".join(out)


def clean_text(
    value: object,
    field: str,
    *,
    max_length: int = MAX_TEXT,
    lines: Lines = "refuse",
    required: bool = False,
) -> str:
    """The value, NFC-normalised and trimmed, or :class:`InputRefused`. ``lines``: "refuse" a
    line break, "join" the lines with ", " (an address typed on several lines), or "keep" them
    (a reason written as a paragraph)."""
    if not isinstance(value, str):
        raise InputRefused(field, "must be text")
    problem = text_problem(value, lines)
    if problem is not None:
        raise InputRefused(field, problem)
    value = unicodedata.normalize("NFC", value)
    if lines == "join":
        value = ", ".join(part.strip() for part in value.splitlines() if part.strip())
    elif lines == "keep":
        value = "\n".join(line.rstrip() for line in value.replace("\r\n", "\n").split("\n"))
    value = value.strip()
    if len(value) > max_length:
        raise InputRefused(field, f"is longer than {max_length} characters")
    if required and not value:
        raise InputRefused(field, "is required")
    return value


def clean_email(value: object, field: str = "email") -> str:
    """One email address, as ``email-validator`` reads it (no display name, no second address,
    no quoted local part), normalised; deliverability is not checked (no DNS at intake)."""
    text = clean_text(value, field, max_length=254, required=True)
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        # the library's message may quote the address: ours does not
        raise InputRefused(field, "the email address is not valid (like name@example.com)") from None
    normalised: str = checked.normalized
    return normalised


def clean_phone(value: object, field: str = "phone", region: str | None = None) -> str:
    """A phone number ``phonenumbers`` can read as a possible number (with its country code, or
    in ``region``'s own format). Returned as written (trimmed): matching normalises it."""
    text = clean_text(value, field, max_length=40, required=True)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        if region is None and not text.startswith("+"):
            raise InputRefused(field, "needs its country code, like +44 7911 123456")
        raise InputRefused(field, "is not a phone number we can read")
    return text


def clean_identifier(kind: str, value: object, region: str | None = None) -> str:
    """One identifier of the person, by its kind ("" when left blank)."""
    if isinstance(value, str) and not value.strip():
        return ""
    if kind == IdentifierKind.EMAIL:
        return clean_email(value, f"identifiers.{kind}")
    if kind == IdentifierKind.PHONE:
        return clean_phone(value, f"identifiers.{kind}", region)
    lines: Lines = "join" if kind == IdentifierKind.POSTAL_ADDRESS else "refuse"
    return clean_text(value, f"identifiers.{kind}", lines=lines)


def clean_identifiers(
    raw: Mapping[str, object],
    *,
    region: str | None = None,
    required: bool = True,
    field: str = "identifiers",
) -> dict[str, str]:
    """The person's identifiers: known kinds only, each checked by :func:`clean_identifier`.
    An unknown kind is refused without being echoed (it may be a value put in the wrong place)."""
    kinds = {k.value for k in IdentifierKind}
    if len(raw) > MAX_IDENTIFIERS:
        raise InputRefused(field, f"at most {MAX_IDENTIFIERS} identifiers")
    out: dict[str, str] = {}
    for kind, value in raw.items():
        if not isinstance(kind, str) or kind not in kinds:
            known = ", ".join(sorted(kinds))
            # a key that is a name is named; anything else may be a value put in the wrong place
            named = f"{kind!r} " if isinstance(kind, str) and _KIND_NAME.fullmatch(kind) else ""
            raise InputRefused(field, f"identifier kind {named}is not recognised; use one of: {known}")
        cleaned = clean_identifier(kind, value, region)
        if cleaned:
            out[kind] = cleaned
    if required and not out:
        raise InputRefused(field, "at least one identifier of the person is needed (e.g. email, name, phone)")
    return out


def clean_key(value: object, field: str = "idempotency_key") -> str:
    """An idempotency key (a Message-ID, a form token): printable text, 1 to 200 characters."""
    text = clean_text(value, field, max_length=MAX_KEY)
    if not text:
        raise InputRefused(field, f"must be 1 to {MAX_KEY} characters")
    return text


def clean_reason(value: object, field: str = "reason", max_length: int = MAX_REASON) -> str:
    """What staff write on a case (a reason, a note): paragraphs allowed, nothing invisible."""
    return clean_text(value, field, max_length=max_length, lines="keep")


def bounded(value: int, field: str, low: int, high: int) -> int:
    """A whole number within [low, high]: a page size, an offset, a count."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputRefused(field, f"must be a whole number from {low} to {high}")
    return value


__all__ = [
    "MAX_OFFSET",
    "MAX_PAGE",
    "InputRefused",
    "bounded",
    "clean_email",
    "clean_identifier",
    "clean_identifiers",
    "clean_key",
    "clean_phone",
    "clean_reason",
    "clean_text",
    "text_problem",
]
