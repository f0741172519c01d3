"""What a request by email says its type needs, where the message says it plainly: the
corrections of a rectification, the other company of a portability transfer, the use objected
to in an objection (GDPR Art. 16, 20(2), 21). The web form asks for the same in fields.

Only plain wording is read ("please change my address to 3 Mill Road", "my name should be
Margaret Ellis-Hart", "send it to https://...", "I object to ..."); anything less clear is left
for the operator, who reads the message on the case. Nothing read here is logged: the values are
personal data, and go only into the case's input, encrypted by the payload codec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dsar.model import IdentifierKind, RequestType

#: How people name the details a rectification corrects -> the identifier kind.
KIND_WORDS: dict[str, str] = {
    "full name": IdentifierKind.NAME.value,
    "name": IdentifierKind.NAME.value,
    "surname": IdentifierKind.NAME.value,
    "email address": IdentifierKind.EMAIL.value,
    "e-mail address": IdentifierKind.EMAIL.value,
    "email": IdentifierKind.EMAIL.value,
    "phone number": IdentifierKind.PHONE.value,
    "telephone number": IdentifierKind.PHONE.value,
    "mobile number": IdentifierKind.PHONE.value,
    "postal address": IdentifierKind.POSTAL_ADDRESS.value,
    "home address": IdentifierKind.POSTAL_ADDRESS.value,
    "address": IdentifierKind.POSTAL_ADDRESS.value,
    "postcode": IdentifierKind.POSTCODE.value,
    "post code": IdentifierKind.POSTCODE.value,
    "zip code": IdentifierKind.POSTCODE.value,
    "date of birth": IdentifierKind.DATE_OF_BIRTH.value,
}
_KINDS = "|".join(re.escape(w) for w in sorted(KIND_WORDS, key=len, reverse=True))
#: "change/correct/update my X (from ...) to VALUE", "my X should be VALUE", "my correct X is VALUE"
_CORRECTIONS = (
    re.compile(
        rf"\b(?:change|correct|update|amend|fix)\s+(?:my|the)\s+(?P<what>{_KINDS})\b[^\n]{{0,80}}?\bto\s*:?\s+"
        r"(?P<value>[^\n]{1,200})",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\bmy\s+(?P<what>{_KINDS})\s+(?:should|ought to)\s+(?:be|read|say)\s*:?\s+"
        r"(?P<value>[^\n]{1,200})",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\bmy\s+(?:correct|new|right|current)\s+(?P<what>{_KINDS})\s+is\s*:?\s+(?P<value>[^\n]{{1,200}})",
        re.IGNORECASE,
    ),
)
_TRANSFER = re.compile(
    r"\b(?:send|transfer|transmit|move|port)\b[^\n]{0,120}?(?P<url>https://[^\s<>\"')]+)", re.IGNORECASE
)
_OBJECTION = re.compile(r"\bobject(?:ing)?\s+to\s+(?P<what>[^\n]{3,200})", re.IGNORECASE)
MAX_VALUE = 200


@dataclass
class RequestDetails:
    """What the message gives for its request type (empty where it gives nothing plainly)."""

    corrections: dict[str, str] = field(default_factory=dict)
    transfer_to: str = ""
    objection: str = ""


def _sentence(value: str) -> str:
    """The value up to the end of its sentence, without closing quotes or punctuation. An email
    address keeps its dots: only a full stop followed by a space (or the end) ends it."""
    value = re.split(r"\.(?:\s|$)|;|,\s+(?:please|thank|and\b)", value, maxsplit=1)[0]
    return value.strip().strip("\"'").rstrip(".!").strip()[:MAX_VALUE]


def request_details(text: str, request_type: RequestType | None) -> RequestDetails:
    """The corrections, the receiving company or the use objected to that ``text`` (the
    requester's own words) states for ``request_type``; nothing for other types."""
    details = RequestDetails()
    if request_type is RequestType.RECTIFICATION:
        for pattern in _CORRECTIONS:
            for m in pattern.finditer(text):
                kind = KIND_WORDS[m.group("what").lower()]
                value = _sentence(m.group("value"))
                if value:
                    details.corrections.setdefault(kind, value)
    elif request_type is RequestType.PORTABILITY:
        if transfer := _TRANSFER.search(text):
            details.transfer_to = transfer.group("url").rstrip(".,;:")
    elif request_type is RequestType.OBJECTION and (objection := _OBJECTION.search(text)):
        details.objection = _sentence(objection.group("what"))
    return details


__all__ = ["KIND_WORDS", "RequestDetails", "request_details"]
