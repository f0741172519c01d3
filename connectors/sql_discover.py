"""``dsar systems discover URL``: a first draft of the data map for an existing SQL database,
for an engineer to edit, never to run as it is.

It reads the schema (tables, keys, foreign keys, by SQLAlchemy inspection) and a small sample
of each table's text columns (:data:`SAMPLE_ROWS` rows), and guesses:

* what each column is, from its name first (``first_name``, ``postal_code``, ``phone``) and else
  from what Presidio's pattern recognisers find in the sample (e-mail addresses, phone numbers,
  postcodes, IBANs, card numbers);
* which table holds the people (e-mail, names, date of birth; the most referenced), and how
  every other table reaches them: children that point at a person's row (``relation``), rows a
  person's row points at (``lookup``), and lookups with nothing personal in them (``reference``,
  never erased). Tables of other people (staff, trainers) reached by a lookup are left out;
* an erasure strategy per entity: the person's row and lookups anonymised, their children
  deleted, money records kept (with a reason to write), a parent of kept rows anonymised.

The draft holds names of tables and columns and counts only: a sampled value is looked at in
memory and never written, logged or returned. Purposes, legal bases and retention periods are
marked ``TODO`` for the engineer to write; ``dsar systems check`` then compares the edited map
with the database.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import Connection, MetaData, Table, create_engine, inspect, select, text

from connectors.sql import _foreign_keys, _python_type, _Reference, database_url

#: Rows sampled per table: enough to see what a column holds, few enough to read nothing more.
SAMPLE_ROWS = 20

#: column name (lower case, whole or ending) -> identifier kind
_NAME_KINDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(^|_)e?_?mail(_?address)?$"), "email"),
    (re.compile(r"(^|_)(phone|mobile|landline|telephone|tel|cell)(_?(number|no))?$"), "phone"),
    (re.compile(r"(^|_)(postcode|post_code|postal_code|zip|zip_code|zipcode)$"), "postcode"),
    (re.compile(r"(^|_)(date_of_birth|dob|birth_date|birthdate|born_on)$"), "date_of_birth"),
    (re.compile(r"^(full_name|name_full|customer_name|member_name)$"), "name"),
]
_GIVEN = re.compile(r"^(first_name|firstname|given_name|forename|first)$")
_MIDDLE = re.compile(r"^(middle_name|middlename|middle_names|second_name)$")
_FAMILY = re.compile(r"^(last_name|lastname|family_name|surname|last)$")
_REGION = re.compile(r"^(country_code|region_code|country_iso|iso_code|country)$")
_MONEY = re.compile(r"(amount|total|price|paid|balance)")
_ADDRESS = re.compile(r"(address|street|line1|line2|district|city|town|county)")

#: what Presidio finds in a sampled value -> identifier kind (None: personal, not an identifier)
_PRESIDIO_KINDS: dict[str, str | None] = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "UK_POSTCODE": "postcode",
    "IBAN_CODE": None,
    "CREDIT_CARD": None,
}


@dataclass
class _Column:
    name: str
    kind: str | None = None  # identifier kind
    category: str = "Other (edit: what it is)"
    text: bool = False
    nullable: bool = True


@dataclass
class _Table:
    name: str
    columns: dict[str, _Column]
    primary: tuple[str, ...]
    outgoing: list[_Reference] = field(default_factory=list)
    incoming: list[_Reference] = field(default_factory=list)

    def kinds(self) -> set[str]:
        return {c.kind for c in self.columns.values() if c.kind}

    def names(self) -> list[str]:
        """Name columns in order: given, middle, family (a name held in several columns)."""
        order = []
        for pattern in (_GIVEN, _MIDDLE, _FAMILY):
            order += [c for c in self.columns if pattern.match(c.lower())]
        return order

    def personal(self) -> bool:
        return bool(self.kinds() or self.names())


@dataclass
class Draft:
    """The drafted map (YAML text) and what it was drafted from (counts only)."""

    text: str
    person: str
    entities: list[str]
    left_out: list[str]


def discover(url: str, system: str = "main", url_env: str = "") -> Draft:
    """Draft a data map for the database at ``url`` (the URL itself never goes in the draft:
    ``url_env`` names the environment variable that will hold it)."""
    url_env = url_env or f"DSAR_{system.upper()}_URL"
    engine = create_engine(database_url(url), hide_parameters=True)
    try:
        with engine.connect() as conn:
            tables = _read_schema(conn)
            _sample(conn, tables)
    finally:
        engine.dispose()
    return _draft(tables, system, url_env)


def _read_schema(conn: Connection) -> dict[str, _Table]:
    inspector = inspect(conn)
    references = _foreign_keys(conn, {None})
    partitions: set[str] = set()
    if conn.dialect.name == "postgresql":
        partitions = set(conn.execute(text("SELECT relname FROM pg_class WHERE relispartition")).scalars())
    tables: dict[str, _Table] = {}
    for name in map(str, inspector.get_table_names()):
        if name in partitions or name.startswith("dsar_"):
            continue
        reflected = Table(name, MetaData(), autoload_with=conn, resolve_fks=False)
        columns = {
            str(c.name): _Column(str(c.name), text=_python_type(c) is str, nullable=bool(c.nullable))
            for c in reflected.columns
        }
        tables[name] = _Table(name, columns, tuple(str(c.name) for c in reflected.primary_key.columns))
    for ref in references:
        if ref.table in tables and ref.referred[1] in tables and len(ref.columns) == 1:
            tables[ref.table].outgoing.append(ref)
            tables[ref.referred[1]].incoming.append(ref)
    for table in tables.values():
        keys = set(table.primary) | {r.columns[0] for r in table.outgoing}
        for column in table.columns.values():
            lowered = column.name.lower()
            column.kind = next((kind for pattern, kind in _NAME_KINDS if pattern.search(lowered)), None)
            if column.kind in ("email", "phone", "postcode") or _ADDRESS.search(lowered):
                column.category = "Contact details"
            elif column.kind in ("name", "date_of_birth") or lowered in {n.lower() for n in table.names()}:
                column.category = "Identity"
            elif _MONEY.search(lowered):
                column.category = "Financial"
            elif column.name in keys:
                column.category = "Identifiers"
    return tables


def _sample(conn: Connection, tables: dict[str, _Table]) -> None:
    """Presidio's pattern recognisers over a few values of each undecided text column: a
    column most of whose sampled values are e-mail addresses holds e-mail addresses. Values
    stay in this function; only the verdict leaves it."""
    from dsar.redaction import build_analyzer

    logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)
    analyzer = build_analyzer(model=None)  # patterns only: no language model, nothing downloaded
    for table in tables.values():
        undecided = [
            c for c in table.columns.values() if c.text and c.kind is None and c.category.startswith("Other")
        ]
        if not undecided:
            continue
        reflected = Table(table.name, MetaData(), autoload_with=conn, resolve_fks=False)
        statement = select(*(reflected.c[c.name] for c in undecided)).limit(SAMPLE_ROWS)
        verdicts: dict[str, Counter[str]] = {c.name: Counter() for c in undecided}
        seen: Counter[str] = Counter()
        for row in conn.execute(statement):
            for column, value in zip(undecided, row, strict=True):
                if not isinstance(value, str) or not value.strip():
                    continue
                seen[column.name] += 1
                found = {r.entity_type for r in analyzer.analyze(value, language="en") if r.score >= 0.4}
                for entity in found & set(_PRESIDIO_KINDS):
                    verdicts[column.name][entity] += 1
        for column in undecided:
            if not seen[column.name]:
                continue
            entity, count = verdicts[column.name].most_common(1)[0] if verdicts[column.name] else ("", 0)
            if count * 2 >= seen[column.name]:
                column.kind = _PRESIDIO_KINDS[entity]
                column.category = "Financial" if entity in ("IBAN_CODE", "CREDIT_CARD") else "Contact details"


def _person_table(tables: dict[str, _Table]) -> _Table:
    def score(table: _Table) -> tuple[int, int]:
        kinds = table.kinds()
        points = (
            3 * ("email" in kinds) + 2 * bool(table.names() or "name" in kinds) + ("date_of_birth" in kinds)
        )
        return points, len(table.incoming)

    best = max(tables.values(), key=score)
    if score(best)[0] == 0:
        raise ValueError("no table looks like it holds people (no e-mail, name or date of birth column)")
    return best


def _draft(tables: dict[str, _Table], system: str, url_env: str) -> Draft:
    person = _person_table(tables)
    # entity name -> (table, how it is reached: None for the person, else (kind, reference))
    reached: dict[str, tuple[_Table, tuple[str, _Reference] | None]] = {person.name: (person, None)}
    owned = [person]  # the person's row and their children: their own children are theirs too
    lookups: list[_Table] = []
    left_out: list[str] = []
    while owned or lookups:
        if owned:
            table = owned.pop(0)
            for ref in sorted(table.incoming, key=lambda r: r.table):  # children
                child = tables[ref.table]
                if child.name not in reached and ref.referred_columns[0] in table.primary:
                    reached[child.name] = (child, ("relation", ref))
                    owned.append(child)
        else:
            table = lookups.pop(0)
        for ref in sorted(table.outgoing, key=lambda r: r.columns[0]):  # lookups
            target = tables[ref.referred[1]]
            if target.name in reached:
                continue
            if target.names() or "name" in target.kinds():
                left_out.append(target.name)  # other people (staff): not the person's data
                continue
            reached[target.name] = (target, ("lookup", ref))
            lookups.append(target)
    left_out = sorted(set(left_out) - set(reached))
    entities: dict[str, Any] = {}
    strategies: dict[str, Any] = {}
    for name, (table, how) in reached.items():
        entities[name] = _entity(table, how, tables)
        strategies[name] = entities[name].get("erasure")
    # a row that kept rows point at (their parent, or any other entity's row through a foreign
    # key) is anonymised, not deleted: the database would refuse the deletion
    for name, (table, _) in reached.items():
        if not isinstance(strategies[name], dict):
            continue
        for ref in table.outgoing:
            pointed = ref.referred[1]
            if pointed in entities and entities[pointed].get("erasure") == "delete":
                entities[pointed]["erasure"] = "anonymise"
    document = {
        "version": 1,
        "controller": {
            "name": "TODO: the controller's legal name",
            "contact_email": "privacy@example.com",
            "phone_region": "GB",
        },
        "systems": {
            system: {
                "connector": "sql",
                "url_env": url_env,
                "description": "TODO: what this database is for",
                "defaults": {
                    "purpose": "TODO: why it is processed",
                    "legal_basis": "contract",
                    "retention": "TODO: how long it is kept",
                },
                "entities": entities,
            }
        },
    }
    header = [
        f"# Drafted by 'dsar systems discover' from the schema and {SAMPLE_ROWS} sampled rows per table.",
        "# A draft: check every entity, write the TODOs, then run 'dsar systems check'.",
        f"# The people: table '{person.name}'.",
    ]
    if left_out:
        header.append(f"# Left out (other people's data reached by a lookup): {', '.join(left_out)}.")
    unmapped = sorted(set(tables) - set(reached) - set(left_out))
    if unmapped:
        header.append(f"# Not reached from '{person.name}': {', '.join(unmapped)}.")
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)
    return Draft("\n".join(header) + "\n" + body, person.name, list(reached), left_out)


def _entity(table: _Table, how: tuple[str, _Reference] | None, tables: dict[str, _Table]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if len(table.primary) == 1:
        out["key"] = table.primary[0]
    elif table.primary:
        out["key"] = list(table.primary)
    identity: dict[str, str] = {}
    names = table.names()
    if len(names) > 1:
        identity["+".join(names)] = "name"
    for column in table.columns.values():
        if column.kind and not (column.kind == "name" and len(names) > 1):
            identity[column.name] = column.kind
    region = next((c for c in table.columns if _REGION.match(c.lower())), None)
    reference = False
    if how is None:
        if table.primary and len(table.primary) == 1:
            identity.setdefault(table.primary[0], "customer_id")
        out["erasure"] = "anonymise"
    else:
        kind, ref = how
        parent_side = f"{ref.table}.{ref.columns[0]}"
        this_side = f"{ref.referred[1]}.{ref.referred_columns[0]}"
        if kind == "relation":
            out["relation"] = f"{this_side} -> {parent_side}"
            money = any(c.category == "Financial" for c in table.columns.values())
            out["erasure"] = (
                {"strategy": "keep", "reason": "TODO: the duty that keeps it (e.g. accounting records)"}
                if money
                else "delete"
            )
        else:
            out["lookup"] = f"{parent_side} -> {this_side}"
            reference = not table.personal()
            if reference:
                out["reference"] = True
            else:
                out["erasure"] = "anonymise"
    if identity and not reference:
        out["identity"] = identity
    if region and "phone" in table.kinds():
        out["phone_region_column"] = region
    fields: dict[str, Any] = {}
    joins = set(table.primary) | {r.columns[0] for r in table.outgoing}
    for column in table.columns.values():
        spec: dict[str, Any] = {"category": column.category}
        if (
            out.get("erasure") == "anonymise"
            and column.name not in joins
            and not column.text
            and not column.nullable
        ):
            spec["erasure"] = "keep"  # a number or date that takes no NULL cannot be blanked
        fields[column.name] = spec
    out["fields"] = fields
    return out


__all__ = ["SAMPLE_ROWS", "Draft", "discover"]
