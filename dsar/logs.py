"""JSON logs that carry case references, never personal data.

One processor chain serves both structlog and the standard library, so what ``temporalio``,
``uvicorn`` and ``httpx`` log passes through the same scrubber as our own events and comes out
as the same JSON lines: ``{"timestamp": ..., "level": ..., "logger": ..., "event": ...}``.

Scrubbing is an allow-list, because a deny-list fails open: the first new key someone logs
(``email=...``, ``row=...``) would leak. The rules, applied by :func:`scrub_personal_data`:

* Keys in :data:`ALLOWED_KEYS` keep their value, but strings in them are still pattern-scrubbed
  (an httpx ``path`` can carry a query string with an email address in it).
* Keys in :data:`FREE_TEXT_KEYS` (the message, exception and stack text) are pattern-scrubbed.
* Any other key keeps a ``bool``, ``int``, ``float`` or ``None`` value (counts and flags say
  nothing about a person); any other value becomes ``"[scrubbed]"``.
* Temporal's ``temporal_workflow`` / ``temporal_activity`` extras are flattened into the line
  under the same rules, so ``workflow_id`` and ``attempt`` stay searchable.

Pattern scrubbing replaces email addresses, phone numbers, UK postcodes, card numbers, IBANs,
IPv4 addresses and every string registered with :func:`register_sensitive` by ``"[scrubbed]"``.
Case references (``DSR-2026-000123``), ISO dates and times and UUIDs are recognised first and
kept, so they are never mistaken for phone or card numbers.

Patterns are a safety net, not a licence: log the reference and counts, not the person.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

import structlog
import temporalio.runtime
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "ALLOWED_KEYS",
    "FREE_TEXT_KEYS",
    "SCRUBBED",
    "bind_case",
    "clear_sensitive",
    "configure_logging",
    "core_logging_config",
    "get_logger",
    "register_sensitive",
    "scrub_personal_data",
    "scrub_text",
]

SCRUBBED = "[scrubbed]"

#: Keys whose values describe the case or the machinery, never the person.
ALLOWED_KEYS: frozenset[str] = frozenset(
    {
        # structure of every line
        "timestamp",
        "level",
        "logger",
        # the case (references and enums, chosen so that they carry no personal data)
        "reference",
        "stage",
        "regime",
        "request_type",
        "channel",
        "type",
        "kind",
        "decision",
        "actor_role",
        "due",
        "deadline",
        "system",
        "systems",
        "blob_ref",
        "count",
        "records",
        "status",
        "outcome_code",
        # Temporal
        "workflow_id",
        "workflow_type",
        "run_id",
        "workflow_run_id",
        "activity",
        "activity_id",
        "activity_type",
        "attempt",
        "namespace",
        "task_queue",
        "update_id",
        "update_name",
        "signal",
        "query",
        # HTTP and timing
        "method",
        "path",
        "route",
        "status_code",
        "duration_ms",
        "error_type",
    }
)

#: Keys holding prose: scrubbed by pattern rather than replaced whole, so they stay useful.
FREE_TEXT_KEYS: frozenset[str] = frozenset({"event", "exception", "stack"})

_LEADING_KEYS = ("timestamp", "level", "logger", "event", "reference")

#: Stdlib extras whose content repeats the message or is an opaque object: dropped.
_DROPPED_KEYS = frozenset({"color_message", "temporal_log", "positional_args"})

#: Extras that Temporal's loggers attach as a dict of workflow/activity/update details.
_FLATTENED_KEYS = frozenset({"temporal_workflow", "temporal_activity", "temporal_update"})

# --- pattern scrubbing -------------------------------------------------------------------------

_PROTECTED = (
    r"(?P<keep>"
    r"\b[A-Z]{2,5}-\d{4}-\d{3,}\b"  # case references, DSR-2026-000123
    r"|\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"  # UUID
    r"|\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"(?![\d-])"  # ISO dates and timestamps
    r")"
)
_EMAIL = r"(?P<email>[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,})"
_IBAN = r"(?P<iban>\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b)"
_IPV4 = (
    r"(?P<ipv4>(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)"
    r"(?!\.?\d))"
)
# 13-19 digits in the groupings cards are written in: 4-4-4-4(-3), 4-6-5 (Amex), contiguous.
_CARD = (
    r"(?P<card>(?<![\w-])"
    r"(?:\d{4}(?P<sep>[ -]?)\d{4}(?P=sep)\d{4}(?P=sep)\d{1,4}(?:(?P=sep)\d{1,3})?"
    r"|\d{4}[ -]?\d{6}[ -]?\d{4,5})"
    r"(?![\w-]))"
)
# A candidate only (separators mandatory between digit groups, so matching stays linear);
# _looks_like_phone decides by counting digits.
_PHONE = r"(?P<phone>(?<![\w/+-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d+(?:[ .-]\d+){0,5}(?![\w-]))"
_POSTCODE = r"(?P<postcode>\b(?i:GIR ?0AA|[A-Z]{1,2}\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})\b)"

# Credentials: a link token in a query string (``/d/DSR-...?t=...``, ``/r/.../confirm?t=...``)
# and anything shaped like a JWT, wherever it appears.
_TOKEN_PARAM = r"(?P<token>(?<=[?&;])(?P<tname>t|token|access_token|jwt|code)=[^&\s\"'#]+)"
_JWT = r"(?P<jwt>\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)"

# Order matters: credentials first, then kept tokens, then the most specific shapes.
_PATTERNS = re.compile(
    "|".join([_TOKEN_PARAM, _JWT, _PROTECTED, _EMAIL, _IBAN, _IPV4, _CARD, _PHONE, _POSTCODE])
)


def _looks_like_phone(candidate: str) -> bool:
    """Seven or more digits written like a phone number, not a count such as ``1000000``."""
    digits = sum(c.isdigit() for c in candidate)
    if not 7 <= digits <= 15:
        return False
    separators = {c for c in candidate if not c.isdigit()}
    if separators == {"."} and candidate.count(".") == 1:
        return False  # a decimal number, 1234.5678
    return bool(separators) or candidate.startswith("0") or digits >= 10


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "tname" or match.group("token") is not None:
        return f"{match.group('tname')}={SCRUBBED}"
    if kind == "keep" or (kind == "phone" and not _looks_like_phone(match.group(0))):
        return match.group(0)
    return SCRUBBED


_sensitive_lock = threading.Lock()
_sensitive: set[str] = set()
_sensitive_pattern: re.Pattern[str] | None = None


def register_sensitive(values: Iterable[str]) -> None:
    """Add identifiers known to belong to a person (a name, a customer id) to the scrubber.

    Process-wide and case-insensitive; whitespace inside a value matches any whitespace.
    Values shorter than 3 characters are ignored: they would scrub ordinary words.
    """
    global _sensitive_pattern
    with _sensitive_lock:
        before = len(_sensitive)
        _sensitive.update(v.strip().casefold() for v in values if len(v.strip()) >= 3)
        if len(_sensitive) != before:
            _sensitive_pattern = _compile_sensitive(_sensitive)


def clear_sensitive() -> None:
    """Forget every registered value (tests; a worker restart does the same)."""
    global _sensitive_pattern
    with _sensitive_lock:
        _sensitive.clear()
        _sensitive_pattern = None


def _compile_sensitive(values: Iterable[str]) -> re.Pattern[str]:
    # Longest first, so "Margaret Ellis" wins over a registered "Ellis".
    parts = [r"\s+".join(map(re.escape, v.split())) for v in sorted(values, key=len, reverse=True)]
    return re.compile("|".join(parts), re.IGNORECASE)


def scrub_text(text: str) -> str:
    """Replace personal data found in free text by ``"[scrubbed]"``."""
    pattern = _sensitive_pattern
    if pattern is not None:
        text = pattern.sub(SCRUBBED, text)
    return _PATTERNS.sub(_replace, text)


# --- the processor -----------------------------------------------------------------------------


def _scrub_value(value: Any) -> Any:
    """A value under an allowed key: kept, with any strings inside it pattern-scrubbed."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return _scrub_mapping(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub_value(v) for v in value]
    return scrub_text(str(value))


def _scrub_mapping(items: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_key, value in items.items():
        key = str(raw_key)
        if key in _DROPPED_KEYS:
            continue
        if key in _FLATTENED_KEYS and isinstance(value, Mapping):
            for inner_key, inner in _scrub_mapping(value).items():
                out.setdefault(inner_key, inner)
        elif key in ALLOWED_KEYS or key in FREE_TEXT_KEYS:
            out[key] = _scrub_value(value)
        elif value is None or isinstance(value, bool | int | float):
            out[key] = value
        else:
            out[key] = SCRUBBED
    return out


def scrub_personal_data(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: allow-listed keys, pattern-scrubbed text, see the module docstring.

    Formats a pending ``exc_info`` first, so a traceback is scrubbed rather than rendered raw
    by a later processor.
    """
    if event_dict.get("exc_info"):
        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    event_dict.pop("exc_info", None)
    event_dict.pop("stack_info", None)
    scrubbed = _scrub_mapping(event_dict)
    # Same leading keys on every line, whatever order the processors added them in.
    head = {k: scrubbed.pop(k) for k in _LEADING_KEYS if k in scrubbed}
    return {**head, **scrubbed}


# --- configuration -----------------------------------------------------------------------------

_configure_lock = threading.Lock()


class _DsarHandler(logging.StreamHandler[TextIO]):
    """Marks the root handler we own, so reconfiguring replaces it instead of adding another."""


class AccessLogFilter(logging.Filter):
    """uvicorn's access log without query strings: they carry the person's link tokens (the
    30-day download link among them). On the logger itself, so every handler (ours, a test's,
    an APM agent's) gets the line without them."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            path, _, query = args[2].partition("?")
            names = sorted({part.partition("=")[0] for part in query.split("&") if part})
            shown = path + ("?" + "&".join(f"{n}=[scrubbed]" for n in names) if names else "")
            record.args = (*args[:2], shown, *args[3:])
        return True


def install_access_log_filter() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogFilter) for f in access.filters):
        access.addFilter(AccessLogFilter())


def _shared_processors() -> list[Processor]:
    """What every event gets, whether it started in structlog or in the standard library."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send all logging, ours and the libraries', to ``stream`` (stderr) as scrubbed JSON lines.

    Idempotent: a second call replaces the handler the first one installed. Handlers that
    others put on the root logger (pytest's capture, for one) are left alone, but uvicorn
    should be started with ``log_config=None`` so that its loggers propagate here instead of
    printing through their own handlers.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING, ERROR")

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            scrub_personal_data,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
    )
    handler = _DsarHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)

    with _configure_lock:
        root = logging.getLogger()
        for old in [h for h in root.handlers if isinstance(h, _DsarHandler)]:
            root.removeHandler(old)
            old.close()
        root.addHandler(handler)
        root.setLevel(numeric)
        install_access_log_filter()

        structlog.configure(
            processors=[
                structlog.stdlib.filter_by_level,
                *_shared_processors(),
                structlog.stdlib.PositionalArgumentsFormatter(),
                # Scrub before the event reaches the stdlib record, so that any other handler
                # on the root logger (pytest's capture, an APM agent) never sees it raw.
                scrub_personal_data,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger whose events go through the scrubbing chain."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


@contextlib.contextmanager
def _reset_on_exit(tokens: Mapping[str, Any]) -> Iterator[None]:
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def bind_case(reference: str) -> contextlib.AbstractContextManager[None]:
    """Tag every following log line in this context (task, thread) with the case reference.

    Binds at once; use the result in ``with`` to unbind when the block ends::

        with bind_case(case.reference):
            log.info("search started", systems=len(systems))
    """
    tokens = structlog.contextvars.bind_contextvars(reference=reference)
    return _reset_on_exit(tokens)


def core_logging_config(level: str = "WARN") -> temporalio.runtime.LoggingConfig:
    """Logging for the SDK's Rust core, forwarded into Python so it is scrubbed too.

    By default the core writes its own lines straight to stderr, bypassing this module. Pass
    this to ``Runtime(telemetry=TelemetryConfig(logging=core_logging_config()))``.
    """
    return temporalio.runtime.LoggingConfig(
        filter=temporalio.runtime.TelemetryFilter(core_level=level, other_level="ERROR"),
        forwarding=temporalio.runtime.LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
