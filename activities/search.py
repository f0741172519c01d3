"""Search every connected system for the data subject's records.

The workflow fans out one ``search_system`` activity per system in the data map, each on the
system's own task queue, so that a worker's concurrency cap for that queue bounds how hard a
burst of cases can hit a production database. Records stream from the connector straight into
the encrypted blob store; the workflow keeps only the reference and the counts, so history stays
small whatever the person holds.

Systems are searched in two waves. Most systems find the person from what they gave us; a few
are keyed by something people rarely know (call recordings filed under the customer number).
Those wait for the first wave and are searched with the identifiers the first wave *learned*
from the person's own records (only the kinds the second wave needs, and only when the first
wave agrees on one value).
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

import json
from dataclasses import dataclass, field

from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.base import (
    ConnectorError,
    ConnectorMisconfigured,
    ConnectorRefused,
    ConnectorUnavailable,
    Sink,
    connector_for,
)
from dsar.blobs import BlobStore
from dsar.datamap import DataMap, SystemConfig
from dsar.identity import record_matches, strongest_match
from dsar.logs import bind_case, get_logger
from dsar.metrics import connector_call
from dsar.model import SystemResult

log = get_logger("dsar.activities.search")


@dataclass
class PlanInput:
    reference: str
    #: identifier kinds the person gave (kinds only: the plan needs no values)
    kinds: list[str] = field(default_factory=list)
    #: the request type ("": every system). An opt-out or a limit asks nobody to search by
    #: hand: it changes what we do with data we sell, share or use, never CCTV footage or paper
    request_type: str = ""


#: Request types whose fulfilment never reaches a system searched by hand (markers only).
_NO_SEARCH_BY_HAND = frozenset({"opt_out_sale_sharing", "limit_sensitive"})


@dataclass
class ManualSearch:
    """A system a person searches: who is asked and how they are chased."""

    system: str
    owner: str
    instructions: str
    remind_every_days: int
    escalate_after_days: int


@dataclass
class SearchPlan:
    #: searched at once, from what the person gave
    first: list[str]
    #: searched after the first wave, with what it learned (key templates need it)
    second: list[str] = field(default_factory=list)
    #: kinds the second wave needs that the person did not give
    learn: list[str] = field(default_factory=list)
    manual: list[ManualSearch] = field(default_factory=list)

    @property
    def systems(self) -> list[str]:
        return [*self.first, *self.second, *(m.system for m in self.manual)]


@dataclass
class SearchInput:
    reference: str
    system: str
    identifiers: dict[str, str]
    #: identifier kinds to read from the person's own records for the second wave
    learn: list[str] = field(default_factory=list)


@dataclass
class SearchOutcome:
    result: SystemResult
    #: kind -> value read from the person's records (only kinds asked for in ``learn``)
    learned: dict[str, str] = field(default_factory=dict)


def second_wave(identifiers: dict[str, str], learned: list[dict[str, str]]) -> dict[str, str]:
    """The identifiers the second wave searches with: what the person gave, and each kind the
    first wave's systems learned from the person's own records, when they all agree (systems
    that disagree: no guess)."""
    values: dict[str, set[str]] = {}
    for outcome in learned:
        for kind, value in outcome.items():
            values.setdefault(kind, set()).add(value)
    wave = dict(identifiers)
    for kind, found in sorted(values.items()):
        if kind not in wave and len(found) == 1:
            wave[kind] = next(iter(found))
    return wave


def system_task_queue(base: str, system: str) -> str:
    """The task queue on which one system's searches run: ``<base>-system-<name>``."""
    return f"{base}-system-{system}"


class SearchActivities:
    def __init__(self, datamap: DataMap, blobs: BlobStore) -> None:
        self.datamap = datamap
        self.blobs = blobs

    @activity.defn(name="plan_search")
    def plan_search(self, inp: PlanInput) -> SearchPlan:
        """Which systems to search, in which wave, and which are searched by a person."""
        given = set(inp.kinds)
        plan = SearchPlan(first=[])
        learn: set[str] = set()
        by_hand = inp.request_type not in _NO_SEARCH_BY_HAND
        for name in sorted(self.datamap.systems):
            system = self.datamap.systems[name]
            if system.manual is not None:
                if not by_hand:
                    continue
                task = system.manual
                plan.manual.append(
                    ManualSearch(
                        name, task.owner, task.instructions, task.remind_every_days, task.escalate_after_days
                    )
                )
            elif system.needs() - given:
                plan.second.append(name)
                learn |= system.needs() - given
            else:
                plan.first.append(name)
        plan.learn = sorted(learn)
        return plan

    @activity.defn(name="search_system")
    def search_system(self, inp: SearchInput) -> SearchOutcome:
        with bind_case(inp.reference):
            with connector_call(inp.system, "search"):
                outcome = self._search(inp)
            result = outcome.result
            log.info("system searched", system=result.system, status=result.status, records=result.records)
            return outcome

    def _search(self, inp: SearchInput) -> SearchOutcome:
        config = self.datamap.systems.get(inp.system)
        if config is None or config.manual is not None:
            raise ApplicationError(
                f"system {inp.system!r} is not searchable by a connector",
                type="UnknownSystem",
                non_retryable=True,
            )
        connector = connector_for(config, heartbeat=activity.heartbeat)
        try:
            located = connector.locate(inp.identifiers)
            if not located.person_keys:
                return SearchOutcome(SystemResult(inp.system, "none", detail="no matching records"))
            match = (record_matches if located.per_record else strongest_match)(located.matches)
            if match.ambiguous:
                # Records of two people and no way to tell which is the requester's: "we hold
                # nothing" would be untrue and either copy a guess. A person decides (an operator
                # task: retry once the case has more identifiers, or leave the system out).
                raise ApplicationError(
                    f"{inp.system}: {match.reason}", type="SearchAmbiguous", non_retryable=True
                )
            if not match.keys:
                return SearchOutcome(SystemResult(inp.system, "none", detail=match.reason))
            with self.blobs.open_writer(inp.reference, f"{inp.system}.jsonl") as writer:
                sink = _Learner(writer, config, inp.learn)
                collected = connector.collect(inp.identifiers, sink, person_keys=match.keys)
            ref = writer.ref
        except ConnectorUnavailable as e:
            # The workflow backs off and tries again, showing "unreachable since ..., attempt N"
            # on the case; the message names only the system.
            raise ApplicationError(str(e), type="SystemUnavailable", non_retryable=True) from None
        except (ConnectorMisconfigured, ValueError) as e:
            # Retrying cannot fix a data map that does not fit the system.
            raise ApplicationError(
                f"{inp.system}: {type(e).__name__}", type="SystemMisconfigured", non_retryable=True
            ) from None
        except ConnectorRefused as e:  # a query the database refuses for good
            raise ApplicationError(str(e), type="SystemRefused", non_retryable=True) from None
        except ConnectorError as e:
            raise ApplicationError(str(e), type="SystemError") from None
        per_entity = ", ".join(f"{k} {v}" for k, v in sorted(collected.entities.items()))
        return SearchOutcome(
            SystemResult(
                system=inp.system,
                status="found",
                records=collected.records,
                blob_ref=ref,
                detail=f"{match.reason}; {per_entity}",
            ),
            learned=sink.learned(),
        )


class _Learner:
    """A sink that passes records through and notes, from the person's identity records, the
    values of the identifier kinds another system needs (e.g. the customer number)."""

    def __init__(self, sink: Sink, system: SystemConfig, kinds: list[str]) -> None:
        self._sink = sink
        self._columns: dict[str, dict[str, str]] = {}  # entity -> column -> kind
        for entity in system.identity_entities():
            wanted: dict[str, str] = {
                column: str(kind.value) for column, kind in entity.identity.items() if kind.value in kinds
            }
            if wanted:
                self._columns[entity.name] = wanted
        self._prefixes = tuple(
            json.dumps({"entity": name}, separators=(",", ":"))[:-1].encode() for name in self._columns
        )
        self._seen: dict[str, set[str]] = {}

    def write(self, data: bytes, /) -> int:
        if self._prefixes and data.startswith(self._prefixes):
            line = json.loads(data)
            for column, kind in self._columns.get(line["entity"], {}).items():
                value = line["record"].get(column)
                if value is not None and str(value).strip():
                    self._seen.setdefault(kind, set()).add(str(value).strip())
        return self._sink.write(data)

    def learned(self) -> dict[str, str]:
        """One value per kind; a kind with several values (two accounts) is not guessed."""
        return {kind: next(iter(values)) for kind, values in self._seen.items() if len(values) == 1}
