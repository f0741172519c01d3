"""Keep the case register and the audit trail in step with the workflow.

One activity per transition writes both, so that the register row a person sees in a list and
the hash-chained trail a regulator reads can never disagree. Every audit entry carries a key
derived from the workflow's own deterministic counter: a retried activity writes nothing twice.
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

from dataclasses import dataclass, field, replace
from datetime import date, datetime

from temporalio import activity

from dsar.blobs import BlobStore
from dsar.logs import bind_case, get_logger
from dsar.metrics import observe_stages_left
from dsar.store import AuditSpec, CaseStore

log = get_logger("dsar.activities.audit")


@dataclass
class AuditEntry:
    key: str  # unique per case event, e.g. "DSR-2026-000001/7"
    action: str  # "stage:verifying", "decision:extend", "letter:acknowledgement", ...
    actor: str = "system"
    reason: str = ""
    details: dict[str, str] = field(default_factory=dict)  # non-personal facts only


@dataclass
class CaseRecord:
    reference: str
    at: datetime
    stage: str
    due: str | None = None
    acknowledgement_due: str | None = None
    extended: bool = False
    paused: bool = False
    breached: bool = False
    escalated: bool = False
    waiting_for: str | None = None
    outcome: str | None = None
    closed: bool = False
    entries: list[AuditEntry] = field(default_factory=list)
    #: set when triage classified the case (the register opened it with a provisional one)
    request_type: str | None = None
    regime: str | None = None

    def state(self) -> tuple[object, ...]:
        """The row's content, without the time and the entries: equal states need no write."""
        return (
            self.stage,
            self.due,
            self.acknowledgement_due,
            self.extended,
            self.paused,
            self.breached,
            self.escalated,
            self.waiting_for,
            self.outcome,
            self.closed,
            self.request_type,
            self.regime,
        )


def _text(value: str) -> str:
    """Text every register can store: the input gate keeps NUL and unpaired surrogates out of
    cases, but a register write retried for ever on one (PostgreSQL refuses NUL) would leave the
    case silent, so any that got in another way are replaced, visibly, by U+FFFD."""
    if "\x00" not in value and not any("\ud800" <= ch <= "\udfff" for ch in value):
        return value
    return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in value)


def _storable(rec: CaseRecord) -> CaseRecord:
    entries = [
        AuditEntry(
            e.key,
            _text(e.action),
            _text(e.actor),
            _text(e.reason),
            {_text(k): _text(v) for k, v in e.details.items()},
        )
        for e in rec.entries
    ]
    return replace(
        rec,
        entries=entries,
        waiting_for=None if rec.waiting_for is None else _text(rec.waiting_for),
        outcome=None if rec.outcome is None else _text(rec.outcome),
    )


@dataclass
class PurgeResult:
    blobs: int  # objects deleted from the blob store
    events: int  # audit events whose words were removed (hashes kept)


class AuditActivities:
    def __init__(self, store: CaseStore, blobs: BlobStore | None = None) -> None:
        self.store = store
        self.blobs = blobs

    @activity.defn(name="purge_case")
    def purge_case(self, reference: str) -> PurgeResult:
        """The case file's retention ended: delete its blobs (records found, uploads, the package,
        the review files) and the words in its audit trail. Idempotent: a retry deletes nothing
        more. The workflow's own history goes with the namespace's retention once it completes."""
        with bind_case(reference):
            deleted = self.blobs.delete_case(reference) if self.blobs is not None else 0
            events = self.store.purge_case(reference)
            log.info("case purged", reference=reference, count=deleted)
            return PurgeResult(blobs=deleted, events=events)

    @activity.defn(name="record_case")
    def record_case(self, rec: CaseRecord) -> None:
        with bind_case(rec.reference):
            self._record(rec)
            log.info("case recorded", stage=rec.stage, count=len(rec.entries))

    def _record(self, rec: CaseRecord) -> None:
        rec = _storable(rec)
        stages = [e.action for e in rec.entries if e.action.startswith("stage:")]
        observe_stages_left(self.store, rec.reference, stages, rec.at)
        classified = (
            {"request_type": rec.request_type, "regime": rec.regime}
            if rec.request_type and rec.regime
            else {}
        )
        self.store.record(
            rec.reference,
            [AuditSpec(e.action, e.actor, e.reason, dict(e.details), event_key=e.key) for e in rec.entries],
            at=rec.at,
            stage=rec.stage,
            due=date.fromisoformat(rec.due) if rec.due else None,
            acknowledgement_due=(
                date.fromisoformat(rec.acknowledgement_due) if rec.acknowledgement_due else None
            ),
            extended=rec.extended,
            paused=rec.paused,
            breached=rec.breached,
            escalated=rec.escalated,
            waiting_for=rec.waiting_for,
            outcome=rec.outcome,
            closed_at=rec.at if rec.closed else None,
            **classified,
        )
