"""Delivering the access package: an expiring download link, and the password by another way.

Two deliveries, chosen by ``DSAR_PACKAGE_DELIVERY``:

* ``local`` (default): ``{public_url}/d/{reference}?t={token}``, served by the app
  (``console/downloads.py``), which streams the package from the blob store (local or S3),
  checks the link's expiry, and writes every download, and every refused attempt, to the
  case's audit trail. The token is an HS256 JWS signed with the link keys (``dsar.links``:
  same key ids and rotation) whose purpose is ``download``: a confirmation link cannot open a
  package, nor a download link confirm anything. It names the case and the package's blob
  reference, never the person, and can be used until it expires (a download that breaks off
  can be tried again), each use audited.
* ``s3``: the package is copied, streamed, to ``package_bucket`` under
  ``<package_prefix><reference>/<random>/<file name>`` with S3 server-side encryption, and the
  person gets a presigned GET URL (boto3). S3 serves the download, so the app cannot audit
  each one (S3 server access logs or CloudTrail data events can); issuing the link is audited.
  SigV4 presigned URLs live at most 7 days.

The password never travels with the link: :func:`password_letter_facts` gives the pieces of
the separate message. The link and password are secrets: the activities keep them in the blob
store (encrypted) and hand the workflow only references, so they never enter workflow history.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from jose import jws
from jose.exceptions import JOSEError

from dsar.blobs import BlobStore, S3ObjectWriter, parse_ref, s3_client
from dsar.links import ALGORITHM, REFERENCE_RE, LinkRefused, key_for, key_id, keyring
from dsar.settings import Settings

__all__ = [
    "DOWNLOAD_PURPOSE",
    "S3_MAX_LINK",
    "DeliveredLink",
    "DownloadClaims",
    "check_download_token",
    "deliver_via_s3",
    "download_path",
    "mint_download_link",
    "password_letter_facts",
    "response_paragraph",
]

DOWNLOAD_PURPOSE = "download"
#: SigV4 presigned URLs cannot outlive 7 days.
S3_MAX_LINK = timedelta(days=7)
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class DownloadClaims:
    """A verified download link."""

    reference: str
    package: str  # blob reference of the package
    filename: str  # what the browser saves it as
    jti: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class DeliveredLink:
    url: str
    expires_at: datetime
    via: str  # "local" or "s3"
    object_key: str = ""  # s3: where the copy is


def download_path(reference: str) -> str:
    return f"/d/{quote(reference, safe='')}"


def mint_download_link(
    settings: Settings,
    reference: str,
    package_ref: str,
    filename: str,
    *,
    expires_at: datetime,
    now: datetime | None = None,
) -> DeliveredLink:
    """A link to the app that downloads ``package_ref`` until ``expires_at``."""
    if not REFERENCE_RE.match(reference):
        raise ValueError("not a case reference (expected e.g. DSR-2026-000123)")
    if parse_ref(package_ref)[0] != reference:
        raise ValueError("the package belongs to another case")
    if not _FILE_NAME.match(filename):
        raise ValueError("a download's file name is letters, digits, '.', '-' and '_'")
    issued = (now or datetime.now(UTC)).astimezone(UTC)
    claims: dict[str, Any] = {
        "ref": reference,
        "purpose": DOWNLOAD_PURPOSE,
        "blob": package_ref,
        "name": filename,
        "jti": secrets.token_urlsafe(16),
        "iat": int(issued.timestamp()),
        "exp": int(expires_at.astimezone(UTC).timestamp()),
    }
    key = keyring(settings)[0]
    token: str = jws.sign(
        json.dumps(claims, separators=(",", ":")).encode(),
        key,
        headers={"kid": key_id(key), "typ": "JWT"},
        algorithm=ALGORITHM,
    )
    url = f"{settings.public_url.rstrip('/')}{download_path(reference)}?t={token}"
    return DeliveredLink(url, datetime.fromtimestamp(claims["exp"], UTC), "local")


def check_download_token(
    settings: Settings, reference_in_url: str, token: str, *, now: datetime | None = None
) -> DownloadClaims:
    """Verify a download token for the case in the URL; ``LinkRefused`` says why not, in the
    words of ``dsar.links`` (forged, altered, expired, other_case)."""
    found = key_for(token, keyring(settings))  # ``forged`` unless one of our keys signed it
    try:
        claims = json.loads(jws.verify(token, found, algorithms=[ALGORITHM]))
    except (JOSEError, ValueError, TypeError, UnicodeDecodeError):
        raise LinkRefused("altered") from None
    if not _well_formed(claims):
        purpose = claims.get("purpose") if isinstance(claims, dict) else None
        raise LinkRefused("altered", purpose if isinstance(purpose, str) and len(purpose) < 40 else None)
    at = (now or datetime.now(UTC)).astimezone(UTC)
    if int(at.timestamp()) >= claims["exp"]:
        raise LinkRefused("expired", DOWNLOAD_PURPOSE)
    if not hmac.compare_digest(claims["ref"].encode(), reference_in_url.encode()):
        raise LinkRefused("other_case", DOWNLOAD_PURPOSE)
    return DownloadClaims(
        reference=claims["ref"],
        package=claims["blob"],
        filename=claims["name"],
        jti=claims["jti"],
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


def _well_formed(claims: object) -> bool:
    if not isinstance(claims, dict) or claims.get("purpose") != DOWNLOAD_PURPOSE:
        return False
    ref, blob, name = claims.get("ref"), claims.get("blob"), claims.get("name")
    if not (
        isinstance(ref, str) and REFERENCE_RE.match(ref) and isinstance(name, str) and _FILE_NAME.match(name)
    ):
        return False
    try:
        if not isinstance(blob, str) or parse_ref(blob)[0] != ref:
            return False
    except ValueError:
        return False
    return (
        isinstance(claims.get("jti"), str)
        and 0 < len(claims["jti"]) <= 64
        and all(isinstance(claims.get(c), int) and not isinstance(claims[c], bool) for c in ("iat", "exp"))
    )


def deliver_via_s3(
    blobs: BlobStore,
    settings: Settings,
    reference: str,
    package_ref: str,
    filename: str,
    *,
    expires_at: datetime,
    now: datetime | None = None,
) -> DeliveredLink:
    """Copy the package to the delivery bucket (streamed, SSE) and presign a GET for it. Older
    copies for the case go, so a re-issued link replaces the last one."""
    if not REFERENCE_RE.match(reference) or not _FILE_NAME.match(filename):
        raise ValueError("a delivery names a case reference and a plain file name")
    if parse_ref(package_ref)[0] != reference:
        raise ValueError("the package belongs to another case")
    issued = (now or datetime.now(UTC)).astimezone(UTC)
    expires_at = min(expires_at.astimezone(UTC), issued + S3_MAX_LINK)
    bucket = settings.package_bucket or settings.blob_bucket
    if not bucket:
        raise ValueError("DSAR_PACKAGE_BUCKET (or DSAR_BLOB_BUCKET) must name the bucket for S3 delivery")
    client = s3_client(settings.s3_endpoint_url, settings.s3_region)
    folder = f"{settings.package_prefix}{reference}/"
    key = f"{folder}{secrets.token_hex(16)}/{filename}"
    out = S3ObjectWriter(
        client,
        bucket,
        key,
        extra={
            "ServerSideEncryption": "AES256",
            "ContentType": "application/zip",
            "ContentDisposition": f'attachment; filename="{filename}"',
        },
    )
    try:
        for chunk in blobs.open_reader(package_ref):
            out.write(chunk)
        out.close()
    except BaseException:
        out.abort()
        raise
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for item in page.get("Contents", []):
            if item["Key"] != key:
                client.delete_object(Bucket=bucket, Key=item["Key"])
    seconds = max(1, int((expires_at - issued).total_seconds()))
    url = client.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
            "ResponseContentType": "application/zip",
        },
        ExpiresIn=seconds,
    )
    return DeliveredLink(url, issued + timedelta(seconds=seconds), "s3", key)


# --------------------------------------------------------------------------------------------
# What the letters say (the response letter's outcome, and the separate password message)


def _when(moment: datetime, timezone: str) -> str:
    from zoneinfo import ZoneInfo

    from dsar.wording import long_date

    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local:%H:%M} on {long_date(local.date())}"


def response_paragraph(
    url: str, expires_at: datetime, *, encrypted: bool, timezone: str = "Europe/London"
) -> str:
    """The ``outcome`` of the response letter when the copy is ready to download."""
    lines = [
        "We have prepared a copy of the personal data we hold about you. You can download it here:",
        "",
        "    " + url,  # to copy exactly: never wrapped, and a link in the HTML alternative
        "",
        f"The link works until {_when(expires_at, timezone)}. Open report.html in the download first: it "
        "explains what we hold, why, who we share it with and how long we keep it.",
    ]
    if encrypted:
        lines += [
            "",
            "The download is an encrypted ZIP file. For your security we are sending its password in a "
            "separate message. Most computers open it directly; if yours asks for a program, 7-Zip "
            "(Windows) or The Unarchiver (Mac) work.",
        ]
    return "\n".join(lines)


def password_letter_facts(reference: str, password: str, controller: str, greeting: str) -> dict[str, str]:
    """The facts of the ``package_password`` letter (dsar/letters/package_password.txt)."""
    return {"reference": reference, "password": password, "controller": controller, "greeting": greeting}
