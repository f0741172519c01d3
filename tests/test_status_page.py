"""The person's own page for a request (``console.public.status``), as the person uses it:
Debian's chromium driven by Playwright against the real app on loopback, the time-skipping
Temporal server and a dsar worker, and the SMTP server the acknowledgement goes through. The
person follows the link in the acknowledgement, answers a request for identity there, sees the
due date move when the clock restarts, writes to us, and withdraws another request; forged,
expired and other-case links are refused; the page of a person we hold and of one we do not
hold read alike."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from console.app import create_app
from console.auth import mint_token
from demo.seed import MARGARET
from dsar.links import mint_link
from dsar.model import (
    AgentAuthority,
    AgentDetails,
    Channel,
    Decision,
    DecisionKind,
    Regime,
    RequestType,
    Stage,
)
from dsar.settings import Settings
from dsar.store import CaseStore
from intake.service import NewRequest, open_case
from tests.conftest import ROOT, make_settings, read
from tests.smtpserver import SmtpServer
from tests.test_cli import BackgroundServer
from tests.test_links import verifying_map
from tests.test_request_form import AXE_RULES, case_input, fill_in, reference_on, send
from tests.test_verify_stage import mail_to
from tests.test_workflow import start, wait_until
from workflows.request import DataSubjectRequest

STATUS_RE = re.compile(r"https?://\S+/r/(DSR-\d{4}-\d+)/status\?t=[A-Za-z0-9._-]+")
EMAIL = "margaret.home@example.net"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% a utility bill\n%%EOF\n"


@pytest.fixture
def settings(
    tmp_path: Path, demo_env: dict[str, str], register_url: str, smtp_server: SmtpServer
) -> Settings:
    return make_settings(
        tmp_path / "var",
        database_url=register_url,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        public_url="http://public.test",
        datamap=verifying_map(),
    )


@pytest.fixture
async def served(
    ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore, worker: Worker
) -> AsyncIterator[BackgroundServer]:
    app = create_app(settings, client=ts_env.client, store=store)
    async with BackgroundServer(app) as server:
        yield server


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """With JavaScript on, so that axe-core can run, and the pages' CSP (no script at all)
    bypassed for its script only; the pages themselves carry none."""
    context = await browser.new_context(bypass_csp=True)
    try:
        yield await context.new_page()
    finally:
        await context.close()


#: axe-core from npm (package-lock.json), injected into the page as it is.
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


async def accessibility_problems(page: Page) -> list[str]:
    """What axe-core finds wrong with the page as it is now (WCAG 2.1 A/AA, best practices)."""
    assert AXE.exists(), "axe-core is missing: run `make install`"
    await page.add_script_tag(path=str(AXE))
    problems: list[str] = await page.evaluate(
        """async (options) => (await axe.run(document, options)).violations
             .map(v => `${v.id}: ${v.help} (${v.nodes.length}x)`)""",
        {"runOnly": AXE_RULES, "resultTypes": ["violations"]},
    )
    return problems


def status_link(letter_text: str, served: BackgroundServer) -> str:
    """The link in the letter, on the test's server (the letter names the public address)."""
    found = STATUS_RE.search(letter_text)
    assert found, "no status link in the letter"
    return served.url + "/r/" + found.group(0).split("/r/", 1)[1]


async def test_a_person_follows_answers_and_withdraws_on_the_request_page(
    served: BackgroundServer,
    page: Page,
    ts_env: WorkflowEnvironment,
    store: CaseStore,
    settings: Settings,
    smtp_server: SmtpServer,
) -> None:
    # A rectification on the form, with the correction. A name and an address we do not know
    # her by: the case asks for more to confirm who she is.
    ids = {"name": MARGARET["name"], "email": EMAIL}
    await page.goto(f"{served.url}/request")
    await fill_in(page, "Correct my data", "United Kingdom", ids)
    await page.get_by_label("Which detail is wrong").select_option(label="My postal address")
    await page.get_by_label("What it should say", exact=True).fill("3 Mill Road, Coventry")
    assert await send(page) == 200
    h = ts_env.client.get_workflow_handle_for(DataSubjectRequest.run, await reference_on(page))
    assert (await case_input(ts_env.client, h.id)).corrections == {"postal_address": "3 Mill Road, Coventry"}
    first = await wait_until(h, lambda s: s.waiting_for == "person: identity")
    letter = await mail_to(smtp_server, EMAIL, f"We have received your request ({h.id})")
    link = status_link(read(letter), served)
    assert EMAIL not in link and MARGARET["name"].split()[0] not in link

    response = await page.goto(link)
    assert response is not None and response.status == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    await expect(page.locator("h1")).to_have_text(f"Your request {h.id}")
    await expect(page.locator("#stage")).to_have_text("Checking who you are")
    await expect(page.locator("#needs")).to_contain_text("Information to confirm who you are")
    due_before = (await page.locator("#due").text_content() or "").strip()
    assert due_before and first.paused
    assert "<script" not in await page.content()
    assert await accessibility_problems(page) == []

    # Days pass before the person answers: the clock restarts on the day the answer arrives.
    await ts_env.sleep(timedelta(days=6))
    await page.get_by_label("Postcode", exact=True).fill(MARGARET["postcode"])
    await page.get_by_label("Phone number", exact=True).fill(MARGARET["phone"])
    await page.get_by_role("button", name="Send these details").click()
    await expect(page.locator("h1")).to_have_text("Thank you, we have received it")
    assert MARGARET["postcode"] not in await page.content()
    after = await wait_until(h, lambda s: not s.paused and s.waiting_for != "person: identity")
    assert after.due > first.due
    await page.get_by_role("link", name="Back to your request").click()
    due_after = (await page.locator("#due").text_content() or "").strip()
    assert due_after != due_before
    await expect(page.locator("#clock-notes")).to_contain_text("started again")
    trail = store.audit_trail(h.id)
    assert [e.actor for e in trail if e.action == "identity:received"] == ["person:status"]
    assert any(e.action == "status:viewed" for e in trail)

    # A message with a document, kept encrypted and attached to the case.
    await page.get_by_label("Your message").fill("My old address was 3 Mill Road.")
    await page.get_by_label("A document (optional)").set_input_files(
        files=[{"name": "bill.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await page.get_by_role("button", name="Send message").click()
    await expect(page.locator("h1")).to_have_text("Thank you, we have received it")
    [sent] = [e for e in store.audit_trail(h.id) if e.action == "person:message"]
    blobs = create_app(settings, store=store).state.services.blobs
    assert blobs.get(sent.details["message"]) == b"My old address was 3 Mill Road."
    assert blobs.get(sent.details["file"]) == PDF and sent.details["file_type"] == "application/pdf"
    # Staff see it on the case page, and the file behind it (the view is recorded).
    staff = {"Authorization": f"Bearer {mint_token(settings, 'olive', ['operator'])}"}
    case_page = await page.request.get(f"{served.url}/console/cases/{h.id}", headers=staff)
    assert case_page.status == 200 and "My old address was 3 Mill Road." in await case_page.text()
    file_link = re.search(r'href="(/console/cases/[^"]+/file)"', await case_page.text())
    assert file_link is not None
    copy = await page.request.get(served.url + file_link.group(1), headers=staff)
    assert copy.status == 200 and await copy.body() == PDF
    assert any(e.action == "person_file:viewed" for e in store.audit_trail(h.id))
    stored = list((settings.var_dir / "blobs").rglob("*")) if (settings.var_dir / "blobs").exists() else []
    assert all(b"Mill Road" not in p.read_bytes() for p in stored if p.is_file())

    # Another request, withdrawn by the person from its page: confirmed, answered, clock stopped.
    other = await start(ts_env, store, settings, identifiers=ids)
    await wait_until(other, lambda s: s.waiting_for == "person: identity")
    ack = await mail_to(smtp_server, EMAIL, f"We have received your request ({other.id})")
    other_link = status_link(read(ack), served)
    await page.goto(other_link)
    await page.get_by_role("link", name="Withdraw this request").click()
    await expect(page.locator("h1")).to_have_text(f"Withdraw your request {other.id}")
    assert await accessibility_problems(page) == []
    await page.get_by_role("button", name="Yes, withdraw my request").click()
    await expect(page.locator("h1")).to_have_text("Your request has been withdrawn")
    ended = await wait_until(other, lambda s: s.stage == Stage.WITHDRAWN)
    assert [d.actor for d in ended.decisions if d.kind.value == "withdraw"] == ["person:status"]
    await mail_to(smtp_server, EMAIL, other.id)
    await page.get_by_role("link", name="Back to your request").click()
    await expect(page.locator("#stage")).to_have_text("Withdrawn")
    assert await page.locator("#due").count() == 0 and await page.locator("#withdraw").count() == 0

    # Forged, expired and other-case links are refused, and the refusals are recorded.
    token = other_link.split("?t=", 1)[1]
    forged = await page.goto(f"{served.url}/r/{other.id}/status?t=not-a-token")
    assert forged is not None and forged.status == 400
    expired_url = mint_link(
        settings, h.id, "view_status", hours=1, now=datetime.now(UTC) - timedelta(hours=2)
    )
    expired = await page.goto(served.url + "/r/" + expired_url.split("/r/", 1)[1])
    assert expired is not None and expired.status == 410
    await expect(page.locator("h1")).to_have_text("This link has expired")
    elsewhere = await page.goto(f"{served.url}/r/{h.id}/status?t={token}")
    assert elsewhere is not None and elsewhere.status == 400
    await expect(page.locator("h1")).to_have_text("This link is for a different request")
    assert "refused" in {
        e.action.split(":")[1] for e in store.audit_trail(h.id) if e.action.startswith("link:")
    }
    confirm_link = mint_link(settings, h.id, "confirm_request")  # a confirmation link is no status link
    altered = await page.goto(f"{served.url}/r/{h.id}/status?t={confirm_link.split('?t=', 1)[1]}")
    assert altered is not None and altered.status == 400

    # The accessibility check itself finds what it should (an image without a text alternative).
    await page.set_content(
        '<html lang="en"><head><title>t</title></head><body><main><img src="x.png"></main></body></html>'
    )
    assert any(p.startswith("image-alt") for p in await accessibility_problems(page))


async def test_the_page_of_a_person_we_hold_and_of_one_we_do_not_read_alike(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    held = await start(
        ts_env, store, settings, regime=Regime.CCPA,
        identifiers={"name": MARGARET["name"], "email": MARGARET["email"]},
    )  # fmt: skip
    stranger = await start(
        ts_env, store, settings, regime=Regime.CCPA,
        identifiers={"name": "Quentin Abernathy", "email": "q.abernathy@example.org"},
    )  # fmt: skip
    app = create_app(settings, client=ts_env.client, store=store)
    pages = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://public.test"
    ) as web:
        for h in (held, stranger):
            snap = await wait_until(h, lambda s: s.waiting_for == "person: identity")
            link = mint_link(settings, h.id, "view_status")
            text = (await web.get(link)).text
            pages.append(text.replace(h.id, "REF").replace(link.split("?t=", 1)[1], "TOKEN"))
            assert snap.request_type == RequestType.ACCESS
    assert pages[0] == pages[1]
    for word in ("crm", "marketing", "match", "record", MARGARET["name"], "Quentin", "found"):
        assert word.lower() not in pages[0].lower(), word
    assert "Information to confirm who you are" in pages[0]  # the same thing asked of both


def test_the_pages_text_is_in_the_translation_catalogue(tmp_path: Path) -> None:
    """``make translations`` has been run since the text last changed: every string the
    person's pages translate is in ``messages.pot``, ready for a translator."""
    from babel.messages.frontend import CommandLineInterface

    fresh = tmp_path / "messages.pot"
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", str(ROOT / "console/public/babel.cfg"), "--no-location",
         "--sort-output", "--project", "dsar", "--omit-header", "-o", str(fresh), str(ROOT)]
    )  # fmt: skip
    committed = (ROOT / "console" / "public" / "locale" / "messages.pot").read_text()
    assert fresh.read_text() == committed, "run `make translations` and commit messages.pot"
    assert 'msgid "Checking who you are"' in committed


async def test_an_extension_shows_its_reason_and_a_message_answers_a_clarification(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    h = await start(ts_env, store, settings)  # every identifier: verified by itself
    await wait_until(h, lambda s: s.stage == Stage.REVIEWING and s.waiting_for)
    staff = "staff:olive"
    for decision in (
        Decision(DecisionKind.EXTEND, staff, reason="your requests concern 14 years of account history"),
        Decision(DecisionKind.REQUEST_CLARIFICATION, staff, reason="which accounts and which years"),
    ):
        await h.execute_update(DataSubjectRequest.decide, decision)
    link = mint_link(settings, h.id, "view_status")
    token = link.split("?t=", 1)[1]
    app = create_app(settings, client=ts_env.client, store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://public.test"
    ) as web:
        page = (await web.get(link)).text
        assert "Working on your request" in page and "More detail about what you are asking for" in page
        assert "we extended the time we have to reply" in page
        assert "your requests concern 14 years of account history" in page
        assert "which accounts and which years" not in page  # the letter says it; the page need not
        unasked = await web.post(f"/r/{h.id}/status/identity", data={"t": token, "name": "M Ellis"})
        assert unasked.status_code == 409 and "no longer needs this" in unasked.text  # nobody asked
        empty = await web.post(f"/r/{h.id}/status/message?t={token}", files={"message": (None, "")})
        assert empty.status_code == 422 and "Write a message or choose a file to send" in empty.text
        exe = await web.post(
            f"/r/{h.id}/status/message?t={token}", files={"document": ("x.pdf", b"MZ\x90\x00 not a document")}
        )
        assert exe.status_code == 415 and "PDF, JPEG or PNG" in exe.text
        sent = await web.post(
            f"/r/{h.id}/status/message?t={token}",
            files={"message": (None, "The current account, 2019 to 2024.")},
        )
        assert sent.status_code == 200 and "Thank you, we have received it" in sent.text
        forged = await web.post(f"/r/{h.id}/status/message?t=x.y.z", files={"message": (None, "hello")})
        assert forged.status_code == 400
    after = await wait_until(h, lambda s: s.waiting_for != "person: clarification")
    assert any(
        d.kind == DecisionKind.CLARIFICATION_RECEIVED and d.actor == "person:status" for d in after.decisions
    )
    assert len([e for e in store.audit_trail(h.id) if e.action == "person:message"]) == 1

    # Answered: the page offers the copy while its link works, as the response letter does.
    await h.execute_update(DataSubjectRequest.decide, Decision(DecisionKind.APPROVE, "reviewer:rita"))
    await wait_until(h, lambda s: s.stage == Stage.RESPONDED)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://public.test") as web:
        page = (await web.get(link)).text
        assert "Answered" in page and 'id="download"' in page
        href = re.search(r'href="(/d/[^"]+)" id="download"', page)
        assert href is not None
        copy = await web.get(href.group(1).replace("&amp;", "&"))
        assert copy.status_code == 200 and copy.content.startswith(b"PK")
    await h.terminate("test finished")  # answered: nothing more to wait for (the case file stays)


async def test_an_agent_sends_the_proof_of_authority_on_the_request_page(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings
) -> None:
    agent = AgentDetails("Priya Shah", "priya.shah@agents.example.net", AgentAuthority.POWER_OF_ATTORNEY)
    opened = await open_case(
        ts_env.client,
        store,
        settings,
        NewRequest(
            request_type=RequestType.ERASURE,
            regime=Regime.CCPA,
            identifiers={"name": MARGARET["name"], "email": MARGARET["email"]},
            channel=Channel.WEB_FORM,
            agent=agent,
        ),
        controller="Northwind Post & Mobile",
    )
    h = ts_env.client.get_workflow_handle_for(DataSubjectRequest.run, opened.reference)
    await wait_until(h, lambda s: s.waiting_for == "person: authority")
    link = mint_link(settings, h.id, "view_status")
    app = create_app(settings, client=ts_env.client, store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://public.test") as web:
        page = (await web.get(link)).text
        assert "Proof that you may act for the person" in page and "Priya" not in page
        sent = await web.post(
            f"/r/{h.id}/status/message?t={link.split('?t=', 1)[1]}", files={"document": ("poa.pdf", PDF)}
        )
        assert sent.status_code == 200, sent.text
    after = await wait_until(h, lambda s: s.waiting_for != "person: authority")
    assert after.identity is not None and after.identity.authority == "received"
    [received] = [e for e in store.audit_trail(h.id) if e.action == "agent:authority_received"]
    assert received.actor == "agent:status"
