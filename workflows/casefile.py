"""The case file every stage writes to: the workflow's state, its audit trail, its letters,
its operator tasks, the register row and the search attributes, and the statutory clock read
from its event log.

``CaseFile`` holds no stage of its own. The stages (``workflows/stages/``) are mixins over it,
and ``DataSubjectRequest`` (``workflows/request.py``) runs them in order. Everything here is
deterministic: no clock but ``workflow.now()``, no I/O but activities.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from activities.ahead import WorkedAhead
    from activities.audit import AuditActivities, AuditEntry, CaseRecord
    from activities.change import (
        ChangePlan,
    )
    from activities.export import (
        LinkResult,
        PackageResult,
    )
    from activities.notify import Letter, NotifyActivities
    from activities.review import ReviewInput
    from dsar.clock import ClockPolicy, DeadlineKind, DeadlineNotApplicable, StatutoryClock, primary_kind
    from dsar.inputs import text_problem
    from dsar.model import (
        FINAL_STAGES,
        CaseInput,
        ClockEvent,
        ClockEventType,
        DecisionKind,
        DecisionRecord,
        IdentityCheck,
        OperatorTask,
        Regime,
        RequestType,
        ReviewStatus,
        Stage,
        SystemResult,
    )
    from dsar.reviewpolicy import policy_applies
    from dsar.timeutil import due_attribute, local_date
    from dsar.wording import letter_facts
    from workflows.rules import (
        BREACHED_ATTR,
        BY_HAND,
        DUE_ATTR,
        LETTER_RETRY,
        RECORD_RETRY,
        REGIME_ATTR,
        RETRY,
        SKIP,
        STAGE_ATTR,
        TASK_STATUS,
        TEAM_LETTERS,
        TYPE_ATTR,
        WAITS,
        CaseEnded,
        Resolved,
    )


T = TypeVar("T")


def person_of(actor: str) -> str:
    """Who took a decision, whatever role they took it in (``reviewer:alice`` -> ``alice``)."""
    return actor.rpartition(":")[2]


#: ``workflow.patched`` ids, so that cases started before a change still replay as they ran:
#: a failure that used to be a "failed" search or a wait for ``verify`` becomes an operator
#: task; a match that ends after an operator verified is still recorded.
TASKS_PATCH = "operator-tasks-v1"
LATE_MATCH_PATCH = "late-match-recorded-v1"
REGISTER_STAGE_PATCH = "register-stage-at-once-v1"
#: The download link is issued by a local activity (issue 20): a token, one blob and an audit
#: row; an ordinary activity's five history events and a workflow task fewer per case.
LINK_LOCAL_PATCH = "link-local-v1"
#: Who a cancellation from the Temporal Web UI or CLI is recorded as (staff, not the person).
ENGINE_ACTOR = "staff:temporal-cancel"


def failure_of(error: ActivityError | ApplicationError) -> tuple[str, str]:
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
    line = "".join(ch if text_problem(ch) is None else " " for ch in message).split()
    return kind, " ".join(line)[:300]


def abandon(work: asyncio.Future[Any]) -> None:
    """Cancel work nobody waits for any more, and retrieve its outcome when it comes (a
    cancelled activity ends in an error that nobody else would read)."""
    work.add_done_callback(lambda f: f.cancelled() or f.exception())
    work.cancel()


class CaseFile:
    """The state of one case and the means every stage shares to record, tell and wait."""

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
        #: steps already run by working ahead, for the stages to take (``workflows/stages/ahead.py``)
        self._ahead: WorkedAhead | None = None
        #: a case worked ahead to its answer: register writes wait and go as one at the answer
        self._deferring = False

    def _requester(self) -> tuple[str | None, str]:
        """Who letters about the request go to (address, greeting): the agent, if any."""
        agent = self._case.agent
        if agent is not None:
            return agent.email or None, agent.name or "requester"
        ids = self._case.identifiers
        return ids.get("email"), ids.get("name") or "requester"

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
            abandon(work)
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
            await self._stop_deferring()
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

    async def _stop_deferring(self) -> None:
        """Someone is involved now (the case waits for a person, or a decision came): what was
        worked ahead may no longer hold, so the stages run their own steps from here, and what
        was held back is written, so that the register and the trail say where the case is."""
        self._ahead = None
        if self._deferring:
            self._deferring = False
            await self._record([])

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
        if self._deferring and self._stage not in FINAL_STAGES | {Stage.RESPONDED}:
            self._pending += entries
            return
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
                kind, message = failure_of(e)
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
        self._deferring, self._ahead = False, None  # the task is written with everything held back
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

    def _approvals_needed(self) -> int:
        """Two different people approve where the policy asks for a second approver."""
        policy = self._case.policy
        return (
            2 if policy_applies(policy.second_approver_for, self._case.regime, self._case.request_type) else 1
        )

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
