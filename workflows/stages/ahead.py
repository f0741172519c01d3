"""Working ahead: a case that needs no person has its steps run back to back in one activity
(``activities/ahead.py``), and each stage takes its step's result from there instead of running
the step itself. The stages stay the one path: they record, publish and write the same audit
entries and letters whichever way a result came.

While a case worked through to its download link is taken through its stages, the register
writes wait and go as one at the answer (``CaseFile._deferring``): a step that would wait for
anyone, or an operator task, writes them at once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.ahead import AheadInput, CarriedOut, CarryOutInput, WorkAheadActivities, WorkedAhead
    from activities.change import ChangePlan
    from activities.export import PACKAGE_TYPES, LinkResult, PackageResult
    from activities.review import ReviewSummary
    from activities.search import PlanInput, SearchOutcome, SearchPlan
    from activities.verify import VerifyInput, VerifyOutcome
    from dsar.model import Channel, RequestType
    from workflows.rules import AHEAD_RETRY, HEARTBEAT_TIMEOUT, CaseEnded

from workflows.casefile import CaseFile

#: ``workflow.patched`` ids: cases started before working ahead ran every step on its own; an
#: erasure is worked ahead to its approval (v2), and an approved change is carried out in every
#: system in one activity.
WORK_AHEAD_PATCH = "work-ahead-v1"
ERASURE_AHEAD_PATCH = "work-ahead-erasure-v2"
CARRY_OUT_PATCH = "carry-out-together-v1"
#: Request types worked ahead: a copy of the data, and an erasure (up to its approval: the
#: erasure itself is carried out once the workflow has approved it).
AHEAD_TYPES = frozenset({*PACKAGE_TYPES, RequestType.ERASURE})
ONLINE = frozenset({Channel.WEB_FORM, Channel.EMAIL, Channel.API})


class WorkAhead(CaseFile):
    """The results of steps already run, for the stages to take one by one."""

    def _may_work_ahead(self) -> bool:
        """A copy of the data for the person themselves: no agent's authority to read, no
        correction to check, no other controller to send it to."""
        case = self._case
        return (
            case.request_type in AHEAD_TYPES
            and case.agent is None
            and not case.by_agent
            and not case.transfer_to
            and not case.corrections
            and not self._verified
        )

    def _verify_input(self) -> VerifyInput:
        # never the data in dispute: a correction is verified with other identifiers
        return VerifyInput(
            self._case.reference,
            self._case.regime.value,
            self._case.request_type.value,
            {k: v for k, v in self._identifiers.items() if k not in self._case.corrections},
        )

    def _plan_input(self) -> PlanInput:
        return PlanInput(self._case.reference, sorted(self._identifiers), self._case.request_type.value)

    async def _work_ahead(self) -> None:
        """Run the steps that need nobody in one activity; a failure of any kind leaves the
        stages to run their own steps, as if it had never been tried."""
        if not (self._may_work_ahead() and workflow.patched(WORK_AHEAD_PATCH)):
            return
        erasure = self._case.request_type == RequestType.ERASURE
        if erasure and not workflow.patched(ERASURE_AHEAD_PATCH):
            return
        self._seq += 1
        work = AheadInput(
            verify=self._verify_input(),
            plan=self._plan_input(),
            regime=self._case.regime,
            received=self._received.isoformat(),
            identifiers=dict(self._identifiers),
            auto_approve=self._case.policy.review_auto_approve and self._approvals_needed() == 1,
            link_key=f"{self._case.reference}/package-link/{self._seq}",
            link_issued_at=workflow.now(),
            confirm_erasure=erasure and self._case.channel in ONLINE,
        )
        self._matching = True
        self._publish()
        running = asyncio.ensure_future(
            workflow.execute_activity_method(
                WorkAheadActivities.work_ahead,
                work,
                start_to_close_timeout=timedelta(hours=2),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=AHEAD_RETRY,
                summary="work ahead: match, search, review and package without a person",
            )
        )
        ending = asyncio.ensure_future(workflow.wait_condition(lambda: self._ending is not None))
        try:
            await workflow.wait([running, ending], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._matching = False
        if not running.done():
            # The case ended meanwhile. Not cancelled: the work may be completing at this very
            # moment, and a cancel that crosses a completion is refused by some servers; what it
            # did (a package, a link) is deleted with the case's file.
            running.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise CaseEnded()
        ending.cancel()
        try:
            worked: WorkedAhead = running.result()
        except ActivityError:
            return
        if self._verified:  # an operator decided meanwhile: the stages take it from there
            return
        self._ahead = worked
        self._deferring = worked.complete

    def _ahead_identity(self) -> VerifyOutcome | None:
        ahead = self._ahead
        if ahead is None or ahead.identity is None:
            return None
        outcome, ahead.identity = ahead.identity, None
        return outcome

    def _ahead_plan(self) -> SearchPlan | None:
        ahead = self._ahead
        if ahead is None or ahead.plan is None:
            return None
        plan, ahead.plan = ahead.plan, None
        return plan

    def _ahead_search(self, system: str) -> SearchOutcome | None:
        return self._ahead.found.pop(system, None) if self._ahead is not None else None

    def _ahead_review(self) -> ReviewSummary | None:
        ahead = self._ahead
        if ahead is None or ahead.review is None:
            return None
        review, ahead.review = ahead.review, None
        return review

    def _ahead_change_plan(self) -> ChangePlan | None:
        ahead, self._ahead = self._ahead, None  # the last step worked ahead of an approval
        return ahead.change_plan if ahead is not None else None

    async def _carry_out_in(self, plan: ChangePlan, system: str, queue: str, suppress: bool) -> CarriedOut:
        """An approved change applied and proved in one system in one activity, on the system's
        own queue (with the suppression entry after the last system). Not raced against an
        ending: a change under way is finished and recorded. Nothing done (an empty result):
        the loop runs the steps one by one."""
        if not workflow.patched(CARRY_OUT_PATCH):
            return CarriedOut()
        await self._stop_deferring()  # the register says "fulfilling" while the change runs
        try:
            carried: CarriedOut = await workflow.execute_activity_method(
                WorkAheadActivities.carry_out,
                CarryOutInput(self._case.reference, plan.plan_ref, system, suppress),
                task_queue=queue,
                start_to_close_timeout=timedelta(hours=1),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=AHEAD_RETRY,
                summary=f"{self._case.request_type.value} in {system}, and prove it",
            )
        except ActivityError:
            return CarriedOut()
        # carried out to the end: the register is written once, with the answer
        self._deferring = carried.suppression is not None
        return carried

    def _ahead_package(self) -> tuple[PackageResult, LinkResult] | None:
        ahead, self._ahead = self._ahead, None  # the last step: nothing is left ahead
        if ahead is None or ahead.package is None or ahead.link is None:
            return None
        return ahead.package, ahead.link
