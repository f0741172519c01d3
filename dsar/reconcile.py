"""``dsar reconcile``: the case register compared with the workflow engine, and repaired.

The workflow is the source of truth for a case and writes the register at every step. Two
things can still leave them apart: Temporal's own controls (a Terminate from the Web UI or CLI
ends a workflow without letting it say so), and a register write that never happened (a case
whose workflow never started). This reads every open row of the register, asks the engine
about its case, and says, one JSON line per case that differs, what it found:

* ``ended_in_engine``: the workflow was terminated (or failed, or timed out) in the engine
  while the register still shows it open. Nothing moves such a case any more: the row is
  marked so, for a person ("operator: ..."), and an ``engine:<status>`` entry goes into its
  audit trail. Its stage stays what it was: the person has had no answer.
* ``no_workflow``: the register has the case but the engine does not (an intake that died
  before starting it, an engine reset): marked for a person the same way.
* ``behind``: the workflow is running and is at another stage than the row says: the row is
  brought up to date from the workflow's snapshot.

``--dry-run`` reports without writing. Rows opened in the last minutes are left alone (their
intake may still be starting the workflow). No personal data is read or printed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from dsar.store import AuditSpec, CaseRow, CaseStore

#: A row younger than this may belong to an intake that is still starting its workflow.
GRACE = timedelta(minutes=5)
ENDED = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}
ACTOR = "dsar:reconcile"


@dataclass
class Finding:
    reference: str
    finding: str  # "ended_in_engine", "no_workflow", "behind"
    register_stage: str
    engine: str  # the engine's status, or the workflow's stage
    action: str  # what was done ("marked for an operator", "synced", "none (dry run)")


async def reconcile(
    client: Client, store: CaseStore, apply: bool = True, now: datetime | None = None
) -> list[Finding]:
    now = now or datetime.now(UTC)
    rows = await asyncio.to_thread(_open_rows, store)
    findings = []
    for row in rows:
        if row.created_at > now - GRACE:
            continue
        found = await _check(client, store, row, apply, now)
        if found is not None:
            findings.append(found)
    return findings


def _open_rows(store: CaseStore) -> list[CaseRow]:
    out: list[CaseRow] = []
    offset = 0
    while True:
        page = store.queue(limit=500, offset=offset)
        out += [r for r in page if r.closed_at is None]
        if len(page) < 500:
            return out
        offset += 500


async def _check(
    client: Client, store: CaseStore, row: CaseRow, apply: bool, now: datetime
) -> Finding | None:
    handle = client.get_workflow_handle(row.reference)
    try:
        description = await handle.describe()
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise
        return await _mark(store, row, "no_workflow", "not found", apply, now)
    status = description.status
    if status in ENDED:
        return await _mark(store, row, "ended_in_engine", ENDED[status], apply, now)
    if status != WorkflowExecutionStatus.RUNNING:
        return None
    try:
        snapshot = await handle.query("snapshot")
    except Exception:  # a query that fails is not a difference we can act on
        return None
    stage = str(snapshot.get("stage", ""))
    if not stage or stage == row.stage:
        return None
    action = "none (dry run)"
    if apply:
        waiting = snapshot.get("waiting_for")
        await asyncio.to_thread(
            store.record,
            row.reference,
            [AuditSpec("register:reconciled", ACTOR, details={"from": row.stage, "to": stage})],
            now,
            stage=stage,
            waiting_for=waiting if isinstance(waiting, str) else None,
        )
        action = "synced from the workflow"
    return Finding(row.reference, "behind", row.stage, stage, action)


async def _mark(
    store: CaseStore, row: CaseRow, finding: str, engine: str, apply: bool, now: datetime
) -> Finding:
    what = {
        "no_workflow": "the workflow engine has no workflow for this case",
        "ended_in_engine": f"the case's workflow was {engine.replace('_', ' ')} in the workflow engine",
    }[finding]
    waiting = (
        f"operator: {what} (found by dsar reconcile on {now.date().isoformat()}); nothing moves the "
        "case now: answer the person by hand, or open the request again"
    )
    action = "none (dry run)"
    if apply and row.waiting_for != waiting:
        await asyncio.to_thread(
            store.record,
            row.reference,
            [AuditSpec(f"engine:{engine}", ACTOR, reason=what, details={"stage": row.stage})],
            now,
            waiting_for=waiting,
        )
        action = "marked for an operator"
    elif apply:
        action = "already marked"
    return Finding(row.reference, finding, row.stage, engine, action)


def print_findings(findings: Iterable[Finding], out: TextIO) -> int:
    count = 0
    for f in findings:
        out.write(json.dumps(asdict(f)) + "\n")
        count += 1
    return count


__all__ = ["Finding", "print_findings", "reconcile"]
