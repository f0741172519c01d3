"""Review: every record decided (exemptions, third-party redaction), a reviewer's amendments,
four-eyes and a second approver where the policy asks for one, and the erasure plan checked
when it is built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditEntry
    from activities.change import (
        CHANGE_TYPES,
        ChangeActivities,
        ChangePlan,
        ChangePlanInput,
    )
    from activities.review import ALLOWED_OUTCOMES, AmendInput, ReviewActivities, ReviewInput, outcome_family
    from dsar.model import (
        DecisionKind,
        DecisionRecord,
        ReviewAction,
        ReviewActionKind,
        ReviewStatus,
        Stage,
    )
    from dsar.reviewpolicy import policy_applies
    from workflows.rules import (
        HEARTBEAT_TIMEOUT,
        WORK_RETRY,
        DecisionResult,
        Resolved,
    )

from workflows.casefile import REGISTER_STAGE_PATCH, person_of
from workflows.stages.ahead import WorkAhead


class Review(WorkAhead):
    """What may the person receive, or what may be changed? Decided, then approved by a person."""

    async def _review(self) -> None:
        # written at once: preparing the review can take minutes, and the register must not say
        # "searching" meanwhile (cases started before this wrote it with the next record)
        await self._move(Stage.REVIEWING, flush=workflow.patched(REGISTER_STAGE_PATCH))
        self._review_input = ReviewInput(
            self._case.reference,
            self._case.request_type,
            list(self._systems.values()),
            regime=self._case.regime,
            received=self._received.isoformat(),
            identifiers=dict(self._identifiers),
        )
        review_input = self._review_input
        summary = self._ahead_review()
        if summary is None:
            prepared = await self._attempt(
                "reviewing:prepare",
                "decide every record and prepare the review package",
                lambda: self._or_end(
                    workflow.execute_activity_method(
                        ReviewActivities.prepare_review,
                        review_input,
                        start_to_close_timeout=timedelta(minutes=30),
                        heartbeat_timeout=HEARTBEAT_TIMEOUT,
                        retry_policy=WORK_RETRY,
                        summary="decide every record and prepare the review package",
                    )
                ),
            )
            assert not isinstance(prepared, Resolved)  # retry is its only way out
            summary = prepared
        self._review_status = ReviewStatus(
            package_ref=summary.blob_ref,
            decisions_ref=summary.decisions_ref,
            records=summary.records,
            exemptions_applied=summary.exemptions_applied,
            counts=summary.counts,
            needs_confirmation=summary.needs_confirmation,
        )
        if self._case.request_type in CHANGE_TYPES:
            await self._plan_change()
        self._review_results()
        self._review_ready = True
        entries = [
            self._entry(
                "review:prepared",
                details={
                    "records": str(summary.records),
                    "exemptions_applied": str(summary.exemptions_applied),
                    "package": summary.blob_ref,
                    "decisions": summary.decisions_ref,
                },
            )
        ]
        if (
            self._case.policy.review_auto_approve
            and summary.exemptions_applied == 0
            and not summary.needs_confirmation
            and self._approvals_needed() == 1  # a second approver is two people, never the engine
            and not (self._change_plan is not None and self._change_plan.refusals)
        ):
            self._approved = True
            self._review_status.approved_by = "dsar"
            entries.append(
                self._entry(
                    "review:approved",
                    reason="approved automatically: no exemption applied (nothing withheld, "
                    "redacted or kept)",
                )
            )
        self._publish()
        await self._record(entries)
        await self._wait_for(lambda: self._approved)

    async def _plan_change(self, in_update: bool = False) -> None:
        """What erasing (correcting, restricting, ...) will do in each system, from the data map
        and the review's decisions: shown to the reviewer, and what fulfilment carries out.
        (In the ``review`` Update it runs to the end: a case ending meanwhile is the main
        flow's to handle, and an Update must not raise anything but a failure.)"""
        assert self._review_status is not None
        wrap: Callable[[Awaitable[ChangePlan]], Awaitable[ChangePlan]] = (
            (lambda aw: aw) if in_update else self._or_end
        )
        what = ChangePlanInput(
            self._case.reference,
            self._case.request_type,
            dict(self._identifiers),
            list(self._systems.values()),
            self._review_status.decisions_ref,
            corrected=dict(self._case.corrections),
        )

        ahead = None if in_update else self._ahead_change_plan()
        if ahead is not None:
            self._change_plan = ahead
            self._review_status.plan_ref = ahead.summary_ref
            return

        def planning() -> Awaitable[ChangePlan]:
            return wrap(
                workflow.execute_activity_method(
                    ChangeActivities.plan_change,
                    what,
                    start_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=WORK_RETRY,
                    summary=f"plan the {self._case.request_type.value}",
                )
            )

        if in_update:  # a failure fails the reviewer's Update, which says why
            plan = await planning()
        else:
            planned = await self._attempt(
                "reviewing:plan_change", f"plan the {self._case.request_type.value}", planning
            )
            assert not isinstance(planned, Resolved)  # retry is its only way out
            plan = planned
        self._change_plan = plan
        self._review_status.plan_ref = plan.summary_ref

    def _review_results(self) -> None:
        assert self._review_status is not None
        self._results["reviewing"] = (
            f"review package ready: {self._review_status.records} record(s), "
            f"{self._review_status.exemptions_applied} with an exemption applied"
            + (
                f", {self._review_status.amendments} amendment(s) by the reviewer"
                if self._review_status.amendments
                else ""
            )
        )

    @workflow.update
    async def review(self, action: ReviewAction) -> DecisionResult:
        """A reviewer amends what the rules decided (override, withhold, redact), approves, or
        both. Amendments rewrite the decisions file through an activity, which checks every
        record named exists; an unknown record fails this Update and changes nothing."""
        async with self._review_lock:
            assert self._review_status is not None and self._review_input is not None
            entries: list[AuditEntry] = []
            if action.amendments:
                try:
                    summary = await workflow.execute_activity_method(
                        ReviewActivities.amend_review,
                        AmendInput(
                            self._review_input,
                            self._review_status.decisions_ref,
                            action.amendments,
                            action.actor,
                        ),
                        start_to_close_timeout=timedelta(minutes=30),
                        heartbeat_timeout=timedelta(minutes=5),
                        retry_policy=WORK_RETRY,
                        summary="apply the reviewer's amendments",
                    )
                except ActivityError as e:
                    cause = e.cause
                    if isinstance(cause, ApplicationError) and cause.non_retryable:
                        raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
                    raise
                self._review_status = replace(
                    self._review_status,
                    package_ref=summary.blob_ref,
                    decisions_ref=summary.decisions_ref,
                    exemptions_applied=summary.exemptions_applied,
                    counts=summary.counts,
                    needs_confirmation=summary.needs_confirmation,
                    amendments=self._review_status.amendments + len(action.amendments),
                )
                if self._case.request_type in CHANGE_TYPES:
                    await self._plan_change(in_update=True)
                self._review_results()
                withdrawn = bool(self._review_status.approvals)
                self._review_status.approvals = []  # an approval was of the package before this
                self._review_status.last_amended_by = action.actor
                for a in action.amendments:
                    details = {"action": a.action.value, "system": a.system, "record": a.key}
                    if withdrawn:
                        details["earlier_approvals"] = "withdrawn: the package changed"
                        withdrawn = False
                    details.update({k: v for k, v in (("field", a.field), ("outcome", a.outcome)) if v})
                    if a.text:
                        details["words"] = "given (not recorded here)"
                    details["decisions"] = summary.decisions_ref
                    entries.append(
                        self._entry("review:amended", actor=action.actor, reason=a.reason, details=details)
                    )
            if action.approve:
                self._decisions.append(
                    DecisionRecord(
                        DecisionKind.APPROVE, action.actor, action.note, "", workflow.now(), self._stage
                    )
                )
                entries.append(self._approval(action.actor, action.note))
            self._changes += 1
            self._pending += entries
            self._publish()
            await workflow.wait_condition(lambda: True)
            await self._record([])
            message = (
                "approved: fulfilment starts now"
                if self._approved
                else "approval recorded: a second reviewer must approve too"
                if action.approve
                else "amended: review the new package"
            )
            return DecisionResult(stage=self._stage, due=self._due().isoformat(), message=message)

    @review.validator
    def _validate_review(self, action: ReviewAction) -> None:
        if not action.actor:
            raise ValueError("a review must say who took it (actor)")
        if self._ending is not None or self._stage != Stage.REVIEWING:
            raise ValueError(
                f"case {self._case.reference} is {self._stage.value}: there is nothing to review"
            )
        if not action.approve and not action.amendments:
            raise ValueError("a review needs amendments, approve, or both")
        self._validate_reviewer(action.actor, approving=action.approve)
        if action.approve and action.amendments and self._four_eyes():
            raise ValueError(
                "four-eyes: another member of staff approves your amendments; send them without approving"
            )
        family = outcome_family(self._case.request_type)
        allowed = ALLOWED_OUTCOMES[family]
        for a in action.amendments:
            if not a.reason.strip():
                raise ValueError(
                    f"amending {a.system} {a.key} needs a reason: the person and a regulator see it"
                )
            if not a.system or not a.key:
                raise ValueError("an amendment names the system and the record (e.g. crm, orders:42)")
            if a.action == ReviewActionKind.OVERRIDE and a.outcome not in {o.value for o in allowed}:
                raise ValueError(
                    f"'override' needs an outcome, one of: {', '.join(sorted(o.value for o in allowed))}"
                )
            if a.action == ReviewActionKind.REDACT and (family != "disclosing" or not a.field):
                raise ValueError(
                    "'redact' is for a copy of the data, and names the field (and optionally the words)"
                )
            if a.action == ReviewActionKind.WITHHOLD and family != "disclosing":
                raise ValueError("'withhold' is for a copy of the data; for other requests use 'override'")

    def _validate_reviewer(self, actor: str, approving: bool = True) -> None:
        if not self._review_ready:
            raise ValueError("the review package is not ready yet")
        if self._approved:
            raise ValueError("the review is already approved")
        if self._awaiting:
            raise ValueError(
                f"still waiting for the person ({', '.join(sorted(self._awaiting))}): record the answer first"
            )
        # actors are "role:person": the same person under another role is still the same person
        verifier = next((d.actor for d in self._decisions if d.kind == DecisionKind.VERIFY), None)
        if self._four_eyes() and verifier and person_of(verifier) == person_of(actor):
            raise ValueError(
                f"four-eyes: {actor} verified this person's identity, so another member of staff must review"
            )
        if approving and self._change_plan is not None and self._change_plan.refusals:
            # worked out on the live database in plan_change: it would fail after approval,
            # with the person told it is under way
            raise ValueError(
                "the plan cannot be carried out as it stands: "
                + "; ".join(self._change_plan.refusals)
                + " (correct the data map, check it with 'dsar systems check', and plan again)"
            )
        status = self._review_status
        if not approving or status is None:
            return
        if any(person_of(a) == person_of(actor) for a in status.approvals):
            raise ValueError(
                f"{actor} has approved this review already: a second reviewer must approve it too"
            )
        if (
            self._four_eyes()
            and status.last_amended_by
            and person_of(status.last_amended_by) == person_of(actor)
        ):
            raise ValueError(
                f"four-eyes: {actor} amended this review last, so another member of staff must approve it"
            )

    def _four_eyes(self) -> bool:
        policy = self._case.policy
        return policy.four_eyes or policy_applies(
            policy.four_eyes_for, self._case.regime, self._case.request_type
        )

    def _approval(self, actor: str, note: str) -> AuditEntry:
        """One approval, recorded; the review is approved once enough different people have."""
        assert self._review_status is not None
        status = self._review_status
        status.approvals = [*status.approvals, actor]
        needed = self._approvals_needed()
        details = {k: str(v) for k, v in status.counts.items()}
        if needed > 1:
            details["approval"] = f"{len(status.approvals)} of {needed}"
        if len(status.approvals) >= needed:
            self._approved = True
            status.approved_by = actor
        return self._entry("review:approved", actor=actor, reason=note, details=details)
