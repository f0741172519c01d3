"""The search activity against the seeded demo company: the requester's records, nobody else's."""

from __future__ import annotations

import json

from temporalio.testing import ActivityEnvironment

from activities.search import SearchActivities, SearchInput
from demo.seed import MARGARET, NAMESAKE, PETER
from dsar.blobs import blob_store_from_settings
from dsar.datamap import DataMap
from dsar.settings import Settings


def run_search(
    settings: Settings, identifiers: dict[str, str], system: str = "crm"
) -> tuple[object, list[dict]]:
    blobs = blob_store_from_settings(settings)
    acts = SearchActivities(DataMap.load(settings.datamap), blobs)
    result = ActivityEnvironment().run(
        acts.search_system, SearchInput("DSR-2026-900001", system, identifiers)
    )
    lines: list[dict] = []
    if result.blob_ref:
        lines = [json.loads(x) for x in b"".join(blobs.open_reader(result.blob_ref)).splitlines()]
    return result, lines


def customer_ids(lines: list[dict]) -> set[object]:
    return {ln["record"]["id"] for ln in lines if ln["entity"] == "customers"}


def test_household_member_and_namesake_are_not_collected(settings: Settings) -> None:
    ids = {k: MARGARET[k] for k in ("name", "email", "phone", "postcode")}
    result, lines = run_search(settings, ids)
    assert result.status == "found"  # type: ignore[attr-defined]
    assert {str(c) for c in customer_ids(lines)} == {MARGARET["customer_id"]}
    text = json.dumps(lines)
    assert PETER["email"] not in text and NAMESAKE["email"] not in text


def test_weak_or_split_identifiers_collect_nothing(settings: Settings) -> None:
    result, lines = run_search(settings, {"postcode": MARGARET["postcode"]})
    assert result.status == "none" and lines == []  # type: ignore[attr-defined]
    assert "weak" in result.detail  # type: ignore[attr-defined]
    result, lines = run_search(settings, {"email": MARGARET["email"], "phone": PETER["phone"]})
    assert result.status == "none" and lines == []  # type: ignore[attr-defined]
    assert "different people" in result.detail  # type: ignore[attr-defined]
