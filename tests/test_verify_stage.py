"""Identity verification as a case runs it: matching by itself, asking the person for more through
a secure form, a confirmation link to the address on file for an online erasure, lockout after
repeated failures, and a person who never answers. Letters go through a real SMTP server on
loopback and the tests follow the links in the delivered messages, as the person would."""

from __future__ import annotations

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
from dsar.model import (
    Channel,
    ClockEvent,
    ClockEventType,
    DecisionKind,
    ProvidedIdentifiers,
    Regime,
    RequestType,
    Stage,
)
from dsar.settings import Settings
from dsar.store import CaseStore
from tests.conftest import ROOT, make_settings
from tests.test_workflow import at_stage, clock_due, decide, start, wait_until
from workflows.request import DataSubjectRequest

LOCKED = "operator: identity check (locked after repeated failed attempts)"
LINK = re.compile(r"http://public\.test/r/DSR-\d{4}-\d+/(?:confirm|provide)\?t=[A-Za-z0-9._~%-]+")


@pytest.fixture
def settings(tmp_path: Path, demo_env: dict[str, str], register_url: str, smtp_server: object) -> Settings:
    document = yaml.safe_load((ROOT / "demo" / "dsar.yaml").read_text())
    document["systems"] = {k: v for k, v in document["systems"].items() if v["connector"] == "sql"}
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


def mail_to(smtp_server: object, address: str, subject_part: str, timeout: float = 10) -> EmailMessage:
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
        time.sleep(0.05)


def link_in(message: EmailMessage) -> str:
    match = LINK.search(message.get_content())
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
    letter = mail_to(smtp_server, MARGARET["email"], "a little more information")
    body = letter.get_content()
    assert "1 more piece(s)" in body
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
    letter = mail_to(smtp_server, MARGARET["email"], "Please confirm your request")
    on_file = str(letter["To"]).strip()
    assert on_file != typed.strip() and on_file.lower() == MARGARET["email"]  # as we hold it
    assert "erase your personal data" in letter.get_content()
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
    await at_stage(h, Stage.REVIEWING)


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
    mail_to(smtp_server, MARGARET["email"], "Reminder: we are waiting for information to confirm")
    await ts_env.sleep(timedelta(days=settings.wait_for_person_days / 2))
    s = await at_stage(h, Stage.EXPIRED)
    assert "information to confirm your identity" in (s.outcome or "")
    mail_to(smtp_server, MARGARET["email"], "")  # letters reached the person
    assert store.get(h.id).stage == "expired"  # type: ignore[union-attr]


__all__ = ["Channel"]
