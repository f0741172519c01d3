"""The SQL connector: PostgreSQL, MariaDB/MySQL, SQLite and any other SQLAlchemy dialect.

Table and column names come only from the validated data map and are quoted by SQLAlchemy;
identifier values are only ever bound parameters. Tables are reflected (once per database URL
and process) so that a supplied value is converted to the column's type before it reaches the
database: ``"abc"`` never meets an integer ``customer_id`` column, it simply cannot match.

Matching is normalised on both sides (see :mod:`connectors.base`): emails and names by SQL
``lower(trim(...))``, postcodes by ``upper(replace(..., ' ', ''))``, phone numbers by a SQL
filter on their last six digits followed by E.164 comparison in Python over those few
candidate rows (a database cannot parse phone numbers; loading a whole table to do it would not
scale).

``collect`` follows relations with nested ``IN (SELECT ...)`` sub-queries from the matched
person rows down to their children, one streamed query per entity, so memory stays bounded
however many rows the subject has.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    and_,
    cast,
    create_engine,
    func,
    or_,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    NoSuchModuleError,
    NoSuchTableError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.elements import ColumnElement

from connectors.base import (
    HEARTBEAT_EVERY,
    Collected,
    ConnectorError,
    ConnectorMisconfigured,
    ConnectorUnavailable,
    Heartbeat,
    Located,
    Sink,
    identifier_kind,
    normalise_email,
    normalise_name,
    normalise_phone,
    normalise_postcode,
    record_line,
)
from dsar.datamap import DataMapError, EntityConfig, SystemConfig
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

Key = tuple[Any, ...]


@dataclass
class _Database:
    """One database URL's engine (connection pool) and reflected tables, shared by every
    connector for that URL in this process: a worker runs many searches against one system."""

    engine: Engine
    tables: dict[tuple[str | None, str], Table] = field(default_factory=dict)
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
    #: a final check of the stored value in Python, for what SQL cannot normalise (phones)
    accept: Callable[[Any], bool] | None = None


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
            conditions: dict[str, ColumnElement[bool] | None] = {}
            for entity in self.system.ordered_entities():
                table = tables[entity.name]
                condition = self._subject_condition(entity, table, tables, rows, conditions)
                conditions[entity.name] = condition
                counts[entity.name] = 0
                if condition is None:
                    continue
                columns = [table.c[column] for column in entity.fields]
                names = list(entity.fields)
                order = [table.c[column] for column in entity.key] or list(table.primary_key.columns)
                statement = (
                    select(*columns)
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
        """kind -> entity -> {row key: person key} for every supplied identifier that matched."""
        supplied = {identifier_kind(kind): value for kind, value in identifiers.items()}
        matched: dict[str, dict[str, dict[Key, str]]] = {}
        for entity in self.system.identity_entities():
            table = tables[entity.name]
            key_columns = [table.c[column] for column in entity.key]
            for column_name, kind in entity.identity.items():
                value = supplied.get(kind)
                if value is None:
                    continue
                column = table.c[column_name]
                criterion = self._criterion(kind, column, value)
                if criterion is None:
                    continue
                statement = select(*key_columns, column).where(criterion.where)
                for row in conn.execute(statement):
                    if criterion.accept is not None and not criterion.accept(row[-1]):
                        continue
                    key = tuple(row[: len(key_columns)])
                    matched.setdefault(kind.value, {}).setdefault(entity.name, {})[key] = _person_key(
                        entity.name, key
                    )
        return matched

    def _criterion(self, kind: IdentifierKind, column: Column[Any], value: str) -> _Criterion | None:
        """The normalised comparison for one kind, or None when the value cannot match at all."""
        if not value.strip():
            return None
        if kind is IdentifierKind.EMAIL:
            return _Criterion(func.lower(func.trim(column)) == normalise_email(value))
        if kind in (IdentifierKind.NAME, IdentifierKind.POSTAL_ADDRESS):
            return _Criterion(func.lower(func.trim(column)) == normalise_name(value))
        if kind is IdentifierKind.POSTCODE:
            return _Criterion(func.upper(func.replace(column, " ", "")) == normalise_postcode(value))
        if kind is IdentifierKind.PHONE:
            return self._phone_criterion(column, value)
        typed = _typed(column, value.strip())
        if typed is None:
            return None
        return _Criterion(column == typed)

    def _phone_criterion(self, column: Column[Any], value: str) -> _Criterion | None:
        region = self.system.phone_region
        wanted = normalise_phone(value, region)
        if wanted is None:
            return None
        stripped: ColumnElement[Any] = column if _python_type(column) is str else cast(column, String(64))
        for char in _PHONE_PUNCTUATION:
            stripped = func.replace(stripped, char, "")
        last_digits = wanted[-6:]

        def accept(stored: Any) -> bool:
            return stored is not None and normalise_phone(str(stored), region) == wanted

        return _Criterion(stripped.like("%" + last_digits), accept)

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
                    try:
                        table = Table(
                            entity.table,
                            MetaData(),
                            schema=entity.schema,
                            autoload_with=conn,
                            resolve_fks=False,
                        )
                    except NoSuchTableError:
                        raise ConnectorMisconfigured(
                            f"{self.name}: table '{entity.table}' of entity '{entity.name}' does not exist "
                            f"({entity.origin})"
                        ) from None
                    database.tables[cache_key] = table
                for column in entity.fields:
                    if column not in table.c:
                        raise ConnectorMisconfigured(
                            f"{self.name}: table '{entity.table}' has no column '{column}' "
                            f"(declared for entity '{entity.name}', {entity.origin})"
                        )
                out[entity.name] = table
        return out


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


__all__ = ["SqlConnector", "database_url", "dispose_engines"]
