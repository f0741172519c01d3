"""Cleaning: the words the person wrote, without quotes, forwarded headers, disclaimers and
footers.

Quoted replies, forwarded-message headers, legal disclaimers ("if you are not the intended
recipient, delete...") and mobile footers are cut before classifying: they carry request words
the person did not write. A forwarded request is read as the forwarded person's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from intake.mail.body import MimeWalk, normalise_text
from intake.mail.headers import (
    AUTO_SUBJECT,
    EMAIL_IN_TEXT,
    MessageHeaders,
    clean_header_text,
    name_like,
    valid_address,
)
from intake.mail.mime import is_attachment, part_content_type, part_text


@dataclass
class RequesterText:
    """Whose request it is, and the text they wrote. For a forward: the original sender."""

    text: str  # what the requester wrote (quotes, disclaimers and footers cut)
    signature: str  # the block after the sign-off ("Kind regards, ...")
    signature_at: int  # where the sign-off starts in ``text`` (len(text) when there is none)
    name: str  # display name of the requester's address
    address: str | None
    note: str = ""  # a forwarder's own words above the forwarded message (classified, not mined)
    forwarded: bool = False


_FORWARD_SUBJECT = re.compile(r"^\s*(?:(?:re|aw|sv)\s*:\s*)*(?:fwd?|fw|tr|wg|enc|rv|i)\s*:", re.IGNORECASE)


REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|vs|antw|odp|ref|rif|r)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)


_FORWARD_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|mensagem encaminhada|message transf[ée]r[ée]"
    r"|weitergeleitete nachricht|mensaje reenviado)\s*-{2,}"
    r"|begin forwarded message\s*:|start of forwarded message|-{3,}\s*forwarded by)",
    re.IGNORECASE,
)


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


def split_requester(text: str, subject: str, head: MessageHeaders, walk: MimeWalk) -> RequesterText:
    from_pairs = head.addresses("from")
    name, address = from_pairs[0] if from_pairs else ("", None)
    own, forwarded = _cut_quotes(text.splitlines(), forward_subject=bool(_FORWARD_SUBJECT.match(subject)))
    if forwarded is None and walk.forwarded:
        forwarded = _attached_forward(walk.forwarded[0])
    if forwarded is not None and (forwarded.text.strip() or forwarded.address):
        note = _strip_disclaimers("\n".join(own))
        body = _strip_disclaimers(forwarded.text)
        signature, at = _signature(body)
        return RequesterText(
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
    return RequesterText(body, signature, at, name, address)


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
    m = EMAIL_IN_TEXT.search(value)
    address = valid_address(m.group(0)) if m else None
    name = value[: m.start()] if m else value
    name = clean_header_text(name.strip(" <[\"'(\t"), 100).strip(" <[\"'")
    return name_like(name) or "", address


def _attached_forward(inner: Message) -> _Forward:
    head = MessageHeaders(inner)
    pairs = head.addresses("from")
    name, address = pairs[0] if pairs else ("", None)
    texts = []
    for part in inner.walk() if inner.is_multipart() else [inner]:
        if part_content_type(part) in ("text/plain", "text/html") and not is_attachment(
            part, part_content_type(part)
        ):
            text = part_text(part, [])
            if text:
                texts.append(text)
            if part_content_type(part) == "text/plain":
                break
    own, _ = _cut_quotes(normalise_text("\n".join(texts)).splitlines(), forward_subject=False)
    return _Forward(name_like(name) or "", address, "\n".join(own))


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


def for_matching(text: str) -> str:
    """Lower-cased, one line, addresses and links removed ("...@example.co.uk" is not a country)."""
    text = EMAIL_IN_TEXT.sub(" ", text)
    text = re.sub(r"(?:https?://|www\.)\S+", " ", text, flags=re.IGNORECASE)
    return " ".join(text.lower().split())[:100_000]


def words_to_classify(subject: str, requester: RequesterText) -> str:
    """What the type rules and the statistical second opinion read: the subject, a forwarder's
    note and what the requester wrote (quotes, disclaimers and footers already cut)."""
    # an auto-reply's subject quotes ours ("Out of office: Your subject access request")
    subject_words = "" if AUTO_SUBJECT.match(subject) else REPLY_PREFIX.sub("", subject)
    return for_matching(f"{subject_words}\n{requester.note}\n{requester.text}")
