"""The data map loads the demo company and names the file and line of every mistake."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from dsar.datamap import DataMap, DataMapError, LegalBasis, Relation, Transfer
from dsar.model import IdentifierKind, Regime

ROOT = Path(__file__).resolve().parent.parent
MAPS = Path(__file__).resolve().parent / "data" / "datamaps"


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line containing ``text`` (so tests survive edits)."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def load_error(name: str) -> str:
    with pytest.raises(DataMapError) as caught:
        DataMap.load(MAPS / name)
    return str(caught.value)


def test_demo_map_loads() -> None:
    datamap = DataMap.load(ROOT / "demo" / "dsar.yaml")
    assert datamap.controller.name == "Northwind Post & Mobile Ltd"
    assert datamap.controller.phone_region == "GB"
    assert datamap.controller.regimes == (Regime.UK_GDPR, Regime.EU_GDPR)
    assert datamap.controller.calendars == {"UK_GDPR": "GB-EAW", "EU_GDPR": "IE"}
    assert set(datamap.systems) == {"crm", "marketing", "recordings", "cctv"}
    recordings = datamap.system("recordings")
    assert recordings.bucket is not None and recordings.bucket.bucket == "northwind-call-recordings"
    assert recordings.entities["call_audio"].placeholders() == ["customer_id"]
    assert recordings.needs() == {"customer_id"} and recordings.max_concurrent == 2
    cctv = datamap.system("cctv")
    assert cctv.manual is not None and cctv.manual.escalate_after_days == 7

    crm = datamap.system("crm")
    assert crm.connector == "sql"
    assert crm.url_env == "DSAR_DEMO_CRM_URL"
    customers = crm.entities["customers"]
    assert customers.key == ("id",)
    assert customers.identity["email"] is IdentifierKind.EMAIL
    assert customers.identity["phone"] is IdentifierKind.PHONE
    assert customers.identity["postcode"] is IdentifierKind.POSTCODE
    assert customers.relation is None
    # two hops: parcels -> orders -> customers
    assert crm.entities["parcels"].relation == Relation("orders", "id", "parcels", "order_id")
    assert crm.entities["orders"].relation == Relation("customers", "id", "orders", "customer_id")
    # defaults fill what a field does not say; a field's own keys win
    card = crm.entities["payments"].fields["card_last4"]
    assert card.legal_basis is LegalBasis.LEGAL_OBLIGATION
    assert card.category == "Financial"
    assert "Card payment processor" in card.recipients
    dob = customers.fields["date_of_birth"]
    assert dob.legal_basis is LegalBasis.LEGAL_OBLIGATION
    assert customers.fields["email"].legal_basis is LegalBasis.CONTRACT
    assert (
        datamap.system("marketing").entities["preferences"].fields["email"].legal_basis is LegalBasis.CONSENT
    )
    # parents come before children, whatever the declaration order
    order = [e.name for e in crm.ordered_entities()]
    assert order.index("customers") < order.index("orders") < order.index("parcels")
    assert [e.name for e in crm.identity_entities()] == ["customers"]


def test_multi_hop_chain_is_reachable() -> None:
    datamap = DataMap.load(MAPS / "minimal.yaml")
    shop = datamap.system("shop")
    assert shop.entities["parcels"].relation == Relation("orders", "id", "parcels", "order_id")
    assert shop.entities["customers"].table == "customers"  # the entity name when not given
    assert datamap.controller.phone_region == "GB"
    assert shop.phone_region == "GB"


def test_unknown_key_names_file_line_and_key() -> None:
    path = MAPS / "unknown_key.yaml"
    message = load_error("unknown_key.yaml")
    assert message.startswith(f"{path} line {line_of(path, 'relaton:')}: systems.shop.entities.orders: ")
    assert "unknown key 'relaton'" in message
    assert "relation" in message  # the expected keys are listed


def test_relation_to_undeclared_column() -> None:
    path = MAPS / "bad_relation_column.yaml"
    message = load_error("bad_relation_column.yaml")
    assert message == (
        f"{path} line {line_of(path, 'relation:')}: systems.crm.entities.orders.relation: "
        "no column 'cust_id' declared in 'customers'"
    )


def test_relation_cycle() -> None:
    path = MAPS / "cycle.yaml"
    message = load_error("cycle.yaml")
    assert message.startswith(f"{path} line {line_of(path, 'relation: invoices')}: ")
    assert "systems.crm.entities.orders.relation: relation cycle" in message
    assert "invoices" in message


def test_unreachable_entity() -> None:
    path = MAPS / "unreachable.yaml"
    message = load_error("unreachable.yaml")
    assert message.startswith(f"{path} line {line_of(path, 'audit_log:')}: systems.crm.entities.audit_log: ")
    assert "cannot be traced to the data subject" in message


def test_unknown_identifier_kind() -> None:
    path = MAPS / "unknown_kind.yaml"
    message = load_error("unknown_kind.yaml")
    assert message.startswith(f"{path} line {line_of(path, 'mobile: mobile_phone')}: ")
    assert "systems.crm.entities.customers.identity.mobile: unknown identifier kind 'mobile_phone'" in message
    assert "phone" in message  # the valid kinds are listed


def test_secret_in_the_file_is_refused() -> None:
    path = MAPS / "secret_in_file.yaml"
    message = load_error("secret_in_file.yaml")
    assert message.startswith(f"{path} line {line_of(path, 'url:')}: systems.crm.url: ")
    assert "url_env" in message
    assert "hunter2" not in message


def test_missing_environment_variable_names_variable_not_value(monkeypatch: pytest.MonkeyPatch) -> None:
    path = MAPS / "minimal.yaml"
    system = DataMap.load(path).system("shop")
    monkeypatch.delenv("DSAR_TEST_UNSET_SHOP_URL", raising=False)
    with pytest.raises(DataMapError) as caught:
        system.url()
    message = str(caught.value)
    assert message.startswith(f"{path} line {line_of(path, 'url_env:')}: systems.shop.url_env: ")
    assert "DSAR_TEST_UNSET_SHOP_URL is not set" in message

    monkeypatch.setenv("DSAR_TEST_UNSET_SHOP_URL", "sqlite:///shop.db")
    assert system.url() == "sqlite:///shop.db"


def _mutated(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("connector: sql", "connector: mongo", r"systems\.shop\.connector: unknown value 'mongo'"),
        ("url_env: DSAR_TEST_UNSET_SHOP_URL", "url_env: 'not a name'", r"is not an environment variable"),
        ("legal_basis: contract", "legal_basis: because", r"defaults\.legal_basis: unknown value 'because'"),
        (
            "relation: customers.id -> orders.customer_id",
            "relation: clients.id -> orders.customer_id",
            r"no entity 'clients' in system 'shop'",
        ),
        (
            "relation: customers.id -> orders.customer_id",
            "relation: customers.id -> parcels.customer_id",
            r"must end in this entity",
        ),
        ("relation: customers.id -> orders.customer_id", "relation: customers", r"expected 'parent\.column"),
        ("identity: {email: email}", "identity: {mail: email}", r"no column 'mail' declared in 'customers'"),
        ("  name: Test Ltd\n", "", r"controller: missing required key 'name'"),
        (
            "defaults: {purpose: Selling things, legal_basis: contract, retention: 6 years}",
            "defaults: {purpose: Selling things, legal_basis: contract}",
            r"fields\.id: missing 'retention'",
        ),
        ("customers:\n", "customers:\n        key: [uuid]\n", r"no column 'uuid' declared in 'customers'"),
        ("systems:", "systems: []\nx:", r"unknown key 'x'"),
        (
            "  name: Test Ltd\n",
            "  name: Test Ltd\n  transfers: {recipient: x}\n",
            r"controller\.transfers: expected a list",
        ),
        (
            "  name: Test Ltd\n",
            "  name: Test Ltd\n  automated_decisions:\n"
            "    - {what: a, logic: b, significance: c, systems: [crm]}\n",
            r"automated_decisions\[0\]\.systems: no system 'crm' in the data map \(expected one of: shop\)",
        ),
        ("      orders:", "      orders:\n        table: [a, b]", r"expected a text value"),
    ],
)
def test_other_mistakes_are_located(old: str, new: str, expected: str) -> None:
    source = MAPS / "minimal.yaml"
    text = _mutated(source.read_text(), old, new)
    with pytest.raises(DataMapError) as caught:
        DataMap.parse(text, source)
    message = str(caught.value)
    assert re.match(rf"{re.escape(str(source))} line \d+: ", message), message
    assert re.search(expected, message), message


def test_duplicate_key_is_an_error() -> None:
    text = (
        (MAPS / "minimal.yaml")
        .read_text()
        .replace(
            "          email: {category: Contact details}\n",
            "          email: {category: Contact details}\n          email: {category: Other}\n",
        )
    )
    with pytest.raises(
        DataMapError, match=r"line 16: systems\.shop\.entities\.customers\.fields\.email: duplicate"
    ):
        DataMap.parse(text, "dup.yaml")


def test_invalid_yaml_and_missing_file() -> None:
    with pytest.raises(DataMapError, match=r"^bad\.yaml line 3: invalid YAML: .*flow sequence on line 2"):
        DataMap.parse("controller:\n  name: [unclosed\n", "bad.yaml")
    with pytest.raises(DataMapError, match=r"nowhere\.yaml: cannot read the data map"):
        DataMap.load(MAPS / "nowhere.yaml")
    with pytest.raises(DataMapError, match=r"the data map is empty"):
        DataMap.parse("", "empty.yaml")


def test_the_example_map_loads_and_documents_every_key() -> None:
    """dsar.example.yaml is the reference: every key the loader accepts appears in it."""
    from dsar import datamap as dm

    path = ROOT / "dsar.example.yaml"
    example = DataMap.load(path)
    assert {s.connector for s in example.systems.values()} == set(dm.CONNECTOR_TYPES)
    text = path.read_text()
    keys = (
        dm._TOP_KEYS
        | dm._CONTROLLER_KEYS
        | dm._COMMON_SYSTEM_KEYS
        | dm._FIELD_KEYS
        | dm._ERASURE_KEYS
        | dm._RESTRICTION_KEYS
        | dm._TRANSACTION_KEYS
        | dm._VERIFICATION_KEYS
        | dm._AGENT_KEYS
        | dm._DECISION_KEYS
        | dm._TRANSFER_KEYS
        | {k for keys in dm._SYSTEM_KEYS.values() for k in keys}
        | {k for keys in dm._ENTITY_KEYS.values() for k in keys}
    )
    undocumented = sorted(k for k in keys if not re.search(rf"(^|[\s{{,]){re.escape(k)}:", text, re.M))
    assert undocumented == []


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("    url_env: DSAR_DEMO_CRM_URL\n", "    url_env: DSAR_DEMO_CRM_URL\n    bucket: x\n",
         "systems.crm: unknown key 'bucket'"),
        ("    bucket: northwind-call-recordings\n", "    bucket: Not_A_Bucket\n",
         "not a valid S3 bucket name"),
        ('        prefix: "recordings/{customer_id}/"\n', '        prefix: "recordings/{customer}/"\n',
         "unknown identifier kind '{customer}' in the key template"),
        ("          content.recipient_email: email\n", "          body.recipient_email: email\n",
         "'body.recipient_email' is not an identity source of an S3 object"),
        ("          content_type: {}\n", "          colour: {}\n", "an S3 record has no field 'colour'"),
        ("    owner: facilities@northwind.example.com\n", "    owner: the facilities team\n",
         "must be the email address"),
        ("    remind_every_days: 3\n", "    remind_every_days: soon\n", "expected a whole number"),
        ("    max_concurrent: 4           #", "    max_concurrent: 0           #", "from 1 to 1000"),
        ("        erasure: delete\n        defaults:\n          category: Communications",
         "        erasure: shred\n        defaults:\n          category: Communications",
         "unknown value 'shred'"),
        ("          strategy: keep\n          reason: Accounting",
         "          strategy: keep\n          why: Accounting",
         "unknown key 'why'"),
        ("          account_number: {category: Identifiers, erasure: hash,",
         "          account_number: {category: Identifiers, erasure: burn,", "unknown value 'burn'"),
        ("        restriction: {column: processing_restricted,",
         "        restriction: {column: is_restricted,",
         "no column 'is_restricted' declared in 'customers'"),
        ("    UK_GDPR: GB-EAW\n", "    UK_GDPR: Narnia\n", "unknown calendar 'Narnia'"),
    ],
)  # fmt: skip
def test_connector_specific_mistakes_are_located(old: str, new: str, expected: str) -> None:
    path = ROOT / "demo" / "dsar.yaml"
    text = path.read_text()
    assert old in text, old
    changed = text.replace(old, new, 1)
    line = changed[: changed.index(new)].count("\n") + 1 + new[: len(new) - len(new.lstrip("\n"))].count("\n")
    with pytest.raises(DataMapError) as caught:
        DataMap.parse(changed, path)
    message = str(caught.value)
    assert expected in message
    assert message.startswith(f"{path} line ")
    assert abs(int(message.split(" line ")[1].split(":")[0]) - line) <= 2


def test_keep_needs_a_reason() -> None:
    path = ROOT / "demo" / "dsar.yaml"
    tickets = "        erasure: {}\n        defaults:\n          category: Communications"
    text = path.read_text().replace(tickets.format("delete"), tickets.format("keep"))
    with pytest.raises(DataMapError, match="'keep' needs a reason"):
        DataMap.parse(text, path)


def test_erasure_defaults_keep_keys_and_joins_and_null_the_rest() -> None:
    crm = DataMap.load(ROOT / "demo" / "dsar.yaml").system("crm")
    from dsar.datamap import EntityErasure, FieldErasure

    customers, orders = crm.entities["customers"], crm.entities["orders"]
    assert customers.erasure.strategy is EntityErasure.ANONYMISE
    assert customers.field_erasure("id") is FieldErasure.KEEP  # the key
    assert customers.field_erasure("email") is FieldErasure.NULL  # the default
    assert customers.field_erasure("account_number") is FieldErasure.HASH  # its own rule
    assert orders.field_erasure("customer_id") is FieldErasure.KEEP  # the relation column
    assert crm.entities["payments"].erasure.strategy is EntityErasure.KEEP
    assert "Companies Act" in crm.entities["payments"].erasure.reason
    assert customers.restriction == ("processing_restricted", "true")


def test_verification_policy_defaults_and_overrides() -> None:
    demo = DataMap.load(ROOT / "demo" / "dsar.yaml").verification
    assert demo.points_needed("CCPA", "access") == 3 and demo.needs_declaration("CCPA", "access")
    assert demo.points_needed("CCPA", "erasure") == 2 and not demo.needs_declaration("CCPA", "erasure")
    assert demo.points_needed("UK_GDPR", "access") == 2 and not demo.needs_declaration("UK_GDPR", "access")
    example = DataMap.load(ROOT / "dsar.example.yaml").verification
    assert example.points_needed("CCPA", "erasure") == 2 and example.link_valid_hours == 72
    text = (ROOT / "dsar.example.yaml").read_text().replace("      erasure: 2 ", "      erasure: 7 ")
    with pytest.raises(DataMapError, match=r"verification\.points\.CCPA\.erasure: expected a number"):
        DataMap.parse(text, "x.yaml")


def test_markers_for_objection_and_opt_out_sit_beside_restriction() -> None:
    from dsar.datamap import Marker

    marketing = DataMap.load(ROOT / "demo" / "dsar.yaml").system("marketing")
    preferences = marketing.entities["preferences"]
    assert preferences.marker(Marker.RESTRICTION) == ("processing_restricted", "true")
    assert preferences.objection == ("marketing_allowed", "false")
    assert preferences.marker(Marker.OPT_OUT) == ("sale_sharing_opted_out", "true")
    assert preferences.marker(Marker.LIMIT_USE) is None
    assert marketing.entities["campaign_events"].marker(Marker.OBJECTION) is None
    path = ROOT / "demo" / "dsar.yaml"
    text = path.read_text()
    old = '        opt_out: {column: sale_sharing_opted_out, value: "true"}\n'
    assert old in text
    with pytest.raises(
        DataMapError, match=r"preferences\.opt_out\.column: no column 'do_not_sell'"
    ) as caught:
        DataMap.parse(text.replace(old, '        opt_out: {column: do_not_sell, value: "true"}\n'), path)
    assert str(caught.value).startswith(f"{path} line ")
    with pytest.raises(DataMapError, match=r"preferences\.opt_out: missing required key 'value'"):
        DataMap.parse(text.replace(old, "        opt_out: {column: sale_sharing_opted_out}\n"), path)
    # on an S3 entity, markers are not a key (objects are tagged for restriction only)
    pod = '        prefix: "pod-exports/"\n'
    with pytest.raises(DataMapError, match="unknown key 'objection'"):
        DataMap.parse(text.replace(pod, pod + "        objection: {column: key, value: x}\n"), path)


def test_join_columns_are_keys_relations_and_what_children_join_on() -> None:
    crm = DataMap.load(ROOT / "demo" / "dsar.yaml").system("crm")
    assert crm.join_columns("customers") == {"id"}
    assert crm.join_columns("orders") == {"id", "customer_id"}
    assert crm.join_columns("parcels") == {"id", "order_id"}


def test_automated_decisions_transfers_and_provided_are_read_from_the_map() -> None:
    datamap = DataMap.load(ROOT / "demo" / "dsar.yaml")
    (decision,) = datamap.controller.automated_decisions
    assert decision.what.startswith("Whether we can offer you a handset") and decision.systems == ("crm",)
    assert "credit reference agency" in decision.logic and "SIM-only" in decision.significance
    assert decision.concerns(["crm", "cctv"]) and not decision.concerns(["marketing"])
    (transfer,) = datamap.controller.transfers
    assert transfer.country == "United States" and transfer.systems == ("crm", "marketing")
    assert "International Data Transfer Addendum" in transfer.safeguard
    assert transfer.concerns(["marketing"]) and not transfer.concerns(["recordings", "cctv"])
    # without systems, it concerns everyone
    assert replace(transfer, systems=()).concerns([])
    # `provided` on a field, in an entity's defaults, and overridden by a field
    customers = datamap.system("crm").entities["customers"].fields
    assert customers["email"].provided is True and customers["id"].provided is False
    assert datamap.system("crm").entities["fraud_markers"].fields["note"].provided is False
    assert datamap.system("cctv").entities["footage"].fields["footage"].provided is None  # unset
    # a map that declares none has none; an empty list is none
    minimal = (MAPS / "minimal.yaml").read_text()
    assert DataMap.parse(minimal).controller.transfers == ()
    declared = minimal.replace(
        "  name: Test Ltd\n",
        "  name: Test Ltd\n  automated_decisions: []\n  transfers:\n"
        "    - {recipient: Acme, country: India, safeguard: 'UK IDTA'}\n",
    )
    controller = DataMap.parse(declared).controller
    assert controller.automated_decisions == ()
    assert controller.transfers == (Transfer("Acme", "India", "UK IDTA"),)


DECISION = """    - what: Whether we can offer you a handset on a monthly contract (a credit check)\n"""
TRANSFER = """      country: United States\n"""


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (DECISION, "    - logic: x\n" + DECISION.replace("- what", "  wha"),
         "controller.automated_decisions[0]: unknown key 'wha'"),
        (DECISION, "    -\n", "controller.automated_decisions[0]: missing required key 'what'"),
        (DECISION, "    - what: ''\n", "controller.automated_decisions[0].what: must not be empty"),
        ("      systems: [crm]\n", "      systems: [crm, billing]\n",
         "controller.automated_decisions[0].systems: no system 'billing' in the data map"),
        ("      systems: [crm]\n", "      systems: []\n",
         "controller.automated_decisions[0].systems: name at least one system"),
        ("      systems: [crm]\n", "      systems: [crm]\n      appeal: write to us\n",
         "controller.automated_decisions[0]: unknown key 'appeal'"),
        (TRANSFER, "", "controller.transfers[0]: missing required key 'country'"),
        (TRANSFER, "      country: [United States]\n",
         "controller.transfers[0].country: expected a text value"),
        (TRANSFER, "      country:\n", "controller.transfers[0].country: must not be empty"),
        ("      systems: [crm, marketing]\n", "      systems: [crm, marketting]\n",
         "controller.transfers[0].systems: no system 'marketting' in the data map"),
        ("          id: {category: Identifiers, provided: false}\n",
         "          id: {category: Identifiers, provided: maybe}\n",
         "systems.crm.entities.customers.fields.id.provided: expected true or false, got 'maybe'"),
        ("          provided: false       # our staff's notes\n",
         "          provided: sometimes\n",
         "systems.crm.entities.complaint_notes.defaults.provided: expected true or false"),
    ],
)  # fmt: skip
def test_mistakes_in_decisions_transfers_and_provided_are_located(old: str, new: str, expected: str) -> None:
    path = ROOT / "demo" / "dsar.yaml"
    text = path.read_text()
    assert old in text, old
    changed = text.replace(old, new, 1)
    line = changed[: changed.index(new)].count("\n") + 1 if new else text[: text.index(old)].count("\n") + 1
    with pytest.raises(DataMapError) as caught:
        DataMap.parse(changed, path)
    message = str(caught.value)
    assert expected in message, message
    assert message.startswith(f"{path} line ")
    assert abs(int(message.split(" line ")[1].split(":")[0]) - line) <= 2, (message, line)
