"""Two normalised databases unlike the demo's shape, and their data maps, for issue 16's tests.

* **Rentals** (PostgreSQL): a film rental chain. Customers have first and last names and point
  (NOT NULL) at an address that holds the phone and a country code; addresses (keys from a
  sequence, the city optional) are shared by households, staff and stores; address -> city ->
  country are lookups; rentals point at inventory -> films (reference data); payments sit in
  a table partitioned by date (composite primary key ``payment_id, payment_date``) and point
  at rentals; interests are a link table (many-to-many, composite key) to categories.
* **Gym** (MariaDB): members with given, middle and family names, a household row shared by the
  family (a landline with a region code, the postcode), a contacts table of e-mail addresses
  (composite key), bookings as a link table to classes, invoices and their payments.

Seeded from a fixed seed (a few hundred rows each). Nothing here is a real person.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from faker import Faker
from sqlalchemy import create_engine, text

from connectors.sql import dispose_engines

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MARIADB_ADMIN = "mysql+pymysql://root:@127.0.0.1:3306/?charset=utf8mb4"


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """A new, empty, uniquely named database on ``backend`` ("postgresql" or "mariadb")."""
    name = f"dsar_test_norm_{uuid.uuid4().hex[:10]}"
    if backend == "postgresql":
        admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
        create, drop = f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    else:
        admin = create_engine(MARIADB_ADMIN, isolation_level="AUTOCOMMIT")
        create, drop = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4", f"DROP DATABASE IF EXISTS `{name}`"
        url = f"mysql://root:@127.0.0.1:3306/{name}?charset=utf8mb4"
    try:
        with admin.connect() as conn:
            conn.execute(text(create))
        yield url
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(drop))
        admin.dispose()


@dataclass
class Seeded:
    """What the tests need to know of the seeded data (the truth is always re-read in SQL)."""

    url: str
    #: person id -> the identifiers they would give (email, name, phone as they would write it,
    #: postcode, customer number)
    people: dict[int, dict[str, str]] = field(default_factory=dict)
    #: person id -> whether their address/household row is used by anyone else
    shared_home: dict[int, bool] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Rentals, PostgreSQL

RENTALS_DDL = """
CREATE TABLE countries (country_id integer PRIMARY KEY, name varchar(60) NOT NULL, iso_code char(2) NOT NULL);
CREATE TABLE cities (
  city_id integer PRIMARY KEY, name varchar(60) NOT NULL,
  country_id integer NOT NULL REFERENCES countries (country_id));
CREATE TABLE addresses (
  address_id serial PRIMARY KEY, line1 varchar(100) NOT NULL, district varchar(40),
  postal_code varchar(12), phone varchar(30), country_code char(2) NOT NULL,
  city_id integer REFERENCES cities (city_id));
CREATE TABLE stores (store_id integer PRIMARY KEY, name varchar(40) NOT NULL,
  address_id integer NOT NULL REFERENCES addresses (address_id));
CREATE TABLE staff (staff_id integer PRIMARY KEY, first_name varchar(40) NOT NULL,
  last_name varchar(40) NOT NULL, address_id integer NOT NULL REFERENCES addresses (address_id),
  store_id integer NOT NULL REFERENCES stores (store_id));
CREATE TABLE customers (
  customer_id integer PRIMARY KEY, store_id integer NOT NULL REFERENCES stores (store_id),
  first_name varchar(40) NOT NULL, last_name varchar(40) NOT NULL, email varchar(100),
  address_id integer NOT NULL REFERENCES addresses (address_id), active boolean NOT NULL,
  created_at timestamp NOT NULL);
CREATE INDEX customers_email ON customers (lower(trim(email)));
CREATE TABLE films (film_id integer PRIMARY KEY, title varchar(100) NOT NULL, release_year integer);
CREATE TABLE inventory (inventory_id integer PRIMARY KEY,
  film_id integer NOT NULL REFERENCES films (film_id),
  store_id integer NOT NULL REFERENCES stores (store_id));
CREATE TABLE rentals (
  rental_id integer PRIMARY KEY, rental_date timestamp NOT NULL,
  inventory_id integer NOT NULL REFERENCES inventory (inventory_id),
  customer_id integer NOT NULL REFERENCES customers (customer_id), return_date timestamp,
  staff_id integer NOT NULL REFERENCES staff (staff_id));
CREATE TABLE payments (
  payment_id integer NOT NULL, customer_id integer NOT NULL REFERENCES customers (customer_id),
  rental_id integer NOT NULL REFERENCES rentals (rental_id), amount numeric(6, 2) NOT NULL,
  payment_date timestamp NOT NULL, PRIMARY KEY (payment_id, payment_date)
) PARTITION BY RANGE (payment_date);
CREATE TABLE payments_2025 PARTITION OF payments FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE payments_2026 PARTITION OF payments FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE categories (category_id integer PRIMARY KEY, name varchar(40) NOT NULL);
CREATE TABLE customer_interests (
  customer_id integer NOT NULL REFERENCES customers (customer_id),
  category_id integer NOT NULL REFERENCES categories (category_id), since date NOT NULL,
  PRIMARY KEY (customer_id, category_id));
"""

_COUNTRIES = [
    (1, "United Kingdom", "GB"),
    (2, "United States", "US"),
    (3, "France", "FR"),
    (4, "Ireland", "IE"),
]
_NATIONAL = {
    "GB": "07700 9{:05d}",
    "US": "(212) 555-{:04d}",
    "FR": "06 12 {:02d} {:02d} {:02d}",
    "IE": "085 1{:06d}",
}


def _phone(rng: random.Random, country: str) -> str:
    """A national number (no country code) as people in ``country`` write it."""
    if country == "FR":
        return _NATIONAL["FR"].format(rng.randrange(100), rng.randrange(100), rng.randrange(100))
    limit = {"GB": 100000, "US": 10000, "IE": 1000000}[country]
    return _NATIONAL[country].format(rng.randrange(limit))


def seed_rentals(url: str, customers: int = 160) -> Seeded:
    """Build and fill the rentals database; the same seed gives the same rows every run."""
    from connectors.sql import database_url

    rng = random.Random(16)
    fake = Faker("en_GB")
    fake.seed_instance(16)
    engine = create_engine(database_url(url))
    seeded = Seeded(url)
    with engine.begin() as conn:
        for statement in RENTALS_DDL.split(";"):
            if statement.strip():
                conn.execute(text(statement))
        conn.execute(
            text("INSERT INTO countries VALUES (:i, :n, :c)"),
            [{"i": i, "n": n, "c": c} for i, n, c in _COUNTRIES],
        )
        cities: list[dict[str, Any]] = [{"i": i, "n": fake.city(), "c": 1 + (i % 4)} for i in range(1, 13)]
        conn.execute(text("INSERT INTO cities VALUES (:i, :n, :c)"), cities)
        addresses: list[dict[str, Any]] = []
        phones_used: set[str] = set()
        for i in range(1, 161):
            city = cities[i % 12]
            country = _COUNTRIES[city["c"] - 1][2]
            phone = _phone(rng, country)
            while phone in phones_used:
                phone = _phone(rng, country)
            phones_used.add(phone)
            addresses.append(
                {
                    "i": i,
                    "l": fake.street_address()[:100],
                    "d": fake.county()[:40],
                    "p": fake.postcode() if country == "GB" else f"{rng.randrange(10000, 99999)}",
                    "ph": phone,
                    "cc": country,
                    "c": city["i"],
                }
            )
        conn.execute(text("INSERT INTO addresses VALUES (:i, :l, :d, :p, :ph, :cc, :c)"), addresses)
        conn.execute(text("SELECT setval(pg_get_serial_sequence('addresses', 'address_id'), 160)"))
        # stores and staff live at addresses 1-8; customers 1-... share some of those and each other's
        conn.execute(text("INSERT INTO stores VALUES (1, 'High Street', 1), (2, 'Harbour Road', 2)"))
        staff: list[dict[str, Any]] = [
            {"i": i, "f": fake.first_name(), "l": fake.last_name(), "a": 2 + i, "s": 1 + i % 2}
            for i in range(1, 7)
        ]
        conn.execute(text("INSERT INTO staff VALUES (:i, :f, :l, :a, :s)"), staff)
        rows: list[dict[str, Any]] = []
        for i in range(1, customers + 1):
            # customers 1-30 share an address with the next (a household); 31-36 live with staff
            if i <= 30:
                address = 9 + (i - 1) // 2
            elif i <= 36:
                address = i - 28  # addresses 3-8: staff homes
            else:
                address = i - 36 + 24
            first, last = fake.first_name(), fake.last_name()
            email = f"{first}.{last}.{i}@example.net".lower()
            rows.append(
                {
                    "i": i,
                    "s": 1 + i % 2,
                    "f": first,
                    "l": last,
                    "e": email,
                    "a": address,
                    "act": True,
                    "c": datetime(2024, 1, 1) + timedelta(days=i),
                }
            )
            home = addresses[address - 1]
            seeded.people[i] = {
                "email": email,
                "name": f"{first} {last}",
                "phone": home["ph"],
                "postcode": home["p"],
                "customer_id": str(i),
            }
        conn.execute(text("INSERT INTO customers VALUES (:i, :s, :f, :l, :e, :a, :act, :c)"), rows)
        uses: dict[int, int] = {}
        for row in rows:
            uses[row["a"]] = uses.get(row["a"], 0) + 1
        for person in staff:
            uses[person["a"]] = uses.get(person["a"], 0) + 1
        for row in rows:
            seeded.shared_home[row["i"]] = uses[row["a"]] > 1 or row["a"] <= 2
        films = [{"i": i, "t": fake.catch_phrase()[:100], "y": 1970 + i} for i in range(1, 41)]
        conn.execute(text("INSERT INTO films VALUES (:i, :t, :y)"), films)
        conn.execute(
            text("INSERT INTO inventory VALUES (:i, :f, :s)"),
            [{"i": i, "f": 1 + i % 40, "s": 1 + i % 2} for i in range(1, 121)],
        )
        rentals, payments = [], []
        for i in range(1, 601):
            when = datetime(2025, 3, 1) + timedelta(hours=25 * i)
            customer = 1 + rng.randrange(customers)
            rentals.append(
                {
                    "i": i,
                    "d": when,
                    "inv": 1 + rng.randrange(120),
                    "c": customer,
                    "r": when + timedelta(days=3),
                    "s": 1 + i % 6,
                }
            )
            if i % 3:  # two rentals in three are paid
                payments.append(
                    {
                        "i": i,
                        "c": customer,
                        "r": i,
                        "a": Decimal("2.99") + i % 3,
                        "d": when + timedelta(days=2),
                    }
                )
        conn.execute(text("INSERT INTO rentals VALUES (:i, :d, :inv, :c, :r, :s)"), rentals)
        conn.execute(text("INSERT INTO payments VALUES (:i, :c, :r, :a, :d)"), payments)
        conn.execute(
            text("INSERT INTO categories VALUES (:i, :n)"),
            [
                {"i": i, "n": n}
                for i, n in enumerate(["Drama", "Comedy", "Horror", "Documentary", "Family"], 1)
            ],
        )
        interests = [
            {"c": c, "k": k, "s": date(2024, 6, 1) + timedelta(days=c)}
            for c in range(1, customers + 1)
            for k in rng.sample(range(1, 6), 2)
        ]
        conn.execute(text("INSERT INTO customer_interests VALUES (:c, :k, :s)"), interests)
    engine.dispose()
    return seeded


RENTALS_MAP = """\
version: 1
controller:
  name: Reel Rentals Ltd
  contact_email: privacy@reel.example.com
  phone_region: GB
systems:
  rentals:
    connector: sql
    url_env: {url_env}
    defaults: {{legal_basis: contract, retention: 6 years, purpose: Renting you films}}
    entities:
      customers:
        key: customer_id
        identity:
          email: email
          first_name + last_name: name
          customer_id: customer_id
        erasure: anonymise
        fields:
          customer_id: {{category: Identifiers}}
          store_id: {{category: Account}}
          first_name: {{category: Identity}}
          last_name: {{category: Identity}}
          email: {{category: Contact details}}
          address_id: {{category: Contact details}}
          active: {{category: Account, erasure: keep}}
          created_at: {{category: Account, erasure: keep}}
      addresses:
        lookup: customers.address_id -> addresses.address_id
        identity: {{phone: phone, postal_code: postcode}}
        phone_region_column: country_code
        erasure: anonymise
        fields:
          address_id: {{category: Contact details}}
          line1: {{category: Contact details}}
          district: {{category: Contact details}}
          postal_code: {{category: Contact details}}
          phone: {{category: Contact details}}
          country_code: {{category: Contact details, erasure: keep}}
          city_id: {{category: Contact details}}
      cities:
        lookup: addresses.city_id -> cities.city_id
        reference: true
        fields:
          city_id: {{category: Contact details}}
          name: {{category: Contact details}}
          country_id: {{category: Contact details}}
      countries:
        lookup: cities.country_id -> countries.country_id
        reference: true
        fields:
          country_id: {{category: Contact details}}
          name: {{category: Contact details}}
      rentals:
        key: rental_id
        relation: customers.customer_id -> rentals.customer_id
        erasure: {erasure}
        fields:
          rental_id: {{category: Rentals}}
          rental_date: {{category: Rentals}}
          inventory_id: {{category: Rentals}}
          customer_id: {{category: Identifiers}}
          return_date: {{category: Rentals}}
      inventory:
        lookup: rentals.inventory_id -> inventory.inventory_id
        reference: true
        fields:
          inventory_id: {{category: Rentals}}
          film_id: {{category: Rentals}}
      films:
        lookup: inventory.film_id -> films.film_id
        reference: true
        fields:
          film_id: {{category: Rentals}}
          title: {{category: Rentals}}
{payments}\
      interests:
        table: customer_interests
        key: [customer_id, category_id]
        relation: customers.customer_id -> interests.customer_id
        erasure: delete
        fields:
          customer_id: {{category: Identifiers}}
          category_id: {{category: Preferences}}
          since: {{category: Preferences}}
      categories:
        lookup: interests.category_id -> categories.category_id
        reference: true
        fields:
          category_id: {{category: Preferences}}
          name: {{category: Preferences}}
"""

RENTALS_PAYMENTS = """\
      payments:
        key: [payment_id, payment_date]
        relation: rentals.rental_id -> payments.rental_id
        erasure: {{strategy: keep, reason: Accounting records are kept 6 years}}
        fields:
          payment_id: {{category: Financial}}
          rental_id: {{category: Financial}}
          amount: {{category: Financial}}
          payment_date: {{category: Financial}}
"""


def rentals_map(url_env: str, *, payments: bool = True) -> str:
    """With payments kept, a rental that has one stays, anonymised (the payment points at it),
    and the others are deleted; without payments in the map, every rental is deleted and the
    undeclared foreign key refuses."""
    return RENTALS_MAP.format(
        url_env=url_env,
        payments=RENTALS_PAYMENTS.format() if payments else "",
        erasure="{strategy: delete, keep_if_has: [payments]}" if payments else "delete",
    )


# --------------------------------------------------------------------------------------------
# Gym, MariaDB

GYM_DDL = """
CREATE TABLE regions (region_code CHAR(2) PRIMARY KEY, name VARCHAR(40) NOT NULL) ENGINE=InnoDB;
CREATE TABLE households (
  household_id INT PRIMARY KEY, street VARCHAR(100) NOT NULL, postcode VARCHAR(12) NOT NULL,
  landline VARCHAR(30), region_code CHAR(2) NOT NULL,
  FOREIGN KEY (region_code) REFERENCES regions (region_code)) ENGINE=InnoDB;
CREATE TABLE members (
  member_id INT PRIMARY KEY, given_name VARCHAR(40) NOT NULL, middle_name VARCHAR(40),
  family_name VARCHAR(40) NOT NULL, date_of_birth DATE, household_id INT,
  joined_on DATE NOT NULL, INDEX members_family (family_name),
  FOREIGN KEY (household_id) REFERENCES households (household_id)) ENGINE=InnoDB;
CREATE TABLE trainers (
  trainer_id INT PRIMARY KEY, full_name VARCHAR(80) NOT NULL, household_id INT NOT NULL,
  FOREIGN KEY (household_id) REFERENCES households (household_id)) ENGINE=InnoDB;
CREATE TABLE member_emails (
  member_id INT NOT NULL, email VARCHAR(120) NOT NULL, verified TINYINT(1) NOT NULL,
  PRIMARY KEY (member_id, email), INDEX member_emails_email (email),
  FOREIGN KEY (member_id) REFERENCES members (member_id)) ENGINE=InnoDB;
CREATE TABLE classes (class_id INT PRIMARY KEY, title VARCHAR(60) NOT NULL,
  trainer_id INT NOT NULL, FOREIGN KEY (trainer_id) REFERENCES trainers (trainer_id)) ENGINE=InnoDB;
CREATE TABLE bookings (
  member_id INT NOT NULL, class_id INT NOT NULL, booked_at DATETIME NOT NULL,
  PRIMARY KEY (member_id, class_id),
  FOREIGN KEY (member_id) REFERENCES members (member_id),
  FOREIGN KEY (class_id) REFERENCES classes (class_id)) ENGINE=InnoDB;
CREATE TABLE invoices (
  invoice_id INT PRIMARY KEY, member_id INT NOT NULL, amount DECIMAL(7, 2) NOT NULL,
  issued_on DATE NOT NULL, FOREIGN KEY (member_id) REFERENCES members (member_id)) ENGINE=InnoDB;
CREATE TABLE invoice_payments (
  payment_id INT PRIMARY KEY, invoice_id INT NOT NULL, amount DECIMAL(7, 2) NOT NULL,
  paid_on DATE NOT NULL, FOREIGN KEY (invoice_id) REFERENCES invoices (invoice_id)) ENGINE=InnoDB;
"""

_REGIONS = [("GB", "Great Britain"), ("IE", "Ireland"), ("FR", "France")]


def seed_gym(url: str, members: int = 150) -> Seeded:
    from connectors.sql import database_url

    rng = random.Random(1616)
    fake = Faker("en_IE")
    fake.seed_instance(1616)
    engine = create_engine(database_url(url))
    seeded = Seeded(url)
    with engine.begin() as conn:
        for statement in GYM_DDL.split(";"):
            if statement.strip():
                conn.execute(text(statement))
        conn.execute(text("INSERT INTO regions VALUES (:c, :n)"), [{"c": c, "n": n} for c, n in _REGIONS])
        households: list[dict[str, Any]] = []
        used: set[str] = set()
        for i in range(1, 141):
            region = _REGIONS[i % 3][0]
            landline = _phone(rng, region)
            while landline in used:
                landline = _phone(rng, region)
            used.add(landline)
            households.append(
                {
                    "i": i,
                    "s": fake.street_address()[:100],
                    "p": f"D{rng.randrange(10, 99)} {rng.choice('ACEFHKNPRTVWXY')}{rng.randrange(100, 999)}",
                    "l": landline,
                    "r": region,
                }
            )
        conn.execute(text("INSERT INTO households VALUES (:i, :s, :p, :l, :r)"), households)
        rows: list[dict[str, Any]] = []
        uses: dict[int, int] = {}
        for i in range(1, members + 1):
            household = (i + 1) // 2 if i <= 40 else i - 20  # members 1-40: two per household
            given, family = fake.first_name(), fake.last_name()
            middle = fake.first_name() if i % 3 == 0 else None
            born = date(1960, 1, 1) + timedelta(days=97 * i)
            rows.append(
                {
                    "i": i,
                    "g": given,
                    "m": middle,
                    "f": family,
                    "b": born,
                    "h": household,
                    "j": date(2023, 1, 1),
                }
            )
            uses[household] = uses.get(household, 0) + 1
            home = households[household - 1]
            seeded.people[i] = {
                "email": f"{given}.{family}.{i}@example.ie".lower(),
                "name": " ".join(part for part in (given, middle, family) if part),
                "phone": home["l"],
                "postcode": home["p"],
                "date_of_birth": born.isoformat(),
                "customer_id": str(i),
            }
        conn.execute(text("INSERT INTO members VALUES (:i, :g, :m, :f, :b, :h, :j)"), rows)
        trainers: list[dict[str, Any]] = [{"i": i, "n": fake.name()[:80], "h": 60 + i} for i in range(1, 5)]
        conn.execute(text("INSERT INTO trainers VALUES (:i, :n, :h)"), trainers)
        for trainer in trainers:
            uses[trainer["h"]] = uses.get(trainer["h"], 0) + 1
        for row in rows:
            seeded.shared_home[row["i"]] = uses[row["h"]] > 1
        emails = []
        for row in rows:
            emails.append({"m": row["i"], "e": seeded.people[row["i"]]["email"], "v": 1})
            if row["i"] % 4 == 0:  # a second, older address
                emails.append({"m": row["i"], "e": f"old.{row['i']}@example.org", "v": 0})
        conn.execute(text("INSERT INTO member_emails VALUES (:m, :e, :v)"), emails)
        conn.execute(
            text("INSERT INTO classes VALUES (:i, :t, :tr)"),
            [
                {"i": i, "t": t, "tr": 1 + i % 4}
                for i, t in enumerate(["Spin", "Yoga", "Boxing", "Pilates"], 1)
            ],
        )
        bookings = [
            {"m": m, "c": c, "b": datetime(2026, 1, 5, 7) + timedelta(days=m)}
            for m in range(1, members + 1)
            for c in rng.sample(range(1, 5), 2)
        ]
        conn.execute(text("INSERT INTO bookings VALUES (:m, :c, :b)"), bookings)
        invoices, paid = [], []
        for i in range(1, 301):
            member = 1 + (i - 1) % members
            invoices.append(
                {"i": i, "m": member, "a": Decimal("39.00"), "d": date(2025, 1, 1) + timedelta(days=i)}
            )
            if i % 4 in (1, 2):  # each member has two invoices (i and i + 150): one paid
                paid.append(
                    {"i": i, "inv": i, "a": Decimal("39.00"), "d": date(2025, 1, 3) + timedelta(days=i)}
                )
        conn.execute(text("INSERT INTO invoices VALUES (:i, :m, :a, :d)"), invoices)
        conn.execute(text("INSERT INTO invoice_payments VALUES (:i, :inv, :a, :d)"), paid)
    engine.dispose()
    return seeded


GYM_MAP = """\
version: 1
controller:
  name: Liffey Fitness Ltd
  contact_email: privacy@liffey.example.ie
  phone_region: GB
systems:
  gym:
    connector: sql
    url_env: {url_env}
    phone_region: IE
    defaults: {{legal_basis: contract, retention: 2 years after membership ends, purpose: Your membership}}
    entities:
      members:
        key: member_id
        identity:
          given_name + middle_name + family_name: name
          date_of_birth: date_of_birth
          member_id: customer_id
        erasure: anonymise
        fields:
          member_id: {{category: Identifiers}}
          given_name: {{category: Identity}}
          middle_name: {{category: Identity}}
          family_name: {{category: Identity}}
          date_of_birth: {{category: Identity}}
          household_id: {{category: Contact details}}
          joined_on: {{category: Membership, erasure: keep}}
      emails:
        table: member_emails
        key: [member_id, email]
        relation: members.member_id -> emails.member_id
        identity: {{email: email}}
        erasure: delete
        fields:
          member_id: {{category: Identifiers}}
          email: {{category: Contact details}}
          verified: {{category: Contact details}}
      households:
        key: household_id
        lookup: members.household_id -> households.household_id
        identity: {{landline: phone, postcode: postcode}}
        phone_region_column: region_code
        erasure: delete
        shared: detach
        fields:
          household_id: {{category: Contact details}}
          street: {{category: Contact details}}
          postcode: {{category: Contact details}}
          landline: {{category: Contact details}}
          region_code: {{category: Contact details}}
      regions:
        lookup: households.region_code -> regions.region_code
        reference: true
        fields:
          region_code: {{category: Contact details}}
          name: {{category: Contact details}}
      bookings:
        key: [member_id, class_id]
        relation: members.member_id -> bookings.member_id
        erasure: delete
        fields:
          member_id: {{category: Identifiers}}
          class_id: {{category: Classes}}
          booked_at: {{category: Classes}}
      classes:
        key: class_id
        lookup: bookings.class_id -> classes.class_id
        reference: true
        fields:
          class_id: {{category: Classes}}
          title: {{category: Classes}}
      invoices:
        key: invoice_id
        relation: members.member_id -> invoices.member_id
        erasure: {erasure}
        fields:
          invoice_id: {{category: Financial}}
          member_id: {{category: Identifiers}}
          amount: {{category: Financial, erasure: keep}}
          issued_on: {{category: Financial, erasure: keep}}
{payments}"""

GYM_PAYMENTS = """\
      payments:
        table: invoice_payments
        key: payment_id
        relation: invoices.invoice_id -> payments.invoice_id
        erasure: {strategy: keep, reason: Accounting records are kept 6 years}
        fields:
          payment_id: {category: Financial}
          invoice_id: {category: Financial}
          amount: {category: Financial}
          paid_on: {category: Financial}
"""


def gym_map(url_env: str, *, payments: bool = True) -> str:
    return GYM_MAP.format(
        url_env=url_env,
        payments=GYM_PAYMENTS if payments else "",
        erasure="{strategy: delete, keep_if_has: [payments]}" if payments else "delete",
    )
