"""The acknowledgement letter, as the person receives it through a real SMTP server: it carries the
case reference, what happens next and the date we will reply by, that date is the one the
statutory clock computes for the case, and the letter goes out within the regime's
acknowledgement deadline (CCPA: 10 business days, 11 CCR §7021(a); UK GDPR has none, LEGAL.md
§2.8, and dsar acknowledges on the day of receipt)."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from dsar.clock import ClockPolicy, DeadlineKind, DeadlineNotApplicable, StatutoryClock, primary_kind
from dsar.model import Regime, RequestType
from dsar.settings import Settings
from dsar.store import CaseRow, CaseStore
from dsar.timeutil import local_date
from dsar.wording import request_name
from intake.service import case_policy
from tests.conftest import make_settings
from tests.smtpserver import SmtpServer
from tests.test_workflow import MARGARET, start

CONTROLLER = "Northwind Post & Mobile"


@pytest.fixture
def settings(
    tmp_path: Path, demo_env: dict[str, str], register_url: str, smtp_server: SmtpServer
) -> Settings:
    """The test settings, with letters going through the real SMTP server."""
    return make_settings(
        tmp_path / "var", database_url=register_url, smtp_host=smtp_server.host, smtp_port=smtp_server.port
    )


async def letter_for(smtp: SmtpServer, reference: str, timeout: float = 15) -> EmailMessage:
    """The acknowledgement for ``reference`` once delivered (polled without blocking the loop the
    worker runs on)."""
    deadline = time.monotonic() + timeout
    while True:
        for message in list(smtp.messages):
            if reference in str(message["Subject"]) and "received your request" in str(message["Subject"]):
                return message
        assert time.monotonic() < deadline, f"no acknowledgement for {reference} arrived"
        await asyncio.sleep(0.05)


async def synced(store: CaseStore, reference: str, timeout: float = 10) -> CaseRow:
    """The register row once the workflow has written the case's deadlines to it."""
    deadline = time.monotonic() + timeout
    while (row := store.get(reference)) is None or row.due is None:
        assert time.monotonic() < deadline, f"the register never showed {reference}'s due date"
        await asyncio.sleep(0.05)
    return row


def clock_for(
    settings: Settings, regime: Regime, request_type: RequestType, received: date
) -> StatutoryClock:
    policy = case_policy(settings, regime, CONTROLLER)
    return StatutoryClock(regime, request_type, received, [], ClockPolicy.from_case_policy(policy))


@pytest.mark.parametrize(
    ("regime", "request_type"),
    [
        (Regime.CCPA, RequestType.ACCESS),
        (Regime.CCPA, RequestType.ERASURE),
        (Regime.CCPA, RequestType.RECTIFICATION),
        (Regime.UK_GDPR, RequestType.ACCESS),
        (Regime.UK_GDPR, RequestType.ERASURE),
    ],
)
async def test_the_acknowledgement_names_the_case_the_next_steps_and_the_due_date_in_time(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    smtp_server: SmtpServer,
    regime: Regime,
    request_type: RequestType,
) -> None:
    handle = await start(ts_env, store, settings, request_type=request_type, regime=regime)
    reference = handle.id
    letter = await letter_for(smtp_server, reference)

    row = await synced(store, reference)
    received = local_date(row.received_at, settings.timezone)
    clock = clock_for(settings, regime, request_type, received)
    due = clock.due(primary_kind(regime, request_type))
    body = " ".join(letter.get_body(("plain",)).get_content().split())  # as read, not as wrapped

    # To the person, with the reference, what happens next and the clock's due date.
    assert smtp_server.envelopes[smtp_server.messages.index(letter)].rcpt_tos == [MARGARET["email"]]
    assert reference in str(letter["Subject"]) and reference in body
    assert "What happens next:" in body
    assert "We will search every system in which we may hold personal data about you." in body
    assert "make sure that we are dealing with you" in body  # these types are verified first
    assert f"We will reply by {due.day} {due:%B %Y} at the latest" in body
    assert f"Thank you for your {request_name(regime, request_type).name}," in body
    assert row.due == due  # the register shows the same date

    sent = parsedate_to_datetime(str(letter["Date"])).astimezone(ZoneInfo(settings.timezone)).date()
    if regime is Regime.CCPA:
        acknowledge_by = clock.due(DeadlineKind.ACKNOWLEDGEMENT_DUE)
        assert acknowledge_by > received  # 10 business days, not the day itself
        assert row.acknowledgement_due == acknowledge_by
        assert sent <= acknowledge_by
    else:
        with pytest.raises(DeadlineNotApplicable):
            clock.due(DeadlineKind.ACKNOWLEDGEMENT_DUE)
        assert row.acknowledgement_due is None
    assert sent == received  # dsar acknowledges at once, whatever the regime allows
