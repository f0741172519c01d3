"""The review workbench (``/console/cases/{ref}/review``) as a reviewer uses it, in Debian's
chromium: the ticket's original with the third party's name highlighted, one more phrase
removed, a record withheld, a four-eyes refusal shown, another reviewer's approval; then the
copy the person downloads holds exactly that. And a page stays fast at 10,000 records."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pyzipper
from playwright.async_api import Browser, expect
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from console.app import create_app
from console.staff.review import PAGE_SIZE, _load_page, spans
from demo.seed import MARGARET
from dsar.blobs import blob_store_from_settings
from dsar.datamap import DataMap
from dsar.exemptions import Basis, FieldDecision, Outcome, RecordDecision
from dsar.model import (
    Channel,
    DecisionKind,
    Regime,
    RequestType,
    ReviewStatus,
    Snapshot,
    Stage,
    SystemResult,
)
from dsar.settings import Settings
from dsar.store import CaseStore
from intake.service import NewRequest, open_case
from tests.conftest import make_settings, sql_demo_map
from tests.test_console import Site, accessibility_problems
from tests.test_console_dev import dev_sign_in
from tests.test_workflow import decide, letters, wait_until


@pytest.fixture
def site() -> Site:
    return Site()


@pytest.fixture
def settings(tmp_path: Path, demo_env: dict[str, str], register_url: str, site: Site) -> Settings:
    return make_settings(
        tmp_path / "var",
        database_url=register_url,
        datamap=sql_demo_map(),
        console_url=site.url,
        public_url=site.url,
        four_eyes=True,
    )


@pytest.fixture
async def served(
    ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore, worker: Worker, site: Site
) -> AsyncIterator[Site]:
    await site.serve(create_app(settings, client=ts_env.client, store=store))
    try:
        yield site
    finally:
        await site.close()


async def test_a_reviewer_amends_in_place_and_the_copy_holds_exactly_that(
    served: Site, browser: Browser, ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings
) -> None:
    controller = DataMap.load(settings.datamap).controller.name
    ids = {k: MARGARET[k] for k in ("name", "email", "phone")}
    opened = await open_case(
        ts_env.client,
        store,
        settings,
        NewRequest(
            request_type=RequestType.ACCESS, regime=Regime.UK_GDPR, identifiers=ids, channel=Channel.API
        ),
        controller,
    )
    handle = ts_env.client.get_workflow_handle(opened.reference)
    ref = handle.id
    await wait_until(handle, lambda s: s.waiting_for == "operator: identity check")
    await decide(handle, DecisionKind.VERIFY)  # by operator:alice
    await wait_until(handle, lambda s: s.waiting_for == "reviewer: approve the review package", timeout=60)

    context = await browser.new_context()
    kim = await context.new_page()
    await dev_sign_in(kim, served, "kim", ["reviewer"])
    await kim.goto(f"{served.url}/console/cases/{ref}")
    await kim.get_by_role("link", name="Open the review workbench").click()
    await kim.get_by_role("link", name=re.compile(r"^Support requests")).click()
    # The ticket naming the neighbour: his name highlighted in the original, gone from the copy.
    ravi = kim.locator("article.record", has=kim.locator("td.original mark", has_text="Ravi Patel"))
    await expect(ravi).to_have_count(1)
    assert await accessibility_problems(kim) == []
    shown = ravi.locator('tr[data-field="body"] td.shown')
    assert "Ravi" not in await shown.inner_text() and "[REDACTED: third party]" in await shown.inner_text()
    ravi_key = await ravi.get_attribute("data-key")
    # One more phrase goes: selected in the original, which fills the words box.
    phrase = "I never agreed to that."
    await ravi.locator("summary", has_text="Amend").click()
    original = ravi.locator('td.original[data-field="body"]')
    await original.evaluate(
        """(cell, phrase) => {
            const text = cell.textContent; const start = text.indexOf(phrase);
            const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT); let node, seen = 0;
            while ((node = walker.nextNode())) {
              if (seen + node.length > start) break; seen += node.length; }
            const range = document.createRange(); range.setStart(node, start - seen);
            range.setEnd(node, start - seen + phrase.length);
            const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
            cell.dispatchEvent(new MouseEvent("mouseup", {bubbles: true})); }""",
        phrase,
    )
    body_form = ravi.locator('form.redact-words[data-field="body"]')
    await expect(body_form.locator("input.words")).to_have_value(phrase)
    await body_form.get_by_label("Why").fill("Names the courier's manager by role; under internal review")
    await body_form.get_by_role("button", name="Remove these words").click()
    ravi = kim.locator(f'article.record[data-key="{ravi_key}"]')
    assert phrase not in await ravi.locator('tr[data-field="body"] td.shown').inner_text()
    await expect(ravi.locator("td.original mark", has_text=phrase)).to_have_count(1)
    # A whole record withheld (an order), with a reason.
    await kim.get_by_role("link", name=re.compile(r"^Orders")).click()
    order = kim.locator("article.record").first
    order_key = await order.get_attribute("data-key")
    await order.locator("summary", has_text="Amend").click()
    await order.get_by_label("Why withhold this record").fill(
        "Part of an open chargeback dispute with the bank"
    )
    await order.get_by_role("button", name=f"Withhold {order_key}").click()
    order = kim.locator(f'article.record[data-key="{order_key}"]')
    await expect(order).to_have_attribute("data-outcome", "withhold")
    await expect(order.get_by_text("Left out of the copy; the person is told why")).to_be_visible()
    # Four-eyes: kim amended last, so kim's approval is refused, with the engine's words.
    await kim.get_by_role("button", name="Approve the review").click()
    await expect(kim.get_by_role("alert")).to_contain_text("amended this review last")
    await context.close()

    context = await browser.new_context()
    rita = await context.new_page()
    await dev_sign_in(rita, served, "rita", ["reviewer"])
    await rita.goto(f"{served.url}/console/cases/{ref}/review")
    await rita.get_by_role("button", name="Approve the review").click()
    await expect(rita.get_by_role("status")).to_contain_text("Recorded: approve")
    await context.close()
    await wait_until(handle, lambda s: s.stage == Stage.RESPONDED, timeout=60)

    # The person's copy: exactly what the reviewers decided.
    mine = [m for m in letters(settings) if ref in str(m["Subject"])]
    response = next(m for m in mine if "response" in str(m["Subject"]).lower()).get_body(("plain",))
    password = next(m for m in mine if "password" in str(m["Subject"]).lower()).get_body(("plain",))
    assert response is not None and password is not None
    url = re.search(r"https?://\S+/d/\S+", response.get_content())
    secret = re.search(r"^\s{4}(\S+)$", password.get_content(), re.MULTILINE)
    assert url and secret
    async with httpx.AsyncClient() as web:
        answer = await web.get(url.group(0))
    assert answer.status_code == 200
    with pyzipper.AESZipFile(io.BytesIO(answer.content)) as zf:
        zf.setpassword(secret.group(1).encode())
        tickets = json.loads(zf.read("data/crm/support_tickets.json"))
        orders = json.loads(zf.read("data/crm/orders.json"))
    bodies = " ".join(str(t.get("body")) for t in tickets)
    assert "Ravi" not in bodies and phrase not in bodies and "My parcel was signed for by" in bodies
    order_id = order_key.split(":", 1)[1] if order_key else ""
    assert all(str(o.get("id")) != order_id for o in orders), "the withheld order is not in the copy"
    amended = [e for e in store.audit_trail(ref) if e.action == "review:amended"]
    assert [e.actor for e in amended] == ["reviewer:kim", "reviewer:kim"]
    assert [e.actor for e in store.audit_trail(ref) if e.action == "review:approved"] == ["reviewer:rita"]


def test_spans_mark_what_the_redacted_text_replaced() -> None:
    original = "My parcel was signed for by Ravi Patel at number 14. I never agreed to that."
    redacted = "My parcel was signed for by [REDACTED: third party] at number 14. I never agreed to that."
    got = spans(original, redacted)
    assert "".join(s.text for s in got) == original
    assert [(s.text, s.reason) for s in got if s.removed] == [("Ravi Patel", "third party")]


def test_a_page_of_a_person_with_10000_records_is_fast(tmp_path: Path, demo_env: dict[str, str]) -> None:
    """One page out of 10,000 records: two streamed passes, not a load of everything."""
    settings = make_settings(tmp_path / "var", datamap=sql_demo_map())
    blobs = blob_store_from_settings(settings)
    datamap = DataMap.load(settings.datamap)
    ref = "DSR-2026-999999"
    n = 10_000
    with blobs.open_writer(ref, "crm-records.jsonl") as w:
        for i in range(1, n + 1):
            record = {
                "id": i,
                "customer_id": 1,
                "body": f"Ticket {i}: my neighbour Ravi Patel took it",
                "status": "open",
            }
            w.write(json.dumps({"entity": "support_tickets", "record": record}).encode() + b"\n")
    records_ref = w.ref
    basis = [Basis("gdpr-15-4-rights-of-others", "Rights of others", "Art. 15(4)", "names others", "")]
    with blobs.open_writer(ref, "review-decisions.jsonl") as w:
        for i in range(1, n + 1):
            d = RecordDecision(
                "crm",
                "support_tickets",
                f"support_tickets:{i}",
                Outcome.REDACT,
                [FieldDecision("body", Outcome.REDACT, basis)],
                basis,
                {"body": f"Ticket {i}: my neighbour [REDACTED: third party] took it"},
            )
            w.write(d.dump())
    decisions_ref = w.ref
    snap = Snapshot(
        reference=ref,
        stage=Stage.REVIEWING,
        regime=Regime.UK_GDPR,
        request_type=RequestType.ACCESS,
        channel=Channel.API,
        received="2026-12-01",
        due="2027-01-04",
        acknowledgement_due=None,
        extension_notice_due=None,
        extended=False,
        paused=False,
        waiting_for=None,
        breached=False,
        escalated=False,
        reminders_sent=[],
        clock_events=[],
        decisions=[],
        systems=[SystemResult("crm", "found", records=n, blob_ref=records_ref)],
        results={},
        review=ReviewStatus(package_ref="", decisions_ref=decisions_ref, records=n, exemptions_applied=n),
    )
    timings = []
    for offset in (0, n // 2, n - PAGE_SIZE):
        started = time.perf_counter()
        page, _, _ = _load_page(blobs, snap, datamap, "crm", "support_tickets", offset)
        timings.append(time.perf_counter() - started)
        assert [r.key for r in page] == [
            f"support_tickets:{i}" for i in range(offset + 1, offset + PAGE_SIZE + 1)
        ]
        assert all(
            "Ravi" not in (r.fields[[f.name for f in r.fields].index("body")].shown or "") for r in page
        )
    assert max(timings) < 3.0, timings
