"""``/console/reports`` in Debian's headless chromium: the period form, the figures as tables,
the CSV download, a period that cannot be used, and who may see it; axe-core on every state.

The register is filled through ``CaseStore`` (its real write path: register rows and audit
events with known dates); tests/test_reports.py drives cases through the workflow engine."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from console.app import create_app
from console.auth import mint_token
from dsar.model import Channel, Regime, RequestType
from dsar.reports import Period, report_for
from dsar.settings import Settings
from dsar.store import AuditSpec, CaseStore, NewCase
from dsar.timeutil import local_instant
from tests.conftest import make_settings
from tests.test_console import Site, accessibility_problems, console_map
from tests.test_console_dev import dev_sign_in

TZ = "Europe/London"
DAY0 = date(2026, 3, 2)


def at(day: date, hour: int = 10) -> datetime:
    return local_instant(day, hour, TZ)


@pytest.fixture
def site() -> Site:
    return Site()


@pytest.fixture
def settings(tmp_path: Path, demo_env: dict[str, str], site: Site) -> Settings:
    return make_settings(
        tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'register.db'}",
        datamap=console_map(),
        console_url=site.url,
        timezone=TZ,
    )


@pytest.fixture
def register(settings: Settings) -> Iterator[CaseStore]:
    store = CaseStore(settings.resolved_database_url)
    try:
        yield store
    finally:
        store.close()


def seed(store: CaseStore) -> dict[str, str]:
    """Four requests received on 2 March 2026: answered in 3 days; answered 40 days late;
    extended (CCPA) and answered on day 50; refused on day 2."""

    def opened(request_type: RequestType, regime: Regime, channel: Channel) -> str:
        row, _ = store.open_case(NewCase(request_type, regime, channel, at(DAY0)))
        return row.reference

    refs = {
        "on_time": opened(RequestType.ACCESS, Regime.UK_GDPR, Channel.WEB_FORM),
        "late": opened(RequestType.ERASURE, Regime.UK_GDPR, Channel.EMAIL),
        "extended": opened(RequestType.ACCESS, Regime.CCPA, Channel.API),
        "refused": opened(RequestType.ACCESS, Regime.CCPA, Channel.API),
    }
    due_uk, due_ccpa = date(2026, 4, 2), DAY0 + timedelta(days=45)
    store.record(refs["on_time"], [AuditSpec("stage:responded", "system")], at(DAY0 + timedelta(days=3)),
                 stage="responded", due=due_uk)  # fmt: skip
    store.record(refs["late"], [AuditSpec("stage:responded", "system")], at(due_uk + timedelta(days=40)),
                 stage="responded", due=due_uk, breached=True)  # fmt: skip
    store.record(refs["extended"], [AuditSpec("decision:extend", "operator:olive", "records in 14 systems")],
                 at(DAY0 + timedelta(days=20)), due=DAY0 + timedelta(days=90), extended=True)  # fmt: skip
    store.record(refs["extended"], [AuditSpec("stage:responded", "system")], at(DAY0 + timedelta(days=50)),
                 stage="responded")  # fmt: skip
    store.record(
        refs["refused"],
        [AuditSpec("decision:reject", "operator:olive", "no reply to our checks", {"ground": "unverified"}),
         AuditSpec("stage:rejected", "system")],
        at(DAY0 + timedelta(days=2)),
        stage="rejected",
        due=due_ccpa,
    )  # fmt: skip
    return refs


@pytest.fixture
async def served(settings: Settings, register: CaseStore, site: Site) -> AsyncIterator[Site]:
    await site.serve(create_app(settings, store=register))
    try:
        yield site
    finally:
        await site.close()


async def test_reports_page_tables_csv_and_roles(
    served: Site, browser: Browser, register: CaseStore, settings: Settings, tmp_path: Path
) -> None:
    refs = seed(register)
    context = await browser.new_context(accept_downloads=True)
    page = await context.new_page()
    await dev_sign_in(page, served, "olive", ["operator"])
    await expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    await page.get_by_role("navigation", name="Console").get_by_role("link", name="Reports").click()
    await expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()
    assert await accessibility_problems(page) == []

    # The period by keyboard-friendly date fields, then the figures.
    await page.get_by_label("From").fill("2026-03-01")
    await page.get_by_label("To").fill("2026-05-31")
    await page.get_by_role("button", name="Show the figures").click()
    summary = page.locator("#summary")
    await expect(summary.locator("caption")).to_have_text("1 March 2026 to 31 May 2026")
    expected = {
        "Received": "4",
        "Closed": "4",
        "Responded on time": "3",
        "On-time rate": "75.0%",
        "Median days to respond": "26.5",  # 2, 3, 50, 71
        "95th percentile days to respond": "71",
    }
    for label, figure in expected.items():
        row = summary.get_by_role("row").filter(has=page.get_by_role("rowheader", name=label, exact=True))
        await expect(row.get_by_role("cell")).to_have_text(figure)
    assert await page.locator('#by-regime tr[data-group="CCPA"] td').all_inner_texts() == [
        "2", "2", "2", "2", "100.0%", "26.0", "50",
    ]  # fmt: skip
    extension = page.locator(f'#extensions tr[data-reference="{refs["extended"]}"]')
    await expect(extension).to_contain_text("records in 14 systems")
    await expect(extension.get_by_role("link", name=refs["extended"])).to_have_attribute(
        "href", f"/console/cases/{refs['extended']}"
    )
    await expect(page.locator('#refusals tr[data-group="unverified"] td')).to_have_text("1")
    assert await page.locator('#ccpa-7102 tr[data-group="know"] td').all_inner_texts() == [
        "2", "1", "1", "26.0", "26.0",
    ]  # fmt: skip
    assert await accessibility_problems(page) == []

    # The CSV download is the same figures as the function computes.
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download these figures as CSV").click()
    download = await info.value
    assert download.suggested_filename == "dsar-report-2026-03-01-to-2026-05-31.csv"
    saved = tmp_path / "report.csv"
    await download.save_as(saved)
    period = Period(date(2026, 3, 1), date(2026, 5, 31), TZ)
    assert saved.read_text(encoding="utf-8") == report_for(register, period).to_csv()
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert ["all", "", "on_time_rate", "0.75"] in rows

    # A period that ends before it starts: the reason, and the form to correct it.
    response = await page.goto(served.url + "/console/reports?from=2026-03-05&to=2026-03-01")
    assert response is not None and response.status == 422
    await expect(page.get_by_role("alert")).to_contain_text("the period ends (2026-03-01) before it starts")
    await expect(page.get_by_label("From")).to_have_value("2026-03-05")
    assert await accessibility_problems(page) == []
    await context.close()

    # A system owner may not see it; a script with a reviewer's token reads the CSV.
    owner = await browser.new_context()
    fiona = await owner.new_page()
    await dev_sign_in(fiona, served, "fiona", ["owner:cctv"])
    refused = await fiona.goto(served.url + "/console/reports")
    assert refused is not None and refused.status == 403
    await expect(fiona.get_by_role("heading", name="You cannot do this")).to_be_visible()
    await owner.close()
    token = mint_token(settings, "rita", ["reviewer"])
    async with httpx.AsyncClient(base_url=served.url) as client:
        got = await client.get(
            "/console/reports.csv", params={"from": "2026-03-01", "to": "2026-05-31"},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        assert got.text == report_for(register, period).to_csv()
        anonymous = await client.get("/console/reports.csv", follow_redirects=False)
        assert anonymous.status_code == 303 and "/console/sign-in" in anonymous.headers["location"]
