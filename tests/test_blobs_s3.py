"""The S3 blob store against a real S3 endpoint (moto's server on loopback): the same encrypted
format as the local store, multipart streaming, tamper evidence, versions gone on delete."""

from __future__ import annotations

import base64
import hashlib
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dsar.blobs import (
    CHUNK_SIZE,
    PART_SIZE,
    BlobIntegrityError,
    BlobNotFoundError,
    LocalBlobStore,
    S3BlobStore,
    blob_store_from_settings,
    parse_ref,
    s3_client,
)
from dsar.settings import Settings

BUCKET = "dsar-blobs"
CASE = "DSR-2026-000123"
SECRET = b'{"email": "margaret.ellis@example.co.uk", "name": "Margaret Ellis"}\n'


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    client = s3_client(moto_endpoint, "us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def blobs(s3: Any) -> S3BlobStore:
    return S3BlobStore(s3, BUCKET, os.urandom(32), prefix="dsar/")


def stored(s3: Any, blobs: S3BlobStore, ref: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=blobs.object_key(ref))["Body"].read())


def test_small_round_trip_in_one_encrypted_object(blobs: S3BlobStore, s3: Any) -> None:
    ref = blobs.put(SECRET, case=CASE, name="billing.jsonl")
    case, obj = parse_ref(ref)
    assert blobs.object_key(ref) == f"dsar/{case}/{obj}"
    assert blobs.exists(ref)
    assert blobs.get(ref) == SECRET
    assert blobs.get(blobs.put(b"", case=CASE, name="empty.jsonl")) == b""
    head = s3.head_object(Bucket=BUCKET, Key=blobs.object_key(ref))
    assert head["ServerSideEncryption"] == "AES256"
    raw = stored(s3, blobs, ref)
    assert raw.startswith(b"DSARBLB1") and b"margaret" not in raw.lower()


def test_same_format_as_the_local_store(blobs: S3BlobStore, s3: Any, tmp_path: Path) -> None:
    """The bytes in S3 are a local blob file: one format, one reader."""
    key = os.urandom(32)
    store = S3BlobStore(s3, BUCKET, key)
    ref = store.put(SECRET * 3000, case=CASE, name="crm.jsonl")
    local = LocalBlobStore(tmp_path, key)
    case, obj = parse_ref(ref)
    (tmp_path / case).mkdir()
    (tmp_path / case / obj).write_bytes(stored(s3, store, ref))
    assert local.get(ref) == SECRET * 3000


def test_multipart_object_streams_both_ways(blobs: S3BlobStore, s3: Any) -> None:
    block = os.urandom(1024 * 1024)
    expected = hashlib.sha256()
    tracemalloc.start()
    try:
        with blobs.open_writer(CASE, "export.zip") as writer:
            for i in range(2 * PART_SIZE // len(block) + 3):  # three parts, the last one short
                piece = block[i:] + block[:i]
                expected.update(piece)
                writer.write(piece)
                del piece
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        actual = hashlib.sha256()
        size = 0
        for chunk in blobs.open_reader(writer.ref):
            assert len(chunk) <= CHUNK_SIZE
            actual.update(chunk)
            size += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert actual.digest() == expected.digest()
    assert size > 2 * PART_SIZE
    # the part being filled and the part being sent (measured: about 19 MiB for 8 MiB parts)
    assert write_peak < 3 * PART_SIZE, f"write peak {write_peak / 2**20:.1f} MiB"
    assert read_peak < 4 * 1024 * 1024, f"read peak {read_peak / 2**20:.1f} MiB"
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


@pytest.mark.parametrize("offset", [10, 40, -1])
def test_altered_object_is_detected(blobs: S3BlobStore, s3: Any, offset: int) -> None:
    ref = blobs.put(os.urandom(CHUNK_SIZE * 2 + 100), case=CASE, name="x.bin")
    raw = bytearray(stored(s3, blobs, ref))
    raw[offset] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=blobs.object_key(ref), Body=bytes(raw))
    with pytest.raises(BlobIntegrityError):
        blobs.get(ref)


def test_truncated_or_moved_object_is_detected(blobs: S3BlobStore, s3: Any) -> None:
    a = blobs.put(os.urandom(CHUNK_SIZE + 10), case=CASE, name="a.bin")
    b = blobs.put(b"other", case=CASE, name="b.bin")
    raw = stored(s3, blobs, a)
    s3.put_object(Bucket=BUCKET, Key=blobs.object_key(a), Body=raw[:-20])
    with pytest.raises(BlobIntegrityError, match="truncated"):
        blobs.get(a)
    s3.put_object(Bucket=BUCKET, Key=blobs.object_key(b), Body=raw)
    with pytest.raises(BlobIntegrityError):
        blobs.get(b)


def test_failed_write_leaves_nothing(blobs: S3BlobStore, s3: Any) -> None:
    with pytest.raises(RuntimeError), blobs.open_writer(CASE, "half.jsonl") as writer:
        writer.write(os.urandom(PART_SIZE + CHUNK_SIZE))  # a part already uploaded
        raise RuntimeError("connector died mid-export")
    assert not blobs.exists(writer.ref)
    assert s3.list_objects_v2(Bucket=BUCKET).get("Contents", []) == []
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_missing_and_forged_refs(blobs: S3BlobStore) -> None:
    ref = f"blob://{CASE}/" + "0" * 32 + "-gone.jsonl"
    assert not blobs.exists(ref)
    with pytest.raises(BlobNotFoundError):
        blobs.open_reader(ref)
    blobs.delete(ref)  # idempotent
    for forged in (f"blob://{CASE}/../../etc/passwd", "blob://../" + "0" * 32 + "-x"):
        for operation in (blobs.get, blobs.exists, blobs.delete):
            with pytest.raises(ValueError):
                operation(forged)


@pytest.mark.parametrize("versioned", [False, True])
def test_delete_and_delete_case(blobs: S3BlobStore, s3: Any, versioned: bool) -> None:
    if versioned:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    refs = [blobs.put(SECRET, case=CASE, name=f"s{i}.jsonl") for i in range(3)]
    other = blobs.put(SECRET, case="DSR-2026-000124", name="s.jsonl")
    blobs.delete(refs[0])
    assert not blobs.exists(refs[0])
    assert blobs.delete_case(CASE) == 2
    assert not any(blobs.exists(r) for r in refs)
    assert blobs.exists(other)
    assert blobs.delete_case(CASE) == 0
    answer = s3.list_object_versions(Bucket=BUCKET, Prefix=f"dsar/{CASE}/")
    assert answer.get("Versions", []) == [] and answer.get("DeleteMarkers", []) == []


def test_store_from_settings_picks_s3(moto_endpoint: str, s3: Any, tmp_path: Path) -> None:
    codec_key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(
        var_dir=tmp_path,
        codec_key=codec_key,
        blob_store="s3",
        blob_bucket=BUCKET,
        blob_prefix="blobs/",
        s3_endpoint_url=moto_endpoint,
        s3_region="us-east-1",
    )
    store = blob_store_from_settings(settings)
    assert isinstance(store, S3BlobStore) and store.bucket == BUCKET
    ref = store.put(SECRET, case=CASE, name="a.jsonl")
    assert store.get(ref) == SECRET
    assert s3.list_objects_v2(Bucket=BUCKET)["Contents"][0]["Key"].startswith(f"blobs/{CASE}/")
    assert not (tmp_path / "blobs").exists()
    again = blob_store_from_settings(settings)  # the same key from the same settings
    assert again.get(ref) == SECRET
    local = blob_store_from_settings(Settings(var_dir=tmp_path, codec_key=codec_key))
    assert isinstance(local, LocalBlobStore)


def test_s3_blob_store_needs_a_bucket(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="DSAR_BLOB_BUCKET"):
        Settings(var_dir=tmp_path, blob_store="s3")
    with pytest.raises(ValidationError):
        Settings(var_dir=tmp_path, blob_store="ftp")  # type: ignore[arg-type]
