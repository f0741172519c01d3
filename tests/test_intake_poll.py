"""``dsar intake-email --poll`` run as an operator runs it: a separate process configured only by
``DSAR_*`` environment variables, reading a real IMAP mailbox (Debian's dovecot) and opening cases
on the Temporal test server, which the in-process worker then carries on. Mail in the inbox
becomes a case, the register shows it, every message is filed, and the password never appears."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from email import message_from_bytes
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from demo.seed import MARGARET
from dsar.model import Stage
from dsar.settings import Settings
from dsar.store import CaseStore
from tests.conftest import TEST_CODEC_KEY
from tests.imapserver import ImapServer, imap_server  # noqa: F401 - the fixture
from tests.test_mailbox import mail

DSAR = Path(sys.executable).parent / "dsar"


def access_request() -> bytes:
    """Margaret's subject access request, with a Message-ID of its own (the register keys cases
    by it, session-wide: a message another test sent would reach that test's case)."""
    return mail(
        f"Margaret Ellis <{MARGARET['email']}>",
        "Subject access request",
        "Dear Sir or Madam,\n\nUnder the UK GDPR I am making a subject access request for a copy of "
        "all the personal data you hold about me.\n\nYours faithfully,\nMargaret Ellis\n",
    )


def auto_reply() -> bytes:
    return mail(
        "Someone <someone@example.org>", "Out of office", "I am away.\n", Auto_Submitted="auto-replied"
    )


def key_of(raw: bytes) -> str:
    """The register's idempotency key for a message (its Message-ID, as intake keys it)."""
    return "email:" + str(message_from_bytes(raw)["Message-ID"]).strip()


def poller_env(
    ts_env: WorkflowEnvironment, settings: Settings, server: ImapServer, user: str, password_file: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSAR_IMAP_")}
    env.update(
        {
            "DSAR_VAR_DIR": str(settings.var_dir),
            "DSAR_DATABASE_URL": settings.resolved_database_url,
            "DSAR_TEMPORAL_ADDRESS": ts_env.client.service_client.config.target_host,
            "DSAR_TASK_QUEUE": settings.task_queue,
            "DSAR_CODEC_KEY": TEST_CODEC_KEY,
            "DSAR_JWT_SECRET": settings.jwt_secret or "",
            "DSAR_DATAMAP": str(settings.datamap),
            "DSAR_IMAP_HOST": server.host,
            "DSAR_IMAP_PORT": str(server.port),
            "DSAR_IMAP_USER": user,
            "DSAR_IMAP_PASSWORD_FILE": str(password_file),
            "DSAR_IMAP_SSL": "false",
            "DSAR_IMAP_POLL_SECONDS": "0.3",
        }
    )
    return env


async def run_poller(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(DSAR), "intake-email", "--poll", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def account(imap_server: ImapServer, tmp_path: Path) -> tuple[ImapServer, str, Path]:  # noqa: F811
    """A fresh mailbox, and its password in a file only the owner reads (a mounted secret)."""
    password_file = tmp_path / "imap-password"
    password_file.write_text(imap_server.password + "\n")
    password_file.chmod(0o600)
    return imap_server, imap_server.add_user(), password_file


async def test_one_pass_turns_mail_into_cases_the_register_shows(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    account: tuple[ImapServer, str, Path],
) -> None:
    server, user, password_file = account
    access = access_request()
    server.deliver(user, access)
    server.deliver(user, auto_reply())
    env = poller_env(ts_env, settings, server, user, password_file)

    code, out, err = await run_poller(env, "--once")

    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["outcome"] for line in lines] == ["request", "ignored"]
    assert all(set(line) == {"outcome", "reference", "reason"} for line in lines)
    reference = lines[0]["reference"]
    assert reference and lines[1]["reference"] is None
    assert server.password not in out + err and MARGARET["email"] not in out + err
    assert server.message_ids(user, "INBOX") == []
    assert len(server.message_ids(user, "DSAR/Processed")) == 1
    assert len(server.message_ids(user, "DSAR/Ignored")) == 1

    # The register shows the case, keyed by the Message-ID, and follows the workflow's stage.
    row = store.get(reference)
    assert row is not None
    assert (row.channel, row.request_type, row.regime) == ("email", "access", "UK_GDPR")
    assert row.idempotency_key == key_of(access)
    # The worker (in this process) takes the case on: the register follows its stage.
    description = await ts_env.client.get_workflow_handle(reference).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    deadline = time.monotonic() + 30
    while (row := store.get(reference)) is not None and row.stage == Stage.RECEIVED.value:
        assert time.monotonic() < deadline, "the register never moved past 'received'"
        await asyncio.sleep(0.1)
    assert row is not None and row.acknowledgement_due is None and row.due is not None

    # A second pass finds nothing new and opens nothing twice.
    code, out, err = await run_poller(env, "--once")
    assert code == 0, err
    assert out == ""
    assert store.get_by_key(key_of(access)).reference == reference  # type: ignore[union-attr]


async def test_the_poller_keeps_reading_until_it_is_stopped(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    account: tuple[ImapServer, str, Path],
) -> None:
    server, user, password_file = account
    process = await asyncio.create_subprocess_exec(
        str(DSAR), "intake-email", "--poll", env=poller_env(ts_env, settings, server, user, password_file),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        for i in range(2):  # mail arriving while it runs, pass after pass
            raw = mail(
                f"Person {i} <poll.person{i}@example.org>", "Delete my account", "Please delete my account.\n"
            )
            server.deliver(user, raw)
            deadline = time.monotonic() + 30
            while store.get_by_key(key_of(raw)) is None:
                assert process.returncode is None, "the poller ended on its own"
                assert time.monotonic() < deadline, "the poller did not open a case for new mail"
                await asyncio.sleep(0.1)
            assert store.get_by_key(key_of(raw)).request_type == "erasure"  # type: ignore[union-attr]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err  # SIGTERM ends it between two passes, cleanly
    assert [json.loads(line)["outcome"] for line in out.decode().splitlines()] == ["request", "request"]
    assert server.message_ids(user, "INBOX") == []
    assert server.password not in out.decode() + err.decode()


async def test_bad_mailbox_settings_are_one_line_and_never_show_the_password(
    ts_env: WorkflowEnvironment, settings: Settings, account: tuple[ImapServer, str, Path], tmp_path: Path
) -> None:
    server, user, password_file = account
    env = poller_env(ts_env, settings, server, user, password_file)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("Wr0ng-Pa55word-Zq9\n")
    code, out, err = await run_poller({**env, "DSAR_IMAP_PASSWORD_FILE": str(wrong)}, "--once")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "Wr0ng-Pa55word-Zq9" not in err

    unset = {k: v for k, v in env.items() if k != "DSAR_IMAP_HOST"}
    code, out, err = await run_poller(unset, "--once")
    assert code == 2 and err.strip() == ("dsar intake-email: set DSAR_IMAP_HOST to say which mailbox to read")
    both = {**env, "DSAR_IMAP_PASSWORD": "Wr0ng-Pa55word-Zq9"}
    code, out, err = await run_poller(both, "--once")
    assert code == 2 and "not both" in err and "Wr0ng-Pa55word-Zq9" not in err
