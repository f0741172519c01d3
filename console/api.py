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
from datetime import date, timedelta
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
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.encoders import jsonable_encoder
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from console.auth import OPERATOR, REVIEWER, Staff, authenticate, bearer, forbidden, staff
from dsar.blobs import BlobStore, blob_store_from_settings
from dsar.datamap import DataMap, DataMapError
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
from dsar.settings import Settings
from dsar.store import CaseNotFound, CaseStore
from intake.service import MAX_KEY_LENGTH, IntakeError, NewRequest, open_case
from workflows.request import DataSubjectRequest, DecisionResult

log = get_logger("dsar.api")

#: Case references as the register allocates them (``DSR-2026-000123``; more digits after a
#: million cases). Checked before Temporal is asked, so junk never reaches the engine.
REFERENCE_RE = re.compile(r"^DSR-\d{4}-\d{6,12}$")

#: What an identifier kind looks like; anything else is refused without being echoed.
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

ENGINE_UNREACHABLE = "the workflow engine is unreachable; retry"
MAX_IDENTIFIERS = 20
MAX_REASON = 2000
MAX_GROUND = 100
#: The largest upload from a manual search (a zip of CCTV stills, a scanned file).
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
#: System names as the data map allows them.
SYSTEM_RE = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"

#: Who may take each decision: a reviewer approves what is disclosed or erased; every other
#: decision is an operator's (admin may do either).
DECISION_ROLE: dict[DecisionKind, str] = {kind: OPERATOR for kind in DecisionKind} | {
    DecisionKind.APPROVE: REVIEWER
}

#: How long to wait for Temporal before telling the caller to retry.
RPC_TIMEOUT = timedelta(seconds=15)
UPDATE_TIMEOUT = timedelta(seconds=60)


class EngineUnavailable(Exception):
    """Temporal cannot be reached (or did not answer in time); the caller should retry."""


class Services:
    """What the routes need, held on ``app.state.services``.

    The Temporal client is connected lazily and again after a failure, so the API starts (and
    answers ``/healthz``) while Temporal is still coming up, instead of refusing to start.
    """

    def __init__(self, settings: Settings, client: Client | None, store: CaseStore | None) -> None:
        self.settings = settings
        self._client = client
        self._owns_store = store is None
        self._store = store
        self._controller: str | None = None
        self._blobs: BlobStore | None = None
        self._lock = asyncio.Lock()

    @property
    def blobs(self) -> BlobStore:
        if self._blobs is None:
            self._blobs = blob_store_from_settings(self.settings)
        return self._blobs

    @property
    def store(self) -> CaseStore:
        if self._store is None:
            self._store = CaseStore(self.settings.resolved_database_url)
        return self._store

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                from dsar.engine import connect

                try:
                    self._client = await asyncio.wait_for(connect(self.settings), timeout=10)
                except Exception as e:  # connection refused, DNS, TLS: all mean "not now"
                    log.warning(
                        "temporal unreachable", address=self.settings.temporal_address, error=type(e).__name__
                    )
                    raise EngineUnavailable(ENGINE_UNREACHABLE) from None
            return self._client

    def has_client(self) -> bool:
        return self._client is not None

    def controller(self) -> str:
        """The controller's name from the data map (read once: letters sign off with it)."""
        if self._controller is None:
            try:
                self._controller = DataMap.load(self.settings.datamap).controller.name
            except DataMapError as e:
                log.error("data map cannot be loaded", error=str(e))
                raise HTTPException(
                    status.HTTP_503_SERVICE_UNAVAILABLE,
                    detail=f"intake is unavailable: the data map is invalid ({e})",
                ) from None
        return self._controller

    def close(self) -> None:
        if self._owns_store and self._store is not None:
            self._store.close()


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]
Reference = Annotated[str, Path(description="Case reference, e.g. DSR-2026-000123", max_length=40)]


def check_reference(ref: str) -> str:
    if not REFERENCE_RE.match(ref):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail="no such case: a reference looks like DSR-2026-000123"
        )
    return ref


def engine_error(e: RPCError, ref: str | None = None) -> HTTPException:
    """Translate a Temporal RPC failure into what the caller can act on."""
    if e.status == RPCStatusCode.NOT_FOUND and ref is not None:
        if "already completed" in e.message:
            return HTTPException(
                status.HTTP_409_CONFLICT, detail=f"case {ref} is finished: no further decisions"
            )
        return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no such case: {ref}")
    if e.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=ENGINE_UNREACHABLE)
    log.error("temporal rpc failed", status=e.status.name if e.status else None, reference=ref)
    return HTTPException(
        status.HTTP_502_BAD_GATEWAY, detail=f"the workflow engine refused the call ({e.status})"
    )


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
    reason: str = Field(default="", max_length=MAX_REASON)
    ground: str = Field(default="", max_length=MAX_GROUND)
    #: for skip_system and nothing_held: which system (system_found goes through the upload route)
    system: str = Field(default="", max_length=64)
    #: for classify (a case in triage): what the message asks for
    request_type: RequestType | None = None
    regime: Regime | None = None
    #: for request_fee (manifestly unfounded or excessive): the amount, e.g. "GBP 10.00"
    fee: str = Field(default="", max_length=20)


class AmendmentBody(BaseModel):
    """One change to what the exemption rules decided; ``key`` as the review package names a
    record (``orders:42``)."""

    model_config = ConfigDict(extra="forbid")

    action: ReviewActionKind
    system: str = Field(pattern=SYSTEM_RE)
    key: str = Field(min_length=1, max_length=300)
    reason: str = Field(min_length=1, max_length=MAX_REASON)
    field: str = Field(default="", max_length=64)
    outcome: str = Field(default="", max_length=20)
    #: for ``redact``: only these words of the field
    text: str = Field(default="", max_length=MAX_REASON)


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
    note: str = Field(default="", max_length=MAX_REASON)


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
    ref: Reference, svc: ServicesDep, _: Annotated[Staff, Depends(staff(OPERATOR, REVIEWER))]
) -> dict[str, Any]:
    """The case as the workflow sees it now (the ``snapshot`` query)."""
    check_reference(ref)
    client = await svc.client()
    try:
        snap = await client.get_workflow_handle(ref).query(
            DataSubjectRequest.snapshot, rpc_timeout=RPC_TIMEOUT
        )
    except RPCError as e:
        raise engine_error(e, ref) from None
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as e:
        log.error("snapshot query failed", reference=ref, error=type(e).__name__)
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, detail=f"case {ref} could not be read; retry"
        ) from None
    result: dict[str, Any] = jsonable_encoder(asdict(snap))
    return result


@router.get("/requests")
async def list_requests(
    svc: ServicesDep,
    _: Annotated[Staff, Depends(staff(OPERATOR, REVIEWER))],
    stage: Stage | None = None,
    due_before: Annotated[date | None, Query(description="YYYY-MM-DD, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
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
    if body.system and not re.match(SYSTEM_RE, body.system):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="system: not a system name")
    role = DECISION_ROLE[body.kind]
    if not who.has(role):
        raise forbidden(who, [role])
    decision = Decision(
        kind=body.kind,
        actor=who.actor(role),
        reason=body.reason.strip(),
        ground=body.ground.strip(),
        system=body.system,
        request_type=body.request_type.value if body.request_type else "",
        regime=body.regime.value if body.regime else "",
        fee=body.fee.strip(),
    )
    return await _execute(svc, ref, decision)


@router.get("/requests/{ref}/review")
async def review_package(
    ref: Reference, svc: ServicesDep, _: Annotated[Staff, Depends(staff(OPERATOR, REVIEWER))]
) -> dict[str, Any]:
    """The review package a reviewer approves: what will be disclosed, redacted, withheld or
    kept, and why (record keys and reasons, never the records' values)."""
    check_reference(ref)
    client = await svc.client()
    try:
        snap = await client.get_workflow_handle(ref).query(
            DataSubjectRequest.snapshot, rpc_timeout=RPC_TIMEOUT
        )
    except RPCError as e:
        raise engine_error(e, ref) from None
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
    result: DecisionResult = await _update(svc, ref, DataSubjectRequest.review, action, "review")
    log.info(
        "review", reference=ref, approve=body.approve, amendments=len(body.amendments), actor=action.actor
    )
    return DecisionResultBody(stage=result.stage, due=result.due, message=result.message)


@router.post("/requests/{ref}/systems/{system}/found", response_model=DecisionResultBody)
async def system_found(
    ref: Reference,
    system: Annotated[str, Path(pattern=SYSTEM_RE)],
    svc: ServicesDep,
    who: Annotated[Staff, Depends(staff(OPERATOR))],
    file: Annotated[UploadFile, File(description="what the search by hand found (any format)")],
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
    records: Annotated[int, Form(ge=1, le=1_000_000)] = 1,
) -> DecisionResultBody:
    """A manual system's searcher uploads what they found. The upload is encrypted into the
    blob store as it streams in; if the case refuses it (not waiting for that system), it is
    deleted again."""
    check_reference(ref)
    attachment = await asyncio.to_thread(_store_upload, svc.blobs, ref, f"{system}-manual.bin", file)
    decision = Decision(
        kind=DecisionKind.SYSTEM_FOUND,
        actor=who.actor(OPERATOR),
        reason=reason.strip(),
        system=system,
        attachment=attachment,
        records=records,
    )
    try:
        return await _execute(svc, ref, decision)
    except HTTPException:
        await asyncio.to_thread(svc.blobs.delete, attachment)
        raise


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
    attachment = await asyncio.to_thread(_store_upload, svc.blobs, ref, "agent-authority.bin", file)
    doc = AuthorityDocument(document=attachment, via=f"staff:{who.actor(OPERATOR)}")
    try:
        await _update(svc, ref, DataSubjectRequest.provide_authority, doc, "authority")
    except HTTPException:
        await asyncio.to_thread(svc.blobs.delete, attachment)
        raise
    return await _state(svc, ref, "proof of authority filed")


async def _state(svc: Services, ref: str, message: str) -> DecisionResultBody:
    client = await svc.client()
    try:
        snap = await client.get_workflow_handle(ref).query(
            DataSubjectRequest.snapshot, rpc_timeout=RPC_TIMEOUT
        )
    except RPCError as e:
        raise engine_error(e, ref) from None
    return DecisionResultBody(stage=snap.stage, due=snap.due, message=message)


def _store_upload(blobs: BlobStore, ref: str, name: str, file: UploadFile) -> str:
    size = 0
    try:
        with blobs.open_writer(ref, name) as writer:
            while chunk := file.file.read(1024 * 1024):
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise HTTPException(
                        status.HTTP_413_CONTENT_TOO_LARGE,
                        detail=f"the upload is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB: "
                        "split it or share it another way",
                    )
                writer.write(chunk)
    finally:
        file.file.close()
    if size == 0:
        blobs.delete(writer.ref)
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="the upload is empty"
            + (': answer "nothing held" instead' if name.endswith("-manual.bin") else ""),
        )
    return writer.ref


async def _execute(svc: Services, ref: str, decision: Decision) -> DecisionResultBody:
    result: DecisionResult = await _update(svc, ref, DataSubjectRequest.decide, decision, decision.kind.value)
    log.info("decision taken", reference=ref, kind=decision.kind.value, actor=decision.actor)
    return DecisionResultBody(stage=result.stage, due=result.due, message=result.message)


async def _update(svc: Services, ref: str, update: Any, arg: Any, what: str) -> Any:
    """Run an Update on the case; the workflow's validator's refusal is a 409 with its words."""
    client = await svc.client()
    try:
        return await client.get_workflow_handle(ref).execute_update(update, arg, rpc_timeout=UPDATE_TIMEOUT)
    except WorkflowUpdateFailedError as e:
        if isinstance(e.cause, ApplicationError):
            raise HTTPException(status.HTTP_409_CONFLICT, detail=e.cause.message) from None
        log.error("update failed", reference=ref, kind=what, error=type(e.cause).__name__)
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, detail="the decision could not be carried out; retry"
        ) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=ENGINE_UNREACHABLE) from None
    except RPCError as e:
        raise engine_error(e, ref) from None


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


# --------------------------------------------------------------------------------------------
# The codec server for the Temporal Web UI

codec_router = APIRouter(prefix="/codec", tags=["codec"])


async def codec_access(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Decoding shows personal data: staff only, except on the local dev stack."""
    if request.app.state.codec_requires_auth:
        authenticate(request.app.state.settings, credentials)


async def _codec(request: Request, action: str) -> dict[str, Any]:
    from dsar.codec import CodecError, codec_endpoint_payloads

    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="malformed JSON body") from None
    if not isinstance(body, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail='body must be {"payloads": [...]}')
    try:
        return await codec_endpoint_payloads(request.app.state.codec, body, action)  # type: ignore[arg-type]
    except CodecError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(e)) from None
    except ValueError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(e)) from None


@codec_router.post("/encode", dependencies=[Depends(codec_access)])
async def codec_encode(request: Request) -> dict[str, Any]:
    """Encrypt payloads (``temporal.api.common.v1.Payloads`` JSON), as the Web UI asks."""
    return await _codec(request, "encode")


@codec_router.post("/decode", dependencies=[Depends(codec_access)])
async def codec_decode(request: Request) -> dict[str, Any]:
    """Decrypt payloads so that the Web UI can show a case's history to staff."""
    return await _codec(request, "decode")


# --------------------------------------------------------------------------------------------
# Health

health_router = APIRouter(tags=["health"])


@health_router.get("/healthz")
async def healthz(svc: ServicesDep) -> dict[str, bool]:
    """Liveness of the app and reachability of Temporal (for load balancers and ``make run``)."""

    async def probe() -> bool:
        client = await svc.client()
        return await client.service_client.check_health(timeout=timedelta(seconds=2))

    try:
        temporal = await asyncio.wait_for(probe(), timeout=3)
    except Exception:  # any failure means "not reachable now", which is the answer
        temporal = False
    return {"ok": True, "temporal": bool(temporal)}
