"""Used links, refusals and identifier lockouts (``dsar.guard``), on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from dsar.guard import GuardStore, IdentifierAttempt, attempts_key, normalise_identifier
from dsar.store import CaseStore
from tests.conftest import make_settings

KEY = b"g" * 32
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def guard(database_url: str) -> Iterator[GuardStore]:
    g = GuardStore(database_url, KEY)
    yield g
    g.close()


# --------------------------------------------------------------------------------------------
# Links


def test_a_link_is_used_once_even_when_two_clicks_race(guard: GuardStore) -> None:
    assert not guard.is_used("j1")
    assert guard.use_link("j1", "DSR-2026-000001", "confirm_request")
    assert guard.is_used("j1")
    assert not guard.use_link("j1", "DSR-2026-000001", "confirm_request")

    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: guard.use_link("j2", "DSR-2026-000001", "confirm_request"), range(8))
        )
    assert results.count(True) == 1

    guard.release_link("j2")
    assert guard.use_link("j2", "DSR-2026-000001", "confirm_request")


def test_refusals_are_kept_per_case_and_without_a_case(guard: GuardStore) -> None:
    guard.record_refusal("DSR-2026-000001", "confirm", "forged", at=T0)
    guard.record_refusal("DSR-2026-000001", "confirm_request", "replayed", at=T0 + timedelta(minutes=1))
    guard.record_refusal("DSR-2026-000002", "provide", "expired", at=T0)
    guard.record_refusal(None, "provide", "forged", at=T0)

    mine = guard.refusals("DSR-2026-000001")
    assert [(r.purpose, r.reason) for r in mine] == [("confirm", "forged"), ("confirm_request", "replayed")]
    assert mine[0].at == T0 and mine[0].at.tzinfo is not None
    assert [r.reason for r in guard.refusals(None)] == ["forged"]
    assert guard.refusals("DSR-2026-000009") == []


def test_tables_live_beside_the_register_and_share_its_engine(database_url: str) -> None:
    store = CaseStore(database_url)
    try:
        shared = GuardStore(store.engine, KEY)
        assert shared.use_link("j", "DSR-2026-000001", "confirm_request")
        shared.close()  # not its engine: still usable
        again = GuardStore(database_url, KEY)  # tables already there: nothing to do
        assert again.is_used("j")
        again.close()
    finally:
        store.close()


# --------------------------------------------------------------------------------------------
# Identifier attempts


def test_lockout_after_max_attempts_and_its_expiry(guard: GuardStore) -> None:
    for i in range(4):
        assert guard.record_failure("phone", "07911 123456", 5, 60, now=T0 + timedelta(minutes=i)) is None
    assert not guard.is_locked("phone", "07911 123456", now=T0 + timedelta(minutes=4))

    until = guard.record_failure("phone", "+44 7911 123456", 5, 60, now=T0 + timedelta(minutes=5))
    assert until == T0 + timedelta(minutes=65)  # the same number, spelt differently
    assert guard.is_locked("phone", "07911123456", now=T0 + timedelta(minutes=6))
    assert not guard.is_locked("phone", "07700 900000", now=T0 + timedelta(minutes=6))
    assert not guard.is_locked("name", "07911 123456", now=T0 + timedelta(minutes=6))  # kind counts

    # Attempts while locked do not extend the lockout.
    assert guard.record_failure("phone", "07911 123456", 5, 60, now=T0 + timedelta(minutes=30)) == until

    # Once it has run out, the identifier is free and counting starts again.
    after = until + timedelta(seconds=1)
    assert not guard.is_locked("phone", "07911 123456", now=after)
    assert guard.record_failure("phone", "07911 123456", 5, 60, now=after) is None
    assert guard.failures("phone", "07911 123456") == 1


def test_clear_forgets_the_failures(guard: GuardStore) -> None:
    assert guard.record_failure("postcode", "cv3 4lp", 1, 10, now=T0) == T0 + timedelta(minutes=10)
    assert guard.is_locked("postcode", "CV34LP", now=T0)
    guard.clear("postcode", "CV3 4LP")
    assert not guard.is_locked("postcode", "cv3 4lp", now=T0)
    assert guard.failures("postcode", "cv3 4lp") == 0


def test_concurrent_failures_are_all_counted(guard: GuardStore) -> None:
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda _: guard.record_failure("customer_id", "C-1001", 100, 60, now=T0), range(12)))
    assert guard.failures("customer_id", "c1001") == 12


def test_no_identifier_is_stored_in_clear(guard: GuardStore) -> None:
    guard.record_failure("name", "Margaret Ellis", 5, 60, now=T0)
    with guard.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT * FROM {IdentifierAttempt.__tablename__}")).all()
    assert len(rows) == 1
    assert "margaret" not in repr(rows).lower()
    assert rows[0][0] == guard.key_hash("name", "margaret  ELLIS")
    # Another key, another hash: the table cannot be checked against guesses without the key.
    other = GuardStore(guard.engine, b"h" * 32)
    assert other.key_hash("name", "Margaret Ellis") != rows[0][0]


def test_bad_limits_and_short_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        GuardStore(f"sqlite:///{tmp_path / 'g.db'}", b"short")
    g = GuardStore("sqlite://", KEY)  # in memory
    with pytest.raises(ValueError, match="max_attempts"):
        g.record_failure("name", "x", 0, 10)
    assert g.use_link("j", "DSR-2026-000001", "confirm_request")
    g.close()


def test_normalisation_and_the_settings_key(tmp_path: Path) -> None:
    assert normalise_identifier("postcode", " cv3 4lp ") == "CV34LP"
    assert normalise_identifier("phone", "07911 123456") == "+447911123456"
    assert normalise_identifier("email", " M.Ellis@Example.COM ") == "m.ellis@example.com"
    assert normalise_identifier("account_number", "12-34 56") == "123456"
    assert normalise_identifier("postal_address", "1  High St,\nCoventry") == "1 high st, coventry"
    settings = make_settings(tmp_path / "var")
    assert attempts_key(settings) == attempts_key(make_settings(tmp_path / "other"))  # same codec key
    assert attempts_key(settings) != settings.codec_key_bytes
