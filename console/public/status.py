"""The person's own page for a request: where it stands, what we need from them, withdraw it,
write to us. ``GET /r/{reference}/status?t={token}``, the link in the acknowledgement.

The link is a signed ``view_status`` link (``dsar.links``): the same signature, expiry, refusals
and refusal audit as the confirmation links, but not single-use, because the person comes back to
it. Every view and every action is written to the case's hash-chained audit trail. The forms on
the page carry the token as their key, so a form cannot be posted for a case without its link.

What the page never shows: which systems were searched or hold anything, which identifiers
matched, how many records were found, who handles the case. It reads only the stage, the due
date and the clock's events (``Snapshot``), and what the case waits for from the person, so
the page of a person we hold and of one we do not hold read alike at the same point.
Actions go to the workflow the way staff's do: the ``decide`` Update (withdrawal, a received
clarification), ``provide_identifiers`` and ``provide_authority``. Messages and files are
stored encrypted in the blob store and attached to the case through its audit trail
(``person:message``), where the staff console shows them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from console.public.links import (
    AUTHORITY_UPDATE,
    FIELDS,
    PROVIDE_UPDATE,
    REQUEST_PHRASES,
    _check,
    _clean,
    _Field,
    _not_needed,
    _send_update,
)
from console.public.pages import (
    GET_LIMIT,
    HONEYPOT,
    MAX_VALUE_LENGTH,
    POST_LIMIT,
    Stop,
    _,
    guard_of,
    limited,
    message,
    read_form,
    render,
    services_of,
)
from console.services import snapshot
from console.uploads import MAX_DOCUMENT_BYTES, UploadRefused, content_type, read_upload
from dsar import inputs
from dsar.delivery import mint_download_link
from dsar.links import LinkClaims
from dsar.logs import get_logger
from dsar.model import (
    FINAL_STAGES,
    AuthorityDocument,
    ClockEventType,
    Decision,
    DecisionKind,
    ProvidedIdentifiers,
    Snapshot,
    Stage,
)
from dsar.package import package_name
from dsar.settings import Settings
from dsar.store import AuditRow
from dsar.wording import long_date
from workflows.request import DataSubjectRequest

log = get_logger("dsar.public.status")

router = APIRouter(tags=["public"], include_in_schema=False)

#: Who acted, in the case's trail: the person, through their request's page.
STATUS_ACTOR = "person:status"
#: The longest message the page takes (a few paragraphs; the multipart reader caps each field).
MAX_MESSAGE = 2000
#: The details the page asks for when we wait for identity (never the email: the link went there).
IDENTITY_KINDS = ("name", "postal_address", "postcode", "phone", "date_of_birth", "customer_id")


#: Stage -> (the stage in plain words, what it means). The stages between the check of identity
#: and the answer read as one: which comes next depends on what the search found.
STAGE_WORDS: dict[Stage, tuple[str, str]] = {
    Stage.RECEIVED: (_("Received"), _("We have received your request.")),
    Stage.TRIAGE: (_("Received"), _("We have received your request.")),
    Stage.ACKNOWLEDGED: (_("Received"), _("We have received your request.")),
    Stage.VERIFYING: (
        _("Checking who you are"),
        _(
            "We are making sure that we are dealing with you, so that nobody else can obtain or change "
            "your information."
        ),
    ),
    Stage.SEARCHING: (_("Working on your request"), _("We are working on your request.")),
    Stage.REVIEWING: (_("Working on your request"), _("We are working on your request.")),
    Stage.FULFILLING: (_("Working on your request"), _("We are working on your request.")),
    Stage.RESPONDED: (_("Answered"), _("We have sent you our answer by email.")),
    Stage.CLOSED: (_("Closed"), _("We have answered this request and closed it.")),
    Stage.REJECTED: (
        _("Closed without acting on it"),
        _("We have written to you to explain why we could not act on this request."),
    ),
    Stage.WITHDRAWN: (_("Withdrawn"), _("This request was withdrawn. We have stopped working on it.")),
    Stage.EXPIRED: (
        _("Closed"),
        _("We closed this request because we did not receive what we asked for in time."),
    ),
    Stage.MERGED: (
        _("Answered with your other request"),
        _(
            "We are answering this request together with another request you made. We have written to "
            "you about it."
        ),
    ),
}

#: What the case may wait for from the person (``Snapshot.waiting_for`` "person: ...").
NEEDS: dict[str, str] = {
    "identity": _("Information to confirm who you are"),
    "authority": _("Proof that you may act for the person"),
    "clarification": _("More detail about what you are asking for"),
    "fee": _("The fee we wrote to you about"),
    "confirmation": _("Your confirmation that you made this request"),
}

#: Clock events the person is told about, and what they did to the date.
CLOCK_WORDS: dict[ClockEventType, str] = {
    ClockEventType.IDENTITY_REQUESTED: _("we asked you for information to confirm who you are"),
    ClockEventType.AUTHORITY_REQUESTED: _("we asked for proof of authority to act for the person"),
    ClockEventType.CLARIFICATION_REQUESTED: _("we asked you to tell us more about your request"),
    ClockEventType.FEE_REQUESTED: _("we asked you for a fee"),
    ClockEventType.IDENTITY_RECEIVED: _("we received the information to confirm who you are"),
    ClockEventType.AUTHORITY_RECEIVED: _("we received the proof of authority"),
    ClockEventType.CLARIFICATION_RECEIVED: _("we received what you told us about your request"),
    ClockEventType.FEE_PAID: _("we received the fee"),
    ClockEventType.EXTENSION_NOTIFIED: _("we extended the time we have to reply"),
}
_ASKED = frozenset(
    {
        ClockEventType.IDENTITY_REQUESTED,
        ClockEventType.AUTHORITY_REQUESTED,
        ClockEventType.CLARIFICATION_REQUESTED,
        ClockEventType.FEE_REQUESTED,
    }
)


@dataclass
class ClockNote:
    """One thing that moved the date: when, what, and why (an extension's reason)."""

    date: str
    what: str
    effect: str
    reason: str = ""


@dataclass
class Download:
    """The copy of the data, while its link works: a fresh link to the same package, with the
    same expiry as the one in the response letter (``dsar.delivery``)."""

    url: str
    until: str
    encrypted: bool


def current_download(settings: Settings, snap: Snapshot, events: list[AuditRow]) -> Download | None:
    """The package the case built and linked last, if its link still works and is served here
    (a presigned S3 link is only in the letter)."""
    built = [e for e in events if e.action == "package:built"]
    issued = [e for e in events if e.action == "package:link_issued"]
    if not built or not issued or issued[-1].details.get("via") != "local":
        return None
    expires = datetime.fromisoformat(issued[-1].details["expires"])
    if expires <= datetime.now(UTC):
        return None
    name = package_name(snap.reference, snap.request_type)
    link = mint_download_link(
        settings, snap.reference, built[-1].details["package"], name, expires_at=expires
    )
    path = link.url.removeprefix(settings.public_url.rstrip("/"))
    return Download(
        path,
        long_date(expires.astimezone(ZoneInfo(settings.timezone)).date()),
        built[-1].details.get("encrypted") == "yes",
    )


@dataclass
class StatusView:
    """What the page shows of a case: nothing about what we hold."""

    reference: str
    asked: str
    stage_title: str
    stage_text: str
    due: str
    open: bool
    paused: bool
    needs: list[str] = field(default_factory=list)
    notes: list[ClockNote] = field(default_factory=list)
    answered: bool = False


def status_view(snap: Snapshot) -> StatusView:
    """The page's facts, from the case's snapshot (the only input: what the page may say)."""
    title, text = STAGE_WORDS[snap.stage]
    waiting = snap.waiting_for or ""
    needs = (
        [n.strip() for n in waiting.removeprefix("person:").split(",")]
        if waiting.startswith("person:")
        else []
    )
    extensions = [d.reason for d in snap.decisions if d.kind == DecisionKind.EXTEND]
    notes = []
    for event in snap.clock_events:
        if event.type not in CLOCK_WORDS:
            continue
        if event.type == ClockEventType.EXTENSION_NOTIFIED:
            effect = _("The date we reply by moved later.")
            reason = extensions.pop(0) if extensions else ""
        elif event.type in _ASKED:
            effect = _("The time we have to reply stops until we receive it.")
            reason = ""
        else:
            effect = _("The time we have to reply started again, so the date we reply by moved.")
            reason = ""
        notes.append(ClockNote(long_date(event.date), CLOCK_WORDS[event.type], effect, reason))
    is_open = snap.stage not in FINAL_STAGES and snap.stage != Stage.RESPONDED
    return StatusView(
        reference=snap.reference,
        asked=REQUEST_PHRASES.get(snap.request_type.value, ""),
        stage_title=title,
        stage_text=text,
        due=long_date(snap.due),
        open=is_open,
        paused=snap.paused,
        needs=[n for n in needs if n in NEEDS] if is_open else [],
        notes=notes,
        answered=snap.stage in (Stage.RESPONDED, Stage.CLOSED),
    )


# --------------------------------------------------------------------------------------------
# Reading the case


async def _case(request: Request, claims: LinkClaims) -> Snapshot | Response:
    """The case's snapshot, or a page saying why it cannot be shown now."""
    try:
        return await snapshot(services_of(request), claims.reference)
    except HTTPException as e:
        if e.status_code == status.HTTP_404_NOT_FOUND:  # purged at the end of its retention
            return await message(
                request,
                status.HTTP_410_GONE,
                _("This request is closed"),
                (_("This request has been closed and its file removed, as our retention rules require."),),
            )
        return await _not_now(request)
    except Exception as e:  # the engine cannot be reached: nothing lost, try again later
        log.warning("status page: case not readable", reference=claims.reference, error=type(e).__name__)
        return await _not_now(request)


async def _not_now(request: Request) -> Response:
    return await message(
        request,
        status.HTTP_503_SERVICE_UNAVAILABLE,
        _("Please try again in a few minutes"),
        (_("We cannot show your request just now. Please try again in a few minutes."),),
        headers={"Retry-After": "120"},
    )


def _audit(request: Request, reference: str, action: str, details: dict[str, str] | None = None) -> None:
    services_of(request).store.append_audit(reference, action, STATUS_ACTOR, details=details or {})


def _identity_fields(form: dict[str, str] | None = None) -> list[_Field]:
    out = []
    for kind in IDENTITY_KINDS:
        label, hint, autocomplete, input_type, multiline = FIELDS[kind]
        out.append(_Field(kind, label, hint, autocomplete, input_type, multiline, (form or {}).get(kind, "")))
    return out


async def _status_page(
    request: Request,
    claims: LinkClaims,
    token: str,
    snap: Snapshot,
    status_code: int = status.HTTP_200_OK,
    fields: list[_Field] | None = None,
    message_error: str = "",
    message_text: str = "",
) -> Response:
    view = status_view(snap)
    ref = quote(claims.reference, safe="")
    fields = fields if fields is not None else _identity_fields()
    svc = services_of(request)
    download = None
    if view.answered:
        events = await asyncio.to_thread(svc.store.audit_trail, claims.reference)
        download = await asyncio.to_thread(current_download, svc.settings, snap, events)
    has_errors = bool(message_error) or any(f.error for f in fields)
    return await render(
        request,
        "status.html",
        status_code,
        title=f"Your request {claims.reference}",
        view=view,
        download=download,
        needs_words=NEEDS,
        fields=fields,
        token=token,
        honeypot=HONEYPOT,
        max_length=MAX_VALUE_LENGTH,
        max_message=MAX_MESSAGE,
        max_mb=MAX_DOCUMENT_BYTES // (1024 * 1024),
        message_error=message_error,
        message_text=message_text,
        has_errors=has_errors,
        identity_action=f"/r/{ref}/status/identity",
        message_action=f"/r/{ref}/status/message?t={quote(token, safe='')}",
        withdraw_link=f"/r/{ref}/withdraw?t={quote(token, safe='')}",
    )


@router.get("/r/{ref}/status", response_class=HTMLResponse)
@limited(GET_LIMIT)
async def status_page(request: Request, ref: str, t: str = "") -> Response:
    """Where the request stands, and what the person can do about it (the GET changes nothing
    but the trail, which records the view)."""
    claims = await _check(request, ref, t, "status")
    if isinstance(claims, Response):
        return claims
    snap = await _case(request, claims)
    if isinstance(snap, Response):
        return snap
    await asyncio.to_thread(_audit, request, claims.reference, "status:viewed")
    return await _status_page(request, claims, t, snap)


# --------------------------------------------------------------------------------------------
# Identity


@router.post("/r/{ref}/status/identity", response_class=HTMLResponse)
@limited(POST_LIMIT)
async def status_identity(request: Request, ref: str) -> Response:
    """The details we asked for to confirm who the person is, handed to the case as the
    single-use form link's are (``provide_identifiers``)."""
    try:
        form = await read_form(request)
    except Stop as stop:
        return stop.response
    token = form.get("t", "")
    claims = await _check(request, ref, token, "status")
    if isinstance(claims, Response):
        return claims
    if form.get(HONEYPOT, ""):
        log.warning("public form honeypot filled", reference=claims.reference)
        return await message(
            request, status.HTTP_400_BAD_REQUEST, _("This form could not be sent"),
            (_("Please go back to the form and send it again."),),
        )  # fmt: skip
    snap = await _case(request, claims)
    if isinstance(snap, Response):
        return snap
    if "identity" not in status_view(snap).needs:  # asked for nothing: the details are not taken
        return await _not_needed(request)
    fields = _identity_fields(form)
    identifiers = {f.kind: value for f in fields if (value := _clean(f))}
    if not identifiers and not any(f.error for f in fields):
        fields[0].error = _("Enter at least one of these details")
    if any(f.error for f in fields):
        return await _status_page(
            request, claims, token, snap, status.HTTP_422_UNPROCESSABLE_CONTENT, fields=fields
        )
    guard = await guard_of(request)
    locked = await asyncio.to_thread(lambda: any(guard.is_locked(k, v) for k, v in identifiers.items()))
    if locked:
        log.warning("status page refused: identifier locked out", reference=claims.reference)
        return await message(
            request,
            status.HTTP_429_TOO_MANY_REQUESTS,
            _("Please try again later"),
            (_("We cannot accept these details right now because of too many attempts."),),
        )
    provided = ProvidedIdentifiers(identifiers=identifiers, declaration=False, via="status")
    failed = await _send_update(request, claims, PROVIDE_UPDATE, provided)
    if failed is not None:
        return failed
    return await _thanks(request, claims, token)


async def _thanks(request: Request, claims: LinkClaims, token: str) -> Response:
    back = f"/r/{quote(claims.reference, safe='')}/status?t={quote(token, safe='')}"
    return await render(
        request,
        "status_done.html",
        status.HTTP_200_OK,
        title=_("Thank you, we have received it"),
        back=back,
    )


# --------------------------------------------------------------------------------------------
# Messages and files


@router.post("/r/{ref}/status/message", response_class=HTMLResponse)
@limited(POST_LIMIT)
async def status_message(request: Request, ref: str, t: str = "") -> Response:
    """A message and/or a file from the person, kept encrypted and attached to the case. If the
    case waits for a clarification, the message is it; if it waits for proof of authority, the
    file is it. The token rides in the action URL, so a forged link costs no upload."""
    claims = await _check(request, ref, t, "status")
    if isinstance(claims, Response):
        return claims
    text = ""
    try:
        upload = await read_upload(request)
        if upload.fields.get(HONEYPOT, ""):
            log.warning("public form honeypot filled", reference=claims.reference)
            raise UploadRefused(_("This form could not be sent. Please go back and send it again."), 400)
        text = upload.fields.get("message", "").replace("\r\n", "\n").strip()
        document = upload.document("document", required=False)
        if len(text) > MAX_MESSAGE:
            raise UploadRefused(_("Your message must be 2000 characters or fewer"), 422)
        if text and inputs.text_problem(text, lines="keep") is not None:
            raise UploadRefused(
                _("Your message contains characters we cannot accept; please type it again"), 422
            )
        if not text and document is None:
            raise UploadRefused(_("Write a message or choose a file to send"), 422)
    except UploadRefused as e:
        snap = await _case(request, claims)
        if isinstance(snap, Response):
            return snap
        return await _status_page(
            request, claims, t, snap, e.status, message_error=str(e), message_text=text[:MAX_MESSAGE]
        )
    snap = await _case(request, claims)
    if isinstance(snap, Response):
        return snap
    view = status_view(snap)
    blobs = services_of(request).blobs
    details: dict[str, str] = {}
    if text:
        details["message"] = await asyncio.to_thread(
            blobs.put, text.encode(), case=claims.reference, name="person-message.txt"
        )
    if document is not None:
        details["file"] = await asyncio.to_thread(
            blobs.put, document, case=claims.reference, name="person-file.bin"
        )
        details["file_type"] = content_type(document)
    await asyncio.to_thread(_audit, request, claims.reference, "person:message", details)
    if text and "clarification" in view.needs:
        decision = Decision(
            kind=DecisionKind.CLARIFICATION_RECEIVED,
            actor=STATUS_ACTOR,
            reason="the person answered on the request's page (their message is on the case file)",
        )
        failed = await _send_update(request, claims, DataSubjectRequest.decide, decision)
        if failed is not None:
            return failed
    if document is not None and "authority" in view.needs:
        failed = await _send_update(
            request, claims, AUTHORITY_UPDATE, AuthorityDocument(document=details["file"], via="status")
        )
        if failed is not None:
            return failed
    log.info("person's message received", reference=claims.reference)
    return await _thanks(request, claims, t)


# --------------------------------------------------------------------------------------------
# Withdrawal


@router.get("/r/{ref}/withdraw", response_class=HTMLResponse)
@limited(GET_LIMIT)
async def withdraw_page(request: Request, ref: str, t: str = "") -> Response:
    """Ask the person to confirm: a withdrawal cannot be undone (the GET changes nothing)."""
    claims = await _check(request, ref, t, "status")
    if isinstance(claims, Response):
        return claims
    return await render(
        request,
        "withdraw.html",
        status.HTTP_200_OK,
        title=f"Withdraw your request {claims.reference}",
        reference=claims.reference,
        token=t,
        action=f"/r/{quote(claims.reference, safe='')}/withdraw",
        back=f"/r/{quote(claims.reference, safe='')}/status?t={quote(t, safe='')}",
    )


@router.post("/r/{ref}/withdraw", response_class=HTMLResponse)
@limited(POST_LIMIT)
async def withdraw_submit(request: Request, ref: str) -> Response:
    """The person withdraws: the staff's own ``withdraw`` decision, by the person. The case
    records it, stops the clock and answers with the withdrawal letter."""
    try:
        form = await read_form(request)
    except Stop as stop:
        return stop.response
    token = form.get("t", "")
    claims = await _check(request, ref, token, "status")
    if isinstance(claims, Response):
        return claims
    decision = Decision(
        kind=DecisionKind.WITHDRAW,
        actor=STATUS_ACTOR,
        reason="withdrawn by the person on the request's page",
    )
    failed = await _send_update(request, claims, DataSubjectRequest.decide, decision)
    if failed is not None:
        return failed
    return await render(
        request,
        "status_done.html",
        status.HTTP_200_OK,
        title=_("Your request has been withdrawn"),
        back=f"/r/{quote(claims.reference, safe='')}/status?t={quote(token, safe='')}",
    )


__all__ = ["STAGE_WORDS", "StatusView", "router", "status_view"]
