"""The words of the domain: regimes, request types, stages, decisions and the case's data.

Everything here is a plain value (StrEnum or dataclass) so that it travels through Temporal
history, the HTTP API and the case register unchanged. Dates that are *deadlines* are ISO
strings (``YYYY-MM-DD``): a deadline is a calendar date in the controller's time zone, not an
instant, and the Temporal JSON converter has no ``date`` type.
"""

# Annotations are evaluated at import (no `from __future__ import annotations`): the payload
# converter resolves these dataclasses' type hints on every decode, and real types are cheap.

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Regime(StrEnum):
    UK_GDPR = "UK_GDPR"
    EU_GDPR = "EU_GDPR"
    CCPA = "CCPA"
    VCDPA = "VCDPA"
    CPA = "CPA"
    CTDPA = "CTDPA"
    UCPA = "UCPA"
    LGPD = "LGPD"
    PIPEDA = "PIPEDA"


class RequestType(StrEnum):
    ACCESS = "access"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    PORTABILITY = "portability"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    OPT_OUT_SALE_SHARING = "opt_out_sale_sharing"
    LIMIT_SENSITIVE = "limit_sensitive"


#: Request types that need no identity verification: CCPA 11 CCR §7060(b), §7027(e); the other
#: US states accept opt-outs without authentication (LEGAL.md §2.5).
UNVERIFIED_TYPES = frozenset({RequestType.OPT_OUT_SALE_SHARING, RequestType.LIMIT_SENSITIVE})


class Channel(StrEnum):
    API = "api"
    EMAIL = "email"
    WEB_FORM = "web_form"
    CONSOLE = "console"
    PHONE = "phone"
    POST = "post"


class Stage(StrEnum):
    RECEIVED = "received"
    #: a message intake could not read as a request: a person classifies it (or refuses it)
    TRIAGE = "triage"
    ACKNOWLEDGED = "acknowledged"
    VERIFYING = "verifying"
    SEARCHING = "searching"
    REVIEWING = "reviewing"
    FULFILLING = "fulfilling"
    RESPONDED = "responded"
    CLOSED = "closed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    #: a duplicate of another open request by the same person, answered with that one
    MERGED = "merged"


#: Stages a case never leaves.
FINAL_STAGES = frozenset({Stage.CLOSED, Stage.REJECTED, Stage.WITHDRAWN, Stage.EXPIRED, Stage.MERGED})

#: Stages in which the statutory duty is still open (the person has had no answer yet).
OPEN_STAGES = frozenset(
    {
        Stage.RECEIVED,
        Stage.TRIAGE,
        Stage.ACKNOWLEDGED,
        Stage.VERIFYING,
        Stage.SEARCHING,
        Stage.REVIEWING,
        Stage.FULFILLING,
    }
)


class IdentifierKind(StrEnum):
    """What a supplied identifier is; matching normalises each kind its own way."""

    NAME = "name"
    EMAIL = "email"
    PHONE = "phone"
    POSTAL_ADDRESS = "postal_address"
    POSTCODE = "postcode"
    DATE_OF_BIRTH = "date_of_birth"
    CUSTOMER_ID = "customer_id"
    ACCOUNT_NUMBER = "account_number"
    LAST_TRANSACTION = "last_transaction"


class ClockEventType(StrEnum):
    """The statutory clock's event log (LEGAL.md §2.1)."""

    RECEIVED = "received"
    IDENTITY_REQUESTED = "identity_requested"
    IDENTITY_RECEIVED = "identity_received"
    AUTHORITY_REQUESTED = "authority_requested"
    AUTHORITY_RECEIVED = "authority_received"
    FEE_REQUESTED = "fee_requested"
    FEE_PAID = "fee_paid"
    CLARIFICATION_REQUESTED = "clarification_requested"
    CLARIFICATION_RECEIVED = "clarification_received"
    EXTENSION_NOTIFIED = "extension_notified"
    ACKNOWLEDGED = "acknowledged"
    RESPONDED = "responded"


@dataclass(frozen=True)
class ClockEvent:
    type: ClockEventType
    date: str  # YYYY-MM-DD, local date in the controller's time zone


class DecisionKind(StrEnum):
    """Human decisions on a case. Each is a Temporal Update, checked by a validator."""

    VERIFY = "verify"  # identity confirmed by an operator
    REJECT = "reject"  # refuse: unverified, manifestly unfounded or excessive (reason required)
    WITHDRAW = "withdraw"  # the person withdrew the request
    EXTEND = "extend"  # statutory extension, with notice and reason to the person
    REQUEST_IDENTITY = "request_identity"
    IDENTITY_RECEIVED = "identity_received"
    REQUEST_AUTHORITY = "request_authority"
    AUTHORITY_RECEIVED = "authority_received"
    REQUEST_FEE = "request_fee"
    FEE_PAID = "fee_paid"
    REQUEST_CLARIFICATION = "request_clarification"
    CLARIFICATION_RECEIVED = "clarification_received"
    APPROVE = "approve"  # reviewer approves what will be disclosed / erased
    FULFILLED = "fulfilled"  # an operator confirms a fulfilment done by hand
    SKIP_SYSTEM = "skip_system"  # leave a system out of the search (reason required)
    SYSTEM_FOUND = "system_found"  # a manual system's searcher uploaded what was found
    NOTHING_HELD = "nothing_held"  # a manual system's searcher found nothing
    PERSON_CONFIRMED = "person_confirmed"  # the person confirmed through a signed link
    CLASSIFY = "classify"  # triage: say what the message asks for (request type and regime)
    #: answer at once that we hold no personal data about the person (reason required): an
    #: operator who has checked, at any time before the search finds anything
    NO_DATA_HELD = "no_data_held"
    #: a duplicate of another open request by the same person: answered with that one, and
    #: both references told (``merge_into``; the other case records it with ``take_merged``)
    MERGE = "merge"
    #: the ways out of an operator task (a step that failed in a way retrying cannot fix)
    RETRY_STEP = "retry_step"  # try the step again (after fixing its cause)
    SKIP_STEP = "skip_step"  # go on without it (reason required: the person may be told)
    DONE_BY_HAND = "done_by_hand"  # a person carried it out another way (reason required)
    #: what the request type needs, given later (a letter, a call, the person's page): the
    #: corrections of a rectification, the receiving company of a transfer, the use objected to
    ADD_DETAILS = "add_details"


@dataclass
class Decision:
    kind: DecisionKind
    actor: str  # who decided (staff subject from the bearer token); never the data subject's data
    reason: str = ""
    #: for ``extend``: why the case is complex or numerous (sent to the person in the notice)
    #: for ``reject``: the ground (e.g. "unverified", "manifestly_unfounded", "excessive")
    ground: str = ""
    #: for ``skip_system``, ``system_found`` and ``nothing_held``: which system
    system: str = ""
    #: for ``system_found``: the blob reference of the upload and how many records it holds
    attachment: str = ""
    records: int = 0
    #: for ``classify``: what the message turned out to be
    request_type: str = ""
    regime: str = ""
    #: for ``request_fee`` (Art. 12(5): manifestly unfounded or excessive): the amount, as the
    #: letter states it, e.g. "GBP 10.00"
    fee: str = ""
    #: for ``retry_step``, ``skip_step`` and ``done_by_hand``: the operator task's id
    task: str = ""
    #: for ``merge``: the open case this duplicate is answered with, and its due date (ISO),
    #: which the letter tells the person
    merge_into: str = ""
    merge_due: str = ""
    #: for ``add_details`` (personal data: encrypted by the payload codec, never in the audit
    #: trail): identifier kind -> what it should say, the receiving company's https address,
    #: the use objected to
    corrections: dict[str, str] = field(default_factory=dict)
    transfer_to: str = ""
    objection: str = ""


@dataclass
class DecisionRecord:
    kind: DecisionKind
    actor: str
    reason: str
    ground: str
    at: datetime
    stage: Stage  # the stage in which it was taken
    system: str = ""


@dataclass
class CasePolicy:
    """Per-case settings fixed at intake, so a running case is not changed by a redeploy."""

    calendar: str  # named calendar, e.g. "GB-EAW", "DE", "weekdays", "none"
    controller: str = "the privacy team"  # the organisation's name, as letters sign off
    timezone: str = "Europe/London"
    reminder_days: list[int] = field(default_factory=lambda: [7, 2])
    escalate_days_before: int = 1
    #: how long to wait for the person to send what was asked (identity, authority, fee,
    #: clarification) before the case expires
    wait_for_person_days: int = 30
    #: how long the response stays open (download link) before the case closes
    close_after_days: int = 30
    #: how long the case file is kept after the case ends; then its blobs and the words in its
    #: audit trail are purged (the hashes stay)
    case_retention_days: int = 365
    #: LEGAL.md §2.2 open question 1 and §2.3: clock policies, defaults per the spec
    uk_pause_count: str = "inclusive"
    eu_identity_pause: str = "none"
    small_agent: bool = False
    #: regime -> calendar, for a case in triage: its regime may change when it is classified
    calendars: dict[str, str] = field(default_factory=dict)
    #: approve the review without a person when no exemption fired (nothing withheld,
    #: redacted or kept, and no exemption that needs a person's confirmation)
    review_auto_approve: bool = False
    #: four-eyes: the approver must not be who verified the person's identity nor who amended
    #: the review last. ``four_eyes`` covers every case; ``four_eyes_for`` some (selectors:
    #: "*", a regime, a request type, or "REGIME/type", as ``workflows.rules.policy_applies``)
    four_eyes: bool = False
    four_eyes_for: list[str] = field(default_factory=list)
    #: cases whose review needs two approvers, who differ (e.g. ["erasure"])
    second_approver_for: list[str] = field(default_factory=list)


class AgentAuthority(StrEnum):
    """What entitles someone to act for the person (CCPA 11 CCR §7063; ICO: evidence of
    entitlement). A power of attorney is read by an operator; signed permission also has the
    person verify and confirm directly, as the data map's ``verification.agents`` says."""

    WRITTEN_PERMISSION = "written_permission"
    POWER_OF_ATTORNEY = "power_of_attorney"


@dataclass
class AgentDetails:
    """Who makes a request for someone else. Personal data (the codec encrypts it in history);
    letters about the request go to the agent, identity checks to the person."""

    name: str
    email: str
    authority: AgentAuthority = AgentAuthority.WRITTEN_PERMISSION
    organisation: str = ""
    #: blob reference of the signed permission or power of attorney, when it came with the
    #: request (a form upload, an email attachment); otherwise the case asks the agent for it
    document: str | None = None


@dataclass
class AuthorityDocument:
    """The agent's signed permission or power of attorney, stored encrypted in the blob store:
    the ``provide_authority`` Update (from the agent's upload link, intake, or an operator)."""

    document: str  # blob reference
    via: str = "link"  # "link", "intake", or "staff:<who>"


@dataclass
class Correspondence:
    """A message from the person or their agent about an open case (an email reply): the
    ``receive_correspondence`` Update. Identifiers and the sender are personal data (the codec
    encrypts them); the audit records kinds and blob references only."""

    message_id: str  # the case ignores a message it has already taken (a re-run poller)
    sender: str  # the From address: only the requester's own address can add identifiers
    original: str  # blob reference of the whole message, encrypted
    identifiers: dict[str, str] = field(default_factory=dict)
    document: str | None = None  # blob reference of an attached PDF/JPEG/PNG, if any


@dataclass
class CaseInput:
    """What the workflow starts with. Identifiers are personal data: the payload codec
    encrypts them in history; they never go into ids, memos or search attributes."""

    reference: str
    request_type: RequestType
    regime: Regime
    channel: Channel
    received_at: datetime
    identifiers: dict[str, str]
    policy: CasePolicy
    by_agent: bool = False  # kept for cases started before ``agent``; intake sets both
    agent: AgentDetails | None = None
    #: intake could not tell what the message asks for (no personal data in it): the case
    #: waits in triage, with a provisional type and regime, until an operator classifies it
    triage_reason: str = ""
    #: portability: the other controller's HTTPS endpoint the person asked us to send it to
    transfer_to: str = ""
    #: rectification: identifier kind -> the value it should hold (personal data). Identity is
    #: checked without these kinds: never with the data in dispute.
    corrections: dict[str, str] = field(default_factory=dict)
    #: objection: the processing the person objects to, in their words (GDPR Art. 21)
    objection: str = ""


@dataclass
class SystemResult:
    """One system's search outcome. The records themselves are in the blob store."""

    system: str
    #: "searching", "waiting" (a person searches it), "unreachable" (retrying), or final:
    #: "found", "none", "skipped", "failed"
    status: str
    records: int = 0
    blob_ref: str | None = None
    detail: str = ""  # e.g. "billing unreachable since 10:02, attempt 7" (no personal data)
    attempts: int = 0  # failed attempts to reach it so far
    since: datetime | None = None  # unreachable since; waiting since (manual)


@dataclass
class IdentityCheck:
    """How identity was checked, as a reviewer sees it: kinds and counts, never values."""

    points: int = 0
    needed: int = 0
    matched_kinds: list[str] = field(default_factory=list)
    reason: str = ""
    declaration_needed: bool = False
    declared: bool = False
    rounds: int = 0  # matching rounds so far (the first, then one per answer from the person)
    locked: bool = False  # too many failed attempts: an operator decides
    confirmation: str = ""  # "", "sent", "confirmed": a link to the address on file
    #: an agent's request: "written_permission" or "power_of_attorney", and where its proof
    #: stands: "", "requested" (asked of the agent), "received"
    agent_authority: str = ""
    authority: str = ""


@dataclass
class OperatorTask:
    """A step of the case that failed in a way retrying cannot fix (or that kept failing): the
    case waits for a person, the team is told, the statutory clock keeps running. What failed
    and where, in words and types, never personal data."""

    id: str  # e.g. "fulfilling:apply_change:crm": what a decision names in ``Decision.task``
    stage: Stage
    step: str  # what failed, in plain words: "erase the person's data in crm"
    error_type: str  # the error's type, e.g. "IntegrityError", "PackageError"
    message: str  # the error's own words (names systems, entities and counts, never values)
    since: datetime
    system: str = ""  # where, when it is one system
    #: the decisions that resolve it: retry_step, skip_step, done_by_hand
    ways_out: list[str] = field(default_factory=list)
    attempts: int = 1  # how many times the step was tried before the task was opened
    #: "open", or how it was resolved: "retried", "skipped", "done_by_hand"
    status: str = "open"
    resolved_by: str = ""
    resolution: str = ""  # the reason given


@dataclass
class Snapshot:
    """What the console and the API show of a case (the ``snapshot`` query)."""

    reference: str
    stage: Stage
    regime: Regime
    request_type: RequestType
    channel: Channel
    received: str
    due: str
    acknowledgement_due: str | None
    extension_notice_due: str | None
    extended: bool
    paused: bool
    waiting_for: str | None  # what the case waits on: "operator", "person", "reviewer", ...
    breached: bool
    escalated: bool
    reminders_sent: list[str]
    clock_events: list[ClockEvent]
    decisions: list[DecisionRecord]
    systems: list[SystemResult]
    results: dict[str, str]  # per stage, a short plain-language outcome
    outcome: str | None = None
    identity: IdentityCheck | None = None
    review: "ReviewStatus | None" = None
    #: steps that failed and wait for a person (open first), and the resolved ones
    tasks: list[OperatorTask] = field(default_factory=list)


@dataclass
class MergedRequest:
    """A duplicate answered with this case (the ``take_merged`` Update): its reference, so that
    the answer names both."""

    reference: str
    actor: str


@dataclass
class CaseDetails:
    """Who the requester is and how the clock is worked out (the ``details`` query): for staff
    whose role lets them check identity by eye. Personal data: encrypted by the payload codec on
    its way to the console, never stored in the register, every view audited there."""

    identifiers: dict[str, str]
    agent: AgentDetails | None
    corrections: dict[str, str]
    transfer_to: str
    #: the regime's rule for this case's due date, one step per line (``StatutoryClock.explain``)
    clock_rule: list[str]
    timezone: str
    calendar: str
    triage_reason: str = ""
    objection: str = ""  # the processing the person objects to, in their words


@dataclass
class ProvidedIdentifiers:
    """More identifiers from the person (the secure form, a reply): the ``provide_identifiers``
    Update. Personal data: encrypted in history by the codec, never logged or audited."""

    identifiers: dict[str, str]
    declaration: bool = False  # signed the declaration the regime asks for (CCPA §7062(b))
    via: str = "form"


class ReviewActionKind(StrEnum):
    OVERRIDE = "override"  # set a record's (or one field's) outcome
    WITHHOLD = "withhold"  # leave a record out of the copy
    REDACT = "redact"  # remove a field, or some words in it


@dataclass
class ReviewAmendment:
    """One change a reviewer makes to what the exemption rules decided. ``key`` names a record
    as the review package does (``orders:42``). ``reason`` is required: the person and a
    regulator see it."""

    action: ReviewActionKind
    system: str
    key: str
    reason: str
    field: str = ""
    #: for ``override``: disclose / redact / withhold (a copy), erase / retain (erasure),
    #: comply / refuse (other rights)
    outcome: str = ""
    #: for ``redact``: only these words (personal data: encrypted in history, never logged)
    text: str = ""


@dataclass
class ReviewAction:
    """The ``review`` Update: amend what will be disclosed or changed, and/or approve it."""

    actor: str
    approve: bool = False
    amendments: list[ReviewAmendment] = field(default_factory=list)
    note: str = ""


@dataclass
class ReviewStatus:
    """What the case shows of its review: references and counts, never values."""

    package_ref: str
    decisions_ref: str
    records: int
    exemptions_applied: int
    counts: dict[str, int] = field(default_factory=dict)
    needs_confirmation: list[str] = field(default_factory=list)
    amendments: int = 0
    approved_by: str = ""  # an operator, or "dsar" when approved automatically
    #: who has approved so far, in order (two where a second approver is required)
    approvals: list[str] = field(default_factory=list)
    #: who made the last amendment (four-eyes: they may not approve)
    last_amended_by: str = ""
    #: erasure and the other changes: the plan the reviewer approves (text, counts, reasons)
    plan_ref: str = ""
