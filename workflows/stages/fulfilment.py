"""Fulfilment and the ending: the package or the change (erasure, rectification, restriction)
carried out and checked, a transfer to another controller, the response or the letter saying
we hold nothing, the ending of a case that stops early, and the purge after retention.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditActivities
    from activities.change import (
        ChangeActivities,
        ChangeApplied,
        ChangeInput,
        ChangePlan,
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
    from activities.search import (
        system_task_queue,
    )
    from dsar.model import (
        ClockEvent,
        ClockEventType,
        DecisionKind,
        Stage,
    )
    from dsar.regimes import REQUEST_LABELS
    from dsar.timeutil import local_date
    from workflows.rules import (
        BY_HAND,
        HEARTBEAT_TIMEOUT,
        PUSH_RETRY,
        RETRY,
        SKIP,
        WORK_RETRY,
        Resolved,
    )

from workflows.casefile import ENGINE_ACTOR, LINK_LOCAL_PATCH, REGISTER_STAGE_PATCH, T
from workflows.stages.ahead import WorkAhead


class Fulfilment(WorkAhead):
    """The answer carried out: the package sent or the change made and checked."""

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
        made = self._ahead_package() or await self._package_and_link()
        if made is None:
            return
        package, link = made
        self._package, self._link = package, link
        self._results["fulfilling"] = package.detail
        if self._case.transfer_to:
            self._results["fulfilling"] += "; " + await self._transfer(self._package_input())
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

    def _package_input(self) -> PackageInput:
        assert self._review_status is not None
        return PackageInput(
            self._case.reference,
            self._case.regime,
            self._case.request_type,
            self._received.isoformat(),
            list(self._systems.values()),
            self._review_status.decisions_ref,
        )

    async def _package_and_link(self) -> tuple[PackageResult, LinkResult] | None:
        """Build the copy and issue its link, each a step of its own (None: a person sent the
        copy another way)."""
        what = self._package_input()
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
            return None
        package: PackageResult = built
        self._seq += 1
        link_input = LinkInput(
            self._case.reference,
            package.blob_ref,
            package.file_name,
            audit_key=f"{self._case.reference}/package-link/{self._seq}",
            issued_at=workflow.now(),
        )
        local = workflow.patched(LINK_LOCAL_PATCH)  # a token and one blob: no server round trip
        issued = await self._attempt(
            "fulfilling:link",
            "issue the download link",
            lambda: self._or_end(
                workflow.execute_local_activity_method(
                    ExportActivities.issue_download_link,
                    link_input,
                    start_to_close_timeout=timedelta(minutes=5),
                    retry_policy=WORK_RETRY,
                    summary="issue the download link",
                )
                if local
                else workflow.execute_activity_method(
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
            return None
        link: LinkResult = issued
        return package, link

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
        manual = self._manual_changes()
        if not plan.systems and not manual and any(s.status == "found" for s in self._systems.values()):
            # the data map says of no system how to do this: a person does it, and says so
            manual = ["the systems holding the person's data (the data map gives no automatic way)"]
        suppression: SuppressionRecorded | None = None
        for system in plan.systems:
            queue = system_task_queue(main, system)
            step = ChangeInput(self._case.reference, system, plan.plan_ref)
            last = system == plan.systems[-1]
            together = await self._carry_out_in(plan, system, queue, suppress=last and not manual)
            suppression = suppression or together.suppression
            applying: ChangeApplied | Resolved | None = together.applied
            if applying is None:
                applying = await self._on_system(
                    ChangeActivities.apply_change, step, queue, f"{label} in {system}", "apply"
                )
            if isinstance(applying, Resolved):
                self._not_carried_out(system, applying)
                continue
            applied: ChangeApplied = applying
            verifying: ChangeVerified | Resolved | None = together.verified
            if verifying is None:
                verifying = await self._on_system(
                    ChangeActivities.verify_change,
                    step,
                    queue,
                    f"search {system} again to prove it",
                    "verify",
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
        if manual:
            self._manual_fulfilment = True
            self._publish()
            await self._record(
                [self._entry("fulfilment:manual", reason=f"to do by hand in: {', '.join(manual)}")]
            )
            await self._wait_for(lambda: self._fulfilled_by_hand)
        suppressing: SuppressionRecorded | Resolved | None = suppression
        if suppressing is None:
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

    def _outcome_text(self, result: FulfilResult) -> str:
        if result.mode == "package":
            return (
                f"We have prepared a copy of the personal data we hold about you: {result.records} "
                f"record(s) from the systems we searched. Our privacy team will deliver it to you "
                f"securely; we will not send it as an ordinary email attachment."
            )
        label = REQUEST_LABELS[self._case.request_type]
        return f"We have carried out your {label} request in every system that holds your data."
