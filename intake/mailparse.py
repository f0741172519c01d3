"""One raw email in, a classified and safe intake result out (issue 7, email intake).

Pure: ``parse_message(raw, policy)`` does no I/O, never logs and never raises. The poller stores
the attachments it returns and opens or attaches the case; ``dsar intake-email --dry-run`` prints
a kinds-only summary. Reasons and notes name rules, counts and sizes, never a personal value,
because they end up in case notes, logs and dry-run output.

Why these choices:
- The stdlib parser with the ``compat32`` policy: headers stay raw strings, decoded (RFC 2047)
  and sanitised here in a few linear steps, and payloads are decoded here too (leniently: a
  truncated base64 body is still read). The modern policy runs a full RFC 5322 grammar over
  every header it is asked for: more than intake needs from hostile input, and one more thing
  that could raise.
- Classification is a table of phrases with weights (word boundaries, case-folded), in the words
  people actually write, so a privacy officer can read and amend it. The highest score wins; the
  others that reach the threshold are kept as ``also_requested`` for a human to see.
- Quoted replies, forwarded-message headers, legal disclaimers ("if you are not the intended
  recipient, delete...") and mobile footers are cut before classifying: they carry request words
  that the person did not write.
- A real request must never be ignored: only machine headers (auto-replies, delivery reports,
  the spam filter's flag) ignore a message unconditionally; weaker signals (an "Out of office"
  subject, list headers, spam phrases) ignore it only when no request was recognised, and a
  flagged message that reads like a request goes to triage.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.header
import email.utils
import hashlib
import io
import re
import struct
import unicodedata
import zipfile
from dataclasses import dataclass, field
from email import policy as email_policy
from email.message import Message
from email.parser import BytesParser
from enum import StrEnum

import phonenumbers
from bs4 import BeautifulSoup

from dsar.model import AgentAuthority, AgentDetails, IdentifierKind, Regime, RequestType
from intake.request_details import RequestDetails, request_details
from intake.training.classifier import second_opinion
from intake.typos import repair_spelling

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


# --------------------------------------------------------------------------------------------
# Entry point


def parse_message(raw: bytes, policy: MailboxPolicy | None = None) -> ParsedMessage:
    """Classify one raw RFC 822 message. Never raises: what cannot be read goes to triage."""
    policy = policy or MailboxPolicy()
    try:
        data = raw if isinstance(raw, bytes) else _as_bytes(raw)
    except (TypeError, ValueError):
        return ParsedMessage(_synthetic_id(b""), Outcome.TRIAGE, None, None, {}, "input is not bytes")
    fallback_id = _synthetic_id(data)
    try:
        return _parse(data, policy, fallback_id)
    except (RecursionError, MemoryError) as e:
        reason = f"message structure too deep or too large to read ({type(e).__name__})"
    except Exception as e:  # the promise: never a traceback; the message is kept for a person
        reason = f"message could not be read ({type(e).__name__})"
    return ParsedMessage(fallback_id, Outcome.TRIAGE, None, policy.default_regime, {}, reason)


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    raise TypeError("not bytes")


def _synthetic_id(data: bytes) -> str:
    """Stable across retries: the same bytes always give the same id, so intake stays idempotent."""
    return f"<sha256-{hashlib.sha256(data).hexdigest()}@dsar-intake.invalid>"


def _parse(data: bytes, policy: MailboxPolicy, fallback_id: str) -> ParsedMessage:
    if not data.strip():
        return ParsedMessage(fallback_id, Outcome.TRIAGE, None, policy.default_regime, {}, "empty message")
    if len(data) > policy.max_message_bytes:
        return _oversized(data, policy, fallback_id)

    msg = BytesParser(policy=email_policy.compat32).parsebytes(data)
    head = _Headers(msg)
    base = ParsedMessage(
        message_id=_message_id(head.get("message-id")) or fallback_id,
        outcome=Outcome.TRIAGE,
        request_type=None,
        regime=None,
        identifiers={},
        reason="",
        in_reply_to=_thread_ids(head),
        subject=clean_header_text(head.get("subject"), 200),
        sender=_sender_address(head),
    )
    if not any(head.get(h) for h in ("from", "to", "subject", "date", "message-id")):
        base.regime = policy.default_regime
        base.reason = "not an email message: no From, To, Subject, Date or Message-ID header"
        return base
    base.mailbox, mailbox_regime, mailbox_rule = _mailbox(head, policy)

    machine = _machine_generated(msg, head)
    if machine:
        base.outcome, base.reason = Outcome.IGNORED, machine
        return base

    walk = _walk(msg, policy)
    base.attachments = walk.attachments
    base.notes.extend(walk.notes)
    body = _body_text(walk)
    base.notes.extend(body.notes)
    requester = _split_requester(body.text, base.subject, head, walk)

    classify_text = _classification_text(base.subject, requester)
    scores = _score_types(classify_text)
    request_type, also, type_reason = _pick_type(scores)
    base.request_type, base.also_requested = request_type, also

    base.by_agent = bool(_AGENT.search(_for_matching(requester.text))) or bool(
        _AGENT_NAMED.search(requester.text)
    )
    found = _identifiers(requester, base.by_agent)
    if _is_own_address(found.values.get(IdentifierKind.EMAIL, ""), policy):
        del found.values[IdentifierKind.EMAIL]
    base.identifiers = found.values
    if base.by_agent:
        base.agent = _agent_details(requester, classify_text)
    regime, regime_reason = _pick_regime(
        classify_text, found, mailbox_regime, mailbox_rule, policy, _place_lines(requester.text)
    )
    base.regime = regime
    base.request_type, base.also_requested, fitted = fit_type_to_regime(request_type, also, scores, regime)
    if fitted:
        type_reason += f"; {fitted}"
    request_type = base.request_type

    soft_ignore = _soft_ignore(msg, head, base.subject, classify_text)
    spam_flagged = _spam_flagged(head)
    base.case_reference = _case_reference(base.subject, requester.text)
    is_reply = base.case_reference is not None or (
        bool(base.in_reply_to) and bool(_REPLY_PREFIX.match(base.subject))
    )

    triage: list[str] = list(walk.triage)
    if spam_flagged:
        if request_type is None and not is_reply:
            base.outcome, base.reason, base.regime = Outcome.IGNORED, spam_flagged, None
            base.request_type, base.also_requested = None, []
            base.identifiers, base.by_agent, base.agent = {}, False, None
            return base
        triage.append(f"{spam_flagged}, but it reads like a request")
    if soft_ignore and request_type is None and not is_reply:
        base.outcome, base.reason, base.regime = Outcome.IGNORED, soft_ignore, None
        base.identifiers, base.by_agent, base.agent = {}, False, None
        return base
    if not body.text.strip() and not requester.text.strip() and not is_reply:
        if not triage:
            triage.append(body.empty_reason or "no readable text in the message")
    elif request_type is None and not is_reply:
        request_type, type_reason = _second_opinion(classify_text, scores, regime)
        base.request_type = request_type
        if request_type is None:
            triage.append(f"cannot tell the request type: {type_reason}")

    base.details = request_details(requester.text, base.request_type)
    if triage:
        base.outcome = Outcome.TRIAGE
        base.reason = "; ".join([*triage, *([type_reason] if request_type else []), regime_reason])
    elif is_reply:
        base.outcome = Outcome.REPLY
        how = "a case reference" if base.case_reference else "thread headers (In-Reply-To/References)"
        base.reason = "; ".join([f"a reply: {how}", *([type_reason] if request_type else []), regime_reason])
    else:
        base.outcome = Outcome.REQUEST
        base.reason = f"{type_reason}; {regime_reason}"
    if base.by_agent:
        base.reason += "; made by an agent for the person"
    return base


def _second_opinion(
    text: str, scores: dict[RequestType, tuple[int, list[str]]], regime: Regime | None
) -> tuple[RequestType | None, str]:
    """When no rule recognised the request: the statistical model's type, if it is sure enough
    (intake/training/classifier.py), as the regime names it; else None and why."""
    opinion = second_opinion(text)
    if opinion is None:
        return None, "no request wording recognised"
    if opinion.request_type is None or not opinion.decides:
        return None, f"no request wording recognised; {opinion.describe()}"
    fitted_type, _, fitted = fit_type_to_regime(opinion.request_type, [], scores, regime)
    chosen = fitted_type or opinion.request_type
    return chosen, f"type {chosen.value} ({opinion.describe()}{f'; {fitted}' if fitted else ''})"


def _oversized(data: bytes, policy: MailboxPolicy, fallback_id: str) -> ParsedMessage:
    """Read the header block only: enough for the Message-ID and the sender, never the body."""
    end = min(len(data), 256 * 1024)
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = data.find(sep, 0, end)
        if at >= 0:
            end = at
            break
    head = _Headers(BytesParser(policy=email_policy.compat32).parsebytes(data[:end], headersonly=True))
    limit = policy.max_message_bytes
    return ParsedMessage(
        message_id=_message_id(head.get("message-id")) or fallback_id,
        outcome=Outcome.TRIAGE,
        request_type=None,
        regime=policy.default_regime,
        identifiers={},
        reason=oversize_reason(len(data), limit),
        in_reply_to=_thread_ids(head),
        subject=clean_header_text(head.get("subject"), 200),
        sender=_sender_address(head),
    )


def oversize_reason(size: int, limit: int) -> str:
    return f"message of {size} bytes is over the {_mb(limit)} cap: not read, a person must look"


def _mb(n: int) -> str:
    return f"{n // MB} MB" if n % MB == 0 else f"{n} bytes"


# --------------------------------------------------------------------------------------------
# Headers: raw values, decoded and sanitised here

_CONTROL_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def clean_header_text(value: str | None, limit: int) -> str:
    """Safe to put in a reply header: CR, LF and every control or format character become
    spaces or go, whitespace collapses, and the length is capped (header injection)."""
    if not value:
        return ""
    out = []
    for ch in value:
        if ch in "\r\n\t\v\f":
            out.append(" ")
        elif unicodedata.category(ch) not in _CONTROL_CATEGORIES:
            out.append(ch)
    return " ".join("".join(out).split())[:limit]


class _Headers:
    """First occurrence of each header, unfolded and RFC 2047-decoded, capped at 4,000 chars."""

    def __init__(self, msg: Message) -> None:
        self._raw: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            self._raw.setdefault(str(name).strip().lower(), []).append(_unfold(str(value))[:4000])

    def raw(self, name: str) -> str | None:
        values = self._raw.get(name)
        return values[0] if values else None

    def all_raw(self, name: str) -> list[str]:
        return self._raw.get(name, [])

    def get(self, name: str) -> str | None:
        value = self.raw(name)
        return None if value is None else decode_words(value)

    def addresses(self, *names: str) -> list[tuple[str, str]]:
        """(display name, address) pairs; names decoded, addresses lower-cased and checked."""
        found = []
        for name in names:
            for raw in self.all_raw(name):
                try:
                    pairs = email.utils.getaddresses([raw])
                except Exception:
                    pairs = []
                for display, addr in pairs:
                    address = _valid_address(addr)
                    if address:
                        found.append((clean_header_text(decode_words(display), 100), address))
        return found


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", value)


def decode_words(value: str) -> str:
    """RFC 2047 encoded words, and raw 8-bit bytes (UTF-8, else Windows-1252), to text."""
    value = _undo_surrogates(value)
    if "=?" not in value:
        return value
    try:
        parts = email.header.decode_header(value)
    except Exception:
        return value
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            out.append(_decode_bytes(chunk, charset)[0])
        else:
            out.append(chunk)
    return "".join(out)


def _undo_surrogates(value: str) -> str:
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    return _decode_bytes(raw, None)[0]


def _valid_address(addr: str) -> str | None:
    addr = clean_header_text(addr, 254).strip("<>").strip()
    if _EMAIL_ONLY.fullmatch(addr):
        local, _, domain = addr.rpartition("@")
        return f"{local}@{domain.lower()}"
    return None


_EMAIL_ONLY = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+\-']{1,64}@[A-Za-z0-9.\-]{1,200}\.[A-Za-z]{2,24}")
_MSG_ID = re.compile(r"<([^<>\s]{1,240}@[^<>\s]{1,240})>")


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    value = clean_header_text(value, 1000)
    m = _MSG_ID.search(value)
    if m:
        return f"<{m.group(1)[:250]}>"
    bare = value.strip().strip("<>")
    if "@" in bare and " " not in bare and len(bare) <= 250:
        return f"<{bare}>"
    return None


def _thread_ids(head: _Headers) -> list[str]:
    ids: list[str] = []
    for name in ("in-reply-to", "references"):
        for raw in head.all_raw(name):
            for m in _MSG_ID.finditer(clean_header_text(raw, 8000)):
                mid = f"<{m.group(1)[:250]}>"
                if mid not in ids:
                    ids.append(mid)
    return ids[:20]


def _sender_address(head: _Headers) -> str:
    pairs = head.addresses("from") or head.addresses("reply-to") or head.addresses("sender")
    return pairs[0][1] if pairs else ""


def _is_own_address(address: str, policy: MailboxPolicy) -> bool:
    """The controller's own mailboxes are never a requester's identifier (a quoted letter of ours)."""
    address = address.lower()
    domain = address.rpartition("@")[2]
    return address in {k.lower() for k in policy.mailboxes} or domain in {
        d.lower().lstrip("@") for d in policy.domains
    }


def _mailbox(head: _Headers, policy: MailboxPolicy) -> tuple[str | None, Regime | None, str]:
    """The privacy address the message was delivered to, and the regime its brand serves."""
    boxes = {k.lower(): v for k, v in policy.mailboxes.items()}
    domains = {k.lower().lstrip("@"): v for k, v in policy.domains.items()}
    pairs = head.addresses("delivered-to", "x-original-to", "to", "cc")
    for _, address in pairs:
        local, _, domain = address.lower().rpartition("@")
        plain = f"{local.split('+', 1)[0]}@{domain}"
        for candidate in (address.lower(), plain):
            if candidate in boxes:
                return candidate, boxes[candidate], "the mailbox it was sent to"
    for _, address in pairs:
        domain = address.lower().rpartition("@")[2]
        if domain in domains:
            return address.lower(), domains[domain], "the brand's domain it was sent to"
    return None, None, ""


# --------------------------------------------------------------------------------------------
# Messages that are not cases

_AUTO_SUBJECT = re.compile(
    r"^\s*(?:out of (?:the )?office(?! hours)|ooo\b|automatic (?:reply|response)|auto[- ]?repl(?:y|ied)"
    r"|autoreply"
    r"|automatische antwort|automatisch antwoord|risposta automatica|autosvar"
    r"|auto[- ]?response|away from (?:the )?office|abwesenheitsnotiz|abwesend|r[ée]ponse automatique"
    r"|absence du bureau|resposta autom[áa]tica|respuesta autom[áa]tica|fuera de la oficina)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undeliver(?:ed|able)|delivery status notification|delivery (?:failure|has failed)"
    r"|mail delivery (?:failed|failure|system)|returned mail|failure notice|non[- ]?delivery"
    r"|nicht zustellbar|unzustellbar|non remis|non distribu)",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"^(?:mailer-daemon|mail-daemon|mailerdaemon|postmaster)@", re.IGNORECASE)
_SPAM_MARKERS = re.compile(
    r"\b(?:viagra|cialis|casino|lottery|jackpot|you have (?:been selected|won)|claim your (?:prize|reward)"
    r"|bitcoin|crypto(?:currency)? (?:investment|trading|opportunity)|double your (?:money|investment)"
    r"|100% (?:free|guaranteed)|risk[- ]free|act now|limited time offer|wire transfer|next of kin"
    r"|inheritance|beneficiary|million (?:us )?dollars|western union|seo services|first page of google"
    r"|rank #?1|hot singles|weight loss|guaranteed returns?|investment opportunity"
    r"|verify your (?:account|mailbox|identity now)|(?:account|mailbox) will be (?:suspended|closed|deleted"
    r"|deactivated|terminated)|mailbox (?:is )?(?:almost |nearly )?full|storage (?:is )?(?:\d+% )?full"
    r"|click (?:here|the link|below) to (?:verify|confirm|update|validate|upgrade|claim)"
    r"|unusual sign[- ]in activity|confirm your password|gift card|no prescription|cheap (?:meds|pills)"
    r"|discreet (?:worldwide )?shipping|buy now|shop now|order (?:now|today)|\d{2}% off)\b",
    re.IGNORECASE,
)


def _machine_generated(msg: Message, head: _Headers) -> str | None:
    """Headers that machines set and people do not: ignored whatever the text says."""
    if msg.get_content_type() == "multipart/report":
        kind = str(msg.get_param("report-type") or "").lower()[:40]
        return f"delivery or read report (multipart/report; report-type={kind or 'none'})"
    sender = _sender_address(head)
    if _DAEMON.match(sender):
        return "bounce (sent by the mail system)"
    auto = (head.get("auto-submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return "auto-reply (Auto-Submitted header)"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if head.get(name):
            return f"auto-reply ({name} header)"
    precedence = (head.get("precedence") or "").strip().lower()
    if precedence in {"bulk", "junk", "list", "auto_reply"}:
        return f"bulk or automatic mail (Precedence: {precedence})"
    return_path = head.raw("return-path")
    if return_path is not None and return_path.strip() in {"<>", ""}:
        return "machine-generated notice (empty Return-Path)"
    return None


def _spam_flagged(head: _Headers) -> str | None:
    for name in ("x-spam-flag", "x-spam-status", "x-spam"):
        value = (head.get(name) or "").strip().lower()
        if value.startswith("yes") or value == "true":
            return f"marked as spam by the mail filter ({name})"
    return None


def _soft_ignore(msg: Message, head: _Headers, subject: str, text: str) -> str | None:
    """Signals that people can trip by accident: they ignore a message only if no request was
    recognised in it."""
    if _AUTO_SUBJECT.match(subject):
        return "auto-reply (subject)"
    if _BOUNCE_SUBJECT.match(subject):
        return "bounce (delivery failure subject)"
    if head.get("list-unsubscribe") or head.get("list-id"):
        return "mailing-list or newsletter mail (List headers)"
    markers = {m.group(0).lower() for m in _SPAM_MARKERS.finditer(text)}
    if len(markers) >= 2:
        return f"spam ({len(markers)} classic spam phrases)"
    return None


# --------------------------------------------------------------------------------------------
# The MIME tree: text parts, attachments, forwarded messages; bounded in depth and count


@dataclass
class _TextPart:
    text: str
    html: bool


@dataclass
class _Walk:
    plain: list[_TextPart] = field(default_factory=list)
    html: list[_TextPart] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: list[Message] = field(default_factory=list)  # message/rfc822 parts
    notes: list[str] = field(default_factory=list)
    triage: list[str] = field(default_factory=list)


def _walk(msg: Message, policy: MailboxPolicy) -> _Walk:
    """Iterative, so a 10,000-level nesting cannot exhaust the stack; stops at the caps."""
    out = _Walk()
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    seen = 0
    in_alternative_with_plain: set[int] = set()
    while stack:
        part, depth, inside_forward = stack.pop()
        seen += 1
        if seen > policy.max_parts:
            out.triage.append(f"more than {policy.max_parts} MIME parts: the rest was not read")
            break
        if depth > policy.max_depth:
            if not any("nesting" in t for t in out.triage):
                out.triage.append(
                    f"MIME nesting deeper than {policy.max_depth} levels: the rest was not read"
                )
            continue
        ctype = _content_type(part)
        if ctype == "message/rfc822":  # compat32 calls it multipart: it is a forwarded message
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                out.forwarded.append(inner[0])
                stack.append((inner[0], depth + 1, True))
            continue
        if part.is_multipart():
            children = part.get_payload()
            if not isinstance(children, list):
                continue
            if ctype == "multipart/alternative" and any(
                isinstance(c, Message) and _content_type(c) == "text/plain" for c in children
            ):
                in_alternative_with_plain.update(id(c) for c in children)
            for child in reversed(children):
                if isinstance(child, Message):
                    stack.append((child, depth + 1, inside_forward))
            continue
        if ctype.startswith("multipart/"):
            salvaged = _salvage_text(part)
            if salvaged:
                out.notes.append("a multipart part had no readable boundary: its text was read as plain text")
                out.plain.append(_TextPart(salvaged, False))
            else:
                out.triage.append(
                    "malformed MIME: a multipart part without its boundary left no readable text"
                )
            continue
        if _is_attachment(part, ctype):
            if not inside_forward or part.get_filename():
                out.attachments.append(_attachment(part, ctype, len(out.attachments) + 1, policy, out.notes))
            continue
        if ctype in ("text/plain", "text/html") and not inside_forward:
            if ctype == "text/html" and id(part) in in_alternative_with_plain:
                continue
            text = _part_text(part, out.notes)
            if text is not None:
                (out.html if ctype == "text/html" else out.plain).append(
                    _TextPart(text, ctype == "text/html")
                )
    return out


_MIME_DEBRIS = re.compile(r"^(?:--\S+|[A-Za-z][\w-]*:\s.*|[A-Za-z0-9+/=]{16,})$")


def _salvage_text(part: Message) -> str:
    """A multipart whose boundary never appears: keep the lines that are not MIME debris
    (boundaries, part headers, base64), which is the person's text if there is any."""
    text = _part_text(part, []) or ""
    kept = [line for line in text.splitlines() if not _MIME_DEBRIS.match(line.strip())]
    return "\n".join(kept).strip()


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "application/octet-stream"


def _is_attachment(part: Message, ctype: str) -> bool:
    disposition = (part.get("content-disposition") or "").__str__().lower()
    if disposition.strip().startswith("attachment"):
        return True
    return ctype not in ("text/plain", "text/html")


_MAX_TEXT_PART_BYTES = 2 * MB


def _part_text(part: Message, notes: list[str]) -> str | None:
    payload = decoded_payload(part)
    if payload is None:
        return None
    if len(payload) > _MAX_TEXT_PART_BYTES:
        notes.append(f"a text part of {len(payload)} bytes was cut to {_MAX_TEXT_PART_BYTES} bytes")
        payload = payload[:_MAX_TEXT_PART_BYTES]
    declared = part.get_content_charset()
    if _content_type(part) == "text/html" and not declared:
        return html_to_text(payload)
    text, note = _decode_bytes(payload, declared)
    if note:
        notes.append(note)
    return html_to_text(text) if _content_type(part) == "text/html" else text


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


def _decode_bytes(data: bytes, declared: str | None) -> tuple[str, str | None]:
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


# --------------------------------------------------------------------------------------------
# Attachments: sanitised names, caps, archives inspected but never extracted

_ARCHIVE_NAMES = re.compile(r"\.(?:zip|7z|rar|gz|tgz|tar|bz2|xz|zst)$", re.IGNORECASE)
_ID_WORDS = re.compile(
    r"passport|driving|licen[cs]e|\bid\b|identity|id[_ -]?card|utility|bill|proof|photo", re.IGNORECASE
)
_AUTHORITY_WORDS = re.compile(
    r"authori[sz]|authority|permission|power[_ -]?of[_ -]?attorney|\bpoa\b|lpa|mandate|procura|vollmacht"
    r"|consent",
    re.IGNORECASE,
)


def sanitise_filename(name: str | None, index: int) -> str:
    """No directories, no control characters, no leading dots; the extension survives the cap."""
    name = clean_header_text(decode_words(name or "")[:2000], 2000)
    name = re.split(r"[\\/]", name)[-1]
    name = re.sub(r"[^\w.\-() ]", "_", name).strip(" .")
    if not name:
        return f"attachment-{index}"
    if len(name) > 100:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem[: 95 - len(ext)]}.{ext}" if dot and len(ext) <= 10 else name[:100]
    return name


def _attachment(part: Message, ctype: str, index: int, policy: MailboxPolicy, notes: list[str]) -> Attachment:
    try:
        raw_name = part.get_filename()
    except Exception:
        raw_name = None
    filename = sanitise_filename(raw_name, index)
    purpose = (
        "agent_authority"
        if _AUTHORITY_WORDS.search(filename)
        else "identity_document"
        if _ID_WORDS.search(filename)
        else None
    )
    if index > policy.max_attachments:
        reason = f"over the {policy.max_attachments} attachments cap"
        notes.append(f"attachment {index} refused: {reason}")
        return Attachment(index, filename, ctype, 0, None, refused=reason, purpose=purpose)
    size = _encoded_size(part)
    if size > policy.max_attachment_bytes:
        reason = f"{size} bytes over the {_mb(policy.max_attachment_bytes)} cap"
        notes.append(f"attachment {index} refused: {reason}")
        return Attachment(index, filename, ctype, size, None, refused=reason, purpose=purpose)
    data = decoded_payload(part) or b""
    found = Attachment(
        index, filename, ctype, len(data), hashlib.sha256(data).hexdigest(), data, None, purpose
    )
    if len(data) > policy.max_attachment_bytes:
        found.refused = f"{len(data)} bytes over the {_mb(policy.max_attachment_bytes)} cap"
    else:
        found.refused = _archive_refusal(data, filename, ctype, policy)
    if found.refused:
        notes.append(f"attachment {index} refused: {found.refused}")
        found.data = b""
    if (part.get("content-transfer-encoding") or "").__str__().strip().lower() == "base64":
        _check_base64(part, index, notes)
    return found


def _encoded_size(part: Message) -> int:
    """The decoded size, computed from the encoded text: a 30 MB file is refused undecoded."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return 0
    cte = (part.get("content-transfer-encoding") or "").__str__().strip().lower()
    if cte == "base64":
        n = len(payload) - sum(payload.count(c) for c in "\r\n \t")
        tail = payload[-200:].rstrip()  # the padding is at the end: no copy of the whole payload
        pad = len(tail) - len(tail.rstrip("="))
        return max(0, n * 3 // 4 - pad)
    return len(payload)


def _check_base64(part: Message, index: int, notes: list[str]) -> None:
    payload = part.get_payload()
    if isinstance(payload, str):
        compact = "".join(payload.split())
        try:
            base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            notes.append(f"attachment {index}: base64 damaged or truncated, kept as decoded")


def _archive_refusal(data: bytes, filename: str, ctype: str, policy: MailboxPolicy) -> str | None:
    """Archives are opened only to read their directory: a declared size or ratio out of
    proportion (a zip bomb), too many entries or archives inside archives refuse the file."""
    is_zip = data[:4] in (b"PK\x03\x04", b"PK\x05\x06") or filename.lower().endswith(".zip") or "zip" in ctype
    if is_zip:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                entries = archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError):
            return "an archive that cannot be read"
        declared = sum(max(0, e.file_size) for e in entries)
        names = [e.filename for e in entries]
        return _archive_verdict(declared, len(data), len(entries), names, policy)
    if data[:2] == b"\x1f\x8b" and len(data) >= 18:
        declared = struct.unpack("<I", data[-4:])[0]  # ISIZE: the size modulo 2**32
        return _archive_verdict(declared, len(data), 1, [], policy)
    return None


def _archive_verdict(
    declared: int, size: int, entries: int, names: list[str], policy: MailboxPolicy
) -> str | None:
    if entries > policy.max_archive_entries:
        return f"archive with {entries} entries, over the {policy.max_archive_entries} cap (never extracted)"
    if declared > policy.max_archive_uncompressed_bytes:
        return (
            f"archive declares {declared} bytes uncompressed, over the "
            f"{_mb(policy.max_archive_uncompressed_bytes)} cap: a zip bomb (never extracted)"
        )
    if size and declared / size > policy.max_archive_ratio:
        return (
            f"archive expands {declared // max(size, 1)} times its size, over the "
            f"{policy.max_archive_ratio}x cap: a zip bomb (never extracted)"
        )
    if any(_ARCHIVE_NAMES.search(n) for n in names):
        return "archive contains archives (never extracted)"
    return None


# --------------------------------------------------------------------------------------------
# The body: the text the person wrote, without quotes, forwards' headers, disclaimers


@dataclass
class _Body:
    text: str
    notes: list[str]
    empty_reason: str | None = None


def _body_text(walk: _Walk) -> _Body:
    notes: list[str] = []
    parts = walk.plain or walk.html
    if not walk.plain and walk.html:
        notes.append("HTML-only body, read as text")
    text = "\n\n".join(p.text for p in parts)
    text = _normalise_text(text)[:200_000]
    empty_reason = None
    if not text.strip():
        if walk.attachments:
            empty_reason = "no text in the message: the request may be in an attachment"
        elif walk.triage:
            empty_reason = "malformed message structure left no readable text"
        else:
            empty_reason = "no text in the message"
    return _Body(text, notes, empty_reason)


def _normalise_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in _CONTROL_CATEGORIES)


@dataclass
class _Requester:
    """Whose request it is, and the text they wrote. For a forward: the original sender."""

    text: str  # what the requester wrote (quotes, disclaimers and footers cut)
    signature: str  # the block after the sign-off ("Kind regards, ...")
    signature_at: int  # where the sign-off starts in ``text`` (len(text) when there is none)
    name: str  # display name of the requester's address
    address: str | None
    note: str = ""  # a forwarder's own words above the forwarded message (classified, not mined)
    forwarded: bool = False


_FORWARD_SUBJECT = re.compile(r"^\s*(?:(?:re|aw|sv)\s*:\s*)*(?:fwd?|fw|tr|wg|enc|rv|i)\s*:", re.IGNORECASE)
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|odp|ref|rif|r)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
_FORWARD_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|mensagem encaminhada|message transf[ée]r[ée]"
    r"|weitergeleitete nachricht|mensaje reenviado)\s*-{2,}"
    r"|begin forwarded message\s*:|start of forwarded message|-{3,}\s*forwarded by)",
    re.IGNORECASE,
)
#: Outlook puts this above a quoted reply and above a forward alike: the subject (FW:) tells which
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(?:original message|mensagem original|message d'origine|urspr[üu]ngliche nachricht"
    r"|mensaje original)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_ATTRIBUTION = re.compile(
    r"^\s*(?:on\b.{0,300}\b(?:wrote|writes)\s*:|le\b.{0,300}a [ée]crit\s*:|am\b.{0,300}schrieb.{0,300}:"
    r"|em\b.{0,300}escreveu\s*:|el\b.{0,300}escribi[óo]\s*:)\s*$",
    re.IGNORECASE,
)
_HEADER_LINE = re.compile(
    r"^\s*\**(from|de|von|van|da|sent|date|datum|envoy[ée]|enviado|data|gesendet|to|an|para|[àa]|cc|"
    r"subject|assunto|objet|betreff|asunto)\s*\**\s*:\s*\**(.*)$",
    re.IGNORECASE,
)
_FROM_WORDS = {"from", "de", "von", "van", "da"}
_DISCLAIMER = re.compile(
    r"intended recipient|this (?:e-?mail|message)(?: and any attachments?)? (?:is|are|may be|contains?)"
    r" (?:confidential|privileged)|confidentiality notice|please consider the environment"
    r"|^sent from my (?:iphone|ipad|android|galaxy|samsung|mobile|phone)|^get outlook for"
    r"|^sent from (?:outlook|mail|yahoo mail|proton mail)|^enviado do meu|^envoy[ée] de mon",
    re.IGNORECASE | re.MULTILINE,
)
_SIGN_OFF = re.compile(
    r"^\s*(?:(?:kind|best|warm|warmest|many|with)\s+(?:regards|wishes|thanks)|regards|thanks(?: again)?"
    r"|thank you(?: in advance)?|many thanks|yours (?:sincerely|faithfully|truly)|sincerely(?: yours)?"
    r"|cheers|best|all the best|respectfully|ta|atenciosamente|cordialmente|abra[çc]os|obrigad[oa]"
    r"|cordialement|bien [àa] vous|salutations distingu[ée]es|mit freundlichen gr[üu](?:ß|ss)en"
    r"|freundliche gr[üu](?:ß|ss)e|viele gr[üu](?:ß|ss)e|beste gr[üu](?:ß|ss)e|mfg|lg|saludos)"
    r"\s*[,.!]*\s*(?P<name>(?-i:[A-Z][\w'\-]+(?: [A-Z][\w'\-]+){0,3}))?\s*[,.]?\s*$",
    re.IGNORECASE,
)


def _split_requester(text: str, subject: str, head: _Headers, walk: _Walk) -> _Requester:
    from_pairs = head.addresses("from")
    name, address = from_pairs[0] if from_pairs else ("", None)
    own, forwarded = _cut_quotes(text.splitlines(), forward_subject=bool(_FORWARD_SUBJECT.match(subject)))
    if forwarded is None and walk.forwarded:
        forwarded = _attached_forward(walk.forwarded[0])
    if forwarded is not None and (forwarded.text.strip() or forwarded.address):
        note = _strip_disclaimers("\n".join(own))
        body = _strip_disclaimers(forwarded.text)
        signature, at = _signature(body)
        return _Requester(
            text=body,
            signature=signature,
            signature_at=at,
            name=forwarded.name,
            address=forwarded.address,
            note=note,
            forwarded=True,
        )
    body = _strip_disclaimers("\n".join(own))
    signature, at = _signature(body)
    return _Requester(body, signature, at, name, address)


@dataclass
class _Forward:
    name: str
    address: str | None
    text: str


def _cut_quotes(lines: list[str], forward_subject: bool) -> tuple[list[str], _Forward | None]:
    """The person's own lines, and the forwarded message below them if there is one."""
    own: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        joined = f"{line} {lines[i + 1]}" if i + 1 < len(lines) else line
        if _FORWARD_MARKER.match(line) or (forward_subject and _ORIGINAL_MESSAGE.match(line)):
            return own, _read_forward(lines[i + 1 :])
        if forward_subject and _outlook_header_block(lines, i):
            return own, _read_forward(lines[i:])
        if _ORIGINAL_MESSAGE.match(line) or _outlook_header_block(lines, i):
            break
        if _ATTRIBUTION.match(line):
            break
        if line.lstrip().lower().startswith("on ") and _ATTRIBUTION.match(joined) and len(line) < 200:
            break
        if not line.lstrip().startswith(">"):
            own.append(line)
        i += 1
    return own, None


def _outlook_header_block(lines: list[str], i: int) -> bool:
    """Outlook's quoted header: "From: ..." then Sent/Date, To, Subject within a few lines."""
    m = _HEADER_LINE.match(lines[i])
    if not m or m.group(1).lower() not in _FROM_WORDS:
        return False
    following = [_HEADER_LINE.match(x) for x in lines[i + 1 : i + 6]]
    kinds = {f.group(1).lower() for f in following if f}
    return bool(
        kinds & {"sent", "date", "datum", "envoyé", "envoye", "enviado", "data", "gesendet"}
    ) and bool(kinds & {"subject", "assunto", "objet", "betreff", "asunto", "to", "an", "para"})


def _read_forward(lines: list[str]) -> _Forward:
    """The forwarded header lines (From:, Date:, Subject:...) and the text below them."""
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    name, address = "", None
    while i < len(lines):
        m = _HEADER_LINE.match(lines[i])
        if not m:
            break
        if m.group(1).lower() in _FROM_WORDS and address is None:
            name, address = _forwarded_from(m.group(2))
        i += 1
        # a long header value wrapped onto the next line ("To: a, b,\n c")
        while i < len(lines) and lines[i].startswith((" ", "\t")) and lines[i].strip():
            i += 1
    inner, deeper = _cut_quotes(lines[i:], forward_subject=False)
    if deeper is not None and (deeper.address or deeper.text.strip()):
        return deeper  # a forward of a forward: the innermost sender is the requester
    return _Forward(name, address, "\n".join(inner))


def _forwarded_from(value: str) -> tuple[str, str | None]:
    value = value.replace("*", "").replace("mailto:", "")
    m = _EMAIL_IN_TEXT.search(value)
    address = _valid_address(m.group(0)) if m else None
    name = value[: m.start()] if m else value
    name = clean_header_text(name.strip(" <[\"'(\t"), 100).strip(" <[\"'")
    return _name_like(name) or "", address


def _attached_forward(inner: Message) -> _Forward:
    head = _Headers(inner)
    pairs = head.addresses("from")
    name, address = pairs[0] if pairs else ("", None)
    texts = []
    for part in inner.walk() if inner.is_multipart() else [inner]:
        if _content_type(part) in ("text/plain", "text/html") and not _is_attachment(
            part, _content_type(part)
        ):
            text = _part_text(part, [])
            if text:
                texts.append(text)
            if _content_type(part) == "text/plain":
                break
    own, _ = _cut_quotes(_normalise_text("\n".join(texts)).splitlines(), forward_subject=False)
    return _Forward(_name_like(name) or "", address, "\n".join(own))


def _strip_disclaimers(text: str) -> str:
    paragraphs = re.split(r"\n\s*\n", text)
    kept = [p for p in paragraphs if not _DISCLAIMER.search(p)]
    return "\n\n".join(kept).strip()


def _signature(text: str) -> tuple[str, int]:
    """The lines after the last sign-off ("Kind regards,") or the "-- " delimiter, at most ten,
    and where that sign-off starts; without one, a short last paragraph."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i].rstrip("\n")
        if line.rstrip() == "--":
            return "".join(lines[i + 1 : i + 11]).strip("\n"), offsets[i]
        m = _SIGN_OFF.match(line)
        if m and len(line) < 60:
            start = [m.group("name") + "\n"] if m.group("name") else []
            return "".join([*start, *lines[i + 1 : i + 11]]).strip("\n"), offsets[i]
    breaks = list(re.finditer(r"\n[ \t]*\n", text.rstrip()))
    m = breaks[-1] if breaks else None
    if m:
        last = text[m.end() :].strip().splitlines()
        if 0 < len(last) <= 6 and all(len(x) <= 60 for x in last) and "?" not in text[m.end() :]:
            return "\n".join(last), m.end()
    return "", len(text)


def _for_matching(text: str) -> str:
    """Lower-cased, one line, addresses and links removed ("...@example.co.uk" is not a country)."""
    text = _EMAIL_IN_TEXT.sub(" ", text)
    text = re.sub(r"(?:https?://|www\.)\S+", " ", text, flags=re.IGNORECASE)
    return " ".join(text.lower().split())[:100_000]


def _classification_text(subject: str, requester: _Requester) -> str:
    """What the type rules and the statistical second opinion read: the subject, a forwarder's
    note and what the requester wrote (quotes, disclaimers and footers already cut)."""
    # an auto-reply's subject quotes ours ("Out of office: Your subject access request")
    subject_words = "" if _AUTO_SUBJECT.match(subject) else _REPLY_PREFIX.sub("", subject)
    return _for_matching(f"{subject_words}\n{requester.note}\n{requester.text}")


def classification_text(raw: bytes, policy: MailboxPolicy | None = None) -> str:
    """The text ``parse_message`` classifies, for building the second opinion's training set
    (intake/training/extract.py). Personal data: never log or print it."""
    policy = policy or MailboxPolicy()
    msg = BytesParser(policy=email_policy.compat32).parsebytes(raw)
    head = _Headers(msg)
    subject = clean_header_text(head.get("subject"), 200)
    walk = _walk(msg, policy)
    return _classification_text(subject, _split_requester(_body_text(walk).text, subject, head, walk))


# --------------------------------------------------------------------------------------------
# Request type: phrases with weights


@dataclass(frozen=True)
class Rule:
    label: str  # what a privacy officer would call it; reasons quote it
    target: RequestType
    weight: int
    pattern: re.Pattern[str]


def _r(label: str, target: RequestType, weight: int, *alternatives: str) -> Rule:
    """One row of the table: a label for reasons, the request type, a weight, phrasings."""
    return Rule(label, target, weight, re.compile("|".join(alternatives), re.IGNORECASE))


ACC, ERA, REC = RequestType.ACCESS, RequestType.ERASURE, RequestType.RECTIFICATION
POR, RES, OBJ = RequestType.PORTABILITY, RequestType.RESTRICTION, RequestType.OBJECTION
OPT, LIM = RequestType.OPT_OUT_SALE_SHARING, RequestType.LIMIT_SENSITIVE
#: what people call their personal data, typos included
_DATA = (
    r"(?:personal |personel |persnal |pesonal )?"
    r"(?:data|info|information|informations|details|records|file|files)"
)
_ME = r"(?:about|on|of|for) me\b"
_ERASE_VERBS = (
    r"delete|deleted|deleting|erase|erased|erasing|remove|removed|removing|wipe|wiped|purge|purged|destroy"
)
_PROVIDER = r"(?:provider|company|service|app|supplier|network|bank|controller|operator|platform|carrier)"

TYPE_RULES: list[Rule] = [
    # access: GDPR Art 15, DPA 2018 s.45, CCPA right to know, LGPD Art 18 I-II, PIPEDA 4.9
    _r("subject access request", ACC, 5, r"\b(?:data )?subject access(?: request)?\b", r"\bd?sar\b"),
    _r(
        "right of access",
        ACC,
        4,
        r"\bright (?:of|to) access\b",
        r"\baccess request\b",
        r"\brequest(?:ing)? access\b",
    ),
    _r("copy of my data", ACC, 4, rf"\bcop(?:y|ies|py|ie) of (?:all |any )?(?:of )?(?:my|the) {_DATA}"),
    _r("access to my data", ACC, 4, rf"\baccess to (?:all )?(?:of )?(?:my|the) {_DATA}"),
    _r(
        "what data do you hold",
        ACC,
        4,
        r"\b(?:what|which) (?:personal |kind of |sort of |types? of )?"
        r"(?:data|info|information|details|records)\b"
        r"(?:\W+\w+){0,4}?\W+(?:hold|held|have|got|keep|kept|store|stored|collect|collected|process|processed)\b",
        r"\bwhat (?:do )?you know about me\b",
        rf"\b(?:tell|show|let) me (?:know )?(?:what|everything|all)\b(?:\W+\w+){0, 4}?\W+{_ME}",
    ),
    _r(
        "see my file",
        ACC,
        3,
        rf"\b(?:see|view|inspect|look at|obtain|receive|download) (?:all )?(?:of )?(?:my|the) {_DATA}",
    ),
    _r(
        "held about me",
        ACC,
        2,
        r"\b(?:hold|held|holding|have|has|got|keep|kept|collected|gathered|stored|process|processed|processing"
        rf"|use|used) {_ME}",
        r"\bme concernant\b",
    ),
    _r(
        "where it came from, who it went to",
        ACC,
        2,
        r"\bwhere you got (?:it|them|my \w+) from\b",
        r"\bwho you(?:'ve| have)? (?:shared|disclosed|given|passed|sold) (?:it|them|my \w+)\b",
        r"\brequest(?:ing)?:? (?:a copy of |copies of )?(?:all )?(?:of )?(?:my |the )?"
        r"personal (?:data|information)\b",
    ),
    _r("Article 15", ACC, 5, r"\bart(?:icle|\.)? ?15\b", r"\bsection (?:7|45) of the data protection act"),
    _r(
        "right to know",
        ACC,
        4,
        r"\bright to know\b",
        r"\brequest to know\b",
        r"\bcategories of personal information\b",
        r"\bspecific pieces of personal information\b",
    ),
    _r("confirm whether you process", ACC, 3, r"\bconfirm (?:whether|if)(?: or not)? you (?:are )?process"),
    _r(
        "send me my data",
        ACC,
        2,
        r"\b(?:send|give|provide) me (?:with )?(?:a copy of |a list of )?(?:all )?(?:of )?(?:the |my )?"
        + _DATA,
    ),
    _r(
        "access (Portuguese, Spanish, French, German)",
        ACC,
        4,
        r"\bacesso (?:a|aos|à|às) (?:meus |minhas )?(?:dados|informa)",
        r"confirma[çc][ãa]o da exist[êe]ncia",
        r"\bquais (?:s[ãa]o )?(?:os )?(?:meus )?dados\b",
        r"\bacceso a mis datos\b",
        r"\bqu[ée] datos\b",
        r"droit d'acc[èe]s",
        r"acc[èe]s [àa] (?:mes|toutes mes) (?:donn[ée]es|renseignements)",
        r"\bcopie (?:de|des) (?:toutes )?(?:mes|les) (?:donn[ée]es|informations|renseignements)",
        r"\bauskunft",
        r"kopie meiner",
    ),
    # erasure: GDPR Art 17, CCPA right to delete, LGPD Art 18 IV and VI
    _r("right to be forgotten", ERA, 5, r"\bright to (?:be forgotten|erasure|deletion|delete)\b"),
    _r("Article 17", ERA, 5, r"\bart(?:icle|\.|[íi]culo)? ?17\b"),
    _r(
        "deletion request",
        ERA,
        4,
        r"\b(?:request(?:ing)?|requests) to (?:delete|erase)\b",
        r"\b(?:deletion|erasure) request\b",
        r"\brequest (?:for|of) (?:the )?(?:deletion|erasure)\b",
    ),
    _r(
        "delete my data or account",
        ERA,
        4,
        rf"\b(?:{_ERASE_VERBS}|get rid of)\b(?:\W+\w+){{0,4}}?\W+"
        r"(?:data|information|info|details|account|accounts|records|profile|everything|database|databases"
        r"|systems|me from)\b",
        rf"\b(?:data|information|info|details|account|records|profile)\b(?:\W+\w+){{0,2}}?\W+(?:{_ERASE_VERBS})\b",
    ),
    _r(
        "delete it",
        ERA,
        4,
        r"\b(?:want|like|need|have|get) (?:them|it|this|those|these|all of it|everything|all that) (?:\w+ )?"
        r"(?:erased|deleted|removed|wiped|destroyed)\b",
    ),
    _r("erase or delete", ERA, 1, r"\b(?:erase|erasure|deletion|delete|forget me|get rid of)\b"),
    _r("close my account", ERA, 2, r"\b(?:close|cancel|terminate) (?:down )?(?:my|our|the) account\b"),
    _r(
        "erasure (Portuguese, Spanish, French, German)",
        ERA,
        4,
        r"\bexclu(?:ir|s[ãa]o|am|a|irem)\b",
        r"\belimina(?:r|[çc][ãa]o|ci[óo]n)\b",
        r"\bapag(?:ar|uem|ue)\b",
        r"\bsupresi[óo]n\b",
        r"\bsuprim(?:ir|an)\b",
        r"\bborr(?:ar|en)\b",
        r"\bsuppression\b",
        r"\bsupprimer\b",
        r"\beffac(?:er|ement)\b",
        r"droit [àa] l'oubli",
        r"\bl[öo]sch(?:en|ung)\b",
        r"recht auf vergessenwerden",
    ),
    # rectification: GDPR Art 16, CCPA right to correct, LGPD Art 18 III
    _r(
        "Article 16 rectification",
        REC,
        5,
        r"\bright to (?:rectification|correct|correction)\b",
        r"\bart(?:icle|\.)? ?16\b",
    ),
    _r(
        "rectify",
        REC,
        4,
        r"\brectif(?:y|ied|ication)\b",
        r"\brequest to correct\b",
        r"\bcorrection request\b",
        r"\brequest for (?:a )?correction\b",
        r"\bberichtig",
        r"\bcorre[çc][ãa]o\b",
    ),
    _r(
        "correct my details",
        REC,
        3,
        r"\b(?:correct|correcting|update|updating|amend|amending|change|changing|fix|fixing|corrigir|atualizar)"
        r"\b(?:\W+\w+){0,4}?\W+(?:address|name|surname|spelling|spelt|date of birth|birth date|dob|birthday"
        r"|email address|phone number|mobile number|details|record|records|information|endere[çc]o)\b",
        r"\b(?:name|surname|address|email address|number) (?:has |have )?changed\b",
        r"\bchange of (?:name|surname|address)\b",
        r"\bname change\b",
    ),
    _r(
        "put it right",
        REC,
        3,
        r"\bput (?:it|this|that|them) right\b",
        r"\bset (?:it|this|the record) straight\b",
        r"\b(?:be |been |get |got )?(?:corrected|amended|rectified)\b",
    ),
    _r(
        "recorded as", REC, 2, r"\b(?:recorded|listed|shown|registered|spelt|spelled) as\b", r"\binstead of\b"
    ),
    _r(
        "inaccurate",
        REC,
        2,
        r"\b(?:inaccurate|incorrect|wrong|misspel\w*|mis-spel\w*|out of date|outdated|spelt wrong"
        r"|spelled wrong|not accurate|errone\w+|got married)\b",
    ),
    # portability: GDPR Art 20, LGPD Art 18 V
    _r(
        "data portability",
        POR,
        5,
        r"\bportab(?:ility|le)\b",
        r"\bart(?:icle|\.)? ?20\b",
        r"portabilidade",
        r"portabilit[ée]",
        r"daten[üu]bertragbarkeit",
    ),
    _r(
        "transfer to another provider",
        POR,
        4,
        r"\b(?:transfer|transferred|move|moving|port|porting|send|transmit|give|take)\b(?:\W+\w+){0,5}?\W+"
        rf"(?:to|over to) (?:my |a |the )?(?:new|another|other|different) {_PROVIDER}",
    ),
    _r(
        "machine-readable export",
        POR,
        3,
        r"\bmachine[- ]readable\b",
        r"\bstructured,? commonly used\b",
        r"\bexport (?:all )?(?:of )?(?:my|our)\b",
        r"\b(?:csv|json|spreadsheet|excel)\b",
    ),
    # restriction: GDPR Art 18
    _r(
        "restrict processing",
        RES,
        4,
        r"\brestrict(?:ed|ing|ion)?\b(?:\W+\w+){0,3}?\W+(?:processing|use|using)\b",
        r"\brestriction\b",
        r"\bart(?:icle|\.)? ?18\b(?!\W*(?:da |of the |of )?(?:lgpd|lei))",
        r"limitation du traitement",
        r"einschr[äa]nkung",
    ),
    _r(
        "stop processing",
        RES,
        3,
        r"\b(?:stop|cease|suspend|pause|freeze|block)(?:\W+\w+){0,1}?\W+(?:processing|using|use)\b",
        r"\bfreeze (?:my|the|all) (?:personal )?(?:data|information|details|records)\b",
    ),
    _r(
        "limit how my data is used",
        RES,
        3,
        r"\blimit\b(?:\W+\w+){0,4}?\W+(?:used|use|using|processed|processing)\b(?!\W+of (?:my )?sensitive)",
    ),
    _r("restrict", RES, 1, r"\brestrict\w*\b", r"\bfreeze\b"),
    _r(
        "while accuracy is checked, legal claims",
        RES,
        2,
        r"\blegal claims?\b",
        r"\bwhile you (?:check|verify|investigate|look into)\b",
        r"\bcontest\w* the accuracy",
    ),
    # objection: GDPR Art 21 (direct marketing: absolute, 21(2)-(3))
    _r(
        "right to object",
        OBJ,
        4,
        r"\bright to object\b",
        r"\bart(?:icle|\.)? ?21\b",
        r"\bobject(?:ing)? to\b",
        r"\bobjection\b",
        r"\bopposition\b",
        r"\bm'oppose\b",
        r"\boposi[çc][ãa]o\b",
        r"\bwiderspr(?:uch|eche)\b",
    ),
    _r(
        "direct marketing",
        OBJ,
        3,
        r"\bdirect marketing\b",
        r"\b(?:marketing|sales) (?:e-?mails?|calls?|texts?|messages?|communications?|lists?|material|sms)\b",
        r"\bpromotional\b",
        r"\bnewsletters?\b",
        r"\bunsubscribe\b",
        r"\btake me off\b",
        r"\bmailing lists?\b",
        r"\bcold call\w*",
        r"\bstop (?:sending|emailing|calling|texting|contacting|messaging|ringing|phoning)\b",
    ),
    _r(
        "opt out of marketing",
        OBJ,
        4,
        r"\bopt(?:ed|ing)?[- ]?out of (?:all |any |your )?(?:marketing|e-?mails|newsletters|communications"
        r"|promotions|offers|texts|calls)",
    ),
    _r("marketing, profiling", OBJ, 2, r"\bprofiling\b", r"\blegitimate interests?\b", r"\bmarketing\b"),
    # opt-out of sale or sharing: CCPA 1798.120, VCDPA, CPA, CTDPA, UCPA
    _r(
        "do not sell or share",
        OPT,
        5,
        r"\bdo not (?:sell|share)\b",
        r"\bdon't (?:sell|share)\b",
        r"\bstop (?:selling|sharing)\b",
        r"\b(?:sale|selling|sell) (?:and|or|/) (?:shar\w+)\b",
        r"\bsale of (?:my |our )?(?:personal )?(?:data|info)",
        r"\bselling (?:of )?(?:my |our )?(?:personal )?(?:data|info)",
    ),
    _r(
        "targeted advertising",
        OPT,
        4,
        r"\btargeted (?:advertising|ads|advertisements)\b",
        r"\bcross[- ]context behaviou?ral\b",
        r"\bsharing (?:of )?my (?:personal )?(?:data|info)",
        r"\bshar(?:e|ing)\b(?:\W+\w+){0,4}?\W+(?:for|with) (?:\w+ )?(?:advertis\w+|advertisers|marketers)",
    ),
    _r("opt out", OPT, 2, r"\bopt(?:ed|ing)?[- ]?out\b"),
    _r("global privacy control", OPT, 3, r"\bglobal privacy control\b", r"\bgpc\b"),
    # limit the use of sensitive personal information: CCPA 1798.121
    _r(
        "limit use of sensitive information",
        LIM,
        6,
        r"\blimit (?:the )?(?:use|using|usage)(?: and disclosure)? of (?:my )?sensitive",
    ),
    _r("sensitive personal information", LIM, 3, r"\bsensitive (?:personal )?(?:information|data|info)\b"),
    _r(
        "sensitive categories",
        LIM,
        1,
        r"\bprecise geolocation\b",
        r"\bhealth (?:information|data|info)\b",
        r"\bbiometric\b",
        r"\bsexual orientation\b",
        r"\bsocial security number\b",
        r"\bunion membership\b",
        r"\breligious beliefs\b",
    ),
]

#: Verbs for what an organisation does with data, in every form people write them.
_HOLD = (
    r"(?:hold|holds|held|holding|have|has|having|had|got|keep|keeps|kept|keeping|store|stores|stored"
    r"|storing|collect|collects|collected|collecting|process|processes|processed|processing|retain"
    r"|retains|retained|retaining|maintain|maintains|maintained|possess|possesses|gather|gathered"
    r"|record|records|recorded|obtain|obtained|obtaining|receive|received|acquire|acquired|source"
    r"|sourced|get|gets|getting|saved|save|saves|treat|treating|treated|handle|handling|handled)"
)
_DATA_WORDS = r"(?:data|info|information|details|records|files?|particulars)"
#: What people ask to see besides "my data": the recordings, the footage, the notes.
_MATERIAL = (
    r"(?:e-?mails?|letters?|notes|recordings?|calls?|correspondence|statements?|footage|photos?|images?"
    r"|contracts?|communications?|messages?|chats?|logs?|history|everything|anything|transcripts?)"
)
_PLAIN_ERASE = r"(?:delete|erase|remove|wipe|purge|destroy|scrub|expunge|get rid of|dispose of)"
_CONTACT_KINDS = (
    r"(?:calls?|phone calls|e-?mails?|texts?|sms|messages?|marketing|offers|promotions|letters|junk"
    r"|spam|leaflets|adverts?|advertising|newsletters?|contact|mail|post)"
)

#: The same rights in the wider phrasing people use: inflections, "it"/"them" for the data,
#: what they want to see rather than "data", other European languages. Read after misspelt
#: request words are repaired (intake/typos.py).
WIDER_TYPE_RULES: list[Rule] = [
    # access
    _r(
        "what data do you hold (any wording)",
        ACC,
        4,
        rf"\b(?:what|which|whatever)\b(?:\W+\w+){{0,3}}?\W+{_DATA_WORDS}\b(?:\W+\w+){{0,6}}?\W+{_HOLD}\b",
        rf"\b(?:what|which) (?:\w+ )?{_DATA_WORDS} (?:is|are) (?:being )?(?:held|kept|stored|processed)\b",
        r"\bwhat (?:have|do|did) you (?:got|have|hold|keep|know|store|collect)\b",
        r"\bwhat (?:\w+ ){0,3}?(?:on file|on record|on your (?:system|systems|records|database|files))\b",
    ),
    _r(
        "give me my data (any wording)",
        ACC,
        3,
        r"\b(?:furnish|provide|send|supply|give|share|forward|receive|obtain|get|see|view|know|have|access"
        r"|disclose|release|produce|make available)\b(?:\W+(?:me|to me|with|the|a|an|full|complete|list"
        r"|copy|copies|details|summary|overview|report|record|of|all|any|everything|available)){0,6}\W+"
        r"(?:my|all my) (?:own )?(?:personal |private |customer )?(?:data|info|information|details|records"
        r"|file|files|particulars)\b",
        r"\b(?:quels?|quelles?) (?:sont les )?(?:donn[ée]es|informations|renseignements)\b",
        r"\b(?:d[ée]tenez|conservez|avez) (?:\w+ ){0,3}?(?:[àa] mon sujet|sur moi|me concernant)\b",
    ),
    _r(
        "information relating to me",
        ACC,
        3,
        r"\b(?:provide|send|supply|disclose|furnish|give)\b(?:\W+\w+){0,3}?\W+(?:personal )?"
        r"(?:data|information|records)\b(?:\W+\w+){0,3}?\W+"
        r"(?:relating to|concerning|regarding|about|on|of) me\b",
    ),
    _r(
        "everything you hold",
        ACC,
        2,
        rf"\b(?:all|any|everything|anything)\b(?:\W+\w+){{0,3}}?\W+(?:that )?(?:you|your company|you guys)"
        rf"(?: \w+)? {_HOLD}\b",
        rf"\b{_HOLD} (?:\w+ )?{_ME}",
        r"\b(?:data|information|records) (?:you )?"
        r"(?:hold|held|have|keep|kept|store|stored|process|processed)\b",
        r"\b(?:relating to|concerning|regarding|pertaining to) me\b",
    ),
    _r(
        "find out what you hold",
        ACC,
        2,
        r"\bfind out (?:what|which|whether|if|how)\b",
        r"\b(?:what|which) (?:\w+ )?(?:purposes?|finality|reasons?)\b"
        r"(?:\W+\w+){0,4}?\W+(?:use|using|process)",
    ),
    _r(
        "asks for recordings or footage",
        ACC,
        2,
        r"\b(?:request|requesting|want|like|need|ask for|obtain|get|receive|see|view|have|send|give|provide)"
        r"\b(?:\W+\w+){0,3}?\W+(?:footage|recordings?|transcripts?|notes)\b",
    ),
    _r(
        "recordings, footage, notes",
        ACC,
        2,
        r"\b(?:cctv|camera|video|bodycam|body[- ]worn)\b(?:\W+\w+){0,3}?\W+(?:footage|images?|recordings?)\b",
        r"\bfootage\b",
        r"\b(?:call|phone|telephone|voice) recordings?\b",
        r"\brecordings? of (?:my|the|our|all|any) (?:\w+ )?(?:calls?|conversations?)\b",
        r"\btranscripts?\b",
    ),
    _r(
        "copies of what you hold",
        ACC,
        4,
        rf"\bcop(?:y|ies) of (?:all |any |the |my |our |your )*(?:\w+ )?{_MATERIAL}\b",
        r"\b(?:request|obtain|get|receive|want|like|need|ask for|have) (?:a |an )?(?:full |complete )?"
        r"(?:copy|copies|access)\b(?! of (?:the |your )?(?:policy|terms|contract|invoice|bill|receipt))",
    ),
    _r(
        "send it to me",
        ACC,
        2,
        r"\b(?:send|give|provide|forward|e-?mail|post|supply|disclose|share|show) (?:me|to me)\b"
        rf"(?:\W+\w+){{0,4}}?\W+(?:{_DATA_WORDS}|{_MATERIAL}|copy|copies)\b",
        r"\bdisclos\w* (?:to me|of (?:all |the |my )?(?:personal )?(?:data|information))",
        r"\bfreedom of information\b|\bfoia?\b",
    ),
    _r(
        "access (Spanish, Italian, Dutch, French, German, Polish)",
        ACC,
        4,
        r"\bderecho de acceso\b",
        r"\bacceso a (?:mis|los|todos mis) datos\b",
        r"\bdiritto di accesso\b",
        r"\baccesso ai (?:miei )?dati\b",
        r"\bquali dati\b",
        r"\binzage(?:verzoek)?\b",
        r"\bwelke (?:persoons)?gegevens\b",
        r"\bwelche (?:personenbezogenen |pers[öo]nlichen )?daten\b",
        r"\bquelles (?:sont les )?(?:donn[ée]es|informations)\b",
        r"\bcommunication de (?:mes|toutes mes) donn[ée]es\b",
        r"\bdost[ęe]p do (?:moich )?danych\b",
        r"\bkopi[ęe] (?:moich )?danych\b",
    ),
    # erasure
    _r(
        "forget me",
        ERA,
        4,
        r"\bforget (?:about )?(?:me|i exist|all about me|my \w+)\b",
        r"\b(?:remove|delete|erase) all traces?\b|\b(?:all|every|any) traces? of me\b",
    ),
    _r(
        "delete it",
        ERA,
        2,
        rf"\b{_PLAIN_ERASE}\w* (?:of )?(?:it|them|this|that|all|everything|all of it|the lot|the rest)\b",
        r"\b(?:destroy|dispose of|shred)\b",
    ),
    _r(
        "ask for deletion",
        ERA,
        4,
        r"\b(?:request|requesting|requests|ask|asking|demand|demanding|seek|seeking|want|require|wish)"
        r"\w* (?:for )?(?:the |an |immediate |complete |full |permanent )*(?:deletion|erasure|removal"
        r"|destruction)\b",
        r"\bexclu(?:de|ding) (?:all )?(?:of )?(?:my|me)\b",
        r"\bno (?:reason|need|right|business|basis|legal basis) (?:\w+ ){0,2}?to (?:keep|hold|store|retain"
        r"|have|process)\b",
    ),
    _r(
        "I want it gone",
        ERA,
        4,
        r"\b(?:want|like|need) (?:it|them|this|my \w+|all my \w+|everything) (?:\w+ )?(?:gone|deleted|erased"
        r"|removed|wiped)\b",
    ),
    _r(
        "stop holding my data",
        ERA,
        3,
        rf"\bno longer (?:want (?:you|your company) to )?(?:{_HOLD}|have) (?:any of )?(?:my|any)\b",
        rf"\b(?:don't|do not|dont) want (?:you|your company) to (?:{_HOLD}) (?:any of )?(?:my|any)\b",
        r"\bwhy (?:do|are|would) you still (?:have|hold|keep|holding|keeping|storing|store|got)\b",
        r"\b(?:deactivate|shut down|shut) (?:my|the) (?:account|profile)\b",
    ),
    _r(
        "erasure (Italian, Dutch, Polish, Spanish)",
        ERA,
        4,
        r"\bcancellazione\b",
        r"\bcancellare (?:i |tutti i )?(?:miei )?dati\b",
        r"\bdiritto all'oblio\b",
        r"\bverwijder\w*\b",
        r"\bvergetelheid\b",
        r"\busuni[ęe]cie\b|\busun[ąa][ćc]\b",
        r"\bderecho al olvido\b",
    ),
    # rectification
    _r(
        "put it right (any wording)",
        REC,
        2,
        r"\b(?:amend|correct|update|fix|change|rectify|sort out|sort) (?:it|them|this|that|these|those"
        r"|the (?:error|mistake|typo|record|records|entry|spelling))\b",
        r"\bshould (?:read|say|show)\b",
        r"\bthe (?:correct|right|proper|actual|real) (?:\w+ ){0,3}?(?:is|are|should be)\b",
        r"\b(?:typo|typos|spelling mistake)\b",
        r"\b(?:incorrectly|wrongly|mistakenly)\b",
        r"\bnot up to date\b|\bno longer (?:correct|accurate|valid|current|right)\b|\bincomplete\b",
    ),
    _r(
        "new details",
        REC,
        2,
        r"\bnew (?:home |postal |e-?mail |phone |mobile )?(?:address|surname|name|number|e-?mail)\b",
        r"\b(?:i've|i have|i|we've|we have|we) (?:recently |just )?(?:moved|relocated)\b",
        r"\b(?:got|recently|just) (?:married|divorced)\b",
        r"\bdeed poll\b|\bmaiden name\b",
        r"\bi now live\b|\bnow living at\b|\bmy (?:current|correct|new) address\b",
    ),
    _r(
        "change it from this to that",
        REC,
        3,
        r"\b(?:change|changing|update|updating|amend|amending|correct|correcting|alter|altering|switch)\b"
        r"(?:\W+\w+){0,4}?\W+from\b(?:\W+\S+){1,4}?\W+to\b",
        r"\b(?:recorded|listed|shown|registered|spelt|spelled|written|entered|stored|saved|noted|appears)"
        r"(?: \w+){1,3} as\b",
        r"\bbut (?:it |this |that )?(?:must|should|ought to) (?:be|read|say)\b",
        r"\b(?:adapt|modify|alter|adjust) (?:it|this|that|them|my \w+)\b",
        r"\b(?:change|update|amend|correct) (?:\w+ ){0,2}?(?:title|gender|pronouns?|initials?|middle name)\b",
    ),
    _r(
        "you have it wrong",
        REC,
        3,
        r"\b(?:spelt|spelled|spelling|got|have|has|show|shows|showing|list|lists|listed)\b(?:\W+\w+){0,3}?\W+"
        r"(?:wrong|wrongly|incorrect|incorrectly|inaccurate|inaccurately|misspelt|misspelled)\b",
    ),
    _r(
        "rectification (Spanish, Italian, Dutch, French, German, Portuguese)",
        REC,
        4,
        r"\brectificaci[óo]n\b|\brectificar\b|\bcorregir\b",
        r"\brettifica\w*\b|\bcorreggere\b",
        r"\brectificatie\b|\bcorrigeren\b",
        r"\brectifier\b|\bcorriger\b",
        r"\bkorrigier\w*\b",
        r"\bretifica[çc][ãa]o\b|\bretificar\b",
    ),
    # portability
    _r(
        "send it straight to the new provider",
        POR,
        4,
        r"\b(?:transmit|transfer|send|pass|port|move|give|hand|forward)\w*\b(?:\W+\w+){0,4}?\W+"
        r"(?:directly|straight|direct) to\b",
        r"\b(?:bring|carry|reuse|re-use|import|upload|take)\b(?:\W+\w+){0,5}?\W+"
        rf"(?:to|into|with) (?:my |a |the )?(?:new|another|other|different) {_PROVIDER}",
        r"\bin a (?:\w+ )?(?:format|file) (?:that )?(?:i|we) can "
        r"(?:use|import|take|reuse|re-use|upload|open)\b",
    ),
    _r(
        "a file another company can load",
        POR,
        3,
        r"\b(?:in|as) (?:a|an|one) (?:\w+ )?(?:file|format|export|download)\b(?:\W+\w+){0,5}?\W+"
        r"(?:load|import|upload|read|reuse|re-use|use|take|bring|move|transfer)\b",
        r"\b(?:load|import|upload) (?:it|them|my \w+)? ?into (?:their|the new|another|a new)\b",
    ),
    _r(
        "switching provider",
        POR,
        2,
        rf"\bswitch\w* (?:over )?(?:to )?(?:a |another |my |the )?(?:new |different |other )?"
        rf"(?:\w+ )?{_PROVIDER}",
        r"\bexport\w*\b",
        r"\bxml\b",
    ),
    _r(
        "portability (other languages)",
        POR,
        5,
        r"\bportab\w+",
        r"\bportabilit[àa]\b",
        r"\boverdraagbaarheid\b",
        r"\bprzenoszenia danych\b",
    ),
    # restriction
    _r(
        "use it for nothing else",
        RES,
        4,
        r"\b(?:don't|do not|must not|mustn't|should not|shouldn't|never|not to) use (?:it|them|this|my \w+"
        r"|any of (?:it|my \w+))(?: \w+){0,2} (?:for anything|other than|except|in the meantime)",
        r"\b(?:only|just) (?:store|keep|hold|retain) (?:it|them|my)\b",
        r"\b(?:other than|except for|except|beyond) (?:simply |just )?"
        r"(?:storing|keeping|holding|retaining)\b",
        r"\b(?:keep|preserve|retain|hold) (?:it|them|my (?:\w+ )?(?:data|information|records))\b"
        r"(?:\W+\w+){0,5}?\W+but (?:do not|don't|not|stop|never)\b",
        r"\b(?:put|place) (?:a )?(?:hold|freeze|block|restriction) on\b",
        r"\b(?:put|place|keep)\b(?:\W+\w+){0,3}?\W+on hold\b",
        r"\b(?:use|processing|data|information)\b(?:\W+\w+){0,2}?\W+"
        r"(?:restricted|frozen|blocked|suspended)\b",
        r"\b(?:do not|don't|must not|never|not) (?:\w+ ){0,12}?use (?:it|them|this|my \w+) "
        r"(?:in any (?:other )?way|at all|for any(?:thing)?)\b",
        r"\b(?:storage|storing it) only\b|\bonly (?:for )?storage\b",
        r"\bnothing (?:should|must|may) be (?:changed|used|processed|deleted)\b",
    ),
    _r(
        "until the dispute is settled",
        RES,
        2,
        r"\b(?:court|legal) (?:case|proceedings|action|claim)\b|\blawsuit\b|\blitigation\b|\btribunal\b",
        r"\buntil (?:the |my |this |our )?(?:dispute|complaint|investigation|matter|appeal|claim|case"
        r"|objection)\b",
        r"\buntil (?:it|this|that|they|the \w+|my \w+)(?: \w+)? (?:is|are|has been|have been"
        r"|finish\w*|conclude\w*|decide\w*|resolve\w*) ?(?:resolved|settled|sorted|investigated|decided"
        r"|concluded|finished|closed|complete|over)?\b",
        r"\bwhile (?:the )?(?:\w+ )?(?:investigate|investigates|investigating|investigation|check|checks"
        r"|review|reviews|look into|looks into)\b",
        r"\b(?:disput|contest)(?:e|es|ed|ing)\b",
        r"\bpending (?:the )?(?:outcome|investigation|resolution|review|result|verification)\b",
    ),
    _r(
        "restriction (other languages)",
        RES,
        4,
        r"\blimitaci[óo]n del tratamiento\b",
        r"\blimitazione\b",
        r"\bbeperking\b",
        r"\blimita[çc][ãa]o do tratamento\b|\bbloqueio\b",
        r"\bograniczeni\w+ przetwarzania\b",
    ),
    # objection
    _r(
        "no more marketing",
        OBJ,
        4,
        rf"\b(?:don't|do not|dont|no longer) (?:want|wish) (?:to (?:receive|get|hear)\s)?(?:any )?"
        rf"(?:more |further |any )?(?:\w+ )?{_CONTACT_KINDS}\b",
        rf"\bno (?:more|further) (?:\w+ )?{_CONTACT_KINDS}\b",
        r"\b(?:take|get|strike|cross|remove) (?:me|my (?:\w+ )?(?:name|number|details|email|address))"
        r"(?: \w+){0,2} off\b",
        r"\b(?:call|calling|mailing|marketing|contact|sales|distribution) list\b",
    ),
    _r(
        "I object",
        OBJ,
        4,
        r"\bi (?:hereby |strongly |formally )?object\b(?! to\b)",
        r"\bobject(?:s|ed|ing)? (?:against|on the grounds)\b",
        r"\bwithdraw\w* (?:my |all )?(?:consent|permission)\b",
        r"\b(?:don't|do not|no longer) (?:give (?:my )?)?consent\b",
    ),
    _r(
        "no more of your mail",
        OBJ,
        4,
        rf"\bstop (?:all |the |these |those |your |any |sending |posting )*(?:\w+ )?(?:{_CONTACT_KINDS}"
        r"|catalogues?|catalogs?|brochures?|flyers?|leaflets?|surveys?)\b",
        r"\b(?:don't|do not|dont|never|please don't) (?:contact|call|email|e-mail|text|phone|ring|message"
        r"|write to|send) (?:me|us)\b",
        r"\bkeep (?:getting|receiving) (?:\w+ )?(?:offers|emails|e-mails|texts|calls|messages|marketing"
        r"|catalogues|leaflets|junk|spam)\b",
    ),
    _r(
        "stop contacting me",
        OBJ,
        3,
        r"\bstop\b(?:\W+\w+){0,3}?\W+(?:contacting|calling|emailing|e-mailing|texting|ringing|phoning"
        r"|bothering|pestering|spamming|sending|profiling|tracking|targeting|posting|mailing)\b",
        r"\bkeeps? (?:on )?(?:ringing|calling|emailing|texting|phoning|contacting|messaging) me\b",
        r"\bleave me alone\b|\bjunk mail\b",
    ),
    _r(
        "objection (other languages)",
        OBJ,
        4,
        r"\boposici[óo]n\b|\bme opongo\b",
        r"\bopposizione\b|\bmi oppongo\b",
        r"\bbezwaar\b",
        r"\bje m'oppose\b",
        r"\bsprzeciw\w*\b",
    ),
    # opt-out of sale or sharing
    _r(
        "no selling to third parties",
        OPT,
        4,
        r"\bopt (?:me|us|my \w+) out\b",
        r"\b(?:sell|sold|selling|sells|share|shared|sharing|going|passed|given)\b(?:\W+\w+){0,4}?\W+"
        r"(?:to|with) (?:\w+ )?(?:data brokers?|third[- ]part(?:y|ies)|advertisers|marketers|ad networks?)\b",
        r"\b(?:not|never) (?:to )?(?:sell|share)\b",
        r"\bmay not (?:sell|share)\b",
        r"\bright to opt[- ]?out\b|\byour privacy choices\b|\bopt[- ]out preference signal\b",
        r"\bopt[- ]?out (?:request|form)\b",
    ),
    _r(
        "data brokers, ad targeting",
        OPT,
        3,
        r"\bdata brokers?\b",
        r"\b(?:personali[sz]ed|interest[- ]based|behaviou?ral) (?:ads|advertising|advertisements)\b",
        r"\bad targeting\b",
        r"\bfor (?:money|profit)\b|\bmoneti[sz]\w*",
    ),
    # limit the use of sensitive personal information
    _r(
        "limit sensitive information (any wording)",
        LIM,
        5,
        r"\blimit\b(?:\W+\w+){0,5}?\W+sensitive\b",
        r"\bright to limit\b",
        r"\b(?:use|using|disclosure) of (?:my )?sensitive\b",
    ),
    _r(
        "limit, about sensitive categories",
        LIM,
        3,
        r"\blimit\b(?=.*\b(?:health|medical|religio\w*|biometric|genetic|racial|ethnic|sex life|sexual"
        r"|precise (?:geo)?location|social security|immigration|citizenship|union membership|face scan"
        r"|fingerprint))",
        r"\b(?:health|medical|religio\w*|biometric|genetic|racial|ethnic|sexual|precise location)\b"
        r"(?=.*\blimit\b)",
    ),
]
TYPE_RULES += WIDER_TYPE_RULES

#: "please don't delete my data", never "if you don't delete it I will complain"
_NEGATED_ERASURE = re.compile(
    r"(?<!if you )(?<!unless you )\b(?:do not|don't|dont|never|no need to)\s+(?:\w+\s+){0,2}?"
    r"(?:delete|erase|remove|close)\w*",
)
TYPE_THRESHOLD = 3
#: when the scores tie, the more specific request wins (a portability request also asks for a copy)
_TIE_ORDER = [LIM, OPT, POR, REC, RES, ERA, ACC, OBJ]


def _score_types(text: str) -> dict[RequestType, tuple[int, list[str]]]:
    # Read as written and with misspelt English request words repaired: a rule matching
    # either counts once ("acceso a mis datos" must stay Spanish, "delet my acount" be read).
    texts = {_NEGATED_ERASURE.sub(" ", t) for t in (text, repair_spelling(text))}
    scores: dict[RequestType, tuple[int, list[str]]] = {}
    for rule in TYPE_RULES:
        if any(rule.pattern.search(t) for t in texts):
            total, labels = scores.get(rule.target, (0, []))
            scores[rule.target] = (total + rule.weight, [*labels, rule.label])
    return scores


def _pick_type(
    scores: dict[RequestType, tuple[int, list[str]]],
) -> tuple[RequestType | None, list[RequestType], str]:
    ranked = sorted(
        (t for t, (s, _) in scores.items() if s >= TYPE_THRESHOLD),
        key=lambda t: (-scores[t][0], _TIE_ORDER.index(t)),
    )
    if not ranked:
        return None, [], "no request wording recognised"
    best = ranked[0]
    score, labels = scores[best]
    reason = f"type {best.value} ({', '.join(labels)}; score {score})"
    if len(ranked) > 1:
        reason += f"; also mentions {', '.join(t.value for t in ranked[1:])}"
    return best, ranked[1:], reason


#: Regimes with the opt-out of sale/sharing and targeted advertising (CCPA 1798.120, VA, CO, CT, UT)
#: and, in the CCPA, the right to limit the use of sensitive personal information (1798.121).
US_REGIMES = frozenset({Regime.CCPA, Regime.VCDPA, Regime.CPA, Regime.CTDPA, Regime.UCPA})
#: Where a regime lacks a type, the types that carry the same wish there, in order of preference
#: on a tie (LEGAL.md §1). UK/EU GDPR, LGPD: "opt me out of marketing" or "don't share it with
#: advertisers" is an objection (Art 21(2): direct marketing, profiling for it; LGPD Art 18 §2),
#: "only use my health data for the service" an objection or a restriction (LGPD "bloqueio"),
#: whichever its wording leans to. PIPEDA has neither an opt-out nor a restriction: withdrawing
#: consent (Sch 1 cl 4.3.8) is its objection. The US laws have no objection or restriction:
#: wording about selling, sharing, targeted ads or profiling is their opt-out, about sensitive
#: data (CCPA only) the right to limit.
_NEAREST_TYPE: dict[tuple[str, RequestType], tuple[RequestType, ...]] = {
    ("GDPR", OPT): (OBJ, RES),
    ("GDPR", LIM): (RES, OBJ),
    ("PIPEDA", OPT): (OBJ,),
    ("PIPEDA", LIM): (OBJ,),
    ("CCPA", RES): (LIM, OPT),
    ("CCPA", OBJ): (LIM, OPT),
    ("US", RES): (OPT,),
    ("US", OBJ): (OPT,),
}


def _family(regime: Regime | None) -> str | None:
    if regime is None:
        return None
    if regime is Regime.CCPA:
        return "CCPA"
    if regime in US_REGIMES:
        return "US"
    return "PIPEDA" if regime is Regime.PIPEDA else "GDPR"


def fit_type_to_regime(
    request_type: RequestType | None,
    also: list[RequestType],
    scores: dict[RequestType, tuple[int, list[str]]],
    regime: Regime | None,
) -> tuple[RequestType | None, list[RequestType], str | None]:
    """The request type as the regime names it: a type the law does not have becomes the one
    that carries the same wish there, chosen by which of them the wording scored higher for.
    In the US, an objection or restriction stays as read unless the wording also speaks of
    selling, sharing, ads or sensitive data (then it is the opt-out or the limit)."""
    family = _family(regime)
    if request_type is None or family is None:
        return request_type, also, None
    options = _NEAREST_TYPE.get((family, request_type), ())
    found = {t: scores.get(t, (0, []))[0] for t in options}
    nearest = request_type
    if family in ("CCPA", "US"):
        nearest = next((t for t in options if found[t] > 0), request_type)
    elif options:
        nearest = max(options, key=lambda t: (found[t], -options.index(t)))
    # what else it mentions, in the regime's words too (in the US as read: only the main wish is
    # re-read, since "stop the emails" beside "do not sell" is no opt-out of its own)
    lacking = family in ("GDPR", "PIPEDA")
    rest = [_NEAREST_TYPE[(family, t)][0] if lacking and (family, t) in _NEAREST_TYPE else t for t in also]
    rest = [t for t in dict.fromkeys(rest) if t is not nearest]
    if nearest is request_type:
        return nearest, rest, None
    if lacking:
        return nearest, rest, f"read as {nearest.value}: {regime} has no {request_type.value} right"
    return nearest, rest, f"read as {nearest.value}: the {regime} right for this wording"


# --------------------------------------------------------------------------------------------
# Regime: a named law, where the person says they live, their address, the mailbox, the default

_FAMILY_GDPR = "GDPR"
LAW_RULES: list[tuple[Regime | str, re.Pattern[str]]] = [
    (
        Regime.UK_GDPR,
        re.compile(
            r"\buk gdpr\b|\bdata protection act 2018\b|\bdpa 2018\b|\bico\b"
            r"|\binformation commissioner"
        ),
    ),
    (Regime.EU_GDPR, re.compile(r"\beu gdpr\b|\bdsgvo\b|\brgpd\b|\bavg\b|\bregulamento geral")),
    (_FAMILY_GDPR, re.compile(r"(?<!uk )(?<!eu )\bgdpr\b|\bgeneral data protection regulation\b|2016/679")),
    (
        Regime.CCPA,
        re.compile(
            r"\bccpa\b|\bcpra\b|california consumer privacy act|california privacy rights act"
            r"|\b1798\.\d+"
        ),
    ),
    (Regime.VCDPA, re.compile(r"\bvcdpa\b|virginia consumer data protection act")),
    (Regime.CPA, re.compile(r"colorado privacy act")),
    (Regime.CTDPA, re.compile(r"\bctdpa\b|connecticut data privacy act")),
    (Regime.UCPA, re.compile(r"\bucpa\b|utah consumer privacy act")),
    (Regime.LGPD, re.compile(r"\blgpd\b|lei geral de prote[çc][ãa]o de dados|\b13\.709\b")),
    (Regime.PIPEDA, re.compile(r"\bpipeda\b|personal information protection and electronic documents act")),
]
_EU_PLACES = (
    r"(?<!northern )ireland|germany|deutschland|france|spain|espa[ñn]a|italy|italia|netherlands|holland"
    r"|belgium|belgique|austria|[öo]sterreich|portugal|sweden|denmark|finland|poland|greece|czech"
    r"|slovakia|hungary|romania|bulgaria|croatia|slovenia|estonia|latvia|lithuania|luxembourg|malta|cyprus"
    r"|dublin|cork|galway|berlin|munich|m[üu]nchen|hamburg|paris|lyon|madrid|barcelona|rome|milan|amsterdam"
    r"|rotterdam|brussels|vienna|wien|lisbon|lisboa|porto|stockholm|copenhagen|helsinki|warsaw|athens"
    r"|european union|eu resident|eu citizen"
)
_UK_PLACES = (
    r"united kingdom|\buk\b|\bu\.k\.|great britain|\bbritain\b|\bbritish\b(?! columbia)|\bengland\b|scotland"
    r"|\bwales\b|northern ireland|london|manchester|birmingham|leeds|glasgow|edinburgh|cardiff|belfast"
    r"|bristol|liverpool|coventry|sheffield|newcastle|nottingham|leicester|brighton|derry|swansea"
)
LOCATION_RULES: list[tuple[Regime, re.Pattern[str]]] = [
    (
        Regime.CCPA,
        re.compile(r"\bcalifornia\b|\bcalifornian\b|los angeles|san francisco|san diego|sacramento"),
    ),
    (Regime.VCDPA, re.compile(r"(?<!west )\bvirginia\b|\brichmond, va\b")),
    (Regime.CPA, re.compile(r"\bcolorado\b|\bdenver\b")),
    (Regime.CTDPA, re.compile(r"\bconnecticut\b|\bhartford\b")),
    (Regime.UCPA, re.compile(r"\butah\b|salt lake city")),
    (Regime.LGPD, re.compile(r"\bbra[sz]il\b|\bbrasileir[oa]\b|s[ãa]o paulo|rio de janeiro|belo horizonte")),
    (
        Regime.PIPEDA,
        re.compile(
            r"\bcanad(?:a|ian|ienne|ien)\b|\bontario\b|\bqu[ée]bec\b|british columbia"
            r"|\balberta\b|manitoba|saskatchewan|nova scotia|new brunswick|newfoundland"
            r"|toronto|montr[ée]al|vancouver|ottawa|calgary|winnipeg"
        ),
    ),
    (Regime.EU_GDPR, re.compile(rf"\b(?:{_EU_PLACES})\b")),
    (Regime.UK_GDPR, re.compile(rf"(?:{_UK_PLACES})")),
]
_US_STATE_REGIMES = {
    "CA": Regime.CCPA,
    "VA": Regime.VCDPA,
    "CO": Regime.CPA,
    "CT": Regime.CTDPA,
    "UT": Regime.UCPA,
}
_PHONE_REGIONS: dict[str, Regime] = {"GB": Regime.UK_GDPR, "BR": Regime.LGPD, "CA": Regime.PIPEDA}
_EU_REGIONS = {"IE", "DE", "FR", "ES", "IT", "NL", "BE", "AT", "PT", "SE", "DK", "FI", "PL", "GR", "CZ", "LU"}
W_LAW, W_PLACE, W_RESIDENCE, W_ADDRESS, W_PHONE, W_MAILBOX, W_DEFAULT = 5, 2, 4, 2, 1, 2, 1
#: "I live in Ireland" counts more than "while working in Belfast"
_RESIDENCE_BEFORE = (
    r"(?:live in|living in|reside in|residing in|resident of|resident in|based in|i'm in|i am in|moved to"
    r"|i'm from|i am from|home is in|home in|address is in|i'm living in|i am living in|moved back to"
    r"|writing from|back in|living at|resident at"
    # the same in the languages people write to a European privacy mailbox in
    r"|j'habite(?: en| au| aux| à| a)?|je (?:vis|r[ée]side|demeure)(?: en| au| aux| à| a)?"
    r"|ich wohne in|wohne in|ich lebe in|wohnhaft in|vivo en|resido en|vivo in|abito (?:in|a)"
    r"|risiedo (?:in|a)|ik woon in|woon in|moro (?:em|no|na|nos)|resido (?:em|no|na))"
    r"\s+(?:the\s+)?(?:state of |province of |city of )?"
)
_RESIDENCE_AFTER = r"\s+(?:resident|residents|consumer|citizen)\b"
#: "I live in Valencia, Spain": the country after a town the rules do not know
_TOWN = r"(?:[\w'\-]+(?: [\w'\-]+)?,? )?"
_RESIDENCE_RULES = {
    regime: re.compile(
        rf"{_RESIDENCE_BEFORE}{_TOWN}(?:{pattern.pattern})|(?:{pattern.pattern}){_RESIDENCE_AFTER}"
    )
    for regime, pattern in LOCATION_RULES
}


def _place_lines(text: str) -> list[Regime]:
    """Regimes of the places that stand on a line of their own, as the last lines of an address
    or a signature do ("Rotterdam" / "Netherlands", "Calgary, Alberta"): where the writer is,
    without saying "I live in"."""
    found: list[Regime] = []
    for line in text.splitlines()[-60:]:
        line = line.strip(" \t,.").lower()
        if not line or len(line) > 40:
            continue
        for regime, pattern in LOCATION_RULES:
            m = pattern.search(line)
            if m and m.end() == len(line) and re.fullmatch(r"(?:[\w .'\-]+,\s*)?", line[: m.start()]):
                if regime not in found:
                    found.append(regime)
                break
    return found


def _pick_regime(
    text: str,
    found: _Found,
    mailbox: Regime | None,
    mailbox_rule: str,
    policy: MailboxPolicy,
    place_lines: list[Regime] | None = None,
) -> tuple[Regime, str]:
    place_lines = place_lines or []
    scores: dict[Regime, float] = {}
    why: dict[Regime, list[str]] = {}

    def add(regime: Regime, weight: float, label: str) -> None:
        scores[regime] = scores.get(regime, 0) + weight
        if label not in why.setdefault(regime, []):
            why[regime].append(label)

    gdpr_named = False
    for target, pattern in LAW_RULES:
        if pattern.search(text):
            if isinstance(target, Regime):
                add(target, W_LAW, "names the law")
            else:
                gdpr_named = True
    for regime, pattern in LOCATION_RULES:
        if pattern.search(text):
            add(regime, W_PLACE, "the writer's stated location")
            if _RESIDENCE_RULES[regime].search(text):
                add(regime, W_RESIDENCE, "where the writer says they live")
    for regime in found.address_regimes:
        add(regime, W_ADDRESS, "the postal address given")
    for regime in place_lines:
        add(regime, W_ADDRESS, "a place on a line of its own (an address or signature)")
    if found.phone_region:
        phone_regime = _PHONE_REGIONS.get(found.phone_region) or (
            Regime.EU_GDPR if found.phone_region in _EU_REGIONS else None
        )
        if phone_regime:
            add(phone_regime, W_PHONE, "the phone number's country")
    if mailbox:
        add(mailbox, W_MAILBOX, mailbox_rule)
    add(policy.default_regime, W_DEFAULT, "the mailbox default")
    if gdpr_named:
        # "under GDPR": the UK's or the EU's, whichever the rest of the message points to
        uk, eu = scores.get(Regime.UK_GDPR, 0), scores.get(Regime.EU_GDPR, 0)
        add(Regime.UK_GDPR if uk > eu else Regime.EU_GDPR, W_LAW, "names the GDPR")
    # a tie goes to the regime the writer's own words point to, then to the mailbox's
    order = list(Regime)
    own_words = {r for r, labels in why.items() if set(labels) - {mailbox_rule, "the mailbox default"}}
    best = max(scores, key=lambda r: (scores[r], r in own_words, r == mailbox, -order.index(r)))
    return best, f"regime {best.value} ({', '.join(why[best])})"


# --------------------------------------------------------------------------------------------
# Agents: someone writing for the person

_AGENT = re.compile(
    r"\bon behalf of (?:my|our|the) (?:client|mother|mum|mom|father|dad|son|daughter|child|children|wife"
    r"|husband|partner|brother|sister|grandmother|grandfather|gran|grandma|grandpa|aunt|uncle|friend"
    r"|customer|consumer|member|late)\b|\bon (?:his|her|their) behalf\b|\b(?:our|my) client(?:'s)?\b"
    r"|\bauthori[sz]ed agent\b|\bwe (?:act|are acting) (?:for|on behalf of)\b|\bacting on behalf of\b"
    r"|\bpower of attorney\b|\blasting power\b|\bletter of authority\b|\bform of authority\b"
    r"|\bsigned (?:authori[sz]ation|permission|consent)\b|\bem nome d[eao]\b|\bprocura[çc][ãa]o\b"
    r"|\bau nom de\b|\bmandataire\b|\bprocuration\b|\bim auftrag\b|\bim namen\b|\bvollmacht\b|\bmandant"
)
_AGENT_NAMED = re.compile(r"\b[Oo]n behalf of (?:(?:Mr|Mrs|Ms|Miss|Dr|Mx)\.? )?[A-Z][a-z]+ [A-Z][a-z]+")
_POWER_OF_ATTORNEY = re.compile(
    r"power of attorney|lasting power|procura[çc][ãa]o|procuration|vollmacht|\bexecutor\b|\bdeputy\b"
)
_ORGANISATION = re.compile(
    r"\b(?:solicitors?|llp|ltd|limited|inc|llc|law|legal|advocacia|advogados|avocats|rechtsanw[äa]lte|kanzlei"
    r"|associates|chambers|privacy services?)\b",
    re.IGNORECASE,
)


def _agent_details(requester: _Requester, text: str) -> AgentDetails:
    organisation = ""
    for line in [requester.name, *requester.signature.splitlines()]:
        if _ORGANISATION.search(line) and len(line) < 100:
            organisation = clean_header_text(line, 100)
            break
    authority = (
        AgentAuthority.POWER_OF_ATTORNEY
        if _POWER_OF_ATTORNEY.search(text)
        else AgentAuthority.WRITTEN_PERMISSION
    )
    name = _name_like(requester.name) or ""
    return AgentDetails(
        name=name, email=requester.address or "", authority=authority, organisation=organisation
    )


# --------------------------------------------------------------------------------------------
# Identifiers: the person's own, from labelled lines, "my ... is" sentences and the signature


@dataclass
class _Found:
    values: dict[str, str]
    address_regimes: list[Regime]
    phone_region: str | None


_UK_POSTCODE = re.compile(
    r"\b(GIR ?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})\b", re.IGNORECASE
)
_US_ZIP = re.compile(
    r"\b(AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY"
    r"|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)\s+(\d{5}(?:-\d{4})?)\b"
)
_CA_POSTCODE = re.compile(r"\b([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d)\b")
_BR_CEP = re.compile(r"\b(\d{5}-\d{3})\b")
_CA_PROVINCES = r"(?:ON|QC|BC|AB|MB|SK|NS|NB|NL|PE|YT|NT|NU)"
_STREET = re.compile(
    r"^\s*(?:(?:flat|apartment|apt|unit|suite)\s*\w+,?\s*)?\d{1,5}[A-Za-z]?,?\s+[A-Za-zÀ-ÿ'.\- ]{2,60}"
    r"|\b(?:road|street|st\.?|lane|avenue|ave\.?|drive|close|way|court|place|crescent|terrace|gardens"
    r"|grove|rua|avenida|boulevard|blvd|rue|stra(?:ß|ss)e|str\.|hill|row|walk|mews|square|parade)\b",
    re.IGNORECASE,
)

_LABEL = re.compile(r"^\s*(?:[-*•]\s*)?(?P<label>[A-Za-zÀ-ÿ'./# ]{2,40}?)\s*[:\uff1a]\s*(?P<value>.*)$")
#: "Client's address:", "Consumer email:", "Customer number:": whose the value is, before the label
_WHOSE = (
    r"(?:(?:your |our |the |my )?(?:client|customer|consumer|data subject|account holder|member)(?:'?s)? )?"
)


def _label(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"^{_WHOSE}(?:{pattern})$", re.IGNORECASE)


_LABELS: list[tuple[str, re.Pattern[str]]] = [
    (
        IdentifierKind.NAME,
        _label(
            r"(?:full |account )?name|client|our client|data subject|customer|consumer|account holder"
            r"|nome(?: completo)?|nom(?: complet)?|name des kunden|vollst[äa]ndiger name"
        ),
    ),
    (IdentifierKind.EMAIL, _label(r"(?:account |registered |login )?e-?mail(?: address)?|courriel")),
    (
        IdentifierKind.PHONE,
        _label(
            r"(?:home |work )?(?:phone|telephone|tel\.?|mobile|mob\.?|mobile number|cell|phone number"
            r"|contact number|telefone|t[ée]l[ée]phone|telefon|handy|celular)"
        ),
    ),
    (
        IdentifierKind.POSTAL_ADDRESS,
        _label(
            r"(?:postal |home |current |registered |previous |old |new )?address"
            r"|endere[çc]o|adresse|anschrift"
        ),
    ),
    (IdentifierKind.POSTCODE, _label(r"post ?code|zip(?: code)?|postal code|cep|plz|code postal")),
    (
        IdentifierKind.DATE_OF_BIRTH,
        _label(r"date of birth|dob|d\.o\.b\.?|birth date|data de nascimento|date de naissance|geburtsdatum"),
    ),
    (
        IdentifierKind.ACCOUNT_NUMBER,
        _label(
            r"(?:mobile |broadband )?account(?: number| no\.?| #| num)?|acct(?: no\.?)?|a/c(?: no\.?)?"
            r"|n[úu]mero da conta"
        ),
    ),
    (
        IdentifierKind.CUSTOMER_ID,
        _label(
            r"(?:customer|client|consumer|member|membership)(?:'?s)? (?:number|no\.?|id|ref(?:erence)?)"
            r"|loyalty card(?: number)?|kundennummer|n[úu]mero (?:de|do) cliente|num[ée]ro de client"
        ),
    ),
    (IdentifierKind.LAST_TRANSACTION, _label(r"order (?:number|no\.?|#|ref(?:erence)?)|order")),
]
_ID_VALUE = r"#?\s*([A-Z0-9][A-Z0-9\-/]{2,24})"
_INLINE: list[tuple[str, re.Pattern[str]]] = [
    (
        IdentifierKind.ACCOUNT_NUMBER,
        re.compile(rf"\bac+ount (?:number|no\.?|num|#|ref(?:erence)?)\s*(?:is|was|:)?\s*{_ID_VALUE}", re.I),
    ),
    (
        IdentifierKind.CUSTOMER_ID,
        re.compile(
            r"\b(?:customer|member(?:ship)?|loyalty card)\s*(?:number|no\.?|id|#|ref(?:erence)?)"
            r"\s*(?:is|was|:)?\s*"
            rf"{_ID_VALUE}|\bkundennummer\s*:?\s*{_ID_VALUE}|\bn[úu]mero de cliente\s*:?\s*{_ID_VALUE}",
            re.I,
        ),
    ),
    (
        IdentifierKind.LAST_TRANSACTION,
        re.compile(
            rf"\border\s*(?:number|no\.?|#|ref(?:erence)?)\s*(?:is|was|:)?\s*{_ID_VALUE}|\border\s+#\s*{_ID_VALUE}",
            re.I,
        ),
    ),
    (
        IdentifierKind.DATE_OF_BIRTH,
        re.compile(
            r"\b(?:date of birth|dob|d\.o\.b\.?|born on|birthday)\s*(?:is|was|as|:)?\s*"
            r"(\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{4}-\d{2}-\d{2}"
            r"|\d{1,2}(?:st|nd|rd|th)? [A-Za-z]{3,9},? \d{4}"
            r"|[A-Za-z]{3,9} \d{1,2}(?:st|nd|rd|th)?,? \d{4})",
            re.I,
        ),
    ),
]
_POSTCODE_SAID = re.compile(
    r"\b(?:post ?code|zip(?: code)?|postal code)\s*(?:is|was|:)?\s*"
    r"([A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|\d{5}(?:-\d{4})?|[A-Z]\d[A-Z] ?\d[A-Z]\d)\b",
    re.IGNORECASE,
)
_MY_NAME = re.compile(
    r"\b(?:my name is|i am called|je m'appelle|meu nome [ée]|mein name ist)\s+"
    r"((?:(?:Mr|Mrs|Ms|Miss|Dr)\.? )?[A-ZÀ-Ý][\w'\-]+(?: [A-ZÀ-Ý][\w'\-]+){0,3})"
)
_BEHALF_NAME = re.compile(
    r"\bon behalf of (?:(?:my|our|the) (?:client|mother|mum|mom|father|dad|son|daughter|wife|husband|partner"
    r"|brother|sister|grandmother|grandfather|customer|consumer),? )?"
    r"((?:(?:Mr|Mrs|Ms|Miss|Dr|Mx)\.? )?[A-ZÀ-Ý][\w'\-]+(?: [A-ZÀ-Ý][\w'\-]+){1,3})"
)
_MY_EMAIL = re.compile(
    r"\b(?:(?:my|her|his|their|client's) (?:account |registered |login |old |usual )?e-?mail(?: address)?"
    r"|registered (?:with|under|to)|signed up (?:with|using)|account is under)\s*(?:is|was|:)?\s*"
    r"(?:the address )?<?([A-Za-z0-9._%+\-']{1,64}@[A-Za-z0-9.\-]{1,200}\.[A-Za-z]{2,24})",
    re.I,
)
_ADDRESS_CONTEXT = re.compile(
    r"\b(?:(?:my|her|his|their|our client's|client's) (?:home |postal |current |old |previous |registered )?"
    r"address (?:is|was|:|from)?|i live at|(?:lives|living|reside|resides|residing|resident) at"
    r"|moved (?:from|to)|address (?:from|on file is|you have is|on (?:the|my|her|his|their) account"
    r"(?: is| was)?))\s*:?\s*",
    re.I,
)
_PHONE_CONTEXT = re.compile(
    r"(?:phone|tel|mobile|cell|number|call me|reach me|contact me|text me|telefone|t[ée]l[ée]phone|telefon"
    r"|handy|celular|whatsapp)",
    re.I,
)
_ROLE_WORDS = {
    "privacy",
    "team",
    "support",
    "info",
    "admin",
    "noreply",
    "no-reply",
    "customer",
    "service",
    "services",
    "office",
    "sales",
    "hello",
    "contact",
    "mailer",
    "daemon",
    "postmaster",
    "data",
    "protection",
    "legal",
    "department",
    "ltd",
    "llp",
    "limited",
    "inc",
    "llc",
    "solicitors",
    "law",
    "group",
    "store",
    "manager",
    "enquiries",
    "accounts",
    "the",
    "via",
    "on",
    "behalf",
}


def _name_like(value: str) -> str | None:
    """A person's name, as written: letters, spaces, hyphens, apostrophes; "Doe, Jane" -> "Jane Doe"."""
    value = clean_header_text(value, 100).strip(" \"'*")
    if "," in value:
        last, _, first = value.partition(",")
        if first.strip() and " " not in last.strip():
            value = f"{first.strip()} {last.strip()}"
    value = re.sub(r"\s*\([^)]*\)\s*", " ", value).strip()
    tokens = value.split()
    if not 1 <= len(tokens) <= 5 or len(value) < 2:
        return None
    if any(t.lower().strip(".") in _ROLE_WORDS for t in tokens):
        return None
    if not all(re.fullmatch(r"[^\W\d_][^\W\d_'\-.\u2019]*(?:['\-\u2019.][^\W\d_]*)*\.?", t) for t in tokens):
        return None
    return value


def _identifiers(requester: _Requester, by_agent: bool) -> _Found:
    """The data subject's identifiers. For an agent's letter the sender, the letterhead and the
    signature are the agent's: only labelled lines and "on behalf of <name>" count then."""
    text = requester.text[:50_000]
    signature = requester.signature
    # an agent's letterhead (above "Dear ...") and signature are the agent's own details
    mine_text = _after_salutation(text[: requester.signature_at]) if by_agent else text
    flow = _flow(mine_text)  # sentences wrapped over lines, for "my account number is ..."
    values: dict[str, str] = {}
    regimes: list[Regime] = []

    labelled = _labelled(mine_text)
    for kind, value in labelled.items():
        values[kind] = value

    # name
    if IdentifierKind.NAME not in values:
        m = (_BEHALF_NAME.search(flow) if by_agent else None) or _MY_NAME.search(flow)
        candidate = _name_like(m.group(1)) if m else None
        if not candidate and not by_agent:
            display = _name_like(requester.name)
            signed = _signature_name(signature)
            if display and (len(display.split()) >= 2 or not signed):
                candidate = display
            else:
                candidate = signed or display
        if candidate:
            values[IdentifierKind.NAME] = candidate

    # email
    if IdentifierKind.EMAIL not in values:
        m = _MY_EMAIL.search(flow)
        email_value = _valid_address(m.group(1)) if m else None
        if not email_value and not by_agent:
            email_value = requester.address
        if email_value and not _DAEMON.match(email_value):
            values[IdentifierKind.EMAIL] = email_value
    elif values.get(IdentifierKind.EMAIL):
        checked = _valid_address(values[IdentifierKind.EMAIL].strip("<>"))
        if checked:
            values[IdentifierKind.EMAIL] = checked
        else:
            del values[IdentifierKind.EMAIL]

    # reference numbers and date of birth written in sentences
    for kind, pattern in _INLINE:
        if kind in values:
            continue
        for m in pattern.finditer(flow):
            value = next((g for g in m.groups() if g), "")
            if kind == IdentifierKind.DATE_OF_BIRTH or re.search(r"\d", value):
                values[kind] = clean_header_text(value, 60).rstrip(".,;")
                break

    # postal address and postcode
    address, postcode, address_regime = _postal_address(
        labelled, flow, "" if by_agent else signature, "" if by_agent else text
    )
    if address and IdentifierKind.POSTAL_ADDRESS not in values:
        values[IdentifierKind.POSTAL_ADDRESS] = address
    if postcode and IdentifierKind.POSTCODE not in values:
        values[IdentifierKind.POSTCODE] = postcode
    if address_regime:
        regimes.append(address_regime)

    # phone
    phone_region = None
    if IdentifierKind.PHONE in values:
        normalised = _phone(values[IdentifierKind.PHONE], anywhere=True)
        if normalised:
            values[IdentifierKind.PHONE], phone_region = normalised
    else:
        found = _phone(mine_text, anywhere=False, signature_at=-1 if by_agent else requester.signature_at)
        if found:
            values[IdentifierKind.PHONE], phone_region = found

    clean = {str(k): clean_header_text(v, 200) for k, v in values.items() if v and clean_header_text(v, 200)}
    return _Found(clean, regimes, phone_region)


_SALUTATION = re.compile(
    r"^\s*(?:dear|to whom|hello|hi|good (?:morning|afternoon)|prezad|caro|cher|sehr geehrte)\b",
    re.IGNORECASE | re.MULTILINE,
)
_NOT_A_PHONE = re.compile(
    r"(?:account|customer|order|membership|card|policy|case)\s*(?:number|no\.?|num|#|id|ref\w*)\s*(?:is|was|:)?\s*$"
    r"|\bref(?:erence)?\s*(?:is|:)?\s*$|#\s*$|\b(?:cpf|cnpj|rg|nino|ssn|sin|iban)\W*$",
    re.IGNORECASE,
)


def _after_salutation(text: str) -> str:
    m = _SALUTATION.search(text[:3000])
    return text[m.start() :] if m else text


def _flow(text: str) -> str:
    """Join lines inside a paragraph (mail clients wrap at 72 columns); keep blank lines."""
    return re.sub(r"[ \t]*(?<!\n)\n(?!\n)[ \t]*", " ", text)


def _labelled(text: str) -> dict[str, str]:
    """Lines such as "Account number: NW-448812" or "Address: 14 Larch Road" (with its next lines)."""
    found: dict[str, str] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines[:400]):
        m = _LABEL.match(line)
        if not m:
            continue
        label = " ".join(m.group("label").lower().split())
        value = m.group("value").strip()
        for kind, pattern in _LABELS:
            if kind in found or not pattern.match(label):
                continue
            if kind == IdentifierKind.POSTAL_ADDRESS:
                parts = [value] if value else []
                for nxt in lines[i + 1 : i + 5]:
                    if not nxt.strip() or _LABEL.match(nxt):
                        break
                    parts.append(nxt.strip())
                value = ", ".join(p.strip(" ,") for p in parts if p.strip(" ,"))
            if kind == IdentifierKind.NAME:
                value = _name_like(value) or ""
            if kind in (
                IdentifierKind.ACCOUNT_NUMBER,
                IdentifierKind.CUSTOMER_ID,
                IdentifierKind.LAST_TRANSACTION,
            ):
                value = value.split()[0].strip(".,;#") if value.split() else ""
                if not re.search(r"\d", value):
                    value = ""
            if value:
                found[kind] = value[:200]
            break
    return found


def _signature_name(signature: str) -> str | None:
    for line in signature.splitlines()[:3]:
        candidate = _name_like(line)
        if candidate and all(t[0].isupper() for t in candidate.split()):
            return candidate
    return None


def _postcode_in(text: str) -> tuple[str, Regime | None] | None:
    m = _US_ZIP.search(text)
    if m:
        return m.group(2), _US_STATE_REGIMES.get(m.group(1))
    m = re.search(rf"\b{_CA_PROVINCES}\s+([A-Z]\d[A-Z] ?\d[A-Z]\d)\b", text) or _CA_POSTCODE.search(text)
    if m:
        return m.group(1).upper(), Regime.PIPEDA
    m = _UK_POSTCODE.search(text)
    if m:
        value = m.group(1).upper()
        if " " not in value:
            value = f"{value[:-3]} {value[-3:]}"
        return value, Regime.UK_GDPR
    m = _BR_CEP.search(text)
    if m and re.search(r"\b(?:cep|brasil|brazil|sp|rj|mg)\b", text, re.I):
        return m.group(1), Regime.LGPD
    return None


def _postal_address(
    labelled: dict[str, str], text: str, signature: str, letter: str
) -> tuple[str | None, str | None, Regime | None]:
    """A labelled address; else one introduced by "my address is"/"I live at" up to its
    postcode; else the address block above a postcode in the signature or the letterhead."""
    address = labelled.get(IdentifierKind.POSTAL_ADDRESS)
    if not address:
        for m in _ADDRESS_CONTEXT.finditer(text):
            tail = text[m.end() : m.end() + 160]
            span = _first_postcode_span(tail)
            if span is None:
                continue
            starts = list(_HOUSE_NUMBER.finditer(tail[: span[0]]))
            if starts and _STREET.search(tail[starts[-1].start() : span[0]]):
                found = tail[starts[-1].start() : span[1]]
                address = " ".join(found.replace("\n", ", ").split()).strip(" ,")
                break
    if not address:
        head = "\n".join(letter.splitlines()[:12])
        for block in (signature, head):
            address = _address_block(block)
            if address:
                break
    code = _postcode_in(address) if address else None
    if code is None and labelled.get(IdentifierKind.POSTCODE):
        code = _postcode_in(labelled[IdentifierKind.POSTCODE]) or (labelled[IdentifierKind.POSTCODE], None)
    if code is None and (said := _POSTCODE_SAID.search(text)):
        code = _postcode_in(said.group(1).upper()) or (said.group(1).upper(), None)
    if code is None and signature:
        code = _postcode_in(signature)
    return address, code[0] if code else None, code[1] if code else None


#: where a written address starts: "Flat 3, 41 Albert Road", "5 Orchard Way", "1540 Oak Grove Ave"
_HOUSE_NUMBER = re.compile(
    r"(?:\b(?:flat|apartment|apt|unit|suite)\s*\w+,?\s*)?(?<![\w-])\d{1,5}[A-Za-z]?,?\s+[A-Za-zÀ-ÿ]",
    re.IGNORECASE,
)


def _first_postcode_span(text: str) -> tuple[int, int] | None:
    """Where the first postcode or ZIP (with its state) in the text starts and ends."""
    best: tuple[int, int] | None = None
    for pattern in (_US_ZIP, _UK_POSTCODE, _CA_POSTCODE, _BR_CEP):
        m = pattern.search(text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), m.end())
    return best


#: the line above a street that still belongs to the address: a flat, or a house name
_ABOVE_STREET = re.compile(
    r"(?:flat|apartment|apt|unit|suite)\b|(?:the\s|.*\b(?:house|cottage|farm|rectory|vicarage|lodge|barn|mill"
    r"|manor|hall|villa|court|mansions|building)\b)",
    re.IGNORECASE,
)


def _address_block(block: str) -> str | None:
    """Lines ending at a postcode line, going up while they look like an address."""
    lines = [x.strip() for x in block.splitlines()]
    for i, line in enumerate(lines):
        if not line or _postcode_in(line) is None or _LABEL.match(line) or "@" in line:
            continue
        if _PHONE_CONTEXT.search(line):
            continue
        street_at = _STREET.search(line)
        if street_at and re.match(r"\s*(?:flat |apt |unit |suite )?\d", line, re.I):
            return line
        collected = [line]
        found_street = False
        for j in range(i - 1, max(-1, i - 5), -1):
            prev = lines[j]
            if not prev or "@" in prev or _LABEL.match(prev) or _PHONE_CONTEXT.search(prev):
                break
            if re.match(r"\s*(?:flat|apartment|apt|unit|suite)?\s*\d", prev, re.I) or _STREET.search(prev):
                collected.insert(0, prev)
                found_street = True
                if j > 0 and _ABOVE_STREET.match(lines[j - 1]):
                    collected.insert(0, lines[j - 1])
                break
            if len(prev.split()) <= 4 and not re.search(r"\d", prev):
                collected.insert(0, prev)
                continue
            break
        if found_street:
            return ", ".join(p.strip(" ,") for p in collected)
    return None


_NANP = re.compile(r"(?:\+?1[\s.\-]?)?(?:\(\d{3}\)|\d{3})[\s.\-]?\d{3}[\s.\-]?\d{4}")


def _phone(text: str, anywhere: bool, signature_at: int = -1) -> tuple[str, str | None] | None:
    """The first phone number the person gives as theirs: labelled, after "my number/mobile/call
    me", or in the signature; E.164. Ofcom drama numbers (07700 900xxx) are only "possible"
    numbers, hence the POSSIBLE leniency, checked against the number's shape."""
    sig_start = signature_at
    candidates: list[tuple[int, str, str | None]] = []
    for region in ("GB", "US"):
        try:
            matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE)
            for match in matcher:
                raw = match.raw_string.strip()
                if region == "GB" and not raw.startswith(("0", "+")):
                    continue
                if region == "US" and not _NANP.fullmatch(raw):
                    continue
                digits = re.sub(r"\D", "", raw)
                if len(digits) < 10:
                    continue
                before = text[max(0, match.start - 40) : match.start]
                in_signature = sig_start >= 0 and match.start >= sig_start
                if not (anywhere or in_signature or _PHONE_CONTEXT.search(before)):
                    continue
                if _NOT_A_PHONE.search(before):
                    continue
                e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
                candidates.append((match.start, e164, phonenumbers.region_code_for_number(match.number)))
        except Exception:
            continue
    if not candidates:
        return None
    candidates.sort()
    return candidates[0][1], candidates[0][2]


# --------------------------------------------------------------------------------------------
# Replies to a case

CASE_REFERENCE = re.compile(r"\bDSR-(\d{4})-(\d{6})\b", re.IGNORECASE)


def _case_reference(subject: str, text: str) -> str | None:
    for source in (subject, text[:5000]):
        m = CASE_REFERENCE.search(source)
        if m:
            return f"DSR-{m.group(1)}-{m.group(2)}"
    return None
