"""Figures for a regulator, and for CCPA 11 CCR §7102: how many requests came in and were closed,
how many were answered on time and how long answers took, extensions with their reasons,
refusals by ground and clock pauses, all for a period.

Everything is computed from the case register (type, regime, channel, received, due) and the
hash-chained audit trail (when each case was answered, refused or extended, and what was asked
of the person): never from the workflows, so a report can be run on a register whose cases
have long ended, and never from personal data, which neither holds.

What the words mean (the report's legend says the same; LEGAL.md §2.1 and §2.4):

* **Period**: ``start`` to ``end`` inclusive, calendar dates in the controller's time zone
  (``DSAR_TIMEZONE``): a request received at 23:59 counts as received that day (§2.1).
* **Received**: the local date of the case's receipt is in the period.
* **Closed**: the request ended in the period: the day the case was **complied** with (stage
  ``responded``: the copy, the change or the answer sent), **refused** (``rejected``, with a
  ground), **expired** (the person did not send what we asked for: identity, authority, fee or
  clarification) or **withdrawn**. The later move from ``responded`` to ``closed`` (the download
  link expired) is housekeeping, not the end of the request.
* **Responded**: closed with an answer to the person: complied, refused or expired (each ends
  with a letter that answers the request; for CCPA the expiry is the denial §7021(b) allows
  when a request cannot be verified). A withdrawn request needs no answer: it is closed, not
  responded, and counts in neither the on-time rate nor the days.
* **On time**: the day of the response is on or before the due date on the register, which is
  the statutory deadline in force (extensions and clock pauses included; a deadline is the end
  of that local day, §2.1).
* **Days to respond**: calendar days from the local date of receipt to the local date of the
  response (answered the day it came: 0), clock pauses not taken off (they are reported on
  their own). **Median**: ``statistics.median``. **95th percentile**: nearest rank, the fewest
  days within which at least 95% of the responses were sent (always a value that occurred).
* **Extensions**: notices of extension given in the period, with the reason the person was told.
* **Refusals**: requests refused in the period, by the ground of the ``reject`` decision.
* **Clock pauses**: things asked of the person in the period (identity, authority, fee,
  clarification) while which the regime's clock stood still or would start again (UK GDPR;
  never CCPA and the other day-count laws, §2.4: the clock itself decides, ``StatutoryClock``),
  and the days each waited within the period: to the answer, the end of the case or the end of
  the period, whichever came first (so a past period's figures do not change later).
* **CCPA §7102**: requests under the CCPA regime, per the regulation's types (know = access and
  portability; delete = erasure; correct = rectification; opt_out = opt-out of sale/sharing;
  limit = limit the use of sensitive personal information): received in the period; complied
  with in whole or in part (responded; a copy with records withheld or an erasure with records
  kept is compliance in part) and denied (refused or expired) in the period; the median and mean
  days to respond to those. Requests under other regimes are not counted (§7102(c) lets a
  business count every individual instead, and say so). LEGAL.md carries no text of §7102: the
  metrics follow 11 CCR §7102(a)(1)(A)-(F) as known to us [R: check before publishing] and the
  issue that asked for them; "substantively responded" is read as our "responded" above.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from sqlalchemy import or_
from sqlmodel import col, select

from dsar.clock import ClockPolicy, StatutoryClock
from dsar.model import ClockEvent, ClockEventType, RequestType
from dsar.store import _CASE_FIELDS, AuditEvent, AuditRow, Case, CaseRow, CaseStore, _audit_row
from dsar.timeutil import local_date, local_instant

#: How a request ended, by the stage its case entered (the audit trail's ``stage:...`` event).
CONCLUSIONS = {
    "stage:responded": "complied",
    "stage:rejected": "refused",
    "stage:expired": "expired",
    "stage:withdrawn": "withdrawn",
    # a duplicate answered with the same person's earlier request: counted there, not twice
    "stage:merged": "merged",
}
#: Conclusions that answer the person (a withdrawn request needs no answer; a merged one is
#: answered by the request it joined).
ANSWERED = ("complied", "refused", "expired")

#: What was asked of the person, by the audit action that asked: the decision, the automatic
#: request for more identifiers, the request to an agent for their authority.
ASKS = {
    "decision:request_identity": "identity",
    "identity:more_requested": "identity",
    "decision:request_authority": "authority",
    "agent:authority_requested": "authority",
    "decision:request_fee": "fee",
    "decision:request_clarification": "clarification",
}
#: The answers: an operator recording it, the person's secure form, an agent's upload.
ANSWERS = {
    "decision:identity_received": "identity",
    "identity:received": "identity",
    "decision:authority_received": "authority",
    "agent:authority_received": "authority",
    "decision:fee_paid": "fee",
    "decision:clarification_received": "clarification",
}
#: An e-mail reply is an answer for what its ``used`` detail names.
_MAIL_USED = {"identifiers": "identity", "authority": "authority"}
_ASKED_EVENT = {
    "identity": ClockEventType.IDENTITY_REQUESTED,
    "authority": ClockEventType.AUTHORITY_REQUESTED,
    "fee": ClockEventType.FEE_REQUESTED,
    "clarification": ClockEventType.CLARIFICATION_REQUESTED,
}

#: The audit actions a report reads (and nothing else: comments and views stay unread).
REPORTED_ACTIONS = (
    *CONCLUSIONS,
    "decision:reject",
    "decision:extend",
    *ASKS,
    *ANSWERS,
    "correspondence:received",
)

#: CCPA §7102(a)(1)'s request types, and ours that are each.
CCPA_TYPES: dict[str, tuple[RequestType, ...]] = {
    "know": (RequestType.ACCESS, RequestType.PORTABILITY),
    "delete": (RequestType.ERASURE,),
    "correct": (RequestType.RECTIFICATION,),
    "opt_out": (RequestType.OPT_OUT_SALE_SHARING,),
    "limit": (RequestType.LIMIT_SENSITIVE,),
}
_CCPA_TYPE_OF = {t.value: name for name, types in CCPA_TYPES.items() for t in types}

#: What a reason reads as once the case file was purged (its words removed, the hash kept).
PURGED_REASON = "(removed when the case file was purged)"


class ReportError(ValueError):
    """A report that cannot be made as asked (the message says what to change)."""


# --------------------------------------------------------------------------------------------
# Input: the period, and each case as the register and its audit trail hold it


@dataclass(frozen=True)
class Period:
    """Calendar dates, both included, in the controller's time zone."""

    start: date
    end: date
    timezone: str

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ReportError(f"the period ends ({self.end}) before it starts ({self.start})")
        try:
            ZoneInfo(self.timezone)
        except (ValueError, ZoneInfoNotFoundError):
            raise ReportError(
                f"unknown time zone {self.timezone!r} (DSAR_TIMEZONE, e.g. Europe/London)"
            ) from None

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    @classmethod
    def parse(cls, start: str, end: str, timezone: str) -> Period:
        """From ``YYYY-MM-DD`` strings, as the CLI and the console take them."""
        return cls(_iso_date(start, "from"), _iso_date(end, "to"), timezone)


def _iso_date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ReportError(f"{what}: give a date as YYYY-MM-DD, e.g. 2026-01-31") from None


@dataclass(frozen=True)
class CaseHistory:
    """One case's register row and the audit events a report reads, in order."""

    case: CaseRow
    events: tuple[AuditRow, ...] = ()


# --------------------------------------------------------------------------------------------
# One case, as the report reads it


@dataclass(frozen=True)
class Extension:
    reference: str
    request_type: str
    regime: str
    notified: date
    reason: str


@dataclass(frozen=True)
class Pause:
    """Something asked of the person while the clock held: from the ask to the answer (or the
    end of the case, or ``None`` while still awaited)."""

    reference: str
    awaited: str  # identity, authority, fee, clarification
    asked: date
    answered: date | None


@dataclass(frozen=True)
class RequestFacts:
    """What the report needs of one case: dates in the controller's time zone, no personal data."""

    reference: str
    request_type: str
    regime: str
    channel: str
    received: date
    due: date | None
    concluded: date | None = None
    conclusion: str | None = None  # complied, refused, expired, withdrawn
    ground: str = ""  # the refusal's ground
    extensions: tuple[Extension, ...] = ()
    pauses: tuple[Pause, ...] = ()

    @property
    def answered(self) -> bool:
        return self.conclusion in ANSWERED

    @property
    def days(self) -> int | None:
        """Calendar days from receipt to the answer (None until answered)."""
        if not self.answered or self.concluded is None:
            return None
        return (self.concluded - self.received).days

    @property
    def on_time(self) -> bool | None:
        """Answered by the due date (a case with no due date on the register counts as late)."""
        if not self.answered or self.concluded is None:
            return None
        return self.due is not None and self.concluded <= self.due


def read_case(history: CaseHistory, timezone: str) -> RequestFacts:
    """The report's view of one case: when it came, how and when it ended, its extensions and
    the clock pauses, from its register row and audit events."""
    case = history.case
    received = local_date(case.received_at, timezone)
    concluded: date | None = None
    conclusion: str | None = None
    ground = ""
    extensions: list[Extension] = []
    open_asks: dict[str, date] = {}
    waits: list[tuple[str, date, date | None]] = []
    for event in history.events:
        day = local_date(event.at, timezone)
        action = event.action
        if action in CONCLUSIONS and conclusion is None:
            concluded, conclusion = day, CONCLUSIONS[action]
        elif action == "decision:reject":
            ground = str(event.details.get("ground", "")) or "other"
        elif action == "decision:extend":
            reason = event.reason or PURGED_REASON
            extensions.append(Extension(case.reference, case.request_type, case.regime, day, reason))
        elif action in ASKS:
            open_asks.setdefault(ASKS[action], day)
        else:
            for awaited in _answers(event):
                if awaited in open_asks:
                    waits.append((awaited, open_asks.pop(awaited), day))
    end = concluded if conclusion is not None else None
    waits += [(awaited, asked, end) for awaited, asked in open_asks.items()]
    pauses = tuple(
        Pause(case.reference, awaited, asked, answered)
        for awaited, asked, answered in sorted(waits, key=lambda w: (w[1], w[0]))
        if _clock_holds(case, received, awaited, asked)
    )
    return RequestFacts(
        reference=case.reference,
        request_type=case.request_type,
        regime=case.regime,
        channel=case.channel,
        received=received,
        due=case.due,
        concluded=concluded,
        conclusion=conclusion,
        ground=ground if conclusion == "refused" else "",
        extensions=tuple(extensions),
        pauses=pauses,
    )


def _answers(event: AuditRow) -> list[str]:
    if event.action in ANSWERS:
        return [ANSWERS[event.action]]
    if event.action == "correspondence:received":
        used = str(event.details.get("used", "")).split(",")
        return [_MAIL_USED[u] for u in used if u in _MAIL_USED]
    return []


def _clock_holds(case: CaseRow, received: date, awaited: str, asked: date) -> bool:
    """Whether the regime's clock stands still (or would start again) while this is awaited: the
    statutory clock itself says, with the policy intake gives every case (LEGAL.md §2.2-§2.4)."""
    events = [
        ClockEvent(ClockEventType.RECEIVED, received.isoformat()),
        ClockEvent(_ASKED_EVENT[awaited], asked.isoformat()),
    ]
    try:
        clock = StatutoryClock(case.regime, case.request_type, received, events, ClockPolicy(calendar="none"))
    except ValueError:
        return False  # a regime or type this engine no longer knows: not a pause it can vouch for
    return clock.is_waiting()


# --------------------------------------------------------------------------------------------
# The figures


@dataclass(frozen=True)
class Figures:
    """One group's figures (all requests, a request type, a regime, a channel)."""

    received: int = 0
    closed: int = 0
    responded: int = 0
    on_time: int = 0
    on_time_rate: float | None = None  # on time / responded
    median_days: float | None = None
    p95_days: int | None = None


@dataclass(frozen=True)
class Ccpa7102:
    """One §7102(a)(1) request type's metrics."""

    received: int = 0
    complied_in_whole_or_in_part: int = 0
    denied: int = 0
    median_days: float | None = None
    mean_days: float | None = None


@dataclass(frozen=True)
class Pauses:
    count: int = 0
    cases: int = 0
    days: int = 0  # from each ask to its answer, the end of the case or of the period: the first
    by_awaited: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RegulatorReport:
    """The figures for one period. ``to_json`` and ``to_csv`` are what the CLI prints and the
    console downloads; the console shows the same as tables."""

    period: Period
    total: Figures
    outcomes: dict[str, int]  # complied, refused, expired, withdrawn: closed in the period
    by_type: dict[str, Figures]
    by_regime: dict[str, Figures]
    by_channel: dict[str, Figures]
    extensions: tuple[Extension, ...]
    refusals: dict[str, int]  # ground -> refused in the period
    pauses: Pauses
    ccpa_7102: dict[str, Ccpa7102]

    def to_json(self) -> dict[str, Any]:
        def figures(f: Figures) -> dict[str, Any]:
            return {
                "received": f.received,
                "closed": f.closed,
                "responded": f.responded,
                "on_time": f.on_time,
                "on_time_rate": f.on_time_rate,
                "median_days": f.median_days,
                "p95_days": f.p95_days,
            }

        return {
            "period": {
                "from": self.period.start.isoformat(),
                "to": self.period.end.isoformat(),
                "timezone": self.period.timezone,
            },
            **figures(self.total),
            "outcomes": dict(self.outcomes),
            "by_type": {k: figures(v) for k, v in self.by_type.items()},
            "by_regime": {k: figures(v) for k, v in self.by_regime.items()},
            "by_channel": {k: figures(v) for k, v in self.by_channel.items()},
            "extensions": {
                "count": len(self.extensions),
                "cases": [
                    {
                        "reference": e.reference,
                        "request_type": e.request_type,
                        "regime": e.regime,
                        "notified": e.notified.isoformat(),
                        "reason": e.reason,
                    }
                    for e in self.extensions
                ],
            },
            "refusals": {"count": sum(self.refusals.values()), "by_ground": dict(self.refusals)},
            "pauses": {
                "count": self.pauses.count,
                "cases": self.pauses.cases,
                "days": self.pauses.days,
                "by_awaited": dict(self.pauses.by_awaited),
            },
            "ccpa_7102": {
                name: {
                    "received": m.received,
                    "complied_in_whole_or_in_part": m.complied_in_whole_or_in_part,
                    "denied": m.denied,
                    "median_days": m.median_days,
                    "mean_days": m.mean_days,
                }
                for name, m in self.ccpa_7102.items()
            },
        }

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The report as (section, group, measure, value) rows: what the CSV holds, one figure a
        row, so that a spreadsheet can filter and pivot it."""
        out: list[tuple[str, str, str, str]] = [
            ("period", "", "from", self.period.start.isoformat()),
            ("period", "", "to", self.period.end.isoformat()),
            ("period", "", "timezone", self.period.timezone),
        ]
        data = self.to_json()
        for measure in (
            "received",
            "closed",
            "responded",
            "on_time",
            "on_time_rate",
            "median_days",
            "p95_days",
        ):
            out.append(("all", "", measure, _cell(data[measure])))
        out += [("outcomes", k, "closed", str(v)) for k, v in self.outcomes.items()]
        for section in ("by_type", "by_regime", "by_channel"):
            for group, figures in data[section].items():
                out += [(section, group, measure, _cell(value)) for measure, value in figures.items()]
        for e in self.extensions:
            out.append(("extensions", e.reference, "notified", e.notified.isoformat()))
            out.append(("extensions", e.reference, "reason", e.reason))
        out += [("refusals", ground, "refused", str(n)) for ground, n in self.refusals.items()]
        out.append(("pauses", "", "count", str(self.pauses.count)))
        out.append(("pauses", "", "cases", str(self.pauses.cases)))
        out.append(("pauses", "", "days", str(self.pauses.days)))
        out += [("pauses", awaited, "count", str(n)) for awaited, n in self.pauses.by_awaited.items()]
        for name, metrics in data["ccpa_7102"].items():
            out += [("ccpa_7102", name, measure, _cell(value)) for measure, value in metrics.items()]
        return out

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("section", "group", "measure", "value"))
        writer.writerows(tuple(_spreadsheet_safe(v) for v in row) for row in self.rows())
        return buffer.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice): staff type
    the extension reasons."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def regulator_report(cases: Iterable[RequestFacts], period: Period) -> RegulatorReport:
    """The figures for ``period`` from the cases that were received, ended, extended or waited
    for the person in it (others are simply not counted)."""
    facts = list(cases)
    received = [f for f in facts if f.received in period]
    closed = [f for f in facts if f.concluded in period]

    def grouped(key: str) -> dict[str, Figures]:
        names = sorted({getattr(f, key) for f in (*received, *closed)})
        return {
            name: _figures(
                [f for f in received if getattr(f, key) == name],
                [f for f in closed if getattr(f, key) == name],
            )
            for name in names
        }

    in_period = (e for f in facts for e in f.extensions if e.notified in period)
    extensions = tuple(sorted(in_period, key=lambda e: (e.notified, e.reference)))
    pauses = [p for f in facts for p in f.pauses if p.asked in period]
    pause_days = sum((min(p.answered or period.end, period.end) - p.asked).days for p in pauses)
    outcomes = Counter(f.conclusion for f in closed)
    return RegulatorReport(
        period=period,
        total=_figures(received, closed),
        outcomes={k: outcomes[k] for k in (*ANSWERED, "withdrawn", "merged") if outcomes[k]},
        by_type=grouped("request_type"),
        by_regime=grouped("regime"),
        by_channel=grouped("channel"),
        extensions=extensions,
        refusals=dict(sorted(Counter(f.ground for f in closed if f.conclusion == "refused").items())),
        pauses=Pauses(
            count=len(pauses),
            cases=len({p.reference for p in pauses}),
            days=pause_days,
            by_awaited=dict(sorted(Counter(p.awaited for p in pauses).items())),
        ),
        ccpa_7102=_ccpa_7102(received, closed),
    )


def _figures(received: Sequence[RequestFacts], closed: Sequence[RequestFacts]) -> Figures:
    answered = [f for f in closed if f.answered]
    days = [f.days for f in answered if f.days is not None]
    on_time = sum(1 for f in answered if f.on_time)
    return Figures(
        received=len(received),
        closed=len(closed),
        responded=len(answered),
        on_time=on_time,
        on_time_rate=round(on_time / len(answered), 4) if answered else None,
        median_days=statistics.median(days) if days else None,
        p95_days=percentile_days(days, 95),
    )


def percentile_days(days: Sequence[int], percent: int) -> int | None:
    """Nearest rank: the fewest days within which at least ``percent``% of the answers went."""
    if not days:
        return None
    return int(np.percentile(days, percent, method="inverted_cdf"))


def _ccpa_7102(received: Sequence[RequestFacts], closed: Sequence[RequestFacts]) -> dict[str, Ccpa7102]:
    out = {}
    for name in CCPA_TYPES:
        came = [f for f in received if f.regime == "CCPA" and _CCPA_TYPE_OF.get(f.request_type) == name]
        ended = [
            f
            for f in closed
            if f.regime == "CCPA" and _CCPA_TYPE_OF.get(f.request_type) == name and f.answered
        ]
        days = [f.days for f in ended if f.days is not None]
        out[name] = Ccpa7102(
            received=len(came),
            complied_in_whole_or_in_part=sum(1 for f in ended if f.conclusion == "complied"),
            denied=sum(1 for f in ended if f.conclusion in ("refused", "expired")),
            median_days=statistics.median(days) if days else None,
            mean_days=round(statistics.fmean(days), 1) if days else None,
        )
    return out


# --------------------------------------------------------------------------------------------
# Reading the register


def load_histories(store: CaseStore, period: Period) -> list[CaseHistory]:
    """The cases a report for ``period`` needs: received in it, or with a reported event in it
    (ended, refused, extended, asked the person), each with its reported audit events."""
    start = local_instant(period.start, 0, period.timezone)
    end = local_instant(period.end + timedelta(days=1), 0, period.timezone)
    active = (
        select(col(AuditEvent.reference))
        .where(col(AuditEvent.action).in_(REPORTED_ACTIONS))
        .where(col(AuditEvent.at) >= start, col(AuditEvent.at) < end)
    )
    cases_query = (
        select(*(col(getattr(Case, f)) for f in _CASE_FIELDS))
        .where(
            or_(
                (col(Case.received_at) >= start) & (col(Case.received_at) < end),
                col(Case.reference).in_(active),
            )
        )
        .order_by(col(Case.reference))
    )
    with store._read() as session:
        cases = [CaseRow(*row) for row in session.execute(cases_query).all()]
        refs = [c.reference for c in cases]
        events: dict[str, list[AuditRow]] = {ref: [] for ref in refs}
        for chunk in _chunks(refs, 500):
            query = (
                select(AuditEvent)
                .where(col(AuditEvent.reference).in_(chunk), col(AuditEvent.action).in_(REPORTED_ACTIONS))
                .order_by(col(AuditEvent.reference), col(AuditEvent.seq))
            )
            for event in session.exec(query):
                events[event.reference].append(_audit_row(event))
    return [CaseHistory(case, tuple(events[case.reference])) for case in cases]


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def report_for(store: CaseStore, period: Period) -> RegulatorReport:
    """Read the register and compute the report for ``period``."""
    histories = load_histories(store, period)
    return regulator_report((read_case(h, period.timezone) for h in histories), period)


__all__ = [
    "CCPA_TYPES",
    "CaseHistory",
    "Ccpa7102",
    "Extension",
    "Figures",
    "Pause",
    "Pauses",
    "Period",
    "RegulatorReport",
    "ReportError",
    "RequestFacts",
    "load_histories",
    "percentile_days",
    "read_case",
    "regulator_report",
    "report_for",
]
