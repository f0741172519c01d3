"""Two intakes of the same request at the same moment (a double-clicked form, two pollers, a client
retrying before its first call returned) open one case: the same reference for every caller, one
register row, one workflow, on the real Temporal test server and a real register (SQLite and
PostgreSQL). A register that was reset while Temporal kept its cases is still refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from dsar.model import Channel, Regime, RequestType
from dsar.settings import Settings
from dsar.store import Case, CaseStore
from intake.service import (
    REGISTER_ROW_MEMO,
    NewRequest,
    OpenedCase,
    RegisterOutOfStep,
    open_case,
    register_row_token,
)
from tests.conftest import _settle_and_terminate, make_settings
from worker import build_workers

CALLERS = 8
ROUNDS = 20  # the race shows in about one round in eight without the fix
CONTROLLER = "Northwind Post & Mobile"
#: References are DSR-<year of receipt>-<register id>: a year of its own per backend keeps these
#: fresh registers' references apart from every other test's on the shared Temporal server.
YEARS = {"sqlite": 2011, "postgres": 2012}


@pytest.fixture
def register(database_url: str) -> Iterator[CaseStore]:
    s = CaseStore(database_url)
    yield s
    s.close()


def request(key: str, received_at: datetime) -> NewRequest:
    return NewRequest(
        request_type=RequestType.ERASURE,
        regime=Regime.UK_GDPR,
        identifiers={"email": "race.tester@example.org", "name": "Race Tester"},
        channel=Channel.WEB_FORM,
        idempotency_key=key,
        received_at=received_at,
    )


async def all_at_once(
    env: WorkflowEnvironment, store: CaseStore, settings: Settings, new: NewRequest
) -> list[OpenedCase]:
    """``CALLERS`` intakes of the same request, started together: each register call runs in
    its own thread, each engine call is its own RPC."""
    return await asyncio.gather(
        *(open_case(env.client, store, settings, new, CONTROLLER) for _ in range(CALLERS))
    )


def rows_with_key(store: CaseStore, key: str) -> int:
    with store.engine.connect() as conn:
        query = text(f"SELECT count(*) FROM {Case.__tablename__} WHERE idempotency_key = :k")
        return int(conn.execute(query, {"k": key}).scalar_one())


async def end_cases(env: WorkflowEnvironment, references: list[str]) -> None:
    """No worker runs these cases: end them so the time-skipping server is not left waiting."""
    for reference in references:
        handle = env.client.get_workflow_handle(reference)
        try:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test finished")
        except RPCError:
            pass


async def test_simultaneous_intakes_with_one_key_open_one_case(
    ts_env: WorkflowEnvironment,
    register: CaseStore,
    database_url: str,
    tmp_path: Path,
    demo_env: dict[str, str],  # the cases' worker reads the demo systems
) -> None:
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    settings = make_settings(tmp_path / "var", database_url=database_url)
    start = datetime(YEARS[backend], 3, 1, 9, 0, tzinfo=UTC)
    opened: list[str] = []
    # A worker runs the cases: the time-skipping server keeps its clock locked for a workflow
    # task nobody has taken, even once the workflow is terminated, which would stall every
    # later test that skips time.
    workers = build_workers(ts_env.client, settings, store=register)
    for w in workers:
        await w.__aenter__()
    try:
        for i in range(ROUNDS):
            key = f"form:race-{i}"
            results = await all_at_once(ts_env, register, settings, request(key, start + timedelta(hours=i)))
            references = {r.reference for r in results}
            assert len(references) == 1, references
            (reference,) = references
            opened.append(reference)
            assert sum(r.created for r in results) == 1
            assert len({r.due for r in results}) == 1
            assert rows_with_key(register, key) == 1
            row = register.get(reference)
            assert row is not None and row.idempotency_key == key
            # One workflow, started for this register row (whoever reached the engine first).
            description = await ts_env.client.get_workflow_handle(reference).describe()
            assert description.status == WorkflowExecutionStatus.RUNNING
            assert await description.memo_value(REGISTER_ROW_MEMO) == register_row_token(row)
            history = await ts_env.client.get_workflow_handle(reference).fetch_history()
            starts = [e for e in history.events if e.HasField("workflow_execution_started_event_attributes")]
            assert len(starts) == 1
        assert len(set(opened)) == ROUNDS

        # A register restored from an empty backup hands out the first reference again, for
        # another person: that must still be refused, not merged into the existing case.
        restored = CaseStore(f"sqlite:///{tmp_path / 'restored.db'}")
        try:
            with pytest.raises(RegisterOutOfStep, match="out of step"):
                await open_case(
                    ts_env.client, restored, settings, request("form:someone-else", start), CONTROLLER
                )
            assert restored.get(opened[0]) is not None  # the same reference as the first case
        finally:
            restored.close()
    finally:
        for reference in opened:
            await _settle_and_terminate(ts_env.client, reference)
        for w in reversed(workers):
            await w.__aexit__(None, None, None)
        await end_cases(ts_env, opened)
