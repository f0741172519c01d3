"""Search: every connected system, in waves, each on its own task queue; an unreachable system
is retried with backoff and the team told, a system searched by hand is a task for its owner,
and a failure no retry can fix becomes an operator task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditEntry
    from activities.search import (
        ManualSearch,
        SearchActivities,
        SearchInput,
        SearchPlan,
        second_wave,
        system_task_queue,
    )
    from dsar.model import (
        Stage,
        SystemResult,
    )
    from dsar.timeutil import local_minute
    from workflows.rules import (
        HEARTBEAT_TIMEOUT,
        RETRY,
        SEARCH_RETRY,
        SKIP,
        UNREACHABLE_NOTICE_ATTEMPT,
        WORK_RETRY,
        Resolved,
        SystemSkipped,
        search_backoff,
    )

from workflows.casefile import TASKS_PATCH, T, abandon, failure_of
from workflows.stages.ahead import WorkAhead


class SystemSearch(WorkAhead):
    """Where is the person's data? Every system in the data map, searched."""

    async def _search(self) -> None:
        await self._move(Stage.SEARCHING, flush=False)
        # The register write and the plan (a read of the worker's data map) do not depend on
        # each other: run together, they usually come back in one activation.
        recorded = asyncio.ensure_future(self._record([]))
        planned = await self._attempt(
            "searching:plan",
            "plan the search from the data map",
            lambda: self._or_end(self._plan_search()),
        )
        assert not isinstance(planned, Resolved)  # retry is its only way out
        plan: SearchPlan = planned
        await recorded
        for name in plan.systems:
            self._systems[name] = SystemResult(name, "searching")
        for task in plan.manual:
            self._systems[task.system] = SystemResult(task.system, "waiting", since=workflow.now())
        self._publish()
        await self._or_end(
            asyncio.gather(
                self._search_waves(plan),
                *(self._manual_search(task) for task in plan.manual),
            )
        )
        found = [s for s in self._systems.values() if s.status == "found"]
        self._results["searching"] = (
            f"{sum(s.records for s in found)} record(s) in {len(found)} of {len(self._systems)} system(s)"
            + "".join(f"; {s.system} skipped" for s in self._systems.values() if s.status == "skipped")
        )

    async def _plan_search(self) -> SearchPlan:
        ahead = self._ahead_plan()
        if ahead is not None:
            return ahead
        return await workflow.execute_local_activity_method(
            SearchActivities.plan_search,
            self._plan_input(),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=WORK_RETRY,
            summary="plan search from the data map",
        )

    async def _search_waves(self, plan: SearchPlan) -> None:
        """The first wave with what the person gave; then the systems keyed by what the first
        wave learned from the person's own records (e.g. recordings filed by customer number)."""
        identifiers = dict(self._identifiers)
        outcomes = await asyncio.gather(*(self._search_one(s, identifiers, plan.learn) for s in plan.first))
        if not plan.second:
            return
        identifiers = second_wave(identifiers, outcomes)
        await asyncio.gather(*(self._search_one(s, identifiers, []) for s in plan.second))

    async def _search_one(self, system: str, identifiers: dict[str, str], learn: list[str]) -> dict[str, str]:
        """Search one system until it answers or an operator skips it.

        A system that is down does not fail the case: the case shows "unreachable since ...,
        attempt N" and tries again with backoff, for as long as it takes (the statutory clock
        escalates meanwhile). Retries are the workflow's, not the server's, so that each one is
        visible on the case and a skip can interrupt the wait."""
        ahead = self._ahead_search(system)
        if ahead is not None:
            self._systems[system] = ahead.result
            self._publish()
            return dict(ahead.learned)
        queue = system_task_queue(workflow.info().task_queue, system)
        attempt = 0
        while True:
            search = workflow.execute_activity_method(
                SearchActivities.search_system,
                SearchInput(self._case.reference, system, identifiers, learn),
                task_queue=queue,
                start_to_close_timeout=timedelta(hours=1),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=SEARCH_RETRY,
                summary=f"search {system}",
            )
            try:
                outcome = await self._or_skip(system, search)
            except ActivityError as e:
                kind, message = failure_of(e)
                if kind != "SystemUnavailable":
                    self._systems[system] = SystemResult(system, "failed", detail=f"search failed ({kind})")
                    entry = self._entry("search:failed", details={"system": system, "error": kind})
                    if not workflow.patched(TASKS_PATCH):
                        await self._record([entry])
                        return {}
                    # Retrying by itself cannot fix it (a data map that does not fit the system):
                    # a person retries after the fix, or leaves the system out with a reason.
                    task = await self._open_task(
                        f"searching:{system}",
                        f"search {system}",
                        kind,
                        message,
                        (RETRY, SKIP),
                        system,
                        [entry],
                    )
                    resolved = await self._resolution(task)
                    if resolved is None:
                        attempt = 0
                        self._systems[system] = SystemResult(system, "searching")
                        self._publish()
                        continue
                    self._skipped[system] = resolved.reason
                    self._systems[system] = SystemResult(system, "skipped", detail=resolved.words())
                    self._publish()
                    return {}
                attempt += 1
                await self._unreachable(system, attempt)
                await self._or_skip(
                    system, workflow.sleep(search_backoff(attempt), summary=f"retry {system}")
                )
                continue
            except SystemSkipped:
                return {}
            result: SystemResult = outcome.result
            if attempt:
                result.detail += f" (reached after {attempt} failed attempt(s))"
                await self._record([self._entry("search:reachable", details={"system": system})])
            self._systems[system] = result
            self._publish()
            return dict(outcome.learned)

    async def _unreachable(self, system: str, attempt: int) -> None:
        previous = self._systems[system]
        since = previous.since if previous.status == "unreachable" and previous.since else workflow.now()
        local = local_minute(since, self._tz)
        self._systems[system] = SystemResult(
            system,
            "unreachable",
            detail=f"{system} unreachable since {local}, attempt {attempt}",
            attempts=attempt,
            since=since,
        )
        self._publish()
        entries: list[AuditEntry] = []
        if attempt == 1:
            entries.append(self._entry("search:unreachable", details={"system": system}))
        await self._record(entries)
        if attempt == UNREACHABLE_NOTICE_ATTEMPT:
            await self._letter("system_unreachable", system=system, since=local, attempts=str(attempt))

    async def _or_skip(self, system: str, aw: Awaitable[T]) -> T:
        """Run a search (or its backoff), abandoning it if an operator skips the system."""
        if system in self._skipped:
            raise SystemSkipped()
        work = asyncio.ensure_future(aw)
        skipped = asyncio.ensure_future(workflow.wait_condition(lambda: system in self._skipped))
        await workflow.wait([work, skipped], return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            skipped.cancel()
            return work.result()
        abandon(work)
        raise SystemSkipped()

    async def _manual_search(self, task: ManualSearch) -> None:
        """Ask the system's owner to search it, remind them, escalate; wait for the answer."""
        system = task.system
        facts = {"system": system, "instructions": task.instructions}
        await self._letter("manual_search", to=task.owner, **facts)
        # Recorded: the audit shows when the owner was asked, and the register row's "waiting
        # for" names the search by hand (the work queue shows what the case is stuck on).
        await self._record([self._entry("search:manual_requested", details={"system": system})])
        asked = workflow.now()
        escalated = False
        reminders = 0
        while system not in self._manual_answers and system not in self._skipped:
            next_reminder = asked + timedelta(days=task.remind_every_days * (reminders + 1))
            escalation = asked + timedelta(days=task.escalate_after_days)
            when = next_reminder if escalated else min(next_reminder, escalation)
            try:
                await workflow.wait_condition(
                    lambda: system in self._manual_answers or system in self._skipped,
                    timeout=max(when - workflow.now(), timedelta(seconds=1)),
                    timeout_summary=f"{system}: waiting for the search by hand",
                )
            except TimeoutError:
                if not escalated and workflow.now() >= escalation:
                    escalated = True
                    days = str((workflow.now() - asked).days)
                    await self._letter("manual_escalation", days=days, owner=task.owner, **facts)
                    await self._record([self._entry("search:manual_escalated", details={"system": system})])
                if workflow.now() >= next_reminder:
                    reminders += 1
                    await self._letter("manual_reminder", to=task.owner, **facts)
        if system in self._manual_answers:
            self._systems[system] = self._manual_answers[system]
            self._publish()
