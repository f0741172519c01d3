"""Match what the person told us against what the connected systems hold.

The activity sees identifier values (it has to compare them); the workflow gets back kinds,
counts and a plain reason, plus the email address *on file* for the matched person (encrypted in
history by the codec), because a confirmation link goes to the address we hold, not merely the
one we were given. Failed matches count against each identifier across cases, so an attacker
cannot try a victim's email with one guess after another on fresh cases.
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

from dataclasses import dataclass, field

from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.base import Candidate, ConnectorError, ConnectorUnavailable, connector_for
from dsar.datamap import DataMap
from dsar.guard import GuardStore
from dsar.logs import bind_case, get_logger
from dsar.model import IdentifierKind
from dsar.verification import match_identity

log = get_logger("dsar.activities.verify")

#: Kinds a person may be asked for, in a fixed order: what we ask never depends on what we hold.
ASKABLE = (
    IdentifierKind.NAME,
    IdentifierKind.EMAIL,
    IdentifierKind.PHONE,
    IdentifierKind.POSTAL_ADDRESS,
    IdentifierKind.POSTCODE,
    IdentifierKind.DATE_OF_BIRTH,
    IdentifierKind.ACCOUNT_NUMBER,
    IdentifierKind.LAST_TRANSACTION,
)


@dataclass
class VerifyInput:
    reference: str
    regime: str
    request_type: str
    identifiers: dict[str, str]


@dataclass
class VerifyOutcome:
    points: int
    needed: int
    declaration_needed: bool
    matched_kinds: list[str]
    reason: str  # kinds only, never values
    person: str | None = None  # "crm:customers:1" (an internal key, no identifier value)
    contact_on_file: str | None = None  # personal data: the codec encrypts it in history
    #: kinds to ask the person for (not given yet), in a fixed order that reveals nothing
    ask_for: list[str] = field(default_factory=list)
    locked: bool = False  # an identifier is locked out after too many failed attempts
    #: something given did not match (a wrong value, or two people's identifiers): a failed
    #: attempt. Giving too little is not a failure: the person is asked for more.
    wrong: bool = False
    max_attempts: int = 5
    automatic: bool = True
    confirm_erasure: bool = True
    subject_confirms: bool = True
    subject_verifies: bool = True
    link_valid_hours: int = 72
    #: the person is registered in a system holding sensitive data: the higher standard applies
    sensitive: bool = False


class VerifyActivities:
    def __init__(self, datamap: DataMap, guard: GuardStore) -> None:
        self.datamap = datamap
        self.guard = guard

    @activity.defn(name="verify_identity")
    def verify_identity(self, inp: VerifyInput) -> VerifyOutcome:
        with bind_case(inp.reference):
            outcome = self._verify(inp)
            log.info(
                "identity matched",
                points=outcome.points,
                status=f"needed {outcome.needed}",
                count=outcome.locked,
            )
            return outcome

    def _verify(self, inp: VerifyInput) -> VerifyOutcome:
        policy = self.datamap.verification
        region = self.datamap.controller.phone_region
        identifiers = {k: v for k, v in inp.identifiers.items() if v and v.strip()}
        candidates: list[Candidate] = []
        for system in self.datamap.systems.values():
            if system.connector != "sql":
                continue  # object stores and manual systems are not registers of people
            try:
                candidates += connector_for(system, heartbeat=activity.heartbeat).candidates(identifiers)
            except ConnectorUnavailable as e:
                # the workflow shows "matching identity: crm unreachable since ..." and retries
                raise ApplicationError(
                    str(e), system.name, type="SystemUnavailable", non_retryable=True
                ) from None
            except ConnectorError as e:
                raise ApplicationError(
                    f"{system.name}: {type(e).__name__}", type="SystemMisconfigured", non_retryable=True
                ) from None
        report = match_identity(identifiers, candidates, region)
        # Judged by where the person is registered, before any search: a system holding
        # sensitive data may hold theirs (see VerificationPolicy.points_sensitive).
        systems = [self.datamap.system(name) for name in report.systems]
        sensitive = any(entity.sensitive for system in systems for entity in system.entities.values())
        needed = policy.points_needed(inp.regime, inp.request_type, sensitive)
        locked, counted = self.guard.standing(identifiers)
        # A's email with B's phone is not good enough, whatever A's points: one of them is not
        # the person's, so the person is asked for more and the attempt counts as failed.
        enough = report.points >= needed and report.person is not None and not report.split
        wrong = report.split or report.ambiguous or bool(report.unmatched_kinds)
        if enough and not locked and counted:  # forget earlier failures (most have none)
            for kind, value in identifiers.items():
                self.guard.clear(kind, value)
        elif wrong:  # a failed attempt counts against each identifier given, across cases
            for kind, value in identifiers.items():
                if self.guard.record_failure(kind, value, policy.max_attempts, policy.lockout_minutes):
                    locked = True
        given = set(identifiers)
        return VerifyOutcome(
            points=report.points if not report.split else 0,
            needed=needed,
            declaration_needed=policy.needs_declaration(inp.regime, inp.request_type, sensitive),
            sensitive=sensitive,
            matched_kinds=list(report.matched_kinds),
            reason=report.reason + ("; sensitive data held: higher standard" if sensitive else ""),
            person=report.person,
            contact_on_file=report.contact_email,
            ask_for=[k.value for k in ASKABLE if k.value not in given],
            locked=locked,
            wrong=wrong and not enough,
            max_attempts=policy.max_attempts,
            automatic=policy.automatic,
            confirm_erasure=policy.confirm_erasure,
            subject_confirms=policy.subject_confirms,
            subject_verifies=policy.subject_verifies,
            link_valid_hours=policy.link_valid_hours,
        )
