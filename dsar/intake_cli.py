"""``dsar intake-email``: check the email parser on any mail, or read the privacy@ mailbox.

``--dry-run FILE...``: one JSON line per file: outcome, request type, regime, the *kinds* of
identifiers found and the reason, never a value, so the output can be pasted into a ticket or a
CI log. Whatever a file holds, the line is printed and there is no traceback; a file that cannot
be read (missing, a directory, no permission) gets a line with an "error" reason and makes the
exit status 1.

``--poll [--once]``: read the mailbox configured by the ``DSAR_IMAP_*`` settings and open, update
or file a case for each message (``intake/mailbox.py``), one JSON line per message (outcome, case
reference, reason: no personal value). Without ``--once`` it polls every
``DSAR_IMAP_POLL_SECONDS`` until stopped (Ctrl-C or SIGTERM end it between two passes); a pass that
fails (the mail server or the workflow engine unreachable) is logged and retried at the next one,
the messages staying in the inbox. The IMAP password is never printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dsar.logs import get_logger
from dsar.settings import Settings
from intake.mail import MailboxPolicy, Outcome, ParsedMessage, oversize_reason, parse_message

if TYPE_CHECKING:  # the poller's modules (Temporal, the workflow) load only when it runs
    from intake.mailbox import Handled, MailboxSettings

log = get_logger("dsar.intake.poll")

EXIT_OK = 0
EXIT_UNREADABLE = 1


def policy_from_settings(settings: Settings) -> MailboxPolicy:
    """The mailbox policy from ``DSAR_INTAKE_*`` settings (validated by the settings model)."""
    return MailboxPolicy(
        default_regime=settings.intake_default_regime,
        mailboxes=dict(settings.intake_mailboxes),
        domains=dict(settings.intake_domains),
        max_message_bytes=settings.intake_max_message_bytes,
        max_attachment_bytes=settings.intake_max_attachment_bytes,
    )


def dry_run(paths: list[Path], policy: MailboxPolicy, out: TextIO = sys.stdout) -> int:
    """Parse each file and print its summary line; 1 if any file could not be read."""
    unreadable = 0
    for path in paths:
        line = _summarise_file(path, policy)
        unreadable += line["reason"].startswith("error:")
        # ASCII escapes: a file name that is not valid UTF-8 still prints as valid JSON
        out.write(json.dumps(line) + "\n")
        out.flush()
    return EXIT_UNREADABLE if unreadable else EXIT_OK


def summary(path: Path, parsed: ParsedMessage) -> dict[str, Any]:
    """The contract's line. A reply is a "request" that names the case it answers."""
    line: dict[str, Any] = {
        "file": str(path),
        "outcome": Outcome.REQUEST.value if parsed.outcome == Outcome.REPLY else parsed.outcome.value,
        "type": parsed.request_type.value if parsed.request_type else None,
        "regime": parsed.regime.value if parsed.regime else None,
        "identifier_kinds": sorted(parsed.identifiers),
        "reason": parsed.reason,
    }
    if parsed.outcome == Outcome.REPLY:
        line["reply_to"] = parsed.case_reference
    return line


def _summarise_file(path: Path, policy: MailboxPolicy) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > policy.max_message_bytes:
                return _line(path, "triage", oversize_reason(size, policy.max_message_bytes))
            raw = f.read(policy.max_message_bytes + 1)  # a growing file or a device: still capped
    except OSError as e:
        return _line(path, "triage", f"error: cannot read the file ({e.strerror or type(e).__name__})")
    return summary(path, parse_message(raw, policy))


def _line(path: Path, outcome: str, reason: str) -> dict[str, Any]:
    return {
        "file": str(path),
        "outcome": outcome,
        "type": None,
        "regime": None,
        "identifier_kinds": [],
        "reason": reason,
    }


# --------------------------------------------------------------------------------------------
# --poll: the mailbox poller


class MailboxConfigError(ValueError):
    """The mailbox settings are missing or unusable; the message names the setting, never a
    secret's value."""


def mailbox_from_settings(settings: Settings) -> MailboxSettings:
    """The IMAP account from ``DSAR_IMAP_*``, checked before anything connects."""
    from intake.mailbox import MailboxSettings

    required = {"DSAR_IMAP_HOST": settings.imap_host, "DSAR_IMAP_USER": settings.imap_user}
    missing = [name for name, value in required.items() if not (value or "").strip()]
    if missing:
        raise MailboxConfigError(f"set {' and '.join(missing)} to say which mailbox to read")
    if settings.imap_password is not None and settings.imap_password_file is not None:
        raise MailboxConfigError("set DSAR_IMAP_PASSWORD or DSAR_IMAP_PASSWORD_FILE, not both")
    if settings.imap_password_file is not None:
        try:
            password = settings.imap_password_file.read_text().rstrip("\r\n")
        except OSError as e:
            raise MailboxConfigError(
                f"cannot read DSAR_IMAP_PASSWORD_FILE ({e.strerror or type(e).__name__})"
            ) from None
    elif settings.imap_password is not None:
        password = settings.imap_password.get_secret_value()
    else:
        raise MailboxConfigError("set DSAR_IMAP_PASSWORD_FILE (or DSAR_IMAP_PASSWORD) for the mailbox")
    if not password:
        raise MailboxConfigError("the IMAP password is empty")
    return MailboxSettings(
        host=(settings.imap_host or "").strip(),
        port=settings.imap_port or (993 if settings.imap_ssl else 143),
        user=(settings.imap_user or "").strip(),
        password=password,
        ssl=settings.imap_ssl,
        inbox=settings.imap_mailbox,
        processed=settings.imap_processed_folder,
        ignored=settings.imap_ignored_folder,
    )


def poll_mailbox(settings: Settings, once: bool, out: TextIO = sys.stdout) -> int:
    """Run the poller: one pass with ``once``, else until stopped. 0 when it ends normally."""
    from dsar.logs import configure_logging

    mailbox = mailbox_from_settings(settings)  # configuration errors before any connection
    configure_logging(settings.log_level)  # scrubbed JSON lines on stderr; stdout is the report
    return asyncio.run(_poll(settings, mailbox, once, out))


async def _poll(settings: Settings, mailbox: MailboxSettings, once: bool, out: TextIO) -> int:
    from dsar.blobs import blob_store_from_settings
    from dsar.datamap import DataMap
    from dsar.engine import connect
    from dsar.store import CaseStore
    from intake.mailbox import MailboxIntake

    controller = DataMap.load(settings.datamap).controller.name
    client = await connect(settings)
    store = CaseStore(settings.resolved_database_url)
    metrics = None
    if settings.metrics_port and not once:  # /metrics: the process's own, and a liveness probe
        from dsar.metrics import serve_worker_metrics

        metrics = serve_worker_metrics(settings.metrics_host, settings.metrics_port, None)
    try:
        intake = MailboxIntake(
            mailbox,
            policy_from_settings(settings),
            client,
            store,
            settings,
            blob_store_from_settings(settings),
            controller,
        )
        if once:
            _report(await intake.poll_once(), out)
            return EXIT_OK
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        log.info("mailbox poller started", mailbox=mailbox.inbox, every_seconds=settings.imap_poll_seconds)
        while not stop.is_set():
            try:
                _report(await intake.poll_once(), out)
            except Exception as e:  # a pass fails, the poller goes on
                # The messages stay in the inbox; the next pass handles them (idempotent).
                log.error("mailbox pass failed; retrying at the next pass", error=type(e).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.imap_poll_seconds)
        log.info("mailbox poller stopped")
        return EXIT_OK
    finally:
        if metrics is not None:
            metrics.shutdown()
        store.close()


def _report(handled: list[Handled], out: TextIO) -> None:
    """One JSON line per message: outcome, case reference and reason (rule names, no values)."""
    for h in handled:
        line = asdict(h)
        line.pop("message_id")  # it often carries the sender's name or address
        out.write(json.dumps(line) + "\n")
    out.flush()
