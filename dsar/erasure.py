"""Verified erasure: the plan, what it tells the reviewer and the person, and the proof.

1. **Plan** (:func:`build_erasure_plans`): per system, the data map's strategies (delete,
   anonymise, keep) less what the review decided to keep, record by record. The review's
   decisions file (:class:`dsar.exemptions.RecordDecision`, one line per record it decided on)
   names records by :func:`dsar.exemptions.record_key`; a record with no line is erased as the
   data map says. A record retained whole is left as it is; a record with retained fields is
   anonymised except those fields (in a ``delete`` entity too: deleting it would destroy what
   must be kept; an S3 object, which cannot be edited field by field, is kept whole).
2. **Summary** (:func:`summarise_erasure`): per system and entity, how many records are deleted,
   anonymised and kept, and why, for the review and for the letter ("what was erased, what was
   kept and why"). Counts, entity names and the data map's reasons only: no values, no keys.
3. **Execution** is the connectors' (``Connector.erase``): one transaction per SQL system,
   children first; idempotent.
4. **Verification** (:func:`verify_erasure`): the system is searched again (locate and collect,
   as the search stage does) and every record found is checked against the plan: only records
   kept, and records whose erased fields hold nothing (NULL, the "erased" placeholder, a keyed
   hash). Anything else is an :class:`ErasureNotVerified` naming the system, entity, count and
   field names, never a value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from connectors.base import (
    ALL_FIELDS,
    Connector,
    EntityErasurePlan,
    ErasurePlan,
    RecordSink,
    Subject,
)
from dsar.datamap import DataMap, EntityErasure, FieldErasure, SystemConfig
from dsar.exemptions import ExemptionCatalogue, Outcome, RecordDecision, record_key
from dsar.identity import record_matches
from dsar.settings import Settings

#: Record outcomes that let erasure go ahead; any other (retain, refuse, withhold) keeps.
_ERASING = frozenset({Outcome.ERASE, Outcome.COMPLY, Outcome.DISCLOSE})
#: What an anonymised text field reads (connectors/sql.py writes it, cut to the column's length).
PLACEHOLDER = "erased"
_HEX = re.compile(r"[0-9a-f]+")


#: Why a row of the person's that others use too (an address shared with a household, staff or
#: a store) is left as it is: erasing it would change their data (Art. 17 reaches the person's).
SHARED_REASON = "also used by other people (a shared address): changing it would change their data"


class ErasurePlanError(ValueError):
    """The decisions and the data map do not make a plan; the message says where, never a value."""


class ErasureNotVerified(Exception):
    """The re-search found what should be gone. The message names the system, entities, counts
    and field names only."""

    def __init__(self, check: ErasureCheck) -> None:
        self.check = check
        super().__init__(f"{check.system}: erasure not verified: {'; '.join(check.problems())}")


def erasure_hash_key(settings: Settings) -> str:
    """The key of ``hash`` fields, hex: derived from the suppression key, which never changes,
    so a person anonymised in two cases (or two systems) hashes the same way and rows still
    join and count."""
    return hmac.new(settings.suppression_key_bytes, b"dsar:erasure-hash", hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------------
# The plan


def build_erasure_plans(
    datamap: DataMap,
    subject: Subject | Mapping[str, Subject],
    decisions: Iterable[RecordDecision],
    *,
    systems: Iterable[str] | None = None,
    hash_key: str = "",
) -> list[ErasurePlan]:
    """One plan per connected system (``systems``: only those; default every system that is
    not searched by hand), each the data map's strategies minus the records and fields the
    decisions keep. ``subject`` is one subject for every system, or one per system name."""
    names = (
        list(systems) if systems is not None else [n for n, s in datamap.systems.items() if s.manual is None]
    )
    for name in names:
        if datamap.system(name).manual is not None:
            raise ErasurePlanError(f"system '{name}' is searched by hand: its owner erases by hand")
    keeps: dict[tuple[str, str], tuple[list[str], dict[str, list[str]]]] = {}
    for decision in decisions:
        found = datamap.systems.get(decision.system)
        if found is None:
            raise ErasurePlanError(f"a decision names system '{decision.system}', which the data map lacks")
        entity = found.entities.get(decision.entity)
        if entity is None:
            raise ErasurePlanError(
                f"a decision names entity '{decision.entity}', which system '{decision.system}' lacks"
            )
        if decision.system not in names or entity.erasure.strategy is EntityErasure.KEEP:
            continue  # not erased here, or kept whole by the data map anyway
        whole, fields = _kept(decision)
        if not whole and not fields:
            continue
        if decision.key.startswith(f"{entity.name}#") or not decision.key.startswith(f"{entity.name}:"):
            raise ErasurePlanError(
                f"{decision.system}.{decision.entity}: a record to keep is named by its position, not a "
                f"key: give the entity a 'key' in the data map ({entity.origin})"
            )
        undeclared = sorted(set(fields) - set(entity.fields))
        if undeclared:
            raise ErasurePlanError(
                f"{decision.system}.{decision.entity}: a decision keeps undeclared fields: "
                + ", ".join(undeclared)
            )
        keep, keep_fields = keeps.setdefault((decision.system, decision.entity), ([], {}))
        if whole:
            keep.append(decision.key)
        else:
            keep_fields[decision.key] = sorted(set(keep_fields.get(decision.key, [])) | set(fields))
    plans = []
    for name in names:
        config = datamap.system(name)
        person = subject.get(name, Subject({}, [])) if isinstance(subject, Mapping) else subject
        base = ErasurePlan.from_datamap(config, person, hash_key=hash_key)
        for step in base.entities:
            keep, keep_fields = keeps.get((name, step.entity), ([], {}))
            step.keep = sorted(set(keep))
            step.keep_fields = {k: v for k, v in sorted(keep_fields.items()) if k not in step.keep}
        plans.append(base)
    return plans


def _kept(decision: RecordDecision) -> tuple[bool, list[str]]:
    """(kept whole, fields kept) for one record's decision."""
    if decision.outcome in _ERASING:
        return False, []
    if decision.whole_record:
        return True, []
    kept = [f.field for f in decision.fields if f.outcome not in _ERASING]
    return (not kept), kept


def plan_to_dict(plan: ErasurePlan) -> dict[str, Any]:
    """A plan as JSON-able data (it holds the subject's identifiers: store it encrypted)."""
    return asdict(plan)


def plan_from_dict(data: Mapping[str, Any]) -> ErasurePlan:
    return ErasurePlan(
        system=data["system"],
        subject=Subject(dict(data["subject"]["identifiers"]), list(data["subject"]["person_keys"])),
        entities=[
            EntityErasurePlan(
                entity=step["entity"],
                strategy=EntityErasure(step["strategy"]),
                fields={k: FieldErasure(v) for k, v in step["fields"].items()},
                keep=list(step.get("keep", [])),
                keep_fields={k: list(v) for k, v in step.get("keep_fields", {}).items()},
            )
            for step in data["entities"]
        ],
        hash_key=data.get("hash_key", ""),
    )


# --------------------------------------------------------------------------------------------
# What a row keeps when it is anonymised (shared by the summary and the verification)


def row_rules(system: SystemConfig, step: EntityErasurePlan, kept: frozenset[str]) -> dict[str, FieldErasure]:
    """Each field's rule for a record anonymised with ``kept`` fields kept, as the SQL
    connector applies them: the plan's rules (anonymised entity), else the data map's field
    rules with every key and join column kept (a record of a deleted entity that stays)."""
    entity = system.entities[step.entity]
    if step.strategy is EntityErasure.ANONYMISE:
        rules = {column: step.fields.get(column, entity.field_erasure(column)) for column in entity.fields}
    else:
        joins = system.join_columns(entity.name)
        rules = {
            column: FieldErasure.KEEP if column in joins else entity.field_erasure(column)
            for column in entity.fields
        }
    for column in kept & rules.keys():
        rules[column] = FieldErasure.KEEP
    return rules


def _erased(value: Any, rule: FieldErasure, identifiers: frozenset[str]) -> bool:
    """Whether an anonymised field holds nothing of the person: empty, the placeholder, a keyed
    hash; or a number, flag or date that a column without NULL had to keep (SQL has no neutral
    value for them) and that is none of the person's identifiers (a date of birth is)."""
    if rule is FieldErasure.KEEP or value is None:
        return True
    if isinstance(value, bool):
        return True
    if isinstance(value, int | float):  # a short number (a count, an id) names nobody
        return len(str(value)) < 6 or str(value) not in identifiers
    if not isinstance(value, str):
        return False
    if rule is FieldErasure.HASH and _HEX.fullmatch(value):
        return True
    if value and PLACEHOLDER.startswith(value):
        return True
    if _ISO_DATE.fullmatch(value):
        return value[:10] not in identifiers
    return False


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ][0-9:.+\-Z]*)?")


def _identifier_texts(identifiers: Mapping[str, str]) -> frozenset[str]:
    """The person's identifier values as an anonymised field left in place could hold them."""
    out = set()
    for value in identifiers.values():
        text = value.strip().lower()
        if text:
            out.add(text)
            out.add("".join(ch for ch in text if ch.isdigit()))  # a phone or account number
    return frozenset(out)


# --------------------------------------------------------------------------------------------
# The summary


@dataclass
class KeptLine:
    """Records of one entity kept for the same reasons (whole, or these fields)."""

    records: int
    fields: list[str]  # empty: kept whole
    reasons: list[str]  # the data map's words
    exemptions: list[str]  # catalogue ids ("" for the data map's own erasure rule)
    #: an exemption the person must not hear of (``may_mention: false``): the letter is silent
    undisclosed: bool = False


@dataclass
class EntityErasureSummary:
    system: str
    entity: str
    strategy: str  # delete, anonymise or keep (the data map's)
    found: int = 0
    delete: int = 0
    anonymise: int = 0  # by the data map's rules, or because a kept record hangs from it
    kept: list[KeptLine] = field(default_factory=list)
    #: what the person reads: "Orders (Customer database)", from the data map's labels
    label: str = ""

    @property
    def untold(self) -> bool:
        """A record of it is kept under an exemption the person must not hear of."""
        return any(line.undisclosed for line in self.kept)

    @property
    def kept_records(self) -> int:
        return sum(line.records for line in self.kept)


@dataclass
class ErasureSummary:
    """What erasing does, per system and entity: counts and reasons, never values or keys."""

    reference: str
    entities: list[EntityErasureSummary]
    #: systems searched by hand: their owner erases (the operator records it)
    manual: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        """Each record counted once: deleted, anonymised, or kept (whole or in part), so that
        the three add up to what was found."""
        return {
            "found": sum(e.found for e in self.entities),
            "delete": sum(e.delete for e in self.entities),
            "anonymise": sum(e.anonymise for e in self.entities),
            "keep": sum(e.kept_records for e in self.entities),
        }

    def system_totals(self, system: str) -> dict[str, int]:
        mine = [e for e in self.entities if e.system == system]
        return {
            "found": sum(e.found for e in mine),
            "delete": sum(e.delete for e in mine),
            "anonymise": sum(e.anonymise for e in mine),
            "keep": sum(e.kept_records for e in mine),
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        """For the reviewer: every entity, what happens to its records, and why."""
        totals = self.totals()
        out = [
            f"Erasure plan{f' for case {self.reference}' if self.reference else ''}",
            f"{totals['found']} record(s) found: {totals['delete']} to delete, {totals['anonymise']} to "
            f"anonymise, {totals['keep']} to keep.",
        ]
        for e in self.entities:
            out += ["", f"{e.system} / {e.entity}: {_records(e.found)} (data map: {e.strategy})"]
            if not e.found:
                out.append("  Nothing found.")
            if e.delete:
                out.append(f"  To delete: {e.delete}")
            if e.anonymise:
                out.append(
                    f"  To anonymise: {e.anonymise} (the record stays; nothing in it names the person)"
                )
            for line in e.kept:
                what = "whole" if not line.fields else f"only {', '.join(line.fields)}; the rest anonymised"
                out += _wrap(f"To keep ({what}): {line.records}, because: {'; '.join(line.reasons)}", "  ")
                if line.undisclosed:
                    out += _wrap(
                        f"not mentioned in the letter to the person, nor is anything else of {e.entity}: "
                        "telling them would defeat the exemption",
                        "    ",
                    )
        for name in self.manual:
            out += ["", f"{name}: searched by hand; its owner erases what they found and confirms it"]
        return "\n".join(out) + "\n"

    def for_person(self) -> str:
        """For the letter: what was erased, what was kept and why (in the data map's words).
        An entity holding a record kept under an exemption the person must not hear of is left
        out whole: naming it, or counting what was erased there, would tell them."""
        told = [e for e in self.entities if not e.untold]
        erased = [e for e in told if e.delete or e.anonymise]
        kept = [(e, line) for e in told for line in e.kept]
        out = ["What we erased:"]
        if not erased:
            out.append("- nothing: we hold no records about you that we may erase")
        for e in erased:
            parts = []
            if e.delete:
                parts.append(f"{_records(e.delete)} deleted")
            if e.anonymise:
                names = "it names" if e.anonymise == 1 else "them names"
                anonymised = f"nothing in {names} you any more"
                parts.append(f"{_records(e.anonymise)} anonymised ({anonymised})")
            out.append(f"- {_label(e)}: {', '.join(parts)}")
        if kept:
            out += ["", "What we kept, and why:"]
            for e, line in kept:
                what = (
                    ""
                    if not line.fields
                    else f" (only {', '.join(_words(f) for f in line.fields)}; the rest anonymised)"
                )
                out.append(f"- {_label(e)}: {_records(line.records)}{what}: {'; '.join(line.reasons)}")
        return "\n".join(out) + "\n"


def _records(n: int) -> str:
    return f"{n} record{'' if n == 1 else 's'}"


def _label(e: EntityErasureSummary) -> str:
    return e.label or f"{e.system} / {_words(e.entity)}"


def _words(name: str) -> str:
    return name.replace("_", " ")


def _wrap(text: str, indent: str, hang: str = "    ") -> list[str]:
    return textwrap.wrap(
        text, 100, initial_indent=indent, subsequent_indent=indent + hang, break_long_words=False
    )


def summarise_erasure(
    datamap: DataMap,
    plans: Sequence[ErasurePlan],
    decisions: Iterable[RecordDecision],
    records: Iterable[tuple[str, str, Mapping[str, Any]]],
    *,
    reference: str = "",
    catalogue: ExemptionCatalogue | None = None,
    shared: Mapping[tuple[str, str], int] | None = None,
) -> ErasureSummary:
    """Classify every record the search found (``(system, entity, record)``, in the search's
    order) as the connectors will treat it. Only keys, join values and decisions are held in
    memory, never the records."""
    catalogue = catalogue or ExemptionCatalogue.load()
    by_system = {plan.system: plan for plan in plans}
    reasons = {(d.system, d.key): d for d in decisions if d.system in by_system and d.outcome not in _ERASING}
    rows: dict[str, list[_Row]] = {name: [] for name in by_system}
    positions: dict[tuple[str, str], int] = {}
    for system, entity_name, record in records:
        if system not in by_system:
            continue
        config = datamap.system(system)
        entity = config.entities.get(entity_name)
        if entity is None:
            raise ErasurePlanError(
                f"the search of '{system}' holds an entity '{entity_name}' the data map lacks"
            )
        position = positions[(system, entity_name)] = positions.get((system, entity_name), 0) + 1
        key = record_key(entity, record, position)
        joins = {column: record.get(column) for column in config.join_columns(entity.name)}
        parent = record.get(entity.relation.column) if entity.relation is not None else None
        rows[system].append(_Row(entity.name, key, joins, parent))

    summary = ErasureSummary(reference, [])
    for system, plan in by_system.items():
        config = datamap.system(system)
        steps = {step.entity: step for step in plan.entities}
        found: dict[str, int] = {}
        for row in rows[system]:
            found[row.entity] = found.get(row.entity, 0) + 1
        entities = {
            name: EntityErasureSummary(
                system,
                name,
                config.entities[name].erasure.strategy.value,
                found.get(name, 0),
                label=f"{config.entities[name].label} ({config.label})",
            )
            for name in (e.name for e in config.ordered_entities() if not e.reference)
        }
        kept_lines: dict[tuple[str, tuple[str, ...], tuple[str, ...]], KeptLine] = {}
        needed: dict[str, dict[str, set[Any]]] = {}
        by_entity: dict[str, list[_Row]] = {}
        for row in rows[system]:
            by_entity.setdefault(row.entity, []).append(row)
        for entity in reversed(config.ordered_entities()):
            step = steps.get(entity.name)
            keep = step.kept() if step is not None else {}
            wanted = needed.get(entity.name, {})
            for row in by_entity.get(entity.name, []):
                survives = True
                if step is None:  # the data map keeps the entity
                    _keep(kept_lines, entities, row, [], [entity.erasure.reason], [""], False)
                elif (kept := keep.get(row.key)) is not None:
                    whole = kept is ALL_FIELDS or config.connector != "sql"
                    fields = [] if whole else sorted(kept)
                    decision = reasons.get((system, row.key))
                    texts, ids, undisclosed = _why(decision, catalogue)
                    # one record, counted once: kept (in part, the rest of it anonymised)
                    _keep(kept_lines, entities, row, fields, texts, ids, undisclosed)
                elif step.strategy is EntityErasure.ANONYMISE:
                    entities[entity.name].anonymise += 1
                elif config.connector == "sql" and any(
                    row.joins.get(column) in values for column, values in wanted.items()
                ):
                    entities[entity.name].anonymise += 1  # a kept record hangs from it
                else:
                    entities[entity.name].delete += 1
                    survives = False
                relation = entity.relation
                if survives and relation is not None and relation.parent in steps and row.parent is not None:
                    needed.setdefault(relation.parent, {}).setdefault(relation.parent_column, set()).add(
                        row.parent
                    )
        # rows others use too (a shared address, from the connector's forecast) stay as they are
        for name, entity_summary in entities.items():
            count = min(
                (shared or {}).get((system, name), 0), entity_summary.anonymise + entity_summary.delete
            )
            if not count:
                continue
            from_anonymised = min(count, entity_summary.anonymise)
            entity_summary.anonymise -= from_anonymised
            entity_summary.delete -= count - from_anonymised
            entity_summary.kept.append(KeptLine(count, [], [SHARED_REASON], [""]))
        summary.entities += list(entities.values())
    summary.manual = sorted(name for name, s in datamap.systems.items() if s.manual is not None)
    return summary


@dataclass
class _Row:
    entity: str
    key: str
    joins: dict[str, Any]
    parent: Any


def _keep(
    lines: dict[tuple[str, tuple[str, ...], tuple[str, ...]], KeptLine],
    entities: dict[str, EntityErasureSummary],
    row: _Row,
    fields: list[str],
    reasons: list[str],
    ids: list[str],
    undisclosed: bool,
) -> None:
    signature = (row.entity, tuple(fields), tuple(reasons))
    line = lines.get(signature)
    if line is None:
        line = lines[signature] = KeptLine(0, fields, reasons, ids, undisclosed)
        entities[row.entity].kept.append(line)
    line.records += 1
    line.undisclosed = line.undisclosed or undisclosed


def _why(decision: RecordDecision | None, catalogue: ExemptionCatalogue) -> tuple[list[str], list[str], bool]:
    """The reasons a record is kept, the exemptions relied on, and whether one of them also
    allows not telling the person (its catalogue effects include withholding)."""
    if decision is None:
        return ["kept by the reviewer's decision"], [""], False
    bases = list(decision.basis) + [b for f in decision.fields for b in f.basis]
    texts = list(dict.fromkeys(" ".join(b.reason.split()) for b in bases if b.reason)) or [
        "kept by the reviewer's decision"
    ]
    ids = list(dict.fromkeys(b.exemption for b in bases))
    return texts, ids, catalogue.untold(bases)


# --------------------------------------------------------------------------------------------
# Execution and verification


def resolve_subject(connector: Connector, subject: Subject) -> Subject:
    """Whose records a change touches in one system. Systems whose keys name persons (SQL):
    the persons the search collected, fixed in the plan, so that a retry after some of their
    identifiers were erased can never pick a neighbour. Systems whose keys name records (S3
    objects, lines of an export): every record the identifiers find now, judged on its own
    evidence exactly as the search judged it."""
    if subject.person_keys:
        return subject
    located = connector.locate(subject.identifiers)
    if not located.per_record:
        return subject  # persons, and none accepted: nothing to change
    return Subject(dict(subject.identifiers), record_matches(located.matches).keys)


@dataclass
class EntityCheck:
    entity: str
    records: int = 0  # found again
    kept: int = 0  # kept whole (by the plan or the data map)
    shared: int = 0  # left as they are because others use them too (a shared address)
    anonymised: int = 0  # found, holding nothing of the person but what is kept
    remaining: int = 0  # should be gone or anonymised, and are not
    fields: list[str] = field(default_factory=list)  # fields still holding data (names)
    kept_missing: int = 0  # records the plan keeps that the search no longer finds


@dataclass
class ErasureCheck:
    system: str
    entities: dict[str, EntityCheck]
    #: identifier kinds that still locate something (e.g. the customer number of a kept,
    #: anonymised account)
    still_found_by: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(e.records for e in self.entities.values())

    @property
    def verified(self) -> bool:
        return not any(e.remaining for e in self.entities.values())

    def problems(self) -> list[str]:
        out = []
        for e in self.entities.values():
            if e.remaining:
                held = f" (fields still holding data: {', '.join(e.fields)})" if e.fields else ""
                out.append(f"{e.entity}: {e.remaining} record(s) that should be erased remain{held}")
        return out

    def detail(self) -> str:
        kept = sum(e.kept for e in self.entities.values())
        anonymised = sum(e.anonymised for e in self.entities.values())
        return (
            f"searched again: {self.records} record(s) found, {kept} kept as planned, {anonymised} "
            f"anonymised, nothing erasable left"
            if self.verified
            else "; ".join(self.problems())
        )


class _Checker(RecordSink):
    """A sink for the re-search: checks each record as it streams by, keeping counts only."""

    def __init__(self, system: SystemConfig, plan: ErasurePlan) -> None:
        super().__init__()
        self.system = system
        self.identifiers = _identifier_texts(plan.subject.identifiers)
        self.steps = {step.entity: step for step in plan.entities}
        self.keeps = {name: step.kept() for name, step in self.steps.items()}
        self.checks: dict[str, EntityCheck] = {name: EntityCheck(name) for name in system.entities}
        self.seen: dict[str, set[str]] = {name: set() for name in self.steps}
        self.positions: dict[str, int] = {}

    def take(self, name: str, record: Mapping[str, Any]) -> None:
        entity = self.system.entities[name]
        result = self.checks[name]
        result.records += 1
        position = self.positions[name] = self.positions.get(name, 0) + 1
        step = self.steps.get(name)
        if step is None:  # kept by the data map
            result.kept += 1
            return
        key = record_key(entity, record, position)
        kept = self.keeps[name].get(key)
        if kept is not None:
            self.seen[name].add(key)
        if kept is ALL_FIELDS or (kept is not None and self.system.connector != "sql"):
            result.kept += 1
            return
        if self.system.connector != "sql":  # an object store deletes: anything found remains
            result.remaining += 1
            return
        rules = row_rules(self.system, step, kept or frozenset())
        dirty = [
            column
            for column, rule in rules.items()
            if column in record and not _erased(record[column], rule, self.identifiers)
        ]
        if dirty:
            result.remaining += 1
            result.fields = sorted(set(result.fields) | set(dirty))
        else:
            result.anonymised += 1

    def finish(self) -> None:
        for name, keep in self.keeps.items():
            self.checks[name].kept_missing = len(set(keep) - self.seen[name])


def verify_erasure(system: SystemConfig, connector: Connector, plan: ErasurePlan) -> ErasureCheck:
    """Search the system again as the search stage does (locate, then collect the subject's
    records) and check each record against the plan. Raises :class:`ErasureNotVerified` when
    anything erasable remains; returns the counts otherwise."""
    subject = resolve_subject(connector, plan.subject)
    located = connector.locate(subject.identifiers)
    checker = _Checker(system, plan)
    if subject.person_keys:
        connector.collect(subject.identifiers, checker, person_keys=subject.person_keys)
    checker.finish()
    # rows others use too (a shared address) were left as they are on purpose: not remaining
    forecast = getattr(connector, "forecast_erasure", None)
    if forecast is not None and subject.person_keys:
        for name, count in forecast(replace(plan, subject=subject)).shared.items():
            entity_check = checker.checks[name]
            moved = min(count, entity_check.remaining)
            entity_check.remaining -= moved
            entity_check.shared += moved
            if not entity_check.remaining:
                entity_check.fields = []
    still = sorted(kind for kind, keys in located.matches.items() if set(keys) & set(subject.person_keys))
    check = ErasureCheck(system.name, checker.checks, still)
    if not check.verified:
        raise ErasureNotVerified(check)
    return check


__all__ = [
    "ErasureCheck",
    "ErasureNotVerified",
    "ErasurePlanError",
    "ErasureSummary",
    "build_erasure_plans",
    "erasure_hash_key",
    "plan_from_dict",
    "plan_to_dict",
    "resolve_subject",
    "row_rules",
    "summarise_erasure",
    "verify_erasure",
]
