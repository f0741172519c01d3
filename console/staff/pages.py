"""What every staff page shares: who is asking, what they may do, the look and the headers.

A page answers a signed-in member of staff (a server-side session, ``console.auth.sessions``)
or a script with a staff bearer token (monitoring, the CLI). A visitor with neither is sent to
sign in; a member of staff without the role a page needs gets a plain 403 page that says which
role it needs. Every form carries the session's CSRF token and every POST checks it (a bearer
token is not sent by browsers on their own, so a POST carrying one needs none).

Pages are server-rendered (Jinja2) and work without JavaScript; HTMX, served by the app from
its npm package (``make install``), only spares a full reload where it helps.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from console.auth import AuthError, Staff, StaffAuth, auth_of
from console.auth.sessions import ActiveSession
from console.services import Services
from dsar.logs import get_logger
from dsar.timeutil import local_date

log = get_logger("dsar.console")

HERE = Path(__file__).resolve().parent
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")  # fmt: skip

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}
#: Forms without JavaScript are url-encoded; uploads are multipart.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def long_date(value: date | str | None) -> str:
    """ "5 January 2027": how dates read on pages (strftime would follow the server's locale)."""
    if value is None or value == "":
        return ""
    d = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["long_date"] = long_date
    env.filters["words"] = lambda v: str(v).replace("_", " ")
    return env


templates = Jinja2Templates(env=_environment())


@dataclass(frozen=True)
class Caller:
    """Who is asking: a member of staff, by session (a browser) or bearer token (a script)."""

    staff: Staff
    session: ActiveSession | None

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session is not None else ""


class SignInRequired(Exception):
    """No session and no token: the visitor is sent to sign in, then back here."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PageRefused(Exception):
    """A page that cannot be shown or an action refused, with a status and plain words."""

    def __init__(self, status_code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status_code, self.title, self.message = status_code, title, message


def services_of(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def today(request: Request) -> date:
    """Today where the privacy team works (deadlines are dates in the controller's time zone)."""
    return local_date(datetime.now().astimezone(), services_of(request).settings.timezone)


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a console path on this site only (no open redirect)."""
    if not path or not path.startswith("/console") or path.startswith("//") or "\\" in path:
        return "/console"
    return path


async def caller(request: Request) -> Caller | None:
    """The member of staff behind this request, if any. A bad bearer token is refused outright
    (a script should hear why), never treated as "not signed in"."""
    auth: StaffAuth = await auth_of(request)
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PageRefused(
                status.HTTP_401_UNAUTHORIZED, "Not signed in", "send 'Authorization: Bearer <token>'"
            )
        try:
            return Caller(await auth.from_bearer(token.strip()), None)
        except AuthError as e:
            raise PageRefused(status.HTTP_401_UNAUTHORIZED, "Not signed in", str(e)) from None
    session = await auth.session(request)
    return Caller(session.staff, session) if session is not None else None


def _roles_text(roles: tuple[str, ...]) -> str:
    return " or ".join(sorted(set(roles) | {"admin"}))


async def require(request: Request, *roles: str) -> Caller:
    """The caller, who must hold one of ``roles`` (any role when none is given)."""
    who = await caller(request)
    if who is None:
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if roles and not who.staff.has(*roles):
        raise PageRefused(
            status.HTTP_403_FORBIDDEN,
            "You cannot do this",
            f"This needs the {_roles_text(roles)} role. You are signed in as {who.staff.sub} "
            f"({', '.join(who.staff.roles) or 'no role'}).",
        )
    return who


async def posted(request: Request, who: Caller) -> FormData:
    """The form of a POST, after its CSRF token is checked (for a browser session)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in FORM_TYPES:
        raise PageRefused(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "This form could not be read", "Send it again."
        )
    form = await request.form()
    if who.session is not None and not who.session.csrf_ok(str(form.get("csrf", "") or "")):
        log.warning("console form without a valid CSRF token", path=request.url.path, actor=who.staff.sub)
        raise PageRefused(
            status.HTTP_403_FORBIDDEN,
            "This form has expired",
            "The form did not carry this session's security token, so nothing was done. "
            "Go back, reload the page and try again.",
        )
    return form


def render(
    request: Request, template: str, who: Caller | None, status_code: int = 200, **context: Any
) -> Response:
    context.setdefault("title", "dsar")
    context["who"] = who
    context["csrf"] = who.csrf if who is not None else ""
    context["controller"] = _controller(request)
    context["dev_mode"] = services_of(request).settings.auth_mode == "dev"
    response: Response = templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=HEADERS
    )
    return response


def _controller(request: Request) -> str:
    try:
        return services_of(request).controller()
    except HTTPException:
        return "dsar"


def case_path(reference: str) -> str:
    return f"/console/cases/{quote(reference, safe='')}"


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    target = "/console/sign-in?next=" + quote(safe_next(exc.next_path), safe="")
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS)


async def _page_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageRefused)
    try:
        who = await caller(request) if exc.status_code != status.HTTP_401_UNAUTHORIZED else None
    except PageRefused:
        who = None
    headers = {"WWW-Authenticate": 'Bearer realm="dsar"'} if exc.status_code == 401 else {}
    response = render(
        request, "message.html", who, exc.status_code, title=exc.title, paragraphs=[exc.message]
    )
    response.headers.update(headers)
    return response


async def engine_unavailable_page(request: Request) -> Response:
    return await _page_refused(
        request,
        PageRefused(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The workflow engine is not answering",
            "Nothing was changed. Try again in a minute.",
        ),
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(PageRefused, _page_refused)


async def in_thread(func: Any, *args: Any) -> Any:
    return await asyncio.to_thread(func, *args)


def http_to_page(e: HTTPException) -> PageRefused:
    """An operation's refusal (``console.services``), as a page: the engine's own words."""
    titles = {
        404: "No such case",
        409: "The case did not take this",
        413: "The file is too large",
        422: "Something is missing",
        502: "The case could not be read",
        503: "The workflow engine is not answering",
    }
    return PageRefused(e.status_code, titles.get(e.status_code, "This did not work"), str(e.detail))
