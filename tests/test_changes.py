"""Rectification, restriction, objection and opt-out for Margaret, each a plan applied and then
verified: CRM and marketing on SQLite, PostgreSQL and MariaDB, recordings on moto's S3 server.

Every test runs the real activities (tests/change_company.py) and compares whole tables before
and after: the change reaches her records and nobody else's, running it again changes nothing,
and the verification reads the change back (and fails, naming the entity, when it is undone).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from temporalio.exceptions import ApplicationError

from demo.recordings import BUCKET
from demo.seed import customers, import_marketing_contacts, preferences
from dsar.changes import Correction, corrections_for_identifier, same_value
from dsar.exemptions import Basis, Outcome, RecordDecision
from dsar.model import RequestType
from tests.change_company import HER_REQUEST, Company, lines_of, open_company

HER_ID = 1
NEW_PHONE = "+447911765432"


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def company(request: pytest.FixtureRequest, tmp_path: Path, moto_endpoint: str) -> Iterator[Company]:
    with open_company(request.param, tmp_path, moto_endpoint) as c:
        yield c


@pytest.fixture
def sqlite_company(tmp_path: Path, moto_endpoint: str) -> Iterator[Company]:
    with open_company("sqlite", tmp_path, moto_endpoint) as c:
        yield c


def others(
    snapshot: dict[str, dict[Any, dict[str, Any]]], table: str, mine: int
) -> dict[Any, dict[str, Any]]:
    return {i: r for i, r in snapshot[table].items() if i != mine}


def her_lines(c: Company) -> list[dict[str, Any]]:
    """Her delivery lines in the latest versions of the exports (found by her email)."""
    out = []
    for page in c.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="pod-exports/"):
        for entry in page.get("Contents", []):
            body = c.s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
            out += [
                line for line in lines_of(body) if line["recipient_email"].lower() == HER_REQUEST["email"]
            ]
    return out


# -- rectification -----------------------------------------------------------------------------------


def test_rectification_is_applied_and_read_back_without_the_disputed_field(company: Company) -> None:
    c = company
    reference = "DSR-2026-000301"
    crm_before, marketing_before = c.snapshot("crm"), c.snapshot("marketing")
    assert her_lines(c)
    results = c.search(reference, HER_REQUEST)
    decisions_ref, _ = c.decide(reference, results, RequestType.RECTIFICATION)
    # "my mobile number is now ...": every column holding her phone, and the courier's lines
    corrections = corrections_for_identifier(c.datamap, "phone", NEW_PHONE)
    assert {(x.system, x.entity, x.field) for x in corrections} == {
        ("crm", "customers", "phone"),
        ("marketing", "preferences", "mobile"),
    }
    corrections.append(Correction("recordings", "proof_of_delivery", "recipient_phone", NEW_PHONE))
    plan = c.plan(reference, RequestType.RECTIFICATION, HER_REQUEST, results, decisions_ref, corrections)
    assert plan.systems == ["crm", "marketing", "recordings"]
    assert {p.system: p.change for p in plan.counts} == {"crm": 1, "marketing": 1, "recordings": 3}
    letter = c.blobs.get(plan.letter_ref).decode()
    assert "Your account (Customer database): phone (1 record)" in letter and NEW_PHONE not in letter

    applied = {s: c.apply(reference, s, plan) for s in plan.systems}
    assert applied["crm"].changed == {"customers": 1}
    assert applied["marketing"].changed == {"preferences": 1}
    assert applied["recordings"].changed == {"proof_of_delivery": 3}
    # read back: found by her other identifiers (her old phone no longer finds her), checked
    for system in plan.systems:
        verified = c.verify(reference, system, plan)
        assert "read back" in verified.detail and verified.records >= 1

    crm, marketing = c.snapshot("crm"), c.snapshot("marketing")
    assert crm["customers"][HER_ID] == {**crm_before["customers"][HER_ID], "phone": NEW_PHONE}
    assert others(crm, "customers", HER_ID) == others(crm_before, "customers", HER_ID)
    assert {k: v for k, v in crm.items() if k != "customers"} == {
        k: v for k, v in crm_before.items() if k != "customers"
    }
    assert marketing["preferences"][1] == {**marketing_before["preferences"][1], "mobile": NEW_PHONE}
    assert others(marketing, "preferences", 1) == others(marketing_before, "preferences", 1)
    assert {line["recipient_phone"] for line in her_lines(c)} == {NEW_PHONE}

    # again: nothing more
    for system in plan.systems:
        assert c.apply(reference, system, plan).total == 0
    # undone behind our back: the read-back says where, never what
    c.execute("crm", update(customers).where(customers.c.id == HER_ID).values(phone="07911 123456"))
    with pytest.raises(ApplicationError) as caught:
        c.verify(reference, "crm", plan)
    assert caught.value.type == "ChangeNotVerified"
    assert caught.value.message == "crm: change not verified: customers: 1 record(s) not corrected (phone)"


def test_a_correction_of_a_key_column_is_refused_before_anything_changes(sqlite_company: Company) -> None:
    c = sqlite_company
    reference = "DSR-2026-000302"
    results = c.search(reference, HER_REQUEST)
    before = c.snapshot("crm")
    plan = c.plan(
        reference,
        RequestType.RECTIFICATION,
        HER_REQUEST,
        results,
        "",
        [Correction("crm", "customers", "id", "99")],
    )
    with pytest.raises(ApplicationError) as caught:
        c.apply(reference, "crm", plan)
    assert caught.value.type == "SystemMisconfigured" and "key or join column" in str(caught.value)
    assert c.snapshot("crm") == before
    with pytest.raises(ApplicationError, match="no field 'password'"):
        c.plan(
            reference,
            RequestType.RECTIFICATION,
            HER_REQUEST,
            results,
            "",
            [Correction("crm", "customers", "password", "x")],
        )


# -- restriction, objection, opt-out --------------------------------------------------------------------


def test_restriction_marks_her_records_everywhere_and_is_read_back(company: Company) -> None:
    c = company
    reference = "DSR-2026-000303"
    crm_before, marketing_before = c.snapshot("crm"), c.snapshot("marketing")
    results = c.search(reference, HER_REQUEST)
    decisions_ref, _ = c.decide(reference, results, RequestType.RESTRICTION)
    plan = c.plan(reference, RequestType.RESTRICTION, HER_REQUEST, results, decisions_ref)
    assert plan.systems == ["crm", "marketing", "recordings"]
    applied = {s: c.apply(reference, s, plan) for s in plan.systems}
    assert applied["crm"].changed == {"customers": 1}
    assert applied["marketing"].changed == {"preferences": 1}
    assert applied["recordings"].changed == {"call_audio": 2, "proof_of_delivery": 3}
    for system in plan.systems:
        c.verify(reference, system, plan)

    crm, marketing = c.snapshot("crm"), c.snapshot("marketing")
    assert crm["customers"][HER_ID] == {**crm_before["customers"][HER_ID], "processing_restricted": True}
    assert others(crm, "customers", HER_ID) == others(crm_before, "customers", HER_ID)
    assert marketing["preferences"][1] == {
        **marketing_before["preferences"][1],
        "processing_restricted": True,
    }
    assert others(marketing, "preferences", 1) == others(marketing_before, "preferences", 1)
    tags = c.s3.get_object_tagging(Bucket=BUCKET, Key="recordings/1/000001.wav")["TagSet"]
    assert {"Key": "dsar-restricted", "Value": "true"} in tags
    assert not c.s3.get_object_tagging(Bucket=BUCKET, Key="recordings/2/000003.wav")["TagSet"]

    for system in plan.systems:
        assert c.apply(reference, system, plan).total == 0
    c.execute(
        "marketing", update(preferences).where(preferences.c.id == 1).values(processing_restricted=False)
    )
    c.s3.delete_object_tagging(Bucket=BUCKET, Key="recordings/1/000001.wav")
    with pytest.raises(
        ApplicationError, match=r"marketing: change not verified: preferences: 1 record\(s\) without"
    ):
        c.verify(reference, "marketing", plan)
    with pytest.raises(ApplicationError, match=r"call_audio: 1 record\(s\) without the restriction marker"):
        c.verify(reference, "recordings", plan)


def test_objection_switches_marketing_off_and_a_reimport_keeps_it_off(company: Company) -> None:
    c = company
    reference = "DSR-2026-000304"
    marketing_before = c.snapshot("marketing")
    crm_before = c.snapshot("crm")
    results = c.search(reference, HER_REQUEST)
    plan = c.plan(reference, RequestType.OBJECTION, HER_REQUEST, results)
    assert plan.systems == ["marketing"]  # the only system with an objection marker
    assert c.apply(reference, "marketing", plan).changed == {"preferences": 1}
    c.verify(reference, "marketing", plan)
    assert c.suppress(reference, plan).reason == "objected"
    marketing = c.snapshot("marketing")
    assert marketing["preferences"][1] == {**marketing_before["preferences"][1], "marketing_allowed": False}
    assert others(marketing, "preferences", 1) == others(marketing_before, "preferences", 1)
    assert c.snapshot("crm") == crm_before
    assert "no longer use them for direct marketing" in c.blobs.get(plan.letter_ref).decode()

    # her address comes back in a partner's list: added, but with marketing off
    report = import_marketing_contacts(
        c.urls["marketing"],
        [{"email": HER_REQUEST["email"].upper(), "first_name": "M", "mobile": None}],
        c.suppression,
    )
    assert (report.added, report.refused, report.limited) == (1, 0, 1)
    new = max(c.snapshot("marketing")["preferences"].values(), key=lambda r: r["id"])
    assert (new["marketing_allowed"], new["email_opt_in"]) == (False, False)


def test_opt_out_of_sale_and_sharing(company: Company) -> None:
    c = company
    reference = "DSR-2026-000305"
    marketing_before = c.snapshot("marketing")
    results = c.search(reference, HER_REQUEST)
    plan = c.plan(reference, RequestType.OPT_OUT_SALE_SHARING, HER_REQUEST, results)
    assert plan.systems == ["marketing"]
    assert c.apply(reference, "marketing", plan).changed == {"preferences": 1}
    c.verify(reference, "marketing", plan)
    assert c.suppress(reference, plan).entries >= 2  # her email and phone (and her numbers)
    assert c.suppression.check({"phone": "07911 123456"}).reasons == ("opted_out",)
    marketing = c.snapshot("marketing")
    assert marketing["preferences"][1] == {
        **marketing_before["preferences"][1],
        "sale_sharing_opted_out": True,
    }
    assert others(marketing, "preferences", 1) == others(marketing_before, "preferences", 1)
    assert c.apply(reference, "marketing", plan).total == 0


def test_a_record_an_exemption_covers_is_left_as_it_is(sqlite_company: Company) -> None:
    c = sqlite_company
    reference = "DSR-2026-000306"
    before = c.snapshot("crm")
    results = c.search(reference, HER_REQUEST)
    refusal = RecordDecision(
        "crm",
        "customers",
        f"customers:{HER_ID}",
        Outcome.REFUSE,
        [],
        [Basis("uk-dpa-sch2-p1-crime", "Crime", "DPA 2018 Sch 2 para 2", "An investigation", "always")],
    )
    ref = c.blobs.put(refusal.dump(), case=reference, name="review-decisions.jsonl")
    plan = c.plan(reference, RequestType.RESTRICTION, HER_REQUEST, results, ref)
    assert next(p for p in plan.counts if p.system == "crm").exempt == 1
    assert c.apply(reference, "crm", plan).changed == {"customers": 0}
    c.verify(reference, "crm", plan)  # the exempt record is not expected to carry the marker
    assert c.snapshot("crm") == before
    assert "1 record left as they are: an exemption applies" in c.blobs.get(plan.summary_ref).decode()


def test_same_value_reads_stored_values_as_the_search_wrote_them() -> None:
    assert same_value(True, "true") and same_value(1, "yes") and not same_value(0, "true")
    assert same_value("12.50", "12.5") and same_value(12.5, "12.50")
    assert same_value("1958-03-14", "1958-03-14") and same_value("2024-01-01T10:00:00", "2024-01-01 10:00:00")
    assert same_value(None, None) and not same_value("x", None) and not same_value(None, "x")
    assert not same_value("Margaret", "margaret")
