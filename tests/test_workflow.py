"""DataSubjectRequest on the time-skipping test server with the real activities.

Every stage transition, every refused transition, the clock's reminders, escalation and breach,
pauses, restarts and extensions moving the due date, idempotent intake and the early exits.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import re
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import httpx
import pytest
import pyzipper
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from console.app import create_app
from dsar.blobs import blob_store_from_settings
from dsar.clock import ClockPolicy, DeadlineKind, StatutoryClock
from dsar.model import (
    Channel,
    ClockEvent,
    ClockEventType,
    Decision,
    DecisionKind,
    Regime,
    RequestType,
    Snapshot,
    Stage,
)
from dsar.settings import Settings
from dsar.store import CaseStore
from dsar.timeutil import due_attribute, end_of_day, local_date, local_instant
from intake.service import NewRequest, open_case
from tests.conftest import read
from workflows.request import DataSubjectRequest
from workflows.rules import ALLOWED

_WAITS = {Stage.VERIFYING, Stage.REVIEWING}
MARGARET = {"name": "Margaret Ellis", "email": "margaret.ellis@example.com", "phone": "+44 7911 123456"}
TZ = "Europe/London"


async def start(
    env: WorkflowEnvironment,
    store: CaseStore,
    settings: Settings,
    request_type: RequestType = RequestType.ACCESS,
    regime: Regime = Regime.UK_GDPR,
    key: str | None = None,
    identifiers: dict[str, str] | None = None,
) -> WorkflowHandle[DataSubjectRequest, str]:
    opened = await open_case(
        env.client,
        store,
        settings,
        NewRequest(
            request_type=request_type,
            regime=regime,
            identifiers=identifiers or MARGARET,
            channel=Channel.API,
            idempotency_key=key,
            received_at=await env.get_current_time(),
        ),
        controller="Northwind Post & Mobile",
    )
    return env.client.get_workflow_handle_for(DataSubjectRequest.run, opened.reference)


async def snap(handle: WorkflowHandle[DataSubjectRequest, str]) -> Snapshot:
    return await handle.query(DataSubjectRequest.snapshot)


async def wait_until(
    handle: WorkflowHandle[DataSubjectRequest, str],
    check: Callable[[Snapshot], object],
    timeout: float = 15.0,
) -> Snapshot:
    deadline = time.monotonic() + timeout
    while True:
        s = await snap(handle)
        if check(s):
            return s
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached; case is {s.stage}, waiting for {s.waiting_for}")
        await asyncio.sleep(0.05)


async def at_stage(handle: WorkflowHandle[DataSubjectRequest, str], stage: Stage) -> Snapshot:
    """Wait for a stage, and for the stage's own work to be done (it waits for someone)."""
    return await wait_until(
        handle,
        lambda s: (
            s.stage == stage
            and (
                stage not in _WAITS
                or bool(s.waiting_for and not s.waiting_for.startswith("matching identity"))
            )
        ),
    )


async def decide(
    handle: WorkflowHandle[DataSubjectRequest, str], kind: DecisionKind, reason: str = "", ground: str = ""
) -> str:
    result = await handle.execute_update(
        DataSubjectRequest.decide, Decision(kind=kind, actor="operator:alice", reason=reason, ground=ground)
    )
    return result.message


async def ended(handle: WorkflowHandle[DataSubjectRequest, str], stage: Stage) -> Snapshot:
    """Wait for a case to end. Its workflow keeps running while the case file is kept (then
    purges it), so ``result()`` is not the signal."""
    return await wait_until(handle, lambda s: s.stage == stage)


async def refused(handle: WorkflowHandle[DataSubjectRequest, str], kind: DecisionKind, **kw: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(handle, kind, **kw)
    return str(info.value.cause)


def letters(settings: Settings) -> list[EmailMessage]:
    out = []
    for p in sorted(settings.resolved_mail_dir.glob("*.eml")):
        msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def plain_text(message: EmailMessage) -> str:
    """A letter's text part (letters are text with an HTML alternative)."""
    part = message.get_body(("plain",))
    assert part is not None, "a letter has a text part"
    return str(part.get_content())


def subjects(settings: Settings, reference: str) -> list[str]:
    return [str(m["Subject"]) for m in letters(settings) if reference in str(m["Subject"])]


def clock_due(
    regime: Regime, request_type: RequestType, received: date, events: list[ClockEvent], cal: str
) -> date:
    return StatutoryClock(regime, request_type, received, events, ClockPolicy(calendar=cal)).due()


# --------------------------------------------------------------------------- happy paths


async def test_access_request_runs_every_stage_to_closed(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings)
    ref = h.id
    s = await at_stage(h, Stage.VERIFYING)
    assert s.waiting_for == "operator: identity check"
    assert (
        s.due
        == clock_due(
            Regime.UK_GDPR, RequestType.ACCESS, date.fromisoformat(s.received), [], "GB-EAW"
        ).isoformat()
    )
    assert "We have received your request" in " ".join(subjects(settings, ref))

    await decide(h, DecisionKind.VERIFY)
    s = await wait_until(h, lambda s: s.waiting_for == "reviewer: approve the review package")
    assert s.stage == Stage.REVIEWING
    crm = next(x for x in s.systems if x.system == "crm")
    assert crm.status == "found" and crm.records > 0 and crm.blob_ref

    await decide(h, DecisionKind.APPROVE)
    s = await at_stage(h, Stage.RESPONDED)
    assert "package of" in s.results["fulfilling"]
    assert any("Our response to your request" in x for x in subjects(settings, ref))

    # The response letter carries the download link, a separate message the ZIP's password;
    # neither is in the workflow's history. The link works, and the password opens the ZIP.
    mine = [m for m in letters(settings) if ref in str(m["Subject"])]
    response = next(m for m in mine if "Our response" in str(m["Subject"])).get_body(("plain",)).get_content()
    password = next(m for m in mine if "The password" in str(m["Subject"])).get_body(("plain",)).get_content()
    url = re.search(r"https?://\S+/d/\S+", response)
    secret = re.search(r"^\s{4}(\S+)$", password, re.MULTILINE)
    assert url and secret
    history = b"".join(e.SerializeToString() for e in (await h.fetch_history()).events)
    assert url.group(0).rsplit("=", 1)[-1].encode() not in history and secret.group(1).encode() not in history
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.public_url) as web:
        answer = await web.get(url.group(0).removeprefix(settings.public_url))
    assert answer.status_code == 200, answer.text[:200]
    with pyzipper.AESZipFile(io.BytesIO(answer.content)) as zf:
        zf.setpassword(secret.group(1).encode())
        names = zf.namelist()
        assert "report.html" in names and "manifest.json" in names
        assert b"Margaret" in zf.read("data/crm/customers.json")
    assert "package:downloaded" in {e.action for e in store.audit_trail(ref)}

    # The response stays open for close_after_days, then the case closes. (Time is skipped
    # explicitly: the test server does not auto-skip for result() once Updates were used.)
    await ts_env.sleep(timedelta(days=settings.close_after_days, minutes=1))
    s = await wait_until(h, lambda s: s.stage == Stage.CLOSED)
    row = store.get(ref)
    assert row is not None and row.stage == "closed" and row.closed_at is not None
    actions = [e.action for e in store.audit_trail(ref)]
    for stage in ("acknowledged", "verifying", "searching", "reviewing", "fulfilling", "responded", "closed"):
        assert f"stage:{stage}" in actions
    assert "decision:verify" in actions and "decision:approve" in actions
    assert store.verify_chain(ref).ok

    # The case file is kept for its retention period, then purged: the blobs go, and the words
    # in the audit trail; every event's hash and link stay, so the chain still verifies.
    blobs = blob_store_from_settings(settings)
    assert blobs.exists(crm.blob_ref)
    await ts_env.sleep(timedelta(days=settings.case_retention_days - 1))
    assert blobs.exists(crm.blob_ref) and not store.purged(ref)
    await ts_env.sleep(timedelta(days=1, minutes=1))
    assert await h.result() == Stage.CLOSED.value
    assert not blobs.exists(crm.blob_ref) and store.purged(ref)
    trail = store.audit_trail(ref)
    assert trail[-1].action == "case:purged" and int(trail[-1].details["blobs"]) >= 2
    assert all(e.reason == "" for e in trail[:-1])
    report = store.verify_chain(ref)
    assert report.ok and report.content_removed > 0


async def test_search_attributes_show_stage_and_due(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings, regime=Regime.CCPA)
    s = await at_stage(h, Stage.VERIFYING)
    desc = await h.describe()
    attrs = {k.name: v for k, v in ((p.key, p.value) for p in desc.typed_search_attributes)}
    assert attrs["DsrStage"] == "verifying"
    assert attrs["DsrRegime"] == "CCPA" and attrs["DsrType"] == "access"
    due_at = attrs["DsrDue"]
    assert due_at == due_attribute(date.fromisoformat(s.due), TZ)
    # the Web UI, in the controller's time zone, shows the statutory due date itself
    assert due_at.astimezone(ZoneInfo(TZ)).date() == date.fromisoformat(s.due)
    assert attrs["DsrBreached"] is False
    # personal data never in search attributes
    assert not any("margaret" in str(v).lower() for v in attrs.values())


async def test_opt_out_needs_no_verification(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings, RequestType.OPT_OUT_SALE_SHARING, Regime.CCPA)
    s = await at_stage(h, Stage.REVIEWING)
    assert s.results["verifying"].startswith("not required")
    # CCPA opt-out: 15 business days (weekdays calendar), not 45 days
    received = date.fromisoformat(s.received)
    assert (
        s.due
        == StatutoryClock(
            Regime.CCPA, RequestType.OPT_OUT_SALE_SHARING, received, [], ClockPolicy("weekdays")
        )
        .due(DeadlineKind.OPT_OUT_DUE)
        .isoformat()
    )


# --------------------------------------------------------------------------- refused decisions


async def test_decisions_not_allowed_in_the_current_stage_are_refused(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings)
    await at_stage(h, Stage.VERIFYING)
    msg = await refused(h, DecisionKind.APPROVE)
    assert "'approve' is not allowed while the case is verifying" in msg
    assert "not allowed" in await refused(h, DecisionKind.FULFILLED, reason="x")
    assert "nothing was asked" in await refused(h, DecisionKind.IDENTITY_RECEIVED)
    assert "needs a ground" in await refused(h, DecisionKind.REJECT, reason="no match")
    assert "needs a reason" in await refused(h, DecisionKind.EXTEND)
    await decide(h, DecisionKind.REQUEST_IDENTITY, reason="a copy of a recent utility bill")
    assert "already waiting" in await refused(h, DecisionKind.REQUEST_IDENTITY, reason="again")
    # An operator may verify while the case waits for the person: the wait ends, and the clock
    # records the answer that day (the README's "at any time")
    await decide(h, DecisionKind.VERIFY)
    s = await at_stage(h, Stage.REVIEWING)
    assert not s.paused and [e.type for e in s.clock_events].count(ClockEventType.IDENTITY_RECEIVED) == 1
    verified = [e for e in store.audit_trail(h.id) if e.action == "decision:verify"]
    assert verified and verified[0].details.get("wait_ended") == "identity"
    assert "not allowed while the case is reviewing" in await refused(h, DecisionKind.VERIFY)
    await decide(h, DecisionKind.APPROVE)
    await at_stage(h, Stage.RESPONDED)
    assert "not allowed" in await refused(h, DecisionKind.WITHDRAW)
    assert "automatic" not in str(ALLOWED)  # table is data, not prose


async def test_extension_allowed_once_and_only_in_time(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings, regime=Regime.CCPA)
    await at_stage(h, Stage.VERIFYING)
    # CCPA: notice must be given within the first 45 days; skip past them.
    await ts_env.sleep(timedelta(days=46))
    assert "too late to extend" in await refused(h, DecisionKind.EXTEND, reason="complex")

    h2 = await start(ts_env, store, settings, regime=Regime.LGPD)
    await at_stage(h2, Stage.VERIFYING)
    assert "no extension is possible under LGPD" in await refused(h2, DecisionKind.EXTEND, reason="complex")


# --------------------------------------------------------------------------- clock


async def test_extension_moves_due_date_and_notifies_the_person(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings)
    s = await at_stage(h, Stage.VERIFYING)
    received = date.fromisoformat(s.received)
    msg = await decide(h, DecisionKind.EXTEND, reason="your requests concern 14 years of account history")
    today = local_date(await ts_env.get_current_time(), TZ)
    want = clock_due(
        Regime.UK_GDPR,
        RequestType.ACCESS,
        received,
        [ClockEvent(ClockEventType.EXTENSION_NOTIFIED, today.isoformat())],
        "GB-EAW",
    )
    assert want > date.fromisoformat(s.due) + timedelta(days=55)
    s = await snap(h)
    assert s.extended and s.due == want.isoformat() and want.isoformat() in msg
    notice = [
        m for m in letters(settings) if "need more time" in str(m["Subject"]) and h.id in str(m["Subject"])
    ]
    assert len(notice) == 1
    body = read(notice[0])
    assert "14 years of account history" in body and f"{want.day} {want:%B %Y}" in body
    assert notice[0]["To"] == MARGARET["email"]
    assert "already been extended" in await refused(h, DecisionKind.EXTEND, reason="again")
    row = store.get(h.id)
    assert row is not None and row.extended and row.due == want


async def test_clarification_pause_moves_the_due_date(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings)
    s = await at_stage(h, Stage.VERIFYING)
    received = date.fromisoformat(s.received)
    asked = local_date(await ts_env.get_current_time(), TZ)
    await decide(h, DecisionKind.REQUEST_CLARIFICATION, reason="which accounts and which years")
    s = await snap(h)
    assert s.paused and s.waiting_for == "person: clarification"
    asking = [
        m for m in letters(settings) if "tell us more" in str(m["Subject"]) and h.id in str(m["Subject"])
    ]
    assert "is paused until we receive it" in read(asking[0])
    await ts_env.sleep(timedelta(days=5))
    answered = local_date(await ts_env.get_current_time(), TZ)
    await decide(h, DecisionKind.CLARIFICATION_RECEIVED)
    s = await snap(h)
    assert not s.paused
    events = [
        ClockEvent(ClockEventType.CLARIFICATION_REQUESTED, asked.isoformat()),
        ClockEvent(ClockEventType.CLARIFICATION_RECEIVED, answered.isoformat()),
    ]
    want = clock_due(Regime.UK_GDPR, RequestType.ACCESS, received, events, "GB-EAW")
    assert s.due == want.isoformat()
    assert want > clock_due(Regime.UK_GDPR, RequestType.ACCESS, received, [], "GB-EAW")


async def test_identity_restart_uk_but_not_ccpa(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    uk = await start(ts_env, store, settings)
    ca = await start(ts_env, store, settings, regime=Regime.CCPA)
    s_uk, s_ca = await at_stage(uk, Stage.VERIFYING), await at_stage(ca, Stage.VERIFYING)
    for h in (uk, ca):
        await decide(
            h, DecisionKind.REQUEST_IDENTITY, reason="the last four digits of the card on the account"
        )
    await ts_env.sleep(timedelta(days=10))
    got = local_date(await ts_env.get_current_time(), TZ)
    for h in (uk, ca):
        await decide(h, DecisionKind.IDENTITY_RECEIVED)
    # UK: one month from receipt of the ID (Art 12A / ICO); CCPA: 45 days from receipt, no pause.
    assert (await snap(uk)).due == clock_due(
        Regime.UK_GDPR, RequestType.ACCESS, got, [], "GB-EAW"
    ).isoformat()
    assert (await snap(ca)).due == s_ca.due
    assert s_uk.due != (await snap(uk)).due


async def test_reminders_escalation_and_breach_fire_on_time(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings, regime=Regime.CCPA)
    s = await at_stage(h, Stage.VERIFYING)
    due = date.fromisoformat(s.due)
    t0 = time.monotonic()

    async def skip_to(instant: datetime) -> None:
        now = await ts_env.get_current_time()
        await ts_env.sleep(instant - now)

    await skip_to(local_instant(due - timedelta(days=7), 9, TZ) - timedelta(minutes=5))
    assert (await snap(h)).reminders_sent == []
    await skip_to(local_instant(due - timedelta(days=7), 9, TZ) + timedelta(minutes=5))
    s = await wait_until(h, lambda s: len(s.reminders_sent) == 1)
    assert "7 days before" in s.reminders_sent[0]
    await skip_to(local_instant(due - timedelta(days=2), 9, TZ) + timedelta(minutes=5))
    s = await wait_until(h, lambda s: len(s.reminders_sent) == 2)
    assert not s.escalated
    await skip_to(local_instant(due - timedelta(days=1), 9, TZ) + timedelta(minutes=5))
    s = await wait_until(h, lambda s: s.escalated)
    assert not s.breached
    await skip_to(end_of_day(due, TZ) - timedelta(minutes=5))
    assert not (await snap(h)).breached
    await skip_to(end_of_day(due, TZ) + timedelta(minutes=5))
    s = await wait_until(h, lambda s: s.breached)
    assert time.monotonic() - t0 < 30, "a 45-day wait must run in seconds on the time-skipping server"

    subj = subjects(settings, h.id)
    assert sum("days left" in x for x in subj) == 2
    assert any("ESCALATION" in x for x in subj) and any("BREACH" in x for x in subj)
    team = [m for m in letters(settings) if h.id in str(m["Subject"]) and "[dsar]" in str(m["Subject"])]
    assert all(m["To"] in (settings.operator_email, settings.dpo_email) for m in team)
    actions = [e.action for e in store.audit_trail(h.id)]
    assert "clock:escalation" in actions and "clock:breach" in actions
    row = store.get(h.id)
    assert row is not None and row.breached and row.escalated
    desc = await h.describe()
    assert any(p.key.name == "DsrBreached" and p.value is True for p in desc.typed_search_attributes)


# --------------------------------------------------------------------------- intake and exits


async def test_same_idempotency_key_reaches_the_same_case(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    key = f"msg-{time.time_ns()}@example.com"
    a = await start(ts_env, store, settings, key=key)
    b = await start(ts_env, store, settings, key=key)
    assert a.id == b.id
    assert (await a.describe()).run_id == (await b.describe()).run_id
    other = await start(ts_env, store, settings, key=key + "-other")
    assert other.id != a.id
    await at_stage(a, Stage.VERIFYING)
    acks = [x for x in subjects(settings, a.id) if "We have received" in x]
    assert len(acks) == 1


async def test_replayed_key_after_the_case_closed_does_not_start_it_again(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    key = f"msg-closed-{time.time_ns()}@example.com"
    a = await start(ts_env, store, settings, key=key)
    await at_stage(a, Stage.VERIFYING)
    await decide(a, DecisionKind.WITHDRAW, reason="withdrawn by phone")
    await ended(a, Stage.WITHDRAWN)
    first_run = (await a.describe()).run_id
    b = await start(ts_env, store, settings, key=key)
    assert b.id == a.id
    desc = await b.describe()
    assert desc.run_id == first_run  # the ended case (kept for its retention), not a new one
    assert (await snap(b)).stage == Stage.WITHDRAWN
    assert sum("We have received" in x for x in subjects(settings, a.id)) == 1


async def test_withdrawal_ends_the_case_and_tells_the_person(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.WITHDRAW, reason="the person phoned to withdraw")
    await ended(h, Stage.WITHDRAWN)
    assert any("withdrawn" in x for x in subjects(settings, h.id))
    row = store.get(h.id)
    assert row is not None and row.stage == "withdrawn" and row.closed_at is not None


async def test_rejection_in_review_with_ground(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    await at_stage(h, Stage.REVIEWING)
    await decide(h, DecisionKind.REJECT, reason="the fifth identical request this month", ground="excessive")
    await ended(h, Stage.REJECTED)
    rejection = [
        m for m in letters(settings) if "cannot act" in str(m["Subject"]) and h.id in str(m["Subject"])
    ]
    assert "fifth identical request" in read(rejection[0])


async def test_no_answer_from_the_person_expires_the_case(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.REQUEST_IDENTITY, reason="a copy of photo ID")
    t0 = time.monotonic()
    await ts_env.sleep(timedelta(days=settings.wait_for_person_days - 1))
    assert (await snap(h)).stage == Stage.VERIFYING
    await ts_env.sleep(timedelta(days=1, minutes=1))
    await ended(h, Stage.EXPIRED)
    assert time.monotonic() - t0 < 20
    assert any("has been closed" in x for x in subjects(settings, h.id))
    assert store.verify_chain(h.id).ok


async def test_histories_replay_deterministically(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    """Replaying a real history with the current code must not diverge (guards future edits)."""
    h = await start(ts_env, store, settings)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.EXTEND, reason="complex")
    await decide(h, DecisionKind.VERIFY)
    await at_stage(h, Stage.REVIEWING)
    await decide(h, DecisionKind.APPROVE)
    await at_stage(h, Stage.RESPONDED)
    history = await h.fetch_history()
    replayer = Replayer(workflows=[DataSubjectRequest], data_converter=ts_env.client.data_converter)
    await replayer.replay_workflow(history)


async def test_determinism_guard_refuses_a_wall_clock_read(ts_env: WorkflowEnvironment) -> None:
    """The worker runs without the sandbox; the tests' replay inside it must catch what the
    sandbox would have refused (here a workflow reading the wall clock)."""
    from temporalio.worker import UnsandboxedWorkflowRunner

    from tests.conftest import replay_in_sandbox
    from tests.wallclock_workflow import WallClockWorkflow

    queue = f"wallclock-{uuid.uuid4().hex[:8]}"
    runner = UnsandboxedWorkflowRunner()
    async with Worker(ts_env.client, task_queue=queue, workflows=[WallClockWorkflow], workflow_runner=runner):
        ran = await ts_env.client.execute_workflow(WallClockWorkflow.run, id=queue, task_queue=queue)
    assert ran  # unsandboxed, the mistake goes unnoticed...
    with pytest.raises(Exception, match="RestrictedWorkflowAccessError"):  # ...the sandbox refuses it
        await replay_in_sandbox(ts_env.client, [queue], workflows=[WallClockWorkflow])
