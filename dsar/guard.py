"""What keeps the person's links and forms from being abused, on the case register's database.

* ``used_links``: each link's ``jti`` once it has been used; inserting it is the atomic
  "use", so two clicks at once cannot both get through.
* ``link_refusals``: every refused link (forged, expired, altered, other case, replayed), with
  the case it claimed where the URL named one, so that staff can see a case being probed.
* ``identifier_attempts``: failed attempts per identifier across cases, and the lockout they
  lead to. The identifier is stored only as an HMAC of its kind and normalised value, under a
  key derived from the settings: the table holds no identifier in clear, and its rows cannot be
  checked against a list of guesses without the key.

Synchronous, like ``CaseStore``; async callers run it in a thread.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from dsar.settings import Settings
from dsar.store import _SQLITE_BEGIN_OPTION, UTCDateTime, create_tables, register_engine

# --------------------------------------------------------------------------------------------
# Tables


class UsedLink(SQLModel, table=True):
    __tablename__ = "used_links"

    jti: str = Field(primary_key=True, max_length=64)
    reference: str = Field(index=True, max_length=40)
    purpose: str = Field(max_length=40)
    used_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class LinkRefusal(SQLModel, table=True):
    __tablename__ = "link_refusals"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    reference: str | None = Field(default=None, index=True, nullable=True, max_length=40)
    purpose: str = Field(max_length=40)
    reason: str = Field(max_length=20)


class IdentifierAttempt(SQLModel, table=True):
    __tablename__ = "identifier_attempts"

    key_hash: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


_TABLES = [UsedLink.__table__, LinkRefusal.__table__, IdentifierAttempt.__table__]  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Refusal:
    at: datetime
    reference: str | None
    purpose: str
    reason: str


# --------------------------------------------------------------------------------------------
# Identifier keys


def normalise_identifier(kind: str, value: str) -> str:
    """One spelling per identifier, so that "cv3 4lp" and "CV34LP" count as the same postcode
    (the same rules as matching, where they exist)."""
    from connectors.base import normalise_email, normalise_name, normalise_phone, normalise_postcode

    text = unicodedata.normalize("NFKC", value).strip()
    if kind == "email":
        return normalise_email(text)
    if kind == "phone":
        return normalise_phone(text) or "".join(ch for ch in text if ch.isdigit() or ch == "+")
    if kind == "postcode":
        return normalise_postcode(text)
    if kind == "name":
        return normalise_name(text)
    if kind in ("customer_id", "account_number"):
        return "".join(ch for ch in text if ch.isalnum()).casefold()
    return " ".join(text.split()).casefold()


def attempts_key(settings: Settings) -> bytes:
    """The HMAC key for ``identifier_attempts``, derived from the codec key (which must stay
    stable for the history to be readable, so lockouts survive a link-key rotation)."""
    return hmac.new(settings.codec_key_bytes, b"dsar:identifier-attempts", hashlib.sha256).digest()


# --------------------------------------------------------------------------------------------
# The store


class GuardStore:
    """Used links, refusals and identifier lockouts behind one database URL (or an engine
    already open on it, e.g. ``CaseStore.engine``, which is then shared and not disposed)."""

    def __init__(self, database: str | Engine, hash_key: bytes) -> None:
        if len(hash_key) < 16:
            raise ValueError("the identifier hash key must be at least 16 bytes")
        self._hash_key = hash_key
        self._owns_engine = not isinstance(database, Engine)
        if isinstance(database, Engine):
            self.engine = database
        else:
            self.engine = register_engine(database)
        self._sqlite = self.engine.dialect.name == "sqlite"
        in_memory = self._sqlite and self.engine.url.database in (None, "", ":memory:")
        self._serial: AbstractContextManager[Any] = threading.Lock() if in_memory else nullcontext()
        self._create_tables()

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None) -> GuardStore:
        return cls(engine if engine is not None else settings.resolved_database_url, attempts_key(settings))

    def _create_tables(self) -> None:
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

    # ---- links

    def use_link(self, jti: str, reference: str, purpose: str, at: datetime | None = None) -> bool:
        """Mark a link used; False if it already was (the insert is the check: atomic)."""
        row = UsedLink(jti=jti, reference=reference, purpose=purpose, used_at=at or _now())
        try:
            with self._session(write=True) as session:
                session.add(row)
                session.commit()
        except IntegrityError:
            return False
        return True

    def is_used(self, jti: str) -> bool:
        with self._session() as session:
            return session.get(UsedLink, jti) is not None

    def release_link(self, jti: str) -> None:
        """Make a used link usable again: only when what it was used for never arrived (the
        workflow engine could not be reached), so that the person can simply try again."""
        with self._session(write=True) as session:
            session.exec(delete(UsedLink).where(col(UsedLink.jti) == jti))
            session.commit()

    def record_refusal(
        self, reference: str | None, purpose: str, reason: str, at: datetime | None = None
    ) -> None:
        with self._session(write=True) as session:
            session.add(LinkRefusal(at=at or _now(), reference=reference, purpose=purpose, reason=reason))
            session.commit()

    def refusals(self, reference: str | None) -> list[Refusal]:
        """Refusals for a case, oldest first (``None``: those that named no case)."""
        query = select(LinkRefusal).order_by(col(LinkRefusal.id))
        if reference is None:
            query = query.where(col(LinkRefusal.reference).is_(None))
        else:
            query = query.where(col(LinkRefusal.reference) == reference)
        with self._session() as session:
            return [Refusal(r.at, r.reference, r.purpose, r.reason) for r in session.exec(query)]

    # ---- identifier attempts

    def key_hash(self, kind: str, value: str) -> str:
        message = f"{kind}\x00{normalise_identifier(kind, value)}".encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()

    def record_failure(
        self,
        kind: str,
        value: str,
        max_attempts: int,
        lockout_minutes: int,
        now: datetime | None = None,
    ) -> datetime | None:
        """Count a failed attempt with this identifier; return until when it is locked, if it
        now is. A lockout that has run out starts a new count; attempts while locked keep the
        lockout as it is (they do not extend it, so an attacker cannot lock a person out for ever
        with one request a minute)."""
        if max_attempts < 1 or lockout_minutes < 0:
            raise ValueError("max_attempts must be at least 1 and lockout_minutes not negative")
        at = (now or _now()).astimezone(UTC)
        key = self.key_hash(kind, value)
        for attempt in range(3):
            try:
                return self._record_failure(key, at, max_attempts, lockout_minutes)
            except IntegrityError:  # two first failures at once: the other row is there now
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _record_failure(
        self, key: str, at: datetime, max_attempts: int, lockout_minutes: int
    ) -> datetime | None:
        with self._session(write=True) as session:
            row = session.exec(
                select(IdentifierAttempt).where(col(IdentifierAttempt.key_hash) == key).with_for_update()
            ).first()
            if row is None:
                row = IdentifierAttempt(key_hash=key, failures=0)
                session.add(row)
            if row.locked_until is not None:
                if row.locked_until > at:
                    return row.locked_until
                row.locked_until, row.failures = None, 0
            row.failures += 1
            if row.failures >= max_attempts:
                row.locked_until = at + timedelta(minutes=lockout_minutes)
            locked = row.locked_until
            session.commit()
            return locked

    def is_locked(self, kind: str, value: str, now: datetime | None = None) -> bool:
        at = (now or _now()).astimezone(UTC)
        with self._session() as session:
            row = session.get(IdentifierAttempt, self.key_hash(kind, value))
            return row is not None and row.locked_until is not None and row.locked_until > at

    def standing(self, identifiers: Mapping[str, str], now: datetime | None = None) -> tuple[bool, bool]:
        """(any of these identifiers locked out, any with failures counted), in one read: a
        verification asks both of every identifier it was given."""
        at = (now or _now()).astimezone(UTC)
        keys = [self.key_hash(kind, value) for kind, value in identifiers.items()]
        if not keys:
            return False, False
        with self._session() as session:
            rows = session.exec(
                select(IdentifierAttempt).where(col(IdentifierAttempt.key_hash).in_(keys))
            ).all()
        locked = any(row.locked_until is not None and row.locked_until > at for row in rows)
        return locked, bool(rows)

    def failures(self, kind: str, value: str) -> int:
        """Failed attempts counted so far (0 once a lockout has been cleared)."""
        with self._session() as session:
            row = session.get(IdentifierAttempt, self.key_hash(kind, value))
            return 0 if row is None else row.failures

    def clear(self, kind: str, value: str) -> None:
        """Forget the failures (after a successful verification)."""
        key = self.key_hash(kind, value)
        with self._session(write=True) as session:
            session.exec(delete(IdentifierAttempt).where(col(IdentifierAttempt.key_hash) == key))
            session.commit()


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "GuardStore",
    "IdentifierAttempt",
    "LinkRefusal",
    "Refusal",
    "UsedLink",
    "attempts_key",
    "normalise_identifier",
]
