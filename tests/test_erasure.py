"""Verified erasure of Margaret from the demo company: CRM and marketing on SQLite, PostgreSQL
and MariaDB, call recordings and delivery exports in a versioned bucket on moto's S3 server.

A case runs the real activities (tests/change_company.py): search, the data map's exemption
rules as the review's decisions file, then plan, apply and verify per system, and the
suppression list. Tables and buckets are compared whole before and after: erasure leaves only
retained records, touches nobody else's, and running it twice changes nothing more. A worker
stopped between two systems is replaced and the case finishes without redoing the first.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, update
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.change import (
    ChangeApplied,
    ChangeInput,
    ChangePlan,
    ChangePlanInput,
    ChangeVerified,
    SuppressionInput,
    SuppressionRecorded,
)
from activities.search import system_task_queue
from connectors.base import ErasurePlan, Subject, connector_for, row_record_key
from demo.recordings import BUCKET
from demo.seed import MARGARET, customers, import_marketing_contacts, support_tickets
from dsar.erasure import (
    ErasureNotVerified,
    ErasurePlanError,
    build_erasure_plans,
    resolve_subject,
    summarise_erasure,
    verify_erasure,
)
from dsar.exemptions import Basis, FieldDecision, Outcome, RecordDecision, record_key
from dsar.model import RequestType, SystemResult
from dsar.settings import Settings
from dsar.suppression import SuppressionList, SuppressionReason, check_lines, identifiers_of, normalise
from tests.change_company import HASH_KEY, HER_REQUEST, SUPPRESSION_KEY, Company, lines_of, open_company

HER_ID = 1
HER_EMAIL = MARGARET["email"]
HER_PHONE_E164 = "+447911123456"
#: Text that would show a value escaped into a message: her name, email, phone, account number.
HER_VALUES = ("margaret", "ellis", "example.com", "7911", "123456", "nw100001")


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def company(request: pytest.FixtureRequest, tmp_path: Path, moto_endpoint: str) -> Iterator[Company]:
    with open_company(request.param, tmp_path, moto_endpoint) as c:
        yield c


@pytest.fixture
def sqlite_company(tmp_path: Path, moto_endpoint: str) -> Iterator[Company]:
    with open_company("sqlite", tmp_path, moto_endpoint) as c:
        yield c


def hers(snapshot: dict[str, dict[Any, dict[str, Any]]]) -> dict[str, set[Any]]:
    """Her rows, table by table, from a CRM snapshot (through the relations, as the data map)."""
    orders = {i for i, r in snapshot["orders"].items() if r["customer_id"] == HER_ID}
    out = {
        table: {i for i, r in snapshot[table].items() if r.get("customer_id") == HER_ID}
        for table in snapshot
        if table not in ("customers", "orders", "payments", "parcels")
    }
    out.update(
        customers={HER_ID},
        orders=orders,
        payments={i for i, r in snapshot["payments"].items() if r["order_id"] in orders},
        parcels={i for i, r in snapshot["parcels"].items() if r["order_id"] in orders},
    )
    return out


def run_case(c: Company, reference: str) -> tuple[list[SystemResult], list[RecordDecision], ChangePlan]:
    results = c.search(reference, HER_REQUEST)
    assert [r.status for r in results] == ["found"] * 3, [r.detail for r in results]
    decisions_ref, decisions = c.decide(reference, results, RequestType.ERASURE)
    plan = c.plan(reference, RequestType.ERASURE, HER_REQUEST, results, decisions_ref)
    return results, decisions, plan


# -- the whole case ---------------------------------------------------------------------------------


def test_erasure_leaves_only_retained_records_and_the_re_search_proves_it(company: Company) -> None:
    c = company
    reference = "DSR-2026-000201"
    crm_before, marketing_before = c.snapshot("crm"), c.snapshot("marketing")
    objects_before = c.objects()
    mine = hers(crm_before)
    assert all(mine.values())

    _, decisions, plan = run_case(c, reference)
    decided = {(d.entity, d.key): d for d in decisions}
    assert plan.systems == ["crm", "marketing", "recordings"]
    assert plan.manual == ["cctv"]
    counts = {p.system: p for p in plan.counts}
    assert (
        counts["marketing"].delete
        == counts["marketing"].records
        == 1 + len([r for r in marketing_before["campaign_events"].values() if r["preference_id"] == 1])
    )
    assert counts["crm"].records == sum(len(ids) for ids in mine.values())
    summary = c.blobs.get(plan.summary_ref).decode()
    letter = c.blobs.get(plan.letter_ref).decode()
    assert "Money Laundering Regulations" in summary and "Money Laundering Regulations" in letter
    # the open fraud investigation is kept, and the letter does not tip her off
    assert "open fraud investigation" in summary and "fraud" not in letter.split("What we kept")[1]
    for text in (summary, letter):
        assert not any(value in text.lower() for value in HER_VALUES)

    applied = {system: c.apply(reference, system, plan) for system in plan.systems}
    verified = {system: c.verify(reference, system, plan) for system in plan.systems}
    assert c.suppress(reference, plan) == SuppressionRecorded(4, "erased")

    # -- the CRM: her rows deleted, anonymised or kept exactly as decided; nobody else's touched
    crm = c.snapshot("crm")
    for table, rows in crm_before.items():
        for i, row in rows.items():
            if i not in mine[table]:
                assert crm[table][i] == row, (table, i)
    kept_whole = {
        (table, i)
        for table in mine
        for i in mine[table]
        if (d := decided.get((table, f"{table}:{i}"))) is not None
        and d.outcome is Outcome.RETAIN
        and not d.fields
    }
    # the exemptions that bite: an open fraud investigation, the MLR identity check, the
    # legal advice on her complaint; payments by the data map
    fraud = {i: r for i, r in crm_before["fraud_markers"].items() if i in mine["fraud_markers"]}
    open_marker = next(i for i, r in fraud.items() if r["status"] == "open")
    closed_marker = next(i for i, r in fraud.items() if r["status"] == "closed")
    advice = next(
        i for i in mine["complaint_notes"] if crm_before["complaint_notes"][i]["kind"] == "legal_advice"
    )
    assert {("fraud_markers", open_marker), ("complaint_notes", advice)} <= kept_whole
    assert {("identity_documents", i) for i in mine["identity_documents"]} <= kept_whole
    assert ("fraud_markers", closed_marker) not in kept_whole
    for table in (
        "support_tickets",
        "parcels",
        "call_recordings",
        "fraud_markers",
        "identity_documents",
        "complaint_notes",
    ):
        for i in mine[table]:
            if (table, i) in kept_whole:
                assert crm[table][i] == crm_before[table][i], (table, i)
            else:
                assert i not in crm[table], (table, i)
    assert {i: crm["payments"][i] for i in mine["payments"]} == {
        i: crm_before["payments"][i] for i in mine["payments"]
    }
    for i in mine["orders"]:  # the sale stays in the books, the delivery address goes
        assert crm["orders"][i] == {**crm_before["orders"][i], "delivery_address": None}
    account = hmac.new(
        bytes.fromhex(HASH_KEY), MARGARET["account_number"].encode(), hashlib.sha256
    ).hexdigest()
    assert (
        crm["customers"][HER_ID]
        == {
            **crm_before["customers"][HER_ID],
            "full_name": "erased",
            "email": "erased",  # NOT NULL: the placeholder
            "phone": None,
            "postcode": None,
            "address": None,
            "date_of_birth": None,
            "account_number": account[:20],
        }
    )
    assert applied["crm"].deleted["support_tickets"] == len(mine["support_tickets"])
    assert applied["crm"].kept["fraud_markers"] == 1

    # -- marketing: her preferences and campaign history gone, nothing else
    marketing = c.snapshot("marketing")
    assert marketing["preferences"] == {i: r for i, r in marketing_before["preferences"].items() if i != 1}
    assert marketing["campaign_events"] == {
        i: r for i, r in marketing_before["campaign_events"].items() if r["preference_id"] != 1
    }

    # -- the recordings store: every version of her audio gone, her delivery lines emptied in
    # every version that held them, everybody else's objects and lines as they were
    objects = c.objects()
    assert not [key for key, _ in objects if key.startswith("recordings/1/")]
    assert not [key for key, _ in c.markers() if key.startswith("recordings/1/")]
    for (key, version), body in objects_before.items():
        if key.startswith("recordings/") and not key.startswith("recordings/1/"):
            assert objects[(key, version)] == body
    for body in objects.values():
        assert HER_EMAIL not in body.decode().lower() and HER_PHONE_E164 not in body.decode()
    latest = {key: body for (key, version), body in objects.items() if key.startswith("pod-exports/")}
    others_before = sorted(
        json.dumps(line, sort_keys=True)
        for (key, _), body in objects_before.items()
        if key.startswith("pod-exports/")
        for line in lines_of(body)
        if line["recipient_email"].lower() != HER_EMAIL
    )
    others_after = sorted(
        json.dumps(line, sort_keys=True) for body in latest.values() for line in lines_of(body)
    )
    assert others_after == others_before  # (each export had one version: no older copies)

    # -- the re-search: only what is kept, and what is anonymised, is found again
    kept_crm = len(kept_whole)  # payments included (the data map keeps them)
    assert verified["crm"].records == kept_crm + 1 + len(mine["orders"])
    assert f"{kept_crm} kept as planned" in verified["crm"].detail
    assert verified["marketing"].records == verified["recordings"].records == 0

    # -- again: nothing more changes, and it still verifies
    for system in plan.systems:
        again = c.apply(reference, system, plan)
        assert again.total == 0, again
    assert c.snapshot("crm") == crm and c.snapshot("marketing") == marketing
    assert c.objects() == objects
    for system in plan.systems:
        c.verify(reference, system, plan)
    assert c.suppress(reference, plan) == SuppressionRecorded(0, "erased")
    assert sorted(c.suppression.entries(reference)) == [
        ("account_number", "erased"),
        ("customer_id", "erased"),
        ("email", "erased"),
        ("phone", "erased"),
    ]

    # -- an import cannot bring her back; a newcomer is added
    report = import_marketing_contacts(
        c.urls["marketing"],
        [
            {"email": " Margaret.Ellis@EXAMPLE.com", "first_name": "Margaret", "mobile": None},
            {"email": "maggie@example.net", "first_name": "Maggie", "mobile": "07911 123456"},
            {"email": "new.customer@example.org", "first_name": "Nia", "mobile": None},
        ],
        c.suppression,
    )
    assert (report.added, report.refused) == (1, 2)
    emails = {r["email"].strip().lower() for r in c.snapshot("marketing")["preferences"].values()}
    assert (
        "new.customer@example.org" in emails
        and HER_EMAIL not in emails
        and "maggie@example.net" not in emails
    )


def test_a_failed_verification_names_system_entity_and_count_never_values(sqlite_company: Company) -> None:
    c = sqlite_company
    reference = "DSR-2026-000202"
    _, _, plan = run_case(c, reference)
    for system in plan.systems:
        c.apply(reference, system, plan)
    # something of hers comes back behind the erasure's back: a new ticket, her phone on the
    # anonymised account, a call recording under her customer number
    c.execute(
        "crm",
        insert(support_tickets).values(
            id=99_999,
            customer_id=HER_ID,
            opened_at=datetime(2026, 4, 2),
            channel="email",
            subject="Still here?",
            body=f"From {HER_EMAIL}",
            status="open",
        ),
    )
    c.execute("crm", update(customers).where(customers.c.id == HER_ID).values(phone=HER_PHONE_E164))
    c.s3.put_object(Bucket=BUCKET, Key="recordings/1/009999.wav", Body=b"RIFF")

    with pytest.raises(ApplicationError) as caught:
        c.verify(reference, "crm", plan)
    error = caught.value
    assert error.type == "ChangeNotVerified" and error.non_retryable
    message = str(error)
    assert "crm: erasure not verified" in message
    assert "support_tickets: 1 record(s) that should be erased remain" in message
    assert "customers: 1 record(s) that should be erased remain (fields still holding data: phone)" in message
    assert not any(value in message.lower() for value in HER_VALUES)

    with pytest.raises(ApplicationError, match=r"recordings: erasure not verified: call_audio: 1 record"):
        c.verify(reference, "recordings", plan)
    c.verify(reference, "marketing", plan)

    # applying again repairs it, and then it verifies
    again = c.apply(reference, "crm", plan)
    assert again.deleted["support_tickets"] == 1 and again.anonymised["customers"] == 1
    assert c.apply(reference, "recordings", plan).deleted["call_audio"] == 1
    for system in plan.systems:
        c.verify(reference, system, plan)


# -- records kept in part, and what kept records hang from -------------------------------------------


def _retain(system: str, entity: str, key: str, fields: tuple[str, ...] = ()) -> RecordDecision:
    basis = [
        Basis(
            "gdpr-17-3-e-legal-claims", "Legal claims", "UK GDPR Art 17(3)(e)", "A claim is pending", "always"
        )
    ]
    return RecordDecision(
        system, entity, key, Outcome.RETAIN, [FieldDecision(f, Outcome.RETAIN, basis) for f in fields],
        [] if fields else basis,
    )  # fmt: skip


def test_a_record_kept_in_part_is_anonymised_and_what_a_kept_record_hangs_from_stays(
    company: Company,
) -> None:
    """A support ticket (a deleted entity) keeps its date and channel, the rest erased; one
    campaign event is kept whole, so her preferences row, which it hangs from, is anonymised
    rather than deleted (the kept event still points at it)."""
    c = company
    crm_before, marketing_before = c.snapshot("crm"), c.snapshot("marketing")
    ticket = min(hers(crm_before)["support_tickets"])
    events = sorted(i for i, r in marketing_before["campaign_events"].items() if r["preference_id"] == 1)
    kept_event = events[0]
    decisions = [
        _retain("crm", "support_tickets", f"support_tickets:{ticket}", ("opened_at", "channel")),
        _retain("marketing", "campaign_events", f"campaign_events:{kept_event}"),
    ]
    subjects = {
        "crm": Subject(dict(HER_REQUEST), [f"customers:{HER_ID}"]),
        "marketing": Subject(dict(HER_REQUEST), ["preferences:1"]),
    }
    plans = build_erasure_plans(
        c.datamap, subjects, decisions, systems=["crm", "marketing"], hash_key=HASH_KEY
    )
    step = next(s for s in plans[0].entities if s.entity == "support_tickets")
    assert step.keep_fields == {f"support_tickets:{ticket}": ["channel", "opened_at"]}

    records = []
    for system in ("crm", "marketing"):
        sink = io.BytesIO()
        connector_for(c.datamap.system(system)).collect(
            HER_REQUEST, sink, person_keys=subjects[system].person_keys
        )
        records += [(system, line["entity"], line["record"]) for line in lines_of(sink.getvalue())]
    summary = summarise_erasure(c.datamap, plans, decisions, records)
    preferences_line = next(e for e in summary.entities if e.entity == "preferences")
    assert (preferences_line.delete, preferences_line.anonymise) == (0, 1)
    events_line = next(e for e in summary.entities if e.entity == "campaign_events")
    assert (events_line.delete, events_line.kept_records) == (len(events) - 1, 1)
    assert "A claim is pending" in summary.for_person()
    # every record counted once: a ticket kept in part is kept (the rest anonymised), not both
    tickets_line = next(e for e in summary.entities if e.entity == "support_tickets")
    assert tickets_line.delete + tickets_line.anonymise + tickets_line.kept_records == tickets_line.found
    totals = summary.totals()
    assert totals["delete"] + totals["anonymise"] + totals["keep"] == totals["found"] == len(records)
    assert "; the rest anonymised" in summary.render()

    for plan in plans:
        connector_for(c.datamap.system(plan.system)).erase(plan)
        verify_erasure(c.datamap.system(plan.system), connector_for(c.datamap.system(plan.system)), plan)

    crm, marketing = c.snapshot("crm"), c.snapshot("marketing")
    before = crm_before["support_tickets"][ticket]
    assert crm["support_tickets"][ticket] == {
        **before, "subject": "erased", "body": "erased", "status": "erased"
    }  # fmt: skip
    assert [i for i in hers(crm_before)["support_tickets"] if i in crm["support_tickets"]] == [ticket]
    assert marketing["campaign_events"][kept_event] == marketing_before["campaign_events"][kept_event]
    assert not set(events[1:]) & set(marketing["campaign_events"])
    row = marketing["preferences"][1]
    assert (row["email"], row["first_name"], row["mobile"]) == ("erased", None, None)
    for plan in plans:  # again: nothing more
        result = connector_for(c.datamap.system(plan.system)).erase(plan)
        assert sum(result.deleted.values()) + sum(result.anonymised.values()) == 0


def test_a_kept_object_version_stays_and_every_other_version_and_delete_marker_goes(
    sqlite_company: Company,
) -> None:
    c = sqlite_company
    s3 = c.s3
    # a second take of one call, and a call "deleted" in the console (a delete marker that hides
    # its audio, which must still be erased)
    s3.put_object(Bucket=BUCKET, Key="recordings/1/000001.wav", Body=b"RIFF take two")
    s3.delete_object(Bucket=BUCKET, Key="recordings/1/000002.wav")
    versions = sorted((k, v) for k, v in c.objects() if k.startswith("recordings/1/"))
    assert len(versions) == 3 and [k for k, _ in c.markers() if k.startswith("recordings/1/")]
    first_take = next(
        (k, v)
        for k, v in versions
        if k == "recordings/1/000001.wav" and c.objects()[(k, v)] != b"RIFF take two"
    )
    audio = c.datamap.system("recordings").entities["call_audio"]
    kept_key = row_record_key(audio, {"key": first_take[0], "version_id": first_take[1]})
    assert kept_key == record_key(audio, {"key": first_take[0], "version_id": first_take[1]}, 1)
    decisions = [_retain("recordings", "call_audio", kept_key)]
    subject = Subject({"customer_id": "1"}, [])
    (plan,) = build_erasure_plans(c.datamap, subject, decisions, systems=["recordings"])
    system = c.datamap.system("recordings")
    plan.subject = resolve_subject(connector_for(system), subject)
    erased = connector_for(system).erase(plan)
    assert erased.deleted["call_audio"] == 2 and erased.kept == {"call_audio": 1}
    assert [(k, v) for k, v in c.objects() if k.startswith("recordings/1/")] == [first_take]
    assert not [k for k, _ in c.markers() if k.startswith("recordings/1/000002")]
    check = verify_erasure(system, connector_for(system), plan)
    assert check.entities["call_audio"].kept == 1 and check.verified
    assert connector_for(system).erase(plan).deleted["call_audio"] == 0


def test_a_plan_that_keeps_records_of_an_entity_without_a_key_is_refused(sqlite_company: Company) -> None:
    decisions = [_retain("crm", "support_tickets", "support_tickets#2")]
    with pytest.raises(ErasurePlanError, match="named by its position"):
        build_erasure_plans(sqlite_company.datamap, Subject({}, []), decisions)
    with pytest.raises(ErasurePlanError, match="system 'billing'"):
        build_erasure_plans(sqlite_company.datamap, Subject({}, []), [_retain("billing", "x", "x:1")])


def test_verification_without_the_plan_applied_fails(sqlite_company: Company) -> None:
    """The proof is not vacuous: before anything is erased, the re-search finds it all."""
    c = sqlite_company
    system = c.datamap.system("crm")
    (plan,) = build_erasure_plans(
        c.datamap, Subject(dict(HER_REQUEST), [f"customers:{HER_ID}"]), [], systems=["crm"], hash_key=HASH_KEY
    )
    with pytest.raises(ErasureNotVerified) as caught:
        verify_erasure(system, connector_for(system), plan)
    assert not caught.value.check.verified
    assert {p.split(":")[0] for p in caught.value.check.problems()} >= {
        "customers",
        "orders",
        "support_tickets",
    }
    assert isinstance(plan, ErasurePlan)


# -- the suppression list ---------------------------------------------------------------------------


def test_suppression_holds_keyed_hashes_only_and_matches_however_the_identifier_is_written(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'register.db'}"
    entries = SuppressionList(url, SUPPRESSION_KEY)
    identifiers = {
        "email": [" Margaret.Ellis@Example.com"],
        "phone": ["07911 123456"],
        "name": ["Margaret Ellis"],
    }
    assert entries.add("DSR-2026-000203", SuppressionReason.ERASED, identifiers) == 2  # no name
    assert entries.add("DSR-2026-000203", SuppressionReason.ERASED, identifiers) == 0  # idempotent
    assert entries.add("DSR-2026-000204", SuppressionReason.OBJECTED, {"email": HER_EMAIL}) == 1
    for written in (
        {"email": "MARGARET.ELLIS@EXAMPLE.COM"},
        {"phone": "+44 (0)7911 123-456"},
        {"phone": HER_PHONE_E164},
    ):
        match = entries.check(written)
        assert match.suppressed and not match.may_be_added, written
    assert entries.check({"email": HER_EMAIL}).reasons == ("erased", "objected")
    # a namesake, a household, a stranger
    for other in ({"name": "Margaret Ellis"}, {"postcode": "CV3 4LP"}, {"email": "m.ellis@example.org"}):
        assert not entries.is_suppressed(other), other
    # without the key, nothing matches
    assert not SuppressionList(url, b"another key, 32 bytes long......").is_suppressed({"email": HER_EMAIL})
    raw = (tmp_path / "register.db").read_bytes().lower()
    assert b"margaret" not in raw and b"7911" not in raw and b"example.com" not in raw
    assert normalise("phone", "07911 123456") == normalise("phone", "+44 7911 123456") == HER_PHONE_E164
    assert normalise("phone", "not a number") is None and normalise("email", "nobody") is None
    entries.close()


def test_suppression_check_says_which_candidates_must_not_be_added(tmp_path: Path) -> None:
    entries = SuppressionList(f"sqlite:///{tmp_path / 'register.db'}", SUPPRESSION_KEY)
    entries.add("DSR-2026-000205", SuppressionReason.ERASED, {"email": HER_EMAIL})
    entries.add("DSR-2026-000206", SuppressionReason.OPTED_OUT, {"phone": "07700 900318"})
    candidates = [
        json.dumps({"email": "margaret.ellis@example.com ", "first_name": "M"}),
        json.dumps({"email": "aisha@example.net", "mobile": "+44 7700 900318"}),
        json.dumps({"email": "someone@example.org"}),
        "not json",
    ]
    out = io.StringIO()
    code = check_lines(candidates, entries, {"mobile": "phone"}, out)
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert answers == [
        {"line": 1, "add": "no", "reasons": ["erased"], "matched": ["email"]},
        {"line": 2, "add": "yes, with no sale or sharing", "reasons": ["opted_out"], "matched": ["phone"]},
        {"line": 3, "add": "yes", "reasons": [], "matched": []},
        {"line": 4, "error": "not a JSON object"},
    ]
    assert code == 2  # an unreadable line
    assert check_lines(candidates[:3], entries, {"mobile": "phone"}, io.StringIO()) == 1
    assert check_lines(candidates[2:3], entries, {}, io.StringIO()) == 0
    assert "margaret" not in out.getvalue()
    assert identifiers_of({"mobile": "07911", "email": True, "customer_id": 7}, {"mobile": "phone"}) == {
        "phone": ["07911"],
        "customer_id": ["7"],
    }
    entries.close()


def test_dsar_suppression_check_command(tmp_path: Path) -> None:
    """The command an import script runs: exit 1 when a record must not be added."""
    env_key = base64.b64encode(b"k" * 32).decode()
    db = f"sqlite:///{tmp_path / 'dsar.db'}"
    settings = Settings(var_dir=tmp_path, database_url=db, suppression_key=env_key)
    SuppressionList.from_settings(settings).add(
        "DSR-2026-000207", SuppressionReason.ERASED, {"email": HER_EMAIL}
    )
    candidates = tmp_path / "candidates.jsonl"
    candidates.write_text(
        json.dumps({"Email": HER_EMAIL}) + "\n" + json.dumps({"email": "x@example.org"}) + "\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "dsar.cli", "suppression", "check", "--field", "Email=email", str(candidates)],
        capture_output=True,
        text=True,
        env={
            "DSAR_VAR_DIR": str(tmp_path),
            "DSAR_DATABASE_URL": db,
            "DSAR_SUPPRESSION_KEY": env_key,
            "PATH": "",
        },
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    assert [json.loads(line)["add"] for line in run.stdout.splitlines()] == ["no", "yes"]
    bad = subprocess.run(
        [sys.executable, "-m", "dsar.cli", "suppression", "check", "--field", "Email=shoe_size"],
        capture_output=True,
        text=True,
        env={
            "DSAR_VAR_DIR": str(tmp_path),
            "DSAR_DATABASE_URL": db,
            "DSAR_SUPPRESSION_KEY": env_key,
            "PATH": "",
        },
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    assert bad.returncode == 2 and "expected COLUMN=KIND" in bad.stderr and "Traceback" not in bad.stderr


# -- a worker stopped between two systems -------------------------------------------------------------


@workflow.defn(sandboxed=False)
class EraseAcrossSystems:
    """The shape the case workflow gives fulfilment: plan, then each system applied on its own
    task queue (its result recorded before the next starts), then each verified, then the
    suppression entries."""

    @workflow.run
    async def run(self, inp: ChangePlanInput) -> list[ChangeApplied]:
        plan = await workflow.execute_activity(
            "plan_change", inp, start_to_close_timeout=timedelta(minutes=2), result_type=ChangePlan
        )
        queue = workflow.info().task_queue
        applied = []
        for system in plan.systems:
            applied.append(
                await workflow.execute_activity(
                    "apply_change",
                    ChangeInput(inp.reference, system, plan.plan_ref),
                    task_queue=system_task_queue(queue, system),
                    start_to_close_timeout=timedelta(minutes=5),
                    heartbeat_timeout=timedelta(minutes=1),
                    result_type=ChangeApplied,
                )
            )
        for system in plan.systems:
            await workflow.execute_activity(
                "verify_change",
                ChangeInput(inp.reference, system, plan.plan_ref),
                task_queue=system_task_queue(queue, system),
                start_to_close_timeout=timedelta(minutes=5),
                result_type=ChangeVerified,
            )
        await workflow.execute_activity(
            "record_suppression",
            SuppressionInput(inp.reference, plan.plan_ref),
            start_to_close_timeout=timedelta(minutes=1),
            result_type=SuppressionRecorded,
        )
        return applied


@pytest.fixture
def pg_company(tmp_path: Path, moto_endpoint: str) -> Iterator[Company]:
    with open_company("postgresql", tmp_path, moto_endpoint) as c:
        yield c


async def test_a_worker_stopped_between_two_systems_resumes_without_double_effects(
    ts_env: WorkflowEnvironment, pg_company: Company
) -> None:
    c = pg_company
    reference = "DSR-2026-000208"
    results = await asyncio.to_thread(c.search, reference, HER_REQUEST)
    decisions_ref, _ = await asyncio.to_thread(c.decide, reference, results, RequestType.ERASURE)
    marketing_before = c.snapshot("marketing")
    queue = f"erase-{uuid.uuid4().hex[:8]}"
    acts = c.changes
    executor = ThreadPoolExecutor(max_workers=4)

    def workers(systems: list[str]) -> list[Worker]:
        main = Worker(
            ts_env.client,
            task_queue=queue,
            workflows=[EraseAcrossSystems],
            activities=[acts.plan_change, acts.record_suppression],
            activity_executor=executor,
            workflow_runner=UnsandboxedWorkflowRunner(),
            # no sticky cache: a worker that is gone must not keep the case's next workflow
            # task on its own queue (the test server has no sticky timeout to move it on)
            max_cached_workflows=0,
        )
        return [main] + [
            Worker(
                ts_env.client,
                task_queue=system_task_queue(queue, system),
                activities=[acts.apply_change, acts.verify_change],
                activity_executor=executor,
            )
            for system in systems
        ]

    inp = ChangePlanInput(reference, RequestType.ERASURE, HER_REQUEST, results, decisions_ref)
    first = workers(["crm"])  # nothing polls marketing's or the recordings' queues
    for w in first:
        await w.__aenter__()
    handle = await ts_env.client.start_workflow(
        EraseAcrossSystems.run, inp, id=f"erase-{reference}-{queue}", task_queue=queue
    )

    async def applies_scheduled() -> int:
        history = await handle.fetch_history()
        return sum(
            1
            for event in history.events
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and event.activity_task_scheduled_event_attributes.activity_type.name == "apply_change"
        )

    for _ in range(600):
        if await applies_scheduled() == 2:  # crm done, marketing waiting for a worker
            break
        await asyncio.sleep(0.05)
    assert await applies_scheduled() == 2
    for w in reversed(first):  # the worker goes away between the two systems
        await w.__aexit__(None, None, None)
    assert (
        HER_ID in c.snapshot("crm")["customers"] and c.snapshot("crm")["customers"][HER_ID]["phone"] is None
    )
    assert c.snapshot("marketing") == marketing_before  # not reached yet

    second = workers(["crm", "marketing", "recordings"])
    for w in second:
        await w.__aenter__()
    try:
        applied = await asyncio.wait_for(handle.result(), timeout=120)
    finally:
        for w in reversed(second):
            await w.__aexit__(None, None, None)
        executor.shutdown()
    assert [a.system for a in applied] == ["crm", "marketing", "recordings"]
    assert applied[0].deleted["support_tickets"] == 2  # the first worker's work, not redone
    assert applied[1].deleted["preferences"] == 1 and applied[2].deleted["call_audio"] == 2
    history = await handle.fetch_history()
    completed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    assert len(completed) == 1 + 3 + 3 + 1  # plan, three applies (crm once), three verifies, suppression
    assert 1 not in c.snapshot("marketing")["preferences"]
    assert sorted(kind for kind, _ in c.suppression.entries(reference)) == [
        "account_number",
        "customer_id",
        "email",
        "phone",
    ]
    # had the first system been applied once more (a crash after its work, before its result
    # was recorded), it would have changed nothing
    replan = await asyncio.to_thread(
        c.plan, reference, RequestType.ERASURE, HER_REQUEST, results, decisions_ref
    )
    assert (await asyncio.to_thread(c.apply, reference, "crm", replan)).total == 0
