"""The claim-check blob store: large results travel by reference, never through workflow history.

A search of one system can return a million rows; Temporal history is capped (and copied to
every replay), so activities stream records here and hand the workflow a reference such as
``blob://DSR-2026-000123/3f2a...-billing.jsonl``. References name the case and a file name the
caller chose (``billing.jsonl``), never the person: they are logged and kept in clear text.

Every object is encrypted at rest (:class:`LocalBlobStore`); the format is chunked so that a
50 MB export is written and read with bounded memory, and every chunk is authenticated on its
own so that flipped bytes, reordered, dropped or truncated chunks are all detected.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

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
    "blob_store_from_settings",
    "parse_ref",
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


class _LocalWriter:
    """Encrypts as it goes, holding at most one chunk of plaintext beyond what it was given."""

    def __init__(self, ref: _Ref, file: IO[bytes], key: bytes) -> None:
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
        view = memoryview(data)
        with self.open_writer(case, name) as writer:
            for start in range(0, len(view), CHUNK_SIZE):
                writer.write(view[start : start + CHUNK_SIZE].tobytes())
        return writer.ref

    @contextlib.contextmanager
    def open_writer(self, case: str, name: str) -> Iterator[BlobWriter]:
        ref = _Ref(_check_segment("case", case), f"{uuid.uuid4().hex}-{_check_segment('name', name)}")
        final_path = self._path(ref)
        final_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp_path = final_path.with_name(f".tmp-{uuid.uuid4().hex}")
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                writer = _LocalWriter(ref, file, self._key)
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
            header = file.read(_HEADER.size)
            if len(header) != _HEADER.size:
                raise BlobIntegrityError(f"blob {ref} is truncated (incomplete header)")
            magic, fingerprint, salt = _HEADER.unpack(header)
            if magic != _MAGIC:
                raise BlobIntegrityError(f"blob {ref} is not a dsar blob (bad magic)")
            if fingerprint != _fingerprint(self._key):
                raise BlobIntegrityError(f"blob {ref} was written under another key")
            aead = AESGCM(_object_key(self._key, salt))
            ad_prefix = header + str(ref).encode()
            index = 0
            while True:
                head = file.read(_CHUNK_HEAD.size)
                if not head:
                    raise BlobIntegrityError(f"blob {ref} is truncated: its last chunk is missing")
                if len(head) != _CHUNK_HEAD.size:
                    raise BlobIntegrityError(f"blob {ref} is truncated inside chunk {index}")
                final, length, nonce = _CHUNK_HEAD.unpack(head)
                if final not in (0, 1) or not _TAG_BYTES <= length <= CHUNK_SIZE + _TAG_BYTES:
                    raise BlobIntegrityError(f"blob {ref} has a corrupt header on chunk {index}")
                sealed = file.read(length)
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
        path = self.root / ref.case / ref.object
        # The patterns already exclude separators and "..": this guards a future loosening.
        if path.resolve().parent != (self.root / ref.case).resolve():
            raise ValueError(f"blob reference escapes the store: {ref}")
        return path


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


def blob_store_from_settings(settings: Settings) -> LocalBlobStore:
    """The deployment's blob store, keyed by HKDF from the codec key so neither key is reused
    for two purposes."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"dsar-blobs").derive(
        settings.codec_key_bytes
    )
    return LocalBlobStore(settings.resolved_blob_dir, key)
