#!/usr/bin/env python3
"""The engine's floor: what one durable case costs before dsar does any of its work.

Issue 20 asks for a multiple of Fides' throughput on two cores. Every dsar case is one Temporal
workflow with its steps in activities, on the dev server that ``make run`` starts; this measures
what that much costs on this machine, with every step's body taken out:

- ``minimal``: a workflow that runs one ordinary activity which does nothing and returns (the
  least any durable case can be: a workflow and one step outside it);
- ``dsar``: the happy path of an access request worked ahead, as its history shows it (a timer
  started, two local activities, search-attribute upserts and two patches, one ordinary
  activity, three local activities, the timer cancelled), every body a no-op; the case then
  completes where dsar's rests on a timer until its download link expires;
- ``letters`` and ``published``: the minimal case plus only dsar's five local activities, or
  plus only its upserts and patches, to tell what each part of the shape costs.

Both run with dsar's own pieces: the dev server's command (``dsar.devstack.temporal_command``:
SQLite in WAL mode), dsar's data converter (AES-GCM codec, encoded failure attributes), and the
worker's settings (unsandboxed, sync activities on a 32-thread pool, 16 workflow tasks), in
``--workers`` worker processes. N cases are started at once, as the side-by-side run's burst.
The CPU counted is the dev server's and the workers' (the starting client's is not, as the
side-by-side run does not count its robot).

Prints ONE JSON line per shape: n, per_min, CPU-seconds per case (server, workers, total), and
a calibration: the CPU-seconds of a fixed pure-Python loop in this process, read after the
shape's cases. A CPU-second is not a fixed amount of work on a shared 2-core machine: on one
machine of this kind the loop took anywhere from 0.4 to 1.7 s in one afternoon, slower while a
benchmark ran but also at moments when nothing else did; compare figures of one session, as
ratios.

    python bench/floor.py --n 200                       # all four shapes, 2 workers
    python bench/floor.py --n 200 --shape minimal
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.throughput import log, proc_cpu_seconds, summary_s
from dsar.codec import data_converter
from dsar.devstack import Ports, free_port, port_in_use, temporal_command
from dsar.settings import Settings
from workflows.rules import BREACHED_ATTR, DUE_ATTR, REGIME_ATTR, STAGE_ATTR, TYPE_ATTR

QUEUE = "floor"
NO_RETRY = RetryPolicy(maximum_attempts=1)


@dataclass
class Step:
    """A step's input and result: about the size of dsar's small ones (a reference, a kind)."""

    reference: str
    kind: str
    note: str = ""


@activity.defn
def nothing(step: Step) -> Step:
    """The body of every step: returns at once."""
    return Step(step.reference, step.kind, "done")


def _attributes(stage: str) -> list[object]:
    due = datetime(2027, 1, 6, tzinfo=UTC)
    return [
        STAGE_ATTR.value_set(stage),
        REGIME_ATTR.value_set("UK_GDPR"),
        TYPE_ATTR.value_set("access"),
        DUE_ATTR.value_set(due),
        BREACHED_ATTR.value_set(False),
    ]


@dataclass
class Shape:
    """Which of dsar's parts a case has beside its one ordinary activity: none is the least a
    durable case can be, all of them dsar's happy path of an access request worked ahead."""

    locals: bool  # dsar's five local activities (letters, register writes)
    publish: bool  # its search-attribute upserts and two patches
    clock: bool  # the statutory clock's timer, started and cancelled


SHAPES = {
    "minimal": Shape(locals=False, publish=False, clock=False),
    "letters": Shape(locals=True, publish=False, clock=False),
    "published": Shape(locals=False, publish=True, clock=False),
    "dsar": Shape(locals=True, publish=True, clock=True),
}


@workflow.defn(name="FloorCase")
class FloorCase:
    """dsar's happy path of an access request worked ahead, as its history shows it, every body
    a no-op, with only the parts its ``Shape`` names."""

    @workflow.run
    async def run(self, reference: str, shape: Shape) -> str:
        async def local(kind: str) -> None:
            if shape.locals:
                await workflow.execute_local_activity(
                    nothing,
                    Step(reference, kind),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=NO_RETRY,
                )

        def publish(stage: str, patch: str = "") -> None:
            if shape.publish:
                if patch:
                    workflow.patched(patch)
                workflow.upsert_search_attributes(_attributes(stage))  # type: ignore[arg-type]

        clock = asyncio.ensure_future(workflow.sleep(timedelta(days=30))) if shape.clock else None
        await local("acknowledgement letter")
        publish("verifying", "floor-one")
        await local("register")
        await workflow.execute_activity(
            nothing,
            Step(reference, "work ahead"),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=NO_RETRY,
        )
        publish("fulfilling", "floor-two")
        await local("answer letter")
        await local("password letter")
        publish("responded")
        if clock is not None:
            clock.cancel()
        await local("register")
        return "responded"


def calibration_s() -> float:
    """CPU-seconds of a fixed pure-Python loop: how fast this machine is today."""
    t = time.process_time()
    total = 0
    for i in range(10_000_000):
        total += i
    return round(time.process_time() - t, 3)


async def serve(address: str, var: Path) -> None:
    """One worker process, configured as ``worker.build_workers`` configures dsar's."""
    settings = Settings(var_dir=var)
    client = await Client.connect(address, data_converter=data_converter(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[FloorCase],
        activities=[nothing],
        activity_executor=ThreadPoolExecutor(max_workers=settings.worker_activity_threads),
        max_concurrent_activities=settings.worker_activity_threads,
        max_concurrent_local_activities=settings.worker_activity_threads,
        max_concurrent_workflow_tasks=settings.worker_workflow_tasks,
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await stop.wait()


async def measure(
    a: argparse.Namespace, shape: str, client: Client, pids: dict[str, int]
) -> dict[str, object]:
    run_id = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(64)
    latency: list[float] = []
    cpu0 = {k: proc_cpu_seconds(p) for k, p in pids.items()}
    t0 = time.monotonic()

    async def one(i: int) -> None:
        t = time.monotonic()
        async with gate:
            handle = await client.start_workflow(
                FloorCase.run,
                args=[f"FLOOR-{run_id}-{i}", SHAPES[shape]],
                id=f"floor-{run_id}-{i}",
                task_queue=QUEUE,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(STAGE_ATTR, "received"), SearchAttributePair(BREACHED_ATTR, False)]
                ),
            )
        await handle.result()
        latency.append(time.monotonic() - t)

    await asyncio.gather(*(one(i) for i in range(a.n)))
    makespan = time.monotonic() - t0
    cpu = {k: round(proc_cpu_seconds(p) - cpu0[k], 2) for k, p in pids.items()}
    workers = round(sum(v for k, v in cpu.items() if k.startswith("worker")), 2)
    per_case = {"server": round(cpu["temporal"] / a.n, 4), "workers": round(workers / a.n, 4)}
    return {
        "shape": shape,
        "n": a.n,
        "per_min": round(60 * a.n / makespan, 1),
        "makespan_s": round(makespan, 2),
        "latency_s": summary_s(latency),
        "cpu_s_per_case": {**per_case, "total": round(per_case["server"] + per_case["workers"], 4)},
        "workers": a.workers,
        "calibration_loop_cpu_s": calibration_s(),
    }


async def run(
    a: argparse.Namespace, var: Path, ports: Ports, pids: dict[str, int]
) -> list[dict[str, object]]:
    address = f"127.0.0.1:{ports.temporal}"
    client = await Client.connect(address, data_converter=data_converter(Settings(var_dir=var)))
    results = []
    for shape in a.shape or list(SHAPES):
        # warm-up (the first waits for the workers to poll): every worker has run the shape
        # before the CPU is read
        await measure(argparse.Namespace(**{**vars(a), "n": 4 * a.workers}), shape, client, pids)
        await asyncio.sleep(1)
        results.append(await measure(a, shape, client, pids))
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="cases started at once (default 200)")
    p.add_argument(
        "--workers", type=int, default=2, help="worker processes (default 2, as the side-by-side run)"
    )
    p.add_argument("--shape", action="append", choices=sorted(SHAPES), help="repeatable (default: all four)")
    p.add_argument("--nice", type=int, default=5, help="niceness for the bench and its processes (default 5)")
    p.add_argument("--_serve", nargs=2, metavar=("ADDRESS", "VAR"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a._serve:
        asyncio.run(serve(a._serve[0], Path(a._serve[1])))
        return 0
    os.nice(a.nice)
    var = Path(tempfile.mkdtemp(prefix="dsar-floor-"))
    ports = Ports(temporal=free_port(), ui=free_port(), http=free_port(), s3=free_port())
    procs = {"temporal": subprocess.Popen(temporal_command(var, ports, ui=False), stdout=subprocess.DEVNULL)}
    try:
        _ = Settings(var_dir=var).codec_key_bytes  # written once, before the workers read it
        deadline = time.monotonic() + 60
        while not port_in_use(ports.temporal):
            if time.monotonic() > deadline:
                raise RuntimeError("the dev server did not start within 60 s")
            time.sleep(0.2)
        time.sleep(1)  # the namespace and search attributes are registered just after the port opens
        address = f"127.0.0.1:{ports.temporal}"
        for i in range(a.workers):
            procs[f"worker-{i + 1}"] = subprocess.Popen(
                [sys.executable, __file__, "--_serve", address, str(var)], stdout=subprocess.DEVNULL
            )
        log(f"floor: dev server and {a.workers} workers started, var {var}")
        for result in asyncio.run(run(a, var, ports, {k: v.pid for k, v in procs.items()})):
            print(json.dumps(result), flush=True)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(var, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
