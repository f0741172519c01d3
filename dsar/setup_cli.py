"""``dsar setup``: what a new installation needs before its first case, done once and safe to
run again (the deploy/ set-up job runs it on every release).

- The case register's database on PostgreSQL, created when missing (the server's ``postgres``
  database is used to create it: the user needs CREATEDB), then its tables.
- dsar's search attributes on the Temporal namespace (``DsrStage``, ``DsrDue``...), added when
  missing: the workflow sets them, and a namespace without them fails every case.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from dsar.logs import get_logger
from dsar.settings import Settings

log = get_logger("dsar.setup")

#: Temporal's index types by the names dsar's SEARCH_ATTRIBUTES use
_INDEX_TYPES = ("Keyword", "Datetime", "Bool", "Int", "Text")


def create_register_database(url: str) -> bool:
    """Create the PostgreSQL database ``url`` names if it does not exist; True if created.
    Other databases (SQLite) create themselves."""
    target = make_url(url)
    if target.get_backend_name() != "postgresql" or not target.database:
        return False
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database})
            if found.first() is not None:
                return False
            name = target.database.replace('"', '""')
            try:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            except ProgrammingError as e:  # created meanwhile by another set-up job
                if "already exists" not in str(e):
                    raise
                return False
            return True
    finally:
        admin.dispose()


async def register_search_attributes(settings: Settings) -> list[str]:
    """Add dsar's search attributes the namespace lacks; the names added."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    from dsar.engine import connect
    from workflows.rules import SEARCH_ATTRIBUTES

    client = await connect(settings)
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    have = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {name: kind for name, kind in SEARCH_ATTRIBUTES.items() if name not in have}
    if missing:
        kinds = {k: getattr(IndexedValueType, f"INDEXED_VALUE_TYPE_{k.upper()}") for k in _INDEX_TYPES}
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={name: kinds[kind] for name, kind in missing.items()},
            )
        )
    return sorted(missing)


def setup(settings: Settings, out: TextIO = sys.stdout) -> int:
    from dsar.store import CaseStore

    created = create_register_database(settings.resolved_database_url)
    store = CaseStore(settings.resolved_database_url)  # creates the tables
    store.close()
    out.write(f"register: {'database created' if created else 'database exists'}; tables ready\n")
    added = asyncio.run(register_search_attributes(settings))
    out.write(f"search attributes: {', '.join(added) + ' added' if added else 'all present'}\n")
    log.info("set up", database_created=created, search_attributes_added=len(added))
    return 0
