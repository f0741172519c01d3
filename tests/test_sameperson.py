"""The same person's other requests (``dsar.sameperson``), on SQLite and PostgreSQL registers:
found by keyed hashes of distinctive identifiers, never by a name or an address alone; a
namesake, a household member or someone writing from another person's email is never flagged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from demo.seed import MARGARET, NAMESAKE, PETER
from dsar.model import Channel, Regime, RequestType
from dsar.sameperson import SamePerson
from dsar.store import CaseStore, NewCase

KEY = b"k" * 32


@pytest.fixture
def store(database_url: str) -> Iterator[CaseStore]:
    s = CaseStore(database_url)
    try:
        yield s
    finally:
        s.close()


def _open(store: CaseStore, people: SamePerson, identifiers: dict[str, str], **row: object) -> str:
    opened, _ = store.open_case(NewCase(RequestType.ACCESS, Regime.UK_GDPR, Channel.API, datetime.now(UTC)))
    if row:
        store.sync_case(opened.reference, **row)
    people.remember(opened.reference, identifiers)
    return opened.reference


def test_the_same_person_across_spellings_and_never_a_namesake_or_household(store: CaseStore) -> None:
    people = SamePerson(store.engine, KEY)
    first = _open(store, people, {k: MARGARET[k] for k in ("name", "email", "phone")}, stage="responded")
    # the same person, written differently: case of the email, spacing of the phone, name order
    again = _open(
        store,
        people,
        {"name": "ELLIS, Margaret", "email": " Margaret.Ellis@Example.com", "phone": "07911 123456"},
    )
    by_account = _open(store, people, {"account_number": MARGARET["account_number"]})
    husband = _open(
        store, people, {k: PETER[k] for k in ("name", "email", "phone", "postal_address", "postcode")}
    )
    namesake = _open(store, people, {k: NAMESAKE[k] for k in ("name", "email", "phone")})
    # the husband writing from his wife's address: the name says it is not her
    from_her_email = _open(store, people, {"name": PETER["name"], "email": MARGARET["email"]})
    # her phone number given with another email: a contradiction, not the same person
    other_email = _open(store, people, {"email": "someone.else@example.org", "phone": MARGARET["phone"]})

    related = people.related(again)
    assert {r.reference: r.agreed for r in related} == {first: ("email", "phone")}
    assert related[0].answered and not related[0].open
    assert {r.reference for r in people.related(first)} == {again}
    assert people.related(by_account) == [], "nobody else gave the account number"
    for stranger in (husband, namesake, from_her_email, other_email):
        assert people.related(stranger) == [], stranger
        assert stranger not in {r.reference for r in people.related(first)}

    people.remember(again, {"email": MARGARET["email"]})  # a replayed intake adds nothing
    assert len(people.related(first)) == 1

    # only keyed hashes are stored: no value in clear, and another key matches nothing
    with store.engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(text("SELECT * FROM case_identity")) for v in row)
    for value in (
        MARGARET["email"],
        "margaret.ellis",
        "447911123456",
        "Margaret",
        MARGARET["account_number"],
    ):
        assert value.lower() not in stored.lower()
    other_key = SamePerson(store.engine, b"x" * 32)
    assert other_key.hashes({"email": MARGARET["email"]}) != people.hashes({"email": MARGARET["email"]})


def test_the_case_page_warns_of_a_duplicate_and_of_a_change_after_the_search(store: CaseStore) -> None:
    from datetime import date, timedelta

    from console.staff.case import related_cases

    people = SamePerson(store.engine, KEY)
    ids = {k: MARGARET[k] for k in ("name", "email")}
    access = _open(store, people, ids, stage="reviewing")
    duplicate = _open(store, people, ids, stage="verifying")
    erasure_row, _ = store.open_case(
        NewCase(RequestType.ERASURE, Regime.UK_GDPR, Channel.API, datetime.now(UTC))
    )
    people.remember(erasure_row.reference, ids)
    searched = datetime(2026, 12, 1, 10, tzinfo=UTC)
    store.append_audit(access, "stage:searching", "system", at=searched)
    store.append_audit(erasure_row.reference, "stage:responded", "system", at=searched + timedelta(days=2))
    store.sync_case(erasure_row.reference, stage="responded")

    views, warnings = related_cases(
        store, KEY, access, store.audit_trail(access), "Europe/London", date(2026, 12, 7)
    )
    assert {v.case.reference for v in views} == {duplicate, erasure_row.reference}
    answered = next(v for v in views if v.case.reference == erasure_row.reference)
    assert answered.answered_on == date(2026, 12, 3) and answered.days_ago == 4
    assert any(duplicate in w and "duplicate" in w for w in warnings)
    assert any(erasure_row.reference in w and "after this case searched" in w for w in warnings)
    # the erasure itself was searched after nothing: no warning about its own records
    _, none = related_cases(
        store, KEY, duplicate, store.audit_trail(duplicate), "Europe/London", date(2026, 12, 7)
    )
    assert not any("after this case searched" in w for w in none)
