"""What the request workflow allows, waits for and retries: plain data, no engine calls.

Kept out of ``workflows/request.py`` on purpose: the workflow sandbox re-executes the workflow
module for every case it starts, while this module is imported once (passed through), so the
tables and dataclasses here cost nothing per case. The console and the tests read ``ALLOWED``
to say which decisions fit which stage.
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from temporalio.common import RetryPolicy, SearchAttributeKey

from dsar.model import OPEN_STAGES, ClockEventType, DecisionKind, Stage

STAGE_ATTR = SearchAttributeKey.for_keyword("DsrStage")
REGIME_ATTR = SearchAttributeKey.for_keyword("DsrRegime")
TYPE_ATTR = SearchAttributeKey.for_keyword("DsrType")
DUE_ATTR = SearchAttributeKey.for_datetime("DsrDue")
BREACHED_ATTR = SearchAttributeKey.for_bool("DsrBreached")

#: Search attributes the server must know (registered by ``dsar dev`` and by test set-up).
SEARCH_ATTRIBUTES = {
    "DsrStage": "Keyword",
    "DsrRegime": "Keyword",
    "DsrType": "Keyword",
    "DsrDue": "Datetime",
    "DsrBreached": "Bool",
}

_EARLY = frozenset(
    {Stage.RECEIVED, Stage.TRIAGE, Stage.ACKNOWLEDGED, Stage.VERIFYING, Stage.SEARCHING, Stage.REVIEWING}
)
_WAITING = frozenset({Stage.VERIFYING, Stage.REVIEWING})

#: Case references as the register allocates them (``DSR-2026-000123``).
REFERENCE_RE = re.compile(r"^DSR-\d{4}-\d{6,12}$")

#: In which stages each decision may be taken.
ALLOWED: dict[DecisionKind, frozenset[Stage]] = {
    DecisionKind.VERIFY: frozenset({Stage.VERIFYING}),
    DecisionKind.REJECT: _EARLY,
    DecisionKind.WITHDRAW: OPEN_STAGES,
    DecisionKind.EXTEND: OPEN_STAGES,
    DecisionKind.REQUEST_IDENTITY: frozenset({Stage.VERIFYING}),
    DecisionKind.IDENTITY_RECEIVED: frozenset({Stage.VERIFYING}),
    DecisionKind.REQUEST_AUTHORITY: frozenset({Stage.VERIFYING}),
    DecisionKind.AUTHORITY_RECEIVED: frozenset({Stage.VERIFYING}),
    DecisionKind.REQUEST_FEE: _WAITING,
    DecisionKind.FEE_PAID: _WAITING,
    DecisionKind.REQUEST_CLARIFICATION: _WAITING,
    DecisionKind.CLARIFICATION_RECEIVED: _WAITING,
    DecisionKind.APPROVE: frozenset({Stage.REVIEWING}),
    DecisionKind.FULFILLED: frozenset({Stage.FULFILLING}),
    DecisionKind.SKIP_SYSTEM: frozenset({Stage.SEARCHING}),
    DecisionKind.SYSTEM_FOUND: frozenset({Stage.SEARCHING}),
    DecisionKind.NOTHING_HELD: frozenset({Stage.SEARCHING}),
    DecisionKind.PERSON_CONFIRMED: frozenset({Stage.VERIFYING}),
    DecisionKind.CLASSIFY: frozenset({Stage.TRIAGE}),
    DecisionKind.NO_DATA_HELD: frozenset({Stage.ACKNOWLEDGED, Stage.VERIFYING, Stage.SEARCHING}),
    # a duplicate is merged before anything is sent or changed for it
    DecisionKind.MERGE: frozenset(
        {Stage.TRIAGE, Stage.ACKNOWLEDGED, Stage.VERIFYING, Stage.SEARCHING, Stage.REVIEWING}
    ),
    # an operator task may be open in any stage, even once the case has ended (its purge)
    DecisionKind.RETRY_STEP: frozenset(Stage),
    DecisionKind.SKIP_STEP: frozenset(Stage),
    DecisionKind.DONE_BY_HAND: frozenset(Stage),
    # what the type needs can be added until the change or the copy is under way
    DecisionKind.ADD_DETAILS: _EARLY,
}

#: The ways out of an operator task, as decisions (they name the task in ``Decision.task``).
TASK_DECISIONS = frozenset({DecisionKind.RETRY_STEP, DecisionKind.SKIP_STEP, DecisionKind.DONE_BY_HAND})
RETRY = DecisionKind.RETRY_STEP.value
SKIP = DecisionKind.SKIP_STEP.value
BY_HAND = DecisionKind.DONE_BY_HAND.value
#: What a resolved task says it was.
TASK_STATUS = {RETRY: "retried", SKIP: "skipped", BY_HAND: "done_by_hand"}

#: Decisions about one system of the search (they name it in ``Decision.system``).
SYSTEM_DECISIONS = frozenset({DecisionKind.SKIP_SYSTEM, DecisionKind.SYSTEM_FOUND, DecisionKind.NOTHING_HELD})

#: Letters to the privacy team rather than to the person (a letter to a named member of staff,
#: such as a manual search task, names its recipient).
TEAM_LETTERS = frozenset(
    {"reminder", "escalation", "breach", "manual_escalation", "system_unreachable", "operator_task"}
)

REJECT_GROUNDS = frozenset({"unverified", "manifestly_unfounded", "excessive", "other"})
#: Art. 12(5) (and its counterparts): grounds that refuse a request outright; the letter names
#: the ground, the reason and the right to complain.
REFUSAL_GROUNDS = {"manifestly_unfounded": "manifestly unfounded", "excessive": "excessive"}
#: A fee as a letter states it: "GBP 10.00", "EUR 25", "USD 12.50".
FEE_RE = re.compile(r"^[A-Z]{3} \d{1,5}(\.\d{2})?$")


@dataclass(frozen=True)
class PersonWait:
    """Something the controller asked the person for: the case waits, the clock may hold."""

    name: str  # "identity", "authority", "fee", "clarification"
    asked: ClockEventType
    answered: ClockEventType
    letter: str  # template of the letter that asks
    awaited: str  # plain words for the expiry letter


#: The decision that asks the person for something -> what is awaited.
WAITS: dict[DecisionKind, PersonWait] = {
    DecisionKind.REQUEST_IDENTITY: PersonWait(
        "identity",
        ClockEventType.IDENTITY_REQUESTED,
        ClockEventType.IDENTITY_RECEIVED,
        "identity_request",
        "information to confirm your identity",
    ),
    DecisionKind.REQUEST_AUTHORITY: PersonWait(
        "authority",
        ClockEventType.AUTHORITY_REQUESTED,
        ClockEventType.AUTHORITY_RECEIVED,
        "authority_request",
        "proof of your authority to act",
    ),
    DecisionKind.REQUEST_FEE: PersonWait(
        "fee", ClockEventType.FEE_REQUESTED, ClockEventType.FEE_PAID, "fee_request", "the fee"
    ),
    DecisionKind.REQUEST_CLARIFICATION: PersonWait(
        "clarification",
        ClockEventType.CLARIFICATION_REQUESTED,
        ClockEventType.CLARIFICATION_RECEIVED,
        "clarification_request",
        "the clarification we asked for",
    ),
}

#: The decision that records the person's answer -> what was awaited.
ANSWERS: dict[DecisionKind, PersonWait] = {
    DecisionKind.IDENTITY_RECEIVED: WAITS[DecisionKind.REQUEST_IDENTITY],
    DecisionKind.AUTHORITY_RECEIVED: WAITS[DecisionKind.REQUEST_AUTHORITY],
    DecisionKind.FEE_PAID: WAITS[DecisionKind.REQUEST_FEE],
    DecisionKind.CLARIFICATION_RECEIVED: WAITS[DecisionKind.REQUEST_CLARIFICATION],
}

# Explicit retry policies. Errors retrying cannot fix (a constraint the system refuses, a 4xx
# from another controller, text a letter cannot carry) are raised as non-retryable by the
# activities themselves; everything else is retried with backoff a bounded number of times,
# and then becomes an operator task on the case (``OperatorTask``): the team is told, the
# clock runs on, and a person retries after a fix, skips with a reason or does it by hand.
# Only the register is retried without a cap: it is where a task would be shown.
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
#: A mail relay down for about twenty minutes becomes a task (the team is told by its own relay
#: or sees the task in the queue).
LETTER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1), maximum_attempts=20
)
#: Matching identity reads the systems too. An unreachable system comes back to the workflow at
#: once, which shows it on the case ("matching identity: crm unreachable since ..., attempt N")
#: and tries again with ``search_backoff``; server retries remain for worker trouble.
SEARCH_RETRY_VERIFY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
    non_retryable_error_types=["SystemMisconfigured", "SystemUnavailable"],
)
#: How long a worker may be silent before its activity is given to another: every ordinary
#: activity heartbeats every 2 s while it runs (``activities/liveness.py``) and the worker sends
#: one to the server at least every 3 s, so work lost with a killed worker starts again within
#: about 13 s (this plus the first retry interval, 1 s), and a busy machine has 9 s of margin.
HEARTBEAT_TIMEOUT = timedelta(seconds=12)

#: What an agent is asked to send, by the authority they claim (the letter's words).
AUTHORITY_TEXT = {
    "written_permission": "a copy of the permission the person signed for you to make this request",
    "power_of_attorney": "a copy of the power of attorney that lets you act for the person",
}

#: What the person is asked to confirm, by link purpose (the letter's words).
CONFIRMATION_TEXT = {
    "confirm_erasure": "that you want us to erase your personal data",
    "confirm_agent": "that you asked someone to make this request on your behalf",
    "confirm_request": "that you made this request",
}

#: A search attempt is retried by the server for worker trouble (a crash, a lost heartbeat); a
#: system that is down comes back to the workflow at once, which shows it on the case and tries
#: again after ``search_backoff``.
SEARCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=30,
    non_retryable_error_types=["UnknownSystem", "SystemMisconfigured", "SystemUnavailable"],
)

#: The privacy team is told when a system has failed this many attempts in a row (about an
#: hour with ``search_backoff``).
UNREACHABLE_NOTICE_ATTEMPT = 8


def search_backoff(attempt: int) -> timedelta:
    """Wait before the next attempt at an unreachable system: 30 s doubling to 15 minutes."""
    return min(timedelta(seconds=30) * 2 ** (attempt - 1), timedelta(minutes=15))


#: Worker trouble (a crash, a lost heartbeat) is most of what is retried here: the interval
#: stays short (a case whose workers were killed a few times must not wait minutes), and about
#: 14 minutes of failures make a task.
WORK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=30
)
#: Working a case ahead is tried once: whatever fails in it, the ordinary steps meet again with
#: their own retries and operator tasks (``activities/ahead.py``).
AHEAD_RETRY = RetryPolicy(maximum_attempts=1)
#: Sending data to another controller: a 4xx is refused at once (non-retryable), a 5xx or a
#: timeout a few times, then the person and the team are told it was not sent.
PUSH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1), maximum_attempts=5
)


@dataclass(frozen=True)
class Resolved:
    """How an operator resolved a task, when not by retrying: the step's caller goes on
    without the step's result (skipped) or with a person's word that it was done by hand."""

    kind: str  # SKIP or BY_HAND
    actor: str
    reason: str

    @property
    def by_hand(self) -> bool:
        return self.kind == BY_HAND

    def words(self) -> str:
        how = "carried out by hand" if self.by_hand else "skipped"
        return f"{how} by {self.actor}: {self.reason}"


@dataclass
class DecisionResult:
    """What the operator who took a decision is told back."""

    stage: Stage
    due: str
    message: str


@dataclass(frozen=True)
class ClockPoint:
    """A moment the statutory clock acts at: a reminder, the escalation or the breach."""

    when: datetime
    kind: str  # "reminder:7", "escalation", "breach"
    due: date

    @property
    def key(self) -> str:
        return f"{self.kind}@{self.due.isoformat()}"


class CaseEnded(Exception):
    """Raised inside the main flow when a decision or a timeout ends the case early."""


class SystemSkipped(Exception):
    """Raised inside one system's search when an operator skips the system."""
