"""Identity verification against the seeded demo company: candidates from both SQL systems
(the real connectors), then ``match_identity``.

The demo people (demo/seed.py): Margaret (customers:1, also in marketing with her email in
capitals and her mobile), Peter (customers:2, her household: same address and postcode),
a namesake (customers:3: Margaret Ellis in Leeds, nothing else in common) and a subscriber found
only in the marketing database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from fnmatch import fnmatch
from pathlib import Path

import pytest

from connectors.base import Candidate, connector_for
from demo.seed import MARGARET, NAMESAKE, PETER, SUBSCRIBER, seed_demo
from dsar.datamap import DataMap, DataMapError, SystemConfig
from dsar.verification import (
    address_tokens,
    addresses_match,
    match_identity,
    name_tokens,
    names_match,
    parse_date,
    parse_transaction_text,
    transaction_matches,
)
from tests.conftest import sql_demo_map

ROOT = Path(__file__).resolve().parent.parent
M, P, N = "crm:customers:1", "crm:customers:2", "crm:customers:3"
SUB = "marketing:preferences:*"  # the subscriber's row number depends on the seed's draws
INJECTION = "' OR 1=1 --"

m_email = MARGARET["email"]

# (id, supplied identifiers, points, matched kinds, flags ("split", "ambiguous"), person)
SCENARIOS: list[tuple[str, dict[str, str], int, list[str], set[str], str | None]] = [
    # -- each kind, exactly ------------------------------------------------------------------
    ("email", {"email": m_email}, 1, ["email"], set(), M),
    ("email-odd-case", {"email": "  MARGARET.Ellis@EXAMPLE.com\t"}, 1, ["email"], set(), M),
    ("phone-e164", {"phone": "+447911123456"}, 1, ["phone"], set(), M),
    ("phone-national", {"phone": "07911 123456"}, 1, ["phone"], set(), M),
    ("phone-punctuated", {"phone": "+44 (0)7911 123-456"}, 1, ["phone"], set(), M),
    ("customer-id", {"customer_id": " 1 "}, 1, ["customer_id"], set(), M),
    ("account-number", {"account_number": "NW100001"}, 1, ["account_number"], set(), M),
    # SQL compares account numbers exactly; once found by email, case does not matter
    ("account-number-lower", {"email": m_email, "account_number": " nw100001 "}, 2,
     ["account_number", "email"], set(), M),
    ("postcode-with-email", {"email": m_email, "postcode": "cv34lp"}, 2, ["email", "postcode"], set(), M),
    # -- points ------------------------------------------------------------------------------
    ("two-points", {"email": m_email, "phone": MARGARET["phone"]}, 2, ["email", "phone"], set(), M),
    ("three-points", {"email": m_email, "phone": "07911123456", "date_of_birth": "1958-03-14"}, 3,
     ["date_of_birth", "email", "phone"], set(), M),
    ("every-kind", dict(MARGARET), 8,
     ["account_number", "customer_id", "date_of_birth", "email", "name", "phone", "postal_address",
      "postcode"], set(), M),
    ("peter-three", {"email": PETER["email"], "phone": "+44 7700 900461", "date_of_birth": "2/11/1956"}, 3,
     ["date_of_birth", "email", "phone"], set(), P),
    ("empty-value-ignored", {"email": m_email, "phone": "   "}, 1, ["email"], set(), M),
    # -- dates of birth ----------------------------------------------------------------------
    ("dob-slashes", {"email": m_email, "date_of_birth": "14/03/1958"}, 2,
     ["date_of_birth", "email"], set(), M),
    ("dob-words", {"email": m_email, "date_of_birth": "14 March 1958"}, 2,
     ["date_of_birth", "email"], set(), M),
    ("dob-unpadded-iso", {"email": m_email, "date_of_birth": "1958-3-14"}, 2,
     ["date_of_birth", "email"], set(), M),
    ("dob-month-first-words", {"email": m_email, "date_of_birth": "March 14th, 1958"}, 2,
     ["date_of_birth", "email"], set(), M),
    ("dob-wrong-day", {"email": m_email, "date_of_birth": "15/03/1958"}, 1, ["email"], set(), M),
    # -- names -------------------------------------------------------------------------------
    ("name-accents", {"email": m_email, "name": "Márgarét Éllis"}, 2, ["email", "name"], set(), M),
    ("name-initial", {"email": m_email, "name": "M. Ellis"}, 2, ["email", "name"], set(), M),
    ("name-initial-no-dot", {"email": m_email, "name": "m ellis"}, 2, ["email", "name"], set(), M),
    ("name-reversed", {"email": m_email, "name": "Ellis, Margaret"}, 2, ["email", "name"], set(), M),
    ("name-reversed-no-comma", {"email": m_email, "name": "ELLIS Margaret"}, 2, ["email", "name"], set(), M),
    ("name-typo", {"email": m_email, "name": "Margret Ellis"}, 2, ["email", "name"], set(), M),
    ("name-title-middle", {"email": m_email, "name": "Mrs Margaret Anne Ellis"}, 2,
     ["email", "name"], set(), M),
    ("name-other-first-name", {"email": m_email, "name": "Margot Ellis"}, 1, ["email"], set(), M),
    # -- addresses ---------------------------------------------------------------------------
    ("address-abbreviated", {"email": m_email, "postal_address": "12, Orchard Ln., COVENTRY"}, 2,
     ["email", "postal_address"], set(), M),
    ("address-without-town", {"email": m_email, "postal_address": "12 orchard lane"}, 2,
     ["email", "postal_address"], set(), M),
    ("address-typo", {"email": m_email, "postal_address": "12 Orchad Lane"}, 2,
     ["email", "postal_address"], set(), M),
    ("address-wrong-number", {"email": m_email, "postal_address": "14 Orchard Lane, Coventry"}, 1,
     ["email"], set(), M),
    ("address-wrong-street-type", {"email": m_email, "postal_address": "12 Orchard Road, Coventry"}, 1,
     ["email"], set(), M),
    # -- households, namesakes and split identities -------------------------------------------
    ("household-postcode-only", {"postcode": "CV3 4LP"}, 0, [], {"ambiguous"}, None),
    ("household-postcode-and-address", {"postcode": "CV3 4LP", "postal_address": "12 Orchard Lane"}, 0,
     [], {"ambiguous"}, None),
    # the household's postcode is Peter's postcode too: with his name, that is Peter, 2 points
    ("household-postcode-peter-name", {"postcode": "CV3 4LP", "name": "Peter Ellis"}, 2,
     ["name", "postcode"], set(), P),
    # Margaret's date of birth singles her out of the household
    ("household-plus-dob", {"postcode": "CV3 4LP", "postal_address": "12 Orchard Lane, Coventry",
                            "date_of_birth": "14 March 1958"}, 3,
     ["date_of_birth", "postal_address", "postcode"], set(), M),
    ("namesake-name-only", {"name": "Margaret Ellis"}, 0, [], {"ambiguous"}, None),
    # the name and the namesake's email ARE the namesake's: two points for her, correctly
    ("namesake-name-and-email", {"name": "Margaret Ellis", "email": NAMESAKE["email"]}, 2,
     ["email", "name"], set(), N),
    ("namesake-name-margaret-postcode", {"name": "Margaret Ellis", "postcode": "cv3 4lp"}, 2,
     ["name", "postcode"], set(), M),
    ("split-email-phone", {"email": m_email, "phone": PETER["phone"]}, 0, [], {"split", "ambiguous"}, None),
    ("split-ids", {"customer_id": "1", "account_number": "NW100002"}, 0, [], {"split", "ambiguous"}, None),
    ("split-with-a-best", {"email": m_email, "name": "Margaret Ellis", "phone": PETER["phone"]}, 2,
     ["email", "name"], {"split"}, M),
    ("different-first-name-is-someone-else", {"email": m_email, "name": "Peter Ellis"}, 0, [],
     {"split", "ambiguous"}, None),
    ("email-typo", {"email": "margaret.elis@example.com", "phone": "07911 123456"}, 1, ["phone"], set(), M),
    # -- last transaction --------------------------------------------------------------------
    ("transaction-reference", {"email": m_email, "last_transaction": "order 2"}, 2,
     ["email", "last_transaction"], set(), M),
    ("transaction-amount-and-date", {"email": m_email, "last_transaction": "£41.99 on 25 February 2021"}, 2,
     ["email", "last_transaction"], set(), M),
    ("transaction-free-text",
     {"email": m_email, "last_transaction": "Order no. 3, paid 7.49 GBP on 4/6/2019"}, 2,
     ["email", "last_transaction"], set(), M),
    ("transaction-wrong-amount", {"email": m_email, "last_transaction": "£41.98 on 25 February 2021"}, 1,
     ["email"], set(), M),
    ("transaction-amount-only", {"email": m_email, "last_transaction": "£41.99"}, 1, ["email"], set(), M),
    ("transaction-someone-elses-order", {"email": m_email, "last_transaction": "order 4"}, 1,
     ["email"], set(), M),
    # -- cross-system, nobody, hostile input ---------------------------------------------------
    ("subscriber-marketing-only", {"email": SUBSCRIBER["email"], "phone": SUBSCRIBER["phone"]}, 2,
     ["email", "phone"], set(), SUB),
    ("subscriber-name-not-held", {"email": SUBSCRIBER["email"], "name": SUBSCRIBER["name"]}, 1,
     ["email"], set(), SUB),
    ("nothing-matches", {"email": "nobody@example.com", "name": "Zebedee Quux"}, 0, [], set(), None),
    ("unknown-person", {"name": "John Nobody", "date_of_birth": "2010-01-01", "postcode": "ZZ9 9ZZ"}, 0,
     [], set(), None),
    ("sql-injection", {"email": INJECTION, "customer_id": "1 OR 1=1", "name": "Robert'); DROP TABLE x;--",
                       "postcode": "' OR ''='"}, 0, [], set(), None),
    ("sql-injection-beside-a-match", {"email": m_email, "last_transaction": INJECTION,
                                      "account_number": "NW100001' OR '1'='1"}, 1, ["email"], set(), M),
]  # fmt: skip


def gather(systems: list[SystemConfig], supplied: dict[str, str]) -> list[Candidate]:
    return [candidate for system in systems for candidate in connector_for(system).candidates(supplied)]


def check_row(
    systems: list[SystemConfig],
    supplied: dict[str, str],
    points: int,
    kinds: list[str],
    flags: set[str],
    person: str | None,
) -> None:
    report = match_identity(supplied, gather(systems, supplied), region="GB")
    assert report.points == points, report.reason
    assert report.matched_kinds == kinds, report.reason
    assert report.unmatched_kinds == sorted(set(k for k, v in supplied.items() if v.strip()) - set(kinds))
    assert report.split == ("split" in flags), report.reason
    assert report.ambiguous == ("ambiguous" in flags), report.reason
    if person is None:
        assert report.person is None and report.contact_email is None
    else:
        assert report.person is not None and fnmatch(report.person, person), report.person
        assert report.contact_email and "@" in report.contact_email
    # the case file reads kinds, never the values given
    for value in supplied.values():
        if len(value.strip()) > 3:
            assert value.strip().lower() not in report.reason.lower()


@pytest.fixture(scope="module")
def demo_systems(demo_env: dict[str, str]) -> list[SystemConfig]:
    datamap = DataMap.load(sql_demo_map())
    return [datamap.system("crm"), datamap.system("marketing")]


def test_scenarios_are_many_and_distinct() -> None:
    assert len(SCENARIOS) >= 30
    assert len({row[0] for row in SCENARIOS}) == len(SCENARIOS)


@pytest.mark.parametrize(("supplied", "points", "kinds", "flags", "person"), [row[1:] for row in SCENARIOS],
                         ids=[row[0] for row in SCENARIOS])  # fmt: skip
def test_match_identity_against_the_demo(
    demo_systems: list[SystemConfig],
    supplied: dict[str, str],
    points: int,
    kinds: list[str],
    flags: set[str],
    person: str | None,
) -> None:
    check_row(demo_systems, supplied, points, kinds, flags, person)


def test_the_table_on_postgresql(tmp_path: Path) -> None:
    """The same table against PostgreSQL: candidates come from another dialect's SQL."""
    from tests.test_sql_connector import fresh_databases

    with fresh_databases("postgresql", tmp_path) as urls:
        seed_demo(urls["crm"], urls["marketing"], people=200)
        datamap = DataMap.load(sql_demo_map())
        systems = []
        for name in ("crm", "marketing"):
            env = f"DSAR_TEST_VERIFICATION_PG_{name.upper()}_URL"
            os.environ[env] = urls[name]
            systems.append(replace(datamap.system(name), url_env=env))
        try:
            for row_id, supplied, points, kinds, flags, person in SCENARIOS:
                try:
                    check_row(systems, supplied, points, kinds, flags, person)
                except AssertionError as exc:
                    raise AssertionError(f"{row_id}: {exc}") from None
        finally:
            for name in ("crm", "marketing"):
                os.environ.pop(f"DSAR_TEST_VERIFICATION_PG_{name.upper()}_URL", None)


# -- the connectors' candidates ------------------------------------------------------------


def test_candidates_hold_every_identifier_and_the_latest_transactions(
    demo_systems: list[SystemConfig],
) -> None:
    crm, marketing = (connector_for(system) for system in demo_systems)
    (margaret,) = crm.candidates({"email": m_email})
    assert margaret.person_key == "customers:1" and margaret.system == "crm"
    assert margaret.contact_email == "Margaret.Ellis@Example.com"  # as held, stripped
    assert margaret.values["date_of_birth"] == ["1958-03-14"]
    assert margaret.values["customer_id"] == ["1"]
    transactions = margaret.values["last_transaction"]
    assert len(transactions) == 3  # she has three orders; at most 5 are read
    dates = [t.split("|")[2] for t in transactions]
    assert dates == sorted(dates, reverse=True)  # latest first
    assert transactions[0] == "2|41.99|2021-02-25T10:47:00"
    (entry,) = marketing.candidates({"email": m_email})
    assert entry.person_key == "preferences:1"
    assert entry.contact_email == "MARGARET.ELLIS@EXAMPLE.COM"  # stored with stray spaces
    assert "last_transaction" not in entry.values


def test_candidates_are_capped_in_key_order(demo_systems: list[SystemConfig]) -> None:
    crm = connector_for(demo_systems[0])
    found = crm.candidates({"postcode": "CV3 4LP", "name": "Margaret Ellis"})
    assert [c.person_key for c in found] == ["customers:1", "customers:2", "customers:3"]
    assert [
        c.person_key for c in crm.candidates({"postcode": "CV3 4LP", "name": "Margaret Ellis"}, limit=2)
    ] == [
        "customers:1",
        "customers:2",
    ]
    assert crm.candidates({"email": INJECTION, "customer_id": INJECTION}) == []


def test_s3_systems_offer_no_candidates() -> None:
    from connectors.s3 import S3Connector

    datamap = DataMap.load(ROOT / "demo" / "dsar.yaml")
    connector = S3Connector(datamap.system("recordings"))
    assert connector.candidates({"email": m_email}) == []


# -- the data map's transaction key ----------------------------------------------------------

DEMO_TEXT = (ROOT / "demo" / "dsar.yaml").read_text()
TRANSACTION = "transaction: {reference: id, amount: total, date: ordered_at}"


def test_the_demo_declares_orders_as_transactions() -> None:
    orders = DataMap.load(ROOT / "demo" / "dsar.yaml").system("crm").entities["orders"]
    assert orders.transaction == ("id", "total", "ordered_at")


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ("transaction: {reference: id, amount: total}", r"transaction: missing required key 'date'"),
        ("transaction: {reference: id, amount: nope, date: ordered_at}",
         r"transaction\.amount: no column 'nope' declared in 'orders'"),
        ("transaction: {reference: id, amount: total, date: ordered_at, when: x}", r"unknown key 'when'"),
        ("transaction: id", r"transaction: expected a mapping"),
    ],
)  # fmt: skip
def test_transaction_key_is_validated(replacement: str, message: str) -> None:
    assert TRANSACTION in DEMO_TEXT
    with pytest.raises(
        DataMapError, match=r"^bad\.yaml line \d+: systems\.crm\.entities\.orders\..*" + message
    ):
        DataMap.parse(DEMO_TEXT.replace(TRANSACTION, replacement), "bad.yaml")


def test_transaction_needs_a_relation() -> None:
    text = DEMO_TEXT.replace(
        "        relation: customers.id -> orders.customer_id\n",
        "        identity: {customer_id: customer_id}\n",
    )
    with pytest.raises(DataMapError, match=r"needs a 'relation' leading to the person's entity"):
        DataMap.parse(text, "bad.yaml")


# -- the normalisers, one by one ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("supplied", "stored", "same"),
    [
        ("Margaret Ellis", "Margaret Ellis", True),
        ("Ellis, Margaret", "Margaret Ellis", True),
        ("M. A. Ellis", "Margaret Anne Ellis", True),
        ("Margaret Ellis", "Margaret Anne Ellis", True),  # middle names are optional
        ("Margaret Jane Ellis", "Margaret Anne Ellis", False),  # but must not disagree
        ("Zoë O\u2019Brien-Smith", "zoe obrien smith", True),
        ("Margaert Ellis", "Margaret Ellis", True),  # swapped letters in a long name
        ("Peter Ellis", "Margaret Ellis", False),
        ("Petra Ellis", "Peter Ellis", False),
        ("Maria Lopez", "Marie Lopez", False),  # short names a letter apart are other names
        ("Margaret Elis", "Margaret Ellis", False),  # short surname: spelt exactly
        ("Ellis", "Margaret Ellis", False),  # a surname alone is not a name
        ("P. Ellis", "Margaret Ellis", False),
    ],
)
def test_names(supplied: str, stored: str, same: bool) -> None:
    assert names_match(name_tokens(supplied), name_tokens(stored)) is same


def test_name_tokens_drop_accents_titles_and_punctuation() -> None:
    assert name_tokens("  Dr. Zoë  O'Brien ") == ["zoe", "obrien"]
    assert name_tokens("ELLIS, Margaret Anne") == ["margaret", "anne", "ellis"]


@pytest.mark.parametrize(
    ("supplied", "stored", "same"),
    [
        ("12 Orchard Rd", "12 Orchard Road", True),
        ("Flat 3, 5 High St.", "Apt 3 5 High Street", True),
        ("flat3, 5 high street", "Flat 3, 5 High Street, Leeds", True),
        ("5 High Street", "Flat 3, 5 High Street", False),  # the flat number matters
        ("22 Park Ave, Leeds", "22 Park Avenue, Leeds", True),
        ("22 Park Road, Leeds", "22 Park Avenue, Leeds", False),
        ("12 Lane", "12 Orchard Lane, Coventry", False),  # no street name to compare
        ("12A Kingsway", "12a Kingsway, Cardiff", True),
        ("12B Kingsway", "12a Kingsway, Cardiff", False),
    ],
)
def test_addresses(supplied: str, stored: str, same: bool) -> None:
    assert addresses_match(address_tokens(supplied), address_tokens(stored)) is same


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("1958-03-14", "GB", date(1958, 3, 14)),
        ("1958-3-14", "GB", date(1958, 3, 14)),
        ("1958-03-14T00:00:00", "GB", date(1958, 3, 14)),
        ("14/03/1958", "GB", date(1958, 3, 14)),
        ("14.3.1958", "GB", date(1958, 3, 14)),
        ("03/04/1958", "GB", date(1958, 4, 3)),
        ("03/04/1958", "US", date(1958, 3, 4)),
        ("03/14/1958", "GB", date(1958, 3, 14)),  # no 14th month: read the other way
        ("14 March 1958", "GB", date(1958, 3, 14)),
        ("14th of Mar 1958", "GB", date(1958, 3, 14)),
        ("March 14, 1958", "GB", date(1958, 3, 14)),
        ("14/03/58", "GB", None),  # two-digit years are not guessed
        ("31/02/1958", "GB", None),
        ("not a date", "GB", None),
    ],
)
def test_dates(text: str, region: str, expected: date | None) -> None:
    assert parse_date(text, region) == expected


def test_transaction_text() -> None:
    quoted = parse_transaction_text("order 17, £12.00 on 3 March 2024")
    assert quoted.references == {"17"}
    assert quoted.amounts == {Decimal("12.00")}
    assert quoted.dates == {date(2024, 3, 3)}
    quoted = parse_transaction_text("#A-0042 for €1,250.50, 2024-03-03")
    assert quoted.references == {"a0042"} and quoted.amounts == {Decimal("1250.50")}
    stored = ["17|12.00|2024-03-03T10:00:00", "18|9.99|2024-03-05T10:00:00"]
    assert transaction_matches(parse_transaction_text("Order number 0017"), stored)
    assert transaction_matches(parse_transaction_text("9.99 on 5/3/2024"), stored)
    assert not transaction_matches(parse_transaction_text("9.99 on 3/3/2024"), stored)  # another order's date
    assert not transaction_matches(parse_transaction_text("12.00"), stored)
    assert not transaction_matches(parse_transaction_text(INJECTION), stored)
    # a number in a sentence is no reference; one on its own, or after a cue, is
    assert parse_transaction_text("I rang 17 times").references == set()
    assert parse_transaction_text(" 17 ").references == {"17"}
    assert parse_transaction_text("ref: NW-0017").references == {"nw0017"}


# -- counting, on hand-made candidates ---------------------------------------------------------


def candidate(system: str, key: str, email: str | None = None, **values: str) -> Candidate:
    held = {kind: [value] for kind, value in values.items()}
    if email:
        held["email"] = [email]
    return Candidate(system, key, held, email)


def test_the_same_person_in_two_systems_is_not_a_tie() -> None:
    report = match_identity(
        {"email": "a@example.com", "phone": "07700 900123"},
        [
            candidate("crm", "customers:1", "a@example.com", phone="+447700900999", name="Ann Other"),
            candidate("marketing", "preferences:7", "A@Example.com", phone="07700900123"),
        ],
    )
    assert (report.points, report.person, report.ambiguous, report.split) == (
        2,
        "crm:customers:1",
        False,
        False,
    )


def test_two_records_of_one_system_with_one_email_are_a_tie() -> None:
    report = match_identity(
        {"email": "a@example.com"},
        [candidate("crm", "customers:1", "a@example.com"), candidate("crm", "customers:2", "a@example.com")],
    )
    assert (report.points, report.person, report.ambiguous) == (0, None, True)
    assert report.reason == "matches more than one person on email: no single person identified"


def test_no_identifiers_and_unknown_kinds() -> None:
    assert match_identity({}, []).reason == "no identifiers were given"
    with pytest.raises(ValueError, match="unknown identifier kind 'shoe_size'"):
        match_identity({"shoe_size": "9"}, [])


@pytest.fixture(autouse=True)
def _no_leaked_env() -> Iterator[None]:
    before = {k for k in os.environ if k.startswith("DSAR_TEST_VERIFICATION_")}
    yield
    assert {k for k in os.environ if k.startswith("DSAR_TEST_VERIFICATION_")} == before


# --------------------------------------------------------------------------- sensitive data


def _verify_with(
    map_path: Path, tmp_path: Path, regime: str, request_type: str, ids: dict[str, str]
) -> object:
    from temporalio.testing import ActivityEnvironment

    from activities.verify import VerifyActivities, VerifyInput
    from dsar.guard import GuardStore

    guard = GuardStore(f"sqlite:///{tmp_path / 'guard.db'}", b"k" * 32)
    activities = VerifyActivities(DataMap.load(map_path), guard)
    return ActivityEnvironment().run(
        activities.verify_identity, VerifyInput("DSR-2026-000001", regime, request_type, ids)
    )


@pytest.mark.parametrize(
    ("regime", "request_type", "plain", "sensitive"),
    [
        ("UK_GDPR", "erasure", 2, 3),  # default: the higher standard for any request
        ("UK_GDPR", "access", 2, 3),
        ("CCPA", "erasure", 2, 3),  # §7062: deletion of sensitive data, reasonably high
        ("CCPA", "rectification", 2, 3),
        ("CCPA", "access", 3, 3),  # specific pieces are 3 anyway
        ("CCPA", "opt_out_sale_sharing", 0, 0),  # never raised from nothing
    ],
)
def test_a_person_in_a_system_with_sensitive_data_needs_more_points(
    demo_env: dict[str, str], tmp_path: Path, regime: str, request_type: str, plain: int, sensitive: int
) -> None:
    import yaml

    ids = {"name": MARGARET["name"], "email": MARGARET["email"]}
    base = sql_demo_map()
    document = yaml.safe_load(base.read_text())
    if request_type == "opt_out_sale_sharing":
        document["verification"]["points"] = {"CCPA": {"opt_out_sale_sharing": 0}}
    plain_map = tmp_path / "plain.yaml"
    plain_map.write_text(yaml.safe_dump(document, sort_keys=False))
    document["systems"]["crm"]["entities"]["payments"]["sensitive"] = True
    sensitive_map = tmp_path / "sensitive.yaml"
    sensitive_map.write_text(yaml.safe_dump(document, sort_keys=False))

    before = _verify_with(plain_map, tmp_path, regime, request_type, ids)
    after = _verify_with(sensitive_map, tmp_path, regime, request_type, ids)
    assert (before.needed, before.sensitive) == (plain, False)  # type: ignore[attr-defined]
    assert (after.needed, after.sensitive) == (sensitive, True)  # type: ignore[attr-defined]
    assert after.points == before.points == 2  # type: ignore[attr-defined]
    assert "sensitive data held" in after.reason  # type: ignore[attr-defined]
    # Someone unknown to the systems is not "in a sensitive system": nothing to weigh.
    nobody = _verify_with(sensitive_map, tmp_path, regime, request_type, {"email": "nobody@example.org"})
    assert nobody.sensitive is False  # type: ignore[attr-defined]


def test_sensitive_points_are_validated() -> None:
    text = (ROOT / "tests" / "data" / "datamaps" / "minimal.yaml").read_text()
    good = DataMap.parse(text + "verification:\n  sensitive_points:\n    UK_GDPR: {erasure: 4}\n")
    assert good.verification.points_needed("UK_GDPR", "erasure", sensitive=True) == 4
    assert good.verification.points_needed("UK_GDPR", "erasure") == 2
    with pytest.raises(DataMapError, match=r"verification\.sensitive_points: unknown regime 'Mars'"):
        DataMap.parse(text + "verification:\n  sensitive_points:\n    Mars: {erasure: 3}\n")
    with pytest.raises(DataMapError, match=r"sensitive: expected true or false"):
        DataMap.parse(
            text.replace(
                "        identity: {email: email}\n",
                "        identity: {email: email}\n        sensitive: perhaps\n",
            )
        )
