"""The SQL connector: PostgreSQL, MariaDB/MySQL, SQLite and any other SQLAlchemy dialect.

Table and column names come only from the validated data map and are quoted by SQLAlchemy;
identifier values are only ever bound parameters. Tables are reflected (once per database URL
and process) so that a supplied value is converted to the column's type before it reaches the
database: ``"abc"`` never meets an integer ``customer_id`` column, it simply cannot match.

Matching is normalised on both sides (see :mod:`connectors.base`): emails and names by SQL
``lower(trim(...))``, postcodes by ``upper(replace(..., ' ', ''))``, phone numbers by an SQL
equality on their last six digits (punctuation stripped) followed by E.164 comparison in Python
over those few candidate rows (a database cannot parse phone numbers; loading a whole table to
do it would not scale).

Each of those comparisons is ``expression = :value``, so an index on the expression serves it:
:func:`matching_indexes` builds them from the very functions that build the WHERE clauses (a
database uses an expression index only for the identical expression), with the key and relation
columns that ``collect`` follows; :func:`create_matching_indexes` creates the missing ones and
:func:`matching_index_ddl` prints them for review. Without them every search of a large table
is a full scan.

``collect`` follows relations with nested ``IN (SELECT ...)`` sub-queries from the matched
person rows down to their children, one streamed query per entity, so memory stays bounded
however many rows the subject has.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import phonenumbers
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    and_,
    bindparam,
    cast,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    NoSuchTableError,
    OperationalError,
    SAWarning,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex
from sqlalchemy.sql import column as sql_column
from sqlalchemy.sql import table as sql_table
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.sql.functions import FunctionElement

from connectors.base import (
    ALL_FIELDS,
    HEARTBEAT_EVERY,
    Candidate,
    Changed,
    Collected,
    ConnectorError,
    ConnectorMisconfigured,
    ConnectorRefused,
    ConnectorUnavailable,
    EntityErasurePlan,
    Erased,
    ErasureForecast,
    ErasurePlan,
    Heartbeat,
    Located,
    Marked,
    Rectification,
    Sink,
    Subject,
    identifier_kind,
    normalise_email,
    normalise_name,
    normalise_phone,
    normalise_postcode,
    record_line,
    row_record_key,
)
from dsar.datamap import (
    DataMapError,
    EntityConfig,
    EntityErasure,
    FieldErasure,
    Marker,
    SystemConfig,
    identity_columns,
)
from dsar.model import IdentifierKind

#: Seconds to wait for a TCP connection before calling a system unreachable.
CONNECT_TIMEOUT = 10

#: The driver used when a URL names only the database ("postgresql://", "mysql://").
_DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}

#: Drivers that take ``connect_timeout`` (seconds) as a connect argument.
_TIMEOUT_DRIVERS = frozenset({"psycopg", "psycopg2", "pymysql", "mysqldb"})

#: The largest integer every dialect compares (64-bit signed); a longer "customer number" cannot
#: be in an integer column (and SQLite's driver would raise instead of finding nothing).
_MAX_INT = 2**63 - 1

#: Characters people put inside phone numbers; stripped in SQL before the last-digits filter.
_PHONE_PUNCTUATION = (" ", "-", "(", ")", ".", "/")

#: How many of a person's latest transactions (orders, payments) verification compares.
TRANSACTIONS_PER_PERSON = 5

#: How many trailing digits of a phone number SQL compares (an index lookup); the full number is
#: then compared in Python, as E.164.
PHONE_TAIL_DIGITS = 6

Key = tuple[Any, ...]

# Reflecting a SQLite table that has the expression indexes made here warns that they were not
# reflected: expected, and nothing the connector needs (it reflects columns), so not logged.
warnings.filterwarnings(
    "ignore", message=r"Skipped unsupported reflection of expression-based index", category=SAWarning
)


@dataclass
class _Database:
    """One database URL's engine (connection pool) and reflected tables, shared by every
    connector for that URL in this process: a worker runs many searches against one system."""

    engine: Engine
    tables: dict[tuple[str | None, str], Table] = field(default_factory=dict)
    #: the live foreign keys of the database's schemas (read when an erasure is first planned)
    references: list[_Reference] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_databases: dict[str, _Database] = {}
_databases_lock = threading.Lock()


def dispose_engines() -> None:
    """Close every pooled connection (worker shutdown; tests before dropping a database)."""
    with _databases_lock:
        for database in _databases.values():
            database.engine.dispose()
        _databases.clear()


@dataclass(frozen=True)
class _Criterion:
    """How one identity column is matched against one supplied value."""

    where: ColumnElement[bool]
    #: a final check of the stored value in Python, for what SQL cannot normalise (phones),
    #: given the row's phone region (None: the system's)
    accept: Callable[[Any, str | None], bool] | None = None


class SqlConnector:
    """A data map system of type ``sql``."""

    def __init__(self, system: SystemConfig, heartbeat: Heartbeat | None = None) -> None:
        self.system = system
        self.name = system.name
        self._heartbeat = heartbeat
        # The last match, so that collect() after locate() (one search) fetches the very persons
        # located, without asking the database again.
        self._last_match: tuple[Key, dict[str, dict[str, dict[Key, str]]]] | None = None

    # -- the protocol ------------------------------------------------------------------------

    def check(self) -> None:
        with self._connect() as conn:
            conn.execute(select(1)).scalar_one()
            self._tables(conn)

    def locate(self, identifiers: dict[str, str]) -> Located:
        with self._connect() as conn:
            matched = self._matched(conn, self._tables(conn), identifiers)
        return _located(self.name, matched)

    def collect(
        self, identifiers: dict[str, str], sink: Sink, *, person_keys: list[str] | None = None
    ) -> Collected:
        """Stream the located persons' records; on an error the sink holds a partial result
        and must be discarded (the activity's retry writes a new one)."""
        counts: dict[str, int] = {}
        total = 0
        with self._connect() as conn:
            tables = self._tables(conn)
            matched = self._matched(conn, tables, identifiers)
            rows = _rows_by_entity(matched)
            if person_keys is not None:
                wanted = set(person_keys)
                rows = {
                    entity: {key: pk for key, pk in keys.items() if pk in wanted}
                    for entity, keys in rows.items()
                }
                # the accepted persons' rows even where the identifiers no longer find them
                # (a re-search after their identifiers were erased or corrected)
                for entity_name, keys in self._keyed(tables, person_keys).items():
                    rows.setdefault(entity_name, {}).update(keys)
            conditions: dict[str, ColumnElement[bool] | None] = {}
            for entity in self.system.ordered_entities():
                table = tables[entity.name]
                condition = self._subject_condition(entity, table, tables, rows, conditions)
                conditions[entity.name] = condition
                if entity.reference:
                    continue  # shown as the joined value in the records that point at it
                counts[entity.name] = 0
                if condition is None:
                    continue
                joined, source = self._joined(entity, table, tables)
                columns = [*(table.c[column] for column in entity.fields), *(c for _, c in joined)]
                names = [*entity.fields, *(label for label, _ in joined)]
                order = [table.c[column] for column in entity.key] or list(table.primary_key.columns)
                statement = (
                    select(*columns)
                    .select_from(source)
                    .where(condition)
                    .order_by(*order)
                    .execution_options(yield_per=HEARTBEAT_EVERY)
                )
                for row in conn.execute(statement):
                    sink.write(record_line(entity.name, dict(zip(names, row, strict=True))))
                    counts[entity.name] += 1
                    total += 1
                    if self._heartbeat is not None and total % HEARTBEAT_EVERY == 0:
                        self._heartbeat()
        return Collected(system=self.name, records=total, entities=counts)

    def _joined(
        self, entity: EntityConfig, table: Table, tables: dict[str, Table]
    ) -> tuple[list[tuple[str, ColumnElement[Any]]], FromClause]:
        """The reference data a record points at, as readable values beside its ids: a rental
        shows ``films.title`` (through inventory), an address ``cities.name`` and
        ``countries.name``. Outer joins on the lookups' keys, so a record is never lost or
        repeated; the join columns themselves are left out (the record has the id)."""
        labels: list[tuple[str, ColumnElement[Any]]] = []
        source: FromClause = table
        aliases = 0

        def walk(owner: EntityConfig, owner_table: FromClause) -> None:
            nonlocal source, aliases
            for other in self.system.entities.values():
                relation = other.relation
                if (
                    not other.reference
                    or relation is None
                    or not relation.lookup
                    or relation.parent != owner.name
                ):
                    continue
                aliases += 1
                alias = tables[other.name].alias(f"ref{aliases}_{other.name}")
                source = source.outerjoin(
                    alias, alias.c[relation.column] == owner_table.c[relation.parent_column]
                )
                joins = self.system.join_columns(other.name)
                labels.extend((f"{other.name}.{f}", alias.c[f]) for f in other.fields if f not in joins)
                walk(other, alias)

        walk(entity, table)
        return labels, source

    # -- changes (fulfilment) ----------------------------------------------------------------

    def erase(self, plan: ErasurePlan) -> Erased:
        """Delete or anonymise the subject's rows as planned, in one transaction.

        Refused before any change when the plan does not fit the data map (an unknown entity or
        field, a parent deleted while a child is kept). Every entity's rows are first resolved to
        concrete keys, parents before children: once a parent row is deleted or anonymised its
        children could no longer be traced through it. Entities are then changed children first,
        so foreign keys stay valid. A row already as planned is neither changed nor counted, so
        running the plan again returns zero counts.

        Records the plan keeps whole are left as they are; a record kept in part is anonymised
        except its kept fields (in a ``delete`` entity too). A row that a kept row hangs from
        (its parent, through the relation) is anonymised rather than deleted, its key and join
        columns kept, so the kept row still points at something."""
        steps = self._erasure_steps(plan)
        ordered = [entity for entity in self.system.change_order() if entity.name in steps]
        for entity in ordered:
            if (steps[entity.name].keep or steps[entity.name].keep_fields) and not entity.key:
                raise ConnectorMisconfigured(
                    f"{self.name}: entity '{entity.name}' has records to keep but no 'key' in the data "
                    f"map to name them by ({entity.origin})"
                )
        deleted = {e.name: 0 for e in ordered if steps[e.name].strategy is EntityErasure.DELETE}
        anonymised = {e.name: 0 for e in ordered if steps[e.name].strategy is EntityErasure.ANONYMISE}
        kept = {e.name: 0 for e in ordered if steps[e.name].keep or steps[e.name].keep_fields}
        progress = _Progress(self._heartbeat)
        self._last_match = None
        with self._connect() as conn:
            tables = self._tables(conn)
            rows = self._subject_rows(conn, tables, plan.subject, set(steps), progress)
            forecast = self._forecast(conn, tables, ordered, steps, rows)
            if forecast.refusals:
                # before any change: retrying cannot help, the plan or the map must change
                raise ConnectorRefused(
                    f"{self.name}: the erasure plan is refused: {'; '.join(forecast.refusals)}"
                )
            fates = forecast.fates
            rules_used = [
                (entity, column, rule)
                for entity in ordered
                for fields_kept in fates[entity.name].anonymise
                for column, rule in self._row_rules(entity, steps[entity.name], fields_kept).items()
            ]
            for entity, column, rule in rules_used:
                if rule is FieldErasure.HASH and _python_type(tables[entity.name].c[column]) is not str:
                    raise ConnectorMisconfigured(
                        f"{self.name}: field '{entity.name}.{column}' is to be hashed but its column "
                        "does not hold text"
                    )
            hashing = any(rule is FieldErasure.HASH for _, _, rule in rules_used) or any(
                rule is FieldErasure.HASH for step in steps.values() for rule in step.fields.values()
            )
            try:
                hash_key = bytes.fromhex(plan.hash_key) if hashing else b""
            except ValueError:
                hash_key = b""
            if hashing and not hash_key:
                raise ConnectorMisconfigured(
                    f"{self.name}: the erasure plan hashes fields but has no hex hash key"
                )
            for lookup_name, owner_keys in forecast.detach.items():  # before the owners change
                self._detach(conn, tables, lookup_name, owner_keys, forecast.blank.get(lookup_name), progress)
            for entity in ordered:  # rows that point at others first: foreign keys stay valid
                table = tables[entity.name]
                key_columns = self._row_key(entity, table)
                fate = fates[entity.name]
                if fate.delete:
                    deleted[entity.name] = self._delete_rows(conn, table, key_columns, fate.delete, progress)
                for fields_kept, keys in fate.anonymise.items():
                    rules = self._row_rules(entity, steps[entity.name], fields_kept)
                    changed = self._anonymise_rows(conn, table, key_columns, keys, rules, hash_key, progress)
                    anonymised[entity.name] = anonymised.get(entity.name, 0) + changed
                if entity.name in kept:
                    kept[entity.name] = len(fate.kept)
            conn.commit()
        self._last_match = None
        return Erased(
            system=self.name, deleted=deleted, anonymised=anonymised, kept=kept, shared=dict(forecast.shared)
        )

    def forecast_erasure(self, plan: ErasurePlan) -> ErasureForecast:
        """What :meth:`erase` would do with ``plan``, read from the live database, changing
        nothing: per entity the rows deleted, anonymised, kept, kept because others use them,
        and what a foreign key would refuse. The review shows it before anyone approves."""
        steps = self._erasure_steps(plan)
        ordered = [entity for entity in self.system.change_order() if entity.name in steps]
        self._last_match = None
        with self._connect() as conn:
            tables = self._tables(conn)
            rows = self._subject_rows(conn, tables, plan.subject, set(steps), _Progress(None))
            forecast = self._forecast(conn, tables, ordered, steps, rows)
        self._last_match = None
        return ErasureForecast(
            system=self.name,
            deleted={name: len(fate.delete) for name, fate in forecast.fates.items() if fate.delete},
            anonymised={
                name: sum(len(keys) for keys in fate.anonymise.values())
                for name, fate in forecast.fates.items()
                if fate.anonymise
            },
            kept={name: len(fate.kept) for name, fate in forecast.fates.items() if fate.kept},
            shared=dict(forecast.shared),
            shared_with=dict(forecast.shared_with),
            refusals=list(forecast.refusals),
            detached=sorted(forecast.detach),
            blank=sorted(forecast.blank),
            not_detached=dict(forecast.no_blank),
        )

    def _forecast(
        self,
        conn: Connection,
        tables: dict[str, Table],
        ordered: list[EntityConfig],
        steps: dict[str, EntityErasurePlan],
        rows: dict[str, dict[Key, _Links]],
    ) -> _Forecast:
        """The fates of the subject's rows, the shared rows among them, and the refusals."""
        references = self._references(conn)
        shared, shared_with = self._shared_rows(conn, tables, ordered, rows, references)
        fates = self._fates(ordered, steps, tables, rows, shared)
        refusals = self._refusals(conn, tables, ordered, fates, references)
        detach: dict[str, list[Key]] = {}
        blank: dict[str, dict[str, Any]] = {}
        no_blank: dict[str, str] = {}
        for entity in ordered:
            relation = entity.relation
            if entity.shared != "detach" or relation is None or not shared.get(entity.name):
                continue
            owner = self.system.entities[relation.parent]
            column = tables[owner.name].c[relation.parent_column]
            if not column.nullable:
                # the foreign key takes no NULL: point the person at a fresh blank row instead,
                # if the referenced table can take one; if not, the shared row is kept as it is
                fresh = blank_row(tables[entity.name], relation.column)
                refused = fresh.reason or self._blank_refused(conn, tables[entity.name], fresh.values)
                if refused:
                    no_blank[entity.name] = refused
                    continue
                blank[entity.name] = fresh.values
            values = {rows[entity.name][key].parent for key in shared[entity.name]}
            detach[entity.name] = [
                key
                for key, links in rows.get(owner.name, {}).items()
                if links.joins.get(relation.parent_column) in values
            ]
        return _Forecast(
            fates=fates,
            shared={name: len(keys) for name, keys in shared.items() if keys},
            shared_with=shared_with,
            refusals=refusals,
            detach=detach,
            blank=blank,
            no_blank=no_blank,
        )

    def _blank_refused(self, conn: Connection, table: Table, values: dict[str, Any]) -> str:
        """Try the blank row in a savepoint and roll it back: a check constraint or a trigger
        that reading the schema cannot see refuses it here, in the review, not after approval
        (the database may use up a sequence number; no row is left)."""
        savepoint = conn.begin_nested()
        try:
            conn.execute(insert(table).values(values))
        except (IntegrityError, DataError) as exc:
            return f"the database refuses a blank row ({type(exc.orig).__name__})"
        finally:
            savepoint.rollback()
        return ""

    def _detach(
        self,
        conn: Connection,
        tables: dict[str, Table],
        name: str,
        owner_keys: list[Key],
        blank: dict[str, Any] | None,
        progress: _Progress,
    ) -> None:
        """``shared: detach``: the person's rows stop pointing at a row others use too (their
        foreign key emptied, or where it takes no NULL pointed at a fresh blank row made for
        them); the shared row stays exactly as it is. Runs in the erasure's one transaction: a
        retried erasure finds the person already on their own blank row (not shared, so
        nothing to detach) and makes no second one."""
        relation = self.system.entities[name].relation
        assert relation is not None
        owner = self.system.entities[relation.parent]
        table = tables[owner.name]
        target: Any = None
        if blank is not None:
            made = conn.execute(insert(tables[name]).values(blank))
            (target,) = made.inserted_primary_key or (None,)
            if target is None:
                raise ConnectorRefused(f"{self.name}: {name}: the database gave the fresh blank row no key")
        self._update_rows(
            conn, table, self._row_key(owner, table), owner_keys, {relation.parent_column: target}, progress
        )

    def _references(self, conn: Connection) -> list[_Reference]:
        """Every foreign key of the database into a table of this system (read once per
        database and process): the live constraints, whatever the data map declares."""
        database = self._database()
        with database.lock:
            if database.references is None:
                database.references = _foreign_keys(conn, {e.schema for e in self.system.entities.values()})
            return database.references

    def _shared_rows(
        self,
        conn: Connection,
        tables: dict[str, Table],
        ordered: list[EntityConfig],
        rows: dict[str, dict[Key, _Links]],
        references: list[_Reference],
    ) -> tuple[dict[str, set[Key]], dict[str, dict[str, int]]]:
        """The subject's rows of lookup entities (an address) that rows other than the
        subject's own also point at: another customer, staff, a store. Those are not theirs
        alone to erase. Counted through every live foreign key and the declared lookup."""
        shared: dict[str, set[Key]] = {}
        users: dict[str, dict[str, int]] = {}
        for entity in ordered:
            relation = entity.relation
            if relation is None or not relation.lookup or not rows.get(entity.name):
                continue
            owner = self.system.entities[relation.parent]
            values = {links.parent for links in rows[entity.name].values() if links.parent is not None}
            own: dict[Any, int] = {}
            for links in rows.get(owner.name, {}).values():
                value = links.joins.get(relation.parent_column)
                own[value] = own.get(value, 0) + 1
            pointers = {
                (ref.schema, ref.table, ref.columns[0])
                for ref in references
                if ref.referred == (entity.schema, entity.table)
                and ref.referred_columns == (relation.column,)
            }
            pointers.add((owner.schema, owner.table, relation.parent_column))
            others: dict[Any, int] = {}
            for schema, table_name, column_name in sorted(pointers, key=lambda p: (p[0] or "", p[1], p[2])):
                pointing = sql_table(table_name, sql_column(column_name), schema=schema)
                column = pointing.c[column_name]
                is_owner = (schema, table_name) == (owner.schema, owner.table) and column_name == (
                    relation.parent_column
                )
                for chunk in _chunks(sorted(values, key=str)):
                    statement = select(column, func.count()).where(column.in_(chunk)).group_by(column)
                    for value, count in conn.execute(statement):
                        extra = count - (own.get(value, 0) if is_owner else 0)
                        if extra > 0:
                            others[value] = others.get(value, 0) + extra
                            who = users.setdefault(entity.name, {})
                            who[table_name] = who.get(table_name, 0) + extra
            shared[entity.name] = {key for key, links in rows[entity.name].items() if links.parent in others}
        return shared, users

    def _refusals(
        self,
        conn: Connection,
        tables: dict[str, Table],
        ordered: list[EntityConfig],
        fates: dict[str, _Fate],
        references: list[_Reference],
    ) -> list[str]:
        """Deletions a live foreign key would refuse: rows outside the plan's deletions
        (an undeclared table, a kept entity) still point at a row the plan deletes."""
        out: list[str] = []
        deleting = {entity.name: fates[entity.name].delete for entity in ordered if fates[entity.name].delete}
        by_table = {(e.schema, e.table): e for e in self.system.entities.values()}
        for entity in ordered:
            keys = deleting.get(entity.name)
            if not keys:
                continue
            table = tables[entity.name]
            key_columns = self._row_key(entity, table)
            for ref in references:
                if ref.referred != (entity.schema, entity.table) or ref.ondelete in _FOLLOWS_DELETE:
                    continue
                if len(ref.columns) != 1:
                    continue
                values: set[Any] = set()
                for condition, _ in _in_chunks(key_columns, keys):
                    statement = select(table.c[ref.referred_columns[0]]).where(condition)
                    values.update(value for (value,) in conn.execute(statement))
                pointing = sql_table(ref.table, sql_column(ref.columns[0]), schema=ref.schema)
                column = pointing.c[ref.columns[0]]
                pointers = 0
                for chunk in _chunks(sorted(values, key=str)):
                    pointers += conn.execute(select(func.count()).where(column.in_(chunk))).scalar_one()
                mapped = by_table.get((ref.schema, ref.table))
                if mapped is not None and deleting.get(mapped.name):
                    # the plan deletes those rows itself, first (children before parents)
                    mapped_keys = self._row_key(mapped, tables[mapped.name])
                    mapped_table = tables[mapped.name]
                    for condition, _ in _in_chunks(mapped_keys, deleting[mapped.name]):
                        statement = select(func.count()).where(
                            condition, mapped_table.c[ref.columns[0]].in_(list(values))
                        )
                        pointers -= conn.execute(statement).scalar_one()
                if pointers > 0:
                    out.append(
                        f"{entity.name}: deleting {len(keys)} record(s) would be refused by the foreign key "
                        f"{ref.table}.{ref.columns[0]} -> {entity.table}.{ref.referred_columns[0]} "
                        f"({pointers} row(s) the plan does not delete point at them; declare "
                        f"'{ref.table}' in the data map or keep '{entity.name}', {entity.origin})"
                    )
        return out

    def _fates(
        self,
        ordered: list[EntityConfig],
        steps: dict[str, EntityErasurePlan],
        tables: dict[str, Table],
        rows: dict[str, dict[Key, _Links]],
        shared: dict[str, set[Key]],
    ) -> dict[str, _Fate]:
        """What happens to each of the subject's rows, in change order: a row is kept whole,
        anonymised (keeping which fields), or deleted. A row some surviving child hangs from
        survives too (anonymised), whatever its entity's strategy; so does a lookup row (an
        address) that a surviving owner row points at. A lookup row others use too is kept
        as it is: it is not the person's alone."""
        needed: dict[str, dict[str, set[Any]]] = {}  # parent entity -> join column -> values
        looked_up: dict[str, set[Any]] = {}  # lookup entity -> key values surviving owners use
        fates: dict[str, _Fate] = {}
        for entity in ordered:
            step = steps[entity.name]
            keep = step.kept()
            names = [column.name for column in self._row_key(entity, tables[entity.name])]
            wanted = needed.get(entity.name, {})
            relation = entity.relation
            lookup = relation is not None and relation.lookup
            owner_stays = lookup and relation is not None and relation.parent not in steps
            fate = fates[entity.name] = _Fate()
            for key, links in rows.get(entity.name, {}).items():
                record = row_record_key(entity, dict(zip(names, key, strict=True))) if keep else None
                fields_kept = keep.get(record) if record is not None else None
                if (
                    step.strategy is EntityErasure.KEEP
                    or fields_kept is ALL_FIELDS
                    or key in shared.get(entity.name, ())
                ):
                    fate.kept.append(key)
                elif step.strategy is EntityErasure.ANONYMISE or fields_kept:
                    fate.anonymise.setdefault(fields_kept or frozenset(), []).append(key)
                elif any(links.joins.get(column) in values for column, values in wanted.items()) or (
                    lookup and (owner_stays or links.parent in looked_up.get(entity.name, ()))
                ):
                    fate.anonymise.setdefault(frozenset(), []).append(key)  # a kept row uses it
                else:
                    fate.delete.append(key)
                    continue
                if (
                    relation is not None
                    and not relation.lookup
                    and relation.parent in steps
                    and links.parent is not None
                ):
                    needed.setdefault(relation.parent, {}).setdefault(relation.parent_column, set()).add(
                        links.parent
                    )
                for other in self.system.entities.values():
                    if (
                        other.relation is not None
                        and other.relation.lookup
                        and other.relation.parent == entity.name
                    ):
                        looked_up.setdefault(other.name, set()).add(
                            links.joins.get(other.relation.parent_column)
                        )
        return fates

    def _row_rules(
        self, entity: EntityConfig, step: EntityErasurePlan, fields_kept: frozenset[str]
    ) -> dict[str, FieldErasure]:
        """Each field's rule for a row anonymised with ``fields_kept`` kept: the plan's rules
        (an anonymised entity), or the data map's field rules with every key and join column
        kept (a row of a deleted entity that stays because something of it must)."""
        if step.strategy is EntityErasure.ANONYMISE:
            rules = dict(step.fields)
        else:
            joins = self._join_columns(entity)
            rules = {
                column: FieldErasure.KEEP if column in joins else entity.field_erasure(column)
                for column in entity.fields
            }
        for column in fields_kept:
            if column in rules:
                rules[column] = FieldErasure.KEEP
        return rules

    def rectify(self, changes: Rectification) -> Changed:
        """Set each corrected field on the subject's rows of its entity, in one transaction.
        Only fields declared in the data map can be set, and never the key or join columns
        that rows hang together by. Rows already holding the value are not counted; records
        named in ``changes.exempt`` are left as they are."""
        wanted: dict[str, dict[str, str | None]] = {}
        for change in changes.changes:
            entity = self.system.entities.get(change.entity)
            if entity is None or change.field not in entity.fields:
                raise ConnectorMisconfigured(
                    f"{self.name}: cannot rectify '{change.entity}.{change.field}': the data map "
                    "declares no such field"
                )
            if change.field in self._join_columns(entity):
                raise ValueError(
                    f"{self.name}: '{change.entity}.{change.field}' is a key or join column: "
                    "correct it in the system itself"
                )
            values = wanted.setdefault(change.entity, {})
            if change.field in values and values[change.field] != change.value:
                raise ValueError(
                    f"{self.name}: two different corrections of '{change.entity}.{change.field}'"
                )
            values[change.field] = change.value
        return self._set_fields(changes.subject, wanted, frozenset(changes.exempt))

    def restrict(self, subject: Subject) -> Changed:
        """Set every entity's restriction column (Art. 18) on the subject's rows; entities
        without one are untouched and not reported."""
        return self.mark(subject, Marker.RESTRICTION)

    def mark(self, subject: Subject, marker: Marker, exempt: frozenset[str] = frozenset()) -> Changed:
        """Set every entity's ``marker`` column to its value on the subject's rows (objection:
        marketing off; opt-out: no sale or sharing; ...); entities without one are untouched
        and not reported."""
        return self._set_fields(subject, self._markers(marker), exempt)

    def marks(self, subject: Subject, marker: Marker, exempt: frozenset[str] = frozenset()) -> Marked:
        """Count the subject's rows that carry ``marker`` and those that do not (read only)."""
        wanted = self._markers(marker)
        ordered = [entity for entity in self.system.ordered_entities() if entity.name in wanted]
        marked = {entity.name: 0 for entity in ordered}
        unmarked = {entity.name: 0 for entity in ordered}
        if not ordered:
            return Marked(self.name, marked, unmarked)
        progress = _Progress(self._heartbeat)
        self._last_match = None
        with self._connect() as conn:
            tables = self._tables(conn)
            rows = self._subject_rows(conn, tables, subject, set(wanted), progress)
            for entity in ordered:
                table = tables[entity.name]
                key_columns = self._row_key(entity, table)
                ((column, value),) = wanted[entity.name].items()
                target = _column_value(table.c[column], f"{entity.name}.{column}", value)
                keys = self._not_exempt(entity, key_columns, list(rows[entity.name]), exempt)
                for condition, _ in _in_chunks(key_columns, keys):
                    for (current,) in conn.execute(select(table.c[column]).where(condition)):
                        if current == target:
                            marked[entity.name] += 1
                        else:
                            unmarked[entity.name] += 1
        self._last_match = None
        return Marked(self.name, marked, unmarked)

    def _markers(self, marker: Marker) -> dict[str, dict[str, str | None]]:
        wanted: dict[str, dict[str, str | None]] = {}
        for entity in self.system.entities.values():
            where = entity.marker(marker)
            if where is not None:
                wanted[entity.name] = {where[0]: where[1]}
        return wanted

    def _not_exempt(
        self, entity: EntityConfig, key_columns: list[Column[Any]], keys: list[Key], exempt: frozenset[str]
    ) -> list[Key]:
        """The keys whose records are not in ``exempt`` (record keys)."""
        if not exempt:
            return keys
        if not entity.key:
            if any(key.startswith(f"{entity.name}#") for key in exempt):
                raise ConnectorMisconfigured(
                    f"{self.name}: entity '{entity.name}' has exempt records but no 'key' in the data "
                    f"map to name them by ({entity.origin})"
                )
            return keys
        names = [column.name for column in key_columns]
        return [
            key for key in keys if row_record_key(entity, dict(zip(names, key, strict=True))) not in exempt
        ]

    def _erasure_steps(self, plan: ErasurePlan) -> dict[str, EntityErasurePlan]:
        """The plan's delete and anonymise steps by entity, every anonymised field's rule filled
        in; refused (before any change) when it does not fit the data map."""
        if plan.system != self.name:
            raise ConnectorMisconfigured(f"{self.name}: the erasure plan is for system '{plan.system}'")
        steps: dict[str, EntityErasurePlan] = {}
        for step in plan.entities:
            entity = self.system.entities.get(step.entity)
            if entity is None:
                raise ConnectorMisconfigured(
                    f"{self.name}: the erasure plan names an unknown entity '{step.entity}'"
                )
            if step.entity in steps:
                raise ConnectorMisconfigured(
                    f"{self.name}: entity '{step.entity}' is in the erasure plan twice"
                )
            undeclared = sorted(set(step.fields) - set(entity.fields))
            if undeclared:
                raise ConnectorMisconfigured(
                    f"{self.name}: the erasure plan names fields the data map does not declare for "
                    f"'{step.entity}': {', '.join(undeclared)}"
                )
            kept_undeclared = sorted(
                {name for names in step.keep_fields.values() for name in names} - set(entity.fields)
            )
            if kept_undeclared:
                raise ConnectorMisconfigured(
                    f"{self.name}: the erasure plan keeps fields the data map does not declare for "
                    f"'{step.entity}': {', '.join(kept_undeclared)}"
                )
            if step.strategy is EntityErasure.DELETE:
                steps[step.entity] = EntityErasurePlan(
                    step.entity, step.strategy, keep=list(step.keep), keep_fields=dict(step.keep_fields)
                )
            elif step.strategy is EntityErasure.ANONYMISE:
                # a field the plan does not mention gets the data map's rule (NULL by default)
                rules = {
                    column: step.fields.get(column, entity.field_erasure(column)) for column in entity.fields
                }
                steps[step.entity] = EntityErasurePlan(
                    step.entity,
                    step.strategy,
                    rules,
                    keep=list(step.keep),
                    keep_fields=dict(step.keep_fields),
                )
            else:
                raise ConnectorMisconfigured(
                    f"{self.name}: entity '{step.entity}' cannot be erased by '{step.strategy}' (kept "
                    "entities are left out of the plan)"
                )
        # A deleted parent would leave its children's rows pointing at nothing (and break their
        # foreign key): the children must be deleted too, unless the data map says a parent row
        # that has kept children stays (``keep_if_has``), or the review retains some of the
        # parent's records (an exemption such as ``when: {has: payments}``): those children are
        # followed as kept, and a parent row one of them hangs from survives (whole when
        # retained, else anonymised; see ``_fates``), so nothing is left pointing at nothing.
        orphans = []
        for entity in self.system.ordered_entities():
            relation = entity.relation
            if relation is None or relation.lookup or relation.parent not in steps:
                continue
            own = steps.get(entity.name)
            parent_rule = self.system.entities[relation.parent].erasure
            if own is None and (entity.name in parent_rule.keep_if_has or steps[relation.parent].keep):
                steps[entity.name] = EntityErasurePlan(entity.name, EntityErasure.KEEP)
                continue
            if steps[relation.parent].strategy is EntityErasure.DELETE and (
                own is None or own.strategy is not EntityErasure.DELETE
            ):
                kept = "kept" if own is None else "anonymised"
                orphans.append(f"'{relation.parent}' is deleted but its child '{entity.name}' is {kept}")
        if orphans:
            raise ConnectorMisconfigured(
                f"{self.name}: the erasure plan is refused: {'; '.join(orphans)} (the child rows would "
                "point at deleted rows)"
            )
        return steps

    def _set_fields(
        self, subject: Subject, wanted: dict[str, dict[str, str | None]], exempt: frozenset[str] = frozenset()
    ) -> Changed:
        """Set fixed values (text, converted to each column's type) on the subject's rows,
        except those of records named in ``exempt``."""
        ordered = [entity for entity in self.system.ordered_entities() if entity.name in wanted]
        counts = {entity.name: 0 for entity in ordered}
        if not ordered:
            return Changed(system=self.name, entities=counts)
        progress = _Progress(self._heartbeat)
        self._last_match = None
        with self._connect() as conn:
            tables = self._tables(conn)
            values = {
                entity.name: {
                    column: _column_value(tables[entity.name].c[column], f"{entity.name}.{column}", value)
                    for column, value in wanted[entity.name].items()
                }
                for entity in ordered
            }
            rows = self._subject_rows(conn, tables, subject, set(wanted), progress)
            for entity in ordered:
                table = tables[entity.name]
                key_columns = self._row_key(entity, table)
                counts[entity.name] = self._update_rows(
                    conn,
                    table,
                    key_columns,
                    self._not_exempt(entity, key_columns, list(rows[entity.name]), exempt),
                    values[entity.name],
                    progress,
                )
            conn.commit()
        self._last_match = None
        return Changed(system=self.name, entities=counts)

    def _subject_rows(
        self,
        conn: Connection,
        tables: dict[str, Table],
        subject: Subject,
        wanted: set[str],
        progress: _Progress,
    ) -> dict[str, dict[Key, _Links]]:
        """The subject's rows in every wanted entity (and its ancestors), by row key with how
        they link to parents and children, read before anything changes. Identity rows are the
        persons named by ``subject.person_keys``: looked up by their keys directly (so a row
        whose identifiers were already erased is still found on a retry), and by the
        identifiers as in collect, narrowed to those persons. Children are found through their
        parents' key values, parents first, with IN lists of bounded size."""
        needed: set[str] = set()
        for name in wanted:
            entity: EntityConfig | None = self.system.entities[name]
            while entity is not None and entity.name not in needed:
                needed.add(entity.name)
                entity = self.system.entities[entity.relation.parent] if entity.relation is not None else None
        persons = set(subject.person_keys)
        matched = _rows_by_entity(self._match(conn, tables, subject.identifiers))
        located = {
            name: {key: person for key, person in keys.items() if person in persons}
            for name, keys in matched.items()
        }
        for name, keys in self._keyed(tables, subject.person_keys).items():
            located.setdefault(name, {}).update(keys)
        ordered = [entity for entity in self.system.ordered_entities() if entity.name in needed]
        links: dict[str, list[Key]] = {}  # child entity -> its parent rows' values of the join column
        out: dict[str, dict[Key, _Links]] = {}
        for entity in ordered:
            table = tables[entity.name]
            key_columns = self._row_key(entity, table)
            children = [c for c in ordered if c.relation is not None and c.relation.parent == entity.name]
            joins = sorted({c.relation.parent_column for c in children if c.relation is not None})
            own = [table.c[entity.relation.column]] if entity.relation is not None else []
            columns = [*key_columns, *(table.c[column] for column in joins), *own]
            selectors: list[tuple[list[Column[Any]], list[Key]]] = []
            if entity.identity and located.get(entity.name):
                selectors.append(([table.c[column] for column in entity.key], list(located[entity.name])))
            if entity.relation is not None and links.get(entity.name):
                selectors.append(([table.c[entity.relation.column]], links[entity.name]))
            found: dict[Key, _Links] = {}
            width = len(key_columns)
            for where, values in selectors:
                for condition, _ in _in_chunks(where, values):
                    result = conn.execute(select(*columns).where(condition)).all()
                    for row in result:
                        joined = dict(zip(joins, row[width : width + len(joins)], strict=True))
                        found[tuple(row[:width])] = _Links(joined, row[-1] if own else None)
                    progress.add(len(result))
            out[entity.name] = found
            for child in children:
                assert child.relation is not None
                column = child.relation.parent_column
                links[child.name] = [
                    (value,)
                    for value in dict.fromkeys(link.joins[column] for link in found.values())
                    if value is not None
                ]
        return out

    def _keyed(self, tables: dict[str, Table], person_keys: Sequence[str]) -> dict[str, dict[Key, str]]:
        """entity -> {row key: person key} for person keys of this system's identity entities,
        read from the keys themselves ("customers:42"): whether the row exists is for the query
        that uses them to find out. Keys of other systems, or that cannot be this table's
        (a text where the key is a number), name nothing here."""
        out: dict[str, dict[Key, str]] = {}
        for person in person_keys:
            name, _, rest = person.partition(":")
            entity = self.system.entities.get(name)
            if entity is None or not entity.identity or not entity.key or not rest:
                continue
            parts = [rest] if len(entity.key) == 1 else rest.split("/")
            if len(parts) != len(entity.key):
                continue
            table = tables[entity.name]
            key = tuple(_typed(table.c[column], part) for column, part in zip(entity.key, parts, strict=True))
            if any(value is None for value in key):
                continue
            if _person_key(entity.name, key) == person:
                out.setdefault(entity.name, {})[key] = person
        return out

    def _row_key(self, entity: EntityConfig, table: Table) -> list[Column[Any]]:
        """The columns that identify one row: the data map's key, else the table's primary key."""
        if entity.key:
            return [table.c[column] for column in entity.key]
        primary = list(table.primary_key.columns)
        if not primary:
            raise ConnectorMisconfigured(
                f"{self.name}: entity '{entity.name}' has no key to change its rows by (give it "
                f"'key' in the data map, {entity.origin})"
            )
        return primary

    def _join_columns(self, entity: EntityConfig) -> set[str]:
        """Columns rows hang together by: the key, the relation column, and what children join."""
        return self.system.join_columns(entity.name)

    def _delete_rows(
        self,
        conn: Connection,
        table: Table,
        key_columns: list[Column[Any]],
        keys: list[Key],
        progress: _Progress,
    ) -> int:
        deleted = 0
        for condition, size in _in_chunks(key_columns, keys):
            deleted += conn.execute(delete(table).where(condition)).rowcount
            progress.add(size)
        return deleted

    def _anonymise_rows(
        self,
        conn: Connection,
        table: Table,
        key_columns: list[Column[Any]],
        keys: list[Key],
        rules: dict[str, FieldErasure],
        hash_key: bytes,
        progress: _Progress,
    ) -> int:
        """Apply each field's rule to the rows; returns the rows that changed."""
        fixed: dict[str, Any] = {}  # column -> the value every row gets
        hashed: dict[str, int] = {}  # column -> length of its hash
        for name, rule in rules.items():
            column = table.c[name]
            if rule is FieldErasure.HASH:
                hashed[name] = min(64, getattr(column.type, "length", None) or 64)
            elif rule is FieldErasure.NULL and column.nullable:
                fixed[name] = None
            elif rule in (FieldErasure.NULL, FieldErasure.ANONYMISE):
                # NULL in a NOT NULL column falls back to the placeholder; a number or date that
                # takes no NULL has no neutral value and is left as it is
                placeholder = _placeholder(column)
                if placeholder is not _LEAVE:
                    fixed[name] = placeholder
        names = [*fixed, *hashed]
        if not names:
            return 0
        width = len(key_columns)
        statement = (
            update(table)
            .where(and_(*(column == bindparam(f"_key{i}") for i, column in enumerate(key_columns))))
            .values({table.c[name]: bindparam(f"_new{i}") for i, name in enumerate(names)})
        )
        changed = 0
        for condition, size in _in_chunks(key_columns, keys):
            pending: list[tuple[Key, dict[str, Any]]] = []
            query = select(*key_columns, *(table.c[name] for name in names)).where(condition)
            for row in conn.execute(query).all():
                new = _anonymised(dict(zip(names, row[width:], strict=True)), fixed, hashed, hash_key)
                if new is not None:
                    pending.append((tuple(row[:width]), new))
            if hashed and pending:  # a value per row: one statement, many parameter sets
                params = [
                    {
                        **{f"_key{i}": value for i, value in enumerate(key)},
                        **{f"_new{i}": new[name] for i, name in enumerate(names)},
                    }
                    for key, new in pending
                ]
                conn.execute(statement, params)
            elif pending:  # the same values for every row: one statement per IN list
                for where, _ in _in_chunks(key_columns, [key for key, _ in pending]):
                    conn.execute(update(table).where(where).values({table.c[n]: v for n, v in fixed.items()}))
            changed += len(pending)
            progress.add(size)
        return changed

    def _update_rows(
        self,
        conn: Connection,
        table: Table,
        key_columns: list[Column[Any]],
        keys: list[Key],
        values: dict[str, Any],
        progress: _Progress,
    ) -> int:
        """Set fixed values on the rows that do not hold them yet (compared in Python: MariaDB
        compares text case-insensitively); returns the rows that changed."""
        names = list(values)
        width = len(key_columns)
        changed = 0
        for condition, size in _in_chunks(key_columns, keys):
            query = select(*key_columns, *(table.c[name] for name in names)).where(condition)
            stale = [
                tuple(row[:width])
                for row in conn.execute(query).all()
                if any(current != values[name] for name, current in zip(names, row[width:], strict=True))
            ]
            for where, _ in _in_chunks(key_columns, stale):
                conn.execute(
                    update(table).where(where).values({table.c[name]: values[name] for name in names})
                )
            changed += len(stale)
            progress.add(size)
        return changed

    # -- verification ------------------------------------------------------------------------

    def candidates(self, identifiers: dict[str, str], limit: int = 20) -> list[Candidate]:
        """The person-records (identity entities' rows) that any supplied identifier locates,
        the first ``limit`` by entity and key, each with every identity column's value by kind
        and, through the relations, the latest :data:`TRANSACTIONS_PER_PERSON` transactions of
        every entity with ``transaction``. Whether they are the requester is for
        :func:`dsar.verification.match_identity` to judge, not this method."""
        order = {entity.name: index for index, entity in enumerate(self.system.ordered_entities())}
        with self._connect() as conn:
            tables = self._tables(conn)
            rows = _rows_by_entity(self._match(conn, tables, identifiers))
            found = sorted(
                ((entity, key, person) for entity, keys in rows.items() for key, person in keys.items()),
                key=lambda item: (order[item[0]], item[1]),
            )[: max(0, limit)]
            by_entity: dict[str, list[tuple[Key, str]]] = {}
            for entity_name, key, person in found:
                by_entity.setdefault(entity_name, []).append((key, person))
            out: list[Candidate] = []
            for entity_name, persons in by_entity.items():
                entity = self.system.entities[entity_name]
                table = tables[entity_name]
                key_columns = [table.c[column] for column in entity.key]
                identity = list(entity.identity.items())
                held: dict[Key, tuple[Any, ...]] = {}
                for condition, _ in _in_chunks(key_columns, [key for key, _ in persons]):
                    columns = [*key_columns, *(source_expression(table, column) for column, _ in identity)]
                    for row in conn.execute(select(*columns).where(condition)):
                        held[tuple(row[: len(key_columns)])] = tuple(row[len(key_columns) :])
                for key, person in persons:
                    if key not in held:  # deleted between the match and this read
                        continue
                    values: dict[str, list[str]] = {}
                    contact: str | None = None
                    pairs = [(kind, value) for (_, kind), value in zip(identity, held[key], strict=True)]
                    pairs += self._related_identity(conn, tables, entity, key)
                    for kind, value in pairs:
                        text = _identifier_text(value)
                        if text is None:
                            continue
                        kept = values.setdefault(kind.value, [])
                        if text not in kept:
                            kept.append(text)
                        if kind is IdentifierKind.EMAIL and contact is None and text.strip():
                            contact = text.strip()
                    transactions = self._transactions(conn, tables, entity, key)
                    if transactions:
                        values[IdentifierKind.LAST_TRANSACTION.value] = transactions
                    out.append(Candidate(self.name, person, values, contact))
        return out

    def _related_identity(
        self, conn: Connection, tables: dict[str, Table], person: EntityConfig, key: Key
    ) -> list[tuple[IdentifierKind, Any]]:
        """(kind, stored value) of the identifiers held on the person-record's related rows
        (its address's phone): verification compares them like the record's own."""
        out: list[tuple[IdentifierKind, Any]] = []
        for entity in self.system.ordered_entities():
            if not entity.related_identity:
                continue
            condition = self._descendant_condition(tables, person, key, entity)
            if condition is None:
                continue
            table = tables[entity.name]
            sources = list(entity.related_identity.items())
            statement = select(*(source_expression(table, source) for source, _ in sources)).where(condition)
            for row in conn.execute(statement.limit(TRANSACTIONS_PER_PERSON)):
                out.extend((kind, value) for (_, kind), value in zip(sources, row, strict=True))
        return out

    def _transactions(
        self, conn: Connection, tables: dict[str, Table], person: EntityConfig, key: Key
    ) -> list[str]:
        """``"<reference>|<amount>|<date ISO>"`` of the person-record's latest transactions, in
        every entity with ``transaction`` whose relation chain leads to ``person``."""
        out: list[str] = []
        for entity in self.system.ordered_entities():
            if entity.transaction is None:
                continue
            condition = self._descendant_condition(tables, person, key, entity)
            if condition is None:
                continue
            table = tables[entity.name]
            reference, amount, when = (table.c[column] for column in entity.transaction)
            query = (
                select(reference, amount, when)
                .where(condition)
                .order_by(when.desc(), reference.desc())
                .limit(TRANSACTIONS_PER_PERSON)
            )
            for ref, total, at in conn.execute(query):
                out.append("|".join(_identifier_text(value) or "" for value in (ref, total, at)))
        return out

    def _descendant_condition(
        self, tables: dict[str, Table], person: EntityConfig, key: Key, entity: EntityConfig
    ) -> ColumnElement[bool] | None:
        """The rows of ``entity`` that hang from one row of ``person`` through the relation
        chain (nested ``IN (SELECT ...)``); None when the chain does not lead to ``person``."""
        chain: list[EntityConfig] = []
        current = entity
        while current.name != person.name:
            if current.relation is None or len(chain) > len(self.system.entities):
                return None
            chain.append(current)
            current = self.system.entities[current.relation.parent]
        table = tables[person.name]
        condition: ColumnElement[bool] = and_(
            *(table.c[column] == value for column, value in zip(person.key, key, strict=True))
        )
        for child in reversed(chain):
            relation = child.relation
            assert relation is not None
            parent = tables[relation.parent]
            parents = select(parent.c[relation.parent_column]).where(condition)
            condition = tables[child.name].c[relation.column].in_(parents)
        return condition

    # -- matching ----------------------------------------------------------------------------

    def _matched(
        self, conn: Connection, tables: dict[str, Table], identifiers: dict[str, str]
    ) -> dict[str, dict[str, dict[Key, str]]]:
        asked = tuple(sorted(identifiers.items()))
        if self._last_match is None or self._last_match[0] != asked:
            self._last_match = (asked, self._match(conn, tables, identifiers))
        return self._last_match[1]

    def _match(
        self, conn: Connection, tables: dict[str, Table], identifiers: dict[str, str]
    ) -> dict[str, dict[str, dict[Key, str]]]:
        """kind -> person entity -> {row key: person key} for every supplied identifier that
        matched. A match on a related row (an address's phone, a contact's email) counts for
        the person rows its relation chain leads to: a shared address's phone points at every
        person living there, as it should, and never at an "address person"."""
        supplied = {identifier_kind(kind): value for kind, value in identifiers.items()}
        matched: dict[str, dict[str, dict[Key, str]]] = {}
        for entity in self.system.entities.values():
            sources = entity.all_identity()
            if not sources:
                continue
            table = tables[entity.name]
            key_columns = (
                [table.c[column] for column in entity.key]
                if entity.identity
                else self._row_key(entity, table)
            )
            width = len(key_columns)
            region = [table.c[entity.phone_region_column]] if entity.phone_region_column else []
            for source, kind in sources.items():
                value = supplied.get(kind)
                if value is None:
                    continue
                criterion = self._criterion(kind, table, source, value)
                if criterion is None:
                    continue
                statement = select(*key_columns, source_expression(table, source), *region).where(
                    criterion.where
                )
                keys: list[Key] = []
                for row in conn.execute(statement):
                    row_region = str(row[width + 1]).strip().upper() if region and row[width + 1] else None
                    if criterion.accept is not None and not criterion.accept(row[width], row_region):
                        continue
                    keys.append(tuple(row[:width]))
                if not keys:
                    continue
                if entity.identity:
                    person, persons = entity, keys
                else:
                    person, persons = self._owners(conn, tables, entity, key_columns, keys)
                found = matched.setdefault(kind.value, {}).setdefault(person.name, {})
                for key in persons:
                    found[key] = _person_key(person.name, key)
        return matched

    def _owners(
        self,
        conn: Connection,
        tables: dict[str, Table],
        entity: EntityConfig,
        key_columns: list[Column[Any]],
        keys: list[Key],
    ) -> tuple[EntityConfig, list[Key]]:
        """The person rows that rows of a related entity belong to, up its relation chain
        (nested ``IN (SELECT ...)``, the reverse of :meth:`_descendant_condition`)."""
        condition: ColumnElement[bool] = next(_in_chunks(key_columns, keys))[0]
        for chunk, _ in list(_in_chunks(key_columns, keys))[1:]:
            condition = or_(condition, chunk)
        current = entity
        while not current.identity:
            relation = current.relation
            assert relation is not None  # the data map traces every entity to a person
            table = tables[current.name]
            parent = tables[relation.parent]
            inner = select(table.c[relation.column]).where(condition)
            condition = parent.c[relation.parent_column].in_(inner)
            current = self.system.entities[relation.parent]
        table = tables[current.name]
        key_columns = [table.c[column] for column in current.key]
        rows = conn.execute(select(*key_columns).where(condition).distinct()).all()
        return current, [tuple(row) for row in rows]

    def _criterion(self, kind: IdentifierKind, table: Table, source: str, value: str) -> _Criterion | None:
        """The normalised comparison for one kind, or None when the value cannot match at all.
        The left side is always :func:`match_expression`, which the indexes are built from."""
        if not value.strip():
            return None
        columns = identity_columns(source)
        if len(columns) > 1:  # a name in several columns: the whole, and its last part indexed
            wanted = normalise_name(value)
            words = wanted.split(" ")
            endings = [" ".join(words[i:]) for i in range(1, len(words))] or [wanted]
            last = match_expression(kind, table.c[columns[-1]])
            return _Criterion(and_(last.in_(endings), _folded(source_expression(table, source)) == wanted))
        column = table.c[source]
        expression = match_expression(kind, column)
        if kind is IdentifierKind.EMAIL:
            return _Criterion(expression == normalise_email(value))
        if kind in (IdentifierKind.NAME, IdentifierKind.POSTAL_ADDRESS):
            return _Criterion(expression == normalise_name(value))
        if kind is IdentifierKind.POSTCODE:
            return _Criterion(expression == normalise_postcode(value))
        if kind is IdentifierKind.PHONE:
            return self._phone_criterion(expression, value)
        typed = _typed(column, value.strip())
        if typed is None:
            return None
        return _Criterion(expression == typed)

    def _phone_criterion(self, tail: ColumnElement[Any], value: str) -> _Criterion | None:
        """The last digits in SQL, then E.164 in Python, each number read in its row's region
        (a column of the row, else the system's): a national number from a customer abroad
        parses only in their own country's plan."""
        default = self.system.phone_region
        digits = re.sub(r"\D", "", value)
        if len(digits) < PHONE_TAIL_DIGITS:
            return None
        wanted = normalise_phone(value, default)
        if wanted is None and not any(e.phone_region_column for e in self.system.entities.values()):
            return None

        def accept(stored: Any, region: str | None) -> bool:
            if stored is None:
                return False
            if region is None or region not in phonenumbers.SUPPORTED_REGIONS:
                return wanted is not None and normalise_phone(str(stored), default) == wanted
            theirs = normalise_phone(value, region)
            return theirs is not None and normalise_phone(str(stored), region) == theirs

        tail_digits = wanted[-PHONE_TAIL_DIGITS:] if wanted is not None else digits[-PHONE_TAIL_DIGITS:]
        return _Criterion(tail == tail_digits, accept)

    def _subject_condition(
        self,
        entity: EntityConfig,
        table: Table,
        tables: dict[str, Table],
        rows: dict[str, dict[Key, str]],
        conditions: dict[str, ColumnElement[bool] | None],
    ) -> ColumnElement[bool] | None:
        """Which rows of ``entity`` belong to the located persons; None when none can.

        Identity rows are selected by their keys; children by ``column IN (SELECT parent_column
        FROM parent WHERE <parent's condition>)``, nested as deep as the relation chain.
        ``conditions`` already holds every parent's condition (entities come parents first).
        """
        parts: list[ColumnElement[bool]] = []
        keys = list(rows.get(entity.name, {}))
        if entity.identity and keys:
            key_columns = [table.c[column] for column in entity.key]
            if len(key_columns) == 1:
                parts.append(key_columns[0].in_([key[0] for key in keys]))
            else:
                parts.append(
                    or_(*(and_(*(c == v for c, v in zip(key_columns, key, strict=True))) for key in keys))
                )
        relation = entity.relation
        if relation is not None:
            parent_condition = conditions.get(relation.parent)
            if parent_condition is not None:
                parent = tables[relation.parent]
                parents = select(parent.c[relation.parent_column]).where(parent_condition)
                parts.append(table.c[relation.column].in_(parents))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else or_(*parts)

    # -- connections and schema --------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection whose failures become connector errors without personal data: driver
        messages can quote the SQL parameters (identifier values), so none is passed on."""
        try:
            database = self._database()
            with database.engine.connect() as conn:
                yield conn
        except ConnectorError:
            raise
        except NoSuchTableError as exc:
            raise ConnectorMisconfigured(f"{self.name}: table '{exc}' does not exist") from None
        except (OperationalError, InterfaceError, DisconnectionError, PoolTimeout):
            raise ConnectorUnavailable(f"{self.name} unreachable") from None
        except (IntegrityError, DataError) as exc:
            # a constraint or a column refused it: the same statement would be refused again
            refused = type(exc.orig).__name__
            raise ConnectorRefused(f"{self.name}: the database refused it ({refused})") from None
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise ConnectorUnavailable(f"{self.name} unreachable") from None
            raise ConnectorError(f"{self.name}: query failed ({type(exc.orig).__name__})") from None

    def _database(self) -> _Database:
        try:
            url = self.system.url()
        except DataMapError as exc:
            raise ConnectorMisconfigured(str(exc)) from None
        with _databases_lock:
            database = _databases.get(url)
            if database is None:
                database = _Database(engine=_create_engine(self.name, self.system.url_env, url))
                _databases[url] = database
        return database

    def _tables(self, conn: Connection) -> dict[str, Table]:
        """Each entity's reflected table, checked against the data map's declared columns."""
        database = self._database()
        out: dict[str, Table] = {}
        with database.lock:
            for entity in self.system.entities.values():
                cache_key = (entity.schema, entity.table)
                table = database.tables.get(cache_key)
                if table is None or any(column not in table.c for column in entity.fields):
                    # first use, or the schema changed since: reflect (again)
                    table = _reflect(self.name, conn, entity, MetaData())
                    database.tables[cache_key] = table
                _check_columns(self.name, entity, table)
                out[entity.name] = table
        return out


@dataclass(frozen=True)
class BlankRow:
    """A new row of a lookup table with nothing of anyone in it, for ``shared: detach`` when
    the owner's foreign key takes no NULL: ``values`` to insert (NULL where a column takes it,
    for text that does not the placeholder anonymising writes, "erased", so the row reads as
    erased and a retried erasure finds it already as planned; columns with a default get it),
    or ``reason`` why the live schema allows no such row."""

    values: dict[str, Any]
    reason: str = ""


def blank_row(table: Table, key: str) -> BlankRow:
    """Read from the live table: its key ``key`` must be the whole primary key and generated by
    the database (a sequence, an identity, AUTO_INCREMENT); every other column must take NULL,
    have a default, or be text without a unique constraint ("erased"). A foreign key or a number
    that takes no NULL has no neutral value to choose."""
    name = table.name
    primary = [c.name for c in table.primary_key.columns]
    if primary != [key]:
        return BlankRow({}, f"'{name}.{key}' is not the whole primary key of '{name}'")
    column = table.c[key]
    if not (column.autoincrement is True or column.identity is not None or column.server_default is not None):
        return BlankRow(
            {}, f"'{name}.{key}' has no value made by the database (a sequence or AUTO_INCREMENT)"
        )
    unique = {c.name for index in table.indexes if index.unique for c in index.columns}
    unique |= {
        c.name
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
        for c in constraint.columns
    }
    values: dict[str, Any] = {}
    for other in table.columns:
        if other.name == key:
            continue
        if other.nullable:
            values[other.name] = None
        elif other.server_default is not None or other.identity is not None:
            continue
        elif other.foreign_keys:
            targets = ", ".join(sorted(fk.target_fullname for fk in other.foreign_keys))
            return BlankRow({}, f"'{name}.{other.name}' is a foreign key ({targets}) that takes no NULL")
        elif _python_type(other) is not str:
            return BlankRow({}, f"'{name}.{other.name}' takes no NULL and has no default")
        elif other.name in unique:
            return BlankRow({}, f"'{name}.{other.name}' takes no NULL and must be unique")
        else:
            values[other.name] = _placeholder(other)  # what anonymising writes: a retry leaves it
    return BlankRow(values)


def _reflect(system: str, conn: Connection, entity: EntityConfig, metadata: MetaData) -> Table:
    try:
        return Table(entity.table, metadata, schema=entity.schema, autoload_with=conn, resolve_fks=False)
    except NoSuchTableError:
        raise ConnectorMisconfigured(
            f"{system}: table '{entity.table}' of entity '{entity.name}' does not exist ({entity.origin})"
        ) from None


def _check_columns(system: str, entity: EntityConfig, table: Table) -> None:
    for column in entity.fields:
        if column not in table.c:
            raise ConnectorMisconfigured(
                f"{system}: table '{entity.table}' has no column '{column}' "
                f"(declared for entity '{entity.name}', {entity.origin})"
            )


# --------------------------------------------------------------------------------------------
# Changes (fulfilment): bounded IN lists, anonymised values, typed corrections.

#: Values per IN list when rows are changed by key (every dialect's parameter limit allows it).
_IN_CHUNK = 1000

#: What an anonymised text field reads, cut to the column's length.
_ERASED = "erased"

#: A placeholder meaning "leave the column as it is".
_LEAVE = object()

_HEX = re.compile(r"[0-9a-f]+")

_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class _Links:
    """How one of the subject's rows hangs together with others: the values of the columns its
    children join on, and the value of its own relation column (which parent row it is of)."""

    joins: dict[str, Any]
    parent: Any


@dataclass(frozen=True)
class _Reference:
    """One live foreign key: ``schema.table(columns) -> referred(referred_columns)``."""

    schema: str | None
    table: str
    columns: tuple[str, ...]
    referred: tuple[str | None, str]
    referred_columns: tuple[str, ...]
    ondelete: str  # "" (NO ACTION / RESTRICT), "CASCADE", "SET NULL", "SET DEFAULT"


#: ON DELETE actions under which deleting the referred row is not refused.
_FOLLOWS_DELETE = frozenset({"CASCADE", "SET NULL", "SET DEFAULT"})


def _foreign_keys(conn: Connection, schemas: set[str | None]) -> list[_Reference]:
    """The foreign keys of every table in ``schemas``, by SQLAlchemy inspection. PostgreSQL's
    partitions repeat their partitioned table's keys: only the partitioned table is read."""
    inspector = inspect(conn)
    partitions: set[str] = set()
    if conn.dialect.name == "postgresql":
        partitions = set(conn.execute(text("SELECT relname FROM pg_class WHERE relispartition")).scalars())
    out: list[_Reference] = []
    for schema in schemas:
        for table_name in inspector.get_table_names(schema=schema):
            if table_name in partitions:
                continue
            for fk in inspector.get_foreign_keys(table_name, schema=schema):
                referred_schema = fk.get("referred_schema") or schema
                if referred_schema == conn.dialect.default_schema_name and schema is None:
                    referred_schema = None
                out.append(
                    _Reference(
                        schema=schema,
                        table=str(table_name),
                        columns=tuple(map(str, fk["constrained_columns"])),
                        referred=(referred_schema, str(fk["referred_table"])),
                        referred_columns=tuple(map(str, fk["referred_columns"])),
                        ondelete=str((fk.get("options") or {}).get("ondelete") or "").upper(),
                    )
                )
    return out


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


@dataclass
class _Forecast:
    fates: dict[str, _Fate]
    shared: dict[str, int]
    shared_with: dict[str, dict[str, int]]
    refusals: list[str]
    #: lookup entity -> the person's owner rows to detach from its shared rows
    detach: dict[str, list[Key]] = field(default_factory=dict)
    #: lookup entity -> the values of the fresh blank row those owners point at instead (their
    #: foreign key takes no NULL); absent: the foreign key is emptied
    blank: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: lookup entity -> why no blank row can be made (the shared row is kept as it is)
    no_blank: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fate:
    """What erasure does to one entity's rows of the subject."""

    delete: list[Key] = field(default_factory=list)
    #: fields kept (none: anonymised by the rules alone) -> the rows anonymised that way
    anonymise: dict[frozenset[str], list[Key]] = field(default_factory=dict)
    kept: list[Key] = field(default_factory=list)  # kept whole


class _Progress:
    """Counts rows and heartbeats every ``HEARTBEAT_EVERY`` of them."""

    def __init__(self, heartbeat: Heartbeat | None) -> None:
        self.heartbeat = heartbeat
        self.rows = 0

    def add(self, rows: int) -> None:
        before = self.rows // HEARTBEAT_EVERY
        self.rows += rows
        if self.heartbeat is not None:
            for _ in range(self.rows // HEARTBEAT_EVERY - before):
                self.heartbeat()


def _in_chunks(columns: list[Column[Any]], keys: Sequence[Key]) -> Iterator[tuple[ColumnElement[bool], int]]:
    """``columns IN keys`` in pieces of at most ``_IN_CHUNK`` values, with each piece's size."""
    size = max(1, _IN_CHUNK // len(columns))
    for start in range(0, len(keys), size):
        chunk = keys[start : start + size]
        if len(columns) == 1:
            yield columns[0].in_([key[0] for key in chunk]), len(chunk)
        else:
            yield (
                or_(*(and_(*(c == v for c, v in zip(columns, key, strict=True))) for key in chunk)),
                len(chunk),
            )


def _placeholder(column: Column[Any]) -> Any:
    """ "erased" (cut to the column's length) in a text column; elsewhere NULL, or ``_LEAVE``
    when the column takes no NULL (a number or a date has no neutral value)."""
    if _python_type(column) is str:
        length = getattr(column.type, "length", None)
        return _ERASED[:length] if length else _ERASED
    return None if column.nullable else _LEAVE


def _keyed_hash(key: bytes, value: Any, length: int) -> str:
    return hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:length]


def _anonymised(
    current: dict[str, Any], fixed: dict[str, Any], hashed: dict[str, int], key: bytes
) -> dict[str, Any] | None:
    """A row's anonymised values, or None when it already is anonymised.

    A hash is never hashed again (the same person must keep hashing the same way): once the
    row's fixed fields are erased, a hash field that already looks like a hash (lower-case hex
    of the hash's length) is taken to be one. A row whose only rule is ``hash`` and whose
    original value happens to look like a hash is therefore left as it is."""
    fresh = any(current[name] != value for name, value in fixed.items())
    new = dict(fixed)
    changed = fresh
    for name, length in hashed.items():
        value = current[name]
        if value is None or (not fresh and len(value) == length and _HEX.fullmatch(value)):
            new[name] = value
        else:
            new[name] = _keyed_hash(key, value, length)
            changed = True
    return new if changed else None


def _column_value(column: Column[Any], name: str, value: str | None) -> Any:
    """A corrected (or restriction) value as the column's type, like ``_typed``; a ValueError
    naming the field, never the value, when it cannot be one."""
    if value is None:
        if not column.nullable:
            raise ValueError(f"'{name}' cannot be empty")
        return None
    python_type = _python_type(column)
    # MySQL's BOOLEAN is TINYINT(1); bool("false") would be True
    if python_type is bool or (python_type is int and getattr(column.type, "display_width", None) == 1):
        flag = _FLAGS.get(value.strip().lower())
        if flag is None:
            raise ValueError(f"'{name}' takes true or false")
        return flag if python_type is bool else int(flag)
    typed = _typed(column, value if python_type is str else value.strip())
    if typed is None:
        kind = python_type.__name__ if python_type is not None else str(column.type)
        raise ValueError(f"the value for '{name}' is not a valid {kind}")
    length = getattr(column.type, "length", None)
    if isinstance(typed, str) and length is not None and len(typed) > length:
        raise ValueError(f"the value for '{name}' is longer than {length} characters")
    return typed


def database_url(text: str) -> URL:
    """A SQLAlchemy URL, with the installed driver filled in where the URL names none
    (``postgresql://`` means psycopg 3 here, not SQLAlchemy's default psycopg2)."""
    url = make_url(text)
    return url.set(drivername=_DEFAULT_DRIVERS.get(url.drivername, url.drivername))


def _create_engine(system: str, url_env: str, url_text: str) -> Engine:
    try:
        url = database_url(url_text)
    except ArgumentError:
        raise ConnectorMisconfigured(f"{system}: {url_env} does not hold a database URL") from None
    connect_args: dict[str, Any] = {}
    if url.get_driver_name() in _TIMEOUT_DRIVERS and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    try:
        return create_engine(url, hide_parameters=True, pool_pre_ping=True, connect_args=connect_args)
    except NoSuchModuleError:
        raise ConnectorMisconfigured(
            f"{system}: no SQLAlchemy driver installed for '{url.drivername}' (from {url_env})"
        ) from None
    except ArgumentError:
        raise ConnectorMisconfigured(f"{system}: {url_env} does not hold a usable database URL") from None


def _python_type(column: Column[Any]) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:  # a dialect-specific type without a Python equivalent
        return None


def _typed(column: Column[Any], value: str) -> Any:
    """The supplied text as the column's Python type, or None if it cannot be one."""
    python_type = _python_type(column)
    if python_type is None or python_type is str:
        return value
    try:
        if python_type is int:
            number = int(value)
            return number if -_MAX_INT <= number <= _MAX_INT else None
        if python_type is datetime:
            return datetime.fromisoformat(value)
        if python_type is date:
            return date.fromisoformat(value)
    except ValueError:
        return None
    return _coerce(python_type, value)


def _coerce(python_type: type, value: str) -> Any:
    try:
        return python_type(value)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _identifier_text(value: Any) -> str | None:
    """A stored identifier as text: dates and times ISO 8601, decimals exact; None for NULL."""
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _person_key(entity: str, key: Key) -> str:
    return f"{entity}:{'/'.join(str(part) for part in key)}"


def _rows_by_entity(matched: dict[str, dict[str, dict[Key, str]]]) -> dict[str, dict[Key, str]]:
    out: dict[str, dict[Key, str]] = {}
    for per_entity in matched.values():
        for entity, keys in per_entity.items():
            out.setdefault(entity, {}).update(keys)
    return out


def _located(system: str, matched: dict[str, dict[str, dict[Key, str]]]) -> Located:
    matches = {
        kind: sorted({pk for keys in per_entity.values() for pk in keys.values()})
        for kind, per_entity in sorted(matched.items())
    }
    return Located(
        system=system,
        matched_kinds=list(matches),
        person_keys=sorted({pk for keys in matches.values() for pk in keys}),
        matches=matches,
    )


# --------------------------------------------------------------------------------------------
# Matching expressions: what locate compares, and what the indexes index. A database uses an
# expression index only for the identical expression, so both are built here and nowhere else.
# Their constants are SQL literals, not bound parameters: a generic plan (psycopg prepares a
# statement it has run five times; PostgreSQL may then plan it once for any parameters) and
# SQLite's planner can match ``replace(phone, ' ', '')`` with an index, not ``replace(phone, $1, $2)``.


def _sql_text(value: str) -> ColumnElement[str]:
    """A constant string as an SQL literal (only ever this module's own constants)."""
    return literal_column("'" + value.replace("'", "''") + "'", String())


class _Tail(FunctionElement[str]):
    """The last ``n`` characters of a text: ``right(text, n)``, or ``substr(text, -n)`` where
    there is no ``right`` (SQLite, Oracle). Unlike ``LIKE '%123456'``, an index can serve it."""

    name = "right"
    inherit_cache = True

    def __init__(self, text: ColumnElement[Any], n: int) -> None:
        super().__init__(text, literal_column(str(int(n))))
        self.type = String()


@compiles(_Tail)
def _compile_tail(element: _Tail, compiler: SQLCompiler, **kw: Any) -> str:
    text, n = element.clauses
    return f"right({compiler.process(text, **kw)}, {compiler.process(n, **kw)})"


@compiles(_Tail, "sqlite")
@compiles(_Tail, "oracle")
def _compile_tail_substr(element: _Tail, compiler: SQLCompiler, **kw: Any) -> str:
    text, n = element.clauses
    return f"substr({compiler.process(text, **kw)}, -{compiler.process(n, **kw)})"


class _Joined(FunctionElement[str]):
    """Text columns joined with single spaces, NULL parts left out: ``concat_ws(' ', ...)``
    (SQLite before 3.44 has none: ``||`` with ``coalesce`` there)."""

    name = "concat_ws"
    inherit_cache = True

    def __init__(self, *columns: ColumnElement[Any]) -> None:
        super().__init__(*columns)
        self.type = String()


@compiles(_Joined)
def _compile_joined(element: _Joined, compiler: SQLCompiler, **kw: Any) -> str:
    parts = ", ".join(compiler.process(c, **kw) for c in element.clauses)
    return f"concat_ws(' ', {parts})"


@compiles(_Joined, "sqlite")
def _compile_joined_sqlite(element: _Joined, compiler: SQLCompiler, **kw: Any) -> str:
    parts = " || ' ' || ".join(f"coalesce({compiler.process(c, **kw)}, '')" for c in element.clauses)
    return f"replace(trim({parts}), '  ', ' ')"


def source_expression(table: Table, source: str) -> ColumnElement[Any]:
    """An identity source's stored value: a column, or a name held in several (``first+last``)."""
    columns = identity_columns(source)
    if len(columns) == 1:
        return table.c[columns[0]]
    return _Joined(*(table.c[column] for column in columns))


def _folded(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """Emails, names, addresses: ``lower(trim(column))``."""
    return func.lower(func.trim(column))


def _postcode_key(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """Postcodes: ``upper(replace(column, ' ', ''))``."""
    return func.upper(func.replace(column, _sql_text(" "), _sql_text("")))


def _phone_tail(column: Column[Any]) -> ColumnElement[Any]:
    """Phone numbers: the last digits once punctuation is stripped (a number column as text)."""
    stripped: ColumnElement[Any] = column if _python_type(column) is str else cast(column, String(64))
    for char in _PHONE_PUNCTUATION:
        stripped = func.replace(stripped, _sql_text(char), _sql_text(""))
    return _Tail(stripped, PHONE_TAIL_DIGITS)


#: identifier kind -> (index name suffix, the expression compared); other kinds: the bare column
_NORMALISED: dict[IdentifierKind, tuple[str, Callable[[Column[Any]], ColumnElement[Any]]]] = {
    IdentifierKind.EMAIL: ("lower", _folded),
    IdentifierKind.NAME: ("lower", _folded),
    IdentifierKind.POSTAL_ADDRESS: ("lower", _folded),
    IdentifierKind.POSTCODE: ("nospace", _postcode_key),
    IdentifierKind.PHONE: (f"tail{PHONE_TAIL_DIGITS}", _phone_tail),
}


def match_expression(kind: IdentifierKind, column: Column[Any]) -> ColumnElement[Any]:
    """What locate compares with the normalised value for an identity column of ``kind``:
    a normalising expression, or the column itself (ids, account numbers, dates)."""
    normalised = _NORMALISED.get(kind)
    return column if normalised is None else normalised[1](column)


# --------------------------------------------------------------------------------------------
# Indexes for those expressions, the keys and the relations.

#: Dialects with expression (functional) indexes that the planner matches against a query's
#: expressions. MariaDB has none (it would need a generated column); MySQL 8's are not tried.
_EXPRESSION_INDEX_DIALECTS = frozenset({"postgresql", "sqlite", "oracle"})

#: Index names are cut to this length (PostgreSQL's limit is 63, MariaDB's 64).
_MAX_INDEX_NAME = 63


@dataclass(frozen=True)
class MatchingIndex:
    """One index that a query of the connector can use."""

    name: str
    #: the table as the data map names it ("schema.table" when it has a schema)
    table: str
    columns: tuple[str, ...]
    #: "" for the bare column(s); else the normalisation indexed ("lower", "nospace", "tail6")
    normalisation: str
    #: which lookups use it, e.g. "customers.email (email)", "customers key",
    #: "customers.id -> orders.customer_id"
    uses: tuple[str, ...]
    index: Index = field(compare=False, repr=False)

    @property
    def expression(self) -> bool:
        """Whether it indexes an expression (the database needs expression indexes)."""
        return bool(self.normalisation)


@dataclass(frozen=True)
class IndexPlan:
    """The matching indexes of one system, sorted by what its database has."""

    system: str
    dialect: str
    #: missing: :func:`create_matching_indexes` creates these (with ``statements``)
    create: tuple[MatchingIndex, ...]
    #: there already: by name, or (bare columns) an index or key with those leading columns
    present: tuple[MatchingIndex, ...]
    #: expression indexes this database cannot have (MariaDB): those lookups stay full scans
    skipped: tuple[MatchingIndex, ...]
    #: ``CREATE INDEX`` for each of ``create``, compiled for this database
    statements: tuple[str, ...]
    #: why ``skipped`` were skipped ("" when none were)
    skip_reason: str = ""
    #: name of a present index -> what the database has under another name ("primary key")
    covered_by: dict[str, str] = field(default_factory=dict)

    def ddl(self) -> str:
        """The statements to review or run by hand, with the rest as SQL comments."""
        lines = [f"-- dsar: indexes for the lookups of system '{self.system}' ({self.dialect})"]
        for index in self.present:
            covered = self.covered_by.get(index.name)
            also = f" as {covered}" if covered else ""
            lines.append(f"-- present: {index.name}{also} ({_describe(index)})")
        for index in self.skipped:
            lines.append(f"-- skipped: {index.name} ({_describe(index)}): {self.skip_reason}")
        for index, statement in zip(self.create, self.statements, strict=True):
            lines.append(f"-- {_describe(index)}")
            lines.append(statement.strip() + ";")
        if not self.create:
            lines.append("-- nothing to create")
        return "\n".join(lines) + "\n"


def _describe(index: MatchingIndex) -> str:
    return "for " + "; ".join(index.uses)


def matching_indexes(system: SystemConfig, tables: Mapping[str, Table]) -> list[MatchingIndex]:
    """The indexes the connector's queries of ``system`` can use, over ``tables`` (entity ->
    table, reflected or declared): every identity column's match expression (locate), the key
    of every identity entity (collect selects the located rows by key) and both columns of
    every relation (collect's nested ``IN (SELECT ...)``). One index per table, expression and
    columns, whatever uses it; in data map order. Building them attaches them to ``tables``."""
    wanted: dict[tuple[str, str, tuple[str, ...]], tuple[EntityConfig, list[str], IdentifierKind | None]] = {}

    def want(entity: EntityConfig, columns: tuple[str, ...], use: str, kind: IdentifierKind | None) -> None:
        suffix = _NORMALISED[kind][0] if kind in _NORMALISED else ""
        slot = wanted.setdefault((_qualified(entity), suffix, columns), (entity, [], kind))
        if use not in slot[1]:
            slot[1].append(use)

    for entity in system.ordered_entities():
        for source, kind in entity.all_identity().items():
            # a name in several columns is looked up by its last part (the family name)
            column = identity_columns(source)[-1]
            want(entity, (column,), f"{entity.name}.{source} ({kind.value})", kind)
        if entity.identity and entity.key:
            want(entity, entity.key, f"{entity.name} key", None)
        relation = entity.relation
        if relation is not None:
            want(entity, (relation.column,), str(relation), None)
            want(system.entities[relation.parent], (relation.parent_column,), str(relation), None)

    out: list[MatchingIndex] = []
    names: set[str] = set()
    for (qualified, suffix, columns), (entity, uses, identity_kind) in wanted.items():
        table = tables[entity.name]
        name = _index_name(entity.table, columns, suffix, names)
        names.add(name)
        if suffix and identity_kind is not None:
            expressions: list[ColumnElement[Any]] = [match_expression(identity_kind, table.c[columns[0]])]
        else:
            expressions = [table.c[column] for column in columns]
        # _table: SQLAlchemy finds the table of an expression only one function deep
        index = Index(name, *expressions, _table=table)
        out.append(MatchingIndex(name, qualified, columns, suffix, tuple(uses), index))
    return out


def _qualified(entity: EntityConfig) -> str:
    return f"{entity.schema}.{entity.table}" if entity.schema else entity.table


def _index_name(table: str, columns: tuple[str, ...], suffix: str, taken: set[str]) -> str:
    """``dsar_<table>_<columns>[_<normalisation>]``, lower case, at most 63 characters (cut
    names end in a hash of the whole, so they stay distinct and the same from run to run)."""
    whole = "_".join(["dsar", table, *columns, *([suffix] if suffix else [])])
    name = re.sub(r"[^a-z0-9_]+", "_", whole.lower())
    if len(name) > _MAX_INDEX_NAME or name in taken:
        digest = hashlib.sha256(whole.encode()).hexdigest()[:8]
        name = f"{name[: _MAX_INDEX_NAME - 9]}_{digest}"
    return name


def plan_matching_indexes(system: SystemConfig) -> IndexPlan:
    """Which matching indexes ``system``'s database has, lacks, or cannot have (read only)."""
    with SqlConnector(system)._connect() as conn:
        return _plan(system, conn)


def matching_index_ddl(system: SystemConfig) -> str:
    """The ``CREATE INDEX`` statements that :func:`create_matching_indexes` would run on
    ``system``'s database, for an operator to review (or run at a quiet time)."""
    return plan_matching_indexes(system).ddl()


def create_matching_indexes(system: SystemConfig) -> IndexPlan:
    """Create the missing matching indexes on ``system``'s database and return the plan
    carried out: ``plan.create`` now exist, ``plan.present`` were there already, and
    ``plan.skipped`` the database cannot have (MariaDB: expression indexes). Idempotent.

    A plain ``CREATE INDEX`` locks the table against writes while it builds (seconds per
    million rows): on a busy database, run :func:`matching_index_ddl`'s statements by hand
    instead (PostgreSQL: ``CREATE INDEX CONCURRENTLY``)."""
    with SqlConnector(system)._connect() as conn:
        plan = _plan(system, conn)
        if_not_exists = _if_not_exists(conn.dialect)
        for index in plan.create:
            conn.execute(CreateIndex(index.index, if_not_exists=if_not_exists))
        conn.commit()
    return plan


def _plan(system: SystemConfig, conn: Connection) -> IndexPlan:
    metadata = MetaData()  # not the connector's cached tables: the indexes attach to these
    tables: dict[str, Table] = {}
    for entity in system.entities.values():
        tables[entity.name] = _reflect(system.name, conn, entity, metadata)
        _check_columns(system.name, entity, tables[entity.name])
    dialect = conn.dialect
    expressions_supported = dialect.name in _EXPRESSION_INDEX_DIALECTS
    inspector = inspect(conn)
    existing: dict[tuple[str | None, str], tuple[set[str], list[tuple[str, list[str]]]]] = {}
    create: list[MatchingIndex] = []
    present: list[MatchingIndex] = []
    skipped: list[MatchingIndex] = []
    covered_by: dict[str, str] = {}
    for index in matching_indexes(system, tables):
        table = index.index.table
        assert table is not None
        place = (table.schema, table.name)
        if place not in existing:
            existing[place] = _existing_indexes(conn, inspector, table)
        names, leading = existing[place]
        covering = [
            what
            for what, columns in leading
            if not index.expression and set(columns[: len(index.columns)]) == set(index.columns)
        ]
        if index.name in names or covering:
            present.append(index)
            if index.name not in names:
                covered_by[index.name] = covering[0]
        elif index.expression and not expressions_supported:
            skipped.append(index)
        else:
            create.append(index)
    if_not_exists = _if_not_exists(dialect)
    statements = tuple(
        str(CreateIndex(index.index, if_not_exists=if_not_exists).compile(dialect=dialect))
        for index in create
    )
    reason = ""
    if skipped:
        reason = (
            f"{dialect.name} has no expression indexes (MariaDB would need a generated column "
            "holding the expression): these lookups scan the table"
        )
    return IndexPlan(
        system=system.name,
        dialect=dialect.name,
        create=tuple(create),
        present=tuple(present),
        skipped=tuple(skipped),
        statements=statements,
        skip_reason=reason,
        covered_by=covered_by,
    )


def _existing_indexes(
    conn: Connection, inspector: Any, table: Table
) -> tuple[set[str], list[tuple[str, list[str]]]]:
    """The names of a table's indexes, and its plain indexes and keys with their columns."""
    names: set[str] = set()
    leading: list[tuple[str, list[str]]] = []
    for found in inspector.get_indexes(table.name, schema=table.schema):
        if found.get("name"):
            names.add(found["name"])
        if not found.get("expressions") and None not in found["column_names"]:
            leading.append((f"index {found.get('name')}", list(found["column_names"])))
    if conn.dialect.name == "sqlite":  # SQLAlchemy does not reflect its expression indexes
        schema = table.schema
        master = (
            f"{conn.dialect.identifier_preparer.quote(schema)}.sqlite_master" if schema else "sqlite_master"
        )
        found_names = conn.execute(
            text(f"SELECT name FROM {master} WHERE type = 'index' AND tbl_name = :table"),
            {"table": table.name},
        )
        names.update(str(name) for name in found_names.scalars())
    primary = inspector.get_pk_constraint(table.name, schema=table.schema)
    if primary and primary.get("constrained_columns"):
        what = f"primary key {primary['name']}" if primary.get("name") else "primary key"
        leading.append((what, list(primary["constrained_columns"])))
    for unique in inspector.get_unique_constraints(table.name, schema=table.schema):
        what = f"unique constraint {unique['name']}" if unique.get("name") else "unique constraint"
        leading.append((what, list(unique["column_names"])))
    return names, leading


def _if_not_exists(dialect: Dialect) -> bool:
    """``CREATE INDEX IF NOT EXISTS``: PostgreSQL, SQLite and MariaDB have it, MySQL not."""
    if dialect.name == "mysql":
        return bool(getattr(dialect, "is_mariadb", False))
    return dialect.name in {"postgresql", "sqlite"}


__all__ = [
    "PHONE_TAIL_DIGITS",
    "IndexPlan",
    "MatchingIndex",
    "SqlConnector",
    "create_matching_indexes",
    "database_url",
    "dispose_engines",
    "match_expression",
    "matching_index_ddl",
    "matching_indexes",
    "plan_matching_indexes",
]
