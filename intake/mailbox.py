"""The privacy@ mailbox: read new mail over IMAP, open or update cases, file every message.

Each message in the inbox ends in exactly one folder once handled: ``DSAR/Processed`` (a case
was opened, a reply attached to its case, or a case opened in triage for a person to read) or
``DSAR/Ignored`` (auto-replies, bounces, spam: kept, never deleted). Nothing is lost: a message
that cannot be understood becomes a case in triage with the reason.

Handling is idempotent, so a poller that dies mid-batch loses and duplicates nothing: a case is
keyed by the message's Message-ID (``email:<id>``, the register's idempotency key), a reply
names its Message-ID to the case (which ignores one it has taken), and a message is filed only
after its case has it. The next run finds what is still in the inbox and handles it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import imaplib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from console.uploads import SIGNATURES
from dsar.blobs import BlobStore
from dsar.logs import get_logger
from dsar.model import Channel, Correspondence, Regime, RequestType
from dsar.settings import Settings
from dsar.store import CaseStore
from intake.mail import MailboxPolicy, Outcome, ParsedMessage, parse_message
from intake.service import (
    MAX_KEY_LENGTH,
    IntakeError,
    NewRequest,
    clean_transfer_to,
    open_case,
    phone_region,
    usable_identifiers,
)
from workflows.request import DataSubjectRequest

log = get_logger("dsar.intake.mailbox")

REFERENCE = re.compile(r"DSR-\d{4}-\d{6}")


@dataclass(frozen=True)
class MailboxSettings:
    host: str
    port: int
    user: str
    password: str
    ssl: bool = True
    inbox: str = "INBOX"
    processed: str = "DSAR/Processed"
    ignored: str = "DSAR/Ignored"
    batch: int = 50  # messages per poll


@dataclass
class Handled:
    """What became of one message (no personal data: for logs, the CLI and tests)."""

    message_id: str
    outcome: str  # "request", "reply", "triage", "ignored"
    reference: str | None
    reason: str


class MailboxIntake:
    def __init__(
        self,
        mailbox: MailboxSettings,
        policy: MailboxPolicy,
        client: Client,
        store: CaseStore,
        settings: Settings,
        blobs: BlobStore,
        controller: str,
    ) -> None:
        self.mailbox = mailbox
        self.policy = policy
        self.client = client
        self.store = store
        self.settings = settings
        self.blobs = blobs
        self.controller = controller

    # ---- IMAP

    def _connect(self) -> imaplib.IMAP4:
        m = self.mailbox
        imap = (
            imaplib.IMAP4_SSL(m.host, m.port, timeout=30)
            if m.ssl
            else imaplib.IMAP4(m.host, m.port, timeout=30)
        )
        imap.login(m.user, m.password)
        for folder in (m.processed, m.ignored):
            imap.create(_quote(folder))  # "already exists" is fine
        status, _ = imap.select(_quote(m.inbox))
        if status != "OK":
            raise ConnectionError(f"cannot open the mailbox folder {m.inbox}")
        return imap

    def _pending(self, imap: imaplib.IMAP4) -> list[str]:
        _, data = imap.uid("SEARCH", "UNDELETED")
        uids = data[0].decode("ascii").split() if data and data[0] else []
        return uids[: self.mailbox.batch]

    def _fetch(self, imap: imaplib.IMAP4, uid: str) -> tuple[bytes, datetime | None]:
        _, parts = imap.uid("FETCH", uid, "(INTERNALDATE BODY.PEEK[])")
        raw, received = b"", None
        for part in parts:
            if isinstance(part, tuple):
                raw = part[1]
                stamp = imaplib.Internaldate2tuple(part[0])
                if stamp is not None:
                    received = datetime(*stamp[:6], tzinfo=UTC)
        return raw, received

    def _file(self, imap: imaplib.IMAP4, uid: str, folder: str) -> None:
        """Move the message (COPY, flag deleted, expunge where MOVE is not offered)."""
        status, _ = imap.uid("MOVE", uid, _quote(folder))
        if status == "OK":
            return
        status, _ = imap.uid("COPY", uid, _quote(folder))
        if status != "OK":
            raise ConnectionError(f"cannot file a message in {folder}")
        imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
        imap.expunge()

    # ---- one poll

    async def poll_once(self) -> list[Handled]:
        """Handle up to a batch of messages from the inbox, each filed once its case has it."""
        imap = await asyncio.to_thread(self._connect)
        done: list[Handled] = []
        try:
            for uid in await asyncio.to_thread(self._pending, imap):
                raw, received = await asyncio.to_thread(self._fetch, imap, uid)
                handled = await self.handle(raw, received)
                folder = self.mailbox.ignored if handled.outcome == "ignored" else self.mailbox.processed
                await asyncio.to_thread(self._file, imap, uid, folder)
                log.info(
                    "mail handled",
                    outcome=handled.outcome,
                    reference=handled.reference,
                    reason=handled.reason,
                )
                done.append(handled)
        finally:
            await asyncio.to_thread(_logout, imap)
        return done

    async def handle(self, raw: bytes, received: datetime | None = None) -> Handled:
        parsed = await asyncio.to_thread(parse_message, raw, self.policy)
        if parsed.outcome == Outcome.IGNORED:
            return Handled(parsed.message_id, "ignored", None, parsed.reason)
        if parsed.outcome == Outcome.REPLY:
            reference = self._case_of(parsed)
            if reference is not None:
                return await self._attach(parsed, raw, reference)
            if parsed.request_type is not None:  # a request written as a reply to other mail
                return await self._open(parsed, raw, received)
            return await self._open(parsed, raw, received, triage="a reply that names no case we hold")
        if parsed.outcome == Outcome.TRIAGE or parsed.request_type is None:
            return await self._open(parsed, raw, received, triage=parsed.reason or "not understood")
        return await self._open(parsed, raw, received)

    def _case_of(self, parsed: ParsedMessage) -> str | None:
        candidates = [parsed.case_reference or ""]
        candidates += [m.group(0) for i in parsed.in_reply_to if (m := REFERENCE.search(i))]
        for reference in candidates:
            if reference and self.store.get(reference) is not None:
                return reference
        return None

    async def _open(
        self, parsed: ParsedMessage, raw: bytes, received: datetime | None, triage: str = ""
    ) -> Handled:
        document = _authority_document(parsed) if parsed.agent is not None else None
        # The input gate (dsar.inputs): an identifier it refuses is left out, and a person reads
        # the message (quarantine with a reason: kinds only, never values).
        identifiers, refused = usable_identifiers(dict(parsed.identifiers), phone_region(self.settings))
        if refused and not triage:
            triage = f"identifier(s) we cannot take as written: {', '.join(refused)}"
        new = NewRequest(
            request_type=parsed.request_type or RequestType.ACCESS,  # provisional in triage
            regime=parsed.regime or self.policy.default_regime,
            identifiers=identifiers,
            channel=Channel.EMAIL,
            idempotency_key=_key(parsed.message_id),
            received_at=received,
            agent=parsed.agent,
            authority_document=document,
            triage_reason=triage,
            **_type_details(parsed, phone_region(self.settings)),
        )
        try:
            opened = await open_case(self.client, self.store, self.settings, new, self.controller, self.blobs)
        except IntakeError as e:
            if triage:
                raise
            # Readable but not enough to act on (no identifier at all, a bad agent address):
            # a person reads it. The message names the field, never a value.
            new.triage_reason = f"cannot open as read: {e}"
            new.request_type, new.regime = RequestType.ACCESS, parsed.regime or self.policy.default_regime
            new.agent, new.authority_document = None, None
            new.corrections, new.transfer_to, new.objection = {}, "", ""
            opened = await open_case(self.client, self.store, self.settings, new, self.controller, self.blobs)
            triage = new.triage_reason
        if opened.created:
            await asyncio.to_thread(self._file_original, opened.reference, parsed, raw)
        outcome = "triage" if triage else "request"
        return Handled(parsed.message_id, outcome, opened.reference, triage or parsed.reason)

    def _file_original(self, reference: str, parsed: ParsedMessage, raw: bytes) -> None:
        """The message and its attachments, encrypted, on the case file (an audited entry)."""
        original = self.blobs.put(raw, case=reference, name="email.eml")
        kept = [
            self.blobs.put(a.data, case=reference, name=f"attachment-{a.index}.bin")
            for a in parsed.attachments
            if a.data and not a.refused
        ]
        refused = [f"{a.index}: {a.refused}" for a in parsed.attachments if a.refused]
        details = {"message": original, "attachments": ",".join(kept) or "none"}
        if refused:
            details["refused"] = "; ".join(refused)
        self.store.append_audit(
            reference, "intake:email", "intake:email", reason=parsed.reason, details=details,
            event_key=f"{reference}/intake/email",
        )  # fmt: skip

    async def _attach(self, parsed: ParsedMessage, raw: bytes, reference: str) -> Handled:
        original = await asyncio.to_thread(self.blobs.put, raw, case=reference, name="email-reply.eml")
        document = _authority_document(parsed)
        document_ref = None
        if document is not None:
            document_ref = await asyncio.to_thread(
                self.blobs.put, document, case=reference, name="email-document.bin"
            )
        identifiers, _ = usable_identifiers(dict(parsed.identifiers), phone_region(self.settings))
        mail = Correspondence(
            message_id=parsed.message_id,
            sender=parsed.sender,
            original=original,
            identifiers=identifiers,
            document=document_ref,
        )
        handle = self.client.get_workflow_handle_for(DataSubjectRequest.run, reference)
        try:
            result = await handle.execute_update(DataSubjectRequest.receive_correspondence, mail)
        except WorkflowUpdateFailedError:  # the case refused it (closed): kept in Processed
            return Handled(parsed.message_id, "reply", reference, "the case is closed: filed, not used")
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise  # the engine is unreachable: left in the inbox for the next poll
            return Handled(parsed.message_id, "reply", reference, "the case has ended: filed, not used")
        return Handled(parsed.message_id, "reply", reference, result)


def _authority_document(parsed: ParsedMessage) -> bytes | None:
    """The first attachment that is a PDF, JPEG or PNG by its first bytes (an agent's signed
    permission, a scanned letter); never one intake refused."""
    for a in parsed.attachments:
        if a.data and not a.refused and any(a.data.startswith(magic) for magic, _ in SIGNATURES):
            return a.data
    return None


def _type_details(parsed: ParsedMessage, region: str | None) -> dict[str, Any]:
    """What the message states its type needs, as far as the input gate takes it: a correction
    or an address it refuses is left out (the operator reads the message and can add it)."""
    corrections, _ = usable_identifiers(dict(parsed.details.corrections), region)
    try:
        transfer_to = clean_transfer_to(parsed.details.transfer_to, parsed.request_type or RequestType.ACCESS)
    except IntakeError:
        transfer_to = ""
    return {"corrections": corrections, "transfer_to": transfer_to, "objection": parsed.details.objection}


def _key(message_id: str) -> str:
    key = f"email:{message_id}"
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return "email:sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _logout(imap: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        imap.logout()


__all__ = ["Handled", "MailboxIntake", "MailboxSettings", "Regime"]
