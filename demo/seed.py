"""Northwind Post & Mobile: the demo company that ``make run`` searches.

A mail, parcel and mobile firm with two systems: a CRM (customers, orders, card payments with
the last four digits only, support tickets whose free text mentions other people, parcel
deliveries with signatures, call-recording metadata) and a marketing database (preferences
keyed by email, consent dates, campaign events). ``demo/dsar.yaml`` is its data map.

Seeding drops and recreates every demo table and fills them from a fixed random seed, so the
same call always produces the same rows on SQLite, PostgreSQL and MariaDB alike. Only
example.com/.net/.org addresses and Ofcom drama-range (07700 900xxx) or 07911 numbers are used:
nothing here can reach a real person.

    python -m demo.seed --var var     # SQLite files under var/, prints the env lines to use
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    func,
    select,
)

from connectors.sql import database_url

if TYPE_CHECKING:
    from dsar.suppression import SuppressionList

SEED = 20260401
EPOCH = datetime(2019, 1, 1, 9, 0, 0)

CRM = MetaData()

customers = Table(
    "customers",
    CRM,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("full_name", String(200), nullable=False),
    Column("email", String(254), nullable=False, index=True),
    Column("phone", String(40)),
    Column("postcode", String(16), index=True),
    Column("address", String(300)),
    Column("date_of_birth", Date),
    Column("account_number", String(20), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("closed_at", DateTime),
    Column("processing_restricted", Boolean, nullable=False, default=False),
)

orders = Table(
    "orders",
    CRM,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("ordered_at", DateTime, nullable=False),
    Column("product", String(120), nullable=False),
    Column("total", Numeric(10, 2), nullable=False),
    Column("status", String(20), nullable=False),
    Column("delivery_address", String(300)),
)

payments = Table(
    "payments",
    CRM,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False, index=True),
    Column("paid_at", DateTime, nullable=False),
    Column("amount", Numeric(10, 2), nullable=False),
    Column("card_brand", String(20)),
    Column("card_last4", String(4)),  # PCI DSS: never the full number
)

support_tickets = Table(
    "support_tickets",
    CRM,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("opened_at", DateTime, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(20), nullable=False),
)

parcels = Table(
    "parcels",
    CRM,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False, index=True),
    Column("tracking_number", String(30), nullable=False),
    Column("delivered_at", DateTime),
    Column("delivered_to", String(300)),
    Column("signed_by", String(120)),
    Column("signature_image", LargeBinary),
)

call_recordings = Table(
    "call_recordings",
    CRM,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("started_at", DateTime, nullable=False),
    Column("duration_seconds", Integer, nullable=False),
    Column("direction", String(10), nullable=False),
    Column("agent", String(80), nullable=False),
    Column("storage_key", String(200), nullable=False),
)

# Records that exemptions bind (dsar/exemptions.yaml; the rules are in demo/dsar.yaml): fraud
# markers (withheld while an investigation is open: crime prevention), identity documents
# checked under the Money Laundering Regulations (kept 5 years after the relationship ends), and
# complaint notes, some of them legal advice (privileged) and some naming other people.
fraud_markers = Table(
    "fraud_markers",
    CRM,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("raised_at", DateTime, nullable=False),
    Column("kind", String(30), nullable=False),  # fraud_marker | account_takeover | chargeback
    Column("status", String(20), nullable=False),  # open | closed
    Column("shared_with", String(80)),  # the fraud prevention agency told, if any
    Column("note", Text, nullable=False),
)

identity_documents = Table(
    "identity_documents",
    CRM,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("document_type", String(40), nullable=False),
    Column("document_reference", String(40), nullable=False),  # masked: last four characters only
    Column("checked_at", DateTime, nullable=False),
    Column("relationship_ended_at", DateTime),  # when the account closed; empty while it is open
)

complaint_notes = Table(
    "complaint_notes",
    CRM,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("written_at", DateTime, nullable=False),
    Column("kind", String(30), nullable=False),  # complaint | legal_advice
    Column("author", String(80), nullable=False),
    Column("note", Text, nullable=False),
    Column("privileged", Boolean, nullable=False, default=False),
)

MARKETING = MetaData()

preferences = Table(
    "preferences",
    MARKETING,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("email", String(254), nullable=False, index=True),
    Column("first_name", String(100)),
    Column("mobile", String(40)),
    Column("email_opt_in", Boolean, nullable=False),
    Column("sms_opt_in", Boolean, nullable=False),
    Column("post_opt_in", Boolean, nullable=False),
    Column("consent_given_at", DateTime),
    Column("consent_source", String(60)),
    Column("consent_withdrawn_at", DateTime),
    Column("updated_at", DateTime, nullable=False),
    Column("processing_restricted", Boolean, nullable=False, default=False),
    # off when the person objects to direct marketing (Art. 21): no channel is used at all
    Column("marketing_allowed", Boolean, nullable=False, default=True),
    # set when the person opts out of the sale or sharing of their data (CCPA s.1798.120)
    Column("sale_sharing_opted_out", Boolean, nullable=False, default=False),
)

campaign_events = Table(
    "campaign_events",
    MARKETING,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("preference_id", Integer, ForeignKey("preferences.id"), nullable=False, index=True),
    Column("campaign", String(80), nullable=False),
    Column("event", String(20), nullable=False),
    Column("at", DateTime, nullable=False),
)


@dataclass(frozen=True)
class DemoPeople:
    """The named demo people (identifiers as a person would type them) for tests and the README.

    ``margaret`` and ``peter`` share a household (same address and postcode); ``namesake`` has
    Margaret's name but nothing else; ``subscriber`` is only in the marketing database.
    """

    margaret: dict[str, str]
    peter: dict[str, str]
    namesake: dict[str, str]
    subscriber: dict[str, str]
    customers: int  # customers in the CRM, named ones included


MARGARET = {
    "name": "Margaret Ellis",
    "email": "margaret.ellis@example.com",
    "phone": "+44 7911 123456",
    "postcode": "CV3 4LP",
    "postal_address": "12 Orchard Lane, Coventry",
    "date_of_birth": "1958-03-14",
    "customer_id": "1",
    "account_number": "NW100001",
}
PETER = {
    "name": "Peter Ellis",
    "email": "peter.ellis@example.net",
    "phone": "07700 900461",
    "postcode": "CV3 4LP",
    "postal_address": "12 Orchard Lane, Coventry",
    "date_of_birth": "1956-11-02",
    "customer_id": "2",
    "account_number": "NW100002",
}
NAMESAKE = {
    "name": "Margaret Ellis",
    "email": "m.ellis@example.org",
    "phone": "+44 7700 900877",
    "postcode": "LS6 2AB",
    "postal_address": "3 Hollin Road, Leeds",
    "date_of_birth": "1984-07-22",
    "customer_id": "3",
    "account_number": "NW100003",
}
SUBSCRIBER = {
    "name": "Aisha Rahman",
    "email": "aisha.rahman@example.net",
    "phone": "07700 900318",
}

FIRST_NAMES = [
    "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Ivy", "Leo",
    "Freya", "Arthur", "Lily", "Muhammad", "Grace", "Oscar", "Sophia", "Theo", "Rosie", "Priya",
    "Tomasz", "Chloe", "Kwame", "Sian", "Ewan", "Niamh", "Ravi", "Zofia", "Dylan",
]  # fmt: skip
LAST_NAMES = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Wright", "Walker", "Thompson", "Khan", "Hughes", "Edwards", "Green", "Hall", "Wood",
    "Nowak", "Okafor", "Murphy", "Campbell", "Evans", "Roberts", "Singh", "Kowalski",
]  # fmt: skip
STREETS = ["High Street", "Station Road", "Church Lane", "Mill Road", "Park Avenue", "Victoria Street",
           "Queens Road", "Manor Way", "Elm Grove", "Kingsway"]  # fmt: skip
TOWNS = [("Leeds", "LS7"), ("Manchester", "M14"), ("Bristol", "BS7"), ("Newcastle", "NE2"),
         ("Edinburgh", "EH9"), ("Cardiff", "CF24"), ("Birmingham", "B15"), ("Sheffield", "S10"),
         ("Nottingham", "NG7"), ("Norwich", "NR2")]  # fmt: skip
PRODUCTS = [
    ("SIM-only 30GB, 12 months", Decimal("12.00"), False),
    ("SIM-only unlimited, 24 months", Decimal("20.00"), False),
    ("Handset: Pixel 8, 24 months", Decimal("35.50"), True),
    ("Handset: iPhone 15, 36 months", Decimal("41.99"), True),
    ("Parcel Plus, next day", Decimal("7.49"), True),
    ("Parcel Standard, 2-3 days", Decimal("3.99"), True),
    ("PO Box rental, 12 months", Decimal("285.00"), False),
    ("Redirection, 6 months", Decimal("49.50"), False),
]
AGENTS = ["Agent 104 (Hannah)", "Agent 212 (Marcus)", "Agent 307 (Deepa)", "Agent 415 (Callum)"]
TICKETS = [
    ("Parcel left with neighbour", "My parcel was signed for by {other} at number {n}. I never agreed."),
    ("Bill query", "Please discuss my bill with my son {other}, he manages my account."),
    ("Roaming charges", "I was charged for roaming in France. {other} from your shop said it was included."),
    ("Redirection not working", "Post for me still goes to my old address where {other} now lives."),
    ("Lost SIM", "Lost my SIM on the train, please block it."),
    ("Complaint about courier", "The courier was rude to my carer {other} and left the parcel in the rain."),
]  # fmt: skip
CAMPAIGNS = ["spring-sim-deals", "parcel-plus-launch", "black-friday", "roaming-bundles"]


def seed_demo(crm_url: str, marketing_url: str, people: int = 200) -> DemoPeople:
    """Create and fill both demo databases (dropping what was there). Deterministic."""
    if people < 3:
        raise ValueError("the demo needs at least 3 customers (the named demo people)")
    rng = random.Random(SEED)
    crm_rows = _crm_rows(rng, people)
    marketing_rows = _marketing_rows(rng, crm_rows["customers"])
    # a generator of their own: the rows above stay exactly as they were before these tables
    crm_rows.update(_exemption_rows(random.Random(SEED + 1), crm_rows["customers"]))
    _fill(crm_url, CRM, crm_rows)
    _fill(marketing_url, MARKETING, marketing_rows)
    return DemoPeople(
        margaret=dict(MARGARET),
        peter=dict(PETER),
        namesake=dict(NAMESAKE),
        subscriber=dict(SUBSCRIBER),
        customers=people,
    )


def _fill(url: str, metadata: MetaData, rows: dict[str, list[dict[str, Any]]]) -> None:
    engine = create_engine(database_url(url))
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with engine.begin() as conn:
            for table in metadata.sorted_tables:
                if rows.get(table.name):
                    conn.execute(table.insert(), rows[table.name])
    finally:
        engine.dispose()


def _at(rng: random.Random, after: datetime, days: int = 1500) -> datetime:
    return after + timedelta(days=rng.randrange(1, days), minutes=rng.randrange(0, 600))


def _phone_formats(number: str) -> list[str]:
    """Ways the same UK mobile number turns up in a CRM (``number`` is national, 11 digits)."""
    national = number.replace(" ", "")
    return [
        f"{national[:5]} {national[5:]}",
        national,
        f"+44 {national[1:5]} {national[5:]}",
        f"+44{national[1:]}",
        f"({national[:5]}) {national[5:8]}-{national[8:]}",
    ]


def _crm_rows(rng: random.Random, people: int) -> dict[str, list[dict[str, Any]]]:
    named = [MARGARET, PETER, NAMESAKE]
    reserved = {p["phone"].replace(" ", "")[-3:] for p in (*named, SUBSCRIBER) if "900" in p["phone"]}
    drama = [f"07700900{n:03d}" for n in range(1000) if f"{n:03d}" not in reserved]
    rng.shuffle(drama)
    phones = drama + [f"07911{200000 + n}" for n in range(max(0, people - len(drama)))]

    rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in CRM.sorted_tables}
    for index in range(people):
        cid = index + 1
        if index < len(named):
            person = named[index]
            created = EPOCH + timedelta(days=30 * cid)
            stored_email = {1: "Margaret.Ellis@Example.com", 2: person["email"], 3: person["email"]}[cid]
            stored_phone = {1: "+447911123456", 2: "07700900461", 3: person["phone"]}[cid]
            customer = {
                "full_name": person["name"],
                "email": stored_email,
                "phone": stored_phone,
                "postcode": person["postcode"],
                "address": person["postal_address"],
                "date_of_birth": date.fromisoformat(person["date_of_birth"]),
                "closed_at": None,
            }
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            town, outward = rng.choice(TOWNS)
            inward = "".join(rng.choice("ABDEFGHJLNPQRSTUWXYZ") for _ in range(2))
            postcode = f"{outward} {rng.randrange(1, 10)}{inward}"
            email = f"{first}.{last}{cid}@example.{rng.choice(['com', 'net', 'org'])}".lower()
            created = _at(rng, EPOCH, 1200)
            customer = {
                "full_name": f"{first} {last}",
                "email": email if rng.random() > 0.2 else email.title(),
                "phone": rng.choice(_phone_formats(phones[index])),
                "postcode": postcode if rng.random() > 0.3 else postcode.replace(" ", "").lower(),
                "address": f"{rng.randrange(1, 200)} {rng.choice(STREETS)}, {town}",
                "date_of_birth": date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 60)),
                "closed_at": _at(rng, created, 400) if rng.random() < 0.1 else None,
            }
        customer.update(id=cid, account_number=f"NW{100000 + cid}", created_at=created)
        rows["customers"].append(customer)
        _customer_activity(rng, rows, customer, named=index < len(named))
    return rows


def _customer_activity(
    rng: random.Random, rows: dict[str, list[dict[str, Any]]], customer: dict[str, Any], named: bool
) -> None:
    cid = customer["id"]
    created = customer["created_at"]
    n_orders = {1: 3, 2: 1, 3: 2}.get(cid, rng.randrange(0, 5)) if named else rng.randrange(0, 5)
    for _ in range(n_orders):
        oid = len(rows["orders"]) + 1
        product, price, shipped = PRODUCTS[(cid + oid) % len(PRODUCTS)] if named else rng.choice(PRODUCTS)
        ordered = _at(rng, created, 900)
        rows["orders"].append(
            {
                "id": oid,
                "customer_id": cid,
                "ordered_at": ordered,
                "product": product,
                "total": price,
                "status": rng.choice(["paid", "paid", "paid", "refunded"]),
                "delivery_address": customer["address"],
            }
        )
        rows["payments"].append(
            {
                "id": len(rows["payments"]) + 1,
                "order_id": oid,
                "paid_at": ordered + timedelta(minutes=3),
                "amount": price,
                "card_brand": rng.choice(["Visa", "Mastercard", "Amex"]),
                "card_last4": f"{rng.randrange(0, 10000):04d}",
            }
        )
        if shipped or (named and cid == 1):
            delivered = ordered + timedelta(days=rng.randrange(1, 4))
            neighbour = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            rows["parcels"].append(
                {
                    "id": len(rows["parcels"]) + 1,
                    "order_id": oid,
                    "tracking_number": f"NW{rng.randrange(10**9, 10**10)}GB",
                    "delivered_at": delivered,
                    "delivered_to": customer["address"],
                    # a neighbour's signature is a third party's personal data in this record
                    "signed_by": customer["full_name"] if rng.random() < 0.7 else f"{neighbour} (neighbour)",
                    "signature_image": b"SIG" + rng.randbytes(29),
                }
            )
    n_tickets = 2 if named else rng.randrange(0, 3)
    for t in range(n_tickets):
        if named and cid == 1 and t == 0:
            subject = "Parcel left with neighbour"
            body = "My parcel was signed for by Ravi Patel at number 14. I never agreed to that."
        elif named and cid == 1:
            subject = "Bill query"
            body = "Please discuss my bill with my husband Peter Ellis, he lives at the same address."
        elif named and cid == 2:
            subject, body = ("Joint bill", "My wife Margaret Ellis says her bill is wrong, can you call her?")
        else:
            subject, template = rng.choice(TICKETS)
            other = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            body = template.format(other=other, n=rng.randrange(1, 80))
        rows["support_tickets"].append(
            {
                "id": len(rows["support_tickets"]) + 1,
                "customer_id": cid,
                "opened_at": _at(rng, created, 900),
                "channel": rng.choice(["email", "phone", "web", "shop"]),
                "subject": subject,
                "body": body,
                "status": rng.choice(["closed", "closed", "open"]),
            }
        )
    for _ in range(2 if named else rng.randrange(0, 4)):
        rid = len(rows["call_recordings"]) + 1
        rows["call_recordings"].append(
            {
                "id": rid,
                "customer_id": cid,
                "started_at": _at(rng, created, 900),
                "duration_seconds": rng.randrange(45, 1800),
                "direction": rng.choice(["inbound", "outbound"]),
                "agent": rng.choice(AGENTS),
                "storage_key": f"recordings/{cid}/{rid:06d}.wav",
            }
        )


FRAUD_NOTES = {
    "fraud_marker": "Application details matched a known fraud pattern; reported to the agency.",
    "account_takeover": "Password resets requested from an unrecognised device; account watched.",
    "chargeback": "Chargeback raised on a handset order; evidence sent to the card scheme.",
}
ID_DOCUMENTS = ["passport", "driving_licence", "national_identity_card"]


def _exemption_rows(rng: random.Random, customers: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Fraud markers, identity documents and complaint notes: few people have them, and Margaret
    has one of each kind an exemption decides on."""
    rows: dict[str, list[dict[str, Any]]] = {
        "fraud_markers": [],
        "identity_documents": [],
        "complaint_notes": [],
    }

    def marker(cid: int, at: datetime, kind: str, status: str, agency: str | None) -> None:
        rows["fraud_markers"].append(
            {
                "id": len(rows["fraud_markers"]) + 1,
                "customer_id": cid,
                "raised_at": at,
                "kind": kind,
                "status": status,
                "shared_with": agency,
                "note": FRAUD_NOTES[kind],
            }
        )

    def document(cid: int, at: datetime, ended: datetime | None) -> None:
        rows["identity_documents"].append(
            {
                "id": len(rows["identity_documents"]) + 1,
                "customer_id": cid,
                "document_type": rng.choice(ID_DOCUMENTS),
                "document_reference": f"****{rng.randrange(0, 10000):04d}",
                "checked_at": at,
                "relationship_ended_at": ended,
            }
        )

    def note(cid: int, at: datetime, kind: str, author: str, text: str, privileged: bool) -> None:
        rows["complaint_notes"].append(
            {
                "id": len(rows["complaint_notes"]) + 1,
                "customer_id": cid,
                "written_at": at,
                "kind": kind,
                "author": author,
                "note": text,
                "privileged": privileged,
            }
        )

    for customer in customers:
        cid, created, closed = customer["id"], customer["created_at"], customer["closed_at"]
        if cid == 1:  # Margaret: an open investigation, a settled chargeback, advice on her complaint
            marker(1, created + timedelta(days=2000), "account_takeover", "open", "Cifas")
            marker(1, created + timedelta(days=400), "chargeback", "closed", None)
            document(1, created, None)
            note(
                1,
                created + timedelta(days=900),
                "complaint",
                "Complaints team",
                "Customer says the courier left her parcel with Ravi Patel at number 14 without "
                "asking. Apologised and credited 10.00.",
                False,
            )
            note(
                1,
                created + timedelta(days=930),
                "legal_advice",
                "Legal team",
                "Advice from our solicitors on the customer's threatened small claim about the "
                "parcel: liability is unlikely; settle below 100.00.",
                True,
            )
            continue
        if cid == 2:
            document(2, created, None)
            continue
        if cid == 3:
            continue
        if rng.random() < 0.5:  # handset contracts need an identity check
            document(cid, created, closed)
        if rng.random() < 0.06:
            kind = rng.choice(list(FRAUD_NOTES))
            marker(
                cid, _at(rng, created, 900), kind, rng.choice(["open", "closed"]), rng.choice(["Cifas", None])
            )
        if rng.random() < 0.05:
            other = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            note(
                cid,
                _at(rng, created, 900),
                "complaint",
                "Complaints team",
                f"Customer unhappy that {other} was given information about the account.",
                False,
            )
    return rows


def _marketing_rows(
    rng: random.Random, crm_customers: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in MARKETING.sorted_tables}

    def add(email: str, first_name: str, mobile: str | None, consent: datetime, withdrawn: bool) -> None:
        pid = len(rows["preferences"]) + 1
        rows["preferences"].append(
            {
                "id": pid,
                "email": email,
                "first_name": first_name,
                "mobile": mobile,
                "email_opt_in": not withdrawn,
                "sms_opt_in": mobile is not None and not withdrawn,
                "post_opt_in": rng.random() < 0.3,
                "consent_given_at": consent,
                "consent_source": rng.choice(["web sign-up", "shop", "checkout tick-box"]),
                "consent_withdrawn_at": consent + timedelta(days=200) if withdrawn else None,
                "updated_at": consent + timedelta(days=200 if withdrawn else 1),
            }
        )
        for campaign in CAMPAIGNS[: rng.randrange(1, len(CAMPAIGNS) + 1)]:
            sent = _at(rng, consent, 300)
            for step, event in enumerate(["sent", "opened", "clicked"][: rng.randrange(1, 4)]):
                rows["campaign_events"].append(
                    {
                        "id": len(rows["campaign_events"]) + 1,
                        "preference_id": pid,
                        "campaign": campaign,
                        "event": event,
                        "at": sent + timedelta(hours=step * rng.randrange(1, 30)),
                    }
                )

    for customer in crm_customers:
        cid = customer["id"]
        first_name = customer["full_name"].split()[0]
        if cid == 1:  # stored in another case and with stray spaces: matching must normalise
            add(" MARGARET.ELLIS@EXAMPLE.COM ", first_name, "07911123456", customer["created_at"], False)
        elif cid == 2:
            add(customer["email"], first_name, None, customer["created_at"], True)
        elif cid > 3 and rng.random() < 0.6:
            mobile = customer["phone"] if rng.random() < 0.5 else None
            add(
                customer["email"].lower(),
                first_name,
                mobile,
                _at(rng, customer["created_at"], 300),
                rng.random() < 0.15,
            )
    add(SUBSCRIBER["email"], "Aisha", SUBSCRIBER["phone"], EPOCH + timedelta(days=700), False)
    return rows


@dataclass(frozen=True)
class ImportReport:
    """What an import of marketing contacts did: counts only."""

    added: int
    refused: int  # erased people: never added again
    limited: int  # added with marketing off or sale/sharing opted out, as they asked


def import_marketing_contacts(
    marketing_url: str,
    contacts: list[dict[str, Any]],
    suppression: SuppressionList,
    at: datetime | None = None,
) -> ImportReport:
    """The demo's import path (a partner's sign-up list, an old CSV): every contact is checked
    against the suppression list first (``dsar.suppression.SuppressionList``). A person who was
    erased is not added back; one who objected or opted out is added with marketing off or
    sale and sharing opted out. ``contacts``: ``{"email", "first_name", "mobile"}`` each."""
    from dsar.suppression import SuppressionReason

    now = at or datetime.now()
    added = refused = limited = 0
    engine = create_engine(database_url(marketing_url))
    try:
        with engine.begin() as conn:
            next_id = (conn.execute(select(func.max(preferences.c.id))).scalar() or 0) + 1
            for contact in contacts:
                match = suppression.check(
                    {"email": contact.get("email") or "", "phone": contact.get("mobile") or ""}
                )
                if not match.may_be_added:
                    refused += 1
                    continue
                objected = SuppressionReason.OBJECTED.value in match.reasons
                opted_out = SuppressionReason.OPTED_OUT.value in match.reasons
                limited += objected or opted_out
                conn.execute(
                    preferences.insert().values(
                        id=next_id,
                        email=contact["email"],
                        first_name=contact.get("first_name"),
                        mobile=contact.get("mobile"),
                        email_opt_in=not objected,
                        sms_opt_in=bool(contact.get("mobile")) and not objected,
                        post_opt_in=False,
                        consent_given_at=now,
                        consent_source="partner import",
                        updated_at=now,
                        marketing_allowed=not objected,
                        sale_sharing_opted_out=opted_out,
                    )
                )
                next_id += 1
                added += 1
    finally:
        engine.dispose()
    return ImportReport(added=added, refused=refused, limited=limited)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Seed the Northwind demo databases as SQLite files.")
    parser.add_argument("--var", type=Path, default=Path("var"), help="directory for the .db files")
    parser.add_argument("--people", type=int, default=200, help="customers to create")
    args = parser.parse_args(argv)
    args.var.mkdir(parents=True, exist_ok=True)
    crm = f"sqlite:///{(args.var / 'demo_crm.db').resolve()}"
    marketing = f"sqlite:///{(args.var / 'demo_marketing.db').resolve()}"
    seed_demo(crm, marketing, people=args.people)
    print(f"DSAR_DEMO_CRM_URL={crm}")
    print(f"DSAR_DEMO_MARKETING_URL={marketing}")


if __name__ == "__main__":
    main()
