"""``/console/tasks``: a manually searched system's owner (``owner:<system>``) sees the cases
waiting for their search, and for each only what they need to search it: the identifiers the
data map's entry names for that system (never the rest of what the person gave), the
instructions and the due date. They upload what they found or answer "nothing held"; both are
the same decisions as the API's, recorded under their own name. Reminder letters link here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import col
from starlette.datastructures import UploadFile

from console.auth import OPERATOR, OWNER_PREFIX
from console.services import (
    REFERENCE_RE,
    audit_view,
    case_details,
    execute_decision,
    snapshot,
    store_upload,
)
from console.staff.pages import (
    HEADERS,
    Caller,
    PageRefused,
    http_to_page,
    in_thread,
    posted,
    render,
    require,
    services_of,
    today,
)
from dsar.datamap import DataMap, DataMapError, ManualTask
from dsar.model import Decision, DecisionKind
from dsar.store import Case

router = APIRouter(include_in_schema=False)

_SYSTEM = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_BY_HAND = re.compile(r"search by hand: ([^;]+)")


@dataclass(frozen=True)
class Task:
    reference: str
    system: str
    request_type: str
    regime: str
    due: date | None


def manual_systems(request: Request) -> dict[str, ManualTask]:
    try:
        datamap = DataMap.load(services_of(request).settings.datamap)
    except DataMapError as e:
        raise PageRefused(
            status.HTTP_503_SERVICE_UNAVAILABLE, "The data map cannot be read", str(e)
        ) from None
    return {s.name: s.manual for s in datamap.systems.values() if s.manual is not None}


def _may_search(who: Caller, system: str) -> bool:
    return who.staff.owns(system) or who.staff.has(OPERATOR)


def _open_tasks(request: Request, systems: set[str]) -> list[Task]:
    store = services_of(request).store
    query = (
        select(
            col(Case.reference),
            col(Case.waiting_for),
            col(Case.request_type),
            col(Case.regime),
            col(Case.due),
        )
        .where(col(Case.waiting_for).like("%search by hand:%"))
        .order_by(col(Case.due), col(Case.reference))
    )
    tasks = []
    with store._read() as session:
        for reference, waiting, request_type, regime, due in session.execute(query).all():
            found = _BY_HAND.search(waiting or "")
            for system in (s.strip() for s in (found.group(1) if found else "").split(",")):
                if system in systems:
                    tasks.append(Task(reference, system, request_type, regime, due))
    return tasks


@router.get("/console/tasks")
async def tasks_page(request: Request, done: str = "") -> Response:
    who = await require(request)
    manual = manual_systems(request)
    mine = {s for s in manual if _may_search(who, s)}
    if not mine and not who.staff.owned_systems:
        raise PageRefused(
            status.HTTP_403_FORBIDDEN,
            "You have no search tasks",
            f"This page is for the owners of systems searched by hand (role owner:<system>). "
            f"You are signed in as {who.staff.sub} ({', '.join(who.staff.roles) or 'no role'}).",
        )
    tasks = await in_thread(_open_tasks, request, mine)
    return render(
        request,
        "tasks.html",
        who,
        title="Search tasks",
        tasks=tasks,
        systems=sorted(mine),
        done=done[:40],
        today=today(request),
    )


def _checked(ref: str, system: str) -> None:
    if not REFERENCE_RE.match(ref) or not _SYSTEM.match(system):
        raise PageRefused(status.HTTP_404_NOT_FOUND, "No such task", "Check the link in your email.")


async def _task_caller(request: Request, ref: str, system: str) -> tuple[Caller, ManualTask]:
    who = await require(request)
    _checked(ref, system)
    manual = manual_systems(request)
    if system not in manual:
        raise PageRefused(
            status.HTTP_404_NOT_FOUND, "No such task", f"{system} is not a system searched by hand."
        )
    if not _may_search(who, system):
        raise PageRefused(
            status.HTTP_403_FORBIDDEN,
            "This task is not yours",
            f"Searching {system} needs the {OWNER_PREFIX}{system} or operator role. "
            f"You are signed in as {who.staff.sub} ({', '.join(who.staff.roles) or 'no role'}).",
        )
    return who, manual[system]


@router.get("/console/tasks/{ref}/{system}")
async def task_page(request: Request, ref: str, system: str) -> Response:
    who, manual = await _task_caller(request, ref, system)
    return await _render_task(request, who, ref, system, manual)


async def _render_task(
    request: Request, who: Caller, ref: str, system: str, manual: ManualTask, error: str = "", code: int = 200
) -> Response:
    svc = services_of(request)
    try:
        snap = await snapshot(svc, ref)
    except HTTPException as e:
        raise http_to_page(e) from None
    state = next((s for s in snap.systems if s.system == system), None)
    waiting = state is not None and state.status == "waiting"
    shown: dict[str, str] = {}
    if waiting:
        try:
            details = await case_details(svc, ref)
        except HTTPException as e:
            raise http_to_page(e) from None
        kinds = [k.value for k in manual.identifiers]
        shown = {k: details.identifiers[k] for k in kinds if details.identifiers.get(k)}
        actor = who.staff.actor(f"{OWNER_PREFIX}{system}", OPERATOR)
        await in_thread(audit_view, svc.store, ref, actor, f"task:{system}")
    return render(
        request,
        "task.html",
        who,
        code,
        title=f"Search {system} for {ref}",
        ref=ref,
        system=system,
        manual=manual,
        snap=snap,
        state=state,
        waiting=waiting,
        shown=shown,
        not_given=[k.value for k in manual.identifiers if k.value not in shown],
        error=error,
    )


@router.post("/console/tasks/{ref}/{system}/found")
async def found(request: Request, ref: str, system: str) -> Response:
    """What the search found, uploaded: encrypted into the case's blobs as it is read."""
    who, manual = await _task_caller(request, ref, system)
    form = await posted(request, who)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _render_task(request, who, ref, system, manual, "Choose the file to upload.", 422)
    raw_records = str(form.get("records", "1") or "1").strip()
    if not raw_records.isdigit() or not 1 <= int(raw_records) <= 1_000_000:
        return await _render_task(
            request, who, ref, system, manual, "How many records: a number from 1.", 422
        )
    svc = services_of(request)
    try:
        attachment = await in_thread(store_upload, svc.blobs, ref, f"{system}-manual.bin", upload)
    except HTTPException as e:
        return await _render_task(request, who, ref, system, manual, str(e.detail), e.status_code)
    decision = Decision(
        kind=DecisionKind.SYSTEM_FOUND,
        actor=who.staff.actor(f"{OWNER_PREFIX}{system}", OPERATOR),
        reason=str(form.get("note", "") or "").strip()[:2000],
        system=system,
        attachment=attachment,
        records=int(raw_records),
    )
    try:
        await execute_decision(svc, ref, decision)
    except HTTPException as e:
        await in_thread(svc.blobs.delete, attachment)
        if e.status_code == status.HTTP_409_CONFLICT:
            return await _render_task(request, who, ref, system, manual, str(e.detail), e.status_code)
        raise http_to_page(e) from None
    return RedirectResponse(
        "/console/tasks?done=found", status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS
    )


@router.post("/console/tasks/{ref}/{system}/nothing-held")
async def nothing_held(request: Request, ref: str, system: str) -> Response:
    who, manual = await _task_caller(request, ref, system)
    form = await posted(request, who)
    decision = Decision(
        kind=DecisionKind.NOTHING_HELD,
        actor=who.staff.actor(f"{OWNER_PREFIX}{system}", OPERATOR),
        reason=str(form.get("reason", "") or "").strip()[:2000],
        system=system,
    )
    try:
        await execute_decision(services_of(request), ref, decision)
    except HTTPException as e:
        if e.status_code == status.HTTP_409_CONFLICT:
            return await _render_task(request, who, ref, system, manual, str(e.detail), e.status_code)
        raise http_to_page(e) from None
    return RedirectResponse(
        "/console/tasks?done=nothing_held", status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS
    )
