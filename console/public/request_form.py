"""The public request form: anyone can ask for their data, its deletion, or any other right.

It follows the public pages' rules (``console.public``): no login, no JavaScript, plain words,
errors beside their fields and in a summary at the top, nothing personal in logs or URLs, and
the same security headers. One path opens the case, the one every channel uses
(``intake.service.open_case``, channel ``web_form``); the acknowledgement letter then goes out
from the case itself, with the reference and the due date.

Abuse, without a CAPTCHA service (which would send the person's visit to a third party): a
per-client rate limit, a honeypot field, caps on the body, on every answer and on the upload,
and a random token in each form that is the intake's idempotency key, so a double click, a
retried POST or a reload of the confirmation page reaches the case already opened.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import unicodedata
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from temporalio.service import RPCError

from console.public.pages import (
    BIDI_CONTROLS,
    GET_LIMIT,
    HONEYPOT,
    MAX_VALUE_LENGTH,
    POST_LIMIT,
    limited,
    message,
    render,
    services_of,
)
from console.public.pages import _ as N_  # the catalogue's marker: `_` is a loop variable here
from console.services import EngineUnavailable
from console.uploads import MAX_DOCUMENT_BYTES, UploadRefused, read_upload
from dsar import inputs
from dsar.datamap import Controller, DataMap, DataMapError
from dsar.logs import get_logger
from dsar.model import (
    UNVERIFIED_TYPES,
    AgentAuthority,
    AgentDetails,
    Channel,
    IdentifierKind,
    Regime,
    RequestType,
)
from dsar.regimes import REGIMES
from intake.service import (
    IntakeError,
    NewRequest,
    OpenedCase,
    RegisterOutOfStep,
    clean_transfer_to,
    open_case,
)

log = get_logger("dsar.request_form")

router = APIRouter(tags=["public"], include_in_schema=False)

#: Where a request from "somewhere else" goes when the data map names no regime for the controller.
FALLBACK_REGIME = Regime.UK_GDPR
#: The form's token: random, URL-safe; it becomes the idempotency key ``web-form:<token>``.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
TOKEN_BYTES = 24

#: (request type, what the form calls it, a hint saying where the right exists, if not everywhere)
REQUEST_TYPES: tuple[tuple[RequestType, str, str], ...] = (
    (RequestType.ACCESS, N_("Get a copy of my data"), ""),
    (RequestType.ERASURE, N_("Delete my data"), ""),
    (RequestType.RECTIFICATION, N_("Correct my data"), ""),
    (RequestType.PORTABILITY, N_("Move my data to another company"), ""),
    (RequestType.RESTRICTION, N_("Restrict how you use my data"), ""),
    (RequestType.OBJECTION, N_("Object to how you use my data"), ""),
    (
        RequestType.OPT_OUT_SALE_SHARING,
        N_("Do not sell or share my data"),
        N_("For people in California and some other US states"),
    ),
    (RequestType.LIMIT_SENSITIVE, N_("Limit use of my sensitive data"), N_("For people in California")),
)


@dataclass(frozen=True)
class Place:
    """Where the person lives, and the law their request is handled under (None: the
    controller's own, see ``default_regime``)."""

    key: str
    label: str
    regime: Regime | None
    #: how to read a phone number written without its country code (None: it needs one)
    phone_region: str | None


PLACES: tuple[Place, ...] = (
    Place("uk", N_("United Kingdom"), Regime.UK_GDPR, "GB"),
    Place("eu", N_("A country in the EU or the EEA"), Regime.EU_GDPR, None),
    Place("california", "California", Regime.CCPA, "US"),
    Place("virginia", "Virginia", Regime.VCDPA, "US"),
    Place("colorado", "Colorado", Regime.CPA, "US"),
    Place("connecticut", "Connecticut", Regime.CTDPA, "US"),
    Place("utah", "Utah", Regime.UCPA, "US"),
    Place("brazil", "Brazil", Regime.LGPD, "BR"),
    Place("canada", "Canada", Regime.PIPEDA, "CA"),
    Place("elsewhere", N_("Somewhere else"), None, None),
)
_PLACES = {p.key: p for p in PLACES}

AUTHORITIES: tuple[tuple[AgentAuthority, str], ...] = (
    (AgentAuthority.WRITTEN_PERMISSION, N_("They have signed a letter giving me permission")),
    (AgentAuthority.POWER_OF_ATTORNEY, N_("I have a power of attorney for them")),
)

#: The person's details: field -> (label, hint, autocomplete token, input mode, multi-line).
DETAILS: dict[str, tuple[str, str, str, str, bool]] = {
    IdentifierKind.NAME.value: (N_("Full name"), "", "name", "text", False),
    IdentifierKind.EMAIL.value: (
        N_("Email address"),
        N_("We will write to you at this address"),
        "email",
        "email",
        False,
    ),
    IdentifierKind.PHONE.value: (N_("Phone number (optional)"), "", "tel", "tel", False),
    IdentifierKind.POSTAL_ADDRESS.value: (
        N_("Postal address (optional)"),
        "",
        "street-address",
        "text",
        True,
    ),
    IdentifierKind.POSTCODE.value: (N_("Postcode or ZIP code (optional)"), "", "postal-code", "text", False),
    IdentifierKind.ACCOUNT_NUMBER.value: (
        N_("Account or customer number (optional)"),
        N_("You can find it on our emails and invoices"),
        "off",
        "text",
        False,
    ),
}
#: The agent's own details (text fields).
AGENT_DETAILS: dict[str, tuple[str, str, str, str]] = {
    "agent_name": (N_("Your full name"), "", "name", "text"),
    "agent_email": (N_("Your email address"), N_("We will write to you about the request"), "email", "email"),
    "agent_organisation": (N_("Your organisation (optional)"), "", "organization", "text"),
}
#: What a rectification may correct on the form: identifier kind -> what the person calls it.
CORRECTABLE: dict[str, str] = {
    IdentifierKind.NAME.value: N_("My name"),
    IdentifierKind.EMAIL.value: N_("My email address"),
    IdentifierKind.PHONE.value: N_("My phone number"),
    IdentifierKind.POSTAL_ADDRESS.value: N_("My postal address"),
    IdentifierKind.POSTCODE.value: N_("My postcode or ZIP code"),
    IdentifierKind.DATE_OF_BIRTH.value: N_("My date of birth"),
}
#: How many corrections one form takes (more: send the form again, or write on the request's page).
CORRECTION_ROWS = (1, 2)
#: What each request type needs besides the person's details (GDPR Art. 16, 20(2), 21).
TYPE_FIELDS = (
    *(f"correction_{part}_{i}" for i in CORRECTION_ROWS for part in ("kind", "value")),
    "transfer_to",
    "objection",
)
TEXT_FIELDS = (*DETAILS, *AGENT_DETAILS, *TYPE_FIELDS)
DOCUMENT_FIELD = "agent_document"
#: Month names for dates on the page (not strftime: its output follows the server's locale).
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")  # fmt: skip


@dataclass
class Answers:
    """What the person sent, as typed: kept to fill the form in again when something is wrong
    (never the file, which the browser cannot be given back)."""

    token: str = ""
    request_type: str = ""
    place: str = ""
    text: dict[str, str] = field(default_factory=lambda: dict.fromkeys(TEXT_FIELDS, ""))
    for_someone_else: bool = False
    authority: str = ""

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Answers:
        return cls(
            token=fields.get("form_token", ""),
            request_type=fields.get("request_type", ""),
            place=fields.get("place", ""),
            text={name: fields.get(name, "") for name in TEXT_FIELDS},
            for_someone_else=fields.get("for_someone_else", "") == "yes",
            authority=fields.get("authority", ""),
        )


@dataclass
class Problems:
    """What is wrong with the answers: by field, in the order the form shows them, and any
    problem with the form as a whole."""

    fields: dict[str, str] = field(default_factory=dict)
    general: str = ""

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)


@dataclass
class CheckedRequest:
    """The answers once they are all acceptable: what intake needs."""

    new: NewRequest
    document_sent: bool


# --------------------------------------------------------------------------------------------
# Checking the answers


def _text(value: str, multiline: bool = False) -> str:
    if multiline:  # an address typed on several lines
        value = ", ".join(line.strip() for line in value.splitlines() if line.strip())
    value = value.strip()
    return unicodedata.normalize("NFC", value) if inputs.text_problem(value) is None else value


def _unacceptable(value: str, what: str) -> str:
    """Why a typed value cannot be taken ("" if it can): too long, or characters that cannot
    travel safely to the end of the case (the input gate, ``dsar.inputs``)."""
    if len(value) > MAX_VALUE_LENGTH:
        return f"{what} must be {MAX_VALUE_LENGTH} characters or fewer"
    if inputs.text_problem(value) is not None or any(ch in BIDI_CONTROLS for ch in value):
        return f"{what} contains characters we cannot accept; please type it again"
    return ""


def _email_problem(value: str, what: str) -> str:
    """The library's own message may quote the address: the person sees ours instead."""
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return f"Enter {what} in the correct format, like name@example.com"
    return ""


def _phone_problem(value: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        if region is None and not value.startswith("+"):
            return N_("Enter your phone number with its country code, like +33 1 23 45 67 89")
        return N_("Enter a phone number in the correct format, like +44 7700 900982")
    return ""


def check_answers(
    answers: Answers,
    controller: Controller | None,
    document: bytes | None = None,
    document_problem: str = "",
) -> tuple[Problems, CheckedRequest | None]:
    """Every problem at once (a person fixes them in one go), or the request to open.
    ``document``: the agent's upload, already checked to be a PDF, JPEG or PNG (or why not)."""
    problems = Problems()
    wrong = problems.fields
    if not TOKEN_RE.match(answers.token):
        problems.general = N_("This form could not be checked. Please check your answers and send it again.")
    types = {t.value for t, _, _ in REQUEST_TYPES}
    if answers.request_type not in types:
        wrong["request_type"] = N_("Choose what you would like us to do")
    place = _PLACES.get(answers.place)
    if place is None:
        wrong["place"] = N_("Choose where you live")
    regime = (place.regime if place else None) or default_regime(controller)

    corrections, transfer_to, objection = _check_type_fields(answers, wrong)
    identifiers: dict[str, str] = {}
    for kind, (label, _, _, mode, multiline) in DETAILS.items():
        value = _text(answers.text.get(kind, ""), multiline)
        what = label.removesuffix(" (optional)")
        problem = _unacceptable(value, what)
        if not problem and value and mode == "email":
            problem = _email_problem(value, "an email address")
        if not problem and value and kind == IdentifierKind.PHONE:
            region = place.phone_region if place else None
            problem = _phone_problem(value, region or (controller.phone_region if controller else None))
        if not value and kind == IdentifierKind.EMAIL:
            problem = N_("Enter your email address")
        if problem:
            wrong[kind] = problem
        elif value:
            identifiers[kind] = value

    agent: AgentDetails | None = None
    agent_text = {name: _text(answers.text.get(name, "")) for name in AGENT_DETAILS}
    if answers.for_someone_else:
        agent, agent_problems = _check_agent(answers, agent_text, identifiers)
        wrong.update(agent_problems)
        if document_problem:
            wrong[DOCUMENT_FIELD] = document_problem
    elif agent_text["agent_name"] or agent_text["agent_email"]:
        wrong["for_someone_else"] = N_(
            "Tick this box if you are making the request for someone else, or clear your own details"
        )
    if problems:
        return problems, None
    assert place is not None
    return problems, CheckedRequest(
        NewRequest(
            request_type=RequestType(answers.request_type),
            regime=regime,
            identifiers=identifiers,
            channel=Channel.WEB_FORM,
            idempotency_key=f"web-form:{answers.token}",
            agent=agent,
            authority_document=document if agent is not None else None,
            corrections=corrections,
            transfer_to=transfer_to,
            objection=objection,
        ),
        document_sent=agent is not None and document is not None,
    )


def _check_type_fields(answers: Answers, wrong: dict[str, str]) -> tuple[dict[str, str], str, str]:
    """What the chosen request type needs: the corrections of a rectification (which detail is
    wrong and what it should say), the receiving company of a portability transfer, the use
    objected to in an objection. Answers for a type not chosen are left out."""
    # an address or an objection may be typed on several lines: joined, as the address is
    text = {name: _text(answers.text.get(name, ""), multiline=name != "transfer_to") for name in TYPE_FIELDS}
    corrections: dict[str, str] = {}
    if answers.request_type == RequestType.RECTIFICATION:
        for i in CORRECTION_ROWS:
            kind, value = text[f"correction_kind_{i}"], text[f"correction_value_{i}"]
            if (kind and kind not in CORRECTABLE) or (value and not kind):
                wrong[f"correction_kind_{i}"] = N_("Choose which detail is wrong")
            elif kind and not value:
                wrong[f"correction_value_{i}"] = N_("Enter what it should say")
            elif (kind and (problem := _unacceptable(value, N_("What it should say")))) or (
                kind == IdentifierKind.EMAIL and (problem := _email_problem(value, "the email address"))
            ):
                wrong[f"correction_value_{i}"] = problem
            elif kind:
                corrections[kind] = value
        if not corrections and not any(k.startswith("correction_") for k in wrong):
            wrong["correction_kind_1"] = N_("Tell us which detail is wrong and what it should say")
    transfer_to = ""
    if answers.request_type == RequestType.PORTABILITY and text["transfer_to"]:
        try:
            transfer_to = clean_transfer_to(text["transfer_to"], RequestType.PORTABILITY)
        except IntakeError:
            wrong["transfer_to"] = N_("Enter the other company's secure web address, starting with https://")
    objection = ""
    if answers.request_type == RequestType.OBJECTION:
        objection = text["objection"]
        if not objection:
            wrong["objection"] = N_("Tell us which use of your data you object to")
        elif problem := _unacceptable(objection, N_("Your answer")):
            wrong["objection"] = problem
    return corrections, transfer_to, objection


def _check_agent(
    answers: Answers, text: dict[str, str], identifiers: dict[str, str]
) -> tuple[AgentDetails | None, dict[str, str]]:
    """Someone acting for the person: their own name and email, and what entitles them."""
    wrong: dict[str, str] = {}
    for name, (label, _, _, mode) in AGENT_DETAILS.items():
        value = text[name]
        what = label.removesuffix(" (optional)")
        problem = _unacceptable(value, what)
        if not problem and value and mode == "email":
            problem = _email_problem(value, "your email address")
        if problem:
            wrong[name] = problem
    if not text["agent_name"]:
        wrong["agent_name"] = N_("Enter your full name")
    if not text["agent_email"]:
        wrong["agent_email"] = N_("Enter your email address")
    elif text["agent_email"].lower() == identifiers.get(IdentifierKind.EMAIL, "").lower():
        wrong["agent_email"] = N_("Enter your own email address, not the email address of the person")
    if answers.authority not in {a.value for a, _ in AUTHORITIES}:
        wrong["authority"] = N_("Choose what allows you to act for them")
    if wrong:
        return None, wrong
    return (
        AgentDetails(
            name=text["agent_name"],
            email=text["agent_email"],
            authority=AgentAuthority(answers.authority),
            organisation=text["agent_organisation"],
        ),
        {},
    )


def default_regime(controller: Controller | None) -> Regime:
    """The law for someone who lives "somewhere else": the first regime the data map lists
    for the controller (its home law), else UK GDPR, the mailbox's default too."""
    if controller is not None and controller.regimes:
        return controller.regimes[0]
    return FALLBACK_REGIME


def long_date(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


# --------------------------------------------------------------------------------------------
# Pages


async def _controller_facts(request: Request) -> Controller | None:
    """The data map's controller, read once per app (None if the map cannot be read: the form
    still shows, and intake says it is unavailable)."""
    state = request.app.state
    if getattr(state, "request_form_controller", None) is None:
        try:
            datamap = await asyncio.to_thread(DataMap.load, services_of(request).settings.datamap)
        except DataMapError as e:
            log.error("data map cannot be loaded", error=str(e))
            return None
        state.request_form_controller = datamap.controller
    controller: Controller = state.request_form_controller
    return controller


def _summary_target(name: str) -> str:
    """The id a summary link leads to: a radio group's first button, or the field itself."""
    firsts = {
        "request_type": f"request_type-{REQUEST_TYPES[0][0].value}",
        "place": f"place-{PLACES[0].key}",
        "authority": f"authority-{AUTHORITIES[0][0].value}",
        DOCUMENT_FIELD: DOCUMENT_FIELD,
    }
    return firsts.get(name, name)


#: Fields in the order the form shows them (the summary lists problems in the same order).
FIELD_ORDER = (
    "request_type",
    *TYPE_FIELDS,
    "place",
    *DETAILS,
    "for_someone_else",
    *AGENT_DETAILS,
    "authority",
    DOCUMENT_FIELD,
)


async def _form_page(
    request: Request,
    status_code: int,
    answers: Answers | None = None,
    problems: Problems | None = None,
    file_dropped: bool = False,
) -> Response:
    answers = answers or Answers(token=secrets.token_urlsafe(TOKEN_BYTES))
    if not TOKEN_RE.match(answers.token):
        answers.token = secrets.token_urlsafe(TOKEN_BYTES)
    problems = problems or Problems()
    controller = await _controller_facts(request)
    fallback = REGIMES[default_regime(controller)].label
    summary = [
        (_summary_target(name), problems.fields[name]) for name in FIELD_ORDER if name in problems.fields
    ]
    return await render(
        request,
        "request.html",
        status_code,
        title=N_("Make a privacy request"),
        answers=answers,
        errors=defaultdict(str, problems.fields),  # a field without a problem reads as ""
        general_error=problems.general,
        summary=summary,
        has_errors=bool(problems),
        request_types=REQUEST_TYPES,
        places=PLACES,
        elsewhere_hint=f"We will handle your request under {fallback}",
        details=DETAILS,
        agent_details=AGENT_DETAILS,
        correctable=CORRECTABLE,
        correction_rows=CORRECTION_ROWS,
        authorities=AUTHORITIES,
        document_field=DOCUMENT_FIELD,
        file_dropped=file_dropped,
        max_length=MAX_VALUE_LENGTH,
        max_mb=MAX_DOCUMENT_BYTES // (1024 * 1024),
        honeypot=HONEYPOT,
    )


@router.get("/request", response_class=HTMLResponse)
@limited(GET_LIMIT)
async def request_page(request: Request) -> Response:
    """The empty form, with a fresh token."""
    return await _form_page(request, status.HTTP_200_OK)


@router.post("/request", response_class=HTMLResponse)
@limited(POST_LIMIT)
async def request_submit(request: Request) -> Response:
    """Check every answer; open the case (or find the one this form already opened)."""
    try:
        upload = await read_upload(request)
    except UploadRefused as e:
        paragraphs = (f"{e}.", N_("Please go back to the form and send it again."))
        return await message(request, e.status, N_("This form could not be sent"), paragraphs)
    if upload.fields.get(HONEYPOT, ""):
        log.warning("request form honeypot filled")
        return await message(
            request,
            status.HTTP_400_BAD_REQUEST,
            N_("This form could not be sent"),
            (N_("Please go back to the form and send it again."),),
        )
    answers = Answers.from_fields(upload.fields)
    document: bytes | None = None
    document_problem = ""
    if answers.for_someone_else:
        try:
            document = upload.document(DOCUMENT_FIELD, required=False)
        except UploadRefused as e:
            document_problem = str(e)
    controller = await _controller_facts(request)
    problems, checked = check_answers(answers, controller, document, document_problem)
    if problems or checked is None:
        # The browser cannot be given the file back: say so, unless the file was the problem.
        dropped = document is not None
        return await _form_page(
            request, status.HTTP_422_UNPROCESSABLE_CONTENT, answers, problems, file_dropped=dropped
        )
    opened = await _open(request, checked)
    if isinstance(opened, Problems):
        # The same form again, with the same token: sending it again reaches the case if this
        # attempt did open it, and opens it if not.
        code = status.HTTP_503_SERVICE_UNAVAILABLE if opened.general == NOT_NOW else 422
        response = await _form_page(request, code, answers, opened, file_dropped=document is not None)
        if code == status.HTTP_503_SERVICE_UNAVAILABLE:
            response.headers["Retry-After"] = "120"
        return response
    log.info("web form request opened" if opened.created else "web form resent", reference=opened.reference)
    return await _done_page(request, opened, checked)


#: One submission per form token at a time in this process: a double click sends two POSTs at
#: once, and the second must find the case the first opens, not race it into the engine.
_SUBMITTING: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
NOT_NOW = N_(
    "Sorry, we could not send your request just now. Please send this form again in a few minutes: "
    "you will still make only one request."
)
REFUSED = N_("We could not accept this request as it is. Please check your answers, or email us instead.")


async def _open(request: Request, checked: CheckedRequest) -> OpenedCase | Problems:
    svc = services_of(request)
    key = checked.new.idempotency_key or ""
    lock = _SUBMITTING.get(key)
    if lock is None:
        lock = _SUBMITTING[key] = asyncio.Lock()
    try:
        async with lock:
            controller = svc.controller()
            client = await svc.client()
            return await open_case(client, svc.store, svc.settings, checked.new, controller, blobs=svc.blobs)
    except (EngineUnavailable, RPCError, HTTPException) as e:
        log.error("web form request not opened", error=type(e).__name__)
    except RegisterOutOfStep as e:
        log.error("register out of step with the workflow engine", error=str(e))
    except IntakeError as e:  # messages name fields, never values
        log.error("web form request refused by intake", error=str(e))
        return Problems(general=REFUSED)
    return Problems(general=NOT_NOW)


async def _done_page(request: Request, opened: OpenedCase, checked: CheckedRequest) -> Response:
    new = checked.new
    return await render(
        request,
        "request_done.html",
        status.HTTP_200_OK,
        title=N_("We have received your request"),
        reference=opened.reference,
        due=long_date(opened.due),
        by_agent=new.agent is not None,
        document_sent=checked.document_sent,
        verification_needed=new.request_type not in UNVERIFIED_TYPES,
    )


__all__ = ["PLACES", "REQUEST_TYPES", "Answers", "check_answers", "default_regime", "router"]
