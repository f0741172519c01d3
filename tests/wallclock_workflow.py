"""A workflow with the mistake the determinism guard exists for: it reads the wall clock."""

from datetime import datetime

from temporalio import workflow


@workflow.defn(name="WallClockWorkflow")
class WallClockWorkflow:
    @workflow.run
    async def run(self) -> str:
        return datetime.now().isoformat()  # should be workflow.now()
