"""``dsar deadline``: compute deadlines for JSON lines in the vector schema (LEGAL.md §3).

One JSON object per input line in, one JSON object per line out, in the same order:
``{"id": ..., "due": "YYYY-MM-DD"}`` or ``{"id": ..., "error": "..."}``. A line that cannot
be computed never stops the run (a compliance team pastes in a spreadsheet export and wants
every line answered), so every failure becomes an error line with a message a person can act
on. Fields the engine does not need (``due``, ``why``) are ignored, which lets the vector file
itself be piped through and compared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TextIO

from dsar.clock import ClockPolicy, StatutoryClock, parse_date

__all__ = ["compute_line", "parse_policy", "run"]

#: Policy keys a line may set (calendar is a top-level field; small_agent may be either).
_POLICY_KEYS = (
    "uk_pause_count",
    "eu_identity_pause",
    "small_agent",
    "roll_forward",
    "extra_holidays",
    "removed_holidays",
)
_REQUIRED = ("regime", "request_type", "kind", "calendar", "received")


class LineError(ValueError):
    """A problem with one input line; the message is printed in its ``error`` field."""


def _as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise LineError(f"{name}: expected true or false, got {value!r}")


def _as_dates(name: str, value: object) -> tuple[str, ...]:
    """A list of ISO dates, or a string of them separated by spaces or ``|`` (the string form
    of a policy already uses ``,`` and ``;`` between options)."""
    items: list[object]
    if isinstance(value, str):
        items = [part for part in re.split(r"[\s|]+", value) if part]
    elif isinstance(value, list):
        items = list(value)
    else:
        raise LineError(f"{name}: expected a list of YYYY-MM-DD dates, got {value!r}")
    dates = []
    for item in items:
        if not isinstance(item, str):
            raise LineError(f"{name}: invalid date {item!r} (expected YYYY-MM-DD)")
        dates.append(parse_date(item, name).isoformat())
    return tuple(dates)


def parse_policy(value: object) -> dict[str, Any]:
    """Policy options from a dict or from ``"key=value"`` pairs separated by ``,`` or ``;``.

    Unknown keys are an error: a vector that relies on a policy the engine does not know must
    not silently get the default answer.
    """
    if value is None:
        return {}
    pairs: list[tuple[str, object]]
    if isinstance(value, Mapping):
        pairs = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, str):
        pairs = []
        for part in re.split(r"[,;]", value):
            if not part.strip():
                continue
            key, sep, option = part.partition("=")
            if not sep:
                raise LineError(f"policy: expected key=value, got {part.strip()!r}")
            pairs.append((key.strip(), option.strip()))
    else:
        raise LineError(f"policy: expected an object or 'key=value' text, got {value!r}")
    options: dict[str, Any] = {}
    for key, option in pairs:
        if key not in _POLICY_KEYS:
            raise LineError(f"policy: unknown key {key!r}: use {', '.join(_POLICY_KEYS)}")
        if key == "small_agent":
            options[key] = _as_bool("policy.small_agent", option)
        elif key in ("extra_holidays", "removed_holidays"):
            options[key] = _as_dates(f"policy.{key}", option)
        elif key == "roll_forward" and option in ("default", None):
            options[key] = None
        elif isinstance(option, str):
            options[key] = option
        else:
            raise LineError(f"policy.{key}: expected text, got {option!r}")
    return options


def _text_field(record: Mapping[str, Any], name: str) -> str:
    value = record[name]
    if not isinstance(value, str):
        raise LineError(f"{name}: expected text, got {value!r}")
    return value


def compute_line(record: Mapping[str, Any]) -> str:
    """The due date (ISO) for one vector-schema object; raises ValueError with a clear
    message (LineError, DeadlineNotApplicable, or a parsing error) when it cannot."""
    missing = [name for name in _REQUIRED if record.get(name) is None]
    if missing:
        raise LineError(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    events = record.get("events") or []
    if not isinstance(events, list):
        raise LineError(f"events: expected a list, got {events!r}")
    options = parse_policy(record.get("policy"))
    if "small_agent" in record and "small_agent" not in options:
        options["small_agent"] = _as_bool("small_agent", record["small_agent"])
    policy = ClockPolicy(calendar=_text_field(record, "calendar"), **options)
    received = parse_date(_text_field(record, "received"), "received")
    clock = StatutoryClock(
        _text_field(record, "regime"), _text_field(record, "request_type"), received, events, policy
    )
    return clock.due(_text_field(record, "kind")).isoformat()


def _process(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"id": None, "error": f"invalid JSON: {exc.msg} (column {exc.colno})"}
    except (ValueError, RecursionError) as exc:  # e.g. nesting too deep to parse
        return {"id": None, "error": f"invalid JSON: {type(exc).__name__}"}
    if not isinstance(record, dict):
        return {"id": None, "error": f"expected a JSON object, got {type(record).__name__}"}
    ident = record.get("id")
    try:
        return {"id": ident, "due": compute_line(record)}
    except (ValueError, TypeError) as exc:
        return {"id": ident, "error": str(exc)}
    except Exception as exc:  # a bug must not cost the rest of the batch its answers
        return {"id": ident, "error": f"internal error: {type(exc).__name__}: {exc}"}


def run(stdin: TextIO, stdout: TextIO) -> int:
    """Read vector-schema JSON lines from ``stdin``, write one result line each to ``stdout``.

    Blank lines are skipped; every other line gets exactly one output line. Returns 0: the
    per-line ``error`` field is the outcome, not the exit status.
    """
    for line in stdin:
        if not line.strip():
            continue
        stdout.write(json.dumps(_process(line)) + "\n")
        stdout.flush()
    return 0
