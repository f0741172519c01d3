"""The JSON API under ``/api/v1``: intake, the case snapshot, the queue, decisions, the audit trail.

Every route is a thin edge: it validates input, checks the caller's role and hands over to the
one path that already exists for the job (``intake.service.open_case`` to open a case, the
``decide`` Update to decide, the ``snapshot`` query to look). The workflow is the source of truth
for a case; the register (``CaseStore``) is what lists and the audit trail read.

Personal data: identifier values go into the workflow (encrypted by the payload codec) and
nowhere else: not into logs, not into error messages, not into the register.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Header,
    HTTPException,
    Path,
    Query,
    Response,
    UploadFile,
    status,
)
from fastapi.encoders import jsonable_encoder
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from temporalio.service import RPCError

from console.auth import OPERATOR, OWNER_PREFIX, REVIEWER, Staff, forbidden, staff
from console.services import (
    DECISION_ROLE,
    MAX_REASON,
    SYSTEM_RE,
    Reference,
    Services,
    ServicesDep,
    audit_view,
    case_details,
    check_reference,
    engine_error,
    execute_decision,
    merge_cases,
    run_update,
    snapshot,
    store_upload,
)
from dsar import inputs
from dsar.logs import get_logger
from dsar.model import (
    AgentAuthority,
    AgentDetails,
    AuthorityDocument,
    Channel,
    Decision,
    DecisionKind,
    IdentifierKind,
    Regime,
    RequestType,
    ReviewAction,
    ReviewActionKind,
    ReviewAmendment,
    Stage,
)
from dsar.store import CaseNotFound
from intake.service import MAX_KEY_LENGTH, IntakeError, NewRequest, open_case, type_details
from workflows.request import DataSubjectRequest, DecisionResult

log = get_logger("dsar.api")

#: What an identifier kind looks like; anything else is refused without being echoed.
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

MAX_IDENTIFIERS = inputs.MAX_IDENTIFIERS
MAX_GROUND = 100


def _gate(field: str, lines: inputs.Lines = "refuse") -> AfterValidator:
    """The input gate (``dsar.inputs``) on one text field of a body: NFC, and a 422 naming the
    field and the rule for a NUL, a control or line-separator character, an unpaired surrogate
    or an encoded line break (never echoing the value)."""

    def check(value: str) -> str:
        return inputs.clean_text(value, field, max_length=inputs.MAX_REASON, lines=lines)

    return AfterValidator(check)


#: Free text staff write on a case: paragraphs allowed, nothing invisible.
Prose = Annotated[str, _gate("text", lines="keep")]
#: One line of text: a ground, a fee, a field name.
Line = Annotated[str, _gate("text")]


# --------------------------------------------------------------------------------------------
# Bodies


class NewRequestBody(BaseModel):
    """A data-subject request as an intake system or a staff member submits it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "type": "access",
                "regime": "UK_GDPR",
                "identifiers": {"email": "margaret.ellis@example.com", "name": "Margaret Ellis"},
                "channel": "api",
            }
        },
    )

    type: RequestType
    regime: Regime
    identifiers: dict[str, str] = Field(
        max_length=MAX_IDENTIFIERS, description="kind -> value, e.g. email, name, phone, postcode"
    )
    channel: Channel = Channel.API
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=MAX_KEY_LENGTH)
    #: someone acting for the person: their own name and email (letters go to them), and what
    #: entitles them; the proof is uploaded to /api/v1/requests/{ref}/authority or asked of them
    agent: AgentBody | None = None
    by_agent: bool = False  # older clients: refused without ``agent`` (nobody to write to)
    #: portability: send the data to another controller's HTTPS endpoint as well (Art. 20(2))
    transfer_to: str = Field(default="", max_length=500)
    #: rectification: identifier kind -> the value it should hold, e.g. {"phone": "+44 7700 900123"}
    corrections: dict[str, str] = Field(default_factory=dict, max_length=MAX_IDENTIFIERS)
    #: objection: the processing the person objects to, in their words (Art. 21)
    objection: str = Field(default="", max_length=MAX_REASON)


class AgentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=200)
    authority: AgentAuthority = AgentAuthority.WRITTEN_PERMISSION
    organisation: str = Field(default="", max_length=200)


class OpenedBody(BaseModel):
    reference: str
    due: str


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DecisionKind
    reason: Prose = Field(default="", max_length=MAX_REASON)
    ground: Line = Field(default="", max_length=MAX_GROUND)
    #: for skip_system and nothing_held: which system (system_found goes through the upload route)
    system: Line = Field(default="", max_length=64)
    #: for classify (a case in triage): what the message asks for
    request_type: RequestType | None = None
    regime: Regime | None = None
    #: for request_fee (manifestly unfounded or excessive): the amount, e.g. "GBP 10.00"
    fee: Line = Field(default="", max_length=20)
    #: for retry_step, skip_step and done_by_hand: which operator task (its id on the case)
    task: Line = Field(default="", max_length=200)
    #: for add_details: a rectification's corrections (identifier kind -> what it should say),
    #: a portability transfer's https address, the use objected to in an objection
    corrections: dict[str, str] = Field(default_factory=dict, max_length=MAX_IDENTIFIERS)
    transfer_to: str = Field(default="", max_length=500)
    objection: str = Field(default="", max_length=MAX_REASON)


class AmendmentBody(BaseModel):
    """One change to what the exemption rules decided; ``key`` as the review package names a
    record (``orders:42``)."""

    model_config = ConfigDict(extra="forbid")

    action: ReviewActionKind
    system: str = Field(pattern=SYSTEM_RE)
    key: Line = Field(min_length=1, max_length=300)
    reason: Prose = Field(min_length=1, max_length=MAX_REASON)
    field: Line = Field(default="", max_length=64)
    outcome: Line = Field(default="", max_length=20)
    #: for ``redact``: only these words of the field
    text: Prose = Field(default="", max_length=MAX_REASON)


class ReviewBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "approve": True,
                "amendments": [
                    {
                        "action": "withhold",
                        "system": "crm",
                        "key": "support_tickets:7",
                        "reason": "names a witness in an open police matter",
                    }
                ],
            }
        },
    )

    approve: bool = False
    amendments: list[AmendmentBody] = Field(default_factory=list, max_length=200)
    note: Prose = Field(default="", max_length=MAX_REASON)


class DecisionResultBody(BaseModel):
    stage: Stage
    due: str
    message: str


# --------------------------------------------------------------------------------------------
# Routes

router = APIRouter(prefix="/api/v1", tags=["requests"])


@router.post(
    "/requests",
    status_code=status.HTTP_201_CREATED,
    response_model=OpenedBody,
    responses={
        200: {"model": OpenedBody, "description": "The idempotency key was seen before: the same case"}
    },
)
async def submit_request(
    body: NewRequestBody,
    response: Response,
    svc: ServicesDep,
    who: Annotated[Staff, Depends(staff(OPERATOR))],
    idempotency_key: Annotated[str | None, Header(max_length=MAX_KEY_LENGTH)] = None,
) -> OpenedBody:
    """Open a case (or find the one this idempotency key already opened)."""
    key = body.idempotency_key
    if idempotency_key is not None:
        if key is not None and key != idempotency_key:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail="the idempotency key in the body and the Idempotency-Key header differ; send one",
            )
        key = idempotency_key
    odd = [k for k in body.identifiers if not KIND_RE.match(k)]
    if odd:  # a key that is not a name may be a value put in the wrong place: do not echo it
        raise IntakeError(
            f"an identifier kind is not recognised; use one of: {', '.join(sorted(IdentifierKind))}"
        )
    controller = svc.controller()
    client = await svc.client()
    try:
        opened = await open_case(
            client,
            svc.store,
            svc.settings,
            NewRequest(
                request_type=body.type,
                regime=body.regime,
                identifiers=body.identifiers,
                channel=body.channel,
                idempotency_key=key,
                by_agent=body.by_agent,
                transfer_to=body.transfer_to,
                corrections=body.corrections,
                objection=body.objection,
                agent=AgentDetails(**body.agent.model_dump()) if body.agent else None,
            ),
            controller,
        )
    except RPCError as e:
        raise engine_error(e) from None
    if not opened.created:
        response.status_code = status.HTTP_200_OK
    log.info("case opened" if opened.created else "intake replayed", reference=opened.reference, by=who.sub)
    return OpenedBody(reference=opened.reference, due=opened.due)


@router.get("/requests/{ref}")
async def get_request(
    ref: Reference, svc: ServicesDep, who: Annotated[Staff, Depends(staff(OPERATOR, REVIEWER))]
) -> dict[str, Any]:
    """The case as the workflow sees it now (the ``snapshot`` query), with who the requester is
    (``requester``: what they gave, an agent, corrections; the view is recorded in the case's
    audit trail) and the working behind the due date (``clock_rule``)."""
    snap = await snapshot(svc, ref)
    details = await case_details(svc, ref)
    await asyncio.to_thread(audit_view, svc.store, ref, who.actor(OPERATOR, REVIEWER), "api")
    result: dict[str, Any] = jsonable_encoder(asdict(snap))
    result["requester"] = jsonable_encoder(
        {
            "identifiers": details.identifiers,
            "agent": asdict(details.agent) if details.agent else None,
            "corrections": details.corrections,
            "transfer_to": details.transfer_to,
        }
    )
    result["clock_rule"] = details.clock_rule
    return result


@router.get("/requests")
async def list_requests(
    svc: ServicesDep,
    _: Annotated[Staff, Depends(staff(OPERATOR, REVIEWER))],
    stage: Stage | None = None,
    due_before: Annotated[date | None, Query(description="YYYY-MM-DD, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=inputs.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=inputs.MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """The work queue from the case register, soonest deadline first."""
    rows = await asyncio.to_thread(svc.store.queue, stage, due_before, limit, offset)
    return {"items": [r.to_dict() for r in rows], "limit": limit, "offset": offset}


@router.post("/requests/{ref}/decisions", response_model=DecisionResultBody)
async def decide(
    ref: Reference,
    body: DecisionBody,
    svc: ServicesDep,
    who: Annotated[Staff, Depends(staff())],
) -> DecisionResultBody:
    """Take a decision on a case; the workflow's validator refuses one that makes no sense now."""
    check_reference(ref)
    if body.kind == DecisionKind.PERSON_CONFIRMED:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="only the person can confirm, through the link sent to the address on file",
        )
    if body.kind == DecisionKind.SYSTEM_FOUND:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="upload what was found to /api/v1/requests/{ref}/systems/{system}/found",
        )
    if body.kind == DecisionKind.MERGE:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="merge a duplicate with POST /api/v1/requests/{ref}/merge, naming the case it joins",
        )
    if body.system and not re.match(SYSTEM_RE, body.system):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="system: not a system name")
    role = DECISION_ROLE[body.kind]
    if body.kind == DecisionKind.NOTHING_HELD and body.system and who.owns(body.system):
        role = f"{OWNER_PREFIX}{body.system}"  # the system's owner answers for it
    elif not who.has(role):
        raise forbidden(who, [role])
    try:
        details = type_details(body.corrections, body.transfer_to, body.objection)
    except IntakeError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(e)) from None
    decision = Decision(
        kind=body.kind,
        actor=who.actor(role),
        reason=body.reason.strip(),
        ground=body.ground.strip(),
        system=body.system,
        request_type=body.request_type.value if body.request_type else "",
        regime=body.regime.value if body.regime else "",
        fee=body.fee.strip(),
        task=body.task,
        **details,
    )
    return await _decided(svc, ref, decision)


@router.get("/requests/{ref}/review")
async def review_package(
    ref: Reference, svc: ServicesDep, _: Annotated[Staff, Depends(staff(OPERATOR, REVIEWER))]
) -> dict[str, Any]:
    """The review package a reviewer approves: what will be disclosed, redacted, withheld or
    kept, and why (record keys and reasons, never the records' values)."""
    snap = await snapshot(svc, ref)
    if snap.review is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"case {ref} has no review package yet")
    text = (await asyncio.to_thread(svc.blobs.get, snap.review.package_ref)).decode()
    if snap.review.plan_ref:  # erasure and the other changes: what will be done in each system
        text += "\n" + (await asyncio.to_thread(svc.blobs.get, snap.review.plan_ref)).decode()
    return {"status": jsonable_encoder(asdict(snap.review)), "text": text}


@router.post("/requests/{ref}/review", response_model=DecisionResultBody)
async def review(
    ref: Reference,
    body: ReviewBody,
    svc: ServicesDep,
    who: Annotated[Staff, Depends(staff(REVIEWER))],
) -> DecisionResultBody:
    """Amend the review (override, withhold, redact, each with a reason) and/or approve it.
    With four-eyes on, the member of staff who verified the person cannot review."""
    check_reference(ref)
    action = ReviewAction(
        actor=who.actor(REVIEWER),
        approve=body.approve,
        amendments=[ReviewAmendment(**a.model_dump()) for a in body.amendments],
        note=body.note.strip(),
    )
    result: DecisionResult = await run_update(svc, ref, DataSubjectRequest.review, action, "review")
    log.info(
        "review", reference=ref, approve=body.approve, amendments=len(body.amendments), actor=action.actor
    )
    return DecisionResultBody(stage=result.stage, due=result.due, message=result.message)


@router.post("/requests/{ref}/systems/{system}/found", response_model=DecisionResultBody)
async def system_found(
    ref: Reference,
    system: Annotated[str, Path(pattern=SYSTEM_RE)],
    svc: ServicesDep,
    who: Annotated[Staff, Depends(staff())],
    file: Annotated[UploadFile, File(description="what the search by hand found (any format)")],
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
    records: Annotated[int, Form(ge=1, le=1_000_000)] = 1,
) -> DecisionResultBody:
    """A manual system's searcher (its owner, ``owner:<system>``, or an operator) uploads what
    they found. The upload is encrypted into the blob store as it streams in; if the case
    refuses it (not waiting for that system), it is deleted again."""
    check_reference(ref)
    if not (who.has(OPERATOR) or who.owns(system)):
        raise forbidden(who, [OPERATOR, f"{OWNER_PREFIX}{system}"])
    attachment = await asyncio.to_thread(store_upload, svc.blobs, ref, f"{system}-manual.bin", file)
    decision = Decision(
        kind=DecisionKind.SYSTEM_FOUND,
        actor=who.actor(f"{OWNER_PREFIX}{system}", OPERATOR),
        reason=inputs.clean_reason(reason),
        system=system,
        attachment=attachment,
        records=records,
    )
    try:
        return await _decided(svc, ref, decision)
    except HTTPException:
        await asyncio.to_thread(svc.blobs.delete, attachment)
        raise


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the same person's earlier open request this duplicate is answered with
    into: str = Field(pattern=r"^DSR-\d{4}-\d{6,12}$")


@router.post("/requests/{ref}/merge", response_model=DecisionResultBody)
async def merge(
    ref: Reference, body: MergeBody, svc: ServicesDep, who: Annotated[Staff, Depends(staff(OPERATOR))]
) -> DecisionResultBody:
    """Answer a duplicate with the same person's earlier open request: this case ends (merged,
    with a letter naming both) and the other one's answer names this one too."""
    result = await merge_cases(svc, ref, body.into, who.actor(OPERATOR))
    return DecisionResultBody(stage=result.stage, due=result.due, message=result.message)


@router.post("/requests/{ref}/authority", response_model=DecisionResultBody)
async def agent_authority(
    ref: Reference,
    svc: ServicesDep,
    who: Annotated[Staff, Depends(staff(OPERATOR))],
    file: Annotated[UploadFile, File(description="the signed permission or power of attorney")],
) -> DecisionResultBody:
    """An operator files the agent's proof of authority (received by post or email). Stored
    encrypted as it streams in; removed again if the case does not take it."""
    check_reference(ref)
    attachment = await asyncio.to_thread(store_upload, svc.blobs, ref, "agent-authority.bin", file)
    doc = AuthorityDocument(document=attachment, via=f"staff:{who.actor(OPERATOR)}")
    try:
        await run_update(svc, ref, DataSubjectRequest.provide_authority, doc, "authority")
    except HTTPException:
        await asyncio.to_thread(svc.blobs.delete, attachment)
        raise
    return await _state(svc, ref, "proof of authority filed")


async def _state(svc: Services, ref: str, message: str) -> DecisionResultBody:
    snap = await snapshot(svc, ref)
    return DecisionResultBody(stage=snap.stage, due=snap.due, message=message)


@router.get("/requests/{ref}/audit")
async def audit_trail(
    ref: Reference, svc: ServicesDep, _: Annotated[Staff, Depends(staff(OPERATOR, REVIEWER))]
) -> dict[str, Any]:
    """The case's audit events and whether their hash chain is intact."""
    check_reference(ref)
    try:
        report = await asyncio.to_thread(svc.store.verify_chain, ref)
    except CaseNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no such case: {ref}") from None
    events = await asyncio.to_thread(svc.store.audit_trail, ref)
    return {"reference": ref, "events": [e.to_dict() for e in events], "chain": asdict(report)}


async def _decided(svc: Services, ref: str, decision: Decision) -> DecisionResultBody:
    result = await execute_decision(svc, ref, decision)
    return DecisionResultBody(stage=result.stage, due=result.due, message=result.message)
