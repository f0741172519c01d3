"""The MIME tree walked once, bounded in depth and count: its text parts and its attachments.

The readable body is the best text part (plain text, else HTML turned into text), normalised;
the walk's notes and triage reasons name counts and rules, never a value.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from email.message import Message

from intake.mail.attachments import read_attachment
from intake.mail.headers import CONTROL_CATEGORIES
from intake.mail.message import Attachment, MailboxPolicy
from intake.mail.mime import is_attachment, part_content_type, part_text, salvage_text


@dataclass
class _TextPart:
    text: str
    html: bool


@dataclass
class MimeWalk:
    plain: list[_TextPart] = field(default_factory=list)
    html: list[_TextPart] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: list[Message] = field(default_factory=list)  # message/rfc822 parts
    notes: list[str] = field(default_factory=list)
    triage: list[str] = field(default_factory=list)


def walk_message(msg: Message, policy: MailboxPolicy) -> MimeWalk:
    """Iterative, so a 10,000-level nesting cannot exhaust the stack; stops at the caps."""
    out = MimeWalk()
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
        ctype = part_content_type(part)
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
                isinstance(c, Message) and part_content_type(c) == "text/plain" for c in children
            ):
                in_alternative_with_plain.update(id(c) for c in children)
            for child in reversed(children):
                if isinstance(child, Message):
                    stack.append((child, depth + 1, inside_forward))
            continue
        if ctype.startswith("multipart/"):
            salvaged = salvage_text(part)
            if salvaged:
                out.notes.append("a multipart part had no readable boundary: its text was read as plain text")
                out.plain.append(_TextPart(salvaged, False))
            else:
                out.triage.append(
                    "malformed MIME: a multipart part without its boundary left no readable text"
                )
            continue
        if is_attachment(part, ctype):
            if not inside_forward or part.get_filename():
                out.attachments.append(
                    read_attachment(part, ctype, len(out.attachments) + 1, policy, out.notes)
                )
            continue
        if ctype in ("text/plain", "text/html") and not inside_forward:
            if ctype == "text/html" and id(part) in in_alternative_with_plain:
                continue
            text = part_text(part, out.notes)
            if text is not None:
                (out.html if ctype == "text/html" else out.plain).append(
                    _TextPart(text, ctype == "text/html")
                )
    return out


@dataclass
class _Body:
    text: str
    notes: list[str]
    empty_reason: str | None = None


def body_text(walk: MimeWalk) -> _Body:
    notes: list[str] = []
    parts = walk.plain or walk.html
    if not walk.plain and walk.html:
        notes.append("HTML-only body, read as text")
    text = "\n\n".join(p.text for p in parts)
    text = normalise_text(text)[:200_000]
    empty_reason = None
    if not text.strip():
        if walk.attachments:
            empty_reason = "no text in the message: the request may be in an attachment"
        elif walk.triage:
            empty_reason = "malformed message structure left no readable text"
        else:
            empty_reason = "no text in the message"
    return _Body(text, notes, empty_reason)


def normalise_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in CONTROL_CATEGORIES)
