"""The ``dsar`` command as a user runs it: a subprocess, one-line errors, no tracebacks."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from console.app import create_app
from console.auth import mint_token, verify_dev_token
from dsar.model import Channel, Regime, RequestType
from dsar.settings import Settings
from dsar.store import CaseStore, NewCase
from tests.conftest import DATA, ROOT


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a user whose settings match the test's (same secrets, same var dir)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSAR_")}
    env.update(
        {
            "DSAR_VAR_DIR": str(settings.var_dir),
            "DSAR_JWT_SECRET": settings.jwt_secret_value,
            "DSAR_AUTH_MODE": settings.auth_mode,
            "DSAR_CODEC_KEY": settings.codec_key or "",
            "DSAR_DATABASE_URL": settings.resolved_database_url,
        }
    )
    env.update(extra)
    return env


async def dsar(*args: str, env: dict[str, str], stdin: str = "") -> Run:
    """Run ``dsar ARGS`` without blocking the event loop (the worker and the app share it)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dsar.cli", *args,
        cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=120)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def assert_one_line_error(run: Run) -> None:
    assert run.code != 0
    assert "Traceback" not in run.err
    assert len(run.err.strip().splitlines()) == 1, run.err
    assert run.err.startswith("dsar ")


# --------------------------------------------------------------------------------------------
# Local commands


async def test_deadline_answers_every_line_and_never_tracebacks(settings: Settings) -> None:
    vectors = [json.loads(line) for line in (DATA / "deadlines.jsonl").read_text().splitlines()[:5]]
    garbage = ["not json at all", "{}", "[1, 2]", '{"id": "x", "regime": "MARS"}']
    stdin = "\n".join([*(json.dumps(v) for v in vectors), *garbage]) + "\n"
    run = await dsar("deadline", env=cli_env(settings), stdin=stdin)
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    lines = [json.loads(line) for line in run.out.splitlines()]
    assert len(lines) == len(vectors) + len(garbage)
    for vector, got in zip(vectors, lines, strict=False):
        assert got == {"id": vector["id"], "due": vector["due"]}
    assert all("error" in got for got in lines[len(vectors) :])


async def test_token_is_a_valid_staff_token(settings: Settings) -> None:
    run = await dsar("token", "--sub", "rita", "--role", "reviewer", env=cli_env(settings))
    assert run.code == 0, run.err
    who = verify_dev_token(settings, run.out.strip())
    assert (who.sub, who.roles) == ("rita", ("reviewer",))

    bad = await dsar("token", "--sub", "rita", "--role", "overlord", env=cli_env(settings))
    assert bad.code == 2 and "Traceback" not in bad.err


async def test_audit_verify_on_a_fresh_store(settings: Settings, tmp_path: Path) -> None:
    # A register of its own: a case row without a workflow must not reach the shared register.
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    store = CaseStore(url)
    try:
        row, _ = store.open_case(NewCase(RequestType.ACCESS, Regime.UK_GDPR, Channel.API, datetime.now(UTC)))
        store.append_audit(row.reference, "stage:acknowledged", "system")
        store.append_audit(row.reference, "decision:verify", "operator:olive", reason="passport seen")
    finally:
        store.close()
    env = cli_env(settings, DSAR_DATABASE_URL=url)
    run = await dsar("audit", "verify", row.reference, env=env)
    assert run.code == 0, run.err
    report = run.json()
    assert isinstance(report, dict)
    assert report["ok"] is True and report["events"] == 2

    missing = await dsar("audit", "verify", "DSR-2020-999999", env=env)
    assert missing.code == 1
    assert json.loads(missing.out)["ok"] is False


async def test_unexpected_errors_are_one_line_with_exit_2(settings: Settings) -> None:
    run = await dsar(
        "audit", "verify", "DSR-2026-000001", env=cli_env(settings, DSAR_DATABASE_URL="nosuchdb://x")
    )
    assert run.code == 2
    assert_one_line_error(run)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_status_with_nothing_listening(settings: Settings) -> None:
    env = cli_env(settings, DSAR_API_URL=f"http://127.0.0.1:{_free_port()}", DSAR_TOKEN="anything")
    run = await dsar("status", "DSR-2026-000001", env=env)
    assert_one_line_error(run)
    assert "cannot reach the dsar API" in run.err
    assert run.out == ""


# --------------------------------------------------------------------------------------------
# Against the app served over real HTTP


class BackgroundServer:
    """uvicorn on a loopback port in a thread of its own, serving the test's app."""

    def __init__(self, app: object) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        # log_config=None: uvicorn must not reconfigure the process's logging for later tests.
        config = uvicorn.Config(app, log_config=None, lifespan="off")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    async def __aenter__(self) -> BackgroundServer:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            await asyncio.sleep(0.05)
        raise RuntimeError("uvicorn did not start")

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 10)
        self.sock.close()


@pytest.fixture
async def served(
    ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore, worker: Worker
) -> AsyncIterator[BackgroundServer]:
    app = create_app(settings, client=ts_env.client, store=store)
    async with BackgroundServer(app) as server:
        yield server
    # Open cases are ended by the ``worker`` fixture once they settle (tests/conftest.py).


async def test_a_rectification_from_the_cli_carries_its_corrections(
    served: BackgroundServer, settings: Settings, ts_env: WorkflowEnvironment
) -> None:
    from workflows.request import DataSubjectRequest

    env = cli_env(settings, DSAR_API_URL=served.url, DSAR_TOKEN=mint_token(settings, "olive", ["operator"]))
    correct = ["--correct", "postal_address=3 Mill Road, Coventry"]
    run = await dsar("submit", "--type", "rectification", "--regime", "UK_GDPR", "--email",
                     "margaret.ellis@example.com", *correct, env=env)  # fmt: skip
    assert run.code == 0, run.err
    opened = run.json()
    assert isinstance(opened, dict)
    details = await ts_env.client.get_workflow_handle(opened["reference"]).query(DataSubjectRequest.details)
    assert details.corrections == {"postal_address": "3 Mill Road, Coventry"}
    bad = await dsar("submit", "--type", "access", "--regime", "UK_GDPR", "--email", "m@example.com",
                     "--correct", "postcode", env=env)  # fmt: skip
    assert bad.code != 0 and "KIND=VALUE" in bad.err


async def test_submit_status_decide_and_queue_through_the_api(
    served: BackgroundServer, settings: Settings
) -> None:
    token = mint_token(settings, "olive", ["operator"])
    env = cli_env(settings, DSAR_API_URL=served.url, DSAR_TOKEN=token)
    key = f"cli-{uuid.uuid4().hex}"
    person = [
        "--email",
        "margaret.ellis@example.com",
        "--name",
        "Margaret Ellis",
        "--phone",
        "+44 7911 123456",
    ]

    run = await dsar("submit", "--type", "access", "--regime", "UK_GDPR", *person, "--postcode", "CV3 4LP",
                     "--idempotency-key", key, env=env)  # fmt: skip
    assert run.code == 0, run.err
    opened = run.json()
    assert isinstance(opened, dict)
    ref = opened["reference"]
    assert ref.startswith("DSR-") and opened["due"]

    again = await dsar("submit", "--type", "access", "--regime", "UK_GDPR", *person, "--idempotency-key", key,
                       env=env)  # fmt: skip
    assert again.code == 0 and again.json() == opened

    for _ in range(100):
        status = await dsar("status", ref, env=env)
        assert status.code == 0, status.err
        snap = status.json()
        assert isinstance(snap, dict)
        if snap["stage"] == "verifying":
            break
        await asyncio.sleep(0.1)
    assert snap["reference"] == ref and snap["stage"] == "verifying" and snap["due"] == opened["due"]

    refused = await dsar("decide", ref, "approve", env=env)
    assert_one_line_error(refused)
    assert "403" in refused.err and "reviewer" in refused.err

    verified = await dsar("decide", ref, "verify", "--reason", "passport seen", env=env)
    assert verified.code == 0, verified.err

    for _ in range(100):
        status = await dsar("status", ref, env=env)
        if status.json()["stage"] == "reviewing":
            break
        await asyncio.sleep(0.1)

    # No DSAR_TOKEN: the CLI never signs one of its own; it says what to do.
    no_token = await dsar("queue", env={k: v for k, v in env.items() if k != "DSAR_TOKEN"})
    assert_one_line_error(no_token)
    assert "DSAR_TOKEN" in no_token.err
    queue = await dsar("queue", "--stage", "reviewing", "--limit", "500", env=env)
    assert queue.code == 0, queue.err
    listed = queue.json()
    assert isinstance(listed, dict)
    assert ref in [i["reference"] for i in listed["items"]]

    unknown = await dsar("status", "DSR-2020-999999", env=env)
    assert_one_line_error(unknown)
    assert "404" in unknown.err

    bad = await dsar("submit", "--type", "access", "--regime", "UK_GDPR", "--id", "shoe_size=11", env=env)
    assert_one_line_error(bad)
    assert "422" in bad.err and "shoe_size" in bad.err


def test_dev_takes_its_option() -> None:
    """`dsar dev --no-demo-cases` reaches the dev stack (argparse's REMAINDER refused it)."""
    from dsar.cli import build_parser

    assert build_parser().parse_args(["dev", "--no-demo-cases"]).no_demo_cases is True
    assert build_parser().parse_args(["dev"]).no_demo_cases is False
