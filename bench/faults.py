#!/usr/bin/env python3
"""Faults: N access requests on a stack whose workers are SIGKILLed every few seconds and whose
Temporal server is killed once; does every case still get its answer, once?

Self-contained: starts its own embedded stack (``dsar.devstack``: the Temporal dev server with
SQLite in WAL mode, 2 workers, the HTTP app, the demo company's two SQL systems) on free
loopback ports in a temporary var dir, and stops every process it started (by PID).

Two phases on the same stack, each worked by the robot privacy team of ``bench/throughput.py``
(it submits, verifies the cases waiting for "operator: identity check" and approves those
waiting for the reviewer, over the HTTP API):

1. ``--n`` cases with nothing killed: the baseline latency;
2. ``--n`` cases while, every ``--kill-every`` seconds, one worker (in turn) is SIGKILLed and
   started again at once, and once, a third of the way in, the Temporal server is SIGKILLed and
   started again on its database file.

Then it reads the outbox and the register: a case is stuck if it never reached "responded";
a duplicate letter is a second letter of the same subject to a case (acknowledgement,
response, password); a duplicate audit entry is a second entry of an action that happens once
per case (each stage entered, the match, the decisions, the review, the package).

Prints ONE JSON line: submitted, responded, stuck, duplicate_letters,
duplicate_audit_entries, p50_s/p95_s without and with kills, then details. Diagnostics on
stderr.

  python bench/faults.py --n 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import json
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import Robot, new_stack, start_stack, summary_s, tokens, wait_healthy

from dsar.devstack import Stack, temporal_command
from dsar.store import CaseStore

#: Actions an access case records once (a second one is a duplicate effect).
ONCE = frozenset(
    {
        "received",
        "stage:acknowledged",
        "stage:verifying",
        "stage:searching",
        "stage:reviewing",
        "stage:fulfilling",
        "stage:responded",
        "decision:verify",
        "decision:approve",
        "review:prepared",
        "package:built",
    }
)


def log(msg: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Killer:
    """SIGKILLs one worker every ``every`` seconds (in turn) and starts it again at once; kills
    the Temporal server once, at ``server_at`` seconds, and starts it again on its file."""

    def __init__(self, stack: Stack, every: float, server_at: float) -> None:
        self.stack, self.every, self.server_at = stack, every, server_at
        self.worker_kills = 0
        self.server_kills = 0
        self.server_down_s = 0.0

    async def run(self) -> None:
        started = time.monotonic()
        turn = 0
        while True:
            await asyncio.sleep(self.every)
            name = self.stack.worker_names[turn % len(self.stack.worker_names)]
            turn += 1
            proc = self.stack.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
                self.worker_kills += 1
            self.stack._spawn(name, [sys.executable, "-m", "worker"])
            if not self.server_kills and time.monotonic() - started >= self.server_at:
                await asyncio.to_thread(self.kill_server)

    def kill_server(self) -> None:
        t = time.monotonic()
        proc = self.stack.procs["temporal"]
        proc.kill()
        proc.wait()
        self.server_kills += 1
        log("Temporal server killed")
        self.stack._spawn("temporal", temporal_command(self.stack.var, self.stack.ports, ui=False))
        self.stack._wait_port("temporal", self.stack.ports.temporal, 60)
        self.server_down_s = time.monotonic() - t
        log(f"Temporal server back after {self.server_down_s:.1f}s")


def check_alive(stack: Stack) -> None:
    """The web app must not die (workers and the server are killed on purpose)."""
    web = stack.procs.get("web")
    if web is not None and web.poll() is not None:
        raise RuntimeError("the web app died; see web.log")


async def phase(a: argparse.Namespace, stack: Stack, url: str, kill: bool) -> tuple[Robot, Killer | None]:
    operator, reviewer = tokens(a, stack.var)
    conns = a.concurrency + 3
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await wait_healthy(http)
        robot = Robot(
            http=http,
            operator={"Authorization": f"Bearer {operator}"},
            reviewer={"Authorization": f"Bearer {reviewer}"},
            n=a.n,
            concurrency=a.concurrency,
            poll=a.poll,
            done_poll=a.done_poll,
            deadline=a.deadline,
            check=lambda: check_alive(stack),
            max_sends=50,  # a decision lost with a killed server is simply sent again
        )
        killer = Killer(stack, a.kill_every, a.server_kill_at) if kill else None
        task = asyncio.create_task(killer.run()) if killer else None
        log(f"phase {'with' if kill else 'without'} kills: {a.n} cases (run {robot.run_id})")
        try:
            await robot.run()
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # leave the stack whole for the next phase and the counts
        for name in stack.worker_names:
            proc = stack.procs.get(name)
            if proc is None or proc.poll() is not None:
                stack._spawn(name, [sys.executable, "-m", "worker"])
    return robot, killer


def duplicate_letters(outbox: Path, references: set[str]) -> tuple[int, Counter[str]]:
    per: Counter[tuple[str, str]] = Counter()
    kinds: Counter[str] = Counter()
    for path in outbox.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        subject = str(msg["Subject"])
        ref = next((r for r in references if r in subject), None)
        if ref is None:
            continue
        per[(ref, subject)] += 1
        kinds[subject.replace(ref, "REF")] += 1
    return sum(n - 1 for n in per.values() if n > 1), kinds


def duplicate_audit(store: CaseStore, references: set[str]) -> tuple[int, Counter[str]]:
    dup = 0
    which: Counter[str] = Counter()
    for ref in references:
        actions = Counter(e.action for e in store.audit_trail(ref))
        for action, n in actions.items():
            if action in ONCE and n > 1:
                dup += n - 1
                which[action] += n - 1
    return dup, which


async def restarts(address: str, references: list[str]) -> dict[str, Any]:
    """Activities tried more than once (their attempt was lost with a killed worker, or failed):
    how many, and from their first scheduling to the start of their last attempt (every lost
    attempt's run, heartbeat timeout and retry interval; history keeps no per-attempt times)."""
    from temporalio.client import Client

    client = await Client.connect(address)
    waits: list[float] = []
    for ref in references:
        history = await client.get_workflow_handle(ref).fetch_history()
        scheduled: dict[int, float] = {}
        for e in history.events:
            if e.HasField("activity_task_scheduled_event_attributes"):
                scheduled[e.event_id] = e.event_time.ToDatetime().timestamp()
            elif e.HasField("activity_task_started_event_attributes"):
                a = e.activity_task_started_event_attributes
                if a.attempt > 1 and a.scheduled_event_id in scheduled:
                    waits.append(e.event_time.ToDatetime().timestamp() - scheduled[a.scheduled_event_id])
    return {"retried_activities": len(waits), "first_scheduled_to_last_start_s": summary_s(waits)}


def leaked_tokens(var: Path) -> int:
    """Lines of the web app's log that carry a link token in clear."""
    import re

    token = re.compile(r"[?&]t=(?!\[scrubbed\])[A-Za-z0-9_.-]{8,}")
    path = var / "web.log"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text(errors="replace").splitlines() if token.search(line))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100, help="cases per phase (default 100)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--kill-every", type=float, default=8.0, help="seconds between worker kills")
    p.add_argument("--server-kill-at", type=float, default=30.0, help="seconds into phase 2")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--poll", type=float, default=1.0)
    p.add_argument("--done-poll", type=float, default=1.0)
    p.add_argument("--deadline", type=float, default=1800.0, help="seconds per phase")
    p.add_argument("--keep", action="store_true", help="keep the var dir")
    p.add_argument("--token", default="")
    p.add_argument("--stack-env", action="append", default=[], metavar="K=V")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    var = Path(tempfile.mkdtemp(prefix="dsar-faults-"))
    stack = new_stack(a, var)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        start_stack(stack)
        url = f"http://127.0.0.1:{stack.ports.http}"
        calm, _ = asyncio.run(phase(a, stack, url, kill=False))
        stormy, killer = asyncio.run(phase(a, stack, url, kill=True))
        time.sleep(2)  # the last register writes
        lost = asyncio.run(restarts(f"127.0.0.1:{stack.ports.temporal}", sorted(stormy.issued)))
        store = CaseStore(f"sqlite:///{var / 'dsar.db'}")
        try:
            refs = set(calm.issued) | set(stormy.issued)
            letters, kinds = duplicate_letters(var / "outbox", refs)
            audit, which = duplicate_audit(store, refs)
        finally:
            store.close()
        calm_lat = summary_s(calm.responded[r] - calm.issued[r] for r in calm.responded)
        storm_lat = summary_s(stormy.responded[r] - stormy.issued[r] for r in stormy.responded)
        submitted = len(calm.issued) + len(stormy.issued)
        responded = len(calm.responded) + len(stormy.responded)
        result: dict[str, Any] = {
            "submitted": submitted,
            "responded": responded,
            "stuck": submitted - responded,
            "duplicate_letters": letters,
            "duplicate_audit_entries": audit,
            "p50_s_no_kills": calm_lat.get("p50"),
            "p95_s_no_kills": calm_lat.get("p95"),
            "p50_s_kills": storm_lat.get("p50"),
            "p95_s_kills": storm_lat.get("p95"),
            "worker_kills": killer.worker_kills if killer else 0,
            "server_kills": killer.server_kills if killer else 0,
            "server_down_s": round(killer.server_down_s, 1) if killer else 0,
            "activities_restarted": lost,
            "failed_submits": calm.failed_submits + stormy.failed_submits,
            "latency_no_kills_s": calm_lat,
            "latency_kills_s": storm_lat,
            "letters_by_subject": dict(kinds.most_common(6)),
            "duplicate_audit_by_action": dict(which),
            "tokens_in_web_log": leaked_tokens(var),
            "http": {k: v for k, v in sorted((calm.counts + stormy.counts).items()) if k.startswith("http_")},
            "config": {"n": a.n, "workers": a.workers, "kill_every_s": a.kill_every},
        }
        print(json.dumps(result), flush=True)
        return 0 if result["stuck"] == 0 and not letters and not audit else 1
    finally:
        stack.stop()
        if a.keep:
            log(f"var kept: {var}")
        else:
            shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
