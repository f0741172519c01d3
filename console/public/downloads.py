"""The download link in the response letter: ``GET /d/{reference}?t={token}``.

The token (``dsar.delivery``) says which package of which case, until when. A good link
streams the package from the blob store (local or S3, decrypted chunk by chunk: never whole in
memory) as an attachment; each download is written to the case's hash-chained audit trail
(``package:downloaded``), and so is each refused attempt on a case we hold
(``package:download_refused``, with the reason only), besides the guard's table of refusals.
The link works until it expires, not once: a download that breaks off can be tried again.

What the page never does: echo the token, name the person, or say whether a case exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from fastapi import APIRouter, Request, status
from fastapi.responses import Response, StreamingResponse
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from console.public.pages import REFUSALS, remote_address, templates
from console.services import Services
from dsar.blobs import BlobStore, parse_ref
from dsar.delivery import DOWNLOAD_PURPOSE, DownloadClaims, check_download_token
from dsar.guard import GuardStore
from dsar.links import REFERENCE_RE, LinkRefused
from dsar.logs import get_logger
from dsar.store import CaseStore

log = get_logger("dsar.downloads")

router = APIRouter(include_in_schema=False)

#: Per client address: a person downloads a few times; a script guessing tokens tries many.
DOWNLOAD_LIMIT = "20/minute"
ACTOR = "public"

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}
_PAGE_HEADERS = {
    **HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}
#: The package was purged or replaced: the link is genuine but there is nothing left to give.
_GONE = (
    status.HTTP_410_GONE,
    "This download is no longer available",
    (
        "The copy this link pointed to has been removed, or replaced by a newer one.",
        "Reply to our email and we will send you a new link.",
    ),
)

_LIMIT = parse(DOWNLOAD_LIMIT)
_limiter = MovingWindowRateLimiter(MemoryStorage())


def services_of(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


@router.get("/d/{ref}")
async def download(request: Request, ref: str, t: str = "") -> Response:
    svc = services_of(request)
    if not _limiter.hit(_LIMIT, "download", _scope(request)):
        response = render(
            request, status.HTTP_429_TOO_MANY_REQUESTS, "Too many attempts", ("Please wait a minute.",)
        )
        response.headers["Retry-After"] = "60"
        return response
    try:
        if not REFERENCE_RE.match(ref):
            raise LinkRefused("forged")
        claims = await asyncio.to_thread(check_download_token, svc.settings, ref, t)
    except LinkRefused as e:
        return await _refused(request, ref, e.reason)
    if not await asyncio.to_thread(svc.blobs.exists, claims.package):
        return await _refused(request, ref, "gone")
    await asyncio.to_thread(_audit_download, svc.store, claims)
    log.info("package downloaded", reference=claims.reference)
    return StreamingResponse(
        _stream(svc.blobs, claims.package),
        media_type="application/zip",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{claims.filename}"'},
    )


def _scope(request: Request) -> str:
    """Counted per app (tests build many) and per client address."""
    return f"{id(request.app)}:{remote_address(request)}"


def _stream(blobs: BlobStore, ref: str) -> Iterator[bytes]:
    """The package as stored, chunk by chunk (64 KiB). If the blob fails its integrity check
    mid-way the connection is cut, and the person's unzip reports a broken file, never a
    quietly wrong one."""
    yield from blobs.open_reader(ref)


def _audit_download(store: CaseStore, claims: DownloadClaims) -> None:
    store.append_audit(
        claims.reference,
        "package:downloaded",
        ACTOR,
        details={
            "package": parse_ref(claims.package)[1],
            "link": claims.jti[:8],  # which link (not enough of it to use)
            "expires": claims.expires_at.isoformat(),
        },
    )


async def _refused(request: Request, ref: str, reason: str) -> Response:
    svc = services_of(request)
    reference = ref if REFERENCE_RE.match(ref) else None
    guard: GuardStore | None = getattr(request.app.state, "guard", None)
    if guard is None:
        guard = await asyncio.to_thread(GuardStore.from_settings, svc.settings, svc.store.engine)
        request.app.state.guard = guard
    await asyncio.to_thread(guard.record_refusal, reference, DOWNLOAD_PURPOSE, reason)
    if reference is not None:
        await asyncio.to_thread(_audit_refusal, svc.store, reference, reason)
    log.warning("download refused", reference=reference, reason=reason)
    code, title, paragraphs = _GONE if reason == "gone" else REFUSALS[reason]
    return render(request, code, title, paragraphs)


def _audit_refusal(store: CaseStore, reference: str, reason: str) -> None:
    if store.get(reference) is None:
        return
    store.append_audit(reference, "package:download_refused", ACTOR, reason=reason)


def render(request: Request, code: int, title: str, paragraphs: tuple[str, ...]) -> Response:
    try:
        controller = services_of(request).controller()
    except Exception:  # the data map cannot be read: the page still works
        controller = "The privacy team"
    response: Response = templates.TemplateResponse(
        request,
        "message.html",
        {"title": title, "paragraphs": paragraphs, "controller": controller, "has_errors": False},
        status_code=code,
        headers=_PAGE_HEADERS,
    )
    return response


__all__ = ["router"]
