"""The data map: where an organisation holds personal data and what each field is.

An organisation describes its systems once in ``dsar.yaml``; search, export, the Art. 15 report
and (later) erasure are all driven by it. The file is validated once, here, at the edge: every
problem is a :class:`DataMapError` that names the file, the line and what is wrong, so that the
person editing the YAML can fix it without reading a traceback. Inner code (connectors,
activities) receives frozen dataclasses and trusts them.

Shape (``demo/dsar.yaml`` is a complete example)::

    version: 1
    controller:
      name: Northwind Post & Mobile Ltd
      contact_email: privacy@northwind.example.com
      dpo_email: dpo@northwind.example.com
      phone_region: GB                 # default region for national phone numbers
      regimes: [UK_GDPR]
      calendars: {UK_GDPR: GB-EAW}
      automated_decisions:             # Art. 15(1)(h), told to people in the systems named
        - {what: ..., logic: ..., significance: ..., systems: [crm]}
      transfers:                       # Art. 15(2): to whom, where, under which safeguard
        - {recipient: ..., country: United States, safeguard: UK IDTA, systems: [crm]}
    systems:
      crm:
        connector: sql
        url_env: DSAR_DEMO_CRM_URL     # the URL (a secret) lives in the environment only
        description: Customer accounts, orders and support
        defaults: {legal_basis: contract, retention: 6 years after the account closes}
        entities:
          customers:
            table: customers
            key: id                    # default: "id"
            identity: {email: email, phone: phone}   # column: identifier kind
            fields:
              id: {category: Identifiers, purpose: Account management}
              email: {category: Contact details, purpose: Account management, provided: true}
          orders:
            relation: customers.id -> orders.customer_id   # parent.column -> this.column
            erasure: {strategy: delete, keep_if_has: [payments]}   # a paid order stays
            fields: ...
          addresses:                   # many-to-one, possibly shared with others
            lookup: customers.address_id -> addresses.id   # owner.foreign_key -> this.key
            identity: {phone: phone}   # on a related row: counts for the customer
            phone_region_column: country_code
            shared: keep               # or detach: empty the customer's address_id (or a blank row)
          countries:
            lookup: addresses.country_code -> countries.code
            reference: true            # nobody's data: never erased, shown as joined values

Unknown keys are errors (a typo must not silently drop a field from a subject's report), so new
keys are added here deliberately, each in its ``_*_KEYS`` set and its dataclass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from graphlib import TopologicalSorter
from pathlib import Path
from typing import NoReturn

import phonenumbers
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dsar.calendars import calendar_names
from dsar.exemptions import ExemptionRule, parse_rules
from dsar.model import IdentifierKind, Regime, RequestType
from dsar.wording import words

#: Connector types this version knows; each has a class in ``connectors/`` ("manual" is a task
#: for a person: the workflow waits for their answer, see ``workflows/request.py``).
CONNECTOR_TYPES = frozenset({"sql", "s3", "manual"})

#: What an S3 record (one object, or one version of it) carries; S3 entities declare these.
S3_RECORD_FIELDS = frozenset(
    {"key", "version_id", "last_modified", "size", "content_type", "metadata", "tags", "content"}
)
#: How an S3 object's contents are read when searched and collected.
S3_FORMATS = frozenset({"json", "jsonl", "csv", "text", "binary"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RELATION = re.compile(r"^\s*([^\s.]+)\.([^\s.]+)\s*->\s*([^\s.]+)\.([^\s.]+)\s*$")

_TOP_KEYS = frozenset({"version", "controller", "systems", "verification", "exemptions"})
_VERIFICATION_KEYS = frozenset(
    {
        "automatic",
        "points",
        "sensitive_points",
        "declaration",
        "confirm_erasure",
        "agents",
        "max_attempts",
        "lockout_minutes",
        "link_valid_hours",
    }
)
_AGENT_KEYS = frozenset({"subject_verifies", "subject_confirms"})
_CONTROLLER_KEYS = frozenset(
    {
        "name",
        "contact_email",
        "dpo_email",
        "phone_region",
        "regimes",
        "calendars",
        "automated_decisions",
        "transfers",
    }
)
#: one automated decision (Art. 15(1)(h), Art. 22) and one transfer abroad (Art. 15(2), Art. 46)
_DECISION_REQUIRED = ("what", "logic", "significance")
_TRANSFER_REQUIRED = ("recipient", "country", "safeguard")
_DECISION_KEYS = frozenset({*_DECISION_REQUIRED, "systems"})
_TRANSFER_KEYS = frozenset({*_TRANSFER_REQUIRED, "systems"})
_COMMON_SYSTEM_KEYS = frozenset({"connector", "label", "description", "defaults", "entities"})
#: Keys each connector type takes besides the common ones.
_SYSTEM_KEYS: dict[str, frozenset[str]] = {
    "sql": frozenset({"url_env", "max_concurrent", "phone_region"}),
    "s3": frozenset({"bucket", "endpoint_env", "region", "max_concurrent"}),
    "manual": frozenset({"owner", "instructions", "remind_every_days", "escalate_after_days", "identifiers"}),
}
_ENTITY_KEYS: dict[str, frozenset[str]] = {
    "sql": frozenset(
        {
            "table",
            "schema",
            "key",
            "identity",
            "relation",
            "lookup",
            "reference",
            "phone_region_column",
            "shared",
            "label",
            "description",
            "defaults",
            "fields",
            "erasure",
            "restriction",
            "objection",
            "opt_out",
            "limit_use",
            "transaction",
            "sensitive",
        }
    ),
    "s3": frozenset(
        {"prefix", "format", "identity", "label", "description", "defaults", "fields", "erasure", "sensitive"}
    ),
    "manual": frozenset({"label", "description", "defaults", "fields", "sensitive"}),
}
_FIELD_KEYS = frozenset(
    {
        "category",
        "purpose",
        "legal_basis",
        "retention",
        "description",
        "recipients",
        "source",
        "provided",
        "erasure",
    }
)
_ERASURE_KEYS = frozenset({"strategy", "reason", "keep_if_has"})
#: a marker (restriction, objection, opt_out, limit_use): the column set, and the value it gets
_RESTRICTION_KEYS = frozenset({"column", "value"})
#: sql: the columns of a purchase, order or payment a person can quote to prove who they are
_TRANSACTION_KEYS = frozenset({"reference", "amount", "date"})
_FIELD_REQUIRED = ("category", "purpose", "legal_basis", "retention")


class DataMapError(ValueError):
    """The data map cannot be used as written. The message says where and why."""


class LegalBasis(StrEnum):
    """The lawful bases of UK/EU GDPR Art. 6(1); the Art. 15 report names one per field."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


@dataclass(frozen=True)
class AutomatedDecision:
    """A decision made about people solely by automated means, profiling included (Art. 22):
    the access report tells the person of it with "meaningful information about the logic
    involved, as well as the significance and the envisaged consequences" (Art. 15(1)(h))."""

    what: str
    logic: str
    significance: str
    #: the systems whose data it draws on; empty: it concerns everyone the controller holds
    systems: tuple[str, ...] = ()

    def concerns(self, systems: Iterable[str]) -> bool:
        """Whether it concerns a person whose data was found in ``systems``."""
        return not self.systems or not set(self.systems).isdisjoint(systems)


@dataclass(frozen=True)
class Transfer:
    """Personal data sent to a third country or an international organisation: the person is
    told of "the appropriate safeguards pursuant to Article 46" (Art. 15(2))."""

    recipient: str
    country: str  # the third country, or the international organisation
    safeguard: str  # e.g. "UK International Data Transfer Addendum to the EU SCCs"
    #: the systems whose data is sent; empty: it concerns everyone the controller holds
    systems: tuple[str, ...] = ()

    def concerns(self, systems: Iterable[str]) -> bool:
        """Whether it concerns a person whose data was found in ``systems``."""
        return not self.systems or not set(self.systems).isdisjoint(systems)


@dataclass(frozen=True)
class Controller:
    name: str
    contact_email: str
    dpo_email: str
    calendars: dict[str, str]  # regime -> calendar name, overriding the regime's default
    #: region used to read phone numbers written without a country code (ISO 3166 alpha-2)
    phone_region: str = "GB"
    regimes: tuple[Regime, ...] = ()
    automated_decisions: tuple[AutomatedDecision, ...] = ()
    transfers: tuple[Transfer, ...] = ()


#: Why reference data (reached by a lookup, marked ``reference``) stays when a person is erased.
REFERENCE_REASON = "Reference data shared by everyone (not about you): nothing of it is yours to erase"


class EntityErasure(StrEnum):
    """What erasing the subject does to an entity's rows (or objects)."""

    DELETE = "delete"  # remove the rows; S3: the objects and every version of them
    ANONYMISE = "anonymise"  # keep the rows, apply each field's FieldErasure
    KEEP = "keep"  # keep as they are, for the stated reason (a retention duty)


class FieldErasure(StrEnum):
    """What anonymising a row does to one field."""

    NULL = "null"  # set to NULL
    HASH = "hash"  # replace by a keyed hash: rows still join and count, nobody is named
    ANONYMISE = "anonymise"  # replace by a fixed placeholder ("erased")
    KEEP = "keep"  # leave as it is (an amount kept for the accounts, a join key)


class Marker(StrEnum):
    """A flag that fulfilment sets on the subject's rows, as the data map says per entity: the
    right each one carries out, and the data map key that names its column and value."""

    RESTRICTION = "restriction"  # Art. 18: stored, not otherwise used
    OBJECTION = "objection"  # Art. 21: no more direct marketing (or processing on that basis)
    OPT_OUT = "opt_out"  # CCPA s.1798.120 and the US state laws: no sale or sharing
    LIMIT_USE = "limit_use"  # CCPA s.1798.121: sensitive data used only as strictly necessary


@dataclass(frozen=True)
class ErasureRule:
    """An entity's erasure strategy; ``reason`` says why when something is kept."""

    strategy: EntityErasure = EntityErasure.DELETE
    reason: str = ""
    #: sql, a condition across a relation: a row of this entity that has a row in one of these
    #: child entities (kept by the map: a payment) stays, anonymised, instead of being deleted
    #: ("keep a rental that was paid for"); the rows without one are deleted
    keep_if_has: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldConfig:
    """What one column is, as the Art. 15 report tells the person (Art. 15(1)(a)-(d), (g))."""

    category: str
    purpose: str
    legal_basis: LegalBasis
    retention: str
    description: str = ""
    recipients: tuple[str, ...] = ()
    source: str = ""
    #: data the person provided (GDPR Art. 20(1)), observed data included: it goes in a
    #: portability copy. None: not declared, read from ``source`` (empty or naming the person)
    provided: bool | None = None
    #: for an entity anonymised on erasure: what happens to this field (None: its default,
    #: ``keep`` for key and relation columns, ``null`` for everything else)
    erasure: FieldErasure | None = None


@dataclass(frozen=True)
class Relation:
    """How an entity's rows are reached from the person, with the direction explicit.

    ``relation: parent.parent_column -> child.column`` (one-to-many): a child row (an order)
    belongs to whoever owns its parent; erasing goes children first.
    ``lookup: owner.fk -> this.key`` (many-to-one): the owner's row points at this row (an
    address, a city); the row may be shared with others, so it is changed only after its
    owners and only when it is theirs alone. A many-to-many link table is a child of the
    person with a lookup from the link to the other side."""

    parent: str
    parent_column: str
    child: str
    column: str
    #: many-to-one: ``parent`` holds the foreign key, this entity the referenced key
    lookup: bool = False

    def __str__(self) -> str:
        return f"{self.parent}.{self.parent_column} -> {self.child}.{self.column}"


def identity_columns(source: str) -> tuple[str, ...]:
    """The columns of an identity source: ``email``, or ``first_name+last_name`` for a name
    held in several columns (joined with single spaces, empty parts left out)."""
    return tuple(part.strip() for part in source.split("+"))


@dataclass(frozen=True)
class EntityConfig:
    """A table (sql), a set of objects under a key prefix (s3), or what a manual system holds.

    ``identity`` maps where an identifier sits to its kind: a column for sql; for s3
    ``metadata.<name>`` (user metadata), ``tag.<name>`` (object tags), ``content.<field>``
    (a field of a JSON/JSONL/CSV object) or ``content`` (anywhere in a text object)."""

    name: str
    table: str
    #: column -> identifier kind: how the subject is found directly in this table
    identity: dict[str, IdentifierKind]
    relation: Relation | None
    fields: dict[str, FieldConfig]
    #: columns that identify one row: the person keys of ``Connector.locate`` are built from them
    key: tuple[str, ...] = ()
    schema: str | None = None
    description: str = ""
    #: what the person reads ("Orders", "Fraud prevention markers"); defaults to the name in words
    label: str = ""
    erasure: ErasureRule = ErasureRule()
    #: sql: (column, value) that marks a row as restricted (Art. 18); s3 objects are tagged
    restriction: tuple[str, str] | None = None
    #: sql: (column, value) set when the person objects (Art. 21), opts out of sale or sharing,
    #: or limits the use of sensitive data (CCPA); see :class:`Marker`
    objection: tuple[str, str] | None = None
    opt_out: tuple[str, str] | None = None
    limit_use: tuple[str, str] | None = None
    #: sql: (reference, amount, date) columns of a transaction row (an order, a payment): a
    #: person's recent transactions are an identifier they can quote (last_transaction)
    transaction: tuple[str, str, str] | None = None
    #: s3: the key prefix, a template whose ``{kind}`` placeholders are identifier kinds
    #: (``recordings/{customer_id}/``), and how object contents are read
    prefix: str = ""
    format: str = "binary"
    #: data whose disclosure, deletion or correction by an impostor would do serious harm
    #: (health, finances, photographs, precise location): a person registered in a system
    #: holding it is verified to the higher standard (``VerificationPolicy.points_sensitive``)
    sensitive: bool = False
    #: sql: identifiers held on this related row (an address's phone, a contacts table): a
    #: match counts for the person its relation chain leads to, never as a person of its own
    related_identity: dict[str, IdentifierKind] = field(default_factory=dict)
    #: sql: reference data (cities, countries, films) reached by a lookup: nobody's personal
    #: data, never erased; the person's record shows it as the joined value
    reference: bool = False
    #: sql: a column of this row holding the ISO 3166 region of its phone numbers (a customer's
    #: country), for numbers written without a country code
    phone_region_column: str = ""
    #: sql, a lookup: what erasing does to a row of it that others use too (a shared address):
    #: "keep" it as it is, or "detach" the person from it (their row's foreign key emptied,
    #: or where the column takes no NULL pointed at a fresh blank row: ``connectors.sql.
    #: blank_row``); a row that is theirs alone follows ``erasure``
    shared: str = "keep"
    #: "demo/dsar.yaml line 42", for later errors about this entity (a missing table, ...)
    origin: str = field(default="", compare=False, repr=False)

    def all_identity(self) -> dict[str, IdentifierKind]:
        """Every identity source of this entity: its own (a person entity) or related ones."""
        return {**self.identity, **self.related_identity}

    def placeholders(self) -> list[str]:
        """The identifier kinds an s3 prefix template needs, in order."""
        return _PLACEHOLDER.findall(self.prefix)

    def marker(self, kind: Marker) -> tuple[str, str] | None:
        """The (column, value) that carries out ``kind`` on this entity's rows, if any."""
        return {
            Marker.RESTRICTION: self.restriction,
            Marker.OBJECTION: self.objection,
            Marker.OPT_OUT: self.opt_out,
            Marker.LIMIT_USE: self.limit_use,
        }[kind]

    def field_erasure(self, column: str) -> FieldErasure:
        """What anonymising does to ``column``: its own rule, else keep keys and join columns
        (rows must still hang together), else NULL."""
        configured = self.fields[column].erasure
        if configured is not None:
            return configured
        if column in self.key or (self.relation is not None and column == self.relation.column):
            return FieldErasure.KEEP
        return FieldErasure.NULL


@dataclass(frozen=True)
class ManualTask:
    """A system searched by a person: who is asked, what to do, and how they are chased."""

    owner: str  # the email address of the person or team who searches it
    instructions: str
    remind_every_days: int = 3
    escalate_after_days: int = 7
    #: what the owner is shown of the person, and nothing more (data minimisation): the kinds
    #: they need to search this system (a name for CCTV, an account number for an archive)
    identifiers: tuple[IdentifierKind, ...] = (IdentifierKind.NAME,)


@dataclass(frozen=True)
class S3Bucket:
    bucket: str
    #: environment variable holding the endpoint URL (any S3-compatible store); empty: AWS.
    #: Credentials come from boto3's usual chain (environment, profile, role), never the file.
    endpoint_env: str = ""
    region: str = ""


@dataclass(frozen=True)
class SystemConfig:
    name: str
    connector: str
    url_env: str
    description: str
    entities: dict[str, EntityConfig]
    #: what the person reads ("Customer database"); defaults to the name in words
    label: str = ""
    #: the controller's phone region, copied here so a connector needs only its system
    phone_region: str = "GB"
    #: searches of this system one worker process runs at once (its task queue's cap)
    max_concurrent: int = 4
    bucket: S3Bucket | None = None  # connector "s3"
    manual: ManualTask | None = None  # connector "manual"
    origin: str = field(default="", compare=False, repr=False)

    @property
    def task_queue_suffix(self) -> str:
        """Searches of this system run on their own task queue, ``<queue>-system-<name>``."""
        return f"system-{self.name}"

    def needs(self) -> set[str]:
        """Identifier kinds this system's s3 key templates need (the search fills them from
        what other systems found when the person did not give them)."""
        return {kind for entity in self.entities.values() for kind in entity.placeholders()}

    def url(self) -> str:
        """The connection URL, read from the environment when needed (never from the file)."""
        value = os.environ.get(self.url_env, "").strip()
        if not value:
            raise DataMapError(
                f"{self.origin}: systems.{self.name}.url_env: environment variable "
                f"{self.url_env} is not set (it must hold the connection URL of '{self.name}')"
            )
        return value

    def join_columns(self, name: str) -> set[str]:
        """The columns an entity's rows hang together by: its key, its relation column, and
        the columns its children join on. Changes never touch them."""
        entity = self.entities[name]
        columns = set(entity.key)
        if entity.relation is not None:
            columns.add(entity.relation.column)
        for other in self.entities.values():
            if other.relation is not None and other.relation.parent == name:
                columns.add(other.relation.parent_column)
        return columns

    def change_order(self) -> list[EntityConfig]:
        """All entities in the order changes run so foreign keys stay valid: a row that points
        at another changes first (a child before its parent, an owner before its lookup)."""
        sorter: TopologicalSorter[str] = TopologicalSorter()
        for entity in self.entities.values():
            sorter.add(entity.name)
            relation = entity.relation
            if relation is None:
                continue
            if relation.lookup:  # the owner points at this row: the owner goes first
                sorter.add(entity.name, relation.parent)
            else:  # this row points at its parent: it goes first
                sorter.add(relation.parent, entity.name)
        return [self.entities[name] for name in sorter.static_order()]

    def identity_entities(self) -> list[EntityConfig]:
        """Entities in which the subject can be found directly (locate searches these)."""
        return [e for e in self.entities.values() if e.identity]

    def ordered_entities(self) -> list[EntityConfig]:
        """All entities, every parent before its children (declaration order otherwise)."""
        done: dict[str, EntityConfig] = {}

        def visit(entity: EntityConfig) -> None:
            if entity.name in done:
                return
            if entity.relation is not None:
                visit(self.entities[entity.relation.parent])
            done[entity.name] = entity

        for entity in self.entities.values():
            visit(entity)
        return list(done.values())


#: Points of identity needed per regime and request type (LEGAL.md §4): 2 is a "reasonable"
#: degree of certainty (two data points that agree), 3 "reasonably high" (three, and for CCPA a
#: signed declaration). Opt-outs and limits need none. ``default`` covers the other types.
DEFAULT_POINTS: dict[str, dict[str, int]] = {
    "CCPA": {"default": 2, "access": 3, "portability": 3},
    "default": {"default": 2},
}

#: Points needed instead when the person is registered in a system holding sensitive data
#: (an entity marked ``sensitive``): CCPA 11 CCR §7062 asks a "reasonably high" degree for
#: deleting or correcting sensitive information; the ICO and the EDPB expect stronger checks
#: for special-category and financial data whatever the request. Never lowers ``points``.
DEFAULT_SENSITIVE_POINTS: dict[str, dict[str, int]] = {
    "CCPA": {"erasure": 3, "rectification": 3},
    "default": {"default": 3},
}


@dataclass(frozen=True)
class VerificationPolicy:
    """How sure the controller must be of who is asking, per regime and request type."""

    #: verify by itself when the points suffice; False: an operator decides every case, with
    #: the match report in front of them (the person is still asked for more when short)
    automatic: bool = True
    #: regime (or "default") -> request type (or "default") -> points needed
    points: dict[str, dict[str, int]] = field(default_factory=lambda: dict(DEFAULT_POINTS))
    #: the same shape, for a person registered in a system holding sensitive data
    points_sensitive: dict[str, dict[str, int]] = field(
        default_factory=lambda: dict(DEFAULT_SENSITIVE_POINTS)
    )
    #: regimes where 3 points also need a signed declaration (CCPA 11 CCR §7062(b))
    declaration: tuple[str, ...] = ("CCPA",)
    #: an erasure requested online is confirmed by the person from the address on file
    confirm_erasure: bool = True
    #: an agent's request: the person verifies directly / confirms the agent directly (§7063)
    subject_verifies: bool = True
    subject_confirms: bool = True
    #: failed attempts (per case, and per identifier across cases) before a lockout
    max_attempts: int = 5
    lockout_minutes: int = 60
    #: how long a confirmation or form link stays valid
    link_valid_hours: int = 72

    def points_needed(self, regime: str, request_type: str, sensitive: bool = False) -> int:
        needed = _lookup(self.points, regime, request_type, 2)
        if sensitive and needed > 0:  # a request needing no check (an opt-out) stays so
            needed = max(needed, _lookup(self.points_sensitive, regime, request_type, needed))
        return needed

    def needs_declaration(self, regime: str, request_type: str, sensitive: bool = False) -> bool:
        return regime in self.declaration and self.points_needed(regime, request_type, sensitive) >= 3


def _lookup(table: dict[str, dict[str, int]], regime: str, request_type: str, fallback: int) -> int:
    """regime's row (else the default row), then the type (else the row's default)."""
    row = table.get(regime) or table.get("default") or {}
    return row.get(request_type, row.get("default", table.get("default", {}).get("default", fallback)))


@dataclass(frozen=True)
class DataMap:
    controller: Controller
    systems: dict[str, SystemConfig]
    source: Path
    verification: VerificationPolicy = VerificationPolicy()
    #: where exemptions bind the data (dsar/exemptions.py): proposals a reviewer approves
    exemptions: tuple[ExemptionRule, ...] = ()

    @classmethod
    def load(cls, path: Path | str) -> DataMap:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DataMapError(f"{path}: cannot read the data map ({exc.strerror or exc})") from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, source: Path | str = Path("<string>")) -> DataMap:
        """Validate YAML text; ``source`` is only used to name the file in errors."""
        return _Loader(Path(source)).load(text)

    def system(self, name: str) -> SystemConfig:
        try:
            return self.systems[name]
        except KeyError:
            raise DataMapError(f"{self.source}: no system '{name}' in the data map") from None


# --------------------------------------------------------------------------------------------
# Validation. The YAML is composed into nodes (not constructed into dicts) so that every value
# keeps its line number for the error message.


class _Loader:
    def __init__(self, source: Path) -> None:
        self.source = source

    # -- helpers -----------------------------------------------------------------------------

    def where(self, node: Node) -> str:
        return f"{self.source} line {node.start_mark.line + 1}"

    def fail(self, node: Node, path: str, message: str) -> NoReturn:
        prefix = f"{path}: " if path else ""
        raise DataMapError(f"{self.where(node)}: {prefix}{message}")

    def mapping(
        self, node: Node, path: str, allowed: frozenset[str] | None = None
    ) -> dict[str, tuple[Node, Node]]:
        """Key -> (key node, value node), rejecting duplicate keys and, when ``allowed`` is
        given, unknown ones (``None``: the keys are names chosen by the author)."""
        if not isinstance(node, MappingNode):
            self.fail(node, path, f"expected a mapping, got {_kind(node)}")
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            if allowed is not None and key not in allowed:
                self.fail(
                    key_node, path, f"unknown key '{key}' (expected one of: {', '.join(sorted(allowed))})"
                )
            if key in out:
                self.fail(key_node, _join(path, key), "duplicate key")
            out[key] = (key_node, value_node)
        return out

    def key(self, node: Node, path: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag.endswith(":null"):
            self.fail(node, path, "keys must be plain names")
        return str(node.value)

    def text(self, node: Node, path: str, *, empty: bool = False) -> str:
        if not isinstance(node, ScalarNode):
            self.fail(node, path, f"expected a text value, got {_kind(node)}")
        value = "" if node.tag.endswith(":null") else str(node.value).strip()
        if not value and not empty:
            self.fail(node, path, "must not be empty")
        return value

    def name(self, node: Node, path: str, what: str) -> str:
        value = self.text(node, path)
        if not _NAME.match(value):
            self.fail(node, path, f"{what} '{value}' must be letters, digits, '_' or '-'")
        return value

    def texts(self, node: Node, path: str) -> tuple[str, ...]:
        """A list of texts; a single text is accepted as a list of one."""
        if isinstance(node, ScalarNode):
            value = self.text(node, path, empty=True)
            return (value,) if value else ()
        if not isinstance(node, SequenceNode):
            self.fail(node, path, f"expected a list, got {_kind(node)}")
        return tuple(self.text(item, path) for item in node.value)

    def required(
        self, items: dict[str, tuple[Node, Node]], key: str, node: Node, path: str
    ) -> tuple[Node, Node]:
        if key not in items:
            self.fail(node, path, f"missing required key '{key}'")
        return items[key]

    def choice(self, node: Node, path: str, convert: Callable[[str], object], options: list[str]) -> str:
        value = self.text(node, path)
        try:
            convert(value)
        except ValueError:
            self.fail(node, path, f"unknown value '{value}' (expected one of: {', '.join(options)})")
        return value

    # -- the document ------------------------------------------------------------------------

    def load(self, text: str) -> DataMap:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f" line {mark.line + 1}" if mark is not None else ""
            context = ""
            if exc.context and exc.context_mark is not None:
                context = f" ({exc.context} on line {exc.context_mark.line + 1})"
            raise DataMapError(f"{self.source}{line}: invalid YAML: {exc.problem or exc}{context}") from None
        except yaml.YAMLError as exc:
            raise DataMapError(f"{self.source}: invalid YAML: {exc}") from None
        if root is None:
            raise DataMapError(f"{self.source}: the data map is empty")
        top = self.mapping(root, "", _TOP_KEYS)
        if "version" in top:
            version_node = top["version"][1]
            if self.text(version_node, "version") != "1":
                self.fail(version_node, "version", "only version 1 is supported")
        controller_key, controller_node = self.required(top, "controller", root, "")
        _, systems_node = self.required(top, "systems", root, "")
        systems_items = self.mapping(systems_node, "systems")
        controller = self.controller(controller_key, controller_node, list(systems_items))
        if not systems_items:
            self.fail(systems_node, "systems", "declare at least one system")
        systems = {
            self.name(k, f"systems.{name}", "system name"): self.system(name, k, v, controller)
            for name, (k, v) in systems_items.items()
        }
        verification = VerificationPolicy()
        if "verification" in top:
            verification = self.verification(top["verification"][1])
        exemptions: tuple[ExemptionRule, ...] = ()
        if "exemptions" in top:
            exemptions = parse_rules(self, top["exemptions"][1], systems, controller)
        return DataMap(
            controller=controller,
            systems=systems,
            source=self.source,
            verification=verification,
            exemptions=exemptions,
        )

    def verification(self, node: Node) -> VerificationPolicy:
        path = "verification"
        items = self.mapping(node, path, _VERIFICATION_KEYS)
        points = self.points_table(items, "points", DEFAULT_POINTS)
        sensitive_points = self.points_table(items, "sensitive_points", DEFAULT_SENSITIVE_POINTS)
        declaration: tuple[str, ...] = ("CCPA",)
        if "declaration" in items:
            declaration = self.texts(items["declaration"][1], f"{path}.declaration")
        agents = {"subject_verifies": True, "subject_confirms": True}
        if "agents" in items:
            for key, (_, v) in self.mapping(items["agents"][1], f"{path}.agents", _AGENT_KEYS).items():
                agents[key] = self.flag(v, f"{path}.agents.{key}")
        return VerificationPolicy(
            automatic=self.flag(items["automatic"][1], f"{path}.automatic") if "automatic" in items else True,
            points=points,
            points_sensitive=sensitive_points,
            declaration=declaration,
            confirm_erasure=self.flag(items["confirm_erasure"][1], f"{path}.confirm_erasure")
            if "confirm_erasure" in items
            else True,
            subject_verifies=agents["subject_verifies"],
            subject_confirms=agents["subject_confirms"],
            max_attempts=self.count(items, "max_attempts", path, 5),
            lockout_minutes=self.count(items, "lockout_minutes", path, 60),
            link_valid_hours=self.count(items, "link_valid_hours", path, 72),
        )

    def points_table(
        self, items: dict[str, tuple[Node, Node]], key: str, defaults: dict[str, dict[str, int]]
    ) -> dict[str, dict[str, int]]:
        """regime (or default) -> request type (or default) -> points, over the defaults."""
        path = f"verification.{key}"
        points = {k: dict(v) for k, v in defaults.items()}
        if key not in items:
            return points
        regimes = {r.value for r in Regime} | {"default"}
        types = {t.value for t in RequestType} | {"default"}
        for regime, (k, v) in self.mapping(items[key][1], path).items():
            if regime not in regimes:
                expected = ", ".join(sorted(regimes))
                self.fail(k, path, f"unknown regime '{regime}' (expected one of: {expected})")
            for request_type, (tk, tv) in self.mapping(v, f"{path}.{regime}").items():
                where = f"{path}.{regime}.{request_type}"
                if request_type not in types:
                    expected = ", ".join(sorted(types))
                    self.fail(tk, where, f"unknown request type (expected one of: {expected})")
                value = self.text(tv, where)
                if value not in ("0", "1", "2", "3", "4", "5"):
                    self.fail(tv, where, f"expected a number of points from 0 to 5, got '{value}'")
                points.setdefault(regime, {})[request_type] = int(value)
        return points

    def region(self, node: Node, path: str) -> str:
        """A phone region (ISO 3166 alpha-2), for numbers written without a country code."""
        region = self.text(node, path).upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            self.fail(node, path, f"unknown phone region '{region}'")
        return region

    def flag(self, node: Node, path: str) -> bool:
        value = self.text(node, path).lower()
        if value not in ("true", "false", "yes", "no"):
            self.fail(node, path, f"expected true or false, got '{value}'")
        return value in ("true", "yes")

    def controller(self, key_node: Node, node: Node, system_names: list[str]) -> Controller:
        path = "controller"
        items = self.mapping(node, path, _CONTROLLER_KEYS)
        name = self.text(self.required(items, "name", key_node, path)[1], f"{path}.name")
        contact = self.text(self.required(items, "contact_email", key_node, path)[1], f"{path}.contact_email")
        dpo = (
            self.text(items["dpo_email"][1], f"{path}.dpo_email", empty=True) if "dpo_email" in items else ""
        )
        region = "GB"
        if "phone_region" in items:
            region = self.region(items["phone_region"][1], f"{path}.phone_region")
        regimes: list[Regime] = []
        regime_options = [r.value for r in Regime]
        if "regimes" in items:
            regimes_node = items["regimes"][1]
            for value in self.texts(regimes_node, f"{path}.regimes"):
                if value not in regime_options:
                    self.fail(
                        regimes_node,
                        f"{path}.regimes",
                        f"unknown regime '{value}' (expected one of: {', '.join(regime_options)})",
                    )
                regimes.append(Regime(value))
        calendars: dict[str, str] = {}
        if "calendars" in items:
            for regime, (k, v) in self.mapping(items["calendars"][1], f"{path}.calendars").items():
                if regime not in regime_options:
                    self.fail(
                        k,
                        f"{path}.calendars",
                        f"unknown regime '{regime}' (expected one of: {', '.join(regime_options)})",
                    )
                calendar = self.text(v, f"{path}.calendars.{regime}")
                if calendar not in calendar_names():
                    self.fail(
                        v,
                        f"{path}.calendars.{regime}",
                        f"unknown calendar '{calendar}' (expected one of: {', '.join(calendar_names())})",
                    )
                calendars[regime] = calendar
        decisions = tuple(
            AutomatedDecision(
                what=values["what"],
                logic=values["logic"],
                significance=values["significance"],
                systems=systems,
            )
            for values, systems in self.declarations(
                items, "automated_decisions", _DECISION_REQUIRED, system_names
            )
        )
        transfers = tuple(
            Transfer(
                recipient=values["recipient"],
                country=values["country"],
                safeguard=values["safeguard"],
                systems=systems,
            )
            for values, systems in self.declarations(items, "transfers", _TRANSFER_REQUIRED, system_names)
        )
        return Controller(
            name=name,
            contact_email=contact,
            dpo_email=dpo,
            calendars=calendars,
            phone_region=region,
            regimes=tuple(regimes),
            automated_decisions=decisions,
            transfers=transfers,
        )

    def declarations(
        self,
        items: dict[str, tuple[Node, Node]],
        key: str,
        required: tuple[str, ...],
        system_names: list[str],
    ) -> list[tuple[dict[str, str], tuple[str, ...]]]:
        """``controller.automated_decisions`` or ``controller.transfers``: a list of entries,
        each with every ``required`` key as non-empty text, and optionally ``systems``: names
        of systems in the map. Absent, or an empty list: none declared."""
        if key not in items:
            return []
        node = items[key][1]
        path = f"controller.{key}"
        if isinstance(node, ScalarNode) and node.tag.endswith(":null"):
            return []
        if not isinstance(node, SequenceNode):
            self.fail(node, path, f"expected a list, got {_kind(node)}")
        out: list[tuple[dict[str, str], tuple[str, ...]]] = []
        for index, entry in enumerate(node.value):
            epath = f"{path}[{index}]"
            entry_items = self.mapping(entry, epath, frozenset({*required, "systems"}))
            values = {
                k: self.text(self.required(entry_items, k, entry, epath)[1], f"{epath}.{k}") for k in required
            }
            systems: tuple[str, ...] = ()
            if "systems" in entry_items:
                systems_node = entry_items["systems"][1]
                systems = self.texts(systems_node, f"{epath}.systems")
                if not systems:
                    self.fail(
                        systems_node,
                        f"{epath}.systems",
                        "name at least one system, or leave 'systems' out (it then concerns everyone)",
                    )
                for system in systems:
                    if system not in system_names:
                        self.fail(
                            systems_node,
                            f"{epath}.systems",
                            f"no system '{system}' in the data map "
                            f"(expected one of: {', '.join(system_names)})",
                        )
            out.append((values, systems))
        return out

    def system(self, name: str, key_node: Node, node: Node, controller: Controller) -> SystemConfig:
        path = f"systems.{name}"
        if isinstance(node, MappingNode):
            for k, _ in node.value:
                if isinstance(k, ScalarNode) and k.value in {"url", "password", "dsn"}:
                    self.fail(
                        k,
                        f"{path}.{k.value}",
                        "connection secrets never go in the data map: put the URL in an "
                        "environment variable and name it in 'url_env'",
                    )
        if not isinstance(node, MappingNode):
            self.fail(node, path, f"expected a mapping, got {_kind(node)}")
        connector_items = {k.value: v for k, v in node.value if isinstance(k, ScalarNode)}
        if "connector" not in connector_items:
            self.fail(key_node, path, "missing required key 'connector'")
        connector = self.choice(
            connector_items["connector"],
            f"{path}.connector",
            _member_of(CONNECTOR_TYPES),
            sorted(CONNECTOR_TYPES),
        )
        items = self.mapping(node, path, _COMMON_SYSTEM_KEYS | _SYSTEM_KEYS[connector])
        url_env = ""
        origin = self.where(key_node)
        if connector == "sql":
            url_env_node = self.required(items, "url_env", key_node, path)[1]
            url_env = self.env_name(url_env_node, f"{path}.url_env")
            origin = self.where(url_env_node)
        bucket: S3Bucket | None = None
        if connector == "s3":
            bucket_node = self.required(items, "bucket", key_node, path)[1]
            bucket_name = self.text(bucket_node, f"{path}.bucket")
            if not _BUCKET.match(bucket_name):
                self.fail(bucket_node, f"{path}.bucket", f"'{bucket_name}' is not a valid S3 bucket name")
            bucket = S3Bucket(
                bucket=bucket_name,
                endpoint_env=(
                    self.env_name(items["endpoint_env"][1], f"{path}.endpoint_env")
                    if "endpoint_env" in items
                    else ""
                ),
                region=self.text(items["region"][1], f"{path}.region") if "region" in items else "",
            )
            url_env = bucket.endpoint_env
        manual: ManualTask | None = None
        if connector == "manual":
            owner_node = self.required(items, "owner", key_node, path)[1]
            owner = self.text(owner_node, f"{path}.owner")
            if "@" not in owner or " " in owner:
                self.fail(owner_node, f"{path}.owner", "must be the email address of the person or team")
            manual = ManualTask(
                owner=owner,
                instructions=self.text(
                    self.required(items, "instructions", key_node, path)[1], f"{path}.instructions"
                ),
                remind_every_days=self.count(items, "remind_every_days", path, 3),
                escalate_after_days=self.count(items, "escalate_after_days", path, 7),
                identifiers=self.manual_identifiers(items, path),
            )
        description = (
            self.text(items["description"][1], f"{path}.description", empty=True)
            if "description" in items
            else ""
        )
        label = self.text(items["label"][1], f"{path}.label") if "label" in items else words(name)
        defaults = self.defaults(items, path, {})
        entities_node = self.required(items, "entities", key_node, path)[1]
        entity_items = self.mapping(entities_node, f"{path}.entities")
        if not entity_items:
            self.fail(entities_node, f"{path}.entities", "declare at least one entity")
        relation_nodes: dict[str, Node] = {}
        entities: dict[str, EntityConfig] = {}
        for ename, (k, v) in entity_items.items():
            epath = f"{path}.entities.{ename}"
            self.name(k, epath, "entity name")
            entities[ename], relation_node = self.entity(connector, ename, epath, k, v, defaults)
            if relation_node is not None:
                relation_nodes[ename] = relation_node
        if connector == "sql":
            self.check_relations(path, entities, relation_nodes, entity_items)
        return SystemConfig(
            name=name,
            connector=connector,
            url_env=url_env,
            description=description,
            entities=entities,
            label=label,
            phone_region=self.region(items["phone_region"][1], f"{path}.phone_region")
            if "phone_region" in items
            else controller.phone_region,
            max_concurrent=self.count(items, "max_concurrent", path, 4),
            bucket=bucket,
            manual=manual,
            origin=origin,
        )

    def env_name(self, node: Node, path: str) -> str:
        value = self.text(node, path)
        if not _ENV_NAME.match(value):
            self.fail(node, path, f"'{value}' is not an environment variable name")
        return value

    def manual_identifiers(
        self, items: dict[str, tuple[Node, Node]], path: str
    ) -> tuple[IdentifierKind, ...]:
        """What a manually searched system's owner may see of the person (default: the name)."""
        if "identifiers" not in items:
            return (IdentifierKind.NAME,)
        node = items["identifiers"][1]
        names = self.texts(node, f"{path}.identifiers")
        known = {k.value for k in IdentifierKind}
        odd = [n for n in names if n not in known]
        if odd or not names:
            self.fail(node, f"{path}.identifiers", f"list identifier kinds, from: {', '.join(sorted(known))}")
        return tuple(IdentifierKind(n) for n in dict.fromkeys(names))

    def count(self, items: dict[str, tuple[Node, Node]], key: str, path: str, default: int) -> int:
        """A whole number from 1 to 1000 (a concurrency cap, a number of days)."""
        if key not in items:
            return default
        node = items[key][1]
        value = self.text(node, f"{path}.{key}")
        if not value.isdigit() or not 1 <= int(value) <= 1000:
            self.fail(node, f"{path}.{key}", f"expected a whole number from 1 to 1000, got '{value}'")
        return int(value)

    def defaults(
        self, items: dict[str, tuple[Node, Node]], path: str, inherited: dict[str, object]
    ) -> dict[str, object]:
        """Field keys set once for a system or entity; a field's own keys win."""
        out = dict(inherited)
        if "defaults" in items:
            out.update(self.field_values(items["defaults"][1], f"{path}.defaults"))
        return out

    def field_values(self, node: Node, path: str) -> dict[str, object]:
        if isinstance(node, ScalarNode) and node.tag.endswith(":null"):
            return {}
        items = self.mapping(node, path, _FIELD_KEYS)
        out: dict[str, object] = {}
        for key, (_, value_node) in items.items():
            kpath = f"{path}.{key}"
            if key == "recipients":
                out[key] = self.texts(value_node, kpath)
            elif key == "legal_basis":
                out[key] = LegalBasis(
                    self.choice(value_node, kpath, LegalBasis, [b.value for b in LegalBasis])
                )
            elif key == "provided":
                out[key] = self.flag(value_node, kpath)
            elif key == "erasure":
                out[key] = FieldErasure(
                    self.choice(value_node, kpath, FieldErasure, [e.value for e in FieldErasure])
                )
            else:
                out[key] = self.text(value_node, kpath, empty=key in {"description", "source"})
        return out

    def entity(
        self,
        connector: str,
        name: str,
        path: str,
        key_node: Node,
        node: Node,
        system_defaults: dict[str, object],
    ) -> tuple[EntityConfig, Node | None]:
        items = self.mapping(node, path, _ENTITY_KEYS[connector])
        defaults = self.defaults(items, path, system_defaults)
        table = self.text(items["table"][1], f"{path}.table") if "table" in items else name
        schema = self.text(items["schema"][1], f"{path}.schema") if "schema" in items else None
        description = (
            self.text(items["description"][1], f"{path}.description", empty=True)
            if "description" in items
            else ""
        )
        label = self.text(items["label"][1], f"{path}.label") if "label" in items else words(name)

        fields_node = self.required(items, "fields", key_node, path)[1]
        field_items = self.mapping(fields_node, f"{path}.fields")
        if not field_items:
            self.fail(fields_node, f"{path}.fields", "declare at least one field")
        fields: dict[str, FieldConfig] = {}
        for column, (k, v) in field_items.items():
            fpath = f"{path}.fields.{column}"
            if connector == "s3" and column not in S3_RECORD_FIELDS:
                self.fail(
                    k,
                    fpath,
                    f"an S3 record has no field '{column}' (expected one of: "
                    f"{', '.join(sorted(S3_RECORD_FIELDS))})",
                )
            values = {**defaults, **self.field_values(v, fpath)}
            for required in _FIELD_REQUIRED:
                if required not in values:
                    self.fail(k, fpath, f"missing '{required}' (set it on the field or in 'defaults')")
            fields[column] = FieldConfig(**values)  # type: ignore[arg-type]

        def declared(column: str, at: Node, where: str, entity: str = name) -> None:
            if column not in fields:
                self.fail(at, where, f"no column '{column}' declared in '{entity}'")

        identity: dict[str, IdentifierKind] = {}
        if "identity" in items:
            ipath = f"{path}.identity"
            kinds = [k.value for k in IdentifierKind]
            for column, (k, v) in self.mapping(items["identity"][1], ipath).items():
                if connector == "s3":
                    self.s3_source(column, k, f"{ipath}.{column}", items)
                else:
                    for part in identity_columns(column):
                        declared(part, k, f"{ipath}.{column}")
                    column = "+".join(identity_columns(column))
                kind = self.text(v, f"{ipath}.{column}")
                if kind not in kinds:
                    self.fail(
                        v,
                        f"{ipath}.{column}",
                        f"unknown identifier kind '{kind}' (expected one of: {', '.join(kinds)})",
                    )
                if "+" in column and kind != IdentifierKind.NAME.value:
                    self.fail(
                        v, f"{ipath}.{column}", "only a name can be held in several columns ('first+last')"
                    )
                identity[column] = IdentifierKind(kind)

        key: tuple[str, ...] = ()
        if "key" in items:
            key_value_node = items["key"][1]
            key = self.texts(key_value_node, f"{path}.key")
            for column in key:
                declared(column, key_value_node, f"{path}.key")
        elif "id" in fields:
            key = ("id",)
        if connector == "sql" and identity and "relation" not in items and "lookup" not in items and not key:
            self.fail(
                key_node,
                path,
                "an entity with 'identity' needs a 'key' (the column(s) that identify one row)",
            )

        relation: Relation | None = None
        relation_node: Node | None = None
        if "relation" in items and "lookup" in items:
            self.fail(
                items["lookup"][0],
                f"{path}.lookup",
                "give either 'relation' (this entity's rows belong to a parent row) or 'lookup' "
                "(a row of another entity points at this one), not both",
            )
        if "relation" in items or "lookup" in items:
            direction = "lookup" if "lookup" in items else "relation"
            relation_node = items[direction][1]
            rpath = f"{path}.{direction}"
            text = self.text(relation_node, rpath)
            match = _RELATION.match(text)
            if not match:
                shape = "owner.foreign_key" if direction == "lookup" else "parent.column"
                self.fail(relation_node, rpath, f"expected '{shape} -> {name}.column', got '{text}'")
            parent, parent_column, child, column = match.groups()
            relation = Relation(parent, parent_column, child, column, lookup=direction == "lookup")
            if relation.child != name:
                self.fail(
                    relation_node,
                    rpath,
                    f"the relation must end in this entity ('... -> {name}.column'), not '{relation.child}'",
                )
            declared(relation.column, relation_node, rpath)
        prefix, fmt = "", "binary"
        if connector == "s3":
            prefix_node = self.required(items, "prefix", key_node, path)[1]
            prefix = self.text(prefix_node, f"{path}.prefix", empty=True)
            known = {k.value for k in IdentifierKind}
            for placeholder in _PLACEHOLDER.findall(prefix):
                if placeholder not in known:
                    self.fail(
                        prefix_node,
                        f"{path}.prefix",
                        f"unknown identifier kind '{{{placeholder}}}' in the key template "
                        f"(expected one of: {', '.join(sorted(known))})",
                    )
            if "{" in _PLACEHOLDER.sub("", prefix) or "}" in _PLACEHOLDER.sub("", prefix):
                self.fail(prefix_node, f"{path}.prefix", f"unbalanced braces in the key template '{prefix}'")
            if "format" in items:
                fmt = self.choice(
                    items["format"][1], f"{path}.format", _member_of(S3_FORMATS), sorted(S3_FORMATS)
                )
            if not identity and not _PLACEHOLDER.search(prefix):
                self.fail(
                    key_node,
                    path,
                    "cannot be traced to the data subject: put an identifier kind in the prefix "
                    "('recordings/{customer_id}/') or give 'identity' sources",
                )
        markers: dict[str, tuple[str, str] | None] = {}
        for marker in Marker:
            markers[marker.value] = None
            if marker.value not in items:
                continue
            rnode = items[marker.value][1]
            rpath = f"{path}.{marker.value}"
            ritems = self.mapping(rnode, rpath, _RESTRICTION_KEYS)
            rcolumn_node = self.required(ritems, "column", rnode, rpath)[1]
            rcolumn = self.text(rcolumn_node, f"{rpath}.column")
            declared(rcolumn, rcolumn_node, f"{rpath}.column")
            markers[marker.value] = (
                rcolumn,
                self.text(self.required(ritems, "value", rnode, rpath)[1], f"{rpath}.value"),
            )
        transaction: tuple[str, str, str] | None = None
        if "transaction" in items:
            tnode = items["transaction"][1]
            tpath = f"{path}.transaction"
            titems = self.mapping(tnode, tpath, _TRANSACTION_KEYS)
            columns: list[str] = []
            for tkey in ("reference", "amount", "date"):
                tcolumn_node = self.required(titems, tkey, tnode, tpath)[1]
                tcolumn = self.text(tcolumn_node, f"{tpath}.{tkey}")
                declared(tcolumn, tcolumn_node, f"{tpath}.{tkey}")
                columns.append(tcolumn)
            if relation is None:
                self.fail(
                    tnode,
                    tpath,
                    "an entity with 'transaction' needs a 'relation' leading to the person's entity "
                    "(a child such as orders)",
                )
            transaction = (columns[0], columns[1], columns[2])
        erasure = ErasureRule()
        if "erasure" in items:
            erasure = self.erasure(items["erasure"][1], f"{path}.erasure", connector)
        reference = "reference" in items and self.flag(items["reference"][1], f"{path}.reference")
        if reference:
            if relation is None or not relation.lookup:
                self.fail(
                    items["reference"][0],
                    f"{path}.reference",
                    "reference data is reached by a 'lookup' (owner.foreign_key -> this.key)",
                )
            if identity:
                self.fail(items["reference"][0], f"{path}.reference", "reference data has no 'identity'")
            if "erasure" in items:
                self.fail(items["erasure"][0], f"{path}.erasure", "reference data is never erased")
            erasure = ErasureRule(EntityErasure.KEEP, REFERENCE_REASON)
        phone_region_column = ""
        if "phone_region_column" in items:
            pnode = items["phone_region_column"][1]
            phone_region_column = self.text(pnode, f"{path}.phone_region_column")
            if phone_region_column not in fields:
                self.fail(pnode, f"{path}.phone_region_column", f"no column '{phone_region_column}' declared")
        shared = "keep"
        if "shared" in items:
            snode = items["shared"][1]
            shared = self.choice(
                snode, f"{path}.shared", _member_of(frozenset({"keep", "detach"})), ["keep", "detach"]
            )
            if relation is None or not relation.lookup or reference:
                self.fail(snode, f"{path}.shared", "'shared' is for a lookup that is not reference data")
        related_identity: dict[str, IdentifierKind] = {}
        if connector == "sql" and relation is not None and identity:
            # identifiers on a related row count for the person the relation leads to
            related_identity, identity = identity, {}
        entity = EntityConfig(
            name=name,
            table=table,
            identity=identity,
            relation=relation,
            fields=fields,
            key=key,
            schema=schema,
            description=description,
            label=label,
            erasure=erasure,
            restriction=markers[Marker.RESTRICTION.value],
            objection=markers[Marker.OBJECTION.value],
            opt_out=markers[Marker.OPT_OUT.value],
            limit_use=markers[Marker.LIMIT_USE.value],
            transaction=transaction,
            prefix=prefix,
            format=fmt,
            sensitive="sensitive" in items and self.flag(items["sensitive"][1], f"{path}.sensitive"),
            related_identity=related_identity,
            reference=reference,
            phone_region_column=phone_region_column,
            shared=shared,
            origin=self.where(key_node),
        )
        return entity, relation_node

    def s3_source(self, source: str, node: Node, path: str, items: dict[str, tuple[Node, Node]]) -> None:
        """``metadata.<name>``, ``tag.<name>``, ``content.<field>`` or ``content``."""
        fmt = self.text(items["format"][1], "format") if "format" in items else "binary"
        head, _, rest = source.partition(".")
        if head in ("metadata", "tag") and rest:
            return
        if head == "content" and fmt != "binary" and (rest or fmt == "text"):
            return
        self.fail(
            node,
            path,
            f"'{source}' is not an identity source of an S3 object: use 'metadata.<name>', "
            "'tag.<name>', 'content.<field>' (json, jsonl, csv) or 'content' (text)",
        )

    def erasure(self, node: Node, path: str, connector: str) -> ErasureRule:
        """``delete``, ``anonymise``, or ``{strategy: keep, reason: ...}``."""
        options = [e.value for e in EntityErasure if connector == "sql" or e != EntityErasure.ANONYMISE]
        strategy_node: Node = node
        reason = ""
        if not isinstance(node, ScalarNode):
            items = self.mapping(node, path, _ERASURE_KEYS)
            strategy_node = self.required(items, "strategy", node, path)[1]
            reason = self.text(items["reason"][1], f"{path}.reason") if "reason" in items else ""
        keep_if_has: tuple[str, ...] = ()
        if not isinstance(node, ScalarNode) and "keep_if_has" in items:
            has_node = items["keep_if_has"][1]
            keep_if_has = self.texts(has_node, f"{path}.keep_if_has")
            if connector != "sql" or not keep_if_has:
                self.fail(
                    has_node, f"{path}.keep_if_has", "name the child entities (sql) whose rows keep a row"
                )
        strategy = EntityErasure(
            self.choice(strategy_node, f"{path}.strategy", _member_of(frozenset(options)), options)
        )
        if strategy == EntityErasure.KEEP and not reason:
            self.fail(node, path, "'keep' needs a reason (the law or duty that requires keeping it)")
        if keep_if_has and strategy != EntityErasure.DELETE:
            self.fail(
                node, path, "'keep_if_has' goes with 'strategy: delete' (the rows without one are deleted)"
            )
        return ErasureRule(strategy, reason, keep_if_has)

    def check_relations(
        self,
        path: str,
        entities: dict[str, EntityConfig],
        relation_nodes: dict[str, Node],
        entity_items: dict[str, tuple[Node, Node]],
    ) -> None:
        """Parents exist, columns are declared, no cycles, and every entity leads to the subject;
        an erasure's ``keep_if_has`` names children of the entity."""
        for name, entity in entities.items():
            for child in entity.erasure.keep_if_has:
                found = entities.get(child)
                if (
                    found is None
                    or found.relation is None
                    or found.relation.lookup
                    or found.relation.parent != name
                ):
                    self.fail(
                        entity_items[name][0],
                        f"{path}.entities.{name}.erasure.keep_if_has",
                        f"'{child}' is not a child entity of '{name}' "
                        f"(relation: {name}.column -> {child}.column)",
                    )
        for name, entity in entities.items():
            relation = entity.relation
            if relation is None:
                continue
            rpath = f"{path}.entities.{name}.relation"
            node = relation_nodes[name]
            parent = entities.get(relation.parent)
            if parent is None:
                self.fail(node, rpath, f"no entity '{relation.parent}' in system '{path.split('.', 1)[1]}'")
            if relation.parent_column not in parent.fields:
                self.fail(
                    node, rpath, f"no column '{relation.parent_column}' declared in '{relation.parent}'"
                )
        for name, entity in entities.items():
            chain = [name]
            current = entity
            while not current.identity:
                if current.relation is None:
                    self.fail(
                        entity_items[name][0],
                        f"{path}.entities.{name}",
                        "cannot be traced to the data subject: give it 'identity' columns or a "
                        "'relation' to an entity that has them"
                        + (f" (chain: {' -> '.join(chain)})" if len(chain) > 1 else ""),
                    )
                parent_name = current.relation.parent
                if parent_name in chain:
                    cycle = [*chain[chain.index(parent_name) :], parent_name]
                    self.fail(
                        relation_nodes[name] if name in relation_nodes else entity_items[name][0],
                        f"{path}.entities.{name}.relation",
                        f"relation cycle: {' -> '.join(reversed(cycle))}",
                    )
                chain.append(parent_name)
                current = entities[parent_name]
            # An entity with identity may still have a parent; its chain must not loop either.
            seen = {name}
            walker = entity
            while walker.relation is not None:
                parent_name = walker.relation.parent
                if parent_name in seen:
                    self.fail(
                        relation_nodes[name],
                        f"{path}.entities.{name}.relation",
                        f"relation cycle through '{parent_name}'",
                    )
                seen.add(parent_name)
                walker = entities[parent_name]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, ScalarNode) and node.tag.endswith(":null"):
        return "nothing"
    return f"'{node.value}'"


def _member_of(options: frozenset[str]) -> Callable[[str], object]:
    def check(value: str) -> object:
        if value not in options:
            raise ValueError(value)
        return value

    return check
