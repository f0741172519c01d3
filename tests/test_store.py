"""The case register and the hash-chained audit log, on SQLite and on a real PostgreSQL.

PostgreSQL is not optional here: if the server at 127.0.0.1:5432 is unreachable the
PostgreSQL tests fail (CI runs one), because row locking and unique-violation races behave
differently from SQLite and are exactly what these tests are for.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from sqlalchemy import text

from dsar.audit_cli import verify
from dsar.model import Channel, Regime, RequestType, Stage
from dsar.store import (
    GENESIS_HASH,
    AuditEvent,
    CaseNotFound,
    CaseRow,
    CaseStore,
    NewCase,
    canonical_json,
    event_hash,
)

AUDIT_TABLE = AuditEvent.__tablename__
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Fixtures: one fresh database per test, on each backend


@pytest.fixture
def store(database_url: str) -> Iterator[CaseStore]:
    s = CaseStore(database_url)
    yield s
    s.close()


def new_case(
    key: str | None = None,
    received_at: datetime = datetime(2024, 5, 2, 9, 30, tzinfo=UTC),
    request_type: RequestType = RequestType.ACCESS,
) -> NewCase:
    return NewCase(
        request_type=request_type,
        regime=Regime.UK_GDPR,
        channel=Channel.WEB_FORM,
        received_at=received_at,
        idempotency_key=key,
    )


def run_together(n: int, fn: Callable[[int], T]) -> list[T]:
    """Run ``fn(i)`` in ``n`` threads released at the same instant."""
    barrier = threading.Barrier(n)

    def task(i: int) -> T:
        barrier.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(task, range(n)))


def tamper(store: CaseStore, sql: str, **params: Any) -> None:
    """Edit the audit table behind the API's back, as an insider with database access could."""
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


def case_with_events(store: CaseStore, n: int) -> str:
    case, _ = store.open_case(new_case())
    for i in range(1, n + 1):
        store.append_audit(
            case.reference,
            action="stage_changed",
            actor="system",
            reason=f"step {i}",
            details={"step": i, "stage": "searching"},
        )
    return case.reference


# --------------------------------------------------------------------------------------------
# The register


def test_processes_starting_together_share_one_register(database_url: str) -> None:
    """The worker and the HTTP app create the register's tables when they start, often at the
    same moment: the one that loses the race must start all the same."""
    for _ in range(5):
        stores = run_together(4, lambda i: CaseStore(database_url))
        case, _ = stores[0].open_case(new_case())
        assert all(s.get(case.reference) is not None for s in stores)
        with stores[0].engine.begin() as conn:
            conn.execute(text("DROP TABLE audit_event"))
            conn.execute(text("DROP TABLE case_register"))
        for s in stores:
            s.close()


def test_reference_format_uses_id_and_year_of_receipt(store: CaseStore) -> None:
    first, created = store.open_case(new_case(received_at=datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC)))
    second, _ = store.open_case(new_case(received_at=datetime(2024, 1, 1, 0, 0, tzinfo=UTC)))
    assert created
    assert first.reference == f"DSR-2023-{first.id:06d}"
    assert second.reference == f"DSR-2024-{second.id:06d}"
    assert re.fullmatch(r"DSR-\d{4}-\d{6}", first.reference)
    refs = [store.open_case(new_case())[0].reference for _ in range(5)]
    assert len({first.reference, second.reference, *refs}) == 7


def test_received_at_is_stored_in_utc_and_returned_aware(store: CaseStore) -> None:
    plus_two = datetime(2024, 1, 1, 3, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    case, _ = store.open_case(new_case(received_at=plus_two))
    got = store.get(case.reference)
    assert got is not None
    assert got.received_at == datetime(2024, 1, 1, 1, 30, 0, 123456, tzinfo=UTC)
    assert got.received_at.tzinfo is not None and got.received_at.utcoffset() == timedelta(0)
    assert got.created_at.tzinfo is not None


def test_naive_received_at_is_refused(store: CaseStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.open_case(new_case(received_at=datetime(2024, 1, 1)))


def test_new_case_starts_received_with_no_deadlines_or_flags(store: CaseStore) -> None:
    case, _ = store.open_case(new_case(request_type=RequestType.ERASURE))
    assert (case.stage, case.request_type, case.regime, case.channel) == (
        "received",
        "erasure",
        "UK_GDPR",
        "web_form",
    )
    assert case.due is None and case.acknowledgement_due is None and case.closed_at is None
    assert not (case.extended or case.paused or case.breached or case.escalated)


def test_open_case_is_idempotent_by_key(store: CaseStore) -> None:
    first, created = store.open_case(new_case("form-123"))
    again, created_again = store.open_case(new_case("form-123"))
    assert created and not created_again
    assert again == first
    assert store.get_by_key("form-123") == first
    assert store.get_by_key("never-used") is None


def test_open_case_without_key_always_creates(store: CaseStore) -> None:
    a, a_created = store.open_case(new_case())
    b, b_created = store.open_case(new_case())
    assert a_created and b_created and a.reference != b.reference


def test_concurrent_open_case_with_one_key_opens_one_case(store: CaseStore) -> None:
    results = run_together(12, lambda _i: store.open_case(new_case("email-msg-42")))
    assert len({row.reference for row, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(store.queue()) == 1


def test_get_unknown_reference_is_none(store: CaseStore) -> None:
    assert store.get("DSR-2024-999999") is None


def test_sync_case_updates_listed_fields_and_updated_at(store: CaseStore) -> None:
    case, _ = store.open_case(new_case())
    closed = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    row = store.sync_case(
        case.reference,
        stage=Stage.RESPONDED,
        due="2024-06-03",  # the workflow carries deadlines as ISO strings
        acknowledgement_due=date(2024, 5, 9),
        extended=True,
        paused=False,
        breached=False,
        escalated=True,
        waiting_for="reviewer",
        outcome="disclosed",
        closed_at=closed,
    )
    assert row.stage == "responded"
    assert row.due == date(2024, 6, 3) and row.acknowledgement_due == date(2024, 5, 9)
    assert row.extended and row.escalated and not row.paused
    assert row.waiting_for == "reviewer" and row.outcome == "disclosed"
    assert row.closed_at == closed
    assert row.updated_at >= case.updated_at
    assert store.get(case.reference) == row

    cleared = store.sync_case(case.reference, waiting_for=None, due=None)
    assert cleared.waiting_for is None and cleared.due is None and cleared.stage == "responded"


def test_sync_case_refuses_unknown_fields_values_and_references(store: CaseStore) -> None:
    case, _ = store.open_case(new_case())
    with pytest.raises(ValueError, match="email"):
        store.sync_case(case.reference, email="a@example.com")  # personal data has no column
    with pytest.raises(ValueError):
        store.sync_case(case.reference, stage="teleported")
    with pytest.raises(ValueError):
        store.sync_case(case.reference, extended="yes")
    with pytest.raises(CaseNotFound):
        store.sync_case("DSR-2024-999999", stage="closed")
    assert issubclass(CaseNotFound, LookupError)


def test_case_row_to_dict_is_json_friendly(store: CaseStore) -> None:
    case, _ = store.open_case(new_case("k"))
    row = store.sync_case(case.reference, due=date(2024, 6, 3))
    data = json.loads(json.dumps(row.to_dict()))
    assert data["reference"] == case.reference
    assert data["due"] == "2024-06-03"
    assert datetime.fromisoformat(data["received_at"]) == case.received_at
    assert set(data) == set(CaseRow.__dataclass_fields__)


def test_queue_orders_by_due_with_no_due_last_then_reference(store: CaseStore) -> None:
    refs = [store.open_case(new_case())[0].reference for _ in range(5)]
    store.sync_case(refs[0], due=date(2024, 6, 10))
    store.sync_case(refs[1], due=date(2024, 6, 1))
    store.sync_case(refs[2], due=date(2024, 6, 10))
    # refs[3] and refs[4] have no due date
    assert [c.reference for c in store.queue()] == [refs[1], refs[0], refs[2], refs[3], refs[4]]


def test_queue_filters_and_pages(store: CaseStore) -> None:
    refs = [store.open_case(new_case())[0].reference for _ in range(4)]
    store.sync_case(refs[0], stage="searching", due=date(2024, 6, 1))
    store.sync_case(refs[1], stage="searching", due=date(2024, 6, 20))
    store.sync_case(refs[2], stage="reviewing", due=date(2024, 6, 2))
    assert [c.reference for c in store.queue(stage="searching")] == [refs[0], refs[1]]
    assert [c.reference for c in store.queue(stage=Stage.RECEIVED)] == [refs[3]]
    assert [c.reference for c in store.queue(due_before=date(2024, 6, 2))] == [refs[0]]
    assert [c.reference for c in store.queue(due_before=date(2024, 6, 3))] == [refs[0], refs[2]]
    assert [c.reference for c in store.queue(stage="searching", due_before=date(2024, 6, 30))] == [
        refs[0],
        refs[1],
    ]
    assert [c.reference for c in store.queue(limit=2)] == [refs[0], refs[2]]
    assert [c.reference for c in store.queue(limit=2, offset=2)] == [refs[1], refs[3]]
    assert store.queue(stage="closed") == []


# --------------------------------------------------------------------------------------------
# The audit chain


def test_append_builds_a_chain_from_genesis(store: CaseStore) -> None:
    case, _ = store.open_case(new_case())
    at = datetime(2024, 5, 2, 9, 30, 0, 1, tzinfo=UTC)
    first = store.append_audit(
        case.reference, "received", "system", details={"channel": "web_form", "note": "é"}, at=at
    )
    second = store.append_audit(
        case.reference, "decision:extend", "operator:alice", reason="complex: 14 systems"
    )
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert first.at == at and first.details == {"channel": "web_form", "note": "é"}
    assert first.hash == event_hash(
        reference=case.reference,
        seq=1,
        at=at,
        actor="system",
        action="received",
        reason="",
        details={"channel": "web_form", "note": "é"},
        prev_hash=GENESIS_HASH,
    )
    assert store.audit_trail(case.reference) == [first, second]
    json.dumps(first.to_dict())

    with store.engine.connect() as conn:
        stored = conn.execute(
            text(f"SELECT details FROM {AUDIT_TABLE} WHERE id = :id"), {"id": first.id}
        ).scalar_one()
    assert (
        stored == canonical_json({"note": "é", "channel": "web_form"}) == '{"channel":"web_form","note":"é"}'
    )


def test_append_is_idempotent_by_event_key(store: CaseStore) -> None:
    case, _ = store.open_case(new_case())
    first = store.append_audit(case.reference, "acknowledged", "system", event_key="wf-1/act-7")
    retried = store.append_audit(
        case.reference, "acknowledged", "system", reason="retry", event_key="wf-1/act-7"
    )
    assert retried == first
    assert len(store.audit_trail(case.reference)) == 1


def test_event_key_cannot_be_reused_for_another_case(store: CaseStore) -> None:
    a, _ = store.open_case(new_case())
    b, _ = store.open_case(new_case())
    store.append_audit(a.reference, "received", "system", event_key="k")
    with pytest.raises(ValueError, match="event_key"):
        store.append_audit(b.reference, "received", "system", event_key="k")


def test_concurrent_retries_with_one_event_key_write_one_event(store: CaseStore) -> None:
    case, _ = store.open_case(new_case())
    rows = run_together(8, lambda _i: store.append_audit(case.reference, "x", "system", event_key="once"))
    assert len({r.id for r in rows}) == 1
    assert len(store.audit_trail(case.reference)) == 1


def test_append_to_unknown_case_raises(store: CaseStore) -> None:
    with pytest.raises(CaseNotFound):
        store.append_audit("DSR-2024-999999", "received", "system")
    assert store.audit_trail("DSR-2024-999999") == []


def test_append_refuses_naive_at(store: CaseStore) -> None:
    case, _ = store.open_case(new_case())
    with pytest.raises(ValueError, match="naive"):
        store.append_audit(case.reference, "received", "system", at=datetime(2024, 1, 1))


def test_twenty_concurrent_appenders_leave_one_unbroken_chain(store: CaseStore) -> None:
    case, _ = store.open_case(new_case())
    other, _ = store.open_case(new_case())

    def append(i: int) -> None:
        ref = case.reference if i % 4 else other.reference  # a second case interleaves
        store.append_audit(ref, "stage_changed", f"worker:{i}", details={"i": i})

    run_together(20, append)
    trail = store.audit_trail(case.reference)
    assert [e.seq for e in trail] == list(range(1, 16))
    assert len({e.details["i"] for e in trail}) == 15
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(trail))
    assert [e.seq for e in store.audit_trail(other.reference)] == list(range(1, 6))
    report = store.verify_chain(case.reference)
    assert report.ok and report.events == 15 and report.first_bad_seq is None and report.problem is None
    assert store.verify_chain(other.reference).ok


def test_verify_intact_and_empty_chains(store: CaseStore) -> None:
    ref = case_with_events(store, 4)
    report = store.verify_chain(ref)
    assert (report.reference, report.ok, report.events) == (ref, True, 4)
    empty, _ = store.open_case(new_case())
    assert store.verify_chain(empty.reference).ok
    assert store.verify_chain(empty.reference).events == 0
    with pytest.raises(CaseNotFound):
        store.verify_chain("DSR-2024-999999")


def test_verify_detects_an_edited_reason(store: CaseStore) -> None:
    ref = case_with_events(store, 5)
    tamper(
        store, f"UPDATE {AUDIT_TABLE} SET reason = 'nothing to see' WHERE reference = :r AND seq = 3", r=ref
    )
    report = store.verify_chain(ref)
    assert not report.ok and report.first_bad_seq == 3 and report.events == 5
    assert report.problem == "event 3: hash does not match its content (edited?)"


def test_verify_detects_edited_details(store: CaseStore) -> None:
    ref = case_with_events(store, 3)
    tamper(
        store,
        f"UPDATE {AUDIT_TABLE} SET details = :d WHERE reference = :r AND seq = 2",
        d='{"stage":"closed","step":2}',
        r=ref,
    )
    report = store.verify_chain(ref)
    assert not report.ok and report.first_bad_seq == 2


def test_verify_detects_an_edited_hash(store: CaseStore) -> None:
    ref = case_with_events(store, 5)
    tamper(store, f"UPDATE {AUDIT_TABLE} SET hash = :h WHERE reference = :r AND seq = 4", h="f" * 64, r=ref)
    report = store.verify_chain(ref)
    assert not report.ok and report.first_bad_seq == 4
    assert report.problem == "event 4: hash does not match its content (edited?)"


def test_verify_detects_an_edit_whose_hash_was_recomputed(store: CaseStore) -> None:
    """A careful forger rehashes the edited event; the next event's prev_hash still gives it away."""
    ref = case_with_events(store, 5)
    ev = store.audit_trail(ref)[2]
    forged = event_hash(
        reference=ref,
        seq=3,
        at=ev.at,
        actor=ev.actor,
        action=ev.action,
        reason="nothing to see",
        details=ev.details,
        prev_hash=ev.prev_hash,
    )
    tamper(
        store,
        f"UPDATE {AUDIT_TABLE} SET reason = 'nothing to see', hash = :h WHERE reference = :r AND seq = 3",
        h=forged,
        r=ref,
    )
    report = store.verify_chain(ref)
    assert not report.ok and report.first_bad_seq == 4
    assert report.problem == "event 4: prev_hash does not match event 3 (deleted or reordered?)"


def test_verify_detects_a_deleted_middle_event(store: CaseStore) -> None:
    ref = case_with_events(store, 6)
    tamper(store, f"DELETE FROM {AUDIT_TABLE} WHERE reference = :r AND seq = 4", r=ref)
    report = store.verify_chain(ref)
    assert not report.ok and report.events == 5 and report.first_bad_seq == 4
    assert report.problem is not None and report.problem.startswith("seq gap after 3")


def test_verify_detects_a_deleted_first_event(store: CaseStore) -> None:
    ref = case_with_events(store, 3)
    tamper(store, f"DELETE FROM {AUDIT_TABLE} WHERE reference = :r AND seq = 1", r=ref)
    report = store.verify_chain(ref)
    assert not report.ok and report.first_bad_seq == 1


def test_verify_detects_a_deleted_and_renumbered_event(store: CaseStore) -> None:
    """Closing the gap by renumbering breaks the hashes of every renumbered event."""
    ref = case_with_events(store, 5)
    tamper(store, f"DELETE FROM {AUDIT_TABLE} WHERE reference = :r AND seq = 2", r=ref)
    for seq in (3, 4, 5):
        tamper(
            store,
            f"UPDATE {AUDIT_TABLE} SET seq = :n WHERE reference = :r AND seq = :s",
            n=seq - 1,
            s=seq,
            r=ref,
        )
    report = store.verify_chain(ref)
    assert not report.ok and report.first_bad_seq == 2


def test_verify_detects_reordered_events(store: CaseStore) -> None:
    ref = case_with_events(store, 5)
    # Swap events 2 and 3 (through a free seq, because (reference, seq) is unique).
    tamper(store, f"UPDATE {AUDIT_TABLE} SET seq = 1000 WHERE reference = :r AND seq = 2", r=ref)
    tamper(store, f"UPDATE {AUDIT_TABLE} SET seq = 2 WHERE reference = :r AND seq = 3", r=ref)
    tamper(store, f"UPDATE {AUDIT_TABLE} SET seq = 3 WHERE reference = :r AND seq = 1000", r=ref)
    report = store.verify_chain(ref)
    assert not report.ok and report.first_bad_seq == 2
    assert report.problem == "event 2: hash does not match its content (edited?)"


# --------------------------------------------------------------------------------------------
# The verify command


def test_verify_cli_reports_an_intact_chain(store: CaseStore, database_url: str) -> None:
    ref = case_with_events(store, 3)
    out = io.StringIO()
    assert verify(ref, database_url, out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {
        "reference": ref,
        "ok": True,
        "events": 3,
        "first_bad_seq": None,
        "problem": None,
    }


def test_verify_cli_reports_tampering(store: CaseStore, database_url: str) -> None:
    ref = case_with_events(store, 3)
    tamper(
        store, f"UPDATE {AUDIT_TABLE} SET actor = 'operator:mallory' WHERE reference = :r AND seq = 2", r=ref
    )
    out = io.StringIO()
    assert verify(ref, database_url, out) == 1
    assert json.loads(out.getvalue()) == {
        "reference": ref,
        "ok": False,
        "events": 3,
        "first_bad_seq": 2,
        "problem": "event 2: hash does not match its content (edited?)",
    }


def test_verify_cli_unknown_reference(store: CaseStore, database_url: str) -> None:
    out = io.StringIO()
    assert verify("DSR-2024-999999", database_url, out) == 1
    assert json.loads(out.getvalue()) == {
        "reference": "DSR-2024-999999",
        "ok": False,
        "events": 0,
        "first_bad_seq": None,
        "problem": "no such case",
    }


def test_record_writes_entries_and_row_in_one_transaction_idempotently(store: CaseStore) -> None:
    from dsar.store import AuditSpec

    row, _ = store.open_case(new_case())
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    entries = [
        AuditSpec("stage:acknowledged", "system", event_key=f"{row.reference}/1"),
        AuditSpec(
            "stage:verifying", "system", details={"from": "acknowledged"}, event_key=f"{row.reference}/2"
        ),
    ]
    out = store.record(row.reference, entries, at=at, stage="verifying", waiting_for="operator")
    assert out.stage == "verifying" and out.waiting_for == "operator"
    # a retried activity writes nothing twice
    store.record(row.reference, entries, at=at, stage="verifying")
    trail = store.audit_trail(row.reference)
    assert [e.action for e in trail] == ["stage:acknowledged", "stage:verifying"]
    assert store.verify_chain(row.reference).ok
    with pytest.raises(CaseNotFound):
        store.record("DSR-2026-999999", entries, at=at, stage="verifying")
