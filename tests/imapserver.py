"""A real IMAP server for tests: Debian's dovecot, run from a temporary directory on loopback.

The privacy@ mailbox the intake poller reads. Messages are put in with a real APPEND, as a mail
server's delivery would leave them, and the test reads the folders back over IMAP. One server
per test module (start-up takes a tenth of a second); each test gets its own user (mailbox).
The server itself is the demo's (demo/mailserver.py), as ``make run`` starts it.
"""

from __future__ import annotations

import imaplib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from demo.mailserver import dovecot_available, imap_ready, prepare_dovecot

USERS = tuple(f"privacy-{i}@example.org" for i in range(40))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ImapServer:
    host: str
    port: int
    directory: Path
    password: str = "secret"
    _taken: set[str] = field(default_factory=set)

    def add_user(self) -> str:
        """A fresh mailbox (user) for one test. The users are written before dovecot starts:
        it re-reads its passwd-file only when the file's mtime changes, which a write within
        the same second does not show."""
        for user in USERS:
            if user not in self._taken:
                self._taken.add(user)
                return user
        raise RuntimeError(f"all {len(USERS)} test mailboxes are taken; raise USERS")

    def connect(self, user: str) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        imap.login(user, self.password)
        return imap

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Put a message in the mailbox, as the mail server's delivery would."""
        imap = self.connect(user)
        try:
            status, _ = imap.append(folder, None, None, raw)
            assert status == "OK"
        finally:
            imap.logout()

    def message_ids(self, user: str, folder: str) -> list[str]:
        """The Message-ID of every message in ``folder`` (not deleted), in UID order."""
        imap = self.connect(user)
        try:
            status, _ = imap.select(f'"{folder}"', readonly=True)
            if status != "OK":
                return []
            _, data = imap.uid("SEARCH", "UNDELETED")
            uids = data[0].split() if data and data[0] else []
            found = []
            for uid in uids:
                _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                header = next((p[1] for p in parts if isinstance(p, tuple)), b"")
                found.append(header.decode("ascii", "replace").partition(":")[2].strip())
            return found
        finally:
            imap.logout()


def start_dovecot() -> tuple[subprocess.Popen[bytes], ImapServer]:
    d = Path(tempfile.mkdtemp(prefix="dsar-imap-"))  # not under pytest's 0700 tmp dirs
    port = _free_port()
    # The users are written before dovecot starts: see ImapServer.add_user.
    command = prepare_dovecot(d, port, dict.fromkeys(USERS, "secret"))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not imap_ready(port, time.monotonic() + 15):
        process.terminate()
        process.wait(10)
        log = (d / "dovecot.log").read_text() if (d / "dovecot.log").exists() else ""
        shutil.rmtree(d, ignore_errors=True)
        raise RuntimeError(f"dovecot did not start on port {port}: {log[-2000:]}")
    return process, ImapServer("127.0.0.1", port, d)


def stop_dovecot(process: subprocess.Popen[bytes], server: ImapServer) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def imap_server() -> Iterator[ImapServer]:
    if not dovecot_available():
        pytest.fail("dovecot is not installed: `make install` installs it (Debian's dovecot-imapd)")
    process, server = start_dovecot()
    try:
        yield server
    finally:
        stop_dovecot(process, server)
