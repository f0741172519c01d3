"""The matching indexes: built from the expressions the connector queries, and used by the planner.

Each backend gets fresh, randomly named databases seeded with the demo company (as in
tests/test_sql_connector.py), then the connector's own statements (captured as they are sent)
are explained. PostgreSQL and MariaDB must be running: these tests fail rather than skip.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, Table, create_engine, event, text

from connectors import connector_for
from connectors.sql import (
    create_matching_indexes,
    database_url,
    dispose_engines,
    matching_index_ddl,
    matching_indexes,
    plan_matching_indexes,
)
from demo.seed import CRM, MARGARET, seed_demo
from dsar.datamap import DataMap, SystemConfig

# Reflecting SQLite tables that have expression indexes warns that those were not reflected.
pytestmark = pytest.mark.filterwarnings("ignore:Skipped unsupported reflection:sqlalchemy.exc.SAWarning")

ROOT = Path(__file__).resolve().parent.parent
DEMO_MAP = DataMap.load(ROOT / "demo" / "dsar.yaml")

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MARIADB_ADMIN = "mysql+pymysql://root:@127.0.0.1:3306/?charset=utf8mb4"

#: The identity expressions of the demo CRM, and the index each lookup must use.
EXPRESSION_INDEXES = {
    "email": "dsar_customers_email_lower",
    "phone": "dsar_customers_phone_tail6",
    "postcode": "dsar_customers_postcode_nospace",
    "name": "dsar_customers_full_name_lower",
    "postal_address": "dsar_customers_address_lower",
}

#: Lookups whose statements are explained, as a person would type the identifiers.
LOOKUPS = {
    "email": "  MARGARET.Ellis@example.COM ",
    "phone": "07911 123456",  # stored as +447911123456
    "postcode": "cv34lp",
    "name": "margaret   ELLIS",
}


@contextmanager
def fresh_crm(backend: str, tmp: Path) -> Iterator[str]:
    """A new, empty CRM database on the backend (with a marketing one beside it for the seed);
    dropped afterwards. Yields the CRM's URL."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'crm.db'}"
        return
    suffix = uuid.uuid4().hex[:10]
    names = [f"dsar_test_ix_{name}_{suffix}" for name in ("crm", "marketing")]
    if backend == "postgresql":
        admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
        create, drop = 'CREATE DATABASE "{}"', 'DROP DATABASE IF EXISTS "{}" WITH (FORCE)'
        url = "postgresql://postgres@127.0.0.1:5432/{}"
    else:
        admin = create_engine(MARIADB_ADMIN, isolation_level="AUTOCOMMIT")
        create, drop = "CREATE DATABASE `{}` CHARACTER SET utf8mb4", "DROP DATABASE IF EXISTS `{}`"
        url = "mysql://root:@127.0.0.1:3306/{}?charset=utf8mb4"
    try:
        with admin.connect() as conn:  # an unreachable server fails here: never a skip
            for db in names:
                conn.execute(text(create.format(db)))
        yield url.format(names[0])
    finally:
        dispose_engines()
        with admin.connect() as conn:
            for db in names:
                conn.execute(text(drop.format(db)))
        admin.dispose()


def crm_system(backend: str, url: str) -> SystemConfig:
    env = f"DSAR_TEST_IX_{backend.upper()}_CRM_URL"
    os.environ[env] = url
    return replace(DEMO_MAP.system("crm"), url_env=env)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SystemConfig]:
    """The seeded demo CRM on one backend, without the matching indexes yet."""
    with fresh_crm(request.param, tmp_path) as url:
        marketing = url.replace("_crm_", "_marketing_").replace("crm.db", "marketing.db")
        seed_demo(url, marketing, people=200)
        yield crm_system(request.param, url)


@contextmanager
def captured_statements() -> Iterator[list[tuple[str, Any]]]:
    """Every SELECT sent to a database meanwhile, as sent: (SQL, parameters)."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if re.match(r"\s*SELECT\b.*\bFROM\b", statement, re.DOTALL | re.IGNORECASE):
            seen.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", capture)


def connector_statements(system: SystemConfig) -> dict[str, list[tuple[str, Any]]]:
    """The statements of a locate per lookup kind, and of a collect ("collect"), as the
    connector sends them (each on a new connector: nothing cached between them)."""
    connector_for(system).check()  # reflect first: its queries are not the connector's own
    out: dict[str, list[tuple[str, Any]]] = {}
    for kind, value in LOOKUPS.items():
        with captured_statements() as seen:
            located = connector_for(system).locate({kind: value})
        assert f"customers:{MARGARET['customer_id']}" in located.person_keys, kind
        out[kind] = seen
    connector = connector_for(system)
    connector.locate({"email": MARGARET["email"]})  # collect after locate asks only for records
    with captured_statements() as seen:
        result = connector.collect({"email": MARGARET["email"]}, _NullSink())
    assert result.entities["orders"] > 0 and result.entities["payments"] > 0
    out["collect"] = seen
    assert len(seen) == len(system.entities)
    return out


class _NullSink:
    def write(self, data: bytes, /) -> int:
        return len(data)


# -- the indexes themselves ----------------------------------------------------------------------


def test_matching_indexes_cover_every_lookup_of_the_data_map() -> None:
    system = DEMO_MAP.system("crm")
    copy = MetaData()  # the demo's own tables must not get these indexes attached
    tables = {name: CRM.tables[entity.table].to_metadata(copy) for name, entity in system.entities.items()}
    indexes = {index.name: index for index in matching_indexes(system, tables)}
    for name in EXPRESSION_INDEXES.values():
        assert indexes[name].expression and indexes[name].table == "customers"
    assert indexes["dsar_customers_email_lower"].uses == ("customers.email (email)",)
    assert indexes["dsar_customers_phone_tail6"].normalisation == "tail6"
    # key, identity (customer_id) and the parent side of six relations: one index
    assert indexes["dsar_customers_id"].uses == (
        "customers.id (customer_id)",
        "customers key",
        "customers.id -> orders.customer_id",
        "customers.id -> support_tickets.customer_id",
        "customers.id -> call_recordings.customer_id",
        "customers.id -> fraud_markers.customer_id",
        "customers.id -> identity_documents.customer_id",
        "customers.id -> complaint_notes.customer_id",
    )
    for child in (
        "orders_customer_id",
        "payments_order_id",
        "support_tickets_customer_id",
        "parcels_order_id",
        "call_recordings_customer_id",
        "orders_id",
        "customers_account_number",
        "customers_date_of_birth",
    ):
        assert not indexes[f"dsar_{child}"].expression, child
    # deterministic: the same names, in the same order, every time
    again = matching_indexes(system, {n: t.to_metadata(MetaData()) for n, t in tables.items()})
    assert [i.name for i in again] == list(indexes)
    assert all(len(name) <= 63 for name in indexes)


def test_create_matching_indexes(crm: SystemConfig) -> None:
    dialect = plan_matching_indexes(crm).dialect
    plan = create_matching_indexes(crm)
    created = {index.name for index in plan.create}
    present = {index.name for index in plan.present}
    if dialect == "mysql":
        # MariaDB has no expression indexes: those are named, and why, and only plain ones made
        assert {index.name for index in plan.skipped} == set(EXPRESSION_INDEXES.values())
        assert "generated column" in plan.skip_reason
        assert created == {"dsar_customers_date_of_birth"}
    else:
        assert plan.skipped == ()
        assert created == {*EXPRESSION_INDEXES.values(), "dsar_customers_date_of_birth"}
    # the demo's own indexes and keys already serve the key and relation lookups
    assert {"dsar_customers_id", "dsar_orders_customer_id", "dsar_payments_order_id"} <= present
    assert plan.covered_by["dsar_customers_id"].startswith("primary key")
    assert plan.covered_by["dsar_orders_customer_id"] == "index ix_orders_customer_id"

    again = create_matching_indexes(crm)  # idempotent
    assert again.create == () and again.skipped == plan.skipped
    assert {index.name for index in again.present} == created | present
    ddl = matching_index_ddl(crm)
    assert "nothing to create" in ddl and "CREATE INDEX" not in ddl
    if dialect == "mysql":
        assert "-- skipped: dsar_customers_phone_tail6" in ddl
    # and the connector still finds Margaret by every kind
    connector_statements(crm)


def test_ddl_for_review_is_the_dialects_create_index(crm: SystemConfig) -> None:
    plan = plan_matching_indexes(crm)
    ddl = plan.ddl()
    assert ddl == matching_index_ddl(crm)
    assert len(plan.statements) == len(plan.create) > 0
    for statement in plan.statements:
        assert statement.strip() + ";" in ddl
    if plan.dialect == "postgresql":
        assert (
            "CREATE INDEX IF NOT EXISTS dsar_customers_email_lower ON customers (lower(trim(email)));" in ddl
        )
        assert "CREATE INDEX IF NOT EXISTS dsar_customers_phone_tail6 ON customers (right(replace(" in ddl
    if plan.dialect == "sqlite":
        assert "ON customers (substr(replace(" in ddl and ", -6));" in ddl
    if plan.dialect == "mysql":
        assert "dsar_customers_email_lower" not in "\n".join(plan.statements)


# -- the planner uses them -----------------------------------------------------------------------


def pg_plan_nodes(plan: Any) -> Iterator[dict[str, Any]]:
    stack = [plan[0]["Plan"] if isinstance(plan, list) else plan["Plan"]]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.get("Plans", []))


def pg_explain(engine: Engine, statement: str, parameters: Any, *, generic: bool = False) -> list[dict]:
    """EXPLAIN of one captured statement; ``generic``: as a prepared statement's generic plan
    (planned once for any parameters), which psycopg's automatic prepares can end up with."""
    with engine.connect() as conn:  # SET LOCAL: undone with the transaction, at the end
        # 200 demo customers fit in a page or two: the planner rightly prefers reading them
        # all to an index, so sequential scans are priced out to see whether an index *can*
        # serve each statement (a Seq Scan still appears where none can).
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        if not generic:
            return conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar_one()
        names: list[str] = []

        def placeholder(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        prepared = re.sub(r"%\((\w+)\)s", placeholder, statement).replace("%%", "%")
        arguments = ", ".join(_sql_literal(parameters[name]) for name in names)
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql(f"PREPARE dsar_explained AS {prepared}")
        try:
            return conn.exec_driver_sql(
                f"EXPLAIN (FORMAT JSON) EXECUTE dsar_explained({arguments})"
            ).scalar_one()
        finally:
            conn.exec_driver_sql("DEALLOCATE dsar_explained")


def _sql_literal(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


@pytest.fixture
def pg_crm(tmp_path: Path) -> Iterator[SystemConfig]:
    with fresh_crm("postgresql", tmp_path) as url:
        seed_demo(url, url.replace("_crm_", "_marketing_"), people=200)
        yield crm_system("postgresql", url)


def test_postgresql_uses_the_indexes_for_every_statement_of_a_search(pg_crm: SystemConfig) -> None:
    engine = create_engine(database_url(pg_crm.url()))
    try:
        # Without them, every normalised lookup reads the whole table.
        before = connector_statements(pg_crm)
        for kind in LOOKUPS:
            ((statement, parameters),) = before[kind]
            nodes = list(pg_plan_nodes(pg_explain(engine, statement, parameters)))
            assert [n["Node Type"] for n in nodes] == ["Seq Scan"], kind

        create_matching_indexes(pg_crm)
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        statements = connector_statements(pg_crm)
        assert statements == before  # creating indexes changes no query
        for generic in (False, True):
            for kind in LOOKUPS:
                ((statement, parameters),) = statements[kind]
                nodes = list(pg_plan_nodes(pg_explain(engine, statement, parameters, generic=generic)))
                assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], (kind, generic, nodes)
                used = {n.get("Index Name") for n in nodes}
                assert EXPRESSION_INDEXES[kind] in used, (kind, generic, used)
            for statement, parameters in statements["collect"]:
                nodes = list(pg_plan_nodes(pg_explain(engine, statement, parameters, generic=generic)))
                scans = [(n["Node Type"], n.get("Relation Name")) for n in nodes if "Relation Name" in n]
                assert scans and all(kind != "Seq Scan" for kind, _ in scans), (statement, scans)
    finally:
        engine.dispose()


def test_sqlite_uses_the_expression_indexes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    seed_demo(url, f"sqlite:///{tmp_path / 'marketing.db'}", people=200)
    system = crm_system("sqlite", url)
    create_matching_indexes(system)
    engine = create_engine(url)
    try:
        statements = connector_statements(system)
        with engine.connect() as conn:
            for kind in LOOKUPS:
                ((statement, parameters),) = statements[kind]
                plan = " | ".join(
                    row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                )
                assert f"USING INDEX {EXPRESSION_INDEXES[kind]}" in plan, (kind, plan)
            for statement, parameters in statements["collect"]:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                plan = " | ".join(row[-1] for row in rows)
                assert not re.search(r"\bSCAN (customers|orders)\b(?! USING)", plan), plan
    finally:
        engine.dispose()


def test_the_demo_tables_are_left_alone() -> None:
    """matching_indexes attaches indexes to the tables it is given: the tests above gave it
    reflected copies, so the demo's metadata (which seeding creates) has none of them."""
    assert not [i.name for t in CRM.tables.values() for i in t.indexes if str(i.name).startswith("dsar_")]
    assert isinstance(CRM.tables["customers"], Table)
