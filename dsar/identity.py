"""Which person-records a set of identifiers points to.

A search must collect the requester's records and nobody else's: a household shares a postal
address, namesakes share a name. Records are scored by how many identifier kinds match them, and
only the best-scoring ones are taken, and then only if the match is distinctive (two kinds agree,
or one kind that identifies a person on its own, such as an email address or account number).
Full verification (points per regime, fuzzy names, confirmation links) builds on this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dsar.model import IdentifierKind

#: Identifier kinds specific enough to point at one person by themselves.
DISTINCTIVE = frozenset(
    {IdentifierKind.EMAIL, IdentifierKind.PHONE, IdentifierKind.CUSTOMER_ID, IdentifierKind.ACCOUNT_NUMBER}
)


#: Distinctive kinds a household can share: a landline, a phone held on a shared address row.
#: Alone, they identify a person only when they point to one person record.
SHAREABLE = frozenset({IdentifierKind.PHONE})


@dataclass(frozen=True)
class MatchOutcome:
    keys: list[str]  # the person-records to collect; empty when none qualifies
    reason: str  # plain words for the case file (no identifier values)
    #: the identifiers point to more than one person and cannot tell them apart: not "nothing
    #: held" but a question for a person (the search makes it an operator task)
    ambiguous: bool = False


def strongest_match(matches: Mapping[str, Sequence[str]]) -> MatchOutcome:
    """Person keys matched by the most identifier kinds, if that match is distinctive and
    unambiguous. Records that tie on *different* evidence (A's email, B's phone) are different
    people: collecting either would be a guess, so neither is collected."""
    kinds: dict[str, set[str]] = defaultdict(set)
    for kind, keys in matches.items():
        for key in keys:
            kinds[key].add(kind)
    if not kinds:
        return MatchOutcome([], "no matching records")
    best = max(len(k) for k in kinds.values())
    top = sorted(key for key, k in kinds.items() if len(k) == best)
    evidence = {frozenset(kinds[key]) for key in top}
    if len(evidence) > 1:
        return MatchOutcome(
            [], "the identifiers point to different people: nothing collected", ambiguous=True
        )
    (agreed,) = evidence
    if best < 2 and not agreed & DISTINCTIVE:
        return MatchOutcome([], "only a weak match (a shared address or name alone): nothing collected")
    if best < 2 and len(top) > 1 and agreed <= SHAREABLE:
        shared = f"{len(top)} people (a shared line or address)"
        what = ", ".join(sorted(agreed))
        return MatchOutcome([], f"the {what} alone points to {shared}: nothing collected", ambiguous=True)
    return MatchOutcome(top, f"{len(top)} person record(s) matched on {', '.join(sorted(agreed))}")


def record_matches(matches: Mapping[str, Sequence[str]]) -> MatchOutcome:
    """For systems whose keys name records, not persons (objects, lines of an export): every
    record that two identifier kinds agree on, or one that identifies a person on its own.
    A record found only by a shared postcode or a name is somebody's, not necessarily theirs."""
    kinds: dict[str, set[str]] = defaultdict(set)
    for kind, keys in matches.items():
        for key in keys:
            kinds[key].add(kind)
    taken = sorted(key for key, k in kinds.items() if len(k) >= 2 or k & DISTINCTIVE)
    if not taken:
        reason = "only weak matches (a shared address or name alone): nothing collected"
        return MatchOutcome([], reason if kinds else "no matching records")
    agreed = sorted({kind for key in taken for kind in kinds[key]})
    return MatchOutcome(taken, f"{len(taken)} record(s) matched on {', '.join(agreed)}")
