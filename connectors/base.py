"""What every kind of system (SQL database, object store, manual archive) offers the search stage.

A new system type is one class implementing :class:`Connector` plus data map entries. Results
name identifier *kinds* and opaque person keys, never identifier values, so they can be logged,
shown on a case and kept in workflow history without carrying personal data; the records
themselves are streamed to a sink (the encrypted blob store), never returned.
"""

from __future__ import annotations

import json
import re
import unicodedata
from abc import ABC, abstractmethod
from base64 import b64encode
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

import phonenumbers

from dsar.datamap import EntityConfig, EntityErasure, FieldErasure, Marker, SystemConfig
from dsar.exemptions import record_key
from dsar.model import IdentifierKind

#: Call the heartbeat every this many rows: a Temporal activity that streams a large subject
#: must heartbeat well inside its heartbeat timeout, and one call per row would be wasteful.
HEARTBEAT_EVERY = 500

Heartbeat = Callable[[], None]


@dataclass
class Located:
    """Which supplied identifier kinds exist in a system and which person-records they point to.

    Verification uses this: two kinds matching the *same* person key are two points of
    identity; kinds matching different people (a shared household postcode) are not.
    """

    system: str
    matched_kinds: list[str]  # identifier kinds that matched, never their values
    person_keys: list[str]  # opaque keys of the matched person-records, e.g. "customers:42"
    #: kind -> person keys it matched, so verification can tell whether kinds agree
    matches: dict[str, list[str]] = field(default_factory=dict)
    #: True when keys name records (objects, export lines), not person-records: each record is
    #: then judged on its own evidence (a delivery line and a recording are both the person's)
    per_record: bool = False

    @property
    def found(self) -> bool:
        return bool(self.person_keys)


@dataclass
class Candidate:
    """One person-record a supplied identifier points to, with what it holds, for identity
    verification to compare (:func:`dsar.verification.match_identity`). Unlike :class:`Located`
    it carries identifier values: it stays inside the verification step and is never logged,
    kept in workflow history or shown on a case."""

    system: str
    person_key: str  # e.g. "customers:42", as in Located.person_keys
    #: identifier kind -> the values this person-record holds, raw as stored (dates as ISO
    #: text; last_transaction as "<reference>|<amount>|<date ISO>", latest first)
    values: dict[str, list[str]]
    #: the email address on file, where a confirmation link can be sent
    contact_email: str | None = None


@dataclass
class Collected:
    system: str
    records: int
    entities: dict[str, int]  # entity -> records written (0 for entities searched and empty)


@dataclass
class Subject:
    """Whom a change applies to: the identifiers given (and learned) and the person keys
    verification accepted (``locate``'s keys). Changes touch those persons' records only."""

    identifiers: dict[str, str]
    person_keys: list[str]


@dataclass
class EntityErasurePlan:
    """What erasing does to one entity's records: the data map's strategy, less what the review
    decided to keep (an exemption, a retention duty), record by record.

    Records are named as :func:`dsar.exemptions.record_key` names them (``orders:42``; an S3
    object ``call_audio:recordings/42/1.wav``, with ``/<version id>`` when the entity declares
    ``version_id``). A record kept in part has the listed fields kept and the rest erased:
    anonymised, whatever the entity's strategy. Deleting it would destroy what must be kept, and
    keeping it whole would keep what must go. Where a record cannot be edited field by field
    (an S3 object) it is kept whole instead, and the plan summary says so."""

    entity: str
    strategy: EntityErasure  # delete or anonymise (kept entities are not in the plan)
    #: for ``anonymise``: what happens to each declared field
    fields: dict[str, FieldErasure] = field(default_factory=dict)
    #: records kept whole (their record keys): left exactly as they are
    keep: list[str] = field(default_factory=list)
    #: record key -> the fields kept as they are; the record's other fields are erased
    keep_fields: dict[str, list[str]] = field(default_factory=dict)

    def kept(self) -> dict[str, frozenset[str]]:
        """Record key -> the fields it keeps (:data:`ALL_FIELDS` when kept whole)."""
        out = {key: frozenset(fields) for key, fields in self.keep_fields.items() if fields}
        out.update({key: ALL_FIELDS for key in self.keep})
        return out


#: "Every field is kept": a record kept whole.
ALL_FIELDS: frozenset[str] = frozenset({"*"})


def row_record_key(entity: EntityConfig, values: Mapping[str, Any]) -> str | None:
    """The record key of a stored record from its key values (column -> value as the database
    or store returns it), exactly as :func:`dsar.exemptions.record_key` names the same record
    as the search collected it; None when the entity has no stable key (its records are then
    named by their position in a search, which a change cannot find again)."""
    record = {name: json_value(value) for name, value in values.items()}
    columns = list(entity.key) or [c for c in ("key", "version_id") if record.get(c) is not None]
    if not columns or not all(c in record for c in columns):
        return None
    return record_key(entity, record, 0)


@dataclass
class ErasurePlan:
    """What erasing the subject does in one system, entity by entity.

    Built from the data map's strategies minus exemptions and retention duties (fulfilment);
    the connector runs it in an order that keeps foreign keys valid (children first) and
    running it twice changes nothing more (idempotent)."""

    system: str
    subject: Subject
    entities: list[EntityErasurePlan]
    #: HMAC key for ``hash`` fields, hex: the same person hashes the same way (joins survive)
    hash_key: str = ""

    @classmethod
    def from_datamap(
        cls, system: SystemConfig, subject: Subject, *, hash_key: str = "", skip: frozenset[str] = frozenset()
    ) -> ErasurePlan:
        """Every entity the data map says to delete or anonymise, except those in ``skip``."""
        entities = [
            EntityErasurePlan(
                entity.name,
                entity.erasure.strategy,
                {column: entity.field_erasure(column) for column in entity.fields}
                if entity.erasure.strategy == EntityErasure.ANONYMISE
                else {},
            )
            for entity in system.entities.values()
            if entity.erasure.strategy != EntityErasure.KEEP and entity.name not in skip
        ]
        return cls(system.name, subject, entities, hash_key)


@dataclass
class Erased:
    system: str
    deleted: dict[str, int]  # entity -> rows (objects, versions) deleted
    anonymised: dict[str, int]  # entity -> rows anonymised
    #: entity -> rows left as they were because the plan keeps them (entities with kept records)
    kept: dict[str, int] = field(default_factory=dict)
    #: entity -> the person's rows left as they were because others use them too (an address
    #: shared with another customer, staff or a store): changing them would change their data
    shared: dict[str, int] = field(default_factory=dict)


@dataclass
class ErasureForecast:
    """What an erasure plan would do, worked out on the live database before anything changes
    (in the review, so that a plan that cannot be carried out is seen before approval)."""

    system: str
    deleted: dict[str, int] = field(default_factory=dict)
    anonymised: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    #: entity -> rows kept because others use them, and who: entity -> {table: rows}
    shared: dict[str, int] = field(default_factory=dict)
    shared_with: dict[str, dict[str, int]] = field(default_factory=dict)
    #: what a database constraint would refuse (names and counts only, never a value)
    refusals: list[str] = field(default_factory=list)
    #: lookup entities whose shared rows the person is detached from (``shared: detach``)
    detached: list[str] = field(default_factory=list)
    #: of those, the ones whose foreign key takes no NULL: the person points at a fresh blank row
    blank: list[str] = field(default_factory=list)
    #: lookup entity -> why ``shared: detach`` could not apply (no blank row can be made there):
    #: its shared rows are kept as they are
    not_detached: dict[str, str] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """Plain sentences for the reviewer: shared rows kept, constraints that would refuse."""
        out = []
        for entity, count in sorted(self.shared.items()):
            users = ", ".join(
                f"{table} ({rows})" for table, rows in sorted(self.shared_with.get(entity, {}).items())
            )
            if entity in self.blank:
                done = "left as they are, the person pointed at a fresh blank row instead,"
            elif entity in self.detached:
                done = "the person detached from"
            else:
                done = "kept as they are,"
            why = (
                f"; 'shared: detach' could not apply: its foreign key takes no NULL and no blank row "
                f"can be made ({self.not_detached[entity]})"
                if entity in self.not_detached
                else ""
            )
            out.append(
                f"shared row: {self.system}.{entity}: {count} record(s) {done} because others "
                f"use them too ({users}); changing them would change other people's data{why}"
            )
        out.extend(f"constraint would refuse: {self.system}.{refusal}" for refusal in self.refusals)
        return out


@dataclass
class FieldChange:
    entity: str
    field: str
    value: str | None  # the corrected value, as text; converted to the column's type


@dataclass
class Rectification:
    subject: Subject
    changes: list[FieldChange]
    #: record keys an exemption leaves as they are (the request is refused for those records)
    exempt: list[str] = field(default_factory=list)


@dataclass
class Changed:
    """Rows changed by a rectification or a restriction, per entity."""

    system: str
    entities: dict[str, int]


@dataclass
class Marked:
    """How many of the subject's records carry a marker, per entity that has one: read back
    after :meth:`Connector.mark` to verify it, without changing anything."""

    system: str
    marked: dict[str, int]  # entity -> records carrying the marker
    unmarked: dict[str, int]  # entity -> records that should and do not (exempt ones excluded)


class ConnectorError(Exception):
    """A system could not be searched. Messages name the system, never personal data or secrets."""


class ConnectorUnavailable(ConnectorError):
    """The system is down or unreachable: retry later (the case waits, it does not fail)."""


class ConnectorRefused(ConnectorError):
    """The system refused the change or query for good (a foreign key, a unique or check
    constraint, a value its column cannot hold): retrying cannot help; a person looks at it."""


class ConnectorMisconfigured(ConnectorError):
    """The data map and the system disagree (missing table or column, bad URL): retrying will
    not help; a person must fix the data map or the environment."""


class Sink(Protocol):
    """Where collected records go: anything with ``write`` (a blob writer, a file, a buffer)."""

    def write(self, data: bytes, /) -> int: ...


class Connector(Protocol):
    """One system named in the data map. Implementations take ``(system, heartbeat=None)``."""

    name: str

    def check(self) -> None:
        """Connect and confirm that every table and column of the data map exists."""
        ...

    def locate(self, identifiers: dict[str, str]) -> Located:
        """Find which of the supplied identifiers (kind -> value) exist, and whose they are."""
        ...

    def candidates(self, identifiers: dict[str, str], limit: int = 20) -> list[Candidate]:
        """The person-records any supplied identifier points to (at most ``limit``), each with
        every identifier it holds, for verification to compare. Systems whose records are not
        persons (object stores) return none."""
        ...

    def collect(
        self, identifiers: dict[str, str], sink: Sink, *, person_keys: list[str] | None = None
    ) -> Collected:
        """Stream every record of the located persons to ``sink`` as JSON lines
        ``{"entity": ..., "record": {...}}``. ``person_keys`` (from :meth:`locate`) narrows the
        collection to the persons verification accepted, e.g. one member of a household that
        shares a postcode; without it every located person is collected."""
        ...

    def erase(self, plan: ErasurePlan) -> Erased:
        """Delete or anonymise the subject's records as planned; idempotent."""
        ...

    def rectify(self, changes: Rectification) -> Changed:
        """Set the corrected values on the subject's records (on its identity rows and any
        child rows the change names); idempotent."""
        ...

    def restrict(self, subject: Subject) -> Changed:
        """Mark the subject's records as restricted, as the data map says; idempotent."""
        ...

    def mark(self, subject: Subject, marker: Marker, exempt: frozenset[str] = frozenset()) -> Changed:
        """Set the data map's ``marker`` (restriction, objection, opt-out, limit) on the
        subject's records, except the records named in ``exempt``; idempotent."""
        ...

    def marks(self, subject: Subject, marker: Marker, exempt: frozenset[str] = frozenset()) -> Marked:
        """Read back which of the subject's records carry ``marker`` (nothing is changed)."""
        ...


def connector_for(system: SystemConfig, heartbeat: Heartbeat | None = None) -> Connector:
    """The connector for a data map system, by its ``connector`` type."""
    if system.connector == "sql":
        from connectors.sql import SqlConnector  # imported here: sql imports this module

        return SqlConnector(system, heartbeat=heartbeat)
    if system.connector == "s3":
        from connectors.s3 import S3Connector  # imported here: s3 imports this module (and boto3)

        return S3Connector(system, heartbeat=heartbeat)
    raise ConnectorMisconfigured(f"{system.name}: no connector of type '{system.connector}'")


# --------------------------------------------------------------------------------------------
# Identifier normalisation, shared by every connector so that "07911 123456" finds
# "+447911123456" whether the number sits in a SQL column or an object's metadata.


def identifier_kind(kind: str) -> IdentifierKind:
    """The kind of a supplied identifier; unknown kinds are a caller error, named in the message."""
    try:
        return IdentifierKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in IdentifierKind)
        raise ValueError(f"unknown identifier kind '{kind}' (expected one of: {kinds})") from None


def normalise_email(value: str) -> str:
    """Trimmed and lower-cased. ``str.lower`` rather than ``casefold``: the database side is
    SQL ``lower()``, and both sides must fold the same way."""
    return value.strip().lower()


def normalise_phone(value: str, region: str = "GB") -> str | None:
    """E.164 (``+447911123456``), or None when it cannot be a phone number. ``is_possible``,
    not ``is_valid``: numbers in reserved ranges (Ofcom drama numbers) are still someone's key."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_postcode(value: str) -> str:
    """Upper case without spaces: "cv3 4lp" and "CV34LP" are the same postcode."""
    return re.sub(r"\s+", "", value).upper()


def normalise_name(value: str) -> str:
    """Case-insensitive, inner whitespace collapsed; accents kept (Zoë is not Zoe)."""
    return " ".join(unicodedata.normalize("NFC", value).split()).lower()


# --------------------------------------------------------------------------------------------
# Record serialisation: one JSON line per record, values a person (and a CSV export) can read.


def json_value(value: Any) -> Any:
    """Dates and times as ISO 8601, decimals as exact strings, binary as base64; JSON's own
    types unchanged."""
    if value is None or isinstance(value, str | int | float):
        return value
    return _json_default(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "base64:" + b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):  # array columns
        return [json_value(item) for item in value]
    return str(value)  # anything else a driver returns (IP addresses, ranges): its text form


def json_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-empty lines of a stream of chunks (a blob as ``open_reader`` yields it), one line
    in memory at a time."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        yield from (line for line in lines if line.strip())
    if rest.strip():
        yield rest


def read_records(chunks: Iterable[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(entity, record)`` pairs back from what :func:`record_line` wrote."""
    for line in json_lines(chunks):
        item = json.loads(line)
        yield item["entity"], item["record"]


class RecordSink(ABC):
    """A :class:`Sink` that hands each record to :meth:`take` as its line arrives: a re-search
    checked on the fly, without keeping what it reads."""

    def __init__(self) -> None:
        self._rest = b""

    def write(self, data: bytes, /) -> int:
        self._rest += data
        *lines, self._rest = self._rest.split(b"\n")
        for line in lines:
            if line.strip():
                item = json.loads(line)
                self.take(item["entity"], item["record"])
        return len(data)

    @abstractmethod
    def take(self, entity: str, record: Mapping[str, Any]) -> None: ...


def record_line(entity: str, record: Mapping[str, Any]) -> bytes:
    """The sink format: ``{"entity": "orders", "record": {...}}`` and a newline."""
    body = {"entity": entity, "record": record}
    # ``default`` is only called for values JSON has no type for: the common case stays fast
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode() + b"\n"
