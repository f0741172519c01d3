"""A real IMAP server for tests: Debian's dovecot, run from a temporary directory on loopback.

The privacy@ mailbox the intake poller reads. Messages are put in with a real APPEND, as a mail
server's delivery would leave them, and the test reads the folders back over IMAP. One server
per test module (start-up takes a tenth of a second); each test gets its own user (mailbox).
Recipe: ../shared/TOOLCHAIN.md §3 (as root, dovecot's own users run the mail processes).
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
first_valid_uid = {uid}
mail_location = maildir:{d}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
  default_fields = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


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


def _wait_ready(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"* OK"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def start_dovecot() -> tuple[subprocess.Popen[bytes], ImapServer]:
    d = Path(tempfile.mkdtemp(prefix="dsar-imap-"))  # not under pytest's 0700 tmp dirs
    d.chmod(0o755)
    for sub in ("run", "state", "mail", "home"):
        (d / sub).mkdir()
    (d / "users").write_text("".join(f"{u}:{{PLAIN}}secret::::::\n" for u in USERS))
    if os.getuid() == 0:  # dovecot refuses to run mail processes as root
        user = group = "dovecot"
        login_user = "dovenull"
        uid, gid = pwd.getpwnam("dovecot").pw_uid, grp.getgrnam("dovecot").gr_gid
        for sub in ("mail", "home"):
            os.chown(d / sub, uid, gid)
    else:
        user = login_user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        uid, gid = os.getuid(), os.getgid()
    port = _free_port()
    config = d / "dovecot.conf"
    config.write_text(
        CONFIG.format(d=d, user=user, group=group, login_user=login_user, uid=uid, gid=gid, port=port)
    )
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if not _wait_ready(port, time.monotonic() + 15):
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
    if not os.access(DOVECOT, os.X_OK):
        pytest.fail("dovecot is not installed: `make install` installs it (Debian's dovecot-imapd)")
    process, server = start_dovecot()
    try:
        yield server
    finally:
        stop_dovecot(process, server)
