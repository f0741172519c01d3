"""Fulfilment: build the access or portability package, deliver it, or hand a change to a person.

``build_access_package`` builds the package (dsar/package.py: report.html, the data as JSON and
CSV with the review's decisions applied, manifest.json; an AES-256 ZIP, or plain by
configuration) into the blob store, streamed with bounded memory. ``issue_download_link``
makes the expiring link (dsar/delivery.py) and audits it; ``push_portable_data`` sends the data
the person provided to another controller's HTTPS endpoint. Inputs and outputs hold references,
counts and names only: the password and the link are credentials, kept in the blob store
(encrypted) and passed by reference, so neither enters workflow history.

Every activity is idempotent: a case's package always has the same file name and a retry
replaces the previous one; the link's audit entry is written once per key.

``fulfil_request`` is the older path, still called by the workflow: request types whose changes
are not automated become an explicit task for an operator (the case never claims a change it did
not make), and access/portability build the previous plain ZIP until the workflow calls
``build_access_package`` instead (then its package branch goes).
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

import hashlib
import io
import json
import ssl
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from dsar.blobs import BlobStore, BlobWriter, parse_ref
from dsar.datamap import DataMap
from dsar.delivery import deliver_via_s3, mint_download_link
from dsar.exemptions import CaseFacts
from dsar.logs import bind_case, get_logger
from dsar.model import Regime, RequestType, SystemResult
from dsar.package import (
    PackageError,
    PushRefused,
    build_package,
    portable_json,
    push_portable_data,
    remove_older_copies,
)
from dsar.settings import Settings
from dsar.store import CaseStore

log = get_logger("dsar.activities.export")

PACKAGE_TYPES = frozenset({RequestType.ACCESS, RequestType.PORTABILITY})
#: Blob names of the secrets that go with a package (one of each per case: a retry replaces).
PASSWORD_BLOB = "package-password.txt"
LINK_BLOB = "package-link.txt"


class _Stream(io.RawIOBase):
    """A write-only, non-seekable file over a blob writer: zipfile then streams entries with
    data descriptors instead of seeking back, so the package never sits whole in memory."""

    def __init__(self, sink: BlobWriter) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        return self._sink.write(bytes(b))


@dataclass
class FulfilInput:
    reference: str
    request_type: RequestType
    systems: list[SystemResult]


@dataclass
class FulfilResult:
    mode: str  # "package" or "manual"
    detail: str
    blob_ref: str | None = None
    files: int = 0
    records: int = 0


class FulfilActivities:
    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    @activity.defn(name="fulfil_request")
    def fulfil_request(self, inp: FulfilInput) -> FulfilResult:
        if inp.request_type not in PACKAGE_TYPES:
            systems = ", ".join(s.system for s in inp.systems if s.status == "found") or "none"
            return FulfilResult(
                mode="manual",
                detail=(
                    f"Carry out the {inp.request_type.value} in each system holding records "
                    f"({systems}), then record the decision 'fulfilled' with a note."
                ),
            )
        manifest: dict[str, dict[str, object]] = {}
        records = 0
        with (
            self.blobs.open_writer(inp.reference, "package.zip") as sink,
            zipfile.ZipFile(_Stream(sink), "w", compression=zipfile.ZIP_DEFLATED) as zf,
        ):
            for s in inp.systems:
                if s.status != "found" or not s.blob_ref:
                    continue
                name = f"data/{s.system}.jsonl"
                digest = hashlib.sha256()
                size = 0
                with zf.open(name, "w") as out:
                    for chunk in self.blobs.open_reader(s.blob_ref):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                manifest[name] = {"sha256": digest.hexdigest(), "bytes": size, "records": s.records}
                records += s.records
                activity.heartbeat()
            zf.writestr(
                "manifest.json",
                json.dumps({"reference": inp.reference, "files": manifest}, indent=2, sort_keys=True),
            )
        return FulfilResult(
            mode="package",
            detail=f"package of {records} record(s) from {len(manifest)} system(s)",
            blob_ref=sink.ref,
            files=len(manifest) + 1,
            records=records,
        )


# --------------------------------------------------------------------------------------------
# The access package (dsar/package.py) and its delivery (dsar/delivery.py)


@dataclass
class PackageInput:
    reference: str
    regime: Regime
    request_type: RequestType
    received: str  # YYYY-MM-DD, the date the request was received
    systems: list[SystemResult]
    #: the review's decisions file (blob reference); None: everything found is disclosed
    decisions_ref: str | None = None


@dataclass
class PackageResult:
    blob_ref: str
    file_name: str  # what the person downloads
    encrypted: bool
    #: blob holding the ZIP's password, for the separate message (None when not encrypted)
    password_ref: str | None
    sha256: str  # of the ZIP, for the audit trail
    bytes: int
    files: int
    records: int  # disclosed
    withheld: int
    redacted: int
    systems: int
    detail: str
    #: left out without a word (an exemption the person must not hear of): for the audit
    untold: int = 0


@dataclass
class LinkInput:
    reference: str
    package_ref: str
    file_name: str
    days: int = 0  # how long the link works; 0: DSAR_DOWNLOAD_LINK_DAYS
    #: the audit entry's key (the workflow's counter); "": one entry per package and day
    audit_key: str = ""
    #: when the link counts from: the workflow's clock, so that the case closes when the link
    #: expires (None: now)
    issued_at: datetime | None = None


@dataclass
class LinkResult:
    #: blob holding the URL: a bearer credential, so the letter reads it from there
    link_ref: str
    expires_at: datetime
    via: str  # "local" (the app's /d/ route) or "s3" (a presigned URL)


@dataclass
class PushInput:
    package: PackageInput
    #: the other controller's HTTPS endpoint (an organisation's address, not the person's)
    endpoint: str
    #: blob holding a bearer token the other controller issued, if it asks for one
    token_ref: str | None = None
    audit_key: str = ""


@dataclass
class PushResult:
    status: int
    bytes: int
    sha256: str
    host: str


class ExportActivities:
    def __init__(self, datamap: DataMap, blobs: BlobStore, settings: Settings, store: CaseStore) -> None:
        self.datamap = datamap
        self.blobs = blobs
        self.settings = settings
        self.store = store

    @activity.defn(name="build_access_package")
    def build_access_package(self, inp: PackageInput) -> PackageResult:
        with bind_case(inp.reference):
            try:
                built = build_package(
                    self.blobs,
                    self.datamap,
                    _facts(inp),
                    inp.systems,
                    inp.decisions_ref,
                    encryption=self.settings.package_encryption,
                    heartbeat=_heartbeat,
                )
            except PackageError as e:
                raise ApplicationError(str(e), type="PackageError", non_retryable=True) from None
            password_ref = None
            if built.password is not None:
                password_ref = self.blobs.put(built.password.encode(), case=inp.reference, name=PASSWORD_BLOB)
                remove_older_copies(self.blobs, inp.reference, PASSWORD_BLOB, keep=password_ref)
            log.info("package built", records=built.records, withheld=built.withheld, size=built.size)
            return PackageResult(
                blob_ref=built.ref,
                file_name=built.name,
                encrypted=built.password is not None,
                password_ref=password_ref,
                sha256=built.sha256,
                bytes=built.size,
                files=built.files,
                records=built.records,
                withheld=built.withheld,
                redacted=built.redacted,
                systems=built.systems,
                detail=(
                    f"package of {built.records} record(s) from {built.systems} system(s); "
                    f"{built.withheld} withheld, {built.redacted} with parts removed"
                    + (f", {built.untold} left out without a word" if built.untold else "")
                ),
                untold=built.untold,
            )

    @activity.defn(name="issue_download_link")
    def issue_download_link(self, inp: LinkInput) -> LinkResult:
        with bind_case(inp.reference):
            if not self.blobs.exists(inp.package_ref):
                raise ApplicationError(
                    "the package is no longer in the blob store: build it again",
                    type="PackageMissing",
                    non_retryable=True,
                )
            now = inp.issued_at or datetime.now(UTC)
            expires = now + timedelta(days=inp.days or self.settings.download_link_days)
            if self.settings.package_delivery == "s3":
                link = deliver_via_s3(
                    self.blobs, self.settings, inp.reference, inp.package_ref, inp.file_name,
                    expires_at=expires, now=now,
                )  # fmt: skip
            else:
                link = mint_download_link(
                    self.settings, inp.reference, inp.package_ref, inp.file_name, expires_at=expires, now=now
                )
            link_ref = self.blobs.put(link.url.encode(), case=inp.reference, name=LINK_BLOB)
            remove_older_copies(self.blobs, inp.reference, LINK_BLOB, keep=link_ref)
            package = parse_ref(inp.package_ref)[1]
            self.store.append_audit(
                inp.reference,
                "package:link_issued",
                "system",
                details={"via": link.via, "expires": link.expires_at.isoformat(), "package": package},
                event_key=inp.audit_key or f"{inp.reference}/package-link/{package}/{expires.date()}",
            )
            return LinkResult(link_ref=link_ref, expires_at=link.expires_at, via=link.via)

    @activity.defn(name="push_portable_data")
    def push_portable_data(self, inp: PushInput) -> PushResult:
        """Send the data the person provided to another controller (GDPR Art 20(2))."""
        reference = inp.package.reference
        with bind_case(reference):
            token = self.blobs.get(inp.token_ref).decode() if inp.token_ref else None
            try:
                body = portable_json(
                    self.blobs,
                    self.datamap,
                    _facts(inp.package),
                    inp.package.systems,
                    inp.package.decisions_ref,
                )
                verify: ssl.SSLContext | bool = True
                if self.settings.transfer_ca_file is not None:
                    verify = ssl.create_default_context()
                    verify.load_verify_locations(cafile=str(self.settings.transfer_ca_file))
                pushed = push_portable_data(body, inp.endpoint, token=token, verify=verify)
            except PackageError as e:
                raise ApplicationError(str(e), type="PackageError", non_retryable=True) from None
            except PushRefused as e:
                raise ApplicationError(
                    str(e), type="PushRefused", non_retryable=not e.retryable, next_retry_delay=e.retry_after
                ) from None
            host = str(httpx.URL(inp.endpoint).host)
            self.store.append_audit(
                reference,
                "portability:sent",
                "system",
                details={"host": host, "status": str(pushed.status), "bytes": str(pushed.bytes),
                         "sha256": pushed.sha256},
                event_key=inp.audit_key or f"{reference}/portability-sent/{host}/{pushed.sha256[:16]}",
            )  # fmt: skip
            return PushResult(pushed.status, pushed.bytes, pushed.sha256, host)


def _facts(inp: PackageInput) -> CaseFacts:
    return CaseFacts(inp.regime, inp.request_type, date.fromisoformat(inp.received), inp.reference)


def _heartbeat() -> None:
    activity.heartbeat()
