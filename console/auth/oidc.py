"""Signing staff in with any OpenID Connect provider: authorization code with PKCE.

What the provider says about itself comes from its discovery document (validated with Authlib,
and its ``issuer`` must be the one configured: OIDC Discovery §4.3). Its signing keys come from
its JWKS, cached and fetched again when a token names a key we have not seen (the provider
rotated its keys), at most once every ``JWKS_REFRESH_SECONDS`` so that a stream of forged key
ids cannot make us hammer it. ID tokens and API bearer tokens are checked by python-jose after
the strict shape checks of ``console.auth.tokens``: RS256 or ES256 only, issuer, audience,
expiry and not-before with a small skew, the nonce for an ID token.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.discovery import OpenIDProviderMetadata

from console.auth.tokens import PROVIDER_ALGORITHMS, AuthError, check_shape, decode
from dsar.logs import get_logger
from dsar.settings import Settings

log = get_logger("dsar.oidc")

#: How long the discovery document is trusted before it is read again.
METADATA_TTL_SECONDS = 3600
#: The least time between two JWKS fetches caused by an unknown key id.
JWKS_REFRESH_SECONDS = 30
#: How long published keys are trusted before the JWKS is read again anyway (a key removed).
JWKS_TTL_SECONDS = 3600
#: Where the provider sends the browser back to, under the console's URL.
CALLBACK_PATH = "/console/auth/callback"


class ProviderUnavailable(AuthError):
    """The identity provider could not be reached or gave something unusable."""


@dataclass(frozen=True)
class SignInStart:
    """What the browser must carry to the provider and back: kept server side."""

    url: str
    state: str
    nonce: str
    code_verifier: str


class OpenIDProvider:
    """One configured provider (``DSAR_OIDC_ISSUER``, ``DSAR_OIDC_CLIENT_ID``, ...)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.oidc_issuer or not settings.oidc_client_id:
            raise AuthError(
                "staff sign-in needs an OpenID provider: set DSAR_OIDC_ISSUER and DSAR_OIDC_CLIENT_ID "
                "(or, on a development machine, DSAR_AUTH_MODE=dev)"
            )
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self.redirect_uri = settings.console_url.rstrip("/") + CALLBACK_PATH
        self._metadata: tuple[float, OpenIDProviderMetadata] | None = None
        self._keys: dict[str, dict[str, Any]] = {}
        self._keys_fetched: float | None = None  # when the JWKS was last read
        self._last_miss: float | None = None  # when an unknown key id last made us read it
        self._lock = asyncio.Lock()

    # ---- what the provider publishes

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as http:
                response = await http.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                body = response.json()
        except (httpx.HTTPError, ValueError) as e:
            log.warning("identity provider unreachable", error=type(e).__name__)
            raise ProviderUnavailable(
                f"the identity provider did not answer ({type(e).__name__}); try again shortly"
            ) from None
        if not isinstance(body, dict):
            raise ProviderUnavailable(
                "the identity provider answered with something that is not a JSON object"
            )
        return body

    async def metadata(self) -> OpenIDProviderMetadata:
        now = time.monotonic()
        if self._metadata is not None and now - self._metadata[0] < METADATA_TTL_SECONDS:
            return self._metadata[1]
        body = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
        meta = OpenIDProviderMetadata(body)
        try:
            meta.validate()
        except ValueError as e:
            raise ProviderUnavailable(
                f"the identity provider's discovery document is not valid ({e})"
            ) from None
        if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
            raise ProviderUnavailable(
                "the identity provider's discovery document names another issuer than DSAR_OIDC_ISSUER"
            )
        self._metadata = (now, meta)
        return meta

    async def _refresh_keys(self) -> None:
        meta = await self.metadata()
        body = await self._get_json(str(meta["jwks_uri"]))
        keys = body.get("keys")
        if not isinstance(keys, list):
            raise ProviderUnavailable("the identity provider's JWKS has no 'keys'")
        self._keys = {
            str(k["kid"]): k
            for k in keys
            if isinstance(k, dict) and k.get("kid") and k.get("use", "sig") == "sig"
        }
        self._keys_fetched = time.monotonic()

    async def signing_key(self, kid: str) -> dict[str, Any]:
        """The provider's public key ``kid``; fetched again when unknown (key rotation)."""
        async with self._lock:
            now = time.monotonic()
            if self._keys_fetched is None or now - self._keys_fetched >= JWKS_TTL_SECONDS:
                await self._refresh_keys()
            elif kid not in self._keys and (
                self._last_miss is None or now - self._last_miss >= JWKS_REFRESH_SECONDS
            ):
                self._last_miss = now  # a rotation, or a forged key id: one fetch at most per interval
                await self._refresh_keys()
            key = self._keys.get(kid)
        if key is None:
            raise AuthError("the token is signed with a key the identity provider does not publish")
        return key

    # ---- checking what it signed

    async def verify(
        self, token: str, audience: str, *, nonce: str | None = None, access_token: str | None = None
    ) -> dict[str, Any]:
        """A token the provider signed for ``audience``: strict shape, then signature and claims."""
        header, _ = check_shape(token, self.settings)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in PROVIDER_ALGORITHMS:
            raise AuthError(f"the token's algorithm must be one of {', '.join(PROVIDER_ALGORITHMS)}")
        if not isinstance(kid, str) or not kid:
            raise AuthError("the token does not say which key signed it ('kid')")
        key = await self.signing_key(kid)
        claims = decode(
            token, key, [alg], audience=audience, issuer=self.issuer, settings=self.settings,
            access_token=access_token,
        )  # fmt: skip
        if nonce is not None and claims.get("nonce") != nonce:
            raise AuthError(
                "the sign-in answer does not belong to this sign-in (nonce); please sign in again"
            )
        return claims

    async def verify_access_token(self, token: str) -> dict[str, Any]:
        """An API bearer token: a JWT access token (RFC 9068) for ``DSAR_OIDC_API_AUDIENCE``."""
        return await self.verify(token, self.settings.oidc_api_audience or self.client_id)

    # ---- the authorization code flow

    def _client(self) -> AsyncOAuth2Client:
        secret = self.settings.oidc_client_secret
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=secret.get_secret_value() if secret else None,
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            scope=self.settings.oidc_scopes,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=10.0,
        )

    async def start(self) -> SignInStart:
        """Where to send the browser, with a fresh state, nonce and PKCE verifier."""
        meta = await self.metadata()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                str(meta["authorization_endpoint"]), state=state, code_verifier=verifier, nonce=nonce
            )
        return SignInStart(url=url, state=state, nonce=nonce, code_verifier=verifier)

    async def finish(self, code: str, code_verifier: str, nonce: str) -> tuple[dict[str, Any], str]:
        """Exchange the code for tokens; the verified ID token's claims and the raw ID token."""
        meta = await self.metadata()
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    str(meta["token_endpoint"]), code=code, code_verifier=code_verifier
                )
        except Exception as e:  # Authlib raises its own OAuth errors and httpx's transport errors
            log.warning("token exchange refused", error=type(e).__name__)
            raise AuthError(
                "the identity provider did not accept the sign-in; please sign in again"
            ) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise AuthError("the identity provider returned no ID token; is the 'openid' scope allowed?")
        claims = await self.verify(
            id_token, self.client_id, nonce=nonce, access_token=token.get("access_token")
        )
        return claims, id_token

    async def end_session_url(self, id_token_hint: str | None, after: str) -> str | None:
        """RP-initiated logout at the provider, when it offers it."""
        try:
            meta = await self.metadata()
        except AuthError:
            return None
        endpoint = meta.get("end_session_endpoint")
        if not endpoint:
            return None
        params = {"client_id": self.client_id, "post_logout_redirect_uri": after}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        return str(httpx.URL(str(endpoint), params=params))
