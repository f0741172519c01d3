"""Cases already running must still replay: the committed histories in ``tests/histories/``
(recorded from real runs of every stage, see docs/versioning.md) are replayed with the current
workflow code inside the SDK's sandbox. A change that would break a live case (a command added,
removed or reordered without a ``workflow.patched`` marker) fails here, in CI, before it ships.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import DefaultFailureConverter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from dsar.codec import data_converter
from tests.conftest import make_settings
from workflows.request import DataSubjectRequest

#: every stage and ending has one: a change to any of them is replayed against a real case
SCENARIOS = (
    "access-to-purge", "erasure-carried-out", "rectification", "restriction", "objection", "opt-out",
    "withdrawal", "expired", "refused", "nothing-held", "closed-as-nothing-held", "fee", "extension",
    "clarification-pause", "reminders-escalation-breach", "operator-task-retried", "operator-task-skipped",
    "cancel-is-withdrawal", "letter-refused-task", "triage-classified", "correspondence",
    "agent-authority-uploaded", "identifiers-provided", "confirmation-link", "portability-transfer",
    "second-approver", "review-amended", "erasure-manual-system-held-nothing", "merged", "merged-into",
    "access-worked-ahead", "access-worked-ahead-to-review", "erasure-worked-ahead",
)  # fmt: skip
HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_stage_has_a_committed_history() -> None:
    """The set covers each stage and ending (a file per scenario; see docs/versioning.md)."""
    names = {p.stem for p in HISTORIES}
    for needed in SCENARIOS:
        assert needed in names, needed


async def test_committed_histories_replay_with_the_current_code(tmp_path: Path) -> None:
    # The histories' payloads are decrypted with the tests' key; the replay's own failure (a
    # nondeterminism error) is reported in words here, not encoded as the worker would send it.
    converter = dataclasses.replace(
        data_converter(make_settings(tmp_path)), failure_converter_class=DefaultFailureConverter
    )
    replayer = Replayer(
        workflows=[DataSubjectRequest],
        data_converter=converter,
        workflow_runner=SandboxedWorkflowRunner(),
    )
    failures = []
    for path in HISTORIES:
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            said = re.search(r'message: "([^"]*)"', str(result.replay_failure))
            failures.append(f"{path.name}: {said.group(1) if said else result.replay_failure}")
    if failures:
        pytest.fail("a change would break cases already running:\n" + "\n".join(failures))
