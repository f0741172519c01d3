"""``/console/sign-in``: staff sign in with the organisation's OpenID provider (production) or,
on a development machine, by choosing a name and roles (``DSAR_AUTH_MODE=dev``).

The OpenID flow: ``/console/sign-in/start`` keeps a fresh state, nonce and PKCE verifier server
side (bound to a short-lived cookie in this browser) and sends the browser to the provider;
``/console/auth/callback`` takes the answer once, in the same browser, exchanges the code,
checks the ID token and opens a session. Signing out ends the session here and, where the
provider offers it, there too.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response

from console.auth import SESSION_COOKIE, SIGN_IN_COOKIE, AuthError, Staff, StaffAuth, auth_of, is_role
from console.auth.roles import ADMIN, OPERATOR, OWNER_PREFIX, REVIEWER, check_actor_name
from console.staff.pages import HEADERS, PageRefused, caller, in_thread, log, posted, render, safe_next
from dsar.datamap import DataMap, DataMapError

router = APIRouter(include_in_schema=False)

#: How long the browser keeps the sign-in cookie (the provider round trip).
SIGN_IN_COOKIE_SECONDS = 600


def _set_cookie(
    response: Response, auth: StaffAuth, request: Request, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        auth.cookie(request, name),
        value,
        max_age=max_age,
        path="/",
        secure=auth.secure(request),
        httponly=True,
        samesite="lax",  # sent on the provider's redirect back (a top-level GET), not on cross-site POSTs
    )


def _manual_systems(request: Request) -> list[str]:
    settings = request.app.state.services.settings
    try:
        return [s.name for s in DataMap.load(settings.datamap).systems.values() if s.manual is not None]
    except DataMapError:
        return []


@router.get("/console/sign-in")
async def sign_in_page(request: Request, next: str = "/console", signed_out: str = "") -> Response:
    """Where a signed-out visitor lands. In development: a name and a role picker."""
    auth = await auth_of(request)
    target = safe_next(next)
    binding = secrets.token_urlsafe(24)
    response = render(
        request,
        "sign_in.html",
        None,
        title="Sign in",
        next_path=target,
        signed_out=bool(signed_out),
        dev=auth.dev,
        binding=binding,
        roles=[OPERATOR, REVIEWER, ADMIN] + [f"{OWNER_PREFIX}{s}" for s in _manual_systems(request)],
        start=f"/console/sign-in/start?next={quote(target, safe='')}",
    )
    if auth.dev:  # the dev form's CSRF token is a double-submit cookie: there is no session yet
        _set_cookie(response, auth, request, SIGN_IN_COOKIE, binding, SIGN_IN_COOKIE_SECONDS)
    return response


@router.get("/console/sign-in/start")
async def sign_in_start(request: Request, next: str = "/console") -> Response:
    """Off to the identity provider, with state, nonce and PKCE."""
    auth = await auth_of(request)
    if auth.dev:
        return RedirectResponse("/console/sign-in", status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS)
    try:
        start = await auth.provider.start()
    except AuthError as e:
        raise PageRefused(status.HTTP_503_SERVICE_UNAVAILABLE, "Sign-in is not available", str(e)) from None
    binding = secrets.token_urlsafe(32)
    await in_thread(
        auth.sessions.begin_sign_in, binding, start.state, start.nonce, start.code_verifier, safe_next(next)
    )
    response = RedirectResponse(start.url, status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS)
    _set_cookie(response, auth, request, SIGN_IN_COOKIE, binding, SIGN_IN_COOKIE_SECONDS)
    return response


@router.get("/console/auth/callback")
async def sign_in_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    """The provider's answer: one use, this browser only, then a session."""
    auth = await auth_of(request)
    if auth.dev:
        raise PageRefused(
            status.HTTP_404_NOT_FOUND, "Not found", "This server signs staff in without a provider."
        )
    binding = request.cookies.get(auth.cookie(request, SIGN_IN_COOKIE), "")
    attempt = await in_thread(auth.sessions.take_sign_in, state, binding) if state and binding else None
    if error or not code or attempt is None:
        log.warning(
            "sign-in answer refused", provider_error=error[:40] if error else None, known=attempt is not None
        )
        raise PageRefused(
            status.HTTP_400_BAD_REQUEST,
            "Sign-in did not complete",
            "The answer from the identity provider was refused, expired or did not belong to this "
            "browser. Nothing was signed in. Please sign in again.",
        )
    try:
        claims, id_token = await auth.provider.finish(code, attempt.code_verifier, attempt.nonce)
        staff = auth.staff_from_id_token(claims)
    except AuthError as e:
        log.warning("sign-in refused", error=str(e))
        raise PageRefused(status.HTTP_400_BAD_REQUEST, "Sign-in did not complete", str(e)) from None
    return await _open_session(request, auth, staff, attempt.next_path, id_token)


async def _open_session(
    request: Request, auth: StaffAuth, staff: Staff, next_path: str, id_token: str | None
) -> Response:
    if not staff.roles:
        log.warning("sign-in without a dsar role", actor=staff.sub)
        raise PageRefused(
            status.HTTP_403_FORBIDDEN,
            "You have no role in dsar",
            f"You signed in as {staff.sub}, but your account has none of the roles dsar knows "
            "(operator, reviewer, admin, owner:<system>). Ask your administrator.",
        )
    cookie = await in_thread(auth.sessions.create, staff, id_token)
    log.info("staff signed in", actor=staff.sub, roles=",".join(staff.roles))
    target = next_path
    if target == "/console" and not staff.works_cases and staff.owned_systems:
        target = "/console/tasks"
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS)
    _set_cookie(response, auth, request, SESSION_COOKIE, cookie, None)  # a browser-session cookie
    response.delete_cookie(
        auth.cookie(request, SIGN_IN_COOKIE), path="/", secure=auth.secure(request), httponly=True
    )
    return response


@router.post("/console/sign-in/dev")
async def sign_in_dev(request: Request) -> Response:
    """The development sign-in (``DSAR_AUTH_MODE=dev`` only): a name and the roles picked."""
    auth = await auth_of(request)
    if not auth.dev:
        raise PageRefused(
            status.HTTP_404_NOT_FOUND, "Not found", "This server signs staff in with its identity provider."
        )
    form = await request.form()
    binding = request.cookies.get(auth.cookie(request, SIGN_IN_COOKIE), "")
    sent = str(form.get("binding", "") or "")
    if not binding or not secrets.compare_digest(binding, sent):
        raise PageRefused(
            status.HTTP_403_FORBIDDEN,
            "This form has expired",
            "The sign-in form did not carry its security token. Reload the page and try again.",
        )
    name = str(form.get("name", "") or "").strip()
    roles = [str(r) for r in form.getlist("role") if is_role(str(r))]
    try:
        check_actor_name(name)
    except ValueError as e:
        raise PageRefused(status.HTTP_422_UNPROCESSABLE_CONTENT, "Check your name", str(e)) from None
    staff = Staff(sub=name, roles=tuple(dict.fromkeys(roles)), name=name)
    return await _open_session(request, auth, staff, safe_next(str(form.get("next", "") or "")), None)


@router.post("/console/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session here, then at the provider when it offers RP-initiated logout."""
    auth = await auth_of(request)
    who = await caller(request)
    if who is None or who.session is None:
        return RedirectResponse("/console/sign-in", status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS)
    await posted(request, who)
    value = request.cookies.get(auth.cookie(request, SESSION_COOKIE), "")
    await in_thread(auth.sessions.end, value)
    log.info("staff signed out", actor=who.staff.sub)
    after = request.app.state.services.settings.console_url.rstrip("/") + "/console/sign-in?signed_out=1"
    target = "/console/sign-in?signed_out=1"
    if not auth.dev:
        target = await auth.provider.end_session_url(who.session.id_token, after) or target
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS)
    response.delete_cookie(
        auth.cookie(request, SESSION_COOKIE), path="/", secure=auth.secure(request), httponly=True
    )
    return response
