"""The other changes a person can ask for, each a plan applied and then verified.

* **Rectification** (UK/EU GDPR Art. 16, CCPA s.1798.106): the corrected values, per system,
  entity and field (:class:`Correction`; :func:`corrections_for_identifier` turns "my phone
  number is ..." into every identity column of that kind). Applied by ``Connector.rectify``
  and verified by reading the records back, found *without* the disputed field: the person is
  located by their other identifiers and the persons the search accepted, so a correction of
  the email address is not "verified" by finding the new address it just wrote.
* **Restriction** (Art. 18), **objection** (Art. 21) and **opt-out of sale or sharing / limit
  the use of sensitive data** (CCPA s.1798.120-121): the data map's marker per entity
  (``restriction:``, ``objection:``, ``opt_out:``, ``limit_use:``; a column and its value) set
  by ``Connector.mark`` and verified by reading the markers back (``Connector.marks``).

Records the review exempts (outcome ``refuse``: an exemption applies to the record, or to the
field being changed) are left as they are, and verification leaves them out too.
"""

# No `from __future__ import annotations`: Correction travels as an activity payload, whose
# converter needs real type hints (see dsar/model.py).

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import Connector, FieldChange, Marked, RecordSink, Rectification, Subject
from dsar.datamap import DataMap, Marker, SystemConfig
from dsar.erasure import resolve_subject
from dsar.exemptions import Outcome, RecordDecision, record_key
from dsar.model import RequestType

#: The marker each request type sets.
MARKERS: dict[RequestType, Marker] = {
    RequestType.RESTRICTION: Marker.RESTRICTION,
    RequestType.OBJECTION: Marker.OBJECTION,
    RequestType.OPT_OUT_SALE_SHARING: Marker.OPT_OUT,
    RequestType.LIMIT_SENSITIVE: Marker.LIMIT_USE,
}


class ChangePlanError(ValueError):
    """A correction or marker does not fit the data map; the message never holds a value."""


class ChangeNotVerified(Exception):
    """Reading back found records the change did not reach. Names system, entity and count."""

    def __init__(self, system: str, problems: list[str]) -> None:
        self.system = system
        self.problems = problems
        super().__init__(f"{system}: change not verified: {'; '.join(problems)}")


@dataclass
class Correction:
    """One corrected field: where, and the value it must hold (text, or None to empty it)."""

    system: str
    entity: str
    field: str
    value: str | None


def corrections_for_identifier(datamap: DataMap, kind: str, value: str | None) -> list[Correction]:
    """A corrected identifier (``phone``) as a correction of every identity column holding that
    kind, in every SQL system: the person says what is wrong, not where we keep it."""
    out = []
    for system in datamap.systems.values():
        if system.connector != "sql":
            continue
        for entity in system.identity_entities():
            for column, held in entity.identity.items():
                # a name over several columns (first+last) is corrected field by field, by hand
                if (
                    held.value == kind
                    and "+" not in column
                    and column not in system.join_columns(entity.name)
                ):
                    out.append(Correction(system.name, entity.name, column, value))
    return out


def _exempt(decisions: Iterable[RecordDecision], system: str, touched: Mapping[str, set[str]]) -> set[str]:
    """Record keys of ``system`` not to change: refused as a whole, or refused for a field the
    change sets (``touched``: entity -> fields). A record is never changed in part."""
    out = set()
    for d in decisions:
        if d.system != system or d.entity not in touched:
            continue
        refused = d.whole_record and d.outcome in (Outcome.REFUSE, Outcome.RETAIN, Outcome.WITHHOLD)
        if refused or any(d.field_outcome(name) is Outcome.REFUSE for name in touched[d.entity]):
            out.add(d.key)
    return out


@dataclass
class RectificationPlan:
    system: str
    rectification: Rectification


def build_rectifications(
    datamap: DataMap,
    subjects: Mapping[str, Subject],
    corrections: Iterable[Correction],
    decisions: Iterable[RecordDecision] = (),
) -> list[RectificationPlan]:
    """One rectification per system that a correction names, with the exempt records."""
    decided = list(decisions)
    per_system: dict[str, list[FieldChange]] = {}
    for c in corrections:
        config = datamap.systems.get(c.system)
        if config is None or config.manual is not None:
            raise ChangePlanError(f"no connected system '{c.system}' in the data map")
        entity = config.entities.get(c.entity)
        if entity is None:
            raise ChangePlanError(f"{c.system}: no entity '{c.entity}'")
        if config.connector == "sql" and c.field not in entity.fields:
            raise ChangePlanError(f"{c.system}.{c.entity}: no field '{c.field}' declared")
        per_system.setdefault(c.system, []).append(FieldChange(c.entity, c.field, c.value))
    plans = []
    for name in sorted(per_system, key=list(datamap.systems).index):
        changes = per_system[name]
        touched: dict[str, set[str]] = {}
        for change in changes:
            touched.setdefault(change.entity, set()).add(change.field.removeprefix("content."))
        exempt = sorted(_exempt(decided, name, touched))
        subject = subjects.get(name, Subject({}, []))
        plans.append(RectificationPlan(name, Rectification(subject, changes, exempt)))
    return plans


@dataclass
class MarkPlan:
    system: str
    subject: Subject
    marker: Marker
    exempt: list[str] = field(default_factory=list)


def build_mark_plans(
    datamap: DataMap,
    subjects: Mapping[str, Subject],
    marker: Marker,
    decisions: Iterable[RecordDecision] = (),
) -> list[MarkPlan]:
    """One plan per connected system with an entity carrying ``marker`` (S3 systems for
    restriction: every object is tagged)."""
    decided = list(decisions)
    plans = []
    for name, config in datamap.systems.items():
        if config.manual is not None:
            continue
        touched = {
            e.name: {where[0]} for e in config.entities.values() if (where := e.marker(marker)) is not None
        }
        if config.connector == "s3" and marker is Marker.RESTRICTION:
            touched = {e: set() for e in config.entities}
        if not touched:
            continue
        exempt = sorted(_exempt(decided, name, touched))
        plans.append(MarkPlan(name, subjects.get(name, Subject({}, [])), marker, exempt))
    return plans


# --------------------------------------------------------------------------------------------
# Verification


@dataclass
class ChangeCheck:
    system: str
    #: entity -> (records holding the change, records checked)
    entities: dict[str, tuple[int, int]]

    def detail(self) -> str:
        parts = [f"{e} {ok}/{n}" for e, (ok, n) in self.entities.items()]
        return "read back: " + (", ".join(parts) if parts else "no records to check")


def verify_marks(connector: Connector, plan: MarkPlan) -> ChangeCheck:
    """Read the markers back; every record the plan marks must carry its marker."""
    subject = resolve_subject(connector, plan.subject)
    marked: Marked = connector.marks(subject, plan.marker, frozenset(plan.exempt))
    problems = [
        f"{entity}: {count} record(s) without the {plan.marker.value} marker"
        for entity, count in marked.unmarked.items()
        if count
    ]
    if problems:
        raise ChangeNotVerified(plan.system, problems)
    return ChangeCheck(
        plan.system,
        {e: (marked.marked[e], marked.marked[e] + marked.unmarked[e]) for e in marked.marked},
    )


class _ReadBack(RecordSink):
    """A sink checking each record of a corrected entity as it streams by."""

    def __init__(self, system: SystemConfig, changes: list[FieldChange], exempt: set[str]) -> None:
        super().__init__()
        self.system = system
        self.exempt = exempt
        self.wanted: dict[str, dict[str, str | None]] = {}
        for change in changes:
            self.wanted.setdefault(change.entity, {})[change.field.removeprefix("content.")] = change.value
        self.counts: dict[str, list[int]] = {entity: [0, 0] for entity in self.wanted}
        self.stale: dict[str, set[str]] = {}  # entity -> fields found not holding their value
        self.positions: dict[str, int] = {}
        #: s3: (entity, object key) -> version (last modified) -> [correct, items, wrong fields]
        self.objects: dict[tuple[str, str], dict[str, list[Any]]] = {}

    def take(self, name: str, record: Mapping[str, Any]) -> None:
        position = self.positions[name] = self.positions.get(name, 0) + 1
        if name not in self.wanted:
            return
        if record_key(self.system.entities[name], record, position) in self.exempt:
            return
        if self.system.connector != "s3":
            self._tally(name, record)
            return
        content = record.get("content")
        if not isinstance(content, dict):
            return  # an item that cannot hold the field (a blank or unreadable line)
        # Only an object's current version is corrected (older versions are its history): the
        # items of each object are tallied per version, and the newest version counts.
        versions = self.objects.setdefault((name, str(record.get("key"))), {})
        tally = versions.setdefault(str(record.get("last_modified") or ""), [0, 0, set()])
        wrong = {f for f, value in self.wanted[name].items() if not same_value(_at(content, f), value)}
        tally[0] += not wrong
        tally[1] += 1
        tally[2] |= wrong

    def _tally(self, name: str, record: Mapping[str, Any]) -> None:
        counts = self.counts[name]
        counts[1] += 1
        wrong = [f for f, value in self.wanted[name].items() if not same_value(_at(record, f), value)]
        if wrong:
            self.stale.setdefault(name, set()).update(wrong)
        else:
            counts[0] += 1

    def finish(self) -> None:
        for (name, _), versions in self.objects.items():
            ok, total, wrong = versions[max(versions)]
            self.counts[name][0] += ok
            self.counts[name][1] += total
            if wrong:
                self.stale.setdefault(name, set()).update(wrong)


def _at(record: Any, path: str) -> Any:
    """A field of a record; ``a.b`` reaches into nested JSON (S3 contents)."""
    if isinstance(record, Mapping) and path in record:
        return record[path]
    value = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def same_value(stored: Any, wanted: str | None) -> bool:
    """Whether a stored value (as collected: JSON types, dates as ISO text, decimals as text)
    is the corrected text: flags as flags, numbers as numbers, dates as dates, text exactly."""
    if wanted is None:
        return stored is None or stored == ""
    if stored is None:
        return False
    if isinstance(stored, bool) or (
        isinstance(stored, int) and stored in (0, 1) and wanted.lower() in _FLAGS
    ):
        return wanted.strip().lower() in _FLAGS and bool(stored) == _FLAGS[wanted.strip().lower()]
    if isinstance(stored, int | float | Decimal):
        try:
            return Decimal(str(stored)) == Decimal(wanted.strip())
        except InvalidOperation:
            return False
    text = str(stored)
    if text == wanted:
        return True
    for parse in (datetime.fromisoformat, date.fromisoformat):
        try:
            return bool(parse(text) == parse(wanted.strip()))
        except ValueError:
            continue
    try:
        return Decimal(text) == Decimal(wanted.strip())
    except InvalidOperation:
        return False


_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def verify_rectification(
    system: SystemConfig,
    connector: Connector,
    plan: RectificationPlan,
    expected: Mapping[str, int] | None = None,
) -> ChangeCheck:
    """Read the subject's records back, found without the disputed fields (the identifiers of
    a corrected kind are left out), and check each corrected field holds its new value.
    ``expected`` (entity -> records the search found) makes finding none of them an error."""
    rectification = plan.rectification
    corrected = {
        kind.value
        for change in rectification.changes
        for entity in [system.entities.get(change.entity)]
        if entity is not None
        for column, kind in entity.identity.items()
        if column in (change.field, f"content.{change.field}", change.field.removeprefix("content."))
    }
    others = {k: v for k, v in rectification.subject.identifiers.items() if k not in corrected}
    subject = resolve_subject(connector, Subject(others, list(rectification.subject.person_keys)))
    reader = _ReadBack(system, rectification.changes, set(rectification.exempt))
    if subject.person_keys:
        connector.collect(subject.identifiers, reader, person_keys=subject.person_keys)
    reader.finish()
    problems = [
        f"{entity}: {reader.counts[entity][1] - reader.counts[entity][0]} record(s) not corrected "
        f"({', '.join(sorted(fields))})"
        for entity, fields in reader.stale.items()
    ]
    for entity, (_, seen) in reader.counts.items():
        if expected and expected.get(entity) and not seen:
            problems.append(f"{entity}: the corrected records could not be found again")
    if problems:
        raise ChangeNotVerified(system.name, problems)
    return ChangeCheck(system.name, {e: (ok, seen) for e, (ok, seen) in reader.counts.items()})


__all__ = [
    "MARKERS",
    "ChangeCheck",
    "ChangeNotVerified",
    "ChangePlanError",
    "Correction",
    "MarkPlan",
    "RectificationPlan",
    "build_mark_plans",
    "build_rectifications",
    "corrections_for_identifier",
    "same_value",
    "verify_marks",
    "verify_rectification",
]
