"""Fulfilment: build the access/portability package, or hand a change to a person.

Access and portability produce a ZIP in the blob store: one JSON-lines file per system and a
``manifest.json`` with SHA-256 checksums, streamed so memory stays bounded. Request types whose
changes are not yet automated (erasure, rectification, restriction, objection, opt-outs) become an
explicit task for an operator, who records the ``fulfilled`` decision when done: the case never
claims a change it did not make.
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass

from temporalio import activity

from dsar.blobs import BlobStore, BlobWriter
from dsar.model import RequestType, SystemResult

PACKAGE_TYPES = frozenset({RequestType.ACCESS, RequestType.PORTABILITY})


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
