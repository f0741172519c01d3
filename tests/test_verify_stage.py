"""Identity verification as a case runs it: matching by itself, asking the person for more through
a secure form, a confirmation link to the address on file for an online erasure, lockout after
repeated failures, and a person who never answers. Letters go through a real SMTP server on
loopback and the tests follow the links in the delivered messages, as the person would."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import yaml
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from console.app import create_app
from demo.seed import MARGARET, NAMESAKE, PETER
from dsar.blobs import blob_store_from_settings
from dsar.model import (
    AgentAuthority,
    AgentDetails,
    Channel,
    ClockEvent,
    ClockEventType,
    Decision,
    DecisionKind,
    ProvidedIdentifiers,
    Regime,
    RequestType,
    Stage,
)
from dsar.settings import Settings
from dsar.store import CaseStore
from intake.service import IntakeError, NewRequest, open_case
from tests.conftest import ROOT, keep_systems, make_settings, read
from tests.test_workflow import at_stage, clock_due, decide, start, wait_until
from workflows.request import DataSubjectRequest

LOCKED = "operator: identity check (locked after repeated failed attempts)"
LINK = re.compile(r"http://public\.test/r/DSR-\d{4}-\d+/(?:confirm|provide)\?t=[A-Za-z0-9._~%-]+")


@pytest.fixture
def settings(tmp_path: Path, demo_env: dict[str, str], register_url: str, smtp_server: object) -> Settings:
    document = yaml.safe_load((ROOT / "demo" / "dsar.yaml").read_text())
    keep_systems(document, lambda _, v: v["connector"] == "sql")
    document["verification"] = {"max_attempts": 2}
    path = tmp_path / "dsar.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return make_settings(
        tmp_path / "var",
        database_url=register_url,
        datamap=path,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,  # type: ignore[attr-defined]
        public_url="http://public.test",
        wait_for_person_days=10,
    )


@pytest.fixture
async def person(
    ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    """The person's browser: the public pages of the app, as the links in the letters lead."""
    app = create_app(settings, client=ts_env.client, store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://public.test"
    ) as client:
        yield client


async def mail_to(smtp_server: object, address: str, subject_part: str, timeout: float = 30) -> EmailMessage:
    """The latest letter to ``address`` whose subject has ``subject_part`` (waiting a little:
    letters leave when the workflow gets to them)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            m
            for m in smtp_server.messages  # type: ignore[attr-defined]
            if address.strip().lower() in str(m["To"]).lower() and subject_part in str(m["Subject"])
        ]
        if found:
            return found[-1]  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"no letter '{subject_part}' to the address"
        await asyncio.sleep(0.05)


def link_in(message: EmailMessage) -> str:
    match = LINK.search(message.get_body(("plain",)).get_content())
    assert match, "no link in the letter"
    return match.group(0)


async def identity(h: WorkflowHandle[DataSubjectRequest, str]) -> dict[str, object]:
    snap = await h.query(DataSubjectRequest.snapshot)
    assert snap.identity is not None
    return snap.identity.__dict__  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- matching by itself


async def test_enough_matching_points_verify_the_person_without_an_operator(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    ids = {k: MARGARET[k] for k in ("name", "email", "phone")}
    h = await start(ts_env, store, settings, identifiers=ids)
    s = await at_stage(h, Stage.REVIEWING)
    assert s.results["verifying"].startswith("identity confirmed: 3 point(s) of 2 needed")
    check = await identity(h)
    assert check["points"] == 3 and check["matched_kinds"] == ["email", "name", "phone"]
    trail = store.audit_trail(h.id)
    matched = next(e for e in trail if e.action == "identity:matched")
    assert matched.details == {"points": "3", "needed": "2", "kinds": "email,name,phone"}
    assert MARGARET["email"] not in str([e.details for e in trail]) + str([e.reason for e in trail])


# --------------------------------------------------------------------------- asking for more


async def test_short_points_ask_for_more_through_a_form_and_the_answer_verifies(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    smtp_server: object,
    person: httpx.AsyncClient,
) -> None:
    """CCPA specific pieces: three points and a signed declaration (11 CCR §7062(b))."""
    ids = {"name": MARGARET["name"], "email": MARGARET["email"]}
    h = await start(ts_env, store, settings, regime=Regime.CCPA, identifiers=ids)
    s = await wait_until(h, lambda s: s.waiting_for == "person: identity")
    due_before = s.due
    letter = await mail_to(smtp_server, MARGARET["email"], "More information needed")
    body = read(letter)
    assert "Please give us 1 more piece of information about yourself" in body
    for held in (MARGARET["phone"], "7911", MARGARET["postcode"], MARGARET["date_of_birth"]):
        assert held not in body  # the letter never tells what we hold

    url = link_in(letter)
    form = await person.get(url)
    assert form.status_code == 200
    assert 'name="phone"' in form.text and 'name="declaration"' in form.text
    assert 'name="email"' not in form.text  # only kinds not given yet
    assert "7911" not in form.text
    token = url.split("t=", 1)[1]
    answer = await person.post(
        url.split("?")[0], data={"t": token, "phone": "07911 123456", "declaration": "yes"}
    )
    assert answer.status_code == 200, answer.text
    assert "7911" not in answer.text  # no echo of what was matched

    s = await at_stage(h, Stage.REVIEWING)
    check = await identity(h)
    assert check["points"] == 3 and check["declared"] is True and check["rounds"] == 2
    assert s.due == due_before  # CCPA: asking for identity does not pause the clock
    actions = [e.action for e in store.audit_trail(h.id)]
    assert "identity:more_requested" in actions and "identity:received" in actions


async def test_a_person_who_gave_no_email_is_asked_for_more_by_post_without_an_operator_task(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings, smtp_server: object
) -> None:
    """Issue 20: "email" is among what such a person has not given, but the form cannot ask for
    it (the link goes where the email would): the letter asks for the rest instead of failing
    into an operator task."""
    h = await start(ts_env, store, settings, identifiers={"name": MARGARET["name"]})
    await wait_until(h, lambda s: s.waiting_for == "person: identity")
    letter = await mail_to(smtp_server, settings.operator_email, "More information needed")
    assert "Please post this letter" in str(letter["Subject"])  # no email: it goes by post
    s = await h.query(DataSubjectRequest.snapshot)
    assert s.waiting_for == "person: identity" and not [t for t in s.tasks if t.status == "open"], s.tasks
    assert "identity:more_requested" in [e.action for e in store.audit_trail(h.id)]


# --------------------------------------------------------------------------- confirmation link


async def test_online_erasure_is_confirmed_from_the_address_on_file_and_the_link_is_single_use(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    smtp_server: object,
    person: httpx.AsyncClient,
) -> None:
    typed = "  MARGARET.ELLIS@example.COM "
    ids = {"name": MARGARET["name"], "email": typed, "phone": MARGARET["phone"]}
    h = await start(ts_env, store, settings, request_type=RequestType.ERASURE, identifiers=ids)
    await wait_until(h, lambda s: s.waiting_for == "person: confirmation")
    letter = await mail_to(smtp_server, MARGARET["email"], "Please confirm your request")
    on_file = str(letter["To"]).strip()
    assert on_file != typed.strip() and on_file.lower() == MARGARET["email"]  # as we hold it
    assert "erase your personal data" in read(letter)
    url = link_in(letter)
    page = await person.get(url)
    assert page.status_code == 200 and "<form" in page.text
    token = url.split("t=", 1)[1]
    done = await person.post(url.split("?")[0], data={"t": token})
    assert done.status_code == 200, done.text
    s = await at_stage(h, Stage.REVIEWING)
    assert "confirmed by the person from the address on file" in s.results["verifying"]
    assert (await identity(h))["confirmation"] == "confirmed"
    again = await person.post(url.split("?")[0], data={"t": token})
    assert again.status_code in (400, 410) and "already been used" in again.text.lower()


# --------------------------------------------------------------------------- lockout


async def test_split_identity_asks_for_more_and_repeated_failures_lock_the_case(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    ids = {"email": NAMESAKE["email"], "phone": PETER["phone"]}  # two people's identifiers
    h = await start(ts_env, store, settings, identifiers=ids)
    await wait_until(h, lambda s: s.waiting_for == "person: identity")
    check = await identity(h)
    assert check["points"] < 2
    # the first round was one failed attempt (two people's identifiers); a wrong date of birth
    # is the second, and the policy allows two
    await h.execute_update(
        DataSubjectRequest.provide_identifiers, ProvidedIdentifiers({"date_of_birth": "1970-01-01"})
    )
    await wait_until(h, lambda s: s.waiting_for == LOCKED)
    assert (await identity(h))["locked"] is True
    assert "identity:locked" in [e.action for e in store.audit_trail(h.id)]
    await decide(h, DecisionKind.VERIFY, reason="called the customer back on the number we hold")
    # two people's identifiers collect nobody's records, and the search cannot say "nothing held"
    # either: the CRM holds both people. An operator decides (retry or leave it out).
    s = await wait_until(h, lambda s: any(t.status == "open" for t in s.tasks))
    (task,) = [t for t in s.tasks if t.status == "open"]
    assert task.error_type == "SearchAmbiguous" and task.system == "crm"
    await h.execute_update(
        DataSubjectRequest.decide,
        Decision(kind=DecisionKind.SKIP_STEP, actor="operator:bob", task=task.id, reason="wrote to her"),
    )
    s = await at_stage(h, Stage.RESPONDED)
    assert s.outcome == "no personal data held: the person was told so"
    assert next(x for x in s.systems if x.system == "crm").status == "skipped"


# --------------------------------------------------------------------------- the clock while waiting


async def test_a_person_who_answers_on_day_7_moves_the_uk_due_date_to_a_month_after_the_answer(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    """UK GDPR Art 12A, vector UK-19: the month runs from receipt of the identity information."""
    h = await start(ts_env, store, settings, identifiers={"email": MARGARET["email"]})
    s = await wait_until(h, lambda s: s.waiting_for == "person: identity")
    received = date.fromisoformat(s.received)
    asked = next(e for e in s.clock_events if e.type == ClockEventType.IDENTITY_REQUESTED)
    await ts_env.sleep(timedelta(days=7))
    await h.execute_update(
        DataSubjectRequest.provide_identifiers,
        ProvidedIdentifiers({"name": MARGARET["name"], "phone": MARGARET["phone"]}),
    )
    s = await at_stage(h, Stage.REVIEWING)
    answered = next(e for e in s.clock_events if e.type == ClockEventType.IDENTITY_RECEIVED)
    assert (date.fromisoformat(answered.date) - date.fromisoformat(asked.date)).days == 7
    events = [ClockEvent(ClockEventType.IDENTITY_REQUESTED, asked.date), answered]
    assert s.due == clock_due(Regime.UK_GDPR, RequestType.ACCESS, received, events, "GB-EAW").isoformat()
    answered_on = date.fromisoformat(answered.date)
    assert date.fromisoformat(s.due) >= answered_on.replace(month=answered_on.month % 12 + 1, day=1)


async def test_a_person_who_never_answers_expires_after_the_wait_with_a_letter(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings, smtp_server: object
) -> None:
    h = await start(ts_env, store, settings, identifiers={"email": MARGARET["email"]})
    await wait_until(h, lambda s: s.waiting_for == "person: identity")
    await ts_env.sleep(timedelta(days=settings.wait_for_person_days / 2, hours=1))
    await wait_until(h, lambda s: True)
    await mail_to(smtp_server, MARGARET["email"], "Reminder: we are waiting for information to confirm")
    await ts_env.sleep(timedelta(days=settings.wait_for_person_days / 2))
    s = await at_stage(h, Stage.EXPIRED)
    assert "information to confirm your identity" in (s.outcome or "")
    await mail_to(smtp_server, MARGARET["email"], "")  # letters reached the person
    assert store.get(h.id).stage == "expired"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- authorised agents

AGENT = AgentDetails(name="Priya Shah", email="priya.shah@agents.example.net")
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% signed permission, Margaret Ellis\n%%EOF\n"
AUTHORITY_LINK = re.compile(r"http://public\.test/r/DSR-\d{4}-\d+/authority\?t=[A-Za-z0-9._~%-]+")


async def start_by_agent(
    env: WorkflowEnvironment,
    store: CaseStore,
    settings: Settings,
    identifiers: dict[str, str],
    authority: AgentAuthority = AgentAuthority.WRITTEN_PERMISSION,
    document: bytes | None = None,
) -> WorkflowHandle[DataSubjectRequest, str]:
    opened = await open_case(
        env.client,
        store,
        settings,
        NewRequest(
            request_type=RequestType.ACCESS,
            regime=Regime.UK_GDPR,
            identifiers=identifiers,
            received_at=await env.get_current_time(),
            agent=AgentDetails(AGENT.name, AGENT.email, authority),
            authority_document=document,
        ),
        controller="Northwind Post & Mobile",
        blobs=blob_store_from_settings(settings),
    )
    return env.client.get_workflow_handle_for(DataSubjectRequest.run, opened.reference)


async def confirm_as_the_person(smtp_server: object, person: httpx.AsyncClient) -> EmailMessage:
    letter = await mail_to(smtp_server, MARGARET["email"], "Please confirm your request")
    assert "on your behalf" in read(letter)
    url = link_in(letter)
    done = await person.post(url.split("?")[0], data={"t": url.split("t=", 1)[1]})
    assert done.status_code == 200, done.text
    return letter


def letters_to(smtp_server: object, address: str) -> list[str]:
    return [str(m["Subject"]) for m in smtp_server.messages if address in str(m["To"]).lower()]  # type: ignore[attr-defined]


FULL = {k: MARGARET[k] for k in ("name", "email", "phone")}

#: (id, authority, document with the request, identifiers, what happens)
AGENT_SCENARIOS = [
    ("permission-with-request-person-confirms", AgentAuthority.WRITTEN_PERMISSION, PDF, FULL, "confirm"),
    (
        "no-permission-agent-uploads-then-person-confirms",
        AgentAuthority.WRITTEN_PERMISSION,
        None,
        FULL,
        "upload",
    ),
    ("no-permission-never-sent-expires", AgentAuthority.WRITTEN_PERMISSION, None, FULL, "expire"),
    ("power-of-attorney-goes-to-an-operator", AgentAuthority.POWER_OF_ATTORNEY, PDF, FULL, "operator"),
    (
        "short-points-person-asked-directly",
        AgentAuthority.WRITTEN_PERMISSION,
        PDF,
        {"email": MARGARET["email"]},
        "direct",
    ),
]


@pytest.mark.parametrize(("authority", "document", "ids", "path"), [r[1:] for r in AGENT_SCENARIOS],
                         ids=[r[0] for r in AGENT_SCENARIOS])  # fmt: skip
async def test_an_agents_request(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    smtp_server: object,
    person: httpx.AsyncClient,
    authority: AgentAuthority,
    document: bytes | None,
    ids: dict[str, str],
    path: str,
) -> None:
    h = await start_by_agent(ts_env, store, settings, ids, authority, document)
    # Letters about the request go to the agent, never the person's details to the agent.
    ack = await mail_to(smtp_server, AGENT.email, "We have received your request")
    assert "Dear Priya Shah" in ack.get_body(("plain",)).get_content()
    if document is None:
        s = await wait_until(h, lambda s: s.waiting_for == "person: authority")
        asked = await mail_to(smtp_server, AGENT.email, "Please send proof of your authority")
        match = AUTHORITY_LINK.search(asked.get_body(("plain",)).get_content())
        assert match, "no upload link in the letter to the agent"
        assert (await identity(h))["authority"] == "requested"
        assert any(e.type == ClockEventType.AUTHORITY_REQUESTED for e in s.clock_events)
        if path == "expire":
            await ts_env.sleep(timedelta(days=settings.wait_for_person_days, hours=1))
            s = await at_stage(h, Stage.EXPIRED)
            assert "proof of your authority to act" in (s.outcome or "")
            await mail_to(smtp_server, AGENT.email, "Your request has been closed")
            assert not letters_to(smtp_server, MARGARET["email"])  # nothing went to the person
            return
        url = match.group(0)
        page = await person.get(url)
        assert (
            page.status_code == 200
            and 'type="file"' in page.text
            and 'enctype="multipart/form-data"' in page.text
        )
        wrong = await person.post(
            url, files={"document": ("permission.pdf", b"MZ\x90\x00 not a pdf", "application/pdf")}
        )
        assert wrong.status_code == 415 and "must be a PDF, JPEG or PNG" in wrong.text
        sent = await person.post(url, files={"document": ("permission.pdf", PDF, "application/pdf")})
        assert sent.status_code == 200, sent.text
        again = await person.post(url, files={"document": ("permission.pdf", PDF, "application/pdf")})
        assert again.status_code in (400, 410) and "already been used" in again.text.lower()
        s = await wait_until(h, lambda s: s.waiting_for != "person: authority")
        assert any(e.type == ClockEventType.AUTHORITY_RECEIVED for e in s.clock_events)
    trail = store.audit_trail(h.id)
    received = next(e for e in trail if e.action == "agent:authority_received") if document is None else None
    if received is not None:
        blobs = blob_store_from_settings(settings)
        assert blobs.get(received.details["document"]) == PDF  # kept, encrypted at rest
    if path in ("confirm", "upload"):
        await confirm_as_the_person(smtp_server, person)
        s = await at_stage(h, Stage.REVIEWING)
        assert "confirmed by the person from the address on file" in s.results["verifying"]
        assert (await identity(h))["authority"] == "received"
    elif path == "operator":
        s = await wait_until(h, lambda s: s.waiting_for == "operator: identity check")
        assert "power of attorney" in (await identity(h))["reason"]
        assert not letters_to(smtp_server, MARGARET["email"])  # §7063(b): no direct confirmation
        await decide(h, DecisionKind.VERIFY, reason="power of attorney read: registered LPA, in date")
        await at_stage(h, Stage.REVIEWING)
    elif path == "direct":
        await wait_until(h, lambda s: s.waiting_for == "person: identity")
        letter = await mail_to(smtp_server, MARGARET["email"], "More information needed")
        assert "on your behalf" in read(letter)
        assert not [m for m in letters_to(smtp_server, AGENT.email) if "more information" in m]
    assert AGENT.email not in str([(e.reason, e.details) for e in store.audit_trail(h.id)])


async def test_an_agent_without_contact_details_is_refused_at_intake(
    ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings
) -> None:
    for agent, message in (
        (AgentDetails("Priya Shah", "not an address"), "email address is not valid"),
        (AgentDetails("", AGENT.email), "name and email address are both needed"),
    ):
        with pytest.raises(IntakeError, match=message):
            await open_case(
                ts_env.client, store, settings,
                NewRequest(RequestType.ACCESS, Regime.UK_GDPR, FULL, agent=agent), controller="Northwind",
            )  # fmt: skip
    with pytest.raises(IntakeError, match="agent's own name and email"):
        await open_case(
            ts_env.client, store, settings,
            NewRequest(RequestType.ACCESS, Regime.UK_GDPR, FULL, by_agent=True), controller="Northwind",
        )  # fmt: skip


async def test_a_refused_link_is_in_the_cases_audit_trail(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    smtp_server: object,
    person: httpx.AsyncClient,
) -> None:
    h = await start_by_agent(ts_env, store, settings, FULL)
    await wait_until(h, lambda s: s.waiting_for == "person: authority")
    url = AUTHORITY_LINK.search(
        (await mail_to(smtp_server, AGENT.email, "proof of your authority"))
        .get_body(("plain",))
        .get_content()
    )
    assert url
    head, token = url.group(0).split("t=", 1)
    forged = await person.post(
        head + "t=" + token[:-4] + "AAAA", files={"document": ("p.pdf", PDF, "application/pdf")}
    )
    assert forged.status_code in (400, 403) and "document" not in forged.text
    refusals = [e for e in store.audit_trail(h.id) if e.action == "link:refused"]
    assert [(e.reason, e.details["page"]) for e in refusals] == [("altered", "authority")]
    assert store.verify_chain(h.id).ok
    assert (await identity(h))["authority"] == "requested"  # nothing was taken


__all__ = ["Channel"]
