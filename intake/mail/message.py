"""What email intake produces, and the limits it works within.

The outcome (a request, a reply, triage, ignored), the mailbox policy (which privacy address
serves which regime, size and depth caps), one attachment and the parsed message. Every step of
``intake.mail`` shares these; none of them holds a personal value in a reason or a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dsar.model import AgentDetails, Regime, RequestType
from intake.request_details import RequestDetails

MB = 1024 * 1024


class Outcome(StrEnum):
    """What intake does with the message."""

    REQUEST = "request"  # open a case
    REPLY = "reply"  # attach to the case it answers (reference in the subject, or thread headers)
    TRIAGE = "triage"  # open a case in triage for a person: we cannot tell what is asked
    IGNORED = "ignored"  # not a case: auto-reply, bounce, spam


@dataclass(frozen=True)
class MailboxPolicy:
    """Where mail arrives and the limits intake enforces.

    ``mailboxes`` maps a privacy address (To / Delivered-To) to the regime its brand serves;
    ``domains`` does the same for a whole brand domain. The requester's own words (a law they
    name, where they say they live) take precedence over both."""

    default_regime: Regime = Regime.UK_GDPR
    mailboxes: dict[str, Regime] = field(default_factory=dict)
    domains: dict[str, Regime] = field(default_factory=dict)
    max_message_bytes: int = 50 * MB
    max_attachment_bytes: int = 25 * MB
    max_attachments: int = 20
    max_depth: int = 20
    max_parts: int = 500
    #: an archive is refused unopened when it declares more than this uncompressed...
    max_archive_uncompressed_bytes: int = 100 * MB
    #: ...or expands more than this many times its own size, or holds more entries
    max_archive_ratio: int = 100
    max_archive_entries: int = 1000


@dataclass
class Attachment:
    """One attached file. ``data`` is empty when the file was refused (never decoded or opened)."""

    index: int  # 1-based, in message order: notes refer to it (never to the file name)
    filename: str  # sanitised: no path, no control characters, capped
    content_type: str
    size: int
    sha256: str | None
    data: bytes = field(repr=False, default=b"")
    refused: str | None = None
    #: a guess from the name and type, for the case file: "identity_document", "agent_authority"
    purpose: str | None = None


@dataclass
class ParsedMessage:
    message_id: str  # normalised "<...>"; synthesised from a SHA-256 of the raw bytes if absent
    outcome: Outcome
    request_type: RequestType | None
    regime: Regime | None
    identifiers: dict[str, str]  # IdentifierKind value -> value: the data subject's own
    reason: str  # why this outcome, type and regime: rule names only, no personal values
    case_reference: str | None = None  # a reply: the DSR-YYYY-NNNNNN it names
    in_reply_to: list[str] = field(default_factory=list)  # In-Reply-To and References ids
    by_agent: bool = False
    agent: AgentDetails | None = None
    also_requested: list[RequestType] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: safe for a reply header: no CR/LF or control characters, length-capped
    subject: str = ""
    sender: str = ""  # the From address (sanitised), where an answer would go
    mailbox: str | None = None  # the privacy address it was sent to, when one is known
    #: what the type needs, where the message states it (``intake.request_details``)
    details: RequestDetails = field(default_factory=RequestDetails)


def oversize_reason(size: int, limit: int) -> str:
    return f"message of {size} bytes is over the {megabytes(limit)} cap: not read, a person must look"


def megabytes(n: int) -> str:
    return f"{n // MB} MB" if n % MB == 0 else f"{n} bytes"
