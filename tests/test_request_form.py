"""The public request form as a person uses it: Debian's chromium, driven by Playwright, against
the real app served by uvicorn on loopback, a real Temporal test server and worker, and a real
SMTP server that receives the acknowledgement. With JavaScript and without, by mouse and by
keyboard only; errors beside their fields; an agent with and without the signed permission;
the honeypot, refused uploads and a double submit."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright, expect
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from console.app import create_app
from console.public.request_form import Answers, check_answers, long_date
from demo.seed import MARGARET
from dsar.blobs import blob_store_from_settings
from dsar.datamap import Controller
from dsar.model import CaseInput, Channel, Regime, RequestType
from dsar.settings import Settings
from dsar.store import CaseStore
from tests.conftest import make_settings
from tests.smtpserver import SmtpServer
from tests.test_cli import BackgroundServer
from tests.test_verify_stage import mail_to
from tests.test_workflow import wait_until
from workflows.request import DataSubjectRequest

#: Debian's chromium, installed by `make install` (never Playwright's own download).
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
REFERENCE = re.compile(r"^DSR-\d{4}-\d{6,12}$")
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% signed permission, Margaret Ellis\n%%EOF\n"
AGENT = {"name": "Priya Shah", "email": "priya.shah@agents.example.net"}


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
    )


@pytest.fixture
async def served(
    ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore, worker: Worker
) -> AsyncIterator[BackgroundServer]:
    """The whole app over real HTTP, as the person's browser reaches it."""
    app = create_app(settings, client=ts_env.client, store=store)
    async with BackgroundServer(app) as server:
        yield server


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: run `make install`"
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        await b.close()


async def _page(browser: Browser, *, javascript: bool) -> AsyncIterator[Page]:
    context: BrowserContext = await browser.new_context(java_script_enabled=javascript)
    try:
        yield await context.new_page()
    finally:
        await context.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async for p in _page(browser, javascript=True):
        yield p


@pytest.fixture
async def page_without_js(browser: Browser) -> AsyncIterator[Page]:
    async for p in _page(browser, javascript=False):
        yield p


# --------------------------------------------------------------------------------------------
# Helpers: what a person does, and what the case holds


async def fill_in(page: Page, request_type: str, place: str, details: dict[str, str]) -> None:
    """Choose by the words on the page, type into fields found by their labels."""
    await page.get_by_label(request_type, exact=True).check()
    await page.get_by_label(place, exact=True).check()
    labels = {
        "name": "Full name",
        "email": "Email address",
        "phone": "Phone number (optional)",
        "postal_address": "Postal address (optional)",
        "postcode": "Postcode or ZIP code (optional)",
        "account_number": "Account or customer number (optional)",
    }
    for kind, value in details.items():
        await page.get_by_label(labels[kind], exact=True).fill(value)


async def act_for_someone_else(page: Page, authority: str) -> None:
    await page.get_by_text("Making this request for someone else?").click()
    await page.get_by_label("I am making this request for someone else").check()
    await page.get_by_label("Your full name", exact=True).fill(AGENT["name"])
    await page.get_by_label("Your email address", exact=True).fill(AGENT["email"])
    await page.get_by_label(authority).check()


async def send(page: Page) -> int:
    """Press the button; the status of the page that comes back."""
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.get_by_role("button", name="Send request").click()
    status = (await answer.value).status
    await page.wait_for_load_state()
    return status


async def reference_on(page: Page) -> str:
    reference = (await page.locator("#reference").text_content() or "").strip()
    assert REFERENCE.match(reference), "no case reference on the confirmation page"
    return reference


async def case_input(client: Client, reference: str) -> CaseInput:
    """What the workflow was started with, decoded through the payload codec."""
    history = await client.get_workflow_handle(reference).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [case] = await client.data_converter.decode(started.input.payloads, [CaseInput])
    assert isinstance(case, CaseInput)
    return case


def count_cases(store: CaseStore) -> int:
    return len(store.queue(limit=100_000))


#: axe-core's WCAG 2.1 A and AA rules, and its best practices.
AXE_RULES = {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}


async def accessibility_problems(page: Page) -> list[str]:
    """What axe-core finds wrong with the page as it is now (rule, what it checks, how often)."""
    results = await Axe().run(page, options={"runOnly": AXE_RULES, "resultTypes": ["violations"]})
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])}x)" for v in results.response["violations"]]


async def summary_links(page: Page) -> list[tuple[str, str]]:
    links = page.locator("#error-summary a")
    return [
        ((await links.nth(i).text_content() or "").strip(), await links.nth(i).get_attribute("href") or "")
        for i in range(await links.count())
    ]


# --------------------------------------------------------------------------------------------
# A person's request


async def test_a_person_sends_the_form_and_gets_a_reference_and_an_acknowledgement(
    served: BackgroundServer,
    page: Page,
    ts_env: WorkflowEnvironment,
    store: CaseStore,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    response = await page.goto(f"{served.url}/request")
    assert response is not None and response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert await page.title() == "Make a privacy request - Northwind Post & Mobile Ltd"
    await page.screenshot(path=str(tmp_path / "form.png"), full_page=True)
    assert await accessibility_problems(page) == []
    await page.get_by_text("Making this request for someone else?").click()  # the agent's part, open
    assert await accessibility_problems(page) == []
    await page.get_by_text("Making this request for someone else?").click()

    details = {
        "name": MARGARET["name"],
        "email": MARGARET["email"],
        "phone": MARGARET["phone"],
        "postal_address": "12 Orchard Lane\nCoventry",
        "postcode": MARGARET["postcode"],
        "account_number": MARGARET["account_number"],
    }
    await fill_in(page, "Get a copy of my data", "United Kingdom", details)
    assert await send(page) == 200
    await page.screenshot(path=str(tmp_path / "done.png"), full_page=True)
    assert await accessibility_problems(page) == []
    reference = await reference_on(page)
    await expect(page.locator("h1")).to_have_text("We have received your request")
    for value in details.values():  # nothing the person typed is echoed back
        assert value.split("\n")[0] not in await page.content()

    row = store.get(reference)
    assert row is not None
    assert (row.request_type, row.regime, row.channel) == ("access", "UK_GDPR", "web_form")
    snap = await ts_env.client.get_workflow_handle(reference).query(DataSubjectRequest.snapshot)
    assert (snap.request_type, snap.regime, snap.channel) == (
        RequestType.ACCESS,
        Regime.UK_GDPR,
        Channel.WEB_FORM,
    )
    case = await case_input(ts_env.client, reference)
    assert case.identifiers == {**details, "postal_address": "12 Orchard Lane, Coventry"}
    assert case.agent is None

    letter = await mail_to(smtp_server, MARGARET["email"], f"We have received your request ({reference})")
    body = " ".join(letter.get_body(("plain",)).get_content().split())
    assert "Dear Margaret Ellis" in body and f"Your reference is {reference}" in body
    due = re.search(r"We will reply by (\d{1,2} [A-Z][a-z]+ \d{4})", body)
    assert due, "no due date in the acknowledgement"
    # the letter and the page write the due date the same way
    assert await page.locator("#due").text_content() == due.group(1) == long_date(snap.due)


async def test_errors_are_shown_beside_their_fields_and_in_a_summary_that_takes_the_focus(
    served: BackgroundServer, page: Page, store: CaseStore, tmp_path: Path
) -> None:
    before = count_cases(store)
    await page.goto(f"{served.url}/request")
    await page.get_by_label("Full name", exact=True).fill("Margaret Ellis")
    assert await send(page) == 422
    await page.screenshot(path=str(tmp_path / "errors.png"), full_page=True)
    assert await accessibility_problems(page) == []
    assert (await page.title()).startswith("Error: ")
    summary = page.locator("#error-summary")
    await expect(summary).to_be_focused()
    assert await summary.get_attribute("role") == "alert"
    assert await summary_links(page) == [
        ("Choose what you would like us to do", "#request_type-access"),
        ("Choose where you live", "#place-uk"),
        ("Enter your email address", "#email"),
    ]
    # Each error beside its field, and read out with it.
    await expect(page.locator("#email-error")).to_have_text("Error: Enter your email address")
    email = page.get_by_label("Email address", exact=True)
    assert await email.get_attribute("aria-invalid") == "true"
    assert (await email.get_attribute("aria-describedby") or "").split() == ["email-hint", "email-error"]
    for group in ("request_type", "place"):
        fieldset = page.locator(f"fieldset:has(#{group}-error)")
        assert f"{group}-error" in (await fieldset.get_attribute("aria-describedby") or "").split()
    await expect(page.get_by_label("Full name", exact=True)).to_have_value("Margaret Ellis")  # kept
    assert await page.get_by_label("Full name", exact=True).get_attribute("aria-invalid") is None

    # A summary link takes the focus to its field (a radio group: its first button).
    await page.get_by_role("link", name="Choose what you would like us to do").click()
    await expect(page.get_by_label("Get a copy of my data", exact=True)).to_be_focused()
    await page.get_by_role("link", name="Enter your email address").click()
    assert page.url.endswith("#email")
    await expect(email).to_be_focused()
    await expect(email).to_be_in_viewport()

    await page.get_by_label("Delete my data", exact=True).check()
    await page.get_by_label("Canada", exact=True).check()
    await email.fill("margaret.ellis@")
    assert await send(page) == 422
    assert await summary_links(page) == [
        ("Enter an email address in the correct format, like name@example.com", "#email")
    ]
    await expect(page.locator("#email-error")).to_contain_text("in the correct format")
    await expect(page.get_by_label("Delete my data", exact=True)).to_be_checked()
    await expect(page.get_by_label("Canada", exact=True)).to_be_checked()
    await expect(email).to_have_value("margaret.ellis@")
    assert count_cases(store) == before  # nothing was opened


# --------------------------------------------------------------------------------------------
# Someone acting for the person


async def test_an_agent_sends_the_signed_permission_with_the_request(
    served: BackgroundServer,
    page: Page,
    ts_env: WorkflowEnvironment,
    settings: Settings,
    smtp_server: SmtpServer,
) -> None:
    await page.goto(f"{served.url}/request")
    details = {"name": MARGARET["name"], "email": MARGARET["email"], "phone": MARGARET["phone"]}
    await fill_in(page, "Get a copy of my data", "United Kingdom", details)
    await act_for_someone_else(page, "They have signed a letter giving me permission")
    await page.get_by_label("The signed letter or power of attorney (optional)").set_input_files(
        {"name": "permission.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    assert await send(page) == 200
    reference = await reference_on(page)
    assert "secure link to send us the signed letter" not in await page.content()

    handle: WorkflowHandle[DataSubjectRequest, str] = ts_env.client.get_workflow_handle(reference)
    snap = await handle.query(DataSubjectRequest.snapshot)
    assert snap.identity is not None
    assert (snap.identity.agent_authority, snap.identity.authority) == ("written_permission", "received")
    case = await case_input(ts_env.client, reference)
    assert case.by_agent and case.agent is not None
    assert (case.agent.name, case.agent.email) == (AGENT["name"], AGENT["email"])
    assert case.identifiers == details  # the person's details, not the agent's
    assert case.agent.document is not None
    assert blob_store_from_settings(settings).get(case.agent.document) == PDF  # kept, encrypted

    ack = await mail_to(smtp_server, AGENT["email"], f"We have received your request ({reference})")
    assert "Dear Priya Shah" in ack.get_body(("plain",)).get_content()


async def test_an_agent_without_the_permission_is_asked_for_it_by_email(
    served: BackgroundServer, page: Page, ts_env: WorkflowEnvironment, smtp_server: SmtpServer
) -> None:
    await page.goto(f"{served.url}/request")
    await fill_in(
        page, "Delete my data", "California", {"name": "Margaret Ellis", "email": MARGARET["email"]}
    )
    await act_for_someone_else(page, "I have a power of attorney for them")
    assert await send(page) == 200
    reference = await reference_on(page)
    await expect(page.get_by_text("secure link to send us the signed letter")).to_be_visible()

    handle: WorkflowHandle[DataSubjectRequest, str] = ts_env.client.get_workflow_handle(reference)
    snap = await wait_until(handle, lambda s: s.waiting_for == "person: authority")
    assert (snap.regime, snap.request_type) == (Regime.CCPA, RequestType.ERASURE)
    assert snap.identity is not None and snap.identity.authority == "requested"
    asked = await mail_to(
        smtp_server, AGENT["email"], f"Please send proof of your authority to act ({reference})"
    )
    assert f"/r/{reference}/authority?t=" in asked.get_body(("plain",)).get_content()


async def test_an_upload_that_is_not_a_document_or_too_large_is_refused(
    served: BackgroundServer, page: Page, store: CaseStore, tmp_path: Path
) -> None:
    before = count_cases(store)
    await page.goto(f"{served.url}/request")
    await fill_in(page, "Get a copy of my data", "United Kingdom", {"email": MARGARET["email"]})
    await act_for_someone_else(page, "They have signed a letter giving me permission")
    upload = page.get_by_label("The signed letter or power of attorney (optional)")
    await upload.set_input_files(
        {"name": "permission.pdf", "mimeType": "application/pdf", "buffer": b"MZ\x90\x00 a program"}
    )
    assert await send(page) == 422
    assert await summary_links(page) == [("The file must be a PDF, JPEG or PNG", "#agent_document")]
    await page.screenshot(path=str(tmp_path / "agent-errors.png"), full_page=True)
    assert await accessibility_problems(page) == []
    await expect(page.locator("#agent_document-error")).to_have_text(
        "Error: The file must be a PDF, JPEG or PNG"
    )
    assert await upload.get_attribute("aria-invalid") == "true"
    await expect(upload).to_have_value("")  # the file is not kept...
    await expect(page.get_by_label("Your full name", exact=True)).to_have_value(
        AGENT["name"]
    )  # ...the rest is
    await expect(page.get_by_label("I am making this request for someone else")).to_be_checked()

    scan = tmp_path / "scan.pdf"  # from disk: the browser reads it, nothing crosses the driver
    scan.write_bytes(b"%PDF-1.4\n" + b"0" * (11 * 1024 * 1024))
    await upload.set_input_files(scan)
    assert await send(page) == 413
    await expect(page.locator("main")).to_contain_text("The file is too large: at most 10 MB")
    assert count_cases(store) == before


async def test_a_robot_that_fills_in_the_honeypot_opens_no_case(
    served: BackgroundServer, page: Page, store: CaseStore
) -> None:
    before = count_cases(store)
    await page.goto(f"{served.url}/request")
    trap = page.locator("input[name=website]")
    assert await trap.get_attribute("tabindex") == "-1"  # out of reach of the keyboard...
    assert await page.locator(".hp").get_attribute("aria-hidden") == "true"  # ...and of screen readers
    await fill_in(page, "Get a copy of my data", "United Kingdom", {"email": MARGARET["email"]})
    await trap.fill("https://spam.example", force=True)
    assert await send(page) == 400
    await expect(page.locator("h1")).to_have_text("This form could not be sent")
    assert count_cases(store) == before


# --------------------------------------------------------------------------------------------
# Without JavaScript, by keyboard only


async def tab_to(page: Page, label: str, most: int = 40) -> None:
    """Press Tab until the field labelled ``label`` has the focus (it must be reachable)."""
    field = page.get_by_label(label, exact=True)
    for _ in range(most):
        await page.keyboard.press("Tab")
        if await field.evaluate("e => e === document.activeElement"):
            return
    raise AssertionError(f"{label!r} cannot be reached with the Tab key")


async def test_the_form_works_without_javascript_and_by_keyboard_only(
    served: BackgroundServer, page_without_js: Page, ts_env: WorkflowEnvironment, store: CaseStore
) -> None:
    page = page_without_js
    await page.set_content("<title>before</title><script>document.title = 'ran'</script>")
    assert await page.title() == "before"  # this browser runs no page script
    await page.goto(f"{served.url}/request")
    assert await page.locator("script").count() == 0  # and the form has none to run
    elsewhere = page.locator("#place-elsewhere-hint")
    await expect(elsewhere).to_have_text("We will handle your request under UK GDPR")

    await tab_to(page, "Get a copy of my data")
    await page.keyboard.press("ArrowDown")  # radio buttons: the arrow keys choose
    await expect(page.get_by_label("Delete my data", exact=True)).to_be_checked()
    await tab_to(page, "United Kingdom")
    for _ in range(9):
        await page.keyboard.press("ArrowDown")
    await expect(page.get_by_label("Somewhere else", exact=True)).to_be_checked()
    await tab_to(page, "Full name")
    await page.keyboard.type("Margaret Ellis")
    await tab_to(page, "Email address")
    await page.keyboard.type(MARGARET["email"])
    button = page.get_by_role("button", name="Send request")
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await button.evaluate("e => e === document.activeElement"):
            break
    else:
        raise AssertionError("the button cannot be reached with the Tab key")
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.keyboard.press("Enter")
    assert (await answer.value).status == 200
    reference = await reference_on(page)

    row = store.get(reference)
    assert row is not None
    # "Somewhere else": the first regime the data map names for the controller.
    assert (row.request_type, row.regime, row.channel) == ("erasure", "UK_GDPR", "web_form")
    case = await case_input(ts_env.client, reference)
    assert case.identifiers == {"name": "Margaret Ellis", "email": MARGARET["email"]}


# --------------------------------------------------------------------------------------------
# Double submit


async def test_a_double_submit_opens_one_case(
    served: BackgroundServer, page: Page, store: CaseStore, ts_env: WorkflowEnvironment
) -> None:
    before = count_cases(store)
    await page.goto(f"{served.url}/request")
    token = await page.locator("input[name=form_token]").input_value()
    await fill_in(page, "Correct my data", "A country in the EU or the EEA", {"email": MARGARET["email"]})
    await page.get_by_label("Which detail is wrong").select_option(label="My name")
    await page.get_by_label("What it should say", exact=True).fill("Margaret Ellis-Hart")
    answers: list[str] = []

    async def twice(route: Route) -> None:
        """A double click: the browser's own POST reaches the server twice at once."""
        if route.request.method != "POST":
            await route.continue_()
            return
        first, second = await asyncio.gather(route.fetch(), route.fetch())
        answers.extend([await first.text(), await second.text()])
        await route.fulfill(response=first)

    await page.route(f"{served.url}/request", twice)
    async with page.expect_request(lambda r: r.method == "POST") as sent:
        assert await send(page) == 200
    reference = await reference_on(page)
    assert all(f'id="reference">{reference}<' in text for text in answers) and len(answers) == 2

    # Sent once more later (a reload of the confirmation page re-sends the form): the same case.
    again = await page.request.fetch(await sent.value)
    assert again.status == 200 and f'id="reference">{reference}<' in await again.text()

    assert count_cases(store) == before + 1
    row = store.get_by_key(f"web-form:{token}")
    assert row is not None and row.reference == reference
    assert (row.request_type, row.regime) == ("rectification", "EU_GDPR")


# --------------------------------------------------------------------------------------------
# When things go wrong: the engine is down, a script sends too much


async def test_while_the_engine_is_down_the_form_comes_back_with_the_answers_and_the_same_token(
    page: Page, settings: Settings, store: CaseStore, demo_env: dict[str, str]
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{s.getsockname()[1]}"
    app = create_app(settings.model_copy(update={"temporal_address": nowhere}), store=store)
    before = count_cases(store)
    async with BackgroundServer(app) as server:
        await page.goto(f"{server.url}/request")
        token = await page.locator("input[name=form_token]").input_value()
        await fill_in(page, "Get a copy of my data", "Brazil", {"email": MARGARET["email"]})
        assert await send(page) == 503
    await expect(page.locator("#error-summary")).to_contain_text("could not send your request just now")
    await expect(page.locator("input[name=form_token]")).to_have_value(token)
    await expect(page.get_by_label("Brazil", exact=True)).to_be_checked()
    await expect(page.get_by_label("Email address", exact=True)).to_have_value(MARGARET["email"])
    assert count_cases(store) == before


async def test_a_client_sending_the_form_again_and_again_is_slowed_down(
    served: BackgroundServer, page: Page, store: CaseStore
) -> None:
    before = count_cases(store)
    await page.goto(f"{served.url}/request")
    statuses = []
    for _ in range(6):  # POST_LIMIT: 5 a minute from one address
        answer = await page.request.post(
            f"{served.url}/request", multipart={"form_token": "x", "email": "a@"}
        )
        statuses.append(answer.status)
    assert statuses == [422] * 5 + [429]
    assert "Too many attempts" in await answer.text() and answer.headers["retry-after"] == "60"
    assert count_cases(store) == before


# --------------------------------------------------------------------------------------------
# The checks behind the form, answer by answer (no browser needed)


def answers(**fields: str) -> Answers:
    base = {"form_token": "t" * 32, "request_type": "access", "place": "uk", "email": MARGARET["email"]}
    return Answers.from_fields({**base, **fields})


def controller(*regimes: Regime) -> Controller:
    return Controller("Northwind", "privacy@northwind.example", "dpo@northwind.example", {}, "GB", regimes)


def test_somewhere_else_is_handled_under_the_controllers_own_law() -> None:
    for regimes, expected in (((Regime.EU_GDPR, Regime.UK_GDPR), Regime.EU_GDPR), ((), Regime.UK_GDPR)):
        problems, checked = check_answers(answers(place="elsewhere"), controller(*regimes))
        assert not problems and checked is not None
        assert checked.new.regime == expected
    _, checked = check_answers(answers(place="virginia"), controller(Regime.EU_GDPR))
    assert checked is not None and checked.new.regime == Regime.VCDPA


def test_each_answer_is_checked_and_no_problem_repeats_what_was_typed() -> None:
    typed = {
        "name": "Margaret\u202eEllis",  # a right-to-left override hides what a name says
        "phone": "call me maybe",
        "postcode": "CV3 4LP" * 40,
        "agent_name": AGENT["name"],
    }
    problems, checked = check_answers(answers(**typed), controller(Regime.UK_GDPR))
    assert checked is None
    assert problems.fields == {
        "name": "Full name contains characters we cannot accept; please type it again",
        "phone": "Enter a phone number in the correct format, like +44 7700 900982",
        "postcode": "Postcode or ZIP code must be 200 characters or fewer",
        "for_someone_else": (
            "Tick this box if you are making the request for someone else, or clear your own details"
        ),
    }
    for value in typed.values():
        assert value not in str(problems)


def test_an_agent_gives_their_own_email_address_not_the_persons() -> None:
    same = answers(
        for_someone_else="yes",
        agent_name=AGENT["name"],
        agent_email=MARGARET["email"].upper(),
        authority="written_permission",
    )
    problems, _ = check_answers(same, controller())
    assert problems.fields == {
        "agent_email": "Enter your own email address, not the email address of the person"
    }
    problems, checked = check_answers(answers(for_someone_else="yes"), controller(), document=PDF)
    assert checked is None and set(problems.fields) == {"agent_name", "agent_email", "authority"}


def test_the_form_uses_the_input_gate_for_separators_and_encoded_line_breaks() -> None:
    """Issue 18: what the API refuses, the form refuses too, beside the field."""
    for hostile in (
        "Margaret\u2028Ellis",
        "Margaret\u2029Ellis",
        "Margaret\u0085Ellis",
        "=?utf-8?q?M=0D=0Ab?=",
    ):
        problems, checked = check_answers(answers(name=hostile), controller(Regime.UK_GDPR))
        assert checked is None and set(problems.fields) == {"name"}, hostile
        assert hostile not in str(problems)
    problems, checked = check_answers(answers(name="Zoe\u0308 Ellis"), controller(Regime.UK_GDPR))
    assert not problems and checked is not None
    assert checked.new.identifiers["name"] == "Zo\u00eb Ellis"  # NFC


def test_each_request_type_is_asked_what_it_needs() -> None:
    uk = controller(Regime.UK_GDPR)
    problems, _ = check_answers(answers(request_type="rectification"), uk)
    assert problems.fields == {"correction_kind_1": "Tell us which detail is wrong and what it should say"}
    problems, _ = check_answers(
        answers(request_type="rectification", correction_kind_1="name", correction_value_2="x"), uk
    )
    assert problems.fields == {
        "correction_value_1": "Enter what it should say",
        "correction_kind_2": "Choose which detail is wrong",
    }
    _, checked = check_answers(
        answers(
            request_type="rectification",
            correction_kind_1="postal_address",
            correction_value_1="3 Mill Road\nCoventry",
            correction_kind_2="email",
            correction_value_2="m.ellis@example.net",
            objection="marketing",  # for another type: left out
        ),
        uk,
    )
    assert checked is not None and checked.new.objection == ""
    assert checked.new.corrections == {
        "postal_address": "3 Mill Road, Coventry",
        "email": "m.ellis@example.net",
    }

    problems, _ = check_answers(answers(request_type="portability", transfer_to="http://other.example"), uk)
    assert problems.fields == {
        "transfer_to": "Enter the other company's secure web address, starting with https://"
    }
    _, checked = check_answers(
        answers(request_type="portability", transfer_to="https://other.example/in"), uk
    )
    assert checked is not None and checked.new.transfer_to == "https://other.example/in"

    problems, _ = check_answers(answers(request_type="objection"), uk)
    assert problems.fields == {"objection": "Tell us which use of your data you object to"}
    _, checked = check_answers(answers(request_type="objection", objection="Profiling for adverts"), uk)
    assert checked is not None and checked.new.objection == "Profiling for adverts"
