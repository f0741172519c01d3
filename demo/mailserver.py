"""The demo company's privacy@ mailbox, for ``make run``: Debian's dovecot serving it over IMAP
from a directory of its own, and an SMTP server on loopback that delivers what it is sent into
it, so that a person can send a request from any mail client (or ``curl``) and watch the mailbox
poller open the case.

The tests start the same dovecot (tests/imapserver.py); the recipe is in TOOLCHAIN.md §3: as
root, dovecot's own users run the mail processes, so its directory must be theirs to enter.
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import imaplib
import os
import pwd
import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

#: The address the demo company's requests go to (demo/dsar.yaml's contact_email).
PRIVACY_ADDRESS = "privacy@northwind.example.com"

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


def dovecot_available() -> bool:
    return os.access(DOVECOT, os.X_OK)


def prepare_dovecot(directory: Path, port: int, users: Mapping[str, str]) -> list[str]:
    """Write dovecot's configuration and users (address -> password) into ``directory`` (which
    must be open to dovecot's users: mode 0755 on it and its parents) and return the command
    that runs it in the foreground."""
    directory.chmod(0o755)
    for sub in ("run", "state", "mail", "home"):
        (directory / sub).mkdir(exist_ok=True)
    (directory / "users").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in users.items()))
    if os.getuid() == 0:  # dovecot refuses to run mail processes as root
        user = group = "dovecot"
        login_user = "dovenull"
        uid, gid = pwd.getpwnam("dovecot").pw_uid, grp.getgrnam("dovecot").gr_gid
        for sub in ("mail", "home"):
            os.chown(directory / sub, uid, gid)
    else:
        user = login_user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        uid, gid = os.getuid(), os.getgid()
    config = directory / "dovecot.conf"
    config.write_text(
        CONFIG.format(d=directory, user=user, group=group, login_user=login_user, uid=uid, gid=gid, port=port)
    )
    return [DOVECOT, "-F", "-c", str(config)]


def imap_ready(port: int, deadline: float) -> bool:
    """True once the server greets on ``port`` (False when ``deadline``, a monotonic time, passes)."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"* OK"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


class DeliverToMailbox:
    """aiosmtpd's handler: mail for the privacy address is put into its IMAP inbox (a real
    APPEND, as a mail server's delivery would leave it); any other recipient is refused."""

    def __init__(self, imap_port: int, user: str, password: str) -> None:
        self.imap_port, self.user, self.password = imap_port, user, password

    async def handle_RCPT(  # aiosmtpd's hook
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() != self.user.lower():
            return "550 5.1.1 this server only takes mail for " + self.user
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook
        content = envelope.original_content or envelope.content
        await asyncio.to_thread(self._append, content)
        return "250 Message accepted for delivery"

    def _append(self, raw: bytes) -> None:
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        try:
            imap.login(self.user, self.password)
            status, _ = imap.append("INBOX", None, None, raw)
            if status != "OK":
                raise RuntimeError("the mailbox refused the message")
        finally:
            imap.logout()


def serve_smtp(port: int, imap_port: int, user: str, password_file: Path) -> None:
    """Run the SMTP server until SIGTERM or Ctrl-C."""
    import signal

    from aiosmtpd.controller import Controller

    handler = DeliverToMailbox(imap_port, user, password_file.read_text().strip())
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    stop = {"now": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stop["now"]:
            time.sleep(0.2)
    finally:
        controller.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the demo's SMTP server, delivering into its IMAP mailbox")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--imap-port", type=int, required=True)
    parser.add_argument("--user", default=PRIVACY_ADDRESS)
    parser.add_argument("--password-file", type=Path, required=True)
    args = parser.parse_args(argv)
    serve_smtp(args.port, args.imap_port, args.user, args.password_file)


if __name__ == "__main__":
    main()
