"""Signed, single-use links for the person: "confirm your request", "tell us more about you".

A link is ``{public_url}/r/{reference}/{page}?t={token}``; the token is an HS256 JWT whose claims
name the case, the purpose, which identifier kinds the form may ask for, a random ``jti`` (what
makes it single-use, see ``dsar.guard``) and when it expires. It carries no personal data: a
link may sit in a mailbox, a proxy log or a browser history for years.

The header's ``kid`` is a short fingerprint of the signing key, so the key can rotate:
``DSAR_LINK_SECRET=new,old`` signs with the first key and still accepts links signed with any of
them until they expire.

Why a link is refused, in the words the page uses (``LinkRefused.reason``):

* ``forged``: not a link we could have made (malformed, no or unknown key id, wrong algorithm);
* ``altered``: signed with one of our keys, but changed since (the signature no longer fits),
  or its claims are not what we write, or it is for another page (a form link on the confirm
  page);
* ``expired``: past its lifetime;
* ``other_case``: a genuine link for another case than the one in the URL;
* ``replayed``: already used (checked against the guard's table when one is given).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from jose import jws
from jose.exceptions import JOSEError

from dsar.model import IdentifierKind
from dsar.settings import Settings

ALGORITHM = "HS256"

#: Purpose -> the page that serves it.
PURPOSES: dict[str, str] = {
    "confirm_request": "confirm",
    "confirm_erasure": "confirm",
    "confirm_agent": "confirm",
    "provide_identifiers": "provide",
    "provide_authority": "authority",  # an agent uploads their signed permission
    # the person's page for the whole request: where it stands, what we need, withdraw, write
    # to us. Not single-use (it is opened again and again); its forms carry it as their key.
    "view_status": "status",
}
#: How long a status link works: the longest a case stays open (three months, an extension of
#: two more, the person's waits), with room to read the answer afterwards.
STATUS_LINK_HOURS = 24 * 200
PAGES = frozenset(PURPOSES.values())

#: What the form may ask for. Not the email address: the link itself went there.
PROVIDABLE_KINDS: tuple[str, ...] = (
    IdentifierKind.NAME.value,
    IdentifierKind.PHONE.value,
    IdentifierKind.POSTAL_ADDRESS.value,
    IdentifierKind.POSTCODE.value,
    IdentifierKind.DATE_OF_BIRTH.value,
    IdentifierKind.CUSTOMER_ID.value,
    IdentifierKind.ACCOUNT_NUMBER.value,
    IdentifierKind.LAST_TRANSACTION.value,
)

#: Case references as the register allocates them (the same pattern as the API's).
REFERENCE_RE = re.compile(r"^DSR-\d{4}-\d{6,12}$")

#: Longer than any token we mint by far; anything longer is not ours and is not parsed.
MAX_TOKEN_LENGTH = 2048
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_-]+$")

RefusalReason = Literal["forged", "expired", "altered", "other_case", "replayed"]
REASONS: tuple[str, ...] = ("forged", "expired", "altered", "other_case", "replayed")


class LinkRefused(Exception):
    """A link that does not do what it claims. ``reason`` is one of ``REASONS``; ``purpose`` is
    the token's purpose when its signature held (else None). Neither carries personal data."""

    def __init__(self, reason: RefusalReason, purpose: str | None = None) -> None:
        super().__init__(reason)
        self.reason: RefusalReason = reason
        self.purpose = purpose


@dataclass(frozen=True)
class LinkClaims:
    """A verified link."""

    reference: str
    purpose: str
    page: str  # "confirm", "provide", "authority" or "status"
    jti: str
    kinds: tuple[str, ...]  # for provide_identifiers: the identifier kinds the form asks for
    declaration: bool  # for provide_identifiers: the form asks for the signed declaration
    issued_at: datetime
    expires_at: datetime


def key_id(key: str) -> str:
    """A short fingerprint of a signing key (the ``kid`` header); reveals nothing of the key."""
    return hashlib.sha256(b"dsar-link-kid\x00" + key.encode()).hexdigest()[:16]


def keyring(settings: Settings) -> list[str]:
    """The link keys, the signing one first (``DSAR_LINK_SECRET`` may list several, comma-separated)."""
    keys = [k.strip() for k in settings.link_secret_value.split(",") if k.strip()]
    if not keys:
        raise ValueError("DSAR_LINK_SECRET is empty: give at least one key")
    return keys


def mint_link(
    settings: Settings,
    reference: str,
    purpose: str,
    *,
    kinds: list[str] | None = None,
    hours: int = 72,
    declaration: bool = False,
    now: datetime | None = None,
) -> str:
    """The full URL of a new single-use link for ``purpose`` on case ``reference``."""
    page = PURPOSES.get(purpose)
    if page is None:
        raise ValueError(f"unknown link purpose {purpose!r}; use one of: {', '.join(PURPOSES)}")
    if not REFERENCE_RE.match(reference):
        raise ValueError("not a case reference (expected e.g. DSR-2026-000123)")
    if hours < 0:
        raise ValueError("a link's lifetime cannot be negative")
    claims: dict[str, Any] = {"ref": reference, "purpose": purpose, "jti": secrets.token_urlsafe(16)}
    if page == "provide":
        asked = list(dict.fromkeys(kinds or []))
        unknown = [k for k in asked if k not in PROVIDABLE_KINDS]
        if unknown or not asked:
            raise ValueError(f"a form link asks for one or more of: {', '.join(PROVIDABLE_KINDS)}")
        claims["kinds"] = asked
        claims["declaration"] = bool(declaration)
    elif kinds or declaration:
        raise ValueError("only a provide_identifiers link asks for identifiers or a declaration")
    issued = (now or datetime.now(UTC)).astimezone(UTC)
    claims["iat"] = int(issued.timestamp())
    claims["exp"] = int((issued + timedelta(hours=hours)).timestamp())
    key = keyring(settings)[0]
    token: str = jws.sign(
        json.dumps(claims, separators=(",", ":")).encode(),
        key,
        headers={"kid": key_id(key), "typ": "JWT"},
        algorithm=ALGORITHM,
    )
    base = settings.public_url.rstrip("/")
    return f"{base}/r/{quote(reference, safe='')}/{page}?t={token}"


def check_link(
    settings: Settings,
    reference_in_url: str,
    token: str,
    purpose_group: str,
    *,
    used: Callable[[str], bool] | None = None,
    now: datetime | None = None,
    keys: Sequence[str] | None = None,
) -> LinkClaims:
    """Verify ``token`` for the page ``purpose_group`` ("confirm" or "provide") of case
    ``reference_in_url``; raise ``LinkRefused`` saying why not. Does not use the link: with
    ``used`` (e.g. ``GuardStore.is_used``) a link already used is refused as ``replayed``."""
    if purpose_group not in PAGES:
        raise ValueError(f"unknown page {purpose_group!r}")
    key = key_for(token, keys if keys is not None else keyring(settings))
    try:
        payload = jws.verify(token, key, algorithms=[ALGORITHM])
    except (JOSEError, ValueError, TypeError):
        # Our key id, but the signature no longer fits what is signed: changed since we sent it.
        raise LinkRefused("altered") from None
    claims = _claims(payload)
    purpose = claims["purpose"]
    at = (now or datetime.now(UTC)).astimezone(UTC)
    if int(at.timestamp()) >= claims["exp"]:
        raise LinkRefused("expired", purpose)
    if PURPOSES[purpose] != purpose_group:
        raise LinkRefused("altered", purpose)
    if not hmac.compare_digest(claims["ref"].encode(), reference_in_url.encode()):
        raise LinkRefused("other_case", purpose)
    if used is not None and used(claims["jti"]):
        raise LinkRefused("replayed", purpose)
    return LinkClaims(
        reference=claims["ref"],
        purpose=purpose,
        page=purpose_group,
        jti=claims["jti"],
        kinds=tuple(claims.get("kinds", ())),
        declaration=bool(claims.get("declaration", False)),
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


def key_for(token: str, keys: Sequence[str]) -> str:
    """The key whose id the token names; ``forged`` if it is not a JWS of ours at all."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise LinkRefused("forged")
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT_RE.match(p) for p in parts):
        raise LinkRefused("forged")
    try:
        header = jws.get_unverified_header(token)
    except (JOSEError, ValueError, TypeError):
        raise LinkRefused("forged") from None
    kid = header.get("kid") if isinstance(header, dict) else None
    if header.get("alg") != ALGORITHM or not isinstance(kid, str):
        raise LinkRefused("forged")
    found: str | None = None
    for key in keys:  # every key compared, in constant time
        if hmac.compare_digest(key_id(key).encode(), kid.encode()):
            found = key
    if found is None:
        raise LinkRefused("forged")
    return found


def _claims(payload: bytes) -> dict[str, Any]:
    """The claims as we write them, or ``altered``."""
    try:
        claims = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise LinkRefused("altered") from None
    if not isinstance(claims, dict):
        raise LinkRefused("altered")
    ok = (
        isinstance(claims.get("ref"), str)
        and REFERENCE_RE.match(claims["ref"]) is not None
        and claims.get("purpose") in PURPOSES
        and isinstance(claims.get("jti"), str)
        and 0 < len(claims["jti"]) <= 64
        and all(isinstance(claims.get(c), int) and not isinstance(claims[c], bool) for c in ("iat", "exp"))
    )
    if ok and PURPOSES[claims["purpose"]] == "provide":
        kinds = claims.get("kinds")
        ok = (
            isinstance(kinds, list)
            and bool(kinds)
            and all(k in PROVIDABLE_KINDS for k in kinds)
            and isinstance(claims.get("declaration", False), bool)
        )
    if not ok:
        raise LinkRefused("altered", claims.get("purpose") if claims.get("purpose") in PURPOSES else None)
    return claims


__all__ = [
    "PAGES",
    "PROVIDABLE_KINDS",
    "PURPOSES",
    "REASONS",
    "LinkClaims",
    "LinkRefused",
    "check_link",
    "key_id",
    "keyring",
    "mint_link",
]
