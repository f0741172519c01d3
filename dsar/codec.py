"""Temporal payload encryption: personal data is the payload, so history holds only ciphertext.

Every payload the SDK writes (workflow and activity inputs and results, signals, updates,
queries, heartbeat details, and, with the failure converter below, failure messages and stack
traces) is serialised and sealed with AES-256-GCM before it leaves the process. The Temporal
server, its database and its backups then hold nothing a person could be identified by, except
what lives outside payloads: workflow ids, memos and search attributes stay in clear text, which
is why the case reference (never an email) is the workflow id.

The wire format is the one used by the Temporal samples in every SDK (metadata ``encoding:
binary/encrypted`` and ``encryption-key-id``; data = 12-byte nonce + ciphertext-with-tag), so a
codec server written against the samples can read our history and vice versa.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import temporalio.converter
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from dsar.settings import Settings

__all__ = [
    "ENCODING",
    "KEY_ID_METADATA",
    "CodecError",
    "EncryptionCodec",
    "UnknownKeyError",
    "codec_endpoint_payloads",
    "data_converter",
    "key_id_for",
]

#: Metadata values as the Temporal samples spell them (bytes, like all payload metadata).
ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
_NONCE_BYTES = 12


class CodecError(Exception):
    """A payload could not be decrypted: wrong key, tampered or truncated ciphertext."""


class UnknownKeyError(CodecError):
    """The payload names a key this process was not given (a rotation without the old key)."""


def key_id_for(key: bytes) -> str:
    """A short, stable name for a key that reveals nothing about it (first 8 hex of sha256)."""
    return hashlib.sha256(key).hexdigest()[:8]


class EncryptionCodec(temporalio.converter.PayloadCodec):
    """AES-256-GCM payload codec with key rotation.

    Encodes with ``current_key_id``; decodes with whichever known key the payload names, so a
    new key can be rolled out while running cases still hold payloads sealed with the old one.
    Payloads that are not ``binary/encrypted`` pass through ``decode`` unchanged: history
    written before the codec was switched on stays readable.
    """

    def __init__(self, keys: Mapping[str, bytes], current_key_id: str) -> None:
        super().__init__()
        if current_key_id not in keys:
            raise ValueError(f"current key id {current_key_id!r} is not among the keys given")
        for key_id, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"key {key_id!r} must be 32 bytes for AES-256, got {len(key)}")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current_key_id = current_key_id

    @classmethod
    def from_settings(cls, settings: Settings) -> EncryptionCodec:
        """The codec for this deployment's ``DSAR_CODEC_KEY``."""
        key = settings.codec_key_bytes
        key_id = key_id_for(key)
        return cls({key_id: key}, key_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) if p.metadata.get("encoding") == ENCODING else p for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self.current_key_id].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self.current_key_id.encode()},
            data=nonce + sealed,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(
                f"payload is encrypted with key id {key_id!r}, which this process does not hold "
                f"(known: {sorted(self._ciphers)}); after a key rotation keep the old key "
                "configured until no running case references it"
            )
        data = payload.data
        try:
            plain = cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], None)
        except InvalidTag as exc:
            raise CodecError(
                f"payload sealed with key {key_id!r} failed authentication: it was altered or "
                "truncated after encryption"
            ) from exc
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def data_converter(settings: Settings) -> temporalio.converter.DataConverter:
    """The one data converter every client and worker must use.

    ``DefaultFailureConverterWithEncodedAttributes`` moves failure messages and stack traces
    into an encoded payload: without it an exception such as ``no account for
    jane@example.com`` would sit in history in clear text beside the encrypted inputs.
    """
    return dataclasses.replace(
        temporalio.converter.default(),
        payload_codec=EncryptionCodec.from_settings(settings),
        failure_converter_class=temporalio.converter.DefaultFailureConverterWithEncodedAttributes,
    )


async def codec_endpoint_payloads(
    codec: temporalio.converter.PayloadCodec,
    body: dict[str, Any],
    action: Literal["encode", "decode"],
) -> dict[str, Any]:
    """Codec server body for the Temporal Web UI and CLI (``POST /codec/{encode,decode}``).

    Both directions take and return ``temporal.api.common.v1.Payloads`` in the protobuf JSON
    mapping: ``{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}``.
    Who may call ``decode`` is the mounting route's decision: it reveals personal data.
    Raises ``ValueError`` for a body that is not that shape (answer 400), ``CodecError`` for a
    payload that cannot be decrypted.
    """
    if action not in ("encode", "decode"):
        raise ValueError(f"codec action must be 'encode' or 'decode', not {action!r}")
    try:
        payloads = json_format.ParseDict(body, Payloads())
    except json_format.ParseError as exc:
        raise ValueError(f"body is not a Temporal Payloads JSON object: {exc}") from exc
    if action == "encode":
        await codec.encode_wrapper(payloads)
    else:
        await codec.decode_wrapper(payloads)
    result: dict[str, Any] = json_format.MessageToDict(payloads)
    result.setdefault("payloads", [])
    return result
