"""The HTTP app: the JSON API, the codec server for the Temporal Web UI, and health.

``create_app`` is the only way in, so that tests, ``dsar web`` and ``dsar dev`` build the same
app. Error handling lives here, once: bad input is a 4xx with a message a person can act on,
an unreachable engine is a 503 that says to retry, and validation errors never echo what was
sent (FastAPI's default 422 includes the ``input``, which here would be a person's email).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response
from temporalio.client import Client

from console.api.codec import codec_router
from console.api.health import health_router
from console.api.metrics import metrics_router
from console.api.requests import router
from console.assets import mount_assets
from console.public.downloads import router as downloads_router
from console.public.links import router as public_router
from console.public.request_form import router as request_form_router
from console.public.status import router as status_router
from console.services import ENGINE_UNREACHABLE, EngineUnavailable, Services
from console.staff import router as staff_router
from console.staff.pages import engine_unavailable_page
from console.staff.pages import install as install_staff_pages
from dsar.inputs import InputRefused
from dsar.logs import get_logger, install_access_log_filter
from dsar.settings import Settings
from dsar.store import CaseStore
from intake.service import IntakeError, RegisterOutOfStep

log = get_logger("dsar.app")

#: Where the Temporal Web UI runs on the dev stack; it calls the codec endpoint from there.
TEMPORAL_UI_ORIGINS = ["http://127.0.0.1:8233", "http://localhost:8233"]


def codec_origins(settings: Settings) -> list[str]:
    """The origins allowed to call the codec endpoint from a browser: the Web UI's
    (``DSAR_TEMPORAL_UI_URL``), and on a development machine the dev stack's; no other."""
    parts = urlsplit(settings.temporal_ui_url)
    origins = [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []
    if settings.environment == "development":
        origins += [o for o in TEMPORAL_UI_ORIGINS if o not in origins]
    return origins


#: Error context keys that carry no part of the input (pydantic's ``ctx`` may hold limits and
#: the allowed enum values; anything else is dropped rather than risk echoing personal data).
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,40}$")
_SAFE_CTX = frozenset({"expected", "max_length", "min_length", "ge", "le", "gt", "lt", "error"})


def create_app(
    settings: Settings,
    client: Client | None = None,
    store: CaseStore | None = None,
    *,
    codec_requires_auth: bool = True,
) -> FastAPI:
    """Build the app. Without a ``client`` it connects to Temporal on start-up (and again on
    demand if Temporal was not up yet); without a ``store`` it opens the configured register.
    ``codec_requires_auth=False`` is for the local dev stack only, where the Web UI has no login.
    """
    if not codec_requires_auth and settings.environment == "production":
        raise ValueError("the codec endpoint must require sign-in in production")
    from dsar.codec import EncryptionCodec

    services = Services(settings, client, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if client is None:
            try:
                await services.client()
            except EngineUnavailable:
                log.warning("starting without Temporal; requests will retry the connection")
        yield
        services.close()

    app = FastAPI(
        title="dsar",
        summary="Data-subject requests as durable workflows",
        version="1",
        docs_url=None,  # served from the app's own Swagger UI files (console.assets)
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.codec = EncryptionCodec.from_settings(settings)
    app.state.codec_requires_auth = codec_requires_auth
    app.add_middleware(
        CORSMiddleware,
        allow_origins=codec_origins(settings),
        allow_methods=["POST", "GET", "OPTIONS"],
        allow_headers=["content-type", "x-namespace", "authorization"],
        allow_credentials=True,
    )
    app.include_router(router)
    app.include_router(codec_router)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(public_router)
    app.include_router(request_form_router)
    app.include_router(status_router)
    app.include_router(downloads_router)
    app.include_router(staff_router)
    mount_assets(app)
    _shortcuts(app)
    install_error_handlers(app)
    install_staff_pages(app)
    install_access_log_filter()  # no link token in an access log line, however logs are set up
    return app


def _shortcuts(app: FastAPI) -> None:
    """Where people type: the root and the obvious names lead to the console."""

    async def to_console() -> Response:
        return RedirectResponse("/console", status_code=status.HTTP_307_TEMPORARY_REDIRECT)

    for path in ("/", "/cases", "/queue"):
        app.add_api_route(path, to_console, methods=["GET"], include_in_schema=False)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(IntakeError, _intake_error)  # type: ignore[arg-type]
    app.add_exception_handler(InputRefused, _intake_error)  # type: ignore[arg-type]
    app.add_exception_handler(EngineUnavailable, _engine_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(RegisterOutOfStep, _register_out_of_step)  # type: ignore[arg-type]


def scrub_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without the submitted values: location, message and type only."""
    out: list[dict[str, Any]] = []
    for err in errors:
        item: dict[str, Any] = {
            "loc": [_safe_loc(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "invalid")),
            "type": str(err.get("type", "value_error")),
        }
        ctx = {k: str(v) for k, v in (err.get("ctx") or {}).items() if k in _SAFE_CTX}
        if ctx:
            item["ctx"] = ctx
        out.append(item)
    return out


def _safe_loc(part: Any) -> Any:
    """A location part, unless it could be a value: a client may send a person's email as a key."""
    if isinstance(part, int) or (isinstance(part, str) and _NAME_RE.match(part)):
        return part
    return "<key>"


def _where(loc: list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = scrub_errors(exc.errors())
    if any(e["type"] == "json_invalid" for e in errors):
        problem = next(e.get("ctx", {}).get("error", "") for e in errors if e["type"] == "json_invalid")
        detail = "malformed JSON body" + (f": {problem}" if problem else "")
        return JSONResponse({"detail": detail}, status_code=status.HTTP_400_BAD_REQUEST)
    message = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors)
    return JSONResponse(
        {"detail": errors, "message": message}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


async def _intake_error(request: Request, exc: IntakeError | InputRefused) -> JSONResponse:
    # IntakeError and InputRefused messages name the field, never its value (dsar/inputs.py).
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _engine_unavailable(request: Request, exc: EngineUnavailable) -> Response:
    if request.url.path.startswith("/console"):
        return await engine_unavailable_page(request)
    return JSONResponse(
        {"detail": ENGINE_UNREACHABLE},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def _register_out_of_step(request: Request, exc: RegisterOutOfStep) -> JSONResponse:
    # Refused by intake rather than mixing two people's cases; an operator must reconcile the
    # register with Temporal. The message names references only.
    log.error("register out of step with the workflow engine", error=str(exc))
    return JSONResponse(
        {"detail": f"{exc}; the request was not opened: ask an administrator to reconcile the register"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )


__all__ = ["TEMPORAL_UI_ORIGINS", "create_app", "scrub_errors"]
