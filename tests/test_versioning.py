"""A case started on version N of the workflow finishes on version N+1 (docs/versioning.md).

Version N+1 here is the current code with two changes, each behind its own ``workflow.patched``
marker: one at a point the running case has passed (the acknowledgement), one at a point it has
not reached (the response). The worker is stopped mid-case and N+1 takes over: the case replays
its history on the new code, keeps the old behaviour where it had already passed, takes the new
one where it had not, and finishes. The same change without the markers cannot replay it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

from temporalio.client import Client
from temporalio.converter import DefaultFailureConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from dsar.model import DecisionKind, Stage
from dsar.settings import Settings
from dsar.store import CaseStore
from tests.conftest import _settle_and_terminate, replay_in_sandbox
from tests.test_workflow import at_stage, decide, start, wait_until
from tests.upgraded_workflow import NextVersion, UnpatchedNextVersion
from workflows.request import DataSubjectRequest


@contextlib.asynccontextmanager
async def running(
    client: Client, settings: Settings, store: CaseStore, version: type[DataSubjectRequest]
) -> AsyncIterator[None]:
    """A worker of one version. No cache: a stopped worker leaves no sticky queue behind."""
    from worker import build_workers

    async with contextlib.AsyncExitStack() as stack:
        for w in build_workers(client, settings, store=store, workflow=version, cache_workflows=False):
            await stack.enter_async_context(w)
        yield


async def test_a_case_started_on_version_n_finishes_on_version_n_plus_1(
    ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore
) -> None:
    async with running(ts_env.client, settings, store, DataSubjectRequest):
        old = await start(ts_env, store, settings)
        await at_stage(old, Stage.VERIFYING)
        await decide(old, DecisionKind.VERIFY)
        await wait_until(old, lambda s: s.waiting_for == "reviewer: approve the review package")

    async with running(ts_env.client, settings, store, NextVersion):
        await decide(old, DecisionKind.APPROVE)
        await at_stage(old, Stage.RESPONDED)
        new = await start(ts_env, store, settings)
        await at_stage(new, Stage.VERIFYING)
        for ref in (old.id, new.id):
            await _settle_and_terminate(ts_env.client, ref)

    old_trail = [e.action for e in store.audit_trail(old.id)]
    new_trail = [e.action for e in store.audit_trail(new.id)]
    # passed before the upgrade: as it ran; reached after it: the new behaviour
    assert "case:acknowledgement_checked" not in old_trail
    assert old_trail.index("case:response_checked") < old_trail.index("stage:responded")
    assert "stage:responded" in old_trail and store.verify_chain(old.id).ok
    # a case started on N+1 takes both changes
    assert new_trail.index("case:acknowledgement_checked") < new_trail.index("stage:acknowledged")

    # Both histories replay on N+1 in the sandbox; the case started on N does not replay on
    # the same change made without its marker.
    await replay_in_sandbox(ts_env.client, [old.id, new.id], workflows=[NextVersion])
    unpatched = Replayer(
        workflows=[UnpatchedNextVersion],
        data_converter=dataclasses.replace(
            ts_env.client.data_converter, failure_converter_class=DefaultFailureConverter
        ),
        workflow_runner=SandboxedWorkflowRunner(),
    )
    history = await ts_env.client.get_workflow_handle(old.id).fetch_history()
    result = await unpatched.replay_workflow(history, raise_on_replay_failure=False)
    # (the first local activity of the history now resolves the inserted one: "Failed decoding
    # arguments"; a command of another kind is "[TMPRL1100] Nondeterminism error")
    assert result.replay_failure is not None
