"""The queue the console shows (``dsar.worklist``), on SQLite and PostgreSQL registers: soonest
deadline first, every filter, counts per stage, pagination, and assignment written to the
case's audit trail. Also the staff sessions behind the console (``console.auth.sessions``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from console.auth.roles import Staff
from console.auth.sessions import SessionStore
from dsar.model import Channel, Regime, RequestType
from dsar.store import CaseStore, NewCase
from dsar.worklist import QueueFilter, Worklist
from tests.conftest import make_settings

TODAY = date(2026, 12, 7)


@pytest.fixture
def store(database_url: str) -> Iterator[CaseStore]:
    s = CaseStore(database_url)
    try:
        yield s
    finally:
        s.close()


def _case(
    store: CaseStore, request_type: RequestType, regime: Regime, channel: Channel, **row: object
) -> str:
    opened, _ = store.open_case(NewCase(request_type, regime, channel, datetime.now(UTC)))
    store.sync_case(opened.reference, **row)
    return opened.reference


def test_queue_order_filters_counts_and_pages(store: CaseStore) -> None:
    wl = Worklist(store)
    late = _case(store, RequestType.ACCESS, Regime.UK_GDPR, Channel.API, stage="verifying",
                 due=TODAY - timedelta(days=2), waiting_for="operator: identity check")  # fmt: skip
    soon = _case(store, RequestType.ERASURE, Regime.CCPA, Channel.WEB_FORM, stage="searching",
                 due=TODAY + timedelta(days=3), waiting_for="search by hand: cctv")  # fmt: skip
    later = _case(store, RequestType.ACCESS, Regime.EU_GDPR, Channel.EMAIL, stage="reviewing",
                  due=TODAY + timedelta(days=20), waiting_for="reviewer: approve")  # fmt: skip
    paused = _case(store, RequestType.RECTIFICATION, Regime.UK_GDPR, Channel.POST, stage="verifying",
                   due=TODAY + timedelta(days=1), paused=True, waiting_for="person: identity")  # fmt: skip
    done = _case(
        store, RequestType.ACCESS, Regime.UK_GDPR, Channel.API, stage="closed", due=TODAY - timedelta(days=9)
    )

    page = wl.page(QueueFilter(), TODAY)
    refs = [r.case.reference for r in page.rows]
    assert refs == [late, paused, soon, later], "open cases, soonest deadline first"
    assert page.total == 4
    assert page.counts == {"verifying": 2, "searching": 1, "reviewing": 1}

    def only(**f: object) -> list[str]:
        return [r.case.reference for r in wl.page(QueueFilter(**f), TODAY).rows]  # type: ignore[arg-type]

    assert only(overdue=True) == [late]
    assert only(stage="verifying") == [late, paused]
    assert only(regime="CCPA") == [soon]
    assert only(request_type="rectification") == [paused]
    assert only(channel="email") == [later]
    assert only(waiting="operator") == [late]
    assert only(waiting="person") == [paused]
    assert only(waiting="owner") == [soon]
    assert only(waiting="reviewer") == [later]
    assert only(reference=soon[-6:]) == [soon]
    assert only(reference="%") == [], "LIKE wildcards in a search are literal"
    assert done in only(open_only=False) and done not in only()
    assert only(stage="closed") == [done]
    with pytest.raises(ValueError):
        only(waiting="martians")

    first = wl.page(QueueFilter(), TODAY, limit=2, offset=0)
    second = wl.page(QueueFilter(), TODAY, limit=2, offset=2)
    assert [r.case.reference for r in first.rows + second.rows] == refs
    assert first.total == second.total == 4
    assert wl.page(QueueFilter(), TODAY, limit=10**9, offset=10**12).rows == []


def test_assignment_is_audited_and_filterable(store: CaseStore) -> None:
    wl = Worklist(store)
    a = _case(store, RequestType.ACCESS, Regime.UK_GDPR, Channel.API, stage="verifying", due=TODAY)
    b = _case(store, RequestType.ACCESS, Regime.UK_GDPR, Channel.API, stage="verifying", due=TODAY)
    now = datetime.now(UTC)
    assert wl.assign([a, b], "olive", "operator:olive", now) == [a, b]
    assert wl.assign([a], "olive", "operator:olive", now) == [], "assigning to whoever has it changes nothing"
    assert wl.assign([b], "rita", "operator:olive", now) == [b]
    assert wl.assignee(a) == "olive" and wl.assignee(b) == "rita"
    assert [r.case.reference for r in wl.page(QueueFilter(assignee="olive"), TODAY).rows] == [a]
    assert wl.assign([a], None, "operator:olive", now) == [a]
    unassigned = [r.case.reference for r in wl.page(QueueFilter(assignee="-"), TODAY).rows]
    assert a in unassigned and b not in unassigned
    trail = store.audit_trail(b)
    assert [(e.action, e.actor, e.details) for e in trail] == [
        ("case:assigned", "operator:olive", {"assignee": "olive"}),
        ("case:assigned", "operator:olive", {"assignee": "rita"}),
    ]
    assert store.verify_chain(a).ok and store.verify_chain(b).ok


def test_sessions_end_when_idle_expired_or_signed_out(store: CaseStore, tmp_path: object) -> None:
    settings = make_settings(tmp_path, staff_idle_minutes=30, staff_session_hours=12)  # type: ignore[arg-type]
    sessions = SessionStore(store.engine, settings)
    staff = Staff("olive", ("operator",), "Olive")
    cookie = sessions.create(staff)
    active = sessions.load(cookie)
    assert active is not None and active.staff == staff
    assert active.csrf_ok(active.csrf) and not active.csrf_ok("") and not active.csrf_ok(active.csrf + "x")
    assert sessions.load(cookie + "x") is None
    sessions.end(cookie)
    assert sessions.load(cookie) is None

    idle = sessions.create(staff)
    sessions.idle = timedelta(seconds=-1)  # as if 30 minutes had passed without a request
    assert sessions.load(idle) is None
    sessions.idle = timedelta(minutes=30)
    old = sessions.create(staff)
    sessions.lifetime = timedelta(seconds=-1)
    stale = sessions.create(staff)  # expires the moment it is made
    assert sessions.load(stale) is None and sessions.load(old) is not None

    # A sign-in in progress is taken once, only with the browser cookie it was bound to.
    sessions.begin_sign_in("browser-a", "state-1", "nonce", "verifier", "/console")
    assert sessions.take_sign_in("state-1", "browser-b") is None
    sessions.begin_sign_in("browser-a", "state-2", "nonce", "verifier", "/console/cases/x")
    attempt = sessions.take_sign_in("state-2", "browser-a")
    assert attempt is not None and attempt.next_path == "/console/cases/x"
    assert sessions.take_sign_in("state-2", "browser-a") is None, "used once"
