"""The S3 connector: AWS S3 and any S3-compatible store (MinIO, Ceph, R2, ...), through boto3.

An entity is a set of objects under a key prefix. It is traced to the subject in one of two
ways (see :mod:`dsar.datamap`):

* a key template (``recordings/{customer_id}/``): every object under the filled prefix is the
  subject's. Identifier values only ever fill whole key segments: a value with ``/``, ``..`` or
  control characters can never name another prefix, so it matches nothing;
* identity sources: objects under the prefix are listed and each is compared, after the same
  normalisation as the SQL connector, by its user metadata (``metadata.<name>``), its tags
  (``tag.<name>``), the fields of its JSON / JSONL / CSV items (``content.<field>``) or, for
  text, anywhere in its text (``content``).

Person keys name what was found, e.g. ``call_audio:recordings/42/`` (a filled template),
``uploads:<key>`` (an object matched as a whole) or ``proof_of_delivery:pod-exports/x.jsonl#17``
(line 17 of a shared export). ``#`` and ``%`` in object keys are percent-escaped there.

Memory stays bounded whatever the size of the bucket: listings are paginated, JSONL and CSV
objects are read line by line, whole JSON and text documents are read only up to
:data:`MAX_DOCUMENT_BYTES` (larger ones are skipped and counted in :attr:`S3Connector.skipped`,
without logging their keys), and rewrites stream through a multipart upload.

Versioned buckets: every version of the subject's objects is collected, and erasure deletes
every version and delete marker, so nothing stays recoverable. When only some lines of a shared
JSONL / CSV / JSON object are the subject's, the object is rewritten with those lines emptied
(a blank line, a JSON ``null``) rather than removed, so that every other line keeps its
number: person keys held in a case (``...#17``) then never come to point at a neighbour's line
after a rewrite, and a retried erasure cannot touch anybody else.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from connectors.base import (
    HEARTBEAT_EVERY,
    Candidate,
    Changed,
    Collected,
    ConnectorError,
    ConnectorMisconfigured,
    ConnectorUnavailable,
    Erased,
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
from dsar.blobs import S3ObjectWriter, s3_client
from dsar.datamap import S3_RECORD_FIELDS, EntityConfig, EntityErasure, Marker, SystemConfig
from dsar.model import IdentifierKind

#: Whole JSON and text documents larger than this are not read (a JSON parser needs the whole
#: document in memory); JSONL and CSV are streamed line by line and have no such limit.
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
#: A JSONL or CSV line longer than this is not parsed (and its object cannot be rewritten).
MAX_LINE_BYTES = 16 * 1024 * 1024
#: The tag that marks an object as restricted (Art. 18); existing tags are kept.
RESTRICTED_TAG = ("dsar-restricted", "true")

_READ_CHUNK = 64 * 1024
_MAX_KEY_BYTES = 1024  # S3's limit on a key (and so on a prefix)
_MAX_TAGS = 10  # S3's limit on tags per object
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_LINE_FORMATS = frozenset({"jsonl", "csv"})
_ITEM_FORMATS = frozenset({"json", "jsonl", "csv"})
#: Runs of digits and phone punctuation in a text, each tried as a phone number.
_PHONE_RUN = re.compile(r"(?<![\w+])\+?\d[\d ().\-]{4,28}\d(?!\w)")
#: Error codes that mean "these credentials may not do this" (or are not valid at all).
_DENIED = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "InvalidSecurity",
        "403",
        "Forbidden",
    }
)
_WRONG_REGION = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}
)
_BUSY = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503", "500"})
_NO_BUCKET = frozenset({"NoSuchBucket", "404", "NotFound"})
_GONE = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})


class _Gone(Exception):
    """An object listed a moment ago has been deleted since: it is simply not there."""


class _TooLarge(Exception):
    """A line too long to parse in an object that must be rewritten."""


# --------------------------------------------------------------------------------------------
# What is searched and what was found.


@dataclass(frozen=True)
class _Source:
    """One identity source: where the identifier sits in an object, and its kind."""

    where: str  # "metadata", "tag" or "content"
    name: str  # metadata or tag name, content field path; "" for a whole text
    kind: IdentifierKind


@dataclass(frozen=True)
class _Sources:
    metadata: tuple[_Source, ...]
    tags: tuple[_Source, ...]
    fields: tuple[_Source, ...]  # content.<field>
    text: tuple[_Source, ...]  # content (text objects)

    @classmethod
    def of(cls, entity: EntityConfig) -> _Sources:
        groups: dict[str, list[_Source]] = {"metadata": [], "tag": [], "fields": [], "text": []}
        for source, kind in entity.identity.items():
            where, _, name = source.partition(".")
            if where == "content":
                groups["fields" if name else "text"].append(_Source(where, name, kind))
            else:
                groups[where].append(_Source(where, name.lower() if where == "metadata" else name, kind))
        return cls(*(tuple(groups[g]) for g in ("metadata", "tag", "fields", "text")))


@dataclass(frozen=True)
class _Version:
    """One stored object version (in an unversioned bucket: the object)."""

    key: str
    version_id: str | None  # None when the bucket was listed without versions
    last_modified: datetime | None
    size: int
    latest: bool = True

    def api(self) -> dict[str, str]:
        return {"VersionId": self.version_id} if self.version_id else {}


@dataclass
class _Item:
    """A part of an object: a JSONL line, a CSV row, a JSON list item; or the whole document."""

    number: int | None  # line (jsonl, csv: its first line), item (json list); None: whole
    content: Any  # the parsed item (dict, JSON value, text); None when unparseable
    raw: list[bytes] | None = None  # its physical lines (jsonl, csv); None if a line is too long
    #: csv: the row as read and the header, so a rewrite keeps columns beyond the header
    row: list[str] | None = None
    columns: list[str] | None = None


@dataclass
class _Hit:
    """Something of the subject's in one object version, under one person key."""

    version: _Version
    info: _Info
    item: _Item | None
    person_key: str
    kinds: frozenset[str]


class _Info:
    """An object version's headers and tags, fetched once and only when needed."""

    def __init__(self, connector: S3Connector, version: _Version) -> None:
        self._connector = connector
        self._version = version
        self._head: tuple[str | None, dict[str, str]] | None = None
        self._tags: dict[str, str] | None = None

    def take(self, answer: dict[str, Any]) -> None:
        """Headers from a GetObject answer, saving a HeadObject."""
        self._head = (answer.get("ContentType"), dict(answer.get("Metadata") or {}))

    def _fetch_head(self) -> tuple[str | None, dict[str, str]]:
        if self._head is None:
            answer = self._connector._call(
                "head_object", Key=self._version.key, **self._version.api(), gone_ok=True
            )
            self.take(answer)
        assert self._head is not None
        return self._head

    @property
    def content_type(self) -> str | None:
        return self._fetch_head()[0]

    @property
    def metadata(self) -> dict[str, str]:
        return self._fetch_head()[1]

    @property
    def tags(self) -> dict[str, str]:
        if self._tags is None:
            answer = self._connector._call(
                "get_object_tagging", Key=self._version.key, **self._version.api(), gone_ok=True
            )
            self._tags = {tag["Key"]: tag["Value"] for tag in answer.get("TagSet", [])}
        return self._tags


# --------------------------------------------------------------------------------------------
# Matching: the same normalisation as the SQL connector, applied in Python.


def _normalised(kind: IdentifierKind, value: str, region: str) -> str | None:
    """The comparable form of a value of ``kind``; None when it cannot match anything."""
    if kind is IdentifierKind.EMAIL:
        out: str | None = normalise_email(value)
    elif kind is IdentifierKind.PHONE:
        out = normalise_phone(value, region)
    elif kind is IdentifierKind.POSTCODE:
        out = normalise_postcode(value)
    elif kind in (IdentifierKind.NAME, IdentifierKind.POSTAL_ADDRESS):
        out = normalise_name(value)
    else:
        out = value.strip()
    return out or None


def _as_text(value: Any) -> str | None:
    """A stored scalar as text (a JSON number 42 matches customer number "42")."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


class _Matcher:
    """The supplied identifiers, normalised once, and how each kind is found in a value or text."""

    def __init__(self, identifiers: dict[str, str], region: str) -> None:
        self.region = region
        self.values: dict[IdentifierKind, str] = {}
        for kind_text, value in identifiers.items():
            kind = identifier_kind(kind_text)
            normal = _normalised(kind, value, region) if isinstance(value, str) else None
            if normal is not None:
                self.values[kind] = normal
        self._patterns: dict[IdentifierKind, re.Pattern[str]] = {}

    def value(self, kind: IdentifierKind, stored: Any) -> bool:
        wanted = self.values.get(kind)
        text = _as_text(stored)
        if wanted is None or text is None:
            return False
        return _normalised(kind, text, self.region) == wanted

    def text(self, kind: IdentifierKind, text: str) -> bool:
        """Whether a free text mentions the value: emails case-insensitively, phone numbers in
        any notation that normalises to the same E.164 number, names and addresses as whole
        words. A value is never found inside a longer word or number."""
        wanted = self.values.get(kind)
        if wanted is None:
            return False
        if kind is IdentifierKind.PHONE:
            return any(self._phone_in(run.group(), wanted) for run in _PHONE_RUN.finditer(text))
        pattern = self._patterns.get(kind)
        if pattern is None:
            pattern = self._patterns[kind] = _text_pattern(kind, wanted)
        return pattern.search(unicodedata.normalize("NFC", text)) is not None

    def _phone_in(self, run: str, wanted: str) -> bool:
        """A run may hold two numbers side by side: try each span of its space-separated groups."""
        groups = run.split()
        for start in range(len(groups)):
            for end in range(start + 1, min(len(groups), start + 6) + 1):
                if normalise_phone(" ".join(groups[start:end]), self.region) == wanted:
                    return True
        return False


def _text_pattern(kind: IdentifierKind, wanted: str) -> re.Pattern[str]:
    if kind is IdentifierKind.EMAIL:
        return re.compile(rf"(?<![\w.+\-]){re.escape(wanted)}(?![\w\-]|\.[\w\-])", re.IGNORECASE)
    if kind is IdentifierKind.POSTCODE:
        body = r"\s*".join(re.escape(char) for char in wanted)
        return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", re.IGNORECASE)
    if kind in (IdentifierKind.NAME, IdentifierKind.POSTAL_ADDRESS):
        body = r"\s+".join(re.escape(word) for word in wanted.split())
        return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)
    return re.compile(rf"(?<!\w){re.escape(wanted)}(?!\w)")


def _field(item: Any, path: str) -> Any:
    """``item[path]``, or a dotted path into nested objects (``address.postcode``)."""
    if not isinstance(item, dict):
        return None
    if path in item:
        return item[path]
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _set_field(item: dict[str, Any], path: str, value: Any) -> bool:
    """Set ``path`` in ``item``; True when that changed it."""
    if path in item or "." not in path:
        if item.get(path, _MISSING) == value:
            return False
        item[path] = value
        return True
    parts = path.split(".")
    target = item
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    if target.get(parts[-1], _MISSING) == value:
        return False
    target[parts[-1]] = value
    return True


_MISSING = object()


def _safe_segment(value: str) -> bool:
    """Whether a value may fill a key template: never a separator, ``..``, or a control or
    format character (bidi overrides included), so it cannot reach another person's prefix."""
    return (
        0 < len(value) <= 255
        and value != "."
        and ".." not in value
        and "/" not in value
        and "\\" not in value
        and not any(unicodedata.category(char)[0] == "C" for char in value)
    )


def _escape(key: str) -> str:
    return key.replace("%", "%25").replace("#", "%23")


def _unescape(text: str) -> str:
    return re.sub(r"%(25|23)", lambda m: "%" if m.group(1) == "25" else "#", text)


def _person_key(entity: str, key: str, number: int | None = None) -> str:
    return f"{entity}:{_escape(key)}" + (f"#{number}" if number is not None else "")


def _object_of(person_key: str, entity: str) -> str | None:
    """The object key a person key of ``entity`` names (None for another entity's keys)."""
    head = f"{entity}:"
    if not person_key.startswith(head):
        return None
    return _unescape(person_key[len(head) :].split("#", 1)[0])


# --------------------------------------------------------------------------------------------
# Reading objects.


def _lines(chunks: Iterable[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[bytes | None]:
    """Physical lines with their endings; None for a line over ``limit`` bytes (dropped as it
    streams by, so a pathological object never fills memory)."""
    parts: list[bytes] = []
    size = 0
    oversize = False
    for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            piece = chunk[start : end + 1]
            if oversize or size + len(piece) > limit:
                yield None
            else:
                yield b"".join([*parts, piece]) if parts else piece
            parts, size, oversize = [], 0, False
            start = end + 1
        rest = chunk[start:]
        if rest and not oversize:
            if size + len(rest) > limit:
                parts, size, oversize = [], 0, True
            else:
                parts.append(rest)
                size += len(rest)
    if oversize:
        yield None
    elif parts:
        yield b"".join(parts)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _jsonl_segments(lines: Iterable[bytes | None]) -> Iterator[tuple[list[bytes] | None, _Item | None]]:
    """Every physical line, with its item (None for a blank line)."""
    for number, raw in enumerate(lines, start=1):
        if raw is None:
            yield None, _Item(number, None, None)
            continue
        text = _decode(raw).strip().lstrip("\ufeff")
        if not text:
            yield [raw], None
            continue
        try:
            content = json.loads(text)
        except ValueError:
            content = None
        yield [raw], _Item(number, content, [raw])


def _csv_segments(lines: Iterable[bytes | None]) -> Iterator[tuple[list[bytes] | None, _Item | None]]:
    """Every CSV record with the physical lines it spans (a quoted field may hold line breaks),
    as a dict by the header row; the header row and blank lines come with no item."""
    source = iter(lines)
    consumed: list[bytes | None] = []

    def feed() -> Iterator[str]:
        first = True
        for raw in source:
            consumed.append(raw)
            if raw is None:
                yield "\n"
                continue
            text = _decode(raw)
            if first:
                text, first = text.lstrip("\ufeff"), False
            yield text

    def taken() -> tuple[list[bytes] | None, int]:
        spanned = consumed.copy()
        consumed.clear()
        return (None if None in spanned else [raw for raw in spanned if raw is not None]), len(spanned)

    reader = csv.reader(feed())
    header: list[str] | None = None
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            # A malformed record (an unclosed quote, a huge field): nothing after it can be
            # trusted to line up, so the rest passes through unparsed, and cannot be rewritten.
            taken()
            yield None, None
            for raw in source:
                yield ([raw] if raw is not None else None), None
            return
        raw_lines, spanned = taken()
        number = line
        line += spanned
        if not row or header is None:
            header = row or header
            yield raw_lines, None
        else:
            yield raw_lines, _Item(number, dict(zip(header, row, strict=False)), raw_lines, row, header)


# --------------------------------------------------------------------------------------------
# The connector.


class S3Connector:
    """A data map system of type ``s3``."""

    def __init__(self, system: SystemConfig, heartbeat: Heartbeat | None = None) -> None:
        if system.bucket is None:
            raise ConnectorMisconfigured(f"{system.name}: an s3 system needs a bucket")
        self.system = system
        self.name = system.name
        self.bucket = system.bucket.bucket
        self._heartbeat = heartbeat
        self._ticks = 0
        self._versioned: bool | None = None
        #: entity -> objects not searched because they were larger than MAX_DOCUMENT_BYTES
        #: (counted, never logged: a key can name the person)
        self.skipped: dict[str, int] = {}

    # -- the protocol ------------------------------------------------------------------------

    def check(self) -> None:
        with self._errors(checking=True):
            self._client().head_bucket(Bucket=self.bucket)
            self._client().list_objects_v2(Bucket=self.bucket, MaxKeys=1)

    def locate(self, identifiers: dict[str, str]) -> Located:
        matcher = _Matcher(identifiers, self.system.phone_region)
        matches: dict[str, set[str]] = {}
        with self._errors():
            for entity in self.system.entities.values():
                prefix = self._prefix(entity, identifiers)
                if prefix is None:
                    continue
                if not entity.identity:
                    if self._any_object(entity, prefix):
                        for kind in entity.placeholders():
                            matches.setdefault(kind, set()).add(_person_key(entity.name, prefix))
                    continue
                for hit in self._hits(entity, prefix, matcher, with_content=False):
                    for kind in hit.kinds:
                        matches.setdefault(kind, set()).add(hit.person_key)
        by_kind = {kind: sorted(keys) for kind, keys in sorted(matches.items()) if keys}
        return Located(
            system=self.name,
            matched_kinds=list(by_kind),
            person_keys=sorted({key for keys in by_kind.values() for key in keys}),
            matches=by_kind,
            per_record=True,
        )

    def candidates(self, identifiers: dict[str, str], limit: int = 20) -> list[Candidate]:
        """None: objects are records about people, not a register of persons whose identifiers
        verification could compare."""
        return []

    def collect(
        self, identifiers: dict[str, str], sink: Sink, *, person_keys: list[str] | None = None
    ) -> Collected:
        """Stream one record per object version (binary, text, whole JSON documents) or per
        item (JSONL lines, CSV rows, JSON list items) of the located persons; on an error the
        sink holds a partial result and must be discarded."""
        matcher = _Matcher(identifiers, self.system.phone_region)
        accepted = set(person_keys) if person_keys is not None else None
        counts: dict[str, int] = {}
        total = 0
        with self._errors():
            for entity in self.system.entities.values():
                counts[entity.name] = 0
                prefix = self._prefix(entity, identifiers)
                if prefix is None:
                    continue
                owner = _person_key(entity.name, prefix)
                if not entity.identity and accepted is not None and owner not in accepted:
                    continue
                targets = self._targets(entity, prefix, accepted)
                for hit in self._hits(entity, prefix, matcher, with_content=True, targets=targets):
                    if accepted is not None and hit.person_key not in accepted:
                        continue
                    sink.write(record_line(entity.name, self._record(entity, hit)))
                    counts[entity.name] += 1
                    total += 1
                    if self._heartbeat is not None and total % HEARTBEAT_EVERY == 0:
                        self._heartbeat()
        return Collected(system=self.name, records=total, entities=counts)

    def erase(self, plan: ErasurePlan) -> Erased:
        """Delete the subject's objects (every version and delete marker), or empty the
        subject's lines of shared objects; idempotent. Counts are records removed: objects and
        versions deleted, and lines emptied."""
        subject = plan.subject
        matcher = _Matcher(subject.identifiers, self.system.phone_region)
        accepted = set(subject.person_keys)
        deleted: dict[str, int] = {}
        kept: dict[str, int] = {}
        if plan.system != self.name:
            raise ConnectorMisconfigured(f"{self.name}: the erasure plan is for system '{plan.system}'")
        for step in plan.entities:
            entity = self._entity(step.entity)
            if step.strategy != EntityErasure.DELETE:
                raise ConnectorMisconfigured(
                    f"{self.name}: entity '{step.entity}' cannot be erased by '{step.strategy}' "
                    "(S3 objects are deleted or kept)"
                )
            if (step.keep or step.keep_fields) and "key" not in entity.fields:
                raise ConnectorMisconfigured(
                    f"{self.name}: entity '{entity.name}' has records to keep but does not declare the "
                    f"field 'key' to name them by ({entity.origin})"
                )
        with self._errors():
            for step in plan.entities:
                entity = self._entity(step.entity)
                # An object cannot be edited field by field: one kept in part is kept whole.
                keep = frozenset(step.kept())
                counter = _KeptCounter()
                deleted[entity.name] = self._erase_entity(entity, subject, matcher, accepted, keep, counter)
                if keep:
                    kept[entity.name] = counter.kept
        return Erased(system=self.name, deleted=deleted, anonymised={}, kept=kept)

    def rectify(self, changes: Rectification) -> Changed:
        """Set corrected values on the subject's JSON / JSONL / CSV items. Metadata, tags, text
        and binary objects cannot be corrected in place: that is an error naming the entity and
        field, raised before anything is changed."""
        planned: dict[str, list[tuple[str, str | None]]] = {}
        for change in changes.changes:
            entity = self._entity(change.entity)
            path = change.field.removeprefix("content.")
            if entity.format not in _ITEM_FORMATS or not path or path in S3_RECORD_FIELDS:
                raise ConnectorMisconfigured(
                    f"{self.name}: cannot rectify '{change.field}' of entity '{entity.name}' "
                    f"({entity.format} objects): only fields of JSON, JSONL and CSV contents can "
                    "be corrected in place"
                )
            planned.setdefault(entity.name, []).append((path, change.value))
        subject = changes.subject
        matcher = _Matcher(subject.identifiers, self.system.phone_region)
        accepted = set(subject.person_keys)
        exempt = frozenset(changes.exempt)
        counts: dict[str, int] = {}
        with self._errors():
            for name, updates in planned.items():
                entity = self._entity(name)
                counts[name] = 0
                edit = partial(self._edited, entity, updates=updates)
                for version, keys in self._subject_latest(entity, subject, matcher, accepted):
                    if exempt and _record_key(entity, version.key, version.version_id) in exempt:
                        continue
                    changed, _ = self._rewrite(entity, version, matcher, keys, edit)
                    counts[name] += changed
        return Changed(system=self.name, entities=counts)

    def restrict(self, subject: Subject) -> Changed:
        """Tag the subject's objects (every version) ``dsar-restricted=true``, keeping their
        other tags. A shared export holding the subject's lines is tagged as a whole."""
        return self.mark(subject, Marker.RESTRICTION)

    def mark(self, subject: Subject, marker: Marker, exempt: frozenset[str] = frozenset()) -> Changed:
        """Restriction tags the subject's objects, as :meth:`restrict` says. The other markers
        (objection, opt-out, limit) are flags in a register of persons (a SQL table): an object
        store has none to set, and nothing is changed or reported."""
        if marker is not Marker.RESTRICTION:
            return Changed(system=self.name, entities={})
        matcher = _Matcher(subject.identifiers, self.system.phone_region)
        accepted = set(subject.person_keys)
        counts: dict[str, int] = {}
        with self._errors():
            for entity in self.system.entities.values():
                counts[entity.name] = 0
                for version in self._subject_versions(entity, subject, matcher, accepted):
                    if exempt and _record_key(entity, version.key, version.version_id) in exempt:
                        continue
                    counts[entity.name] += self._tag(entity, version)
        return Changed(system=self.name, entities=counts)

    def marks(self, subject: Subject, marker: Marker, exempt: frozenset[str] = frozenset()) -> Marked:
        """How many of the subject's object versions carry the restriction tag (read only)."""
        marked: dict[str, int] = {}
        unmarked: dict[str, int] = {}
        if marker is not Marker.RESTRICTION:
            return Marked(self.name, marked, unmarked)
        matcher = _Matcher(subject.identifiers, self.system.phone_region)
        accepted = set(subject.person_keys)
        name, value = RESTRICTED_TAG
        with self._errors():
            for entity in self.system.entities.values():
                marked[entity.name] = unmarked[entity.name] = 0
                for version in self._subject_versions(entity, subject, matcher, accepted):
                    if exempt and _record_key(entity, version.key, version.version_id) in exempt:
                        continue
                    try:
                        answer = self._call(
                            "get_object_tagging", Key=version.key, **version.api(), gone_ok=True
                        )
                    except _Gone:
                        continue
                    tags = {t["Key"]: t["Value"] for t in answer.get("TagSet", [])}
                    if tags.get(name) == value:
                        marked[entity.name] += 1
                    else:
                        unmarked[entity.name] += 1
        return Marked(self.name, marked, unmarked)

    # -- what belongs to the subject -----------------------------------------------------------

    def _entity(self, name: str) -> EntityConfig:
        entity = self.system.entities.get(name)
        if entity is None:
            raise ConnectorMisconfigured(f"{self.name}: no entity '{name}' in the data map")
        return entity

    def _prefix(self, entity: EntityConfig, identifiers: dict[str, str]) -> str | None:
        """The entity's key prefix, its template filled from the identifiers; None when a
        placeholder's kind was not supplied or its value cannot be a key segment."""
        kinds = entity.placeholders()
        if not kinds:
            return entity.prefix
        values: dict[str, str] = {}
        for kind in kinds:
            value = identifiers.get(kind)
            if not isinstance(value, str):
                return None
            segment = _normalised(identifier_kind(kind), value, self.system.phone_region)
            if segment is None or not _safe_segment(segment):
                return None
            values[kind] = segment
        prefix = _PLACEHOLDER.sub(lambda m: values[m.group(1)], entity.prefix)
        if len(prefix.encode()) > _MAX_KEY_BYTES:
            return None
        return prefix

    def _in_prefix(self, entity: EntityConfig, prefix: str, key: str) -> bool:
        """Whether ``key`` is under ``prefix``; when the template ends in a placeholder
        (``audio/{customer_id}``), customer 4's prefix must not take customer 42's objects."""
        if not key.startswith(prefix):
            return False
        if entity.placeholders() and entity.prefix.endswith("}") and len(key) > len(prefix):
            return not key[len(prefix)].isalnum()
        return True

    def _targets(self, entity: EntityConfig, prefix: str, accepted: set[str] | None) -> set[str] | None:
        """The objects the accepted person keys name in this entity (None: search them all)."""
        if accepted is None or not entity.identity:
            return None
        out = set()
        for person_key in accepted:
            key = _object_of(person_key, entity.name)
            if key is not None and self._in_prefix(entity, prefix, key):
                out.add(key)
        return out

    def _hits(
        self,
        entity: EntityConfig,
        prefix: str,
        matcher: _Matcher,
        *,
        with_content: bool,
        targets: set[str] | None = None,
    ) -> Iterator[_Hit]:
        """Everything of the subject's in the entity, version by version. Template entities
        own every object under their prefix; others are matched source by source. ``targets``
        narrows the search to objects named by person keys (collect after locate)."""
        if not entity.identity:
            whole_key = _person_key(entity.name, prefix)
            versions: Iterable[_Version] = self._versions(entity, prefix)
        else:
            whole_key = ""
            versions = (
                self._versions(entity, prefix)
                if targets is None
                else (v for key in sorted(targets) for v in self._key_versions(key))
            )
        sources = _Sources.of(entity)
        for version in versions:
            self._tick()
            yield from self._version_hits(entity, sources, version, matcher, whole_key, with_content)

    def _version_hits(
        self,
        entity: EntityConfig,
        sources: _Sources,
        version: _Version,
        matcher: _Matcher,
        owner_key: str,
        with_content: bool,
    ) -> Iterator[_Hit]:
        info = _Info(self, version)
        try:
            object_kinds: set[str] = set()
            if sources.metadata:
                metadata = info.metadata
                object_kinds |= {
                    s.kind.value for s in sources.metadata if matcher.value(s.kind, metadata.get(s.name))
                }
            if sources.tags:
                tags = info.tags
                object_kinds |= {
                    s.kind.value for s in sources.tags if matcher.value(s.kind, tags.get(s.name))
                }
            whole = bool(owner_key) or bool(object_kinds)
            whole_key = owner_key or _person_key(entity.name, version.key)
            kinds = frozenset(object_kinds)
            if with_content:
                if "tags" in entity.fields:
                    info.tags  # noqa: B018 - fetched now, while a vanished object can be skipped
                if {"content_type", "metadata"} & set(entity.fields):
                    info.metadata  # noqa: B018
            wants_content = with_content and "content" in entity.fields
            if whole:
                read = wants_content and entity.format != "binary"
            else:
                read = entity.format != "binary" and bool(sources.fields or sources.text)
            if not read:
                if whole:
                    yield _Hit(version, info, None, whole_key, kinds)
                return
            any_item = False
            for item in self._items(entity, version, info):
                self._tick()
                if whole:
                    any_item = True
                    yield _Hit(version, info, item, whole_key, kinds)
                    continue
                item_kinds = self._item_kinds(sources, matcher, item)
                if item_kinds:
                    key = (
                        whole_key
                        if item.number is None
                        else _person_key(entity.name, version.key, item.number)
                    )
                    yield _Hit(version, info, item if wants_content else None, key, item_kinds)
            if whole and not any_item:
                yield _Hit(version, info, None, whole_key, kinds)
        except _Gone:
            return

    @staticmethod
    def _item_kinds(sources: _Sources, matcher: _Matcher, item: _Item) -> frozenset[str]:
        kinds = {s.kind.value for s in sources.fields if matcher.value(s.kind, _field(item.content, s.name))}
        if item.number is None and isinstance(item.content, str):
            kinds |= {s.kind.value for s in sources.text if matcher.text(s.kind, item.content)}
        return frozenset(kinds)

    def _subject_versions(
        self, entity: EntityConfig, subject: Subject, matcher: _Matcher, accepted: set[str]
    ) -> Iterator[_Version]:
        """Every version holding something of the subject's (accepted keys only), once each."""
        prefix = self._prefix(entity, subject.identifiers)
        if prefix is None:
            return
        if not entity.identity:
            if _person_key(entity.name, prefix) in accepted:
                yield from self._versions(entity, prefix)
            return
        sources = _Sources.of(entity)
        for key in sorted(self._targets(entity, prefix, accepted) or ()):
            for version in self._key_versions(key):
                hits = self._version_hits(entity, sources, version, matcher, "", with_content=False)
                if any(hit.person_key in accepted for hit in hits):
                    yield version

    def _subject_latest(
        self, entity: EntityConfig, subject: Subject, matcher: _Matcher, accepted: set[str]
    ) -> Iterator[tuple[_Version, set[str] | None]]:
        """The current versions holding the subject's items, with the accepted person keys to
        change in each (None: the whole object is the subject's)."""
        prefix = self._prefix(entity, subject.identifiers)
        if prefix is None:
            return
        if not entity.identity:
            if _person_key(entity.name, prefix) in accepted:
                for version in self._versions(entity, prefix):
                    if version.latest:
                        yield version, None
            return
        sources = _Sources.of(entity)
        for key in sorted(self._targets(entity, prefix, accepted) or ()):
            for version in self._key_versions(key):
                if not version.latest:
                    continue
                hits = self._version_hits(entity, sources, version, matcher, "", with_content=False)
                keys = {hit.person_key for hit in hits if hit.person_key in accepted}
                if _person_key(entity.name, key) in keys:
                    yield version, None
                elif keys:
                    yield version, keys

    # -- erasure, rectification, restriction -------------------------------------------------

    def _erase_entity(
        self,
        entity: EntityConfig,
        subject: Subject,
        matcher: _Matcher,
        accepted: set[str],
        keep: frozenset[str] = frozenset(),
        counter: _KeptCounter | None = None,
    ) -> int:
        counter = counter or _KeptCounter()
        prefix = self._prefix(entity, subject.identifiers)
        if prefix is None:
            return 0
        if not entity.identity:
            if _person_key(entity.name, prefix) not in accepted:
                return 0
            return self._delete(self._unkept(entity, self._all_versions(entity, prefix), keep, counter))
        sources = _Sources.of(entity)
        removed = 0
        for key in sorted(self._targets(entity, prefix, accepted) or ()):
            whole_key = _person_key(entity.name, key)
            with_lines: list[_Version] = []
            latest: tuple[_Version, set[str]] | None = None
            whole = False
            for version in self._key_versions(key):
                keys = {
                    hit.person_key
                    for hit in self._version_hits(entity, sources, version, matcher, "", with_content=False)
                    if hit.person_key in accepted
                }
                if whole_key in keys:
                    whole = True
                    break
                if keys:
                    if keep and _record_key(entity, version.key, version.version_id) in keep:
                        counter.kept += 1  # kept as it is, the subject's lines in it too
                        continue
                    with_lines.append(version)
                    if version.latest:
                        latest = (version, keys)
            if whole:
                removed += self._delete(self._unkept(entity, self._all_versions_of(key), keep, counter))
                continue
            if latest is not None:
                changed, remaining = self._rewrite(entity, latest[0], matcher, latest[1], _emptied)
                if changed and not remaining:
                    # Nothing but the subject's lines: the object itself is the subject's.
                    removed += self._delete(self._unkept(entity, self._all_versions_of(key), keep, counter))
                    continue
                removed += changed
            if self._is_versioned():
                # Older versions still hold the lines: delete them (the rewrite is the latest).
                removed += self._delete((v.key, v.version_id) for v in with_lines if v.version_id)
        return removed

    def _unkept(
        self,
        entity: EntityConfig,
        entries: Iterable[tuple[str, str | None]],
        keep: frozenset[str],
        counter: _KeptCounter,
    ) -> Iterator[tuple[str, str | None]]:
        """The versions (and delete markers) to delete, less those the plan keeps. An object
        with a kept version keeps its delete markers too: removing one would bring an older
        version back as the current object."""
        if not keep:
            yield from entries
            return
        listed = list(entries)  # the subject's objects only: bounded by what they hold
        kept_objects = {
            key
            for key, version_id in listed
            if not (version_id or "").startswith(_MARKER) and _record_key(entity, key, version_id) in keep
        }
        for key, version_id in listed:
            if (version_id or "").startswith(_MARKER):
                if key not in kept_objects:
                    yield key, version_id
            elif _record_key(entity, key, version_id) in keep:
                counter.kept += 1
            else:
                yield key, version_id

    def _rewrite(
        self,
        entity: EntityConfig,
        version: _Version,
        matcher: _Matcher,
        keys: set[str] | None,
        edit: Callable[[_Item, list[bytes]], bytes],
    ) -> tuple[int, int]:
        """Rewrite one object, passing each of the subject's items (those whose person key is
        in ``keys`` and that still match the identifiers; every item when ``keys`` is None)
        through ``edit``. Matching is redone on the very bytes being rewritten, and the write
        is conditional on the object being unchanged since it was read, so a concurrent change
        is never lost (the activity's retry starts again). Returns (items changed, non-empty
        items left)."""
        sources = _Sources.of(entity)

        def selected(item: _Item) -> bool:
            if keys is None:
                return True
            key = _person_key(entity.name, version.key, item.number)
            return key in keys and bool(self._item_kinds(sources, matcher, item))

        answer = self._call("get_object", Key=version.key, **version.api(), gone_ok=True)
        body = answer["Body"]
        extra = self._preserved(answer, version)
        writer = S3ObjectWriter(
            self._client(), self.bucket, version.key, extra=extra, if_match=answer.get("ETag")
        )
        changed = remaining = 0
        try:
            if entity.format == "json":
                changed, remaining = self._rewrite_document(entity, body, answer, selected, edit, writer)
            else:
                segments = (_jsonl_segments if entity.format == "jsonl" else _csv_segments)(
                    _lines(body.iter_chunks(_READ_CHUNK))
                )
                for raw, item in segments:
                    self._tick()
                    if raw is None:
                        raise _TooLarge
                    if item is not None and item.number and selected(item):
                        new = edit(item, raw)
                        if new != b"".join(raw):
                            changed += 1
                        writer.write(new)
                        remaining += int(bool(new.strip()))
                    else:
                        writer.write(b"".join(raw))
                        remaining += int(item is not None)
        except _TooLarge:
            writer.abort()
            raise ConnectorError(
                f"{self.name}: an object of entity '{entity.name}' has a line over "
                f"{MAX_LINE_BYTES // 2**20} MiB or a malformed record: it cannot be rewritten safely"
            ) from None
        except BaseException:
            writer.abort()
            raise
        finally:
            body.close()
        if not changed or not remaining:
            writer.abort()  # nothing to write, or the caller deletes the whole object
        else:
            try:
                writer.close()
            except ClientError as exc:
                if _code(exc) in {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}:
                    raise ConnectorUnavailable(
                        f"{self.name}: an object of entity '{entity.name}' changed while it was "
                        "being rewritten; retry"
                    ) from None
                raise
        return changed, remaining

    def _rewrite_document(
        self,
        entity: EntityConfig,
        body: Any,
        answer: dict[str, Any],
        selected: Callable[[_Item], bool],
        edit: Callable[[_Item, list[bytes]], bytes],
        writer: S3ObjectWriter,
    ) -> tuple[int, int]:
        if int(answer.get("ContentLength") or 0) > MAX_DOCUMENT_BYTES:
            raise _TooLarge
        raw = body.read()
        try:
            document = json.loads(raw)
        except ValueError:
            return 0, 1
        indent = 2 if b"\n" in raw.strip() else None
        changed = 0
        if isinstance(document, list):
            out: list[Any] = []
            for number, content in enumerate(document, start=1):
                item = _Item(number, content)
                new = json.loads(edit(item, [b""])) if selected(item) else content
                changed += int(new != content)
                out.append(new)
            remaining = sum(1 for content in out if content is not None)
            result: Any = out
        else:
            item = _Item(None, document)
            result = json.loads(edit(item, [b""])) if selected(item) else document
            changed = int(result != document)
            remaining = int(result is not None)
        writer.write(
            json.dumps(result, ensure_ascii=False, indent=indent).encode()
            + (b"\n" if raw.endswith(b"\n") else b"")
        )
        return changed, remaining

    def _edited(
        self, entity: EntityConfig, item: _Item, raw: list[bytes], *, updates: list[tuple[str, str | None]]
    ) -> bytes:
        """An item with the corrected values set, in its object's format (unchanged bytes when
        it already holds them, so a repeated rectification changes nothing)."""
        unchanged = b"".join(raw) if entity.format != "json" else json.dumps(item.content).encode()
        if entity.format == "csv":
            return self._edited_row(entity, item, raw, updates) or unchanged
        if not isinstance(item.content, dict):
            return unchanged
        updated = json.loads(json.dumps(item.content))  # a deep copy
        changed = False
        for path, value in updates:
            changed |= _set_field(updated, path, value)
        if not changed:
            return unchanged
        text = json.dumps(updated, ensure_ascii=False).encode()
        return text if entity.format == "json" else text + _ending(raw[-1])

    def _edited_row(
        self, entity: EntityConfig, item: _Item, raw: list[bytes], updates: list[tuple[str, str | None]]
    ) -> bytes | None:
        if item.row is None or item.columns is None:
            return None
        row = list(item.row)
        for path, value in updates:
            if path not in item.columns:
                raise ConnectorMisconfigured(
                    f"{self.name}: entity '{entity.name}' has an object without a column '{path}': "
                    "nothing was rectified in it"
                )
            index = item.columns.index(path)
            row.extend([""] * (index + 1 - len(row)))
            row[index] = value or ""
        if row == item.row:
            return None
        ending = _ending(raw[-1]) or b"\n"
        out = io.StringIO()
        csv.writer(out, lineterminator=ending.decode()).writerow(row)
        text = out.getvalue().encode()
        # Keep every later row on its line number: pad a record that now spans fewer lines.
        return text + ending * max(len(raw) - text.count(b"\n"), 0)

    def _tag(self, entity: EntityConfig, version: _Version) -> int:
        """Add the restriction tag to one version; 0 when it is already there."""
        try:
            answer = self._call("get_object_tagging", Key=version.key, **version.api(), gone_ok=True)
        except _Gone:
            return 0
        tags = [{"Key": t["Key"], "Value": t["Value"]} for t in answer.get("TagSet", [])]
        name, value = RESTRICTED_TAG
        if any(t["Key"] == name and t["Value"] == value for t in tags):
            return 0
        tags = [t for t in tags if t["Key"] != name]
        if len(tags) >= _MAX_TAGS:
            raise ConnectorError(
                f"{self.name}: an object of entity '{entity.name}' already has {_MAX_TAGS} tags, "
                f"S3's limit: the '{name}' tag cannot be added"
            )
        tags.append({"Key": name, "Value": value})
        try:
            self._call(
                "put_object_tagging", Key=version.key, **version.api(), Tagging={"TagSet": tags}, gone_ok=True
            )
        except _Gone:
            return 0
        return 1

    def _preserved(self, answer: dict[str, Any], version: _Version) -> dict[str, Any]:
        """What a rewrite keeps of the object: its headers, metadata, tags and encryption."""
        extra: dict[str, Any] = {"Metadata": dict(answer.get("Metadata") or {})}
        for name in (
            "ContentType",
            "ContentEncoding",
            "ContentDisposition",
            "ContentLanguage",
            "CacheControl",
            "ServerSideEncryption",
            "SSEKMSKeyId",
        ):
            if answer.get(name):
                extra[name] = answer[name]
        if answer.get("StorageClass") and answer["StorageClass"] != "STANDARD":
            extra["StorageClass"] = answer["StorageClass"]
        try:
            tag_set = self._call("get_object_tagging", Key=version.key, **version.api(), gone_ok=True).get(
                "TagSet", []
            )
        except _Gone:
            tag_set = []
        if tag_set:
            extra["Tagging"] = urlencode([(t["Key"], t["Value"]) for t in tag_set])
        return extra

    # -- listing and reading -----------------------------------------------------------------

    def _is_versioned(self) -> bool:
        """Whether the bucket keeps versions ("Suspended" buckets still hold old ones)."""
        if self._versioned is None:
            status = self._client().get_bucket_versioning(Bucket=self.bucket).get("Status")
            self._versioned = status in ("Enabled", "Suspended")
        return self._versioned

    def _any_object(self, entity: EntityConfig, prefix: str) -> bool:
        """Whether anything (in a versioned bucket: any version) is stored under the prefix."""
        if not self._is_versioned() and not (entity.prefix.endswith("}") and entity.placeholders()):
            answer = self._client().list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
            return bool(answer.get("Contents"))
        return next(iter(self._versions(entity, prefix)), None) is not None

    def _versions(self, entity: EntityConfig, prefix: str) -> Iterator[_Version]:
        """Every stored version under a prefix (delete markers left out), page by page."""
        client = self._client()
        if self._is_versioned():
            for page in client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                for entry in page.get("Versions", []):
                    if self._in_prefix(entity, prefix, entry["Key"]):
                        yield _version(entry, versioned=True)
        else:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    if self._in_prefix(entity, prefix, entry["Key"]):
                        yield _version(entry, versioned=False)

    def _key_versions(self, key: str) -> list[_Version]:
        """The stored versions of one object, newest first (none when it is gone)."""
        client = self._client()
        if self._is_versioned():
            out: list[_Version] = []
            for page in client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
                out.extend(_version(e, versioned=True) for e in page.get("Versions", []) if e["Key"] == key)
                if any(e["Key"] > key for e in page.get("Versions", [])):
                    break
            return out
        try:
            answer = self._call("head_object", Key=key, gone_ok=True)
        except _Gone:
            return []
        return [_Version(key, None, answer.get("LastModified"), int(answer.get("ContentLength") or 0))]

    def _all_versions(self, entity: EntityConfig, prefix: str) -> Iterator[tuple[str, str | None]]:
        """(key, version) of every version and delete marker under a prefix: what erasing an
        owned prefix deletes. Delete markers come as version ids too, and are deleted as well."""
        client = self._client()
        if not self._is_versioned():
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    if self._in_prefix(entity, prefix, entry["Key"]):
                        yield entry["Key"], None
            return
        for page in client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            for entry in page.get("Versions", []):
                if self._in_prefix(entity, prefix, entry["Key"]):
                    yield entry["Key"], entry["VersionId"]
            for entry in page.get("DeleteMarkers", []):
                if self._in_prefix(entity, prefix, entry["Key"]):
                    yield entry["Key"], _MARKER + entry["VersionId"]

    def _all_versions_of(self, key: str) -> Iterator[tuple[str, str | None]]:
        client = self._client()
        if not self._is_versioned():
            yield key, None
            return
        for page in client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            for entry in page.get("Versions", []):
                if entry["Key"] == key:
                    yield key, entry["VersionId"]
            for entry in page.get("DeleteMarkers", []):
                if entry["Key"] == key:
                    yield key, _MARKER + entry["VersionId"]

    def _delete(self, entries: Iterable[tuple[str, str | None]]) -> int:
        """Delete objects or versions in batches; returns how many were objects or versions
        (delete markers are deleted too, uncounted). In an unversioned bucket a key that is
        already gone is not counted, so a repeated erasure reports 0."""
        batch: list[dict[str, str]] = []
        counted = 0
        versioned = self._is_versioned()
        for key, version_id in entries:
            if version_id is None:
                if not versioned and not self._exists(key):
                    continue
                batch.append({"Key": key})
                counted += 1
            elif version_id.startswith(_MARKER):
                batch.append({"Key": key, "VersionId": version_id[len(_MARKER) :]})
            else:
                batch.append({"Key": key, "VersionId": version_id})
                counted += 1
            if len(batch) == 1000:  # DeleteObjects' limit
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)
        return counted

    def _delete_batch(self, batch: list[dict[str, str]]) -> None:
        self._tick()
        answer = self._client().delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        errors = answer.get("Errors") or []
        if errors:
            raise ConnectorError(
                f"{self.name}: bucket '{self.bucket}' refused to delete {len(errors)} object(s) "
                f"({_safe_code(errors[0].get('Code'))})"
            )

    def _exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=key, gone_ok=True)
        except _Gone:
            return False
        return True

    def _items(self, entity: EntityConfig, version: _Version, info: _Info) -> Iterator[_Item]:
        """The parsed items of one object version, read as its format says."""
        fmt = entity.format
        if fmt in ("json", "text") and version.size > MAX_DOCUMENT_BYTES:
            self.skipped[entity.name] = self.skipped.get(entity.name, 0) + 1
            return
        answer = self._call("get_object", Key=version.key, **version.api(), gone_ok=True)
        info.take(answer)
        body = answer["Body"]
        try:
            if fmt in _LINE_FORMATS:
                segments = (_jsonl_segments if fmt == "jsonl" else _csv_segments)(
                    _lines(body.iter_chunks(_READ_CHUNK))
                )
                for _, item in segments:
                    if item is not None and item.number:
                        yield item
                return
            raw = body.read(MAX_DOCUMENT_BYTES + 1)
            if len(raw) > MAX_DOCUMENT_BYTES:  # grew since it was listed
                self.skipped[entity.name] = self.skipped.get(entity.name, 0) + 1
                return
            if fmt == "text":
                yield _Item(None, _decode(raw).lstrip("\ufeff"))
                return
            try:
                document = json.loads(raw)
            except ValueError:
                yield _Item(None, None)
                return
            if isinstance(document, list):
                for number, content in enumerate(document, start=1):
                    yield _Item(number, content)
            else:
                yield _Item(None, document)
        finally:
            body.close()

    def _record(self, entity: EntityConfig, hit: _Hit) -> dict[str, Any]:
        """The record of one hit: the entity's declared fields only, in declared order."""
        version, info = hit.version, hit.info
        record: dict[str, Any] = {}
        for name in entity.fields:
            if name == "key":
                record[name] = version.key
            elif name == "version_id":
                record[name] = version.version_id if version.version_id not in (None, "null") else None
            elif name == "last_modified":
                record[name] = version.last_modified.isoformat() if version.last_modified else None
            elif name == "size":
                record[name] = version.size
            elif name == "content_type":
                record[name] = info.content_type
            elif name == "metadata":
                record[name] = dict(info.metadata)
            elif name == "tags":
                record[name] = dict(info.tags)
            elif name == "content":
                record[name] = None if entity.format == "binary" or hit.item is None else hit.item.content
        return record

    # -- the client and its errors -------------------------------------------------------------

    def _client(self) -> Any:
        assert self.system.bucket is not None
        env = self.system.bucket.endpoint_env
        endpoint = os.environ.get(env, "").strip() if env else ""
        try:
            return s3_client(endpoint or None, self.system.bucket.region or None)
        except ValueError:
            raise ConnectorMisconfigured(
                f"{self.name}: {env} does not hold a usable S3 endpoint URL"
            ) from None

    def _call(self, operation: str, *, gone_ok: bool = False, **kwargs: Any) -> dict[str, Any]:
        """One object-level call; a vanished object (deleted since it was listed) is ``_Gone``."""
        try:
            return dict(getattr(self._client(), operation)(Bucket=self.bucket, **kwargs))
        except ClientError as exc:
            if gone_ok and _code(exc) in _GONE:
                raise _Gone from None
            raise

    def _tick(self) -> None:
        """Heartbeat now and then while scanning: a search of a big bucket can take minutes."""
        self._ticks += 1
        if self._heartbeat is not None and self._ticks % HEARTBEAT_EVERY == 0:
            self._heartbeat()

    @contextmanager
    def _errors(self, *, checking: bool = False) -> Iterator[None]:
        """S3 and network failures as connector errors. Messages name the system and bucket
        only: S3's own messages can quote object keys (which hold customer numbers) and
        botocore's can quote the endpoint URL."""
        where = f"{self.name}: bucket '{self.bucket}'"
        try:
            yield
        except ConnectorError:
            raise
        except ClientError as exc:
            code = _code(exc)
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in {"NoSuchBucket"} or (checking and code in _NO_BUCKET):
                raise ConnectorMisconfigured(f"{where} does not exist") from None
            if code in _DENIED:
                raise ConnectorMisconfigured(
                    f"{where}: access denied (check the credentials and the bucket policy)"
                ) from None
            if code in _WRONG_REGION:
                raise ConnectorMisconfigured(f"{where}: wrong region or endpoint for this bucket") from None
            if code in _BUSY or status >= 500:
                raise ConnectorUnavailable(
                    f"{self.name} unavailable (bucket '{self.bucket}': {_safe_code(code)})"
                ) from None
            raise ConnectorError(f"{where}: request failed ({_safe_code(code)})") from None
        except (NoCredentialsError, PartialCredentialsError):
            raise ConnectorMisconfigured(
                f"{where}: no S3 credentials found (AWS_* variables, profile or instance role)"
            ) from None
        except (BotoConnectionError, HTTPClientError):
            raise ConnectorUnavailable(f"{self.name} unreachable (bucket '{self.bucket}')") from None
        except BotoCoreError as exc:
            raise ConnectorError(f"{where}: request failed ({type(exc).__name__})") from None


#: Marks a delete marker's version id in deletion lists (deleted, but not counted).
_MARKER = "\x00marker:"


class _KeptCounter:
    """Object versions an erasure left because the plan keeps them."""

    def __init__(self) -> None:
        self.kept = 0


def _record_key(entity: EntityConfig, key: str, version_id: str | None) -> str | None:
    """An object version's record key, as the search's record of it is named
    (:func:`dsar.exemptions.record_key` over its ``key`` and ``version_id`` fields)."""
    values: dict[str, Any] = {}
    if "key" in entity.fields:
        values["key"] = key
    if "version_id" in entity.fields:
        values["version_id"] = version_id if version_id not in (None, "null") else None
    return row_record_key(entity, values)


def _version(entry: dict[str, Any], *, versioned: bool) -> _Version:
    return _Version(
        key=entry["Key"],
        version_id=entry.get("VersionId") if versioned else None,
        last_modified=entry.get("LastModified"),
        size=int(entry.get("Size") or 0),
        latest=bool(entry.get("IsLatest", True)),
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def _safe_code(code: Any) -> str:
    """An S3 error code, fit for a log line (never a free-form message)."""
    text = str(code or "")
    return text if re.fullmatch(r"[A-Za-z0-9.]{1,64}", text) else "error"


def _ending(raw: bytes) -> bytes:
    if raw.endswith(b"\r\n"):
        return b"\r\n"
    return b"\n" if raw.endswith(b"\n") else b""


def _emptied(item: _Item, raw: list[bytes]) -> bytes:
    """An erased item: its line(s) left empty (JSON list items become null), so that every
    other item keeps its number."""
    if not raw or raw == [b""]:
        return b"null"
    return b"".join(_ending(line) for line in raw)


__all__ = ["MAX_DOCUMENT_BYTES", "RESTRICTED_TAG", "S3Connector"]
