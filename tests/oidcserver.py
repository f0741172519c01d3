"""A real OpenID provider on loopback for the sign-in tests: the npm package ``oidc-provider``
(installed by ``make install`` from ``package.json``) on the machine's Node.js, never a mock.

``OidcProvider`` writes the provider's configuration (clients, accounts with their roles, and
signing keys made here with ``cryptography``), starts ``tests/oidc/provider.mjs`` and waits for
it to listen. ``rotate()`` restarts it with a new signing key first and the old one kept, as a
provider rotates its keys.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose.backends.cryptography_backend import CryptographyECKey, CryptographyRSAKey

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "oidc" / "provider.mjs"

#: Who can sign in at the test provider, and the roles its tokens carry.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "olive": {"name": "Olive Operator", "email": "olive@staff.example", "roles": ["operator"]},
    "rita": {"name": "Rita Reviewer", "email": "rita@staff.example", "roles": ["reviewer"]},
    "fiona": {"name": "Fiona Facilities", "email": "fiona@staff.example", "roles": ["owner:cctv"]},
    "gus": {"name": "Gus Guest", "email": "gus@staff.example", "roles": ["canteen"]},
}
CLIENT_ID = "dsar-console"
SCRIPT_CLIENT = "dsar-monitor"
API_AUDIENCE = "https://dsar.test/api"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rsa_key() -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {**CryptographyRSAKey(key, "RS256").to_dict(), "kid": f"rsa-{uuid.uuid4().hex[:8]}", "use": "sig"}


def ec_key() -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    return {**CryptographyECKey(key, "ES256").to_dict(), "kid": f"ec-{uuid.uuid4().hex[:8]}", "use": "sig"}


class OidcProvider:
    def __init__(self, console_url: str) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("Node.js is needed for the OpenID provider tests")
        if not (ROOT / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError("the oidc-provider npm package is missing: run `make install`")
        self.node = node
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_secret = secrets.token_urlsafe(24)
        self.script_secret = secrets.token_urlsafe(24)
        self.keys = [rsa_key(), ec_key()]
        self.dir = Path(tempfile.mkdtemp(prefix="dsar-oidc-"))
        self.console_url = console_url.rstrip("/")
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "api_audience": API_AUDIENCE,
            "api_alg": "ES256",
            "accounts": ACCOUNTS,
            "client_roles": {SCRIPT_CLIENT: ["operator"]},
            "jwks": {"keys": self.keys},
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": self.client_secret,
                    "redirect_uris": [f"{self.console_url}/console/auth/callback"],
                    "post_logout_redirect_uris": [f"{self.console_url}/console/sign-in?signed_out=1"],
                    "grant_types": ["authorization_code"],
                    "response_types": ["code"],
                    "scope": "openid profile email roles",
                    "id_token_signed_response_alg": "RS256",
                },
                {
                    "client_id": SCRIPT_CLIENT,
                    "client_secret": self.script_secret,
                    "redirect_uris": [],
                    "grant_types": ["client_credentials"],
                    "response_types": [],
                },
            ],
        }

    def start(self, timeout: float = 30.0) -> None:
        config = self.dir / "config.json"
        config.write_text(json.dumps(self._config()))
        log = open(self.dir / "provider.log", "ab")  # noqa: SIM115 - the child's lifetime
        self.proc = subprocess.Popen(
            [self.node, str(SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=log,
            env={"OIDC_CONFIG": str(config), "PATH": "/usr/bin:/bin", "NODE_ENV": "test"},
            cwd=ROOT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if line.startswith("ready "):
                return
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(
            "the OpenID provider did not start: "
            + (self.dir / "provider.log").read_text(errors="replace")[-2000:]
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def rotate(self) -> None:
        """A new RSA signing key first; the old ones still published (tokens they signed verify)."""
        self.stop()
        self.keys = [rsa_key(), *self.keys]
        self.start()

    def settings(self) -> dict[str, Any]:
        """What dsar needs to use this provider (``make_settings`` overrides)."""
        return {
            "auth_mode": "oidc",
            "oidc_issuer": self.issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": self.client_secret,
            "oidc_scopes": "openid profile email roles",
            "oidc_api_audience": API_AUDIENCE,
            "console_url": self.console_url,
        }

    def script_token(self) -> str:
        """A JWT access token for the API, by the client-credentials grant (a monitoring script)."""
        import httpx

        response = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "scope": "dsar", "resource": API_AUDIENCE},
            auth=(SCRIPT_CLIENT, self.script_secret),
            timeout=10,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token
