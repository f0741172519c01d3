"""Signed single-use links (``dsar.links``) and the public pages they lead to (``console.public``).

The link checks and every refused-link page run without Temporal; the real time-skipping server
and a dsar worker are used only where a page sends an Update to a case. One test sends a real
letter through SMTP (aiosmtpd on loopback) and follows the link in it, as the person would.
"""

from __future__ import annotations

import base64
import functools
import json
import random
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from console.app import create_app
from demo.seed import MARGARET
from dsar.guard import GuardStore
from dsar.links import (
    PURPOSES,
    LinkRefused,
    check_link,
    key_id,
    mint_link,
)
from dsar.mail import SmtpMailer, build_message
from dsar.model import Channel, Regime, RequestType
from dsar.settings import Settings
from dsar.store import CaseStore, NewCase
from tests.conftest import ROOT, keep_systems, make_settings
from tests.smtpserver import SmtpServer
from tests.test_workflow import start, wait_until
from workflows.request import DataSubjectRequest

PUBLIC = "http://public.test"
LINK_RE = re.compile(r"http://public\.test/r/DSR-\d{4}-\d+/(?:confirm|provide)\?t=[A-Za-z0-9._-]+")


def new_ref() -> str:
    """A reference no other test uses (the register is shared by the session)."""
    return f"DSR-2099-{random.randrange(10**9, 10**10)}"


def token_of(url: str) -> str:
    return url.split("?t=", 1)[1]


def path_of(url: str) -> str:
    return url.removeprefix(PUBLIC).split("?", 1)[0]


def change_one_payload_char(token: str) -> str:
    header, payload, signature = token.split(".")
    i = len(payload) // 2
    swapped = "B" if payload[i] != "B" else "C"
    return ".".join((header, payload[:i] + swapped + payload[i + 1 :], signature))


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


@functools.cache
def verifying_map() -> Path:
    """The demo data map with its SQL systems, verifying identity by itself (the default policy):
    cases ask the person to confirm or to say more, as the pages expect."""
    document = yaml.safe_load((ROOT / "demo" / "dsar.yaml").read_text())
    keep_systems(document, lambda _, v: v["connector"] == "sql")
    document.pop("verification", None)
    path = Path(tempfile.mkdtemp(prefix="dsar-links-map-")) / "dsar.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def settings(tmp_path: Path, demo_env: dict[str, str], register_url: str) -> Settings:
    return make_settings(
        tmp_path / "var", database_url=register_url, public_url=PUBLIC, datamap=verifying_map()
    )


@pytest.fixture
def guard(settings: Settings) -> Iterator[GuardStore]:
    g = GuardStore.from_settings(settings)
    yield g
    g.close()


@pytest.fixture
async def public(settings: Settings, store: CaseStore) -> AsyncIterator[httpx.AsyncClient]:
    """The person's browser on the public pages, with no workflow engine behind them."""
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


@pytest.fixture
async def person(
    ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    """The same, in front of the real time-skipping Temporal server and a dsar worker."""
    app = create_app(settings, client=ts_env.client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


# --------------------------------------------------------------------------------------------
# The token


def test_a_link_names_the_page_and_carries_no_personal_data(settings: Settings) -> None:
    ref = new_ref()
    url = mint_link(settings, ref, "provide_identifiers", kinds=["phone", "postcode"], declaration=True)
    assert url.startswith(f"{PUBLIC}/r/{ref}/provide?t=")
    token = token_of(url)
    assert set(claims_of(token)) == {"ref", "purpose", "kinds", "declaration", "jti", "iat", "exp"}
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["kid"] == key_id(settings.link_secret_value) and header["alg"] == "HS256"
    assert settings.link_secret_value not in url

    claims = check_link(settings, ref, token, "provide")
    assert claims.reference == ref and claims.purpose == "provide_identifiers" and claims.page == "provide"
    assert claims.kinds == ("phone", "postcode") and claims.declaration is True
    assert claims.expires_at - claims.issued_at == timedelta(hours=72)

    for purpose in ("confirm_request", "confirm_erasure", "confirm_agent"):
        confirm = mint_link(settings, ref, purpose, hours=1)
        assert f"/r/{ref}/confirm?t=" in confirm
        assert check_link(settings, ref, token_of(confirm), "confirm").purpose == purpose
    assert token_of(mint_link(settings, ref, "confirm_request")) != token_of(
        mint_link(settings, ref, "confirm_request")
    )  # a fresh jti each time


def test_minting_refuses_what_it_cannot_sign(settings: Settings) -> None:
    ref = new_ref()
    with pytest.raises(ValueError, match="unknown link purpose"):
        mint_link(settings, ref, "download")
    with pytest.raises(ValueError, match="case reference"):
        mint_link(settings, "margaret@example.com", "confirm_request")
    with pytest.raises(ValueError, match="one or more of"):
        mint_link(settings, ref, "provide_identifiers", kinds=["email"])
    with pytest.raises(ValueError, match="one or more of"):
        mint_link(settings, ref, "provide_identifiers")
    with pytest.raises(ValueError, match="only a provide_identifiers link"):
        mint_link(settings, ref, "confirm_request", kinds=["name"])
    with pytest.raises(ValueError, match="negative"):
        mint_link(settings, ref, "confirm_request", hours=-1)


def test_each_way_a_link_can_be_wrong_has_its_reason(tmp_path: Path, settings: Settings) -> None:
    ref, other = new_ref(), new_ref()
    good = token_of(mint_link(settings, ref, "confirm_request"))

    def reason(reference: str, token: str, page: str = "confirm", **kw: object) -> str:
        with pytest.raises(LinkRefused) as info:
            check_link(settings, reference, token, page, **kw)  # type: ignore[arg-type]
        assert str(info.value) == info.value.reason  # the message is the reason, nothing more
        return info.value.reason

    stranger = make_settings(tmp_path / "stranger", link_secret="another-key-" + "y" * 32, public_url=PUBLIC)
    assert reason(ref, token_of(mint_link(stranger, ref, "confirm_request"))) == "forged"
    assert reason(ref, change_one_payload_char(good)) == "altered"
    h, p, s = good.split(".")
    assert reason(ref, f"{h}.{p}.{s[:-6]}AAAAAA") == "altered"  # the signature changed
    assert reason(ref, token_of(mint_link(settings, ref, "confirm_request", hours=0))) == "expired"
    later = datetime.now(UTC) + timedelta(hours=72, seconds=1)
    assert reason(ref, good, now=later) == "expired"
    assert reason(other, good) == "other_case"
    provide = token_of(mint_link(settings, ref, "provide_identifiers", kinds=["name"]))
    assert reason(ref, provide, "confirm") == "altered"  # a form link on the confirm page
    assert reason(ref, good, "provide") == "altered"
    assert reason(ref, good, used=lambda jti: True) == "replayed"
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none","kid":"x"}').decode().rstrip("=")
    for garbage in ("", "garbage", "a.b.c", "...", f"{unsigned}.{p}.", good + "." + p, "x" * 5000, "é.é.é"):
        assert reason(ref, garbage) == "forged", garbage


def test_keys_rotate_old_links_still_work_until_they_expire(tmp_path: Path) -> None:
    ref = new_ref()
    old = make_settings(tmp_path / "a", link_secret="old-key-" + "o" * 32)
    both = make_settings(tmp_path / "b", link_secret="new-key-" + "n" * 32 + ", old-key-" + "o" * 32)
    from_old = token_of(mint_link(old, ref, "confirm_request"))
    assert check_link(both, ref, from_old, "confirm").reference == ref
    from_new = token_of(mint_link(both, ref, "confirm_request"))
    assert json.loads(base64.urlsafe_b64decode(from_new.split(".")[0] + "=="))["kid"] == key_id(
        "new-key-" + "n" * 32
    )
    with pytest.raises(LinkRefused, match="forged"):
        check_link(old, ref, from_new, "confirm")


def test_the_dev_link_secret_is_made_once_under_var(tmp_path: Path) -> None:
    a = make_settings(tmp_path / "var")
    b = make_settings(tmp_path / "var")
    assert a.link_secret is None and a.link_secret_value == b.link_secret_value
    assert (tmp_path / "var" / "link.secret").read_text().strip() == a.link_secret_value
    assert a.link_secret_value != a.jwt_secret_value


# --------------------------------------------------------------------------------------------
# Refused links: a plain page, the right status, and a record


#: name -> (status, reason recorded, words on the page); the URLs are made by ``refused_url``.
REFUSED_CASES = {
    "forged": (400, "forged", "could not recognise this link"),
    "altered": (400, "altered", "missing or has been changed"),
    "expired": (410, "expired", "This link has expired; ask for a new one by replying to our email."),
    "other_case": (400, "other_case", "belongs to another request"),
    "wrong_purpose": (400, "altered", "missing or has been changed"),
    "malformed": (400, "forged", "could not recognise this link"),
    "no_token": (400, "forged", "could not recognise this link"),
}


def refused_url(name: str, settings: Settings, stranger: Settings, ref: str) -> str:
    if name == "forged":
        return mint_link(stranger, ref, "confirm_request")
    if name == "altered":
        url = mint_link(settings, ref, "confirm_request")
        return url.replace(token_of(url), change_one_payload_char(token_of(url)))
    if name == "expired":
        return mint_link(settings, ref, "confirm_request", hours=0)
    if name == "other_case":
        other = new_ref()
        return mint_link(settings, other, "confirm_request").replace(f"/r/{other}/", f"/r/{ref}/")
    if name == "wrong_purpose":
        url = mint_link(settings, ref, "provide_identifiers", kinds=["name"])
        return url.replace("/provide?", "/confirm?")
    if name == "malformed":
        return f"{PUBLIC}/r/{ref}/confirm?t=%3Cscript%3Egarbage"
    return f"{PUBLIC}/r/{ref}/confirm"


@pytest.mark.parametrize("name", list(REFUSED_CASES))
async def test_a_refused_link_shows_why_in_plain_words_and_is_recorded(
    name: str, tmp_path: Path, settings: Settings, guard: GuardStore, public: httpx.AsyncClient
) -> None:
    status, reason, words = REFUSED_CASES[name]
    stranger = make_settings(tmp_path / "stranger", link_secret="another-key-" + "y" * 32, public_url=PUBLIC)
    ref = new_ref()
    url = refused_url(name, settings, stranger, ref)
    assert f"/r/{ref}/confirm" in url

    page = await public.get(url)
    assert page.status_code == status, page.text
    assert words in page.text
    assert '<html lang="en">' in page.text and "<form" not in page.text
    assert "<script" not in page.text and "garbage" not in page.text  # nothing echoed
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    assert [r.reason for r in guard.refusals(ref)] == [reason]

    # The same link sent by the form's button is refused the same way.
    token = token_of(url) if "?t=" in url else ""
    posted = await public.post(f"/r/{ref}/confirm", data={"t": token})
    assert posted.status_code == status and words in posted.text
    assert [r.reason for r in guard.refusals(ref)] == [reason, reason]


async def test_other_case_is_recorded_against_the_case_in_the_url(
    settings: Settings, guard: GuardStore, public: httpx.AsyncClient
) -> None:
    a, b = new_ref(), new_ref()
    token = token_of(mint_link(settings, a, "confirm_request"))
    page = await public.get(f"/r/{b}/confirm", params={"t": token})
    assert page.status_code == 400 and "belongs to another request" in page.text
    assert a not in page.text
    assert [(r.reference, r.purpose, r.reason) for r in guard.refusals(b)] == [
        (b, "confirm_request", "other_case")
    ]
    assert guard.refusals(a) == []


async def test_a_url_that_names_no_case_is_refused_and_recorded_without_one(
    settings: Settings, guard: GuardStore, public: httpx.AsyncClient
) -> None:
    before = len(guard.refusals(None))
    token = token_of(mint_link(settings, new_ref(), "confirm_request"))
    page = await public.get("/r/<b>margaret@example.com<b>/confirm", params={"t": token})
    assert page.status_code == 400 and "margaret" not in page.text
    assert len(guard.refusals(None)) == before + 1


async def test_a_used_link_is_refused_even_on_its_page(
    settings: Settings, guard: GuardStore, public: httpx.AsyncClient
) -> None:
    ref = new_ref()
    url = mint_link(settings, ref, "confirm_request")
    assert (await public.get(url)).status_code == 200
    claims = check_link(settings, ref, token_of(url), "confirm")
    assert not guard.is_used(claims.jti)  # showing the page uses nothing (mail scanners open links)
    assert guard.use_link(claims.jti, ref, claims.purpose)
    page = await public.get(url)
    assert page.status_code == 410 and "already been used" in page.text
    assert [r.reason for r in guard.refusals(ref)] == ["replayed"]


# --------------------------------------------------------------------------------------------
# The pages


async def test_the_confirm_page_says_what_is_confirmed_and_posts_the_token(tmp_path: Path) -> None:
    # A register of its own: a case row with no workflow behind it would trouble the shared one.
    db = f"sqlite:///{tmp_path / 'own.db'}"
    settings = make_settings(tmp_path / "var", database_url=db, public_url=PUBLIC, datamap=verifying_map())
    store, guard = CaseStore(db), GuardStore.from_settings(settings)
    row, _ = store.open_case(
        NewCase(
            RequestType.ERASURE, Regime.UK_GDPR, Channel.WEB_FORM, datetime.now(UTC), f"links-{uuid.uuid4()}"
        )
    )
    ref, unknown = row.reference, new_ref()  # the second is not in the register
    url = mint_link(settings, ref, "confirm_request")
    app = create_app(settings, store=store)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as public:
            page = await public.get(url)
            agent = await public.get(mint_link(settings, ref, "confirm_agent"))
            erasure = await public.get(mint_link(settings, ref, "confirm_erasure"))
            general = await public.get(mint_link(settings, unknown, "confirm_request"))
        assert page.status_code == 200
        assert f"Confirm your request {ref} to erase your data" in page.text
        assert '<html lang="en">' in page.text
        assert f'<form method="post" action="/r/{ref}/confirm"' in page.text
        assert f'<input type="hidden" name="t" value="{token_of(url)}">' in page.text
        assert "<button" in page.text and "<script" not in page.text
        assert "script-src" not in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"
        assert agent.status_code == 200 and "Confirm that you asked someone to act for you" in agent.text
        assert f"Confirm your request {ref} to erase your data" in erasure.text
        assert general.status_code == 200 and f"Confirm your request {unknown}" in general.text
        assert guard.refusals(ref) == []
    finally:
        guard.close()
        store.close()


async def test_the_form_asks_only_for_the_kinds_in_the_link(
    settings: Settings, guard: GuardStore, public: httpx.AsyncClient
) -> None:
    ref = new_ref()
    page = await public.get(
        mint_link(settings, ref, "provide_identifiers", kinds=["name", "last_transaction"])
    )
    assert page.status_code == 200
    assert '<label for="name">Full name</label>' in page.text
    assert "Your last order or payment (reference, amount, date)" in page.text
    for absent in (
        'name="phone"',
        'name="postcode"',
        'name="email"',
        'name="declaration"',
        "penalty of perjury",
    ):
        assert absent not in page.text
    assert 'name="website"' in page.text and 'tabindex="-1"' in page.text  # the honeypot

    ccpa = await public.get(
        mint_link(settings, ref, "provide_identifiers", kinds=["postal_address"], declaration=True)
    )
    assert '<label for="postal_address">Postal address</label>' in ccpa.text
    assert (
        "I declare under penalty of perjury under the laws of the State of California that I am the person "
        "whose personal information is requested"
    ) in ccpa.text
    assert 'type="checkbox" id="declaration" name="declaration" value="yes" required' in ccpa.text


async def test_form_errors_are_shown_next_to_their_fields_with_the_answers_kept(
    settings: Settings, guard: GuardStore, public: httpx.AsyncClient
) -> None:
    ref = new_ref()
    url = mint_link(
        settings,
        ref,
        "provide_identifiers",
        kinds=["name", "postcode", "phone", "customer_id"],
        declaration=True,
    )
    sent = {
        "t": token_of(url),
        "name": "",
        "postcode": "C" * 201,
        "phone": "07911\x07123456",
        "customer_id": 'C-1001 "<b>',
    }
    page = await public.post(path_of(url), data=sent)
    assert page.status_code == 422
    assert "<title>Error:" in page.text and "There is a problem" in page.text
    assert 'id="name-error"' not in page.text  # left blank: the person gives what they can
    assert "must be 200 characters or fewer" in page.text and 'id="postcode-error"' in page.text
    assert "characters we cannot accept" in page.text
    assert "Tick the box to make the declaration" in page.text
    assert 'aria-describedby="postcode-error"' in page.text and 'aria-invalid="true"' in page.text
    assert 'value="C-1001 &#34;&lt;b&gt;"' in page.text  # kept, and escaped
    assert "customer_id-error" not in page.text

    blank = await public.post(path_of(url), data={"t": token_of(url), "name": " ", "declaration": "yes"})
    assert blank.status_code == 422 and "Enter at least one of these details" in blank.text
    assert 'id="name-error"' in blank.text and 'aria-describedby="name-error"' in blank.text
    assert "Tick the box" not in blank.text and 'value="yes" required checked' in blank.text

    single = mint_link(settings, ref, "provide_identifiers", kinds=["last_transaction"])
    one = await public.post(path_of(single), data={"t": token_of(single)})
    assert one.status_code == 422 and "Enter your last order or payment" in one.text

    claims = check_link(settings, ref, token_of(url), "provide")
    assert not guard.is_used(claims.jti) and guard.refusals(ref) == []


async def test_the_honeypot_stops_a_robot_and_nothing_is_sent(
    settings: Settings, guard: GuardStore, public: httpx.AsyncClient
) -> None:
    ref = new_ref()
    url = mint_link(settings, ref, "provide_identifiers", kinds=["name"])
    page = await public.post(
        path_of(url), data={"t": token_of(url), "name": "M Ellis", "website": "http://spam"}
    )
    assert page.status_code == 400 and "could not be sent" in page.text
    assert not guard.is_used(check_link(settings, ref, token_of(url), "provide").jti)
    assert guard.refusals(ref) == []


async def test_a_locked_out_identifier_is_not_sent_and_the_link_stays_unused(
    settings: Settings, guard: GuardStore, public: httpx.AsyncClient
) -> None:
    ref = new_ref()
    phone = f"07700 9{random.randrange(10**5, 10**6)}"
    assert guard.record_failure("phone", phone, 2, 60) is None
    assert guard.record_failure("phone", phone, 2, 60) is not None
    url = mint_link(settings, ref, "provide_identifiers", kinds=["phone"])
    page = await public.post(path_of(url), data={"t": token_of(url), "phone": phone.replace(" ", "")})
    assert page.status_code == 429 and "too many attempts" in page.text
    assert phone not in page.text
    assert not guard.is_used(check_link(settings, ref, token_of(url), "provide").jti)


async def test_bodies_are_capped_and_must_be_forms(settings: Settings, public: httpx.AsyncClient) -> None:
    ref = new_ref()
    url = mint_link(settings, ref, "provide_identifiers", kinds=["name"])
    big = await public.post(path_of(url), data={"t": token_of(url), "name": "x" * 40_000})
    assert big.status_code == 413 and "too large" in big.text
    as_json = await public.post(path_of(url), json={"t": token_of(url), "name": "M Ellis"})
    assert as_json.status_code == 415


async def test_public_pages_are_rate_limited_per_client(settings: Settings, store: CaseStore) -> None:
    ref = new_ref()
    url = mint_link(settings, ref, "confirm_request")
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        for _ in range(20):
            assert (await client.get(url)).status_code == 200
        limited = await client.get(url)
        assert limited.status_code == 429 and "Too many attempts" in limited.text
        assert limited.headers["retry-after"] == "60" and '<html lang="en">' in limited.text
        for _ in range(5):
            assert (await client.post(f"/r/{ref}/confirm", data={"t": "garbage"})).status_code == 400
        assert (await client.post(f"/r/{ref}/confirm", data={"t": "garbage"})).status_code == 429
    # Another client address (another app here) has its own allowance.
    other = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url=PUBLIC) as client:
        assert (await client.get(url)).status_code == 200


# --------------------------------------------------------------------------------------------
# With the workflow: the Updates


async def test_confirming_sends_the_decision_once_and_a_second_post_is_replayed(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    guard: GuardStore,
    person: httpx.AsyncClient,
) -> None:
    ids = {k: MARGARET[k] for k in ("name", "email", "phone")}
    h = await start(ts_env, store, settings, request_type=RequestType.ERASURE, identifiers=ids)
    await wait_until(h, lambda s: s.waiting_for == "person: confirmation")
    url = mint_link(settings, h.id, "confirm_erasure")
    page = await person.get(url)
    assert page.status_code == 200 and f"Confirm your request {h.id} to erase your data" in page.text

    done = await person.post(path_of(url), data={"t": token_of(url)})
    assert done.status_code == 200, done.text
    assert "Thank you" in done.text
    snap = await h.query(DataSubjectRequest.snapshot)
    confirmed = [d for d in snap.decisions if d.kind.value == "person_confirmed"]
    assert [(d.actor, d.reason) for d in confirmed] == [("person:link", "confirm_erasure")]

    again = await person.post(path_of(url), data={"t": token_of(url)})
    assert again.status_code == 410 and "already been used" in again.text
    assert [r.reason for r in guard.refusals(h.id)] == ["replayed"]


async def test_a_case_that_no_longer_needs_the_confirmation_says_so(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    guard: GuardStore,
    person: httpx.AsyncClient,
) -> None:
    h = await start(ts_env, store, settings, identifiers={k: MARGARET[k] for k in ("name", "email", "phone")})
    await wait_until(h, lambda s: s.stage.value != "verifying" and s.waiting_for)  # verified by itself
    url = mint_link(settings, h.id, "confirm_request")
    page = await person.post(path_of(url), data={"t": token_of(url)})
    assert page.status_code == 409 and "no longer needs this" in page.text
    assert guard.is_used(check_link(settings, h.id, token_of(url), "confirm").jti)
    assert guard.refusals(h.id) == []
    snap = await h.query(DataSubjectRequest.snapshot)
    assert all(d.kind.value != "person_confirmed" for d in snap.decisions)


async def test_the_form_hands_the_answers_to_the_case_and_says_only_thank_you(
    ts_env: WorkflowEnvironment,
    worker: Worker,
    store: CaseStore,
    settings: Settings,
    guard: GuardStore,
    person: httpx.AsyncClient,
) -> None:
    ids = {"name": MARGARET["name"], "email": MARGARET["email"]}
    h = await start(ts_env, store, settings, regime=Regime.CCPA, identifiers=ids)
    await wait_until(h, lambda s: s.waiting_for == "person: identity")
    url = mint_link(settings, h.id, "provide_identifiers", kinds=["phone", "postcode"], declaration=True)
    answer = await person.post(
        path_of(url),
        data={"t": token_of(url), "phone": "07911 123456", "postcode": "cv3 4lp", "declaration": "yes"},
    )
    claims = check_link(settings, h.id, token_of(url), "provide", used=None)
    assert guard.is_used(claims.jti)
    assert guard.refusals(h.id) == []
    assert answer.status_code == 200, answer.text
    assert "Thank you, we have received it" in answer.text
    for held in ("7911", "CV3", "cv3", "Margaret", "match"):
        assert held not in answer.text
    trail = store.audit_trail(h.id)
    received = [e for e in trail if e.action == "identity:received"]
    assert received and received[0].actor == "person:form"
    assert received[0].details["declaration"] == "yes"


# --------------------------------------------------------------------------------------------
# A real letter through SMTP


async def test_a_link_mailed_through_smtp_opens_the_confirm_page(
    ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore, smtp_server: SmtpServer
) -> None:
    ref = new_ref()
    body = (
        "Dear Margaret,\n\nPlease confirm your request by opening this link (it can be used once):\n\n"
        f"    {mint_link(settings, ref, 'confirm_erasure')}\n\nThe privacy team\n"
    )
    message = build_message(
        f"{ref}:confirm", settings.mail_from, MARGARET["email"], f"Please confirm {ref}", body
    )
    assert (
        SmtpMailer(smtp_server.host, smtp_server.port, timeout=10).send(f"{ref}:confirm", message) == "smtp"
    )

    (delivered,) = smtp_server.wait_for(1)
    assert smtp_server.envelopes[0].rcpt_tos == [MARGARET["email"]]
    match = LINK_RE.search(delivered.get_body(("plain",)).get_content())
    assert match is not None, "no link in the delivered letter"
    url = match.group(0)

    app = create_app(settings, client=ts_env.client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        page = await client.get(url)
    assert page.status_code == 200, page.text
    assert f"Confirm your request {ref} to erase your data" in page.text
    assert f'value="{token_of(url)}"' in page.text
    assert PURPOSES[check_link(settings, ref, token_of(url), "confirm").purpose] == "confirm"
