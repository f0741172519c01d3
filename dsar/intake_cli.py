"""``dsar intake-email --dry-run FILE...``: check the email parser on any mail.

One JSON line per file: outcome, request type, regime, the *kinds* of identifiers found and the
reason, never a value, so the output can be pasted into a ticket or a CI log. Whatever a file
holds, the line is printed and there is no traceback; a file that cannot be read (missing, a
directory, no permission) gets a line with an "error" reason and makes the exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from dsar.settings import Settings
from intake.mailparse import MailboxPolicy, Outcome, ParsedMessage, oversize_reason, parse_message

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
