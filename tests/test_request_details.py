"""Email intake reads what the request type needs where the message states it plainly
(``intake.request_details``), and carries it into the parsed message."""

from __future__ import annotations

from email.message import EmailMessage

from dsar.model import RequestType
from intake.mailparse import parse_message
from intake.request_details import request_details


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
