"""Staff authentication and roles, for the JSON API and the staff console alike.

- ``roles``: who may do what (``operator``, ``reviewer``, ``admin``, ``owner:<system>``).
- ``tokens``: bearer tokens, checked strictly; the development signer.
- ``oidc``: sign-in with an OpenID provider (authorization code + PKCE, JWKS with rotation).
- ``sessions``: the console's server-side sessions and their CSRF tokens.

``StaffAuth`` ties them to one app: it turns a bearer token or a session cookie into a ``Staff``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from console.auth.oidc import OpenIDProvider
from console.auth.roles import ADMIN, OPERATOR, OWNER_PREFIX, REVIEWER, ROLES, Staff, is_role
from console.auth.sessions import ActiveSession, SessionStore
from console.auth.tokens import (
    DEV_AUDIENCE,
    DEV_ISSUER,
    AuthError,
    actor_name,
    mint_token,
    roles_from_claims,
    verify_dev_token,
)
from dsar.settings import Settings

#: Session cookies: ``__Host-`` (Secure, whole site, no Domain) wherever the console is not on
#: loopback; plain names on a developer's loopback, where there is no TLS.
SESSION_COOKIE = "dsar_staff"
SIGN_IN_COOKIE = "dsar_sign_in"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

_bearer = HTTPBearer(auto_error=False, description="A staff token from your identity provider")


class StaffAuth:
    """Bearer tokens and console sessions for one app."""

    def __init__(self, settings: Settings, sessions: SessionStore) -> None:
        self.settings = settings
        self.sessions = sessions
        self._provider: OpenIDProvider | None = None

    @property
    def dev(self) -> bool:
        return self.settings.auth_mode == "dev"

    @property
    def provider(self) -> OpenIDProvider:
        if self._provider is None:
            self._provider = OpenIDProvider(self.settings)
        return self._provider

    async def from_bearer(self, token: str) -> Staff:
        if self.dev:
            return await asyncio.to_thread(verify_dev_token, self.settings, token)
        claims = await self.provider.verify_access_token(token)
        return Staff(
            sub=actor_name(claims, self.settings),
            roles=roles_from_claims(claims, self.settings),
            name=str(claims.get("name") or ""),
        )

    def staff_from_id_token(self, claims: dict[str, object]) -> Staff:
        return Staff(
            sub=actor_name(claims, self.settings),
            roles=roles_from_claims(claims, self.settings),
            name=str(claims.get("name") or ""),
        )

    def secure(self, request: Request) -> bool:
        """Cookies are Secure unless the console is reached on loopback (a developer machine)."""
        return (request.url.hostname or "") not in LOOPBACK

    def cookie(self, request: Request, name: str) -> str:
        return f"__Host-{name}" if self.secure(request) else name

    async def session(self, request: Request) -> ActiveSession | None:
        value = request.cookies.get(self.cookie(request, SESSION_COOKIE))
        if not value or len(value) > 200:
            return None
        return await asyncio.to_thread(self.sessions.load, value)


async def auth_of(request: Request) -> StaffAuth:
    """The app's ``StaffAuth``, built on first use (its sessions live in the register's database)."""
    auth: StaffAuth | None = getattr(request.app.state, "auth", None)
    if auth is None:
        svc = request.app.state.services
        sessions = await asyncio.to_thread(SessionStore, svc.store.engine, svc.settings)
        auth = request.app.state.auth = StaffAuth(svc.settings, sessions)
    return auth


def unauthorized(message: str) -> HTTPException:
    """401 with the RFC 6750 challenge, so clients know a bearer token is expected."""
    safe = message.replace('"', "'")
    challenge = f'Bearer realm="dsar", error="invalid_token", error_description="{safe}"'
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": challenge}
    )


def forbidden(staff: Staff, roles: Iterable[str]) -> HTTPException:
    needed = " or ".join(sorted(set(roles) | {ADMIN}))
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        detail=f"this action needs the {needed} role; your token grants: {', '.join(staff.roles) or 'none'}",
    )


async def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Staff:
    """The caller's identity from the ``Authorization`` header, or a 401."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a staff bearer token is required: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="dsar"'},
        )
    auth = await auth_of(request)
    try:
        return await auth.from_bearer(credentials.credentials)
    except AuthError as e:
        raise unauthorized(str(e)) from None


def staff(*roles: str) -> Callable[..., Awaitable[Staff]]:
    """FastAPI dependency: a verified ``Staff`` holding one of ``roles`` (or admin).

    With no roles any authenticated staff member passes; the route then checks finer rules
    (who may approve, who owns a system) with ``Staff.has`` and ``Staff.owns``.
    """
    unknown = sorted(r for r in roles if r not in ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}")

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Staff:
        who = await authenticate(request, credentials)
        if roles and not who.has(*roles):
            raise forbidden(who, roles)
        return who

    return dependency


#: The bearer scheme, for routes that decide at run time whether a token is needed.
bearer = _bearer

__all__ = [
    "ADMIN",
    "DEV_AUDIENCE",
    "DEV_ISSUER",
    "OPERATOR",
    "OWNER_PREFIX",
    "REVIEWER",
    "ROLES",
    "SESSION_COOKIE",
    "SIGN_IN_COOKIE",
    "AuthError",
    "Staff",
    "StaffAuth",
    "auth_of",
    "authenticate",
    "bearer",
    "forbidden",
    "is_role",
    "mint_token",
    "staff",
    "unauthorized",
    "verify_dev_token",
]
