"""The statutory clock: when a data-subject request must be answered (LEGAL.md §2).

A deadline is a *date* computed from the date of receipt and an append-only event log
(identity requested/received, clarification, fee, extension notice, ...). Each regime counts
differently:

* UK GDPR (Art 12A, DPA 2018 s 54 wording) and EU GDPR (Art 12(3), Reg 1182/71): calendar
  months from a start date, clamped to the month end, rolled forward to a working day.
* CCPA, the other US state laws, LGPD and PIPEDA: a number of calendar days after receipt,
  or business days for CCPA acknowledgements and opt-outs; no roll-forward by default.

The module is pure and deterministic (stdlib + ``holidays`` + ``dsar.model`` +
``dsar.calendars``; no I/O, no logging, no clock reads), so a Temporal workflow can call it
directly and replay gives the same answer.
"""

from __future__ import annotations

import calendar as stdlib_calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from dsar.calendars import Calendar, calendar
from dsar.model import CasePolicy, ClockEvent, ClockEventType, Regime, RequestType

__all__ = [
    "ClockPolicy",
    "DeadlineKind",
    "DeadlineNotApplicable",
    "StatutoryClock",
    "add_months",
    "parse_date",
    "parse_kind",
    "parse_regime",
    "parse_request_type",
    "primary_kind",
]


class DeadlineKind(StrEnum):
    """The dates a case can owe (LEGAL.md §3 ``kind``)."""

    RESPONSE_DUE = "response_due"
    ACKNOWLEDGEMENT_DUE = "acknowledgement_due"
    OPT_OUT_DUE = "opt_out_due"
    LIMIT_DUE = "limit_due"
    EXTENSION_NOTICE_DUE = "extension_notice_due"
    APPEAL_RESPONSE_DUE = "appeal_response_due"


class DeadlineNotApplicable(ValueError):
    """The regime has no such deadline (e.g. an acknowledgement under UK GDPR)."""


# --------------------------------------------------------------------------- parsing


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

#: Spellings used by the vectors (LEGAL.md §3) and by US statutes.
_REQUEST_TYPE_ALIASES = {
    "deletion": RequestType.ERASURE,
    "correction": RequestType.RECTIFICATION,
    "limit_sensitive_pi": RequestType.LIMIT_SENSITIVE,
}


def parse_date(value: date | str, what: str = "date") -> date:
    """A local calendar date from a ``date`` or a strict ``YYYY-MM-DD`` string.

    Strict on purpose: Python 3.11's ``fromisoformat`` also accepts ``20250131`` and week
    dates, which are more likely typing mistakes than intent in a deadline register.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"{what}: invalid date {value!r} ({exc})") from None
    raise ValueError(f"{what}: invalid date {value!r} (expected YYYY-MM-DD)")


def parse_regime(value: Regime | str) -> Regime:
    """``Regime`` from its name, case-insensitively."""
    if isinstance(value, Regime):
        return value
    if isinstance(value, str):
        for regime in Regime:
            if regime.value.lower() == value.strip().lower():
                return regime
    raise ValueError(f"unknown regime {value!r}: use {', '.join(r.value for r in Regime)}")


def parse_request_type(value: RequestType | str) -> RequestType:
    """``RequestType`` from its name or a vector alias (deletion, correction,
    limit_sensitive_pi)."""
    if isinstance(value, RequestType):
        return value
    if isinstance(value, str):
        key = value.strip().lower()
        if key in _REQUEST_TYPE_ALIASES:
            return _REQUEST_TYPE_ALIASES[key]
        for request_type in RequestType:
            if request_type.value == key:
                return request_type
    names = [t.value for t in RequestType] + list(_REQUEST_TYPE_ALIASES)
    raise ValueError(f"unknown request type {value!r}: use {', '.join(names)}")


def parse_kind(value: DeadlineKind | str) -> DeadlineKind:
    """``DeadlineKind`` from its name."""
    if isinstance(value, DeadlineKind):
        return value
    if isinstance(value, str):
        for kind in DeadlineKind:
            if kind.value == value.strip().lower():
                return kind
    raise ValueError(f"unknown deadline kind {value!r}: use {', '.join(k.value for k in DeadlineKind)}")


_DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _show(d: date) -> str:
    """``Tue 7 Apr 2026``, the way the vectors' working reads (not strftime: locale-dependent)."""
    return f"{_DAY_ABBR[d.weekday()]} {d.day} {_MONTH_ABBR[d.month - 1]} {d.year}"


def add_months(d: date, n: int) -> date:
    """The corresponding date ``n`` months later, clamped to the end of a shorter month.

    ICO: "If the same date doesn't exist in the following month ... use the last day of that
    month instead"; Reg 1182/71 Art 3(2)(c) says the same. Always count from the original
    start date; never chain (31 Jan + 3 months = 30 Apr, not 28 Feb + 2 months = 28 Apr).
    """
    index = d.month - 1 + n
    year, month = d.year + index // 12, index % 12 + 1
    last_day = stdlib_calendar.monthrange(year, month)[1]
    return date(year, month, min(d.day, last_day))


# --------------------------------------------------------------------------- policy


PAUSE_COUNTS = ("inclusive", "exclusive")
EU_IDENTITY_PAUSES = ("none", "restart", "suspend")
ROLL_FORWARDS = ("next_working_day", "none")


@dataclass(frozen=True)
class ClockPolicy:
    """Per-case clock settings, fixed at intake so a redeploy does not move a running case.

    ``uk_pause_count``: LEGAL.md §2.2 open question 1 (inclusive follows the s 54(3C) wording
    "beginning with the day ... ending with the day"). ``eu_identity_pause``: §2.3 (no
    statutory pause; ``none`` is the conservative default). ``roll_forward``: None means the
    regime's default (next working day for UK/EU, none elsewhere, §2.1). ``extra_holidays`` /
    ``removed_holidays`` (ISO dates) carry ad hoc bank holidays into a running case.
    """

    calendar: str
    uk_pause_count: str = "inclusive"
    eu_identity_pause: str = "none"
    small_agent: bool = False
    roll_forward: str | None = None
    extra_holidays: tuple[str, ...] = ()
    removed_holidays: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.calendar, str):
            raise ValueError(f"calendar: expected a calendar name, got {self.calendar!r}")
        _check_choice("uk_pause_count", self.uk_pause_count, PAUSE_COUNTS)
        _check_choice("eu_identity_pause", self.eu_identity_pause, EU_IDENTITY_PAUSES)
        if self.roll_forward is not None:
            _check_choice("roll_forward", self.roll_forward, ROLL_FORWARDS)
        if not isinstance(self.small_agent, bool):
            raise ValueError(f"small_agent: expected true or false, got {self.small_agent!r}")
        for field_name in ("extra_holidays", "removed_holidays"):
            values = getattr(self, field_name)
            if isinstance(values, str):
                raise ValueError(f"{field_name}: expected a list of YYYY-MM-DD dates, got {values!r}")
            # A JSON round trip (Temporal history) turns the tuple into a list: keep it hashable.
            object.__setattr__(self, field_name, tuple(parse_date(v, field_name).isoformat() for v in values))
        self.working_calendar()  # unknown calendar names fail here, at the edge

    @classmethod
    def from_case_policy(cls, policy: CasePolicy) -> ClockPolicy:
        """The clock's part of a case's policy."""
        return cls(
            calendar=policy.calendar,
            uk_pause_count=policy.uk_pause_count,
            eu_identity_pause=policy.eu_identity_pause,
            small_agent=policy.small_agent,
        )

    def working_calendar(self) -> Calendar:
        """The named calendar with this policy's holiday overrides applied."""
        return calendar(
            self.calendar,
            extra_holidays=[parse_date(d, "extra_holidays") for d in self.extra_holidays],
            removed=[parse_date(d, "removed_holidays") for d in self.removed_holidays],
        )


def _check_choice(name: str, value: object, choices: Iterable[str]) -> None:
    options = tuple(choices)
    if value not in options:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(options)}")


# --------------------------------------------------------------------------- events


#: Event pairs: (the controller asks, the person supplies).
_IDENTITY = (ClockEventType.IDENTITY_REQUESTED, ClockEventType.IDENTITY_RECEIVED)
_AUTHORITY = (ClockEventType.AUTHORITY_REQUESTED, ClockEventType.AUTHORITY_RECEIVED)
_FEE = (ClockEventType.FEE_REQUESTED, ClockEventType.FEE_PAID)
_CLARIFICATION = (ClockEventType.CLARIFICATION_REQUESTED, ClockEventType.CLARIFICATION_RECEIVED)
_ASKS = frozenset(pair[0] for pair in (_IDENTITY, _AUTHORITY, _FEE, _CLARIFICATION))


@dataclass(frozen=True)
class _Span:
    """One ask-and-answer exchange with the person."""

    asked: date | None  # None: the item arrived without being asked for
    answered: date | None  # None: still awaited (an open pause or restart)

    def answered_or(self, as_of: date | None) -> date:
        """When the exchange ends: its answer, else ``as_of`` (never before the ask), else
        the day it was asked, so that a provisional date can be shown."""
        if self.answered is not None:
            return self.answered
        assert self.asked is not None
        return self.asked if as_of is None else max(self.asked, as_of)


def _coerce_event(event: ClockEvent | Mapping[str, object], index: int) -> tuple[ClockEventType, date]:
    if isinstance(event, ClockEvent):
        raw_type: object = event.type
        raw_date: object = event.date
    elif isinstance(event, Mapping):
        if "type" not in event or "date" not in event:
            raise ValueError(f"events[{index}]: needs 'type' and 'date'")
        raw_type, raw_date = event["type"], event["date"]
    else:
        raise ValueError(f"events[{index}]: expected an object with type and date, got {event!r}")
    try:
        event_type = ClockEventType(str(raw_type))
    except ValueError:
        names = ", ".join(t.value for t in ClockEventType)
        raise ValueError(f"events[{index}]: unknown event type {raw_type!r}: use {names}") from None
    if not isinstance(raw_date, date | str):
        raise ValueError(f"events[{index}].date: invalid date {raw_date!r} (expected YYYY-MM-DD)")
    return event_type, parse_date(raw_date, f"events[{index}].date")


class _EventLog:
    """The events in date order; on the same day an ask sorts before its answer, so an
    answer given the day it was asked closes the exchange."""

    def __init__(self, events: Sequence[ClockEvent | Mapping[str, object]]) -> None:
        coerced = [_coerce_event(e, i) for i, e in enumerate(events)]
        order = sorted(range(len(coerced)), key=lambda i: (coerced[i][1], coerced[i][0] not in _ASKS, i))
        self.events: tuple[tuple[ClockEventType, date], ...] = tuple(coerced[i] for i in order)

    def dates(self, event_type: ClockEventType) -> list[date]:
        return [on for t, on in self.events if t == event_type]

    def spans(self, pair: tuple[ClockEventType, ClockEventType]) -> list[_Span]:
        """Pair each ask with the next answer. A repeated ask while one is open is the same
        exchange; an answer nobody asked for is a span with ``asked=None``."""
        ask, answer = pair
        spans: list[_Span] = []
        open_since: date | None = None
        for event_type, on in self.events:
            if event_type == ask and open_since is None:
                open_since = on
            elif event_type == answer:
                spans.append(_Span(open_since, on))
                open_since = None
        if open_since is not None:
            spans.append(_Span(open_since, None))
        return spans

    def is_open(self, pair: tuple[ClockEventType, ClockEventType]) -> bool:
        return any(span.answered is None for span in self.spans(pair))


# --------------------------------------------------------------------------- regimes


def primary_kind(regime: Regime | str, request_type: RequestType | str) -> DeadlineKind:
    """The deadline that answers the request: CCPA opt-outs and limit requests have their own
    15-business-day limits (11 CCR §7026(f), §7027(g)); everything else is a response."""
    regime, request_type = parse_regime(regime), parse_request_type(request_type)
    if regime is Regime.CCPA and request_type is RequestType.OPT_OUT_SALE_SHARING:
        return DeadlineKind.OPT_OUT_DUE
    if regime is Regime.CCPA and request_type is RequestType.LIMIT_SENSITIVE:
        return DeadlineKind.LIMIT_DUE
    return DeadlineKind.RESPONSE_DUE


class _Context:
    """What every regime's rules read: the request, its events and the working calendar."""

    def __init__(
        self,
        regime: Regime,
        request_type: RequestType,
        received: date,
        log: _EventLog,
        policy: ClockPolicy,
    ) -> None:
        self.regime = regime
        self.request_type = request_type
        self.received = received
        self.log = log
        self.policy = policy
        self.calendar = policy.working_calendar()

    def roll(self, d: date, default: str, why: list[str]) -> date:
        """Move a deadline off a non-working day when the regime (or the policy) says so."""
        mode = self.policy.roll_forward or default
        if mode == "none":
            return d
        rolled = self.calendar.next_working_day_on_or_after(d)
        if rolled != d:
            skipped = []
            day = d
            while day < rolled:
                skipped.append(f"{_show(day)} ({self.calendar.why_not_working(day)})")
                day += timedelta(days=1)
            why.append(f"not a working day in {self.calendar.name}: {'; '.join(skipped)} -> {_show(rolled)}")
        return rolled

    def not_applicable(self, kind: DeadlineKind, reason: str) -> DeadlineNotApplicable:
        return DeadlineNotApplicable(
            f"{kind.value} does not apply to {self.regime.value} {self.request_type.value} requests: {reason}"
        )


class _Rules(Protocol):
    def due(self, kind: DeadlineKind, as_of: date | None, why: list[str]) -> date: ...

    def extension_notice_deadline(self, as_of: date | None, why: list[str]) -> date: ...

    def is_waiting(self) -> bool: ...


#: Inclusive: the ask and the answer day both stop the clock (s 54(3C) "beginning with the
#: day on which the controller makes the request and ending with the day on which the
#: controller receives the information"). Exclusive: one day fewer (ICO-style "days it took
#: the person to reply"). After-request: the ask day still counts and the clock resumes the
#: day after the answer (Reg 1182/71 Art 3(1): the day of the event is not counted).
_PAUSE_WINDOWS = {
    "inclusive": (0, 0),
    "exclusive": (0, -1),
    "after_request": (1, 0),
}


@dataclass(frozen=True)
class _PauseRule:
    pair: tuple[ClockEventType, ClockEventType]
    window: str  # a key of _PAUSE_WINDOWS


class _MonthRules:
    """UK GDPR and EU GDPR: one month (three when validly extended) from the start date, plus
    paused days, rolled forward once at the end (LEGAL.md §2.2 "Engine algorithm")."""

    def __init__(
        self,
        ctx: _Context,
        *,
        law: str,
        restarts: Sequence[tuple[tuple[ClockEventType, ClockEventType], str]],
        pauses: Sequence[_PauseRule],
    ) -> None:
        self.ctx = ctx
        self.law = law
        self.restarts = tuple(restarts)
        self.pauses = tuple(pauses)

    def due(self, kind: DeadlineKind, as_of: date | None, why: list[str]) -> date:
        if kind is DeadlineKind.RESPONSE_DUE:
            extended_by = self._valid_extension(as_of)
            months = 3 if extended_by else 1
            if extended_by:
                # ICO: "calculate the extension as three months from the original start date".
                why.append(f"extension notified {extended_by} within the first month: 3 months")
            end = self._period_end(months, as_of, why)
            return self.ctx.roll(end, "next_working_day", why)
        if kind is DeadlineKind.EXTENSION_NOTICE_DUE:
            return self.extension_notice_deadline(as_of, why)
        reasons = {
            DeadlineKind.ACKNOWLEDGEMENT_DUE: "acknowledging receipt is good practice, not a duty",
            DeadlineKind.OPT_OUT_DUE: "an opt-out or objection is answered within response_due",
            DeadlineKind.LIMIT_DUE: "a limit request is answered within response_due",
            DeadlineKind.APPEAL_RESPONSE_DUE: "there is no appeal to the controller (complain to "
            "the supervisory authority)",
        }
        raise self.ctx.not_applicable(kind, f"{self.law}: {reasons[kind]}")

    def extension_notice_deadline(self, as_of: date | None, why: list[str]) -> date:
        """The notice must be given within the (paused) first month (s 54(3B), (3C)(ii);
        EU Art 12(3)); rolled forward like the response date (engine convention, UK-31)."""
        end = self._period_end(1, as_of, why)
        return self.ctx.roll(end, "next_working_day", why)

    def is_waiting(self) -> bool:
        pairs = [pair for pair, _ in self.restarts] + [rule.pair for rule in self.pauses]
        return any(self.ctx.log.is_open(pair) for pair in pairs)

    def _start(self, as_of: date | None, why: list[str]) -> date:
        """The "relevant time": the latest of receipt and the receipt of each item asked for
        (s 54(3); ICO: identity, authority of a third party, fee). An item still awaited is
        taken as arriving on ``as_of`` so that a provisional date can be shown."""
        start, reason = self.ctx.received, "received"
        for pair, label in self.restarts:
            for span in self.ctx.log.spans(pair):
                arrived = span.answered_or(as_of)
                if arrived > start:
                    pending = " (still awaited: provisional)" if span.answered is None else ""
                    start, reason = arrived, f"{label} received{pending}"
        why.append(f"clock starts {_show(start)} ({reason})")
        return start

    def _paused_days(self, start: date, as_of: date | None) -> list[tuple[date, date]]:
        """Paused day ranges (inclusive), clipped to the period (days before the start are
        not part of it, so cannot be excluded from it) and merged so no day counts twice."""
        ranges: list[tuple[date, date]] = []
        for rule in self.pauses:
            lead, tail = _PAUSE_WINDOWS[rule.window]
            for span in self.ctx.log.spans(rule.pair):
                if span.asked is None:
                    continue  # an answer nobody asked for stops nothing
                first = max(span.asked + timedelta(days=lead), start)
                last = span.answered_or(as_of) + timedelta(days=tail)
                if first <= last:
                    ranges.append((first, last))
        merged: list[tuple[date, date]] = []
        for first, last in sorted(ranges):
            if merged and first <= merged[-1][1] + timedelta(days=1):
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return merged

    def _period_end(self, months: int, as_of: date | None, why: list[str]) -> date:
        """add_months(start) first (clamped), then the paused days (UK-25: the clamped date
        moves, not the start), no roll-forward yet (it happens once, at the end)."""
        start = self._start(as_of, why)
        end = add_months(start, months)
        clamped = " (clamped to the month end)" if end.day != start.day else ""
        why.append(f"{start} + {months} month{'s' if months > 1 else ''} = {_show(end)}{clamped}")
        for first, last in self._paused_days(start, as_of):
            if first > self.ctx.roll(end, "next_working_day", []):
                # Asked after the period had already ended: it cannot revive it.
                why.append(f"pause {first}..{last} began after the period ended: not counted")
                continue
            days = (last - first).days + 1
            end += timedelta(days=days)
            why.append(f"clock stopped {first}..{last} ({days} day{'s' if days > 1 else ''}) -> {end}")
        return end

    def _valid_extension(self, as_of: date | None) -> date | None:
        """The first extension notice given in time, if any (a late notice is ineffective).
        Anything still awaited on the notice day is taken as closing on that day: a notice
        given while the clock is stopped is within the paused first month."""
        for notified in self.ctx.log.dates(ClockEventType.EXTENSION_NOTIFIED):
            at = notified if as_of is None else max(as_of, notified)
            if notified <= self.extension_notice_deadline(at, []):
                return notified
        return None


@dataclass(frozen=True)
class _DayTable:
    """A day-count regime. ``extended_days`` is the total with a valid extension (None: the
    law has no extension)."""

    law: str
    respond_days: int
    extended_days: int | None
    acknowledge_business_days: int | None = None
    opt_out_business_days: int | None = None
    appeal_days: int | None = None
    small_agent_days: int | None = None
    us_state: bool = False


_DAY_TABLES: dict[Regime, _DayTable] = {
    # Civ. Code §1798.130(a)(2)(A); 11 CCR §7021(a)-(b), §7026(f)(1), §7027(g)(1).
    Regime.CCPA: _DayTable(
        "CCPA", 45, 90, acknowledge_business_days=10, opt_out_business_days=15, us_state=True
    ),
    # Va. Code 59.1-577(B)(1), (C).
    Regime.VCDPA: _DayTable("VCDPA", 45, 90, appeal_days=60, us_state=True),
    # C.R.S. 6-1-1306(2), (3) (appeal timing [R]: the 60-day appeal extension is not modelled).
    Regime.CPA: _DayTable("CPA", 45, 90, appeal_days=45, us_state=True),
    # Conn. Gen. Stat. 42-518(c)(1), (d).
    Regime.CTDPA: _DayTable("CTDPA", 45, 90, appeal_days=60, us_state=True),
    # Utah Code 13-61-203: no appeal right.
    Regime.UCPA: _DayTable("UCPA", 45, 90, us_state=True),
    # Art 19(II): 15 days; Resolução CD/ANPD nº 2/2022 doubles it for small processing agents.
    Regime.LGPD: _DayTable("LGPD", 15, None, small_agent_days=30),
    # s 8(3)-(4): 30 days, extendable once by 30 days with notice within the first 30.
    Regime.PIPEDA: _DayTable("PIPEDA", 30, 60),
}

#: 11 CCR §7021(a): requests to delete, to correct and to know (portability is part of the
#: right to know, §1798.130(a)(2)(A)) are acknowledged within 10 business days.
_CCPA_ACKNOWLEDGED = frozenset(
    {RequestType.ACCESS, RequestType.ERASURE, RequestType.RECTIFICATION, RequestType.PORTABILITY}
)

_STOP_REQUESTS = {
    DeadlineKind.OPT_OUT_DUE: RequestType.OPT_OUT_SALE_SHARING,
    DeadlineKind.LIMIT_DUE: RequestType.LIMIT_SENSITIVE,
}


class _DayRules:
    """CCPA, the other US states, LGPD, PIPEDA: ``received + N`` calendar days (day of receipt
    excluded: CCP §12, Civil Code art 132, Interpretation Act s 27), no roll-forward by
    default. Identity checks never pause or restart these clocks (11 CCR §7021(b): the period
    runs "regardless of time required to verify"; vector CA-12)."""

    def __init__(self, ctx: _Context, table: _DayTable) -> None:
        self.ctx = ctx
        self.table = table

    def due(self, kind: DeadlineKind, as_of: date | None, why: list[str]) -> date:
        table, request_type = self.table, self.ctx.request_type
        if kind is DeadlineKind.RESPONSE_DUE:
            if table.opt_out_business_days and request_type in _STOP_REQUESTS.values():
                return self._stop_request_due(why)
            return self._response_due(why)
        if kind in _STOP_REQUESTS:
            if request_type is not _STOP_REQUESTS[kind]:
                raise self.ctx.not_applicable(
                    kind, f"only {_STOP_REQUESTS[kind].value} requests have this deadline"
                )
            if table.opt_out_business_days:
                return self._stop_request_due(why)
            if table.us_state:
                why.append(f"{table.law}: an opt-out is answered like any other request")
                return self._response_due(why)
            raise self.ctx.not_applicable(kind, f"{table.law} has no opt-out deadline; use response_due")
        if kind is DeadlineKind.ACKNOWLEDGEMENT_DUE:
            if table.acknowledge_business_days is None or request_type not in _CCPA_ACKNOWLEDGED:
                raise self.ctx.not_applicable(
                    kind,
                    "only CCPA requests to know, delete or correct must be acknowledged (11 CCR §7021(a))",
                )
            return self._business_days(table.acknowledge_business_days, "acknowledge receipt", why)
        if kind is DeadlineKind.EXTENSION_NOTICE_DUE:
            return self.extension_notice_deadline(as_of, why)
        if table.appeal_days is None:
            raise self.ctx.not_applicable(kind, f"{table.law} gives no appeal to the controller")
        end = self.ctx.received + timedelta(days=table.appeal_days)
        why.append(f"appeal received {self.ctx.received} + {table.appeal_days} days = {_show(end)}")
        return self.ctx.roll(end, "none", why)

    def extension_notice_deadline(self, as_of: date | None, why: list[str]) -> date:
        """Notice must be given within the first period (§1798.130(a)(2)(A) "within the first
        45-day period"; VA/CO/CT/UT alike; PIPEDA s 8(4) "no later than thirty days")."""
        if self.table.extended_days is None:
            raise self.ctx.not_applicable(
                DeadlineKind.EXTENSION_NOTICE_DUE, f"{self.table.law} has no extension"
            )
        if self.table.opt_out_business_days and self.ctx.request_type in _STOP_REQUESTS.values():
            raise self.ctx.not_applicable(
                DeadlineKind.EXTENSION_NOTICE_DUE,
                "opt-out and limit requests cannot be extended (11 CCR §7026(f), §7027(g))",
            )
        end = self.ctx.received + timedelta(days=self._base_days())
        why.append(f"extension notice within the first {self._base_days()} days: {_show(end)}")
        return self.ctx.roll(end, "none", why)

    def is_waiting(self) -> bool:
        return False

    def _base_days(self) -> int:
        if self.ctx.policy.small_agent and self.table.small_agent_days:
            return self.table.small_agent_days
        return self.table.respond_days

    def _response_due(self, why: list[str]) -> date:
        days = self._base_days()
        if self.ctx.policy.small_agent and self.table.small_agent_days:
            why.append(f"small processing agent: {days} days")
        notices = self.ctx.log.dates(ClockEventType.EXTENSION_NOTIFIED)
        if notices and self.table.extended_days is not None:
            deadline = self.extension_notice_deadline(None, [])
            in_time = [d for d in notices if d <= deadline]
            if in_time:
                days = self.table.extended_days
                why.append(f"extension notified {in_time[0]} (by {deadline}): {days} days in total")
            else:
                why.append(f"extension notified {notices[0]} after {deadline}: ineffective")
        end = self.ctx.received + timedelta(days=days)
        why.append(f"received {self.ctx.received} + {days} days = {_show(end)}")
        return self.ctx.roll(end, "none", why)

    def _stop_request_due(self, why: list[str]) -> date:
        """Stop selling/sharing (or using sensitive PI) within 15 business days (11 CCR
        §7026(f)(1), §7027(g)(1)); "business day" is undefined, so the calendar decides."""
        return self._business_days(self.table.opt_out_business_days or 0, "comply", why)

    def _business_days(self, n: int, what: str, why: list[str]) -> date:
        end = self.ctx.calendar.add_business_days(self.ctx.received, n)
        why.append(
            f"{what}: {n} business days after {self.ctx.received} ({self.ctx.calendar.name}) = {_show(end)}"
        )
        return end


def _rules_for(ctx: _Context) -> _Rules:
    """Pick the named strategy for the regime (UK and EU share the month arithmetic)."""
    if ctx.regime is Regime.UK_GDPR:
        pauses = []
        if ctx.request_type is RequestType.ACCESS:
            # s 54(3C) / Art 12A: clarification stops the clock for access requests only.
            pauses.append(_PauseRule(_CLARIFICATION, ctx.policy.uk_pause_count))
        return _MonthRules(
            ctx,
            law="UK GDPR",
            restarts=[(_IDENTITY, "identity"), (_AUTHORITY, "authority"), (_FEE, "fee")],
            pauses=pauses,
        )
    if ctx.regime is Regime.EU_GDPR:
        # Art 12(6) has no statutory pause; the policy may follow the UK (restart) or the
        # Berlin DPA (suspend while an authentication request goes unanswered).
        verification = [(_IDENTITY, "identity"), (_AUTHORITY, "authority")]
        mode = ctx.policy.eu_identity_pause
        return _MonthRules(
            ctx,
            law="EU GDPR",
            restarts=verification if mode == "restart" else [],
            pauses=[_PauseRule(pair, "after_request") for pair, _ in verification]
            if mode == "suspend"
            else [],
        )
    return _DayRules(ctx, _DAY_TABLES[ctx.regime])


# --------------------------------------------------------------------------- the clock


class StatutoryClock:
    """The deadlines of one request, from its receipt date, its event log and its policy.

    Immutable: append an event by building a new clock with the longer log. Dates in, dates
    out; a deadline is the end of that local calendar day (LEGAL.md §2.1).
    """

    def __init__(
        self,
        regime: Regime | str,
        request_type: RequestType | str,
        received: date | str,
        events: Sequence[ClockEvent | Mapping[str, object]],
        policy: ClockPolicy,
    ) -> None:
        self.regime = parse_regime(regime)
        self.request_type = parse_request_type(request_type)
        self.received = parse_date(received, "received")
        self.policy = policy
        self._ctx = _Context(self.regime, self.request_type, self.received, _EventLog(events), policy)
        self._rules = _rules_for(self._ctx)

    def __repr__(self) -> str:
        return (
            f"StatutoryClock({self.regime.value}, {self.request_type.value}, received={self.received}, "
            f"events={len(self._ctx.log.events)}, calendar={self.policy.calendar!r})"
        )

    @property
    def calendar(self) -> Calendar:
        return self._ctx.calendar

    @property
    def primary_kind(self) -> DeadlineKind:
        return primary_kind(self.regime, self.request_type)

    def due(self, kind: DeadlineKind | str | None = None, as_of: date | None = None) -> date:
        """The deadline of ``kind`` (default: the primary one for this request).

        ``as_of``: an exchange still open (clarification asked, identity awaited) is taken as
        closing on that day, or on the day it opened if None, so the date is provisional.
        Raises DeadlineNotApplicable when the regime has no such deadline.
        """
        return self._rules.due(self._kind(kind), as_of, [])

    def explain(self, kind: DeadlineKind | str | None = None, as_of: date | None = None) -> list[str]:
        """The working behind ``due(kind, as_of)``, one step per line (for the console)."""
        why: list[str] = []
        self._rules.due(self._kind(kind), as_of, why)
        return why

    def applicable_kinds(self) -> list[DeadlineKind]:
        """The kinds this request has, primary first."""
        kinds = [self.primary_kind, *(k for k in DeadlineKind if k is not self.primary_kind)]
        found = []
        for kind in kinds:
            try:
                self._rules.due(kind, None, [])
            except DeadlineNotApplicable:
                continue
            found.append(kind)
        return found

    def is_waiting(self) -> bool:
        """Whether the clock is held because the controller waits for the person: an open
        clarification (UK access), an awaited identity/authority/fee (UK; EU when the policy
        pauses). Never under CCPA and the other day-count regimes (verification runs inside
        the period, 11 CCR §7021(b))."""
        return self._rules.is_waiting()

    def extension_notice_deadline(self, as_of: date | None = None) -> date:
        """The last day to notify an extension. DeadlineNotApplicable where there is none."""
        return self._rules.extension_notice_deadline(as_of, [])

    def extension_valid(self, on: date) -> bool:
        """Whether notice of an extension given on ``on`` is in time (a late notice is
        ineffective: vector CA-11). Raises DeadlineNotApplicable if the law has no extension."""
        return on <= self.extension_notice_deadline(as_of=on)

    def is_extended(self, as_of: date | None = None) -> bool:
        """Whether a valid extension notice is on the log."""
        notices = self._ctx.log.dates(ClockEventType.EXTENSION_NOTIFIED)
        try:
            return any(
                d <= self.extension_notice_deadline(as_of=d if as_of is None else max(as_of, d))
                for d in notices
            )
        except DeadlineNotApplicable:
            return False

    def _kind(self, kind: DeadlineKind | str | None) -> DeadlineKind:
        return self.primary_kind if kind is None else parse_kind(kind)
