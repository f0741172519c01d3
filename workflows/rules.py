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
}

#: Decisions about one system of the search (they name it in ``Decision.system``).
SYSTEM_DECISIONS = frozenset({DecisionKind.SKIP_SYSTEM, DecisionKind.SYSTEM_FOUND, DecisionKind.NOTHING_HELD})

#: Letters to the privacy team rather than to the person (a letter to a named member of staff,
#: such as a manual search task, names its recipient).
TEAM_LETTERS = frozenset({"reminder", "escalation", "breach", "manual_escalation", "system_unreachable"})

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

# Explicit retry policies: the register, mail and connectors are retried with backoff without a
# cap on attempts (a case must not fail because a database was down for an hour); bad input is
# raised as non-retryable by the activities themselves.
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
LETTER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))
#: Matching identity reads the systems too; unreachable ones are retried by the server here (the
#: case is still verifying, nothing to show per system yet).
SEARCH_RETRY_VERIFY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["SystemMisconfigured"],
)

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
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["UnknownSystem", "SystemMisconfigured", "SystemUnavailable"],
)

#: The privacy team is told when a system has failed this many attempts in a row (about an
#: hour with ``search_backoff``).
UNREACHABLE_NOTICE_ATTEMPT = 8


def search_backoff(attempt: int) -> timedelta:
    """Wait before the next attempt at an unreachable system: 30 s doubling to 15 minutes."""
    return min(timedelta(seconds=30) * 2 ** (attempt - 1), timedelta(minutes=15))


WORK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))


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
