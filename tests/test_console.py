"""The staff console as the privacy team uses it: Debian's chromium driven by Playwright, the
real app served by uvicorn on loopback, a real OpenID provider (the npm package oidc-provider
on Node.js), a real Temporal test server and worker, and the demo company's systems.

An operator signs in, finds a case in the queue and verifies it; the CCTV owner answers their
search task with an upload; an operator is refused the reviewer's approval (a 403 page); a
reviewer approves; the case is seen responded. Signed-out visitors go to sign-in, a form
without its CSRF token is refused, and scripts read the queue and a case with a bearer token.
"""

from __future__ import annotations

import functools
import re
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
import yaml
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, expect
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from console.app import create_app
from demo.seed import MARGARET
from dsar.datamap import DataMap
from dsar.model import Channel, Regime, RequestType, Stage
from dsar.settings import Settings
from dsar.store import CaseStore
from intake.service import NewRequest, open_case
from tests.conftest import ROOT, keep_systems, make_settings
from tests.oidcserver import OidcProvider
from tests.test_workflow import wait_until

AXE_RULES = {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}


@functools.cache
def console_map() -> Path:
    """The demo company with its SQL systems and CCTV (searched by hand); an operator verifies."""
    document = yaml.safe_load((ROOT / "demo" / "dsar.yaml").read_text())
    keep_systems(document, lambda _, v: v["connector"] in ("sql", "manual"))
    document["verification"] = {"automatic": False}
    path = Path(tempfile.mkdtemp(prefix="dsar-console-map-")) / "dsar.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


class Site:
    """uvicorn on a loopback port chosen before the app exists (the provider must know the
    console's redirect URI first)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server: uvicorn.Server | None = None

    async def serve(self, app: object) -> None:
        import asyncio
        import threading

        config = uvicorn.Config(app, log_config=None, lifespan="off")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("uvicorn did not start")

    async def close(self) -> None:
        import asyncio

        if self.server is not None:
            self.server.should_exit = True
            await asyncio.to_thread(self.thread.join, 10)
        self.sock.close()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s


@pytest.fixture
def provider(site: Site) -> Iterator[OidcProvider]:
    p = OidcProvider(site.url)
    p.start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def settings(
    tmp_path: Path, demo_env: dict[str, str], register_url: str, provider: OidcProvider, site: Site
) -> Settings:
    return make_settings(
        tmp_path / "var", database_url=register_url, datamap=console_map(), **provider.settings()
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


async def signed_in(browser: Browser, site: Site, user: str, start: str = "/console") -> Page:
    """A new browser that signs in as ``user`` at the provider, from ``start``."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(site.url + start)
    assert "/console/sign-in" in page.url, "a signed-out visitor is sent to sign in"
    await page.get_by_role("link", name="Sign in with your organisation account").click()
    await provider_login(page, user)
    await page.wait_for_url(re.compile(re.escape(site.url) + r"/console"))
    return page


async def provider_login(page: Page, user: str) -> None:
    """The provider's own login page (its development login: any password)."""
    await page.locator("input[name=login]").fill(user)
    await page.locator("input[name=password]").fill("any password will do")
    await page.get_by_role("button", name="Sign-in").click()


async def accessibility_problems(page: Page) -> list[str]:
    results = await Axe().run(page, options={"runOnly": AXE_RULES, "resultTypes": ["violations"]})
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])}x)" for v in results.response["violations"]]


async def new_case(ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings) -> WorkflowHandle:
    controller = DataMap.load(settings.datamap).controller.name
    ids = {k: MARGARET[k] for k in ("name", "email", "phone", "postal_address")}
    opened = await open_case(
        ts_env.client,
        store,
        settings,
        NewRequest(
            request_type=RequestType.ACCESS, regime=Regime.UK_GDPR, identifiers=ids, channel=Channel.API
        ),
        controller,
    )
    return ts_env.client.get_workflow_handle(opened.reference)


async def test_a_case_from_queue_to_response(
    served: Site, browser: Browser, ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings
) -> None:
    handle = await new_case(ts_env, store, settings)
    ref = handle.id
    await wait_until(handle, lambda s: s.waiting_for == "operator: identity check")

    # The operator signs in at the provider, finds the case in the queue, opens it.
    olive = await signed_in(browser, served, "olive")
    row = olive.locator(f'tr[data-reference="{ref}"]')
    await expect(row).to_have_count(1)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", await row.get_attribute("data-due") or "")
    assert await accessibility_problems(olive) == []
    await olive.get_by_role("link", name=ref, exact=True).click()
    await expect(olive.locator("#requester")).to_be_visible()
    await expect(olive.get_by_role("cell", name="Margaret Ellis")).to_be_visible()
    assert await accessibility_problems(olive) == []
    # ... and verifies the person by hand, with a reason.
    verify = olive.locator("form.decision", has=olive.get_by_role("heading", name="Verify identity"))
    await verify.get_by_label("Reason (optional)").fill("checked her passport at the Coventry counter")
    await verify.get_by_role("button", name="Verify identity").click()
    await expect(olive.get_by_role("status")).to_contain_text("Recorded: verify")
    trail = [e.action for e in store.audit_trail(ref)]
    assert "requester:viewed" in trail and "decision:verify" in trail
    viewer = next(e for e in store.audit_trail(ref) if e.action == "requester:viewed")
    assert viewer.actor == "operator:olive"

    # CCTV is searched by hand: its owner signs in, sees only what the data map names.
    await wait_until(handle, lambda s: any(x.system == "cctv" and x.status == "waiting" for x in s.systems))
    fiona = await signed_in(browser, served, "fiona")
    assert fiona.url.endswith("/console/tasks"), "an owner lands on their tasks"
    await fiona.get_by_role("link", name=ref).click()
    await expect(fiona.get_by_role("cell", name="Margaret Ellis")).to_be_visible()
    assert MARGARET["email"] not in await fiona.content(), "the owner sees only the kinds the map names"
    assert await accessibility_problems(fiona) == []
    await fiona.get_by_label("What you found").set_input_files(
        {"name": "stills.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff" + b"x" * 2000}
    )
    await fiona.get_by_role("button", name="Upload what I found").click()
    await expect(fiona.get_by_role("status")).to_contain_text("your answer is on the case")
    answered = await wait_until(
        handle, lambda s: any(x.system == "cctv" and x.status == "found" for x in s.systems)
    )
    cctv = next(x for x in answered.systems if x.system == "cctv")
    assert "owner:cctv:fiona" in cctv.detail

    # The review: the operator may not approve it (a clear 403 page), the reviewer does.
    await wait_until(handle, lambda s: s.stage == Stage.REVIEWING and s.review is not None, timeout=60)
    await olive.goto(f"{served.url}/console/cases/{ref}")
    await expect(olive.get_by_text("A reviewer approves this package")).to_be_visible()
    csrf = await olive.locator("input[name=csrf]").first.get_attribute("value")
    refused = await olive.request.post(f"{served.url}/console/cases/{ref}/review", form={"csrf": csrf or ""})
    assert refused.status == 403
    assert "needs the reviewer or admin role" in await refused.text()
    rita = await signed_in(browser, served, "rita", start=f"/console/cases/{ref}")
    assert rita.url.endswith(f"/console/cases/{ref}"), "sign-in comes back to the page asked for"
    await rita.get_by_label("Note (optional, recorded with the approval)").fill("nothing withheld")
    await rita.get_by_role("button", name="Approve the review").click()
    await expect(rita.get_by_role("status")).to_contain_text("Recorded: approve")
    await wait_until(handle, lambda s: s.stage == Stage.RESPONDED, timeout=60)
    await rita.reload()
    await expect(rita.locator("#stage")).to_have_text("responded")
    await expect(rita.locator("#letters")).to_be_visible()
    letters = rita.locator("details summary", has_text="response")
    await expect(letters).to_have_count(1)
    page_text = await rita.content()
    assert "/d/" + ref not in page_text and "?t=" not in page_text, "no live download link in the case file"
    for page in (olive, fiona, rita):
        await page.context.close()


async def test_sign_in_csrf_roles_and_scripts(
    served: Site, browser: Browser, ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings,
    provider: OidcProvider,
) -> None:  # fmt: skip
    import httpx

    handle = await new_case(ts_env, store, settings)
    ref = handle.id
    await wait_until(handle, lambda s: s.waiting_for == "operator: identity check")
    async with httpx.AsyncClient(base_url=served.url) as http:
        # Signed out: pages send you to sign in; the API and scripts get a 401.
        r = await http.get(f"/console/cases/{ref}")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in?next=")
        assert (await http.get("/api/v1/requests")).status_code == 401
        # A monitoring script with a JWT access token from the provider (client credentials, ES256).
        token = provider.script_token()
        bearer = {"Authorization": f"Bearer {token}"}
        r = await http.get("/console", headers=bearer)
        assert r.status_code == 200
        assert re.search(rf'data-reference="{ref}" data-due="\d{{4}}-\d{{2}}-\d{{2}}"', r.text)
        r = await http.get(f"/console/cases/{ref}", headers=bearer)
        assert r.status_code == 200 and ref in r.text
        assert (await http.get("/api/v1/requests", headers=bearer)).status_code == 200
        # Tokens the provider did not sign for this API are refused.
        from console.auth import mint_token

        dev_settings = make_settings(Path(settings.var_dir), auth_mode="dev", jwt_secret=settings.jwt_secret)
        hs256 = mint_token(dev_settings, "mallory", ["admin"])
        for bad in (hs256, token[:-4] + "AAAA", "not-a-token"):
            r = await http.get("/console", headers={"Authorization": f"Bearer {bad}"})
            assert r.status_code == 401, bad
        # An account the provider knows but with no dsar role gets a plain 403, no session.
    gus = await browser.new_context()
    page = await gus.new_page()
    await page.goto(served.url + "/console")
    await page.get_by_role("link", name="Sign in with your organisation account").click()
    async with page.expect_response(lambda r: "/console/auth/callback" in r.url) as answer:
        await provider_login(page, "gus")
    assert (await answer.value).status == 403
    await expect(page.get_by_role("heading", name="You have no role in dsar")).to_be_visible()
    await gus.close()

    # A form without its CSRF token is refused and changes nothing.
    olive = await signed_in(browser, served, "olive")
    before = len(store.audit_trail(ref))
    refused = await olive.request.post(
        f"{served.url}/console/cases/{ref}/comments", form={"comment": "hello"}
    )
    assert refused.status == 403 and "This form has expired" in await refused.text()
    forged = await olive.request.post(
        f"{served.url}/console/cases/{ref}/decisions", form={"kind": "verify", "csrf": "x" * 43}
    )
    assert forged.status == 403
    assert not [e for e in store.audit_trail(ref)[before:] if e.action in ("comment", "decision:verify")]
    # With it, the comment is on the case (internal: in the audit trail, never sent).
    await olive.goto(f"{served.url}/console/cases/{ref}")
    await olive.get_by_label("Add a comment").fill("Rang her: she will send a utility bill.")
    await olive.get_by_role("button", name="Add comment").click()
    await expect(olive.locator("#comments blockquote")).to_contain_text("utility bill")
    # A decision the engine refuses shows its own words: two people extend the same case at once.
    other = await olive.context.new_page()
    await other.goto(f"{served.url}/console/cases/{ref}")
    for page in (other, olive):
        extend = page.locator("form.decision", has=page.get_by_role("heading", name="Extend the deadline"))
        await extend.get_by_label("Reason").fill("many systems to search")
        await extend.get_by_role("button", name="Extend the deadline").click()
    await expect(other.get_by_role("status")).to_contain_text("Recorded: extend")
    await expect(olive.get_by_role("alert")).to_contain_text("already been extended once")
    await other.close()

    # Key rotation at the provider: new sign-ins verify against the new key.
    provider.rotate()
    await olive.context.close()
    olive = await signed_in(browser, served, "olive")
    await expect(olive.locator(f'tr[data-reference="{ref}"]')).to_have_count(1)
    # Signing out ends the session: the cookie no longer opens a page.
    await olive.get_by_role("button", name="Sign out").click()
    await olive.goto(f"{served.url}/console")
    assert "/console/sign-in" in olive.url
    await olive.context.close()
