"""The console on a development machine (``DSAR_AUTH_MODE=dev``, what ``make run`` uses): the
sign-in page with a role picker, the queue worked by keyboard alone, with and without
JavaScript, and the API docs served by the app with no network beyond loopback."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, expect
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from console.app import create_app
from dsar.settings import Settings
from dsar.store import CaseStore
from tests.conftest import make_settings
from tests.smtpserver import SmtpServer
from tests.test_console import (
    Site,
    accessibility_problems,
    console_map,
    new_case,
)
from tests.test_workflow import wait_until


@pytest.fixture
def site() -> Site:
    return Site()


@pytest.fixture
def settings(
    tmp_path: Path, demo_env: dict[str, str], register_url: str, site: Site, request: pytest.FixtureRequest
) -> Settings:
    overrides: dict[str, object] = {}
    if "relay" in request.node.name:  # letters through a real SMTP server
        smtp: SmtpServer = request.getfixturevalue("smtp_server")
        overrides.update(smtp_host=smtp.host, smtp_port=smtp.port)
    return make_settings(
        tmp_path / "var", database_url=register_url, datamap=console_map(), console_url=site.url, **overrides
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


async def dev_sign_in(page: Page, site: Site, name: str, roles: list[str]) -> None:
    await page.goto(site.url + "/console")
    assert "/console/sign-in" in page.url
    for box in await page.get_by_role("checkbox").all():
        await box.uncheck()
    await page.get_by_label("Your name").fill(name)
    for role in roles:
        await page.get_by_label(role, exact=True).check()
    await page.get_by_role("button", name="Sign in").click()


async def test_dev_sign_in_and_the_queue_by_keyboard(
    served: Site,
    browser: Browser,
    ts_env: WorkflowEnvironment,
    store: CaseStore,
    settings: Settings,
) -> None:
    earlier = await new_case(ts_env, store, settings)  # the same person asked before
    handle = await new_case(ts_env, store, settings)
    ref = handle.id
    await wait_until(handle, lambda s: s.waiting_for == "operator: identity check")
    for javascript in (True, False):
        context = await browser.new_context(java_script_enabled=javascript)
        page = await context.new_page()
        await page.goto(served.url + "/console/sign-in")
        assert await accessibility_problems(page) == [] if javascript else True
        await dev_sign_in(page, served, "kim", ["operator", "reviewer"])
        await expect(page.get_by_role("heading", name="Queue")).to_be_visible()
        await expect(page.get_by_text("Signed in as")).to_contain_text("kim")
        # Filter by keyboard: type the reference, press Enter (HTMX swaps the table in place
        # with JavaScript; the plain GET does the same without).
        await page.get_by_label("Reference").focus()
        await page.keyboard.type(ref[-6:])
        await page.keyboard.press("Enter")
        rows = page.locator("tr[data-reference]")
        await expect(rows).to_have_count(1)
        assert await rows.first.get_attribute("data-reference") == ref
        await expect(page).to_have_url(re.compile(r"q=" + ref[-6:]))
        # Tab to the case's link and open it with Enter.
        link = page.get_by_role("link", name=ref, exact=True)
        for _ in range(60):
            await page.keyboard.press("Tab")
            if await link.evaluate("el => el === document.activeElement"):
                break
        else:
            raise AssertionError("the case link cannot be reached with Tab")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", level=1)).to_contain_text(ref)
        # The same person's earlier request is listed, and flagged as a possible duplicate.
        await expect(page.locator(f'#related tr[data-reference="{earlier.id}"]')).to_have_count(1)
        await expect(page.get_by_role("note").filter(has_text=earlier.id)).to_contain_text("duplicate")
        # Take the case (the second time round it is mine already): it is mine in the queue.
        if javascript:
            await page.get_by_role("button", name="Assign to me").click()
        await expect(page.get_by_role("button", name="Unassign me")).to_be_visible()
        await page.goto(served.url + "/console?assignee=me")
        await expect(page.locator(f'tr[data-reference="{ref}"]')).to_have_count(1)
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("status")).to_contain_text("You have signed out")
        await context.close()
    assert [e.details for e in store.audit_trail(ref) if e.action == "case:assigned"] == [
        {"assignee": "kim"}
    ], "the second sign-in found the case already assigned to kim"


async def test_an_owner_only_sees_tasks_and_docs_work_offline(
    served: Site,
    browser: Browser,
) -> None:
    context = await browser.new_context()
    # Nothing but the app itself: a CDN request would fail, and the page with it.
    outside: list[str] = []

    async def only_loopback(route: Route) -> None:
        if route.request.url.startswith(served.url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_loopback)
    page = await context.new_page()
    await dev_sign_in(page, served, "fiona", ["owner:cctv"])
    await expect(page.get_by_role("heading", name="Search tasks")).to_be_visible()
    assert await accessibility_problems(page) == []
    queue = await page.goto(served.url + "/console")
    await expect(page.get_by_role("heading", name="Search tasks")).to_be_visible()  # sent to their tasks
    assert queue is not None
    case = await page.goto(served.url + "/console/cases/DSR-2026-000001")
    assert case is not None and case.status == 403
    await expect(page.get_by_role("heading", name="You cannot do this")).to_be_visible()

    await page.goto(served.url + "/docs")
    await expect(page.get_by_text("/api/v1/requests", exact=True).first).to_be_visible()
    assert outside == [], f"the pages asked for {outside}"
    await context.close()


async def test_an_operator_task_from_a_letter_the_relay_refuses_is_resolved_on_the_case_page(
    served: Site, browser: Browser, ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings
) -> None:
    """A step that failed for good is a task on the case page, with its ways out as forms."""
    from dsar.datamap import DataMap
    from dsar.model import Channel, Regime, RequestType
    from intake.service import NewRequest, open_case

    controller = DataMap.load(settings.datamap).controller.name
    ids = {"name": "Margaret Ellis", "email": "refused.margaret@example.com"}
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
    await wait_until(handle, lambda s: any(t.status == "open" for t in s.tasks), timeout=30)
    context = await browser.new_context()
    page = await context.new_page()
    await dev_sign_in(page, served, "olive", ["operator"])
    row = page.locator(f'tr[data-reference="{opened.reference}"]')
    await expect(row).to_contain_text("send the acknowledgement letter failed")
    await page.get_by_role("link", name=opened.reference, exact=True).click()
    task = page.locator('article.task[data-task^="letter:acknowledgement"]')
    await expect(task).to_contain_text("LetterRefused: the acknowledgement letter could not be sent")
    assert await accessibility_problems(page) == []
    await task.get_by_label("Reason").last.fill("Posted the acknowledgement to her home address")
    await task.get_by_role("button", name="Done by hand").click()
    await expect(page.get_by_role("status")).to_contain_text("Recorded: done by hand")
    # the case goes on (and the relay refuses its next letter too: a task of its own)
    await expect(task).to_have_attribute("data-status", "done_by_hand")
    await context.close()
    resolved = [e for e in store.audit_trail(opened.reference) if e.action == "decision:done_by_hand"]
    assert resolved and resolved[0].actor == "operator:olive"
