"""The SQL connector against real SQLite, PostgreSQL and MariaDB, seeded with the demo company.

PostgreSQL (127.0.0.1:5432, user postgres, trust auth) and MariaDB (127.0.0.1:3306, root, empty
password) must be running: if they are not, these tests fail rather than skip, because a
connector only tested on SQLite has not been tested. Each run creates fresh, randomly named
databases and drops them afterwards.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from connectors import Collected, ConnectorMisconfigured, ConnectorUnavailable, connector_for
from connectors.base import HEARTBEAT_EVERY, Connector
from connectors.sql import database_url, dispose_engines
from demo.seed import (
    DemoPeople,
    call_recordings,
    complaint_notes,
    customers,
    fraud_markers,
    identity_documents,
    orders,
    parcels,
    payments,
    seed_demo,
    support_tickets,
)
from dsar.datamap import DataMap, SystemConfig
from dsar.model import IdentifierKind

ROOT = Path(__file__).resolve().parent.parent
DEMO_MAP = DataMap.load(ROOT / "demo" / "dsar.yaml")

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MARIADB_ADMIN = "mysql+pymysql://root:@127.0.0.1:3306/?charset=utf8mb4"

INJECTION = "' OR 1=1 --"
MARGARET_ID, PETER_ID, NAMESAKE_ID = 1, 2, 3


@dataclass
class Demo:
    backend: str
    urls: dict[str, str]  # system -> URL
    people: DemoPeople

    def system(self, name: str) -> SystemConfig:
        """The demo map's system, its URL in a variable of this backend alone (so the three
        backends' fixtures can be alive at once)."""
        env = f"DSAR_TEST_{self.backend.upper()}_{name.upper()}_URL"
        os.environ[env] = self.urls[name]
        return replace(DEMO_MAP.system(name), url_env=env)

    def connector(self, name: str = "crm", **kwargs: Any) -> Connector:
        return connector_for(self.system(name), **kwargs)

    @contextmanager
    def engine(self, name: str = "crm") -> Iterator[Any]:
        engine = create_engine(database_url(self.urls[name]))
        try:
            yield engine
        finally:
            engine.dispose()

    def ids(self, statement: Any, name: str = "crm") -> set[Any]:
        """The truth, read from the database directly, to compare the connector against."""
        with self.engine(name) as engine, engine.connect() as conn:
            return set(conn.execute(statement).scalars())


@contextmanager
def fresh_databases(backend: str, tmp: Path) -> Iterator[dict[str, str]]:
    """Two new, empty databases ("crm", "marketing") on the backend; dropped afterwards."""
    if backend == "sqlite":
        yield {name: f"sqlite:///{tmp / f'{name}.db'}" for name in ("crm", "marketing")}
        return
    suffix = uuid.uuid4().hex[:10]
    names = {name: f"dsar_test_{name}_{suffix}" for name in ("crm", "marketing")}
    if backend == "postgresql":
        admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
        create, drop = 'CREATE DATABASE "{}"', 'DROP DATABASE IF EXISTS "{}" WITH (FORCE)'
        # "postgresql://" without a driver: the connector must pick psycopg 3 itself
        urls = {name: f"postgresql://postgres@127.0.0.1:5432/{db}" for name, db in names.items()}
    else:
        admin = create_engine(MARIADB_ADMIN, isolation_level="AUTOCOMMIT")
        create, drop = "CREATE DATABASE `{}` CHARACTER SET utf8mb4", "DROP DATABASE IF EXISTS `{}`"
        urls = {name: f"mysql://root:@127.0.0.1:3306/{db}?charset=utf8mb4" for name, db in names.items()}
    try:
        with admin.connect() as conn:  # an unreachable server fails here: never a skip
            for db in names.values():
                conn.execute(text(create.format(db)))
        yield urls
    finally:
        dispose_engines()
        with admin.connect() as conn:
            for db in names.values():
                conn.execute(text(drop.format(db)))
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    backend: str = request.param
    with fresh_databases(backend, tmp_path_factory.mktemp(backend)) as urls:
        people = seed_demo(urls["crm"], urls["marketing"], people=200)
        yield Demo(backend=backend, urls=urls, people=people)


def collected(
    connector: Connector, identifiers: dict[str, str], **kwargs: Any
) -> tuple[Collected, list[dict]]:
    sink = io.BytesIO()
    result = connector.collect(identifiers, sink, **kwargs)
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert len(lines) == result.records == sum(result.entities.values())
    return result, lines


def records(lines: list[dict], entity: str) -> list[dict]:
    return [line["record"] for line in lines if line["entity"] == entity]


# -- locate ------------------------------------------------------------------------------------


def test_check_passes(demo: Demo) -> None:
    demo.connector("crm").check()
    demo.connector("marketing").check()


def test_locate_email_in_odd_case_and_whitespace(demo: Demo) -> None:
    email = "  " + demo.people.margaret["email"].upper().replace("ELLIS", "Ellis") + "\t"
    crm = demo.connector("crm").locate({"email": email})
    assert crm.system == "crm"
    assert crm.matched_kinds == ["email"]
    assert crm.person_keys == [f"customers:{MARGARET_ID}"]
    # the marketing database stores it upper-case with stray spaces
    marketing = demo.connector("marketing").locate({"email": email})
    assert marketing.matched_kinds == ["email"]
    assert marketing.person_keys == ["preferences:1"]


def test_locate_phone_in_national_format(demo: Demo) -> None:
    assert demo.people.margaret["phone"] == "+44 7911 123456"  # stored as "+447911123456"
    for written in ("07911 123456", "07911123456", "+44 (0)7911 123-456", "0044 7911 123456"):
        located = demo.connector("crm").locate({"phone": written})
        assert located.matched_kinds == ["phone"], written
        assert located.person_keys == [f"customers:{MARGARET_ID}"], written
    # Peter's is stored nationally ("07700900461"); found from the international form
    peter = demo.connector("crm").locate({"phone": "+44 7700 900461"})
    assert peter.person_keys == [f"customers:{PETER_ID}"]
    # marketing holds Margaret's mobile as "07911123456"
    assert demo.connector("marketing").locate({"phone": "+447911123456"}).person_keys == ["preferences:1"]


def test_locate_postcode_without_space_finds_the_household(demo: Demo) -> None:
    located = demo.connector("crm").locate({"postcode": "cv34lp"})
    assert located.matched_kinds == ["postcode"]
    # a postcode is shared by a household: it points to two people, and says so
    assert located.person_keys == [f"customers:{MARGARET_ID}", f"customers:{PETER_ID}"]
    assert demo.connector("marketing").locate({"postcode": "cv34lp"}).found is False  # no postcode there


def test_locate_reports_which_kinds_point_to_whom(demo: Demo) -> None:
    margaret = demo.people.margaret
    located = demo.connector("crm").locate(
        {
            "email": margaret["email"],
            "phone": margaret["phone"],
            "postcode": margaret["postcode"],
            "name": "margaret ELLIS",
            "date_of_birth": margaret["date_of_birth"],
            "account_number": margaret["account_number"],
            "customer_id": margaret["customer_id"],
        }
    )
    one, peter, namesake = (f"customers:{i}" for i in (MARGARET_ID, PETER_ID, NAMESAKE_ID))
    assert located.matches == {
        "account_number": [one],
        "customer_id": [one],
        "date_of_birth": [one],
        "email": [one],
        "name": [one, namesake],  # same name, different person
        "phone": [one],
        "postcode": [one, peter],  # same household, different person
    }
    assert located.person_keys == [one, peter, namesake]
    assert located.matched_kinds == sorted(located.matches)


def test_locate_no_match(demo: Demo) -> None:
    identifiers = {"email": "nobody@example.com", "phone": "07911 654321", "postcode": "ZZ9 9ZZ"}
    for system in ("crm", "marketing"):
        located = demo.connector(system).locate(identifiers)
        assert located.matched_kinds == [] and located.person_keys == [] and not located.found
        result, lines = collected(demo.connector(system), identifiers)
        assert result.records == 0 and lines == []


def test_injection_attempts_match_nothing(demo: Demo) -> None:
    attempts = [INJECTION, "x' OR '1'='1", "1; DROP TABLE customers; --", "%", "_", "1 OR 1=1", "9" * 30]
    for value in attempts:
        identifiers = {kind.value: value for kind in IdentifierKind}
        for system in ("crm", "marketing"):
            assert demo.connector(system).locate(identifiers).person_keys == [], (system, value)
            assert collected(demo.connector(system), identifiers)[0].records == 0
    assert demo.ids(select(func.count()).select_from(customers)) == {200}


def test_unknown_identifier_kind_is_a_caller_error(demo: Demo) -> None:
    with pytest.raises(ValueError, match="unknown identifier kind 'shoe_size'"):
        demo.connector().locate({"shoe_size": "9"})


# -- collect -----------------------------------------------------------------------------------


def test_collect_returns_the_persons_records_and_nobody_elses(demo: Demo) -> None:
    margaret = demo.people.margaret
    result, lines = collected(demo.connector("crm"), {"email": margaret["email"], "phone": "07911 123456"})

    her_orders = demo.ids(select(orders.c.id).where(orders.c.customer_id == MARGARET_ID))
    expected = {
        "customers": {MARGARET_ID},
        "orders": her_orders,
        "payments": demo.ids(select(payments.c.id).where(payments.c.order_id.in_(her_orders))),
        "support_tickets": demo.ids(
            select(support_tickets.c.id).where(support_tickets.c.customer_id == MARGARET_ID)
        ),
        "parcels": demo.ids(select(parcels.c.id).where(parcels.c.order_id.in_(her_orders))),
        "call_recordings": demo.ids(
            select(call_recordings.c.id).where(call_recordings.c.customer_id == MARGARET_ID)
        ),
        **{
            table.name: demo.ids(select(table.c.id).where(table.c.customer_id == MARGARET_ID))
            for table in (fraud_markers, identity_documents, complaint_notes)
        },
    }
    assert all(expected.values()), "the demo gives Margaret rows in every entity"
    assert {entity: {r["id"] for r in records(lines, entity)} for entity in expected} == expected
    assert result.entities == {entity: len(ids) for entity, ids in expected.items()}
    assert result.system == "crm"
    for entity in ("orders", "support_tickets", "call_recordings"):
        assert {r["customer_id"] for r in records(lines, entity)} == {MARGARET_ID}

    # only declared columns, with values a person and a CSV can read
    customer = records(lines, "customers")[0]
    assert list(customer) == list(DEMO_MAP.system("crm").entities["customers"].fields)
    assert customer["date_of_birth"] == "1958-03-14"
    assert datetime.fromisoformat(customer["created_at"])
    assert all(isinstance(r["total"], str) and Decimal(r["total"]) for r in records(lines, "orders"))
    assert all(len(r["card_last4"]) == 4 for r in records(lines, "payments"))
    assert all(r["signature_image"].startswith("base64:") for r in records(lines, "parcels"))

    result, lines = collected(demo.connector("marketing"), {"email": margaret["email"]})
    assert [r["id"] for r in records(lines, "preferences")] == [1]
    assert {r["preference_id"] for r in records(lines, "campaign_events")} == {1}
    assert result.entities["campaign_events"] == len(records(lines, "campaign_events")) > 0


def test_household_members_stay_separate(demo: Demo) -> None:
    crm = demo.connector("crm")
    margaret, peter = demo.people.margaret, demo.people.peter
    assert margaret["postal_address"] == peter["postal_address"]

    _, hers = collected(crm, {"email": margaret["email"], "phone": margaret["phone"]})
    _, his = collected(crm, {"email": peter["email"]})
    assert {r["id"] for r in records(hers, "customers")} == {MARGARET_ID}
    assert {r["id"] for r in records(his, "customers")} == {PETER_ID}
    her_rows = {(line["entity"], line["record"]["id"]) for line in hers}
    his_rows = {(line["entity"], line["record"]["id"]) for line in his}
    assert her_rows.isdisjoint(his_rows)
    assert {r["customer_id"] for r in records(his, "support_tickets")} == {PETER_ID}

    # The shared postcode locates both; verification picks the person, collect honours it.
    _, both = collected(crm, {"postcode": margaret["postcode"]})
    assert {r["id"] for r in records(both, "customers")} == {MARGARET_ID, PETER_ID}
    _, only_her = collected(crm, {"postcode": margaret["postcode"]}, person_keys=[f"customers:{MARGARET_ID}"])
    assert {(line["entity"], line["record"]["id"]) for line in only_her} == her_rows


def test_namesake_is_not_collected_by_email(demo: Demo) -> None:
    _, lines = collected(demo.connector("crm"), {"email": demo.people.namesake["email"]})
    assert {r["id"] for r in records(lines, "customers")} == {NAMESAKE_ID}
    assert {r["customer_id"] for r in records(lines, "orders")} <= {NAMESAKE_ID}


class CountingSink(io.RawIOBase):
    """Counts lines and bytes without keeping them, like a stream to the blob store."""

    def __init__(self) -> None:
        self.lines = 0
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.lines += bytes(data).count(b"\n")
        self.size += len(data)
        return len(data)


def server_cursor_open(demo: Demo) -> bool:
    """Whether another PostgreSQL session is fetching a server-side cursor batch by batch
    (psycopg: ``DECLARE`` once, then ``FETCH FORWARD n`` per batch)."""
    with demo.engine() as engine, engine.connect() as conn:
        statement = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query LIKE 'FETCH FORWARD%'"
        )
        return bool(conn.execute(statement).scalar_one())


def test_a_subject_with_20k_rows_streams(demo: Demo) -> None:
    subject = 10
    with demo.engine() as engine, engine.begin() as conn:
        first = conn.execute(select(func.max(orders.c.id))).scalar_one() + 1
        start = datetime(2024, 1, 1)
        conn.execute(
            orders.insert(),
            [
                {
                    "id": first + i,
                    "customer_id": subject,
                    "ordered_at": start + timedelta(minutes=i),
                    "product": "Parcel Standard, 2-3 days",
                    "total": Decimal("3.99"),
                    "status": "paid",
                    "delivery_address": "1 Test Street, Leeds",
                }
                for i in range(20_000)
            ],
        )
    if demo.backend == "postgresql":  # what autovacuum would do after a bulk load
        with (
            demo.engine() as engine,
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        ):
            conn.execute(text("ANALYZE"))
    her_orders = select(orders.c.id).where(orders.c.customer_id == subject)
    expected = (
        1
        + len(demo.ids(her_orders))
        + len(demo.ids(select(payments.c.id).where(payments.c.order_id.in_(her_orders))))
        + len(demo.ids(select(parcels.c.id).where(parcels.c.order_id.in_(her_orders))))
        + len(demo.ids(select(support_tickets.c.id).where(support_tickets.c.customer_id == subject)))
        + len(demo.ids(select(call_recordings.c.id).where(call_recordings.c.customer_id == subject)))
    )
    assert expected > 20_000

    # Bounded memory, observed: Python's count of allocated blocks may not grow with the
    # rows (a buffered 20k-row result adds ~100k blocks with PyMySQL; streamed, ~1.5k), and on
    # PostgreSQL, whose driver buffers outside Python's heap, the server-side cursor is open.
    growth: list[int] = []
    cursor_open: list[bool] = []

    def heartbeat() -> None:
        growth.append(sys.getallocatedblocks() - baseline)
        if demo.backend == "postgresql" and not cursor_open:
            cursor_open.append(server_cursor_open(demo))

    connector = demo.connector("crm", heartbeat=heartbeat)
    connector.check()  # connect and reflect before the baseline
    sink = CountingSink()
    baseline = sys.getallocatedblocks()
    began = time.perf_counter()
    result = connector.collect({"customer_id": str(subject)}, sink)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - began
    assert result.records == sink.lines == expected
    assert result.entities["orders"] >= 20_000
    assert len(growth) == expected // HEARTBEAT_EVERY
    assert max(growth) < 20_000, f"{max(growth)} blocks: the result was buffered"
    assert cursor_open == ([True] if demo.backend == "postgresql" else [])
    assert elapsed < 5, f"{elapsed:.1f}s"


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:s3cret-pw@127.0.0.1:1/crm",
        "mysql://root:s3cret-pw@127.0.0.1:1/crm",
        "sqlite:////nonexistent-dir/s3cret-pw/crm.db",
    ],
)
def test_unreachable_system_is_retryable_and_tells_no_secret(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSAR_TEST_DOWN_URL", url)
    system = replace(DEMO_MAP.system("crm"), url_env="DSAR_TEST_DOWN_URL")
    connector = connector_for(system)
    for attempt in (
        connector.check,
        lambda: connector.locate({"email": "margaret.ellis@example.com"}),
        lambda: connector.collect({"email": "margaret.ellis@example.com"}, io.BytesIO()),
    ):
        with pytest.raises(ConnectorUnavailable) as caught:
            attempt()
        assert str(caught.value) == "crm unreachable"
        # nothing chained either: a driver's message can quote the URL or the SQL parameters
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        assert "s3cret" not in repr(caught.value) and "example.com" not in repr(caught.value)


def test_missing_table_or_column_is_misconfigured(demo: Demo) -> None:
    crm = demo.system("crm")
    tickets = crm.entities["support_tickets"]
    missing_table = replace(
        crm, entities={**crm.entities, "support_tickets": replace(tickets, table="tickets")}
    )
    with pytest.raises(ConnectorMisconfigured, match=r"crm: table 'tickets' of entity 'support_tickets'"):
        connector_for(missing_table).check()
    fields = {**tickets.fields, "mood": tickets.fields["body"]}
    missing_column = replace(
        crm, entities={**crm.entities, "support_tickets": replace(tickets, fields=fields)}
    )
    with pytest.raises(
        ConnectorMisconfigured, match=r"table 'support_tickets' has no column 'mood'.*line \d+"
    ):
        connector_for(missing_column).locate({"email": "x@example.com"})
