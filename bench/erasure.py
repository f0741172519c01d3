#!/usr/bin/env python3
"""Verified erasure of one subject with ~10,000 rows across three systems.

The demo company (demo/seed.py, demo/recordings.py) with its CRM on PostgreSQL, its marketing
database on MariaDB and its recordings in a versioned bucket on moto's S3 server (the servers
of tests/; fresh, randomly named databases, dropped afterwards; moto started and stopped by
PID). Margaret is given thousands of orders with their parcels, campaign events and call
recordings, so that erasing her touches about ``--rows`` rows and objects.

Then the case runs as fulfilment does (activities/change.py): the search (not timed), the data
map's exemption rules as the review's decisions file (not timed; her recent orders keep their
sales fields for the tax rules, her payments are kept), ``plan_change``, then ``apply_change``
system by system (timed: ``seconds``), then ``verify_change`` system by system (timed apart:
``verify_seconds``), each system searched again and every record checked against the plan.

``rows`` counts what the erasure changed: rows deleted and anonymised, object versions and
lines deleted. Prints ONE JSON line on stdout (diagnostics on stderr)::

    {"rows", "seconds", "rows_per_s", "verify_seconds", "plan_seconds", "systems": {...}}

    python bench/erasure.py                 # 10,000 rows, about 30-60 s on 2 cores
    python bench/erasure.py --rows 2000     # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from sqlalchemy import create_engine, func, select

from connectors.sql import database_url
from demo.recordings import BUCKET, REGION
from demo.seed import campaign_events, orders, parcels
from dsar.model import RequestType
from tests.s3server import S3_ENV, MotoServer

MARGARET_ID = 1


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def grow(crm_url: str, marketing_url: str, s3: object, orders_n: int, events_n: int, audio_n: int) -> None:
    """Give Margaret (customer 1, preferences 1) many more rows and recordings."""
    engine = create_engine(database_url(crm_url))
    start = datetime(2024, 1, 1)
    with engine.begin() as conn:
        first_order = conn.execute(select(func.max(orders.c.id))).scalar_one() + 1
        first_parcel = conn.execute(select(func.max(parcels.c.id))).scalar_one() + 1
        conn.execute(
            orders.insert(),
            [
                {
                    "id": first_order + i,
                    "customer_id": MARGARET_ID,
                    "ordered_at": start + timedelta(minutes=i),
                    "product": "Parcel Standard, 2-3 days",
                    "total": Decimal("3.99"),
                    "status": "paid",
                    "delivery_address": "12 Orchard Lane, Coventry",
                }
                for i in range(orders_n)
            ],
        )
        conn.execute(
            parcels.insert(),
            [
                {
                    "id": first_parcel + i,
                    "order_id": first_order + i,
                    "tracking_number": f"NW{i:010d}GB",
                    "delivered_at": start + timedelta(days=1, minutes=i),
                    "delivered_to": "12 Orchard Lane, Coventry",
                    "signed_by": "Margaret Ellis",
                }
                for i in range(orders_n)
            ],
        )
    engine.dispose()
    engine = create_engine(database_url(marketing_url))
    with engine.begin() as conn:
        first_event = conn.execute(select(func.max(campaign_events.c.id))).scalar_one() + 1
        conn.execute(
            campaign_events.insert(),
            [
                {
                    "id": first_event + i,
                    "preference_id": 1,
                    "campaign": "bench",
                    "event": "sent",
                    "at": start + timedelta(minutes=i),
                }
                for i in range(events_n)
            ],
        )
    engine.dispose()
    for i in range(audio_n):
        s3.put_object(  # type: ignore[attr-defined]
            Bucket=BUCKET, Key=f"recordings/{MARGARET_ID}/b{i:06d}.wav", Body=b"RIFF" + bytes(60)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000, help="rows and objects to erase (about)")
    args = parser.parse_args(argv)
    # 30% orders (anonymised), 30% their parcels (deleted), 30% campaign events, 10% recordings
    orders_n = events_n = int(args.rows * 0.3)
    audio_n = max(0, args.rows - 2 * orders_n - events_n - 30)  # the demo rows she already has

    os.environ.update(S3_ENV)
    from dsar.logs import configure_logging

    configure_logging("WARNING")  # stderr: stdout carries the one JSON line
    from dsar.blobs import dispose_s3_clients, s3_client
    from tests.change_company import HER_REQUEST, open_company

    with ExitStack() as stack:
        server = MotoServer()
        server.start()
        stack.callback(server.stop)
        dispose_s3_clients()
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dsar-bench-erasure-")))
        log("seeding PostgreSQL (crm), MariaDB (marketing) and S3 (recordings) ...")
        company = stack.enter_context(
            open_company("postgresql", tmp, server.endpoint, marketing_backend="mariadb")
        )
        s3 = s3_client(server.endpoint, REGION)
        grow(company.urls["crm"], company.urls["marketing"], s3, orders_n, events_n, audio_n)

        reference = "DSR-2026-900001"
        log("searching and reviewing (not timed) ...")
        results = company.search(reference, HER_REQUEST)
        decisions_ref, _ = company.decide(reference, results, RequestType.ERASURE)
        began = time.perf_counter()
        plan = company.plan(reference, RequestType.ERASURE, HER_REQUEST, results, decisions_ref)
        plan_seconds = time.perf_counter() - began

        systems: dict[str, dict[str, float | int]] = {}
        began = time.perf_counter()
        for system in plan.systems:
            t0 = time.perf_counter()
            applied = company.apply(reference, system, plan)
            systems[system] = {"rows": applied.total, "seconds": round(time.perf_counter() - t0, 3)}
            log(f"  {system}: {applied.total} rows in {systems[system]['seconds']} s")
        seconds = time.perf_counter() - began
        began = time.perf_counter()
        for system in plan.systems:
            t0 = time.perf_counter()
            verified = company.verify(reference, system, plan)
            systems[system]["verify_seconds"] = round(time.perf_counter() - t0, 3)
            systems[system]["records_found_again"] = verified.records
        verify_seconds = time.perf_counter() - began
        rows = sum(int(s["rows"]) for s in systems.values())
        again = sum(company.apply(reference, system, plan).total for system in plan.systems)
        if again:
            log(f"a second run changed {again} rows: erasure is not idempotent")
            return 1
        print(
            json.dumps(
                {
                    "rows": rows,
                    "seconds": round(seconds, 3),
                    "rows_per_s": round(rows / seconds, 1) if seconds else None,
                    "verify_seconds": round(verify_seconds, 3),
                    "plan_seconds": round(plan_seconds, 3),
                    "systems": systems,
                    "backends": {"crm": "postgresql", "marketing": "mariadb", "recordings": "s3 (moto)"},
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
