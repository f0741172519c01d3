"""A real SMTP server for tests: aiosmtpd on loopback, collecting what it is sent.

Letters go through ``smtplib`` and a real SMTP conversation (``dsar.mail.SmtpMailer``), and the
test reads back the message as delivered: headers, encoding and body exactly as a mailbox would
get them. The server runs in its own thread (aiosmtpd's ``Controller``), one per test.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def _free_port() -> int:
    # The Controller checks it is up by connecting to its own port, so port 0 cannot be used.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_tos: list[str]


@dataclass
class SmtpServer:
    """What a test needs: where to send, and what arrived (``messages`` as parsed messages, in
    order of arrival; ``envelopes`` the SMTP envelope of each, at the same index)."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(  # aiosmtpd's hook: a mailbox that does not exist is refused for good
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.split("@")[0].startswith("refused"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook
        content = envelope.original_content or envelope.content
        message = email.message_from_bytes(content, policy=email.policy.default)
        with self._arrived:
            self.messages.append(message)  # policy.default parses into an EmailMessage
            self.envelopes.append(Envelope(envelope.mail_from, list(envelope.rcpt_tos)))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """The messages once at least ``count`` have arrived (delivery is synchronous with
        ``smtplib``, but a test may send from another thread)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} message(s), got {len(self.messages)}")
                self._arrived.wait(remaining)
            return list(self.messages)


def start_smtp_server() -> tuple[SmtpServer, Controller]:
    server = SmtpServer("127.0.0.1", _free_port())
    controller = Controller(server, hostname=server.host, port=server.port)
    controller.start()
    return server, controller


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on a free loopback port for one test; ``.messages`` holds what arrived."""
    server, controller = start_smtp_server()
    try:
        yield server
    finally:
        controller.stop()
