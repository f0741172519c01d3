"""Opening a case: one path for every channel (API, console, email, web form).

The case register allocates the reference and remembers the idempotency key; the workflow id is
the reference, started with ``USE_EXISTING`` so that a retried or duplicated intake (the same
Message-ID, the same API key) reaches the same case instead of opening a second one.

Two intakes with the same key can run at once (a double-clicked form, two pollers, a client that
retries before its first call returned): the register gives both the same row, one of them
"created". Either may reach Temporal first, so the workflow carries a memo naming the register
row it was started for: the creator that finds the case already started checks that memo, and
only a case started for another row (the register was reset while Temporal kept its cases) is
refused as out of step.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from dsar import inputs
from dsar.blobs import BlobStore
from dsar.clock import ClockPolicy, StatutoryClock, primary_kind
from dsar.datamap import DataMap, DataMapError
from dsar.inputs import InputRefused
from dsar.model import (
    AgentAuthority,
    AgentDetails,
    CaseInput,
    CasePolicy,
    Channel,
    IdentifierKind,
    Regime,
    RequestType,
    Stage,
)
from dsar.settings import Settings
from dsar.store import CaseRow, CaseStore, NewCase
from dsar.timeutil import due_attribute, local_date
from workflows.request import DataSubjectRequest
from workflows.rules import BREACHED_ATTR, DUE_ATTR, REGIME_ATTR, STAGE_ATTR, TYPE_ATTR

MAX_IDENTIFIER_LENGTH = inputs.MAX_TEXT
MAX_KEY_LENGTH = inputs.MAX_KEY
#: The workflow memo naming the register row a case was started for (no personal data).
REGISTER_ROW_MEMO = "dsar_register_row"


class IntakeError(ValueError):
    """A request that cannot be opened as given; the message names the field, never its value."""


class RegisterOutOfStep(RuntimeError):
    """The register allocated a reference that the workflow engine already has: the register was
    reset or restored while Temporal kept its cases. Refuse rather than mix two people's cases."""


@dataclass
class NewRequest:
    request_type: RequestType
    regime: Regime
    identifiers: dict[str, str]
    channel: Channel = Channel.API
    idempotency_key: str | None = None
    received_at: datetime | None = None  # default: now
    by_agent: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    #: someone acting for the person (their own contact details, the authority they claim)
    agent: AgentDetails | None = None
    #: the agent's signed permission or power of attorney, when it came with the request; it
    #: is stored encrypted in the blob store before the case starts, so it is never asked for
    authority_document: bytes | None = None
    #: intake could not tell what the message asks for: a case in triage, with this reason
    triage_reason: str = ""
    #: portability: the other controller's HTTPS endpoint the person asked us to send it to
    transfer_to: str = ""
    #: rectification: identifier kind -> the value it should hold
    corrections: dict[str, str] = field(default_factory=dict)
    #: objection: the processing the person objects to, in their words
    objection: str = ""


@dataclass
class OpenedCase:
    reference: str
    due: str
    created: bool


def clean_identifiers(
    raw: dict[str, str], required: bool = True, region: str | None = None
) -> dict[str, str]:
    """The person's identifiers through the input gate (``dsar.inputs``): known kinds, text that
    can travel to the end of the case, a valid email, a readable phone number."""
    try:
        return inputs.clean_identifiers(raw, region=region, required=required)
    except InputRefused as e:
        raise IntakeError(str(e)) from None


def usable_identifiers(raw: dict[str, str], region: str | None = None) -> tuple[dict[str, str], list[str]]:
    """What can be kept of identifiers read from a message (email intake quarantines rather
    than refuses): the ones the gate takes, and the kinds it refused (never their values)."""
    kept: dict[str, str] = {}
    refused: list[str] = []
    kinds = {k.value for k in IdentifierKind}
    for kind, value in raw.items():
        try:
            if kind not in kinds:
                raise InputRefused("identifiers", "unknown kind")
            cleaned = inputs.clean_identifier(kind, value, region)
        except InputRefused:
            refused.append(kind if kind in kinds else "unknown")
            continue
        if cleaned:
            kept[kind] = cleaned
    return kept, sorted(set(refused))


MAX_AGENT_FIELD = 200


def clean_agent(agent: AgentDetails | None, by_agent: bool) -> AgentDetails | None:
    """An agent's own contact details are needed to write to them (never the person's)."""
    if agent is None:
        if by_agent:
            raise IntakeError("an agent's request needs the agent's own name and email address (agent)")
        return None
    try:
        name = inputs.clean_text(agent.name, "agent.name", max_length=MAX_AGENT_FIELD)
        org = inputs.clean_text(agent.organisation, "agent.organisation", max_length=MAX_AGENT_FIELD)
        if not name or not (agent.email or "").strip():
            raise IntakeError("agent: the agent's name and email address are both needed")
        email = inputs.clean_email(agent.email, "agent.email")
    except InputRefused as e:
        raise IntakeError(str(e)) from None
    return AgentDetails(name=name, email=email, authority=AgentAuthority(agent.authority), organisation=org)


def clean_transfer_to(endpoint: str, request_type: RequestType) -> str:
    """An organisation's HTTPS endpoint for a portability transfer (GDPR Art. 20(2)): never plain
    HTTP, never credentials in the URL; the certificate is checked when the data is sent."""
    try:
        endpoint = inputs.clean_text(endpoint, "transfer_to")
    except InputRefused as e:
        raise IntakeError(str(e)) from None
    if not endpoint:
        return ""
    if request_type is not RequestType.PORTABILITY:
        raise IntakeError("transfer_to: only a portability request is sent to another controller")
    try:
        url = httpx.URL(endpoint)
    except (httpx.InvalidURL, ValueError):
        raise IntakeError("transfer_to: not a valid URL") from None
    if url.scheme != "https" or not url.host or url.userinfo or len(endpoint) > 500:
        raise IntakeError("transfer_to: an https:// address of the other controller, without credentials")
    return endpoint


def type_details(corrections: dict[str, str], transfer_to: str, objection: str) -> dict[str, Any]:
    """What an ``add_details`` decision carries, through the same gate as intake's (422 with the
    field's name, never its value); the case checks that its request type uses them."""
    try:
        return {
            "corrections": clean_identifiers(corrections, required=False) if corrections else {},
            "transfer_to": clean_transfer_to(transfer_to, RequestType.PORTABILITY),
            "objection": inputs.clean_text(
                objection, "objection", max_length=inputs.MAX_REASON, lines="join"
            ),
        }
    except InputRefused as e:
        raise IntakeError(str(e)) from None


def case_policy(settings: Settings, regime: Regime, controller: str) -> CasePolicy:
    return CasePolicy(
        calendar=settings.calendar_for(regime),
        controller=controller,
        timezone=settings.timezone,
        reminder_days=list(settings.reminder_days),
        escalate_days_before=settings.escalate_days_before,
        wait_for_person_days=settings.wait_for_person_days,
        close_after_days=settings.close_after_days,
        case_retention_days=settings.case_retention_days,
        review_auto_approve=settings.review_auto_approve,
        four_eyes=settings.four_eyes,
        four_eyes_for=list(settings.four_eyes_for),
        second_approver_for=list(settings.second_approver_for),
    )


async def open_case(
    client: Client,
    store: CaseStore,
    settings: Settings,
    new: NewRequest,
    controller: str,
    blobs: BlobStore | None = None,
) -> OpenedCase:
    # A message in triage may name nobody yet: an operator reads it.
    region = phone_region(settings)
    identifiers = clean_identifiers(new.identifiers, required=not new.triage_reason, region=region)
    agent = clean_agent(new.agent, new.by_agent)
    if new.authority_document is not None and (agent is None or blobs is None):
        raise IntakeError("a proof of authority comes with an agent's request (agent)")
    if new.idempotency_key is not None:
        try:
            new.idempotency_key = inputs.clean_key(new.idempotency_key)
        except InputRefused as e:
            raise IntakeError(str(e)) from None
    transfer_to = clean_transfer_to(new.transfer_to, new.request_type)
    corrections = clean_identifiers(new.corrections, required=False, region=region) if new.corrections else {}
    try:
        triage_reason = inputs.clean_text(
            new.triage_reason, "triage_reason", max_length=inputs.MAX_REASON, lines="join"
        )
    except InputRefused as e:
        raise IntakeError(str(e)) from None
    if corrections and new.request_type is not RequestType.RECTIFICATION:
        raise IntakeError("corrections: only a rectification request corrects data")
    try:
        objection = inputs.clean_text(new.objection, "objection", max_length=inputs.MAX_REASON, lines="join")
    except InputRefused as e:
        raise IntakeError(str(e)) from None
    if objection and new.request_type is not RequestType.OBJECTION:
        raise IntakeError("objection: only an objection names the processing objected to")
    received_at = (new.received_at or datetime.now(UTC)).astimezone(UTC)
    row, created = await asyncio.to_thread(
        store.open_case,
        NewCase(
            request_type=new.request_type,
            regime=new.regime,
            channel=new.channel,
            received_at=received_at,
            idempotency_key=new.idempotency_key,
        ),
    )
    # A replayed intake keeps the original case's facts, whatever this call carried.
    regime, request_type = Regime(row.regime), RequestType(row.request_type)
    policy = case_policy(settings, regime, controller)
    if new.triage_reason:  # the regime may change when the case is classified
        policy.calendars = {r.value: settings.calendar_for(r) for r in Regime}
    received_at = row.received_at
    received = local_date(received_at, policy.timezone)
    due = StatutoryClock(regime, request_type, received, [], ClockPolicy.from_case_policy(policy)).due(
        primary_kind(regime, request_type)
    )
    case = CaseInput(
        reference=row.reference,
        request_type=request_type,
        regime=regime,
        channel=Channel(row.channel),
        received_at=received_at,
        identifiers=identifiers,
        policy=policy,
        by_agent=agent is not None,
        agent=agent,
        triage_reason=triage_reason,
        transfer_to=transfer_to,
        corrections=corrections,
        objection=objection,
    )
    row_token = register_row_token(row)
    if created:
        await _keep_authority(blobs, agent, new.authority_document, row.reference)
        try:
            await _start(client, settings, case, due, row_token, replay=False)
        except WorkflowAlreadyStartedError:
            # A simultaneous intake with the same key may have started this very case first.
            if await _started_for(client, row.reference) != row_token:
                raise RegisterOutOfStep(
                    f"case {row.reference} already exists in the workflow engine but was just "
                    "allocated by the register: the register and Temporal are out of step"
                ) from None
    elif not await _started_for(client, row.reference):
        # The register has the case but the engine does not (yet): the intake that created it
        # died before starting it, or is still on its way. Either way this one starts it; the
        # same row token makes the two starts one case.
        await _keep_authority(blobs, agent, new.authority_document, row.reference)
        # A replay reaching a case that has since closed is that case, already done.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await _start(client, settings, case, due, row_token, replay=True)
    # The same person's other requests are found by keyed hashes (dsar.sameperson): kept once
    # the case exists (a replay adds nothing).
    await asyncio.to_thread(_remember_person, store, settings, row.reference, identifiers)
    return OpenedCase(reference=row.reference, due=due.isoformat(), created=created)


@functools.cache
def _map_phone_region(path: str) -> str | None:
    try:
        return DataMap.load(Path(path)).controller.phone_region
    except (DataMapError, OSError):
        return None


def phone_region(settings: Settings) -> str | None:
    """How to read a phone number written without its country code: the controller's own
    country, from the data map (None: every number needs its code)."""
    return _map_phone_region(str(settings.datamap))


def _remember_person(
    store: CaseStore, settings: Settings, reference: str, identifiers: dict[str, str]
) -> None:
    from dsar.sameperson import same_person

    region = phone_region(settings) or "GB"
    people = same_person(store.engine, settings.suppression_key_bytes, region)
    people.remember(reference, identifiers)
    # At intake the team sees the same person's other requests in the new case's trail (the
    # case page lists them, when each was answered, and offers to merge a duplicate).
    related = people.related(reference)
    if related:
        store.append_audit(
            reference,
            "intake:same_person",
            "system",
            details={
                "open": ",".join(r.reference for r in related if r.open) or "none",
                "answered": ",".join(r.reference for r in related if r.answered) or "none",
            },
            event_key=f"{reference}/intake:same_person",
        )


def register_row_token(row: CaseRow) -> str:
    """Names one register row for good: a register reset or restored from an older backup hands
    out the same reference again, but never with the same creation instant."""
    seed = f"{row.id}|{row.reference}|{row.created_at.isoformat()}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


async def _keep_authority(
    blobs: BlobStore | None, agent: AgentDetails | None, document: bytes | None, reference: str
) -> None:
    """The agent's signed permission, encrypted in the blob store, before the case starts."""
    if agent is not None and document and blobs is not None:
        agent.document = await asyncio.to_thread(
            blobs.put, document, case=reference, name="agent-authority.bin"
        )


async def _started_for(client: Client, reference: str) -> str:
    """The register row the engine's case ``reference`` was started for: "" when the engine has
    no such case, "unknown" for a case started without the memo (before it existed)."""
    try:
        description = await client.get_workflow_handle(reference).describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return ""
        raise
    return str(await description.memo_value(REGISTER_ROW_MEMO, "unknown"))


async def _start(
    client: Client, settings: Settings, case: CaseInput, due: date, row_token: str, replay: bool
) -> None:
    # A replayed intake (same idempotency key) reaches the existing case, running or closed (a
    # closed case is never started again); a new reference must be new to the engine too.
    conflict = WorkflowIDConflictPolicy.USE_EXISTING if replay else WorkflowIDConflictPolicy.FAIL
    await client.start_workflow(
        DataSubjectRequest.run,
        case,
        id=case.reference,
        task_queue=settings.task_queue,
        id_conflict_policy=conflict,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(STAGE_ATTR, Stage.RECEIVED.value),
                SearchAttributePair(REGIME_ATTR, case.regime.value),
                SearchAttributePair(TYPE_ATTR, case.request_type.value),
                SearchAttributePair(DUE_ATTR, due_attribute(due, case.policy.timezone)),
                SearchAttributePair(BREACHED_ATTR, False),
            ]
        ),
        static_summary=f"{case.regime.value} {case.request_type.value} request",
        memo={REGISTER_ROW_MEMO: row_token},
    )
