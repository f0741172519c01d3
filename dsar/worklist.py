"""The privacy team's work queue: which cases are open, whose they are, and what is at risk.

The register (``dsar.store``) holds each case's shape and deadlines; this module adds who a case
is assigned to, and reads the register the way the console's queue shows it: soonest deadline
first, filtered by stage, regime, request type, channel, whom the case waits for, assignee and
overdue, with counts per stage. Assignment is written with an audit entry in the case's
hash-chained trail, in the same transaction, so the trail says who took a case and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlmodel import Field, Session, SQLModel, col

from dsar.model import OPEN_STAGES, Stage
from dsar.store import (
    _CASE_FIELDS,
    AuditSpec,
    Case,
    CaseNotFound,
    CaseRow,
    CaseStore,
    UTCDateTime,
    _append_chain,
    _as_utc,
    _lock_case,
    canonical_json,
    create_tables,
)

#: Whom a case can be waiting for, as the register's ``waiting_for`` starts or reads.
WAITING_FOR: dict[str, str] = {
    "operator": "an operator",
    "person": "the person",
    "reviewer": "a reviewer",
    "owner": "a system's owner (search by hand)",
    "system": "a system that is unreachable",
    "nobody": "nobody (the engine is working)",
}
#: The most rows a page of the queue holds.
MAX_PAGE = 200


class CaseAssignment(SQLModel, table=True):
    """Who works a case now. One row per assigned case; the history is in the audit trail."""

    __tablename__ = "case_assignment"

    reference: str = Field(primary_key=True)
    assignee: str = Field(index=True)
    assigned_by: str
    assigned_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows. Empty values mean "any"."""

    stage: str = ""
    regime: str = ""
    request_type: str = ""
    channel: str = ""
    waiting: str = ""  # a key of WAITING_FOR
    assignee: str = ""  # a staff member's name, or "-" for unassigned
    overdue: bool = False
    open_only: bool = True  # hide cases that have ended (responded, closed, ...)
    reference: str = ""  # all or part of a reference


@dataclass(frozen=True)
class QueueRow:
    case: CaseRow
    assignee: str | None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int  # rows matching the filter, over all pages
    counts: dict[str, int]  # per stage, over the open cases (the filter's other parts apply)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Worklist:
    """Queue reads and assignment, on the register's database."""

    def __init__(self, store: CaseStore) -> None:
        self.store = store
        create_tables(store.engine, [CaseAssignment.__table__])  # type: ignore[attr-defined]

    def _conditions(self, f: QueueFilter, today: date, with_stage: bool = True) -> list[Any]:
        where: list[Any] = []
        if with_stage and f.stage:
            where.append(col(Case.stage) == Stage(f.stage).value)
        if f.open_only and not f.stage:
            where.append(col(Case.stage).in_([s.value for s in OPEN_STAGES]))
        for column, value in (
            (Case.regime, f.regime),
            (Case.request_type, f.request_type),
            (Case.channel, f.channel),
        ):
            if value:
                where.append(col(column) == value)
        if f.waiting:
            w = col(Case.waiting_for)
            if f.waiting == "nobody":
                where.append(w.is_(None))
            elif f.waiting == "owner":
                where.append(w.like("%search by hand:%"))
            elif f.waiting == "system":
                where.append(w.like("%unreachable:%"))
            elif f.waiting in WAITING_FOR:
                where.append(w.like(f"{f.waiting}:%"))
            else:
                raise ValueError(f"waiting: one of {', '.join(WAITING_FOR)}")
        if f.assignee == "-":
            where.append(col(CaseAssignment.assignee).is_(None))
        elif f.assignee:
            where.append(col(CaseAssignment.assignee) == f.assignee)
        if f.overdue:
            where.append(and_(col(Case.due) < today, col(Case.stage).in_([s.value for s in OPEN_STAGES])))
        if f.reference:
            where.append(col(Case.reference).like(f"%{_like_escape(f.reference.upper())}%", escape="\\"))
        return where

    def page(self, f: QueueFilter, today: date, limit: int = 50, offset: int = 0) -> QueuePage:
        """One page of the queue, soonest deadline first (no deadline last), then by reference."""
        limit = max(1, min(limit, MAX_PAGE))
        offset = max(0, offset)
        joined = select(
            *(col(getattr(Case, c)) for c in _CASE_FIELDS), col(CaseAssignment.assignee)
        ).outerjoin(CaseAssignment, col(CaseAssignment.reference) == col(Case.reference))
        where = self._conditions(f, today)
        query = (
            joined.where(*where)
            .order_by(col(Case.due).is_(None), col(Case.due), col(Case.reference))
            .limit(limit)
            .offset(offset)
        )
        count = (
            select(func.count())
            .select_from(Case)
            .outerjoin(CaseAssignment, col(CaseAssignment.reference) == col(Case.reference))
            .where(*where)
        )
        by_stage = (
            select(col(Case.stage), func.count())
            .select_from(Case)
            .outerjoin(CaseAssignment, col(CaseAssignment.reference) == col(Case.reference))
            .where(*self._conditions(f, today, with_stage=False))
            .group_by(col(Case.stage))
        )
        with self.store._read() as session:
            rows = [QueueRow(CaseRow(*r[:-1]), r[-1]) for r in session.execute(query).all()]
            total = int(session.execute(count).scalar_one())
            counts = {stage: int(n) for stage, n in session.execute(by_stage).all()}
        return QueuePage(rows=rows, total=total, counts=counts)

    def assignee(self, reference: str) -> str | None:
        with Session(self.store.engine) as session:
            row = session.get(CaseAssignment, reference)
            return row.assignee if row is not None else None

    def assign(self, references: list[str], assignee: str | None, actor: str, at: datetime) -> list[str]:
        """Give cases to ``assignee`` (None: unassign), each with a ``case:assigned`` audit entry.
        Returns the references that changed (assigning a case to whoever has it changes nothing)."""
        changed = []
        when = _as_utc(at)
        for reference in references:
            with self.store._write() as session:
                _lock_case(session, reference)
                current = session.get(CaseAssignment, reference)
                if (current.assignee if current else None) == assignee:
                    continue
                if assignee is None:
                    assert current is not None
                    session.delete(current)
                elif current is None:
                    session.add(
                        CaseAssignment(
                            reference=reference, assignee=assignee, assigned_by=actor, assigned_at=when
                        )
                    )
                else:
                    current.assignee, current.assigned_by, current.assigned_at = assignee, actor, when
                    session.add(current)
                facts = {"assignee": assignee or "nobody"}
                spec = AuditSpec("case:assigned" if assignee else "case:unassigned", actor, details=facts)
                _append_chain(session, reference, [(spec, facts, canonical_json(facts))], when)
                session.commit()
                changed.append(reference)
        return changed


def require_case(store: CaseStore, reference: str) -> CaseRow:
    row = store.get(reference)
    if row is None:
        raise CaseNotFound(f"no case {reference!r} in the register")
    return row
