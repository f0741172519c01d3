"""``DataSubjectRequest``: one durable workflow per case, id = case reference.

The workflow is the case file's state machine. It decides; activities act. Human decisions arrive
as the ``decide`` Update, checked by a validator against the stage the case is in, so a decision
that makes no sense now is refused with a message instead of being queued. A second coroutine
watches the statutory clock and sends reminders, escalates and records a breach; every change to
the clock's event log (a pause, a restart, an extension) wakes it to recompute.

Stages: received -> acknowledged -> verifying -> searching -> reviewing -> fulfilling ->
responded -> closed, with exits rejected, withdrawn and expired. A message intake could not
read as a request waits in triage first, until an operator classifies it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditActivities, AuditEntry, CaseRecord
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
    from activities.export import (
        PACKAGE_TYPES,
        ExportActivities,
        FulfilActivities,
        FulfilInput,
        FulfilResult,
        LinkInput,
        LinkResult,
        PackageInput,
        PackageResult,
        PushInput,
        PushResult,
    )
    from activities.notify import Letter, NotifyActivities
    from activities.review import ALLOWED_OUTCOMES, AmendInput, ReviewActivities, ReviewInput, outcome_family
    from activities.search import (
        ManualSearch,
        PlanInput,
        SearchActivities,
        SearchInput,
        SearchPlan,
        system_task_queue,
    )
    from activities.verify import ASKABLE, VerifyActivities, VerifyInput, VerifyOutcome
    from dsar.blobs import parse_ref
    from dsar.clock import ClockPolicy, DeadlineKind, DeadlineNotApplicable, StatutoryClock, primary_kind
    from dsar.inputs import text_problem
    from dsar.model import (
        FINAL_STAGES,
        OPEN_STAGES,
        UNVERIFIED_TYPES,
        AgentAuthority,
        AgentDetails,
        AuthorityDocument,
        CaseDetails,
        CaseInput,
        Channel,
        ClockEvent,
        ClockEventType,
        Correspondence,
        Decision,
        DecisionKind,
        DecisionRecord,
        IdentifierKind,
        IdentityCheck,
        MergedRequest,
        OperatorTask,
        ProvidedIdentifiers,
        Regime,
        RequestType,
        ReviewAction,
        ReviewActionKind,
        ReviewStatus,
        Snapshot,
        Stage,
        SystemResult,
    )
    from dsar.regimes import REGIMES, REQUEST_LABELS
    from dsar.reviewpolicy import policy_applies
    from dsar.timeutil import due_attribute, end_of_day, local_date, local_instant, local_minute
    from dsar.wording import letter_facts
    from workflows.rules import (
        ALLOWED,
        ANSWERS,
        AUTHORITY_TEXT,
        BREACHED_ATTR,
        BY_HAND,
        CONFIRMATION_TEXT,
        DUE_ATTR,
        FEE_RE,
        HEARTBEAT_TIMEOUT,
        LETTER_RETRY,
        PUSH_RETRY,
        RECORD_RETRY,
        REFERENCE_RE,
        REFUSAL_GROUNDS,
        REGIME_ATTR,
        REJECT_GROUNDS,
        RETRY,
        SEARCH_ATTRIBUTES,
        SEARCH_RETRY,
        SEARCH_RETRY_VERIFY,
        SKIP,
        STAGE_ATTR,
        SYSTEM_DECISIONS,
        TASK_DECISIONS,
        TASK_STATUS,
        TEAM_LETTERS,
        TYPE_ATTR,
        UNREACHABLE_NOTICE_ATTEMPT,
        WAITS,
        WORK_RETRY,
        CaseEnded,
        ClockPoint,
        DecisionResult,
        Resolved,
        SystemSkipped,
        search_backoff,
    )

__all__ = ["ALLOWED", "SEARCH_ATTRIBUTES", "DataSubjectRequest", "DecisionResult"]

T = TypeVar("T")


def _person(actor: str) -> str:
    """Who took a decision, whatever role they took it in (``reviewer:alice`` -> ``alice``)."""
    return actor.rpartition(":")[2]


#: ``workflow.patched`` ids, so that cases started before a change still replay as they ran:
#: a failure that used to be a "failed" search or a wait for ``verify`` becomes an operator
#: task; a match that ends after an operator verified is still recorded.
TASKS_PATCH = "operator-tasks-v1"
LATE_MATCH_PATCH = "late-match-recorded-v1"
REGISTER_STAGE_PATCH = "register-stage-at-once-v1"
#: Who a cancellation from the Temporal Web UI or CLI is recorded as (staff, not the person).
ENGINE_ACTOR = "staff:temporal-cancel"


def _failure(error: ActivityError | ApplicationError) -> tuple[str, str]:
    """A failed activity's error type and words, for an operator task: the type of the cause
    (``IntegrityError``, ``PackageError``, ``Timeout``), and its message, one line, capped."""
    cause = error if isinstance(error, ApplicationError) else error.cause
    if isinstance(cause, ApplicationError):
        kind, message = cause.type or "ApplicationError", cause.message
    elif isinstance(cause, ActivityTimeout):
        how = cause.type.name.lower() if cause.type else "unknown"
        kind, message = "Timeout", f"the step timed out ({how})"
    elif cause is not None:
        kind, message = type(cause).__name__, str(cause)
    else:
        kind, message = type(error).__name__, error.message
    line = " ".join(ch if text_problem(ch) is None else " " for ch in message).split()
    return kind, " ".join(line)[:300]


def _abandon(work: asyncio.Future[Any]) -> None:
    """Cancel work nobody waits for any more, and retrieve its outcome when it comes (a
    cancelled activity ends in an error that nobody else would read)."""
    work.add_done_callback(lambda f: f.cancelled() or f.exception())
    work.cancel()


@workflow.defn(name="DataSubjectRequest")
class DataSubjectRequest:
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        self._case = case
        self._tz = case.policy.timezone
        self._received = local_date(case.received_at, self._tz)
        self._stage = Stage.RECEIVED
        self._events: list[ClockEvent] = [ClockEvent(ClockEventType.RECEIVED, self._received.isoformat())]
        self._decisions: list[DecisionRecord] = []
        self._awaiting: dict[str, datetime] = {}  # PersonWait.name -> when asked
        self._verified = False
        self._review_ready = False
        self._approved = False
        self._review_status: ReviewStatus | None = None
        self._review_input: ReviewInput | None = None
        self._review_lock = asyncio.Lock()  # one reviewer's amendment at a time
        self._package: PackageResult | None = None  # the copy of the data, once built
        self._link: LinkResult | None = None  # how the person downloads it (refs, no URL)
        self._transfer_note = ""  # what happened to a transfer to another controller
        self._change_plan: ChangePlan | None = None  # erasure and the other changes
        self._changed: dict[str, str] = {}  # system -> what was changed and verified there
        self._not_done: set[str] = set()  # systems an operator left out of the change
        self._carried_out = False
        self._manual_fulfilment = False
        self._fulfilled_by_hand = False
        self._ending: tuple[Stage, str, str] | None = None  # (stage, outcome, letter kind)
        self._systems: dict[str, SystemResult] = {}  # by system name, in plan order
        self._skipped: dict[str, str] = {}  # system -> why an operator skipped it
        self._manual_answers: dict[str, SystemResult] = {}  # manual system -> its searcher's answer
        self._identifiers = dict(case.identifiers)  # what the person gave, and later added
        self._identity = IdentityCheck()
        self._classified = not case.triage_reason
        self._mail_seen: set[str] = set()  # Message-IDs of correspondence already taken
        agent = case.agent
        if agent is not None:
            self._identity.agent_authority = agent.authority.value
        #: the agent's proof of authority is on the case (uploaded, or recorded by an operator)
        self._authority_received = agent is not None and agent.document is not None
        if self._authority_received:
            self._identity.authority = "received"
        self._provided = 0  # bumped when the person sends more identifiers
        self._confirmed = False  # the person confirmed through the link
        self._matching = False  # the identity match is running
        self._person_reminded: set[str] = set()  # waits the person was reminded of
        self._results: dict[str, str] = {}
        self._reminders: list[str] = []
        self._fired: set[str] = set()
        self._escalated = False
        self._breached = False
        self._outcome: str | None = None
        self._seq = 0  # deterministic counter for audit and letter keys
        self._changes = 0  # bumped on every decision: wakes waiting code
        self._clock_version = 0  # bumped on every clock event: wakes the clock watcher
        self._record_lock = asyncio.Lock()
        self._pending: list[AuditEntry] = []  # audit entries to write with the next record
        self._recorded: tuple[object, ...] | None = None  # the register row as last written
        self._publish_wanted = False  # search attributes to upsert at the end of this activation
        self._published = self._start_attributes()
        self._clock_memo: tuple[int, StatutoryClock] | None = None
        #: steps that failed and wait for a person (``OperatorTask``), by id, in order opened
        self._tasks: dict[str, OperatorTask] = {}
        self._match_note = ""  # why matching identity takes long (a system unreachable)
        self._match_since = workflow.now()
        self._late_match: asyncio.Task[None] | None = None  # a match an operator's verify overtook
        self._end_letter_sent = False
        self._end_facts: dict[str, str] = {}  # what the ending's letter says beyond the outcome
        self._also_answers: list[str] = []  # duplicates merged into this case (their references)
        self._end_sending: asyncio.Future[None] | None = None  # the ending letter, if it waits

    # ------------------------------------------------------------------ main flow

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

    async def _purge_after_retention(self) -> None:
        """Keep the case file for its retention period, then remove its blobs and the words in
        its audit trail (hashes kept). Decisions are refused by then (the case is final), but
        for an operator task the purge may open."""
        await self._sleep_through_cancel(
            timedelta(days=self._case.policy.case_retention_days), "case file kept for its retention"
        )
        purged = await self._attempt(
            "closed:purge",
            "purge the case file",
            lambda: workflow.execute_activity_method(
                AuditActivities.purge_case,
                self._case.reference,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=WORK_RETRY,
                summary="purge the case file",
            ),
            (RETRY, BY_HAND),
        )
        if isinstance(purged, Resolved):
            self._results["purged"] = f"case file purged by hand: {purged.words()}"
            await self._record([])
            return
        self._results["purged"] = f"case file purged on {self._today()}"
        await self._record(
            [
                self._entry(
                    "case:purged",
                    details={"blobs": str(purged.blobs), "audit_events_blanked": str(purged.events)},
                )
            ]
        )

    async def _sleep_through_cancel(self, duration: timedelta, summary: str) -> None:
        """Sleep while the case is over but kept. A cancel from the Temporal Web UI or CLI now
        would stop the closing and the purge the law asks for: it is refused, and recorded."""
        until = workflow.now() + duration
        while (remaining := until - workflow.now()) > timedelta(0):
            try:
                await workflow.sleep(remaining, summary=summary)
            except asyncio.CancelledError:
                workflow.logger.warning("cancel refused: the case has ended and is kept until its purge")
                await self._record(
                    [
                        self._entry(
                            "engine:cancel_refused",
                            actor=ENGINE_ACTOR,
                            reason="the case has ended; its file is kept, then purged, as the law asks",
                            details={"stage": self._stage.value},
                        )
                    ]
                )

    async def _cancelled_by_staff(self) -> None:
        """Cancel in the Temporal Web UI or CLI while the case is open: staff ended it there. It
        becomes a withdrawal by staff, recorded and told to the person, never an orphan (a case
        cancelled in the engine and still "verifying" in the register)."""
        workflow.logger.warning("case cancelled in the workflow engine: recorded as a staff withdrawal")
        reason = "withdrawn by staff (cancelled in the workflow engine)"
        if self._ending is None:
            self._ending = (Stage.WITHDRAWN, reason, "withdrawal")
            self._decisions.append(
                DecisionRecord(DecisionKind.WITHDRAW, ENGINE_ACTOR, reason, "", workflow.now(), self._stage)
            )
            self._pending.append(
                self._entry(
                    "decision:withdraw",
                    actor=ENGINE_ACTOR,
                    reason=reason,
                    details={"stage": self._stage.value, "via": "temporal cancel"},
                )
            )
        for task in self._tasks.values():
            if task.status == "open":
                task.status, task.resolution = "closed", "the case ended"
        if self._stage not in FINAL_STAGES:
            await self._end()

    async def _triage(self) -> None:
        """A message intake could not read as a request: an operator says what it asks for
        (``classify``) or refuses it. The clock runs from receipt meanwhile, and escalates."""
        await self._move(Stage.TRIAGE, reason=self._case.triage_reason)
        await self._wait_for(lambda: self._classified)
        self._results["triage"] = (
            f"classified as a {self._case.regime.value} {self._case.request_type.value} request"
        )

    async def _acknowledge(self) -> None:
        regime = REGIMES[self._case.regime]
        ack_due = self._optional_due(DeadlineKind.ACKNOWLEDGEMENT_DUE)
        await self._letter(
            "acknowledgement",
            verification_needed="" if self._case.request_type in UNVERIFIED_TYPES else "yes",
            regime_note=regime.label,
        )
        self._check_end()  # ended while the letter waited for a person
        self._events.append(ClockEvent(ClockEventType.ACKNOWLEDGED, self._today().isoformat()))
        self._results["acknowledged"] = f"acknowledged on {self._today()}" + (
            f" (statutory deadline {ack_due})" if ack_due else ""
        )
        await self._move(
            Stage.ACKNOWLEDGED,
            flush=False,  # written together with the next stage's record
            extra=[
                self._entry(
                    "received",
                    details={
                        "channel": self._case.channel.value,
                        "request_type": self._case.request_type.value,
                        "regime": self._case.regime.value,
                        "received": self._received.isoformat(),
                    },
                )
            ],
        )

    async def _verify(self) -> None:
        """Match the person's identifiers against our systems; ask for more when they fall
        short; send a confirmation link to the address on file where the request needs one
        (an erasure asked for online, an agent's request). An operator may decide at any time
        the case is not waiting for the person; after too many failed rounds only they can."""
        # The register says what the case does: the match starts with the stage (unless an
        # agent's proof of authority comes first), so the row never says "operator" meanwhile.
        self._matching = self._case.agent is None or self._authority_received
        await self._move(Stage.VERIFYING)
        if self._case.agent is not None:
            await self._check_authority(self._case.agent)
        check = self._identity
        failures = 0  # rounds in which something given did not match
        while not self._verified:
            self._matching = True
            self._publish()
            matching = asyncio.ensure_future(self._match_identity())
            try:
                outcome = await self._or_end(self._unless_verified(matching))
            except ActivityError as e:
                # Retrying by itself cannot help (the data map does not fit a system, or the
                # match kept failing): an operator verifies, rejects, or retries after a fix.
                kind, message = _failure(e)
                check.reason = f"identity could not be matched automatically ({kind}): an operator decides"
                self._matching = False
                entry = self._entry("identity:match_failed", details={"error": kind})
                if not workflow.patched(TASKS_PATCH):
                    await self._record([entry])
                    await self._wait_for(lambda: self._verified)
                    break
                task = await self._open_task(
                    "verifying:match",
                    "match the person's identity against our systems",
                    kind,
                    message,
                    (RETRY,),
                    extra=[entry],
                )
                await self._wait_for(lambda task=task: self._verified or task.status != "open")  # type: ignore[misc]
                if self._verified:
                    self._close_task(task, "identity verified by an operator")
                    break
                continue
            finally:
                self._matching = False
            if outcome is None:
                # An operator decided while the systems were being read: the match's result is
                # still recorded when it arrives, beside the decision (the audit shows both).
                if workflow.patched(LATE_MATCH_PATCH):
                    self._late_match = asyncio.create_task(self._record_late_match(matching))
                break
            check.rounds += 1
            failures += outcome.wrong
            check.points, check.needed = outcome.points, outcome.needed
            check.matched_kinds, check.reason = list(outcome.matched_kinds), outcome.reason
            check.declaration_needed = outcome.declaration_needed
            check.locked = outcome.locked or failures >= outcome.max_attempts
            self._publish()
            details = {"points": str(outcome.points), "needed": str(outcome.needed)}
            details["kinds"] = ",".join(outcome.matched_kinds) or "none"
            await self._record([self._entry("identity:matched", reason=outcome.reason, details=details)])
            if self._verified:
                break  # an operator decided while the match ran
            if check.locked:
                await self._record([self._entry("identity:locked", details={"rounds": str(check.rounds)})])
                await self._wait_for(lambda: self._verified)
                break
            enough = outcome.points >= outcome.needed and outcome.person is not None
            if enough and (not outcome.automatic or self._power_of_attorney()):
                check.reason += (
                    "; power of attorney: an operator reads the document and decides"
                    if self._power_of_attorney()
                    else "; an operator decides (automatic verification is off)"
                )
                self._publish()
                await self._wait_for(lambda: self._verified)
                break
            if enough and (check.declared or not outcome.declaration_needed):
                purpose = self._confirmation_purpose(outcome)
                if purpose and not outcome.contact_on_file:
                    check.reason += "; no email address on file for the confirmation: an operator decides"
                    await self._wait_for(lambda: self._verified)
                    break
                if purpose:
                    await self._confirm_by_link(purpose, outcome)
                self._verified = True
                self._results["verifying"] = (
                    f"identity confirmed: {outcome.points} point(s) of {outcome.needed} needed "
                    f"({', '.join(outcome.matched_kinds)})"
                    + ("; confirmed by the person from the address on file" if purpose else "")
                )
                return
            if check.rounds > 1:
                await self._operator_decides_identity()
                break
            await self._ask_for_more(outcome)
        if "verifying" not in self._results:
            self._results["verifying"] = "identity confirmed by an operator"

    async def _operator_decides_identity(self) -> None:
        """The person answered and is still short: an operator decides (verify, reject, or
        no data held). Everyone is asked once and in the same words, whatever matched: asking
        again, and for what, would tell an impostor (or a non-customer) what we hold."""
        self._identity.reason += "; still short after the person's answer: an operator decides"
        self._publish()
        rounds = str(self._identity.rounds)
        await self._record([self._entry("identity:operator_decides", details={"rounds": rounds})])
        await self._wait_for(lambda: self._verified)

    async def _record_late_match(self, matching: asyncio.Future[VerifyOutcome]) -> None:
        """The match an operator's ``verify`` overtook, recorded when it comes back."""
        try:
            outcome = await matching
        except (ActivityError, asyncio.CancelledError):
            return
        check = self._identity
        check.rounds += 1
        check.points, check.needed = outcome.points, outcome.needed
        check.matched_kinds = list(outcome.matched_kinds)
        details = {"points": str(outcome.points), "needed": str(outcome.needed)}
        details["kinds"] = ",".join(outcome.matched_kinds) or "none"
        details["after"] = "an operator verified during the match"
        await self._record([self._entry("identity:matched", reason=outcome.reason, details=details)])

    async def _unless_verified(self, aw: Awaitable[T]) -> T | None:
        """Run ``aw`` unless an operator verifies meanwhile (a system may be down for hours)."""
        work = asyncio.ensure_future(aw)
        decided = asyncio.ensure_future(workflow.wait_condition(lambda: self._verified))
        await workflow.wait([work, decided], return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            decided.cancel()
            return work.result()
        # Not cancelled: the match may be completing at this very moment, and a cancel that
        # crosses a completion is refused by some servers. Its result is simply not used.
        work.add_done_callback(lambda f: f.cancelled() or f.exception())
        return None

    async def _match_identity(self) -> VerifyOutcome:
        """Read the systems' person-records; a system that is down shows on the case ("matching
        identity: crm unreachable since ..., attempt N"), is audited when it goes down and when
        it is back, tells the team after a while, and is tried again with backoff."""
        attempt = 0
        while True:
            try:
                result: VerifyOutcome = await workflow.execute_activity_method(
                    VerifyActivities.verify_identity,
                    VerifyInput(
                        self._case.reference,
                        self._case.regime.value,
                        self._case.request_type.value,
                        # never the data in dispute: a correction is verified with other identifiers
                        {k: v for k, v in self._identifiers.items() if k not in self._case.corrections},
                    ),
                    start_to_close_timeout=timedelta(minutes=10),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=SEARCH_RETRY_VERIFY,
                    summary="match identity against our systems",
                )
            except ActivityError as e:
                cause = e.cause
                if not (isinstance(cause, ApplicationError) and cause.type == "SystemUnavailable"):
                    raise
                attempt += 1
                system = str(cause.details[0]) if cause.details else "a system"
                since = self._match_since if attempt > 1 else workflow.now()
                self._match_since = since
                local = local_minute(since, self._tz)
                self._match_note = f"{system} unreachable since {local}, attempt {attempt}"
                self._publish()
                entries = []
                if attempt == 1:
                    entries.append(self._entry("identity:unreachable", details={"system": system}))
                await self._record(entries)
                if attempt == UNREACHABLE_NOTICE_ATTEMPT:
                    await self._letter(
                        "system_unreachable",
                        system=system,
                        since=local_minute(since, self._tz),
                        attempts=str(attempt),
                    )
                await workflow.sleep(search_backoff(attempt), summary="retry matching identity")
                continue
            if attempt:
                self._match_note = ""
                await self._record([self._entry("identity:reachable", details={"attempts": str(attempt)})])
            return result

    def _power_of_attorney(self) -> bool:
        agent = self._case.agent
        return agent is not None and agent.authority == AgentAuthority.POWER_OF_ATTORNEY

    async def _check_authority(self, agent: AgentDetails) -> None:
        """An agent's request: the signed permission or power of attorney first. Asked of the
        agent, with a secure upload link; the clock follows the regime (UK: restarts when it
        arrives); no answer in time and the case expires, with a letter to the agent."""
        check = self._identity
        if not self._authority_received:
            wait = WAITS[DecisionKind.REQUEST_AUTHORITY]
            self._awaiting[wait.name] = workflow.now()
            self._events.append(ClockEvent(wait.asked, self._today().isoformat()))
            self._clock_version += 1
            self._changes += 1
            check.authority = "requested"
            days = self._case.policy.wait_for_person_days
            until = local_date(workflow.now() + timedelta(days=days), self._tz)
            await self._letter(
                "authority_request",
                link_purpose="provide_authority",
                link_hours=str(days * 24),
                reason=AUTHORITY_TEXT[agent.authority.value],
                wait_until=until.isoformat(),
            )
            await self._record(
                [self._entry("agent:authority_requested", details={"authority": agent.authority.value})]
            )
            self._publish()
            await self._wait_for(lambda: self._verified or self._authority_received)
        if self._authority_received:
            check.authority = "received"

    def _requester(self) -> tuple[str | None, str]:
        """Who letters about the request go to (address, greeting): the agent, if any."""
        agent = self._case.agent
        if agent is not None:
            return agent.email or None, agent.name or "requester"
        ids = self._case.identifiers
        return ids.get("email"), ids.get("name") or "requester"

    def _confirmation_purpose(self, outcome: VerifyOutcome) -> str:
        """Which confirmation the request needs from the person, if any."""
        agent = self._case.agent or (AgentDetails("", "") if self._case.by_agent else None)
        if (
            agent is not None
            and agent.authority == AgentAuthority.WRITTEN_PERMISSION
            and outcome.subject_confirms
        ):
            return "confirm_agent"
        online = self._case.channel in (Channel.WEB_FORM, Channel.EMAIL, Channel.API)
        if self._case.request_type == RequestType.ERASURE and online and outcome.confirm_erasure:
            return "confirm_erasure"
        return ""

    async def _confirm_by_link(self, purpose: str, outcome: VerifyOutcome) -> None:
        """Send a single-use link to the address we hold and wait for the person to use it (or an
        operator to decide). Unconfirmed when the link expires: the case ends, with a letter."""
        check = self._identity
        check.confirmation = "sent"
        seen = self._changes
        await self._letter(
            "confirm_request",
            to=outcome.contact_on_file,
            link_purpose=purpose,
            link_hours=str(outcome.link_valid_hours),
            purpose_text=CONFIRMATION_TEXT[purpose],
        )
        await self._record([self._entry("identity:confirmation_sent", details={"purpose": purpose})])
        self._publish()

        def answered() -> bool:
            return self._verified or self._ending is not None or (self._confirmed and self._changes != seen)

        try:
            await workflow.wait_condition(
                answered,
                timeout=timedelta(hours=outcome.link_valid_hours),
                timeout_summary="the person has until the link expires to confirm",
            )
        except TimeoutError:
            self._ending = (Stage.EXPIRED, "your confirmation", "expiry")
        self._check_end()
        if self._confirmed:
            check.confirmation = "confirmed"

    async def _ask_for_more(self, outcome: VerifyOutcome) -> None:
        """Ask the person for identifiers they have not given (a fixed list: what we ask never
        tells what we hold), with a link to a secure form; the clock follows the regime."""
        seen = self._provided
        wait = WAITS[DecisionKind.REQUEST_IDENTITY]
        self._awaiting[wait.name] = workflow.now()
        self._events.append(ClockEvent(wait.asked, self._today().isoformat()))
        self._clock_version += 1
        self._changes += 1
        until = local_date(workflow.now() + timedelta(days=self._case.policy.wait_for_person_days), self._tz)
        # what we ask depends only on what the person gave, never on what matched: one more
        # when the email matched or not alike (the number would otherwise tell)
        missing = outcome.needed - (len(ASKABLE) - len(outcome.ask_for))
        # An agent's request: the person verifies directly with us, where the policy says so
        # (CCPA §7063(a)(2)): to the address we hold for them, else the one the agent gave.
        direct = self._case.agent is not None and outcome.subject_verifies and not self._power_of_attorney()
        person = (outcome.contact_on_file or self._case.identifiers.get("email")) if direct else None
        await self._letter(
            "identity_more",
            to=person,
            greeting=(self._case.identifiers.get("name") or "customer") if direct else "",
            on_behalf="yes" if direct else "",
            link_purpose="provide_identifiers",
            link_kinds=",".join(outcome.ask_for),
            link_hours=str(self._case.policy.wait_for_person_days * 24),
            link_declaration="yes" if outcome.declaration_needed else "",
            points_missing=str(max(missing, 1)),
            wait_until=until.isoformat(),
        )
        await self._record(
            [self._entry("identity:more_requested", details={"kinds": ",".join(outcome.ask_for)})]
        )
        self._publish()
        await self._wait_for(lambda: self._verified or self._provided != seen)

    async def _search(self) -> None:
        await self._move(Stage.SEARCHING, flush=False)
        # The register write and the plan (a read of the worker's data map) do not depend on
        # each other: run together, they usually come back in one activation.
        recorded = asyncio.ensure_future(self._record([]))
        planned = await self._attempt(
            "searching:plan",
            "plan the search from the data map",
            lambda: self._or_end(
                workflow.execute_local_activity_method(
                    SearchActivities.plan_search,
                    PlanInput(self._case.reference, sorted(self._identifiers), self._case.request_type.value),
                    start_to_close_timeout=timedelta(minutes=1),
                    retry_policy=WORK_RETRY,
                    summary="plan search from the data map",
                )
            ),
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

    async def _search_waves(self, plan: SearchPlan) -> None:
        """The first wave with what the person gave; then the systems keyed by what the first
        wave learned from the person's own records (e.g. recordings filed by customer number)."""
        identifiers = dict(self._identifiers)
        outcomes = await asyncio.gather(*(self._search_one(s, identifiers, plan.learn) for s in plan.first))
        if not plan.second:
            return
        learned: dict[str, set[str]] = {}
        for outcome in outcomes:
            for kind, value in outcome.items():
                learned.setdefault(kind, set()).add(value)
        for kind, values in sorted(learned.items()):
            if kind not in identifiers and len(values) == 1:  # systems disagreeing: no guess
                identifiers[kind] = next(iter(values))
        await asyncio.gather(*(self._search_one(s, identifiers, []) for s in plan.second))

    async def _search_one(self, system: str, identifiers: dict[str, str], learn: list[str]) -> dict[str, str]:
        """Search one system until it answers or an operator skips it.

        A system that is down does not fail the case: the case shows "unreachable since ...,
        attempt N" and tries again with backoff, for as long as it takes (the statutory clock
        escalates meanwhile). Retries are the workflow's, not the server's, so that each one is
        visible on the case and a skip can interrupt the wait."""
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
                kind, message = _failure(e)
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
        _abandon(work)
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

    async def _fulfil(self) -> None:
        await self._move(Stage.FULFILLING, flush=workflow.patched(REGISTER_STAGE_PATCH))
        if self._case.request_type in PACKAGE_TYPES:
            await self._build_package()
            return
        if self._change_plan is not None:
            await self._carry_out(self._change_plan)
            return
        what = FulfilInput(self._case.reference, self._case.request_type, list(self._systems.values()))
        fulfilled = await self._attempt(
            "fulfilling:fulfil",
            f"fulfil the {self._case.request_type.value} request",
            lambda: self._or_end(
                workflow.execute_activity_method(
                    FulfilActivities.fulfil_request,
                    what,
                    start_to_close_timeout=timedelta(hours=2),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=WORK_RETRY,
                    summary=f"fulfil the {self._case.request_type.value} request",
                )
            ),
            (RETRY, BY_HAND),
        )
        if isinstance(fulfilled, Resolved):
            self._results["fulfilling"] = fulfilled.words()
            label = REQUEST_LABELS[self._case.request_type]
            self._outcome = f"We have carried out your {label} request."
            return
        result: FulfilResult = fulfilled
        self._results["fulfilling"] = result.detail
        if result.mode == "manual":
            self._manual_fulfilment = True
            self._publish()
            await self._record([self._entry("fulfilment:manual", reason=result.detail)])
            await self._wait_for(lambda: self._fulfilled_by_hand)
            self._results["fulfilling"] = f"carried out by hand: {self._last_reason(DecisionKind.FULFILLED)}"
        self._outcome = self._outcome_text(result)

    async def _build_package(self) -> None:
        """The copy of the data, as the review decided it, and the expiring link to it. The
        URL and the ZIP's password are credentials: they stay in the blob store, and the letter
        activity reads them from there, so neither enters history."""
        assert self._review_status is not None
        what = PackageInput(
            self._case.reference,
            self._case.regime,
            self._case.request_type,
            self._received.isoformat(),
            list(self._systems.values()),
            self._review_status.decisions_ref,
        )
        built = await self._attempt(
            "fulfilling:package",
            "build the copy of the data",
            lambda: self._or_end(
                workflow.execute_activity_method(
                    ExportActivities.build_access_package,
                    what,
                    start_to_close_timeout=timedelta(hours=2),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=WORK_RETRY,
                    summary="build the copy of the data",
                )
            ),
            (RETRY, BY_HAND),
        )
        if isinstance(built, Resolved):
            self._sent_by_hand(built)
            return
        package: PackageResult = built
        self._seq += 1
        link_input = LinkInput(
            self._case.reference,
            package.blob_ref,
            package.file_name,
            audit_key=f"{self._case.reference}/package-link/{self._seq}",
            issued_at=workflow.now(),
        )
        issued = await self._attempt(
            "fulfilling:link",
            "issue the download link",
            lambda: self._or_end(
                workflow.execute_activity_method(
                    ExportActivities.issue_download_link,
                    link_input,
                    start_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=WORK_RETRY,
                    summary="issue the download link",
                )
            ),
            (RETRY, BY_HAND),
        )
        if isinstance(issued, Resolved):
            self._sent_by_hand(issued)
            return
        link: LinkResult = issued
        self._package, self._link = package, link
        self._results["fulfilling"] = package.detail
        if self._case.transfer_to:
            self._results["fulfilling"] += "; " + await self._transfer(what)
        expires = local_date(link.expires_at, self._tz).isoformat()
        self._outcome = (
            f"copy of the data sent by download link (until {expires}): {package.records} record(s) "
            f"from {package.systems} system(s), {package.withheld} withheld, {package.redacted} with "
            "parts removed"
        )
        await self._record(
            [
                self._entry(
                    "package:built",
                    details={
                        "package": package.blob_ref,
                        "sha256": package.sha256,
                        "bytes": str(package.bytes),
                        "files": str(package.files),
                        "records": str(package.records),
                        "withheld": str(package.withheld),
                        "redacted": str(package.redacted),
                        "untold": str(package.untold),
                        "encrypted": "yes" if package.encrypted else "no",
                        "link_expires": link.expires_at.isoformat(),
                    },
                )
            ]
        )

    def _sent_by_hand(self, resolved: Resolved) -> None:
        """The copy could not be built or linked here, and a person sent it another way."""
        self._results["fulfilling"] = f"copy of the data {resolved.words()}"
        self._outcome = (
            "We have sent you a copy of the personal data we hold about you separately, as our "
            "privacy team will explain."
        )

    def _manual_changes(self) -> list[str]:
        """Systems searched by hand that hold the person's data: their owners make the change."""
        return [
            s.system
            for s in self._systems.values()
            if s.status == "found" and self._change_plan is not None and s.system in self._change_plan.manual
        ]

    async def _carry_out(self, plan: ChangePlan) -> None:
        """Apply the approved plan one system at a time, each on its own queue, and prove it by
        searching again. A worker killed between two systems resumes at the next: each step is
        an activity in history, and applying a plan twice changes nothing more."""
        main = workflow.info().task_queue
        label = self._case.request_type.value
        for system in plan.systems:
            queue = system_task_queue(main, system)
            step = ChangeInput(self._case.reference, system, plan.plan_ref)
            applying = await self._on_system(
                ChangeActivities.apply_change, step, queue, f"{label} in {system}", "apply"
            )
            if isinstance(applying, Resolved):
                self._not_carried_out(system, applying)
                continue
            applied: ChangeApplied = applying
            verifying = await self._on_system(
                ChangeActivities.verify_change, step, queue, f"search {system} again to prove it", "verify"
            )
            if isinstance(verifying, Resolved):
                self._not_carried_out(system, verifying, applied=True)
                continue
            verified: ChangeVerified = verifying
            self._changed[system] = verified.detail
            counts = {
                f"{what}:{entity}": str(n)
                for what, per in (
                    ("deleted", applied.deleted),
                    ("anonymised", applied.anonymised),
                    ("kept", applied.kept),
                    ("changed", applied.changed),
                )
                for entity, n in per.items()
                if n
            }
            await self._record(
                [
                    self._entry("change:applied", details={"system": system, **counts}),
                    self._entry("change:verified", reason=verified.detail, details={"system": system}),
                ]
            )
            self._publish()
        manual = self._manual_changes()
        if not plan.systems and not manual and any(s.status == "found" for s in self._systems.values()):
            # the data map says of no system how to do this: a person does it, and says so
            manual = ["the systems holding the person's data (the data map gives no automatic way)"]
        if manual:
            self._manual_fulfilment = True
            self._publish()
            await self._record(
                [self._entry("fulfilment:manual", reason=f"to do by hand in: {', '.join(manual)}")]
            )
            await self._wait_for(lambda: self._fulfilled_by_hand)
        suppressing = await self._attempt(
            "fulfilling:suppression",
            "add the person to the suppression list",
            lambda: workflow.execute_activity_method(
                ChangeActivities.record_suppression,
                SuppressionInput(self._case.reference, plan.plan_ref),
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=WORK_RETRY,
                summary="add the person to the suppression list",
            ),
            (RETRY, SKIP),
        )
        suppressed = SuppressionRecorded(0) if isinstance(suppressing, Resolved) else suppressing
        if suppressed.entries:
            await self._record(
                [
                    self._entry(
                        "suppression:recorded",
                        reason=suppressed.reason,
                        details={"entries": str(suppressed.entries)},
                    )
                ]
            )
        done = "; ".join(f"{s}: {d}" for s, d in self._changed.items()) or "no system held data to change"
        if manual:
            done += f"; by hand in {', '.join(manual)}: {self._last_reason(DecisionKind.FULFILLED)}"
        self._results["fulfilling"] = done
        verified_in = len(self._changed) - len(self._not_done)
        self._outcome = f"{label} carried out and verified in {verified_in} system(s)"
        if self._not_done:
            self._outcome += f"; not carried out in {', '.join(sorted(self._not_done))}"
        self._carried_out = True

    def _not_carried_out(self, system: str, resolved: Resolved, applied: bool = False) -> None:
        """A step of the change in one system was skipped, or done by hand, by an operator: the
        case says so, and a skipped system is named in the letter (never claimed as done)."""
        self._changed[system] = ("applied, not verified: " if applied else "") + resolved.words()
        if not resolved.by_hand:
            self._not_done.add(system)
        self._publish()

    async def _on_system(
        self, method: Callable[[Any, ChangeInput], T], step: ChangeInput, queue: str, summary: str, name: str
    ) -> T | Resolved:
        """One step of a change, on the system's own queue (its worker holds the connection).
        A failure retrying cannot fix (a constraint the system refuses, a proof that fails) is
        an operator task: retry after a fix, skip the system with a reason, or do it by hand."""
        return await self._attempt(
            f"fulfilling:{name}:{step.system}",
            summary,
            lambda: self._or_end(
                workflow.execute_activity_method(
                    method,
                    step,
                    task_queue=queue,
                    start_to_close_timeout=timedelta(hours=1),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=WORK_RETRY,
                    summary=summary,
                )
            ),
            (RETRY, SKIP, BY_HAND),
            step.system,
        )

    async def _transfer(self, what: PackageInput) -> str:
        """Send the data the person provided to the controller they named (Art. 20(2)). A
        refusal (plain HTTP, an untrusted certificate, a 4xx) is told to the person and the team,
        not retried for ever: the person still gets the download."""
        self._seq += 1
        try:
            pushed: PushResult = await self._or_end(
                workflow.execute_activity_method(
                    ExportActivities.push_portable_data,
                    PushInput(
                        what, self._case.transfer_to, audit_key=f"{self._case.reference}/transfer/{self._seq}"
                    ),
                    start_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=PUSH_RETRY,
                    summary="send the data to the other controller",
                )
            )
        except ActivityError as e:
            cause = e.cause
            reason = cause.message if isinstance(cause, ApplicationError) else "the transfer failed"
            await self._record([self._entry("portability:refused", reason=reason)])
            self._transfer_note = f"We could not send it to the organisation you named: {reason}."
            return f"not sent to the other controller: {reason}"
        self._transfer_note = f"We have also sent it to the organisation you named ({pushed.host})."
        return f"sent to {pushed.host} ({pushed.bytes} bytes)"

    async def _respond(self) -> None:
        assert self._outcome is not None
        package = self._package
        if package is not None and not (package.records or package.withheld or package.redacted):
            # all it would hold is left out without a word: an empty copy would tell
            await self._respond_nothing_held()
            return
        if self._link is not None and self._package is not None:
            await self._letter(
                "response",
                link_ref=self._link.link_ref,
                link_expires=self._link.expires_at.isoformat(),
                encrypted="yes" if self._package.encrypted else "",
                transfer_note=self._transfer_note,
            )
            if self._package.password_ref:
                await self._letter("package_password", password_ref=self._package.password_ref)
        elif self._carried_out and self._change_plan is not None:
            note = ""
            if self._not_done:
                note = (
                    f"We could not yet complete this in: {', '.join(sorted(self._not_done))}. Our "
                    "privacy team will write to you about it."
                )
            await self._letter("response", outcome_ref=self._change_plan.letter_ref, outcome_note=note)
        else:
            await self._letter("response", outcome=self._outcome)
        self._events.append(ClockEvent(ClockEventType.RESPONDED, self._today().isoformat()))
        self._clock_version += 1
        self._results["responded"] = f"responded on {self._today()}"
        await self._move(Stage.RESPONDED)

    async def _end(self) -> None:
        try:
            await self._end_case()
        except asyncio.CancelledError:  # cancelled in the engine while ending: end it all the same
            workflow.logger.warning("cancel while the case was ending: it ends as decided")
            await self._end_case()

    async def _end_case(self) -> None:
        assert self._ending is not None
        for task in self._tasks.values():  # nothing is waited for any more
            if task.status == "open" and not task.id.startswith("letter:"):
                self._close_task(task, "the case ended")
        stage, outcome, letter = self._ending
        self._outcome = outcome
        facts: dict[str, str] = {"reason": outcome}
        if stage == Stage.EXPIRED:
            facts["awaited"] = outcome
        if letter == "nothing_held":
            facts = self._nothing_held_facts()
        facts.update(self._end_facts)
        if not self._end_letter_sent:  # a cancel may interrupt this and run it again
            self._end_letter_sent = True
            # The letter usually goes at once. One that cannot go (the relay refuses the
            # address) waits for a person as a task, but does not hold the case open: a
            # withdrawal never hangs on its own letter.
            sending = self._end_sending = asyncio.ensure_future(self._letter(letter, **facts))
            prefix = f"letter:{letter}:"
            await workflow.wait_condition(
                lambda: (
                    sending.done()
                    or any(t.id.startswith(prefix) and t.status == "open" for t in self._tasks.values())
                )
            )
        if stage == Stage.RESPONDED:
            self._events.append(ClockEvent(ClockEventType.RESPONDED, self._today().isoformat()))
            self._results["responded"] = f"responded on {self._today()}: no personal data held"
        self._clock_version += 1
        if self._stage != stage:
            await self._move(stage, reason=outcome)

    def _holds_nothing(self) -> bool:
        """The search found nothing of the person anywhere it looked."""
        return not any(s.status == "found" for s in self._systems.values())

    def _nothing_held_facts(self) -> dict[str, str]:
        """What the "we hold nothing" letter may say, from the search as recorded: the systems
        searched, and those not searched (skipped, or a search that failed)."""
        systems = self._systems.values()
        return {
            # "found" too: a copy left empty by exemptions the person must not hear of reads as
            # nothing held (neither confirm nor deny)
            "searched": ",".join(s.system for s in systems if s.status in ("none", "found")),
            "skipped": ",".join(s.system for s in systems if s.status in ("skipped", "failed")),
            "retention_days": str(self._case.policy.case_retention_days),
        }

    async def _respond_nothing_held(self) -> None:
        """We hold no personal data about the person: a plain letter says so, with what the law
        still asks us to tell them; no empty package, no review of nothing."""
        self._outcome = "no personal data held: the person was told so"
        self._results["fulfilling"] = "nothing to fulfil: the search found no personal data"
        await self._letter("nothing_held", **self._nothing_held_facts())
        self._events.append(ClockEvent(ClockEventType.RESPONDED, self._today().isoformat()))
        self._clock_version += 1
        self._results["responded"] = f"responded on {self._today()}: no personal data held"
        await self._move(Stage.RESPONDED, reason="no personal data held")

    def _end_identity_waits(self) -> str:
        """An operator verified while the case waited for the person's identity or an agent's
        authority: the wait ends, and the clock records the answer that day (identity is
        settled then, as if it had arrived)."""
        ended = []
        for asked in (DecisionKind.REQUEST_IDENTITY, DecisionKind.REQUEST_AUTHORITY):
            if WAITS[asked].name in self._awaiting:
                self._answered(asked)
                ended.append(WAITS[asked].name)
        return ",".join(ended)

    def _outcome_text(self, result: FulfilResult) -> str:
        if result.mode == "package":
            return (
                f"We have prepared a copy of the personal data we hold about you: {result.records} "
                f"record(s) from the systems we searched. Our privacy team will deliver it to you "
                f"securely; we will not send it as an ordinary email attachment."
            )
        label = REQUEST_LABELS[self._case.request_type]
        return f"We have carried out your {label} request in every system that holds your data."

    # ------------------------------------------------------------------ waiting

    def _check_end(self) -> None:
        if self._ending is not None:
            raise CaseEnded()

    async def _or_end(self, aw: Awaitable[T]) -> T:
        """Run a stage's work, abandoning it if a decision ends the case meanwhile."""
        work = asyncio.ensure_future(aw)
        ending = asyncio.ensure_future(workflow.wait_condition(lambda: self._ending is not None))
        try:
            await workflow.wait([work, ending], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # cancelled in the engine: the work is not waited for
            ending.cancel()
            _abandon(work)
            raise
        if work.done():
            ending.cancel()
            return work.result()
        work.cancel()
        raise CaseEnded()

    async def _wait_for(self, ready: Callable[[], bool]) -> None:
        """Wait for a decision, while honouring anything asked of the person.

        If the person does not answer within the policy's time the case expires (no proof of
        identity, authority or fee within the allowed time).
        """
        limit = timedelta(days=self._case.policy.wait_for_person_days)
        while True:
            self._check_end()
            if ready() and not self._awaiting:
                return
            seen = self._changes

            def changed(seen: int = seen) -> bool:
                return self._changes != seen or self._ending is not None

            if self._awaiting:
                name, asked = min(self._awaiting.items(), key=lambda kv: kv[1])
                remaining = asked + limit - workflow.now()
                wait = next(w for w in WAITS.values() if w.name == name)
                if remaining <= timedelta(0):
                    self._ending = (Stage.EXPIRED, wait.awaited, "expiry")
                    continue
                # One reminder to the person halfway through the time they have.
                key = f"{name}@{asked.isoformat()}"
                remind_in = asked + limit / 2 - workflow.now()
                if key not in self._person_reminded and remind_in > timedelta(0):
                    try:
                        await workflow.wait_condition(
                            changed, timeout=remind_in, timeout_summary=f"remind the person about the {name}"
                        )
                    except TimeoutError:
                        self._person_reminded.add(key)
                        until = local_date(asked + limit, self._tz).isoformat()
                        await self._letter("person_reminder", awaited=wait.awaited, wait_until=until)
                    continue
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        changed,
                        timeout=remaining,
                        timeout_summary=f"person has until then to send the {name}",
                    )
            else:
                await workflow.wait_condition(changed)

    # ------------------------------------------------------------------ decisions

    @workflow.update
    async def decide(self, d: Decision) -> DecisionResult:
        stage = self._stage
        self._decisions.append(
            DecisionRecord(d.kind, d.actor, d.reason, d.ground, workflow.now(), stage, d.system)
        )
        details = {"stage": stage.value}
        for key, value in (
            ("ground", d.ground),
            ("system", d.system),
            ("attachment", d.attachment),
            ("task", d.task),
        ):
            if value:
                details[key] = value
        entries = [self._entry(f"decision:{d.kind.value}", actor=d.actor, reason=d.reason, details=details)]
        letter: tuple[str, dict[str, str]] | None = None
        today = self._today().isoformat()
        if d.kind == DecisionKind.VERIFY:
            self._verified = True
            ended = self._end_identity_waits()
            if ended:
                details["wait_ended"] = ended
        elif d.kind == DecisionKind.NO_DATA_HELD:
            self._ending = (Stage.RESPONDED, "no personal data held: the person was told so", "nothing_held")
        elif d.kind in TASK_DECISIONS:
            task = self._tasks[d.task]
            task.status = TASK_STATUS[d.kind.value]
            task.resolved_by, task.resolution = d.actor, d.reason
        elif d.kind == DecisionKind.APPROVE:
            entries.append(self._approval(d.actor, d.reason))
        elif d.kind == DecisionKind.FULFILLED:
            self._fulfilled_by_hand = True
        elif d.kind == DecisionKind.PERSON_CONFIRMED:
            self._confirmed = True
        elif d.kind == DecisionKind.CLASSIFY:
            regime = Regime(d.regime)
            policy = self._case.policy
            policy = replace(policy, calendar=policy.calendars.get(regime.value, policy.calendar))
            self._case = replace(
                self._case, request_type=RequestType(d.request_type), regime=regime, policy=policy
            )
            self._clock_memo = None
            self._classified = True
            details.update(request_type=d.request_type, regime=d.regime)
        elif d.kind == DecisionKind.SKIP_SYSTEM:
            self._skipped[d.system] = d.reason
            self._systems[d.system] = SystemResult(
                d.system, "skipped", detail=f"skipped by {d.actor}: {d.reason}"
            )
        elif d.kind == DecisionKind.SYSTEM_FOUND:
            self._manual_answers[d.system] = SystemResult(
                d.system,
                "found",
                records=d.records,
                blob_ref=d.attachment,
                detail=f"searched by hand by {d.actor}" + (f": {d.reason}" if d.reason else ""),
            )
        elif d.kind == DecisionKind.NOTHING_HELD:
            self._manual_answers[d.system] = SystemResult(
                d.system,
                "none",
                detail=f"nothing held, searched by hand by {d.actor}" + (f": {d.reason}" if d.reason else ""),
            )
        elif d.kind == DecisionKind.WITHDRAW:
            self._ending = (Stage.WITHDRAWN, d.reason or "withdrawn at the person's request", "withdrawal")
        elif d.kind == DecisionKind.ADD_DETAILS:
            self._case = replace(
                self._case,
                corrections={**self._case.corrections, **d.corrections},
                transfer_to=d.transfer_to or self._case.transfer_to,
                objection=d.objection or self._case.objection,
            )
            added = [*sorted(d.corrections), *(["transfer_to"] if d.transfer_to else [])]
            details["added"] = ",".join([*added, *(["objection"] if d.objection else [])])  # names only
        elif d.kind == DecisionKind.MERGE:
            self._end_facts = {"merged_into": d.merge_into, "merged_due": d.merge_due}
            self._ending = (Stage.MERGED, f"answered together with {d.merge_into}", "merged")
            details["merged_into"] = d.merge_into
        elif d.kind == DecisionKind.REJECT:
            label = REFUSAL_GROUNDS.get(d.ground)
            why = f"we consider the request {label} (Art. 12(5)): {d.reason}" if label else d.reason
            self._ending = (Stage.REJECTED, why, "rejection")
        elif d.kind == DecisionKind.EXTEND:
            self._events.append(ClockEvent(ClockEventType.EXTENSION_NOTIFIED, today))
            self._clock_version += 1
            letter = ("extension_notice", {"reason": d.reason})
        elif d.kind in WAITS:
            wait = WAITS[d.kind]
            self._awaiting[wait.name] = workflow.now()
            self._events.append(ClockEvent(wait.asked, today))
            self._clock_version += 1
            until = local_date(
                workflow.now() + timedelta(days=self._case.policy.wait_for_person_days), self._tz
            )
            letter = (wait.letter, {"reason": d.reason, "wait_until": until.isoformat(), "fee": d.fee})
        elif d.kind in ANSWERS:
            wait = ANSWERS[d.kind]
            self._awaiting.pop(wait.name, None)
            if d.kind == DecisionKind.AUTHORITY_RECEIVED:  # e.g. by post: the operator saw it
                self._authority_received = True
            self._events.append(ClockEvent(wait.answered, today))
            self._clock_version += 1
        self._changes += 1
        self._pending += entries
        self._publish()
        if letter is not None:
            await self._letter(letter[0], **letter[1])
        # Let the main flow act on the decision first: when it moves the case on, its register
        # write carries this decision too (one write, and the row shows the stage reached).
        await workflow.wait_condition(lambda: True)
        await self._record([])
        if self._ending is not None:
            # the case ends in a final stage, or answered (no data held): wait for the letter
            end = self._ending[0]
            await workflow.wait_condition(lambda: self._stage in FINAL_STAGES or self._stage == end)
        return DecisionResult(
            stage=self._stage, due=self._due().isoformat(), message=self._decision_message(d)
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
        if self._four_eyes() and verifier and _person(verifier) == _person(actor):
            raise ValueError(
                f"four-eyes: {actor} verified this person's identity, so another member of staff must review"
            )
        status = self._review_status
        if not approving or status is None:
            return
        if any(_person(a) == _person(actor) for a in status.approvals):
            raise ValueError(
                f"{actor} has approved this review already: a second reviewer must approve it too"
            )
        if self._four_eyes() and status.last_amended_by and _person(status.last_amended_by) == _person(actor):
            raise ValueError(
                f"four-eyes: {actor} amended this review last, so another member of staff must approve it"
            )

    def _four_eyes(self) -> bool:
        policy = self._case.policy
        return policy.four_eyes or policy_applies(
            policy.four_eyes_for, self._case.regime, self._case.request_type
        )

    def _approvals_needed(self) -> int:
        """Two different people approve where the policy asks for a second approver."""
        policy = self._case.policy
        return (
            2 if policy_applies(policy.second_approver_for, self._case.regime, self._case.request_type) else 1
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

    @workflow.update
    async def take_merged(self, merged: MergedRequest) -> str:
        """A duplicate of this request was merged into it: the answer names both references."""
        if merged.reference not in self._also_answers:
            self._also_answers.append(merged.reference)
            self._pending.append(
                self._entry("case:merged_in", actor=merged.actor, details={"reference": merged.reference})
            )
            self._changes += 1
        await workflow.wait_condition(lambda: True)
        await self._record([])
        return f"{self._case.reference} answers {', '.join(self._also_answers)} too"

    @take_merged.validator
    def _validate_take_merged(self, merged: MergedRequest) -> None:
        if not merged.actor:
            raise ValueError("a merge must say who made it (actor)")
        if not REFERENCE_RE.match(merged.reference) or merged.reference == self._case.reference:
            raise ValueError("the duplicate's reference is not a case reference")
        if self._ending is not None or self._stage in (*FINAL_STAGES, Stage.FULFILLING, Stage.RESPONDED):
            raise ValueError(
                f"case {self._case.reference} is {self._stage.value}: its answer is under way or sent, so a "
                "duplicate can no longer be answered with it"
            )

    @workflow.update
    async def provide_identifiers(self, p: ProvidedIdentifiers) -> str:
        """More identifiers from the person (the secure form). Merged into what the case knows;
        the audit says which kinds arrived, never their values."""
        self._identifiers_arrived(p.identifiers)
        if p.declaration:
            self._identity.declared = True
        self._changes += 1
        self._pending.append(
            self._entry(
                "identity:received",
                actor=f"person:{p.via}",
                details={
                    "kinds": ",".join(sorted(p.identifiers)),
                    "declaration": "yes" if p.declaration else "no",
                },
            )
        )
        self._publish()
        await workflow.wait_condition(lambda: True)
        await self._record([])
        return "received"

    def _answered(self, asked: DecisionKind) -> None:
        """The person answered what ``asked`` asked for: the wait ends and the clock records
        the receipt (where it was asked for; an answer nobody waited for moves nothing)."""
        wait = WAITS[asked]
        if self._awaiting.pop(wait.name, None) is not None:
            self._events.append(ClockEvent(wait.answered, self._today().isoformat()))
            self._clock_version += 1

    def _identifiers_arrived(self, identifiers: dict[str, str]) -> None:
        self._identifiers.update({k: v for k, v in identifiers.items() if v.strip()})
        self._answered(DecisionKind.REQUEST_IDENTITY)
        self._provided += 1

    def _authority_arrived(self) -> None:
        self._authority_received = True
        self._identity.authority = "received"
        self._answered(DecisionKind.REQUEST_AUTHORITY)

    @workflow.update
    async def provide_authority(self, doc: AuthorityDocument) -> str:
        """The agent's signed permission or power of attorney arrived (the agent's upload link,
        an operator's upload). The document stays in the blob store; the audit names its
        reference, and the clock records its receipt where it was asked for."""
        self._authority_arrived()
        self._changes += 1
        actor = doc.via if doc.via.startswith("staff:") else f"agent:{doc.via}"
        self._pending.append(
            self._entry("agent:authority_received", actor=actor, details={"document": doc.document})
        )
        self._publish()
        await workflow.wait_condition(lambda: True)
        await self._record([])
        return "received"

    @workflow.update
    async def receive_correspondence(self, mail: Correspondence) -> str:
        """An email about the case (a reply in its thread). Always on the case file; what it
        carries is used only where the case asked for it, and identifiers only when it comes
        from the requester's own address (anyone can put a reference in a subject line)."""
        if mail.message_id in self._mail_seen:
            return "already received"
        self._mail_seen.add(mail.message_id)
        requester, _ = self._requester()
        own = bool(requester) and mail.sender.strip().lower() == (requester or "").strip().lower()
        used: list[str] = []
        if own and mail.identifiers and WAITS[DecisionKind.REQUEST_IDENTITY].name in self._awaiting:
            self._identifiers_arrived(mail.identifiers)
            used.append("identifiers")
        if (
            own
            and mail.document
            and self._case.agent is not None
            and not self._authority_received
            and self._stage in (Stage.RECEIVED, Stage.ACKNOWLEDGED, Stage.VERIFYING)
        ):
            self._authority_arrived()
            used.append("authority")
        self._changes += 1
        details = {"message": mail.original, "kinds": ",".join(sorted(mail.identifiers)) or "none"}
        details["used"] = ",".join(used) or "none"
        if mail.document:
            details["document"] = mail.document
        reason = "" if own else "not from the requester's address: kept on file, not used"
        self._pending.append(
            self._entry("correspondence:received", actor="intake:email", reason=reason, details=details)
        )
        self._publish()
        await workflow.wait_condition(lambda: True)
        await self._record([])
        return "used: " + (", ".join(used) or "nothing")

    @receive_correspondence.validator
    def _validate_correspondence(self, mail: Correspondence) -> None:
        if self._stage in FINAL_STAGES or self._ending is not None:
            raise ValueError(f"case {self._case.reference} is {self._stage.value}")
        try:
            case, _ = parse_ref(mail.original)
        except ValueError:
            raise ValueError("the message must be a blob reference") from None
        if case != self._case.reference:
            raise ValueError("the message belongs to another case")

    @provide_authority.validator
    def _validate_authority(self, doc: AuthorityDocument) -> None:
        if self._case.agent is None:
            raise ValueError("this request was not made by an agent")
        if self._ending is not None or self._stage not in (
            Stage.RECEIVED,
            Stage.ACKNOWLEDGED,
            Stage.VERIFYING,
        ):
            raise ValueError("this case is not waiting for proof of authority")
        if self._authority_received:
            raise ValueError("the proof of authority is already on the case")
        try:
            case, _ = parse_ref(doc.document)
        except ValueError:
            raise ValueError("the document must be a blob reference") from None
        if case != self._case.reference:
            raise ValueError("the document belongs to another case")

    @provide_identifiers.validator
    def _validate_provided(self, p: ProvidedIdentifiers) -> None:
        if self._stage != Stage.VERIFYING or self._ending is not None:
            raise ValueError("this case is not waiting for identity information")
        if "identity" not in self._awaiting:
            raise ValueError("we did not ask for more information on this case")
        kinds = {k.value for k in IdentifierKind}
        if not p.identifiers or any(k not in kinds for k in p.identifiers):
            raise ValueError("identifiers must be known kinds, at least one")

    @decide.validator
    def _validate_decision(self, d: Decision) -> None:
        """Refuse, with a message an operator can act on, a decision that makes no sense now."""
        if not d.actor:
            raise ValueError("a decision must say who took it (actor)")
        for name, value in (("reason", d.reason), ("ground", d.ground), ("system", d.system), ("fee", d.fee)):
            problem = text_problem(value, lines="keep" if name == "reason" else "refuse")
            if problem is not None:  # the API's gate refuses these first; other clients meet this
                raise ValueError(f"{name}: {problem}")
        if d.kind in TASK_DECISIONS:
            self._validate_task_decision(d)
            return
        if self._ending is not None or self._stage in FINAL_STAGES:
            raise ValueError(f"case {self._case.reference} is {self._stage.value}: no further decisions")
        allowed = ALLOWED[d.kind]
        if self._stage not in allowed:
            where = ", ".join(s.value for s in Stage if s in allowed)
            raise ValueError(
                f"'{d.kind.value}' is not allowed while the case is {self._stage.value} (allowed in: {where})"
            )
        if (
            d.kind in (DecisionKind.REJECT, DecisionKind.EXTEND, DecisionKind.FULFILLED)
            and not d.reason.strip()
        ):
            raise ValueError(f"'{d.kind.value}' needs a reason, which is recorded and told to the person")
        if d.kind == DecisionKind.REQUEST_FEE:
            if not d.reason.strip():
                raise ValueError(
                    "'request_fee' needs the reason the request is manifestly unfounded or excessive: "
                    "it is recorded and told to the person"
                )
            if not FEE_RE.match(d.fee):
                raise ValueError("'request_fee' needs the amount, as currency and number, e.g. GBP 10.00")
        if d.kind == DecisionKind.REJECT and d.ground not in REJECT_GROUNDS:
            raise ValueError(f"'reject' needs a ground, one of: {', '.join(sorted(REJECT_GROUNDS))}")
        if d.kind == DecisionKind.EXTEND:
            self._validate_extension()
        if d.kind in WAITS and WAITS[d.kind].name in self._awaiting:
            raise ValueError(f"already waiting for the person's {WAITS[d.kind].name}")
        if d.kind in ANSWERS and ANSWERS[d.kind].name not in self._awaiting:
            raise ValueError(f"nothing was asked of the person for '{ANSWERS[d.kind].name}'")
        if d.kind == DecisionKind.VERIFY and self._verified:
            raise ValueError("identity is already confirmed")
        if d.kind == DecisionKind.NO_DATA_HELD:
            self._validate_no_data_held(d)
        if d.kind == DecisionKind.MERGE:
            self._validate_merge(d)
        if d.kind == DecisionKind.ADD_DETAILS:
            self._validate_details(d)
        if d.kind == DecisionKind.APPROVE and self._awaiting:
            raise ValueError(
                f"still waiting for the person ({', '.join(sorted(self._awaiting))}): record the answer first"
            )
        if d.kind == DecisionKind.APPROVE:
            self._validate_reviewer(d.actor)
        if d.kind == DecisionKind.FULFILLED and not self._manual_fulfilment:
            raise ValueError("this fulfilment is automatic: there is nothing to confirm by hand")
        if d.kind in SYSTEM_DECISIONS:
            self._validate_system_decision(d)
        if d.kind == DecisionKind.PERSON_CONFIRMED and self._identity.confirmation != "sent":
            raise ValueError("no confirmation was asked of the person")
        if d.kind == DecisionKind.CLASSIFY:
            if d.request_type not in {t.value for t in RequestType}:
                raise ValueError(
                    f"'classify' needs a request type, one of: {', '.join(t.value for t in RequestType)}"
                )
            if d.regime not in {r.value for r in Regime}:
                raise ValueError(f"'classify' needs a regime, one of: {', '.join(r.value for r in Regime)}")

    def _validate_details(self, d: Decision) -> None:
        """Only what this request type uses, in text that can travel to the end of the case."""
        kind = self._case.request_type
        if not (d.corrections or d.transfer_to or d.objection):
            raise ValueError("'add_details' needs corrections, transfer_to or objection")
        if d.corrections and kind != RequestType.RECTIFICATION:
            raise ValueError("corrections: only a rectification request corrects data")
        if d.transfer_to and kind != RequestType.PORTABILITY:
            raise ValueError("transfer_to: only a portability request is sent to another controller")
        if d.transfer_to and not d.transfer_to.startswith("https://"):
            raise ValueError("transfer_to: an https:// address of the other controller")
        if d.objection and kind != RequestType.OBJECTION:
            raise ValueError("objection: only an objection names the processing objected to")
        known = {k.value for k in IdentifierKind}
        given = (*d.corrections.items(), ("transfer_to", d.transfer_to), ("objection", d.objection))
        for name, value in given:
            if name not in known | {"transfer_to", "objection"}:
                raise ValueError(f"corrections: unknown detail {name!r}")
            problem = text_problem(value)
            if problem is not None or len(value) > 2000:
                raise ValueError(f"{name}: {problem or 'too long'}")

    def _validate_merge(self, d: Decision) -> None:
        if not REFERENCE_RE.match(d.merge_into) or d.merge_into == self._case.reference:
            raise ValueError("'merge' needs the reference of the other open case (merge_into)")
        try:
            date.fromisoformat(d.merge_due)
        except ValueError:
            raise ValueError("'merge' needs the other case's due date (merge_due, YYYY-MM-DD)") from None
        if self._also_answers:
            raise ValueError(f"other requests were merged into this one ({', '.join(self._also_answers)})")

    def _validate_no_data_held(self, d: Decision) -> None:
        if not d.reason.strip():
            raise ValueError("'no_data_held' needs a reason: how you know we hold nothing (it is recorded)")
        found = [s.system for s in self._systems.values() if s.status == "found"]
        if found:
            raise ValueError(f"the search found the person's data in {', '.join(found)}: it is held")

    def _validate_task_decision(self, d: Decision) -> None:
        task = self._tasks.get(d.task)
        if task is None or task.status != "open":
            open_ids = ", ".join(t.id for t in self._tasks.values() if t.status == "open") or "none"
            raise ValueError(f"'{d.kind.value}' needs an open operator task (task); open: {open_ids}")
        if d.kind.value not in task.ways_out:
            raise ValueError(
                f"'{d.kind.value}' is not a way out of '{task.step}' (ways out: {', '.join(task.ways_out)})"
            )
        if d.kind != DecisionKind.RETRY_STEP and not d.reason.strip():
            raise ValueError(f"'{d.kind.value}' needs a reason: it is recorded, and the person may be told")

    def _validate_system_decision(self, d: Decision) -> None:
        result = self._systems.get(d.system)
        if result is None:
            known = ", ".join(self._systems) or "none yet"
            raise ValueError(f"'{d.kind.value}' needs a system being searched (searched: {known})")
        if d.kind == DecisionKind.SKIP_SYSTEM:
            if not d.reason.strip():
                raise ValueError("skipping a system needs a reason: it is recorded and the review sees it")
            if result.status not in ("searching", "unreachable", "waiting"):
                raise ValueError(f"{d.system} has already been searched ({result.status})")
            return
        if result.status != "waiting" or d.system in self._manual_answers:
            raise ValueError(f"{d.system} is not waiting for a search by hand")
        if d.kind == DecisionKind.SYSTEM_FOUND:
            try:
                case, _ = parse_ref(d.attachment)
            except ValueError:
                raise ValueError("'system_found' needs the upload's blob reference (attachment)") from None
            if case != self._case.reference:
                raise ValueError("the upload belongs to another case")
            if d.records < 1:
                raise ValueError("'system_found' needs the number of records found (at least 1)")

    def _validate_extension(self) -> None:
        if any(e.type == ClockEventType.EXTENSION_NOTIFIED for e in self._events):
            raise ValueError("the deadline has already been extended once")
        try:
            deadline = self._clock().due(DeadlineKind.EXTENSION_NOTICE_DUE, as_of=self._today())
        except DeadlineNotApplicable as e:
            raise ValueError(f"no extension is possible under {self._case.regime.value}: {e}") from None
        if self._today() > deadline:
            raise ValueError(f"too late to extend: notice had to be given by {deadline.isoformat()}")

    def _decision_message(self, d: Decision) -> str:
        if d.kind == DecisionKind.EXTEND:
            return f"deadline extended to {self._due().isoformat()}; the person has been told why"
        if d.kind in WAITS:
            return (
                f"asked the person for the {WAITS[d.kind].name}; the clock follows {self._case.regime.value}"
            )
        return f"recorded '{d.kind.value}'; the case is {self._stage.value}"

    # ------------------------------------------------------------------ the statutory clock

    def _clock(self) -> StatutoryClock:
        """The clock over the event log as it stands (rebuilt only when an event was added: the
        log only grows, and every register write and letter asks for the due date)."""
        if self._clock_memo is None or self._clock_memo[0] != len(self._events):
            clock = StatutoryClock(
                self._case.regime,
                self._case.request_type,
                self._received,
                list(self._events),
                ClockPolicy.from_case_policy(self._case.policy),
            )
            self._clock_memo = (len(self._events), clock)
        return self._clock_memo[1]

    def _today(self) -> date:
        return local_date(workflow.now(), self._tz)

    def _due(self) -> date:
        clock = self._clock()
        return clock.due(primary_kind(self._case.regime, self._case.request_type), as_of=self._today())

    def _optional_due(self, kind: DeadlineKind) -> str | None:
        try:
            return self._clock().due(kind, as_of=self._today()).isoformat()
        except DeadlineNotApplicable:
            return None

    def _paused(self) -> bool:
        return self._clock().is_waiting()

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

    # ------------------------------------------------------------------ effects

    def _entry(
        self, action: str, actor: str = "system", reason: str = "", details: dict[str, str] | None = None
    ) -> AuditEntry:
        self._seq += 1
        return AuditEntry(
            key=f"{self._case.reference}/{self._seq}",
            action=action,
            actor=actor,
            reason=reason,
            details=details or {},
        )

    async def _move(
        self, stage: Stage, reason: str = "", extra: list[AuditEntry] | None = None, flush: bool = True
    ) -> None:
        """Enter a stage. ``flush=False`` when the stage's own work is short and ends in another
        record: the entries are then written with it, one register write instead of two."""
        previous = self._stage
        self._stage = stage
        self._publish()
        entry = self._entry(f"stage:{stage.value}", reason=reason, details={"from": previous.value})
        self._pending += [*(extra or []), entry]
        if flush:
            await self._record([])

    async def _record(self, entries: list[AuditEntry]) -> None:
        """Write audit entries and bring the register row up to date, one transition at a time.

        Nothing is written when there is no entry and the row would not change (e.g. a decision
        whose entry the main flow's next record already carried)."""
        async with self._record_lock:
            entries = [*self._pending, *entries]
            self._pending = []
            row = CaseRecord(
                reference=self._case.reference,
                at=workflow.now(),
                stage=self._stage.value,
                due=self._due().isoformat(),
                acknowledgement_due=self._optional_due(DeadlineKind.ACKNOWLEDGEMENT_DUE),
                extended=any(e.type == ClockEventType.EXTENSION_NOTIFIED for e in self._events),
                paused=self._paused(),
                breached=self._breached,
                escalated=self._escalated,
                waiting_for=self._waiting_for(),
                outcome=self._outcome,
                closed=self._stage in FINAL_STAGES,
                entries=entries,
                request_type=self._case.request_type.value if self._case.triage_reason else None,
                regime=self._case.regime.value if self._case.triage_reason else None,
            )
            state = row.state()
            if not entries and state == self._recorded:
                return
            # Shielded: a cancel from the engine must not lose entries already taken from
            # ``_pending`` (the write goes on; the case then records the withdrawal after it).
            await asyncio.shield(
                workflow.execute_local_activity_method(
                    AuditActivities.record_case,
                    row,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RECORD_RETRY,
                    summary=f"record {entries[-1].action}" if entries else "record",
                )
            )
            self._recorded = state

    async def _letter(self, kind: str, to: str | None = None, **facts: str) -> None:
        """Send a letter: to ``to`` when given (a member of staff), to the privacy team for
        team letters, otherwise to the person. A letter that cannot be sent (text it cannot
        carry, a relay refusing it, or down for long) is an operator task: retry after a fix,
        skip it with a reason, or say it went another way (by post)."""
        letter = self._compose(kind, to, facts)
        await self._attempt(
            f"letter:{kind}:{self._seq}",
            f"send the {kind.replace('_', ' ')} letter",
            lambda: self._send(letter),
            (RETRY, SKIP, BY_HAND),
            on_end="give_up",
        )

    async def _send(self, letter: Letter) -> None:
        # A letter is a quick hand-off to the mail relay: a local activity, which costs no round
        # trip through the server. A relay that is down is retried with backoff all the same.
        # Shielded like the register write: a cancel does not cut a letter in half.
        await asyncio.shield(
            workflow.execute_local_activity_method(
                NotifyActivities.send_letter,
                letter,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=LETTER_RETRY,
                summary=f"letter: {letter.kind}",
            )
        )

    def _compose(self, kind: str, to: str | None, facts: dict[str, str]) -> Letter:
        self._seq += 1
        key = f"{self._case.reference}/letter/{kind}/{self._seq}"
        address, greeting = self._requester()
        base = letter_facts(
            self._case.reference,
            self._case.regime,
            self._case.request_type,
            greeting=greeting,
            controller=self._case.policy.controller,
            received=self._received.isoformat(),
            due=self._due().isoformat(),
            stage=self._stage.value,
            waiting_for=self._waiting_for() or "nothing",
            clock_note=self._clock_note(kind),
        )
        if self._also_answers:
            base["also_answers"] = ", ".join(self._also_answers)
        recipient = to or (None if kind in TEAM_LETTERS else address)
        if not facts.get("greeting"):
            facts.pop("greeting", None)
        return Letter(
            key=key, reference=self._case.reference, kind=kind, to=recipient, facts={**base, **facts}
        )

    # ------------------------------------------------------------------ operator tasks

    async def _attempt(
        self,
        task_id: str,
        step: str,
        work: Callable[[], Awaitable[T]],
        ways_out: tuple[str, ...] = (RETRY,),
        system: str = "",
        on_end: str = "raise",
    ) -> T | Resolved:
        """Run a step. When it fails in a way retrying cannot fix, or keeps failing until its
        retry policy gives up, it becomes an operator task and the step waits for a person:
        retried (after a fix), skipped with a reason, or done by hand (``Resolved``). The case
        never fails and never stops silently; the statutory clock runs on meanwhile.

        ``on_end``: what a case that ends while the task waits does to the step: "raise"
        ``CaseEnded`` (the main flow), or "give_up" (a letter, which nobody needs any more)."""
        tries = 0
        while True:
            try:
                return await work()
            except (ActivityError, ApplicationError) as e:  # a local activity's may come bare
                tries += 1
                kind, message = _failure(e)
            ending_before = self._ending is not None
            task = await self._open_task(task_id, step, kind, message, ways_out, system, attempts=tries)
            resolved = await self._resolution(task, ending_before)
            if resolved is None:
                continue
            if resolved.kind == "ended":
                if on_end == "raise":
                    raise CaseEnded()
                return Resolved(SKIP, "dsar", "the case ended")
            return resolved

    async def _open_task(
        self,
        task_id: str,
        step: str,
        error_type: str,
        message: str,
        ways_out: tuple[str, ...],
        system: str = "",
        extra: list[AuditEntry] | None = None,
        attempts: int = 1,
    ) -> OperatorTask:
        """Show the failure on the case (snapshot, register waiting_for), audit it (types and
        names only), and tell the privacy team."""
        task = OperatorTask(
            id=task_id,
            stage=self._stage,
            step=step,
            error_type=error_type,
            message=message,
            since=workflow.now(),
            system=system,
            ways_out=list(ways_out),
            attempts=attempts,
        )
        self._tasks.pop(task_id, None)  # reopened after a retry: listed again, last
        self._tasks[task_id] = task
        workflow.logger.warning("operator task opened: %s failed (%s)", step, error_type)
        self._publish()
        details = {"task": task_id, "step": step, "error": error_type, "ways_out": ",".join(ways_out)}
        if system:
            details["system"] = system
        await self._record([*(extra or []), self._entry("task:opened", details=details)])
        facts = {"task": task_id, "step": step, "error": error_type, "ways_out": ", ".join(ways_out)}
        try:
            await self._send(self._compose("operator_task", None, {**facts, "system": system}))
        except (ActivityError, ApplicationError):
            # the task is in the queue all the same; a failing relay is not a second task
            await self._record([self._entry("letter:failed", details={"kind": "operator_task"})])
        return task

    async def _resolution(self, task: OperatorTask, ending_before: bool = False) -> Resolved | None:
        """Wait for a person to resolve ``task``: None to retry, how it was resolved otherwise
        (kind "ended" when the case ended meanwhile)."""
        await workflow.wait_condition(
            lambda: task.status != "open" or (not ending_before and self._ending is not None)
        )
        if task.status == "open":
            self._close_task(task, "the case ended")
            return Resolved("ended", "dsar", "the case ended")
        self._publish()
        if task.status == TASK_STATUS[RETRY]:
            return None
        kind = BY_HAND if task.status == TASK_STATUS[BY_HAND] else SKIP
        return Resolved(kind, task.resolved_by, task.resolution)

    def _close_task(self, task: OperatorTask, why: str) -> None:
        task.status, task.resolution = "closed", why
        self._publish()

    def _clock_note(self, letter: str) -> str:
        """What asking the person does to our deadline, as the regime says (LEGAL.md §2)."""
        restart = "The time we have to respond starts again when we receive it."
        paused = "The time we have to respond is paused until we receive it."
        regime, policy = self._case.regime, self._case.policy
        if regime == Regime.UK_GDPR:
            if letter in ("identity_request", "authority_request", "fee_request"):
                return restart  # Art 12A: the relevant time is the latest of these
            if letter == "clarification_request" and self._case.request_type == RequestType.ACCESS:
                return paused  # DPA 2018 s 54(3C) and Art 12A: access requests only
        if regime == Regime.EU_GDPR and letter in ("identity_request", "authority_request"):
            return {"restart": restart, "suspend": paused}.get(policy.eu_identity_pause, "")
        return ""

    def _waiting_for(self) -> str | None:
        task = next((t for t in self._tasks.values() if t.status == "open"), None)
        if task is not None:
            where = f" in {task.system}" if task.system and task.system not in task.step else ""
            return f"operator: {task.step} failed{where} ({task.error_type}): " + ", ".join(
                w.replace("_step", "").replace("_", " ") for w in task.ways_out
            )
        if self._stage == Stage.TRIAGE:
            return "operator: triage (say what the message asks for)"
        if self._awaiting:
            return "person: " + ", ".join(sorted(self._awaiting))
        if self._stage == Stage.VERIFYING and not self._verified:
            if self._matching:  # the systems are being read: nobody to wait for yet
                return "matching identity" + (f": {self._match_note}" if self._match_note else "")
            if self._identity.confirmation == "sent":
                return "person: confirmation"
            if self._identity.locked:
                return "operator: identity check (locked after repeated failed attempts)"
            return "operator: identity check"
        if self._stage == Stage.SEARCHING:
            manual = [s.system for s in self._systems.values() if s.status == "waiting"]
            down = [s.system for s in self._systems.values() if s.status == "unreachable"]
            parts = [f"search by hand: {', '.join(manual)}"] if manual else []
            parts += [f"unreachable: {', '.join(down)}"] if down else []
            return "; ".join(parts) or None
        if self._stage == Stage.REVIEWING and self._review_ready and not self._approved:
            if self._review_status is not None and self._review_status.approvals:
                return "reviewer: second approval of the review package"
            return "reviewer: approve the review package"
        if self._stage == Stage.FULFILLING and self._manual_fulfilment and not self._fulfilled_by_hand:
            return "operator: carry out the change by hand"
        return None

    def _last_reason(self, kind: DecisionKind) -> str:
        return next((d.reason for d in reversed(self._decisions) if d.kind == kind), "")

    def _start_attributes(self) -> tuple[object, ...] | None:
        """The search attributes intake started the case with, as ``_publish`` compares them."""
        attrs = workflow.info().typed_search_attributes
        stage, due, breached = attrs.get(STAGE_ATTR), attrs.get(DUE_ATTR), attrs.get(BREACHED_ATTR)
        if stage is None or due is None or breached is None:
            return None
        return (Stage(stage), due, breached)

    def _publish(self) -> None:
        """Ask for the search attributes to be brought up to date at the end of this activation,
        and refresh the details line the Web UI shows."""
        self._publish_wanted = True
        waiting = self._waiting_for()
        workflow.set_current_details(
            f"{self._stage.value}; due {self._due().isoformat()}"
            + (f"; waiting for {waiting}" if waiting else "")
        )

    async def _publish_attributes(self) -> None:
        """Search attributes for the Temporal Web UI: no personal data, ever.

        Each upsert is an event and a visibility write on the server, so they are upserted at
        most once per activation (conditions are checked once everything else has run), and only
        when they differ from what the server holds: a case that is acknowledged and starts
        verifying in the same moment costs one write, not two.
        """
        while True:
            await workflow.wait_condition(lambda: self._publish_wanted)
            self._publish_wanted = False
            due = due_attribute(self._due(), self._tz)
            current = (self._stage, due, self._breached)
            if current != self._published:
                self._published = current
                workflow.upsert_search_attributes(
                    [
                        STAGE_ATTR.value_set(self._stage.value),
                        REGIME_ATTR.value_set(self._case.regime.value),
                        TYPE_ATTR.value_set(self._case.request_type.value),
                        DUE_ATTR.value_set(due),
                        BREACHED_ATTR.value_set(self._breached),
                    ]
                )

    # ------------------------------------------------------------------ queries

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
