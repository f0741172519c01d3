"""``/console/cases/{reference}``: one case, everything a member of staff needs to work it.

Who the requester is (for operators and reviewers; every view is written to the audit trail),
the statutory clock and its rule in words, a timeline from the hash-chained audit trail, the
identity check, each system's search, the letters sent (read from the case file's copies), the
package and its downloads, the review, internal comments and assignment, and the decisions the
case allows in its current stage as forms with a reason. A decision goes through the same
Update as the API's (``console.services``): a refusal shows the engine's own message.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response

from console.auth import OPERATOR, REVIEWER
from console.services import (
    DECISION_ROLE,
    MAX_REASON,
    REFERENCE_RE,
    audit_view,
    case_details,
    execute_decision,
    merge_cases,
    run_update,
    snapshot,
)
from console.staff.pages import (
    HEADERS,
    Caller,
    PageRefused,
    case_path,
    http_to_page,
    in_thread,
    posted,
    render,
    require,
    services_of,
    today,
)
from console.staff.queue import risk, worklist
from dsar.casefile import LetterEntry, LetterLog
from dsar.model import (
    FINAL_STAGES,
    CaseDetails,
    Decision,
    DecisionKind,
    IdentifierKind,
    Regime,
    RequestType,
    ReviewAction,
    Snapshot,
)
from dsar.regimes import REQUEST_LABELS
from dsar.sameperson import RelatedCase, same_person
from dsar.store import AuditRow, CaseStore
from dsar.timeutil import local_date, local_minute
from intake.service import IntakeError, type_details
from workflows.request import DataSubjectRequest
from workflows.rules import ALLOWED, ANSWERS, REJECT_GROUNDS, WAITS

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class DecisionForm:
    """How a decision appears on the case page: a button, what it does, the fields it needs."""

    label: str
    help: str
    fields: tuple[str, ...] = ("reason",)
    reason_required: bool = False
    warning: bool = False


DECISION_FORMS: dict[DecisionKind, DecisionForm] = {
    DecisionKind.VERIFY: DecisionForm("Verify identity", "You have checked who the person is (say how)."),
    DecisionKind.REJECT: DecisionForm(
        "Refuse the request",
        "Ends the case with a letter: the ground, the reason, the right to complain.",
        ("ground", "reason"),
        reason_required=True,
        warning=True,
    ),
    DecisionKind.WITHDRAW: DecisionForm(
        "Record a withdrawal", "The person withdrew the request: the case ends with a letter.", warning=True
    ),
    DecisionKind.EXTEND: DecisionForm(
        "Extend the deadline", "Complex or numerous requests: the person is told why.", reason_required=True
    ),
    DecisionKind.REQUEST_IDENTITY: DecisionForm(
        "Ask for proof of identity", "A letter asks the person; the clock follows the regime."
    ),
    DecisionKind.IDENTITY_RECEIVED: DecisionForm("Proof of identity received", "By post or in person."),
    DecisionKind.REQUEST_AUTHORITY: DecisionForm(
        "Ask the agent for authority", "Signed permission or a power of attorney."
    ),
    DecisionKind.AUTHORITY_RECEIVED: DecisionForm(
        "Authority received", "By post: you have seen the document."
    ),
    DecisionKind.REQUEST_FEE: DecisionForm(
        "Charge a fee",
        "Manifestly unfounded or excessive (Art. 12(5)); the clock holds until it is paid.",
        ("fee", "reason"),
        reason_required=True,
    ),
    DecisionKind.FEE_PAID: DecisionForm("Fee paid", "The fee has arrived."),
    DecisionKind.REQUEST_CLARIFICATION: DecisionForm(
        "Ask for clarification", "What the request covers is unclear."
    ),
    DecisionKind.CLARIFICATION_RECEIVED: DecisionForm("Clarification received", "The person has answered."),
    DecisionKind.FULFILLED: DecisionForm(
        "Carried out by hand", "Say what you did in each system.", reason_required=True
    ),
    DecisionKind.SKIP_SYSTEM: DecisionForm(
        "Skip a system",
        "Leave a system out of the search; the review sees why.",
        ("system", "reason"),
        reason_required=True,
        warning=True,
    ),
    DecisionKind.NOTHING_HELD: DecisionForm(
        "Nothing held in a system searched by hand",
        "For its owner's answer by phone or in person.",
        ("system", "reason"),
    ),
    DecisionKind.NO_DATA_HELD: DecisionForm(
        "We hold nothing about this person",
        "Answer at once with the 'we hold no personal data about you' letter: say how you know.",
        reason_required=True,
    ),
    DecisionKind.CLASSIFY: DecisionForm(
        "Classify the message", "Say what the message asks for.", ("request_type", "regime", "reason")
    ),
    DecisionKind.ADD_DETAILS: DecisionForm(
        "Add what the request needs",
        "What the person told us later: a correction, the other company's address, the use objected to.",
        ("details", "reason"),
    ),
}
#: The request types that need details, and which (the add_details form's fields).
DETAILS_FOR: dict[str, str] = {
    RequestType.RECTIFICATION.value: "corrections",
    RequestType.PORTABILITY.value: "transfer_to",
    RequestType.OBJECTION.value: "objection",
}


def decisions_allowed(snap: Snapshot, staff_roles: Caller) -> list[tuple[DecisionKind, DecisionForm]]:
    """The decisions that fit the case now, for this member of staff's roles."""
    staff = staff_roles.staff
    if snap.stage in FINAL_STAGES:
        return []
    waiting = snap.waiting_for or ""
    out = []
    for kind, form in DECISION_FORMS.items():
        if snap.stage not in ALLOWED[kind] or not staff.has(DECISION_ROLE[kind]):
            continue
        if kind in WAITS and "person: " in waiting and WAITS[kind].name in waiting:
            continue  # already waiting for it
        if kind in ANSWERS and ANSWERS[kind].name not in waiting.removeprefix("person: ").split(", "):
            continue  # nothing asked
        if kind == DecisionKind.EXTEND and snap.extended:
            continue
        if kind == DecisionKind.FULFILLED and "by hand" not in waiting:
            continue
        if kind == DecisionKind.ADD_DETAILS and snap.request_type.value not in DETAILS_FOR:
            continue
        if kind == DecisionKind.NOTHING_HELD and not any(s.status == "waiting" for s in snap.systems):
            continue
        if kind == DecisionKind.SKIP_SYSTEM and not any(
            s.status in ("searching", "unreachable", "waiting") for s in snap.systems
        ):
            continue
        out.append((kind, form))
    return out


#: The ways out of an operator task, as its form offers them.
TASK_WAYS_OUT: dict[DecisionKind, DecisionForm] = {
    DecisionKind.RETRY_STEP: DecisionForm(
        "Try it again", "After fixing the cause (a system back, a constraint freed)."
    ),
    DecisionKind.SKIP_STEP: DecisionForm(
        "Go on without it",
        "The case carries on without this step; the person may be told.",
        reason_required=True,
    ),
    DecisionKind.DONE_BY_HAND: DecisionForm(
        "Done by hand", "You carried the step out another way: say what you did.", reason_required=True
    ),
}


@dataclass
class LetterView:
    entry: LetterEntry
    subject: str
    to: str
    body: str


@dataclass
class CaseView:
    snap: Snapshot | None
    details: CaseDetails | None
    events: list[AuditRow]
    letters: list[LetterView]
    assignee: str | None
    review_text: str = ""
    problems: list[str] = field(default_factory=list)
    related: list[RelatedView] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RelatedView:
    """Another request by the same person, as the case page lists it."""

    case: RelatedCase
    answered_on: date | None  # the day it was answered (responded), if it was
    days_ago: int | None
    mergeable: bool = False  # an earlier open request of the same type: this one can join it


#: Requests whose fulfilment changes what a later search would find.
CHANGING = frozenset({"erasure", "rectification", "restriction"})


def related_cases(
    store: CaseStore, key: bytes, ref: str, events: list[AuditRow], tz: str, on: date
) -> tuple[list[RelatedView], list[str]]:
    """The same person's other requests, and what the team should be warned of: an open
    duplicate, a request answered recently (supports, never makes, a "manifestly excessive"
    decision), a change carried out after this case searched (its records may be gone)."""
    people = same_person(store.engine, key)
    views: list[RelatedView] = []
    warnings: list[str] = []
    searched = next((e.at for e in events if e.action == "stage:searching"), None)
    row = store.get(ref)
    for other in people.related(ref):
        answered = next(
            (e.at for e in store.audit_trail(other.reference) if e.action == "stage:responded"), None
        )
        answered_on = local_date(answered, tz) if answered else None
        mergeable = (
            row is not None
            and other.open
            and other.request_type == row.request_type
            and other.received_at <= row.received_at
            and other.stage not in ("fulfilling", "responded")
        )
        days_ago = (on - answered_on).days if answered_on else None
        views.append(RelatedView(other, answered_on, days_ago, mergeable))
        if other.open and row is not None and other.request_type == row.request_type:
            warnings.append(
                f"{other.reference} is an open {other.request_type.replace('_', ' ')} request from the same "
                "person: a duplicate may be answered with the earlier one."
            )
        if answered and searched and answered > searched and other.request_type in CHANGING:
            warnings.append(
                f"{other.reference} ({other.request_type}) was carried out on {answered_on} after this case "
                "searched: some records shown here may no longer exist or may have changed."
            )
    return views, warnings


def _letter(blobs: Any, entry: LetterEntry) -> LetterView:
    try:
        raw = blobs.get(entry.copy_ref)
    except Exception:  # purged with the case's blobs at the end of its retention
        return LetterView(entry, "(removed when the case file was purged)", "", "")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(preferencelist=("plain",))
    body = part.get_content() if part is not None else ""
    return LetterView(entry, str(msg.get("Subject", "")), str(msg.get("To", "")), str(body))


async def _gather(request: Request, who: Caller, ref: str) -> CaseView:
    svc = services_of(request)
    problems: list[str] = []
    snap: Snapshot | None = None
    details: CaseDetails | None = None
    try:
        snap = await snapshot(svc, ref)
        details = await case_details(svc, ref)
    except HTTPException as e:
        if e.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
            raise http_to_page(e) from None
        problems.append(
            f"The workflow could not be read ({e.detail}); the register and audit trail are shown."
        )
    if details is not None:
        await in_thread(audit_view, svc.store, ref, who.staff.actor(OPERATOR, REVIEWER), "console")
    events = await in_thread(svc.store.audit_trail, ref)
    log = getattr(request.app.state, "letters", None)
    if log is None:
        log = request.app.state.letters = await in_thread(LetterLog, svc.store.engine)
    entries = await in_thread(log.letters, ref)
    letters = [await in_thread(_letter, svc.blobs, e) for e in entries]
    review_text = ""
    if snap is not None and snap.review is not None:
        try:
            review_text = (await in_thread(svc.blobs.get, snap.review.package_ref)).decode()
            if snap.review.plan_ref:
                review_text += "\n" + (await in_thread(svc.blobs.get, snap.review.plan_ref)).decode()
        except Exception:
            problems.append("The review package could not be read from the blob store.")
    assignee = await in_thread(worklist(request).assignee, ref)
    related, warnings = await in_thread(
        related_cases,
        svc.store,
        svc.settings.suppression_key_bytes,
        ref,
        events,
        svc.settings.timezone,
        today(request),
    )
    return CaseView(snap, details, events, letters, assignee, review_text, problems, related, warnings)


@dataclass
class PersonMessage:
    """A message or file the person sent on their request's page (``person:message``)."""

    seq: int
    at: str
    text: str
    file_type: str


def _person_messages(blobs: Any, events: list[AuditRow], tz: str) -> list[PersonMessage]:
    out = []
    for e in events:
        if e.action != "person:message":
            continue
        text = ""
        if e.details.get("message"):
            try:
                text = blobs.get(e.details["message"]).decode()
            except Exception:  # purged with the case's blobs at the end of its retention
                text = "(removed when the case file was purged)"
        out.append(PersonMessage(e.seq, local_minute(e.at, tz), text, e.details.get("file_type", "")))
    return out


def _timeline(events: list[AuditRow], tz: str) -> list[dict[str, Any]]:
    rows = []
    for e in events:
        shown = {k: v for k, v in e.details.items() if k not in ("decisions", "package") or len(str(v)) < 60}
        rows.append(
            {
                "seq": e.seq,
                "at": local_minute(e.at, tz),
                "iso": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "reason": e.reason,
                "details": shown,
            }
        )
    return rows


async def render_case(
    request: Request, who: Caller, ref: str, *, error: str = "", done: str = "", status_code: int = 200
) -> Response:
    if not REFERENCE_RE.match(ref):
        raise PageRefused(
            status.HTTP_404_NOT_FOUND, "No such case", "A reference looks like DSR-2026-000123."
        )
    svc = services_of(request)
    row = await in_thread(svc.store.get, ref)
    if row is None:
        raise PageRefused(
            status.HTTP_404_NOT_FOUND, "No such case", f"There is no case {ref} in the register."
        )
    view = await _gather(request, who, ref)
    settings = svc.settings
    snap = view.snap
    comments = [e for e in view.events if e.action == "comment"]
    downloads = [e for e in view.events if e.action == "package:downloaded"]
    built = [e for e in view.events if e.action == "package:built"]
    ui = settings.temporal_ui_url.rstrip("/")
    return render(
        request,
        "case.html",
        who,
        status_code,
        title=ref,
        ref=ref,
        row=row,
        risk=risk(row, today(request)),
        view=view,
        snap=snap,
        details=view.details,
        timeline=_timeline(view.events, settings.timezone),
        comments=_timeline(comments, settings.timezone),
        person_messages=await in_thread(_person_messages, svc.blobs, view.events, settings.timezone),
        downloads=_timeline(downloads, settings.timezone),
        package=_timeline(built, settings.timezone)[-1] if built else None,
        decisions=decisions_allowed(snap, who) if snap is not None else [],
        task_forms=TASK_WAYS_OUT if who.staff.has(OPERATOR) else {},
        reject_grounds=sorted(REJECT_GROUNDS),
        details_for=DETAILS_FOR,
        correctable=[k.value for k in IdentifierKind if k.value not in ("last_transaction",)],
        request_types=[t.value for t in RequestType],
        regimes=[r.value for r in Regime],
        labels=REQUEST_LABELS,
        can_review=who.staff.has(REVIEWER),
        review_open=snap is not None
        and snap.review is not None
        and not snap.review.approved_by
        and snap.stage.value == "reviewing",
        temporal_link=f"{ui}/namespaces/{quote(settings.temporal_namespace)}/workflows/{quote(ref)}"
        if ui
        else "",
        local=lambda dt: local_minute(dt, settings.timezone) if isinstance(dt, datetime) else "",
        error=error,
        done=done,
        max_reason=MAX_REASON,
    )


@router.get("/console/cases/{ref}")
async def case_page(request: Request, ref: str, done: str = "") -> Response:
    who = await require(request, OPERATOR, REVIEWER)
    return await render_case(request, who, ref, done=done[:40])


@router.get("/console/cases/{ref}/messages/{seq}/file")
async def person_file(request: Request, ref: str, seq: int) -> Response:
    """The file the person sent with a message, decrypted for staff; the view is recorded."""
    who = await require(request, OPERATOR, REVIEWER)
    svc = services_of(request)
    if not REFERENCE_RE.match(ref):
        raise PageRefused(
            status.HTTP_404_NOT_FOUND, "No such case", "A reference looks like DSR-2026-000123."
        )
    events = await in_thread(svc.store.audit_trail, ref)
    entry = next((e for e in events if e.seq == seq and e.action == "person:message"), None)
    if entry is None or not entry.details.get("file"):
        raise PageRefused(
            status.HTTP_404_NOT_FOUND, "No such file", "The person sent no file with this message."
        )
    data = await in_thread(svc.blobs.get, entry.details["file"])
    await in_thread(audit_view, svc.store, ref, who.staff.actor(OPERATOR, REVIEWER), "console", "person_file")
    kind = entry.details.get("file_type", "application/octet-stream")
    extension = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}.get(kind, "bin")
    return Response(
        data,
        media_type=kind,
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{ref}-{seq}.{extension}"'},
    )


def _field(form: Any, name: str, limit: int = MAX_REASON) -> str:
    return str(form.get(name, "") or "").strip()[:limit]


@router.post("/console/cases/{ref}/decisions")
async def decide(request: Request, ref: str) -> Response:
    """A decision from its form; refused with the engine's words, re-shown on the case page."""
    who = await require(request, OPERATOR, REVIEWER)
    form = await posted(request, who)
    try:
        kind = DecisionKind(_field(form, "kind", 40))
    except ValueError:
        raise PageRefused(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "Unknown decision", "Choose a decision on the case page."
        ) from None
    if kind not in DECISION_FORMS and kind not in TASK_WAYS_OUT:
        raise PageRefused(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "Not decided here",
            "Use the review or the system's task page.",
        )
    role = DECISION_ROLE[kind]
    if not who.staff.has(role):
        raise PageRefused(
            status.HTTP_403_FORBIDDEN,
            "You cannot do this",
            f"'{kind.value}' needs the {role} or admin role. You are signed in as {who.staff.sub} "
            f"({', '.join(who.staff.roles)}).",
        )
    details: dict[str, Any] = {}
    if kind == DecisionKind.ADD_DETAILS:
        correction = {_field(form, "correction_kind", 40): _field(form, "correction_value", 200)}
        try:
            details = type_details(
                {k: v for k, v in correction.items() if k and v},
                _field(form, "transfer_to", 500),
                _field(form, "objection"),
            )
        except IntakeError as e:
            return await render_case(request, who, ref, error=str(e), status_code=422)
    decision = Decision(
        kind=kind,
        actor=who.staff.actor(role),
        reason=_field(form, "reason"),
        ground=_field(form, "ground", 100),
        system=_field(form, "system", 64),
        request_type=_field(form, "request_type", 40),
        regime=_field(form, "regime", 40),
        fee=_field(form, "fee", 20),
        task=_field(form, "task", 200),
        **details,
    )
    try:
        await execute_decision(services_of(request), ref, decision)
    except HTTPException as e:
        if e.status_code in (status.HTTP_409_CONFLICT, status.HTTP_422_UNPROCESSABLE_CONTENT):
            return await render_case(request, who, ref, error=str(e.detail), status_code=e.status_code)
        raise http_to_page(e) from None
    return RedirectResponse(
        f"{case_path(ref)}?done={kind.value}", status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS
    )


@router.post("/console/cases/{ref}/review")
async def approve_review(request: Request, ref: str) -> Response:
    """A reviewer approves the review package (the workbench for amendments is its own page)."""
    who = await require(request, OPERATOR, REVIEWER)
    form = await posted(request, who)
    if not who.staff.has(REVIEWER):
        raise PageRefused(
            status.HTTP_403_FORBIDDEN,
            "You cannot approve this",
            f"Approving what is disclosed or erased needs the reviewer or admin role. You are signed in as "
            f"{who.staff.sub} ({', '.join(who.staff.roles)}).",
        )
    action = ReviewAction(actor=who.staff.actor(REVIEWER), approve=True, note=_field(form, "note"))
    try:
        await run_update(services_of(request), ref, DataSubjectRequest.review, action, "review")
    except HTTPException as e:
        if e.status_code == status.HTTP_409_CONFLICT:
            return await render_case(request, who, ref, error=str(e.detail), status_code=e.status_code)
        raise http_to_page(e) from None
    return RedirectResponse(
        f"{case_path(ref)}?done=approve", status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS
    )


@router.post("/console/cases/{ref}/merge")
async def merge(request: Request, ref: str) -> Response:
    """Answer this duplicate with the same person's earlier open request."""
    who = await require(request, OPERATOR)
    form = await posted(request, who)
    into = _field(form, "into", 40)
    try:
        await merge_cases(services_of(request), ref, into, who.staff.actor(OPERATOR))
    except HTTPException as e:
        if e.status_code in (status.HTTP_409_CONFLICT, status.HTTP_422_UNPROCESSABLE_CONTENT):
            return await render_case(request, who, ref, error=str(e.detail), status_code=e.status_code)
        raise http_to_page(e) from None
    return RedirectResponse(
        f"{case_path(ref)}?done=merge", status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS
    )


@router.post("/console/cases/{ref}/comments")
async def comment(request: Request, ref: str) -> Response:
    """An internal note: in the case's audit trail, never sent to the person."""
    who = await require(request, OPERATOR, REVIEWER)
    form = await posted(request, who)
    text = _field(form, "comment")
    if not text:
        return await render_case(request, who, ref, error="Write the comment first.", status_code=422)
    store = services_of(request).store
    if not REFERENCE_RE.match(ref) or await in_thread(store.get, ref) is None:
        raise PageRefused(status.HTTP_404_NOT_FOUND, "No such case", "There is no such case in the register.")
    await in_thread(
        lambda: store.append_audit(
            ref, "comment", who.staff.actor(OPERATOR, REVIEWER), reason=text, at=datetime.now(UTC)
        )
    )
    return RedirectResponse(
        f"{case_path(ref)}?done=comment#comments", status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS
    )
