"""Erasure, rectification and restriction by the SQL connector, on SQLite, PostgreSQL and MariaDB.

The servers must be running, as for ``test_sql_connector.py``, whose throwaway-database helper
this module reuses with databases of its own (both modules can run in one session). Every test
starts from a freshly seeded demo company and compares whole tables before and after: a change
must touch the subject's rows and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import MetaData, func, select

from connectors import ConnectorMisconfigured
from connectors.base import (
    HEARTBEAT_EVERY,
    Changed,
    Connector,
    EntityErasurePlan,
    Erased,
    ErasurePlan,
    FieldChange,
    Marked,
    Rectification,
    Subject,
)
from demo.seed import CRM, MARGARET, MARKETING, customers, orders, parcels, seed_demo, support_tickets
from dsar.datamap import EntityErasure, Marker, SystemConfig
from tests.test_sql_connector import DEMO_MAP, Demo, fresh_databases

PEOPLE = 60
HASH_KEY = "6b" * 32  # hex, as fulfilment passes it
MARGARET_ID, PETER_ID, NAMESAKE_ID = 1, 2, 3
HER = f"customers:{MARGARET_ID}"
#: everything she gave; the name and postcode also point at the namesake and her husband
HER_IDENTIFIERS = dict(MARGARET)


class ChangesDemo(Demo):
    def system(self, name: str) -> SystemConfig:
        """Like ``Demo.system``, in variables of this module's own."""
        env = f"DSAR_TEST_CHANGES_{self.backend.upper()}_{name.upper()}_URL"
        os.environ[env] = self.urls[name]
        return replace(DEMO_MAP.system(name), url_env=env)


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChangesDemo]:
    backend: str = request.param
    with fresh_databases(backend, tmp_path_factory.mktemp(f"changes-{backend}")) as urls:
        people = seed_demo(urls["crm"], urls["marketing"], people=PEOPLE)
        yield ChangesDemo(backend=backend, urls=urls, people=people)


@pytest.fixture
def demo(databases: ChangesDemo) -> ChangesDemo:
    """The backend's databases, seeded afresh: every test changes them."""
    seed_demo(databases.urls["crm"], databases.urls["marketing"], people=PEOPLE)
    return databases


Snapshot = dict[str, dict[Any, dict[str, Any]]]


def snapshot(demo: Demo, name: str = "crm") -> Snapshot:
    """Every row of every table of the system, by id, read directly."""
    metadata: MetaData = CRM if name == "crm" else MARKETING
    with demo.engine(name) as engine, engine.connect() as conn:
        return {
            table.name: {row.id: dict(row._mapping) for row in conn.execute(select(table))}
            for table in metadata.sorted_tables
        }


def collect(connector: Connector, identifiers: dict[str, str]) -> list[dict]:
    sink = io.BytesIO()
    connector.collect(identifiers, sink)
    return [json.loads(line) for line in sink.getvalue().splitlines()]


def her_subject(demo: Demo, system: str = "crm") -> Subject:
    """Margaret as verification leaves her: all her identifiers, her person key only."""
    located = demo.connector(system).locate(HER_IDENTIFIERS)
    mine = [key for key in located.person_keys if key in {HER, "preferences:1"}]
    assert len(mine) == 1
    return Subject(identifiers=dict(HER_IDENTIFIERS), person_keys=mine)


def keyed_hash(value: str, length: int) -> str:
    return hmac.new(bytes.fromhex(HASH_KEY), value.encode(), hashlib.sha256).hexdigest()[:length]


# -- erase -------------------------------------------------------------------------------------


def test_erase_margaret_from_the_crm(demo: ChangesDemo) -> None:
    crm = demo.system("crm")
    before = snapshot(demo)
    peter_before = collect(demo.connector(), {"email": demo.people.peter["email"]})
    namesake_before = collect(demo.connector(), {"email": demo.people.namesake["email"]})
    her_orders = {i for i, row in before["orders"].items() if row["customer_id"] == MARGARET_ID}
    gone = {
        "support_tickets": {
            i for i, r in before["support_tickets"].items() if r["customer_id"] == MARGARET_ID
        },
        "parcels": {i for i, r in before["parcels"].items() if r["order_id"] in her_orders},
        "call_recordings": {
            i for i, r in before["call_recordings"].items() if r["customer_id"] == MARGARET_ID
        },
        # the connector deletes by the data map's strategy; exemptions (AML retention, an open
        # fraud investigation) are the review's, which takes them out of the plan
        **{
            table: {i for i, r in before[table].items() if r["customer_id"] == MARGARET_ID}
            for table in ("fraud_markers", "identity_documents", "complaint_notes")
        },
    }
    assert her_orders and all(gone.values())

    plan = ErasurePlan.from_datamap(crm, her_subject(demo), hash_key=HASH_KEY)
    result = demo.connector().erase(plan)
    assert result == Erased(
        system="crm",
        deleted={entity: len(ids) for entity, ids in gone.items()},
        anonymised={"customers": 1, "orders": len(her_orders)},
    )

    after = snapshot(demo)
    for entity, ids in gone.items():  # deleted, and nobody else's row touched
        assert after[entity] == {i: r for i, r in before[entity].items() if i not in ids}
    assert after["payments"] == before["payments"]  # kept for the accounts
    for i, row in before["orders"].items():
        expected = {**row, "delivery_address": None} if i in her_orders else row
        assert after["orders"][i] == expected  # totals, products, dates intact
    assert set(after["orders"]) == set(before["orders"])
    for i, row in before["customers"].items():
        if i != MARGARET_ID:
            assert after["customers"][i] == row
    # email is NOT NULL in the demo schema: its "null" rule falls back to the placeholder
    email = None if customers.c.email.nullable else "erased"
    assert after["customers"][MARGARET_ID] == {
        **before["customers"][MARGARET_ID],
        "full_name": "erased",
        "email": email,
        "phone": None,
        "postcode": None,
        "address": None,
        "date_of_birth": None,
        "account_number": keyed_hash(MARGARET["account_number"], 20),
    }
    assert after["customers"][MARGARET_ID]["created_at"] == before["customers"][MARGARET_ID]["created_at"]

    # her husband and her namesake: every record as it was, field by field
    assert collect(demo.connector(), {"email": demo.people.peter["email"]}) == peter_before
    assert collect(demo.connector(), {"email": demo.people.namesake["email"]}) == namesake_before

    # nothing that named her finds her any more
    personal = {k: v for k, v in HER_IDENTIFIERS.items() if k != "customer_id"}
    located = demo.connector().locate(personal)
    assert HER not in located.person_keys
    assert located.person_keys == [f"customers:{PETER_ID}", f"customers:{NAMESAKE_ID}"]  # postcode, name
    only_hers = {k: personal[k] for k in ("email", "phone", "account_number", "date_of_birth")}
    assert not demo.connector().locate(only_hers).found
    # (the internal customer number still points at the kept, anonymised account row)

    # Again, with the same plan (the customer number still finds the anonymised row): nothing
    # changes, the hash is not hashed again.
    again = demo.connector().erase(plan)
    assert again == Erased(
        system="crm",
        deleted={entity: 0 for entity in gone},
        anonymised={"customers": 0, "orders": 0},
    )
    assert snapshot(demo) == after


def test_erase_margaret_from_marketing(demo: ChangesDemo) -> None:
    before = snapshot(demo, "marketing")
    events = {i for i, row in before["campaign_events"].items() if row["preference_id"] == 1}
    assert events
    plan = ErasurePlan.from_datamap(
        demo.system("marketing"), her_subject(demo, "marketing"), hash_key=HASH_KEY
    )
    result = demo.connector("marketing").erase(plan)
    assert result == Erased(
        system="marketing", deleted={"preferences": 1, "campaign_events": len(events)}, anonymised={}
    )
    after = snapshot(demo, "marketing")
    assert after["preferences"] == {i: r for i, r in before["preferences"].items() if i != 1}
    assert after["campaign_events"] == {i: r for i, r in before["campaign_events"].items() if i not in events}
    assert not demo.connector("marketing").locate({"email": MARGARET["email"]}).found
    again = demo.connector("marketing").erase(plan)
    assert again.deleted == {"preferences": 0, "campaign_events": 0}


def test_plans_that_would_orphan_kept_rows_are_refused_before_any_change(demo: ChangesDemo) -> None:
    crm = demo.system("crm")
    subject = her_subject(demo)
    before = snapshot(demo)
    # customers (and everything else) deleted, payments kept: the payments would point at
    # deleted orders
    everything = [
        EntityErasurePlan(name, EntityErasure.DELETE) for name in crm.entities if name != "payments"
    ]
    with pytest.raises(ConnectorMisconfigured, match="'orders' is deleted but its child 'payments' is kept"):
        demo.connector().erase(ErasurePlan("crm", subject, everything, HASH_KEY))
    # customers deleted while their orders are anonymised (kept rows) is refused the same way
    demo_plan = ErasurePlan.from_datamap(crm, subject, hash_key=HASH_KEY)
    deleting = [
        EntityErasurePlan(s.entity, EntityErasure.DELETE) if s.entity == "customers" else s
        for s in demo_plan.entities
    ]
    with pytest.raises(
        ConnectorMisconfigured, match="'customers' is deleted but its child 'orders' is anonymised"
    ):
        demo.connector().erase(replace(demo_plan, entities=deleting))
    # hashing without a key, an unknown entity, another system's plan
    with pytest.raises(ConnectorMisconfigured, match="hash key"):
        demo.connector().erase(replace(demo_plan, hash_key=""))
    with pytest.raises(ConnectorMisconfigured, match="unknown entity 'invoices'"):
        demo.connector().erase(
            replace(demo_plan, entities=[EntityErasurePlan("invoices", EntityErasure.DELETE)])
        )
    with pytest.raises(ConnectorMisconfigured, match="for system 'marketing'"):
        demo.connector().erase(replace(demo_plan, system="marketing"))
    assert snapshot(demo) == before


def test_erase_a_subject_with_thousands_of_rows(demo: ChangesDemo) -> None:
    """IN lists are cut into pieces, children are found through thousands of parent keys, and
    the heartbeat keeps pace."""
    subject_id, extra = 10, 2_500
    with demo.engine() as engine, engine.begin() as conn:
        first_order = conn.execute(select(func.max(orders.c.id))).scalar_one() + 1
        first_parcel = conn.execute(select(func.max(parcels.c.id))).scalar_one() + 1
        start = datetime(2024, 1, 1)
        conn.execute(
            orders.insert(),
            [
                {
                    "id": first_order + i,
                    "customer_id": subject_id,
                    "ordered_at": start + timedelta(minutes=i),
                    "product": "Parcel Standard, 2-3 days",
                    "total": Decimal("3.99"),
                    "status": "paid",
                    "delivery_address": "1 Test Street, Leeds",
                }
                for i in range(extra)
            ],
        )
        conn.execute(
            parcels.insert(),
            [
                {
                    "id": first_parcel + i,
                    "order_id": first_order + i,
                    "tracking_number": f"NW{i:010d}GB",
                    "delivered_to": "1 Test Street, Leeds",
                }
                for i in range(extra)
            ],
        )
    before = snapshot(demo)
    his_orders = {i for i, r in before["orders"].items() if r["customer_id"] == subject_id}
    his_parcels = {i for i, r in before["parcels"].items() if r["order_id"] in his_orders}
    beats: list[None] = []
    connector = demo.connector("crm", heartbeat=lambda: beats.append(None))
    subject = Subject({"customer_id": str(subject_id)}, [f"customers:{subject_id}"])
    began = time.perf_counter()
    result = connector.erase(ErasurePlan.from_datamap(demo.system("crm"), subject, hash_key=HASH_KEY))
    elapsed = time.perf_counter() - began
    assert result.deleted["parcels"] == len(his_parcels) >= extra
    assert result.anonymised == {"customers": 1, "orders": len(his_orders)}
    after = snapshot(demo)
    assert not his_parcels & set(after["parcels"])
    assert all(after["orders"][i]["delivery_address"] is None for i in his_orders)
    assert len(after["parcels"]) == len(before["parcels"]) - len(his_parcels)
    # rows read to resolve the subject, then rows changed: at least two passes over ~5,000
    assert len(beats) >= 2 * 2 * extra // HEARTBEAT_EVERY
    assert elapsed < 10, f"{elapsed:.1f}s"


# -- rectify -----------------------------------------------------------------------------------


def test_rectify_her_phone_and_delivery_address(demo: ChangesDemo) -> None:
    subject = her_subject(demo)
    new_phone = "+447911765432"
    changes = Rectification(
        subject,
        [
            FieldChange("customers", "phone", new_phone),
            FieldChange("customers", "full_name", "margaret ellis"),  # MariaDB compares case-blind
            FieldChange("orders", "delivery_address", "4 New Street, Coventry"),
        ],
    )
    before = snapshot(demo)
    her_orders = {i for i, r in before["orders"].items() if r["customer_id"] == MARGARET_ID}
    assert demo.connector().rectify(changes) == Changed("crm", {"customers": 1, "orders": len(her_orders)})
    assert demo.connector().locate({"phone": "07911 765432"}).person_keys == [HER]
    assert not demo.connector().locate({"phone": MARGARET["phone"]}).found
    after = snapshot(demo)
    assert after["customers"][MARGARET_ID] == {
        **before["customers"][MARGARET_ID],
        "phone": new_phone,
        "full_name": "margaret ellis",
    }
    for i, row in before["orders"].items():
        assert after["orders"][i] == (
            {**row, "delivery_address": "4 New Street, Coventry"} if i in her_orders else row
        )
    assert {i: r for i, r in after["customers"].items() if i != MARGARET_ID} == {
        i: r for i, r in before["customers"].items() if i != MARGARET_ID
    }
    # again: found by her email, already corrected
    assert demo.connector().rectify(changes) == Changed("crm", {"customers": 0, "orders": 0})
    assert snapshot(demo) == after


def test_rectify_refuses_undeclared_fields_and_bad_values(demo: ChangesDemo) -> None:
    subject = her_subject(demo)
    before = snapshot(demo)
    secret = "s3cret-value"
    for entity, field_name in (("customers", "password_hash"), ("invoices", "amount")):
        with pytest.raises(ConnectorMisconfigured, match=f"'{entity}.{field_name}'") as caught:
            demo.connector().rectify(Rectification(subject, [FieldChange(entity, field_name, secret)]))
        assert secret not in str(caught.value)
    bad_date = "14th of March, 1958"
    with pytest.raises(ValueError, match=r"'customers\.date_of_birth' is not a valid date") as error:
        # the phone is valid, but nothing changes unless everything can
        demo.connector().rectify(
            Rectification(
                subject,
                [
                    FieldChange("customers", "phone", "+447911765432"),
                    FieldChange("customers", "date_of_birth", bad_date),
                ],
            )
        )
    assert bad_date not in str(error.value)
    with pytest.raises(ValueError, match="key or join column"):
        demo.connector().rectify(Rectification(subject, [FieldChange("customers", "id", "99")]))
    assert snapshot(demo) == before


# -- restrict ----------------------------------------------------------------------------------


def test_restrict_marks_her_rows_only(demo: ChangesDemo) -> None:
    before = {system: snapshot(demo, system) for system in ("crm", "marketing")}
    assert demo.connector().restrict(her_subject(demo)) == Changed("crm", {"customers": 1})
    marketing = demo.connector("marketing").restrict(her_subject(demo, "marketing"))
    assert marketing == Changed("marketing", {"preferences": 1})
    for system, table, mine in (("crm", "customers", MARGARET_ID), ("marketing", "preferences", 1)):
        after = snapshot(demo, system)
        expected = dict(before[system])
        expected[table] = {
            i: {**r, "processing_restricted": True} if i == mine else r
            for i, r in before[system][table].items()
        }
        assert after == expected
        assert not any(r["processing_restricted"] for i, r in before[system][table].items())
    # again: nothing more to mark
    assert demo.connector().restrict(her_subject(demo)) == Changed("crm", {"customers": 0})
    assert demo.connector("marketing").restrict(her_subject(demo, "marketing")).entities == {"preferences": 0}
    # the record says so when collected (MariaDB's BOOLEAN is TINYINT(1): 1)
    customer = next(line["record"] for line in collect(demo.connector(), {"email": MARGARET["email"]}))
    assert customer["id"] == MARGARET_ID and customer["processing_restricted"] == 1


# -- person keys, markers and exempt records ---------------------------------------------------


def test_a_retry_finds_her_rows_by_person_key_after_her_identifiers_were_erased(demo: ChangesDemo) -> None:
    """Once her identity row is anonymised, her email finds nothing; the person key the search
    accepted still names the row, so a retried erasure still reaches what hangs from it."""
    crm = demo.system("crm")
    plan = ErasurePlan.from_datamap(crm, her_subject(demo), hash_key=HASH_KEY)
    demo.connector().erase(plan)
    assert not demo.connector().locate({"email": MARGARET["email"]}).found
    with demo.engine() as engine, engine.begin() as conn:
        conn.execute(
            support_tickets.insert().values(
                id=90_001,
                customer_id=MARGARET_ID,
                opened_at=datetime(2026, 4, 2),
                channel="email",
                subject="again",
                body="written after the erasure began",
                status="open",
            )
        )
    retry = ErasurePlan.from_datamap(crm, Subject({"email": MARGARET["email"]}, [HER]), hash_key=HASH_KEY)
    assert demo.connector().erase(retry).deleted["support_tickets"] == 1
    assert 90_001 not in snapshot(demo)["support_tickets"]
    # a person key of another table, another system or the wrong type names nothing
    nobody = Subject({}, ["customers:not-a-number", "preferences:1", "invoices:4", "customers"])
    assert sum(demo.connector().erase(replace(plan, subject=nobody)).deleted.values()) == 0
    # collect follows the accepted person too
    sink = io.BytesIO()
    demo.connector().collect({"email": MARGARET["email"]}, sink, person_keys=[HER])
    assert {json.loads(line)["entity"] for line in sink.getvalue().splitlines()} >= {"customers", "orders"}


def test_objection_and_opt_out_set_their_markers_and_read_them_back(demo: ChangesDemo) -> None:
    before = snapshot(demo, "marketing")
    marketing = demo.connector("marketing")
    subject = her_subject(demo, "marketing")
    assert marketing.marks(subject, Marker.OBJECTION) == Marked(
        "marketing", {"preferences": 0}, {"preferences": 1}
    )
    assert marketing.mark(subject, Marker.OBJECTION) == Changed("marketing", {"preferences": 1})
    assert marketing.mark(subject, Marker.OPT_OUT) == Changed("marketing", {"preferences": 1})
    assert marketing.marks(subject, Marker.OBJECTION) == Marked(
        "marketing", {"preferences": 1}, {"preferences": 0}
    )
    assert marketing.marks(subject, Marker.OPT_OUT).unmarked == {"preferences": 0}
    after = snapshot(demo, "marketing")
    assert after["preferences"][1] == {
        **before["preferences"][1],
        "marketing_allowed": False,
        "sale_sharing_opted_out": True,
    }
    assert {i: r for i, r in after["preferences"].items() if i != 1} == {
        i: r for i, r in before["preferences"].items() if i != 1
    }
    assert marketing.mark(subject, Marker.OBJECTION).entities == {"preferences": 0}
    # the CRM has no such markers: nothing to set, nothing reported
    assert demo.connector().mark(her_subject(demo), Marker.OPT_OUT) == Changed("crm", {})
    # a record an exemption covers is left as it is, and not counted
    crm_subject = her_subject(demo)
    assert demo.connector().mark(crm_subject, Marker.RESTRICTION, frozenset({HER})) == Changed(
        "crm", {"customers": 0}
    )
    assert demo.connector().marks(crm_subject, Marker.RESTRICTION, frozenset({HER})).unmarked == {
        "customers": 0
    }
    assert demo.connector().marks(crm_subject, Marker.RESTRICTION).unmarked == {"customers": 1}


def test_rectify_leaves_exempt_records_as_they_are(demo: ChangesDemo) -> None:
    subject = her_subject(demo)
    before = snapshot(demo)
    her_orders = sorted(i for i, r in before["orders"].items() if r["customer_id"] == MARGARET_ID)
    exempt = [f"orders:{her_orders[0]}"]
    change = Rectification(subject, [FieldChange("orders", "delivery_address", "4 New Street")], exempt)
    assert demo.connector().rectify(change) == Changed("crm", {"orders": len(her_orders) - 1})
    after = snapshot(demo)
    assert after["orders"][her_orders[0]] == before["orders"][her_orders[0]]
    assert all(after["orders"][i]["delivery_address"] == "4 New Street" for i in her_orders[1:])
