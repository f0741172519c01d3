"""The data map compared with the database it describes: ``dsar systems check`` reads the live
schema (foreign keys, primary keys, column types and nullability, by SQLAlchemy inspection) and
says, before any case runs, where the map and the database disagree.

A map written from the documentation alone can look complete and still fail a case at
fulfilment: a foreign key the map does not declare refuses the deletion, a lookup written as a
child is deleted before the row that points at it, a ``hash`` field that holds a number cannot
be hashed. Each finding names the entity's place in the data map (file and line).

Errors are what would make a case fail or change the wrong data; warnings are what a person
should look at (a search that scans a whole table, a field that anonymising leaves as it is).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, MetaData, Table

from connectors.sql import (
    SqlConnector,
    _foreign_keys,
    _plan,
    _python_type,
    _Reference,
    _reflect,
    blank_row,
)
from dsar.datamap import EntityConfig, EntityErasure, FieldErasure, SystemConfig, identity_columns

#: ON DELETE actions under which deleting the referred row is not refused.
_FOLLOWS = frozenset({"CASCADE", "SET NULL", "SET DEFAULT"})


@dataclass(frozen=True)
class Finding:
    """One disagreement between the data map and the database."""

    severity: str  # "error" or "warning"
    where: str  # "rentals.yaml line 40" (the entity in the data map)
    message: str  # names of tables, columns and entities only, never a value

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


def schema_findings(system: SystemConfig) -> list[Finding]:
    """Compare ``system``'s entities with its database; errors first."""
    with SqlConnector(system)._connect() as conn:
        tables = {e.name: _reflect(system.name, conn, e, MetaData()) for e in system.entities.values()}
        references = _foreign_keys(conn, {e.schema for e in system.entities.values()})
        findings = [
            *_relations(system, references),
            *_deletions(system, references),
            *_keys(system, tables),
            *_fields(system, tables),
            *_types(system, tables),
            *_indexes(system, conn),
        ]
    return sorted(findings, key=lambda f: (f.severity != "error", f.where, f.message))


def _entity_of(system: SystemConfig) -> dict[tuple[str | None, str], EntityConfig]:
    return {(e.schema, e.table): e for e in system.entities.values()}


def _fk(ref: _Reference) -> str:
    return f"{ref.table}.{', '.join(ref.columns)} -> {ref.referred[1]}.{', '.join(ref.referred_columns)}"


def _points(ref: _Reference, holder: EntityConfig, column: str, target: EntityConfig, key: str) -> bool:
    """Whether ``ref`` is the foreign key ``holder.column -> target.key``."""
    return (
        (ref.schema, ref.table) == (holder.schema, holder.table)
        and ref.columns == (column,)
        and ref.referred == (target.schema, target.table)
        and ref.referred_columns == (key,)
    )


def _relations(system: SystemConfig, references: list[_Reference]) -> list[Finding]:
    """Declared relations against the live foreign keys: written the wrong way round, or a
    foreign key between two entities of the map that the map does not declare."""
    out: list[Finding] = []
    declared: set[_Reference] = set()
    for entity in system.entities.values():
        relation = entity.relation
        if relation is None:
            continue
        parent = system.entities[relation.parent]
        for ref in references:
            if relation.lookup:  # the owner holds the foreign key to this row
                right = _points(ref, parent, relation.parent_column, entity, relation.column)
                wrong = _points(ref, entity, relation.column, parent, relation.parent_column)
            else:  # this (child) row holds the foreign key to its parent
                right = _points(ref, entity, relation.column, parent, relation.parent_column)
                wrong = _points(ref, parent, relation.parent_column, entity, relation.column)
            if right:
                declared.add(ref)
            if wrong:
                declared.add(ref)
                child = f"{relation.child}.{relation.column}"
                parent_side = f"{relation.parent}.{relation.parent_column}"
                if relation.lookup:
                    fix = f"relation: {child} -> {parent_side}"
                    what = "a one-to-many relation (this row belongs to it)"
                else:
                    fix = f"lookup: {parent_side} -> {child}"
                    what = "a many-to-one lookup (its row points at this one, which others may share)"
                out.append(
                    Finding(
                        "error",
                        entity.origin,
                        f"'{entity.name}' is declared the wrong way round: the foreign key {_fk(ref)} makes "
                        f"it {what}; write '{fix}' instead",
                    )
                )
    mapped = _entity_of(system)
    for ref in references:
        holder, target = mapped.get((ref.schema, ref.table)), mapped.get(ref.referred)
        if ref in declared or holder is None or target is None or holder.reference:
            continue  # between reference data (a store's address): nothing of the person
        out.append(
            Finding(
                "warning",
                holder.origin,
                f"the foreign key {_fk(ref)} is not declared in the data map ('{holder.name}' and "
                f"'{target.name}' are both entities): rows reached only through it are not searched",
            )
        )
    return out


def _deletions(system: SystemConfig, references: list[_Reference]) -> list[Finding]:
    """Entities the map deletes from while a live foreign key from rows the plan does not
    delete (an undeclared table, a kept entity) refuses it."""
    out: list[Finding] = []
    mapped = _entity_of(system)
    for entity in system.entities.values():
        if entity.erasure.strategy is not EntityErasure.DELETE:
            continue
        if entity.relation is not None and entity.relation.lookup:
            continue  # a lookup row is deleted only when nothing else points at it
        for ref in references:
            if ref.referred != (entity.schema, entity.table) or ref.ondelete in _FOLLOWS:
                continue
            holder = mapped.get((ref.schema, ref.table))
            relation = holder.relation if holder is not None else None
            if (
                holder is not None
                and relation is not None
                and not relation.lookup
                and relation.parent == entity.name
            ):
                if holder.erasure.strategy is EntityErasure.DELETE:
                    continue  # its own child, deleted first
                if holder.name in entity.erasure.keep_if_has:
                    continue  # a row with kept children stays (anonymised)
            why = (
                f"'{ref.table}' is not in the data map"
                if holder is None
                else f"'{holder.name}' is {holder.erasure.strategy.value}"
            )
            out.append(
                Finding(
                    "error",
                    entity.origin,
                    f"erasure 'delete' of '{entity.name}' would be refused by the foreign key {_fk(ref)} "
                    f"({why}): declare '{ref.table}' as its child, or anonymise or keep '{entity.name}'",
                )
            )
    return out


def _keys(system: SystemConfig, tables: dict[str, Table]) -> list[Finding]:
    """Every entity's rows must be named one by one (erasure, rectification, exemptions); a
    person detached from a shared lookup row needs a foreign key that takes NULL, or a table
    that can take a fresh blank row for them to point at."""
    out: list[Finding] = []
    for entity in system.entities.values():
        relation = entity.relation
        if entity.shared == "detach" and relation is not None:
            owner = system.entities[relation.parent]
            if not tables[owner.name].c[relation.parent_column].nullable:
                fresh = blank_row(tables[entity.name], relation.column)
                if fresh.reason:
                    out.append(
                        Finding(
                            "warning",
                            entity.origin,
                            f"'shared: detach' cannot empty '{owner.table}.{relation.parent_column}' (it "
                            f"takes no NULL) nor point the person at a fresh blank row of '{entity.table}' "
                            f"({fresh.reason}): a shared row will be kept as it is",
                        )
                    )
        table = tables[entity.name]
        primary = tuple(c.name for c in table.primary_key.columns)
        if not entity.key and not primary:
            if entity.reference:
                continue
            out.append(
                Finding(
                    "error",
                    entity.origin,
                    f"'{entity.name}' has no 'key' and table '{entity.table}' no primary key: its "
                    "rows cannot be named to erase or correct them",
                )
            )
        elif entity.key and primary and set(entity.key) != set(primary) and not _unique(table, entity.key):
            out.append(
                Finding(
                    "warning",
                    entity.origin,
                    f"'{entity.name}' key ({', '.join(entity.key)}) is neither the primary key "
                    f"({', '.join(primary)}) nor unique: one key may name several rows",
                )
            )
    return out


def _unique(table: Table, columns: tuple[str, ...]) -> bool:
    wanted = set(columns)
    for constraint in table.constraints:
        names = {c.name for c in getattr(constraint, "columns", [])}
        if (
            names
            and names <= wanted
            and type(constraint).__name__ in ("UniqueConstraint", "PrimaryKeyConstraint")
        ):
            return True
    return any(index.unique and {c.name for c in index.columns} <= wanted for index in table.indexes)


def _fields(system: SystemConfig, tables: dict[str, Table]) -> list[Finding]:
    """Anonymising rules the column cannot take: a hash of a number (refused), a NULL where
    the column takes none (left as it is: nothing is erased)."""
    out: list[Finding] = []
    for entity in system.entities.values():
        if entity.erasure.strategy is not EntityErasure.ANONYMISE:
            continue
        table = tables[entity.name]
        joins = system.join_columns(entity.name)
        for name in entity.fields:
            column = table.c[name]
            rule = FieldErasure.KEEP if name in joins else entity.field_erasure(name)
            kind: Any = _python_type(column)
            if rule is FieldErasure.HASH and kind is not str:
                out.append(
                    Finding(
                        "error",
                        entity.origin,
                        f"'{entity.name}.{name}' is to be hashed but its column holds {column.type}, "
                        "not text",
                    )
                )
            elif (
                rule in (FieldErasure.NULL, FieldErasure.ANONYMISE)
                and kind is not str
                and not column.nullable
            ):
                out.append(
                    Finding(
                        "warning",
                        entity.origin,
                        f"'{entity.name}.{name}' is anonymised to nothing but the column takes no NULL "
                        f"({column.type}): it is left as it is; say 'erasure: keep' if that is meant",
                    )
                )
    return out


def _types(system: SystemConfig, tables: dict[str, Table]) -> list[Finding]:
    """Identity columns whose type does not fit their kind: a date of birth held as text is
    compared as text ('1980-01-02' is not '02/01/1980'); a customer number held as a number
    never matches one given with letters or leading zeros."""
    out: list[Finding] = []
    for entity in system.entities.values():
        table = tables[entity.name]
        for source, kind in entity.all_identity().items():
            if "+" in source:
                continue
            held: Any = _python_type(table.c[source])
            if kind.value == "date_of_birth" and held not in (date, datetime):
                out.append(
                    Finding(
                        "warning",
                        entity.origin,
                        f"'{entity.name}.{source}' is a date of birth held as {table.c[source].type}: it is "
                        "compared as written, so a date given in another format does not match",
                    )
                )
            if kind.value in ("email", "name", "postal_address", "postcode") and held is not str:
                out.append(
                    Finding(
                        "error",
                        entity.origin,
                        f"'{entity.name}.{source}' is matched as {kind.value} but holds "
                        f"{table.c[source].type}, not text",
                    )
                )
    return out


def _indexes(system: SystemConfig, conn: Connection) -> list[Finding]:
    """Identity columns the database has no usable index for: every search scans the table."""
    plan = _plan(system, conn)
    out: list[Finding] = []
    for index in (*plan.create, *plan.skipped):
        identity = [use for use in index.uses if use.endswith(")") and "(" in use]
        if not identity:
            continue
        entity = next(
            e
            for e in system.entities.values()
            if any(use.startswith(f"{e.name}.") for use in identity)
            and index.columns[-1] in {c for s in e.all_identity() for c in identity_columns(s)}
        )
        why = " (this database has no expression indexes)" if index in plan.skipped else ""
        out.append(
            Finding(
                "warning",
                entity.origin,
                f"no usable index for {', '.join(identity)}{why}: every search scans '{entity.table}' "
                "('dsar systems indexes' prints the statement)",
            )
        )
    return out


__all__ = ["Finding", "schema_findings"]
