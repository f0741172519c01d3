"""The access package: the copy of a person's data, and what the law says must come with it.

One ZIP, streamed into the blob store with bounded memory whatever the person holds:

* ``data/<system>/<entity>.json`` and ``.csv``: the records, with the review's decisions applied
  (a redacted field reads ``[REDACTED: <reason>]``, free text keeps its words with other
  people's details replaced; a withheld record is left out and only counted). For a
  portability request, only what the person *provided* (see :func:`provided_by_the_person`);
* ``data/<system>/found-by-hand.<ext>``: what a person found in a system searched by hand;
* ``report.html``: a self-contained page (no scripts, no external assets) saying what we hold,
  by system and category, and every item of GDPR Art. 15(1)(a)-(h) and 15(2), or the CCPA
  §1798.110 categories, generated from the data map for the data actually found. It summarises
  large entities and points to their files rather than embedding every row;
* ``manifest.json``: SHA-256 and size of every other file.

The ZIP is AES-256 encrypted (WinZip AE-2, pyzipper) with a random password sent by a
separate message, or plain when ``DSAR_PACKAGE_ENCRYPTION=none``. pyzipper, like zipfile,
writes to a non-seekable stream using data descriptors, so the ZIP goes straight into the
blob store's encrypting writer: no plaintext temp file ever holds the person's data.

Why entities are read in passes: ZIP entries are written one after another, so an entity's
JSON file must be complete before its CSV starts. Each pass reads the system's search result
again (decrypting chunk by chunk) and parses only that entity's lines; a first pass, which
parses nothing, finds where each entity's lines are so later passes stop early. The review's
decisions are held in memory only for records that are not plainly disclosed.
"""

from __future__ import annotations

import csv
import email.utils
import hashlib
import io
import json
import re
import secrets
import ssl
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

import httpx
import jinja2
import pyzipper

from dsar.blobs import BlobStore, BlobWriter, LocalBlobStore, S3BlobStore, parse_ref
from dsar.datamap import (
    AutomatedDecision,
    DataMap,
    EntityConfig,
    FieldConfig,
    LegalBasis,
    SystemConfig,
    Transfer,
)
from dsar.exemptions import Basis, CaseFacts, ExemptionCatalogue, Outcome, RecordDecision, record_key
from dsar.model import Regime, RequestType, SystemResult
from dsar.regimes import REGIMES
from dsar.wording import long_date, request_name

__all__ = [
    "EMBED_ROWS",
    "BuiltPackage",
    "PackageError",
    "PushRefused",
    "build_package",
    "package_name",
    "portable_json",
    "provided_by_the_person",
    "push_portable_data",
    "remove_older_copies",
]

#: Version of the package layout, in the manifest.
PACKAGE_FORMAT = 1
#: An entity with at most this many records is shown row by row in the report; a larger one is
#: summarised and the report points to its files (a person cannot read 100,000 rows on a page).
EMBED_ROWS = 50
#: ... and the report shows at most this many rows in all.
EMBED_TOTAL = 600
#: Longer values are cut short in the report (the files hold them whole).
EMBED_TEXT = 300
#: Heartbeat every this many records.
HEARTBEAT_EVERY = 1000

Encryption = Literal["aes", "none"]
Heartbeat = Callable[[], None]

#: Regimes whose portability right covers only processing on consent or contract (GDPR Art
#: 20(1)(a); LGPD Art 18 V with §3): LEGAL.md §6.2, §6.4.
_CONSENT_OR_CONTRACT_ONLY = frozenset({Regime.UK_GDPR, Regime.EU_GDPR, Regime.LGPD})
_GDPR = frozenset({Regime.UK_GDPR, Regime.EU_GDPR})
#: A data map ``source`` that says the person gave the data themselves (or it was observed
#: from their own use of the service: WP29 portability guidance). An empty source means the
#: same: Art. 15(1)(g) asks for the source only "where not collected from the data subject".
#: Only a fallback: a field's ``provided: true|false`` says it outright, and wins.
_PROVIDED_SOURCE = re.compile(
    r"^\s*(you\b|yourself|the (data )?subject|the person|the customer|provided by (you|the))", re.I
)
#: ``{"entity":"orders","record":`` as connectors.base.record_line writes it.
_ENTITY_PREFIX = re.compile(rb'^\{"entity":"([A-Za-z0-9_-]+)","record":')
_TEMPLATES = Path(__file__).resolve().parent / "templates" / "package"

_BASIS_LABELS: dict[LegalBasis, str] = {
    LegalBasis.CONSENT: "your consent (Article 6(1)(a))",
    LegalBasis.CONTRACT: "our contract with you (Article 6(1)(b))",
    LegalBasis.LEGAL_OBLIGATION: "a legal obligation we must meet (Article 6(1)(c))",
    LegalBasis.VITAL_INTERESTS: "protecting someone's life (Article 6(1)(d))",
    LegalBasis.PUBLIC_TASK: "a task in the public interest (Article 6(1)(e))",
    LegalBasis.LEGITIMATE_INTERESTS: "our legitimate interests (Article 6(1)(f))",
}
_STATUS_LABELS = {
    "found": "records found",
    "none": "nothing found",
    "skipped": "not searched",
    "failed": "could not be searched",
}
#: File types a hand search may upload, by their first bytes.
_MAGIC = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"%PDF", ".pdf"),
    (b"GIF8", ".gif"),
    (b"PK\x03\x04", ".zip"),
)


class PackageError(Exception):
    """The package cannot be built as the case stands; the message names systems, entities and
    record keys, never values. Retrying does not help: the data map, the search results or the
    decisions file must be put right first."""


# --------------------------------------------------------------------------------------------
# What goes into the package


def provided_by_the_person(regime: Regime, config: FieldConfig, system: SystemConfig) -> bool:
    """Whether a field belongs in a portability copy: data the person provided (GDPR Art 20(1);
    VA/CT "previously provided"), including data observed from their use of the service, as
    the data map's ``provided`` says; held in a system searched by automated means; and for
    the GDPR and LGPD, processed on consent or contract."""
    if system.connector == "manual":
        return False
    if not _provided(config):
        return False
    if regime in _CONSENT_OR_CONTRACT_ONLY:
        return config.legal_basis in (LegalBasis.CONSENT, LegalBasis.CONTRACT)
    return True


def _provided(config: FieldConfig) -> bool:
    """The data map's ``provided`` when declared; otherwise its ``source`` stands in (empty,
    or naming the person, means provided)."""
    if config.provided is not None:
        return config.provided
    return not config.source or _PROVIDED_SOURCE.match(config.source) is not None


def package_name(reference: str, request_type: RequestType) -> str:
    """The file name the person gets: the same for every build of a case (a retry replaces)."""
    kind = "portable-data" if request_type is RequestType.PORTABILITY else "your-data"
    return f"{reference}-{kind}.zip"


@dataclass
class BuiltPackage:
    """What was built; no personal data (the password is a secret, not the person's data)."""

    ref: str
    name: str
    password: str | None
    sha256: str
    size: int
    files: int
    records: int  # records disclosed (in the data files)
    withheld: int  # records left out, and said so in the report
    redacted: int  # records disclosed with parts removed
    systems: int
    #: records left out without a word (an exemption the person must not hear of): counted
    #: here for the audit trail, never in the package
    untold: int = 0


def new_password() -> str:
    """A password a person can type from a letter: 6 groups of 4 characters from an alphabet
    without look-alikes (0/O, 1/I/L), about 118 bits."""
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(6))


# --------------------------------------------------------------------------------------------
# Reading the search results and the decisions


def _lines(blobs: BlobStore, ref: str) -> Generator[bytes, None, None]:
    pending = b""
    for chunk in blobs.open_reader(ref):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from (line for line in lines if line.strip())
    if pending.strip():
        yield pending


def _entity_of(line: bytes) -> str:
    match = _ENTITY_PREFIX.match(line)
    if match is not None:
        return match[1].decode()
    entity = json.loads(line).get("entity")
    if not isinstance(entity, str):
        raise PackageError("a search result line names no entity")
    return entity


@dataclass
class _Span:
    records: int = 0
    last: int = 0  # index of the entity's last line: later passes stop there


def _survey(blobs: BlobStore, ref: str) -> dict[str, _Span]:
    """Entity -> how many lines and where the last is, without parsing a record."""
    spans: dict[str, _Span] = {}
    for index, line in enumerate(_lines(blobs, ref)):
        span = spans.setdefault(_entity_of(line), _Span())
        span.records += 1
        span.last = index
    return spans


def _records(blobs: BlobStore, ref: str, entity: str, span: _Span) -> Iterator[dict[str, Any]]:
    """One entity's records in their stored order."""
    reader = _lines(blobs, ref)
    try:
        for index, line in enumerate(reader):
            if _entity_of(line) == entity:
                record = json.loads(line)["record"]
                yield record if isinstance(record, dict) else {"value": record}
            if index >= span.last:
                return
    finally:
        reader.close()


def _plainly_disclosed(decision: RecordDecision) -> bool:
    return decision.outcome is Outcome.DISCLOSE and not decision.fields and not decision.redacted


def load_decisions(blobs: BlobStore, ref: str | None) -> dict[tuple[str, str], dict[str, RecordDecision]]:
    """(system, entity) -> record key -> decision, for records not plainly disclosed: memory
    grows with what is redacted or withheld, not with what the person holds."""
    index: dict[tuple[str, str], dict[str, RecordDecision]] = {}
    if not ref:
        return index
    for line in _lines(blobs, ref):
        decision = RecordDecision.load(line)
        if decision.outcome not in (Outcome.DISCLOSE, Outcome.REDACT, Outcome.WITHHOLD):
            raise PackageError(
                f"the decisions file says '{decision.outcome.value}' for {decision.system} {decision.key}: "
                "it was made for another kind of request"
            )
        if not _plainly_disclosed(decision):
            index.setdefault((decision.system, decision.entity), {})[decision.key] = decision
    return index


# --------------------------------------------------------------------------------------------
# Applying the decisions


def _reason(bases: Sequence[Basis]) -> str:
    """The few words a redaction marker gives: the exemption's title, or that a reviewer
    decided (their own reason is in the report)."""
    for basis in bases:
        if basis.exemption and basis.title:
            return basis.title
    return "removed by our reviewer" if bases else "exempt"


def _why(basis: Basis) -> str:
    """The reason as the person reads it: the reviewer's name is not theirs to know."""
    return re.sub(r"\s*\(decided by [^()]*\)\s*$", "", basis.reason)


@dataclass(frozen=True)
class _Ground:
    """Why something was left out: shown to the person with its legal basis."""

    title: str
    citation: str
    reason: str


def _ground(basis: Basis) -> _Ground:
    return _Ground(basis.title, basis.citation, _why(basis))


def _apply(
    record: dict[str, Any], decision: RecordDecision | None, columns: Sequence[str]
) -> tuple[dict[str, Any] | None, list[tuple[str, Sequence[Basis]]]]:
    """The record as disclosed (None: withheld), and the fields redacted with their bases."""
    if decision is None:
        return {c: record.get(c) for c in columns}, []
    if decision.outcome is Outcome.WITHHOLD and decision.whole_record:
        return None, []
    out: dict[str, Any] = {}
    removed: list[tuple[str, Sequence[Basis]]] = []
    for column in columns:
        outcome = decision.field_outcome(column)
        value = record.get(column)
        if outcome is Outcome.DISCLOSE:
            out[column] = value
            continue
        bases = next((f.basis for f in decision.fields if f.field == column), decision.basis)
        if outcome is Outcome.REDACT and column in decision.redacted:
            out[column] = decision.redacted[column]
        else:
            out[column] = f"[REDACTED: {_reason(bases)}]"
        removed.append((column, bases))
    return out, removed


def _apply_told(
    record: dict[str, Any],
    decision: RecordDecision | None,
    columns: Sequence[str],
    catalogue: ExemptionCatalogue,
) -> tuple[dict[str, Any] | None, list[tuple[str, Sequence[Basis]]]]:
    """``_apply``, with what an exemption the person must not hear of removes left empty and
    unmarked: a ``[REDACTED: ...]`` marker would tell them."""
    shown, removed = _apply(record, decision, columns)
    if shown is None or not removed:
        return shown, removed
    told = []
    for column, bases in removed:
        if catalogue.untold(bases):
            shown[column] = None
        else:
            told.append((column, bases))
    return shown, told


def as_disclosed(
    record: dict[str, Any],
    decision: RecordDecision | None,
    columns: Sequence[str],
    catalogue: ExemptionCatalogue,
) -> tuple[dict[str, Any] | None, list[tuple[str, Sequence[Basis]]]]:
    """A record exactly as the copy gives it to the person (None: left out), and the fields
    whose removal they are told of: what the reviewer sees before approving."""
    return _apply_told(record, decision, columns, catalogue)


def _csv_value(value: Any) -> str:
    """How a value reads in a spreadsheet: JSON's own spelling for true/false/null, nested
    values (S3 metadata, delivery lines) as JSON text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _shown(value: Any) -> str:
    """A value as the report shows it, cut short when long."""
    if isinstance(value, str) and value.startswith("base64:"):
        size = (len(value) - len("base64:")) * 3 // 4
        return f"(binary data, about {size:,} bytes: in the data files)"
    text = _csv_value(value)
    if len(text) > EMBED_TEXT:
        return text[:EMBED_TEXT] + "… (cut short here: the data files hold it whole)"
    return text


# --------------------------------------------------------------------------------------------
# What the report says


@dataclass
class EntitySummary:
    system: str
    entity: str
    description: str
    files: list[str]
    columns: list[str]
    records: int = 0  # found
    disclosed: int = 0
    redacted_records: int = 0
    withheld: Counter[_Ground] = field(default_factory=Counter)
    redactions: Counter[tuple[str, _Ground]] = field(default_factory=Counter)  # (field, why) -> n
    rows: list[list[str]] = field(default_factory=list)  # embedded in the report, if few
    categories: list[str] = field(default_factory=list)
    label: str = ""  # what the person reads (the data map's label)

    @property
    def withheld_total(self) -> int:
        return sum(self.withheld.values())

    @property
    def embedded(self) -> bool:
        return bool(self.rows) or self.disclosed == 0


@dataclass
class SystemSummary:
    name: str
    description: str
    status: str
    entities: list[EntitySummary] = field(default_factory=list)
    upload: str = ""  # file found by hand
    upload_records: int = 0
    label: str = ""  # what the person reads (the data map's label)


@dataclass
class Item:
    """One line of an Art. 15 / §1798.110 list: what, and for which categories of data."""

    text: str
    categories: list[str]
    extra: list[str] = field(default_factory=list)


@dataclass
class Report:
    controller: str
    contact_email: str
    dpo_email: str
    reference: str
    regime: str
    regime_label: str
    request: str
    portability: bool
    received: str
    produced: str
    encrypted: bool
    systems: list[SystemSummary]
    categories: list[Item]
    purposes: list[Item]
    recipients: list[Item]
    retention: list[Item]
    sources: list[Item]
    rights: list[str]
    authority: str
    gdpr: bool
    ccpa: bool
    left_out: list[Item]  # portability: fields not included, and why
    #: Art. 15(1)(h) and 15(2): those that concern the person (their data is in a system they
    #: draw on), as the data map declares them
    automated_decisions: list[AutomatedDecision]
    transfers: list[Transfer]
    records: int
    withheld: int
    redacted: int


def _rights(regime: Regime, portability: bool, consent: bool) -> list[str]:
    if regime in _GDPR:
        rights = [
            "to have inaccurate data about you corrected, and incomplete data completed (Article 16);",
            "to have your data erased where the law allows (Article 17);",
            "to have our use of your data restricted (Article 18);",
            "to object to our use of your data, including for direct marketing (Article 21);",
            "to receive the data you gave us in a machine-readable format, or have it sent to another "
            "organisation (Article 20);",
        ]
        if consent:
            rights.append(
                "to withdraw your consent at any time, where we rely on it (Article 7(3)); this does not "
                "affect what we did before you withdrew it."
            )
        return rights
    if regime is Regime.CCPA:
        return [
            "to have your personal information deleted (§1798.105);",
            "to have inaccurate personal information corrected (§1798.106);",
            "to opt out of the sale or sharing of your personal information (§1798.120);",
            "to limit our use of sensitive personal information (§1798.121);",
            "not to be discriminated against for using these rights (§1798.125).",
        ]
    return [
        "to have inaccurate data about you corrected;",
        "to have your data deleted where the law allows;",
        "to receive a copy of your data in a portable format;",
        "to opt out of targeted advertising, sale of your data and profiling, where the law gives "
        "that right.",
    ]


def _items(pairs: Iterable[tuple[str, str]], extra: Mapping[str, set[str]] | None = None) -> list[Item]:
    grouped: dict[str, set[str]] = {}
    for text, category in pairs:
        if text:
            grouped.setdefault(text, set()).add(category)
    return [
        Item(text, sorted(cats), sorted((extra or {}).get(text, set())))
        for text, cats in sorted(grouped.items())
    ]


# --------------------------------------------------------------------------------------------
# Writing the ZIP


class _Sink(io.RawIOBase):
    """A write-only, non-seekable file over the blob writer: pyzipper then writes entries with
    data descriptors instead of seeking back. Hashes the ZIP as it goes."""

    def __init__(self, out: BlobWriter) -> None:
        self._out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.digest.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)


class _Entry:
    """One file in the ZIP, written through a buffer, hashed for the manifest."""

    def __init__(self, zf: pyzipper.AESZipFile, name: str, manifest: dict[str, dict[str, Any]]) -> None:
        info = zf.zipinfo_cls(name, date_time=datetime.now(UTC).timetuple()[:6])
        info.compress_type = pyzipper.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self._file: IO[bytes] = zf.open(info, "w")
        self._name = name
        self._manifest = manifest
        self._digest = hashlib.sha256()
        self._size = 0
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= 256 * 1024:
            self._flush()

    def _flush(self) -> None:
        chunk = bytes(self._buffer)
        self._buffer.clear()
        self._digest.update(chunk)
        self._size += len(chunk)
        self._file.write(chunk)

    def close(self, **facts: Any) -> None:
        self._flush()
        self._file.close()
        self._manifest[self._name] = {"sha256": self._digest.hexdigest(), "bytes": self._size, **facts}


class _CsvRows:
    """csv.writer over a bytes entry (UTF-8 with a byte-order mark, so spreadsheet programs
    read accents and currency signs right)."""

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry
        self._text = io.StringIO()
        self._writer = csv.writer(self._text, lineterminator="\r\n")
        entry.write("\ufeff".encode())

    def row(self, values: Iterable[str]) -> None:
        self._writer.writerow(values)
        if self._text.tell() >= 64 * 1024:
            self.flush()

    def flush(self) -> None:
        self._entry.write(self._text.getvalue().encode())
        self._text.seek(0)
        self._text.truncate()

    def close(self, **facts: Any) -> None:
        self.flush()
        self._entry.close(**facts)


@dataclass
class _Build:
    blobs: BlobStore
    datamap: DataMap
    case: CaseFacts
    decisions: dict[tuple[str, str], dict[str, RecordDecision]]
    heartbeat: Heartbeat
    manifest: dict[str, dict[str, Any]] = field(default_factory=dict)
    embedded: int = 0
    seen: int = 0
    left_out: list[tuple[str, str]] = field(default_factory=list)  # portability: (why, category)
    catalogue: ExemptionCatalogue = field(default_factory=ExemptionCatalogue.load)
    untold: int = 0  # records left out without a word

    @property
    def portability(self) -> bool:
        return self.case.request_type is RequestType.PORTABILITY

    def tick(self) -> None:
        self.seen += 1
        if self.seen % HEARTBEAT_EVERY == 0:
            self.heartbeat()

    def columns(self, system: SystemConfig, entity: EntityConfig) -> list[str]:
        """Declared fields in the data map's order; for a portability copy only those the
        person provided."""
        return [
            name
            for name, config in entity.fields.items()
            if not self.portability or provided_by_the_person(self.case.regime, config, system)
        ]

    def apply(
        self, record: dict[str, Any], decision: RecordDecision | None, columns: Sequence[str]
    ) -> tuple[dict[str, Any] | None, list[tuple[str, Sequence[Basis]]]]:
        return _apply_told(record, decision, columns, self.catalogue)

    def untold_record(self, decision: RecordDecision | None) -> bool:
        """A record withheld whole under an exemption the person must not hear of."""
        return (
            decision is not None
            and decision.outcome is Outcome.WITHHOLD
            and decision.whole_record
            and self.catalogue.untold(decision.basis)
        )

    def wholly_untold(self, entity: EntityConfig, ref: str, span: _Span, system: str) -> bool:
        """Every record of the entity is withheld without a word: the copy then has no file,
        category or purpose of it (each key checked against the records, as ``entity`` does)."""
        decisions = self.decisions.get((system, entity.name), {})
        if sum(1 for d in decisions.values() if self.untold_record(d)) != span.records:
            return False
        keys = {
            record_key(entity, record, position)
            for position, record in enumerate(_records(self.blobs, ref, entity.name, span), start=1)
        }
        if keys != set(decisions):
            return False  # a record without its decision: let ``entity`` raise about it
        self.decisions.pop((system, entity.name))
        self.untold += span.records
        return True

    def entity(
        self, zf: pyzipper.AESZipFile, system: SystemConfig, entity: EntityConfig, ref: str, span: _Span
    ) -> EntitySummary:
        base = f"data/{system.name}/{entity.name}"
        decisions = self.decisions.pop((system.name, entity.name), {})
        declared = self.columns(system, entity)
        extras: dict[str, None] = {}  # columns a record held that the data map does not declare
        summary = EntitySummary(
            system.name,
            entity.name,
            entity.description,
            [f"{base}.json", f"{base}.csv"],
            declared,
            categories=sorted({entity.fields[c].category for c in declared}),
            label=entity.label or entity.name,
        )
        matched: set[str] = set()

        def disclosed() -> Iterator[tuple[dict[str, Any], RecordDecision | None]]:
            for position, record in enumerate(_records(self.blobs, ref, entity.name, span), start=1):
                key = record_key(entity, record, position)
                decision = decisions.get(key)
                if decision is not None:
                    matched.add(key)
                yield record, decision

        # Pass 1: the JSON file, and everything the report needs.
        out = _Entry(zf, f"{base}.json", self.manifest)
        out.write(b"[")
        rows: list[dict[str, Any]] = []
        for record, decision in disclosed():
            self.tick()
            if self.untold_record(decision):
                self.untold += 1
                continue
            summary.records += 1
            columns = declared
            if not self.portability:
                extra = [c for c in record if c not in entity.fields]
                if extra:
                    extras.update(dict.fromkeys(extra))
                    columns = [*declared, *extra]
            shown, removed = self.apply(record, decision, columns)
            if shown is None:
                assert decision is not None
                summary.withheld[_ground(decision.basis[0]) if decision.basis else _NO_GROUND] += 1
                continue
            out.write(b"\n" if summary.disclosed == 0 else b",\n")
            out.write(json.dumps(shown, ensure_ascii=False, separators=(", ", ": ")).encode())
            summary.disclosed += 1
            if removed:
                summary.redacted_records += 1
                for column, bases in removed:
                    for basis in bases or [Basis("", "", "", "", "")]:
                        summary.redactions[(column, _ground(basis))] += 1
            if summary.disclosed <= EMBED_ROWS:
                rows.append(shown)
        out.write(b"\n]\n" if summary.disclosed else b"]\n")
        out.close(records=summary.disclosed)
        unmatched = sorted(set(decisions) - matched)
        if unmatched:
            # A decision for a record we cannot find: disclosing the rest might disclose what the
            # reviewer withheld under another key. Stop and let an engineer look.
            raise PackageError(
                f"{len(unmatched)} decision(s) for {system.name}.{entity.name} name records the search did "
                f"not collect (first: {unmatched[0]}): the decisions file does not fit these results"
            )
        summary.columns = columns = [*declared, *extras]
        if summary.disclosed <= EMBED_ROWS and self.embedded + len(rows) <= EMBED_TOTAL:
            summary.rows = [[_shown(row.get(c)) for c in columns] for row in rows]
            self.embedded += len(rows)

        # Pass 2: the same records as CSV.
        table = _CsvRows(_Entry(zf, f"{base}.csv", self.manifest))
        table.row(columns)
        written = 0
        for record, decision in disclosed():
            if self.untold_record(decision):
                continue
            shown, _ = self.apply(record, decision, columns)
            if shown is not None:
                table.row([_csv_value(shown[c]) for c in columns])
                written += 1
        table.close(records=written)
        if written != summary.disclosed:
            raise PackageError(f"{system.name}.{entity.name} changed while the package was being built")
        return summary

    def upload(self, zf: pyzipper.AESZipFile, system: SystemConfig, result: SystemResult) -> str:
        """What a person found in a system searched by hand (stills, a clip), as uploaded."""
        assert result.blob_ref
        chunks = self.blobs.open_reader(result.blob_ref)
        first = next(chunks, b"")
        ext = next((e for magic, e in _MAGIC if first.startswith(magic)), "")
        if not ext and first[4:8] == b"ftyp":
            ext = ".mp4"
        name = f"data/{system.name}/found-by-hand{ext or '.bin'}"
        out = _Entry(zf, name, self.manifest)
        out.write(first)
        for chunk in chunks:
            out.write(chunk)
            self.heartbeat()
        out.close(records=result.records)
        return name


_NO_GROUND = _Ground("Withheld", "", "")


def build_package(
    blobs: BlobStore,
    datamap: DataMap,
    case: CaseFacts,
    systems: Sequence[SystemResult],
    decisions_ref: str | None,
    *,
    encryption: Encryption = "aes",
    heartbeat: Heartbeat | None = None,
    now: datetime | None = None,
) -> BuiltPackage:
    """Build the package for ``case`` into the blob store; older copies of the same name go."""
    if case.request_type not in (RequestType.ACCESS, RequestType.PORTABILITY):
        raise PackageError(f"a {case.request_type.value} request is not answered with a copy of the data")
    produced = (now or datetime.now(UTC)).astimezone(UTC)
    name = package_name(case.reference, case.request_type)
    password = new_password() if encryption == "aes" else None
    build = _Build(blobs, datamap, case, load_decisions(blobs, decisions_ref), heartbeat or (lambda: None))
    summaries: list[SystemSummary] = []
    with blobs.open_writer(case.reference, name) as writer:
        sink = _Sink(writer)
        with pyzipper.AESZipFile(
            sink, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES if password else None
        ) as zf:
            if password:
                zf.setpassword(password.encode())
                zf.setencryption(pyzipper.WZ_AES, nbits=256)
            for result in sorted(systems, key=lambda s: s.system):
                summaries.append(_system(build, zf, result))
            if build.decisions:
                system, entity = next(iter(build.decisions))
                raise PackageError(
                    f"the decisions file names {system}.{entity}, which this case's search results lack"
                )
            report = _report(build, summaries, produced, encrypted=password is not None)
            entry = _Entry(zf, "report.html", build.manifest)
            entry.write(render_report(report).encode())
            entry.close()
            manifest = {
                "format": PACKAGE_FORMAT,
                "reference": case.reference,
                "request": case.request_type.value,
                "regime": case.regime.value,
                "produced": produced.isoformat(timespec="seconds"),
                "controller": datamap.controller.name,
                "files": dict(sorted(build.manifest.items())),
            }
            data = _Entry(zf, "manifest.json", {})
            data.write(json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n")
            data.close()
    files = len(build.manifest) + 1
    remove_older_copies(blobs, case.reference, name, keep=writer.ref)
    return BuiltPackage(
        ref=writer.ref,
        name=name,
        password=password,
        sha256=sink.digest.hexdigest(),
        size=sink.size,
        files=files,
        records=report.records,
        withheld=report.withheld,
        redacted=report.redacted,
        systems=sum(1 for s in summaries if s.status == "records found"),
        untold=build.untold,
    )


def _system(build: _Build, zf: pyzipper.AESZipFile, result: SystemResult) -> SystemSummary:
    config = build.datamap.systems.get(result.system)
    if config is None:
        raise PackageError(f"system '{result.system}' was searched but is no longer in the data map")
    status = _STATUS_LABELS.get(result.status, "not searched")
    summary = SystemSummary(config.name, config.description, status, label=config.label or config.name)
    if result.status != "found" or not result.blob_ref:
        return summary
    if parse_ref(result.blob_ref)[0] != build.case.reference:
        raise PackageError(f"the search result of '{result.system}' belongs to another case")
    if config.manual is not None:
        if build.portability:
            build.left_out += [
                (_left_out_reason(build.case.regime, fc, config), fc.category)
                for entity in config.entities.values()
                for fc in entity.fields.values()
            ]
        else:
            summary.upload = build.upload(zf, config, result)
            summary.upload_records = result.records
        return summary
    spans = _survey(build.blobs, result.blob_ref)
    unknown = sorted(set(spans) - set(config.entities))
    if unknown:
        raise PackageError(f"the search result of '{config.name}' holds '{unknown[0]}', not in the data map")
    for entity in config.ordered_entities():
        span = spans.get(entity.name)
        if span is None:
            continue
        if build.portability:
            for fc in entity.fields.values():
                if not provided_by_the_person(build.case.regime, fc, config):
                    build.left_out.append((_left_out_reason(build.case.regime, fc, config), fc.category))
            if not build.columns(config, entity):
                build.decisions.pop((config.name, entity.name), None)
                continue
        if build.wholly_untold(entity, result.blob_ref, span, config.name):
            continue
        summary.entities.append(build.entity(zf, config, entity, result.blob_ref, span))
        build.heartbeat()
    if not summary.entities:  # all it held is left out without a word: as if nothing was found
        summary.status = _STATUS_LABELS["none"]
    return summary


def _report(build: _Build, systems: list[SystemSummary], produced: datetime, *, encrypted: bool) -> Report:
    """The Art. 15 / §1798.110 content, from the data map, for the data actually found."""
    case, datamap = build.case, build.datamap
    held: list[tuple[FieldConfig, str]] = []  # (field, "system/entity")
    for s in systems:
        config = datamap.systems[s.name]
        for e in s.entities:
            entity = config.entities[e.entity]
            for column in e.columns:
                if column in entity.fields:
                    held.append((entity.fields[column], f"{s.name}/{e.entity}"))
        if s.upload:
            held += [(fc, s.name) for e in config.entities.values() for fc in e.fields.values()]
    gdpr = case.regime in _GDPR
    categories = _items((fc.category, fc.category) for fc, _ in held)
    for item in categories:
        item.categories = []
    purposes = _items((fc.purpose, fc.category) for fc, _ in held)
    if gdpr:
        bases: dict[str, set[str]] = {}
        for fc, _ in held:
            bases.setdefault(fc.purpose, set()).add(_BASIS_LABELS[fc.legal_basis])
        purposes = _items(((fc.purpose, fc.category) for fc, _ in held), bases)
    recipients = _items((r, fc.category) for fc, _ in held for r in fc.recipients)
    retention = _items((fc.retention, fc.category) for fc, _ in held)
    sources = _items((fc.source, fc.category) for fc, _ in held if fc.source)
    consent = any(fc.legal_basis is LegalBasis.CONSENT for fc, _ in held)
    entities = [e for s in systems for e in s.entities]
    found = [s.name for s in systems if s.status == _STATUS_LABELS["found"]]
    return Report(
        controller=datamap.controller.name,
        contact_email=datamap.controller.contact_email,
        dpo_email=datamap.controller.dpo_email,
        reference=case.reference,
        regime=case.regime.value,
        regime_label=REGIMES[case.regime].label,
        request=request_name(case.regime, case.request_type).name,
        portability=build.portability,
        received=_long_date(case.received),
        produced=_long_date(produced.date()),
        encrypted=encrypted,
        systems=systems,
        categories=categories,
        purposes=purposes,
        recipients=recipients,
        retention=retention,
        sources=sources,
        rights=_rights(case.regime, build.portability, consent),
        authority=REGIMES[case.regime].authority,
        gdpr=gdpr,
        ccpa=case.regime is Regime.CCPA,
        left_out=_items(build.left_out),
        automated_decisions=[d for d in datamap.controller.automated_decisions if d.concerns(found)],
        transfers=[t for t in datamap.controller.transfers if t.concerns(found)],
        records=sum(e.disclosed for e in entities) + sum(s.upload_records for s in systems),
        withheld=sum(e.withheld_total for e in entities),
        redacted=sum(e.redacted_records for e in entities),
    )


def _left_out_reason(regime: Regime, fc: FieldConfig, system: SystemConfig) -> str:
    if system.connector == "manual":
        return "Held on paper or equipment we search by hand, not processed by automated means"
    if not _provided(fc):
        if fc.source:
            return f"Not provided by you (it came from: {fc.source})"
        return "Created or worked out by us, not provided by you"
    if regime in _CONSENT_OR_CONTRACT_ONLY:
        return (
            "Not processed on the basis of your consent or a contract with you (the right to data "
            "portability covers only those: Article 20(1)(a))"
        )
    return "Not data you provided"


def _long_date(value: date) -> str:
    return long_date(value)


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_report(report: Report) -> str:
    return _environment.get_template("report.html").render(r=report)


# --------------------------------------------------------------------------------------------
# Replacing a package on retry


def remove_older_copies(blobs: BlobStore, case: str, name: str, *, keep: str) -> int:
    """Delete the case's other objects of the same name, so a rebuilt package replaces the old
    one (blob references are random: a retry cannot write under the same one). The BlobStore
    protocol has no listing, so this knows the two stores' layouts."""
    refs: list[str] = []
    if isinstance(blobs, LocalBlobStore):
        folder = blobs.root / case
        if folder.is_dir():
            refs = [f"blob://{case}/{p.name}" for p in folder.iterdir() if _same_name(p.name, name)]
    elif isinstance(blobs, S3BlobStore):
        prefix = f"{blobs.prefix}{case}/"
        pages = blobs.client.get_paginator("list_objects_v2").paginate(Bucket=blobs.bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                obj = item["Key"][len(prefix) :]
                if _same_name(obj, name):
                    refs.append(f"blob://{case}/{obj}")
    gone = 0
    for ref in refs:
        if ref != keep:
            blobs.delete(ref)
            gone += 1
    return gone


def _same_name(obj: str, name: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{32}-" + re.escape(name), obj) is not None


# --------------------------------------------------------------------------------------------
# Portability: the data as one JSON document, and sending it to another controller


def portable_json(
    blobs: BlobStore,
    datamap: DataMap,
    case: CaseFacts,
    systems: Sequence[SystemResult],
    decisions_ref: str | None,
    *,
    now: datetime | None = None,
) -> Iterator[bytes]:
    """The data the person provided, decisions applied, as one JSON document streamed in pieces:
    ``{"format": ..., "controller": ..., "data": {system: {entity: [records]}}}``."""
    if case.request_type is not RequestType.PORTABILITY:
        raise PackageError("only a portability request is sent to another controller")
    decisions = load_decisions(blobs, decisions_ref)
    catalogue = ExemptionCatalogue.load()
    produced = (now or datetime.now(UTC)).astimezone(UTC)
    head = {
        "format": "dsar-portable-data/1",
        "controller": datamap.controller.name,
        "reference": case.reference,
        "produced": produced.isoformat(timespec="seconds"),
    }
    yield json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "data": {'
    first_system = True
    for result in sorted(systems, key=lambda s: s.system):
        config = datamap.systems.get(result.system)
        if config is None or config.manual is not None or result.status != "found" or not result.blob_ref:
            continue
        spans = _survey(blobs, result.blob_ref)
        wrote_system = False
        for entity in config.ordered_entities():
            columns = [
                c for c, fc in entity.fields.items() if provided_by_the_person(case.regime, fc, config)
            ]
            span = spans.get(entity.name)
            if span is None or not columns:
                continue
            prefix = b"" if first_system else b", "
            if not wrote_system:
                yield prefix + json.dumps(result.system).encode() + b": {"
                first_system, wrote_system = False, True
            else:
                yield b", "
            yield json.dumps(entity.name).encode() + b": ["
            chosen = decisions.pop((result.system, entity.name), {})
            count = 0
            for position, record in enumerate(_records(blobs, result.blob_ref, entity.name, span), start=1):
                decision = chosen.get(record_key(entity, record, position))
                shown, _ = _apply_told(record, decision, columns, catalogue)
                if shown is not None:
                    yield (b"" if count == 0 else b", ") + json.dumps(shown, ensure_ascii=False).encode()
                    count += 1
            yield b"]"
        if wrote_system:
            yield b"}"
    yield b"}}\n"


class PushRefused(Exception):
    """The other controller's endpoint cannot take the data (the message names the status or
    the kind of failure, never the data). ``retryable`` says whether trying later may help;
    ``retry_after`` is when the endpoint asked to be tried again (its ``Retry-After``), if it did."""

    def __init__(self, message: str, *, retryable: bool, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


#: the longest wait a ``Retry-After`` may ask for: past it, the ordinary backoff decides
MAX_RETRY_AFTER = timedelta(minutes=1)


def retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """A ``Retry-After`` header (RFC 9110 10.2.3: seconds, or an HTTP date) as a wait between 0
    and ``MAX_RETRY_AFTER``; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value[:9]))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        wait = when - (now or datetime.now(UTC))
    return min(max(wait, timedelta(0)), MAX_RETRY_AFTER)


@dataclass
class Pushed:
    status: int
    bytes: int
    sha256: str


def push_portable_data(
    body: Iterable[bytes],
    endpoint: str,
    *,
    token: str | None = None,
    verify: ssl.SSLContext | str | bool = True,
    timeout: float = 30.0,
) -> Pushed:
    """POST the document to another controller's HTTPS endpoint (GDPR Art 20(2)), streamed
    (chunked transfer encoding: the document is never whole in memory). Only HTTPS, the
    certificate checked, no redirect followed (a redirect could send the data elsewhere).
    Returns the size and SHA-256 of what was sent, for the audit trail."""
    url = httpx.URL(endpoint)
    if url.scheme != "https":
        raise PushRefused("the other controller's endpoint must use https", retryable=False)
    digest = hashlib.sha256()
    size = 0

    def counted() -> Iterator[bytes]:
        nonlocal size
        for piece in body:
            digest.update(piece)
            size += len(piece)
            yield piece

    headers = {"Content-Type": "application/json; charset=utf-8"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with httpx.Client(verify=verify, timeout=timeout, follow_redirects=False) as client:
            answer = client.post(url, content=counted(), headers=headers)
    except httpx.ConnectError as e:
        certificate = "CERTIFICATE" in str(e).upper()
        raise PushRefused(
            "the other controller's certificate is not trusted"
            if certificate
            else "the other controller's endpoint cannot be reached",
            retryable=not certificate,
        ) from None
    except httpx.HTTPError as e:
        raise PushRefused(f"sending failed ({type(e).__name__})", retryable=True) from None
    if not answer.is_success:
        raise PushRefused(
            f"the other controller's endpoint answered {answer.status_code}",
            retryable=answer.status_code >= 500 or answer.status_code == 429,
            retry_after=retry_after(answer.headers.get("retry-after")),
        )
    return Pushed(answer.status_code, size, digest.hexdigest())
