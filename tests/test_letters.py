"""Golden letters: one rendered example of each letter kind per regime, kept in
``tests/data/letters/<REGIME>/<kind>.txt`` and compared word for word, so that a change of
wording is always deliberate and reviewed. To accept a change, regenerate them and read the
diff:

    DSAR_GOLDEN=update .venv/bin/python -m pytest tests/test_letters.py

Also: every letter is wrapped to 72 columns (links and passwords never broken), its HTML
alternative says exactly what its text says, no template leaves "(s)", an ISO date or a
double space, and the subject survives the trip through an email message unchanged.
"""

from __future__ import annotations

import email
import email.policy
import html
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from activities.notify import render_letter
from dsar.delivery import response_paragraph
from dsar.mail import build_message
from dsar.model import Regime, RequestType
from dsar.wording import WIDTH, letter_facts

GOLDEN = Path(__file__).resolve().parent / "data" / "letters"
KINDS = sorted(
    p.stem
    for p in (Path(__file__).resolve().parent.parent / "dsar" / "letters").glob("*.txt")
    if not p.stem.startswith("_")
)
LINK = (
    "https://privacy.northwind.example.com/r/DSR-2027-000042/provide?t=eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"
)
STATUS = "https://privacy.northwind.example.com/r/DSR-2027-000042/status?t=eyJhbGciOiJIUzI1NiJ9.e30.c3RhdHVz"
DOWNLOAD = "https://privacy.northwind.example.com/d/DSR-2027-000042?t=eyJhbGciOiJIUzI1NiJ9.e30.ZG93bmxvYWQ"

#: What each kind adds to the case's facts, as the workflow passes them.
EXTRA: dict[str, dict[str, str]] = {
    "acknowledgement": {"verification_needed": "yes", "regime_note": "", "status_link": STATUS},
    "authority_request": {
        "link": LINK,
        "reason": "a copy of the permission the person signed for you to make this request",
        "wait_until": "2027-02-04",
    },
    "breach": {},
    "clarification_request": {
        "reason": "which accounts and which years",
        "wait_until": "2027-02-04",
        "status_link": STATUS,
    },
    "confirm_request": {"link": LINK, "link_hours": "72", "purpose_text": "that you made this request"},
    "escalation": {},
    "expiry": {"awaited": "information to confirm your identity", "reason": ""},
    "extension_notice": {"reason": "your requests concern 14 years of account history"},
    "fee_request": {
        "reason": "the fifth identical request this month",
        "fee": "GBP 10.00",
        "wait_until": "2027-02-04",
    },
    "identity_more": {"link": LINK, "points_missing": "1", "wait_until": "2027-02-04", "on_behalf": ""},
    "identity_request": {
        "reason": "a copy of a recent utility bill",
        "wait_until": "2027-02-04",
        "status_link": STATUS,
    },
    "manual_escalation": {
        "system": "cctv",
        "days": "7",
        "owner": "facilities@northwind.example.com",
        "instructions": "Search the CCTV recorder at the Coventry depot.",
    },
    "manual_reminder": {
        "system": "cctv",
        "instructions": "Search the CCTV recorder at the Coventry depot.",
        "task_link": "https://privacy.northwind.example.com/console/tasks/DSR-2027-000042/cctv",
    },
    "manual_search": {
        "system": "cctv",
        "instructions": "Search the CCTV recorder at the Coventry depot.",
        "task_link": "https://privacy.northwind.example.com/console/tasks/DSR-2027-000042/cctv",
    },
    "merged": {"merged_into": "DSR-2027-000040", "merged_due": "2027-02-03"},
    "operator_task": {
        "task": "fulfilling:apply:crm",
        "step": "erase the person's data in crm",
        "error": "ChangeRefused",
        "ways_out": "retry_step, skip_step, done_by_hand",
        "system": "crm",
        "case_link": "https://privacy.northwind.example.com/console/cases/DSR-2027-000042",
    },
    "nothing_held": {
        "searched": "our customer database and our marketing database",
        "skipped": "",
        "retention_days": "365",
    },
    "package_password": {"password": "2HWW-ND4M-5TWH-5EE4-DB6E-R2E7"},
    "person_reminder": {"awaited": "information to confirm your identity", "wait_until": "2027-02-04"},
    "rejection": {
        "reason": "we consider the request excessive (Art. 12(5)): the fifth identical request this month"
    },
    "reminder": {"days_left": "7"},
    "response": {
        "outcome": response_paragraph(DOWNLOAD, datetime(2027, 2, 4, 17, 30, tzinfo=UTC), encrypted=True),
        "also_answers": "DSR-2027-000043",
    },
    "system_unreachable": {"system": "crm", "since": "2027-01-05 10:02", "attempts": "8"},
    "withdrawal": {"reason": "withdrawn at the person's request"},
}


def facts(regime: Regime, kind: str) -> dict[str, str]:
    base = letter_facts(
        "DSR-2027-000042",
        regime,
        RequestType.ACCESS,
        greeting="Margaret Ellis",
        controller="Northwind Post & Mobile Ltd",
        received="2027-01-05",
        due="2027-02-05",
        stage="verifying",
        waiting_for="operator: identity check",
        clock_note="The time we have to respond starts again when we receive it."
        if kind in ("identity_request", "authority_request", "fee_request") and regime is Regime.UK_GDPR
        else "",
    )
    return {**base, **EXTRA[kind]}


def rendered(regime: Regime, kind: str) -> tuple[str, str, str]:
    return render_letter(kind, facts(regime, kind))


CASES = [(regime, kind) for regime in Regime for kind in KINDS]


def test_every_letter_kind_has_an_example() -> None:
    assert set(KINDS) == set(EXTRA), "a new letter kind needs its example facts here"


@pytest.mark.parametrize(("regime", "kind"), CASES, ids=[f"{r.value}-{k}" for r, k in CASES])
def test_the_letter_is_the_golden_one(regime: Regime, kind: str) -> None:
    subject, text, _ = rendered(regime, kind)
    letter = f"Subject: {subject}\n\n{text}"
    path = GOLDEN / regime.value / f"{kind}.txt"
    if os.environ.get("DSAR_GOLDEN") == "update":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(letter)
    assert path.exists(), f"no golden letter {path}: run with DSAR_GOLDEN=update and review it"
    assert letter == path.read_text(), (
        f"{path} changed: if deliberate, DSAR_GOLDEN=update and review the diff"
    )


def _words_of_html(page: str) -> str:
    body = page.split("<body", 1)[1].split(">", 1)[1]
    body = re.sub(r"<a href=\"[^\"]*\">", "", body)
    body = re.sub(r"</li>", " ", body)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.mark.parametrize(("regime", "kind"), CASES, ids=[f"{r.value}-{k}" for r, k in CASES])
def test_the_letter_reads_cleanly_in_text_and_html_alike(regime: Regime, kind: str) -> None:
    subject, text, page = rendered(regime, kind)
    long_lines = [line for line in text.splitlines() if len(line) > WIDTH and " " in line.strip()]
    assert not long_lines, "wrapped beyond the width (only an unbreakable link or command may be)"
    assert "(s)" not in text and "  " not in subject
    assert not [line for line in text.splitlines() if "  " in line.strip()], "a double space"
    assert not re.search(r"\b\d{4}-\d{2}-\d{2}\b", text + subject.replace(kind, "")), "ISO date"
    assert " a erasure" not in text and " a access" not in text
    # the HTML alternative has the same words, list markers aside
    plain = " ".join(line.removeprefix("- ") for line in text.split())
    assert _words_of_html(page) == " ".join(w for w in plain.split() if w != "-")
    # the subject, sent and read back, is what was written (no folding artefact)
    msg = build_message(
        "DSR-2027-000042/letter/x/1", "privacy@northwind.example.com", "m@example.com", subject, text, page
    )
    back = email.message_from_bytes(bytes(msg), policy=email.policy.default)
    assert str(back["Subject"]) == subject
    assert back.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
    if kind not in (
        "breach",
        "escalation",
        "reminder",
        "manual_escalation",
        "manual_reminder",
        "manual_search",
        "operator_task",
        "system_unreachable",
    ):
        assert text.rstrip().endswith("Yours sincerely,\n\nThe privacy team, Northwind Post & Mobile Ltd")
