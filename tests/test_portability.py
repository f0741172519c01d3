"""Portability to another controller (GDPR Art. 20(2)): the case sends the data the person
provided to the HTTPS endpoint they named, and still gives them the download; an endpoint whose
certificate is not trusted gets nothing, and the person is told."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from demo.seed import MARGARET
from dsar.model import Channel, DecisionKind, Regime, RequestType, Stage
from dsar.settings import Settings
from dsar.store import CaseStore
from intake.service import IntakeError, NewRequest, open_case
from tests.conftest import make_settings, read
from tests.test_package import other_controller  # noqa: F401  (the fixture)
from tests.test_workflow import at_stage, decide, letters, plain_text, wait_until
from workflows.request import DataSubjectRequest

Endpoint = tuple[str, Path, list[dict[str, Any]]]


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    demo_env: dict[str, str],
    register_url: str,
    other_controller: Endpoint,  # noqa: F811
) -> Settings:
    trust = request.node.get_closest_marker("untrusted") is None
    return make_settings(
        tmp_path / "var", database_url=register_url, transfer_ca_file=other_controller[1] if trust else None
    )


async def portability(
    ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings, endpoint: str, timeout: float = 30
) -> str:
    opened = await open_case(
        ts_env.client,
        store,
        settings,
        NewRequest(
            request_type=RequestType.PORTABILITY,
            regime=Regime.UK_GDPR,
            identifiers=MARGARET,
            channel=Channel.API,
            received_at=await ts_env.get_current_time(),
            transfer_to=endpoint,
        ),
        controller="Northwind Post & Mobile",
    )
    h = ts_env.client.get_workflow_handle_for(DataSubjectRequest.run, opened.reference)
    await at_stage(h, Stage.VERIFYING)
    await decide(h, DecisionKind.VERIFY)
    await at_stage(h, Stage.REVIEWING)
    await decide(h, DecisionKind.APPROVE)
    s = await wait_until(h, lambda s: s.stage == Stage.RESPONDED, timeout=timeout)
    return s.results["fulfilling"]


async def test_the_data_goes_to_the_controller_the_person_named_and_to_the_person(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    other_controller: Endpoint,  # noqa: F811
) -> None:
    base, _, received = other_controller
    result = await portability(ts_env, store, settings, f"{base}/import")
    assert "sent to 127.0.0.1" in result
    [push] = received
    document = json.loads(push["body"])
    assert MARGARET["email"] in json.dumps(document).lower()  # the person's own data, as they gave it
    assert "[REDACTED: third party]" in json.dumps(document)  # the review's redactions hold here too
    response = read(next(m for m in letters(settings) if "Our response" in str(m["Subject"])))
    assert "/d/" in response and "We have also sent it to the organisation you named (127.0.0.1)" in response
    [sent] = [e for e in store.audit_trail(document["reference"]) if e.action == "portability:sent"]
    assert sent.details["host"] == "127.0.0.1" and sent.details["status"] == "201"


@pytest.mark.untrusted
async def test_an_endpoint_whose_certificate_is_not_trusted_gets_nothing_and_the_person_is_told(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    other_controller: Endpoint,  # noqa: F811
) -> None:
    base, _, received = other_controller
    result = await portability(ts_env, store, settings, f"{base}/import")
    assert "not sent to the other controller" in result and not received
    response = read(next(m for m in letters(settings) if "Our response" in str(m["Subject"])))
    assert "We could not send it to the organisation you named" in response and "/d/" in response


@pytest.mark.parametrize(
    ("endpoint", "kind"),
    [
        ("http://other.example/import", RequestType.PORTABILITY),
        ("https://user:pw@other.example/import", RequestType.PORTABILITY),
        ("https://other.example/import", RequestType.ACCESS),
    ],
)
async def test_a_transfer_is_refused_at_intake_unless_it_is_https_and_a_portability_request(
    ts_env: WorkflowEnvironment, store: CaseStore, settings: Settings, endpoint: str, kind: RequestType
) -> None:
    with pytest.raises(IntakeError, match="transfer_to"):
        await open_case(
            ts_env.client,
            store,
            settings,
            NewRequest(kind, Regime.UK_GDPR, MARGARET, transfer_to=endpoint),
            controller="Northwind",
        )


async def test_an_endpoint_answering_5xx_is_tried_a_few_times_then_the_person_is_told(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    other_controller: Endpoint,  # noqa: F811
) -> None:
    """Issue 18: a push answered 503 again and again was retried for ever, the case stuck in
    fulfilling. Now a few tries (``PUSH_RETRY``), then the person gets the download and is told
    the other organisation did not take it."""
    base, _, received = other_controller
    # answers 503 with Retry-After: 1, which the retries honour (the backoff alone is 2+4+8+16 s)
    result = await portability(ts_env, store, settings, f"{base}/busy", timeout=60)
    assert "not sent to the other controller" in result
    assert 1 < len(received) <= 5
    letter = next(m for m in letters(settings) if "Our response" in str(m["Subject"]))
    response = plain_text(letter)
    assert "We could not send it to the organisation you named" in response and "/d/" in response
