"""Named working-day calendars for the statutory clock (LEGAL.md §2.1).

A deadline that lands on a non-working day rolls forward (ICO guidance; Reg 1182/71 Art 3(4)),
and some periods are counted in business days (11 CCR §7021(a), §7026(f)). Both need to know
which days are working days *where the act is to be done*, so each controller picks a named
calendar per regime.

Holiday data comes from the pinned ``holidays`` package (it ships all data; nothing is fetched)
and is computed lazily, one year at a time, so any date works. Governments add one-off holidays
(the 2022 state funeral, the 2023 coronation, the 9 Jan 2025 US day of mourning), so a calendar
takes ``extra_holidays`` / ``removed`` overrides: holiday data is updatable data, not code.

Pure and deterministic (no I/O, no clock reads, no imports after load), so a Temporal workflow
can use it inside the sandbox or passed through it.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from types import MappingProxyType

from holidays import HolidayBase

__all__ = ["EU_MEMBER_STATES", "Calendar", "calendar", "calendar_names"]

#: ISO 3166 codes of the EU member states (Reg 1182/71 Art 3(4): the public holidays of the
#: Member State where the act is to be done). Greece is ``GR`` in ISO, ``EL`` in EU usage.
EU_MEMBER_STATES: tuple[str, ...] = (
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
)  # fmt: skip

#: python-holidays entity per country code: (module in ``holidays.countries``, class).
_ENTITY_MODULES: dict[str, tuple[str, str]] = {
    "AT": ("austria", "Austria"), "BE": ("belgium", "Belgium"), "BG": ("bulgaria", "Bulgaria"),
    "CY": ("cyprus", "Cyprus"), "CZ": ("czechia", "Czechia"), "DE": ("germany", "Germany"),
    "DK": ("denmark", "Denmark"), "EE": ("estonia", "Estonia"), "ES": ("spain", "Spain"),
    "FI": ("finland", "Finland"), "FR": ("france", "France"), "GR": ("greece", "Greece"),
    "HR": ("croatia", "Croatia"), "HU": ("hungary", "Hungary"), "IE": ("ireland", "Ireland"),
    "IT": ("italy", "Italy"), "LT": ("lithuania", "Lithuania"), "LU": ("luxembourg", "Luxembourg"),
    "LV": ("latvia", "Latvia"), "MT": ("malta", "Malta"), "NL": ("netherlands", "Netherlands"),
    "PL": ("poland", "Poland"), "PT": ("portugal", "Portugal"), "RO": ("romania", "Romania"),
    "SE": ("sweden", "Sweden"), "SI": ("slovenia", "Slovenia"), "SK": ("slovakia", "Slovakia"),
    "GB": ("united_kingdom", "UnitedKingdom"), "US": ("united_states", "UnitedStates"),
    "BR": ("brazil", "Brazil"), "CA": ("canada", "Canada"),
}  # fmt: skip

#: Calendars backed by python-holidays: name -> (country, subdivision). The UK has three
#: bank-holiday calendars (LEGAL.md §2.2 open question 3); EU member states use their
#: national public holidays (Reg 1182/71 Art 3(4)).
_HOLIDAY_CALENDARS: dict[str, tuple[str, str | None]] = {
    "GB-EAW": ("GB", "ENG"),
    "GB-SCT": ("GB", "SCT"),
    "GB-NIR": ("GB", "NIR"),
    **{code: (code, None) for code in EU_MEMBER_STATES},
    "US-federal": ("US", None),  # 5 U.S.C. 6103
    "US-CA": ("US", "CA"),  # California state holidays (Gov. Code §6700)
    "BR": ("BR", None),
    "CA": ("CA", None),  # Canada (federal statutory holidays)
}

_ALIASES = {"el": "gr"}

_SATURDAY_SUNDAY = frozenset({5, 6})
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: Guard against a calendar with no working days at all (e.g. a mistaken override table).
_MAX_SCAN_DAYS = 3660


def _same_text(message: str) -> str:
    return message


def _untranslated(entity: type[HolidayBase]) -> type[HolidayBase]:
    """The entity without its translation catalogue.

    python-holidays reads its gettext locale files in every constructor; a Temporal workflow
    may not (the sandbox refuses ``gettext.translation``), and the clock needs dates, not
    localised names. So names stay in the package's source language and construction does no
    I/O. ``_init_translation`` is private API: the package is pinned (holidays==0.109) and a
    test checks the dates still match ``holidays.country_holidays``.
    """

    def _init_translation(self: HolidayBase) -> None:
        self.tr = _same_text

    return type(entity.__name__, (entity,), {"_init_translation": _init_translation})


#: Country modules are imported now, not on first use: python-holidays' registry imports
#: them lazily, and an import while a workflow runs goes through the sandbox's importer.
_ENTITIES: dict[str, type[HolidayBase]] = {
    code: _untranslated(getattr(importlib.import_module(f"holidays.countries.{module}"), cls))
    for code, (module, cls) in _ENTITY_MODULES.items()
}


class _HolidaySource:
    """One country's (or subdivision's) holidays, a year at a time, as immutable tables.

    The python-holidays object fills in a year on first look-up and keeps the year it is
    filling in as instance state, so filling is serialised with a lock: workflows on several
    worker threads may share this module when it is passed through the sandbox.
    """

    def __init__(self, country: str, subdiv: str | None) -> None:
        self._entity = _ENTITIES[country]
        self._subdiv = subdiv
        self._rules: HolidayBase | None = None
        self._lock = threading.Lock()
        self._years: dict[int, Mapping[date, str]] = {}

    def _year(self, year: int) -> Mapping[date, str]:
        table = self._years.get(year)
        if table is None:
            with self._lock:
                if self._rules is None:
                    self._rules = self._entity(subdiv=self._subdiv, years=(), expand=True)
                # expand=True fills in a whole year on first look-up; the years either side
                # too, in case a substitute day is generated with its neighbour's holidays.
                for neighbour in (year - 1, year, year + 1):
                    if date.min.year <= neighbour <= date.max.year:
                        self._rules.get(date(neighbour, 1, 1))
                found = {d: str(name) for d, name in self._rules.items() if d.year == year}
            table = MappingProxyType(found)
            self._years[year] = table  # one atomic store; a racing duplicate is identical
        return table

    def get(self, d: date) -> str | None:
        return self._year(d.year).get(d)


#: One source per named calendar; cheap until a year is first looked up.
_SOURCES: dict[str, _HolidaySource] = {
    name: _HolidaySource(country, subdiv) for name, (country, subdiv) in _HOLIDAY_CALENDARS.items()
}

_PLAIN_CALENDARS = ("weekdays", "weekends-only", "none")


def calendar_names() -> list[str]:
    """The names `calendar` accepts."""
    return [*_HOLIDAY_CALENDARS, *_PLAIN_CALENDARS]


class Calendar:
    """Which days are working days: Mon-Fri unless the calendar says otherwise, minus holidays.

    A weekend holiday and its weekday "(observed)" substitute are both keys in python-holidays;
    only the substitute matters because a weekend day is non-working anyway (e.g. Boxing Day
    2026 is Sat 26 Dec, the bank holiday is Mon 28 Dec).
    """

    def __init__(
        self,
        name: str,
        *,
        weekend: frozenset[int] = _SATURDAY_SUNDAY,
        holiday_data: _HolidaySource | None = None,
        extra_holidays: Iterable[date] = (),
        removed: Iterable[date] = (),
    ) -> None:
        self.name = name
        self._weekend = weekend
        self._holidays = holiday_data
        self.extra_holidays: frozenset[date] = frozenset(extra_holidays)
        self.removed: frozenset[date] = frozenset(removed)

    def __repr__(self) -> str:
        overrides = ""
        if self.extra_holidays or self.removed:
            overrides = f", +{len(self.extra_holidays)} -{len(self.removed)} overrides"
        return f"Calendar({self.name!r}{overrides})"

    def with_overrides(self, extra_holidays: Iterable[date] = (), removed: Iterable[date] = ()) -> Calendar:
        """The same calendar with ad hoc holidays added or removed (e.g. a state funeral)."""
        return Calendar(
            self.name,
            weekend=self._weekend,
            holiday_data=self._holidays,
            extra_holidays=self.extra_holidays | frozenset(extra_holidays),
            removed=self.removed | frozenset(removed),
        )

    def holiday_name(self, d: date) -> str | None:
        """The holiday's name on ``d`` (for explanations), or None."""
        if d in self.extra_holidays:
            return "ad hoc holiday"
        if d in self.removed or self._holidays is None:
            return None
        return self._holidays.get(d)

    def is_working_day(self, d: date) -> bool:
        """A weekday (per this calendar) that is not a holiday."""
        if d.weekday() in self._weekend:
            return False
        return self.holiday_name(d) is None

    def why_not_working(self, d: date) -> str:
        """Plain words for why ``d`` is not a working day ("" if it is one)."""
        if d.weekday() in self._weekend:
            return _WEEKDAY_NAMES[d.weekday()]  # not strftime: its output follows the locale
        return self.holiday_name(d) or ""

    def next_working_day_on_or_after(self, d: date) -> date:
        """``d`` itself if it is a working day, else the next one (ICO: "the deadline moves to
        the end of the next working day"; Reg 1182/71 Art 3(4))."""
        current = d
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_working_day(current):
                return current
            current += timedelta(days=1)
        raise ValueError(f"calendar {self.name!r} has no working day within 10 years after {d}")

    def add_business_days(self, d: date, n: int) -> date:
        """The ``n``-th working day after ``d``; the day of receipt is not counted even if it is
        a working day (11 CCR §7021(a) "10 business days after receiving"; CCP §12)."""
        if n < 0:
            raise ValueError(f"cannot add a negative number of business days ({n})")
        current = d
        for _ in range(n):
            current = self.next_working_day_on_or_after(current + timedelta(days=1))
        return current


def _canonical(name: str) -> str:
    """The calendar's registered spelling (names match case-insensitively; ``EL`` is Greece)."""
    if not isinstance(name, str):
        raise ValueError(f"unknown calendar {name!r}: use {', '.join(calendar_names())}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    for known in (*_HOLIDAY_CALENDARS, *_PLAIN_CALENDARS):
        if known.lower() == key:
            return known
    raise ValueError(f"unknown calendar {name!r}: use {', '.join(calendar_names())}")


def _base_calendar(name: str) -> Calendar:
    return _named_calendar(_canonical(name))


@functools.cache
def _named_calendar(canonical: str) -> Calendar:
    if canonical == "none":
        # Every day is a working day, so nothing ever rolls forward.
        return Calendar("none", weekend=frozenset())
    if canonical in ("weekdays", "weekends-only"):
        # CCPA default (LEGAL.md §2.4): Mon-Fri with no holidays, the earliest possible date.
        return Calendar(canonical)
    return Calendar(canonical, holiday_data=_SOURCES[canonical])


@functools.lru_cache(maxsize=256)
def _overridden(name: str, extra: frozenset[date], removed: frozenset[date]) -> Calendar:
    return _base_calendar(name).with_overrides(extra, removed)


def calendar(name: str, extra_holidays: Iterable[date] = (), removed: Iterable[date] = ()) -> Calendar:
    """The named calendar, cached per name (and per override set).

    ``extra_holidays`` adds ad hoc non-working days; ``removed`` takes a holiday out of the
    package's data (e.g. a bank holiday that was moved). Unknown name -> ValueError.
    """
    extra = frozenset(extra_holidays)
    gone = frozenset(removed)
    if not extra and not gone:
        return _base_calendar(name)
    return _overridden(_canonical(name), extra, gone)
