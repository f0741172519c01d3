"""Fulfil the changes a person asked for: erasure, rectification, restriction, objection,
opt-out of sale or sharing, limiting the use of sensitive data.

Four activities, in this order (the workflow runs them):

1. ``plan_change`` (main task queue): reads the search results and the review's decisions file
   from the blob store, builds one plan per system (dsar/erasure.py, dsar/changes.py), and
   writes the plan (encrypted: it holds the person's identifiers), its readable summary and the
   letter's text to the blob store. Returns references and counts only.
2. ``apply_change`` (the system's own task queue, ``<queue>-system-<name>``, one per system):
   carries out that system's plan through its connector, heartbeating. Idempotent: a retry, or
   a worker killed half way and replaced, changes nothing already changed. A workflow that
   records each system's result before starting the next resumes after a crash with the
   systems not yet done, and a system done twice reports zero the second time.
3. ``verify_change`` (the system's queue): searches the system again and proves the plan holds
   (nothing erasable left; corrected values read back; markers set). A failure names system,
   entity and counts, never a value, and is not retried: a person must look.
4. ``record_suppression`` (main queue): once every system is verified, enters the person's
   identifiers (keyed hashes) in the suppression list, so an import cannot add them back.

Which persons a change touches is fixed at plan time from what the search collected (SQL
systems: the accepted person-records' keys), so a retry after the person's identifiers were
erased finds the same rows and can never pick a household member instead. Systems whose keys
name records (S3) are searched again with the same rule the search used.
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.base import (
    HEARTBEAT_EVERY,
    Connector,
    ConnectorError,
    ConnectorMisconfigured,
    ConnectorRefused,
    ConnectorUnavailable,
    ErasureForecast,
    ErasurePlan,
    FieldChange,
    Rectification,
    Subject,
    connector_for,
    json_lines,
    read_records,
)
from connectors.sql import SqlConnector
from dsar.blobs import BlobStore
from dsar.changes import (
    MARKERS,
    ChangeNotVerified,
    ChangePlanError,
    Correction,
    MarkPlan,
    RectificationPlan,
    build_mark_plans,
    build_rectifications,
    corrections_for_identifier,
    verify_marks,
    verify_rectification,
)
from dsar.datamap import DataMap, Marker, SystemConfig
from dsar.effects import EffectsLog
from dsar.erasure import (
    ErasureNotVerified,
    ErasurePlanError,
    build_erasure_plans,
    plan_from_dict,
    plan_to_dict,
    resolve_subject,
    summarise_erasure,
    verify_erasure,
)
from dsar.exemptions import ExemptionError, Outcome, RecordDecision, record_key
from dsar.identity import DISTINCTIVE
from dsar.logs import bind_case, get_logger
from dsar.metrics import connector_call
from dsar.model import RequestType, SystemResult
from dsar.suppression import SuppressionList, SuppressionReason
from dsar.wording import plural, words

log = get_logger("dsar.activities.change")

#: Request types this module carries out.
CHANGE_TYPES = frozenset({RequestType.ERASURE, RequestType.RECTIFICATION, *MARKERS})

#: What the suppression list records for each kind of request (none for rectification).
SUPPRESSION_REASONS = {
    RequestType.ERASURE: SuppressionReason.ERASED,
    RequestType.OBJECTION: SuppressionReason.OBJECTED,
    RequestType.OPT_OUT_SALE_SHARING: SuppressionReason.OPTED_OUT,
    RequestType.LIMIT_SENSITIVE: SuppressionReason.LIMITED,
}

_PLAN_VERSION = 1
#: Record outcomes that change nothing about what the data map says to do.
_AS_MAPPED = frozenset({Outcome.ERASE, Outcome.COMPLY, Outcome.DISCLOSE})


@dataclass
class ChangePlanInput:
    reference: str
    request_type: RequestType
    #: what the person gave (and later added); the plan adds what the search learned
    identifiers: dict[str, str]
    #: the search results: systems "found" have their records in the blob store
    systems: list[SystemResult]
    #: the review's decisions file (JSON lines of RecordDecision); "": none, all per the map
    decisions_ref: str = ""
    #: rectification: the corrected values
    corrections: list[Correction] = field(default_factory=list)
    #: rectification as the person puts it: identifier kind -> the right value (``phone``), made
    #: into corrections of every identity column holding that kind (personal data: encrypted)
    corrected: dict[str, str] = field(default_factory=dict)


@dataclass
class SystemChangePlan:
    """One system's part of the plan, in counts."""

    system: str
    records: int = 0  # the subject's records the search found there
    delete: int = 0
    anonymise: int = 0
    keep: int = 0
    change: int = 0  # rectification and markers: records of the entities changed
    exempt: int = 0  # records an exemption leaves as they are


@dataclass
class ChangePlan:
    plan_ref: str  # the plans, encrypted (they hold the person's identifiers)
    summary_ref: str  # for the reviewer: text, counts and reasons only
    letter_ref: str  # for the person's letter: what was done, what was kept and why
    #: the systems to apply and verify, each on its own task queue, in this order
    systems: list[str]
    counts: list[SystemChangePlan]
    #: systems searched by hand: their owner makes the change and an operator confirms it
    manual: list[str] = field(default_factory=list)
    #: what a live database constraint would refuse (names and counts only): the plan cannot
    #: be carried out as it stands, so it cannot be approved until the data map is corrected
    refusals: list[str] = field(default_factory=list)


@dataclass
class ChangeInput:
    reference: str
    system: str
    plan_ref: str


@dataclass
class ChangeApplied:
    system: str
    deleted: dict[str, int] = field(default_factory=dict)
    anonymised: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)  # rectified or marked rows

    @property
    def total(self) -> int:
        return sum(self.deleted.values()) + sum(self.anonymised.values()) + sum(self.changed.values())


@dataclass
class ChangeVerified:
    system: str
    records: int  # the subject's records found again
    detail: str  # plain words for the case file, no personal data


@dataclass
class SuppressionInput:
    reference: str
    plan_ref: str


@dataclass
class SuppressionRecorded:
    entries: int  # new entries (0 when the request type suppresses nothing, or on a retry)
    reason: str = ""


class ChangeActivities:
    def __init__(
        self,
        datamap: DataMap,
        blobs: BlobStore,
        suppression: SuppressionList,
        hash_key: str,
        effects: EffectsLog | None = None,
    ) -> None:
        self.datamap = datamap
        self.blobs = blobs
        self.suppression = suppression
        self.hash_key = hash_key
        #: what earlier attempts applied (a worker killed after the commit): added up, so the
        #: audit entry says what the change did, not what its last attempt did
        self.effects = effects

    # -- 1. plan -------------------------------------------------------------------------

    @activity.defn(name="plan_change")
    def plan_change(self, inp: ChangePlanInput) -> ChangePlan:
        with bind_case(inp.reference):
            try:
                plan = self._plan(inp)
            except (ErasurePlanError, ChangePlanError, ExemptionError) as e:
                raise ApplicationError(str(e), type="ChangePlanRefused", non_retryable=True) from None
            log.info("change planned", systems=len(plan.systems), request_type=inp.request_type.value)
            return plan

    def _plan(self, inp: ChangePlanInput) -> ChangePlan:
        if inp.request_type not in CHANGE_TYPES:
            raise ChangePlanError(f"'{inp.request_type.value}' is not a change to systems")
        # Only the decisions that keep or refuse something: a line that erases (or complies)
        # says what the data map says anyway.
        decisions = [d for d in self._decisions(inp.decisions_ref) if d.outcome not in _AS_MAPPED]
        found = [
            s
            for s in inp.systems
            if s.status == "found"
            and s.blob_ref
            and s.system in self.datamap.systems
            and self.datamap.systems[s.system].manual is None
        ]
        # Two streaming passes over the search's records (never all in memory): this one
        # counts them and harvests whose they are, the summary's classifies them.
        harvest = _Harvest(self.datamap, inp.identifiers)
        expected: dict[str, dict[str, int]] = {}
        for system, entity, _ in _tap(harvest, self._records(found)):
            per_entity = expected.setdefault(system, {})
            per_entity[entity] = per_entity.get(entity, 0) + 1
        subjects = harvest.subjects()
        names = [s.system for s in found]
        body: dict[str, Any] = {
            "version": _PLAN_VERSION,
            "reference": inp.reference,
            "request_type": inp.request_type.value,
            "expected": expected,
            "suppress": harvest.suppressible(),
        }
        counts = {
            name: SystemChangePlan(name, records=sum(expected.get(name, {}).values())) for name in names
        }
        refusals: list[str] = []
        if inp.request_type is RequestType.ERASURE:
            plans = build_erasure_plans(
                self.datamap, subjects, decisions, systems=names, hash_key=self.hash_key
            )
            forecasts = [f for f in (self._forecast(plan) for plan in plans) if f is not None]
            summary = summarise_erasure(
                self.datamap,
                plans,
                decisions,
                self._records(found),
                reference=inp.reference,
                shared={(f.system, name): n for f in forecasts for name, n in f.shared.items()},
            )
            body["erasure"] = {plan.system: plan_to_dict(plan) for plan in plans}
            for name in names:
                totals = summary.system_totals(name)
                counts[name].delete = totals["delete"]
                counts[name].anonymise = totals["anonymise"]
                counts[name].keep = totals["keep"]
            refusals = [f"{f.system}.{refusal}" for f in forecasts for refusal in f.refusals]
            summary_text, letter_text = summary.render(), summary.for_person()
            if forecasts:
                summary_text = _forecast_text(forecasts) + summary_text
        elif inp.request_type is RequestType.RECTIFICATION:
            corrections = [
                *inp.corrections,
                *(
                    c
                    for kind, v in inp.corrected.items()
                    for c in corrections_for_identifier(self.datamap, kind, v)
                ),
            ]
            rectifications = build_rectifications(self.datamap, subjects, corrections, decisions)
            untold = {(d.system, d.key) for d in decisions if d.untold()}
            body["rectification"] = {p.system: asdict(p.rectification) for p in rectifications}
            for rectified in rectifications:
                changed = {c.entity for c in rectified.rectification.changes}
                line = counts.setdefault(rectified.system, SystemChangePlan(rectified.system))
                line.change = sum(expected.get(rectified.system, {}).get(e, 0) for e in changed)
                line.exempt = len(rectified.rectification.exempt)
            names += [p.system for p in rectifications if p.system not in names]
            summary_text = _rectification_text(self.datamap, rectifications, expected)
            letter_text = _rectification_text(self.datamap, rectifications, expected, untold)
        else:
            marker = MARKERS[inp.request_type]
            marks = [
                p for p in build_mark_plans(self.datamap, subjects, marker, decisions) if p.system in names
            ]
            body["marks"] = {p.system: {**asdict(p), "marker": p.marker.value} for p in marks}
            for marked in marks:
                config = self.datamap.system(marked.system)
                flagged = [e.name for e in config.entities.values() if e.marker(marker)] or (
                    list(config.entities) if config.connector == "s3" else []
                )
                counts[marked.system].change = sum(expected.get(marked.system, {}).get(e, 0) for e in flagged)
                counts[marked.system].exempt = len(marked.exempt)
            untold = {(d.system, d.key) for d in decisions if d.untold()}
            summary_text = _marks_text(self.datamap, marks, marker, expected)
            letter_text = _marks_text(self.datamap, marks, marker, expected, untold)
        letter_text += _elsewhere_text(self.datamap, inp.systems, inp.request_type)
        plan_ref = self.blobs.put(json.dumps(body).encode(), case=inp.reference, name="change-plan.json")
        summary_ref = self.blobs.put(summary_text.encode(), case=inp.reference, name="change-plan.txt")
        letter_ref = self.blobs.put(letter_text.encode(), case=inp.reference, name="change-letter.txt")
        planned = [name for name in names if _planned(body, name)]
        return ChangePlan(
            plan_ref=plan_ref,
            summary_ref=summary_ref,
            letter_ref=letter_ref,
            systems=planned,
            counts=[counts[name] for name in planned],
            manual=sorted(name for name, s in self.datamap.systems.items() if s.manual is not None),
            refusals=refusals,
        )

    def _forecast(self, plan: ErasurePlan) -> ErasureForecast | None:
        """The plan worked out on the live database (SQL systems): the rows others use too,
        and what a foreign key would refuse, for the reviewer to see before approving."""
        connector = self._connector(plan.system)
        if not isinstance(connector, SqlConnector):
            return None
        try:
            return connector.forecast_erasure(plan)
        except ConnectorMisconfigured as e:  # retrying cannot fix the data map
            raise ChangePlanError(str(e)) from None

    def _decisions(self, ref: str) -> Iterator[RecordDecision]:
        if not ref:
            return
        for line in json_lines(self.blobs.open_reader(ref)):
            yield RecordDecision.load(line)

    def _records(self, found: list[SystemResult]) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for result in found:
            assert result.blob_ref is not None
            for entity, record in read_records(self.blobs.open_reader(result.blob_ref)):
                yield result.system, entity, record

    # -- 2. apply --------------------------------------------------------------------------

    @activity.defn(name="apply_change")
    def apply_change(self, inp: ChangeInput) -> ChangeApplied:
        with bind_case(inp.reference):
            body = self._plan_body(inp)
            connector = self._connector(inp.system)
            with connector_call(inp.system, "change"), _connector_errors(inp.system):
                applied = self._apply(body, inp.system, connector)
            if self.effects is not None:
                done = {
                    "deleted": applied.deleted,
                    "anonymised": applied.anonymised,
                    "changed": applied.changed,
                }
                total = self.effects.add_applied(inp.reference, inp.system, done)
                # what is kept is a state, not an effect: the last attempt says it
                applied = ChangeApplied(
                    inp.system,
                    deleted={k: total.get("deleted", {}).get(k, 0) for k in applied.deleted},
                    anonymised={k: total.get("anonymised", {}).get(k, 0) for k in applied.anonymised},
                    kept=applied.kept,
                    changed={k: total.get("changed", {}).get(k, 0) for k in applied.changed},
                )
            log.info("change applied", system=inp.system, rows=applied.total)
            return applied

    def _apply(self, body: dict[str, Any], system: str, connector: Connector) -> ChangeApplied:
        if "erasure" in body:
            plan = plan_from_dict(body["erasure"][system])
            plan.subject = resolve_subject(connector, plan.subject)
            erased = connector.erase(plan)
            return ChangeApplied(system, erased.deleted, erased.anonymised, erased.kept)
        if "rectification" in body:
            rectification = _rectification(body["rectification"][system])
            subject = resolve_subject(connector, rectification.subject)
            changed = connector.rectify(Rectification(subject, rectification.changes, rectification.exempt))
            return ChangeApplied(system, changed=changed.entities)
        mark = _mark(body["marks"][system])
        subject = resolve_subject(connector, mark.subject)
        changed = connector.mark(subject, mark.marker, frozenset(mark.exempt))
        return ChangeApplied(system, changed=changed.entities)

    # -- 3. verify -------------------------------------------------------------------------

    @activity.defn(name="verify_change")
    def verify_change(self, inp: ChangeInput) -> ChangeVerified:
        with bind_case(inp.reference):
            body = self._plan_body(inp)
            config = self.datamap.system(inp.system)
            connector = self._connector(inp.system)
            try:
                with connector_call(inp.system, "verify"), _connector_errors(inp.system):
                    if "erasure" in body:
                        check = verify_erasure(config, connector, plan_from_dict(body["erasure"][inp.system]))
                        result = ChangeVerified(inp.system, check.records, check.detail())
                    elif "rectification" in body:
                        plan = RectificationPlan(
                            inp.system, _rectification(body["rectification"][inp.system])
                        )
                        expected = body.get("expected", {}).get(inp.system, {})
                        checked = verify_rectification(config, connector, plan, expected)
                        result = ChangeVerified(inp.system, _checked(checked.entities), checked.detail())
                    else:
                        marked = verify_marks(connector, _mark(body["marks"][inp.system]))
                        result = ChangeVerified(inp.system, _checked(marked.entities), marked.detail())
            except (ErasureNotVerified, ChangeNotVerified) as e:
                log.warning("change not verified", system=inp.system)
                raise ApplicationError(str(e), type="ChangeNotVerified", non_retryable=True) from None
            log.info("change verified", system=inp.system, records=result.records)
            return result

    # -- 4. suppression ----------------------------------------------------------------------

    @activity.defn(name="record_suppression")
    def record_suppression(self, inp: SuppressionInput) -> SuppressionRecorded:
        with bind_case(inp.reference):
            body = json.loads(self.blobs.get(inp.plan_ref))
            reason = SUPPRESSION_REASONS.get(RequestType(body["request_type"]))
            if reason is None:
                return SuppressionRecorded(0)
            entries = self.suppression.add(inp.reference, reason, body.get("suppress", {}))
            log.info("suppression recorded", entries=entries, reason=reason.value)
            return SuppressionRecorded(entries, reason.value)

    # -- helpers ---------------------------------------------------------------------------

    def _plan_body(self, inp: ChangeInput) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.blobs.get(inp.plan_ref))
        if body.get("version") != _PLAN_VERSION or body.get("reference") != inp.reference:
            raise ApplicationError(
                "the change plan is not this case's", type="ChangePlanRefused", non_retryable=True
            )
        if not _planned(body, inp.system):
            raise ApplicationError(
                f"the change plan has nothing for system {inp.system!r}",
                type="UnknownSystem",
                non_retryable=True,
            )
        return body

    def _connector(self, system: str) -> Connector:
        config = self.datamap.systems.get(system)
        if config is None or config.manual is not None:
            raise ApplicationError(
                f"system {system!r} is not changed by a connector", type="UnknownSystem", non_retryable=True
            )
        return connector_for(config, heartbeat=_heartbeat)


def _forecast_text(forecasts: list[ErasureForecast]) -> str:
    """The plan worked out on the live database, first in the reviewer's text: row counts
    per entity as erase would change them (a row others use, or that kept rows hang from,
    stays), then the warnings (the workbench picks them out by their first words)."""
    lines = ["Worked out on the live database (rows):"]
    for forecast in forecasts:
        for entity in sorted({*forecast.deleted, *forecast.anonymised, *forecast.kept}):
            parts = [
                f"{count} {what}"
                for what, count in (
                    ("to delete", forecast.deleted.get(entity, 0)),
                    ("to anonymise", forecast.anonymised.get(entity, 0)),
                    ("kept as they are", forecast.kept.get(entity, 0)),
                )
                if count
            ]
            lines.append(f"  {forecast.system} / {entity}: {', '.join(parts)}")
    warnings = [w for forecast in forecasts for w in forecast.warnings()]
    if warnings:
        lines += ["", "Warnings:", *(f"  {warning}" for warning in warnings)]
    return "\n".join(lines) + "\n\n"


def _heartbeat() -> None:
    """Heartbeat when running as an activity (tests and the bench call the methods directly)."""
    if activity.in_activity():
        activity.heartbeat()


class _connector_errors:
    """Connector failures as the search stage reports them: an unreachable system is for the
    workflow to retry visibly ("crm unreachable since ..."), a misfit data map is not retried."""

    def __init__(self, system: str) -> None:
        self.system = system

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        if error is None or isinstance(error, ErasureNotVerified | ChangeNotVerified | ApplicationError):
            return
        if isinstance(error, ConnectorUnavailable):
            raise ApplicationError(str(error), type="SystemUnavailable", non_retryable=True) from None
        if isinstance(error, ConnectorRefused):  # a constraint: retrying cannot fix it
            raise ApplicationError(str(error), type="ChangeRefused", non_retryable=True) from None
        if isinstance(error, ConnectorMisconfigured | ValueError):
            raise ApplicationError(
                f"{self.system}: {type(error).__name__}: {error}",
                type="SystemMisconfigured",
                non_retryable=True,
            ) from None
        if isinstance(error, ConnectorError):
            raise ApplicationError(str(error), type="SystemError") from None


def _planned(body: dict[str, Any], system: str) -> bool:
    return any(system in body.get(part, {}) for part in ("erasure", "rectification", "marks"))


def _checked(entities: dict[str, tuple[int, int]]) -> int:
    return sum(total for _, total in entities.values())


def _subject(data: dict[str, Any]) -> Subject:
    return Subject(dict(data["identifiers"]), list(data["person_keys"]))


def _rectification(data: dict[str, Any]) -> Rectification:
    return Rectification(
        _subject(data["subject"]),
        [FieldChange(c["entity"], c["field"], c["value"]) for c in data["changes"]],
        list(data.get("exempt", [])),
    )


def _mark(data: dict[str, Any]) -> MarkPlan:
    return MarkPlan(data["system"], _subject(data["subject"]), Marker(data["marker"]), list(data["exempt"]))


class _Harvest:
    """What the plan needs from the search's records besides counting them: the accepted
    person-records' keys (SQL), identifier kinds another system needs (the customer number the
    recordings are filed by), and every identifier of a distinctive kind the person's records
    hold (for the suppression list). Values stay in the encrypted plan, never in the result."""

    def __init__(self, datamap: DataMap, identifiers: dict[str, str]) -> None:
        self.datamap = datamap
        self.identifiers = {k: v for k, v in identifiers.items() if v.strip()}
        self.person_keys: dict[str, list[str]] = {}
        self.held: dict[str, set[str]] = {}  # kind -> values in the person's identity records
        self.positions: dict[tuple[str, str], int] = {}

    def see(self, system: str, entity_name: str, record: dict[str, Any]) -> None:
        config = self.datamap.system(system)
        entity = config.entities[entity_name]
        position = self.positions[(system, entity_name)] = self.positions.get((system, entity_name), 0) + 1
        if not entity.identity:
            return
        if config.connector == "sql":
            key = record_key(entity, record, position)
            if key.startswith(f"{entity.name}:"):
                keys = self.person_keys.setdefault(system, [])
                if key not in keys:
                    keys.append(key)
            for column, kind in entity.identity.items():
                value = record.get(column)
                if value is not None and str(value).strip():
                    self.held.setdefault(kind.value, set()).add(str(value).strip())

    def subjects(self) -> dict[str, Subject]:
        needed = {kind for system in self.datamap.systems.values() for kind in system.needs()}
        identifiers = dict(self.identifiers)
        for kind in sorted(needed - set(identifiers)):
            values = self.held.get(kind, set())
            if len(values) == 1:  # two accounts disagreeing: no guess
                identifiers[kind] = next(iter(values))
        return {
            name: Subject(dict(identifiers), list(self.person_keys.get(name, [])))
            for name in self.datamap.systems
        }

    def suppressible(self) -> dict[str, list[str]]:
        kinds = {kind.value for kind in DISTINCTIVE}
        out: dict[str, set[str]] = {}
        for kind, value in self.identifiers.items():
            if kind in kinds:
                out.setdefault(kind, set()).add(value)
        for kind, values in self.held.items():
            if kind in kinds:
                out.setdefault(kind, set()).update(values)
        return {kind: sorted(values) for kind, values in sorted(out.items())}


def _tap(
    harvest: _Harvest, records: Iterator[tuple[str, str, dict[str, Any]]]
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for count, (system, entity, record) in enumerate(records, start=1):
        harvest.see(system, entity, record)
        if count % HEARTBEAT_EVERY == 0:
            _heartbeat()  # a subject with 100,000 records takes a while to read
        yield system, entity, record


def _rectification_text(
    datamap: DataMap,
    plans: list[RectificationPlan],
    expected: dict[str, dict[str, int]],
    untold: set[tuple[str, str]] | None = None,
) -> str:
    """What was corrected, per entity, in the data map's labels. ``untold`` (the letter): records
    an exemption the person must not hear of leaves alone are not counted as "left alone"."""
    if not plans:
        return "Nothing to correct in the systems searched.\n"
    out = ["What we corrected:"]
    for plan in plans:
        config = datamap.system(plan.system)
        by_entity: dict[str, list[str]] = {}
        for change in plan.rectification.changes:
            by_entity.setdefault(change.entity, []).append(change.field.replace("_", " "))
        for entity, names in by_entity.items():
            n = expected.get(plan.system, {}).get(entity, 0)
            out.append(f"- {_label(config, entity)}: {', '.join(names)} ({plural(n, 'record')})")
        out += _left_alone(plan.system, plan.rectification.exempt, untold)
    return "\n".join(out) + "\n"


def _label(config: SystemConfig, entity: str) -> str:
    found = config.entities.get(entity)
    return f"{found.label if found else words(entity)} ({config.label})"


def _left_alone(system: str, exempt: list[str], untold: set[tuple[str, str]] | None) -> list[str]:
    told = [key for key in exempt if untold is None or (system, key) not in untold]
    if not told:
        return []
    return [f"- {plural(len(told), 'record')} left as they are: an exemption applies"]


def _elsewhere_text(datamap: DataMap, systems: list[SystemResult], request_type: RequestType) -> str:
    """What the letter says of the systems no connector changes, from the search as recorded:
    a system searched by hand that held the person's data is changed there by its owner (the
    case waits for them before it answers); one that held nothing, or was not searched, is
    said to be so. Never "searched by hand, and erased there" when nothing was held."""
    done = {RequestType.ERASURE: "erased", RequestType.RECTIFICATION: "corrected"}.get(
        request_type, "changed"
    )
    lines = []
    for result in systems:
        config = datamap.systems.get(result.system)
        label = config.label if config is not None else words(result.system)
        if config is not None and config.manual is not None:
            if result.status == "found":
                lines.append(f"- {label}: searched by hand; {done} there by the team that holds it")
            elif result.status == "none":
                lines.append(f"- {label}: searched by hand; nothing held about you")
        if result.status in ("skipped", "failed"):
            lines.append(f"- {label}: not searched")
    if not lines:
        return ""
    return "\nElsewhere:\n" + "\n".join(lines) + "\n"


_MARKER_WORDS = {
    Marker.RESTRICTION: "marked as restricted: kept, but not otherwise used",
    Marker.OBJECTION: "marked so that we no longer use them for direct marketing",
    Marker.OPT_OUT: "marked so that we no longer sell or share them",
    Marker.LIMIT_USE: "marked so that sensitive information is used only as strictly necessary",
}


def _marks_text(
    datamap: DataMap,
    plans: list[MarkPlan],
    marker: Marker,
    expected: dict[str, dict[str, int]],
    untold: set[tuple[str, str]] | None = None,
) -> str:
    if not plans:
        return "None of the systems searched holds records this request changes.\n"
    out = [f"Your records, {_MARKER_WORDS[marker]}:"]
    for plan in plans:
        config = datamap.system(plan.system)
        for entity in config.entities.values():
            if entity.marker(marker) is None and not (
                config.connector == "s3" and marker is Marker.RESTRICTION
            ):
                continue
            n = expected.get(plan.system, {}).get(entity.name, 0)
            if n:
                out.append(f"- {_label(config, entity.name)}: {plural(n, 'record')}")
        out += _left_alone(plan.system, plan.exempt, untold)
    return "\n".join(out) + "\n"


__all__ = [
    "CHANGE_TYPES",
    "ChangeActivities",
    "ChangeApplied",
    "ChangeInput",
    "ChangePlan",
    "ChangePlanInput",
    "ChangeVerified",
    "Correction",
    "SuppressionInput",
    "SuppressionRecorded",
    "SystemChangePlan",
]
