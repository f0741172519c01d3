"""The search activity against the seeded demo company: the requester's records, nobody else's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.search import PlanInput, SearchActivities, SearchInput, SearchOutcome
from demo.seed import MARGARET, NAMESAKE, PETER
from dsar.blobs import blob_store_from_settings
from dsar.datamap import DataMap
from dsar.settings import Settings

DEMO_MAP = Path(__file__).resolve().parent.parent / "demo" / "dsar.yaml"


def run_outcome(
    settings: Settings, identifiers: dict[str, str], system: str = "crm", learn: list[str] | None = None
) -> SearchOutcome:
    acts = SearchActivities(DataMap.load(settings.datamap), blob_store_from_settings(settings))
    outcome: SearchOutcome = ActivityEnvironment().run(
        acts.search_system, SearchInput("DSR-2026-900001", system, identifiers, learn or [])
    )
    return outcome


def run_search(
    settings: Settings, identifiers: dict[str, str], system: str = "crm"
) -> tuple[object, list[dict]]:
    blobs = blob_store_from_settings(settings)
    result = run_outcome(settings, identifiers, system).result
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
    # Margaret's email and Peter's phone: two people, no telling which. Not "nothing held": the
    # search fails for a person to decide (the workflow makes it an operator task), and names
    # kinds, never values.
    with pytest.raises(ApplicationError, match="different people") as split:
        run_search(settings, {"email": MARGARET["email"], "phone": PETER["phone"]})
    assert split.value.type == "SearchAmbiguous" and split.value.non_retryable
    assert MARGARET["email"] not in str(split.value) and PETER["phone"] not in str(split.value)


def test_the_first_wave_learns_what_key_templates_need_from_the_persons_own_record(
    settings: Settings,
) -> None:
    ids = {k: MARGARET[k] for k in ("name", "email")}
    outcome = run_outcome(settings, ids, learn=["customer_id"])
    assert outcome.learned == {"customer_id": MARGARET["customer_id"]}
    # nothing is learned unless asked for, and never from someone else's record
    assert run_outcome(settings, ids).learned == {}
    assert run_outcome(settings, {"postcode": MARGARET["postcode"]}, learn=["customer_id"]).learned == {}


def test_plan_puts_template_systems_in_the_second_wave_and_manual_systems_apart(settings: Settings) -> None:
    acts = SearchActivities(DataMap.load(DEMO_MAP), blob_store_from_settings(settings))
    plan = ActivityEnvironment().run(acts.plan_search, PlanInput("DSR-2026-900001", ["email", "name"]))
    assert plan.first == ["crm", "marketing"]
    assert plan.second == ["recordings"] and plan.learn == ["customer_id"]
    assert [m.system for m in plan.manual] == ["cctv"]
    assert plan.manual[0].owner == "facilities@northwind.example.com"
    # a person who gave the customer number needs no second wave
    plan = ActivityEnvironment().run(acts.plan_search, PlanInput("DSR-2026-900001", ["customer_id", "email"]))
    assert plan.first == ["crm", "marketing", "recordings"] and plan.second == []
