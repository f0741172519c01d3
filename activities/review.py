"""Prepare what a reviewer approves before anything is disclosed or changed.

The review package says in plain words what was found where and what will happen to it. It holds
counts and system names only; the records stay in the blob store.
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

from dataclasses import dataclass

from temporalio import activity

from dsar.blobs import BlobStore
from dsar.model import RequestType, SystemResult
from dsar.regimes import REQUEST_LABELS


@dataclass
class ReviewInput:
    reference: str
    request_type: RequestType
    systems: list[SystemResult]


@dataclass
class ReviewPackage:
    summary: str
    blob_ref: str
    records: int
    exemptions_applied: int


def review_text(inp: ReviewInput) -> str:
    found = [s for s in inp.systems if s.status == "found"]
    total = sum(s.records for s in found)
    lines = [
        f"Review package for {inp.reference}: {REQUEST_LABELS[inp.request_type]} request.",
        f"Found {total} record(s) in {len(found)} of {len(inp.systems)} system(s) searched.",
        "",
    ]
    for s in inp.systems:
        what = f"{s.records} record(s): {s.detail}" if s.status == "found" else s.detail or s.status
        lines.append(f"- {s.system}: {s.status}, {what}")
    lines += [
        "",
        "Exemptions: no exemption rules are configured for these systems, so nothing is proposed",
        "to be withheld, redacted or retained. Approve to proceed, or reject with a reason.",
    ]
    return "\n".join(lines) + "\n"


class ReviewActivities:
    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    @activity.defn(name="prepare_review")
    def prepare_review(self, inp: ReviewInput) -> ReviewPackage:
        text = review_text(inp)
        ref = self.blobs.put(text.encode(), case=inp.reference, name="review.txt")
        found = [s for s in inp.systems if s.status == "found"]
        return ReviewPackage(
            summary=text, blob_ref=ref, records=sum(s.records for s in found), exemptions_applied=0
        )
