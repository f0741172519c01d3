"""What the person receives is true: every letter and the report of a matrix of cases, run by
the real workflow on the demo company, checked claim by claim against the case's record (its
snapshot, its audit trail, the systems' results).

The matrix: access, erasure, rectification, objection and a CCPA opt-out; found everywhere,
nothing held anywhere, a system skipped, a system searched by hand that held nothing, a record
withheld under an exemption that must not be mentioned (Margaret's open fraud marker), an
agent, unverified, expired, refused, and a fee.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyzipper
import yaml
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from console.app import create_app
from demo.seed import MARGARET as HER
from demo.seed import seed_demo
from dsar.datamap import DataMap
from dsar.model import (
    AgentDetails,
    Channel,
    ClockEventType,
    Decision,
    DecisionKind,
    Regime,
    RequestType,
    Snapshot,
    Stage,
)
from dsar.settings import Settings
from dsar.store import CaseStore
from dsar.wording import request_name
from intake.service import NewRequest, open_case
from tests.conftest import ROOT, keep_systems, make_settings
from tests.test_workflow import letters, wait_until
from workflows.request import DataSubjectRequest

MARGARET = {k: HER[k] for k in ("name", "email", "phone")}
NOBODY = {"name": "Olive Nobody", "email": "olive.nobody@example.org"}
AGENT = AgentDetails(name="Priya Shah", email="priya.shah@agents.example.net")
#: Words of the open fraud investigation: none may reach the person (DPA 2018 Sch 2 para 2).
TIPS = ("fraud", "crime", "investigation", "sch 2 para 2", "privilege", "cifas")
#: Internal names the person never reads (the data map's labels stand in for them).
INTERNAL = re.compile(r"\b(crm|cctv|marketing / |fraud_markers|support_tickets|campaign_events)\b")
ISO = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def _map() -> Path:
    """The demo map with its SQL systems and CCTV (searched by hand); an operator verifies."""
    document = yaml.safe_load((ROOT / "demo" / "dsar.yaml").read_text())
    keep_systems(document, lambda _, v: v["connector"] in ("sql", "manual"))
    document["verification"] = {"automatic": False}
    path = Path(tempfile.mkdtemp(prefix="dsar-truth-")) / "dsar.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


MAP = _map()
DATAMAP = DataMap.load(MAP)


@pytest.fixture
def demo_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh demo company per case: an erasure must not take Margaret from the next case."""
    crm, marketing = f"sqlite:///{tmp_path / 'crm.db'}", f"sqlite:///{tmp_path / 'marketing.db'}"
    seed_demo(crm, marketing, people=20)
    env = {"DSAR_DEMO_CRM_URL": crm, "DSAR_DEMO_MARKETING_URL": marketing}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def settings(tmp_path: Path, demo_env: dict[str, str], register_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url=register_url, datamap=MAP)


def identity_pending(s: Snapshot) -> bool:
    """Verifying, and waiting for someone (the operator, or the person asked for more)."""
    return s.stage == Stage.VERIFYING and bool(s.waiting_for) and "authority" not in str(s.waiting_for)


Handle = WorkflowHandle[DataSubjectRequest, str]


@dataclass
class Case:
    """What the person received, and the record to check it against."""

    handle: Handle
    snapshot: Snapshot
    letters: list[EmailMessage]  # to the person (or their agent)
    audit: list[Any]
    report: str = ""
    package_files: list[str] = field(default_factory=list)

    def text(self, letter: EmailMessage) -> str:
        return " ".join(letter.get_body(("plain",)).get_content().split())

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.letters]

    def one(self, subject: str) -> str:
        found = [m for m in self.letters if subject in str(m["Subject"])]
        assert len(found) == 1, (subject, self.subjects())
        return self.text(found[0])


async def decide(h: Handle, kind: DecisionKind, **kw: Any) -> None:
    await h.execute_update(DataSubjectRequest.decide, Decision(kind=kind, actor="operator:alice", **kw))


async def cctv(h: Handle, answer: DecisionKind = DecisionKind.NOTHING_HELD) -> None:
    await wait_until(h, lambda s: "search by hand: cctv" in str(s.waiting_for))
    await decide(h, answer, system="cctv", reason="searched the recorder: no footage of the person")


async def approve(h: Handle) -> None:
    await wait_until(h, lambda s: s.waiting_for == "reviewer: approve the review package")
    await h.execute_update(
        DataSubjectRequest.decide, Decision(kind=DecisionKind.APPROVE, actor="reviewer:bob")
    )


async def by_hand(h: Handle) -> None:
    s = await wait_until(h, lambda s: s.stage == Stage.RESPONDED or "by hand" in str(s.waiting_for), 30)
    if s.stage != Stage.RESPONDED:
        await decide(h, DecisionKind.FULFILLED, reason="done by the team that holds it")


Script = Callable[[Handle, WorkflowEnvironment], Awaitable[None]]


async def found_everywhere(h: Handle, env: WorkflowEnvironment) -> None:
    await wait_until(h, identity_pending)
    await decide(h, DecisionKind.VERIFY)
    await cctv(h)
    await approve(h)
    await by_hand(h)


async def verified_no_review(h: Handle, env: WorkflowEnvironment) -> None:
    await wait_until(h, identity_pending)
    await decide(h, DecisionKind.VERIFY)
    await cctv(h)


async def cctv_skipped(h: Handle, env: WorkflowEnvironment) -> None:
    await wait_until(h, identity_pending)
    await decide(h, DecisionKind.VERIFY)
    await wait_until(h, lambda s: "search by hand: cctv" in str(s.waiting_for))
    await decide(h, DecisionKind.SKIP_SYSTEM, system="cctv", reason="recorder away for repair")
    await approve(h)
    await by_hand(h)


async def unverified(h: Handle, env: WorkflowEnvironment) -> None:
    await wait_until(h, identity_pending)
    await decide(
        h, DecisionKind.REJECT, ground="unverified", reason="the details given match nobody we can confirm"
    )


async def expired(h: Handle, env: WorkflowEnvironment) -> None:
    await wait_until(h, identity_pending)
    await decide(h, DecisionKind.REQUEST_IDENTITY, reason="a copy of a recent utility bill")
    await env.sleep(timedelta(days=31))


async def refused(h: Handle, env: WorkflowEnvironment) -> None:
    await wait_until(h, identity_pending)
    await decide(
        h, DecisionKind.REJECT, ground="manifestly_unfounded", reason="offered to withdraw it for payment"
    )


async def fee(h: Handle, env: WorkflowEnvironment) -> None:
    await wait_until(h, identity_pending)
    await decide(
        h, DecisionKind.REQUEST_FEE, reason="the fifth identical request this month", fee="GBP 10.00"
    )
    await decide(h, DecisionKind.FEE_PAID)
    await found_everywhere(h, env)


async def agent(h: Handle, env: WorkflowEnvironment) -> None:
    await wait_until(h, lambda s: s.waiting_for == "person: authority")
    await decide(h, DecisionKind.VERIFY, reason="the agent's letter of authority came by post")
    await cctv(h)
    await approve(h)


async def closed_as_nothing_held(h: Handle, env: WorkflowEnvironment) -> None:
    await wait_until(h, identity_pending)
    await decide(h, DecisionKind.NO_DATA_HELD, reason="no candidate in any system for these details")


async def opt_out(h: Handle, env: WorkflowEnvironment) -> None:
    await wait_until(h, lambda s: s.stage == Stage.RESPONDED or s.waiting_for, 30)
    s = await wait_until(
        h, lambda s: s.stage == Stage.RESPONDED or s.waiting_for == "reviewer: approve the review package", 30
    )
    if s.stage != Stage.RESPONDED:
        await approve(h)


@dataclass(frozen=True)
class Scenario:
    name: str
    request_type: RequestType
    who: dict[str, str]
    script: Script
    ends: Stage = Stage.RESPONDED
    regime: Regime = Regime.UK_GDPR
    agent: bool = False
    corrections: dict[str, str] = field(default_factory=dict)


MATRIX = [
    Scenario("access-found-everywhere", RequestType.ACCESS, MARGARET, found_everywhere),
    Scenario("access-nothing-held", RequestType.ACCESS, NOBODY, verified_no_review),
    Scenario("access-system-skipped", RequestType.ACCESS, MARGARET, cctv_skipped),
    Scenario("access-agent", RequestType.ACCESS, MARGARET, agent, agent=True),
    Scenario("access-unverified", RequestType.ACCESS, NOBODY, unverified, Stage.REJECTED),
    Scenario("access-expired", RequestType.ACCESS, MARGARET, expired, Stage.EXPIRED),
    Scenario("access-refused", RequestType.ACCESS, MARGARET, refused, Stage.REJECTED),
    Scenario("access-fee", RequestType.ACCESS, MARGARET, fee),
    Scenario("access-closed-as-nothing-held", RequestType.ACCESS, NOBODY, closed_as_nothing_held),
    Scenario("erasure-found-cctv-nothing", RequestType.ERASURE, MARGARET, found_everywhere),
    Scenario("erasure-nothing-held", RequestType.ERASURE, NOBODY, verified_no_review),
    Scenario("erasure-cctv-skipped", RequestType.ERASURE, MARGARET, cctv_skipped),
    Scenario(
        "rectification-found",
        RequestType.RECTIFICATION,
        {k: MARGARET[k] for k in ("name", "email")},
        found_everywhere,
        corrections={"phone": "+44 7700 900123"},
    ),
    Scenario("objection-found", RequestType.OBJECTION, MARGARET, found_everywhere),
    Scenario("objection-nothing-held", RequestType.OBJECTION, NOBODY, verified_no_review),
    Scenario("opt-out-found", RequestType.OPT_OUT_SALE_SHARING, MARGARET, opt_out, regime=Regime.CCPA),
    Scenario("opt-out-nothing-held", RequestType.OPT_OUT_SALE_SHARING, NOBODY, opt_out, regime=Regime.CCPA),
]


async def run(env: WorkflowEnvironment, store: CaseStore, settings: Settings, sc: Scenario) -> Case:
    opened = await open_case(
        env.client,
        store,
        settings,
        NewRequest(
            request_type=sc.request_type,
            regime=sc.regime,
            identifiers=dict(sc.who),
            channel=Channel.API,
            received_at=await env.get_current_time(),
            agent=AgentDetails(AGENT.name, AGENT.email) if sc.agent else None,
            corrections=dict(sc.corrections),
        ),
        controller=DATAMAP.controller.name,
    )
    h: Handle = env.client.get_workflow_handle_for(DataSubjectRequest.run, opened.reference)
    await sc.script(h, env)
    s = await wait_until(h, lambda s: s.stage == sc.ends, 30)
    to = AGENT.email if sc.agent else sc.who["email"]
    mine = [m for m in letters(settings) if h.id in str(m["Subject"]) and str(m["To"]) == to]
    case = Case(h, s, mine, list(store.audit_trail(h.id)))
    response = [m for m in mine if "Our response" in str(m["Subject"])]
    link = re.search(r"https?://\S+/d/\S+", case.text(response[0])) if response else None
    if link:
        password = next(m for m in mine if "The password" in str(m["Subject"]))
        secret = re.search(r"^\s{4}(\S+)$", password.get_body(("plain",)).get_content(), re.MULTILINE)
        assert secret
        app = create_app(settings, store=store)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=settings.public_url
        ) as web:
            answer = await web.get(link.group(0).removeprefix(settings.public_url))
        assert answer.status_code == 200
        with pyzipper.AESZipFile(io.BytesIO(answer.content)) as zf:
            zf.setpassword(secret.group(1).encode())
            case.package_files = zf.namelist()
            case.report = zf.read("report.html").decode()
    return case


def labels(system: str) -> str:
    return DATAMAP.systems[system].label


@pytest.mark.parametrize("sc", MATRIX, ids=[sc.name for sc in MATRIX])
async def test_every_claim_in_the_letters_and_the_report_holds_against_the_record(
    ts_env: WorkflowEnvironment, worker: Worker, store: CaseStore, settings: Settings, sc: Scenario
) -> None:
    case = await run(ts_env, store, settings, sc)
    s = case.snapshot
    systems = {r.system: r for r in s.systems}
    found = [name for name, r in systems.items() if r.status == "found"]
    name = request_name(sc.regime, sc.request_type)
    texts = [case.text(m) for m in case.letters]
    assert texts, "the person heard nothing"

    # Every letter: addressed by name, in plain words, dates written out, the request by its
    # own name, the labels of the data map rather than internal names, one sign-off.
    greeting = AGENT.name if sc.agent else sc.who["name"]
    for letter, text in zip(case.letters, texts, strict=True):
        assert text.startswith(f"Dear {greeting},"), letter["Subject"]
        assert not ISO.search(text + str(letter["Subject"])), (letter["Subject"], ISO.search(text))
        assert not INTERNAL.search(text), (letter["Subject"], INTERNAL.search(text))
        assert text.endswith(f"Yours sincerely, The privacy team, {DATAMAP.controller.name}")
        assert letter.get_body(("html",)) is not None
        for tip in TIPS:  # the open fraud investigation: no trace, by name, count or category
            assert tip not in text.lower(), (tip, letter["Subject"])
    acknowledgement = case.one("We have received your request")
    assert f"your {name.name}," in acknowledgement

    # How the case ended, and the one letter that says so.
    if sc.ends == Stage.REJECTED:
        rejection = case.one("We cannot act on your request")
        assert s.decisions[-1].reason in rejection
        if sc.name.endswith("refused"):
            assert "manifestly unfounded (Art. 12(5))" in rejection
        assert not [t for t in case.subjects() if "Our response" in t]
        return
    if sc.ends == Stage.EXPIRED:
        assert "we have not received it" in case.one("Your request has been closed")
        assert not [t for t in case.subjects() if "Our response" in t]
        return
    response = case.one("Our response to your request")
    assert f"your {name.name} ({s.reference})" in response
    held_nothing = not found
    if held_nothing:
        # One plain letter: we hold nothing, what was searched, what was not; no package.
        assert s.outcome == "no personal data held: the person was told so"
        assert "we hold no personal data about you" in response
        assert not case.report and not [t for t in case.subjects() if "password" in t.lower()]
        assert "download" not in response.lower()
        for system, result in systems.items():
            if result.status == "none":
                assert (
                    f"our {labels(system)[:1].lower() + labels(system)[1:]}" in response
                    or labels(system) in response
                )
        if not systems:  # closed by an operator before any search
            assert "We have checked our records" in response
            assert "decision:no_data_held" in [e.action for e in case.audit]
        # the clock and the audit trail record the answer
        assert ClockEventType.RESPONDED in [e.type for e in s.clock_events]
        assert "stage:responded" in [e.action for e in case.audit]
        return
    assert "we hold no personal data" not in response

    # Systems searched by hand, skipped or not: the letter says what happened, never more.
    cctv_label = labels("cctv")
    if "cctv" in systems:
        status = systems["cctv"].status
        if sc.request_type in (RequestType.ACCESS, RequestType.PORTABILITY):
            assert case.report and (("Not searched" in case.report) == (status == "skipped")), (
                "the report says CCTV was not searched exactly when it was skipped"
            )
        else:
            claimed_erased = f"{cctv_label}: searched by hand; erased there" in response
            assert claimed_erased == (status == "found"), "erased there only where something was held"
            assert (f"{cctv_label}: searched by hand; nothing held about you" in response) == (
                status == "none"
            )
            assert (f"{cctv_label}: not searched" in response) == (status == "skipped")
    else:
        assert sc.request_type is RequestType.OPT_OUT_SALE_SHARING  # nobody searches by hand for it
        assert cctv_label not in response

    if case.report:
        # The copy: every system's result as recorded, the open fraud marker nowhere.
        for system in systems:
            assert labels(system) in case.report
        lowered = case.report.lower()
        for tip in (
            "crime and taxation",
            "an open fraud investigation",
            "sch 2 para 2",
            "professional privilege",
        ):
            assert tip not in lowered, tip
        assert "We have not included" not in case.report  # Margaret has nothing she may be told is withheld
        assert all(not n.startswith("data/cctv/") for n in case.package_files)  # CCTV held nothing

    if sc.request_type is RequestType.ERASURE:
        # Each "N records deleted" line is what the connectors did, entity by entity.
        applied: dict[str, int] = {}
        for entry in case.audit:
            if entry.action == "change:applied":
                for key, n in entry.details.items():
                    if key.startswith("deleted:"):
                        applied[f"{entry.details['system']}.{key.split(':', 1)[1]}"] = int(n)
        for system, config in DATAMAP.systems.items():
            for entity in config.entities.values():
                label = f"{entity.label} ({config.label})"
                m = re.search(rf"{re.escape(label)}: (\d+) records? deleted", response)
                if m:
                    assert int(m.group(1)) == applied.get(f"{system}.{entity.name}"), label
        assert "Fraud prevention markers" not in response  # named nowhere: a marker is kept silently
        assert "Money Laundering Regulations" in response  # what she may be told is kept, is
    if sc.request_type is RequestType.RECTIFICATION:
        assert "What we corrected:" in response and "+44 7700 900123" not in response
    if sc.request_type in (RequestType.OBJECTION, RequestType.OPT_OUT_SALE_SHARING):
        assert "Marketing preferences (Marketing database)" in response
    if sc.name.endswith("fee"):
        assert "GBP 10.00" in case.one("A fee is payable")
