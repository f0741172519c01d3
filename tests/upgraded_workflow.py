"""Version N+1 of the case workflow for the upgrade test (tests/test_versioning.py): in a module
of its own, because the replays import it inside the SDK's sandbox (a test module is rewritten
by pytest, which the sandbox cannot import)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dsar.model import CaseInput
from workflows.request import DataSubjectRequest

ACK_CHECK = "acknowledgement-checked-v1"
RESPONSE_CHECK = "response-checked-v1"


@workflow.defn(name="DataSubjectRequest")
class NextVersion(DataSubjectRequest):
    """Version N+1: an audit entry before the acknowledgement and before the response."""

    @workflow.run
    async def run(self, case: CaseInput) -> str:
        return await super().run(case)

    async def _acknowledge(self) -> None:
        if workflow.patched(ACK_CHECK):
            await self._record([self._entry("case:acknowledgement_checked")])
        await super()._acknowledge()

    async def _respond(self) -> None:
        if workflow.patched(RESPONSE_CHECK):
            await self._record([self._entry("case:response_checked")])
        await super()._respond()


@workflow.defn(name="DataSubjectRequest")
class UnpatchedNextVersion(DataSubjectRequest):
    """The same first change shipped without its marker: what the policy forbids."""

    @workflow.run
    async def run(self, case: CaseInput) -> str:
        return await super().run(case)

    async def _acknowledge(self) -> None:
        await self._record([self._entry("case:acknowledgement_checked")])
        await super()._acknowledge()
