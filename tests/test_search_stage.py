"""The search stage of a case on the time-skipping server: systems searched by hand (reminders,
escalation, an upload or "nothing held"), an operator skipping a system, and a database that
goes down mid-search (the case shows it, keeps trying, and goes on when it is back)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from connectors.sql import dispose_engines
from console.app import create_app
from demo.seed import MARGARET, PETER, seed_demo
from dsar.blobs import blob_store_from_settings
from dsar.model import DecisionKind, Stage
from dsar.settings import Settings
from dsar.store import CaseStore
from tests.conftest import ROOT, keep_systems, make_settings
from tests.pgserver import PrivatePostgres
from tests.test_api import bearer
from tests.test_workflow import at_stage, decide, letters, plain_text, refused, start, subjects, wait_until
from workflows.request import DataSubjectRequest

IDS = {k: MARGARET[k] for k in ("name", "email", "phone")}
PRIVATE_CRM_ENV = "DSAR_TEST_PRIVATE_CRM_URL"


def demo_map(
    tmp: Path, keep: set[str], url_envs: dict[str, str] | None = None, caps: dict[str, int] | None = None
) -> Path:
    """The demo data map with only the systems in ``keep`` (other URL variables, other caps)."""
    document = yaml.safe_load((ROOT / "demo" / "dsar.yaml").read_text())
    keep_systems(document, lambda k, _: k in keep)
    for name, env in (url_envs or {}).items():
        document["systems"][name]["url_env"] = env
    for name, cap in (caps or {}).items():
        document["systems"][name]["max_concurrent"] = cap
    document["verification"] = {"automatic": False}  # these tests verify as an operator
    path = tmp / "dsar.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """The CRM on a PostgreSQL server of its own, which the test stops and starts again."""
    server = PrivatePostgres()
    server.start()
    seed_demo(server.url, f"sqlite:///{server.root / 'marketing.db'}")
    os.environ[PRIVATE_CRM_ENV] = server.url
    try:
        yield server
    finally:
        dispose_engines()
        os.environ.pop(PRIVATE_CRM_ENV, None)
        server.close()


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, demo_env: dict[str, str], register_url: str
) -> Settings:
    marker = request.node.get_closest_marker("systems")
    keep = set(marker.args) if marker else {"crm", "marketing", "cctv"}
    url_envs = marker.kwargs.get("url_envs") if marker else None
    caps = marker.kwargs.get("caps") if marker else None
    return make_settings(
        tmp_path / "var", database_url=register_url, datamap=demo_map(tmp_path, keep, url_envs, caps)
    )


def searched(snapshot: object, name: str) -> bool:
    return system(snapshot, name)["status"] not in ("searching", "waiting", "unreachable")


def system(snapshot: object, name: str) -> dict[str, object]:
    found = next(s for s in snapshot.systems if s.system == name)  # type: ignore[attr-defined]
    return found.__dict__  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- three systems


@pytest.mark.systems("crm", "marketing", "recordings")
async def test_a_case_finds_every_record_in_three_systems_and_nothing_of_other_people(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    moto_endpoint: str,
    demo_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Margaret shares her home with Peter and her name with another customer. Her case finds
    her account, orders, tickets, parcels and call metadata in the CRM, her preferences in the
    marketing database, and in S3 her call recordings (filed by a customer number she never
    gave: learned from her CRM record) and her proof-of-delivery lines: and none of theirs."""
    from demo.recordings import seed_recordings
    from demo.seed import NAMESAKE, PETER

    monkeypatch.setenv("DSAR_DEMO_S3_ENDPOINT", moto_endpoint)
    seed_recordings(moto_endpoint, demo_env["DSAR_DEMO_CRM_URL"])
    h = await start(ts_env, store, settings, identifiers=IDS)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    s = await at_stage(h, Stage.REVIEWING)
    blobs = blob_store_from_settings(settings)
    records: dict[str, list[dict[str, object]]] = {}
    for name in ("crm", "marketing", "recordings"):
        result = system(s, name)
        assert result["status"] == "found", result
        lines = b"".join(blobs.open_reader(str(result["blob_ref"]))).splitlines()
        records[name] = [json.loads(line) for line in lines]
        assert len(records[name]) == result["records"]

    crm = records["crm"]
    assert {r["record"]["id"] for r in crm if r["entity"] == "customers"} == {int(MARGARET["customer_id"])}
    her_orders = {r["record"]["id"] for r in crm if r["entity"] == "orders"}
    assert her_orders and all(r["record"]["customer_id"] == 1 for r in crm if "customer_id" in r["record"])
    assert all(r["record"]["order_id"] in her_orders for r in crm if r["entity"] in ("payments", "parcels"))
    assert {r["entity"] for r in crm} >= {
        "customers",
        "orders",
        "payments",
        "support_tickets",
        "call_recordings",
    }
    stored = [r["record"]["email"] for r in records["marketing"] if r["entity"] == "preferences"]
    assert [str(e).strip().lower() for e in stored] == [MARGARET["email"]]  # stored as typed
    audio = [r["record"] for r in records["recordings"] if r["entity"] == "call_audio"]
    calls = [r["record"] for r in crm if r["entity"] == "call_recordings"]
    assert sorted(a["key"] for a in audio) == sorted(c["storage_key"] for c in calls) and audio
    deliveries = [r["record"]["content"] for r in records["recordings"] if r["entity"] == "proof_of_delivery"]
    assert deliveries
    assert all(str(d["recipient_email"]).strip().lower() == MARGARET["email"] for d in deliveries)  # type: ignore[index]
    assert len(deliveries) == len([r for r in crm if r["entity"] == "parcels"])

    everything = json.dumps(records)
    for other in (PETER, NAMESAKE):
        for kind in ("email", "phone", "account_number"):
            assert other[kind] not in everything, f"{kind} of another person collected"
    assert "recordings/2/" not in everything and "recordings/3/" not in everything


# --------------------------------------------------------------------------- searched by hand


async def test_manual_system_is_asked_reminded_escalated_and_answered_nothing_held(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings, identifiers=IDS)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    s = await wait_until(h, lambda s: s.waiting_for == "search by hand: cctv" and searched(s, "crm"))
    assert s.stage == Stage.SEARCHING
    assert system(s, "crm")["status"] == "found" and system(s, "cctv")["status"] == "waiting"

    ask = [
        m
        for m in letters(settings)
        if "Please search cctv" in str(m["Subject"]) and h.id in str(m["Subject"])
    ]
    assert len(ask) == 1 and ask[0]["To"] == "facilities@northwind.example.com"
    body = ask[0].get_body(("plain",)).get_content()
    assert "CCTV recorder" in body  # the data map's instructions
    assert MARGARET["email"] not in body and MARGARET["name"] not in body  # no personal data by email

    await ts_env.sleep(timedelta(days=3, hours=1))
    await wait_until(h, lambda s: True)
    assert sum("Reminder: cctv" in x for x in subjects(settings, h.id)) == 1
    await ts_env.sleep(timedelta(days=4))
    assert sum("ESCALATION: cctv" in x for x in subjects(settings, h.id)) == 1
    escalation = next(m for m in letters(settings) if "ESCALATION: cctv" in str(m["Subject"]))
    assert escalation["To"] == settings.operator_email

    assert "not waiting for a search by hand" in await refused_system(h, DecisionKind.NOTHING_HELD, "crm")
    await decide_system(h, DecisionKind.NOTHING_HELD, "cctv", "footage overwritten after 31 days")
    s = await at_stage(h, Stage.REVIEWING)
    assert system(s, "cctv")["status"] == "none"
    assert "footage overwritten" in str(system(s, "cctv")["detail"])
    actions = [e.action for e in store.audit_trail(h.id)]
    assert "search:manual_escalated" in actions and "decision:nothing_held" in actions


async def test_manual_upload_through_the_api_is_encrypted_and_joins_the_search(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    app = create_app(settings, client=ts_env.client, store=store)
    h = await start(ts_env, store, settings, identifiers=IDS)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    await wait_until(h, lambda s: s.waiting_for == "search by hand: cctv" and searched(s, "crm"))
    still = b"JPEG-still-of-the-depot-counter 2026-11-02 10:14"
    url = f"/api/v1/requests/{h.id}/systems/cctv/found"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        r = await api.post(url, files={"file": ("still.jpg", b"")}, headers=bearer(settings, "operator"))
        assert r.status_code == 422 and "nothing held" in r.text
        r = await api.post(
            f"/api/v1/requests/{h.id}/systems/crm/found",
            files={"file": ("x.jpg", still)},
            headers=bearer(settings, "operator"),
        )
        assert r.status_code == 409 and "not waiting for a search by hand" in r.text
        r = await api.post(
            url,
            files={"file": ("still.jpg", still)},
            data={"reason": "two stills, faces of others blurred", "records": "2"},
            headers=bearer(settings, "operator"),
        )
        assert r.status_code == 200, r.text
    s = await at_stage(h, Stage.REVIEWING)
    cctv = system(s, "cctv")
    assert cctv["status"] == "found" and cctv["records"] == 2
    blobs = blob_store_from_settings(settings)
    assert b"".join(blobs.open_reader(str(cctv["blob_ref"]))) == still
    # encrypted at rest: the bytes on disk are not the upload
    stored = list(settings.resolved_blob_dir.rglob("*cctv-manual.bin"))
    assert stored and all(still not in p.read_bytes() for p in stored)
    # the refused upload was not kept
    assert len(stored) == 1


# --------------------------------------------------------------------------- skipped by an operator


async def test_operator_skips_a_system_with_a_reason_and_it_is_audited(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings, identifiers=IDS)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    await wait_until(h, lambda s: s.waiting_for == "search by hand: cctv" and searched(s, "crm"))
    assert "needs a reason" in await refused_system(h, DecisionKind.SKIP_SYSTEM, "cctv", "")
    assert "needs a system being searched" in await refused_system(
        h, DecisionKind.SKIP_SYSTEM, "billing", "x"
    )
    assert "already been searched" in await refused_system(h, DecisionKind.SKIP_SYSTEM, "crm", "x")
    await decide_system(h, DecisionKind.SKIP_SYSTEM, "cctv", "no depot visits in the period")
    s = await at_stage(h, Stage.REVIEWING)
    assert system(s, "cctv")["status"] == "skipped"
    assert "no depot visits" in str(system(s, "cctv")["detail"])
    assert "cctv skipped" in s.results["searching"]
    entry = next(e for e in store.audit_trail(h.id) if e.action == "decision:skip_system")
    assert entry.reason == "no depot visits in the period" and entry.actor == "operator:alice"
    assert entry.details["system"] == "cctv"


@pytest.mark.systems("crm")
async def test_identifiers_of_two_people_are_a_question_for_an_operator_not_nothing_held(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    """Her email and her neighbour's phone: verification cannot tell them apart; an operator
    verifies anyway. The search then has two people and no way to choose: an operator task
    (retry, or leave the system out), never a copy of either, never "we hold nothing"."""
    from dsar.guard import GuardStore

    ids = {"email": MARGARET["email"], "phone": PETER["phone"]}
    # the match's failed attempt counts against these identifiers in the shared register's
    # lockout table: forgotten afterwards, so other tests' cases of the same people are not locked
    guard = GuardStore.from_settings(settings)
    for kind, value in ids.items():
        guard.clear(kind, value)
    try:
        await _two_people(ts_env, store, settings)
    finally:
        for kind, value in ids.items():
            guard.clear(kind, value)


async def _two_people(ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings) -> None:
    from dsar.model import Decision

    h = await start(
        ts_env, store, settings, identifiers={"email": MARGARET["email"], "phone": PETER["phone"]}
    )
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    s = await wait_until(h, lambda s: any(t.status == "open" for t in s.tasks))
    (task,) = s.tasks
    assert task.error_type == "SearchAmbiguous" and "different people" in task.message
    assert MARGARET["email"] not in task.message and PETER["phone"] not in task.message
    assert s.stage == Stage.SEARCHING and system(s, "crm")["status"] == "failed"
    await h.execute_update(
        DataSubjectRequest.decide,
        Decision(
            kind=DecisionKind.SKIP_STEP, actor="operator:alice", task=task.id, reason="asked her by post"
        ),
    )
    s = await wait_until(h, lambda s: system(s, "crm")["status"] == "skipped" and s.stage == Stage.RESPONDED)
    # no copy of either person; the answer says the system was not searched, and claims nothing
    assert s.review is None
    (answer,) = [plain_text(m) for m in letters(settings) if "Our response" in str(m["Subject"])]
    words = " ".join(answer.split())
    assert "We did not search our customer database, so we cannot tell you whether it holds" in words
    assert "we hold no personal data about you" not in words


# --------------------------------------------------------------------------- a database goes down


@pytest.mark.systems("crm", "marketing", url_envs={"crm": PRIVATE_CRM_ENV})
async def test_database_down_mid_search_case_waits_then_completes_when_it_returns(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    private_pg: PrivatePostgres,
) -> None:
    h = await start(ts_env, store, settings, identifiers=IDS)
    await at_stage(h, Stage.VERIFYING)
    private_pg.stop()
    try:
        await decide(h, DecisionKind.VERIFY)
        s = await wait_until(h, lambda s: s.waiting_for == "unreachable: crm" and searched(s, "marketing"))
        assert s.stage == Stage.SEARCHING
        crm = system(s, "crm")
        assert crm["status"] == "unreachable" and crm["attempts"] == 1
        assert "crm unreachable since " in str(crm["detail"]) and str(crm["detail"]).endswith("attempt 1")
        assert system(s, "marketing")["status"] == "found"  # the other system is not held up
        # backoff: 30 s, 60 s, 120 s, ... the case keeps trying, shows each attempt, never fails
        await ts_env.sleep(timedelta(minutes=4))
        s = await wait_until(h, lambda s: system(s, "crm")["attempts"] >= 3)
        assert s.stage == Stage.SEARCHING and system(s, "crm")["status"] == "unreachable"
        since = str(crm["detail"]).split(" since ")[1].split(",")[0]
        assert f"since {since}, attempt" in str(system(s, "crm")["detail"])  # "since" stays put
    finally:
        private_pg.start()
    await ts_env.sleep(timedelta(minutes=16))
    s = await at_stage(h, Stage.REVIEWING)
    crm = system(s, "crm")
    assert crm["status"] == "found" and int(crm["records"]) > 0  # type: ignore[call-overload]
    assert "reached after" in str(crm["detail"])
    actions = [e.action for e in store.audit_trail(h.id)]
    assert actions.count("search:unreachable") == 1 and "search:reachable" in actions


# --------------------------------------------------------------------------- the concurrency cap


@pytest.mark.systems("crm", "marketing", url_envs={"crm": PRIVATE_CRM_ENV}, caps={"crm": 1})
async def test_a_burst_of_cases_searches_a_system_no_more_than_its_cap_at_once(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    private_pg: PrivatePostgres,
) -> None:
    """Three cases reach the CRM's search together while a lock holds its customers table: with
    ``max_concurrent: 1`` the database sees one waiting search, never more; the others queue on
    the CRM's task queue, and all three finish once the lock goes."""
    import psycopg

    waiting_sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    handles = [await start(ts_env, store, settings, identifiers=IDS) for _ in range(3)]
    for h in handles:  # identity matched (it reads the CRM too), waiting for the operator
        await at_stage(h, Stage.VERIFYING)
    with psycopg.connect(private_pg.url, autocommit=False) as lock:
        lock.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        for h in handles:
            await decide(h, DecisionKind.VERIFY)
        with psycopg.connect(private_pg.url, autocommit=True) as watcher:
            seen = []
            for _ in range(40):  # two seconds of watching
                seen.append(watcher.execute(waiting_sql).fetchone()[0])  # type: ignore[index]
                await asyncio.sleep(0.05)
        assert max(seen) == 1, seen
        for h in handles:
            s = await snapshot_of(h)
            assert s.stage == Stage.SEARCHING and system(s, "crm")["status"] == "searching"
        lock.rollback()  # the lock goes
    for h in handles:
        s = await at_stage(h, Stage.REVIEWING)
        assert system(s, "crm")["status"] == "found"


# --------------------------------------------------------------------------- helpers


async def snapshot_of(h: object) -> object:
    return await h.query(DataSubjectRequest.snapshot)  # type: ignore[attr-defined]


async def decide_system(h: object, kind: DecisionKind, name: str, reason: str) -> str:
    from dsar.model import Decision

    result = await h.execute_update(  # type: ignore[attr-defined]
        DataSubjectRequest.decide, Decision(kind=kind, actor="operator:alice", reason=reason, system=name)
    )
    return str(result.message)


async def refused_system(h: object, kind: DecisionKind, name: str, reason: str = "checked") -> str:
    from temporalio.client import WorkflowUpdateFailedError

    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide_system(h, kind, name, reason)
    return str(info.value.cause)


__all__ = ["refused"]


@pytest.mark.systems("crm", "marketing", url_envs={"crm": PRIVATE_CRM_ENV})
async def test_database_down_while_matching_identity_is_shown_audited_and_a_verify_meanwhile_keeps_the_match(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    private_pg: PrivatePostgres,
) -> None:
    """Issue 18: the register says what the case does ("matching identity: crm unreachable
    since ..., attempt N"), never "operator: identity check" while the match runs; the outage is
    audited; an operator who verifies meanwhile moves the case on, and the match is still
    recorded when the system answers."""
    private_pg.stop()
    try:
        h = await start(ts_env, store, settings, identifiers=IDS)
        s = await wait_until(
            h, lambda s: (s.waiting_for or "").startswith("matching identity: crm unreachable")
        )
        assert s.stage == Stage.VERIFYING and "attempt 1" in str(s.waiting_for)
        for _ in range(100):
            row = store.get(h.id)
            if row is not None and (row.waiting_for or "").startswith("matching identity: crm unreachable"):
                break
            await asyncio.sleep(0.05)
        assert row is not None and row.waiting_for and row.waiting_for.startswith("matching identity")
        assert [e.action for e in store.audit_trail(h.id)].count("identity:unreachable") == 1
        await decide(h, DecisionKind.VERIFY)  # the operator knows the person: verified meanwhile
        await wait_until(h, lambda s: s.stage == Stage.SEARCHING)
    finally:
        private_pg.start()
    await ts_env.sleep(timedelta(minutes=16))
    await at_stage(h, Stage.REVIEWING)
    for _ in range(100):
        trail = store.audit_trail(h.id)
        if any(e.action == "identity:matched" for e in trail):
            break
        await asyncio.sleep(0.05)
    matched = [e for e in trail if e.action == "identity:matched"]
    assert len(matched) == 1 and matched[0].details["after"] == "an operator verified during the match"
    actions = [e.action for e in trail]
    assert "identity:reachable" in actions
    assert actions.index("decision:verify") < actions.index("identity:matched")
