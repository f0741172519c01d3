"""Email intake reads what the request type needs where the message states it plainly
(``intake.request_details``), and carries it into the parsed message."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from console.app import create_app
from demo.seed import MARGARET
from dsar.model import RequestType
from dsar.settings import Settings
from dsar.store import CaseStore
from intake.mail import parse_message
from intake.request_details import request_details
from tests.conftest import make_settings
from tests.test_api import bearer
from tests.test_links import verifying_map
from tests.test_workflow import start, wait_until
from workflows.request import DataSubjectRequest


@pytest.fixture
def settings(tmp_path: Path, demo_env: dict[str, str], register_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url=register_url, datamap=verifying_map())


def test_corrections_are_read_from_plain_wording() -> None:
    text = (
        "Dear team,\nMy address is out of date. Please change my address from 12 Orchard Lane to "
        "3 Mill Road, Coventry. Thank you.\nAlso my email should be m.ellis@example.net\n"
        "My correct date of birth is 27 March 1985."
    )
    details = request_details(text, RequestType.RECTIFICATION)
    assert details.corrections == {
        "postal_address": "3 Mill Road, Coventry",
        "email": "m.ellis@example.net",
        "date_of_birth": "27 March 1985",
    }
    assert request_details(text, RequestType.ACCESS).corrections == {}  # only for a rectification
    assert request_details("Please correct my records.", RequestType.RECTIFICATION).corrections == {}


def test_the_receiving_company_and_the_use_objected_to() -> None:
    port = request_details(
        "Please send my data directly to https://intake.othercompany.example/dsar.", RequestType.PORTABILITY
    )
    assert port.transfer_to == "https://intake.othercompany.example/dsar"
    assert request_details("My data: http://x.example", RequestType.PORTABILITY).transfer_to == ""
    objection = request_details(
        "I object to the use of my data for direct marketing. Regards", RequestType.OBJECTION
    )
    assert objection.objection == "the use of my data for direct marketing"


def test_a_rectification_email_carries_its_correction() -> None:
    msg = EmailMessage()
    msg["From"] = "Margaret Ellis <margaret.ellis@example.com>"
    msg["To"] = "privacy@northwind.example"
    msg["Subject"] = "Rectification request"
    msg["Message-ID"] = "<rect-1@example.com>"
    msg.set_content(
        "Hello,\n\nUnder Article 16 GDPR I ask you to rectify my personal data: my name should be "
        "Margaret Ellis-Hart.\n\nMargaret Ellis\n"
    )
    parsed = parse_message(bytes(msg))
    assert parsed.request_type is RequestType.RECTIFICATION
    assert parsed.details.corrections == {"name": "Margaret Ellis-Hart"}
    assert "Ellis-Hart" not in parsed.reason  # the reason names rules, never values


async def test_an_operator_adds_what_the_request_needs_later_as_a_decision(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    ids = {"name": MARGARET["name"], "email": "margaret.home@example.net"}
    h = await start(ts_env, store, settings, request_type=RequestType.RECTIFICATION, identifiers=ids)
    await wait_until(h, lambda s: s.waiting_for == "person: identity")  # still early: details can come
    app = create_app(settings, client=ts_env.client, store=store)
    operator = bearer(settings, "operator")
    path = f"/api/v1/requests/{h.id}/decisions"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as api:
        added = await api.post(
            path,
            headers=operator,
            json={"kind": "add_details", "corrections": {"postal_address": "3 Mill Road"}},
        )
        assert added.status_code == 200, added.text
        wrong_type = await api.post(
            path, headers=operator, json={"kind": "add_details", "transfer_to": "https://other.example/in"}
        )
        assert wrong_type.status_code == 409 and "only a portability request" in wrong_type.text
        bad = await api.post(
            path, headers=operator, json={"kind": "add_details", "corrections": {"name": "Margaret\x00Ellis"}}
        )
        assert bad.status_code == 422 and "Margaret" not in bad.text
        nothing = await api.post(path, headers=operator, json={"kind": "add_details"})
        assert nothing.status_code == 409
        # The case page offers the same decision as a form, for this request type's details.
        page = await api.get(f"/console/cases/{h.id}", headers=operator)
        assert page.status_code == 200 and 'name="correction_kind"' in page.text
        assert 'name="transfer_to"' not in page.text
        form = {"kind": "add_details", "correction_kind": "phone", "correction_value": "+44 7700 900123"}
        posted = await api.post(f"/console/cases/{h.id}/decisions", headers=operator, data=form)
        assert posted.status_code == 303, posted.text
    details = await h.query(DataSubjectRequest.details)
    assert details.corrections == {"postal_address": "3 Mill Road", "phone": "+44 7700 900123"}
    entry, _ = [e for e in store.audit_trail(h.id) if e.action == "decision:add_details"]
    assert entry.details["added"] == "postal_address" and "Mill Road" not in str(entry.details)
