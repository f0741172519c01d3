"""Identity verification: triage, the acknowledgement, matching identifiers against the
systems, a confirmation link, asking the person for more, an agent's authority, and the
person's answers (identifiers, documents, correspondence) as Updates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.verify import ASKABLE, VerifyActivities, VerifyOutcome
    from dsar.blobs import parse_ref
    from dsar.clock import DeadlineKind
    from dsar.model import (
        FINAL_STAGES,
        UNVERIFIED_TYPES,
        AgentAuthority,
        AgentDetails,
        AuthorityDocument,
        Channel,
        ClockEvent,
        ClockEventType,
        Correspondence,
        DecisionKind,
        IdentifierKind,
        ProvidedIdentifiers,
        RequestType,
        Stage,
    )
    from dsar.regimes import REGIMES
    from dsar.timeutil import local_date, local_minute
    from workflows.rules import (
        AUTHORITY_TEXT,
        CONFIRMATION_TEXT,
        HEARTBEAT_TIMEOUT,
        RETRY,
        SEARCH_RETRY_VERIFY,
        UNREACHABLE_NOTICE_ATTEMPT,
        WAITS,
        search_backoff,
    )

from workflows.casefile import LATE_MATCH_PATCH, TASKS_PATCH, T, failure_of
from workflows.stages.ahead import WorkAhead


class Verification(WorkAhead):
    """Is the requester the person (or someone allowed to act for them)?"""

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
        await self._work_ahead()
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
                kind, message = failure_of(e)
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
        ahead = self._ahead_identity()
        if ahead is not None:
            return ahead
        attempt = 0
        while True:
            try:
                result: VerifyOutcome = await workflow.execute_activity_method(
                    VerifyActivities.verify_identity,
                    self._verify_input(),
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
