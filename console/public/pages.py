"""What every public page shares: the look, the headers, the plain-words refusals, the rate
limits, and reading a small form body safely.

The person's pages (``console.public``) have no login and no JavaScript; whatever they show is
rendered here, with the same security headers, so that no page forgets one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gettext
import ipaddress
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from fastapi import HTTPException, Request, status
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address

from console.services import Services
from dsar.guard import GuardStore
from dsar.logs import get_logger

log = get_logger("dsar.public")
# slowapi logs the client's IP address when a limit is hit: personal data, so not at all.
logging.getLogger("slowapi").setLevel(logging.CRITICAL)


def _(text: str) -> str:
    """Marks the person's words for the translation catalogue (``make translations``); the
    templates translate them when a page is rendered (the ``translate`` filter)."""
    return text


#: Per client address. A person needs a handful of requests; a script trying tokens needs many.
GET_LIMIT = "20/minute"
POST_LIMIT = "5/minute"
#: The largest form body accepted: eight fields of 200 characters, percent-encoded, and a token.
MAX_BODY_BYTES = 32 * 1024
MAX_FIELDS = 20
MAX_VALUE_LENGTH = 200
#: The field only a robot fills in (hidden from people and from screen readers).
HONEYPOT = "website"

#: Why a link was refused, in plain words, and the status that goes with it.
REFUSALS: dict[str, tuple[int, str, tuple[str, ...]]] = {
    "forged": (
        status.HTTP_400_BAD_REQUEST,
        _("This link does not work"),
        (
            _(
                "We could not recognise this link. Please open the link exactly as it appears in the "
                "email we sent you."
            ),
            _("If it still does not work, reply to our email and we will send you a new one."),
        ),
    ),
    "altered": (
        status.HTTP_400_BAD_REQUEST,
        _("This link is incomplete or has been changed"),
        (
            _(
                "Part of this link is missing or has been changed. Copy the whole link from our email "
                "into your browser."
            ),
            _("If it still does not work, reply to our email and we will send you a new one."),
        ),
    ),
    "expired": (
        status.HTTP_410_GONE,
        _("This link has expired"),
        (_("This link has expired; ask for a new one by replying to our email."),),
    ),
    "other_case": (
        status.HTTP_400_BAD_REQUEST,
        _("This link is for a different request"),
        (
            _("This link belongs to another request. Please use the link in the email about this request."),
            _("If you cannot find it, reply to our email and we will send you a new one."),
        ),
    ),
    "replayed": (
        status.HTTP_410_GONE,
        _("This link has already been used"),
        (
            _("Each link works only once, and this one has been used."),
            _("If you did not use it, or need to do this again, reply to our email."),
        ),
    ),
}

HEADERS = {
    "Cache-Control": "no-store",
    # The token is in the URL: it must not leak to another site through the Referer header.
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")

#: The public pages' translation catalogue (gettext; ``messages.pot`` is made from the templates
#: and ``console/public/*.py`` with ``make translations``). English is the source language: with
#: no compiled catalogue for it, the text is shown as written.
LOCALES = Path(__file__).resolve().parent / "locale"
LANGUAGE = "en"

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    extensions=["jinja2.ext.i18n"],
)
_translations = gettext.translation("messages", LOCALES, languages=[LANGUAGE], fallback=True)
_environment.install_gettext_translations(_translations, newstyle=True)  # type: ignore[attr-defined]
#: A string held in a variable (a title, a refusal's words), translated and escaped as any text:
#: ``_()`` is for literal text in templates only (it marks its result as safe HTML).
_environment.filters["translate"] = _translations.gettext
templates = Jinja2Templates(env=_environment)


# --------------------------------------------------------------------------------------------
# Rate limits: one in-memory limiter, counted separately for each app (tests build many)


def client_address(peer: str, forwarded_for: str, trusted: list[str]) -> str:
    """The real client: the peer, unless the peer is a trusted proxy, then the nearest address
    in X-Forwarded-For that is not one of them (a client may put anything at the front of that
    header; only what our own proxies appended counts)."""
    networks = []
    for item in trusted:
        with contextlib.suppress(ValueError):
            networks.append(ipaddress.ip_network(item.strip(), strict=False))

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in net for net in networks)

    if not networks or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # junk where an address should be: count it against the proxy
    return peer


def remote_address(request: Request) -> str:
    """The client address rate limits count (``DSAR_TRUSTED_PROXIES``)."""
    settings = services_of(request).settings
    peer = get_remote_address(request)
    return client_address(peer, request.headers.get("x-forwarded-for", ""), settings.trusted_proxies)


def client_key(request: Request) -> str:
    scope = getattr(request.app.state, "public_rate_scope", None)
    if scope is None:
        scope = request.app.state.public_rate_scope = uuid.uuid4().hex
    return f"{scope}:{remote_address(request)}"


limiter = Limiter(key_func=client_key, storage_uri="memory://", headers_enabled=False)

Endpoint = Callable[..., Awaitable[Response]]


def limited(limit: str) -> Callable[[Endpoint], Endpoint]:
    """slowapi's limit, answered with a page rather than its JSON error."""

    def decorate(func: Endpoint) -> Endpoint:
        checked = limiter.limit(limit)(func)

        @functools.wraps(func)
        async def endpoint(*args: Any, **kwargs: Any) -> Response:
            try:
                response: Response = await checked(*args, **kwargs)
            except RateLimitExceeded:
                request: Request = kwargs["request"]
                log.warning("public page rate limit", path=request.url.path)
                return await message(
                    request,
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    _("Too many attempts"),
                    (_("Please wait a minute, then try again."),),
                    headers={"Retry-After": "60"},
                )
            return response

        return endpoint

    return decorate


# --------------------------------------------------------------------------------------------
# Helpers


class Stop(Exception):
    """A request ended early with a page (body too large, not a form, ...)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def services_of(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def guard_of(request: Request) -> GuardStore:
    guard: GuardStore | None = getattr(request.app.state, "guard", None)
    if guard is None:
        svc = services_of(request)
        guard = await asyncio.to_thread(GuardStore.from_settings, svc.settings, svc.store.engine)
        request.app.state.guard = guard
    return guard


def controller_name(request: Request) -> str:
    try:
        return services_of(request).controller()
    except HTTPException:  # the data map cannot be read: the pages still work
        return _("The privacy team")


async def render(request: Request, template: str, status_code: int, **context: Any) -> Response:
    context.setdefault("has_errors", False)
    context["controller"] = controller_name(request)
    response: Response = templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=HEADERS
    )
    return response


async def message(
    request: Request,
    status_code: int,
    title: str,
    paragraphs: tuple[str, ...],
    headers: dict[str, str] | None = None,
) -> Response:
    response = await render(request, "message.html", status_code, title=title, paragraphs=paragraphs)
    response.headers.update(headers or {})
    return response


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body, at most ``MAX_BODY_BYTES``, first value of each field."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Stop(
            await message(
                request,
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                _("This form could not be read"),
                (_("Please go back to the form and send it again."),),
            )
        )
    declared = request.headers.get("content-length", "")
    too_large = (
        status.HTTP_413_CONTENT_TOO_LARGE,
        _("This form is too large"),
        (_("Please go back to the form, shorten your answers and send it again."),),
    )
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Stop(await message(request, *too_large))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise Stop(await message(request, *too_large))
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise Stop(
            await message(
                request,
                status.HTTP_400_BAD_REQUEST,
                _("This form could not be read"),
                (_("Please go back to the form and send it again."),),
            )
        ) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form
