"""Working a case ahead (issue 20): a copy-of-data request that needs nobody has its match,
search, review, package and link run in one activity, and the stages take each result as their
own step's. What the person, the register and the audit trail see must not change: the same
letters, the same entries in the same order, the same package. A case that does need someone
stops being worked ahead at that step and goes on as it always has."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from demo.seed import MARGARET
from dsar.model import RequestType, Stage
from dsar.settings import Settings
from dsar.store import CaseStore
from tests.conftest import make_settings
from tests.test_review_stage import MARKETING_ENV, demo_pg  # noqa: F401  (the module's databases)
from tests.test_search_stage import demo_map
from tests.test_workflow import letters, plain_text, start, wait_until
from workflows.request import DataSubjectRequest

pytestmark = pytest.mark.postgres

IDS = {k: MARGARET[k] for k in ("name", "email", "phone")}

#: The stages' audit entries of a copy sent without anyone, in order, whichever way it ran.
TRAIL = [
    "received",
    "stage:acknowledged",
    "stage:verifying",
    "identity:matched",
    "stage:searching",
    "stage:reviewing",
    "review:prepared",
    "review:approved",
    "stage:fulfilling",
    "package:built",
    "stage:responded",
]


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    demo_pg: dict[str, str],  # noqa: F811
    register_url: str,
) -> Settings:
    """Margaret's marketing system alone (nothing there is withheld), verified automatically."""
    marker = request.node.get_closest_marker("ahead")
    options = dict(marker.kwargs) if marker else {}
    path = demo_map(tmp_path, {"marketing"}, url_envs={"marketing": MARKETING_ENV})
    document = yaml.safe_load(path.read_text())
    document["verification"] = {"automatic": True, "confirm_erasure": False}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return make_settings(
        tmp_path / "var", database_url=register_url, datamap=path, **{"review_auto_approve": True, **options}
    )


async def activities_run(handle: WorkflowHandle[DataSubjectRequest, str]) -> list[str]:
    """The ordinary activities the case scheduled, by name, in order."""
    history = await handle.fetch_history()
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def actions(store: CaseStore, reference: str) -> list[str]:
    return [e.action for e in store.audit_trail(reference)]


async def test_a_case_that_needs_nobody_is_worked_in_one_activity_with_the_same_trail(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings, identifiers=IDS)
    s = await wait_until(h, lambda s: s.stage == Stage.RESPONDED, timeout=30)
    assert await activities_run(h) == ["work_ahead"]
    assert [a for a in actions(store, h.id) if a in TRAIL] == TRAIL
    assert s.identity.points >= s.identity.needed and s.review is not None and s.review.approved_by == "dsar"
    assert [r.status for r in s.systems] == ["found"]
    assert "record(s) in 1 of 1 system(s)" in s.results["searching"]
    # the register went from verifying to responded in one write, and says so
    row = store.get(h.id)
    assert row is not None and row.stage == Stage.RESPONDED.value and row.waiting_for is None
    # the person has the acknowledgement, then the answer with its link and the password apart
    sent = [m for m in letters(settings) if m["To"] == MARGARET["email"]]
    subjects = [str(m["Subject"]) for m in sent]
    assert len(sent) == 3, subjects
    texts = [plain_text(m) for m in sent]
    assert sum("The link works until" in t for t in texts) == 1
    assert sum("password" in t.lower() for t in texts) >= 1
    # the package the person downloads is the one the trail names
    built = next(e for e in store.audit_trail(h.id) if e.action == "package:built")
    assert built.details["records"] == str(s.review.records)


@pytest.mark.ahead(review_auto_approve=False)
async def test_a_case_worked_ahead_to_its_review_waits_for_the_reviewer_with_the_register_saying_so(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings, identifiers=IDS)
    s = await wait_until(h, lambda s: s.waiting_for == "reviewer: approve the review package", timeout=30)
    assert await activities_run(h) == ["work_ahead"]  # matched, searched and prepared in it
    row = store.get(h.id)
    assert row is not None and row.stage == Stage.REVIEWING.value
    assert row.waiting_for == "reviewer: approve the review package"
    assert actions(store, h.id)[-1] == "review:prepared"
    assert s.review is not None and not s.review.approved_by


async def test_an_erasure_that_needs_nobody_is_planned_ahead_then_carried_out_in_one_activity(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    """Worked ahead to its approval only: the erasure itself runs once the workflow approved it,
    every system and the suppression list in one activity. (Last in the module: it erases
    Margaret from the module's marketing database.)"""
    h = await start(ts_env, store, settings, request_type=RequestType.ERASURE, identifiers=IDS)
    s = await wait_until(h, lambda s: s.stage == Stage.RESPONDED, timeout=30)
    assert await activities_run(h) == ["work_ahead", "carry_out"]
    trail = actions(store, h.id)
    expected = [*TRAIL[:9], "change:applied", "change:verified", "stage:responded"]
    assert [a for a in trail if a in expected] == expected
    assert s.review is not None and s.review.approved_by == "dsar"
    assert "verified in 1 system(s)" in (s.outcome or "")
    # the register said "fulfilling" while the erasure ran: written before it, not after
    fulfilling = next(e for e in store.audit_trail(h.id) if e.action == "stage:fulfilling")
    applied = next(e for e in store.audit_trail(h.id) if e.action == "change:applied")
    assert fulfilling.seq < applied.seq and fulfilling.at <= applied.at
