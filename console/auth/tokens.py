"""Staff bearer tokens: checked strictly, whoever signed them.

In production the identity provider signs them (``console.auth.oidc``: JWKS, RS256 or ES256);
on a development machine (``DSAR_AUTH_MODE=dev``, what ``make run`` uses) dsar signs them with a
local secret (HS256) and production refuses that mode. Either way the same strict checks run
first, on the token as sent, before any library converts a value: a claim of the wrong type, an
expiry absurdly far away, a ``crit`` header or an ``iat`` in the future is refused, never
coerced (python-jose alone would read ``"exp": "9999999999"`` as a number).

The actor recorded on a decision comes from the verified token, never from a request body: the
audit trail must say who really decided (UK GDPR Art. 5(2), accountability).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from jose import ExpiredSignatureError, JWTError, jwt
from jose.exceptions import JWTClaimsError

from console.auth.roles import Staff, check_actor_name, is_role, known_roles
from dsar.settings import Settings

#: The local development signer (``DSAR_AUTH_MODE=dev``).
DEV_ISSUER = "dsar"
DEV_AUDIENCE = "dsar-api"
DEV_ALGORITHM = "HS256"
#: Algorithms accepted from an identity provider: asymmetric only, never "none" or HMAC.
PROVIDER_ALGORITHMS = ("RS256", "ES256")


class AuthError(Exception):
    """A token that does not prove who the caller is; the message says what to do."""


def mint_token(
    settings: Settings, sub: str, roles: Iterable[str], ttl: timedelta = timedelta(hours=8)
) -> str:
    """A token signed with this machine's secret: development only (the dev sign-in, the CLI,
    tests and benchmarks). In production the identity provider issues tokens."""
    if settings.auth_mode != "dev":
        raise AuthError(
            "tokens signed with the local secret are for development (DSAR_AUTH_MODE=dev); "
            "in production ask your identity provider for one"
        )
    role_list = list(roles)
    unknown = sorted(r for r in role_list if not is_role(r))
    if unknown:
        raise ValueError(
            f"unknown role(s) {', '.join(unknown)}; use: admin, operator, reviewer or owner:<system>"
        )
    if not sub:
        raise ValueError("a token needs a subject (the staff member's name or id)")
    check_actor_name(sub)
    if ttl > timedelta(hours=settings.max_token_hours):
        raise ValueError(f"a token may last at most {settings.max_token_hours} hours")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": role_list,
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "iat": now,
        "exp": now + int(ttl.total_seconds()),
    }
    token: str = jwt.encode(claims, settings.jwt_secret_value, algorithm=DEV_ALGORITHM)
    return token


def _numeric(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise AuthError(f"the token has no '{name}' claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AuthError(f"the token's '{name}' claim must be a number of seconds (a NumericDate)")
    return float(value)


def check_shape(
    token: str, settings: Settings, now: float | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of ``token``, checked for type and plausibility before its
    signature is: malformed values are refused here rather than coerced later."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.get_unverified_claims(token)
    except JWTError:
        raise AuthError("the token is malformed or its signature is invalid") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AuthError("the token is malformed or its signature is invalid")
    if "crit" in header:
        # RFC 7515 §4.1.11: a recipient that does not understand a critical extension must refuse.
        raise AuthError("the token names critical header extensions ('crit'), which dsar does not support")
    now = time.time() if now is None else now
    skew = settings.oidc_clock_skew_seconds
    exp = _numeric(claims, "exp", required=True)
    iat = _numeric(claims, "iat", required=False)
    _numeric(claims, "nbf", required=False)
    assert exp is not None
    if exp > now + settings.max_token_hours * 3600 + skew:
        raise AuthError(
            f"the token expires too far in the future (more than {settings.max_token_hours} hours)"
        )
    if iat is not None and iat > now + skew:
        raise AuthError("the token says it was issued in the future; check the issuer's clock")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AuthError("the token has no subject")
    return header, claims


def verify_dev_token(settings: Settings, token: str) -> Staff:
    """A token this machine signed (``DSAR_AUTH_MODE=dev`` only)."""
    if settings.auth_mode != "dev":
        raise AuthError("this server accepts only tokens from its identity provider")
    header, _ = check_shape(token, settings)
    if header.get("alg") != DEV_ALGORITHM:
        raise AuthError("the token is malformed or its signature is invalid")
    claims = decode(
        token, settings.jwt_secret_value, [DEV_ALGORITHM], audience=DEV_AUDIENCE, issuer=DEV_ISSUER,
        settings=settings,
    )  # fmt: skip
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthError("the token's 'roles' claim must be a list of role names")
    sub = claims["sub"]
    try:
        check_actor_name(sub)
    except ValueError as e:
        raise AuthError(str(e)) from None
    return Staff(sub=sub, roles=known_roles(roles), name=sub)


def decode(
    token: str,
    key: Any,
    algorithms: list[str],
    *,
    audience: str,
    issuer: str,
    settings: Settings,
    access_token: str | None = None,
) -> dict[str, Any]:
    """python-jose's signature, issuer, audience, expiry and not-before checks, with the skew
    the settings allow; errors in plain words."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=audience,
            issuer=issuer,
            access_token=access_token,
            options={
                "require_aud": True,
                "require_exp": True,
                "require_sub": True,
                "require_iss": True,
                "leeway": settings.oidc_clock_skew_seconds,
            },
        )
    except ExpiredSignatureError:
        raise AuthError("the token has expired; sign in again for a new one") from None
    except JWTClaimsError as e:
        raise AuthError(f"the token is not valid for this server ({e})") from None
    except JWTError:
        raise AuthError("the token is malformed or its signature is invalid") from None
    return claims


def roles_from_claims(claims: Mapping[str, Any], settings: Settings) -> tuple[str, ...]:
    """The dsar roles in the configured claim (a dotted path such as ``realm_access.roles``),
    after the settings' role map (an identity provider's group name -> a dsar role)."""
    value: Any = claims
    for part in settings.oidc_roles_claim.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        names = value.split()
    elif isinstance(value, list):
        names = [v for v in value if isinstance(v, str)]
    else:
        names = []
    return known_roles(settings.oidc_role_map.get(n, n) for n in names)


def actor_name(claims: Mapping[str, Any], settings: Settings) -> str:
    """Who the audit trail names: the configured username claim, else the subject."""
    value = claims.get(settings.oidc_username_claim)
    name = value if isinstance(value, str) and value else claims["sub"]
    try:
        return check_actor_name(name)
    except ValueError as e:
        raise AuthError(str(e)) from None


def utcnow() -> datetime:
    return datetime.now(UTC)
