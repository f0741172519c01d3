#!/usr/bin/env python3
"""Latency of dsar at a steady rate: access requests submitted at ``--rate`` per second.

Where ``bench/throughput.py`` submits a burst and measures how fast the stack works it off,
this one asks what a person waits for on a stack that keeps up: one access request every
1/``--rate`` seconds for ``--duration`` seconds, each one a request that needs nobody. It runs
on the side-by-side benchmark's shop (``../shared/bench/side_by_side/shop.yaml`` over its
PostgreSQL ``shop`` database, which that harness seeds: run it first), a distinct customer per
request: name, email and phone agree on one customer, so identity is verified automatically,
and no exemption applies, so the review is approved automatically
(``DSAR_REVIEW_AUTO_APPROVE=true``). No robot decides anything: a case left waiting for a
person counts as not responded. (The demo's Margaret would wait for a reviewer: her records
carry exemptions.)

Latency of a case = the register row's ``updated_at`` when the worker wrote "responded" minus
the moment its submission was issued (both clocks of this machine), read from the register's
database every ``--poll`` seconds for the cases still open: no polling period in the figure.
Arrivals are open loop: a slow stack does not slow them.

Prints ONE JSON line: n, completed, p50_s, p95_s, max_s, then details (the achieved rate, the
intake call, CPU seconds per process, config). Starts and stops its own stack (Temporal dev
server, workers, web app; free loopback ports, a temporary var dir), like bench/throughput.py.

    python bench/paced.py --rate 5 --duration 600      # the issue's run: 3,000 requests, 10 min
    python bench/paced.py --rate 2 --duration 30       # quick check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from bench.throughput import (
    log,
    machine_busy_seconds,
    proc_cpu_seconds,
    start_stack,
    summary_s,
    wait_healthy,
)
from console.auth import mint_token
from dsar.devstack import Ports, Stack, free_port
from dsar.settings import Settings

SHOP_URL = "postgresql+psycopg://shop:shop@127.0.0.1:5432/shop"
SHOP_DATAMAP = Path(__file__).resolve().parent.parent.parent / "shared/bench/side_by_side/shop.yaml"


def subjects(url: str, n: int) -> list[dict[str, str]]:
    """n distinct customers of the shop database, as a person would identify herself."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                sa.text("SELECT name, email, phone FROM customers ORDER BY id LIMIT :n"), {"n": n}
            ).all()
    finally:
        engine.dispose()
    if len(rows) < n:
        raise RuntimeError(f"the shop database holds {len(rows)} customers, {n} needed")
    return [{"name": r[0], "email": r[1], "phone": r[2]} for r in rows]


def new_stack(a: argparse.Namespace, var: Path) -> Stack:
    """The side-by-side benchmark's shop (``shop.yaml``: automatic verification, one PostgreSQL
    system), reviews approved automatically when no exemption applies."""
    extra = {
        "DSAR_DATAMAP": str(a.datamap),
        "DSAR_SHOP_URL": a.shop_url,
        "DSAR_REVIEW_AUTO_APPROVE": "true",
        "DSAR_LOG_LEVEL": "WARNING",
    }
    extra.update(kv.split("=", 1) for kv in a.stack_env)
    ports = Ports(temporal=free_port(), ui=free_port(), http=free_port(), s3=free_port())
    return Stack(var=var, ports=ports, ui=False, extra_env=extra, workers=a.workers, mailbox=False)


async def run(a: argparse.Namespace, stack: Stack, var: Path) -> dict[str, Any]:
    settings = Settings(var_dir=var, auth_mode="dev")
    operator = {"Authorization": f"Bearer {mint_token(settings, 'bench-operator', ['operator'])}"}
    register = sa.create_engine(settings.resolved_database_url)
    run_id = uuid.uuid4().hex[:8]
    n = round(a.rate * a.duration)
    people = subjects(a.shop_url, n)
    issued: dict[str, float] = {}  # ref -> submission issued (Unix time)
    accepted: dict[str, float] = {}
    responded: dict[str, float] = {}  # ref -> register updated_at at "responded"
    stages: dict[str, str] = {}
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.ports.http}", timeout=60) as http:
        await wait_healthy(http)

        async def submit(i: int) -> None:
            body = {
                "type": "access",
                "regime": "UK_GDPR",
                "identifiers": people[i],
                "channel": "api",
                "idempotency_key": f"paced-{run_id}-{i}",
            }
            t = time.time()
            try:
                r = await http.post("/api/v1/requests", json=body, headers=operator)
            except httpx.HTTPError as e:
                errors.append(f"submit {i}: {type(e).__name__}: {e}"[:200])
                return
            if r.status_code not in (200, 201):
                errors.append(f"submit {i}: {r.status_code} {r.text[:150]}")
                return
            ref = str(r.json()["reference"])
            issued[ref], accepted[ref] = t, time.time()

        async def watch() -> None:
            """Every ``--poll`` seconds: the register rows of the cases still open."""
            query = sa.text("SELECT reference, stage, updated_at FROM case_register WHERE reference IN :refs")
            query = query.bindparams(sa.bindparam("refs", expanding=True))
            while True:
                pending = [r for r in issued if r not in responded]
                if pending:
                    with register.connect() as c:
                        rows = c.execute(query, {"refs": pending}).all()
                    for ref, stage, updated in rows:
                        stages[ref] = stage
                        if stage in ("responded", "closed"):
                            when = (
                                updated if isinstance(updated, datetime) else datetime.fromisoformat(updated)
                            )
                            if when.tzinfo is None:  # the register stores UTC
                                when = when.replace(tzinfo=UTC)
                            responded[ref] = when.timestamp()
                await asyncio.sleep(a.poll)

        pids = {name: p.pid for name, p in stack.procs.items()}
        pids["bench"] = os.getpid()
        cpu0 = {k: proc_cpu_seconds(p) for k, p in pids.items()}
        busy0 = machine_busy_seconds()
        watcher = asyncio.create_task(watch())
        tasks = []
        t0 = time.monotonic()
        log(f"run {run_id}: {n} access requests at {a.rate}/s for {a.duration:.0f} s")
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i / a.rate - time.monotonic()))
            tasks.append(asyncio.create_task(submit(i)))
        await asyncio.gather(*tasks)
        submitted_in = time.monotonic() - t0
        deadline = time.monotonic() + a.drain
        while len(responded) < len(issued) and time.monotonic() < deadline:
            await asyncio.sleep(a.poll)
        elapsed = time.monotonic() - t0
        watcher.cancel()
        cpu = {k: round(proc_cpu_seconds(p) - cpu0[k], 2) for k, p in pids.items()}
        workers = [k for k in cpu if k.startswith("worker-")]
        cpu["workers"] = round(sum(cpu.pop(k) for k in workers), 2)
        busy = machine_busy_seconds() - busy0
    register.dispose()
    latency = sorted(responded[r] - issued[r] for r in responded)
    lat = summary_s(latency)
    done = len(responded)
    waiting = sorted({stages.get(r, "?") for r in issued if r not in responded})
    return {
        "n": n,
        "completed": done,
        "p50_s": lat.get("p50"),
        "p95_s": lat.get("p95"),
        "max_s": round(latency[-1], 3) if latency else None,
        "latency_s": lat,
        "submitted": len(issued),
        "failed_submits": n - len(issued),
        "not_responded": len(issued) - done,
        "not_responded_stages": waiting,
        "achieved_rate_per_s": round(len(issued) / submitted_in, 2) if submitted_in else None,
        "submit_call_s": summary_s(accepted[r] - issued[r] for r in accepted),
        "errors_sample": errors[:5],
        "cpu_s": cpu,
        "cpu_ms_per_case": {k: round(1000 * v / done, 1) for k, v in cpu.items()} if done else {},
        "other_processes_cpu_s": round(max(0.0, busy - sum(cpu.values())), 2),
        "machine_cpu_utilization": round(busy / (elapsed * (os.cpu_count() or 1)), 2),
        "config": {
            "rate_per_s": a.rate,
            "duration_s": a.duration,
            "workers": a.workers,
            "poll_s": a.poll,
            "nice": a.nice,
            "stack_env": a.stack_env,
            "request": "access/UK_GDPR, verified and approved automatically",
            "datamap": str(a.datamap),
        },
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=5.0, help="requests per second (default 5)")
    p.add_argument("--duration", type=float, default=600.0, help="seconds of arrivals (default 600)")
    p.add_argument(
        "--drain", type=float, default=120.0, help="seconds to wait for the last cases (default 120)"
    )
    p.add_argument(
        "--poll", type=float, default=0.25, help="seconds between reads of the register (default 0.25)"
    )
    p.add_argument("--datamap", type=Path, default=SHOP_DATAMAP, help="the data map (default: shop.yaml)")
    p.add_argument("--shop-url", default=SHOP_URL, help="the shop database (seeded by the side-by-side run)")
    p.add_argument("--workers", type=int, default=Settings().worker_processes, help="worker processes")
    p.add_argument("--nice", type=int, default=5, help="niceness for the bench and its stack (default 5)")
    p.add_argument("--stack-env", action="append", default=[], metavar="KEY=VALUE", help="repeatable")
    p.add_argument("--keep-var", action="store_true", help="keep the temporary var dir")
    a = p.parse_args(argv)
    if a.rate <= 0 or a.duration <= 0 or a.poll <= 0:
        p.error("--rate, --duration and --poll must be above zero")
    return a


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    a = parse_args()
    if a.nice:
        os.nice(a.nice)
    signal.signal(signal.SIGTERM, _interrupt)
    var = Path(tempfile.mkdtemp(prefix="dsar-paced-"))
    stack = new_stack(a, var)
    result = None
    try:
        start_stack(stack)
        result = asyncio.run(run(a, stack, var))
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        log("stopped the stack it had started")
        if a.keep_var:
            log(f"kept {var}")
        else:
            shutil.rmtree(var, ignore_errors=True)
    if result is None:
        return 130
    print(json.dumps(result), flush=True)
    return 0 if result["not_responded"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
