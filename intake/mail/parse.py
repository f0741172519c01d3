"""One raw email in, a classified and safe intake result out: the steps in order.

``parse_message`` reads the headers (``headers``), walks the MIME tree (``body``, ``mime``,
``attachments``), keeps only what the person wrote (``cleaning``), decides the request type
(``classify``), the person's identifiers (``identifiers``) and the regime (``regime``), then
the outcome. A real request must never be ignored: only machine headers (auto-replies, delivery
reports, the spam filter's flag) ignore a message unconditionally; weaker signals (an "Out of
office" subject, list headers, spam phrases) ignore it only when no request was recognised, and
a flagged message that reads like a request goes to triage.
"""

from __future__ import annotations

import hashlib
import re
from email import policy as email_policy
from email.parser import BytesParser

from dsar.model import IdentifierKind
from intake.mail.body import body_text, walk_message
from intake.mail.classify import ask_second_opinion, fit_type_to_regime, pick_type, score_types
from intake.mail.cleaning import REPLY_PREFIX, for_matching, split_requester, words_to_classify
from intake.mail.headers import (
    MessageHeaders,
    addressed_mailbox,
    clean_header_text,
    is_own_address,
    machine_generated,
    normalised_message_id,
    sender_address,
    soft_ignore_reason,
    spam_flag_reason,
    thread_ids,
)
from intake.mail.identifiers import AGENT, AGENT_NAMED, agent_details, find_identifiers
from intake.mail.message import MailboxPolicy, Outcome, ParsedMessage, oversize_reason
from intake.mail.regime import pick_regime, places_named
from intake.request_details import request_details


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
    head = MessageHeaders(msg)
    base = ParsedMessage(
        message_id=normalised_message_id(head.get("message-id")) or fallback_id,
        outcome=Outcome.TRIAGE,
        request_type=None,
        regime=None,
        identifiers={},
        reason="",
        in_reply_to=thread_ids(head),
        subject=clean_header_text(head.get("subject"), 200),
        sender=sender_address(head),
    )
    if not any(head.get(h) for h in ("from", "to", "subject", "date", "message-id")):
        base.regime = policy.default_regime
        base.reason = "not an email message: no From, To, Subject, Date or Message-ID header"
        return base
    base.mailbox, mailbox_regime, mailbox_rule = addressed_mailbox(head, policy)

    machine = machine_generated(msg, head)
    if machine:
        base.outcome, base.reason = Outcome.IGNORED, machine
        return base

    walk = walk_message(msg, policy)
    base.attachments = walk.attachments
    base.notes.extend(walk.notes)
    body = body_text(walk)
    base.notes.extend(body.notes)
    requester = split_requester(body.text, base.subject, head, walk)

    classify_text = words_to_classify(base.subject, requester)
    scores = score_types(classify_text)
    request_type, also, type_reason = pick_type(scores)
    base.request_type, base.also_requested = request_type, also

    base.by_agent = bool(AGENT.search(for_matching(requester.text))) or bool(
        AGENT_NAMED.search(requester.text)
    )
    found = find_identifiers(requester, base.by_agent)
    if is_own_address(found.values.get(IdentifierKind.EMAIL, ""), policy):
        del found.values[IdentifierKind.EMAIL]
    base.identifiers = found.values
    if base.by_agent:
        base.agent = agent_details(requester, classify_text)
    regime, regime_reason = pick_regime(
        classify_text, found, mailbox_regime, mailbox_rule, policy, places_named(requester.text)
    )
    base.regime = regime
    base.request_type, base.also_requested, fitted = fit_type_to_regime(request_type, also, scores, regime)
    if fitted:
        type_reason += f"; {fitted}"
    request_type = base.request_type

    soft_ignore = soft_ignore_reason(msg, head, base.subject, classify_text)
    spam_flagged = spam_flag_reason(head)
    base.case_reference = _case_reference(base.subject, requester.text)
    is_reply = base.case_reference is not None or (
        bool(base.in_reply_to) and bool(REPLY_PREFIX.match(base.subject))
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
        request_type, type_reason = ask_second_opinion(classify_text, scores, regime)
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


def _oversized(data: bytes, policy: MailboxPolicy, fallback_id: str) -> ParsedMessage:
    """Read the header block only: enough for the Message-ID and the sender, never the body."""
    end = min(len(data), 256 * 1024)
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = data.find(sep, 0, end)
        if at >= 0:
            end = at
            break
    head = MessageHeaders(BytesParser(policy=email_policy.compat32).parsebytes(data[:end], headersonly=True))
    limit = policy.max_message_bytes
    return ParsedMessage(
        message_id=normalised_message_id(head.get("message-id")) or fallback_id,
        outcome=Outcome.TRIAGE,
        request_type=None,
        regime=policy.default_regime,
        identifiers={},
        reason=oversize_reason(len(data), limit),
        in_reply_to=thread_ids(head),
        subject=clean_header_text(head.get("subject"), 200),
        sender=sender_address(head),
    )


def classification_text(raw: bytes, policy: MailboxPolicy | None = None) -> str:
    """The text ``parse_message`` classifies, for building the second opinion's training set
    (intake/training/extract.py). Personal data: never log or print it."""
    policy = policy or MailboxPolicy()
    msg = BytesParser(policy=email_policy.compat32).parsebytes(raw)
    head = MessageHeaders(msg)
    subject = clean_header_text(head.get("subject"), 200)
    walk = walk_message(msg, policy)
    return words_to_classify(subject, split_requester(body_text(walk).text, subject, head, walk))


CASE_REFERENCE = re.compile(r"\bDSR-(\d{4})-(\d{6})\b", re.IGNORECASE)


def _case_reference(subject: str, text: str) -> str | None:
    for source in (subject, text[:5000]):
        m = CASE_REFERENCE.search(source)
        if m:
            return f"DSR-{m.group(1)}-{m.group(2)}"
    return None
