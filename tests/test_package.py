"""The access package: the demo company in PostgreSQL (127.0.0.1:5432) collected by the real SQL
connector into the encrypted blob store, decided by the data map's exemption rules, packaged,
and then opened as the person would: with the password, file by file, field by field, and the
report in Debian's headless chromium. Portability: only what the person provided, pushed to a
real HTTPS server on loopback with a self-signed certificate. Memory: 20,000 rows in a fresh
process, compared with 2,000."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import ipaddress
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pyzipper
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from markupsafe import escape
from playwright.async_api import async_playwright
from sqlalchemy import select

from connectors import connector_for
from demo.seed import MARGARET, PETER, complaint_notes, fraud_markers, parcels
from dsar.blobs import LocalBlobStore
from dsar.datamap import DataMap, FieldConfig, LegalBasis
from dsar.exemptions import Basis, CaseFacts, FieldDecision, Outcome, RecordDecision, evaluate_stream
from dsar.model import Regime, RequestType, SystemResult
from dsar.package import (
    EMBED_ROWS,
    PackageError,
    PushRefused,
    build_package,
    portable_json,
    provided_by_the_person,
    push_portable_data,
    retry_after,
)
from tests.conftest import ROOT
from tests.test_exemptions import demo_pg, truth  # noqa: F401  (the PostgreSQL demo company)

DEMO_MAP = DataMap.load(ROOT / "demo" / "dsar.yaml")
RECEIVED = date(2026, 4, 1)
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
#: What the review stage's redactor leaves of Margaret's first ticket (the neighbour removed).
TICKET_TEXT = "My parcel was signed for by [REDACTED: third party] at number 14. I never agreed."


# --------------------------------------------------------------------------------------------
# The case as the search and review stages leave it


@dataclass
class Searched:
    blobs: LocalBlobStore
    systems: list[SystemResult]
    reference: str

    def decisions(self, case: CaseFacts, extra: list[RecordDecision] = ()) -> str:  # type: ignore[assignment]
        """A decisions file like the review stage's: one line per record, from the data map's
        rules, the first ticket's free text redacted in part, plus ``extra`` lines."""
        out = io.BytesIO()
        for s in self.systems:
            if s.status != "found" or s.blob_ref is None:
                continue
            lines = [json.loads(line) for line in self.blobs.get(s.blob_ref).splitlines()]
            for decision in evaluate_stream(
                case, DEMO_MAP, s.system, ((i["entity"], i["record"]) for i in lines)
            ):
                if decision.key == "support_tickets:1" and decision.fields:
                    decision = replace(decision, redacted={"body": TICKET_TEXT})
                out.write(decision.dump())
        for decision in extra:
            out.write(decision.dump())
        return self.blobs.put(out.getvalue(), case=self.reference, name="review-decisions.jsonl")


def search(urls: dict[str, str], tmp: Path, reference: str = "DSR-2026-000007") -> Searched:
    blobs = LocalBlobStore(tmp / "blobs", os.urandom(32))
    systems: list[SystemResult] = []
    for name in ("crm", "marketing"):
        env = f"DSAR_TEST_PACKAGE_{name.upper()}_URL"
        os.environ[env] = urls[name]
        try:
            system = replace(DEMO_MAP.system(name), url_env=env)
            with blobs.open_writer(reference, f"{name}.jsonl") as out:
                found = connector_for(system).collect(
                    {"email": MARGARET["email"], "phone": MARGARET["phone"]}, out
                )
        finally:
            os.environ.pop(env, None)
        systems.append(SystemResult(name, "found", found.records, out.ref))
    systems += [SystemResult("cctv", "none"), SystemResult("recordings", "skipped")]
    return Searched(blobs, systems, reference)


@pytest.fixture
def searched(demo_pg: dict[str, str], tmp_path: Path) -> Searched:  # noqa: F811
    return search(demo_pg, tmp_path)


@dataclass
class Opened:
    files: dict[str, bytes]
    infos: list[zipfile.ZipInfo]

    def json(self, name: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(self.files[name])
        return data

    def csv(self, name: str) -> list[list[str]]:
        text = self.files[name].decode("utf-8")
        assert text.startswith("\ufeff"), "a byte-order mark, so spreadsheets read UTF-8"
        return list(csv.reader(io.StringIO(text[1:])))

    @property
    def report(self) -> str:
        """The report's HTML with its line breaks and indents as single spaces."""
        return " ".join(self.files["report.html"].decode().split())

    def everything(self) -> str:
        return "\n".join(data.decode("utf-8", "replace") for data in self.files.values())


def open_package(data: bytes, password: str | None) -> Opened:
    with pyzipper.AESZipFile(io.BytesIO(data)) as zf:
        if password:
            zf.setpassword(password.encode())
        return Opened({i.filename: zf.read(i.filename) for i in zf.infolist()}, zf.infolist())


def build(
    searched: Searched, case: CaseFacts, decisions: str | None, encryption: str = "aes"
) -> tuple[Any, Opened]:
    built = build_package(searched.blobs, DEMO_MAP, case, searched.systems, decisions, encryption=encryption)  # type: ignore[arg-type]
    return built, open_package(searched.blobs.get(built.ref), built.password)


def uk_access(reference: str = "DSR-2026-000007") -> CaseFacts:
    return CaseFacts(Regime.UK_GDPR, RequestType.ACCESS, RECEIVED, reference)


# --------------------------------------------------------------------------------------------
# The access package, field by field


def test_the_access_package_holds_her_data_with_the_review_applied(
    searched: Searched,
    demo_pg: dict[str, str],  # noqa: F811
) -> None:
    case = uk_access()
    built, package = build(searched, case, searched.decisions(case))

    # every file, with a manifest whose checksums and sizes are right
    manifest = json.loads(package.files["manifest.json"])
    assert manifest["reference"] == case.reference and manifest["regime"] == "UK_GDPR"
    assert set(manifest["files"]) == set(package.files) - {"manifest.json"}
    for name, facts in manifest["files"].items():
        assert hashlib.sha256(package.files[name]).hexdigest() == facts["sha256"], name
        assert len(package.files[name]) == facts["bytes"], name
    entities = {n.split("/")[2].rsplit(".", 1)[0] for n in package.files if n.startswith("data/crm/")}
    assert entities == set(DEMO_MAP.system("crm").entities) - set()  # Margaret has rows in all of them
    assert built.files == len(package.files)
    assert all(i.external_attr >> 16 == 0o644 for i in package.infos)

    # her account, exactly as the database holds it
    (customer,) = package.json("data/crm/customers.json")
    assert customer["id"] == 1 and customer["account_number"] == MARGARET["account_number"]
    assert (
        customer["full_name"] == MARGARET["name"] and customer["date_of_birth"] == MARGARET["date_of_birth"]
    )
    assert list(customer) == list(DEMO_MAP.system("crm").entities["customers"].fields)

    # the open fraud marker is withheld without a word (telling her would tip her off): absent
    # from both files, and the report has no count, category, reason or citation of it
    markers = truth(demo_pg, select(fraud_markers).where(fraud_markers.c.customer_id == 1))
    (open_marker,) = [m for m in markers if m.status == "open"]
    shown = package.json("data/crm/fraud_markers.json")
    assert [m["id"] for m in shown] == [m.id for m in markers if m.status != "open"]
    assert [row[0] for row in package.csv("data/crm/fraud_markers.csv")[1:]] == [str(m["id"]) for m in shown]
    assert open_marker.note not in package.everything()
    report = package.report
    traces = ("crime and taxation", "DPA 2018 Sch 2 para 2", "An open fraud investigation", "investigation")
    for trace in traces:
        assert trace.lower() not in package.everything().lower(), trace
    assert re.search(rf"We found {len(shown)} records? \(Fraud prevention", report)  # the closed one(s) only

    # legal advice is withheld whole (privilege, not mentioned either); the other note has the
    # third party removed
    notes = truth(demo_pg, select(complaint_notes).where(complaint_notes.c.customer_id == 1))
    privileged = [n for n in notes if n.privileged]
    assert privileged and all(n.note not in package.everything() for n in privileged)
    assert {n["id"] for n in package.json("data/crm/complaint_notes.json")} == {
        n.id for n in notes if not n.privileged
    }
    assert "professional privilege" not in report.lower() and "DPA 2018 Sch 2 para 19" not in report
    assert "We have not included" not in report  # nothing withheld that she may be told of

    # a parcel signed for by a neighbour: the name goes, with its reason, in JSON and CSV alike
    signed = truth(demo_pg, select(parcels.c.id, parcels.c.signed_by))
    hers = {p["id"]: p for p in package.json("data/crm/parcels.json")}
    for parcel in hers.values():
        assert parcel["signed_by"] == "[REDACTED: Rights and freedoms of others]"
    for parcel_id, name in signed:
        if parcel_id in hers and name and name != MARGARET["name"]:
            assert name not in package.everything(), "a neighbour's name"
    header, *rows = package.csv("data/crm/parcels.csv")
    assert {r[header.index("signed_by")] for r in rows} == {"[REDACTED: Rights and freedoms of others]"}
    assert "<code>signed_by</code> in 3 records: rights and freedoms of others." in report

    # free text redacted in part by the review stage keeps her words
    tickets = {t["id"]: t for t in package.json("data/crm/support_tickets.json")}
    assert tickets[1]["body"] == TICKET_TEXT
    assert tickets[2]["body"].startswith("[REDACTED: ")  # marked, but the redactor left no text

    # another person's data never appears
    for kind in ("email", "account_number", "phone"):
        assert PETER[kind] not in package.everything()

    # JSON and CSV say the same thing, entity by entity
    for name in package.files:
        if name.endswith(".json") and name.startswith("data/"):
            records = package.json(name)
            header, *rows = package.csv(name.removesuffix(".json") + ".csv")
            expected = [[_cell(r.get(c)) for c in header] for r in records]
            assert rows == expected, name
            assert manifest["files"][name]["records"] == len(records)

    assert (built.withheld, built.untold) == (0, 1 + len(privileged))
    assert built.redacted == 2 + 3 + len(notes) - len(privileged)
    assert built.records == sum(
        len(package.json(n)) for n in package.files if n.endswith(".json") and "/" in n
    )


def test_a_person_whose_only_fraud_markers_are_open_gets_a_copy_with_no_trace_of_them(
    searched: Searched,
    demo_pg: dict[str, str],  # noqa: F811
) -> None:
    """Every marker of hers withheld under the crime exemption: the copy has no file, count,
    category, purpose, recipient or reason of them, and the system shows only what is left."""
    case = uk_access()
    crime = Basis("uk-dpa-sch2-p1-crime", "Crime and taxation", "DPA 2018 Sch 2 para 2", "open", "always")
    markers = truth(demo_pg, select(fraud_markers).where(fraud_markers.c.customer_id == 1))
    silent = [
        RecordDecision("crm", "fraud_markers", f"fraud_markers:{m.id}", Outcome.WITHHOLD, [], [crime])
        for m in markers
    ]
    built, package = build(searched, case, searched.decisions(case, silent))
    assert not [n for n in package.files if "fraud" in n]
    everything = package.everything().lower()
    for trace in ("fraud", "cifas", "crime", "sch 2 para 2", "investigation"):
        assert trace not in everything, trace
    manifest = json.loads(package.files["manifest.json"])
    assert not [n for n in manifest["files"] if "fraud" in n]
    assert built.untold >= len(markers) and built.withheld == 0


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def test_the_report_gives_every_article_15_item_from_the_data_map(searched: Searched) -> None:
    case = uk_access()
    _, package = build(searched, case, searched.decisions(case))
    report = package.report
    for heading in (
        'Why we use it <span class="cite">(Article 15(1)(a))',
        'The kinds of data we hold <span class="cite">(Article 15(1)(b))',
        'Who we share it with <span class="cite">(Article 15(1)(c))',
        'How long we keep it <span class="cite">(Article 15(1)(d))',
        'Your rights <span class="cite">(Article 15(1)(e))',
        'Complaining to the regulator <span class="cite">(Article 15(1)(f))',
        'Where it came from <span class="cite">(Article 15(1)(g))',
        'Automated decisions, including profiling <span class="cite">(Article 15(1)(h))',
        'Transfers to other countries <span class="cite">(Article 15(2))',
    ):
        assert heading in report, heading
    crm = DEMO_MAP.system("crm").entities
    assert crm["payments"].fields["amount"].purpose in report
    assert "our legitimate interests (Article 6(1)(f))" in report  # call recordings
    assert "Card payment processor" in report and "Fraud prevention agencies (Cifas)" in report
    assert crm["identity_documents"].fields["id"].retention in report
    assert "Information Commissioner&#39;s Office" in report and "dpo@northwind.example.com" in report
    # the credit check draws on the CRM and the email provider gets CRM and marketing data: she
    # is in both, so the report gives each as the data map declares it
    (decision,) = DEMO_MAP.controller.automated_decisions
    (transfer,) = DEMO_MAP.controller.transfers
    for text in (decision.what, decision.logic, decision.significance):
        assert str(escape(text)) in report, text
    for text in (transfer.recipient, transfer.country, transfer.safeguard):
        assert str(escape(text)) in report, text
    assert "None. We do not make decisions about you" not in report
    assert "Our records show no transfer" not in report
    assert "outside the United Kingdom" in report
    # self-contained: no script, no external resource
    assert (
        "<script" not in report and "src=" not in report and "http://" not in report.replace("https://", "")
    )
    # small entities are shown row by row, each file linked
    assert '<a href="data/crm/orders.csv">' in report and "Handset: Pixel 8, 24 months" in report


def test_the_report_says_none_when_no_decision_or_transfer_concerns_her(searched: Searched) -> None:
    """None declared; or declared only for a system where nothing of hers was found."""
    decision = DEMO_MAP.controller.automated_decisions[0]
    transfer = DEMO_MAP.controller.transfers[0]
    maps = {
        "none declared": replace(DEMO_MAP.controller, automated_decisions=(), transfers=()),
        "not her systems": replace(
            DEMO_MAP.controller,
            automated_decisions=(replace(decision, systems=("recordings",)),),
            transfers=(replace(transfer, systems=("cctv", "recordings")),),
        ),
    }
    case = uk_access()
    for why, controller in maps.items():
        datamap = replace(DEMO_MAP, controller=controller)
        built = build_package(searched.blobs, datamap, case, searched.systems, None)
        report = open_package(searched.blobs.get(built.ref), built.password).report
        assert "None. We do not make decisions about you based solely on automated processing" in report, why
        none = "None. Our records show no transfer of your data to a country outside the United Kingdom"
        assert none in report, why
        assert str(escape(decision.logic)) not in report and str(escape(transfer.safeguard)) not in report, (
            why
        )
    # declared without systems: it concerns everyone, whatever system holds their data
    everyone = replace(
        DEMO_MAP,
        controller=replace(maps["not her systems"], transfers=(replace(transfer, systems=()),)),
    )
    built = build_package(searched.blobs, everyone, case, searched.systems, None)
    report = open_package(searched.blobs.get(built.ref), built.password).report
    assert str(escape(transfer.safeguard)) in report and "Our records show no transfer" not in report
    assert "None. We do not make decisions about you" in report


def test_a_ccpa_case_gets_the_1798_110_categories_and_no_gdpr_articles(searched: Searched) -> None:
    case = replace(uk_access(), regime=Regime.CCPA)
    _, package = build(searched, case, searched.decisions(case))
    report = package.report
    for part in ("(a)(1)", "(a)(2)", "(a)(3)", "(a)(4)", "(a)(5)"):
        assert f"(§1798.110{part})" in report
    assert "California Privacy Protection Agency" in report and "(§1798.105)" in report
    assert "Article 15" not in report and "Article 6(1)" not in report
    # UK exemptions do not bind a CCPA case: the open fraud marker is disclosed
    assert len(package.json("data/crm/fraud_markers.json")) == 2


def test_the_zip_opens_with_its_password_only_and_plain_by_configuration(searched: Searched) -> None:
    case = uk_access()
    built, _ = build(searched, case, None)
    data = searched.blobs.get(built.ref)
    assert built.password and len(built.password) == 29 and built.size == len(data)
    assert hashlib.sha256(data).hexdigest() == built.sha256
    with pyzipper.AESZipFile(io.BytesIO(data)) as zf:
        assert all(i.flag_bits & 0x1 for i in zf.infolist()), "every entry encrypted"
        with pytest.raises(RuntimeError, match="requires a password"):
            zf.read("report.html")
        zf.setpassword(b"WRONG-PASSWORD")
        with pytest.raises(RuntimeError, match="Bad password"):
            zf.read("report.html")
    with zipfile.ZipFile(io.BytesIO(data)) as zf, pytest.raises(NotImplementedError):
        zf.setpassword(built.password.encode())
        zf.read("report.html")  # not the weak ZipCrypto the standard library reads: AES (method 99)

    plain, opened = build(searched, case, None, encryption="none")
    assert plain.password is None
    with zipfile.ZipFile(io.BytesIO(searched.blobs.get(plain.ref))) as zf:
        assert zf.read("report.html") == opened.files["report.html"]
    assert "encrypted (AES-256)" not in opened.report


def test_a_rebuild_replaces_the_package_under_the_same_name(searched: Searched) -> None:
    case = uk_access()
    first = build_package(searched.blobs, DEMO_MAP, case, searched.systems, None)
    second = build_package(searched.blobs, DEMO_MAP, case, searched.systems, None)
    assert first.name == second.name == "DSR-2026-000007-your-data.zip"
    assert not searched.blobs.exists(first.ref) and searched.blobs.exists(second.ref)
    assert first.password != second.password


def test_decisions_that_fit_no_record_stop_the_package(searched: Searched) -> None:
    """A withholding decision for a key the search did not collect means the decisions and the
    results disagree: disclosing the rest could disclose what the reviewer meant to withhold."""
    case = uk_access()
    basis = Basis("uk-dpa-sch2-p1-crime", "Crime and taxation", "DPA 2018 Sch 2 para 2", "x", "always")
    stray = RecordDecision("crm", "fraud_markers", "fraud_markers:999999", Outcome.WITHHOLD, [], [basis])
    with pytest.raises(PackageError, match=r"fraud_markers.*fraud_markers:999999"):
        build_package(searched.blobs, DEMO_MAP, case, searched.systems, searched.decisions(case, [stray]))
    other = RecordDecision("crm", "invoices", "invoices:1", Outcome.WITHHOLD, [], [basis])
    with pytest.raises(PackageError, match=r"crm\.invoices"):
        build_package(searched.blobs, DEMO_MAP, case, searched.systems, searched.decisions(case, [other]))
    erasing = replace(stray, key="customers:1", entity="customers", outcome=Outcome.RETAIN)
    with pytest.raises(PackageError, match="another kind of request"):
        build_package(searched.blobs, DEMO_MAP, case, searched.systems, searched.decisions(case, [erasing]))
    withheld_field = RecordDecision(
        "crm",
        "customers",
        "customers:1",
        Outcome.REDACT,
        [FieldDecision("email", Outcome.WITHHOLD, [basis])],
        [basis],
    )
    _, package = build(searched, case, searched.decisions(case, [withheld_field]))
    (customer,) = package.json("data/crm/customers.json")
    # an exemption she must not hear of: the field is left empty, with no marker saying why
    assert customer["email"] is None and "Crime and taxation" not in package.everything()
    told = replace(basis, exemption="gdpr-15-4-rights-of-others", title="Rights and freedoms of others")
    withheld_field.fields[0].basis[:] = [told]
    _, package = build(searched, case, searched.decisions(case, [withheld_field]))
    (customer,) = package.json("data/crm/customers.json")
    assert customer["email"] == "[REDACTED: Rights and freedoms of others]"


# --------------------------------------------------------------------------------------------
# The report in a browser


async def test_the_report_opens_in_headless_chromium(searched: Searched, tmp_path: Path) -> None:
    from tests.test_request_form import accessibility_problems

    case = uk_access()
    _, package = build(searched, case, searched.decisions(case))
    folder = tmp_path / "unzipped"
    for name, data in package.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    assert CHROMIUM.exists(), "Debian's chromium is missing: run `make install`"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 1400})
            await page.goto((folder / "report.html").as_uri())
            shot = tmp_path / "report.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
            assert await page.title() == (
                "The personal data we hold about you - Northwind Post & Mobile Ltd (DSR-2026-000007)"
            )
            headings = [h.strip() for h in await page.locator("h1, h2").all_inner_texts()]
            assert headings == [
                "The personal data we hold about you",
                "Contents",
                "In short",
                "What we hold, system by system",
                "How we use your data",
                "Your rights and how to complain",
                "About the files",
            ]
            for name in ("Automated decisions, including profiling", "Complaining to the regulator"):
                assert await page.get_by_role("heading", name=name).is_visible()
            table = page.get_by_role("table", name="Orders (Customer database): 3 records")
            assert await table.is_visible()
            assert await page.locator("a[href='data/crm/orders.csv']").first.is_visible()
            assert await accessibility_problems(page) == []
            if os.environ.get("DSAR_KEEP_SCREENSHOT"):
                Path(os.environ["DSAR_KEEP_SCREENSHOT"]).write_bytes(shot.read_bytes())
        finally:
            await browser.close()


# --------------------------------------------------------------------------------------------
# Portability


def test_portability_holds_only_what_she_provided(searched: Searched) -> None:
    case = replace(uk_access(), request_type=RequestType.PORTABILITY)
    built, package = build(searched, case, searched.decisions(case))
    assert built.name == "DSR-2026-000007-portable-data.zip"
    crm = DEMO_MAP.system("crm")
    included = {n.split("/")[2].rsplit(".", 1)[0] for n in package.files if n.startswith("data/crm/")}
    assert included == {"customers", "orders", "support_tickets", "parcels"}  # consent or contract
    (customer,) = package.json("data/crm/customers.json")
    assert "date_of_birth" not in customer  # a legal obligation, not a contract
    # `provided` decides: what she typed in goes, the numbers we assigned and our flags do not
    assert customer["email"].lower() == MARGARET["email"] and customer["full_name"] == MARGARET["name"]
    assert not {"id", "account_number", "processing_restricted"} & set(customer)
    assert "Identifiers: created or worked out by us, not provided by you." in package.report
    assert set(customer) == {
        c
        for c, f in crm.entities["customers"].fields.items()
        if provided_by_the_person(Regime.UK_GDPR, f, crm)
    }
    assert (
        "Identity verification, Marketing activity: not processed on the basis of your consent"
        in package.report
    )
    assert {n for n in package.files if n.startswith("data/marketing/")} == {
        "data/marketing/preferences.json",
        "data/marketing/preferences.csv",
    }
    # a source that is not the person keeps the data out (the courier's delivery lines)
    recordings = DEMO_MAP.system("recordings")
    pod = recordings.entities["proof_of_delivery"].fields["content"]
    assert not provided_by_the_person(Regime.CCPA, pod, recordings)
    assert provided_by_the_person(Regime.CCPA, crm.entities["payments"].fields["amount"], crm)


def test_provided_wins_over_source_and_source_is_the_fallback() -> None:
    crm = DEMO_MAP.system("crm")
    field = FieldConfig("Contact details", "Account", LegalBasis.CONTRACT, "6 years")
    ours = replace(field, source="Our delivery partner (Swift Couriers Ltd)")
    assert provided_by_the_person(Regime.UK_GDPR, field, crm)  # no source: collected from her
    assert not provided_by_the_person(Regime.UK_GDPR, ours, crm)  # someone else's, by `source`
    assert provided_by_the_person(Regime.UK_GDPR, replace(ours, provided=True), crm)
    assert not provided_by_the_person(Regime.UK_GDPR, replace(field, provided=False), crm)
    assert provided_by_the_person(Regime.UK_GDPR, replace(field, source="You, at sign-up"), crm)
    # still only consent or contract under the GDPR, and never a system searched by hand
    legal = replace(field, provided=True, legal_basis=LegalBasis.LEGAL_OBLIGATION)
    assert not provided_by_the_person(Regime.UK_GDPR, legal, crm)
    assert provided_by_the_person(Regime.CCPA, legal, crm)
    assert not provided_by_the_person(Regime.CCPA, replace(field, provided=True), DEMO_MAP.system("cctv"))


def test_the_portability_copy_follows_provided(searched: Searched) -> None:
    """Mark her email not provided and her customer number provided: the copy follows."""
    crm = DEMO_MAP.system("crm")
    customers = crm.entities["customers"]
    fields = dict(customers.fields)
    fields["email"] = replace(fields["email"], provided=False)
    fields["id"] = replace(fields["id"], provided=True)
    entities = {**crm.entities, "customers": replace(customers, fields=fields)}
    datamap = replace(DEMO_MAP, systems={**DEMO_MAP.systems, "crm": replace(crm, entities=entities)})
    case = replace(uk_access(), request_type=RequestType.PORTABILITY)
    built = build_package(searched.blobs, datamap, case, searched.systems, None)
    (customer,) = open_package(searched.blobs.get(built.ref), built.password).json("data/crm/customers.json")
    assert "email" not in customer and customer["id"] == 1 and "account_number" not in customer
    sent = json.loads(b"".join(portable_json(searched.blobs, datamap, case, searched.systems, None)))
    assert sent["data"]["crm"]["customers"] == [customer]


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other-controller.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def other_controller(tmp_path: Path) -> Iterator[tuple[str, Path, list[dict[str, Any]]]]:
    """Another controller's HTTPS endpoint on loopback, self-signed, recording what it gets."""
    cert, key = _self_signed(tmp_path)
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b""
            if self.headers.get("Transfer-Encoding") == "chunked":
                while (size := int(self.rfile.readline().strip(), 16)) > 0:
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append({"headers": dict(self.headers), "body": body, "path": self.path})
            self.send_response(201 if self.path == "/import" else 503)
            if self.path == "/busy":  # busy for now: asks to be tried again in a second
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert, received
    finally:
        server.shutdown()
        server.server_close()


def test_portable_data_is_pushed_to_another_controller_over_https(
    searched: Searched, other_controller: tuple[str, Path, list[dict[str, Any]]]
) -> None:
    base, cert, received = other_controller
    case = replace(uk_access(), request_type=RequestType.PORTABILITY)
    decisions = searched.decisions(case)
    trusted = ssl.create_default_context(cafile=str(cert))

    def document() -> Iterator[bytes]:
        return portable_json(searched.blobs, DEMO_MAP, case, searched.systems, decisions)

    pushed = push_portable_data(document(), f"{base}/import", token="their-token", verify=trusted)
    assert pushed.status == 201
    (got,) = received
    assert got["headers"]["Authorization"] == "Bearer their-token"
    assert got["headers"]["Transfer-Encoding"] == "chunked"  # streamed, never whole in memory
    assert hashlib.sha256(got["body"]).hexdigest() == pushed.sha256 and len(got["body"]) == pushed.bytes
    sent = json.loads(got["body"])
    assert sent["reference"] == case.reference and sent["controller"] == "Northwind Post & Mobile Ltd"
    assert set(sent["data"]) == {"crm", "marketing"}
    assert set(sent["data"]["crm"]) == {"customers", "orders", "support_tickets", "parcels"}
    _, package = build(searched, case, decisions)
    for entity, records in sent["data"]["crm"].items():
        assert records == package.json(f"data/crm/{entity}.json"), entity  # the same data as the package
    assert sent["data"]["crm"]["support_tickets"][0]["body"] == TICKET_TEXT

    # refused: not HTTPS; a certificate nobody vouched for; an endpoint that fails
    with pytest.raises(PushRefused, match="https") as plain:
        push_portable_data(document(), base.replace("https:", "http:"), verify=trusted)
    assert not plain.value.retryable
    with pytest.raises(PushRefused, match="certificate is not trusted") as untrusted:
        push_portable_data(document(), f"{base}/import")
    assert not untrusted.value.retryable
    with pytest.raises(PushRefused, match="answered 503") as failing:
        push_portable_data(document(), f"{base}/busy", verify=trusted)
    assert failing.value.retryable and failing.value.retry_after == timedelta(seconds=1)
    assert len(received) == 2  # the untrusted one never sent a byte


# --------------------------------------------------------------------------------------------
# Bounded memory


def test_memory_stays_flat_from_2000_to_20000_rows() -> None:
    """bench/export.py in fresh processes (SQLite): ten times the rows, no more memory."""

    def run(rows: int) -> dict[str, float]:
        answer = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "export.py"), "--rows", str(rows), "--db", "sqlite"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        result: dict[str, float] = json.loads(answer.stdout.strip().splitlines()[-1])
        return result

    small, large = run(2_000), run(20_000)
    print(f"\nexport: {small} / {large}")
    assert large["rows"] >= 20_000 > EMBED_ROWS
    assert large["peak_rss_mb"] - small["peak_rss_mb"] < 15, (small, large)
    assert large["seconds"] < 10


def test_what_was_found_by_hand_goes_in_as_uploaded(searched: Searched) -> None:
    still = b"\xff\xd8\xff\xe0" + os.urandom(200_000)  # a JPEG from the depot's recorder
    upload = searched.blobs.put(still, case=searched.reference, name="cctv-manual.bin")
    searched.systems = [
        s if s.system != "cctv" else SystemResult("cctv", "found", 1, upload) for s in searched.systems
    ]
    _, package = build(searched, uk_access(), None)
    assert package.files["data/cctv/found-by-hand.jpg"] == still
    assert "Images (CCTV)" in package.report and 'href="data/cctv/found-by-hand.jpg"' in package.report
    _, portable = build(searched, replace(uk_access(), request_type=RequestType.PORTABILITY), None)
    assert not any(n.startswith("data/cctv/") for n in portable.files)
    assert "Images (CCTV): held on paper or equipment we search by hand" in portable.report


def test_a_busy_endpoint_is_tried_again_when_it_asks_within_a_minute() -> None:
    now = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)
    assert retry_after("1") == timedelta(seconds=1)
    assert retry_after("Tue, 05 Jan 2027 12:00:30 GMT", now) == timedelta(seconds=30)
    assert retry_after("Tue, 05 Jan 2027 11:00:00 GMT", now) == timedelta(0)  # a date passed
    assert retry_after("86400") == timedelta(minutes=1)  # never longer than the backoff's cap
    for unreadable in (None, "", "soon", "-5", "1.5", "Tue, 05 Jan 2027 12:00:30"):
        assert retry_after(unreadable, now) is None, unreadable
