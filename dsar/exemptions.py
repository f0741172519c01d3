"""Exemptions: the catalogue, the data map rules that bind them to data, and what they decide.

Three layers, each pure (no I/O once the catalogue is read):

* :class:`ExemptionCatalogue` is the law as data (``dsar/exemptions.yaml``, from LEGAL.md §5):
  every exemption with its regimes, request types, effect and citation. Engineers never write
  law in the data map; they name a catalogue id.
* :class:`ExemptionRule` is one entry of the data map's ``exemptions:`` section: *this*
  exemption binds *these* records (system, entity, optional fields) *when* a condition on the
  record holds. Conditions are a small declarative language, parsed and validated when the map
  loads (no eval, no SQL)::

      when: {column: status, equals: open}
      when: {column: kind, in: [fraud_marker, chargeback]}
      when: {column: ordered_at, within: {years: 6}}      # before the request was received
      when: {column: ended_at, is_null: true}
      when: {column: body, mentions_others: true}        # free text that may name others
      when: {all: [...]} / {any: [...]} / {not: {...}} / {always: true}
      when: {has: payments}                               # a related record: a paid rental
      when: {has: {entity: payments, when: {column: amount, equals: 0}}}

  ``has`` looks across a relation to a child entity of the rule's entity, among the person's
  own collected records: the review reads the search's records twice, a first pass keeping
  only the parent keys that have such a child (:func:`related_keys`), then the decisions
  (memory holds keys, never records). A rule that keeps a parent this way in an erasure may
  sit under a child the map keeps (accounting records): a parent row a kept child hangs from
  survives whatever the rule says, so the plan is never left pointing at nothing.

* :func:`evaluate` decides, per record and field, what happens (disclose, redact, withhold;
  for erasure erase or retain) and why; :func:`build_review_package` and
  :func:`render_review_package` put that in front of a privacy officer. Both hold record keys,
  field names and the reasons written in the map, never the records' values.

A rule only fires when its exemption applies to the case's regime and request type: a UK
Schedule 2 exemption never touches a CCPA case.
"""

# No `from __future__ import annotations`: the decision dataclasses travel as activity payloads,
# whose converter needs real type hints (see dsar/model.py).

import difflib
import functools
import json
import re
import textwrap
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import Node, ScalarNode, SequenceNode

from dsar.clock import add_months
from dsar.model import Regime, RequestType
from dsar.regimes import REGIMES

if TYPE_CHECKING:
    from dsar.datamap import Controller, DataMap, EntityConfig, SystemConfig, _Loader


class ExemptionError(ValueError):
    """The catalogue or an evaluation cannot go on; the message says where, never a value."""


class Effect(StrEnum):
    """What an exemption does (LEGAL.md §5 effect column)."""

    WITHHOLD = "withhold"  # keep back from the copy (a record, or fields of it)
    REDACT = "redact"  # remove parts (other people, trade secrets) and disclose the rest
    RETAIN = "retain"  # keep instead of deleting
    REFUSE = "refuse"  # decline the request, or this part of it
    FEE = "fee"  # charge a fee before answering
    DELAY = "delay"  # the duty waits (backups until restored, exam marks)
    LIMIT_SCOPE = "limit_scope"  # the right does not reach this data or this search
    DISCLOSE = "disclose"  # disclosure is allowed despite another exemption (``overrides``)


class Scope(StrEnum):
    """Whether the data map binds an exemption to records, or an operator applies it to a case."""

    RECORDS = "records"
    CASE = "case"


class Outcome(StrEnum):
    """What happens to one record or field of a case."""

    DISCLOSE = "disclose"
    REDACT = "redact"
    WITHHOLD = "withhold"
    ERASE = "erase"
    RETAIN = "retain"
    COMPLY = "comply"  # rectification, restriction, objection, opt-outs: the request is carried out
    REFUSE = "refuse"  # ... or not, for this record: an exemption applies


#: Requests answered with a copy of the data (the copy is what gets redacted or withheld).
DISCLOSING = frozenset({RequestType.ACCESS, RequestType.PORTABILITY})


# -- the catalogue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Exemption:
    """One exemption of LEGAL.md §5, as the catalogue states it."""

    id: str
    title: str
    regimes: tuple[Regime, ...]
    request_types: tuple[RequestType, ...]
    effect: Effect
    scope: Scope
    citation: str
    summary: str
    review_required: bool
    #: False where LEGAL.md had no retrieved text ([R]): check the wording before quoting it
    verified: bool = True
    #: False where telling the person it was used would itself prejudice what it protects (an
    #: open fraud investigation, legal privilege): the copy and the letters say nothing of the
    #: records it covers, not even a count or a category (ICO: neither confirm nor deny)
    may_mention: bool = True
    other_effects: tuple[Effect, ...] = ()
    #: for ``disclose``: the exemptions this one sets aside (Sch 2 para 17 over para 16)
    overrides: tuple[str, ...] = ()

    def applies_to(self, regime: Regime, request_type: RequestType) -> bool:
        return regime in self.regimes and request_type in self.request_types

    @property
    def effects(self) -> tuple[Effect, ...]:
        return (self.effect, *self.other_effects)


_EXEMPTION_REQUIRED = (
    "id",
    "title",
    "regimes",
    "request_types",
    "effect",
    "scope",
    "citation",
    "summary",
    "review_required",
    "verified",
    "may_mention",
)
_EXEMPTION_KEYS = frozenset({*_EXEMPTION_REQUIRED, "other_effects", "overrides"})
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class ExemptionCatalogue:
    """Every exemption dsar knows; :meth:`load` validates the file and fails naming the id."""

    exemptions: tuple[Exemption, ...]
    source: str = "exemptions.yaml"
    _by_id: dict[str, Exemption] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({e.id: e for e in self.exemptions})

    @classmethod
    def load(cls, path: Path | str | None = None) -> "ExemptionCatalogue":
        """The catalogue shipped with dsar (read once), or the file at ``path``."""
        if path is None:
            return _shipped_catalogue()
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ExemptionError(
                f"{path}: cannot read the exemption catalogue ({exc.strerror or exc})"
            ) from None
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<string>") -> "ExemptionCatalogue":
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ExemptionError(f"{source}: invalid YAML: {exc}") from None
        if not isinstance(document, dict) or set(document) != {"version", "exemptions"}:
            raise ExemptionError(f"{source}: expected the keys 'version' and 'exemptions'")
        if document["version"] != 1:
            raise ExemptionError(f"{source}: only version 1 is supported")
        entries = document["exemptions"]
        if not isinstance(entries, list) or not entries:
            raise ExemptionError(f"{source}: 'exemptions' must be a non-empty list")
        exemptions: list[Exemption] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries, start=1):
            exemption = _exemption(entry, f"{source}: exemption #{index}")
            if exemption.id in seen:
                raise ExemptionError(f"{source}: exemption '{exemption.id}': duplicate id")
            seen.add(exemption.id)
            exemptions.append(exemption)
        for exemption in exemptions:
            for other in exemption.overrides:
                if other not in seen:
                    raise ExemptionError(
                        f"{source}: exemption '{exemption.id}': overrides: unknown exemption '{other}'"
                    )
        return cls(tuple(exemptions), source)

    def get(self, exemption_id: str) -> Exemption:
        try:
            return self._by_id[exemption_id]
        except KeyError:
            raise ExemptionError(_unknown(exemption_id, self._by_id)) from None

    def for_regime(self, regime: Regime | str) -> list[Exemption]:
        return [e for e in self.exemptions if Regime(regime) in e.regimes]

    def may_mention(self, exemption_id: str) -> bool:
        """Whether the person may be told the exemption was used. A reviewer's own decision
        (no catalogue id) and the data map's erasure rule may be."""
        found = self._by_id.get(exemption_id)
        return found is None or found.may_mention

    def untold(self, bases: Iterable["Basis"]) -> bool:
        """Whether any of ``bases`` relies on an exemption the person must not hear of."""
        return any(not self.may_mention(b.exemption) for b in bases if b.exemption)

    def __contains__(self, exemption_id: object) -> bool:
        return exemption_id in self._by_id

    def __iter__(self) -> Iterator[Exemption]:
        return iter(self.exemptions)

    def __len__(self) -> int:
        return len(self.exemptions)


@functools.cache
def _shipped_catalogue() -> ExemptionCatalogue:
    text = resources.files("dsar").joinpath("exemptions.yaml").read_text(encoding="utf-8")
    return ExemptionCatalogue.parse(text, "dsar/exemptions.yaml")


def _unknown(exemption_id: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(exemption_id, list(known), n=3)
    hint = f" (did you mean: {', '.join(close)}?)" if close else ""
    return f"unknown exemption '{exemption_id}'{hint}"


def _exemption(entry: object, where: str) -> Exemption:
    if not isinstance(entry, dict):
        raise ExemptionError(f"{where}: expected a mapping")
    if isinstance(entry.get("id"), str):
        where = f"{where.rsplit(': ', 1)[0]}: exemption '{entry['id']}'"
    unknown = sorted(set(entry) - _EXEMPTION_KEYS)
    if unknown:
        raise ExemptionError(
            f"{where}: unknown key '{unknown[0]}' (expected: {', '.join(sorted(_EXEMPTION_KEYS))})"
        )
    missing = [key for key in _EXEMPTION_REQUIRED if key not in entry]
    if missing:
        raise ExemptionError(f"{where}: missing '{missing[0]}'")
    texts = {key: entry[key] for key in ("id", "title", "citation", "summary")}
    for key, value in texts.items():
        if not isinstance(value, str) or not value.strip():
            raise ExemptionError(f"{where}: '{key}' must be non-empty text")
    if not _ID.match(entry["id"]):
        raise ExemptionError(f"{where}: the id must be lower-case words joined by '-'")
    for key in ("review_required", "verified", "may_mention"):
        if not isinstance(entry[key], bool):
            raise ExemptionError(f"{where}: '{key}' must be true or false")

    def members(key: str, enum: type[StrEnum], required: bool = True) -> tuple[Any, ...]:
        values = entry.get(key, [])
        if not isinstance(values, list) or (required and not values):
            raise ExemptionError(f"{where}: '{key}' must be a{' non-empty' if required else ''} list")
        out = []
        for value in values:
            if value not in {m.value for m in enum}:
                options = ", ".join(m.value for m in enum)
                raise ExemptionError(f"{where}: {key}: unknown value '{value}' (expected one of: {options})")
            out.append(enum(value))
        return tuple(out)

    if entry["effect"] not in {e.value for e in Effect}:
        options = ", ".join(e.value for e in Effect)
        raise ExemptionError(f"{where}: unknown effect '{entry['effect']}' (expected one of: {options})")
    if entry["scope"] not in {s.value for s in Scope}:
        raise ExemptionError(f"{where}: unknown scope '{entry['scope']}' (expected: records or case)")
    overrides = entry.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ExemptionError(f"{where}: 'overrides' must be a list of exemption ids")
    if overrides and entry["effect"] != Effect.DISCLOSE:
        raise ExemptionError(f"{where}: only a 'disclose' exemption can override others")
    return Exemption(
        id=entry["id"],
        title=entry["title"].strip(),
        regimes=members("regimes", Regime),
        request_types=members("request_types", RequestType),
        effect=Effect(entry["effect"]),
        scope=Scope(entry["scope"]),
        citation=entry["citation"].strip(),
        summary=" ".join(entry["summary"].split()),
        review_required=entry["review_required"],
        verified=entry["verified"],
        may_mention=entry["may_mention"],
        other_effects=members("other_effects", Effect, required=False),
        overrides=tuple(overrides),
    )


# -- the condition language ------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A span counted the ICO way: calendar months clamped to the month end, then days."""

    months: int = 0
    days: int = 0

    def after(self, start: date) -> date:
        return add_months(start, self.months) + timedelta(days=self.days)

    def __str__(self) -> str:
        years, months = divmod(self.months, 12)
        parts = [(years, "year"), (months, "month"), (self.days, "day")]
        return " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n)


@dataclass(frozen=True)
class Verdict:
    """Whether a condition holds for a record, and until when it will (None: not time-bound)."""

    holds: bool
    until: date | None = None


@dataclass(frozen=True)
class Condition(ABC):
    """A test on one record. ``received`` is the date the case was received; ``related`` is
    what a first pass over the person's records learnt for :class:`Has` (keys only)."""

    @abstractmethod
    def check(
        self, record: Mapping[str, Any], received: date, related: "Related | None" = None
    ) -> Verdict: ...

    def columns(self) -> set[str]:
        return set()

    @abstractmethod
    def describe(self) -> str: ...


@dataclass(frozen=True)
class Always(Condition):
    def check(self, record: Mapping[str, Any], received: date, related: "Related | None" = None) -> Verdict:
        return Verdict(True)

    def describe(self) -> str:
        return "always"


@dataclass(frozen=True)
class ColumnCondition(Condition):
    column: str

    def columns(self) -> set[str]:
        return {self.column}


@dataclass(frozen=True)
class Equals(ColumnCondition):
    value: str | int | bool | Decimal

    def check(self, record: Mapping[str, Any], received: date, related: "Related | None" = None) -> Verdict:
        return Verdict(_same(record[self.column], self.value))

    def describe(self) -> str:
        return f"{self.column} is {_show(self.value)}"


@dataclass(frozen=True)
class OneOf(ColumnCondition):
    values: tuple[str | int | bool | Decimal, ...]

    def check(self, record: Mapping[str, Any], received: date, related: "Related | None" = None) -> Verdict:
        return Verdict(any(_same(record[self.column], v) for v in self.values))

    def describe(self) -> str:
        return f"{self.column} is one of {', '.join(_show(v) for v in self.values)}"


@dataclass(frozen=True)
class Within(ColumnCondition):
    """The column's date is no more than ``period`` before the case was received (an order
    within the 6 years tax law keeps it; an account closed less than 5 years ago)."""

    period: Period

    def check(self, record: Mapping[str, Any], received: date, related: "Related | None" = None) -> Verdict:
        value = _as_date(record[self.column])
        if value is None:
            return Verdict(False)
        until = self.period.after(value)
        return Verdict(until >= received, until)

    def describe(self) -> str:
        return f"{self.column} within {self.period} before the request was received"


@dataclass(frozen=True)
class IsNull(ColumnCondition):
    null: bool = True

    def check(self, record: Mapping[str, Any], received: date, related: "Related | None" = None) -> Verdict:
        return Verdict((record[self.column] is None) == self.null)

    def describe(self) -> str:
        return f"{self.column} is {'empty' if self.null else 'not empty'}"


#: How a ``mentions_others`` test reads in a basis: the review stage runs the third-party
#: redactor over the fields whose basis says so.
MENTIONS_OTHERS = "is free text that may name other people"


@dataclass(frozen=True)
class MentionsOthers(ColumnCondition):
    """Free text that may name other people: the field is marked for the redaction step, which
    finds and removes them (this module never reads the text)."""

    def check(self, record: Mapping[str, Any], received: date, related: "Related | None" = None) -> Verdict:
        return Verdict(_has_text(record[self.column]))

    def describe(self) -> str:
        return f"{self.column} {MENTIONS_OTHERS}"


def _has_text(value: Any) -> bool:
    """Text anywhere in the value: a string, or one inside a JSON object or list (S3 content)."""
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, Mapping):
        return any(_has_text(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_text(v) for v in value)
    return False


@dataclass(frozen=True)
class AllOf(Condition):
    items: tuple[Condition, ...]

    def check(self, record: Mapping[str, Any], received: date, related: "Related | None" = None) -> Verdict:
        verdicts = [c.check(record, received, related) for c in self.items]
        if not all(v.holds for v in verdicts):
            return Verdict(False)
        bounds = [v.until for v in verdicts if v.until is not None]
        return Verdict(True, min(bounds) if bounds else None)  # holds until the first part lapses

    def columns(self) -> set[str]:
        return set().union(*(c.columns() for c in self.items))

    def describe(self) -> str:
        return " and ".join(_grouped(c) for c in self.items)


@dataclass(frozen=True)
class AnyOf(Condition):
    items: tuple[Condition, ...]

    def check(self, record: Mapping[str, Any], received: date, related: "Related | None" = None) -> Verdict:
        holding = [v for v in (c.check(record, received, related) for c in self.items) if v.holds]
        if not holding:
            return Verdict(False)
        if any(v.until is None for v in holding):
            return Verdict(True)  # one reason to keep it has no end date
        return Verdict(True, max(v.until for v in holding if v.until is not None))

    def columns(self) -> set[str]:
        return set().union(*(c.columns() for c in self.items))

    def describe(self) -> str:
        return " or ".join(_grouped(c) for c in self.items)


@dataclass(frozen=True)
class Negation(Condition):
    item: Condition

    def check(self, record: Mapping[str, Any], received: date, related: "Related | None" = None) -> Verdict:
        return Verdict(not self.item.check(record, received, related).holds)

    def columns(self) -> set[str]:
        return self.item.columns()

    def describe(self) -> str:
        return f"not ({self.item.describe()})"


@dataclass(frozen=True)
class Has(Condition):
    """The record has at least one related record of ``entity`` (a child through the data
    map's relation ``parent_column -> column``) among the person's collected records, and with
    ``when`` one for which that holds: keep a rental that has a payment (tax law keeps what
    was paid for). The children are read in a first pass over the person's records, which
    keeps only the parent keys they point at (:func:`related_keys`)."""

    entity: str
    parent_column: str  # this record's column the children point at
    column: str  # the child's column that points at it
    when: Condition | None = None

    def check(self, record: Mapping[str, Any], received: date, related: "Related | None" = None) -> Verdict:
        if related is None or self not in related:
            raise ExemptionError(
                f"'has: {self.entity}' needs the person's {self.entity} records read first "
                "(evaluate with related_keys)"
            )
        value = record[self.parent_column]
        return Verdict(value is not None and _link(value) in related[self])

    def columns(self) -> set[str]:
        return {self.parent_column}

    def describe(self) -> str:
        label = self.entity.replace("_", " ")
        if self.when is None:
            return f"has {label}"
        return f"has {label} where {self.when.describe()}"


#: Has condition -> the parent keys (as text) that have such a child, for one system of a case
Related = Mapping[Has, frozenset[str]]


def _link(value: Any) -> str:
    """A key as the JSONL lines hold it (numbers and text alike compared as text)."""
    return str(value).strip()


def _grouped(condition: Condition) -> str:
    text = condition.describe()
    return f"({text})" if isinstance(condition, AllOf | AnyOf) else text


def _walk(condition: Condition) -> Iterable[Condition]:
    yield condition
    if isinstance(condition, AllOf | AnyOf):
        for item in condition.items:
            yield from _walk(item)
    elif isinstance(condition, Negation):
        yield from _walk(condition.item)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, int | Decimal) else f"'{value}'"


def _same(actual: Any, expected: str | int | bool | Decimal) -> bool:
    """Values as stored (or as the search wrote them: dates and decimals as text) against the
    map's constant: booleans and numbers by value, everything else as exact text."""
    if actual is None:
        return False
    if isinstance(expected, bool):
        if isinstance(actual, bool | int):
            return bool(actual) == expected and actual in (0, 1)
        if isinstance(actual, str):
            return actual.strip().lower() in (
                ("true", "t", "1", "yes") if expected else ("false", "f", "0", "no")
            )
        return False
    if isinstance(expected, int | Decimal) and not isinstance(actual, bool):
        try:
            return Decimal(str(actual).strip()) == Decimal(expected)
        except InvalidOperation:
            return False
    if isinstance(actual, datetime | date):
        return actual.isoformat() == expected
    return str(actual) == str(expected)


class _NotADate(ValueError):
    pass


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return datetime.fromisoformat(value.strip()).date()
        except ValueError:
            pass
    raise _NotADate


# -- rules in the data map -------------------------------------------------------------------

_RULE_KEYS = frozenset({"exemption", "system", "entity", "fields", "when", "reason"})
_CONDITION_KEYS = frozenset(
    {"column", "equals", "in", "within", "is_null", "mentions_others", "all", "any", "not", "always", "has"}
)
_HAS_KEYS = frozenset({"entity", "when"})
_COLUMN_TESTS = ("equals", "in", "within", "is_null", "mentions_others")
_PERIOD_KEYS = frozenset({"years", "months", "days"})
#: every key the ``exemptions:`` section accepts (dsar.example.yaml documents each)
RULE_SECTION_KEYS = _RULE_KEYS | _CONDITION_KEYS | _PERIOD_KEYS | _HAS_KEYS


@dataclass(frozen=True)
class ExemptionRule:
    """The data map says: ``exemption`` binds these records of ``system``.``entity`` (only
    ``fields``, or the whole record when empty) when ``when`` holds; ``reason`` says why in the
    words a reviewer reads (which law, which duty)."""

    exemption: Exemption
    system: str
    entity: str
    when: Condition
    reason: str
    fields: tuple[str, ...] = ()
    #: "demo/dsar.yaml line 301", for later messages about this rule
    origin: str = field(default="", compare=False)

    def fires_for(self, case: "CaseFacts") -> bool:
        return self.exemption.applies_to(case.regime, case.request_type)


def parse_rules(
    loader: "_Loader",
    node: Node,
    systems: "Mapping[str, SystemConfig]",
    controller: "Controller | None" = None,
    catalogue: ExemptionCatalogue | None = None,
) -> tuple[ExemptionRule, ...]:
    """The data map's ``exemptions:`` list, validated: the exemption exists and binds records,
    applies to a regime the controller answers, and names systems, entities, fields and
    columns the map declares. Errors go through ``loader`` (file, line and key)."""
    catalogue = catalogue or ExemptionCatalogue.load()
    path = "exemptions"
    if isinstance(node, ScalarNode) and node.tag.endswith(":null"):
        return ()
    if not isinstance(node, SequenceNode):
        loader.fail(node, path, "expected a list of rules")
    return tuple(
        _rule(loader, item, f"{path}[{index}]", systems, controller, catalogue)
        for index, item in enumerate(node.value)
    )


def _rule(
    loader: "_Loader",
    node: Node,
    path: str,
    systems: "Mapping[str, SystemConfig]",
    controller: "Controller | None",
    catalogue: ExemptionCatalogue,
) -> ExemptionRule:
    items = loader.mapping(node, path, _RULE_KEYS)
    for key in ("exemption", "system", "entity", "when", "reason"):
        loader.required(items, key, node, path)
    exemption_node = items["exemption"][1]
    exemption_id = loader.text(exemption_node, f"{path}.exemption")
    if exemption_id not in catalogue:
        loader.fail(exemption_node, f"{path}.exemption", _unknown(exemption_id, (e.id for e in catalogue)))
    exemption = catalogue.get(exemption_id)
    if exemption.scope is Scope.CASE:
        loader.fail(
            exemption_node,
            f"{path}.exemption",
            f"'{exemption.id}' ({exemption.title}) is a decision about the whole request, taken by "
            "an operator in review: it cannot be bound to records",
        )
    if controller is not None and controller.regimes and not set(exemption.regimes) & set(controller.regimes):
        loader.fail(
            exemption_node,
            f"{path}.exemption",
            f"'{exemption.id}' applies to {', '.join(exemption.regimes)} only, and the controller "
            f"answers {', '.join(controller.regimes)} requests: the rule could never fire",
        )

    system_node = items["system"][1]
    system_name = loader.text(system_node, f"{path}.system")
    if system_name not in systems:
        loader.fail(
            system_node,
            f"{path}.system",
            f"no system '{system_name}' (expected one of: {', '.join(systems)})",
        )
    entity_node = items["entity"][1]
    entity_name = loader.text(entity_node, f"{path}.entity")
    entities = systems[system_name].entities
    if entity_name not in entities:
        loader.fail(
            entity_node,
            f"{path}.entity",
            f"no entity '{entity_name}' in system '{system_name}' (expected one of: {', '.join(entities)})",
        )
    declared = entities[entity_name].fields

    fields: tuple[str, ...] = ()
    if "fields" in items:
        fields_node = items["fields"][1]
        fields = loader.texts(fields_node, f"{path}.fields")
        if not fields:
            loader.fail(fields_node, f"{path}.fields", "name at least one field, or leave 'fields' out")
        for name in fields:
            if name not in declared:
                loader.fail(fields_node, f"{path}.fields", f"no field '{name}' declared in '{entity_name}'")
        if len(set(fields)) != len(fields):
            loader.fail(fields_node, f"{path}.fields", "a field is named twice")

    when_node = items["when"][1]
    when = _condition(loader, when_node, f"{path}.when", set(declared), entity_name, entities)
    mentions = [c for c in _walk(when) if isinstance(c, MentionsOthers)]
    if mentions:
        if Effect.REDACT not in exemption.effects:
            loader.fail(
                when_node,
                f"{path}.when",
                f"'mentions_others' marks text for redaction, and '{exemption.id}' does not redact",
            )
        if any(isinstance(c, Negation) and _has_mentions(c.item) for c in _walk(when)):
            loader.fail(when_node, f"{path}.when", "'mentions_others' cannot be negated")
        if not fields:
            fields = tuple(dict.fromkeys(c.column for c in mentions))
        missing = [c.column for c in mentions if c.column not in fields]
        if missing:
            loader.fail(when_node, f"{path}.when", f"'{missing[0]}' may name others but is not in 'fields'")
    return ExemptionRule(
        exemption=exemption,
        system=system_name,
        entity=entity_name,
        when=when,
        reason=loader.text(items["reason"][1], f"{path}.reason"),
        fields=fields,
        origin=loader.where(node),
    )


def _has_mentions(condition: Condition) -> bool:
    return any(isinstance(c, MentionsOthers) for c in _walk(condition))


def _constant(loader: "_Loader", node: Node, path: str) -> str | int | bool | Decimal:
    """A constant to compare with: text, a whole number, a decimal or true/false."""
    if not isinstance(node, ScalarNode):
        loader.fail(node, path, "expected a single value (text, number, true or false)")
    try:  # a constructor per value: it caches every node it builds
        value = SafeConstructor().construct_object(node, deep=True)
        if isinstance(value, float):
            value = Decimal(str(node.value))
            if not value.is_finite():
                raise ValueError(node.value)
    except (ConstructorError, ValueError, InvalidOperation):
        loader.fail(node, path, f"cannot read the value '{node.value}'")
    if value is None:
        loader.fail(node, path, "no value given: to test for an empty column use 'is_null: true'")
    if isinstance(value, bool | int | str | Decimal):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()  # compared with the stored value's ISO text
    loader.fail(node, path, f"unsupported value '{node.value}'")


def _condition(
    loader: "_Loader",
    node: Node,
    path: str,
    declared: set[str],
    entity: str,
    entities: "Mapping[str, EntityConfig]",
) -> Condition:
    items = loader.mapping(node, path, _CONDITION_KEYS)
    keys = set(items)
    for combinator in ("all", "any", "not", "always", "has"):
        if combinator in keys and keys != {combinator}:
            loader.fail(
                node, path, f"'{combinator}' stands alone in its condition (found: {', '.join(sorted(keys))})"
            )
    if keys == {"always"}:
        value_node = items["always"][1]
        if loader.flag(value_node, f"{path}.always") is not True:
            loader.fail(
                value_node, f"{path}.always", "only 'always: true' exists (to switch a rule off, delete it)"
            )
        return Always()
    if keys in ({"all"}, {"any"}):
        key = next(iter(keys))
        list_node = items[key][1]
        if not isinstance(list_node, SequenceNode) or not list_node.value:
            loader.fail(list_node, f"{path}.{key}", "expected a non-empty list of conditions")
        parts = tuple(
            _condition(loader, item, f"{path}.{key}[{i}]", declared, entity, entities)
            for i, item in enumerate(list_node.value)
        )
        return AllOf(parts) if key == "all" else AnyOf(parts)
    if keys == {"not"}:
        return Negation(_condition(loader, items["not"][1], f"{path}.not", declared, entity, entities))
    if keys == {"has"}:
        return _has(loader, items["has"][1], f"{path}.has", declared, entity, entities)
    if "column" not in keys:
        loader.fail(
            node,
            path,
            "a condition is {column: ..., <test>: ...} with a test of "
            f"{', '.join(_COLUMN_TESTS)}; or all, any, not, always, has",
        )
    column_node = items["column"][1]
    column = loader.text(column_node, f"{path}.column")
    if column not in declared:
        loader.fail(column_node, f"{path}.column", f"no field '{column}' declared in '{entity}'")
    tests = [k for k in _COLUMN_TESTS if k in keys]
    if len(tests) != 1:
        found = f" (found: {', '.join(tests)})" if tests else ""
        loader.fail(node, path, f"'column' needs exactly one test of {', '.join(_COLUMN_TESTS)}{found}")
    test = tests[0]
    value_node = items[test][1]
    where = f"{path}.{test}"
    if test == "equals":
        return Equals(column, _constant(loader, value_node, where))
    if test == "in":
        if not isinstance(value_node, SequenceNode) or not value_node.value:
            loader.fail(value_node, where, "expected a non-empty list of values")
        return OneOf(column, tuple(_constant(loader, v, where) for v in value_node.value))
    if test == "within":
        return Within(column, _period(loader, value_node, where))
    if test == "is_null":
        return IsNull(column, loader.flag(value_node, where))
    if not loader.flag(value_node, where):
        loader.fail(value_node, where, "only 'mentions_others: true' exists")
    return MentionsOthers(column)


def _has(
    loader: "_Loader",
    node: Node,
    path: str,
    declared: set[str],
    entity: str,
    entities: "Mapping[str, EntityConfig]",
) -> Has:
    """``has: payments`` or ``has: {entity: payments, when: {...}}``: a child entity of the
    rule's entity (``relation: entity.col -> payments.col``); the map's own check holds the
    relation's columns to declared fields, so the collected records carry the keys."""
    when_node: Node | None = None
    name_node: Node = node
    if not isinstance(node, ScalarNode):
        items = loader.mapping(node, path, _HAS_KEYS)
        loader.required(items, "entity", node, path)
        name_node = items["entity"][1]
        when_node = items["when"][1] if "when" in items else None
    name = loader.text(name_node, f"{path}.entity" if name_node is not node else path)
    child = entities.get(name)
    relation = child.relation if child is not None else None
    if child is None or relation is None or relation.lookup or relation.parent != entity:
        children = [
            e.name
            for e in entities.values()
            if e.relation is not None and not e.relation.lookup and e.relation.parent == entity
        ]
        loader.fail(
            name_node,
            path,
            f"'{name}' is not a child entity of '{entity}' (relation: {entity}.column -> {name}.column); "
            f"expected one of: {', '.join(children) or 'none (it has no child entities)'}",
        )
    when = None
    if when_node is not None:
        when = _condition(loader, when_node, f"{path}.when", set(child.fields), name, entities)
        if any(isinstance(c, MentionsOthers | Has) for c in _walk(when)):
            loader.fail(when_node, f"{path}.when", "a related record is tested on its own columns only")
    return Has(name, relation.parent_column, relation.column, when)


def _period(loader: "_Loader", node: Node, path: str) -> Period:
    items = loader.mapping(node, path, _PERIOD_KEYS)
    amounts: dict[str, int] = {}
    for key, (_, value_node) in items.items():
        text = loader.text(value_node, f"{path}.{key}")
        if not text.isdigit() or int(text) > 1200:
            loader.fail(value_node, f"{path}.{key}", f"expected a whole number from 0 to 1200, got '{text}'")
        amounts[key] = int(text)
    if not any(amounts.values()):
        loader.fail(node, path, "give a period: years, months and/or days, not all zero")
    return Period(months=amounts.get("years", 0) * 12 + amounts.get("months", 0), days=amounts.get("days", 0))


# -- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFacts:
    """What evaluation needs to know about the case, and nothing about the person."""

    regime: Regime
    request_type: RequestType
    received: date
    reference: str = ""


@dataclass
class Basis:
    """Why: the exemption relied on, its citation, the map's reason, and (when a ``within``
    test bounds it) the date the exemption stops holding."""

    exemption: str  # catalogue id; "" for the data map's own erasure rule (``erasure: keep``)
    title: str
    citation: str
    reason: str
    condition: str
    until: str | None = None  # ISO date; None: not time-bound, or not known


@dataclass
class FieldDecision:
    field: str
    outcome: Outcome
    basis: list[Basis]


@dataclass
class RecordDecision:
    """What happens to one record. ``outcome`` is for the record as a whole: with ``fields``
    empty the whole record is disclosed/withheld/erased/retained; with fields, those fields get
    their own outcome and the rest of the record the default (disclose, erase, comply)."""

    system: str
    entity: str
    key: str
    outcome: Outcome
    fields: list[FieldDecision]
    basis: list[Basis]
    #: field -> its text with other people's data replaced by ``[REDACTED: ...]`` markers, for
    #: free text redacted in part (the field's decision is ``redact``); set by the review stage
    redacted: dict[str, str] = field(default_factory=dict)

    @property
    def whole_record(self) -> bool:
        return not self.fields

    def bases(self) -> list["Basis"]:
        """Every basis the decision relies on, the record's and its fields'."""
        return [*self.basis, *(b for f in self.fields for b in f.basis)]

    def untold(self, catalogue: "ExemptionCatalogue | None" = None) -> bool:
        """Whether the person must hear nothing of this record (see ``Exemption.may_mention``)."""
        return (catalogue or ExemptionCatalogue.load()).untold(self.bases())

    def field_outcome(self, name: str) -> Outcome:
        """What happens to one field: its own decision, else the record's default."""
        for f in self.fields:
            if f.field == name:
                return f.outcome
        return self.outcome if self.whole_record else default_for(self.outcome)

    def dump(self) -> bytes:
        """One line of a case's decisions file (``review-decisions.jsonl`` in the blob store)."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def load(cls, line: bytes | str) -> "RecordDecision":
        data = json.loads(line)
        return cls(
            system=data["system"],
            entity=data["entity"],
            key=data["key"],
            outcome=Outcome(data["outcome"]),
            fields=[
                FieldDecision(f["field"], Outcome(f["outcome"]), [Basis(**b) for b in f["basis"]])
                for f in data["fields"]
            ],
            basis=[Basis(**b) for b in data["basis"]],
            redacted=dict(data.get("redacted") or {}),
        )


def default_for(record_outcome: Outcome) -> Outcome:
    """The outcome of the fields a per-field decision leaves alone: a record with some fields
    redacted still discloses the rest; one with some fields retained still erases the rest."""
    return {
        Outcome.REDACT: Outcome.DISCLOSE,
        Outcome.WITHHOLD: Outcome.DISCLOSE,
        Outcome.RETAIN: Outcome.ERASE,
        Outcome.REFUSE: Outcome.COMPLY,
    }.get(record_outcome, record_outcome)


def default_outcome(request_type: RequestType) -> Outcome:
    if request_type in DISCLOSING:
        return Outcome.DISCLOSE
    if request_type is RequestType.ERASURE:
        return Outcome.ERASE
    return Outcome.COMPLY


def exempt_outcome(effect: Effect, request_type: RequestType) -> Outcome:
    """What an exemption's effect means for this kind of request: in a copy it withholds,
    redacts or (an override) discloses; against erasure anything that fires keeps the data;
    against other rights it means the request is not carried out for this record."""
    if request_type in DISCLOSING:
        return {Effect.REDACT: Outcome.REDACT, Effect.DISCLOSE: Outcome.DISCLOSE}.get(
            effect, Outcome.WITHHOLD
        )
    if request_type is RequestType.ERASURE:
        return Outcome.RETAIN
    return Outcome.REFUSE


#: The stronger outcome wins when two rules touch the same record or field.
_STRENGTH = {
    Outcome.DISCLOSE: 0,
    Outcome.ERASE: 0,
    Outcome.COMPLY: 0,
    Outcome.REDACT: 1,
    Outcome.WITHHOLD: 2,
    Outcome.RETAIN: 2,
    Outcome.REFUSE: 2,
}


def record_key(entity: "EntityConfig", record: Mapping[str, Any], position: int) -> str:
    """``orders:42`` as the connectors name person-records; an S3 object by its key; else the
    record's position in the entity's result."""
    columns = list(entity.key) or [c for c in ("key", "version_id") if record.get(c) is not None]
    if columns and all(c in record for c in columns):
        return f"{entity.name}:{'/'.join(str(record[c]) for c in columns)}"
    return f"{entity.name}#{position}"


def evaluate(
    case: CaseFacts,
    rules: Sequence[ExemptionRule],
    system: str,
    entity: "EntityConfig",
    records: Iterable[Mapping[str, Any]],
    related: Related | None = None,
) -> list[RecordDecision]:
    """Decide every record of one entity. Pure: same input, same answer, no I/O. ``has``
    conditions need ``related`` (:func:`related_keys`; :func:`evaluate_system` does both)."""
    judge = _Judge(case, rules, system, entity, related)
    return [judge.decide(record, position) for position, record in enumerate(records, start=1)]


def needs_related(datamap: "DataMap", system: str) -> bool:
    """Whether a rule of ``system`` tests related records (``has``): the records are then read
    twice, a first pass for :func:`related_keys`."""
    return bool(_has_conditions(datamap.exemptions, system))


def _has_conditions(rules: Sequence[ExemptionRule], system: str) -> set[Has]:
    return {c for r in rules if r.system == system for c in _walk(r.when) if isinstance(c, Has)}


def related_keys(
    case: CaseFacts, datamap: "DataMap", system: str, lines: Iterable[tuple[str, Mapping[str, Any]]]
) -> dict[Has, frozenset[str]]:
    """The first pass for ``has`` conditions: for each, the parent keys that at least one of
    the person's related records (holding the condition's own test) points at. Keys only, so
    memory grows with the number of parents, never with the records' contents."""
    wanted: dict[str, list[Has]] = {}
    for condition in _has_conditions(datamap.exemptions, system):
        wanted.setdefault(condition.entity, []).append(condition)
    found: dict[Has, set[str]] = {c: set() for conditions in wanted.values() for c in conditions}
    if not wanted:
        return {}
    for name, record in lines:
        for condition in wanted.get(name, ()):
            if condition.column not in record:
                raise ExemptionError(
                    f"a record of {system}.{name} has no '{condition.column}' column ('has: {name}')"
                )
            value = record[condition.column]
            if value is None:
                continue
            if condition.when is not None:
                missing = condition.when.columns() - record.keys()
                if missing:
                    raise ExemptionError(
                        f"a record of {system}.{name} has no '{sorted(missing)[0]}' column ('has: {name}')"
                    )
                try:
                    if not condition.when.check(record, case.received).holds:
                        continue
                except _NotADate:
                    raise ExemptionError(
                        f"'within' needs a date, and a record of {system}.{name} holds something else"
                    ) from None
            found[condition].add(_link(value))
    return {c: frozenset(keys) for c, keys in found.items()}


def evaluate_stream(
    case: CaseFacts,
    datamap: "DataMap",
    system: str,
    lines: Iterable[tuple[str, Mapping[str, Any]]],
    related: Related | None = None,
) -> Iterator[RecordDecision]:
    """Decide records as the search stage stored them, ``(entity, record)`` in any order, one
    at a time: memory stays flat however many records the person has. Positions (for records
    without a key) count per entity, as :func:`record_key` expects. A map with ``has``
    conditions needs ``related`` from :func:`related_keys` over the same records first."""
    config = datamap.system(system)
    judges: dict[str, _Judge] = {}
    positions: dict[str, int] = {}
    for name, record in lines:
        judge = judges.get(name)
        if judge is None:
            if name not in config.entities:
                raise ExemptionError(f"no entity '{name}' in system '{system}' of the data map")
            judge = judges[name] = _Judge(case, datamap.exemptions, system, config.entities[name], related)
        positions[name] = positions.get(name, 0) + 1
        yield judge.decide(record, positions[name])


class _Judge:
    """The rules that can fire for one entity of one case, applied record by record."""

    def __init__(
        self,
        case: CaseFacts,
        rules: Sequence[ExemptionRule],
        system: str,
        entity: "EntityConfig",
        related: Related | None = None,
    ) -> None:
        self.case, self.system, self.entity, self.related = case, system, entity, related
        self.active = [
            (r, frozenset(r.when.columns()))
            for r in rules
            if r.system == system and r.entity == entity.name and r.fires_for(case)
        ]
        # An entity the data map keeps on erasure (accounting records) is kept, for the map's reason.
        self.kept = (
            Basis(
                "",
                "Kept by the data map",
                "",
                entity.erasure.reason,
                "the data map keeps this entity on erasure",
            )
            if case.request_type is RequestType.ERASURE and entity.erasure.strategy == "keep"
            else None
        )

    def decide(self, record: Mapping[str, Any], position: int) -> RecordDecision:
        system, entity = self.system, self.entity
        key = record_key(entity, record, position)
        fired: list[tuple[ExemptionRule, Basis]] = []
        for rule, columns in self.active:
            if not columns <= record.keys():
                missing = sorted(columns - record.keys())
                raise ExemptionError(
                    f"{rule.origin}: record {key} of {system}.{entity.name} has no '{missing[0]}' column"
                )
            try:
                verdict = rule.when.check(record, self.case.received, self.related)
            except _NotADate:
                raise ExemptionError(
                    f"{rule.origin}: 'within' needs a date, and record {key} of {system}.{entity.name} "
                    "holds something else in that column"
                ) from None
            if verdict.holds:
                fired.append((rule, _basis(rule, verdict)))
        return _decide(self.case, system, entity.name, key, fired, self.kept)


def evaluate_system(
    case: CaseFacts, datamap: "DataMap", system: str, records: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[RecordDecision]:
    """Every entity of one system; ``records`` maps entity name -> its records (as the search
    stage collected them)."""
    config = datamap.system(system)
    related = related_keys(case, datamap, system, ((n, r) for n, rows in records.items() for r in rows))
    out: list[RecordDecision] = []
    for name, rows in records.items():
        if name not in config.entities:
            raise ExemptionError(f"no entity '{name}' in system '{system}' of the data map")
        out += evaluate(case, datamap.exemptions, system, config.entities[name], rows, related)
    return out


def _basis(rule: ExemptionRule, verdict: Verdict) -> Basis:
    return Basis(
        exemption=rule.exemption.id,
        title=rule.exemption.title,
        citation=rule.exemption.citation,
        reason=rule.reason,
        condition=rule.when.describe(),
        until=verdict.until.isoformat() if verdict.until is not None else None,
    )


def _decide(
    case: CaseFacts,
    system: str,
    entity: str,
    key: str,
    fired: list[tuple[ExemptionRule, Basis]],
    kept: Basis | None,
) -> RecordDecision:
    base = default_outcome(case.request_type)
    # What each fired rule touches: () the whole record, else its fields. An override (Sch 2
    # para 17: a health worker acting as such) sets aside the exemptions it names on the fields
    # it covers; a whole-record exemption is never partly overridden (the stricter reading).
    overriders = [
        rule
        for rule, _ in fired
        if exempt_outcome(rule.exemption.effect, case.request_type) is Outcome.DISCLOSE
    ]
    touched: list[tuple[tuple[str, ...], Outcome, Basis]] = [((), Outcome.RETAIN, kept)] if kept else []
    for rule, basis in fired:
        fields: tuple[str, ...] | None = rule.fields
        for other in overriders:
            if fields is None or rule.exemption.id not in other.exemption.overrides:
                continue
            if not other.fields:
                fields = None
            elif fields:
                fields = tuple(f for f in fields if f not in other.fields) or None
        if fields is not None:
            result = exempt_outcome(rule.exemption.effect, case.request_type)
            if not fields and result is Outcome.REDACT:
                result = Outcome.WITHHOLD  # every part of the record redacted: it is withheld
            touched.append((fields, result, basis))

    whole = [(result, basis) for fields, result, basis in touched if not fields and _STRENGTH[result] > 0]
    if whole:
        outcome = max((result for result, _ in whole), key=_STRENGTH.__getitem__)
        return RecordDecision(system, entity, key, outcome, [], _unique(b for r, b in whole if r is outcome))

    per_field: dict[str, tuple[Outcome, list[Basis]]] = {}
    for fields, result, basis in touched:
        for name in fields:
            current, bases = per_field.get(name, (base, []))
            if _STRENGTH[result] > _STRENGTH[current] or (result is current and not bases):
                per_field[name] = (result, [basis])
            elif result is current:
                per_field[name] = (current, [*bases, basis])
    decided = [FieldDecision(name, result, _unique(bases)) for name, (result, bases) in per_field.items()]
    outcome = base
    if any(_STRENGTH[d.outcome] > 0 for d in decided):
        outcome = (
            Outcome.REDACT if base is Outcome.DISCLOSE else exempt_outcome(Effect.WITHHOLD, case.request_type)
        )
    # a whole-record override (disclosed although another exemption named it) is shown too
    overridden = [b for fields, result, b in touched if not fields and result is Outcome.DISCLOSE]
    reasons = _unique([*(b for d in decided for b in d.basis), *overridden])
    return RecordDecision(system, entity, key, outcome, decided, reasons)


def _unique(bases: Iterable[Basis]) -> list[Basis]:
    seen: set[tuple[str, str, str | None]] = set()
    out: list[Basis] = []
    for b in bases:
        marker = (b.exemption, b.reason, b.until)
        if marker not in seen:
            seen.add(marker)
            out.append(b)
    return out


# -- the review package ----------------------------------------------------------------------

#: How the package names an outcome, for a record and for a field.
_RECORD_LABELS = {
    Outcome.DISCLOSE: "To disclose",
    Outcome.REDACT: "To disclose with parts removed",
    Outcome.WITHHOLD: "To withhold",
    Outcome.ERASE: "To erase",
    Outcome.RETAIN: "To keep instead of deleting",
    Outcome.COMPLY: "To carry out",
    Outcome.REFUSE: "Not to carry out (exempt)",
}
_COUNT_LABELS = {
    Outcome.DISCLOSE: "to disclose",
    Outcome.REDACT: "to disclose with parts removed",
    Outcome.WITHHOLD: "to withhold",
    Outcome.ERASE: "to erase",
    Outcome.RETAIN: "to keep instead of deleting",
    Outcome.COMPLY: "to carry out",
    Outcome.REFUSE: "not to carry out",
}
_FIELD_LABELS = {
    Outcome.DISCLOSE: "disclosed",
    Outcome.REDACT: "redacted",
    Outcome.WITHHOLD: "removed",
    Outcome.ERASE: "erased",
    Outcome.RETAIN: "kept",
    Outcome.COMPLY: "changed",
    Outcome.REFUSE: "not changed",
}
#: Record keys listed per line of the text; the dict form always has all of them.
TEXT_KEYS_PER_LINE = 40


@dataclass
class ReviewReason:
    exemption: str
    citation: str
    reason: str
    condition: str
    #: the person may be told of it (``Exemption.may_mention``); False: the copy and the
    #: letters say nothing of these records
    told: bool = True


@dataclass
class ReviewLine:
    """Records of one entity that share an outcome and the reasons for it."""

    outcome: Outcome
    records: list[str]
    #: field -> its outcome; empty: the outcome is for the whole record
    fields: dict[str, Outcome]
    reasons: list[ReviewReason]
    #: record key -> ISO date the exemption stops holding, where a ``within`` test gives one
    until: dict[str, str]


@dataclass
class EntityReview:
    system: str
    entity: str
    records: int
    counts: dict[str, int]  # outcome -> records
    lines: list[ReviewLine]


@dataclass
class CitedExemption:
    """Each exemption the package relies on, spelled out once."""

    id: str
    title: str
    citation: str
    summary: str
    review_required: bool
    verified: bool
    may_mention: bool = True


@dataclass
class ReviewPackage:
    """What a reviewer approves: per system and entity, what will be disclosed, redacted,
    withheld, erased or kept, and why. Record keys and field names only, never values."""

    reference: str
    regime: str
    request_type: str
    received: str
    records: int
    counts: dict[str, int]
    entities: list[EntityReview]
    legal_bases: list[CitedExemption]
    #: exemptions relied on whose every use a person must confirm
    needs_confirmation: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_review_package(
    case: CaseFacts,
    decisions: Sequence[RecordDecision],
    catalogue: ExemptionCatalogue | None = None,
    searched: Iterable[tuple[str, str]] = (),
) -> ReviewPackage:
    """Group the decisions per system and entity, then by outcome and reason. ``searched``
    adds (system, entity) pairs searched and empty, so the reviewer sees them too."""
    catalogue = catalogue or ExemptionCatalogue.load()
    by_entity: dict[tuple[str, str], list[RecordDecision]] = {pair: [] for pair in searched}
    for decision in decisions:
        by_entity.setdefault((decision.system, decision.entity), []).append(decision)
    entities = [
        _entity_review(system, entity, items, catalogue) for (system, entity), items in by_entity.items()
    ]
    used = list(dict.fromkeys(b.exemption for d in decisions for b in d.basis if b.exemption))
    cited = [catalogue.get(i) for i in used]
    totals = _counts(decisions)
    return ReviewPackage(
        reference=case.reference,
        regime=case.regime.value,
        request_type=case.request_type.value,
        received=case.received.isoformat(),
        records=len(decisions),
        counts=totals,
        entities=entities,
        legal_bases=[
            CitedExemption(e.id, e.title, e.citation, e.summary, e.review_required, e.verified, e.may_mention)
            for e in cited
        ],
        needs_confirmation=[e.id for e in cited if e.review_required],
    )


def _counts(decisions: Iterable[RecordDecision]) -> dict[str, int]:
    counts = {o.value: 0 for o in Outcome}
    for d in decisions:
        counts[d.outcome.value] += 1
    return {k: v for k, v in counts.items() if v}


def _entity_review(
    system: str, entity: str, decisions: list[RecordDecision], catalogue: ExemptionCatalogue
) -> EntityReview:
    lines: dict[tuple[object, ...], ReviewLine] = {}
    for d in decisions:
        reasons = [
            ReviewReason(b.exemption, b.citation, b.reason, b.condition, catalogue.may_mention(b.exemption))
            for b in d.basis
        ]
        fields = {f.field: f.outcome for f in d.fields}
        signature = (
            d.outcome,
            tuple(fields.items()),
            tuple((r.exemption, r.reason, r.condition) for r in reasons),
        )
        line = lines.get(signature)
        if line is None:
            line = lines[signature] = ReviewLine(d.outcome, [], fields, reasons, {})
        line.records.append(d.key)
        ends = [b.until for b in d.basis if b.until is not None]
        if ends and len(ends) == len(d.basis):
            line.until[d.key] = max(ends)  # kept while any of its reasons still holds
    ordered = sorted(lines.values(), key=lambda line: -_STRENGTH[line.outcome])
    return EntityReview(system, entity, len(decisions), _counts(decisions), ordered)


def _count_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {_COUNT_LABELS[Outcome(k)]}" for k, n in counts.items())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


#: Width of the plain-text package; ids and record keys are never broken across lines.
TEXT_WIDTH = 100


def _para(text: str, indent: str, hang: str = "  ") -> list[str]:
    return textwrap.wrap(
        text,
        TEXT_WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + hang,
        break_long_words=False,
        break_on_hyphens=False,
    )


def render_review_package(package: ReviewPackage) -> str:
    """The package as plain text, for a privacy officer to read top to bottom."""
    regime = REGIMES[Regime(package.regime)].label
    out = [
        f"Review package{f' for case {package.reference}' if package.reference else ''}",
        f"{regime} {package.request_type} request, received {package.received}.",
        *_para(
            "Proposed by the exemption rules of the data map. Nothing is disclosed or changed until a "
            "reviewer approves; any line can be overridden with a reason. Records are named by their keys "
            "only.",
            "",
            "",
        ),
        "",
        f"In total: {_plural(package.records, 'record')}"
        + (f": {_count_text(package.counts)}." if package.counts else "."),
    ]
    if package.needs_confirmation:
        out += _para(
            "A person must confirm each use of: "
            + ", ".join(package.needs_confirmation)
            + " (an exemption applies only to the extent its test is met in this case).",
            "",
            "",
        )
    else:
        out.append("No exemption here needs a person's judgement case by case.")
    for review in package.entities:
        out += ["", f"{review.system} / {review.entity}: {_plural(review.records, 'record')}"]
        if not review.records:
            out.append("  Nothing found.")
        for line in review.lines:
            out += _render_line(line)
    if package.legal_bases:
        out += ["", "Legal bases"]
        for cited in package.legal_bases:
            out += _para(f"{cited.id}: {cited.title} ({cited.citation})", "  ", "    ")
            out += _para(cited.summary, "    ", "")
            notes = ["a person must confirm each use" if cited.review_required else "applies as mapped"]
            told = "the person is told it was used" if cited.may_mention else "never mentioned to the person"
            notes.append(told)
            if not cited.verified:
                notes.append("wording not verified against the source: check before quoting it")
            out += _para(f"({'; '.join(notes)})", "    ", " ")
    return "\n".join(out) + "\n"


def _render_line(line: ReviewLine) -> list[str]:
    keys = [f"{k} (until {line.until[k]})" if k in line.until else k for k in line.records]
    shown = ", ".join(keys[:TEXT_KEYS_PER_LINE])
    if len(keys) > TEXT_KEYS_PER_LINE:
        shown += f", and {len(keys) - TEXT_KEYS_PER_LINE} more"
    out = _para(f"{_RECORD_LABELS[line.outcome]} ({len(line.records)}): {shown}", "  ", "    ")
    if line.fields:
        out += _para(
            "fields: " + ", ".join(f"{name} {_FIELD_LABELS[o]}" for name, o in line.fields.items()), "    "
        )
    for reason in line.reasons:
        out += _para(f"because: {reason.reason} [{reason.exemption or 'data map erasure rule'}]", "    ")
        out += _para(f"when: {reason.condition}", "    ")
        if not reason.told and line.outcome is not Outcome.DISCLOSE:
            out += _para(
                "the person is not told: nothing of these records is in the copy or any letter, not "
                "even a count or a category (telling them would prejudice what the exemption protects)",
                "    ",
            )
    if line.outcome is Outcome.RETAIN and line.reasons and len(line.until) < len(line.records):
        out.append("    until: no end date follows from the record; review when the reason lapses")
    return out
