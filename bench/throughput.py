#!/usr/bin/env python3
"""Throughput of dsar end to end: N access requests worked by a robot privacy team.

Self-contained by default: starts its own embedded stack (the Temporal dev server with SQLite in
WAL mode, the dsar worker and the HTTP app, each a child process on free loopback ports, with the
demo company seeded in a temporary var dir), runs the robot, prints ONE JSON line on stdout and
stops every process it started (by PID). ``--url`` targets a stack that is already running
(``make run``) instead.

The robot uses the public HTTP API only, the way a privacy team would:

* it submits N access requests (UK_GDPR, the demo person's identifiers, a unique idempotency key
  each) with at most ``--concurrency`` HTTP calls in flight;
* meanwhile, every ``--poll`` seconds it reads the register queue (``stage=verifying``,
  ``stage=reviewing``, ``stage=responded``, paged) and sends ``verify`` (operator token) to its
  cases waiting for "operator: identity check" and ``approve`` (reviewer token) to its cases
  waiting for "reviewer: ...", each decision once per case (a 409 because the case moved on is
  counted, not retried);
* a case is complete when it is first seen in ``stage=responded``.

Latency of a case = first seen responded - the moment its submission was issued (like the
baseline, this includes waiting for a free HTTP slot); ``per_s`` = completed / makespan, the
makespan running from the first submission to the last completion. Only cases this run
submitted are ever touched, so it is safe against a stack with other work on it.

Output keys, in order: n, completed, per_s, p50_s, p95_s, then details (failures, decisions,
latency percentiles, CPU seconds per process, the shape of one case's history, config, env).
Diagnostics go to stderr.

Examples:
  python bench/throughput.py --n 50
  python bench/throughput.py                       # 500 requests on its own stack
  python bench/throughput.py --url http://127.0.0.1:8000 --var var    # against `make run`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
#: The robot signs its staff tokens with the stack's own secret: development mode, as `make run`
#: (the side-by-side harness imports this module and mints its tokens the same way).
os.environ.setdefault("DSAR_AUTH_MODE", "dev")

from console.auth import mint_token
from demo.seed import MARGARET
from dsar.devstack import Ports, Stack, _seed, free_port
from dsar.settings import Settings

VERIFY_WAIT = "operator: identity check"
REVIEW_WAIT_PREFIX = "reviewer:"
PAGE_MAX = 500  # the API's largest page
IDENTIFIERS = {k: MARGARET[k] for k in ("name", "email", "phone", "postcode")}


def log(msg: str) -> None:
    print(f"[throughput {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- measuring


def proc_cpu_seconds(pid: int) -> float:
    """utime+stime of a process (and its reaped children) from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def machine_busy_seconds() -> float:
    """Busy CPU-seconds of the whole machine (all cores) from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
        return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return float("nan")


def pct(sorted_vals: list[float], p: float) -> float | None:
    """Nearest-rank percentile (the baseline's definition)."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, round(p / 100.0 * len(sorted_vals) + 0.5) - 1))
    return round(sorted_vals[k], 2)


def summary_s(vals: Iterable[float]) -> dict[str, float | None]:
    v = sorted(vals)
    if not v:
        return {}
    return {
        "p50": pct(v, 50),
        "p95": pct(v, 95),
        "p99": pct(v, 99),
        "max": round(v[-1], 2),
        "mean": round(sum(v) / len(v), 2),
    }


# --------------------------------------------------------------------------- the robot


@dataclass
class Robot:
    """The privacy team: submits, verifies, approves and watches for responses over HTTP."""

    http: httpx.AsyncClient
    operator: dict[str, str]
    reviewer: dict[str, str]
    n: int
    concurrency: int
    poll: float
    done_poll: float
    deadline: float
    check: Callable[[], None] | None = None  # raises if the stack under test has died
    retry_409: float = 1.0
    max_sends: int = 5
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    issued: dict[str, float] = field(default_factory=dict)  # ref -> submission issued (perf_counter)
    issued_wall: dict[str, float] = field(default_factory=dict)  # the same, as a Unix time
    accepted: dict[str, float] = field(default_factory=dict)  # ref -> 201 received
    responded: dict[str, float] = field(default_factory=dict)  # ref -> first seen responded
    responded_wall: dict[str, float] = field(default_factory=dict)  # ref -> register updated_at
    sends: dict[str, Counter[str]] = field(
        default_factory=lambda: {"verify": Counter(), "approve": Counter()}
    )
    accepted_decisions: dict[str, set[str]] = field(
        default_factory=lambda: {"verify": set(), "approve": set()}
    )
    refused: dict[tuple[str, str], float] = field(default_factory=dict)  # (kind, ref) -> when refused
    counts: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)  # 409 messages, case reference removed
    errors: list[str] = field(default_factory=list)
    failed_submits: int = 0
    poll_times: list[float] = field(default_factory=list)  # one read of verifying + reviewing
    done_poll_times: list[float] = field(default_factory=list)  # one read of responded
    t0: float = 0.0

    def __post_init__(self) -> None:
        self.sem = asyncio.Semaphore(self.concurrency)
        self.submitting_done = asyncio.Event()
        self.in_flight: set[tuple[str, str]] = set()
        self.decision_tasks: set[asyncio.Task[None]] = set()

    def _error(self, what: str) -> None:
        self.counts["errors"] += 1
        if len(self.errors) < 5:
            self.errors.append(what[:300])
        if self.counts["errors"] <= 20:
            log(what[:300])

    async def _call(
        self, method: str, url: str, headers: dict[str, str], slot: bool = True, **kw: Any
    ) -> httpx.Response | None:
        """One HTTP call; transport errors and 5xx are retried a few times.

        Submissions and decisions share ``concurrency`` slots. Queue reads (at most one per
        stage at a time) do not take a slot, so slow decisions never delay the robot's view.
        """
        last = ""
        for attempt in range(4):
            r: httpx.Response | None = None
            async with self.sem if slot else contextlib.nullcontext():
                try:
                    r = await self.http.request(method, url, headers=headers, **kw)
                except httpx.HTTPError as e:
                    self.counts["transport_errors"] += 1
                    last = f"{method} {url}: {type(e).__name__}: {e}"
            if r is not None:
                self.counts[f"http_{r.status_code}"] += 1
                if r.status_code < 500:
                    return r
                self.counts[f"retried_{r.status_code}"] += 1
                last = f"{method} {url}: {r.status_code} {r.text[:200]}"
            await asyncio.sleep(0.5 * 2**attempt)
        self._error(last)
        return None

    # ---- intake

    async def submit(self, i: int) -> None:
        t_issued, wall = time.perf_counter(), time.time()
        body = {
            "type": "access",
            "regime": "UK_GDPR",
            "identifiers": IDENTIFIERS,
            "channel": "api",
            "idempotency_key": f"bench-{self.run_id}-{i}",
        }
        r = await self._call("POST", "/api/v1/requests", self.operator, json=body)
        if r is None or r.status_code not in (200, 201):
            self.failed_submits += 1
            if r is not None:
                self._error(f"submit {i}: {r.status_code} {r.text[:200]}")
            return
        ref = str(r.json()["reference"])
        self.issued[ref], self.issued_wall[ref] = t_issued, wall
        self.accepted[ref] = time.perf_counter()

    async def submit_all(self) -> None:
        try:
            await asyncio.gather(*(self.submit(i) for i in range(self.n)))
        finally:
            self.submitting_done.set()

    # ---- the queue

    async def read_stage(self, stage: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            r = await self._call(
                "GET",
                "/api/v1/requests",
                self.operator,
                slot=False,
                params={"stage": stage, "limit": PAGE_MAX, "offset": offset},
            )
            if r is None:
                return rows
            if r.status_code != 200:
                self._error(f"queue {stage}: {r.status_code} {r.text[:200]}")
                return rows
            items = r.json()["items"]
            rows.extend(items)
            if len(items) < PAGE_MAX:
                return rows
            offset += PAGE_MAX

    async def decide(self, ref: str, kind: str) -> None:
        headers = self.operator if kind == "verify" else self.reviewer
        body = {"kind": kind, "reason": f"throughput bench {self.run_id}"}
        try:
            r = await self._call("POST", f"/api/v1/requests/{ref}/decisions", headers, json=body)
        finally:
            self.in_flight.discard((kind, ref))
        if r is None:
            self.refused[(kind, ref)] = time.perf_counter()  # engine unavailable: a later poll retries
        elif r.status_code == 200:
            self.accepted_decisions[kind].add(ref)
        elif r.status_code == 409:
            # Usually the case moved on meanwhile (fine). If the register still shows the case
            # waiting for this decision on a later poll, it is sent again after retry_409 s.
            self.counts[f"{kind}_409"] += 1
            self.refused[(kind, ref)] = time.perf_counter()
            self.refusals[f"{kind}: {str(r.json().get('detail', r.text)).replace(ref, 'REF')}"[:160]] += 1
        else:
            self._error(f"{kind} {ref}: {r.status_code} {r.text[:200]}")

    def _send(self, ref: str, kind: str, now: float) -> None:
        key = (kind, ref)
        if ref not in self.issued or ref in self.responded or ref in self.accepted_decisions[kind]:
            return
        if key in self.in_flight or self.sends[kind][ref] >= self.max_sends:
            return
        if key in self.refused and now - self.refused[key] < self.retry_409:
            return
        if self.sends[kind][ref]:
            self.counts[f"{kind}_resent"] += 1
        self.sends[kind][ref] += 1
        self.in_flight.add(key)
        task = asyncio.create_task(self.decide(ref, kind))
        self.decision_tasks.add(task)
        task.add_done_callback(self.decision_tasks.discard)

    async def work_queue(self) -> None:
        """Every ``poll`` seconds: the verifying and reviewing queues, and the decisions due."""
        while True:
            started = time.perf_counter()
            verifying, reviewing = await asyncio.gather(
                self.read_stage("verifying"), self.read_stage("reviewing")
            )
            now = time.perf_counter()
            self.poll_times.append(now - started)
            for row in verifying:
                if row.get("waiting_for") == VERIFY_WAIT:
                    self._send(row["reference"], "verify", now)
            for row in reviewing:
                if (row.get("waiting_for") or "").startswith(REVIEW_WAIT_PREFIX):
                    self._send(row["reference"], "approve", now)
            await asyncio.sleep(max(0.0, self.poll - (time.perf_counter() - started)))

    async def watch_responses(self) -> bool:
        """Every ``done_poll`` seconds: the responded list. True once every submitted case is
        there, False if the deadline came first."""
        while True:
            if self.check is not None:
                self.check()
            started = time.perf_counter()
            rows = await self.read_stage("responded")
            now = time.perf_counter()
            self.done_poll_times.append(now - started)
            for row in rows:
                ref = row["reference"]
                if ref in self.issued and ref not in self.responded:
                    self.responded[ref] = now
                    self.responded_wall[ref] = datetime.fromisoformat(row["updated_at"]).timestamp()
            if self.submitting_done.is_set() and len(self.responded) >= len(self.issued):
                return True
            if started - self.t0 > self.deadline:
                return False
            await asyncio.sleep(max(0.0, self.done_poll - (time.perf_counter() - started)))

    async def run(self) -> bool:
        self.t0 = time.perf_counter()
        submitter = asyncio.create_task(self.submit_all())
        worker = asyncio.create_task(self.work_queue())
        try:
            return await self.watch_responses()
        finally:
            for t in [submitter, worker, *self.decision_tasks]:
                t.cancel()


# --------------------------------------------------------------------------- one case's shape


async def history_shape(temporal_address: str, references: list[str]) -> dict[str, Any]:
    """What one case costs Temporal, averaged over a sample of cases: history events, workflow
    tasks, activities, local activities (markers), search-attribute upserts; plus workflow tasks
    that timed out or failed (each one means a replay on the worker)."""
    from temporalio.api.enums.v1 import EventType, TimeoutType
    from temporalio.client import Client

    client = await Client.connect(temporal_address)
    sem = asyncio.Semaphore(8)

    async def one(ref: str) -> Counter[str]:
        async with sem:
            history = await client.get_workflow_handle(ref).fetch_history()
        kinds = Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events)
        for e in history.events:  # a sticky queue's schedule-to-start, or a task that ran too long
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                timeout = e.workflow_task_timed_out_event_attributes.timeout_type
                kinds[f"WFT_TIMEOUT_{TimeoutType.Name(timeout).removeprefix('TIMEOUT_TYPE_')}"] += 1
        kinds["EVENTS"] = len(history.events)
        kinds["HISTORY_BYTES"] = sum(e.ByteSize() for e in history.events)
        return kinds

    per_case = await asyncio.gather(*(one(r) for r in references))
    total: Counter[str] = sum(per_case, Counter())
    n = len(per_case)

    def mean(key: str) -> float:
        return round(total[key] / n, 1)

    return {
        "cases_sampled": n,
        "events": mean("EVENTS"),
        "history_bytes": mean("HISTORY_BYTES"),
        "workflow_tasks_completed": mean("WORKFLOW_TASK_COMPLETED"),
        "activities": mean("ACTIVITY_TASK_SCHEDULED"),
        "local_activities": mean("MARKER_RECORDED"),
        "updates": mean("WORKFLOW_EXECUTION_UPDATE_ACCEPTED"),
        "search_attribute_upserts": mean("UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"),
        "timers": mean("TIMER_STARTED"),
        "workflow_task_timeouts": mean("WORKFLOW_TASK_TIMED_OUT"),
        "workflow_task_timeouts_by_type": {
            k.removeprefix("WFT_TIMEOUT_").lower(): mean(k)
            for k in sorted(total)
            if k.startswith("WFT_TIMEOUT_")
        },
        "workflow_task_failures": mean("WORKFLOW_TASK_FAILED"),
        "cases_with_a_timed_out_task": sum(1 for c in per_case if c["WORKFLOW_TASK_TIMED_OUT"]),
    }


# --------------------------------------------------------------------------- the benchmark


def sql_only_datamap(var: Path) -> Path:
    """The demo data map with its two SQL systems: the shape measured since the engine issue.
    (The demo's CCTV is searched by a person, who would have to answer for every case, and the
    recordings store adds a second search wave: both are measured by their own tests.)"""
    import yaml

    document = yaml.safe_load((Path(__file__).resolve().parent.parent / "demo" / "dsar.yaml").read_text())
    document["systems"] = {k: v for k, v in document["systems"].items() if v["connector"] == "sql"}
    document["verification"] = {"automatic": False}  # the robot verifies, as an operator would
    var.mkdir(parents=True, exist_ok=True)
    path = var / "bench-datamap.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def new_stack(a: argparse.Namespace, var: Path) -> Stack:
    ports = Ports(temporal=free_port(), ui=free_port(), http=free_port(), s3=free_port())
    extra = {"DSAR_DATAMAP": str(sql_only_datamap(var))}
    extra.update(kv.split("=", 1) for kv in a.stack_env)
    # no demo mailbox: cases arrive through the API here
    return Stack(var=var, ports=ports, ui=False, extra_env=extra, workers=a.workers, mailbox=False)


def start_stack(stack: Stack) -> None:
    """Seed the demo company, then start the dev server, the worker and the web app."""
    _seed(stack)
    t = time.monotonic()
    stack.start()
    ports, var = stack.ports, stack.var
    log(
        f"stack up in {time.monotonic() - t:.1f}s: temporal :{ports.temporal}, http :{ports.http}, "
        f"pids {', '.join(f'{k}={p.pid}' for k, p in stack.procs.items())}, var {var}"
    )


async def wait_healthy(http: httpx.AsyncClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            r = await http.get("/healthz")
            if r.status_code == 200 and r.json().get("temporal"):
                return
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as e:
            last = repr(e)
        await asyncio.sleep(0.25)
    raise RuntimeError(f"the HTTP app is not healthy after {timeout:.0f}s: {last}")


def tokens(a: argparse.Namespace, var: Path) -> tuple[str, str]:
    """(operator, reviewer) tokens: --token for both, or minted with the stack's JWT secret."""
    if a.token:
        return a.token, a.token
    settings = Settings(var_dir=var, auth_mode="dev")
    return (
        mint_token(settings, "bench-operator", ["operator"]),
        mint_token(settings, "bench-reviewer", ["reviewer"]),
    )


async def bench(a: argparse.Namespace, stack: Stack | None, url: str, var: Path) -> dict[str, Any]:
    operator, reviewer = tokens(a, var)
    conns = a.concurrency + 3  # + one queue read per stage
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
            check=stack.check if stack else None,
        )
        pids = {name: p.pid for name, p in stack.procs.items()} if stack else {}
        pids["bench"] = os.getpid()
        cpu0 = {k: proc_cpu_seconds(p) for k, p in pids.items()}
        busy0 = machine_busy_seconds()
        wall0 = time.perf_counter()
        log(f"run {robot.run_id}: submitting {a.n} access requests against {url}")
        all_done = await robot.run()
        elapsed = time.perf_counter() - wall0
        cpu = {k: round(proc_cpu_seconds(p) - cpu0[k], 2) for k, p in pids.items()}
        workers = [k for k in cpu if k.startswith("worker-")]
        if len(workers) > 1:
            cpu["workers"] = round(sum(cpu.pop(k) for k in workers), 2)
        busy = machine_busy_seconds() - busy0

    completed = len(robot.responded)
    latencies = [robot.responded[r] - robot.issued[r] for r in robot.responded]
    from_accepted = [robot.responded[r] - robot.accepted[r] for r in robot.responded]
    makespan = (max(robot.responded.values()) - robot.t0) if robot.responded else elapsed
    lat = summary_s(latencies)
    result: dict[str, Any] = {
        "n": a.n,
        "completed": completed,
        "per_s": round(completed / makespan, 2) if completed and makespan > 0 else 0.0,
        "p50_s": lat.get("p50"),
        "p95_s": lat.get("p95"),
        "failed": a.n - completed,
        "failed_submits": robot.failed_submits,
        "timed_out": not all_done,
        "makespan_s": round(makespan, 2),
        "submit_phase_s": round(max(robot.accepted.values()) - robot.t0, 2) if robot.accepted else None,
        "latency_s": lat,
        "latency_from_accepted_s": summary_s(from_accepted),
        "submit_call_s": summary_s(robot.accepted[r] - robot.issued[r] for r in robot.accepted),
        "latency_register_s": summary_s(
            robot.responded_wall[r] - robot.issued_wall[r] for r in robot.responded_wall
        ),
        "decisions": {
            kind: {
                "cases": len(robot.sends[kind]),
                "accepted": len(robot.accepted_decisions[kind]),
                "sent": sum(robot.sends[kind].values()),
                "refused_409": robot.counts[f"{kind}_409"],
                "resent": robot.counts[f"{kind}_resent"],
            }
            for kind in ("verify", "approve")
        },
        "refusals": dict(robot.refusals.most_common(5)),
        "http": {k: v for k, v in sorted(robot.counts.items()) if k.startswith(("http_", "transport"))},
        "queue_reads": {"count": len(robot.poll_times), "s": summary_s(robot.poll_times)},
        "responded_reads": {"count": len(robot.done_poll_times), "s": summary_s(robot.done_poll_times)},
        "errors": robot.counts["errors"],
        "errors_sample": robot.errors,
        "cpu_s": cpu,
        "cpu_ms_per_case": {k: round(1000 * v / completed, 1) for k, v in cpu.items()} if completed else {},
        "other_processes_cpu_s": round(max(0.0, busy - sum(cpu.values())), 2) if stack else None,
        "machine_cpu_utilization": round(busy / (elapsed * (os.cpu_count() or 1)), 2) if elapsed else None,
    }
    temporal = f"127.0.0.1:{stack.ports.temporal}" if stack else a.temporal
    if temporal and robot.responded and a.history_sample > 0:
        done = sorted(robot.responded, key=lambda r: robot.issued[r])
        step = max(1, len(done) // a.history_sample)
        try:
            result["case_history"] = await asyncio.wait_for(
                history_shape(temporal, done[::step][: a.history_sample]), timeout=120
            )
        except Exception as e:  # only a detail of the report
            result["case_history"] = {"error": f"{type(e).__name__}: {e}"[:200]}
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=500, help="access requests to submit (default 500)")
    p.add_argument(
        "--url",
        default=None,
        help="a running stack's HTTP app, e.g. http://127.0.0.1:8000 (default: start a stack)",
    )
    p.add_argument(
        "--token", default=None, help="with --url: a token holding operator and reviewer (or admin) roles"
    )
    p.add_argument(
        "--var",
        type=Path,
        default=Path("var"),
        help="with --url and no --token: the stack's var dir, whose JWT secret signs the robot's tokens",
    )
    p.add_argument(
        "--temporal",
        default=None,
        help="with --url: the Temporal address, to report the per-case history shape",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=Settings().worker_processes,
        help="worker processes of the stack it starts (default: DSAR_WORKER_PROCESSES, else one per "
        "core up to four, as `make run`)",
    )
    p.add_argument("--concurrency", type=int, default=64, help="HTTP calls in flight (default 64)")
    p.add_argument(
        "--poll",
        type=float,
        default=0.5,
        help="seconds between reads of the verifying and reviewing queues (default 0.5: twice a "
        "second, far quicker than a team at a console, without the robot loading the machine it "
        "measures)",
    )
    p.add_argument(
        "--done-poll",
        type=float,
        default=1.0,
        help="seconds between reads of the (growing) responded list (default 1.0)",
    )
    p.add_argument("--deadline", type=float, default=600.0, help="give up after N seconds (default 600)")
    p.add_argument("--nice", type=int, default=5, help="niceness for the bench and its stack (default 5)")
    p.add_argument(
        "--stack-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the stack it starts (e.g. DSAR_LOG_LEVEL=WARNING); repeatable",
    )
    p.add_argument(
        "--history-sample",
        type=int,
        default=100,
        help="after the run, read this many cases' Temporal histories for the per-case shape (0: skip)",
    )
    p.add_argument("--keep-var", action="store_true", help="keep the temporary var dir (logs, databases)")
    a = p.parse_args(argv)
    if a.n < 1 or a.concurrency < 1 or a.poll <= 0 or a.done_poll <= 0:
        p.error("--n and --concurrency must be positive, --poll and --done-poll above zero")
    if any("=" not in kv for kv in a.stack_env):
        p.error("--stack-env takes KEY=VALUE")
    return a


async def _main(a: argparse.Namespace, stack: Stack | None, url: str, var: Path) -> dict[str, Any]:
    # SIGTERM/SIGINT cancel the benchmark at an await point; main()'s finally stops the stack.
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    return await bench(a, stack, url, var)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    a = parse_args()
    if a.nice:
        os.nice(a.nice)  # inherited by the dev server, the worker and the web app
    signal.signal(signal.SIGTERM, _interrupt)  # while the stack starts: clean up like Ctrl-C
    import temporalio

    env = {
        "temporalio": temporalio.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    stack: Stack | None = None
    var = a.var
    own_var: Path | None = None
    result: dict[str, Any] | None = None
    interrupted = False
    try:
        if a.url:
            url = a.url.rstrip("/")
        else:
            own_var = Path(tempfile.mkdtemp(prefix="dsar-bench-"))
            var = own_var
            stack = new_stack(a, var)
            start_stack(stack)  # on failure, the finally-block stops whatever did start
            url = f"http://127.0.0.1:{stack.ports.http}"
        result = asyncio.run(_main(a, stack, url, var))
    except (KeyboardInterrupt, asyncio.CancelledError):
        interrupted = True
    except RuntimeError as e:
        log(f"failed: {e}")
        return 1
    finally:
        # Finish cleaning up even if a second signal arrives.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
            log("stopped the web app, the workers and the Temporal dev server it had started")
        if own_var is not None:
            if a.keep_var:
                log(f"kept {own_var}")
            else:
                shutil.rmtree(own_var, ignore_errors=True)
    if interrupted or result is None:
        log("interrupted")
        sys.stderr.flush()
        os._exit(130)  # the SDK runtime may hold cancelled calls: do not wait for them
    env["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["config"] = {
        "mode": "url" if a.url else "own_stack",
        "worker_processes": None if a.url else a.workers,
        "concurrency": a.concurrency,
        "poll_s": a.poll,
        "done_poll_s": a.done_poll,
        "deadline_s": a.deadline,
        "nice": a.nice,
        "stack_env": a.stack_env,
        "request": "access/UK_GDPR",
        "persistence": "sqlite-wal" if not a.url else "as running",
    }
    result["env"] = env
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
