"""Settings from environment variables with one documented prefix, ``DSAR_``.

Validated once at the edge; inner code receives a typed ``Settings``. Secrets that a developer
machine needs but nobody configured (the payload codec key, the JWT signing secret) are created
once under ``var/`` so that ``make run`` works on a fresh clone and survives a restart.
"""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dsar.model import Regime
from dsar.reviewpolicy import check_selector

#: Default calendar per regime (LEGAL.md §2.1): a controller may override each one.
DEFAULT_CALENDARS: dict[Regime, str] = {
    Regime.UK_GDPR: "GB-EAW",
    Regime.EU_GDPR: "IE",
    Regime.CCPA: "weekdays",
    Regime.VCDPA: "none",
    Regime.CPA: "none",
    Regime.CTDPA: "none",
    Regime.UCPA: "none",
    Regime.LGPD: "none",
    Regime.PIPEDA: "none",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DSAR_", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str | None = None  # default: SQLite file under var/
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "dsar"
    codec_key: str | None = None  # base64 of 32 bytes; default: var/codec.key
    #: Staff sign-in. "oidc": an OpenID provider signs staff in and issues API tokens
    #: (production). "dev": a sign-in page with a role picker and tokens signed with
    #: ``jwt_secret`` (``make run``); refused in production and off loopback.
    auth_mode: Literal["oidc", "dev"] = "oidc"
    #: "production" refuses development shortcuts (the dev sign-in, unauthenticated codec).
    environment: Literal["development", "production"] = "development"
    jwt_secret: str | None = None  # dev mode's HS256 secret for staff tokens; default: var/jwt.secret
    #: The OpenID provider (``auth_mode=oidc``): its issuer URL (discovery is read from
    #: ``<issuer>/.well-known/openid-configuration``), this app's client id and, for a
    #: confidential client, its secret (PKCE is used either way).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid profile email"
    #: Where the roles are in the ID token and API tokens: a dotted path ("roles",
    #: "realm_access.roles", "groups"); a list or a space-separated string.
    oidc_roles_claim: str = "roles"
    #: The provider's group names -> dsar roles, JSON, e.g. {"privacy-ops": "operator"}.
    oidc_role_map: dict[str, str] = Field(default_factory=dict)
    #: Which claim names a member of staff in the audit trail (falls back to ``sub``).
    oidc_username_claim: str = "preferred_username"
    #: The ``aud`` of API bearer tokens (JWT access tokens, RFC 9068); default: the client id.
    oidc_api_audience: str | None = None
    oidc_clock_skew_seconds: int = Field(default=60, ge=0, le=300)
    #: No token may claim to last longer than this (a bound on ``exp``).
    max_token_hours: int = Field(default=24, ge=1, le=168)
    #: Where staff reach the console: the start of the sign-in redirect URI and of the links
    #: in letters to staff (a manual system owner's task).
    console_url: str = "http://127.0.0.1:8000"
    staff_idle_minutes: int = Field(default=30, ge=1)
    staff_session_hours: int = Field(default=12, ge=1, le=24)
    #: The Temporal Web UI, for the console's link to a case's workflow ("" for none).
    temporal_ui_url: str = "http://127.0.0.1:8233"
    #: Signs the links sent to the person (HS256); default: var/link.secret. Several keys,
    #: comma-separated, rotate it: the first signs, any of them verifies.
    link_secret: str | None = None
    #: Keys the suppression list's hashes (HMAC-SHA256, base64 of 32 bytes; default:
    #: var/suppression.key). It must never change: entries made under another key stop matching.
    suppression_key: str | None = None
    #: Where the person reaches the public pages (the start of every link in a letter).
    public_url: str = "http://127.0.0.1:8000"
    blob_dir: Path | None = None  # default: var/blobs
    #: Where blobs live: "local" (``blob_dir``) or "s3" (``blob_bucket``, several hosts). Either
    #: way they are encrypted by dsar itself; S3's own encryption is requested on top.
    blob_store: Literal["local", "s3"] = "local"
    blob_bucket: str | None = None
    blob_prefix: str = ""  # prepended to "<case>/<object>", e.g. "dsar/"
    s3_endpoint_url: str | None = None  # any S3-compatible store; unset: AWS
    s3_region: str | None = None
    #: The access package (dsar/package.py): "aes" encrypts the ZIP (AES-256) with a random
    #: password sent by a separate message; "none" leaves it plain.
    package_encryption: Literal["aes", "none"] = "aes"
    #: How the person downloads it: "local", an expiring signed link to the app (``/d/<case>``),
    #: streamed from the blob store; "s3", a presigned URL to a copy in ``package_bucket``
    #: (default ``blob_bucket``) under ``package_prefix``, with S3 server-side encryption.
    package_delivery: Literal["local", "s3"] = "local"
    package_bucket: str | None = None
    package_prefix: str = "downloads/"
    #: How long a download link works. S3 presigned URLs are capped at 7 days (SigV4).
    download_link_days: int = Field(default=30, ge=1, le=365)
    #: Extra certificate authorities (a PEM file) trusted when sending portable data to another
    #: controller, besides the system's; unset: the system's only.
    transfer_ca_file: Path | None = None
    mail_dir: Path | None = None  # file mail transport when no SMTP host: var/outbox
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_from: str = "privacy@dsar.localhost"
    operator_email: str = "privacy-team@dsar.localhost"
    dpo_email: str = "dpo@dsar.localhost"
    datamap: Path = Path("demo/dsar.yaml")
    timezone: str = "Europe/London"
    calendars: dict[str, str] = Field(default_factory=dict)  # JSON, e.g. {"EU_GDPR": "DE"}
    reminder_days: list[int] = Field(default_factory=lambda: [7, 2])
    escalate_days_before: int = 1
    wait_for_person_days: int = 30
    close_after_days: int = 30
    #: how long a case file is kept once the case has ended, before its purge
    case_retention_days: int = Field(default=365, ge=1)
    #: approve a case's review without a person when no exemption fired
    review_auto_approve: bool = False
    #: four-eyes: whoever verified the person's identity, or amended the review last, may not
    #: approve it. ``four_eyes`` for every case; ``four_eyes_for`` for some, JSON selectors:
    #: "*", a regime ("UK_GDPR"), a request type ("erasure") or both ("CCPA/access").
    four_eyes: bool = False
    four_eyes_for: list[str] = Field(default_factory=list)
    #: reviews that need two different approvers, as selectors, e.g. ["erasure"]
    second_approver_for: list[str] = Field(default_factory=list)
    #: Email intake (intake/mail/regime.py): the regime of mail that names no law or place, and the
    #: regime each privacy mailbox or brand domain serves, JSON, e.g.
    #: {"privacy-us@northwind.example.com": "CCPA"}; the message size caps.
    intake_default_regime: Regime = Regime.UK_GDPR
    intake_mailboxes: dict[str, Regime] = Field(default_factory=dict)
    intake_domains: dict[str, Regime] = Field(default_factory=dict)
    intake_max_message_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    intake_max_attachment_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    #: The privacy@ mailbox ``dsar intake-email --poll`` reads over IMAP. The password comes from
    #: DSAR_IMAP_PASSWORD or (better: a mounted secret) the file DSAR_IMAP_PASSWORD_FILE; it is
    #: never printed or logged. Port default: 993 with SSL, 143 without.
    imap_host: str | None = None
    imap_port: int | None = Field(default=None, ge=1, le=65535)
    imap_user: str | None = None
    imap_password: SecretStr | None = None
    imap_password_file: Path | None = None
    imap_ssl: bool = True
    imap_mailbox: str = "INBOX"
    imap_processed_folder: str = "DSAR/Processed"
    imap_ignored_folder: str = "DSAR/Ignored"
    imap_poll_seconds: float = Field(default=60.0, gt=0)
    #: Worker tuning. Fewer workflow-task slots than the SDK default (100): on a small machine the
    #: GIL makes extra slots wait inside the worker, where their 10 s timeout runs, instead of on
    #: the server's queue, where it does not.
    worker_workflow_tasks: int = 16
    worker_activity_threads: int = 32
    #: Worker processes ``dsar dev`` starts. One Python worker is held to about one core by the
    #: GIL, so the default is one per core, up to four.
    worker_processes: int = Field(default_factory=lambda: min(4, os.cpu_count() or 1), ge=1)
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    #: Where a worker serves ``/metrics`` for Prometheus (dsar's and the Temporal SDK's); unset:
    #: not served. The web app serves its own on its HTTP port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: OpenTelemetry tracing through the Temporal SDK's interceptor: a span per workflow,
    #: activity, signal, query and update, sent over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT
    #: (the standard OTEL_* variables apply). Spans carry names and ids, never payloads.
    tracing: bool = False
    #: The reverse proxies in front of the web app (addresses or networks, JSON, e.g.
    #: ["10.0.0.5", "10.1.0.0/16"]). Only a request that comes from one of them has its
    #: X-Forwarded-For read, for rate limits and logs; by default nobody is trusted, so a
    #: client cannot escape a limit by writing its own header.
    trusted_proxies: list[str] = Field(default_factory=list)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _review_selectors(self) -> Settings:
        for selector in (*self.four_eyes_for, *self.second_approver_for):
            check_selector(selector)
        return self

    @model_validator(mode="after")
    def _no_dev_sign_in_in_production(self) -> Settings:
        if self.auth_mode == "dev" and self.environment == "production":
            raise ValueError(
                "DSAR_AUTH_MODE=dev (tokens signed with a shared secret, a sign-in page with a role "
                "picker) is refused in production: configure DSAR_OIDC_ISSUER and DSAR_OIDC_CLIENT_ID"
            )
        return self

    @model_validator(mode="after")
    def _s3_blob_store_needs_a_bucket(self) -> Settings:
        """Checked at start-up: otherwise the first search would fail, deep in a worker."""
        if self.blob_store == "s3" and not (self.blob_bucket or "").strip():
            raise ValueError("DSAR_BLOB_BUCKET must name the bucket when DSAR_BLOB_STORE is 's3'")
        return self

    @model_validator(mode="after")
    def _s3_delivery_needs_a_bucket(self) -> Settings:
        if self.package_delivery == "s3" and not (self.package_bucket or self.blob_bucket or "").strip():
            raise ValueError("DSAR_PACKAGE_BUCKET (or DSAR_BLOB_BUCKET) must name the bucket for S3 delivery")
        return self

    def calendar_for(self, regime: Regime) -> str:
        return self.calendars.get(regime.value, DEFAULT_CALENDARS[regime])

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.var_dir / 'dsar.db').resolve()}"

    @cached_property
    def resolved_blob_dir(self) -> Path:
        return self.blob_dir or self.var_dir / "blobs"

    @cached_property
    def resolved_mail_dir(self) -> Path:
        return self.mail_dir or self.var_dir / "outbox"

    @cached_property
    def codec_key_bytes(self) -> bytes:
        raw = self.codec_key or _dev_secret(self.var_dir / "codec.key", lambda: _b64(32))
        key = base64.b64decode(raw)
        if len(key) != 32:
            raise ValueError("DSAR_CODEC_KEY must be the base64 encoding of exactly 32 bytes")
        return key

    @cached_property
    def jwt_secret_value(self) -> str:
        return self.jwt_secret or _dev_secret(self.var_dir / "jwt.secret", lambda: _b64(32))

    @cached_property
    def suppression_key_bytes(self) -> bytes:
        raw = self.suppression_key or _dev_secret(self.var_dir / "suppression.key", lambda: _b64(32))
        key = base64.b64decode(raw)
        if len(key) != 32:
            raise ValueError("DSAR_SUPPRESSION_KEY must be the base64 encoding of exactly 32 bytes")
        return key

    @cached_property
    def link_secret_value(self) -> str:
        return self.link_secret or _dev_secret(self.var_dir / "link.secret", lambda: _b64(32))


def _b64(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def _dev_secret(path: Path, make: object) -> str:
    """Read a development secret, creating it (mode 0600) on first use.

    The web app and every worker may start at once on a fresh ``var/``: the secret is written to
    a private temporary file and linked into place only if none is there yet, so a reader never
    sees a half-written file and all of them end up with the same secret."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = str(make())  # type: ignore[operator]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(value)
        os.link(tmp, path)  # atomic; fails if another process got there first
    except FileExistsError:
        return path.read_text().strip()
    finally:
        os.unlink(tmp)
    return value
