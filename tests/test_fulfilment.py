"""Erasure and the other changes carried out by the workflow on the demo company (a private
copy per test, so erasing Margaret here does not change what other tests find): the plan shown
to the reviewer, applied system by system and proved by a second search, the suppression entry,
the letter that says what was kept and why; rectification verified without the disputed field;
objection and restriction flags; and a worker killed between two systems."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from connectors.sql import dispose_engines
from demo.seed import MARGARET, seed_demo
from dsar.blobs import blob_store_from_settings
from dsar.model import Channel, DecisionKind, Regime, RequestType, Stage
from dsar.settings import Settings
from dsar.store import CaseStore
from dsar.suppression import SuppressionList
from intake.service import NewRequest, open_case
from tests.conftest import ROOT, keep_systems, make_settings, read
from tests.test_workflow import at_stage, decide, letters, refused, start
from workflows.request import DataSubjectRequest

IDS = {k: MARGARET[k] for k in ("name", "email", "phone")}


@pytest.fixture
def private_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The demo company seeded into SQLite files of this test's own."""
    tag = uuid.uuid4().hex[:8].upper()
    urls = {"crm": f"sqlite:///{tmp_path / 'crm.db'}", "marketing": f"sqlite:///{tmp_path / 'mk.db'}"}
    seed_demo(urls["crm"], urls["marketing"])
    envs = {name: f"DSAR_TEST_FULFIL_{name.upper()}_{tag}" for name in urls}
    for name, url in urls.items():
        monkeypatch.setenv(envs[name], url)
    document = yaml.safe_load((ROOT / "demo" / "dsar.yaml").read_text())
    keep_systems(document, lambda k, _: k in urls)
    for name, env in envs.items():
        document["systems"][name]["url_env"] = env
    document["verification"] = {"automatic": False}
    (tmp_path / "dsar.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    yield urls
    dispose_engines()


@pytest.fixture
def settings(tmp_path: Path, private_demo: dict[str, str], register_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url=register_url, datamap=tmp_path / "dsar.yaml")


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


async def approved(
    ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings, kind: RequestType, **kw: object
):  # type: ignore[no-untyped-def]
    if kw:
        opened = await open_case(
            ts_env.client,
            store,
            settings,
            NewRequest(
                kind,
                Regime.UK_GDPR,
                dict(IDS),
                Channel.API,
                received_at=await ts_env.get_current_time(),
                **kw,
            ),  # type: ignore[arg-type]
            controller="Northwind Post & Mobile",
        )
        h = ts_env.client.get_workflow_handle_for(DataSubjectRequest.run, opened.reference)
    else:
        h = await start(ts_env, store, settings, kind, identifiers=IDS)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    s = await at_stage(h, Stage.REVIEWING)
    assert s.review is not None and s.review.plan_ref, "the reviewer sees the plan"
    plan = blob_store_from_settings(settings).get(s.review.plan_ref).decode()
    await decide(h, DecisionKind.APPROVE)
    return h, plan


def trail(store: CaseStore, reference: str) -> list[tuple[str, str | None]]:
    return [(e.action, e.details.get("system")) for e in store.audit_trail(reference)]


async def test_erasure_is_carried_out_verified_suppressed_and_the_letter_says_what_was_kept(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    private_demo: dict[str, str],
) -> None:
    h, plan = await approved(ts_env, store, settings, RequestType.ERASURE)
    assert "payments" in plan and "Companies Act" in plan
    s = await at_stage(h, Stage.RESPONDED)
    actions = trail(store, h.id)
    for system in ("crm", "marketing"):
        assert ("change:applied", system) in actions and ("change:verified", system) in actions
    assert ("suppression:recorded", None) in actions
    # her contact details are gone; what the law keeps is still there
    crm = private_demo["crm"]
    assert MARGARET["email"] not in {str(r[0]).lower() for r in rows(crm, "SELECT email FROM customers")}
    assert rows(
        crm, "SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.customer_id = 1"
    )[0][0]
    assert (
        rows(crm, "SELECT count(*) FROM fraud_markers WHERE customer_id = 1 AND status = 'open'")[0][0] == 1
    )
    assert rows(crm, "SELECT count(*) FROM support_tickets WHERE customer_id = 1")[0][0] == 0
    # nobody else touched: Peter, at the same address, keeps his account
    assert rows(crm, "SELECT count(*) FROM customers WHERE email IS NOT NULL AND id = 2")[0][0] == 1
    # an import that would add her again is refused
    suppression = SuppressionList.from_settings(settings, store.engine)
    assert suppression.is_suppressed({"email": MARGARET["email"]})
    response = read(next(m for m in letters(settings) if "Our response" in str(m["Subject"])))
    assert "Companies Act" in response and "kept" in response.lower()
    kept = response.split("What we kept")[1]
    # the open investigation's marker is kept without a word, and nothing else of the fraud
    # markers is named or counted (the closed marker's deletion would tell too)
    assert "fraud" not in response.lower()
    assert "Money Laundering Regulations" in kept
    assert "crm" in s.results["fulfilling"]


async def test_rectification_is_verified_without_the_disputed_phone_and_applied_everywhere_it_is_held(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    private_demo: dict[str, str],
) -> None:
    new_phone = "+44 7700 900123"
    h, plan = await approved(
        ts_env, store, settings, RequestType.RECTIFICATION, corrections={"phone": new_phone}
    )
    assert "phone" in plan
    s = await at_stage(h, Stage.RESPONDED)
    assert s.identity is not None and "phone" not in s.identity.matched_kinds
    held = rows(private_demo["crm"], "SELECT phone FROM customers WHERE id = 1")[0][0]
    assert str(held).replace(" ", "") == new_phone.replace(" ", "")
    assert ("change:verified", "crm") in trail(store, h.id)


@pytest.mark.parametrize(
    ("kind", "sql", "expected"),
    [
        (RequestType.RESTRICTION, "crm:SELECT processing_restricted FROM customers WHERE id = 1", True),
        (RequestType.OBJECTION, "marketing:SELECT marketing_allowed FROM preferences WHERE id = 1", False),
    ],
)
async def test_restriction_and_objection_flag_the_records_as_the_data_map_says(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    private_demo: dict[str, str],
    kind: RequestType,
    sql: str,
    expected: object,
) -> None:
    h, _ = await approved(ts_env, store, settings, kind)
    await at_stage(h, Stage.RESPONDED)
    system, _, query = sql.partition(":")
    assert bool(rows(private_demo[system], query)[0][0]) is expected
    assert ("change:verified", system) in trail(store, h.id)


async def test_a_worker_killed_between_two_systems_resumes_without_double_effects_or_a_missed_system(
    ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings, private_demo: dict[str, str]
) -> None:
    """The first worker serves the CRM but not marketing: the erasure is applied in the CRM and
    waits for marketing when the worker is stopped. A new worker finishes the case: marketing is
    erased, the CRM is not erased twice, and both are proved by a second search."""
    from tests.conftest import _settle_and_terminate, replay_in_sandbox
    from worker import build_workers

    def running() -> list[Worker]:
        main, *systems = build_workers(ts_env.client, settings, store=store, cache_workflows=False)
        return [main, *systems]

    first = running()
    for w in first:
        await w.__aenter__()
    marketing = next(w for w in first if w.task_queue.endswith("-system-marketing"))
    try:
        h = await start(ts_env, store, settings, RequestType.ERASURE, identifiers=IDS)
        await at_stage(h, Stage.VERIFYING)
        await decide(h, DecisionKind.VERIFY)
        await at_stage(h, Stage.REVIEWING)
        await marketing.__aexit__(None, None, None)  # marketing's worker goes first...
        first.remove(marketing)
        await decide(h, DecisionKind.APPROVE)
        for _ in range(300):
            if ("change:verified", "crm") in trail(store, h.id):
                break
            await asyncio.sleep(0.05)
        assert ("change:verified", "crm") in trail(store, h.id)
        assert ("change:applied", "marketing") not in trail(store, h.id)
    finally:
        for w in reversed(first):
            await w.__aexit__(None, None, None)  # ...then the whole worker process dies
    assert rows(private_demo["marketing"], "SELECT count(*) FROM preferences WHERE id = 1")[0][0] == 1

    second = running()
    for w in second:
        await w.__aenter__()
    try:
        for _ in range(1200):
            row = store.get(h.id)
            if row is not None and row.stage == Stage.RESPONDED.value:
                break
            await asyncio.sleep(0.05)
        assert row is not None and row.stage == Stage.RESPONDED.value
        actions = trail(store, h.id)
        assert actions.count(("change:applied", "crm")) == 1  # not erased twice
        assert actions.count(("change:applied", "marketing")) == 1  # not missed
        assert ("change:verified", "marketing") in actions
        assert rows(private_demo["marketing"], "SELECT count(*) FROM preferences WHERE id = 1")[0][0] == 0
        await _settle_and_terminate(ts_env.client, h.id)
    finally:
        for w in reversed(second):
            await w.__aexit__(None, None, None)
    await replay_in_sandbox(ts_env.client, [h.id])


async def test_a_change_the_data_map_gives_no_way_to_make_is_an_operator_task_not_a_claim(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    """No demo system declares a ``limit_use`` marker: the case asks an operator to do it and to
    say so, instead of telling the person it was done."""
    h = await start(ts_env, store, settings, RequestType.LIMIT_SENSITIVE, Regime.CCPA, identifiers=IDS)
    await at_stage(h, Stage.REVIEWING)
    await decide(h, DecisionKind.APPROVE)
    s = await at_stage(h, Stage.FULFILLING)
    assert s.waiting_for == "operator: carry out the change by hand"
    await decide(h, DecisionKind.FULFILLED, reason="sensitive-data use switched off in the CRM, ticket OPS-7")
    s = await at_stage(h, Stage.RESPONDED)
    assert "OPS-7" in s.results["fulfilling"]


@pytest.fixture
def payments_left_out(private_demo: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The demo map as a new user might write it (issue 16): orders deleted, and the payments
    table that points at them left out of the map."""
    path = tmp_path / "dsar.yaml"
    document = yaml.safe_load(path.read_text())
    crm = document["systems"]["crm"]["entities"]
    del crm["payments"]
    crm["orders"]["erasure"] = "delete"
    document["exemptions"] = [r for r in document["exemptions"] if r["entity"] != "orders"]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return private_demo


async def test_a_plan_a_database_constraint_would_refuse_is_never_approved(
    payments_left_out: dict[str, str],
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
) -> None:
    """The plan is worked out on the live database in the review: the reviewer sees what the
    foreign key would refuse, and approving is refused, so the case never fails after approval
    while the person is told it is under way. Nothing in the CRM changes."""
    orders = "SELECT count(*) FROM orders WHERE customer_id = 1"
    before = rows(payments_left_out["crm"], orders)
    h = await start(ts_env, store, settings, RequestType.ERASURE, identifiers=IDS)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    s = await at_stage(h, Stage.REVIEWING)
    assert s.review is not None and s.review.plan_ref
    plan = blob_store_from_settings(settings).get(s.review.plan_ref).decode()
    assert "constraint would refuse: crm.orders: deleting" in plan
    assert "foreign key payments.order_id -> orders.id" in plan
    message = await refused(h, DecisionKind.APPROVE)
    assert "the plan cannot be carried out as it stands" in message
    assert (await h.query(DataSubjectRequest.snapshot)).stage == Stage.REVIEWING
    assert rows(payments_left_out["crm"], orders) == before
