"""The encrypted claim-check store: round trips, tamper evidence, containment, bounded memory."""

from __future__ import annotations

import base64
import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from dsar.blobs import (
    CHUNK_SIZE,
    BlobIntegrityError,
    BlobNotFoundError,
    LocalBlobStore,
    blob_store_from_settings,
    parse_ref,
)
from dsar.settings import Settings

CASE = "DSR-2026-000123"
SECRET = b'{"email": "margaret.ellis@example.co.uk", "name": "Margaret Ellis"}\n'

# header 28 bytes, then per chunk: flag (1) + length (4) + nonce (12) + ciphertext + tag (16)
HEADER = 28
CHUNK_ON_DISK = 1 + 4 + 12 + CHUNK_SIZE + 16


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs", os.urandom(32))


def path_of(blobs: LocalBlobStore, ref: str) -> Path:
    case, obj = parse_ref(ref)
    return blobs.root / case / obj


def test_small_round_trip_and_ref_shape(blobs: LocalBlobStore) -> None:
    ref = blobs.put(SECRET, case=CASE, name="billing.jsonl")
    assert ref.startswith(f"blob://{CASE}/") and ref.endswith("-billing.jsonl")
    assert blobs.exists(ref)
    assert blobs.get(ref) == SECRET
    assert blobs.get(blobs.put(b"", case=CASE, name="empty.jsonl")) == b""


def test_ciphertext_on_disk_hides_plaintext(blobs: LocalBlobStore) -> None:
    ref = blobs.put(SECRET * 1000, case=CASE, name="crm.jsonl")
    on_disk = path_of(blobs, ref).read_bytes()
    assert b"margaret" not in on_disk.lower() and b"example.co.uk" not in on_disk
    assert (path_of(blobs, ref).stat().st_mode & 0o777) == 0o600


def test_five_megabytes_streamed_both_ways(blobs: LocalBlobStore) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)  # not a multiple of the chunk size
    with blobs.open_writer(CASE, "export.zip") as writer:
        for start in range(0, len(data), 100_000):
            writer.write(data[start : start + 100_000])
    chunks = list(blobs.open_reader(writer.ref))
    assert max(len(c) for c in chunks) <= CHUNK_SIZE
    assert b"".join(chunks) == data


def test_exact_multiple_of_chunk_size(blobs: LocalBlobStore) -> None:
    data = os.urandom(CHUNK_SIZE * 3)
    assert blobs.get(blobs.put(data, case=CASE, name="x.bin")) == data


def three_chunk_blob(blobs: LocalBlobStore) -> tuple[str, Path, bytes]:
    ref = blobs.put(os.urandom(CHUNK_SIZE * 2 + 1000), case=CASE, name="x.bin")
    path = path_of(blobs, ref)
    return ref, path, path.read_bytes()


def test_flipped_byte_is_detected(blobs: LocalBlobStore) -> None:
    ref, path, raw = three_chunk_blob(blobs)
    for offset in (HEADER + 40, HEADER + CHUNK_ON_DISK + 40, len(raw) - 1, 10):
        tampered = bytearray(raw)
        tampered[offset] ^= 0x01
        path.write_bytes(bytes(tampered))
        with pytest.raises(BlobIntegrityError):
            blobs.get(ref)


@pytest.mark.parametrize("cut", ["inside_last_chunk", "whole_last_chunk", "header_only"])
def test_truncation_is_detected(blobs: LocalBlobStore, cut: str) -> None:
    ref, path, raw = three_chunk_blob(blobs)
    keep = {
        "inside_last_chunk": len(raw) - 10,
        "whole_last_chunk": HEADER + 2 * CHUNK_ON_DISK,
        "header_only": HEADER,
    }[cut]
    path.write_bytes(raw[:keep])
    with pytest.raises(BlobIntegrityError, match="truncated"):
        blobs.get(ref)


def test_swapped_or_dropped_chunks_are_detected(blobs: LocalBlobStore) -> None:
    ref, path, raw = three_chunk_blob(blobs)
    header, first, second, last = (
        raw[:HEADER],
        raw[HEADER : HEADER + CHUNK_ON_DISK],
        raw[HEADER + CHUNK_ON_DISK : HEADER + 2 * CHUNK_ON_DISK],
        raw[HEADER + 2 * CHUNK_ON_DISK :],
    )
    for forged in (header + second + first + last, header + first + last, header + first + second):
        path.write_bytes(forged)
        with pytest.raises(BlobIntegrityError):
            blobs.get(ref)


def test_object_moved_to_another_ref_is_detected(blobs: LocalBlobStore) -> None:
    a = blobs.put(SECRET, case=CASE, name="a.jsonl")
    b = blobs.put(b"other", case=CASE, name="b.jsonl")
    path_of(blobs, b).write_bytes(path_of(blobs, a).read_bytes())
    with pytest.raises(BlobIntegrityError):
        blobs.get(b)


def test_wrong_key_is_detected(blobs: LocalBlobStore) -> None:
    ref = blobs.put(SECRET, case=CASE, name="a.jsonl")
    with pytest.raises(BlobIntegrityError, match="another key"):
        LocalBlobStore(blobs.root, os.urandom(32)).get(ref)


@pytest.mark.parametrize(
    "ref",
    [
        "blob://../../etc/passwd",
        f"blob://{CASE}/../../etc/passwd",
        "blob://../" + "0" * 32 + "-x",
        f"blob://{CASE}/" + "0" * 32 + "-../x",
        f"blob://{CASE}/.tmp-" + "0" * 32,
        f"blob://{CASE}/" + "0" * 32 + "-x/y",
        "file:///etc/passwd",
        f"blob://{CASE}/" + "0" * 32 + "-x\n",
    ],
)
def test_forged_refs_are_refused(blobs: LocalBlobStore, ref: str) -> None:
    for operation in (blobs.get, blobs.open_reader, blobs.exists, blobs.delete):
        with pytest.raises(ValueError):
            operation(ref)


@pytest.mark.parametrize(
    ("case", "name"), [("..", "x"), (CASE, "../x"), (CASE, "a/b"), ("", "x"), (CASE, ".x")]
)
def test_unsafe_case_or_name_is_refused(blobs: LocalBlobStore, case: str, name: str) -> None:
    with pytest.raises(ValueError):
        blobs.put(b"x", case=case, name=name)


def test_missing_blob(blobs: LocalBlobStore) -> None:
    ref = f"blob://{CASE}/" + "0" * 32 + "-gone.jsonl"
    assert not blobs.exists(ref)
    with pytest.raises(BlobNotFoundError):
        blobs.open_reader(ref)
    blobs.delete(ref)  # idempotent


def test_failed_write_leaves_nothing(blobs: LocalBlobStore) -> None:
    with pytest.raises(RuntimeError), blobs.open_writer(CASE, "half.jsonl") as writer:
        writer.write(os.urandom(CHUNK_SIZE * 3))
        raise RuntimeError("connector died mid-export")
    assert not blobs.exists(writer.ref)
    assert list((blobs.root / CASE).iterdir()) == []


def test_delete_and_delete_case(blobs: LocalBlobStore) -> None:
    refs = [blobs.put(SECRET, case=CASE, name=f"s{i}.jsonl") for i in range(3)]
    other = blobs.put(SECRET, case="DSR-2026-000124", name="s.jsonl")
    blobs.delete(refs[0])
    assert not blobs.exists(refs[0])
    assert blobs.delete_case(CASE) == 2
    assert not any(blobs.exists(r) for r in refs)
    assert blobs.exists(other)
    assert blobs.delete_case(CASE) == 0


def test_streamed_write_of_50_mb_keeps_memory_bounded(blobs: LocalBlobStore) -> None:
    block = os.urandom(1024 * 1024)
    expected = hashlib.sha256()
    tracemalloc.start()
    try:
        with blobs.open_writer(CASE, "big.bin") as writer:
            for i in range(50):
                piece = block[i:] + block[:i]
                expected.update(piece)
                writer.write(piece)
                del piece
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        actual = hashlib.sha256()
        for chunk in blobs.open_reader(writer.ref):
            actual.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert actual.digest() == expected.digest()
    assert write_peak < 10 * 1024 * 1024, f"write peak {write_peak / 2**20:.1f} MiB"
    assert read_peak < 1024 * 1024, f"read peak {read_peak / 2**20:.1f} MiB"


def test_store_from_settings_derives_its_own_key(tmp_path: Path) -> None:
    codec_key = os.urandom(32)
    settings = Settings(var_dir=tmp_path, codec_key=base64.b64encode(codec_key).decode())
    blobs = blob_store_from_settings(settings)
    assert blobs.root == tmp_path / "blobs"
    ref = blobs.put(SECRET, case=CASE, name="a.jsonl")
    assert blobs.get(ref) == SECRET
    with pytest.raises(BlobIntegrityError):  # the codec key itself does not open blobs
        LocalBlobStore(blobs.root, codec_key).get(ref)
