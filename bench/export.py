#!/usr/bin/env python3
"""The access package for a subject with many rows: time and peak memory of building it.

Seeds the demo company (``demo/seed.py``) into a throwaway database, PostgreSQL (default: a
database ``dsar_bench_export_<random>`` on 127.0.0.1:5432, dropped afterwards) or a SQLite
file, and gives Margaret Ellis (customer 1) ``--rows`` more rows: half orders, half payments
for them. The search stage's work is then done as the engine does it: the SQL connector
collects her records from both demo databases into the encrypted blob store (a
``LocalBlobStore`` in a temporary directory, random key), and the exemption rules decide every
record into a decisions file (one line per record, as the review stage writes it).

The package itself is built in a fresh child process (``dsar.package.build_package``: JSON
and CSV per entity, report.html, manifest.json, AES-256 ZIP streamed into the blob store), so
that the peak RSS reported (``resource.getrusage``) is the build's, not the seeding's.

Prints ONE JSON line on stdout (diagnostics on stderr):
``{"rows", "seconds", "peak_rss_mb", "rss_before_build_mb", "package_bytes", "files", "db",
"encryption"}``.

Examples:
  python bench/export.py                       # 100,000 rows, PostgreSQL
  python bench/export.py --rows 20000 --db sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

REFERENCE = "DSR-2026-000100"
RECEIVED = date(2026, 4, 1)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed(crm_url: str, marketing_url: str, rows: int) -> None:
    """The demo company, and ``rows`` more rows for customer 1: ``rows // 2`` orders, each paid."""
    from sqlalchemy import create_engine

    from demo.seed import orders, payments, seed_demo

    seed_demo(crm_url, marketing_url)
    engine = create_engine(crm_url)
    start = datetime(2020, 1, 1, 9, 0)
    n_orders = rows // 2
    try:
        with engine.begin() as conn:
            for first in range(0, n_orders, 10_000):
                ids = range(1_000_000 + first, 1_000_000 + min(first + 10_000, n_orders))
                conn.execute(
                    orders.insert(),
                    [
                        {
                            "id": i,
                            "customer_id": 1,
                            "ordered_at": start + timedelta(minutes=i % 500_000),
                            "product": "Parcel Standard, 2-3 days",
                            "total": Decimal("3.99"),
                            "status": "paid",
                            "delivery_address": "12 Orchard Lane, Coventry",
                        }
                        for i in ids
                    ],
                )
                conn.execute(
                    payments.insert(),
                    [
                        {
                            "id": i,
                            "order_id": i,
                            "paid_at": start + timedelta(minutes=i % 500_000, seconds=30),
                            "amount": Decimal("3.99"),
                            "card_brand": "Visa",
                            "card_last4": "6054",
                        }
                        for i in ids
                    ],
                )
    finally:
        engine.dispose()


def search_and_review(work: Path, crm_url: str, marketing_url: str) -> dict[str, Any]:
    """What the search and review stages leave: collected blobs and a decisions file."""
    from connectors import connector_for
    from connectors.sql import dispose_engines
    from demo.seed import MARGARET
    from dsar.blobs import LocalBlobStore
    from dsar.datamap import DataMap
    from dsar.exemptions import CaseFacts, evaluate_stream
    from dsar.model import Regime, RequestType

    datamap = DataMap.load(Path(__file__).resolve().parent.parent / "demo" / "dsar.yaml")
    key = secrets.token_bytes(32)
    blobs = LocalBlobStore(work / "blobs", key)
    case = CaseFacts(Regime.UK_GDPR, RequestType.ACCESS, RECEIVED, REFERENCE)
    systems: list[dict[str, Any]] = []
    with blobs.open_writer(REFERENCE, "review-decisions.jsonl") as decisions:
        for name, url in (("crm", crm_url), ("marketing", marketing_url)):
            env = f"DSAR_BENCH_EXPORT_{name.upper()}_URL"
            os.environ[env] = url
            system = replace(datamap.system(name), url_env=env)
            with blobs.open_writer(REFERENCE, f"{name}.jsonl") as out:
                collected = connector_for(system).collect(
                    {"email": MARGARET["email"], "phone": MARGARET["phone"]}, out
                )
            systems.append(
                {"system": name, "status": "found", "records": collected.records, "blob_ref": out.ref}
            )
            lines = ((item["entity"], item["record"]) for item in _items(blobs, out.ref))
            for decision in evaluate_stream(case, datamap, name, lines):
                decisions.write(decision.dump())
    dispose_engines()
    return {"key": key.hex(), "root": str(work / "blobs"), "systems": systems, "decisions": decisions.ref}


def _items(blobs: Any, ref: str) -> Any:
    pending = b""
    for chunk in blobs.open_reader(ref):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if pending.strip():
        yield json.loads(pending)


def child(spec_path: str) -> None:
    """Build the package; print what it cost."""
    from dsar.blobs import LocalBlobStore
    from dsar.datamap import DataMap
    from dsar.exemptions import CaseFacts
    from dsar.model import Regime, RequestType, SystemResult
    from dsar.package import build_package

    spec = json.loads(Path(spec_path).read_text())
    datamap = DataMap.load(Path(__file__).resolve().parent.parent / "demo" / "dsar.yaml")
    blobs = LocalBlobStore(Path(spec["root"]), bytes.fromhex(spec["key"]))
    systems = [SystemResult(**s) for s in spec["systems"]]
    case = CaseFacts(Regime.UK_GDPR, RequestType.ACCESS, RECEIVED, REFERENCE)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began = time.perf_counter()
    built = build_package(blobs, datamap, case, systems, spec["decisions"], encryption=spec["encryption"])
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rows": built.records + built.withheld,
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(peak, 1),
                "rss_before_build_mb": round(before, 1),
                "package_bytes": built.size,
                "files": built.files,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=100_000, help="extra rows for the subject (default 100,000)"
    )
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--encryption", choices=["aes", "none"], default="aes")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    with tempfile.TemporaryDirectory(prefix="dsar-bench-export-") as tmp:
        work = Path(tmp)
        dropped: list[str] = []
        admin = None
        if args.db == "postgres":
            from sqlalchemy import create_engine

            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            names = [f"dsar_bench_export_{n}_{uuid.uuid4().hex[:8]}" for n in ("crm", "marketing")]
            with admin.connect() as conn:
                for name in names:
                    conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            dropped = names
            crm_url, marketing_url = (f"postgresql+psycopg://postgres@127.0.0.1:5432/{n}" for n in names)
        else:
            crm_url, marketing_url = f"sqlite:///{work / 'crm.db'}", f"sqlite:///{work / 'marketing.db'}"
        try:
            began = time.perf_counter()
            seed(crm_url, marketing_url, args.rows)
            log(f"seeded {args.rows:,} extra rows in {time.perf_counter() - began:.1f}s ({args.db})")
            began = time.perf_counter()
            spec = search_and_review(work, crm_url, marketing_url)
            spec["encryption"] = args.encryption
            log(f"collected and decided in {time.perf_counter() - began:.1f}s")
            spec_path = work / "spec.json"
            spec_path.write_text(json.dumps(spec))
            answer = subprocess.run(
                [sys.executable, __file__, "--child", str(spec_path)],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(answer.stdout.strip().splitlines()[-1])
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    for name in dropped:
                        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.dispose()
    print(json.dumps({**result, "db": args.db, "encryption": args.encryption}))


if __name__ == "__main__":
    main()
