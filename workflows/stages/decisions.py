"""Staff decisions: the ``decide`` Update and its validator, which refuses a decision that
makes no sense in the case's stage with a message; merging a duplicate; a cancellation from
Temporal's own controls recorded as a staff withdrawal.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dsar.blobs import parse_ref
    from dsar.clock import DeadlineKind, DeadlineNotApplicable
    from dsar.inputs import text_problem
    from dsar.model import (
        FINAL_STAGES,
        ClockEvent,
        ClockEventType,
        Decision,
        DecisionKind,
        DecisionRecord,
        IdentifierKind,
        MergedRequest,
        Regime,
        RequestType,
        Stage,
        SystemResult,
    )
    from dsar.timeutil import local_date
    from workflows.rules import (
        ALLOWED,
        ANSWERS,
        FEE_RE,
        REFERENCE_RE,
        REFUSAL_GROUNDS,
        REJECT_GROUNDS,
        SYSTEM_DECISIONS,
        TASK_DECISIONS,
        TASK_STATUS,
        WAITS,
        DecisionResult,
    )

from workflows.casefile import ENGINE_ACTOR
from workflows.stages.fulfilment import Fulfilment
from workflows.stages.review import Review
from workflows.stages.verification import Verification


class Decisions(Verification, Review, Fulfilment):
    """What staff decide, checked against the stage before it is accepted."""

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
        await self._stop_deferring()  # written before the Update returns, as every decision is
        await self._record([])
        if self._ending is not None:
            # the case ends in a final stage, or answered (no data held): wait for the letter
            end = self._ending[0]
            await workflow.wait_condition(lambda: self._stage in FINAL_STAGES or self._stage == end)
        return DecisionResult(
            stage=self._stage, due=self._due().isoformat(), message=self._decision_message(d)
        )

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
