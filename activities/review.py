"""Prepare what a reviewer approves before anything is disclosed or changed, and apply the
reviewer's amendments.

The search stage left each system's records in the blob store. Here every record is decided
(dsar.exemptions: disclose, redact, withhold; for erasure erase or retain; with the legal basis),
free text that may name other people is run through the third-party redactor, and the result is
written as the case's *decisions file* (``review-decisions.jsonl``, one line per record), which
fulfilment follows. The review package says in plain words what will happen and why; it holds
record keys, field names and reasons, never the records' values.

A reviewer may amend: override a decision (with a reason), redact a field or a phrase in it,
withhold a record. Each amendment rewrites the decisions file (a new blob, the old one kept for
the audit trail) and the package, and is recorded with who and why by the workflow.
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.base import json_lines, read_records
from dsar.blobs import BlobStore
from dsar.datamap import DataMap, identity_columns
from dsar.exemptions import (
    DISCLOSING,
    MENTIONS_OTHERS,
    Basis,
    CaseFacts,
    ExemptionError,
    FieldDecision,
    Outcome,
    RecordDecision,
    build_review_package,
    default_outcome,
    evaluate_stream,
    needs_related,
    related_keys,
    render_review_package,
)
from dsar.model import IdentifierKind, Regime, RequestType, ReviewActionKind, ReviewAmendment, SystemResult
from dsar.redaction import MARKER, Redactor, SubjectProfile
from dsar.regimes import REQUEST_LABELS

#: What a reviewer may set a record or field to, per kind of request.
ALLOWED_OUTCOMES: dict[str, frozenset[Outcome]] = {
    "disclosing": frozenset({Outcome.DISCLOSE, Outcome.REDACT, Outcome.WITHHOLD}),
    "erasure": frozenset({Outcome.ERASE, Outcome.RETAIN}),
    "other": frozenset({Outcome.COMPLY, Outcome.REFUSE}),
}
#: Which identifier kinds of the person's own records protect which part of their profile.
_PROFILE_OF_KIND = {
    IdentifierKind.NAME: "names",
    IdentifierKind.EMAIL: "emails",
    IdentifierKind.PHONE: "phones",
    IdentifierKind.POSTAL_ADDRESS: "addresses",
    IdentifierKind.POSTCODE: "postcodes",
    IdentifierKind.ACCOUNT_NUMBER: "accounts",
    IdentifierKind.CUSTOMER_ID: "accounts",
    IdentifierKind.DATE_OF_BIRTH: "dates_of_birth",  # a ticket that gives her own DOB keeps it
}
#: The basis recorded when the redactor, not a rule, removed something.
_REVIEWER = "Reviewer's decision"


@dataclass
class ReviewInput:
    reference: str
    request_type: RequestType
    systems: list[SystemResult]
    regime: Regime = Regime.UK_GDPR
    received: str = ""  # ISO date the request was received (exemption periods count from it)
    #: the person's identifiers (personal data: the codec encrypts them in history); with the
    #: identity fields of their own records, what the redactor must never remove
    identifiers: dict[str, str] = field(default_factory=dict)


@dataclass
class AmendInput:
    review: ReviewInput
    decisions_ref: str
    amendments: list[ReviewAmendment]
    actor: str


@dataclass
class ReviewSummary:
    """What the workflow keeps of a review: references and counts, no values."""

    summary: str
    blob_ref: str
    decisions_ref: str
    records: int
    #: records whose outcome is not the default (something withheld, redacted or kept)
    exemptions_applied: int
    counts: dict[str, int] = field(default_factory=dict)
    #: catalogue ids whose every use a person must confirm (review_required)
    needs_confirmation: list[str] = field(default_factory=list)


def outcome_family(request_type: RequestType) -> str:
    if request_type in DISCLOSING:
        return "disclosing"
    return "erasure" if request_type is RequestType.ERASURE else "other"


def subject_profile(
    datamap: DataMap, identifiers: Mapping[str, str], records: Iterator[tuple[str, str, Mapping[str, Any]]]
) -> SubjectProfile:
    """The person's own data, from what they gave and the identity fields of their records."""
    values: dict[str, list[str]] = {key: [] for key in SubjectProfile.FIELDS}
    for kind, value in identifiers.items():
        slot = _PROFILE_OF_KIND.get(IdentifierKind(kind)) if kind in set(IdentifierKind) else None
        if slot and value:
            values[slot].append(value)
    for system, entity, record in records:
        config = datamap.system(system).entities.get(entity)
        if config is None:
            continue
        for column, kind in config.all_identity().items():
            slot = _PROFILE_OF_KIND.get(kind)
            parts = [record.get(part) for part in identity_columns(column)]  # first+last: the name
            held = " ".join(str(p) for p in parts if p not in (None, "")) if len(parts) > 1 else parts[0]
            if slot and held not in (None, ""):
                values[slot].append(str(held))
    return SubjectProfile(**{key: tuple(dict.fromkeys(v)) for key, v in values.items()})


class ReviewActivities:
    def __init__(self, blobs: BlobStore, datamap: DataMap | None = None) -> None:
        self.blobs = blobs
        self.datamap = datamap

    # -- reading what the search stored ------------------------------------------------------

    def _records(self, systems: list[SystemResult]) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for s in systems:
            if s.status != "found" or not s.blob_ref:
                continue
            if _manual(self.datamap, s):
                continue  # a manual system's upload: reviewed as a whole by the reviewer
            for entity, record in read_records(self.blobs.open_reader(s.blob_ref)):
                yield s.system, entity, record

    def _decide(self, inp: ReviewInput, facts: CaseFacts) -> Iterator[tuple[RecordDecision, dict[str, Any]]]:
        assert self.datamap is not None
        for s in inp.systems:
            held: list[dict[str, Any]] = []
            related = None
            if s.system in self.datamap.systems and needs_related(self.datamap, s.system):
                # a first pass over the blob for ``has`` conditions: the parent keys only
                related = related_keys(
                    facts, self.datamap, s.system, ((e, r) for _, e, r in self._records([s]))
                )
            lines = _tap(self._records([s]), held)
            for decision in evaluate_stream(facts, self.datamap, s.system, lines, related):
                yield decision, held.pop()

    # -- the activities ------------------------------------------------------------------------

    @activity.defn(name="prepare_review")
    def prepare_review(self, inp: ReviewInput) -> ReviewSummary:
        facts = self._facts(inp)
        profile = (
            subject_profile(self.datamap, inp.identifiers, self._records(inp.systems))
            if self.datamap
            else None
        )
        redactor: Redactor | None = None
        name = "review-decisions.jsonl"
        with self.blobs.open_writer(inp.reference, name) as out:
            try:
                for n, (decision, record) in enumerate(self._decide(inp, facts) if self.datamap else ()):
                    if _free_text(decision):
                        if redactor is None:
                            redactor = Redactor(profile or SubjectProfile())
                        decision = _redact_free_text(decision, record, redactor)
                    out.write(decision.dump())
                    if n % 500 == 0:
                        activity.heartbeat()
            except ExemptionError as e:  # the data map and the data disagree: an engineer must fix it
                raise ApplicationError(str(e), type="ExemptionError", non_retryable=True) from None
        return self._package(inp, facts, out.ref, amendments=[])

    @activity.defn(name="amend_review")
    def amend_review(self, inp: AmendInput) -> ReviewSummary:
        facts = self._facts(inp.review)
        by_key = {(a.system, a.key) for a in inp.amendments}
        wanted: dict[tuple[str, str], dict[str, Any]] = {}
        if any(a.text for a in inp.amendments) and self.datamap is not None:
            for decision, record in self._decide(inp.review, facts):
                if (decision.system, decision.key) in by_key:
                    wanted[(decision.system, decision.key)] = record
        seen: set[tuple[str, str]] = set()
        with self.blobs.open_writer(inp.review.reference, "review-decisions.jsonl") as out:
            for line in self._lines(inp.decisions_ref):
                decision = RecordDecision.load(line)
                pair = (decision.system, decision.key)
                if pair in by_key:
                    seen.add(pair)
                    for a in inp.amendments:
                        if (a.system, a.key) == pair:
                            decision = _amend(
                                decision, a, inp.actor, wanted.get(pair), inp.review.request_type
                            )
                out.write(decision.dump())
        missing = sorted(f"{s}/{k}" for s, k in by_key - seen)
        if missing:
            out_ref = out.ref
            self.blobs.delete(out_ref)
            raise ApplicationError(
                f"no such record in this case's results: {', '.join(missing)}",
                type="UnknownRecord",
                non_retryable=True,
            )
        return self._package(inp.review, facts, out.ref, amendments=inp.amendments, actor=inp.actor)

    # -- helpers -------------------------------------------------------------------------------

    def _facts(self, inp: ReviewInput) -> CaseFacts:
        received = date.fromisoformat(inp.received) if inp.received else activity.info().started_time.date()
        return CaseFacts(inp.regime, inp.request_type, received, inp.reference)

    def _lines(self, ref: str) -> Iterator[bytes]:
        return json_lines(self.blobs.open_reader(ref))

    def _package(
        self,
        inp: ReviewInput,
        facts: CaseFacts,
        decisions_ref: str,
        amendments: list[ReviewAmendment],
        actor: str = "",
    ) -> ReviewSummary:
        decisions = [RecordDecision.load(line) for line in self._lines(decisions_ref)]
        searched = [
            (s.system, entity)
            for s in inp.systems
            if self.datamap is not None
            and s.system in self.datamap.systems
            and self.datamap.system(s.system).manual is None
            and s.status in ("found", "none")
            for entity in self.datamap.system(s.system).entities
        ]
        package = build_review_package(facts, decisions, searched=searched)
        base = default_outcome(inp.request_type)
        exempt = sum(1 for d in decisions if d.outcome is not base or d.fields)
        text = _header(inp) + render_review_package(package) + _amendments_text(amendments, actor)
        ref = self.blobs.put(text.encode(), case=inp.reference, name="review-package.txt")
        self.blobs.put(
            json.dumps(package.as_dict(), indent=1).encode(), case=inp.reference, name="review-package.json"
        )
        return ReviewSummary(
            summary=text,
            blob_ref=ref,
            decisions_ref=decisions_ref,
            records=len(decisions) + sum(s.records for s in inp.systems if _manual(self.datamap, s)),
            exemptions_applied=exempt,
            counts={k: v for k, v in package.counts.items() if v},
            needs_confirmation=list(package.needs_confirmation),
        )


def _tap(
    records: Iterator[tuple[str, str, dict[str, Any]]], held: list[dict[str, Any]]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Hand records to the evaluation one at a time, keeping the current one for the redactor."""
    for _, entity, record in records:
        held.append(record)
        yield entity, record


def _manual(datamap: DataMap | None, s: SystemResult) -> bool:
    """An upload from a search by hand (any format): the reviewer reads it as a whole."""
    return s.status == "found" and (
        datamap is None or s.system not in datamap.systems or datamap.system(s.system).manual is not None
    )


def _free_text(decision: RecordDecision) -> bool:
    """A field the rules mark for the redactor (``mentions_others``)."""
    return any(
        f.outcome is Outcome.REDACT and any(MENTIONS_OTHERS in b.condition for b in f.basis)
        for f in decision.fields
    )


def _redact_free_text(
    decision: RecordDecision, record: Mapping[str, Any], redactor: Redactor
) -> RecordDecision:
    """Run the redactor over each free-text field the rules marked: a field naming nobody else is
    disclosed whole; one that does keeps its text with the other people's data replaced."""
    kept: list[FieldDecision] = []
    redacted: dict[str, str] = {}
    for f in decision.fields:
        if f.outcome is Outcome.REDACT and any(MENTIONS_OTHERS in b.condition for b in f.basis):
            value = record.get(f.field)
            result = redactor.redact(value) if isinstance(value, str) else None
            if result is None or not result.redacted:
                continue  # nobody else named: nothing to remove
            redacted[f.field] = result.text
        kept.append(f)
    outcome = decision.outcome
    if not kept and outcome is Outcome.REDACT:
        outcome = Outcome.DISCLOSE
    return replace(
        decision, fields=kept, outcome=outcome, redacted=redacted, basis=decision.basis if kept else []
    )


def _amend(
    decision: RecordDecision,
    a: ReviewAmendment,
    actor: str,
    record: Mapping[str, Any] | None,
    request_type: RequestType,
) -> RecordDecision:
    basis = Basis("", _REVIEWER, "", f"{a.reason} (decided by {actor})", "set by the reviewer")
    if a.action is ReviewActionKind.WITHHOLD:
        a = replace(a, action=ReviewActionKind.OVERRIDE, outcome=Outcome.WITHHOLD.value, field="")
    if a.action is ReviewActionKind.OVERRIDE and not a.field:
        outcome = Outcome(a.outcome)
        return replace(decision, outcome=outcome, fields=[], basis=[basis], redacted={})
    outcome = Outcome.REDACT if a.action is ReviewActionKind.REDACT else Outcome(a.outcome)
    fields = [f for f in decision.fields if f.field != a.field]
    redacted = dict(decision.redacted)
    redacted.pop(a.field, None)
    if a.action is ReviewActionKind.REDACT and a.text:
        current = decision.redacted.get(a.field)
        if current is None:
            value = (record or {}).get(a.field)
            current = value if isinstance(value, str) else ""
        if a.text not in current:
            raise ApplicationError(
                f"the words to redact do not appear in {decision.key}.{a.field}",
                type="NotFound",
                non_retryable=True,
            )
        redacted[a.field] = current.replace(a.text, MARKER.format(reason="removed by the reviewer"))
    if outcome is not default_outcome(request_type):
        fields.append(FieldDecision(a.field, outcome, [basis]))
    record_outcome = default_outcome(request_type)
    if any(f.outcome is not record_outcome for f in fields):
        record_outcome = (
            Outcome.REDACT
            if request_type in DISCLOSING
            else (Outcome.RETAIN if request_type is RequestType.ERASURE else Outcome.REFUSE)
        )
    keep_basis = [b for b in decision.basis if any(b in f.basis for f in fields)]
    return replace(
        decision,
        outcome=record_outcome,
        fields=fields,
        redacted=redacted,
        basis=[*keep_basis, basis] if fields else [basis],
    )


def _header(inp: ReviewInput) -> str:
    found = [s for s in inp.systems if s.status == "found"]
    lines = [
        f"Review package for {inp.reference}: {REQUEST_LABELS[inp.request_type]} request.",
        f"Found {sum(s.records for s in found)} record(s) in {len(found)} of {len(inp.systems)} "
        "system(s) searched.",
        "",
    ]
    for s in inp.systems:
        what = f"{s.records} record(s): {s.detail}" if s.status == "found" else s.detail or s.status
        lines.append(f"- {s.system}: {s.status}, {what}")
    return "\n".join(lines) + "\n\n"


def _amendments_text(amendments: list[ReviewAmendment], actor: str) -> str:
    if not amendments:
        return ""
    lines = ["", f"Amended by the reviewer ({actor}):"]
    for a in amendments:
        what = {
            ReviewActionKind.OVERRIDE: f"set to {a.outcome}",
            ReviewActionKind.WITHHOLD: "withheld",
            ReviewActionKind.REDACT: "words removed" if a.text else "redacted",
        }[a.action]
        where = f"{a.system} {a.key}" + (f" field {a.field}" if a.field else "")
        lines.append(f"- {where}: {what}. Why: {a.reason}")
    return "\n".join(lines) + "\n"
