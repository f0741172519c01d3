"""End to end: the real Temporal dev server (with its Web UI), the worker and the HTTP app as
separate processes, exactly as ``make run`` starts them, driven through the public API."""

from __future__ import annotations

import base64
import json
import os
import shutil
import smtplib
import stat
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from console.auth import mint_token
from demo.mailserver import PRIVACY_ADDRESS
from dsar.devstack import Ports, Stack, _seed, free_port
from dsar.settings import Settings
from tests.conftest import TEST_CODEC_KEY

pytestmark = pytest.mark.e2e

PERSON = {
    "name": "Margaret Ellis",
    "email": "margaret.ellis@example.com",
    "phone": "+44 7911 123456",
    "postcode": "CV3 4LP",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    var = Path(tempfile.mkdtemp(prefix="dsar-e2e-"))
    var.chmod(var.stat().st_mode | stat.S_IRWXU)
    s = Stack(
        var=var,
        ports=Ports(
            temporal=free_port(),
            ui=free_port(),
            http=free_port(),
            s3=free_port(),
            imap=free_port(),
            smtp=free_port(),
        ),
        extra_env={"DSAR_CODEC_KEY": TEST_CODEC_KEY, "DSAR_CLOSE_AFTER_DAYS": "30"},
        workers=2,  # as on a two-core machine: the crash test kills both
    )
    _seed(s)
    t0 = time.monotonic()
    s.start()
    s.started_in = time.monotonic() - t0  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(var, ignore_errors=True)


def api(stack: Stack, role: str = "operator") -> httpx.Client:
    settings = Settings(var_dir=stack.var, auth_mode="dev")
    token = mint_token(settings, f"{role}-e2e", [role])
    return httpx.Client(
        base_url=f"http://127.0.0.1:{stack.ports.http}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def wait_stage(client: httpx.Client, ref: str, stage: str, timeout: float = 60) -> dict[str, Any]:
    """Wait for a stage and, where the stage waits for a person, for its work to be ready."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = client.get(f"/api/v1/requests/{ref}")
        if r.status_code == 200:
            last = r.json()
            waiting = last["waiting_for"] or ""
            if last["stage"] == stage and (
                stage not in ("verifying", "reviewing") or (waiting and not waiting.startswith("matching"))
            ):
                return last
        time.sleep(0.2)
    raise AssertionError(f"{ref} did not reach {stage}: last {last.get('stage')}")


def submit(client: httpx.Client, key: str) -> str:
    r = client.post(
        "/api/v1/requests",
        json={"type": "access", "regime": "UK_GDPR", "identifiers": PERSON, "idempotency_key": key},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["reference"])


def search_cctv_by_hand(client: httpx.Client, ref: str, timeout: float = 90) -> dict[str, Any]:
    """The demo's CCTV is searched by a person: wait for the task, answer "nothing held"."""
    deadline = time.monotonic() + timeout
    while "search by hand: cctv" not in str(
        (snap := client.get(f"/api/v1/requests/{ref}").json())["waiting_for"]
    ):
        assert time.monotonic() < deadline, f"{ref} never asked for the CCTV search: {snap}"
        time.sleep(0.2)
    r = client.post(
        f"/api/v1/requests/{ref}/decisions",
        json={"kind": "nothing_held", "system": "cctv", "reason": "no footage of the person"},
    )
    assert r.status_code == 200, r.text
    return snap


def test_stack_starts_within_60_seconds(stack: Stack) -> None:
    assert stack.started_in < 60  # type: ignore[attr-defined]


def test_access_request_reaches_responded_and_shows_in_the_web_ui(stack: Stack) -> None:
    op, rev = api(stack), api(stack, "reviewer")
    ref = submit(op, "e2e-happy")
    # Her four identifiers match her CRM record: identity is confirmed without an operator.
    snap = search_cctv_by_hand(op, ref)
    assert snap["due"]
    assert snap["identity"]["points"] == 4 and snap["identity"]["needed"] == 2
    wait_stage(op, ref, "reviewing")
    r = rev.post(f"/api/v1/requests/{ref}/decisions", json={"kind": "approve"})
    assert r.status_code == 200, r.text
    snap = wait_stage(op, ref, "responded")
    systems = {s["system"]: s for s in snap["systems"]}
    assert systems["crm"]["status"] == "found" and systems["marketing"]["status"] == "found"
    # the recordings store is keyed by the customer number, learned from her CRM record
    assert systems["recordings"]["status"] == "found" and systems["recordings"]["records"] >= 2
    assert systems["cctv"]["status"] == "none"

    # The Web UI serves the workflow list from its own HTTP API: the case is there with its
    # stage and due date as search attributes.
    ui = f"http://127.0.0.1:{stack.ports.ui}/api/v1/namespaces/default/workflows"
    deadline = time.monotonic() + 30
    while True:
        listing = httpx.get(ui, params={"query": f'WorkflowId="{ref}"'}, timeout=10).json()
        execs = listing.get("executions", [])
        fields = execs[0]["searchAttributes"]["indexedFields"] if execs else {}
        indexed = {k: json.loads(base64.b64decode(v["data"])) for k, v in fields.items()}
        if indexed.get("DsrStage") == "responded":
            break
        assert time.monotonic() < deadline, f"Web UI does not show {ref} as responded: {listing}"
        time.sleep(0.5)
    assert indexed["DsrDue"].startswith(snap["due"]) and indexed["DsrRegime"] == "UK_GDPR"  # Europe/London

    queue = op.get("/api/v1/requests", params={"stage": "responded"}).json()
    assert ref in str(queue)
    audit = op.get(f"/api/v1/requests/{ref}/audit").json()
    assert audit["chain"]["ok"] is True


def test_worker_killed_mid_case_is_restarted_and_finishes(stack: Stack) -> None:
    op, rev = api(stack), api(stack, "reviewer")
    ref = submit(op, "e2e-kill")
    stack.kill_workers()  # SIGKILL: no chance to clean up, whatever the case was doing
    stack.start_workers()
    search_cctv_by_hand(op, ref)
    wait_stage(op, ref, "reviewing", timeout=90)
    stack.kill_workers()
    stack.start_workers()
    assert rev.post(f"/api/v1/requests/{ref}/decisions", json={"kind": "approve"}).status_code == 200
    wait_stage(op, ref, "responded", timeout=90)
    trail = op.get(f"/api/v1/requests/{ref}/audit").json()
    actions = [e["action"] for e in trail["events"]]
    for stage in ("acknowledged", "verifying", "searching", "reviewing", "fulfilling", "responded"):
        assert actions.count(f"stage:{stage}") == 1, actions
    assert trail["chain"]["ok"] is True
    acks = [p for p in (stack.var / "outbox").glob("*.eml") if ref in p.read_text(errors="replace")]
    subjects = [line for p in acks for line in p.read_text().splitlines() if line.startswith("Subject:")]
    assert sum("We have received" in s for s in subjects) == 1


def test_an_email_to_the_privacy_mailbox_opens_a_case(stack: Stack) -> None:
    """As a person would: mail sent to the demo's privacy@ address over SMTP lands in its IMAP
    mailbox, the poller reads it and opens a case (the person's details then checked for
    leaks in the logs by the next test)."""
    message = EmailMessage()
    message["From"] = f"{PERSON['name']} <{PERSON['email']}>"
    message["To"] = PRIVACY_ADDRESS
    message["Subject"] = "Subject access request"
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content(
        "Under Article 15 of the UK GDPR, please send me a copy of all the personal data you hold "
        f"about me. My phone number is {PERSON['phone']}.\n\nMargaret Ellis\n"
    )
    with smtplib.SMTP("127.0.0.1", stack.ports.smtp, timeout=10) as smtp:
        smtp.send_message(message)
    log = stack.var / "poller.log"
    deadline = time.monotonic() + 30
    while not (opened := [r for r in _report_lines(log) if r.get("outcome") == "request"]):
        stack.check()
        assert time.monotonic() < deadline, f"no case opened from the email: {log.read_text()[-2000:]}"
        time.sleep(0.2)
    snap = api(stack).get(f"/api/v1/requests/{opened[0]['reference']}").json()
    assert (snap["request_type"], snap["regime"], snap["channel"]) == ("access", "UK_GDPR", "email"), snap


def _report_lines(log: Path) -> list[dict[str, Any]]:
    """The poller's report: one JSON line per message (its own logs are JSON lines too)."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if line.startswith('{"outcome"')]


async def test_no_personal_data_in_history_or_logs(stack: Stack) -> None:
    op = api(stack)
    ref = submit(op, "e2e-privacy")
    search_cctv_by_hand(op, ref)
    wait_stage(op, ref, "reviewing")
    # A client without the codec sees only ciphertext.
    raw = await Client.connect(f"127.0.0.1:{stack.ports.temporal}")
    history = await raw.get_workflow_handle(ref).fetch_history()
    blob = history.to_json().encode() + b"".join(
        e.SerializeToString()
        for e in history.events  # protobuf bytes too
    )
    logs = b"".join(p.read_bytes() for p in stack.var.glob("*.log"))
    for value in PERSON.values():
        for form in {value, value.replace(" ", ""), value.lower()}:
            assert form.encode() not in blob, f"{form!r} in clear in Temporal history"
            assert form.encode() not in logs, f"{form!r} in the logs"
    assert ref.encode() in logs  # logs do carry the case reference
    assert sum(os.path.getsize(stack.var / f"{name}.log") for name in stack.worker_names) > 0
