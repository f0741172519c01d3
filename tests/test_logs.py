"""Logs never carry personal data, whichever library writes them and wherever it hides."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from dsar import logs

NAME = "Margaret Ellis"
EMAIL = "m.ellis@example.co.uk"
SEEDED = [
    NAME,
    EMAIL,
    "+44 7911 123456",
    "07911 123456",
    "(415) 555-0134",
    "SW1A 1AA",
    "4111 1111 1111 1111",
    "GB82 WEST 1234 5698 7654 32",
    "192.168.10.20",
]
REFERENCE = "DSR-2026-000123"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.clear_sensitive()
    logs.configure_logging("DEBUG", stream=stream)
    logs.register_sensitive([NAME, "M", ""])  # the short ones are ignored
    yield stream
    logs.clear_sensitive()
    logs.configure_logging("INFO", stream=io.StringIO())


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    raw = stream.getvalue().splitlines()
    assert raw, "nothing was logged"
    return [json.loads(line) for line in raw]  # every line is one JSON object


def assert_clean(stream: io.StringIO) -> None:
    text = stream.getvalue()
    for value in [*SEEDED, NAME.upper(), "margaret ellis", "example.co.uk"]:
        assert value not in text, f"{value!r} leaked into the logs:\n{text}"
    # the seeded numbers without their separators must not leak either
    assert "7911123456" not in text
    assert "4111111111111111" not in text


def test_structlog_message_keys_and_exception_are_scrubbed(captured: io.StringIO) -> None:
    log = logs.get_logger("dsar.test")
    with logs.bind_case(REFERENCE):
        log.info(
            f"request from {NAME} <{EMAIL}> phone +44 7911 123456 alt 07911 123456, "
            f"US (415) 555-0134, at SW1A 1AA, card 4111 1111 1111 1111, received 2026-01-15",
            email=EMAIL,
            subject_name=NAME,
            identifiers={"email": EMAIL},
            phones=["07911 123456"],
            stage="verifying",
            records=3,
            matched=True,
            path=f"/cases?email={EMAIL}",
        )
        try:
            raise LookupError(f"no account for {EMAIL} ({NAME}, card 4111 1111 1111 1111)")
        except LookupError:
            log.exception("lookup failed", system="billing")

    out = lines(captured)
    assert_clean(captured)
    first, second = out
    assert first["reference"] == REFERENCE
    assert first["level"] == "info"
    assert first["logger"] == "dsar.test"
    assert str(first["timestamp"]).endswith("Z")
    assert "2026-01-15" in str(first["event"])
    assert first["email"] == logs.SCRUBBED
    assert first["identifiers"] == logs.SCRUBBED
    assert first["stage"] == "verifying"
    assert first["records"] == 3 and first["matched"] is True
    assert first["path"] == "/cases?email=[scrubbed]"
    assert second["reference"] == REFERENCE
    assert second["system"] == "billing"
    assert "LookupError" in str(second["exception"])
    assert "Traceback" in str(second["exception"])


def test_stdlib_loggers_go_through_the_same_chain(captured: io.StringIO) -> None:
    temporal = logging.getLogger("temporalio.x")
    with logs.bind_case(REFERENCE):
        temporal.warning(
            "activity for %s failed: %s on %s",
            NAME,
            EMAIL,
            "2026-02-01",
            extra={
                "email": EMAIL,
                "attempt": 4,
                "temporal_activity": {
                    "activity_type": "search_system",
                    "workflow_id": REFERENCE,
                    "attempt": 4,
                    "subject": NAME,
                },
            },
        )
        try:
            raise ValueError(f"{EMAIL} not found; called (415) 555-0134 and +44 7911 123456")
        except ValueError:
            temporal.exception("activity raised")
    logging.getLogger("uvicorn.access").info('%s - "GET /cases/%s HTTP/1.1" 200', "192.168.10.20", REFERENCE)

    out = lines(captured)
    assert_clean(captured)
    warning, error, access = out
    assert warning["logger"] == "temporalio.x"
    assert warning["level"] == "warning"
    assert warning["reference"] == REFERENCE
    assert warning["attempt"] == 4
    assert warning["activity_type"] == "search_system"
    assert warning["workflow_id"] == REFERENCE
    assert warning["subject"] == logs.SCRUBBED
    assert warning["email"] == logs.SCRUBBED
    assert "2026-02-01" in str(warning["event"])
    assert "ValueError" in str(error["exception"])
    assert REFERENCE in str(access["event"])
    assert "reference" not in access  # bound only inside the block


def test_configure_is_idempotent(captured: io.StringIO) -> None:
    logs.configure_logging("DEBUG", stream=captured)
    logs.configure_logging("DEBUG", stream=captured)
    logging.getLogger("httpx").info("once")
    assert [line["event"] for line in lines(captured)] == ["once"]


def test_level_filters_both_kinds(captured: io.StringIO) -> None:
    logs.configure_logging("WARNING", stream=captured)
    logs.get_logger("dsar.test").info("hidden")
    logging.getLogger("temporalio.x").info("hidden")
    logs.get_logger("dsar.test").warning("shown")
    assert [line["event"] for line in lines(captured)] == ["shown"]


async def test_bind_case_is_per_task(captured: io.StringIO) -> None:
    log = logs.get_logger("dsar.test")

    async def case(reference: str) -> None:
        with logs.bind_case(reference):
            await asyncio.sleep(0)
            log.info("working")

    await asyncio.gather(case("DSR-2026-000001"), case("DSR-2026-000002"))
    log.info("outside")
    refs = sorted(str(line.get("reference")) for line in lines(captured) if line["logger"] == "dsar.test")
    assert refs == ["DSR-2026-000001", "DSR-2026-000002", "None"]


@pytest.mark.parametrize(
    "text",
    [
        "case DSR-2026-000123 due 2026-03-14",
        "at 2026-01-15T10:02:03.123456+00:00, run 0a1b2c3d-1234-5678-9012-123456789012",
        "processed 1000000 rows in 1234.5678 ms, attempt 7, version 1.35.0, at 10:02:03",
        "billing unreachable since 10:02, attempt 7",
    ],
)
def test_non_personal_text_survives(text: str) -> None:
    assert logs.scrub_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "+1 (415) 555-0134",
        "415-555-0134",
        "415.555.0134",
        "+447911123456",
        "020 7946 0958",
        "ec1a 1bb",
        "M1 1AE",
        "4111-1111-1111-1111",
        "3782 822463 10005",
        "DE89370400440532013000",
        "10.0.0.1",
        "Jane.Doe+dsar@mail.example.org",
    ],
)
def test_personal_patterns_are_scrubbed(text: str) -> None:
    assert logs.scrub_text(f"x {text} y") == f"x {logs.SCRUBBED} y"


def test_registered_values_match_case_and_spacing() -> None:
    logs.clear_sensitive()
    try:
        logs.register_sensitive(["Margaret Ellis", "CUST-0042", "al"])
        assert logs.scrub_text("MARGARET   ellis, cust-0042, also al") == "[scrubbed], [scrubbed], also al"
    finally:
        logs.clear_sensitive()
