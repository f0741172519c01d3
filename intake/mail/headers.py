"""Headers: raw values, decoded (RFC 2047) and sanitised here, and mail that is not a case.

The stdlib parser runs with the ``compat32`` policy: headers stay raw strings and are decoded
and cleaned here in a few linear steps. The modern policy runs a full RFC 5322 grammar over
every header it is asked for: more than intake needs from hostile input, and one more thing
that could raise. Auto-replies, delivery reports and the spam filter's flag are recognised here.
"""

from __future__ import annotations

import email.header
import email.utils
import re
import unicodedata
from email.message import Message

from dsar.model import Regime
from intake.mail.message import MailboxPolicy
from intake.mail.mime import decode_bytes

CONTROL_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def clean_header_text(value: str | None, limit: int) -> str:
    """Safe to put in a reply header: CR, LF and every control or format character become
    spaces or go, whitespace collapses, and the length is capped (header injection)."""
    if not value:
        return ""
    out = []
    for ch in value:
        if ch in "\r\n\t\v\f":
            out.append(" ")
        elif unicodedata.category(ch) not in CONTROL_CATEGORIES:
            out.append(ch)
    return " ".join("".join(out).split())[:limit]


class MessageHeaders:
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
                    address = valid_address(addr)
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
            out.append(decode_bytes(chunk, charset)[0])
        else:
            out.append(chunk)
    return "".join(out)


def _undo_surrogates(value: str) -> str:
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    return decode_bytes(raw, None)[0]


def valid_address(addr: str) -> str | None:
    addr = clean_header_text(addr, 254).strip("<>").strip()
    if _EMAIL_ONLY.fullmatch(addr):
        local, _, domain = addr.rpartition("@")
        return f"{local}@{domain.lower()}"
    return None


_EMAIL_ONLY = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)


EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+\-']{1,64}@[A-Za-z0-9.\-]{1,200}\.[A-Za-z]{2,24}")


_MSG_ID = re.compile(r"<([^<>\s]{1,240}@[^<>\s]{1,240})>")


def normalised_message_id(value: str | None) -> str | None:
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


def thread_ids(head: MessageHeaders) -> list[str]:
    ids: list[str] = []
    for name in ("in-reply-to", "references"):
        for raw in head.all_raw(name):
            for m in _MSG_ID.finditer(clean_header_text(raw, 8000)):
                mid = f"<{m.group(1)[:250]}>"
                if mid not in ids:
                    ids.append(mid)
    return ids[:20]


def sender_address(head: MessageHeaders) -> str:
    pairs = head.addresses("from") or head.addresses("reply-to") or head.addresses("sender")
    return pairs[0][1] if pairs else ""


def is_own_address(address: str, policy: MailboxPolicy) -> bool:
    """The controller's own mailboxes are never a requester's identifier (a quoted letter of ours)."""
    address = address.lower()
    domain = address.rpartition("@")[2]
    return address in {k.lower() for k in policy.mailboxes} or domain in {
        d.lower().lstrip("@") for d in policy.domains
    }


def addressed_mailbox(head: MessageHeaders, policy: MailboxPolicy) -> tuple[str | None, Regime | None, str]:
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


AUTO_SUBJECT = re.compile(
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


DAEMON = re.compile(r"^(?:mailer-daemon|mail-daemon|mailerdaemon|postmaster)@", re.IGNORECASE)


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


def machine_generated(msg: Message, head: MessageHeaders) -> str | None:
    """Headers that machines set and people do not: ignored whatever the text says."""
    if msg.get_content_type() == "multipart/report":
        kind = str(msg.get_param("report-type") or "").lower()[:40]
        return f"delivery or read report (multipart/report; report-type={kind or 'none'})"
    sender = sender_address(head)
    if DAEMON.match(sender):
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


def spam_flag_reason(head: MessageHeaders) -> str | None:
    for name in ("x-spam-flag", "x-spam-status", "x-spam"):
        value = (head.get(name) or "").strip().lower()
        if value.startswith("yes") or value == "true":
            return f"marked as spam by the mail filter ({name})"
    return None


def soft_ignore_reason(msg: Message, head: MessageHeaders, subject: str, text: str) -> str | None:
    """Signals that people can trip by accident: they ignore a message only if no request was
    recognised in it."""
    if AUTO_SUBJECT.match(subject):
        return "auto-reply (subject)"
    if _BOUNCE_SUBJECT.match(subject):
        return "bounce (delivery failure subject)"
    if head.get("list-unsubscribe") or head.get("list-id"):
        return "mailing-list or newsletter mail (List headers)"
    markers = {m.group(0).lower() for m in _SPAM_MARKERS.finditer(text)}
    if len(markers) >= 2:
        return f"spam ({len(markers)} classic spam phrases)"
    return None


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


def name_like(value: str) -> str | None:
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
