"""The claim-check blob store: large results travel by reference, never through workflow history.

A search of one system can return a million rows; Temporal history is capped (and copied to
every replay), so activities stream records here and hand the workflow a reference such as
``blob://DSR-2026-000123/3f2a...-billing.jsonl``. References name the case and a file name the
caller chose (``billing.jsonl``), never the person: they are logged and kept in clear text.

Every object is encrypted at rest by dsar itself, in a local directory (:class:`LocalBlobStore`)
or an S3 bucket (:class:`S3BlobStore`, for several hosts), in one format: chunked so that a
50 MB export is written and read with bounded memory, and every chunk authenticated on its own
so that flipped bytes, reordered, dropped or truncated chunks are all detected. Neither the
filesystem nor the bucket is trusted with the plaintext or its integrity.

The S3 helpers here (:func:`s3_client`, :class:`S3ObjectWriter`) are shared with the S3
connector, which rewrites objects with the same bounded-memory multipart upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import struct
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dsar.settings import Settings

__all__ = [
    "CHUNK_SIZE",
    "BlobIntegrityError",
    "BlobNotFoundError",
    "BlobStore",
    "BlobWriter",
    "LocalBlobStore",
    "S3BlobStore",
    "S3ObjectWriter",
    "blob_store_from_settings",
    "parse_ref",
    "s3_client",
]

#: Plaintext bytes per encrypted chunk: the most a reader or writer holds in memory at once.
CHUNK_SIZE = 64 * 1024

_SCHEME = "blob://"
#: Case references and file names: letters, digits, dot, dash, underscore; no leading dot, so
#: ``..`` and hidden temp files can never be named.
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_SEGMENT_RE = re.compile(_SEGMENT)  # always fullmatch: "$" would accept a trailing newline
_REF_RE = re.compile(rf"blob://(?P<case>{_SEGMENT})/(?P<object>[0-9a-f]{{32}}-{_SEGMENT})")

# File format, version 1:
#   header = MAGIC (8) | key fingerprint (4) | salt (16)
#   chunk  = final flag (1) | ciphertext length (4, big-endian) | nonce (12) | ciphertext+tag
# Each object has its own AES-256-GCM key, HKDF(store key, salt), so the nonce space is never
# shared between objects and a chunk moved from another object cannot authenticate. Chunk
# associated data = header | object path | chunk index (8) | final flag (1): a chunk cannot be
# moved, reordered, dropped, or passed off as the last one.
_MAGIC = b"DSARBLB1"
_HEADER = struct.Struct(">8s4s16s")
_CHUNK_HEAD = struct.Struct(">BI12s")
_TAG_BYTES = 16


class BlobNotFoundError(LookupError):
    """No object under this reference (never written, deleted, or purged with its case)."""


class BlobIntegrityError(Exception):
    """The stored object was altered, truncated or written under another key: do not use it."""


class BlobWriter(Protocol):
    """A streaming writer; the object appears under ``ref`` only when the ``with`` block ends
    without an exception."""

    @property
    def ref(self) -> str: ...

    def write(self, data: bytes) -> int: ...


class BlobStore(Protocol):
    """Where search results and export packages live, by reference. Local or S3 behind one API."""

    def put(self, data: bytes, *, case: str, name: str) -> str:
        """Store ``data``; return its reference. ``name`` must say nothing about the person."""
        ...

    def open_writer(self, case: str, name: str) -> contextlib.AbstractContextManager[BlobWriter]:
        """Stream a large object in; the reference is ``writer.ref``."""
        ...

    def get(self, ref: str) -> bytes: ...

    def open_reader(self, ref: str) -> Iterator[bytes]:
        """Stream an object out in chunks. Integrity is proven only once it is exhausted."""
        ...

    def delete(self, ref: str) -> None: ...

    def delete_case(self, case: str) -> int:
        """Delete every object of a case (the purge at case closure); return how many."""
        ...

    def exists(self, ref: str) -> bool: ...


@dataclass(frozen=True)
class _Ref:
    case: str
    object: str

    def __str__(self) -> str:
        return f"{_SCHEME}{self.case}/{self.object}"


def parse_ref(ref: str) -> tuple[str, str]:
    """Split a reference into (case, object name); ``ValueError`` for anything forged."""
    match = _REF_RE.fullmatch(ref)
    if match is None:
        raise ValueError(f"not a blob reference: {ref!r} (expected blob://<case>/<id>-<name>)")
    return match["case"], match["object"]


def _check_segment(what: str, value: str) -> str:
    if not _SEGMENT_RE.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} is not allowed in a blob reference: use letters, digits, '.', '-' "
            "and '_', starting with a letter or digit (and no personal data)"
        )
    return value


def _fingerprint(key: bytes) -> bytes:
    return hashlib.sha256(b"dsar-blob-key-id" + key).digest()[:4]


def _new_ref(case: str, name: str) -> _Ref:
    return _Ref(_check_segment("case", case), f"{uuid.uuid4().hex}-{_check_segment('name', name)}")


class _Output(Protocol):
    def write(self, data: bytes, /) -> Any: ...


class _Input(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _SealingWriter:
    """Encrypts as it goes, holding at most one chunk of plaintext beyond what it was given.
    Writes to any byte output (a file, an S3 multipart upload): the format is the same."""

    def __init__(self, ref: _Ref, file: _Output, key: bytes) -> None:
        self._ref = ref
        self._file = file
        salt = os.urandom(16)
        self._header = _HEADER.pack(_MAGIC, _fingerprint(key), salt)
        self._aead = AESGCM(_object_key(key, salt))
        self._ad_prefix = self._header + str(ref).encode()
        self._index = 0
        self._buffer = bytearray()
        self._closed = False
        file.write(self._header)

    @property
    def ref(self) -> str:
        return str(self._ref)

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError("write to a closed blob writer")
        self._buffer += data
        # Keep back up to one full chunk: only close() knows which chunk is the last.
        while len(self._buffer) > CHUNK_SIZE:
            self._seal(bytes(self._buffer[:CHUNK_SIZE]), final=False)
            del self._buffer[:CHUNK_SIZE]
        return len(data)

    def finish(self) -> None:
        self._seal(bytes(self._buffer), final=True)
        self._buffer = bytearray()
        self._closed = True

    def _seal(self, plain: bytes, *, final: bool) -> None:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plain, _chunk_ad(self._ad_prefix, self._index, final))
        self._file.write(_CHUNK_HEAD.pack(int(final), len(sealed), nonce))
        self._file.write(sealed)
        self._index += 1


def _object_key(key: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"dsar-blob-object").derive(key)


def _chunk_ad(prefix: bytes, index: int, final: bool) -> bytes:
    return prefix + struct.pack(">QB", index, int(final))


def _put(store: BlobStore, data: bytes, case: str, name: str) -> str:
    view = memoryview(data)
    with store.open_writer(case, name) as writer:
        for start in range(0, len(view), CHUNK_SIZE):
            writer.write(view[start : start + CHUNK_SIZE].tobytes())
    return writer.ref


def _open_chunks(key: bytes, ref: _Ref, file: _Input) -> Iterator[bytes]:
    """Decrypt and authenticate one stored object, chunk by chunk. The associated data names
    ``blob://<case>/<object>`` whatever the storage, so an object copied to another reference
    (or from the local store to S3 under another name) fails authentication."""
    header = _read_exactly(file, _HEADER.size)
    if len(header) != _HEADER.size:
        raise BlobIntegrityError(f"blob {ref} is truncated (incomplete header)")
    magic, fingerprint, salt = _HEADER.unpack(header)
    if magic != _MAGIC:
        raise BlobIntegrityError(f"blob {ref} is not a dsar blob (bad magic)")
    if fingerprint != _fingerprint(key):
        raise BlobIntegrityError(f"blob {ref} was written under another key")
    aead = AESGCM(_object_key(key, salt))
    ad_prefix = header + str(ref).encode()
    index = 0
    while True:
        head = _read_exactly(file, _CHUNK_HEAD.size)
        if not head:
            raise BlobIntegrityError(f"blob {ref} is truncated: its last chunk is missing")
        if len(head) != _CHUNK_HEAD.size:
            raise BlobIntegrityError(f"blob {ref} is truncated inside chunk {index}")
        final, length, nonce = _CHUNK_HEAD.unpack(head)
        if final not in (0, 1) or not _TAG_BYTES <= length <= CHUNK_SIZE + _TAG_BYTES:
            raise BlobIntegrityError(f"blob {ref} has a corrupt header on chunk {index}")
        sealed = _read_exactly(file, length)
        if len(sealed) != length:
            raise BlobIntegrityError(f"blob {ref} is truncated inside chunk {index}")
        try:
            plain = aead.decrypt(nonce, sealed, _chunk_ad(ad_prefix, index, bool(final)))
        except InvalidTag:
            raise BlobIntegrityError(
                f"blob {ref} chunk {index} failed authentication (altered or out of order)"
            ) from None
        yield plain
        index += 1
        if final:
            if file.read(1):
                raise BlobIntegrityError(f"blob {ref} has data after its last chunk")
            return


def _read_exactly(file: _Input, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end: a network stream may return short reads."""
    data = file.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = file.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class LocalBlobStore:
    """Blob store in a local directory: ``<root>/<case>/<id>-<name>``, encrypted at rest.

    Objects are written to a hidden temp file in the case directory and renamed into place, so
    a crash mid-write leaves no half object under a reference. Not for several hosts: use the
    S3 store there.
    """

    def __init__(self, root: Path, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError(f"blob store key must be 32 bytes, got {len(key)}")
        self.root = Path(root)
        self._key = key

    def put(self, data: bytes, *, case: str, name: str) -> str:
        return _put(self, data, case, name)

    @contextlib.contextmanager
    def open_writer(self, case: str, name: str) -> Iterator[BlobWriter]:
        ref = _new_ref(case, name)
        final_path = self._path(ref)
        final_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp_path = final_path.with_name(f".tmp-{uuid.uuid4().hex}")
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                writer = _SealingWriter(ref, file, self._key)
                yield writer
                writer.finish()
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp_path, final_path)
            _fsync_dir(final_path.parent)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise

    def get(self, ref: str) -> bytes:
        return b"".join(self.open_reader(ref))

    def open_reader(self, ref: str) -> Iterator[bytes]:
        # Not a generator itself: a forged or missing ref fails here, not at the first next().
        parsed = _Ref(*parse_ref(ref))
        path = self._path(parsed)
        try:
            file = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {ref}") from None
        return self._chunks(parsed, file)

    def _chunks(self, ref: _Ref, file: IO[bytes]) -> Iterator[bytes]:
        with file:
            yield from _open_chunks(self._key, ref, file)

    def delete(self, ref: str) -> None:
        """Delete one object; deleting what is already gone is not an error (retries)."""
        self._path(_Ref(*parse_ref(ref))).unlink(missing_ok=True)

    def delete_case(self, case: str) -> int:
        case_dir = self.root / _check_segment("case", case)
        if not case_dir.is_dir():
            return 0
        count = sum(1 for p in case_dir.iterdir() if not p.name.startswith("."))
        shutil.rmtree(case_dir)
        return count

    def exists(self, ref: str) -> bool:
        return self._path(_Ref(*parse_ref(ref))).is_file()

    def _path(self, ref: _Ref) -> Path:
        # The patterns already exclude separators and "..": this guards a future loosening
        # (a string check: resolving the path costs a system call per directory, per blob).
        for segment in (ref.case, ref.object):
            if "/" in segment or os.sep in segment or segment.startswith("."):
                raise ValueError(f"blob reference escapes the store: {ref}")
        return self.root / ref.case / ref.object


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def blob_store_from_settings(settings: Settings) -> BlobStore:
    """The deployment's blob store (``DSAR_BLOB_STORE``: local or s3), keyed by HKDF from the
    codec key so neither key is reused for two purposes."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"dsar-blobs").derive(
        settings.codec_key_bytes
    )
    if settings.blob_store == "s3":
        if not settings.blob_bucket:  # Settings validates this; kept for a hand-built Settings
            raise ValueError("DSAR_BLOB_BUCKET must name the bucket when DSAR_BLOB_STORE is 's3'")
        client = s3_client(settings.s3_endpoint_url, settings.s3_region)
        return S3BlobStore(client, settings.blob_bucket, key, prefix=settings.blob_prefix)
    return LocalBlobStore(settings.resolved_blob_dir, key)


# --------------------------------------------------------------------------------------------
# S3: the client, a streaming multipart writer, and the store.

#: Seconds to wait for a TCP connection, and for a response, before an S3 call fails.
S3_CONNECT_TIMEOUT = 5
S3_READ_TIMEOUT = 60
#: Bytes buffered per multipart part: the most a writer holds in memory (S3's minimum is 5 MiB).
PART_SIZE = 8 * 1024 * 1024

_s3_clients: dict[tuple[str | None, str | None], Any] = {}
_s3_clients_lock = threading.Lock()


def s3_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A boto3 S3 client for AWS or any S3-compatible endpoint, shared per (endpoint, region)
    in this process (clients are thread-safe and costly to build). Credentials come from
    boto3's usual chain (environment, profile, instance role), never from dsar's files.

    Short timeouts and few retries: a down store must become "unavailable, retry later" on the
    case within seconds, not hang an activity. With a custom endpoint, path-style addressing and
    checksums only where S3 requires them, which S3-compatible stores handle most widely."""
    endpoint_url = (endpoint_url or "").strip() or None
    region = (region or "").strip() or None
    cache_key = (endpoint_url, region)
    with _s3_clients_lock:
        client = _s3_clients.get(cache_key)
        if client is None:
            options: dict[str, Any] = {}
            if endpoint_url is not None:
                options = {
                    "s3": {"addressing_style": "path"},
                    "request_checksum_calculation": "when_required",
                    "response_checksum_validation": "when_required",
                }
            config = Config(
                connect_timeout=S3_CONNECT_TIMEOUT,
                read_timeout=S3_READ_TIMEOUT,
                retries={"max_attempts": 3, "mode": "standard"},
                **options,
            )
            # A session per client: boto3's default session is not safe to share across threads.
            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )
            _s3_clients[cache_key] = client
    return client


def dispose_s3_clients() -> None:
    """Forget the shared clients (tests that change credentials or endpoints)."""
    with _s3_clients_lock:
        _s3_clients.clear()


class S3ObjectWriter:
    """Streams bytes into one S3 object with bounded memory: an object smaller than one part
    is a single PutObject; a larger one a multipart upload of ``part_size`` parts. Nothing
    appears under the key before :meth:`close`; :meth:`abort` leaves nothing behind.

    ``extra`` holds PutObject/CreateMultipartUpload arguments (ContentType, Metadata, Tagging,
    ServerSideEncryption, ...); ``if_match`` makes the write conditional on the object still
    having that ETag, so a rewrite never overwrites a change made since it was read."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        extra: dict[str, Any] | None = None,
        part_size: int = PART_SIZE,
        if_match: str | None = None,
    ) -> None:
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 multipart parts must be at least 5 MiB")
        self._client = client
        self._bucket = bucket
        self._key = key
        self._extra = dict(extra or {})
        self._part_size = part_size
        self._if_match = if_match
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._done = False

    def write(self, data: bytes, /) -> int:
        if self._done:
            raise ValueError("write to a closed S3 object writer")
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            with memoryview(self._buffer) as view:  # one copy of the part, not two
                part = bytes(view[: self._part_size])
            del self._buffer[: self._part_size]
            self._upload(part)
        return len(data)

    def close(self) -> dict[str, Any]:
        """Complete the object; returns S3's answer (ETag, VersionId)."""
        if self._done:
            raise ValueError("S3 object writer already closed")
        self._done = True
        condition = {"IfMatch": self._if_match} if self._if_match else {}
        if self._upload_id is None:
            return dict(
                self._client.put_object(
                    Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer), **self._extra, **condition
                )
            )
        try:
            if self._buffer:
                self._upload(bytes(self._buffer))
            self._buffer = bytearray()
            return dict(
                self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                    **condition,
                )
            )
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop what was written (idempotent): uploaded parts would otherwise be kept, and
        billed, until a lifecycle rule removed them."""
        self._done = True
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            with contextlib.suppress(ClientError):
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)

    def _upload(self, part: bytes) -> None:
        if self._upload_id is None:
            answer = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key, **self._extra)
            self._upload_id = answer["UploadId"]
        number = len(self._parts) + 1
        answer = self._client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=part
        )
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}


class S3BlobStore:
    """Blob store in an S3 bucket: ``<prefix><case>/<id>-<name>``, encrypted by dsar exactly as
    :class:`LocalBlobStore` encrypts (the bucket sees only ciphertext), with S3's own
    server-side encryption requested as well.

    Objects are written by multipart upload in parts of :data:`PART_SIZE`, so an export of any
    size is written with bounded memory, and appear only once complete. Deleting removes every
    version, so a versioned bucket keeps nothing of a purged case."""

    def __init__(self, client: Any, bucket: str, key: bytes, *, prefix: str = "") -> None:
        if len(key) != 32:
            raise ValueError(f"blob store key must be 32 bytes, got {len(key)}")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self._key = key

    def put(self, data: bytes, *, case: str, name: str) -> str:
        return _put(self, data, case, name)

    @contextlib.contextmanager
    def open_writer(self, case: str, name: str) -> Iterator[BlobWriter]:
        ref = _new_ref(case, name)
        out = S3ObjectWriter(
            self.client,
            self.bucket,
            self.object_key(str(ref)),
            extra={"ServerSideEncryption": "AES256", "ContentType": "application/octet-stream"},
        )
        try:
            writer = _SealingWriter(ref, out, self._key)
            yield writer
            writer.finish()
            out.close()
        except BaseException:
            out.abort()
            raise

    def get(self, ref: str) -> bytes:
        return b"".join(self.open_reader(ref))

    def open_reader(self, ref: str) -> Iterator[bytes]:
        # Not a generator itself: a forged or missing ref fails here, not at the first next().
        parsed = _Ref(*parse_ref(ref))
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.object_key(ref))
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFoundError(f"no blob {ref}") from None
            raise
        return self._chunks(parsed, answer["Body"])

    def _chunks(self, ref: _Ref, body: Any) -> Iterator[bytes]:
        try:
            yield from _open_chunks(self._key, ref, body)
        finally:
            body.close()

    def delete(self, ref: str) -> None:
        """Delete one object and every version of it; what is already gone is not an error."""
        key = self.object_key(ref)
        self._delete(entry for entry in self._versions(key) if entry[0] == key)

    def delete_case(self, case: str) -> int:
        prefix = f"{self.prefix}{_check_segment('case', case)}/"
        objects: set[str] = set()

        def entries() -> Iterator[tuple[str, str | None]]:
            for key, version_id, latest in self._versions(prefix):
                if latest:
                    objects.add(key)
                yield key, version_id

        self._delete((key, version_id, False) for key, version_id in entries())
        return len(objects)

    def exists(self, ref: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(ref))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def object_key(self, ref: str) -> str:
        """Where a reference is stored: ``<prefix><case>/<object>``; forged references fail."""
        case, obj = parse_ref(ref)
        return f"{self.prefix}{case}/{obj}"

    def _versions(self, prefix: str) -> Iterator[tuple[str, str | None, bool]]:
        """(key, version id, is a live current object) for every version and delete marker
        under ``prefix``; an unversioned bucket lists each object once, as version "null"."""
        pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for version in page.get("Versions", []):
                yield version["Key"], version.get("VersionId"), bool(version.get("IsLatest"))
            for marker in page.get("DeleteMarkers", []):
                yield marker["Key"], marker.get("VersionId"), False

    def _delete(self, entries: Iterator[tuple[str, str | None, bool]]) -> None:
        batch: list[dict[str, str]] = []
        for key, version_id, _ in entries:
            batch.append({"Key": key, **({"VersionId": version_id} if version_id else {})})
            if len(batch) == 1000:  # DeleteObjects' limit
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, batch: list[dict[str, str]]) -> None:
        answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        errors = answer.get("Errors", [])
        if errors:
            raise OSError(f"S3 refused to delete {len(errors)} blob object(s) ({errors[0].get('Code')})")
