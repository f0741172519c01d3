"""The statutory clock's watcher: reminders, escalation and the breach, each at its moment.

A coroutine beside the stages. Every change to the clock's event log (a pause, a restart, an
extension) bumps a version that wakes it to recompute the next point; timers do the waiting.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dsar.model import (
        OPEN_STAGES,
    )
    from dsar.timeutil import end_of_day, local_instant
    from workflows.rules import (
        ClockPoint,
    )

from workflows.casefile import CaseFile


class ClockWatch(CaseFile):
    """The statutory clock watched while the stages run."""

    async def _watch_clock(self) -> None:
        """Reminders before the due date, escalation at breach risk, a recorded breach after it."""
        while self._stage in OPEN_STAGES:
            version = self._clock_version

            def changed(v: int = version) -> bool:
                return self._clock_version != v or self._stage not in OPEN_STAGES

            if self._paused():
                await workflow.wait_condition(changed)
                continue
            point = self._next_point()
            if point is None:
                await workflow.wait_condition(changed)
                continue
            delay = point.when - workflow.now()
            if delay > timedelta(0):
                try:
                    await workflow.wait_condition(changed, timeout=delay, timeout_summary=point.kind)
                    continue  # the clock or the stage changed first: recompute the next point
                except TimeoutError:
                    pass  # the point's time has come
            await self._fire(point)

    def _next_point(self) -> ClockPoint | None:
        due = self._due()
        policy = self._case.policy
        points = [
            ClockPoint(local_instant(due - timedelta(days=n), 9, self._tz), f"reminder:{n}", due)
            for n in policy.reminder_days
        ]
        points.append(
            ClockPoint(
                local_instant(due - timedelta(days=policy.escalate_days_before), 9, self._tz),
                "escalation",
                due,
            )
        )
        points.append(ClockPoint(end_of_day(due, self._tz), "breach", due))
        pending = sorted((p for p in points if p.key not in self._fired), key=lambda p: p.when)
        if not pending:
            return None
        now = workflow.now()
        past = [p for p in pending if p.when <= now and p.kind != "breach"]
        # Only the latest overdue warning is worth sending (e.g. a case that starts 3 days
        # before its due date gets the 2-day reminder, not the 7-day one as well).
        for p in past[:-1]:
            self._fired.add(p.key)
        return past[-1] if past else pending[0]

    async def _fire(self, point: ClockPoint) -> None:
        self._fired.add(point.key)
        days_left = (point.due - self._today()).days
        if point.kind == "breach":
            self._breached = True
        elif point.kind == "escalation":
            self._escalated = True
        else:
            self._reminders.append(f"{self._today().isoformat()} ({days_left} days before {point.due})")
        await self._letter(point.kind.split(":")[0], days_left=str(days_left))
        await self._record(
            [
                self._entry(
                    f"clock:{point.kind}", details={"due": point.due.isoformat(), "days_left": str(days_left)}
                )
            ]
        )
        self._publish()
