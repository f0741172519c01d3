"""The pages the person reaches from our letters: confirm a request, send more identifiers.

No login and no JavaScript: a signed single-use link (``dsar.links``) is the person's key. The
GET pages only check the link, so that a mail scanner that opens every link uses nothing; the
POST behind the button uses the link and hands over to the workflow (the ``decide`` Update for a
confirmation, the ``provide_identifiers`` Update for the form).

What the pages never do: echo a token or an identifier back anywhere but into the form it came
from, say which identifiers matched or what we hold ("Thank you, we have received it" whatever
happens next), or name an agent. Every refused link is recorded (``GuardStore.record_refusal``)
with the reason only.

Abuse: per-client rate limits (slowapi, in memory), a cap on the request body, a honeypot field
that only a robot fills in, and per-identifier lockouts after repeated failed verification
(``GuardStore.is_locked``; the failures themselves are counted where the matching happens).
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, Response
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from console.public.pages import (
    BIDI_CONTROLS,
    GET_LIMIT,
    HONEYPOT,
    MAX_VALUE_LENGTH,
    POST_LIMIT,
    REFUSALS,
    Stop,
    _,
    guard_of,
    limited,
    message,
    read_form,
    render,
    services_of,
)
from console.services import UPDATE_TIMEOUT, EngineUnavailable
from console.uploads import MAX_DOCUMENT_BYTES, UploadRefused, read_upload
from dsar import inputs
from dsar.guard import GuardStore
from dsar.links import PROVIDABLE_KINDS, REFERENCE_RE, LinkClaims, LinkRefused, check_link
from dsar.logs import get_logger
from dsar.model import AuthorityDocument, Decision, DecisionKind, ProvidedIdentifiers, RequestType
from dsar.store import CaseStore
from workflows.request import DataSubjectRequest

log = get_logger("dsar.public")

#: The Update the workflow takes the form's identifiers through.
PROVIDE_UPDATE = "provide_identifiers"
AUTHORITY_UPDATE = "provide_authority"
PERSON_ACTOR = "person:link"

#: Identifier kind -> what the form calls it, a hint, the browser's autocomplete token, the input
#: type, and whether it gets a multi-line box.
FIELDS: dict[str, tuple[str, str, str, str, bool]] = {
    "name": (_("Full name"), "", "name", "text", False),
    "phone": (_("Phone number"), "", "tel", "tel", False),
    "postal_address": (_("Postal address"), "", "street-address", "text", True),
    "postcode": ("Postcode", "", "postal-code", "text", False),
    "date_of_birth": (_("Date of birth"), _("For example, 27 March 1985"), "bday", "text", False),
    "customer_id": (
        _("Customer number"),
        _("You can find it on our emails and invoices"),
        "off",
        "text",
        False,
    ),
    "account_number": (_("Account number"), "", "off", "text", False),
    "last_transaction": (
        _("Your last order or payment (reference, amount, date)"),
        _("For example, order 10442, £23.50, 3 May"),
        "off",
        "text",
        False,
    ),
}
assert set(FIELDS) == set(PROVIDABLE_KINDS), "every identifier a link may ask for needs a label"

DECLARATION_TEXT = _(
    "I declare under penalty of perjury under the laws of the State of California that I am the "
    "person whose personal information is requested"
)

#: What each request type asks for, in the words of "Confirm your request DSR-... to ...".
REQUEST_PHRASES: dict[str, str] = {
    RequestType.ACCESS: "to get a copy of your data",
    RequestType.ERASURE: "to erase your data",
    RequestType.RECTIFICATION: "to correct your data",
    RequestType.PORTABILITY: "to receive your data in a format you can move",
    RequestType.RESTRICTION: "to restrict how we use your data",
    RequestType.OBJECTION: "to object to how we use your data",
    RequestType.OPT_OUT_SALE_SHARING: "to stop the sale or sharing of your data",
    RequestType.LIMIT_SENSITIVE: "to limit how we use your sensitive data",
}


async def _refused(
    request: Request, guard: GuardStore, ref: str, page: str, refusal: LinkRefused
) -> Response:
    reference = ref if REFERENCE_RE.match(ref) else None
    purpose = refusal.purpose or page
    await asyncio.to_thread(guard.record_refusal, reference, purpose, refusal.reason)
    if reference is not None:
        await asyncio.to_thread(
            _audit_refusal, services_of(request).store, reference, page, purpose, refusal.reason
        )
    log.warning("link refused", reference=reference, page=page, reason=refusal.reason)
    code, title, paragraphs = REFUSALS[refusal.reason]
    return await message(request, code, title, paragraphs)


def _audit_refusal(store: CaseStore, reference: str, page: str, purpose: str, reason: str) -> None:
    """A refused link on a case we hold goes into that case's hash-chained trail too, where a
    reviewer or regulator reads the case (the guard keeps every refusal, known case or not)."""
    if store.get(reference) is None:
        return
    store.append_audit(
        reference, "link:refused", "public", reason=reason, details={"page": page, "purpose": purpose}
    )


async def _check(request: Request, ref: str, token: str, page: str) -> LinkClaims | Response:
    guard = await guard_of(request)
    settings = services_of(request).settings
    try:
        if not REFERENCE_RE.match(ref):
            raise LinkRefused("forged")
        return await asyncio.to_thread(check_link, settings, ref, token, page, used=guard.is_used)
    except LinkRefused as e:
        return await _refused(request, guard, ref, page, e)


async def _use(request: Request, claims: LinkClaims) -> Response | None:
    """Use the link; a page if it was used already (two clicks racing: one wins)."""
    guard = await guard_of(request)
    if await asyncio.to_thread(guard.use_link, claims.jti, claims.reference, claims.purpose):
        return None
    return await _refused(
        request, guard, claims.reference, claims.page, LinkRefused("replayed", claims.purpose)
    )


async def _send_update(request: Request, claims: LinkClaims, update: Any, arg: Any) -> Response | None:
    """Hand the link's action to the workflow; a page if it did not take it (None: it did).
    If the engine could not be reached nothing arrived, so the link is made usable again."""
    ref = claims.reference
    svc = services_of(request)
    try:
        client = await svc.client()
        await client.get_workflow_handle(ref).execute_update(update, arg, rpc_timeout=UPDATE_TIMEOUT)
    except WorkflowUpdateFailedError as e:
        if isinstance(e.cause, ApplicationError):  # refused: the case is not waiting for this
            log.info("link action refused by the case", reference=ref, purpose=claims.purpose)
            return await _not_needed(request)
        log.error("link action failed", reference=ref, purpose=claims.purpose, error=type(e.cause).__name__)
        return await _try_later(request, claims)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:  # finished, or never existed
            return await _not_needed(request)
        log.error("link action failed", reference=ref, purpose=claims.purpose, status=str(e.status))
        return await _try_later(request, claims)
    except (EngineUnavailable, WorkflowUpdateRPCTimeoutOrCancelledError):
        return await _try_later(request, claims)
    log.info("link used", reference=ref, purpose=claims.purpose)
    return None


async def _not_needed(request: Request) -> Response:
    return await message(
        request,
        status.HTTP_409_CONFLICT,
        _("Your request no longer needs this"),
        (
            _(
                "Thank you. Your request does not need this any more: it may already have moved on, "
                "been completed or been closed."
            ),
            _("If you have a question about it, reply to our email."),
        ),
    )


async def _try_later(request: Request, claims: LinkClaims) -> Response:
    guard = await guard_of(request)
    await asyncio.to_thread(guard.release_link, claims.jti)
    return await message(
        request,
        status.HTTP_503_SERVICE_UNAVAILABLE,
        _("Please try again in a few minutes"),
        (
            _("We could not save this just now. Nothing was lost, and your link still works."),
            _("Please try again in a few minutes."),
        ),
        headers={"Retry-After": "120"},
    )


# --------------------------------------------------------------------------------------------
# Confirm

router = APIRouter(tags=["public"], include_in_schema=False)


def _confirm_wording(claims: LinkClaims, request_type: str | None) -> tuple[str, tuple[str, ...], str]:
    ref = claims.reference
    if claims.purpose == "confirm_agent":
        return (
            _("Confirm that you asked someone to act for you"),
            (
                f"Someone has made request {ref} on your behalf.",
                _("Confirm only if you asked them to make this request for you."),
            ),
            _("Yes, I asked them to act for me"),
        )
    if claims.purpose == "confirm_erasure":
        return (
            f"Confirm your request {ref} to erase your data",
            (_("When you confirm, we will erase your personal data as you asked. This cannot be undone."),),
            _("Yes, erase my data"),
        )
    phrase = REQUEST_PHRASES.get(request_type or "", "")
    title = f"Confirm your request {ref}" + (f" {phrase}" if phrase else "")
    return (
        title,
        (_("Please confirm that you made this request, so that we can act on it."),),
        _("Confirm my request"),
    )


@router.get("/r/{ref}/confirm", response_class=HTMLResponse)
@limited(GET_LIMIT)
async def confirm_page(request: Request, ref: str, t: str = "") -> Response:
    """What is being confirmed, and the button that confirms it (the GET changes nothing)."""
    claims = await _check(request, ref, t, "confirm")
    if isinstance(claims, Response):
        return claims
    row = await asyncio.to_thread(services_of(request).store.get, ref)
    title, paragraphs, button = _confirm_wording(claims, row.request_type if row else None)
    return await render(
        request,
        "confirm.html",
        status.HTTP_200_OK,
        title=title,
        paragraphs=paragraphs,
        button=button,
        token=t,
        action=f"/r/{quote(ref, safe='')}/confirm",
    )


@router.post("/r/{ref}/confirm", response_class=HTMLResponse)
@limited(POST_LIMIT)
async def confirm_submit(request: Request, ref: str) -> Response:
    """Use the link and tell the case that the person confirmed."""
    try:
        form = await read_form(request)
    except Stop as stop:
        return stop.response
    claims = await _check(request, ref, form.get("t", ""), "confirm")
    if isinstance(claims, Response):
        return claims
    refused = await _use(request, claims)
    if refused is not None:
        return refused
    decision = Decision(kind=DecisionKind.PERSON_CONFIRMED, actor=PERSON_ACTOR, reason=claims.purpose)
    failed = await _send_update(request, claims, DataSubjectRequest.decide, decision)
    if failed is not None:
        return failed
    return await message(
        request,
        status.HTTP_200_OK,
        _("Thank you, we have received your confirmation"),
        (f"We will carry on with request {claims.reference} and write to you by email.",),
    )


# --------------------------------------------------------------------------------------------
# Provide identifiers


@dataclass
class _Field:
    kind: str
    label: str
    hint: str
    autocomplete: str
    input_type: str
    multiline: bool
    value: str = ""
    error: str = ""


def _fields(claims: LinkClaims, form: dict[str, str] | None = None) -> list[_Field]:
    out = []
    for kind in claims.kinds:
        label, hint, autocomplete, input_type, multiline = FIELDS[kind]
        value = (form or {}).get(kind, "")
        out.append(_Field(kind, label, hint, autocomplete, input_type, multiline, value=value))
    return out


def _label_in_text(field: _Field) -> str:
    label = field.label.removeprefix("Your ")
    return label[0].lower() + label[1:]


def _blank_error(field: _Field) -> str:
    return f"Enter your {_label_in_text(field)}"


def _clean(field: _Field) -> str:
    """The field's value, trimmed ("" if left blank); sets ``field.error`` if it cannot be
    accepted. The person answers what they can: at least one field is needed, not all."""
    value = field.value
    if field.multiline:  # an address typed on several lines
        value = ", ".join(line.strip() for line in value.splitlines() if line.strip())
    value = value.strip()
    label = _label_in_text(field)
    if not value:
        return ""
    if len(value) > MAX_VALUE_LENGTH:
        field.error = f"Your {label} must be {MAX_VALUE_LENGTH} characters or fewer"
    elif inputs.text_problem(value) is not None or any(ch in BIDI_CONTROLS for ch in value):
        field.error = f"Your {label} contains characters we cannot accept; please type it again"
    return unicodedata.normalize("NFC", value) if not field.error else value


async def _provide_form(
    request: Request,
    claims: LinkClaims,
    token: str,
    status_code: int,
    fields: list[_Field],
    declaration_checked: bool = False,
    declaration_error: str = "",
) -> Response:
    declaration = (
        {"text": DECLARATION_TEXT, "checked": declaration_checked, "error": declaration_error}
        if claims.declaration
        else None
    )
    has_errors = any(f.error for f in fields) or bool(declaration_error)
    return await render(
        request,
        "provide.html",
        status_code,
        title=_("Tell us some details to confirm who you are"),
        reference=claims.reference,
        fields=fields,
        declaration=declaration,
        errors=has_errors,
        has_errors=has_errors,
        token=token,
        honeypot=HONEYPOT,
        max_length=MAX_VALUE_LENGTH,
        action=f"/r/{quote(claims.reference, safe='')}/provide",
    )


@router.get("/r/{ref}/provide", response_class=HTMLResponse)
@limited(GET_LIMIT)
async def provide_page(request: Request, ref: str, t: str = "") -> Response:
    """A form asking only for the identifier kinds the link names."""
    claims = await _check(request, ref, t, "provide")
    if isinstance(claims, Response):
        return claims
    return await _provide_form(request, claims, t, status.HTTP_200_OK, _fields(claims))


@router.post("/r/{ref}/provide", response_class=HTMLResponse)
@limited(POST_LIMIT)
async def provide_submit(request: Request, ref: str) -> Response:
    """Check the answers, use the link, and give them to the case."""
    try:
        form = await read_form(request)
    except Stop as stop:
        return stop.response
    if form.get(HONEYPOT, ""):
        log.warning("public form honeypot filled", reference=ref if REFERENCE_RE.match(ref) else None)
        return await message(
            request,
            status.HTTP_400_BAD_REQUEST,
            _("This form could not be sent"),
            (_("Please go back to the form and send it again."),),
        )
    token = form.get("t", "")
    claims = await _check(request, ref, token, "provide")
    if isinstance(claims, Response):
        return claims
    fields = _fields(claims, form)
    identifiers = {f.kind: value for f in fields if (value := _clean(f))}
    if not identifiers and not any(f.error for f in fields):
        fields[0].error = (
            _("Enter at least one of these details") if len(fields) > 1 else _blank_error(fields[0])
        )
    declared = form.get("declaration", "") == "yes"
    declaration_error = ""
    if claims.declaration and not declared:
        declaration_error = _("Tick the box to make the declaration")
    if any(f.error for f in fields) or declaration_error:
        return await _provide_form(
            request,
            claims,
            token,
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            fields,
            declaration_checked=declared,
            declaration_error=declaration_error,
        )
    guard = await guard_of(request)
    locked = await asyncio.to_thread(lambda: any(guard.is_locked(k, v) for k, v in identifiers.items()))
    if locked:  # too many failed attempts with one of these: nothing is sent, the link stays unused
        log.warning("public form refused: identifier locked out", reference=claims.reference)
        return await message(
            request,
            status.HTTP_429_TOO_MANY_REQUESTS,
            _("Please try again later"),
            (
                _("We cannot accept these details right now because of too many attempts."),
                _("Please try again later, or reply to our email."),
            ),
        )
    refused = await _use(request, claims)
    if refused is not None:
        return refused
    provided = ProvidedIdentifiers(
        identifiers=identifiers, declaration=claims.declaration and declared, via="form"
    )
    failed = await _send_update(request, claims, PROVIDE_UPDATE, provided)
    if failed is not None:
        return failed
    return await message(
        request,
        status.HTTP_200_OK,
        _("Thank you, we have received it"),
        (_("We will write to you by email about your request."),),
    )


# --------------------------------------------------------------------------------------------
# An agent's proof of authority


async def _authority_form(
    request: Request, claims: LinkClaims, token: str, status_code: int, error: str = ""
) -> Response:
    return await render(
        request,
        "authority.html",
        status_code,
        title=_("Upload your proof of authority"),
        reference=claims.reference,
        error=error,
        has_errors=bool(error),
        honeypot=HONEYPOT,
        max_mb=MAX_DOCUMENT_BYTES // (1024 * 1024),
        action=f"/r/{quote(claims.reference, safe='')}/authority?t={quote(token, safe='')}",
    )


@router.get("/r/{ref}/authority", response_class=HTMLResponse)
@limited(GET_LIMIT)
async def authority_page(request: Request, ref: str, t: str = "") -> Response:
    """Where an agent uploads the permission the person signed, or a power of attorney."""
    claims = await _check(request, ref, t, "authority")
    if isinstance(claims, Response):
        return claims
    return await _authority_form(request, claims, t, status.HTTP_200_OK)


@router.post("/r/{ref}/authority", response_class=HTMLResponse)
@limited(POST_LIMIT)
async def authority_submit(request: Request, ref: str, t: str = "") -> Response:
    """Check the link before reading the upload; store the document encrypted; tell the case.
    The token rides in the form's action URL, so a forged link costs no upload."""
    claims = await _check(request, ref, t, "authority")
    if isinstance(claims, Response):
        return claims
    try:
        upload = await read_upload(request)
        if upload.fields.get(HONEYPOT, ""):
            log.warning("public form honeypot filled", reference=claims.reference)
            raise UploadRefused(_("This form could not be sent. Please go back and send it again."), 400)
        document = upload.document("document")
    except UploadRefused as e:
        return await _authority_form(request, claims, t, e.status, error=str(e))
    assert document is not None
    refused = await _use(request, claims)
    if refused is not None:
        return refused
    blobs = services_of(request).blobs
    attachment = await asyncio.to_thread(
        blobs.put, document, case=claims.reference, name="agent-authority.bin"
    )
    failed = await _send_update(
        request, claims, AUTHORITY_UPDATE, AuthorityDocument(document=attachment, via="link")
    )
    if failed is not None:
        await asyncio.to_thread(blobs.delete, attachment)
        return failed
    return await message(
        request,
        status.HTTP_200_OK,
        _("Thank you, we have received it"),
        (_("We will check it and write to you by email about the request."),),
    )


__all__ = ["FIELDS", "router"]
