"""What every part of the web app needs to act on a case: the engine, the register, the blob
store, and the one way to read or decide a case.

The JSON API (``console.api``), the staff console (``console.staff``) and the person's pages
(``console.public``) all go through these helpers, so that a decision taken on a page and one
taken through the API are the same Update with the same checks, and a refusal says the same
thing in both. Failures are ``HTTPException``s whose ``detail`` is a sentence a person can act
on: the API returns it as JSON, the pages show it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Path, Request, status
from starlette.datastructures import UploadFile
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from console.auth import OPERATOR, REVIEWER
from dsar.blobs import BlobStore, blob_store_from_settings
from dsar.datamap import DataMap, DataMapError
from dsar.logs import get_logger
from dsar.model import FINAL_STAGES, CaseDetails, Decision, DecisionKind, MergedRequest, Snapshot, Stage
from dsar.settings import Settings
from dsar.store import CaseStore
from workflows.request import DataSubjectRequest, DecisionResult

log = get_logger("dsar.services")

#: Case references as the register allocates them (``DSR-2026-000123``; more digits after a
#: million cases). Checked before Temporal is asked, so junk never reaches the engine.
REFERENCE_RE = re.compile(r"^DSR-\d{4}-\d{6,12}$")

ENGINE_UNREACHABLE = "the workflow engine is unreachable; retry"

MAX_REASON = 2000
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


R = TypeVar("R")


async def _query(svc: Services, ref: str, query: Callable[[DataSubjectRequest], R], what: str) -> R:
    """One of the case workflow's queries, its failures as the HTTP answers the pages show."""
    check_reference(ref)
    client = await svc.client()
    try:
        result: R = await client.get_workflow_handle(ref).query(query, rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        raise engine_error(e, ref) from None
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as e:
        log.error(f"{what} query failed", reference=ref, error=type(e).__name__)
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, detail=f"case {ref} could not be read; retry"
        ) from None
    return result


async def snapshot(svc: Services, ref: str) -> Snapshot:
    """The case as the workflow sees it now (the ``snapshot`` query)."""
    return await _query(svc, ref, DataSubjectRequest.snapshot, "snapshot")


async def case_details(svc: Services, ref: str) -> CaseDetails:
    """Who the requester is (personal data: the caller audits the view) and the clock's rule."""
    return await _query(svc, ref, DataSubjectRequest.details, "details")


async def merge_cases(svc: Services, ref: str, into: str, actor: str) -> DecisionResult:
    """Answer the duplicate ``ref`` with the same person's open case ``into``: ``ref`` ends
    (merged, with a letter naming both), and ``into`` records it so its answer names both.

    Refused (422) unless ``into`` is the same person's (``dsar.sameperson``), received no later
    (the merge must never move the person's answer later) and still open before fulfilment."""
    from dsar.sameperson import same_person

    check_reference(ref)
    check_reference(into)
    this, other = svc.store.get(ref), svc.store.get(into)
    if this is None or other is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such case")
    people = same_person(svc.store.engine, svc.settings.suppression_key_bytes)
    related = {r.reference: r for r in await asyncio.to_thread(people.related, ref)}
    if into not in related:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"{into} is not known to be the same person's request: it cannot be merged with {ref}",
        )
    if other.received_at > this.received_at:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"{into} was received after {ref}: merge the later request into the earlier one",
        )
    if other.due is None or other.stage in (
        Stage.FULFILLING.value,
        Stage.RESPONDED.value,
        *(s.value for s in FINAL_STAGES),
    ):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"{into} is {other.stage}: its answer is under way or sent; answer {ref} on its own",
        )
    decision = Decision(
        kind=DecisionKind.MERGE, actor=actor, merge_into=into, merge_due=other.due.isoformat()
    )
    result = await execute_decision(svc, ref, decision)
    try:
        await run_update(
            svc,
            into,
            DataSubjectRequest.take_merged,
            MergedRequest(reference=ref, actor=actor),
            "take_merged",
        )
    except HTTPException as e:
        # ref is answered as merged already; say on both files that the other did not record it
        for case, other_ref in ((ref, into), (into, ref)):
            await asyncio.to_thread(
                svc.store.append_audit, case, "merge:not_recorded", actor, str(e.detail), {"other": other_ref}
            )
        raise
    return result


def audit_view(store: CaseStore, ref: str, actor: str, via: str, what: str = "requester") -> None:
    """Record that a member of staff saw the requester's details (UK GDPR Art. 5(1)(f), 5(2):
    who looked at a person's data, and when, is itself part of the case file)."""
    store.append_audit(ref, f"{what}:viewed", actor, details={"via": via})


def store_upload(blobs: BlobStore, ref: str, name: str, file: UploadFile) -> str:
    """Stream an upload, encrypted, into the case's blobs; its reference (empty or too large:
    a 4xx, and nothing kept)."""
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


async def execute_decision(svc: Services, ref: str, decision: Decision) -> DecisionResult:
    """Take a decision on a case: the ``decide`` Update, refused (409) by its validator when it
    makes no sense now."""
    check_reference(ref)
    result: DecisionResult = await run_update(
        svc, ref, DataSubjectRequest.decide, decision, decision.kind.value
    )
    log.info("decision taken", reference=ref, kind=decision.kind.value, actor=decision.actor)
    return result


async def run_update(svc: Services, ref: str, update: Any, arg: Any, what: str) -> Any:
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
