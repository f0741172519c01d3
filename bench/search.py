#!/usr/bin/env python3
"""Per-subject search on a large CRM: the SQL connector against 1M customers and 5M orders.

Creates a throwaway PostgreSQL database (``dsar_bench_search``, dropped and created again),
creates the demo CRM's tables from ``demo/seed.py``'s metadata (customers and orders filled,
the other tables empty), bulk-loads them with ``INSERT ... SELECT generate_series`` (the rows
are made by the server: nothing crosses the wire), then creates the indexes the data map's
lookups need with ``connectors.sql.create_matching_indexes`` and runs ``VACUUM ANALYZE``.

Then, with the demo data map's ``crm`` system pointed at that database, it measures what the
search activity does per system and subject (``activities/search.py``): a new connector,
``locate`` with three identifiers (email in another case, phone in another format than stored,
postcode without its space), ``strongest_match``, and ``collect`` of the match into a sink that
only counts bytes. Each subject must come back as exactly its own customer record.

Last, one extra customer with 200,000 orders is collected into the real encrypted blob store
(``LocalBlobStore`` in a temporary directory, random key) in a fresh child process, so that
the peak RSS reported is that of the collection, not of this process.

Prints ONE JSON line on stdout (diagnostics on stderr):
``{"customers", "orders", "subjects", "p50_ms", "p95_ms", "peak_rss_mb", "big_subject_rows",
"big_subject_seconds", "big_subject_peak_rss_mb", ...details}``.

Examples:
  python bench/search.py --customers 20000              # quick check, seconds
  python bench/search.py                                # 1M customers, 5M orders, ~75 s
  python bench/search.py --keep                         # reuse the database seeded last time
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import phonenumbers
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, String, create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateTable

from connectors import connector_for
from connectors.sql import create_matching_indexes, database_url, dispose_engines
from demo.seed import CRM, FIRST_NAMES, LAST_NAMES, PRODUCTS, STREETS
from dsar.datamap import DataMap, SystemConfig
from dsar.identity import strongest_match

ROOT = Path(__file__).resolve().parent.parent
URL_ENV = "DSAR_BENCH_CRM_URL"
EXTRA_FIRST = ["Fatima", "Wojciech", "Aoife", "Mohammed", "Olivia", "Jacob", "Emily", "Thomas",
               "Yusuf", "Hannah", "Daniel", "Ellie", "Samuel", "Layla", "Joseph", "Anya", "Callum",
               "Megan"]  # fmt: skip
EXTRA_LAST = ["Clarke", "Lewis", "Robinson", "Jackson", "White", "Harris", "Martin", "Cooper", "Ward",
              "Morris", "King", "Baker", "Ahmed", "Ali", "Begum", "Chen", "Kaur", "O'Brien"]  # fmt: skip
AREAS = ["LS", "M", "BS", "NE", "EH", "CF", "B", "S", "NG", "NR", "CV", "L", "G", "SW", "N", "E", "OX",
         "CB", "BN", "PL", "EX", "YO", "HU", "DE", "LE", "ST", "WV", "BA", "GL", "RG"]  # fmt: skip
TOWNS = ["Leeds", "Manchester", "Bristol", "Newcastle", "Edinburgh", "Cardiff", "Birmingham",
         "Sheffield", "Nottingham", "Norwich", "Coventry", "Liverpool", "Glasgow", "London", "London",
         "London", "Oxford", "Cambridge", "Brighton", "Plymouth", "Exeter", "York", "Hull", "Derby",
         "Leicester", "Stoke", "Wolverhampton", "Bath", "Gloucester", "Reading"]  # fmt: skip
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
BIG_CASE = "BENCH-BIG-1"


def log(msg: str) -> None:
    print(f"[search-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def sql_array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def pick(array: str, index: str) -> str:
    """``array[1 + index mod len]`` (``index`` a non-negative integer expression)."""
    return f"({array})[1 + ({index}) % array_length({array}, 1)]"


# --------------------------------------------------------------------------- seeding


def customers_sql(first: int, last: int) -> str:
    """Customers ``first``..``last``: names from ~50 x ~45 (shared by hundreds each), unique
    emails in mixed case, unique 07 mobile numbers in five formats, households of two sharing
    an address and postcode (and postcodes that collide at random besides)."""
    firsts = sql_array(FIRST_NAMES + EXTRA_FIRST)
    lasts = sql_array(LAST_NAMES + EXTRA_LAST)
    areas, towns, streets = sql_array(AREAS), sql_array(TOWNS), sql_array(STREETS)
    letters = sql_array(list(INWARD_LETTERS))
    # per household (pairs of ids): one hash, sliced into area, district, sector, unit, street
    hh = "(hashint8((g / 2)::bigint)::bigint & 2147483647)"
    postcode = (
        f"{pick(areas, f'{hh} / 7')} || (1 + ({hh} / 211) % 29)::text || ' ' "
        f"|| (({hh} / 6151) % 10)::text || {pick(letters, f'{hh} / 61511')} "
        f"|| {pick(letters, f'{hh} / 1230221')}"
    )
    address = (
        f"(1 + ({hh} / 13) % 240)::text || ' ' || {pick(streets, f'{hh} / 3119')} "
        f"|| ', ' || {pick(towns, f'{hh} / 7')}"
    )
    # a permutation of 0..10^9-1 (3^18 is prime to 10^9): unique, scattered numbers 07xxxxxxxxx
    national = "'07' || lpad(((g::bigint * 387420489 + 104729) % 1000000000)::text, 9, '0')"
    phone = """CASE (g % 5)
            WHEN 0 THEN substr(n.national, 1, 5) || ' ' || substr(n.national, 6)
            WHEN 1 THEN n.national
            WHEN 2 THEN '+44 ' || substr(n.national, 2, 4) || ' ' || substr(n.national, 6)
            WHEN 3 THEN '+44' || substr(n.national, 2)
            ELSE '(' || substr(n.national, 1, 5) || ') ' || substr(n.national, 6, 3) || '-'
                 || substr(n.national, 9)
        END"""
    local = "lower(p.first_name) || '.' || lower(replace(p.last_name, '''', '')) || g::text"
    domain = sql_array(["example.com", "example.net", "example.org", "mail.example.co.uk"])
    email = f"""CASE WHEN random() < 0.75 THEN {local} || '@' || {pick(domain, "g / 3")}
             WHEN random() < 0.8 THEN initcap({local}) || '@' || upper({pick(domain, "g / 3")})
             ELSE ' ' || {local} || '@' || {pick(domain, "g / 3")} END"""
    return f"""
        INSERT INTO customers (id, full_name, email, phone, postcode, address, date_of_birth,
                               account_number, created_at, closed_at{extra_columns("customers")})
        SELECT g, p.first_name || ' ' || p.last_name, {email}, {phone},
               CASE WHEN random() < 0.7 THEN a.postcode ELSE lower(replace(a.postcode, ' ', '')) END,
               a.address,
               date '1940-01-01' + (random() * 365 * 65)::int,
               'NW' || (100000 + g)::text,
               timestamp '2019-01-01 09:00' + random() * interval '1500 days',
               CASE WHEN random() < 0.1 THEN timestamp '2024-06-01' + random() * interval '400 days' END
               {extra_values("customers")}
        FROM generate_series({first}, {last}) AS g
        CROSS JOIN LATERAL (SELECT {pick(firsts, "(hashint4(g)::bigint & 2147483647)")} AS first_name,
                                   {pick(lasts, "(hashint4(g + 7777777)::bigint & 2147483647)")}
                                     AS last_name) AS p
        CROSS JOIN LATERAL (SELECT {national} AS national) AS n
        CROSS JOIN LATERAL (SELECT {postcode} AS postcode, {address} AS address) AS a
    """


def orders_sql(first: int, last: int, customer: str) -> str:
    """Orders ``first``..``last`` of ``customer`` (an SQL expression of ``g``)."""
    products = sql_array([p[0] for p in PRODUCTS])
    prices = "ARRAY[" + ", ".join(str(p[1]) for p in PRODUCTS) + "]::numeric[]"
    statuses = sql_array(["paid", "paid", "paid", "refunded", "cancelled"])
    product = "(hashint4(g)::bigint & 2147483647) % " + str(len(PRODUCTS))
    return f"""
        INSERT INTO orders (id, customer_id, ordered_at, product, total, status, delivery_address
                            {extra_columns("orders")})
        SELECT g, {customer},
               timestamp '2019-06-01 09:00' + random() * interval '2000 days',
               ({products})[1 + {product}], ({prices})[1 + {product}],
               {pick(statuses, "g / 11")},
               (1 + g % 240)::text || ' ' || {pick(sql_array(STREETS), "g / 7")} || ', '
                 || {pick(sql_array(TOWNS), "g / 3")}
               {extra_values("orders")}
        FROM generate_series({first}, {last}) AS g
    """


_GIVEN = {
    "customers": {"id", "full_name", "email", "phone", "postcode", "address", "date_of_birth",
                  "account_number", "created_at", "closed_at"},
    "orders": {"id", "customer_id", "ordered_at", "product", "total", "status", "delivery_address"},
}  # fmt: skip


def _extra(table: str) -> list[tuple[str, str]]:
    """Required columns the demo schema has beyond those filled here (it grows): a plain
    value of their type, so the load keeps working."""
    out = []
    for column in CRM.tables[table].columns:
        if column.name in _GIVEN[table] or column.nullable or column.server_default is not None:
            continue
        kind = column.type
        value = (
            "false" if isinstance(kind, Boolean)
            else "0" if isinstance(kind, Integer | Numeric)
            else "now()" if isinstance(kind, DateTime)
            else "current_date" if isinstance(kind, Date)
            else "''" if isinstance(kind, String)
            else "NULL"
        )  # fmt: skip
        out.append((column.name, value))
    return out


def extra_columns(table: str) -> str:
    return "".join(f", {name}" for name, _ in _extra(table))


def extra_values(table: str) -> str:
    return "".join(f", {value}" for _, value in _extra(table))


def seed(admin: Engine, database: str, url: str, customers: int, per_customer: int, big_rows: int) -> float:
    began = time.perf_counter()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    engine = create_engine(database_url(url), isolation_level="AUTOCOMMIT")
    orders = customers * per_customer
    big = customers + 1
    try:
        with engine.connect() as conn:
            for table in CRM.sorted_tables:  # the tables only: indexes come from the data map
                conn.execute(CreateTable(table))
        log(f"tables created; loading {customers:,} customers and {orders:,} orders")

        def load(statements: list[str]) -> None:
            with engine.connect() as conn:
                # foreign keys are valid by construction: skip the per-row trigger checks
                conn.execute(text("SET session_replication_role = replica"))
                conn.execute(text("SELECT setseed(0.20261122)"))
                for statement in statements:
                    conn.execute(text(statement))

        # Two sessions at once, one per core: customers, and orders (whose customer ids are
        # drawn at random, so some have none and some a dozen).
        half = customers // 2
        with ThreadPoolExecutor(2) as pool:
            jobs = [
                pool.submit(load, [customers_sql(1, half), customers_sql(half + 1, big)]),
                pool.submit(
                    load,
                    [
                        orders_sql(1, orders, f"1 + floor(random() * {customers})::int"),
                        orders_sql(orders + 1, orders + big_rows, str(big)),
                    ],
                ),
            ]
            for job in jobs:
                job.result()
        log(f"rows loaded in {time.perf_counter() - began:.0f} s; creating the matching indexes")
    finally:
        engine.dispose()
    return time.perf_counter() - began


def prepare_indexes(system: SystemConfig, url: str) -> dict[str, Any]:
    began = time.perf_counter()
    plan = create_matching_indexes(system)
    created = time.perf_counter() - began
    engine = create_engine(database_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    finally:
        engine.dispose()
    log(
        f"indexes: {len(plan.create)} created in {created:.0f} s ({', '.join(i.name for i in plan.create)}), "
        f"{len(plan.present)} present, {len(plan.skipped)} skipped; vacuum+analyze done"
    )
    return {
        "created": [i.name for i in plan.create],
        "present": len(plan.present),
        "skipped": [i.name for i in plan.skipped],
        "seconds": round(time.perf_counter() - began, 1),
    }


def row_counts(url: str) -> tuple[int, int] | None:
    engine = create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            customers = conn.execute(text("SELECT count(*) FROM customers")).scalar_one()
            orders = conn.execute(text("SELECT count(*) FROM orders")).scalar_one()
            return int(customers), int(orders)
    except Exception:
        return None
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- measuring


class CountingSink(io.RawIOBase):
    """Counts what collect writes, keeps nothing."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.size += len(data)
        return len(data)


def other_format(stored: str) -> str:
    """The same number written another way than it is stored."""
    number = phonenumbers.parse(stored, "GB")
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    for candidate in (national, international, national.replace(" ", "")):
        if candidate != stored:
            return candidate
    raise AssertionError(stored)


def identifiers_of(row: Any) -> dict[str, str]:
    email = row.email.strip()
    stored = row.postcode
    postcode = stored.replace(" ", "").lower() if " " in stored else f"{stored[:-3]} {stored[-3:]}".upper()
    return {
        "email": email.upper() if email.islower() else email.lower(),
        "phone": other_format(row.phone),
        "postcode": postcode,
    }


def search(system: SystemConfig, identifiers: dict[str, str]) -> tuple[list[str], int, int]:
    """What the search activity does for one system: locate, choose, collect."""
    connector = connector_for(system)
    located = connector.locate(identifiers)
    match = strongest_match(located.matches)
    sink = CountingSink()
    collected = connector.collect(identifiers, sink, person_keys=match.keys)
    return match.keys, collected.records, sink.size


def measure(system: SystemConfig, url: str, customers: int, subjects: int, seed_value: int) -> dict[str, Any]:
    rng = random.Random(seed_value)
    ids = rng.sample(range(1, customers + 1), subjects + 5)
    engine = create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            rows = {
                row.id: row
                for row in conn.execute(
                    text("SELECT id, email, phone, postcode FROM customers WHERE id = ANY(:ids)"),
                    {"ids": ids},
                )
            }
    finally:
        engine.dispose()
    warm, timed = ids[:5], ids[5:]
    for cid in warm:  # connection pool, reflection, prepared statements: a worker has them
        search(system, identifiers_of(rows[cid]))
    times: list[float] = []
    records = size = 0
    wrong: list[int] = []
    for cid in timed:
        identifiers = identifiers_of(rows[cid])
        began = time.perf_counter()
        keys, n, written = search(system, identifiers)
        times.append((time.perf_counter() - began) * 1000)
        records += n
        size += written
        if keys != [f"customers:{cid}"]:
            wrong.append(cid)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[min(len(times) - 1, round(0.95 * len(times)) - 1)], 2),
        "mean_ms": round(statistics.fmean(times), 2),
        "max_ms": round(times[-1], 2),
        "records": records,
        "bytes": size,
        "wrong_matches": len(wrong),
    }


def big_child(database_url_text: str, customer: int) -> None:
    """In a fresh process: locate the big customer, collect them into the encrypted blob
    store, print {"seconds", "rows", "records", "peak_rss_mb", "blob_bytes"} as JSON."""
    from dsar.blobs import LocalBlobStore  # here: the parent measures the search alone

    os.environ[URL_ENV] = database_url_text
    system = bench_system()
    engine = create_engine(database_url(database_url_text))
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT email, phone, postcode FROM customers WHERE id = :id"), {"id": customer}
        ).one()
        orders = conn.execute(
            text("SELECT count(*) FROM orders WHERE customer_id = :id"), {"id": customer}
        ).scalar_one()
    engine.dispose()
    identifiers = identifiers_of(row)
    baseline = rss_mb()
    with tempfile.TemporaryDirectory(prefix="dsar-bench-blobs-") as tmp:
        store = LocalBlobStore(Path(tmp), os.urandom(32))
        began = time.perf_counter()
        connector = connector_for(system)
        located = connector.locate(identifiers)
        match = strongest_match(located.matches)
        assert match.keys == [f"customers:{customer}"], match
        with store.open_writer(BIG_CASE, "crm.jsonl") as sink:
            collected = connector.collect(identifiers, sink, person_keys=match.keys)
        seconds = time.perf_counter() - began
        peak = rss_mb()
        blob_bytes = sum(p.stat().st_size for p in (Path(tmp) / BIG_CASE).iterdir())
        lines = sum(chunk.count(b"\n") for chunk in store.open_reader(sink.ref))  # and it decrypts
    assert lines == collected.records, (lines, collected.records)
    print(
        json.dumps(
            {
                "rows": orders,
                "records": collected.records,
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(peak, 1),
                "rss_before_mb": round(baseline, 1),
                "blob_bytes": blob_bytes,
            }
        )
    )


def bench_system() -> SystemConfig:
    return replace(DataMap.load(ROOT / "demo" / "dsar.yaml").system("crm"), url_env=URL_ENV)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=int, default=5)
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--big-rows", type=int, default=200_000, help="orders of the one big subject")
    parser.add_argument("--keep", action="store_true", help="reuse the database if its row counts match")
    parser.add_argument("--database", default="dsar_bench_search")
    parser.add_argument("--server", default="postgres@127.0.0.1:5432", help="PostgreSQL user@host:port")
    parser.add_argument("--seed", type=int, default=1, help="which subjects are drawn")
    parser.add_argument("--big-child", nargs=2, metavar=("URL", "CUSTOMER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.big_child:
        big_child(args.big_child[0], int(args.big_child[1]))
        return

    url = f"postgresql://{args.server}/{args.database}"
    os.environ[URL_ENV] = url
    system = bench_system()
    customers, orders = args.customers, args.customers * args.orders_per_customer
    expected = (customers + 1, orders + args.big_rows)  # with the big subject
    admin = create_engine(database_url(f"postgresql://{args.server}/postgres"), isolation_level="AUTOCOMMIT")
    seeded_s: float | None = None
    try:
        if args.keep and row_counts(url) == expected:
            log(f"--keep: reusing {args.database} ({expected[0]:,} customers, {expected[1]:,} orders)")
        else:
            seeded_s = seed(admin, args.database, url, customers, args.orders_per_customer, args.big_rows)
        indexes = prepare_indexes(system, url)
        if seeded_s is not None:
            seeded_s += indexes["seconds"]
            log(f"database ready in {seeded_s:.0f} s")

        log(f"searching {args.subjects} subjects")
        result = measure(system, url, customers, args.subjects, args.seed)
        peak = rss_mb()
        dispose_engines()
        log(f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms; collecting the big subject")
        if result["wrong_matches"]:
            log(f"WRONG: {result['wrong_matches']} subjects did not come back as exactly themselves")

        child = subprocess.run(
            [sys.executable, __file__, "--big-child", url, str(customers + 1)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            sys.stderr.write(child.stderr)
            raise SystemExit(f"the big-subject child failed ({child.returncode})")
        big = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        admin.dispose()

    print(
        json.dumps(
            {
                "customers": customers,
                "orders": orders,
                "subjects": args.subjects,
                "p50_ms": result["p50_ms"],
                "p95_ms": result["p95_ms"],
                "peak_rss_mb": round(peak, 1),
                "big_subject_rows": big["rows"],
                "big_subject_seconds": big["seconds"],
                "big_subject_peak_rss_mb": big["peak_rss_mb"],
                "mean_ms": result["mean_ms"],
                "max_ms": result["max_ms"],
                "wrong_matches": result["wrong_matches"],
                "records": result["records"],
                "bytes": result["bytes"],
                "big_subject_records": big["records"],
                "big_subject_blob_bytes": big["blob_bytes"],
                "big_subject_rss_before_mb": big["rss_before_mb"],
                "seed_seconds": None if seeded_s is None else round(seeded_s, 1),
                "indexes_created": indexes["created"],
                "env": {
                    "cpus": os.cpu_count(),
                    "loadavg": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version(),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
