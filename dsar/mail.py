"""Outgoing mail: letters to the person and notices to the privacy team.

Two transports behind one small protocol: SMTP when ``DSAR_SMTP_HOST`` is set, otherwise a
directory of RFC 822 files (``var/outbox``) so that a developer machine shows every letter
without a mail server. Both are idempotent per letter key: the Message-ID is derived from the
key, so a retried activity produces the same message (and the file transport skips it).
"""

from __future__ import annotations

import email.policy
import hashlib
import os
import re
import smtplib
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol


def message_id(key: str) -> str:
    """A Message-ID that is stable for a letter key and reveals nothing but the case reference
    (as the subject does), so that a reply's In-Reply-To leads intake back to its case."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    reference = key.split("/", 1)[0]
    if re.fullmatch(r"DSR-\d{4}-\d{6}", reference):
        return f"<{digest}.{reference}@dsar>"
    return f"<{digest}@dsar>"


#: Lines up to RFC 5322's limit of 998: the standard library folds a long subject at 78 in a
#: way that reads back with a leading space, and would quote-print a letter whose link is long.
_POLICY = email.policy.default.clone(max_line_length=998)


def build_message(
    key: str, sender: str, to: str, subject: str, body: str, html: str | None = None
) -> EmailMessage:
    """A letter: its text, and when given an HTML alternative with the same content
    (multipart/alternative: a mail program shows the one it prefers)."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id(key)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


class Mailer(Protocol):
    def send(self, key: str, msg: EmailMessage) -> str:
        """Deliver ``msg``; return how it went (e.g. "smtp", "file")."""
        ...


class SmtpMailer:
    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    def send(self, key: str, msg: EmailMessage) -> str:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(msg)
        return "smtp"


class FileMailer:
    """Writes each letter as ``<outbox>/<key hash>.eml``; an existing file means already sent."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.eml"

    def send(self, key: str, msg: EmailMessage) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(key)
        if path.exists():
            return "file"
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(msg))
        os.replace(tmp, path)
        return "file"
