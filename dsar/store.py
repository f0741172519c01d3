"""The case register and the append-only, hash-chained audit log.

The register (``Case``) records only the *shape* of each request: its type, regime, channel,
stage and deadlines. It holds no personal data (no names, emails or identifiers) because it is
shown in operator lists and kept after a case's personal data has been purged, as evidence that
the request was handled on time.

The audit log (``AuditEvent``) is append-only and hash-chained per case: each event carries the
SHA-256 of its own content and of the event before it, so that a regulator (or the DPO) can see
whether anyone edited, deleted or reordered the history after the fact. ``verify_chain`` says
which event is the first one that no longer fits.

The API is synchronous (SQLAlchemy sessions); async callers run it in a thread. SQLite is the
default for development, PostgreSQL is used in production (choose by URL).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import (
    DateTime,
    Dialect,
    Engine,
    Text,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    event,
    insert,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from dsar.model import Channel, Regime, RequestType, Stage

#: ``prev_hash`` of the first event of every case.
GENESIS_HASH = "0" * 64

#: Columns of the register that the workflow may change after intake (``sync_case``).
SYNCABLE_FIELDS = frozenset(
    {
        "stage",
        "due",
        "acknowledgement_due",
        "extended",
        "paused",
        "breached",
        "escalated",
        "waiting_for",
        "outcome",
        "closed_at",
        "request_type",
        "regime",
    }
)

_SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option read by the SQLite ``begin`` hook: which BEGIN to emit.
_SQLITE_BEGIN_OPTION = "dsar_sqlite_begin"


class CaseNotFound(LookupError):
    """No case with this reference exists in the register."""


# --------------------------------------------------------------------------------------------
# Column types and tables


class UTCDateTime(TypeDecorator[datetime]):
    """An instant stored in UTC and always returned tz-aware.

    PostgreSQL keeps ``timestamptz``; SQLite has no time-zone type, so the value is stored as
    naive UTC and the zone is put back on read. Naive datetimes are refused: an instant without
    a zone cannot be placed on a statutory clock.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Case(SQLModel, table=True):
    """One row per request: its shape and deadlines, never the person's data."""

    __tablename__ = "case_register"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(unique=True, index=True)
    idempotency_key: str | None = Field(default=None, unique=True, nullable=True)
    request_type: str
    regime: str
    channel: str
    stage: str = Field(default=Stage.RECEIVED.value, index=True)
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    due: date | None = Field(default=None, index=True)
    acknowledgement_due: date | None = None
    extended: bool = False
    paused: bool = False
    breached: bool = False
    escalated: bool = False
    waiting_for: str | None = None
    outcome: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class AuditEvent(SQLModel, table=True):
    """One link of a case's audit chain. Rows are inserted, never updated or deleted."""

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("reference", "seq", name="uq_audit_event_reference_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(index=True)
    seq: int
    event_key: str | None = Field(default=None, unique=True, nullable=True)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    actor: str
    action: str
    reason: str = Field(default="", sa_type=Text)
    details: str = Field(default="{}", sa_type=Text)
    prev_hash: str
    hash: str


class CasePurge(SQLModel, table=True):
    """A case file whose retention ended: what the purge removed. The audit events it blanked
    keep their hashes and links, so the chain still proves nothing was added, removed or
    reordered; their words (which staff wrote, and may name people) are gone."""

    __tablename__ = "case_purge"

    reference: str = Field(primary_key=True)
    purged_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    blanked: str = Field(default="[]", sa_type=Text)  # JSON list of the seqs whose words were removed


# --------------------------------------------------------------------------------------------
# Values returned to callers (plain dataclasses: readable after the session is closed)


@dataclass(frozen=True)
class NewCase:
    """What intake knows about a new request, minus anything personal."""

    request_type: RequestType
    regime: Regime
    channel: Channel
    received_at: datetime
    idempotency_key: str | None = None


@dataclass(frozen=True)
class CaseRow:
    id: int
    reference: str
    idempotency_key: str | None
    request_type: str
    regime: str
    channel: str
    stage: str
    received_at: datetime
    due: date | None
    acknowledgement_due: date | None
    extended: bool
    paused: bool
    breached: bool
    escalated: bool
    waiting_for: str | None
    outcome: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: dates and datetimes as ISO strings. Field by field (every value is a
        scalar), since ``asdict`` deep-copies and a queue page holds hundreds of rows."""
        return {f: _iso(getattr(self, f)) for f in _CASE_FIELDS}


_CASE_FIELDS = tuple(f.name for f in fields(CaseRow))


@dataclass(frozen=True)
class AuditRow:
    id: int
    reference: str
    seq: int
    event_key: str | None
    at: datetime
    actor: str
    action: str
    reason: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: ``at`` as an ISO string."""
        return {k: _iso(v) for k, v in asdict(self).items()}


#: The fields of an event that its hash covers (``event_hash``'s arguments).
_HASHED_FIELDS = ("reference", "seq", "at", "actor", "action", "reason", "details", "prev_hash")
_AUDIT_COLUMNS = ("reference", "seq", "event_key", "at", "actor", "action", "reason", "prev_hash", "hash")


@dataclass(frozen=True)
class ChainReport:
    """The outcome of checking one case's audit chain."""

    reference: str
    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str | None = None
    #: events whose words a purge removed: their links are checked, their content cannot be
    content_removed: int = 0


# --------------------------------------------------------------------------------------------
# Hashing


def canonical_json(value: Any) -> str:
    """The one serialisation that is hashed, so that anyone can recompute a hash elsewhere."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(
    *,
    reference: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    reason: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the canonical JSON of an event's content and its predecessor's hash."""
    content = {
        "reference": reference,
        "seq": seq,
        "at": _as_utc(at).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "reason": reason,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# The store


@dataclass(frozen=True)
class AuditSpec:
    """One audit event to append with :meth:`CaseStore.record`."""

    action: str
    actor: str
    reason: str = ""
    details: dict[str, Any] | None = None
    event_key: str | None = None


def register_engine(url: str) -> Engine:
    """An engine on the register's database: psycopg 3 for PostgreSQL; SQLite in WAL mode with
    writers that take the lock up front (one shared connection when in memory)."""
    sa_url = make_url(url)
    if sa_url.drivername in ("postgresql", "postgres"):
        sa_url = sa_url.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
    if sa_url.get_backend_name() != "sqlite":
        return create_engine(sa_url, pool_pre_ping=True)
    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000}
    }
    if sa_url.database in (None, "", ":memory:"):
        kwargs["poolclass"] = StaticPool
    engine = create_engine(sa_url, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session for a transaction that reads and then writes, beside the register (sessions,
    assignment, letters filed). On SQLite it takes the write lock up front: a deferred
    transaction that reads and then writes fails at once with "database is locked" when
    another writer committed in between, instead of waiting its turn."""
    with Session(engine, expire_on_commit=False) as session:
        if engine.dialect.name == "sqlite":
            session.connection(execution_options={_SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        yield session


def create_tables(engine: Engine, tables: list[Any]) -> None:
    """Create tables if missing. Several processes (the workers, the HTTP app) may start at once
    against one database: whoever loses the race gets an error (SQLite: "database is locked",
    PostgreSQL: a duplicate type) and tries again, by which time there is nothing left to do."""
    for attempt in range(6):
        try:
            SQLModel.metadata.create_all(engine, tables=tables)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == 5:
                raise
            time.sleep(0.05 * 2**attempt)


class CaseStore:
    """The register and the audit log behind one database URL.

    Thread-safe: every call opens its own session. SQLite serialises writers with
    ``BEGIN IMMEDIATE`` (the database's write lock); PostgreSQL locks the case row.
    """

    def __init__(self, url: str) -> None:
        sa_url = make_url(url)
        if sa_url.drivername in ("postgresql", "postgres"):
            sa_url = sa_url.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
        self._sqlite = sa_url.get_backend_name() == "sqlite"
        in_memory = self._sqlite and sa_url.database in (None, "", ":memory:")
        # One in-memory connection is shared by all threads, so calls must take turns.
        self._serial: AbstractContextManager[Any] = threading.Lock() if in_memory else nullcontext()
        # SQLite has one writer at a time: queue this process's writers on a mutex rather than on
        # SQLite's busy-wait, whose backoff turns contention into multi-second stalls.
        self._writers: AbstractContextManager[Any] = (
            threading.Lock() if self._sqlite and not in_memory else nullcontext()
        )
        self.engine: Engine = register_engine(url)
        self._create_tables()

    def _create_tables(self) -> None:
        """Create the register's tables if missing. Several processes (the worker, the HTTP app)
        may start at once against one database: whoever loses the race to create a table gets
        an error (SQLite: "database is locked", PostgreSQL: a duplicate type) and tries again,
        by which time the tables are there and there is nothing left to do."""
        create_tables(
            self.engine,
            [Case.__table__, AuditEvent.__table__, CasePurge.__table__],  # type: ignore[attr-defined]
        )

    def close(self) -> None:
        """Release pooled connections (tests drop their database afterwards)."""
        self.engine.dispose()

    # ---- sessions

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._serial, Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A session whose transaction already holds SQLite's write lock.

        A deferred SQLite transaction that reads and then writes can fail with SQLITE_BUSY
        without waiting if another writer committed in between; taking the lock up front
        makes writers queue on the busy timeout instead.
        """
        with self._writers, self._serial, Session(self.engine, expire_on_commit=False) as session:
            if self._sqlite:
                session.connection(execution_options={_SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            yield session

    # ---- the register

    def open_case(self, new: NewCase) -> tuple[CaseRow, bool]:
        """Register a request; returns the case and whether it was created just now.

        With an idempotency key a retried intake (a resubmitted form, a redelivered email)
        finds the case it already opened instead of opening a second one.
        """
        received_at = _as_utc(new.received_at)
        request_type = RequestType(new.request_type).value
        regime = Regime(new.regime).value
        channel = Channel(new.channel).value
        if new.idempotency_key is not None:
            existing = self.get_by_key(new.idempotency_key)
            if existing is not None:
                return existing, False
        try:
            with self._write() as session:
                if new.idempotency_key is not None:
                    found = _case_by_key(session, new.idempotency_key)
                    if found is not None:
                        return _case_row(found), False
                now = _now()
                case = Case(
                    reference=f"pending-{uuid4().hex}",  # replaced once the id is known
                    idempotency_key=new.idempotency_key,
                    request_type=request_type,
                    regime=regime,
                    channel=channel,
                    stage=Stage.RECEIVED.value,
                    received_at=received_at,
                    created_at=now,
                    updated_at=now,
                )
                session.add(case)
                session.flush()
                assert case.id is not None
                case.reference = f"DSR-{received_at.year:04d}-{case.id:06d}"
                session.commit()
                return _case_row(case), True
        except IntegrityError:
            # Lost a race with another intake carrying the same key: theirs is the case.
            if new.idempotency_key is None:
                raise
            existing = self.get_by_key(new.idempotency_key)
            if existing is None:
                raise
            return existing, False

    def get(self, reference: str) -> CaseRow | None:
        with self._read() as session:
            case = _case_by_reference(session, reference)
            return _case_row(case) if case is not None else None

    def get_by_key(self, idempotency_key: str) -> CaseRow | None:
        with self._read() as session:
            case = _case_by_key(session, idempotency_key)
            return _case_row(case) if case is not None else None

    def sync_case(self, reference: str, **fields: Any) -> CaseRow:
        """Mirror the workflow's view of the case (stage, deadlines, flags) into the register.

        The workflow is the source of truth; the register is what lists and reports read.
        """
        unknown = sorted(set(fields) - SYNCABLE_FIELDS)
        if unknown:
            raise ValueError(
                f"sync_case: unknown field(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(SYNCABLE_FIELDS))}"
            )
        values = {name: _check_field(name, value) for name, value in fields.items()}
        with self._write() as session:
            case = _case_by_reference(session, reference)
            if case is None:
                raise CaseNotFound(f"no case {reference!r} in the register")
            for name, value in values.items():
                setattr(case, name, value)
            case.updated_at = _now()
            session.add(case)
            session.commit()
            return _case_row(case)

    def queue(
        self,
        stage: str | None = None,
        due_before: date | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[CaseRow]:
        """Cases in the order they fall due (no deadline last), then by reference.

        ``due_before`` is exclusive and leaves out cases without a deadline.
        """
        query = select(*(getattr(Case, f) for f in _CASE_FIELDS))  # rows, not ORM objects
        if stage is not None:
            query = query.where(col(Case.stage) == Stage(stage).value)
        if due_before is not None:
            query = query.where(col(Case.due) < due_before)
        query = (
            query.order_by(col(Case.due).is_(None), col(Case.due), col(Case.reference))
            .limit(limit)
            .offset(offset)
        )
        with self._read() as session:
            return [CaseRow(*r) for r in session.exec(query).all()]

    # ---- the audit log

    def append_audit(
        self,
        reference: str,
        action: str,
        actor: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
        event_key: str | None = None,
    ) -> AuditRow:
        """Add an event to the end of the case's chain.

        ``event_key`` makes a retried writer (a Temporal activity retry) harmless: the event
        already written under that key is returned unchanged. Appenders to the same case are
        serialised so the chain never forks; the (reference, seq) constraint is the backstop.
        """
        if not action or not actor:
            raise ValueError("append_audit: action and actor are required")
        facts = dict(details or {})
        details_json = canonical_json(facts)  # fails early on values JSON cannot carry
        when = _as_utc(at) if at is not None else _now()
        for attempt in (1, 2):
            try:
                return self._append_once(
                    reference, action, actor, reason, facts, details_json, when, event_key
                )
            except IntegrityError:
                if event_key is not None:
                    existing = self._event_by_key(event_key)
                    if existing is not None:
                        return _checked_same_case(existing, reference)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _append_once(
        self,
        reference: str,
        action: str,
        actor: str,
        reason: str,
        facts: dict[str, Any],
        details_json: str,
        when: datetime,
        event_key: str | None,
    ) -> AuditRow:
        with self._write() as session:
            _lock_case(session, reference)
            if event_key is not None:
                found = session.exec(select(AuditEvent).where(col(AuditEvent.event_key) == event_key)).first()
                if found is not None:
                    return _checked_same_case(_audit_row(found), reference)
            spec = AuditSpec(action, actor, reason, facts, event_key)
            (row,) = _append_chain(session, reference, [(spec, facts, details_json)], when)
            session.commit()
            return row

    def record(self, reference: str, entries: Sequence[AuditSpec], at: datetime, **fields: Any) -> CaseRow:
        """Append audit events and update the register row in one transaction, so that the row a
        list shows and the trail a regulator reads never disagree. Entries whose ``event_key`` is
        already written (a retried activity) are skipped."""
        unknown = sorted(set(fields) - SYNCABLE_FIELDS)
        if unknown:
            raise ValueError(f"record: unknown field(s) {', '.join(unknown)}")
        values = {name: _check_field(name, value) for name, value in fields.items()}
        when = _as_utc(at)
        prepared = []
        for e in entries:
            if not e.action or not e.actor:
                raise ValueError("record: every audit entry needs an action and an actor")
            facts = dict(e.details or {})
            prepared.append((e, facts, canonical_json(facts)))
        for attempt in (1, 2):
            try:
                return self._record_once(reference, prepared, when, values)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _record_once(
        self,
        reference: str,
        prepared: list[tuple[AuditSpec, dict[str, Any], str]],
        when: datetime,
        values: dict[str, Any],
    ) -> CaseRow:
        # Prepared Core statements, not ORM objects: this runs at every step of every case.
        with self._write() as session:
            _lock_case(session, reference)
            conn = session.connection()
            keys = [e.event_key for e, _, _ in prepared if e.event_key]
            written: dict[str | None, str] = {}
            if keys:
                written = {key: ref for key, ref in conn.execute(_WRITTEN_KEYS, {"keys": keys})}
            if any(ref != reference for ref in written.values()):
                raise ValueError("record: an event key is already used by another case")
            _append_chain(session, reference, [p for p in prepared if p[0].event_key not in written], when)
            conn.execute(_UPDATE_CASE, {**values, "updated_at": _now(), "ref": reference})
            row = conn.execute(_CASE_ROW, {"ref": reference}).one()
            session.commit()
            return CaseRow(*row)

    def _event_by_key(self, event_key: str) -> AuditRow | None:
        with self._read() as session:
            found = session.exec(select(AuditEvent).where(col(AuditEvent.event_key) == event_key)).first()
            return _audit_row(found) if found is not None else None

    def audit_trail(self, reference: str) -> list[AuditRow]:
        with self._read() as session:
            return [_audit_row(e) for e in _events(session, reference)]

    def verify_chain(self, reference: str) -> ChainReport:
        """Recompute every hash and link of the case's chain; report the first break.

        Raises ``CaseNotFound`` when there is neither a case nor any event for the reference.
        Deleting the *last* events leaves a valid shorter chain: compare ``events`` with a
        count kept elsewhere (an export, the workflow history) to catch that.
        """
        with self._read() as session:
            case = _case_by_reference(session, reference)
            events = _events(session, reference)
            purge = session.get(CasePurge, reference)
        if case is None and not events:
            raise CaseNotFound(f"no case {reference!r} in the register")
        count = len(events)
        blanked = set(json.loads(purge.blanked)) if purge is not None else set()

        def bad(seq: int, problem: str) -> ChainReport:
            return ChainReport(reference, ok=False, events=count, first_bad_seq=seq, problem=problem)

        prev_hash = GENESIS_HASH
        expected = 1
        for ev in events:
            if ev.seq != expected:
                if ev.seq > expected:
                    where = f"after {expected - 1}" if expected > 1 else "before 1"
                    return bad(expected, f"seq gap {where}: next is {ev.seq} (deleted?)")
                return bad(ev.seq, f"event {ev.seq}: seq out of place, expected {expected} (reordered?)")
            try:
                facts = json.loads(ev.details)
            except ValueError:
                return bad(ev.seq, f"event {ev.seq}: details are not valid JSON (edited?)")
            recomputed = event_hash(
                reference=ev.reference,
                seq=ev.seq,
                at=ev.at,
                actor=ev.actor,
                action=ev.action,
                reason=ev.reason,
                details=facts,
                prev_hash=ev.prev_hash,
            )
            if recomputed != ev.hash and ev.seq not in blanked:
                return bad(ev.seq, f"event {ev.seq}: hash does not match its content (edited?)")
            if ev.prev_hash != prev_hash:
                if ev.seq == 1:
                    return bad(1, "event 1: prev_hash is not the start of a chain (edited?)")
                return bad(
                    ev.seq,
                    f"event {ev.seq}: prev_hash does not match event {ev.seq - 1} (deleted or reordered?)",
                )
            prev_hash = ev.hash
            expected += 1
        if case is None:
            return ChainReport(
                reference, ok=False, events=count, problem="case row missing from the register (deleted?)"
            )
        return ChainReport(reference, ok=True, events=count, content_removed=len(blanked))

    def purge_case(self, reference: str) -> int:
        """The end of a case file's retention: remove the words staff wrote in its audit trail
        (reasons, which may name people), keeping every event's hash and link. Idempotent.
        Returns how many events were blanked."""
        with self._write() as session:
            if session.get(CasePurge, reference) is not None:
                return 0
            blanked = []
            for ev in _events(session, reference):
                if ev.reason:
                    ev.reason = ""
                    session.add(ev)
                    blanked.append(ev.seq)
            session.add(CasePurge(reference=reference, purged_at=_now(), blanked=json.dumps(blanked)))
            session.commit()
        return len(blanked)

    def purged(self, reference: str) -> bool:
        with self._read() as session:
            return session.get(CasePurge, reference) is not None


# --------------------------------------------------------------------------------------------
# Helpers


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin), so writers can ask for IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "BEGIN"))


def _now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: give a time zone (UTC expected)")
    return value.astimezone(UTC)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def _check_field(name: str, value: Any) -> Any:
    """Validate one ``sync_case`` value at the edge, so the register never holds junk."""
    if name == "stage":
        return Stage(value).value
    if name in ("due", "acknowledgement_due"):
        if value is None:
            return None
        if isinstance(value, str):  # the workflow carries deadlines as ISO dates (model.py)
            return date.fromisoformat(value)
        if isinstance(value, datetime) or not isinstance(value, date):
            raise ValueError(f"sync_case: {name} must be a date or YYYY-MM-DD, not {value!r}")
        return value
    if name in ("extended", "paused", "breached", "escalated"):
        if not isinstance(value, bool):
            raise ValueError(f"sync_case: {name} must be a bool, not {value!r}")
        return value
    if name == "closed_at":
        return None if value is None else _as_utc(value)
    if name == "request_type":
        return RequestType(value).value
    if name == "regime":
        return Regime(value).value
    if value is not None and not isinstance(value, str):  # waiting_for, outcome
        raise ValueError(f"sync_case: {name} must be a string or None, not {value!r}")
    return value


# The register's hot statements, built once (SQLAlchemy then caches their compiled form).
_REF: BindParameter[str] = bindparam("ref")
_LOCK_CASE = select(col(Case.id)).where(col(Case.reference) == _REF).with_for_update()
_CASE_ROW = select(*(col(getattr(Case, f)) for f in _CASE_FIELDS)).where(col(Case.reference) == _REF)
_UPDATE_CASE = update(Case).where(col(Case.reference) == _REF)  # SET from the parameters given
_WRITTEN_KEYS = select(col(AuditEvent.event_key), col(AuditEvent.reference)).where(
    col(AuditEvent.event_key).in_(bindparam("keys", expanding=True))
)
_CHAIN_END = (
    select(col(AuditEvent.seq), col(AuditEvent.hash))
    .where(col(AuditEvent.reference) == _REF)
    .order_by(col(AuditEvent.seq).desc())
    .limit(1)
)
_INSERT_EVENT = insert(AuditEvent).returning(col(AuditEvent.id))


def _lock_case(session: Session, reference: str) -> None:
    """Lock the case row for this transaction so appenders of one case queue.

    PostgreSQL: FOR UPDATE on the row. SQLite: ignored; BEGIN IMMEDIATE already holds the lock.
    """
    found = session.connection().execute(_LOCK_CASE, {"ref": reference}).first()
    if found is None:
        raise CaseNotFound(f"no case {reference!r} in the register")


def _append_chain(
    session: Session,
    reference: str,
    prepared: Sequence[tuple[AuditSpec, dict[str, Any], str]],
    when: datetime,
) -> list[AuditRow]:
    """Append events to the end of the case's hash chain, inside the caller's transaction (which
    holds the case lock)."""
    conn = session.connection()
    last = conn.execute(_CHAIN_END, {"ref": reference}).first()
    seq, prev_hash = (last[0], last[1]) if last is not None else (0, GENESIS_HASH)
    added = []
    for spec, facts, details_json in prepared:
        seq += 1
        row = AuditRow(
            id=0,
            reference=reference,
            seq=seq,
            event_key=spec.event_key,
            at=when,
            actor=spec.actor,
            action=spec.action,
            reason=spec.reason,
            details=facts,
            prev_hash=prev_hash,
            hash="",
        )
        row = replace(row, hash=event_hash(**{f: getattr(row, f) for f in _HASHED_FIELDS}))
        values = {f: getattr(row, f) for f in _AUDIT_COLUMNS}
        new_id = conn.execute(_INSERT_EVENT, {**values, "details": details_json}).scalar_one()
        assert new_id is not None  # the primary key the database just gave
        added.append(replace(row, id=new_id))
        prev_hash = row.hash
    return added


def _case_by_reference(session: Session, reference: str) -> Case | None:
    return session.exec(select(Case).where(col(Case.reference) == reference)).first()


def _case_by_key(session: Session, idempotency_key: str) -> Case | None:
    return session.exec(select(Case).where(col(Case.idempotency_key) == idempotency_key)).first()


def _events(session: Session, reference: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(col(AuditEvent.reference) == reference).order_by(col(AuditEvent.seq))
    return list(session.exec(query).all())


def _case_row(case: Case) -> CaseRow:
    assert case.id is not None
    return CaseRow(
        id=case.id,
        reference=case.reference,
        idempotency_key=case.idempotency_key,
        request_type=case.request_type,
        regime=case.regime,
        channel=case.channel,
        stage=case.stage,
        received_at=case.received_at,
        due=case.due,
        acknowledgement_due=case.acknowledgement_due,
        extended=case.extended,
        paused=case.paused,
        breached=case.breached,
        escalated=case.escalated,
        waiting_for=case.waiting_for,
        outcome=case.outcome,
        created_at=case.created_at,
        updated_at=case.updated_at,
        closed_at=case.closed_at,
    )


def _audit_row(ev: AuditEvent) -> AuditRow:
    assert ev.id is not None
    return AuditRow(
        id=ev.id,
        reference=ev.reference,
        seq=ev.seq,
        event_key=ev.event_key,
        at=ev.at,
        actor=ev.actor,
        action=ev.action,
        reason=ev.reason,
        details=json.loads(ev.details),
        prev_hash=ev.prev_hash,
        hash=ev.hash,
    )


def _checked_same_case(row: AuditRow, reference: str) -> AuditRow:
    if row.reference != reference:
        raise ValueError(
            f"event_key {row.event_key!r} was already used for {row.reference}, not {reference}: "
            "event keys must be unique across cases"
        )
    return row


__all__ = [
    "GENESIS_HASH",
    "SYNCABLE_FIELDS",
    "AuditEvent",
    "AuditRow",
    "Case",
    "CaseNotFound",
    "CaseRow",
    "CaseStore",
    "ChainReport",
    "NewCase",
    "canonical_json",
    "event_hash",
    "write_session",
]
