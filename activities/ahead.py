"""Working a case ahead: the steps that need nobody, run back to back in one activity.

Most requests need no person between receipt and the answer: the identifiers match, every
system is read by a connector, nothing is withheld and the copy goes out. Run as separate
activities, such a case costs five round trips through the server and as many workflow tasks;
here the same activity methods run one after the other in one activity (``WorkAheadActivities``),
and the workflow takes each result as if its own step had just returned it, recording the
same audit entries and letters in the same order (``workflows/stages/ahead.py``).

The activity stops at the first step whose outcome needs a person or a decision it cannot take
(not enough points, a confirmation link, a system searched by hand, nothing found, an exemption
for a reviewer to see) or that fails in any way: the workflow then carries on from there with
its ordinary steps, which fail, retry and open operator tasks exactly as they always have. A
step is never lost: at worst it runs twice, and every step is idempotent.
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

import threading
from dataclasses import dataclass, field
from datetime import datetime

from temporalio import activity

from activities.change import (
    CHANGE_TYPES,
    ChangeActivities,
    ChangeApplied,
    ChangeInput,
    ChangePlan,
    ChangePlanInput,
    ChangeVerified,
    SuppressionInput,
    SuppressionRecorded,
)
from activities.export import ExportActivities, LinkInput, LinkResult, PackageInput, PackageResult
from activities.review import ReviewActivities, ReviewInput, ReviewSummary
from activities.search import PlanInput, SearchActivities, SearchInput, SearchOutcome, SearchPlan, second_wave
from activities.verify import VerifyActivities, VerifyInput, VerifyOutcome
from dsar.datamap import DataMap
from dsar.logs import bind_case, get_logger
from dsar.model import Regime, RequestType

log = get_logger("dsar.activities.ahead")


@dataclass
class AheadInput:
    """What the workflow would have given each step, decided before the first one runs."""

    verify: VerifyInput
    plan: PlanInput
    regime: Regime
    received: str  # YYYY-MM-DD
    #: the person's identifiers, as the search and the review take them (personal data: the
    #: codec encrypts them in history)
    identifiers: dict[str, str]
    #: the review may approve itself when nothing is withheld, redacted or kept (policy)
    auto_approve: bool
    #: the download link's audit key and the moment it counts from (the workflow's clock)
    link_key: str
    link_issued_at: datetime
    #: an erasure asked for online: confirmed from the address on file when the policy says so
    confirm_erasure: bool = False


@dataclass
class WorkedAhead:
    """Each step's own result, as far as the case went without a person (None: not reached)."""

    identity: VerifyOutcome | None = None
    plan: SearchPlan | None = None
    #: system -> its search's outcome, for every automatic system of the plan
    found: dict[str, SearchOutcome] = field(default_factory=dict)
    review: ReviewSummary | None = None
    package: PackageResult | None = None
    link: LinkResult | None = None
    #: the step it stopped before, and why (kinds and names only: it is in history)
    stopped: str = ""
    #: a change (erasure): what it will do in each system, and approved as the policy allows
    change_plan: ChangePlan | None = None
    approved: bool = False

    @property
    def complete(self) -> bool:
        """Worked through to the download link, or to a change approved without anyone: nothing
        is left for a person."""
        return self.link is not None or (self.change_plan is not None and self.approved)


@dataclass
class CarryOutInput:
    reference: str
    plan_ref: str
    system: str
    #: the plan's last system: the person's suppression entry is recorded too
    suppress: bool = False


@dataclass
class CarriedOut:
    """An approved change carried out in one system in one activity (None: not reached)."""

    applied: ChangeApplied | None = None
    verified: ChangeVerified | None = None
    suppression: SuppressionRecorded | None = None
    stopped: str = ""


def verified_without_anyone(outcome: VerifyOutcome) -> bool:
    """The match alone verifies the person: enough points, automatic verification, nothing to
    declare or confirm, nothing wrong given. The workflow's own verification decides the same
    way (``workflows/stages/verification.py``); anything less stops the work here."""
    return (
        outcome.person is not None
        and outcome.points >= outcome.needed
        and outcome.automatic
        and not outcome.declaration_needed
        and not outcome.locked
        and not outcome.wrong
    )


class WorkAheadActivities:
    def __init__(
        self,
        datamap: DataMap,
        verify: VerifyActivities,
        search: SearchActivities,
        review: ReviewActivities,
        export: ExportActivities,
        change: ChangeActivities,
    ) -> None:
        self.verify, self.search, self.review, self.export = verify, search, review, export
        self.change = change
        # A system's own queue admits ``max_concurrent`` searches per worker process: the same
        # bound here, so that working ahead never reads a production database harder.
        systems = datamap.systems.items()
        self._limits = {name: threading.BoundedSemaphore(s.max_concurrent) for name, s in systems}

    @activity.defn(name="work_ahead")
    def work_ahead(self, inp: AheadInput) -> WorkedAhead:
        done = WorkedAhead()
        with bind_case(inp.verify.reference):
            try:
                self._work(inp, done)
            except Exception as e:  # any failure: the workflow's ordinary step meets it again
                done.stopped = f"{done.stopped}: {type(e).__name__}"
            log.info("worked ahead", status=done.stopped or "complete")
        return done

    def _work(self, inp: AheadInput, done: WorkedAhead) -> None:
        done.stopped = "verification"
        done.identity = self.verify.verify_identity(inp.verify)
        if not verified_without_anyone(done.identity) or (
            inp.confirm_erasure and done.identity.confirm_erasure
        ):
            done.stopped = "verification: needs the person or an operator"
            return
        done.stopped = "search"
        plan = done.plan = self.search.plan_search(inp.plan)
        if plan.manual:
            done.stopped = "search: a system is searched by hand"
            return
        reference, identifiers = inp.verify.reference, dict(inp.identifiers)
        first = [self._search_one(SearchInput(reference, s, identifiers, plan.learn)) for s in plan.first]
        done.found.update((o.result.system, o) for o in first)
        if plan.second:
            identifiers = second_wave(identifiers, [dict(o.learned) for o in first])
            for system in plan.second:
                done.found[system] = self._search_one(SearchInput(reference, system, identifiers, []))
        systems = [done.found[s].result for s in plan.systems]
        if not any(s.status == "found" for s in systems):
            done.stopped = "review: nothing found"
            return
        done.stopped = "review"
        request_type = RequestType(inp.verify.request_type)
        review = done.review = self.review.prepare_review(
            ReviewInput(
                inp.verify.reference,
                request_type,
                systems,
                regime=inp.regime,
                received=inp.received,
                identifiers=dict(inp.identifiers),
            )
        )
        approvable = inp.auto_approve and review.exemptions_applied == 0 and not review.needs_confirmation
        if request_type in CHANGE_TYPES:
            done.stopped = "change plan"
            change = done.change_plan = self.change.plan_change(
                ChangePlanInput(reference, request_type, dict(inp.identifiers), systems, review.decisions_ref)
            )
            done.approved = approvable and not change.refusals
            done.stopped = "" if done.approved else "review: a reviewer approves"
            return  # the change itself is carried out once the workflow has approved it
        if not approvable:
            done.stopped = "review: a reviewer approves"
            return
        done.stopped = "package"
        package = done.package = self.export.build_access_package(
            PackageInput(
                inp.verify.reference, inp.regime, request_type, inp.received, systems, review.decisions_ref
            )
        )
        done.link = self.export.issue_download_link(
            LinkInput(
                inp.verify.reference,
                package.blob_ref,
                package.file_name,
                audit_key=inp.link_key,
                issued_at=inp.link_issued_at,
            )
        )
        done.stopped = ""

    def _search_one(self, inp: SearchInput) -> SearchOutcome:
        with self._limits[inp.system]:
            return self.search.search_system(inp)

    @activity.defn(name="carry_out")
    def carry_out(self, inp: CarryOutInput) -> CarriedOut:
        """Apply an approved change in one system and prove it (and, after the plan's last
        system, record the person on the suppression list): on the system's own queue, the
        steps ``_carry_out`` would run one by one, stopping at the first failure (the
        workflow's own step meets it again)."""
        done = CarriedOut()
        step = ChangeInput(inp.reference, inp.system, inp.plan_ref)
        with bind_case(inp.reference):
            try:
                done.stopped = "apply"
                done.applied = self.change.apply_change(step)
                done.stopped = "verify"
                done.verified = self.change.verify_change(step)
                if inp.suppress:
                    done.stopped = "suppression"
                    done.suppression = self.change.record_suppression(
                        SuppressionInput(inp.reference, inp.plan_ref)
                    )
                done.stopped = ""
            except Exception as e:  # any failure: the workflow's ordinary step meets it again
                done.stopped = f"{done.stopped}: {type(e).__name__}"
            log.info("carried out", system=inp.system, status=done.stopped or "complete")
        return done


__all__ = [
    "AheadInput",
    "CarriedOut",
    "CarryOutInput",
    "WorkAheadActivities",
    "WorkedAhead",
    "verified_without_anyone",
]
