"""Search every connected system for the data subject's records.

The workflow fans out one ``search_system`` activity per system in the data map. Records stream
from the connector straight into the encrypted blob store; the workflow keeps only the reference
and the counts, so history stays small whatever the person holds.
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

from dataclasses import dataclass

from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.base import ConnectorMisconfigured, ConnectorUnavailable, connector_for
from dsar.blobs import BlobStore
from dsar.datamap import DataMap
from dsar.identity import strongest_match
from dsar.logs import bind_case, get_logger
from dsar.model import SystemResult

log = get_logger("dsar.activities.search")


@dataclass
class PlanInput:
    reference: str


@dataclass
class SearchPlan:
    systems: list[str]


@dataclass
class SearchInput:
    reference: str
    system: str
    identifiers: dict[str, str]


class SearchActivities:
    def __init__(self, datamap: DataMap, blobs: BlobStore) -> None:
        self.datamap = datamap
        self.blobs = blobs

    @activity.defn(name="plan_search")
    def plan_search(self, inp: PlanInput) -> SearchPlan:
        """Which systems to search: every system in the data map, in a stable order."""
        return SearchPlan(systems=sorted(self.datamap.systems))

    @activity.defn(name="search_system")
    def search_system(self, inp: SearchInput) -> SystemResult:
        with bind_case(inp.reference):
            result = self._search(inp)
            log.info("system searched", system=result.system, status=result.status, records=result.records)
            return result

    def _search(self, inp: SearchInput) -> SystemResult:
        config = self.datamap.systems.get(inp.system)
        if config is None:
            raise ApplicationError(
                f"system {inp.system!r} is not in the data map", type="UnknownSystem", non_retryable=True
            )
        connector = connector_for(config, heartbeat=activity.heartbeat)
        try:
            located = connector.locate(inp.identifiers)
            if not located.person_keys:
                return SystemResult(system=inp.system, status="none", detail="no matching records")
            match = strongest_match(located.matches)
            if not match.keys:
                return SystemResult(system=inp.system, status="none", detail=match.reason)
            with self.blobs.open_writer(inp.reference, f"{inp.system}.jsonl") as sink:
                collected = connector.collect(inp.identifiers, sink, person_keys=match.keys)
            ref = sink.ref
        except ConnectorUnavailable as e:
            # Retryable: the workflow's retry policy backs off; the message names only the system.
            raise ApplicationError(str(e), type="SystemUnavailable") from None
        except (ConnectorMisconfigured, ValueError) as e:
            # Retrying cannot fix a data map that does not fit the database.
            raise ApplicationError(
                f"{inp.system}: {type(e).__name__}", type="SystemMisconfigured", non_retryable=True
            ) from None
        per_entity = ", ".join(f"{k} {v}" for k, v in sorted(collected.entities.items()))
        return SystemResult(
            system=inp.system,
            status="found",
            records=collected.records,
            blob_ref=ref,
            detail=f"{match.reason}; {per_entity}",
        )
