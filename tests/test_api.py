"""The HTTP API against the real time-skipping Temporal server and a real dsar worker."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jose import jwt
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from console.app import create_app
from console.auth import mint_token
from dsar.model import Channel, Regime, RequestType
from dsar.settings import Settings
from dsar.store import CaseStore, NewCase
from tests.conftest import make_settings

EMAIL = "margaret.ellis@example.com"
MARGARET = {"email": EMAIL, "name": "Margaret Ellis", "phone": "+44 7911 123456"}
REF_RE = re.compile(r"^DSR-\d{4}-\d{6}$")


def bearer(settings: Settings, *roles: str, sub: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, sub, list(roles))}"}


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
async def api(
    ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=ts_env.client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client
    # Open cases are ended by the ``worker`` fixture once they settle (tests/conftest.py).


async def submit(
    api: httpx.AsyncClient, settings: Settings, *, regime: str = "UK_GDPR", idem: str | None = None
) -> dict[str, Any]:
    r = await api.post(
        "/api/v1/requests",
        json={"type": "access", "regime": regime, "identifiers": MARGARET, "idempotency_key": idem or key()},
        headers=bearer(settings, "operator"),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def wait_stage(
    api: httpx.AsyncClient, settings: Settings, ref: str, stages: set[str], timeout: float = 30
) -> dict[str, Any]:
    """Poll the snapshot until the case is in one of ``stages``."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        r = await api.get(f"/api/v1/requests/{ref}", headers=bearer(settings, "reviewer"))
        assert r.status_code == 200, r.text
        last = r.json()
        if last["stage"] in stages:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{ref} never reached {stages}; last snapshot: {last.get('stage')}")


async def wait_register(store: CaseStore, ref: str, stage: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        row = store.get(ref)
        if row is not None and row.stage == stage:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"register never showed {ref} as {stage}")


# --------------------------------------------------------------------------------------------
# Intake and the snapshot


async def test_submit_is_idempotent_and_snapshot_shows_stage_and_due(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    idem = key()
    opened = await submit(api, settings, idem=idem)
    assert REF_RE.match(opened["reference"])
    assert re.match(r"^\d{4}-\d{2}-\d{2}$", opened["due"])

    again = await api.post(
        "/api/v1/requests",
        json={"type": "access", "regime": "UK_GDPR", "identifiers": MARGARET, "idempotency_key": idem},
        headers=bearer(settings, "operator"),
    )
    assert again.status_code == 200, again.text
    assert again.json() == opened

    by_header = await api.post(
        "/api/v1/requests",
        json={"type": "access", "regime": "UK_GDPR", "identifiers": MARGARET},
        headers={**bearer(settings, "operator"), "Idempotency-Key": idem},
    )
    assert by_header.status_code == 200
    assert by_header.json()["reference"] == opened["reference"]

    snap = await wait_stage(api, settings, opened["reference"], {"acknowledged", "verifying"})
    assert snap["reference"] == opened["reference"]
    assert snap["due"] == opened["due"]
    assert snap["regime"] == "UK_GDPR"
    assert snap["request_type"] == "access"
    assert snap["clock_events"][0]["type"] == "received"
    # Who the requester is, for staff who check identity by eye: under "requester" only, and
    # each view is in the case's audit trail.
    assert snap["requester"]["identifiers"]["email"] == EMAIL
    assert EMAIL not in str({k: v for k, v in snap.items() if k != "requester"})
    assert snap["clock_rule"] and "received" in snap["clock_rule"][0]
    trail = await api.get(
        f"/api/v1/requests/{opened['reference']}/audit", headers=bearer(settings, "operator")
    )
    views = [e for e in trail.json()["events"] if e["action"] == "requester:viewed"]
    assert views and views[-1]["details"] == {"via": "api"}
    assert views[-1]["actor"].split(":")[0] in ("operator", "reviewer")


# --------------------------------------------------------------------------------------------
# Decisions


async def test_decisions_move_the_case_and_roles_are_enforced(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    ref = (await submit(api, settings))["reference"]
    await wait_stage(api, settings, ref, {"verifying"})

    refused = await api.post(
        f"/api/v1/requests/{ref}/decisions", json={"kind": "approve"}, headers=bearer(settings, "reviewer")
    )
    assert refused.status_code == 409
    assert "'approve' is not allowed while the case is verifying" in refused.json()["detail"]

    spoofed = await api.post(
        f"/api/v1/requests/{ref}/decisions",
        json={"kind": "verify", "actor": "someone-else"},
        headers=bearer(settings, "operator"),
    )
    assert spoofed.status_code == 422  # the actor comes from the token, never from the body

    verified = await api.post(
        f"/api/v1/requests/{ref}/decisions",
        json={"kind": "verify", "reason": "passport seen"},
        headers=bearer(settings, "operator", sub="olive"),
    )
    assert verified.status_code == 200, verified.text
    assert set(verified.json()) == {"stage", "due", "message"}
    await wait_stage(api, settings, ref, {"reviewing"})

    as_operator = await api.post(
        f"/api/v1/requests/{ref}/decisions", json={"kind": "approve"}, headers=bearer(settings, "operator")
    )
    assert as_operator.status_code == 403
    assert "reviewer" in as_operator.json()["detail"]

    # The review package is prepared by an activity: approve as soon as the validator allows.
    for _ in range(100):
        approved = await api.post(
            f"/api/v1/requests/{ref}/decisions",
            json={"kind": "approve", "reason": "nothing to withhold"},
            headers=bearer(settings, "reviewer", sub="rita"),
        )
        if approved.status_code != 409 or "not ready" not in approved.text:
            break
        await asyncio.sleep(0.1)
    assert approved.status_code == 200, approved.text
    snap = await wait_stage(api, settings, ref, {"responded", "closed"})
    actors = {(d["kind"], d["actor"]) for d in snap["decisions"]}
    assert ("verify", "operator:olive") in actors
    assert ("approve", "reviewer:rita") in actors

    after = await api.post(
        f"/api/v1/requests/{ref}/decisions", json={"kind": "verify"}, headers=bearer(settings, "admin")
    )
    assert after.status_code == 409


async def test_unknown_decision_kind_lists_the_allowed_ones(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    ref = (await submit(api, settings))["reference"]
    r = await api.post(
        f"/api/v1/requests/{ref}/decisions", json={"kind": "bless"}, headers=bearer(settings, "operator")
    )
    assert r.status_code == 422
    assert "'verify'" in r.text and "'approve'" in r.text


# --------------------------------------------------------------------------------------------
# The queue and the audit trail


async def test_queue_is_sorted_by_due_date_and_filtered_by_stage(
    api: httpx.AsyncClient, settings: Settings, store: CaseStore
) -> None:
    refs = [
        (await submit(api, settings, regime=regime))["reference"] for regime in ("UK_GDPR", "LGPD", "CCPA")
    ]
    for ref in refs:
        await wait_register(store, ref, "verifying")

    # The register is shared by the session: other tests' cases may be listed too.
    r = await api.get("/api/v1/requests", params={"limit": 500}, headers=bearer(settings, "operator"))
    assert r.status_code == 200, r.text
    everything = r.json()["items"]
    keys = [(i["due"] is None, i["due"] or "", i["reference"]) for i in everything]
    assert keys == sorted(keys)
    mine = [i for i in everything if i["reference"] in refs]
    assert len(mine) == 3
    assert len({i["due"] for i in mine}) == 3  # 15 days (LGPD), a month (UK), 45 days (CCPA)
    assert [i["reference"] for i in mine] == [refs[1], refs[0], refs[2]]

    cutoff = mine[1]["due"]
    r = await api.get("/api/v1/requests", params={"due_before": cutoff}, headers=bearer(settings, "reviewer"))
    before = r.json()["items"]
    assert all(i["due"] is not None and i["due"] < cutoff for i in before)
    assert {i["reference"] for i in before} & set(refs) == {refs[1]}

    verify = await api.post(
        f"/api/v1/requests/{refs[0]}/decisions", json={"kind": "verify"}, headers=bearer(settings, "operator")
    )
    assert verify.status_code == 200, verify.text
    await wait_register(store, refs[0], "reviewing")
    r = await api.get(
        "/api/v1/requests", params={"stage": "verifying", "limit": 500}, headers=bearer(settings, "operator")
    )
    verifying = r.json()["items"]
    assert all(i["stage"] == "verifying" for i in verifying)
    assert {i["reference"] for i in verifying} & set(refs) == set(refs[1:])

    r = await api.get(
        "/api/v1/requests", params={"limit": 1, "offset": 1}, headers=bearer(settings, "operator")
    )
    assert [i["reference"] for i in r.json()["items"]] == [everything[1]["reference"]]

    r = await api.get("/api/v1/requests", params={"stage": "limbo"}, headers=bearer(settings, "operator"))
    assert r.status_code == 422 and "'verifying'" in r.text
    r = await api.get("/api/v1/requests", params={"due_before": "soon"}, headers=bearer(settings, "operator"))
    assert r.status_code == 422


async def test_audit_trail_has_an_intact_chain(
    api: httpx.AsyncClient, settings: Settings, store: CaseStore
) -> None:
    ref = (await submit(api, settings))["reference"]
    await wait_register(store, ref, "verifying")
    r = await api.get(f"/api/v1/requests/{ref}/audit", headers=bearer(settings, "reviewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["chain"]["ok"] is True
    assert body["chain"]["events"] == len(body["events"]) >= 2
    actions = [e["action"] for e in body["events"]]
    assert "stage:acknowledged" in actions and "stage:verifying" in actions
    assert [e["seq"] for e in body["events"]] == list(range(1, len(actions) + 1))

    missing = await api.get("/api/v1/requests/DSR-2020-999999/audit", headers=bearer(settings, "reviewer"))
    assert missing.status_code == 404


# --------------------------------------------------------------------------------------------
# Authentication


async def test_tokens_are_checked(api: httpx.AsyncClient, settings: Settings) -> None:
    path = "/api/v1/requests"
    none = await api.get(path)
    assert none.status_code == 401
    assert none.headers["www-authenticate"].startswith("Bearer")
    assert "Bearer" in none.json()["detail"]

    now = datetime.now(UTC)
    claims = {"sub": "mallory", "roles": ["admin"], "iss": "dsar", "aud": "dsar-api",
              "iat": int(now.timestamp()), "exp": int((now + timedelta(hours=1)).timestamp())}  # fmt: skip
    forged = jwt.encode(claims, "not-the-secret-" + "y" * 32, algorithm="HS256")
    expired = mint_token(settings, "alice", ["operator"], ttl=timedelta(seconds=-600))  # past the skew
    wrong_aud = jwt.encode({**claims, "aud": "another-api"}, settings.jwt_secret_value, algorithm="HS256")
    wrong_iss = jwt.encode({**claims, "iss": "elsewhere"}, settings.jwt_secret_value, algorithm="HS256")
    no_sub = jwt.encode({k: v for k, v in claims.items() if k != "sub"}, settings.jwt_secret_value, "HS256")
    unsigned = jwt.encode(claims, "", algorithm="HS256").rsplit(".", 1)[0] + "."
    for name, token in [("forged", forged), ("expired", expired), ("wrong audience", wrong_aud),
                        ("wrong issuer", wrong_iss), ("no subject", no_sub), ("unsigned", unsigned),
                        ("garbage", "not.a.token")]:  # fmt: skip
        r = await api.get(path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert r.headers["www-authenticate"].startswith("Bearer"), name
        assert r.json()["detail"], name
    r = await api.get(path, headers={"Authorization": f"Bearer {expired}"})
    assert "expired" in r.json()["detail"]

    # Signed with the right key, but claims a library would coerce: refused, never a 5xx.
    key = settings.jwt_secret_value
    year = 365 * 24 * 3600
    strict = {
        "exp as a string": jwt.encode({**claims, "exp": str(claims["exp"])}, key),
        "exp far ahead": jwt.encode({**claims, "exp": 1e30}, key),
        "exp infinite": jwt.encode({**claims, "exp": float("inf")}, key),
        "exp a boolean": jwt.encode({**claims, "exp": True}, key),
        "iat a year ahead": jwt.encode({**claims, "iat": int(now.timestamp()) + year}, key),
        "crit header": jwt.encode(claims, key, headers={"crit": ["exp"]}),
        "roles not a list": jwt.encode({**claims, "roles": "admin"}, key),
        "another algorithm": jwt.encode(claims, key, algorithm="HS512"),
    }
    for name, token in strict.items():
        r = await api.get(path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name

    ok = await api.get(
        path, headers={"Authorization": f"Bearer {jwt.encode(claims, settings.jwt_secret_value)}"}
    )
    assert ok.status_code == 200

    reviewer_submits = await api.post(
        path,
        json={"type": "access", "regime": "UK_GDPR", "identifiers": MARGARET},
        headers=bearer(settings, "reviewer"),
    )
    assert reviewer_submits.status_code == 403


# --------------------------------------------------------------------------------------------
# Bad input: 4xx with a clear message, never a 500, never an echo of personal data


async def test_bad_input_is_refused_without_echoing_personal_data(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    h = bearer(settings, "operator")
    r = await api.post(
        "/api/v1/requests",
        json={"type": "everything", "regime": "UK_GDPR", "identifiers": MARGARET, "idempotency_key": key()},
        headers=h,
    )
    assert r.status_code == 422
    assert "'access'" in r.text and "'opt_out_sale_sharing'" in r.text
    assert EMAIL not in r.text and "Margaret" not in r.text and "7911" not in r.text
    assert "everything" not in r.text  # no input values at all

    r = await api.post(
        "/api/v1/requests",
        json={"type": "access", "regime": "Mars", "identifiers": {"email": 42}, "idempotency_key": key()},
        headers=h,
    )
    assert r.status_code == 422
    assert "'UK_GDPR'" in r.text and "42" not in r.text

    r = await api.post(
        "/api/v1/requests",
        json={
            "type": "access",
            "regime": "UK_GDPR",
            "identifiers": {"shoe_size": "11"},
            "idempotency_key": key(),
        },
        headers=h,
    )
    assert r.status_code == 422
    assert "shoe_size" in r.json()["detail"] and "email" in r.json()["detail"]

    r = await api.post(
        "/api/v1/requests",
        json={
            "type": "access",
            "regime": "UK_GDPR",
            "identifiers": {EMAIL: "email"},
            "idempotency_key": key(),
        },
        headers=h,
    )
    assert r.status_code == 422 and EMAIL not in r.text  # a value sent as a key is not echoed either

    r = await api.post(
        "/api/v1/requests",
        content=b'{"type": "access", "identifiers": {',
        headers={**h, "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert "malformed JSON" in r.json()["detail"]

    huge = "m" * 10_000 + "@example.com"
    r = await api.post(
        "/api/v1/requests",
        json={
            "type": "access",
            "regime": "UK_GDPR",
            "identifiers": {"email": huge},
            "idempotency_key": key(),
        },
        headers=h,
    )
    assert r.status_code == 422
    assert "longer than" in r.json()["detail"] and "mmmm" not in r.text

    r = await api.post(
        "/api/v1/requests",
        json={"type": "access", "regime": "UK_GDPR", "identifiers": MARGARET, "idempotency_key": "k" * 1000},
        headers=h,
    )
    assert r.status_code == 422

    r = await api.post(
        "/api/v1/requests", json={"type": "access", "regime": "UK_GDPR", "identifiers": {}}, headers=h
    )
    assert r.status_code == 422

    for ref in ("DSR-2026-999999", "DSR-1999-000001"):
        r = await api.get(f"/api/v1/requests/{ref}", headers=h)
        assert r.status_code == 404, ref
        assert ref in r.json()["detail"]
    for ref in ("nope", "DSR-26-1", "DSR-2026-000001;drop", "%00"):
        r = await api.get(f"/api/v1/requests/{ref}", headers=h)
        assert r.status_code == 404, ref
    r = await api.post("/api/v1/requests/DSR-2026-999999/decisions", json={"kind": "verify"}, headers=h)
    assert r.status_code == 404
    r = await api.post("/api/v1/requests/bad/decisions", json={"kind": "verify"}, headers=h)
    assert r.status_code == 404


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_engine_is_a_503(settings: Settings, store: CaseStore) -> None:
    down = make_settings(settings.var_dir, temporal_address=f"127.0.0.1:{_closed_port()}")
    app = create_app(down, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        r = await api.get("/api/v1/requests/DSR-2026-000001", headers=bearer(down, "operator"))
        assert r.status_code == 503
        assert r.json()["detail"] == "the workflow engine is unreachable; retry"
        r = await api.get("/healthz")
        assert r.json() == {"ok": True, "temporal": False}
        r = await api.get("/api/v1/requests", headers=bearer(down, "operator"))
        assert r.status_code == 200  # the register does not need the engine


async def test_register_out_of_step_with_the_engine_is_a_503_not_a_500(
    api: httpx.AsyncClient, ts_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    """A reset register would hand out a reference Temporal still runs: intake refuses."""
    running = (await submit(api, settings))["reference"]
    await wait_stage(api, settings, running, {"verifying"})
    # A register "restored from an old backup": its next reference is the running case's.
    fresh = CaseStore(f"sqlite:///{tmp_path / 'restored.db'}")
    try:
        for _ in range(int(running.rsplit("-", 1)[1]) - 1):
            fresh.open_case(NewCase(RequestType.ACCESS, Regime.UK_GDPR, Channel.API, datetime.now(UTC)))
        app = create_app(settings, client=ts_env.client, store=fresh)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as restored:
            r = await restored.post(
                "/api/v1/requests",
                json={"type": "access", "regime": "UK_GDPR", "identifiers": MARGARET},
                headers=bearer(settings, "operator"),
            )
        assert r.status_code == 503
        assert running in r.json()["detail"] and EMAIL not in r.text
    finally:
        fresh.close()
    snap = await wait_stage(api, settings, running, {"verifying"})
    assert snap["decisions"] == []  # the running case was left alone


async def test_health_and_openapi(api: httpx.AsyncClient) -> None:
    r = await api.get("/healthz")
    assert r.json() == {"ok": True, "temporal": True}
    r = await api.get("/openapi.json")
    assert "/api/v1/requests/{ref}/decisions" in r.json()["paths"]
    assert (await api.get("/docs")).status_code == 200


# --------------------------------------------------------------------------------------------
# The codec server for the Temporal Web UI


def _payloads(*texts: str) -> dict[str, Any]:
    return {
        "payloads": [
            {
                "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                "data": base64.b64encode(f'"{t}"'.encode()).decode(),
            }
            for t in texts
        ]
    }


async def test_codec_endpoints_round_trip(api: httpx.AsyncClient, settings: Settings) -> None:
    original = _payloads(EMAIL, "second")
    assert (await api.post("/codec/encode", json=original)).status_code == 401

    h = {**bearer(settings, "operator"), "X-Namespace": "default"}
    encoded = await api.post("/codec/encode", json=original, headers=h)
    assert encoded.status_code == 200, encoded.text
    sealed = encoded.json()["payloads"]
    assert len(sealed) == 2
    assert base64.b64decode(sealed[0]["metadata"]["encoding"]) == b"binary/encrypted"
    assert EMAIL.encode() not in base64.b64decode(sealed[0]["data"])

    assert (await api.post("/codec/decode", json=encoded.json())).status_code == 401
    decoded = await api.post("/codec/decode", json=encoded.json(), headers=h)
    assert decoded.status_code == 200
    assert decoded.json() == original

    bad = await api.post("/codec/decode", content=b"[", headers={**h, "content-type": "application/json"})
    assert bad.status_code == 400
    bad = await api.post("/codec/decode", json={"payloads": "no"}, headers=h)
    assert bad.status_code == 400


async def test_codec_for_the_dev_stack_needs_no_token_and_allows_the_ui_origin(
    ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore
) -> None:
    app = create_app(settings, client=ts_env.client, store=store, codec_requires_auth=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        encoded = await api.post("/codec/encode", json=_payloads("x"))
        assert encoded.status_code == 200
        decoded = await api.post("/codec/decode", json=encoded.json())
        assert decoded.json() == _payloads("x")

        preflight = await api.options(
            "/codec/decode",
            headers={
                "Origin": "http://localhost:8233",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:8233"
        other = await api.options(
            "/codec/decode",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers
        # the API itself still needs a token
        assert (await api.get("/api/v1/requests")).status_code == 401


async def test_a_system_owner_answers_only_for_their_system(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """``owner:<system>`` may answer a search by hand of that system, and nothing else."""
    ref = (await submit(api, settings))["reference"]
    await wait_stage(api, settings, ref, {"verifying"})
    owner = bearer(settings, "owner:cctv", sub="fiona")
    assert (await api.get(f"/api/v1/requests/{ref}", headers=owner)).status_code == 403
    other = await api.post(
        f"/api/v1/requests/{ref}/decisions", json={"kind": "nothing_held", "system": "crm"}, headers=owner
    )
    assert other.status_code == 403
    upload = await api.post(
        f"/api/v1/requests/{ref}/systems/crm/found",
        files={"file": ("x.jpg", b"\xff\xd8\xffxx")},
        headers=owner,
    )
    assert upload.status_code == 403
    # Their own system passes the role check; the case then says it is not searching it.
    own = await api.post(
        f"/api/v1/requests/{ref}/decisions", json={"kind": "nothing_held", "system": "cctv"}, headers=owner
    )
    assert own.status_code == 409, own.text
    assert "not allowed while the case is verifying" in own.json()["detail"]
    verify = await api.post(f"/api/v1/requests/{ref}/decisions", json={"kind": "verify"}, headers=owner)
    assert verify.status_code == 403


async def test_a_duplicate_is_answered_with_the_earlier_request_and_both_are_named(
    api: httpx.AsyncClient, settings: Settings, store: CaseStore
) -> None:
    from demo.seed import PETER
    from tests.test_workflow import letters

    operator = bearer(settings, "operator")
    first = (await submit(api, settings))["reference"]
    second = (await submit(api, settings))["reference"]
    peter = await api.post(
        "/api/v1/requests",
        json={"type": "access", "regime": "UK_GDPR", "identifiers": {k: PETER[k] for k in ("name", "email")}},
        headers=operator,
    )
    stranger = peter.json()["reference"]
    for ref in (first, second, stranger):
        await wait_stage(api, settings, ref, {"verifying"})
    # at intake, the second case's trail names the same person's open request
    seen = next(e for e in store.audit_trail(second) if e.action == "intake:same_person")
    assert first in seen.details["open"].split(",")
    named = [e.details for e in store.audit_trail(stranger) if e.action == "intake:same_person"]
    assert not [d for d in named if first in str(d) or second in str(d)], "Peter is not Margaret"
    # the later one joins the earlier one, never the other way (the answer must not come later)
    backwards = await api.post(f"/api/v1/requests/{first}/merge", json={"into": second}, headers=operator)
    assert backwards.status_code == 422 and "received after" in backwards.json()["detail"]
    other_person = await api.post(
        f"/api/v1/requests/{stranger}/merge", json={"into": first}, headers=operator
    )
    assert other_person.status_code == 422 and "same person" in other_person.json()["detail"]
    as_decision = await api.post(
        f"/api/v1/requests/{second}/decisions", json={"kind": "merge"}, headers=operator
    )
    assert as_decision.status_code == 422
    reviewer = await api.post(
        f"/api/v1/requests/{second}/merge", json={"into": first}, headers=bearer(settings, "reviewer")
    )
    assert reviewer.status_code == 403

    merged = await api.post(f"/api/v1/requests/{second}/merge", json={"into": first}, headers=operator)
    assert merged.status_code == 200, merged.text
    assert merged.json()["stage"] == "merged"
    row = store.get(second)
    assert row is not None and row.stage == "merged"
    mine = [m for m in letters(settings) if second in str(m["Subject"])]
    told = next(m for m in mine if "together with" in str(m["Subject"]))
    body = told.get_body(("plain",))
    assert body is not None and first in body.get_content() and "at the latest" in body.get_content()
    trail = [e for e in store.audit_trail(first) if e.action == "case:merged_in"]
    assert trail and trail[0].details == {"reference": second} and trail[0].actor == "operator:alice"
    merge_entry = next(e for e in store.audit_trail(second) if e.action == "decision:merge")
    assert merge_entry.details["merged_into"] == first
    again = await api.post(f"/api/v1/requests/{second}/merge", json={"into": first}, headers=operator)
    assert again.status_code == 409
    # the earlier case's answer names both
    verify = await api.post(f"/api/v1/requests/{first}/decisions", json={"kind": "verify"}, headers=operator)
    assert verify.status_code == 200, verify.text
    await wait_stage(api, settings, first, {"reviewing"})
    for _ in range(100):
        approve = await api.post(
            f"/api/v1/requests/{first}/review",
            json={"approve": True},
            headers=bearer(settings, "reviewer", sub="rita"),
        )
        if approve.status_code == 200:
            break
        await asyncio.sleep(0.1)  # the review package is still being prepared
    assert approve.status_code == 200, approve.text
    await wait_stage(api, settings, first, {"responded"})
    response = next(
        m for m in letters(settings) if first in str(m["Subject"]) and "response" in str(m["Subject"])
    )
    text = response.get_body(("plain",))
    assert text is not None and f"and with it your request {second}" in " ".join(text.get_content().split())
