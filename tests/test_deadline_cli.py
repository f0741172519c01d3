"""``dsar deadline``: JSON lines in, one result line per input line out, never a traceback."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest

from dsar.clock import ClockPolicy
from dsar.deadline_cli import _POLICY_KEYS, parse_policy, run

VECTORS_PATH = Path(__file__).parent / "data" / "deadlines.jsonl"
VECTORS: list[dict[str, Any]] = [json.loads(line) for line in VECTORS_PATH.read_text().splitlines() if line]

UK_25 = {
    "id": "UK-25",
    "regime": "UK_GDPR",
    "request_type": "access",
    "kind": "response_due",
    "calendar": "GB-EAW",
    "received": "2025-01-31",
    "events": [
        {"type": "clarification_requested", "date": "2025-02-03"},
        {"type": "clarification_received", "date": "2025-02-07"},
    ],
}


def feed(*lines: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    assert run(io.StringIO("\n".join(lines) + "\n"), out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def one(record: dict[str, Any]) -> dict[str, Any]:
    [result] = feed(json.dumps(record))
    return result


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in UK_25.items() if k != field}


def test_every_vector_through_run() -> None:
    results = feed(*(json.dumps(v) for v in VECTORS))
    assert [r["id"] for r in results] == [v["id"] for v in VECTORS]
    for vector, result in zip(VECTORS, results, strict=True):
        assert result == {"id": vector["id"], "due": vector["due"]}, vector["why"]


def test_vector_file_piped_as_is() -> None:
    out = io.StringIO()
    assert run(io.StringIO(VECTORS_PATH.read_text()), out) == 0
    assert len(out.getvalue().splitlines()) == len(VECTORS)


def test_blank_lines_are_skipped() -> None:
    results = feed("", json.dumps(UK_25), "   ", "")
    assert results == [{"id": "UK-25", "due": "2025-03-05"}]


@pytest.mark.parametrize(
    ("line", "expected_id", "message"),
    [
        ("this is not json", None, "invalid JSON"),
        ("[1, 2]", None, "expected a JSON object, got list"),
        (json.dumps({**UK_25, "regime": "MARS"}), "UK-25", "unknown regime 'MARS'"),
        (json.dumps(without("received")), "UK-25", "missing field 'received'"),
        (json.dumps({**UK_25, "kind": "acknowledgement_due"}), "UK-25", "acknowledgement_due does not apply"),
        (json.dumps({**UK_25, "kind": "soonish"}), "UK-25", "unknown deadline kind 'soonish'"),
        (json.dumps({**UK_25, "calendar": "XX"}), "UK-25", "unknown calendar 'XX': use GB-EAW"),
        (json.dumps({**UK_25, "received": "2025-02-30"}), "UK-25", "received: invalid date '2025-02-30'"),
        (json.dumps({**UK_25, "received": "31/01/2025"}), "UK-25", "expected YYYY-MM-DD"),
        (json.dumps({**UK_25, "received": 20250131}), "UK-25", "received: expected text"),
        (json.dumps({**UK_25, "request_type": "teleport"}), "UK-25", "unknown request type"),
        (json.dumps({**UK_25, "events": "none"}), "UK-25", "events: expected a list"),
        (
            json.dumps({**UK_25, "events": [{"type": "magic", "date": "2025-02-01"}]}),
            "UK-25",
            "unknown event type",
        ),
        (json.dumps({**UK_25, "events": [42]}), "UK-25", "events[0]"),
        (json.dumps({**UK_25, "policy": "colour=blue"}), "UK-25", "policy: unknown key 'colour'"),
        (json.dumps({**UK_25, "policy": "exclusive"}), "UK-25", "expected key=value"),
        (json.dumps({**UK_25, "policy": "uk_pause_count=sometimes"}), "UK-25", "uk_pause_count"),
        (json.dumps({**UK_25, "policy": 7}), "UK-25", "policy: expected"),
        (json.dumps({**UK_25, "small_agent": "perhaps"}), "UK-25", "small_agent"),
        (
            json.dumps({**without("id"), "regime": "LGPD", "kind": "extension_notice_due"}),
            None,
            "no extension",
        ),
    ],
)
def test_error_lines(line: str, expected_id: str | None, message: str) -> None:
    [result] = feed(line)
    assert set(result) == {"id", "error"}
    assert result["id"] == expected_id
    assert message in result["error"]
    assert "Traceback" not in result["error"]


def test_pathological_json_is_an_error_line() -> None:
    [result] = feed("[" * 100_000)
    assert result["id"] is None and result["error"].startswith("invalid JSON")


def test_processing_continues_after_errors() -> None:
    results = feed("garbage", json.dumps(without("received")), json.dumps(UK_25), "{")
    assert [("due" in r, r["id"]) for r in results] == [
        (False, None),
        (False, "UK-25"),
        (True, "UK-25"),
        (False, None),
    ]


def test_policy_text_and_dict_forms() -> None:
    assert one(UK_25)["due"] == "2025-03-05"
    assert one({**UK_25, "policy": "uk_pause_count=exclusive"})["due"] == "2025-03-04"
    assert one({**UK_25, "policy": {"uk_pause_count": "exclusive"}})["due"] == "2025-03-04"
    several = "uk_pause_count=exclusive; roll_forward=none, eu_identity_pause=restart"
    assert one({**UK_25, "policy": several})["due"] == "2025-03-04"
    assert one({**UK_25, "policy": ""})["due"] == "2025-03-05"
    assert one({**UK_25, "policy": None})["due"] == "2025-03-05"


def test_policy_extra_holidays() -> None:
    base = {**UK_25, "received": "2025-03-03", "events": []}
    assert one(base)["due"] == "2025-04-03"
    assert one({**base, "policy": "extra_holidays=2025-04-03"})["due"] == "2025-04-04"
    assert one({**base, "policy": {"extra_holidays": ["2025-04-03", "2025-04-04"]}})["due"] == "2025-04-07"


def test_small_agent_top_level_or_policy() -> None:
    lgpd = {**UK_25, "id": "BR", "regime": "LGPD", "calendar": "none", "received": "2025-03-10", "events": []}
    assert one(lgpd)["due"] == "2025-03-25"
    assert one({**lgpd, "small_agent": True})["due"] == "2025-04-09"
    assert one({**lgpd, "policy": "small_agent=true"})["due"] == "2025-04-09"


def test_extra_fields_ignored_and_events_optional() -> None:
    record = {**without("events"), "events": None, "due": "1999-01-01", "why": "ignored", "note": 1}
    assert one(record) == {"id": "UK-25", "due": "2025-02-28"}


def test_id_is_echoed_as_given() -> None:
    assert one({**UK_25, "id": 7})["id"] == 7
    assert one(without("id")) == {"id": None, "due": "2025-03-05"}


def test_parse_policy_keys_match_clock_policy_fields() -> None:
    """A renamed ClockPolicy field must not silently turn every policy line into an error."""
    assert set(_POLICY_KEYS) <= {f.name for f in dataclasses.fields(ClockPolicy)}
    assert parse_policy("roll_forward=default") == {"roll_forward": None}
