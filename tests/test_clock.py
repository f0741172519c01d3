"""The statutory clock against the worked vectors (LEGAL.md §3) and the rules of §2."""

from __future__ import annotations

import ast
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from dsar import clock as clock_module
from dsar.clock import (
    ClockPolicy,
    DeadlineKind,
    DeadlineNotApplicable,
    StatutoryClock,
    add_months,
    primary_kind,
)
from dsar.deadline_cli import parse_policy
from dsar.model import CasePolicy, ClockEvent, ClockEventType, Regime, RequestType

VECTORS_PATH = Path(__file__).parent / "data" / "deadlines.jsonl"
VECTORS: list[dict[str, Any]] = [json.loads(line) for line in VECTORS_PATH.read_text().splitlines() if line]


def d(text: str) -> date:
    return date.fromisoformat(text)


def ev(event_type: str, on: str) -> dict[str, str]:
    return {"type": event_type, "date": on}


def uk(
    received: str, events: list[dict[str, str]] | None = None, request_type: str = "access", **policy: Any
) -> StatutoryClock:
    return StatutoryClock("UK_GDPR", request_type, received, events or [], ClockPolicy("GB-EAW", **policy))


def clock_for(vector: dict[str, Any]) -> StatutoryClock:
    options = parse_policy(vector.get("policy"))
    options.setdefault("small_agent", vector.get("small_agent", False))
    policy = ClockPolicy(calendar=vector["calendar"], **options)
    return StatutoryClock(
        vector["regime"], vector["request_type"], vector["received"], vector["events"], policy
    )


# ---------------------------------------------------------------- the vectors


def test_vector_file_is_complete() -> None:
    assert len(VECTORS) == 46
    assert len({v["id"] for v in VECTORS}) == 46


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector(vector: dict[str, Any]) -> None:
    clock = clock_for(vector)
    assert clock.due(vector["kind"]).isoformat() == vector["due"], clock.explain(vector["kind"])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector_with_model_events(vector: dict[str, Any]) -> None:
    """The workflow passes ClockEvent values, not dicts: same answer."""
    events = [ClockEvent(ClockEventType(e["type"]), e["date"]) for e in vector["events"]]
    clock = clock_for({**vector, "events": events})
    assert clock.due(vector["kind"]).isoformat() == vector["due"]


# ---------------------------------------------------------------- month arithmetic


def test_add_months_clamps_to_the_month_end() -> None:
    assert add_months(d("2025-01-31"), 1) == d("2025-02-28")
    assert add_months(d("2024-01-31"), 1) == d("2024-02-29")
    assert add_months(d("2025-05-31"), 1) == d("2025-06-30")
    assert add_months(d("2025-12-15"), 1) == d("2026-01-15")
    assert add_months(d("2025-03-31"), -1) == d("2025-02-28")


def test_add_months_never_chains() -> None:
    # 31 Jan + 3 months = 30 Apr, not (31 Jan + 1) + 2 = 28 Apr.
    assert add_months(d("2025-01-31"), 3) == d("2025-04-30")
    assert add_months(add_months(d("2025-01-31"), 1), 2) == d("2025-04-28")


# ---------------------------------------------------------------- names and kinds


def test_request_type_aliases_and_unknowns() -> None:
    policy = ClockPolicy("none")
    assert StatutoryClock("CCPA", "deletion", "2025-01-01", [], policy).request_type is RequestType.ERASURE
    assert (
        StatutoryClock("CCPA", "correction", "2025-01-01", [], policy).request_type
        is RequestType.RECTIFICATION
    )
    limit = StatutoryClock("CCPA", "limit_sensitive_pi", "2025-01-01", [], policy)
    assert limit.request_type is RequestType.LIMIT_SENSITIVE
    with pytest.raises(ValueError, match="unknown request type 'teleport'"):
        StatutoryClock("CCPA", "teleport", "2025-01-01", [], policy)
    with pytest.raises(ValueError, match="unknown regime 'GDPR'"):
        StatutoryClock("GDPR", "access", "2025-01-01", [], policy)


def test_primary_kind() -> None:
    assert primary_kind(Regime.CCPA, RequestType.OPT_OUT_SALE_SHARING) is DeadlineKind.OPT_OUT_DUE
    assert primary_kind("CCPA", "limit_sensitive_pi") is DeadlineKind.LIMIT_DUE
    assert primary_kind("CCPA", "access") is DeadlineKind.RESPONSE_DUE
    assert primary_kind("VCDPA", "opt_out_sale_sharing") is DeadlineKind.RESPONSE_DUE
    assert primary_kind("UK_GDPR", "opt_out_sale_sharing") is DeadlineKind.RESPONSE_DUE


def test_ccpa_opt_out_default_due_is_fifteen_business_days() -> None:
    clock = StatutoryClock("CCPA", "opt_out_sale_sharing", "2025-05-23", [], ClockPolicy("weekdays"))
    assert clock.due() == clock.due(DeadlineKind.OPT_OUT_DUE) == d("2025-06-13")  # CA-14
    assert clock.due(DeadlineKind.RESPONSE_DUE) == d("2025-06-13")
    with pytest.raises(DeadlineNotApplicable, match="opt_out_sale_sharing"):
        clock.due(DeadlineKind.LIMIT_DUE)
    with pytest.raises(DeadlineNotApplicable, match="cannot be extended"):
        clock.extension_notice_deadline()


def test_us_state_opt_out_is_answered_in_45_days() -> None:
    clock = StatutoryClock("VCDPA", "opt_out_sale_sharing", "2025-02-10", [], ClockPolicy("none"))
    assert clock.due() == d("2025-03-27")
    assert clock.due(DeadlineKind.OPT_OUT_DUE) == d("2025-03-27")


def test_uk_opt_out_is_a_response_within_a_month() -> None:
    clock = uk("2025-03-03", request_type="opt_out_sale_sharing")
    assert clock.due() == d("2025-04-03")
    with pytest.raises(DeadlineNotApplicable, match="response_due"):
        clock.due(DeadlineKind.OPT_OUT_DUE)


@pytest.mark.parametrize(
    ("regime", "request_type", "kind", "reason"),
    [
        ("UK_GDPR", "access", DeadlineKind.ACKNOWLEDGEMENT_DUE, "good practice"),
        ("EU_GDPR", "access", DeadlineKind.APPEAL_RESPONSE_DUE, "no appeal"),
        ("PIPEDA", "opt_out_sale_sharing", DeadlineKind.OPT_OUT_DUE, "no opt-out deadline"),
        ("UCPA", "access", DeadlineKind.APPEAL_RESPONSE_DUE, "no appeal"),
        ("LGPD", "access", DeadlineKind.EXTENSION_NOTICE_DUE, "no extension"),
        ("CCPA", "opt_out_sale_sharing", DeadlineKind.ACKNOWLEDGEMENT_DUE, "7021"),
        ("CCPA", "access", DeadlineKind.APPEAL_RESPONSE_DUE, "no appeal"),
        ("VCDPA", "access", DeadlineKind.ACKNOWLEDGEMENT_DUE, "CCPA"),
    ],
)
def test_not_applicable_says_why(regime: str, request_type: str, kind: DeadlineKind, reason: str) -> None:
    clock = StatutoryClock(regime, request_type, "2025-03-03", [], ClockPolicy("none"))
    with pytest.raises(DeadlineNotApplicable, match=reason) as info:
        clock.due(kind)
    assert isinstance(info.value, ValueError)
    assert kind.value in str(info.value) and regime in str(info.value)


def test_applicable_kinds() -> None:
    ccpa = StatutoryClock("CCPA", "access", "2025-03-03", [], ClockPolicy("weekdays"))
    assert ccpa.applicable_kinds() == [
        DeadlineKind.RESPONSE_DUE,
        DeadlineKind.ACKNOWLEDGEMENT_DUE,
        DeadlineKind.EXTENSION_NOTICE_DUE,
    ]
    assert StatutoryClock("LGPD", "access", "2025-03-03", [], ClockPolicy("none")).applicable_kinds() == [
        DeadlineKind.RESPONSE_DUE
    ]


def test_appeals() -> None:
    for regime, days in (("VCDPA", 60), ("CPA", 45), ("CTDPA", 60)):
        clock = StatutoryClock(regime, "access", "2025-08-01", [], ClockPolicy("none"))
        assert clock.due(DeadlineKind.APPEAL_RESPONSE_DUE) == d("2025-08-01") + timedelta(days=days)


def test_lgpd_small_agent_doubles_the_period() -> None:
    assert StatutoryClock("LGPD", "access", "2025-03-10", [], ClockPolicy("none")).due() == d("2025-03-25")
    small = ClockPolicy("none", small_agent=True)
    assert StatutoryClock("LGPD", "access", "2025-03-10", [], small).due() == d("2025-04-09")


# ---------------------------------------------------------------- UK pauses and restarts


def test_open_clarification_gives_a_provisional_date() -> None:
    asked = [ev("clarification_requested", "2026-03-10")]
    clock = uk("2026-03-01", asked)
    assert clock.is_waiting()
    # Closed on the day it opened: 1 paused day -> Thu 2 Apr 2026.
    assert clock.due() == d("2026-04-02")
    # Closed on 12 Mar: 3 days -> Sat 4 Apr -> Easter -> Tue 7 Apr (as UK-23).
    assert clock.due(as_of=d("2026-03-12")) == d("2026-04-07")
    assert clock.due(as_of=d("2026-03-01")) == d("2026-04-02")  # never before the ask
    answered = uk("2026-03-01", [*asked, ev("clarification_received", "2026-03-12")])
    assert not answered.is_waiting()
    assert answered.due() == answered.due(as_of=d("2026-06-01")) == d("2026-04-07")


def test_open_identity_request_restarts_provisionally() -> None:
    clock = uk("2025-06-02", [ev("identity_requested", "2025-06-03")])
    assert clock.is_waiting()
    assert clock.due() == d("2025-07-03")
    assert clock.due(as_of=d("2025-06-10")) == d("2025-07-10")  # as UK-19 once it arrives
    assert any("provisional" in step for step in clock.explain(as_of=d("2025-06-10")))


def test_waiting_for_fee_and_authority() -> None:
    assert uk("2025-09-15", [ev("fee_requested", "2025-09-16")]).is_waiting()
    assert uk("2025-10-20", [ev("authority_requested", "2025-10-21")]).is_waiting()
    assert not uk(
        "2025-09-15", [ev("fee_requested", "2025-09-16"), ev("fee_paid", "2025-09-29")]
    ).is_waiting()


def test_identity_received_the_day_it_was_asked_closes_the_exchange() -> None:
    clock = uk("2025-06-02", [ev("identity_received", "2025-06-03"), ev("identity_requested", "2025-06-03")])
    assert not clock.is_waiting()
    assert clock.due() == d("2025-07-03")


def test_latest_restart_wins() -> None:
    events = [
        ev("identity_requested", "2025-06-03"),
        ev("identity_received", "2025-06-10"),
        ev("fee_requested", "2025-06-11"),
        ev("fee_paid", "2025-06-20"),
    ]
    assert uk("2025-06-02", events).due() == d("2025-07-21")  # 20 Jul is a Sunday


def test_exclusive_pause_count_is_one_day_fewer() -> None:
    events = [ev("clarification_requested", "2025-02-03"), ev("clarification_received", "2025-02-07")]
    assert uk("2025-01-31", events).due() == d("2025-03-05")  # UK-25, inclusive
    assert uk("2025-01-31", events, uk_pause_count="exclusive").due() == d("2025-03-04")


def test_clarification_pauses_only_access_requests() -> None:
    events = [ev("clarification_requested", "2025-02-03"), ev("clarification_received", "2025-02-07")]
    erasure = uk("2025-01-31", events, request_type="erasure")
    assert erasure.due() == d("2025-02-28")
    assert not uk("2025-01-31", events[:1], request_type="erasure").is_waiting()


def test_pause_before_the_restart_is_not_counted() -> None:
    """Days before the relevant time are not part of the period, so cannot be excluded from it."""
    events = [
        ev("identity_requested", "2025-10-02"),
        ev("clarification_requested", "2025-10-02"),
        ev("clarification_received", "2025-10-03"),
        ev("identity_received", "2025-10-06"),
    ]
    assert uk("2025-10-01", events).due() == d("2025-11-06")


def test_pause_asked_after_the_deadline_does_not_revive_it() -> None:
    events = [ev("clarification_requested", "2025-04-10"), ev("clarification_received", "2025-04-14")]
    assert uk("2025-03-03", events).due() == d("2025-04-03")


def test_two_clarification_rounds_add_up() -> None:
    events = [
        ev("clarification_requested", "2025-03-05"),
        ev("clarification_received", "2025-03-06"),  # 2 days
        ev("clarification_requested", "2025-03-10"),
        ev("clarification_received", "2025-03-12"),  # 3 days
    ]
    assert uk("2025-03-03", events).due() == d("2025-04-08")  # 3 Apr + 5


# ---------------------------------------------------------------- extensions


def test_uk_extension_with_pause_is_three_months_plus_paused_days() -> None:
    events = [
        ev("clarification_requested", "2026-02-05"),
        ev("clarification_received", "2026-02-09"),
        ev("extension_notified", "2026-03-09"),  # the last day (UK-31)
    ]
    clock = uk("2026-02-02", events)
    assert clock.is_extended()
    assert clock.due() == d("2026-05-07")  # 2 May + 5 = Thu 7 May 2026


def test_uk_extension_validity_boundary() -> None:
    clock = uk("2026-02-02")
    deadline = clock.extension_notice_deadline()
    assert deadline == d("2026-03-02")
    assert clock.extension_valid(deadline)
    assert not clock.extension_valid(deadline + timedelta(days=1))
    late = uk("2026-02-02", [ev("extension_notified", "2026-03-03")])
    assert not late.is_extended()
    assert late.due() == d("2026-03-02")


def test_extension_notice_during_an_open_clarification_is_in_time() -> None:
    """The clock is stopped, so the first month has not ended yet."""
    events = [ev("clarification_requested", "2026-02-25"), ev("extension_notified", "2026-03-10")]
    clock = uk("2026-02-02", events)
    assert clock.extension_valid(d("2026-03-10"))
    assert clock.is_extended()


def test_ccpa_extension_validity_and_late_notice() -> None:
    clock = StatutoryClock("CCPA", "deletion", "2025-06-01", [], ClockPolicy("none"))
    assert clock.extension_notice_deadline() == d("2025-07-16")
    assert clock.extension_valid(d("2025-07-16"))
    assert not clock.extension_valid(d("2025-07-17"))
    late = StatutoryClock(
        "CCPA", "deletion", "2025-06-01", [ev("extension_notified", "2025-07-20")], ClockPolicy("none")
    )
    assert late.due() == d("2025-07-16")  # CA-11
    assert any("ineffective" in step for step in late.explain())
    on_time = StatutoryClock(
        "CCPA", "deletion", "2025-06-01", [ev("extension_notified", "2025-07-16")], ClockPolicy("none")
    )
    assert on_time.due() == d("2025-08-30")


def test_pipeda_and_us_state_extensions() -> None:
    pipeda = StatutoryClock(
        "PIPEDA", "access", "2025-01-15", [ev("extension_notified", "2025-02-01")], ClockPolicy("none")
    )
    assert pipeda.due() == d("2025-03-16")
    assert pipeda.extension_notice_deadline() == d("2025-02-14")
    ctdpa = StatutoryClock(
        "CTDPA", "access", "2025-01-15", [ev("extension_notified", "2025-03-01")], ClockPolicy("none")
    )
    assert ctdpa.due() == d("2025-04-15")


def test_lgpd_has_no_extension() -> None:
    clock = StatutoryClock(
        "LGPD", "access", "2025-03-10", [ev("extension_notified", "2025-03-12")], ClockPolicy("none")
    )
    assert clock.due() == d("2025-03-25")
    assert not clock.is_extended()
    with pytest.raises(DeadlineNotApplicable):
        clock.extension_valid(d("2025-03-12"))


def test_eu_extension_notice_within_one_month() -> None:
    clock = StatutoryClock("EU_GDPR", "access", "2025-09-03", [], ClockPolicy("DE"))
    assert clock.extension_notice_deadline() == d("2025-10-06")  # 3 Oct is German Unity Day


# ---------------------------------------------------------------- identity outside the UK


def test_ccpa_identity_never_pauses_or_restarts() -> None:
    events = [ev("identity_requested", "2025-01-20"), ev("identity_received", "2025-02-10")]
    clock = StatutoryClock("CCPA", "access", "2025-01-15", events, ClockPolicy("none"))
    assert clock.due() == d("2025-03-01")
    assert not StatutoryClock("CCPA", "access", "2025-01-15", events[:1], ClockPolicy("none")).is_waiting()


def test_eu_identity_policies() -> None:
    events = [ev("identity_requested", "2025-03-05"), ev("identity_received", "2025-03-12")]

    def eu(mode: str, log: list[dict[str, str]] = events) -> StatutoryClock:
        return StatutoryClock(
            "EU_GDPR", "access", "2025-03-03", log, ClockPolicy("DE", eu_identity_pause=mode)
        )

    assert eu("none").due() == d("2025-04-03")  # no statutory pause (EU-05)
    assert eu("restart").due() == d("2025-04-14")  # 12 Apr is a Saturday
    assert eu("suspend").due() == d("2025-04-10")  # 3 Apr + 7 suspended days
    assert not eu("none", events[:1]).is_waiting()
    assert eu("restart", events[:1]).is_waiting()
    assert eu("suspend", events[:1]).is_waiting()


def test_eu_has_no_clarification_pause() -> None:
    events = [ev("clarification_requested", "2025-03-05"), ev("clarification_received", "2025-03-12")]
    clock = StatutoryClock("EU_GDPR", "access", "2025-03-03", events[:1], ClockPolicy("DE"))
    assert clock.due() == d("2025-04-03")
    assert not clock.is_waiting()


# ---------------------------------------------------------------- roll-forward policy


def test_roll_forward_can_be_forced_or_switched_off() -> None:
    forced = ClockPolicy("weekdays", roll_forward="next_working_day")
    assert StatutoryClock("CCPA", "access", "2025-01-15", [], ClockPolicy("weekdays")).due() == d(
        "2025-03-01"
    )
    assert StatutoryClock("CCPA", "access", "2025-01-15", [], forced).due() == d("2025-03-03")
    assert uk("2027-01-31").due() == d("2027-03-01")  # UK-04
    assert uk("2027-01-31", roll_forward="none").due() == d("2027-02-28")


def test_ad_hoc_holiday_in_the_policy_moves_the_deadline() -> None:
    assert uk("2025-03-03").due() == d("2025-04-03")
    assert uk("2025-03-03", extra_holidays=("2025-04-03",)).due() == d("2025-04-04")


# ---------------------------------------------------------------- policy and inputs


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="uk_pause_count"):
        ClockPolicy("GB-EAW", uk_pause_count="sometimes")
    with pytest.raises(ValueError, match="eu_identity_pause"):
        ClockPolicy("DE", eu_identity_pause="maybe")
    with pytest.raises(ValueError, match="roll_forward"):
        ClockPolicy("DE", roll_forward="backwards")
    with pytest.raises(ValueError, match="unknown calendar"):
        ClockPolicy("Narnia")
    with pytest.raises(ValueError, match="extra_holidays"):
        ClockPolicy("GB-EAW", extra_holidays=("tomorrow",))
    assert ClockPolicy("GB-EAW", extra_holidays=["2025-01-09"]).extra_holidays == ("2025-01-09",)  # type: ignore[arg-type]


def test_from_case_policy() -> None:
    case = CasePolicy(
        calendar="GB-SCT", uk_pause_count="exclusive", eu_identity_pause="restart", small_agent=True
    )
    assert ClockPolicy.from_case_policy(case) == ClockPolicy(
        "GB-SCT", uk_pause_count="exclusive", eu_identity_pause="restart", small_agent=True
    )


def test_bad_events_are_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="unknown event type 'magic'"):
        uk("2025-03-03", [ev("magic", "2025-03-04")])
    with pytest.raises(ValueError, match=r"events\[0\].date: invalid date"):
        uk("2025-03-03", [ev("identity_requested", "04/03/2025")])
    with pytest.raises(ValueError, match="needs 'type' and 'date'"):
        uk("2025-03-03", [{"type": "identity_requested"}])
    with pytest.raises(ValueError, match="received: invalid date"):
        uk("2025-02-30")


def test_explain_ends_with_the_due_date() -> None:
    steps = uk("2024-11-25").explain()
    assert steps[0] == "clock starts Mon 25 Nov 2024 (received)"
    assert steps[-1].endswith("-> Fri 27 Dec 2024")


# ---------------------------------------------------------------- properties


def _sample_dates() -> list[date]:
    return [d("2024-01-01") + timedelta(days=i) for i in range(0, 5 * 366, 5)]


REGIME_CALENDARS = [
    ("UK_GDPR", "GB-EAW"),
    ("UK_GDPR", "GB-SCT"),
    ("EU_GDPR", "DE"),
    ("EU_GDPR", "IE"),
    ("CCPA", "US-federal"),
    ("VCDPA", "none"),
    ("LGPD", "BR"),
    ("PIPEDA", "CA"),
]


@pytest.mark.parametrize(("regime", "cal"), REGIME_CALENDARS)
def test_due_never_precedes_receipt_and_is_monotonic(regime: str, cal: str) -> None:
    previous: date | None = None
    policy = ClockPolicy(cal)
    for received in _sample_dates():
        clock = StatutoryClock(regime, "access", received, [], policy)
        due = clock.due()
        assert due > received
        if previous is not None:
            assert due >= previous, received
        previous = due
        for kind in clock.applicable_kinds():
            assert clock.due(kind) >= received


@pytest.mark.parametrize(("regime", "cal"), [("UK_GDPR", "GB-EAW"), ("UK_GDPR", "GB-NIR"), ("EU_GDPR", "FR")])
def test_rolled_deadlines_land_on_working_days(regime: str, cal: str) -> None:
    policy = ClockPolicy(cal)
    working = policy.working_calendar()
    for received in _sample_dates():
        for events in ([], [ev("extension_notified", received.isoformat())]):
            clock = StatutoryClock(regime, "access", received, events, policy)
            assert working.is_working_day(clock.due()), received
            assert working.is_working_day(clock.extension_notice_deadline()), received
            assert clock.extension_notice_deadline() <= clock.due()


def test_ccpa_business_day_deadlines_land_on_business_days() -> None:
    for cal in ("weekdays", "US-federal", "US-CA"):
        working = ClockPolicy(cal).working_calendar()
        for received in _sample_dates():
            opt_out = StatutoryClock("CCPA", "opt_out_sale_sharing", received, [], ClockPolicy(cal)).due()
            ack = StatutoryClock("CCPA", "access", received, [], ClockPolicy(cal)).due(
                DeadlineKind.ACKNOWLEDGEMENT_DUE
            )
            assert working.is_working_day(opt_out) and working.is_working_day(ack)
            assert received + timedelta(days=12) <= ack < opt_out  # 10 weekdays span >= 12 days


def test_pauses_only_ever_move_the_uk_deadline_later() -> None:
    for received in _sample_dates()[:120]:
        plain = uk(received.isoformat()).due()
        ask = received + timedelta(days=3)
        events = [
            ev("clarification_requested", ask.isoformat()),
            ev("clarification_received", (ask + timedelta(days=4)).isoformat()),
        ]
        paused = uk(received.isoformat(), events)
        assert paused.due() >= plain
        assert paused.due() >= uk(received.isoformat(), events, uk_pause_count="exclusive").due()


def test_clock_module_is_workflow_safe() -> None:
    """Only stdlib + dsar.model + dsar.calendars; no logging, no clock reads (LEGAL.md §2.1)."""
    source = Path(clock_module.__file__).read_text()
    tree = ast.parse(source)
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    stdlib = {"__future__", "calendar", "re", "collections.abc", "dataclasses", "datetime", "enum", "typing"}
    assert imported <= stdlib | {"dsar.calendars", "dsar.model"}
    for forbidden in ("today(", "now(", "import logging", " open(", "time."):
        assert forbidden not in source
