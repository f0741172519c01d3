"""Staff authentication: bearer JWTs with roles, checked at the edge of every staff route.

Tokens are OIDC-shaped (``sub``, ``iss``, ``aud``, ``exp``, ``iat`` and a ``roles`` list) so that
an identity provider can take over from the local HS256 signer later without changing routes.
The actor recorded on a decision comes from the verified token, never from the request body:
the audit trail must say who really decided (UK GDPR Art. 5(2), accountability).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jose import ExpiredSignatureError, JWTError, jwt
from jose.exceptions import JWTClaimsError

from dsar.settings import Settings

ISSUER = "dsar"
AUDIENCE = "dsar-api"
ALGORITHM = "HS256"

OPERATOR = "operator"
REVIEWER = "reviewer"
ADMIN = "admin"
ROLES = frozenset({OPERATOR, REVIEWER, ADMIN})

_bearer = HTTPBearer(auto_error=False, description="A staff token: `dsar token --sub NAME --role operator`")


@dataclass(frozen=True)
class Staff:
    """A verified member of staff: who (``sub``) and what they may do (``roles``)."""

    sub: str
    roles: tuple[str, ...]

    def has(self, *roles: str) -> bool:
        """Admin may do everything; otherwise one of ``roles`` must be held."""
        return ADMIN in self.roles or any(r in self.roles for r in roles)

    def actor(self, *roles: str) -> str:
        """``role:sub`` for the audit trail, naming the role that authorised the action."""
        held = [r for r in roles if r in self.roles] or ([ADMIN] if ADMIN in self.roles else list(self.roles))
        return f"{held[0]}:{self.sub}" if held else self.sub


class AuthError(Exception):
    """A token that does not prove who the caller is; the message says what to do."""


def mint_token(
    settings: Settings, sub: str, roles: Iterable[str], ttl: timedelta = timedelta(hours=8)
) -> str:
    """A signed staff token (the local dev login and the CLI; production uses the IdP)."""
    role_list = list(roles)
    unknown = sorted(set(role_list) - ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; use: {', '.join(sorted(ROLES))}")
    if not sub:
        raise ValueError("a token needs a subject (the staff member's name or id)")
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": role_list,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    token: str = jwt.encode(claims, settings.jwt_secret_value, algorithm=ALGORITHM)
    return token


def verify_token(settings: Settings, token: str) -> Staff:
    """Check signature, issuer, audience and expiry; raise ``AuthError`` with a plain reason."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret_value,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require_aud": True, "require_exp": True, "require_sub": True},
        )
    except ExpiredSignatureError:
        raise AuthError("the token has expired; sign in again for a new one") from None
    except JWTClaimsError as e:
        raise AuthError(
            f"the token is not valid for this API ({e}); expected issuer 'dsar', audience 'dsar-api'"
        ) from None
    except JWTError:
        raise AuthError("the token is malformed or its signature is invalid") from None
    sub = claims.get("sub")
    roles = claims.get("roles", [])
    if not isinstance(sub, str) or not sub:
        raise AuthError("the token has no subject")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthError("the token's 'roles' claim must be a list of role names")
    return Staff(sub=sub, roles=tuple(r for r in roles if r in ROLES))


def unauthorized(message: str) -> HTTPException:
    """401 with the RFC 6750 challenge, so clients know a bearer token is expected."""
    challenge = f'Bearer realm="dsar", error="invalid_token", error_description="{message}"'
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": challenge}
    )


def forbidden(staff: Staff, roles: Iterable[str]) -> HTTPException:
    needed = " or ".join(sorted(set(roles) | {ADMIN}))
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        detail=f"this action needs the {needed} role; your token grants: {', '.join(staff.roles) or 'none'}",
    )


def authenticate(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> Staff:
    """The caller's identity from the ``Authorization`` header, or a 401."""
    if credentials is None or not credentials.credentials:
        challenge = 'Bearer realm="dsar"'
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a staff bearer token is required: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": challenge},
        )
    try:
        return verify_token(settings, credentials.credentials)
    except AuthError as e:
        raise unauthorized(str(e)) from None


def staff(*roles: str) -> Callable[..., Awaitable[Staff]]:
    """FastAPI dependency: a verified ``Staff`` holding one of ``roles`` (or admin).

    With no roles any authenticated staff member passes; the route then checks finer rules
    (e.g. who may approve) with ``Staff.has``.
    """
    unknown = sorted(set(roles) - ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}")

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Staff:
        who = authenticate(request.app.state.settings, credentials)
        if roles and not who.has(*roles):
            raise forbidden(who, roles)
        return who

    return dependency


#: The bearer scheme, for routes that decide at run time whether a token is needed.
bearer = _bearer

__all__ = [
    "ADMIN",
    "AUDIENCE",
    "ISSUER",
    "OPERATOR",
    "REVIEWER",
    "ROLES",
    "AuthError",
    "Staff",
    "authenticate",
    "bearer",
    "forbidden",
    "mint_token",
    "staff",
    "verify_token",
]
