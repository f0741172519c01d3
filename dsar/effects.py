"""Effects on the outside world, remembered so that each is reported exactly once.

A Temporal activity may run more than once: a worker killed after the mail relay took a letter,
or after a database committed an erasure, leaves the activity to be tried again, and the retry
must neither send the letter twice nor report the erasure as "0 rows" (it did nothing, because
the first attempt had done it all). Two small tables beside the case register say what was
already done:

* ``sent_letters``: the Message-ID of every letter the relay accepted. The Message-ID is
  derived from the letter's key (case, kind and the case's own counter), so a retried letter
  has the same one, and is not handed to the relay again.
* ``change_applied``: what apply_change changed in each system of a case, added up over its
  attempts, so the audit entry says what the erasure did, not what its last attempt did.

Neither holds personal data: Message-IDs name the case only, counts are per entity.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from dsar.store import _SQLITE_BEGIN_OPTION, UTCDateTime, create_tables, register_engine


class SentLetter(SQLModel, table=True):
    __tablename__ = "sent_letters"

    message_id: str = Field(primary_key=True, max_length=255)
    reference: str = Field(index=True, max_length=40)
    kind: str = Field(max_length=60)
    sent_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class AppliedChange(SQLModel, table=True):
    __tablename__ = "change_applied"

    reference: str = Field(primary_key=True, max_length=40)
    system: str = Field(primary_key=True, max_length=64)
    counts: str = Field(default="{}", sa_type=Text)  # {"deleted": {"orders": 3}, ...}
    attempts: int = 0
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


_TABLES = [SentLetter.__table__, AppliedChange.__table__]  # type: ignore[attr-defined]

#: Per entity counts, by what was done: {"deleted": {"orders": 3}, "changed": {...}}
Counts = dict[str, dict[str, int]]


class EffectsLog:
    """The two tables, on the register's database (or an engine already open on it)."""

    def __init__(self, database: str | Engine) -> None:
        self._owns_engine = not isinstance(database, Engine)
        self.engine = database if isinstance(database, Engine) else register_engine(database)
        self._sqlite = self.engine.dialect.name == "sqlite"
        in_memory = self._sqlite and self.engine.url.database in (None, "", ":memory:")
        self._serial: AbstractContextManager[Any] = threading.Lock() if in_memory else nullcontext()
        create_tables(self.engine, _TABLES)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        with self._serial, Session(self.engine, expire_on_commit=False) as session:
            if write and self._sqlite:
                session.connection(execution_options={_SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            yield session

    # ---- letters

    def was_sent(self, message_id: str) -> bool:
        with self._session() as session:
            return session.get(SentLetter, message_id) is not None

    def mark_sent(self, message_id: str, reference: str, kind: str) -> None:
        try:
            with self._session(write=True) as session:
                session.add(SentLetter(message_id=message_id, reference=reference, kind=kind, sent_at=_now()))
                session.commit()
        except IntegrityError:
            pass  # two attempts raced to the relay: it is marked either way

    def sent(self, reference: str) -> list[tuple[str, str]]:
        """(Message-ID, kind) of every letter of a case the relay accepted."""
        query = select(SentLetter).where(col(SentLetter.reference) == reference)
        with self._session() as session:
            return [(r.message_id, r.kind) for r in session.exec(query)]

    # ---- changes

    def add_applied(self, reference: str, system: str, counts: Counts) -> Counts:
        """Add one attempt's counts to what earlier attempts applied; return the total."""
        for attempt in range(3):
            try:
                return self._add_applied(reference, system, counts)
            except IntegrityError:  # two first attempts at once: the other row is there now
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _add_applied(self, reference: str, system: str, counts: Counts) -> Counts:
        with self._session(write=True) as session:
            row = session.get(AppliedChange, (reference, system), with_for_update=True)
            if row is None:
                row = AppliedChange(reference=reference, system=system, updated_at=_now())
            total: Counts = json.loads(row.counts)
            for what, per in counts.items():
                into = total.setdefault(what, {})
                for entity, n in per.items():
                    into[entity] = into.get(entity, 0) + n
            row.counts = json.dumps(total, sort_keys=True)
            row.attempts += 1
            row.updated_at = _now()
            session.add(row)
            session.commit()
            return total


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = ["AppliedChange", "Counts", "EffectsLog", "SentLetter"]
