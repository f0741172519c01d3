"""The codec server for the Temporal Web UI: it decrypts a case's history for staff."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from console.auth import authenticate, bearer

codec_router = APIRouter(prefix="/codec", tags=["codec"])


async def codec_access(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Decoding shows personal data: staff only, except on the local dev stack."""
    if request.app.state.codec_requires_auth:
        await authenticate(request, credentials)


async def _codec(request: Request, action: str) -> dict[str, Any]:
    from dsar.codec import CodecError, codec_endpoint_payloads

    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="malformed JSON body") from None
    if not isinstance(body, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail='body must be {"payloads": [...]}')
    try:
        return await codec_endpoint_payloads(request.app.state.codec, body, action)  # type: ignore[arg-type]
    except CodecError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(e)) from None
    except ValueError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(e)) from None


@codec_router.post("/encode", dependencies=[Depends(codec_access)])
async def codec_encode(request: Request) -> dict[str, Any]:
    """Encrypt payloads (``temporal.api.common.v1.Payloads`` JSON), as the Web UI asks."""
    return await _codec(request, "encode")


@codec_router.post("/decode", dependencies=[Depends(codec_access)])
async def codec_decode(request: Request) -> dict[str, Any]:
    """Decrypt payloads so that the Web UI can show a case's history to staff."""
    return await _codec(request, "decode")
