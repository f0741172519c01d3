"""Named working-day calendars (LEGAL.md §2.1, holiday tables in §2.2 and §2.4)."""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import holidays
import pytest

from dsar import calendars
from dsar.calendars import EU_MEMBER_STATES, calendar, calendar_names


def d(text: str) -> date:
    return date.fromisoformat(text)


# ---------------------------------------------------------------- UK bank holidays


def test_boxing_day_2026_substitute_is_monday_28th() -> None:
    eaw = calendar("GB-EAW")
    assert not eaw.is_working_day(d("2026-12-25"))  # Fri, Christmas
    assert not eaw.is_working_day(d("2026-12-26"))  # Sat, Boxing Day itself
    assert not eaw.is_working_day(d("2026-12-28"))  # Mon, Boxing Day (substitute)
    assert eaw.is_working_day(d("2026-12-29"))
    assert eaw.next_working_day_on_or_after(d("2026-12-25")) == d("2026-12-29")
    assert eaw.why_not_working(d("2026-12-28")) == "Boxing Day (observed)"


def test_christmas_2027_two_substitute_days() -> None:
    eaw = calendar("GB-EAW")
    assert not eaw.is_working_day(d("2027-12-27"))
    assert not eaw.is_working_day(d("2027-12-28"))
    assert eaw.next_working_day_on_or_after(d("2027-12-25")) == d("2027-12-29")


def test_new_year_2028_substitute() -> None:
    assert calendar("GB-EAW").next_working_day_on_or_after(d("2028-01-01")) == d("2028-01-04")


def test_weekend_holiday_is_only_non_working_because_of_the_weekend() -> None:
    """python-holidays lists both 26 Dec 2026 (Sat) and its substitute; only the weekday counts."""
    eaw = calendar("GB-EAW")
    assert d("2026-12-26") in holidays.country_holidays("GB", subdiv="ENG", years=2026)
    assert eaw.why_not_working(d("2026-12-26")) == "Saturday"


def test_scotland_st_andrews_day_and_differences_from_england() -> None:
    sct, eaw = calendar("GB-SCT"), calendar("GB-EAW")
    assert not sct.is_working_day(d("2026-11-30"))  # Mon, St Andrew's Day
    assert eaw.is_working_day(d("2026-11-30"))
    assert not sct.is_working_day(d("2026-01-02"))  # 2 January
    assert eaw.is_working_day(d("2026-01-02"))
    assert sct.is_working_day(d("2026-04-06"))  # no Easter Monday in Scotland
    assert not eaw.is_working_day(d("2026-04-06"))
    assert not sct.is_working_day(d("2026-08-03"))  # first Monday in August
    assert sct.is_working_day(d("2026-08-31"))


def test_northern_ireland_st_patricks_and_boyne() -> None:
    nir = calendar("GB-NIR")
    assert not nir.is_working_day(d("2026-03-17"))
    assert not nir.is_working_day(d("2025-07-14"))  # Battle of the Boyne (observed), 12 Jul is Sat
    assert calendar("GB-EAW").is_working_day(d("2026-03-17"))


def test_ad_hoc_bank_holidays_in_the_package_data() -> None:
    eaw = calendar("GB-EAW")
    assert not eaw.is_working_day(d("2022-09-19"))  # state funeral
    assert not eaw.is_working_day(d("2023-05-08"))  # coronation


# ---------------------------------------------------------------- US, EU, others


def test_us_federal_independence_day_2026_observed_friday() -> None:
    fed = calendar("US-federal")
    assert not fed.is_working_day(d("2026-07-03"))
    assert fed.next_working_day_on_or_after(d("2026-07-03")) == d("2026-07-06")


def test_us_federal_2027_observed_days_including_new_year_2028() -> None:
    fed = calendar("US-federal")
    for text in ("2027-06-18", "2027-07-05", "2027-12-24", "2027-12-31"):
        assert not fed.is_working_day(d(text)), text


def test_us_ca_has_state_holidays_federal_does_not() -> None:
    assert not calendar("US-CA").is_working_day(d("2026-03-31"))  # Cesar Chavez Day
    assert calendar("US-federal").is_working_day(d("2026-03-31"))


def test_member_state_and_other_country_calendars() -> None:
    assert not calendar("DE").is_working_day(d("2025-10-03"))  # German Unity Day
    assert not calendar("DE").is_working_day(d("2025-05-29"))  # Ascension Day
    assert not calendar("IE").is_working_day(d("2026-03-17"))
    assert not calendar("FR").is_working_day(d("2025-07-14"))
    assert not calendar("BR").is_working_day(d("2026-04-21"))  # Tiradentes
    assert not calendar("CA").is_working_day(d("2026-07-01"))  # Canada Day


def test_every_eu_member_state_has_a_calendar() -> None:
    for code in EU_MEMBER_STATES:
        assert calendar(code).name == code
        assert not calendar(code).is_working_day(d("2026-01-01")), code


def test_names_are_case_insensitive_and_el_is_greece() -> None:
    assert calendar("gb-eaw") is calendar("GB-EAW")
    assert calendar("us-federal").name == "US-federal"
    assert calendar("EL").name == "GR"


@pytest.mark.parametrize("name", ["GB-EAW", "GB-SCT", "GB-NIR", "US-federal", "US-CA", "DE", "BR", "CA"])
def test_dates_match_python_holidays(name: str) -> None:
    """Guards the translation-free subclass (private API of the pinned package)."""
    country, subdiv = calendars._HOLIDAY_CALENDARS[name]
    reference = holidays.country_holidays(country, subdiv=subdiv, years=range(2020, 2031))
    cal = calendar(name)
    day = d("2020-01-01")
    while day.year < 2031:
        assert (day in reference) == (cal.holiday_name(day) is not None), day
        day += timedelta(days=1)


def test_any_year_is_loaded_on_demand() -> None:
    eaw = calendar("GB-EAW")
    assert not eaw.is_working_day(d("1990-12-25"))
    assert not eaw.is_working_day(d("2090-12-25"))
    assert eaw.is_working_day(d("2090-12-27"))  # a Wednesday


def test_concurrent_lookups_agree_with_serial_ones() -> None:
    """Workflows on several worker threads may share one calendar (module passed through)."""
    source = calendars._HolidaySource("GB", "ENG")
    days = [d("2100-01-01") + timedelta(days=i) for i in range(0, 3650, 7)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(source.get, days))
    serial_source = calendars._HolidaySource("GB", "ENG")
    assert parallel == [serial_source.get(day) for day in days]


# ---------------------------------------------------------------- plain calendars


def test_weekdays_and_weekends_only_ignore_holidays() -> None:
    for name in ("weekdays", "weekends-only"):
        cal = calendar(name)
        assert cal.is_working_day(d("2025-12-25"))  # a Thursday
        assert not cal.is_working_day(d("2025-12-27"))  # Saturday
        assert not cal.is_working_day(d("2025-12-28"))  # Sunday
        assert cal.next_working_day_on_or_after(d("2025-12-27")) == d("2025-12-29")


def test_none_makes_every_day_a_working_day() -> None:
    none = calendar("none")
    saturday = d("2025-03-01")
    assert none.is_working_day(saturday)
    assert none.next_working_day_on_or_after(saturday) == saturday
    assert none.add_business_days(saturday, 10) == d("2025-03-11")


def test_add_business_days_does_not_count_the_day_of_receipt() -> None:
    weekdays = calendar("weekdays")
    assert weekdays.add_business_days(d("2025-03-03"), 10) == d("2025-03-17")  # CA-01
    assert weekdays.add_business_days(d("2025-03-08"), 10) == d("2025-03-21")  # Saturday, CA-02
    assert weekdays.add_business_days(d("2025-03-03"), 1) == d("2025-03-04")
    assert weekdays.add_business_days(d("2025-03-07"), 1) == d("2025-03-10")  # Fri -> Mon
    assert weekdays.add_business_days(d("2025-03-08"), 0) == d("2025-03-08")
    with pytest.raises(ValueError, match="negative"):
        weekdays.add_business_days(d("2025-03-03"), -1)


def test_add_business_days_skips_holidays() -> None:
    assert calendar("US-federal").add_business_days(d("2025-11-20"), 10) == d("2025-12-05")  # CA-04


# ---------------------------------------------------------------- overrides and errors


def test_extra_holiday_makes_a_day_non_working_without_touching_the_base() -> None:
    mourning = d("2025-01-09")  # national day of mourning for President Carter
    assert calendar("US-federal").is_working_day(mourning)
    updated = calendar("US-federal", extra_holidays=[mourning])
    assert not updated.is_working_day(mourning)
    assert updated.why_not_working(mourning) == "ad hoc holiday"
    assert calendar("US-federal").is_working_day(mourning)
    assert updated is calendar("US-federal", extra_holidays=[mourning])  # cached too


def test_removed_holiday_becomes_a_working_day_but_weekends_stay() -> None:
    updated = calendar("GB-EAW", removed=[d("2026-12-28"), d("2026-12-26")])
    assert updated.is_working_day(d("2026-12-28"))
    assert not updated.is_working_day(d("2026-12-26"))  # still a Saturday
    assert not calendar("GB-EAW").is_working_day(d("2026-12-28"))


def test_unknown_calendar_lists_the_names() -> None:
    with pytest.raises(ValueError, match=r"^unknown calendar 'XX': use GB-EAW, GB-SCT, GB-NIR, AT"):
        calendar("XX")
    assert "weekends-only" in calendar_names()
    assert "US-CA" in calendar_names()


def test_calendars_module_reads_no_clock() -> None:
    """Workflow-safe: no clock reads, no logging, no I/O modules."""
    tree = ast.parse(Path(calendars.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    allowed = {"__future__", "functools", "importlib", "threading", "collections", "datetime", "types"}
    assert imported <= allowed | {"holidays"}
    assert "today" not in Path(calendars.__file__).read_text()
