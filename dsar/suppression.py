"""The suppression list: a person erased (or who objected, or opted out) must not come back by
the side door, through next month's import of a partner's mailing list or an old CSV.

Erasure removes the person from every system; this list remembers, without remembering them,
that they asked. Each entry is a keyed hash (HMAC-SHA256 under ``DSAR_SUPPRESSION_KEY``) of one
identifier, normalised the way the connectors match it ("Margaret.Ellis@Example.com " and
"margaret.ellis@example.com" are one entry, "07911 123456" and "+447911123456" too), with why it
was added and the case it came from. No identifier is stored in clear, and the hashes cannot be
checked against a list of guesses without the key.

Only identifiers that point at one person by themselves are entered (email, phone, customer
number, account number; :data:`dsar.identity.DISTINCTIVE`): a name or a postcode would suppress
a namesake or a whole household.

What an entry means for an import (:meth:`SuppressionList.check`):

* ``erased``: the record must not be added again (UK/EU GDPR Art. 17, CCPA s.1798.105);
* ``objected``: it may be held, but never used for direct marketing (Art. 21(3));
* ``opted_out`` / ``limited``: it may be held, but not sold or shared, or its sensitive data
  used beyond what is necessary (CCPA s.1798.120, s.1798.121).

The table lives in the case register's database, beside the register (``dsar.store``), and is
created the same way on start-up. ``dsar suppression check`` is the import path's check.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import IO, Any

from sqlalchemy import Engine, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from dsar.identity import DISTINCTIVE
from dsar.model import IdentifierKind
from dsar.settings import Settings
from dsar.store import _SQLITE_BEGIN_OPTION, UTCDateTime, create_tables, register_engine


class SuppressionReason(StrEnum):
    """Why an identifier is on the list, and so what an import may do with it."""

    ERASED = "erased"  # must not be added again
    OBJECTED = "objected"  # may be held; no direct marketing
    OPTED_OUT = "opted_out"  # may be held; not sold or shared
    LIMITED = "limited"  # may be held; sensitive data used only as strictly necessary


#: Identifier kinds entered on the list: those that name one person by themselves.
SUPPRESSED_KINDS: frozenset[str] = frozenset(kind.value for kind in DISTINCTIVE)


class SuppressionEntry(SQLModel, table=True):
    """One identifier (as a keyed hash) and why it is suppressed. Inserted, never updated."""

    __tablename__ = "suppression_entries"
    __table_args__ = (UniqueConstraint("key_hash", "reason", name="uq_suppression_key_reason"),)

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=20)
    reason: str = Field(max_length=20)
    reference: str = Field(index=True, max_length=40)  # the case that added it
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


_TABLES = [SuppressionEntry.__table__]  # type: ignore[attr-defined]


def normalise(kind: str, value: str, region: str = "GB") -> str | None:
    """One spelling per identifier, the connectors' own (``connectors.base``): emails folded,
    phones in E.164, numbers trimmed. None when the value cannot be an identifier of its kind
    (an empty string, a phone number that is not one)."""
    from connectors.base import normalise_email, normalise_phone  # connectors import dsar

    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        return None
    if kind == IdentifierKind.EMAIL:
        return normalise_email(text) if "@" in text else None
    if kind == IdentifierKind.PHONE:
        return normalise_phone(text, region)
    if kind == IdentifierKind.DATE_OF_BIRTH:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            return None
    return text  # customer and account numbers: compared exactly, as the SQL connector does


@dataclass(frozen=True)
class SuppressionMatch:
    """What the list says about one candidate record: kinds and reasons, never values."""

    reasons: tuple[str, ...] = ()  # SuppressionReason values, sorted
    kinds: tuple[str, ...] = ()  # which identifier kinds of the record matched

    @property
    def suppressed(self) -> bool:
        return bool(self.reasons)

    @property
    def may_be_added(self) -> bool:
        """False when the person was erased: an import must skip the record."""
        return SuppressionReason.ERASED.value not in self.reasons


class SuppressionList:
    """The suppression entries behind one database URL (or an engine already open on it,
    e.g. ``CaseStore.engine``, which is then shared and not disposed)."""

    def __init__(self, database: str | Engine, key: bytes, *, phone_region: str = "GB") -> None:
        if len(key) < 16:
            raise ValueError("the suppression key must be at least 16 bytes")
        self._key = key
        self._region = phone_region
        self._owns_engine = not isinstance(database, Engine)
        self.engine = database if isinstance(database, Engine) else register_engine(database)
        self._sqlite = self.engine.dialect.name == "sqlite"
        in_memory = self._sqlite and self.engine.url.database in (None, "", ":memory:")
        self._serial: AbstractContextManager[Any] = threading.Lock() if in_memory else nullcontext()
        create_tables(self.engine, _TABLES)

    @classmethod
    def from_settings(
        cls, settings: Settings, engine: Engine | None = None, *, phone_region: str = "GB"
    ) -> SuppressionList:
        database = engine if engine is not None else settings.resolved_database_url
        return cls(database, settings.suppression_key_bytes, phone_region=phone_region)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        with self._serial, Session(self.engine, expire_on_commit=False) as session:
            if write and self._sqlite:
                session.connection(execution_options={_SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            yield session

    def key_hash(self, kind: str, value: str) -> str | None:
        """The entry's hash for one identifier; None when it is not one the list keeps."""
        if kind not in SUPPRESSED_KINDS:
            return None
        normalised = normalise(kind, value, self._region)
        if normalised is None:
            return None
        return hmac.new(self._key, f"{kind}\x00{normalised}".encode(), hashlib.sha256).hexdigest()

    def _hashes(self, identifiers: Mapping[str, str | Iterable[str]]) -> dict[str, str]:
        """hash -> kind, for every suppressible value given (one value or several per kind)."""
        out: dict[str, str] = {}
        for kind, values in identifiers.items():
            for value in [values] if isinstance(values, str) else values:
                digest = self.key_hash(kind, value) if isinstance(value, str) else None
                if digest is not None:
                    out[digest] = kind
        return out

    def add(
        self,
        reference: str,
        reason: SuppressionReason,
        identifiers: Mapping[str, str | Iterable[str]],
        at: datetime | None = None,
    ) -> int:
        """Enter each suppressible identifier for ``reason``; returns how many entries are new.
        Idempotent: an identifier already entered for the reason is left as it is (a retried
        activity, or a second request from the same person)."""
        hashes = self._hashes(identifiers)
        if not hashes:
            return 0
        when = (at or datetime.now(UTC)).astimezone(UTC)
        for attempt in range(3):
            try:
                with self._session(write=True) as session:
                    present = set(
                        session.exec(
                            select(SuppressionEntry.key_hash).where(
                                col(SuppressionEntry.key_hash).in_(list(hashes)),
                                col(SuppressionEntry.reason) == reason.value,
                            )
                        )
                    )
                    new = [digest for digest in hashes if digest not in present]
                    for digest in new:
                        session.add(
                            SuppressionEntry(
                                key_hash=digest,
                                kind=hashes[digest],
                                reason=reason.value,
                                reference=reference,
                                created_at=when,
                            )
                        )
                    session.commit()
                    return len(new)
            except IntegrityError:  # another writer entered one of them meanwhile: look again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def check(self, identifiers: Mapping[str, str | Iterable[str]]) -> SuppressionMatch:
        """Whether any of a candidate record's identifiers is on the list, and why."""
        hashes = self._hashes(identifiers)
        if not hashes:
            return SuppressionMatch()
        with self._session() as session:
            rows = session.exec(
                select(SuppressionEntry.key_hash, SuppressionEntry.reason).where(
                    col(SuppressionEntry.key_hash).in_(list(hashes))
                )
            ).all()
        return SuppressionMatch(
            reasons=tuple(sorted({reason for _, reason in rows})),
            kinds=tuple(sorted({hashes[digest] for digest, _ in rows})),
        )

    def is_suppressed(self, identifiers: Mapping[str, str | Iterable[str]]) -> bool:
        """True when a record with these identifiers must not simply be (re-)added."""
        return self.check(identifiers).suppressed

    def entries(self, reference: str) -> list[tuple[str, str]]:
        """(kind, reason) of the entries a case added, for its file (no values)."""
        with self._session() as session:
            rows = session.exec(
                select(SuppressionEntry.kind, SuppressionEntry.reason)
                .where(col(SuppressionEntry.reference) == reference)
                .order_by(col(SuppressionEntry.id))
            ).all()
        return [(kind, reason) for kind, reason in rows]


# --------------------------------------------------------------------------------------------
# ``dsar suppression check``: the import path's check, one JSON line in, one out.

#: Exit codes: 0 every record may be added, 1 some must not be, 2 unreadable input.
EXIT_OK, EXIT_REFUSED, EXIT_UNREADABLE = 0, 1, 2


def identifiers_of(record: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, list[str]]:
    """A candidate record's identifiers by kind: its columns named in ``fields`` (column ->
    kind), and any column named after a kind itself (``email``, ``phone``, ...)."""
    out: dict[str, list[str]] = {}
    for column, value in record.items():
        kind = fields.get(column, column)
        if kind in SUPPRESSED_KINDS and isinstance(value, str | int) and not isinstance(value, bool):
            out.setdefault(kind, []).append(str(value))
    return out


def check_lines(
    lines: Iterable[str], suppression: SuppressionList, fields: Mapping[str, str], out: IO[str]
) -> int:
    """One answer per candidate record: ``{"line", "add", "reasons", "matched"}``; ``add`` is
    "yes", "no" (erased) or "yes, with marketing off" and the like (objected, opted out)."""
    refused = unreadable = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            unreadable += 1
            out.write(json.dumps({"line": number, "error": "not a JSON object"}) + "\n")
            continue
        match = suppression.check(identifiers_of(record, fields))
        refused += not match.may_be_added
        answer: dict[str, Any] = {
            "line": number,
            "add": _verdict(match),
            "reasons": list(match.reasons),
            "matched": list(match.kinds),
        }
        out.write(json.dumps(answer) + "\n")
    if unreadable:
        return EXIT_UNREADABLE
    return EXIT_REFUSED if refused else EXIT_OK


def _verdict(match: SuppressionMatch) -> str:
    if not match.may_be_added:
        return "no"
    limits = {
        SuppressionReason.OBJECTED.value: "marketing off",
        SuppressionReason.OPTED_OUT.value: "no sale or sharing",
        SuppressionReason.LIMITED.value: "sensitive data limited",
    }
    conditions = [limits[reason] for reason in match.reasons if reason in limits]
    return "yes, with " + " and ".join(conditions) if conditions else "yes"


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="JSON lines, one candidate record each (default: standard input)",
    )
    parser.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="COLUMN=KIND",
        help="a column holding an identifier, e.g. mobile=phone (columns named email, phone, "
        "customer_id or account_number are read as such)",
    )


def run_check(args: argparse.Namespace, settings: Settings | None = None, out: IO[str] = sys.stdout) -> int:
    """``dsar suppression check [--field COLUMN=KIND] [FILE]`` against the register database."""
    fields: dict[str, str] = {}
    for item in args.field:
        column, _, kind = item.partition("=")
        if not column or kind not in SUPPRESSED_KINDS:
            kinds = ", ".join(sorted(SUPPRESSED_KINDS))
            raise ValueError(f"--field {item!r}: expected COLUMN=KIND with KIND one of {kinds}")
        fields[column] = kind
    from dsar.datamap import DataMap  # the controller's phone region reads national numbers

    settings = settings or Settings()
    region = DataMap.load(settings.datamap).controller.phone_region
    suppression = SuppressionList.from_settings(settings, phone_region=region)
    try:
        if args.file:
            with open(args.file, encoding="utf-8") as handle:
                return check_lines(handle, suppression, fields, out)
        return check_lines(sys.stdin, suppression, fields, out)
    finally:
        suppression.close()


__all__ = [
    "SUPPRESSED_KINDS",
    "SuppressionEntry",
    "SuppressionList",
    "SuppressionMatch",
    "SuppressionReason",
    "check_lines",
    "identifiers_of",
    "normalise",
    "run_check",
]
