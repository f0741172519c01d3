"""Only the requester's records are collected: households and namesakes stay out."""

from __future__ import annotations

import pytest

from dsar.identity import strongest_match


@pytest.mark.parametrize(
    ("matches", "expected"),
    [
        ({}, []),
        # Margaret: email, phone, name and postcode point to her; Peter shares the postcode,
        # the namesake shares the name.
        (
            {"email": ["c:1"], "phone": ["c:1"], "name": ["c:1", "c:3"], "postcode": ["c:1", "c:2"]},
            ["c:1"],
        ),
        ({"email": ["c:1"]}, ["c:1"]),  # one distinctive kind is enough
        ({"postcode": ["c:1", "c:2"]}, []),  # a household postcode alone is not
        ({"name": ["c:1", "c:3"]}, []),  # a shared name alone is not
        ({"name": ["c:3"], "postcode": ["c:2"]}, []),  # two weak kinds on two people
        ({"name": ["c:3"], "postcode": ["c:3"]}, ["c:3"]),  # two kinds agreeing on one person
        ({"email": ["c:1", "c:9"]}, ["c:1", "c:9"]),  # duplicate records of one address
        ({"phone": ["c:1", "c:2"]}, []),  # a household's phone alone: either of them
        ({"phone": ["c:1", "c:2"], "name": ["c:1"]}, ["c:1"]),  # with her name: her
        ({"email": ["c:1"], "phone": ["c:2"]}, []),  # split identity: A's email, B's phone
        ({"email": ["c:1"], "phone": ["c:2"], "name": ["c:1"]}, ["c:1"]),  # two kinds beat one
    ],
)
def test_strongest_match(matches: dict[str, list[str]], expected: list[str]) -> None:
    assert strongest_match(matches).keys == expected


def test_records_are_judged_one_by_one() -> None:
    """Objects and export lines are records, not people: a recording found by customer number
    and delivery lines found by email and phone are all the person's; a line found only by a
    shared postcode is not."""
    from dsar.identity import record_matches

    outcome = record_matches(
        {
            "customer_id": ["call_audio:recordings/1/"],
            "email": ["pod:2026-01-03.jsonl#4"],
            "phone": ["pod:2026-01-03.jsonl#4", "pod:2026-02-11.jsonl#9"],
            "postcode": ["pod:2026-03-01.jsonl#2"],
        }
    )
    assert outcome.keys == ["call_audio:recordings/1/", "pod:2026-01-03.jsonl#4", "pod:2026-02-11.jsonl#9"]
    assert record_matches({"postcode": ["pod:x#1"], "name": ["pod:x#2"]}).keys == []
    assert record_matches({}).reason == "no matching records"


def test_ambiguous_matches_are_told_apart_from_weak_ones() -> None:
    """Two people and no telling which is a question for a person; a weak match is nobody."""
    assert strongest_match({"email": ["c:1"], "phone": ["c:2"]}).ambiguous
    assert strongest_match({"phone": ["c:1", "c:2"]}).ambiguous
    assert not strongest_match({"postcode": ["c:1", "c:2"]}).ambiguous
    assert not strongest_match({"email": ["c:1"]}).ambiguous
