"""The privacy@ mailbox against a real IMAP server (Debian's dovecot, started by the tests):
messages delivered to the inbox become cases, replies attach to theirs, what is not a case is
filed away, what cannot be read waits in triage, and a poller that dies mid-batch neither loses
nor duplicates a case."""

from __future__ import annotations

import imaplib
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from demo.seed import MARGARET
from dsar.blobs import blob_store_from_settings
from dsar.model import Decision, DecisionKind, Regime, RequestType, Stage
from dsar.settings import Settings
from dsar.store import CaseStore
from intake.mail import MailboxPolicy
from intake.mailbox import MailboxIntake, MailboxSettings
from tests.imapserver import ImapServer, imap_server  # noqa: F401 - the fixture
from tests.test_workflow import wait_until
from workflows.request import DataSubjectRequest

PRIVACY = "privacy@northwind.example.co.uk"


def mail(sender: str, subject: str, body: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = PRIVACY
    msg["Subject"] = subject
    msg["Message-ID"] = headers.pop("message_id", make_msgid(domain="example.com"))
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return bytes(msg)


ACCESS = mail(
    f"Margaret Ellis <{MARGARET['email']}>",
    "Subject access request",
    "Dear Sir or Madam,\n\nUnder the UK GDPR I am making a subject access request for a copy of all "
    "the personal data you hold about me.\n\nYours faithfully,\nMargaret Ellis\n",
)
ERASURE = mail(
    "Tom Baker <tom.baker@example.net>",
    "Please delete my account",
    "Hi, please delete my account and erase all my personal data. Thanks, Tom Baker\n",
)
AUTO_REPLY = mail(
    "Someone <someone@example.org>",
    "Out of office: your newsletter",
    "I am away until Monday.\n",
    Auto_Submitted="auto-replied",
)
UNCLEAR = mail(
    "Jo Public <jo.public@example.org>",
    "Question",
    "Hello, when will my parcel arrive? It was meant to come on Tuesday.\n",
)


@pytest.fixture
def mailbox(imap_server: ImapServer) -> Iterator[tuple[ImapServer, str]]:  # noqa: F811
    yield imap_server, imap_server.add_user()


def intake_for(
    ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings, server: ImapServer, user: str
) -> MailboxIntake:
    return MailboxIntake(
        MailboxSettings(server.host, server.port, user, server.password, ssl=False),
        MailboxPolicy(default_regime=Regime.UK_GDPR),
        ts_env.client,
        store,
        settings,
        blob_store_from_settings(settings),
        controller="Northwind Post & Mobile",
    )


async def test_messages_in_the_inbox_become_cases_and_every_message_is_filed(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    mailbox: tuple[ImapServer, str],
) -> None:
    server, user = mailbox
    for raw in (ACCESS, ERASURE, AUTO_REPLY, UNCLEAR):
        server.deliver(user, raw)
    handled = await intake_for(ts_env, store, settings, server, user).poll_once()
    assert [h.outcome for h in handled] == ["request", "request", "ignored", "triage"]
    assert server.message_ids(user, "INBOX") == []
    assert len(server.message_ids(user, "DSAR/Processed")) == 3
    assert len(server.message_ids(user, "DSAR/Ignored")) == 1

    access, erasure, _, unclear = handled
    row = store.get(access.reference or "")
    assert row is not None and (row.request_type, row.regime, row.channel) == ("access", "UK_GDPR", "email")
    assert store.get(erasure.reference or "").request_type == "erasure"  # type: ignore[union-attr]
    trail = store.audit_trail(access.reference or "")
    filed = next(e for e in trail if e.action == "intake:email")
    original = blob_store_from_settings(settings).get(filed.details["message"])
    assert original == ACCESS.replace(b"\n", b"\r\n")  # the message as delivered (CRLF), encrypted at rest
    assert MARGARET["email"] not in str([(e.reason, e.details) for e in trail])

    # Not understood: a case in triage, which an operator classifies.
    h: WorkflowHandle[DataSubjectRequest, str] = ts_env.client.get_workflow_handle_for(
        DataSubjectRequest.run, unclear.reference or ""
    )
    s = await wait_until(h, lambda s: s.stage == Stage.TRIAGE)
    assert s.waiting_for == "operator: triage (say what the message asks for)"
    assert store.get(unclear.reference or "").stage == "triage"  # type: ignore[union-attr]
    await h.execute_update(
        DataSubjectRequest.decide,
        Decision(DecisionKind.CLASSIFY, "operator:alice", request_type="erasure", regime="UK_GDPR"),
    )
    s = await wait_until(h, lambda s: s.stage not in (Stage.TRIAGE, Stage.RECEIVED, Stage.ACKNOWLEDGED))
    assert s.request_type == RequestType.ERASURE
    row = store.get(unclear.reference or "")
    assert row is not None and row.request_type == "erasure"


async def test_a_reply_in_the_thread_attaches_to_its_case(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    mailbox: tuple[ImapServer, str],
) -> None:
    server, user = mailbox
    intake = intake_for(ts_env, store, settings, server, user)
    first = mail(MARGARET["email"], "Copy of my data please", "Please send me a copy of my data.\n")
    server.deliver(user, first)
    (opened,) = await intake.poll_once()
    ref = opened.reference or ""
    h: WorkflowHandle[DataSubjectRequest, str] = ts_env.client.get_workflow_handle_for(
        DataSubjectRequest.run, ref
    )
    await wait_until(h, lambda s: s.waiting_for == "person: identity")  # one point of two

    stranger = mail(
        "someone.else@example.org",
        f"Re: We need a little more information to confirm your identity ({ref})",
        f"My name is Margaret Ellis and my phone is {MARGARET['phone']}.\n",
    )
    reply = mail(
        MARGARET["email"],
        f"Re: We need a little more information to confirm your identity ({ref})",
        f"Hello,\n\nMy name is Margaret Ellis and my mobile number is {MARGARET['phone']}.\n\nMargaret\n",
        In_Reply_To=f"<0123456789abcdef0123456789abcdef.{ref}@dsar>",
    )
    server.deliver(user, stranger)
    server.deliver(user, reply)
    handled = await intake.poll_once()
    assert [(x.outcome, x.reference) for x in handled] == [("reply", ref), ("reply", ref)]
    # The reply's identifiers were matched: enough points (this map leaves the decision to an
    # operator, who now sees the match).
    s = await wait_until(h, lambda s: s.waiting_for == "operator: identity check")
    assert s.identity is not None and s.identity.rounds == 2 and "phone" in s.identity.matched_kinds
    received = [e for e in store.audit_trail(ref) if e.action == "correspondence:received"]
    assert [e.details["used"] for e in received] == ["none", "identifiers"]
    assert "not from the requester's address" in received[0].reason
    # The same reply again (a poller re-run): taken once.
    server.deliver(user, reply)
    (again,) = await intake.poll_once()
    assert again.reason == "already received"


class CrashingIntake(MailboxIntake):
    """Dies after opening the third case but before filing its message (a killed poller)."""

    filed = 0

    def _file(self, imap: imaplib.IMAP4, uid: str, folder: str) -> None:
        if self.filed == 2:
            raise KeyboardInterrupt("poller killed")
        self.filed += 1
        super()._file(imap, uid, folder)


async def test_a_poller_killed_mid_batch_neither_loses_nor_duplicates_a_case(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    mailbox: tuple[ImapServer, str],
) -> None:
    server, user = mailbox
    sent = [
        mail(
            f"person{i}@example.org",
            "Subject access request",
            f"Please send me a copy of my data. Person {i}\n",
        )
        for i in range(5)
    ]
    for raw in sent:
        server.deliver(user, raw)
    before = {r.reference for r in store.queue(limit=100_000)}
    crashing = CrashingIntake(*vars(intake_for(ts_env, store, settings, server, user)).values())
    with pytest.raises(KeyboardInterrupt):
        await crashing.poll_once()
    assert len(server.message_ids(user, "DSAR/Processed")) == 2
    handled = await intake_for(ts_env, store, settings, server, user).poll_once()
    assert len(handled) == 3
    opened = {r.reference for r in store.queue(limit=100_000)} - before
    assert len(opened) == 5  # the third message reached the case the killed poller opened
    assert server.message_ids(user, "INBOX") == []
    assert len(server.message_ids(user, "DSAR/Processed")) == 5


async def test_an_identifier_the_input_gate_refuses_is_quarantined_in_triage_not_lost(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    mailbox: tuple[ImapServer, str],
) -> None:
    """Issue 18: email intake applies the API's gate. An address ``email-validator`` refuses
    (two dots in a row) is left out and a person reads the message: the case opens in triage
    with the kind named, nothing crashes the poller, and the message is filed."""
    server, user = mailbox
    raw = mail(
        "Margaret Ellis <margaret..ellis@example.com>",
        "Subject access request",
        "Dear Sir or Madam,\n\nI am making a subject access request for a copy of all the personal "
        "data you hold about me.\n\nYours faithfully,\nMargaret Ellis\n",
    )
    server.deliver(user, raw)
    (handled,) = await intake_for(ts_env, store, settings, server, user).poll_once()
    assert handled.outcome == "triage" and handled.reason == "identifier(s) we cannot take as written: email"
    assert server.message_ids(user, "INBOX") == []
    h: WorkflowHandle[DataSubjectRequest, str] = ts_env.client.get_workflow_handle_for(
        DataSubjectRequest.run, handled.reference or ""
    )
    s = await wait_until(h, lambda s: s.stage == Stage.TRIAGE)
    assert s.waiting_for == "operator: triage (say what the message asks for)"
