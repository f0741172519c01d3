"""The input gate (``dsar.inputs``) on its own: no servers. What every channel refuses, and why;
what it accepts, normalised. Issue 18's findings, value by value."""

from __future__ import annotations

import io
import logging
import unicodedata

import pytest

from dsar import inputs
from dsar.inputs import InputRefused
from dsar.logs import AccessLogFilter, configure_logging
from intake.service import IntakeError, clean_agent, usable_identifiers

HOSTILE = {
    "lone surrogate": ("Margaret \ud800 Ellis", "unpaired surrogate"),
    "NUL": ("Margaret\x00Ellis", "NUL"),
    "U+2028": ("Margaret\u2028Ellis", "separator"),
    "U+2029": ("Margaret\u2029Ellis", "separator"),
    "U+0085": ("Margaret\u0085Ellis", "separator"),
    "bell": ("Margaret\x07Ellis", "control"),
    "line break": ("Margaret\r\nBcc: victim@example.org", "line break"),
    "RFC 2047 CR/LF (Q)": ("=?utf-8?q?Margaret=0D=0ABcc:_victim@example.org?=", "RFC 2047"),
    "RFC 2047 CR/LF (B)": ("=?utf-8?b?TWFyZ2FyZXQNCkJjYzogdmljdGlt?=", "RFC 2047"),
    "bidi override": ("Margaret\u202eEllis", "direction"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_every_text_field_refuses_what_cannot_travel_to_the_end_of_a_case(name: str) -> None:
    value, words = HOSTILE[name]
    with pytest.raises(InputRefused) as info:
        inputs.clean_text(value, "identifiers.name")
    message = str(info.value)
    assert message.startswith("identifiers.name: ") and words in message
    assert value not in message and "Margaret" not in message  # never echoed
    with pytest.raises(IntakeError):  # the same gate in intake (API, form, email, CLI)
        from intake.service import clean_identifiers

        clean_identifiers({"name": value})


def test_text_is_normalised_to_nfc_and_paragraphs_are_kept_only_where_asked() -> None:
    decomposed = "Zoe\u0308 A\u030angstro\u0308m"
    assert inputs.clean_text(decomposed, "name") == unicodedata.normalize("NFC", decomposed)
    assert inputs.clean_text("  14 Larch Road\r\nCoventry \n", "address", lines="join") == (
        "14 Larch Road, Coventry"
    )
    assert inputs.clean_reason("first line\r\nsecond line") == "first line\nsecond line"
    with pytest.raises(InputRefused, match="longer than 10"):
        inputs.clean_text("x" * 11, "name", max_length=10)


def test_emails_are_validated_one_address_and_phones_parsed() -> None:
    assert inputs.clean_email("Margaret.Ellis@Example.COM") == "Margaret.Ellis@example.com"
    for bad in (
        "victim@example.org, other@example.org",  # the letter that went to two people
        "Margaret <margaret@example.org>",
        "margaret@",
        '"quoted"@example.org',
        "=?utf-8?q?a=0D=0A?=@example.org",
    ):
        with pytest.raises(InputRefused, match=r"^email: "):
            inputs.clean_email(bad)
    assert inputs.clean_phone("07911 123456", region="GB") == "07911 123456"
    assert inputs.clean_phone("+44 7911 123456") == "+44 7911 123456"
    with pytest.raises(InputRefused, match="country code"):
        inputs.clean_phone("07911 123456")
    with pytest.raises(InputRefused, match="not a phone number"):
        inputs.clean_phone("+44 12", region="GB")


def test_unknown_kinds_are_named_only_when_they_look_like_names() -> None:
    with pytest.raises(InputRefused, match="'shoe_size'"):
        inputs.clean_identifiers({"shoe_size": "11"})
    with pytest.raises(InputRefused) as info:
        inputs.clean_identifiers({"margaret@example.org": "x"})
    assert "margaret" not in str(info.value)
    with pytest.raises(InputRefused, match="at least one"):
        inputs.clean_identifiers({"name": "   "})


def test_numbers_are_bounded() -> None:
    assert inputs.bounded(500, "limit", 1, inputs.MAX_PAGE) == 500
    for bad in (0, 501, True, 9223372036854775808):
        with pytest.raises(InputRefused):
            inputs.bounded(bad, "limit", 1, inputs.MAX_PAGE)


def test_email_intake_quarantines_what_the_gate_refuses_with_the_kinds_only() -> None:
    kept, refused = usable_identifiers(
        {"name": "Margaret\u2028Ellis", "email": "margaret.ellis@example.com", "phone": "+44 7911 123456"}
    )
    assert kept == {"email": "margaret.ellis@example.com", "phone": "+44 7911 123456"}
    assert refused == ["name"]


def test_an_agents_email_is_one_valid_address() -> None:
    from dsar.model import AgentDetails

    with pytest.raises(IntakeError, match="email address is not valid"):
        clean_agent(AgentDetails("Ann Agent", "ann@example.org, victim@example.org"), by_agent=True)
    agent = clean_agent(AgentDetails("Ann Agent", "Ann@Example.ORG"), by_agent=True)
    assert agent is not None and agent.email == "Ann@example.org"


def test_no_link_token_reaches_a_log_line() -> None:
    """The access log without query strings (on the logger: every handler gets it so), and the
    scrubber takes tokens out of any other line."""
    stream = io.StringIO()
    configure_logging("INFO", stream)
    access = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, AccessLogFilter) for f in access.filters)
    token = "eyJhbGciOiJIUzI1NiJ9.eyJjYXNlIjoiRFNSLTIwMjYtMDAwMDA0In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    access.info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/d/DSR-2026-000004?t={token}", "1.1", 200
    )
    logging.getLogger("dsar.test").warning("downloaded via /r/DSR-2026-000004/confirm?t=%s", token)
    text = stream.getvalue()
    assert token not in text and "t=[scrubbed]" in text
    assert "/d/DSR-2026-000004" in text  # the path stays readable
