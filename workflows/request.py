"""``DataSubjectRequest``: one durable workflow per case, id = case reference.

The workflow is the case file's state machine. It decides; activities act. This class only runs
the stages in order; each stage is a module of its own (``workflows/stages/``) over the shared
``CaseFile`` (``workflows/casefile.py``): verification, search, review, fulfilment, staff
decisions and the statutory clock's watcher. Human decisions arrive as the ``decide`` Update,
checked by a validator against the stage the case is in, so a decision that makes no sense now
is refused with a message instead of being queued.

Stages: received -> acknowledged -> verifying -> searching -> reviewing -> fulfilling ->
responded -> closed, with exits rejected, withdrawn and expired. A message intake could not
read as a request waits in triage first, until an operator classifies it.

Changing this code: cases live for more than a year, so every change must replay the histories
of cases already running; see docs/versioning.md.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dsar.clock import DeadlineKind
    from dsar.model import (
        UNVERIFIED_TYPES,
        CaseDetails,
        CaseInput,
        ClockEventType,
        Snapshot,
        Stage,
    )
    from workflows.rules import (
        ALLOWED,
        SEARCH_ATTRIBUTES,
        CaseEnded,
        DecisionResult,
    )

from workflows.stages.clock import ClockWatch
from workflows.stages.decisions import Decisions
from workflows.stages.fulfilment import Fulfilment
from workflows.stages.review import Review
from workflows.stages.search import SystemSearch
from workflows.stages.verification import Verification

__all__ = ["ALLOWED", "SEARCH_ATTRIBUTES", "DataSubjectRequest", "DecisionResult"]


@workflow.defn(name="DataSubjectRequest")
class DataSubjectRequest(Decisions, Verification, SystemSearch, Review, Fulfilment, ClockWatch):
    """One data-subject request from receipt to the purge of its case file."""

    @workflow.run
    async def run(self, case: CaseInput) -> str:
        publisher = asyncio.create_task(self._publish_attributes())
        self._publish()
        watcher = asyncio.create_task(self._watch_clock())
        try:
            if not self._classified:
                await self._triage()
            await self._acknowledge()
            if case.request_type in UNVERIFIED_TYPES:
                if case.agent is not None:  # no identity check, but someone else's say-so is not enough
                    await self._move(Stage.VERIFYING)
                    await self._check_authority(case.agent)
                self._results["verifying"] = "not required: opt-out and limit requests need no verification"
            else:
                await self._verify()
            await self._search()
            if self._holds_nothing():
                await self._respond_nothing_held()
            else:
                await self._review()
                await self._fulfil()
                await self._respond()
        except CaseEnded:
            await self._end()
        except asyncio.CancelledError:
            await self._cancelled_by_staff()
        watcher.cancel()
        if self._stage == Stage.RESPONDED:
            open_for = timedelta(days=case.policy.close_after_days)
            if self._link is not None:  # the case closes when the person can no longer download
                open_for = max(self._link.expires_at - workflow.now(), timedelta(0))
            await self._sleep_through_cancel(open_for, "response open until the link expires")
            await self._move(Stage.CLOSED, reason="response period ended")
        await self._purge_after_retention()
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._publish_wanted)
        publisher.cancel()
        return self._stage.value

    @workflow.query
    def snapshot(self) -> Snapshot:
        return Snapshot(
            reference=self._case.reference,
            stage=self._stage,
            regime=self._case.regime,
            request_type=self._case.request_type,
            channel=self._case.channel,
            received=self._received.isoformat(),
            due=self._due().isoformat(),
            acknowledgement_due=self._optional_due(DeadlineKind.ACKNOWLEDGEMENT_DUE),
            extension_notice_due=self._optional_due(DeadlineKind.EXTENSION_NOTICE_DUE),
            extended=any(e.type == ClockEventType.EXTENSION_NOTIFIED for e in self._events),
            paused=self._paused(),
            waiting_for=self._waiting_for(),
            breached=self._breached,
            escalated=self._escalated,
            reminders_sent=list(self._reminders),
            clock_events=list(self._events),
            decisions=list(self._decisions),
            systems=list(self._systems.values()),
            results=dict(self._results),
            outcome=self._outcome,
            identity=self._identity,
            review=self._review_status,
            tasks=sorted(self._tasks.values(), key=lambda t: t.status != "open"),
        )

    @workflow.query
    def details(self) -> CaseDetails:
        """Who the requester is (personal data, for staff allowed to see it) and the working
        behind the due date."""
        return CaseDetails(
            identifiers=dict(self._identifiers),
            agent=self._case.agent,
            corrections=dict(self._case.corrections),
            transfer_to=self._case.transfer_to,
            clock_rule=self._clock().explain(as_of=self._today()),
            timezone=self._tz,
            calendar=self._case.policy.calendar,
            triage_reason=self._case.triage_reason,
            objection=self._case.objection,
        )
