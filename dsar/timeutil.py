"""Converting between instants (UTC) and the controller's local calendar dates.

Deadlines are dates in the controller's time zone (LEGAL.md §2.1: a request received at 23:59
counts as received that day), while Temporal timers and search attributes need instants.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_date(instant: datetime, tz: str) -> date:
    """The calendar date of ``instant`` where the controller's team works."""
    return instant.astimezone(_zone(tz)).date()


def local_instant(day: date, hour: int, tz: str) -> datetime:
    """``hour`` o'clock local time on ``day``, as a UTC instant."""
    return datetime.combine(day, time(hour), tzinfo=_zone(tz)).astimezone(UTC)


def end_of_day(day: date, tz: str) -> datetime:
    """The instant a deadline date ends: midnight local time at the start of the next day."""
    return local_instant(day + timedelta(days=1), 0, tz)


def due_attribute(day: date, tz: str) -> datetime:
    """The ``DsrDue`` search attribute of a due date: the last second of that date in the
    controller's time zone, as a UTC instant. The Web UI, shown in the controller's time zone,
    reads the statutory due date itself (the next midnight, the breach instant, read as the day
    after); sorting and ``DsrDue < "..."`` queries keep their meaning."""
    return end_of_day(day, tz) - timedelta(seconds=1)


def local_minute(instant: datetime, tz: str) -> str:
    """``2026-11-22 10:02`` in the controller's time zone: how a case shows when things happened."""
    return instant.astimezone(_zone(tz)).strftime("%Y-%m-%d %H:%M")
