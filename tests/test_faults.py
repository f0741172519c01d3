"""No case is ever stranded (issue 18): hostile input, failing systems, Temporal's own buttons.

Every test here runs on a SQLite and on a PostgreSQL register, each with a time-skipping server
of its own (a fresh register hands out DSR-...-000001 again), a real worker and the real app.
Inputs are sent as a hostile client would: raw JSON with escapes a browser never sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from console.app import create_app
from console.auth import mint_token
from dsar.codec import data_converter
from dsar.effects import EffectsLog
from dsar.mail import FileMailer, SmtpMailer, build_message
from dsar.model import Decision, DecisionKind, RequestType, Stage
from dsar.reconcile import reconcile
from dsar.settings import Settings
from dsar.store import CaseStore
from tests.conftest import (
    _settle_and_terminate,
    binary,
    make_settings,
    register_search_attributes,
    replay_in_sandbox,
)
from tests.smtpserver import SmtpServer
from tests.test_fulfilment import IDS, private_demo, rows  # noqa: F401 - a fixture
from tests.test_workflow import MARGARET, at_stage, letters, plain_text, start, wait_until
from workflows.request import DataSubjectRequest

pytestmark = pytest.mark.timeout(240)


@dataclass
class Rig:
    env: WorkflowEnvironment
    store: CaseStore
    settings: Settings
    api: httpx.AsyncClient

    @property
    def client(self) -> Client:
        return self.env.client

    def bearer(self, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings, 'mallory', list(roles) or ['admin'])}"}


@pytest.fixture
async def rig(
    database_url: str, tmp_path: Path, demo_env: dict[str, str], request: pytest.FixtureRequest
) -> AsyncIterator[Rig]:
    from worker import build_workers

    overrides: dict[str, Any] = {"database_url": database_url}
    if "erasure" in request.node.name:  # the demo company copied for this test: it is changed
        request.getfixturevalue("private_demo")
        overrides["datamap"] = tmp_path / "dsar.yaml"
    if "relay" in request.node.name:  # letters through a real SMTP server
        smtp: SmtpServer = request.getfixturevalue("smtp_server")
        overrides.update(smtp_host=smtp.host, smtp_port=smtp.port)
    settings = make_settings(tmp_path / "var", **overrides)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"), data_converter=data_converter(settings)
    )
    await register_search_attributes(env.client)
    store = CaseStore(database_url)
    workers = build_workers(env.client, settings, store=store)
    async with contextlib.AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        app = create_app(settings, client=env.client, store=store)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
            yield Rig(env, store, settings, api)
        refs = [r.reference for r in store.queue(limit=10_000)]
        for ref in refs:
            await _settle_and_terminate(env.client, ref)
    await replay_in_sandbox(env.client, refs)
    store.close()
    await env.shutdown()


def raw_json(body: Any) -> dict[str, Any]:
    """A JSON body as a hostile client sends it: lone surrogates as escapes, nothing cleaned."""
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


async def post(rig: Rig, path: str, body: Any, *roles: str) -> httpx.Response:
    kw = raw_json(body)
    return await rig.api.post(path, content=kw["content"], headers={**kw["headers"], **rig.bearer(*roles)})


def request_body(**identifiers: Any) -> dict[str, Any]:
    return {"type": "access", "regime": "UK_GDPR", "identifiers": identifiers or dict(MARGARET)}


# --------------------------------------------------------------------------------------------
# 1. One gate for input


HOSTILE_IDENTIFIERS = {
    "lone surrogate": {"name": "Margaret \ud800Ellis"},
    "surrogate in a postcode": {"postcode": "CV3 \udc004LP", "email": MARGARET["email"]},
    "U+2028": {"name": "Margaret\u2028Ellis", "email": MARGARET["email"]},
    "U+2029": {"name": "Margaret\u2029Ellis", "email": MARGARET["email"]},
    "U+0085": {"name": "Margaret\u0085Ellis", "email": MARGARET["email"]},
    "RFC 2047 CR/LF": {"name": "=?utf-8?q?Margaret=0D=0ABcc:_x@example.org?=", "email": MARGARET["email"]},
    "two addressees": {"email": "victim@example.org, other@example.org"},
    "NUL": {"name": "Margaret\x00Ellis", "email": MARGARET["email"]},
}


async def test_hostile_intake_is_a_clear_422_and_opens_nothing(rig: Rig) -> None:
    for name, identifiers in HOSTILE_IDENTIFIERS.items():
        r = await post(rig, "/api/v1/requests", request_body(**identifiers), "operator")
        assert r.status_code == 422, (name, r.text)
        detail = r.json()["detail"]
        assert detail.startswith("identifiers.") and "Margaret" not in detail, name
    # a NUL in the idempotency key (PostgreSQL cannot store it: it was a 500)
    r = await post(rig, "/api/v1/requests", {**request_body(), "idempotency_key": "k\x00"}, "operator")
    assert r.status_code == 422 and "idempotency_key" in r.text
    # an agent writing to two people
    agent = {"name": "Ann Agent", "email": "ann@example.org, victim@example.org"}
    r = await post(rig, "/api/v1/requests", {**request_body(), "agent": agent}, "operator")
    assert r.status_code == 422 and "agent.email" in r.text
    assert rig.store.queue(limit=10) == []  # nothing was opened

    # pagination past what SQLite can bind: a 422, and the connection goes on serving
    r = await rig.api.get("/api/v1/requests?offset=9223372036854775808", headers=rig.bearer("operator"))
    assert r.status_code == 422
    r = await rig.api.get("/api/v1/requests?limit=100000", headers=rig.bearer("operator"))
    assert r.status_code == 422
    r = await rig.api.get("/api/v1/requests?offset=10", headers=rig.bearer("operator"))
    assert r.status_code == 200


async def test_hostile_decisions_are_a_clear_422_and_never_hang(rig: Rig) -> None:
    r = await post(rig, "/api/v1/requests", request_body(), "operator")
    assert r.status_code == 201, r.text
    ref = r.json()["reference"]
    h = rig.client.get_workflow_handle_for(DataSubjectRequest.run, ref)
    await at_stage(h, Stage.VERIFYING)
    for field, value in (
        ("reason", "no\x00thing"),
        ("reason", "a\ud800"),
        ("ground", "x\u2028y"),
        ("fee", "GBP\n1"),
    ):
        body = {"kind": "reject", "reason": "r", "ground": "other", field: value}
        r = await asyncio.wait_for(post(rig, f"/api/v1/requests/{ref}/decisions", body, "operator"), 30)
        assert r.status_code == 422 and field in r.text, (field, r.text)
    # a reason written in paragraphs is fine, and recorded
    body = {"kind": "verify", "reason": "checked the passport\nand the utility bill"}
    r = await asyncio.wait_for(post(rig, f"/api/v1/requests/{ref}/decisions", body, "operator"), 30)
    assert r.status_code == 200, r.text
    assert "decision:verify" in [e.action for e in rig.store.audit_trail(ref)]


TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=24)
VALID = {
    "email": st.sampled_from(["margaret.ellis@example.com", "zoe@example.org"]),
    "name": st.sampled_from(["Margaret Ellis", "Zoë Ångström", "李小龍"]),
    "phone": st.sampled_from(["+44 7911 123456", "07911 123456"]),
    "postcode": st.sampled_from(["CV3 4LP", "sw1a 1aa"]),
}


def _identifier(kind: str) -> st.SearchStrategy[Any]:
    return st.one_of(VALID.get(kind, TEXT), TEXT, st.integers(), st.none())


INTAKE = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["access", "erasure", "opt_out_sale_sharing", "bogus"]),
        "regime": st.sampled_from(["UK_GDPR", "CCPA", "EU_GDPR"]),
        "identifiers": st.dictionaries(
            st.sampled_from([*VALID, "postal_address", "date_of_birth", "shoe_size"]).flatmap(
                lambda k: st.just(k)
            ),
            st.one_of(*(v for v in VALID.values()), TEXT, st.integers()),
            max_size=4,
        ),
    },
    optional={"idempotency_key": TEXT, "transfer_to": TEXT, "channel": st.sampled_from(["api", "x"])},
)


def _run_property(rig: Rig, loop: asyncio.AbstractEventLoop, check: Any, strategy: Any, n: int) -> None:
    @hyp_settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(strategy)
    def prop(value: Any) -> None:
        asyncio.run_coroutine_threadsafe(check(value), loop).result(60)

    prop()


async def test_property_intake_a_2xx_means_the_case_goes_on_and_never_a_5xx(rig: Rig) -> None:
    async def check(body: dict[str, Any]) -> None:
        r = await post(rig, "/api/v1/requests", body, "operator")
        assert r.status_code < 500, r.text
        if r.status_code in (200, 201):
            ref = r.json()["reference"]
            h = rig.client.get_workflow_handle_for(DataSubjectRequest.run, ref)
            # acknowledged (its letter could be sent) and on its way
            s = await wait_until(h, lambda s: s.stage not in (Stage.RECEIVED,), timeout=20)
            assert not [t for t in s.tasks if t.status == "open"], s.tasks

    await asyncio.to_thread(_run_property, rig, asyncio.get_running_loop(), check, INTAKE, 25)


DECISION = st.fixed_dictionaries(
    {"kind": st.sampled_from([k.value for k in DecisionKind] + ["bogus"])},
    optional={"reason": TEXT, "ground": TEXT, "system": TEXT, "fee": TEXT, "task": TEXT},
)


async def test_property_decisions_never_a_5xx_and_a_2xx_is_recorded(rig: Rig) -> None:
    r = await post(rig, "/api/v1/requests", request_body(), "operator")
    ref = r.json()["reference"]
    await at_stage(rig.client.get_workflow_handle_for(DataSubjectRequest.run, ref), Stage.VERIFYING)

    async def check(body: dict[str, Any]) -> None:
        r = await asyncio.wait_for(post(rig, f"/api/v1/requests/{ref}/decisions", body, "admin"), 45)
        assert r.status_code < 500, r.text
        if r.status_code == 200:
            assert f"decision:{body['kind']}" in [e.action for e in rig.store.audit_trail(ref)]

    await asyncio.to_thread(_run_property, rig, asyncio.get_running_loop(), check, DECISION, 30)
    assert rig.store.verify_chain(ref).ok


# --------------------------------------------------------------------------------------------
# 2. Nothing fails silently: an operator task


def _refuse_deletes(crm_url: str) -> None:
    """A constraint the erasure plan does not know: the CRM refuses to delete tickets."""
    path = crm_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TRIGGER keep_tickets BEFORE DELETE ON support_tickets "
            "BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed'); END"
        )


def _allow_deletes(crm_url: str) -> None:
    with sqlite3.connect(crm_url.removeprefix("sqlite:///")) as db:
        db.execute("DROP TRIGGER keep_tickets")


async def decide(h: WorkflowHandle[Any, Any], kind: DecisionKind, task: str = "", reason: str = "") -> None:
    await h.execute_update(
        DataSubjectRequest.decide, Decision(kind=kind, actor="operator:olive", reason=reason, task=task)
    )


async def test_an_erasure_a_constraint_refuses_is_an_operator_task_then_retried_after_the_fix(
    rig: Rig,
    private_demo: dict[str, str],  # noqa: F811
) -> None:
    _refuse_deletes(private_demo["crm"])
    h = await start(rig.env, rig.store, rig.settings, RequestType.ERASURE, identifiers=IDS)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    await at_stage(h, Stage.REVIEWING)
    await decide(h, DecisionKind.APPROVE)
    s = await wait_until(h, lambda s: any(t.status == "open" for t in s.tasks), timeout=60)
    task = next(t for t in s.tasks if t.status == "open")
    assert task.id == "fulfilling:apply:crm" and task.system == "crm" and task.error_type == "ChangeRefused"
    assert task.ways_out == ["retry_step", "skip_step", "done_by_hand"]
    assert s.stage == Stage.FULFILLING and not s.paused  # the clock runs on
    row = rig.store.get(h.id)
    assert row is not None and row.waiting_for is not None
    assert row.waiting_for == "operator: erasure in crm failed (ChangeRefused): retry, skip, done by hand"
    opened = [e for e in rig.store.audit_trail(h.id) if e.action == "task:opened"]
    assert opened and opened[0].details["error"] == "ChangeRefused"
    assert any(
        "Action needed" in str(m["Subject"]) and h.id in str(m["Subject"]) for m in letters(rig.settings)
    )
    # through the API too, as the queue and the console show it
    snap = (await rig.api.get(f"/api/v1/requests/{h.id}", headers=rig.bearer("operator"))).json()
    assert snap["tasks"][0]["error_type"] == "ChangeRefused"
    queue = (await rig.api.get("/api/v1/requests", headers=rig.bearer("operator"))).json()["items"]
    assert any(i["reference"] == h.id and "ChangeRefused" in (i["waiting_for"] or "") for i in queue)
    # a decision that is not a way out, or names no open task, is refused
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(h, DecisionKind.RETRY_STEP, task="nope")
    assert "needs an open operator task" in str(info.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(h, DecisionKind.SKIP_STEP, task=task.id)
    assert "needs a reason" in str(info.value.cause)

    _allow_deletes(private_demo["crm"])
    await decide(h, DecisionKind.RETRY_STEP, task=task.id, reason="trigger removed, ticket OPS-9")
    s = await wait_until(h, lambda s: s.stage == Stage.RESPONDED, timeout=60)
    assert s.tasks[0].status == "retried" and s.tasks[0].resolved_by == "operator:olive"
    assert rows(private_demo["crm"], "SELECT count(*) FROM support_tickets WHERE customer_id = 1")[0][0] == 0
    assert rig.store.get(h.id).waiting_for is None  # type: ignore[union-attr]
    assert (await rig.client.get_workflow_handle(h.id).describe()).status == WorkflowExecutionStatus.RUNNING


async def test_an_erasure_skipped_in_a_system_says_so_in_the_letter(
    rig: Rig,
    private_demo: dict[str, str],  # noqa: F811
) -> None:
    _refuse_deletes(private_demo["crm"])
    h = await start(rig.env, rig.store, rig.settings, RequestType.ERASURE, identifiers=IDS)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    await at_stage(h, Stage.REVIEWING)
    await decide(h, DecisionKind.APPROVE)
    s = await wait_until(h, lambda s: any(t.status == "open" for t in s.tasks), timeout=60)
    await decide(h, DecisionKind.SKIP_STEP, task=s.tasks[0].id, reason="the CRM vendor deletes it by hand")
    s = await wait_until(h, lambda s: s.stage == Stage.RESPONDED, timeout=60)
    assert "not carried out in crm" in (s.outcome or "")
    letter = next(m for m in letters(rig.settings) if "Our response" in str(m["Subject"]))
    response = plain_text(letter)
    assert "We could not yet complete this in: crm" in response


async def test_a_letter_the_relay_refuses_is_a_task_and_a_withdrawal_does_not_hang_on_it(
    rig: Rig, smtp_server: SmtpServer
) -> None:
    """The acknowledgement to an address the mail relay refuses for good (550): not retried for
    ever with the case silent in "received", but a task the team is told of; a withdrawal then
    ends the case at once, its own letter waiting for a person as a second task."""
    ids = {"name": "Margaret Ellis", "email": "refused.margaret@example.com"}
    r = await post(rig, "/api/v1/requests", request_body(**ids), "operator")
    assert r.status_code == 201, r.text
    ref = r.json()["reference"]
    h = rig.client.get_workflow_handle_for(DataSubjectRequest.run, ref)
    s = await wait_until(h, lambda s: any(t.status == "open" for t in s.tasks), timeout=30)
    task = s.tasks[0]
    assert task.id.startswith("letter:acknowledgement:") and task.error_type == "LetterRefused"
    assert s.stage == Stage.RECEIVED and s.waiting_for == (
        "operator: send the acknowledgement letter failed (LetterRefused): retry, skip, done by hand"
    )
    team = smtp_server.wait_for(1)
    assert any("Action needed" in str(m["Subject"]) and ref in str(m["Subject"]) for m in team)

    t0 = asyncio.get_running_loop().time()
    body = {"kind": "withdraw", "reason": "the person phoned to withdraw"}
    r = await asyncio.wait_for(post(rig, f"/api/v1/requests/{ref}/decisions", body, "operator"), 30)
    assert r.status_code == 200 and r.json()["stage"] == "withdrawn", r.text
    assert asyncio.get_running_loop().time() - t0 < 15  # it used to hang for 150 s
    s = await wait_until(h, lambda s: any(t.id.startswith("letter:withdrawal:") for t in s.tasks))
    ending = next(t for t in s.tasks if t.id.startswith("letter:withdrawal:"))
    assert ending.status == "open" and s.stage == Stage.WITHDRAWN
    body = {"kind": "done_by_hand", "task": ending.id, "reason": "withdrawal confirmed by post"}
    r = await post(rig, f"/api/v1/requests/{ref}/decisions", body, "operator")
    assert r.status_code == 200, r.text
    s = await wait_until(h, lambda s: all(t.status != "open" for t in s.tasks))
    assert next(t for t in s.tasks if t.id == ending.id).status == "done_by_hand"
    assert rig.store.get(ref).stage == "withdrawn"  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------
# 7. Temporal's own buttons


async def test_cancel_in_the_engine_is_a_recorded_staff_withdrawal_and_later_refused(rig: Rig) -> None:
    h = await start(rig.env, rig.store, rig.settings)
    await at_stage(h, Stage.VERIFYING)
    await h.cancel()
    s = await wait_until(h, lambda s: s.stage == Stage.WITHDRAWN)
    assert s.decisions[-1].actor == "staff:temporal-cancel"
    row = rig.store.get(h.id)
    assert row is not None and row.stage == "withdrawn" and row.closed_at is not None
    trail = rig.store.audit_trail(h.id)
    withdraw = next(e for e in trail if e.action == "decision:withdraw")
    assert withdraw.actor == "staff:temporal-cancel" and withdraw.details["via"] == "temporal cancel"
    assert any(
        "withdraw" in str(m["Subject"]).lower() and h.id in str(m["Subject"]) for m in letters(rig.settings)
    )
    assert (await h.describe()).status == WorkflowExecutionStatus.RUNNING  # never CANCELED
    assert rig.store.verify_chain(h.id).ok

    # a cancel once the case is over (its file kept until the purge): refused, and recorded
    other = await start(rig.env, rig.store, rig.settings)
    await at_stage(other, Stage.VERIFYING)
    await decide(other, DecisionKind.WITHDRAW, reason="the person wrote to withdraw")
    await wait_until(other, lambda s: s.stage == Stage.WITHDRAWN)
    await other.cancel()
    for _ in range(100):
        if "engine:cancel_refused" in [e.action for e in rig.store.audit_trail(other.id)]:
            break
        await asyncio.sleep(0.1)
    assert "engine:cancel_refused" in [e.action for e in rig.store.audit_trail(other.id)]
    assert (await other.describe()).status == WorkflowExecutionStatus.RUNNING
    assert rig.store.get(other.id).stage == "withdrawn"  # type: ignore[union-attr]


async def test_terminate_in_the_engine_is_found_and_marked_by_reconcile(rig: Rig) -> None:
    h = await start(rig.env, rig.store, rig.settings)
    await at_stage(h, Stage.VERIFYING)
    await h.terminate("staff pressed Terminate")
    later = datetime.now(UTC) + timedelta(hours=1)
    dry = await reconcile(rig.client, rig.store, apply=False, now=later)
    assert [(f.reference, f.finding, f.engine, f.action) for f in dry] == [
        (h.id, "ended_in_engine", "terminated", "none (dry run)")
    ]
    found = await reconcile(rig.client, rig.store, apply=True, now=later)
    assert found[0].action == "marked for an operator"
    row = rig.store.get(h.id)
    assert row is not None and row.stage == "verifying"  # the person has had no answer
    assert row.waiting_for and "terminated in the workflow engine" in row.waiting_for
    assert "engine:terminated" in [e.action for e in rig.store.audit_trail(h.id)]
    again = await reconcile(rig.client, rig.store, apply=True, now=later)
    assert again[0].action == "already marked"


# --------------------------------------------------------------------------------------------
# 3-5. Fast recovery, the register tells the truth, effects once


async def test_every_activity_of_a_case_heartbeats_within_20_seconds(rig: Rig) -> None:
    h = await start(rig.env, rig.store, rig.settings)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    await at_stage(h, Stage.REVIEWING)
    history = await h.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled
    for a in scheduled:
        assert timedelta(0) < a.heartbeat_timeout.ToTimedelta() <= timedelta(seconds=20), a.activity_type.name
        assert a.retry_policy.maximum_attempts > 0, a.activity_type.name  # bounded, then a task


async def test_a_letter_goes_to_the_relay_once_per_message_id(rig: Rig, smtp_server: SmtpServer) -> None:
    effects = EffectsLog(rig.store.engine)
    mailer = SmtpMailer(smtp_server.host, smtp_server.port, sent=effects)
    key = f"DSR-2026-{uuid.uuid4().int % 10**6:06d}/letter/response/7"
    msg = build_message(key, "privacy@example.org", "margaret@example.org", "Our response", "text")
    mailer.send(key, msg)
    mailer.send(
        key, build_message(key, "privacy@example.org", "margaret@example.org", "Our response", "text")
    )
    assert len(smtp_server.wait_for(1)) == 1
    await asyncio.sleep(0.3)
    assert len([m for m in smtp_server.messages if str(m["Message-ID"]) == str(msg["Message-ID"])]) == 1
    assert effects.was_sent(str(msg["Message-ID"]))


async def test_erasure_counts_add_up_across_attempts(rig: Rig) -> None:
    effects = EffectsLog(rig.store.engine)
    first = effects.add_applied("DSR-2026-000042", "crm", {"deleted": {"orders": 3, "tickets": 1}})
    second = effects.add_applied("DSR-2026-000042", "crm", {"deleted": {"orders": 0, "tickets": 0}})
    assert first == second == {"deleted": {"orders": 3, "tickets": 1}}
    third = effects.add_applied("DSR-2026-000042", "crm", {"deleted": {"orders": 2}, "changed": {"c": 1}})
    assert third == {"deleted": {"orders": 5, "tickets": 1}, "changed": {"c": 1}}


def test_leftover_letter_files_of_a_killed_worker_are_removed_at_start(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    dead = outbox / ".999999999.abc.tmp"  # a writer that is gone
    legacy = outbox / "tmpx1y2.tmp"  # the old naming: its writer cannot be told
    live = outbox / f".{__import__('os').getppid()}.def.tmp"  # another process writing now
    for p in (dead, legacy, live):
        p.write_text("Our response ... https://example.org/d/DSR-2026-000001?t=secret")
    FileMailer(outbox)
    assert not dead.exists() and not legacy.exists() and live.exists()


# --------------------------------------------------------------------------------------------
# 6. Abuse limits on the real client address


async def test_rate_limits_count_the_real_client_not_its_x_forwarded_for(rig: Rig) -> None:
    codes = []
    for i in range(22):
        r = await rig.api.get("/request", headers={"X-Forwarded-For": f"203.0.113.{i}"})
        codes.append(r.status_code)
    assert codes[:20] == [200] * 20 and codes[-1] == 429  # one client, whatever it wrote

    trusted = create_app(
        make_settings(
            rig.settings.var_dir, database_url=rig.settings.database_url, trusted_proxies=["127.0.0.1"]
        ),
        client=rig.client,
        store=rig.store,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=trusted), base_url="http://t") as proxied:
        for i in range(25):  # behind our proxy, each real client has its own count
            r = await proxied.get("/request", headers={"X-Forwarded-For": f"198.51.100.7, 203.0.113.{i}"})
            assert r.status_code == 200
