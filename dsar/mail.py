"""Outgoing mail: letters to the person and notices to the privacy team.

Two transports behind one small protocol: SMTP when ``DSAR_SMTP_HOST`` is set, otherwise a
directory of RFC 822 files (``var/outbox``) so that a developer machine shows every letter
without a mail server. Both are idempotent per letter key, end to end: the Message-ID is
derived from the key, so a retried activity produces the same message; the file transport
skips a file already there, and the SMTP transport a Message-ID the relay already accepted
(``dsar.effects.EffectsLog``, checked before the send and written once the relay says 250).
A worker killed between the relay's 250 and that write may still send a letter twice: the two
copies carry one Message-ID, which mail clients show as one message.
"""

from __future__ import annotations

import contextlib
import email.charset
import email.policy
import hashlib
import os
import re
import smtplib
import tempfile
from datetime import UTC, datetime
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dsar.effects import EffectsLog


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
#: The same message through the older ``compat32`` classes: the default policy parses every
#: header it is given (a third of a letter's cost). Each part is encoded as the default policy
#: would: 7bit or 8bit while every line fits SMTP's limit (so a long link stays whole in the
#: source), quoted-printable when one does not (an HTML paragraph is one line).
_COMPAT = email.policy.compat32.clone(max_line_length=998)
_UTF8 = email.charset.Charset("utf-8")
_UTF8.body_encoding = None  # type: ignore[assignment]  # None: 8bit
_UTF8.header_encoding = email.charset.QP
_UTF8_QP = email.charset.Charset("utf-8")
_UTF8_QP.body_encoding = email.charset.QP


def _part(text: str, subtype: str) -> MIMEText:
    if max(map(len, text.encode().splitlines()), default=0) > 998:
        charset: str | email.charset.Charset = _UTF8_QP
    else:
        charset = "us-ascii" if text.isascii() else _UTF8
    return MIMEText(text, subtype, charset, policy=_COMPAT)  # type: ignore[arg-type]  # a Charset works


def build_message(
    key: str, sender: str, to: str, subject: str, body: str, html: str | None = None
) -> Message:
    """A letter: its text, and when given an HTML alternative with the same content
    (multipart/alternative: a mail program shows the one it prefers). Addresses beyond ASCII
    (SMTPUTF8) take the default policy, which knows how to write them."""
    if not (sender.isascii() and to.isascii()):
        return _international(key, sender, to, subject, body, html)
    msg: Message = _part(body, "plain")
    if html is not None:
        text, msg = msg, MIMEMultipart("alternative", policy=_COMPAT)
        msg.attach(text)
        msg.attach(_part(html, "html"))
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject if subject.isascii() else Header(subject, _UTF8, maxlinelen=998).encode()
    msg["Message-ID"] = message_id(key)
    msg["Date"] = format_datetime(datetime.now(UTC))
    return msg


def _international(key: str, sender: str, to: str, subject: str, body: str, html: str | None) -> EmailMessage:
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


class LetterRefused(Exception):
    """The relay refused the letter for good (a 5xx): retrying will not help."""


class Mailer(Protocol):
    def send(self, key: str, msg: Message) -> str:
        """Deliver ``msg``; return how it went (e.g. "smtp", "file")."""
        ...


class SmtpMailer:
    def __init__(self, host: str, port: int, timeout: float = 30.0, sent: EffectsLog | None = None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sent = sent

    def send(self, key: str, msg: Message) -> str:
        msg_id = str(msg["Message-ID"])
        if self.sent is not None and self.sent.was_sent(msg_id):
            return "smtp"  # a retry after the relay took it: never twice
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(msg)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
            code = getattr(e, "smtp_code", None)
            if isinstance(e, smtplib.SMTPRecipientsRefused):
                codes = [c for c, _ in e.recipients.values()]
                code = min(codes) if codes else None
            if code is not None and 500 <= code < 600:
                raise LetterRefused(f"the mail relay refused the letter ({code})") from None
            raise
        if self.sent is not None:
            parts = key.split("/")  # "<reference>/letter/<kind>/<n>"
            self.sent.mark_sent(msg_id, parts[0], parts[2] if len(parts) > 2 else "")
        return "smtp"


class FileMailer:
    """Writes each letter as ``<outbox>/<key hash>.eml``; an existing file means already sent.

    A letter is written to a temporary file named after the writing process, then renamed: a
    worker killed mid-write leaves that file behind, and it may hold a live download link, so
    every mailer removes the ones whose writer is gone when it starts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.removed = remove_leftovers(directory)

    def path_for(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.eml"

    def send(self, key: str, msg: Message) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(key)
        if path.exists():
            return "file"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{os.getpid()}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(msg))
        os.replace(tmp, path)
        return "file"


def remove_leftovers(directory: Path) -> int:
    """Remove temporary letter files whose writing process has died (a kill mid-write); those of
    live processes (another worker writing now) are left alone. Returns how many went."""
    removed = 0
    if not directory.is_dir():
        return 0
    for path in directory.glob("*.tmp"):
        writer = path.name.split(".")[1] if path.name.startswith(".") else ""
        if writer.isdigit() and int(writer) != os.getpid() and _alive(int(writer)):
            continue
        if writer.isdigit() and int(writer) == os.getpid():
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
