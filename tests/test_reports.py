"""Regulator reports (``dsar.reports``, ``dsar report``): the figures' definitions on rows built
by hand, then five cases driven through the time-skipping Temporal server with known dates (one
answered on time, one late, one extended, one refused, one whose clock was paused), reported from
a SQLite and a PostgreSQL register, by the function and by the CLI."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from dsar.codec import data_converter
from dsar.model import Channel, DecisionKind, Regime, RequestType, Stage
from dsar.reports import (
    CaseHistory,
    Period,
    ReportError,
    percentile_days,
    read_case,
    regulator_report,
    report_for,
)
from dsar.settings import Settings
from dsar.store import AuditRow, CaseRow, CaseStore
from dsar.timeutil import local_date, local_instant
from intake.service import NewRequest, open_case
from tests.conftest import (
    _settle_and_terminate,
    binary,
    make_settings,
    register_search_attributes,
    replay_in_sandbox,
)
from tests.test_cli import assert_one_line_error, cli_env, dsar
from tests.test_workflow import MARGARET, at_stage, decide, wait_until
from workflows.request import DataSubjectRequest

TZ = "Europe/London"


# --------------------------------------------------------------------------------------------
# The definitions, on rows built by hand


def case(
    ref: str,
    received: datetime,
    due: date | None,
    request_type: str = "access",
    regime: str = "UK_GDPR",
    channel: str = "api",
) -> CaseRow:
    return CaseRow(
        id=1, reference=ref, idempotency_key=None, request_type=request_type, regime=regime,
        channel=channel, stage="received", received_at=received, due=due, acknowledgement_due=None,
        extended=False, paused=False, breached=False, escalated=False, waiting_for=None, outcome=None,
        created_at=received, updated_at=received, closed_at=None,
    )  # fmt: skip


def event(ref: str, seq: int, at: datetime, action: str, reason: str = "", **details: str) -> AuditRow:
    return AuditRow(
        id=seq, reference=ref, seq=seq, event_key=None, at=at, actor="system", action=action,
        reason=reason, details=dict(details), prev_hash="", hash="",
    )  # fmt: skip


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def history(row: CaseRow, *events: tuple[str, str] | tuple[str, str, str] | AuditRow) -> CaseHistory:
    """A case and its events: (when in UTC, action[, reason]) or ready-made rows."""
    rows = []
    for seq, e in enumerate(events, start=1):
        rows.append(e if isinstance(e, AuditRow) else event(row.reference, seq, utc(e[0]), *e[1:]))
    return CaseHistory(row, tuple(rows))


YEAR = Period(date(2026, 1, 1), date(2026, 12, 31), TZ)


def test_dates_are_read_in_the_controllers_time_zone() -> None:
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (BST): received 1 July. The answer at
    # 23:30 UTC on 31 July is 1 August in London: a day late for a case due on 31 July, and 31
    # days after receipt (UTC dates would say 31 days and on time).
    row = case("DSR-1", utc("2026-06-30T23:30"), date(2026, 7, 31))
    facts = read_case(history(row, ("2026-07-31T23:30", "stage:responded")), TZ)
    assert (facts.received, facts.concluded) == (date(2026, 7, 1), date(2026, 8, 1))
    assert (facts.days, facts.on_time) == (31, False)
    # answered at 22:59 UTC (23:59 BST) on the due date: on time
    facts = read_case(history(row, ("2026-07-31T22:59", "stage:responded")), TZ)
    assert (facts.days, facts.on_time) == (30, True)
    # in Los Angeles the same instants are 30 June and 31 July
    facts = read_case(history(row, ("2026-07-31T23:30", "stage:responded")), "America/Los_Angeles")
    assert (facts.received, facts.concluded, facts.on_time) == (date(2026, 6, 30), date(2026, 7, 31), True)


def test_closed_responded_on_time_and_the_days() -> None:
    due = date(2026, 3, 31)
    cases = [
        history(case("DSR-1", utc("2026-03-01T10:00"), due), ("2026-03-01T15:00", "stage:responded")),
        history(case("DSR-2", utc("2026-03-01T10:00"), due), ("2026-04-20T10:00", "stage:responded")),
        history(
            case("DSR-3", utc("2026-03-01T10:00"), due),
            event(
                "DSR-3", 1, utc("2026-03-04T10:00"), "decision:reject", "spam", ground="manifestly_unfounded"
            ),
            ("2026-03-04T10:00", "stage:rejected"),
        ),
        history(case("DSR-4", utc("2026-03-01T10:00"), due), ("2026-03-10T10:00", "stage:withdrawn")),
        history(case("DSR-5", utc("2026-03-01T10:00"), due), ("2026-04-01T10:00", "stage:expired")),
        history(case("DSR-6", utc("2026-03-02T10:00"), due)),  # still open
        # responded, then closed when the link expired: the request ended when it was answered
        history(
            case("DSR-7", utc("2026-03-02T10:00"), due, channel="email"),
            ("2026-03-12T10:00", "stage:responded"),
            ("2026-04-11T10:00", "stage:closed"),
        ),
    ]
    report = regulator_report([read_case(h, TZ) for h in cases], YEAR)
    t = report.total
    assert (t.received, t.closed, t.responded, t.on_time) == (7, 6, 5, 3)
    assert report.outcomes == {"complied": 3, "refused": 1, "expired": 1, "withdrawn": 1}
    assert t.on_time_rate == 0.6  # DSR-1, DSR-3, DSR-7 of five answers
    assert (t.median_days, t.p95_days) == (10, 50)  # days 0, 3, 10, 31, 50
    assert report.refusals == {"manifestly_unfounded": 1}
    assert set(report.by_channel) == {"api", "email"}
    assert report.by_channel["email"].received == 1 and report.by_channel["email"].median_days == 10
    # a period that ends before the answers: received, not closed
    march = regulator_report(
        [read_case(h, TZ) for h in cases], Period(date(2026, 3, 1), date(2026, 3, 5), TZ)
    )
    assert (march.total.received, march.total.closed, march.total.responded) == (7, 2, 2)
    assert march.outcomes == {"complied": 1, "refused": 1}


def test_the_95th_percentile_is_a_nearest_rank() -> None:
    assert percentile_days(list(range(1, 21)), 95) == 19  # 19 of 20 answers took 19 days or fewer
    assert percentile_days(list(range(1, 101)), 95) == 95
    assert percentile_days([7], 95) == 7
    assert percentile_days([], 95) is None


def test_clock_pauses_are_where_the_regime_holds_the_clock() -> None:
    uk = case("DSR-1", utc("2026-03-02T10:00"), date(2026, 4, 14))
    uk_erasure = case("DSR-2", utc("2026-03-02T10:00"), date(2026, 4, 2), request_type="erasure")
    ccpa = case("DSR-3", utc("2026-03-02T10:00"), date(2026, 4, 16), regime="CCPA")
    uk_identity = case("DSR-4", utc("2026-03-02T10:00"), date(2026, 4, 2))
    clarify, clarified = "decision:request_clarification", "decision:clarification_received"
    cases = [
        # UK access: clarification stops the clock (s 54(3C)), 10 days
        history(
            uk,
            ("2026-03-03T10:00", clarify),
            ("2026-03-13T10:00", clarified),
            ("2026-03-20T10:00", "stage:responded"),
        ),
        # UK erasure: a clarification holds nothing (access requests only)
        history(uk_erasure, ("2026-03-03T10:00", clarify), ("2026-03-05T10:00", clarified)),
        # CCPA: verification never holds the clock (11 CCR §7021(b))
        history(
            ccpa, ("2026-03-03T10:00", "identity:more_requested"), ("2026-03-04T10:00", "identity:received")
        ),
        # UK: asked for identity automatically, answered by e-mail; then asked for a fee, never paid
        history(
            uk_identity,
            ("2026-03-03T10:00", "identity:more_requested"),
            event("DSR-4", 2, utc("2026-03-06T10:00"), "correspondence:received", used="identifiers"),
            ("2026-03-10T10:00", "decision:request_fee"),
            ("2026-04-09T10:00", "stage:expired"),
        ),
    ]
    facts = [read_case(h, TZ) for h in cases]
    assert [(p.awaited, p.asked.day, p.answered) for p in facts[0].pauses] == [
        ("clarification", 3, date(2026, 3, 13))
    ]
    assert facts[1].pauses == () and facts[2].pauses == ()
    assert [(p.awaited, (p.answered - p.asked).days) for p in facts[3].pauses if p.answered] == [
        ("identity", 3),
        ("fee", 30),  # until the case expired
    ]
    report = regulator_report(facts, YEAR)
    assert (report.pauses.count, report.pauses.cases, report.pauses.days) == (3, 2, 43)
    assert report.pauses.by_awaited == {"clarification": 1, "fee": 1, "identity": 1}
    # a pause still open is counted to the end of the period
    short = regulator_report(facts, Period(date(2026, 3, 1), date(2026, 3, 20), TZ))
    assert short.pauses.days == 10 + 3 + 10


def test_extensions_with_their_reasons_and_a_purged_one() -> None:
    cases = [
        history(
            case("DSR-1", utc("2026-03-02T10:00"), date(2026, 6, 2)),
            ("2026-03-20T10:00", "decision:extend", "records in 14 systems"),
        ),
        history(
            case("DSR-2", utc("2025-03-02T10:00"), date(2025, 6, 2)),
            ("2025-03-20T10:00", "decision:extend", ""),
        ),  # purged: the words are gone
    ]
    facts = [read_case(h, TZ) for h in cases]
    report = regulator_report(facts, YEAR)
    assert [(e.reference, e.notified, e.reason) for e in report.extensions] == [
        ("DSR-1", date(2026, 3, 20), "records in 14 systems")
    ]
    old = regulator_report(facts, Period(date(2025, 1, 1), date(2025, 12, 31), TZ))
    assert [e.reason for e in old.extensions] == ["(removed when the case file was purged)"]


def test_ccpa_7102_per_request_type() -> None:
    def ccpa(ref: str, request_type: str, *events: tuple[str, str], regime: str = "CCPA") -> CaseHistory:
        return history(case(ref, utc("2026-03-02T18:00"), date(2026, 4, 16), request_type, regime), *events)

    cases = [
        ccpa("DSR-1", "access", ("2026-03-12T18:00", "stage:responded")),
        ccpa("DSR-2", "portability", ("2026-03-22T18:00", "stage:responded")),
        ccpa("DSR-3", "access", ("2026-03-05T18:00", "stage:rejected")),
        ccpa("DSR-4", "access", ("2026-04-20T18:00", "stage:expired")),  # not verified in time: denied
        ccpa("DSR-5", "erasure", ("2026-03-09T18:00", "stage:withdrawn")),  # neither
        ccpa("DSR-6", "opt_out_sale_sharing", ("2026-03-03T18:00", "stage:responded")),
        ccpa("DSR-7", "access", ("2026-03-03T18:00", "stage:responded"), regime="UK_GDPR"),  # not CCPA
    ]
    metrics = regulator_report([read_case(h, TZ) for h in cases], YEAR).to_json()["ccpa_7102"]
    assert metrics["know"] == {
        "received": 4,
        "complied_in_whole_or_in_part": 2,
        "denied": 2,
        "median_days": 15.0,  # days 3, 10, 20, 49
        "mean_days": 20.5,
    }
    assert metrics["delete"] == {
        "received": 1,
        "complied_in_whole_or_in_part": 0,
        "denied": 0,
        "median_days": None,
        "mean_days": None,
    }
    assert metrics["opt_out"]["complied_in_whole_or_in_part"] == 1 and metrics["opt_out"]["median_days"] == 1
    assert set(metrics) == {"know", "delete", "correct", "opt_out", "limit"}


def test_json_keys_csv_rows_and_no_formula_in_a_spreadsheet() -> None:
    cases = [
        history(
            case("DSR-1", utc("2026-03-02T10:00"), date(2026, 6, 2)),
            ("2026-03-20T10:00", "decision:extend", '=HYPERLINK("http://x")'),
            ("2026-05-20T10:00", "stage:responded"),
        ),
    ]
    report = regulator_report([read_case(h, TZ) for h in cases], YEAR)
    data = report.to_json()
    for key in (
        "received",
        "closed",
        "on_time_rate",
        "median_days",
        "p95_days",
        "by_type",
        "by_regime",
        "extensions",
        "refusals",
        "ccpa_7102",
    ):
        assert key in data
    assert json.loads(json.dumps(data)) == data
    rows = list(csv.reader(io.StringIO(report.to_csv())))
    assert rows[0] == ["section", "group", "measure", "value"]
    assert ["all", "", "on_time_rate", "1.0"] in rows and [
        "by_regime",
        "UK_GDPR",
        "median_days",
        "79",
    ] in rows
    assert ["extensions", "DSR-1", "reason", '\'=HYPERLINK("http://x")'] in rows


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-02-30", "2026-03-01", "from: give a date as YYYY-MM-DD"),
        ("2026-03-01", "yesterday", "to: give a date as YYYY-MM-DD"),
        ("2026-03-02", "2026-03-01", "the period ends (2026-03-01) before it starts (2026-03-02)"),
    ],
)
def test_a_period_that_cannot_be_used(start: str, end: str, message: str) -> None:
    with pytest.raises(ReportError, match=re.escape(message)):
        Period.parse(start, end, TZ)
    with pytest.raises(ReportError, match="unknown time zone"):
        Period.parse("2026-01-01", "2026-01-02", "Mars/Olympus_Mons")


# --------------------------------------------------------------------------------------------
# Five cases through the workflow engine, on SQLite and PostgreSQL registers

Handle = WorkflowHandle[DataSubjectRequest, str]


@pytest.fixture
def settings(tmp_path: Path, demo_env: dict[str, str], database_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url=database_url)


@pytest.fixture
def register(database_url: str) -> Iterator[CaseStore]:
    store = CaseStore(database_url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
async def engine(settings: Settings, register: CaseStore) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own: a fresh register hands out DSR-...-000001 again, which
    the session's server may already have seen. Its worker ends every case at the end."""
    from worker import build_workers

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"), data_converter=data_converter(settings)
    )
    try:
        await register_search_attributes(env.client)
        main, *systems = build_workers(env.client, settings, store=register)
        async with contextlib.AsyncExitStack() as stack:
            for w in (main, *systems):
                await stack.enter_async_context(w)
            yield env
            for row in register.queue(limit=1000):
                await _settle_and_terminate(env.client, row.reference)
        await replay_in_sandbox(env.client, [row.reference for row in register.queue(limit=1000)])
    finally:
        await env.shutdown()


@dataclass
class Driven:
    day0: date
    refs: dict[str, str]  # on_time, extended, late, refused, paused -> reference


async def drive_five_cases(env: WorkflowEnvironment, register: CaseStore, settings: Settings) -> Driven:
    """Day 0 at 10:00 London: five requests. Day 0: ask the 'paused' case's person to clarify.
    Day 3: answer 'on_time', refuse 'refused' (unverified). Day 5: extend 'extended' (CCPA).
    Day 10: the clarification arrives. Day 35: answer 'paused'. Day 50: answer 'extended' and
    'late'."""
    now = await env.get_current_time()
    await env.sleep(local_instant(local_date(now, TZ) + timedelta(days=1), 10, TZ) - now)
    t0 = await env.get_current_time()
    plan = {
        "on_time": (RequestType.ACCESS, Regime.UK_GDPR, Channel.API),
        "extended": (RequestType.PORTABILITY, Regime.CCPA, Channel.WEB_FORM),
        "late": (RequestType.ACCESS, Regime.UK_GDPR, Channel.API),
        "refused": (RequestType.ACCESS, Regime.CCPA, Channel.EMAIL),
        "paused": (RequestType.ACCESS, Regime.UK_GDPR, Channel.POST),
    }
    handles: dict[str, Handle] = {}
    for name, (request_type, regime, channel) in plan.items():
        opened = await open_case(
            env.client,
            register,
            settings,
            NewRequest(
                request_type=request_type,
                regime=regime,
                identifiers=MARGARET,
                channel=channel,
                received_at=t0,
            ),
            controller="Northwind Post & Mobile",
        )
        handles[name] = env.client.get_workflow_handle_for(DataSubjectRequest.run, opened.reference)
    for h in handles.values():
        await at_stage(h, Stage.VERIFYING)

    async def answer(h: Handle) -> None:
        await decide(h, DecisionKind.VERIFY)
        await wait_until(h, lambda s: s.waiting_for == "reviewer: approve the review package", timeout=60)
        await decide(h, DecisionKind.APPROVE)
        await wait_until(h, lambda s: s.stage == Stage.RESPONDED, timeout=60)

    async def on_day(n: int) -> None:
        await env.sleep(t0 + timedelta(days=n) - await env.get_current_time())

    await decide(
        handles["paused"], DecisionKind.REQUEST_CLARIFICATION, reason="which account: home or business?"
    )
    await on_day(3)
    await answer(handles["on_time"])
    await decide(
        handles["refused"], DecisionKind.REJECT, reason="no reply to our checks", ground="unverified"
    )
    await wait_until(handles["refused"], lambda s: s.stage == Stage.REJECTED)
    await on_day(5)
    await decide(handles["extended"], DecisionKind.EXTEND, reason="records in 14 systems, two archived")
    await on_day(10)
    await decide(handles["paused"], DecisionKind.CLARIFICATION_RECEIVED)
    await on_day(35)
    await answer(handles["paused"])
    await on_day(50)
    await answer(handles["extended"])
    await answer(handles["late"])
    return Driven(local_date(t0, TZ), {name: h.id for name, h in handles.items()})


async def test_report_of_five_cases_driven_through_the_engine(
    engine: WorkflowEnvironment, register: CaseStore, settings: Settings, database_url: str
) -> None:
    driven = await drive_five_cases(engine, register, settings)
    day0, refs = driven.day0, driven.refs
    rows = {name: register.get(ref) for name, ref in refs.items()}
    # The register agrees with the statutory clock: only the late case breached its deadline;
    # the extension took the CCPA case to 90 days, the clarification moved the paused case's.
    assert {name: row.breached for name, row in rows.items() if row} == {
        "on_time": False,
        "extended": False,
        "late": True,
        "refused": False,
        "paused": False,
    }
    assert rows["extended"] and rows["extended"].due == day0 + timedelta(days=90)
    assert rows["paused"] and rows["late"] and rows["paused"].due > rows["late"].due + timedelta(days=10)

    period = Period(day0, day0 + timedelta(days=60), TZ)
    report = report_for(register, period)
    data = report.to_json()
    assert data["period"] == {
        "from": day0.isoformat(),
        "to": (day0 + timedelta(days=60)).isoformat(),
        "timezone": TZ,
    }
    # days to respond: on_time 3, refused 3, paused 35, extended 50, late 50
    assert {
        k: data[k]
        for k in ("received", "closed", "responded", "on_time", "on_time_rate", "median_days", "p95_days")
    } == {
        "received": 5,
        "closed": 5,
        "responded": 5,
        "on_time": 4,
        "on_time_rate": 0.8,
        "median_days": 35,
        "p95_days": 50,
    }
    assert data["outcomes"] == {"complied": 4, "refused": 1}
    assert data["by_type"] == {
        "access": {
            "received": 4,
            "closed": 4,
            "responded": 4,
            "on_time": 3,
            "on_time_rate": 0.75,
            "median_days": 19.0,
            "p95_days": 50,
        },
        "portability": {
            "received": 1,
            "closed": 1,
            "responded": 1,
            "on_time": 1,
            "on_time_rate": 1.0,
            "median_days": 50,
            "p95_days": 50,
        },
    }
    assert data["by_regime"]["UK_GDPR"] == {
        "received": 3,
        "closed": 3,
        "responded": 3,
        "on_time": 2,
        "on_time_rate": 0.6667,
        "median_days": 35,
        "p95_days": 50,
    }
    assert data["by_regime"]["CCPA"]["median_days"] == 26.5 and data["by_regime"]["CCPA"]["on_time"] == 2
    assert {k: (v["received"], v["on_time"]) for k, v in data["by_channel"].items()} == {
        "api": (2, 1),
        "web_form": (1, 1),
        "email": (1, 1),
        "post": (1, 1),
    }
    assert data["extensions"] == {
        "count": 1,
        "cases": [
            {
                "reference": refs["extended"],
                "request_type": "portability",
                "regime": "CCPA",
                "notified": (day0 + timedelta(days=5)).isoformat(),
                "reason": "records in 14 systems, two archived",
            }
        ],
    }
    assert data["refusals"] == {"count": 1, "by_ground": {"unverified": 1}}
    assert data["pauses"] == {"count": 1, "cases": 1, "days": 10, "by_awaited": {"clarification": 1}}
    assert data["ccpa_7102"]["know"] == {
        "received": 2,
        "complied_in_whole_or_in_part": 1,
        "denied": 1,
        "median_days": 26.5,
        "mean_days": 26.5,
    }
    assert all(m["received"] == 0 for k, m in data["ccpa_7102"].items() if k != "know")

    # The first three weeks: all received, two answered (both on time), the extension and the pause
    early = report_for(register, Period(day0, day0 + timedelta(days=20), TZ)).to_json()
    assert (early["received"], early["closed"], early["on_time_rate"], early["median_days"]) == (5, 2, 1.0, 3)
    assert early["extensions"]["count"] == 1 and early["pauses"]["days"] == 10
    assert (
        early["ccpa_7102"]["know"]["denied"] == 1
        and early["ccpa_7102"]["know"]["complied_in_whole_or_in_part"] == 0
    )
    # Days 30 to 60: nothing received, three answered, one late
    late = report_for(register, Period(day0 + timedelta(days=30), day0 + timedelta(days=60), TZ)).to_json()
    assert (late["received"], late["closed"], late["on_time"], late["p95_days"]) == (0, 3, 2, 50)
    assert late["extensions"]["count"] == 0 and late["pauses"]["count"] == 0

    # The CLI prints the same figures, as JSON and as CSV.
    env = cli_env(settings, DSAR_TIMEZONE=TZ)
    args = ("report", "--from", period.start.isoformat(), "--to", period.end.isoformat())
    run = await dsar(*args, env=env)
    assert run.code == 0, run.err
    assert run.json() == data
    run = await dsar(*args, "--format", "csv", env=env)
    assert run.code == 0, run.err
    table = list(csv.reader(io.StringIO(run.out)))
    assert table == [["section", "group", "measure", "value"], *map(list, report.rows())]
    assert ["all", "", "on_time_rate", "0.8"] in table and ["refusals", "unverified", "refused", "1"] in table


# --------------------------------------------------------------------------------------------
# The CLI's errors: one line, exit codes as the other commands


@pytest.fixture
def cli_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "var", database_url=f"sqlite:///{tmp_path / 'register.db'}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-13-01", "--to", "2026-12-31"), "from: give a date as YYYY-MM-DD"),
        (("--from", "2026-02-01", "--to", "2026-01-31"), "the period ends (2026-01-31) before it starts"),
    ],
)
async def test_cli_refuses_a_period_it_cannot_use(
    cli_settings: Settings, args: tuple[str, ...], message: str
) -> None:
    run = await dsar("report", *args, env=cli_env(cli_settings))
    assert run.code == 2 and run.out == ""
    assert_one_line_error(run)
    assert message in run.err


async def test_cli_without_its_register(cli_settings: Settings) -> None:
    nothing = "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2"
    run = await dsar(
        "report",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-31",
        env=cli_env(cli_settings, DSAR_DATABASE_URL=nothing),
    )
    assert run.code == 1 and run.out == ""
    assert_one_line_error(run)
    assert "cannot read the case register (OperationalError)" in run.err and "127.0.0.1" not in run.err
    bad_zone = await dsar(
        "report",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-31",
        env=cli_env(cli_settings, DSAR_TIMEZONE="Mars/Olympus_Mons"),
    )
    assert bad_zone.code == 2 and "unknown time zone" in bad_zone.err
    assert_one_line_error(bad_zone)


async def test_cli_on_an_empty_register(cli_settings: Settings) -> None:
    run = await dsar("report", "--from", "2026-01-01", "--to", "2026-01-31", env=cli_env(cli_settings))
    assert run.code == 0, run.err
    data: dict[str, Any] = run.json()
    assert (data["received"], data["closed"], data["on_time_rate"], data["median_days"]) == (0, 0, None, None)
