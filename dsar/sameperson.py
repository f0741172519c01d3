"""The same person's other requests: repeats, duplicates, and what happened since.

A person who asks twice, or asks again soon after an answer, or whose data was erased by
another case after this one's search, should be seen by the team: a duplicate is merged
(one answer), a repeat supports (never makes) a "manifestly excessive" decision, and a review
after an erasure is warned that the data it shows may be gone.

Intake remembers each case's distinctive identifiers (email, phone, customer and account
numbers) as keyed hashes (HMAC-SHA256 under ``DSAR_SUPPRESSION_KEY``, normalised as the
connectors match them) with a keyed hash of the name, never a value in clear. Two cases are the
same person when at least one distinctive identifier agrees and nothing contradicts it: no
distinctive kind that both gave differs, and their names, where both gave one, agree. A
household sharing an address, or a namesake, agrees on no distinctive identifier; a husband
writing from his wife's email differs by name: neither is flagged.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Engine, select
from sqlmodel import Field, Session, SQLModel, col

from dsar.identity import DISTINCTIVE
from dsar.model import FINAL_STAGES, IdentifierKind, Stage
from dsar.store import Case, UTCDateTime, create_tables, write_session
from dsar.suppression import normalise

DISTINCTIVE_KINDS = frozenset(k.value for k in DISTINCTIVE)
NAME = IdentifierKind.NAME.value


class CaseIdentity(SQLModel, table=True):
    """One identifier of a case, as a keyed hash: what relates a case to the person's others."""

    __tablename__ = "case_identity"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(index=True, max_length=40)
    kind: str = Field(max_length=20)
    key_hash: str = Field(index=True, max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


@dataclass(frozen=True)
class RelatedCase:
    """Another request by the same person: its shape and dates, never their data."""

    reference: str
    request_type: str
    regime: str
    stage: str
    received_at: datetime
    closed_at: datetime | None
    agreed: tuple[str, ...]  # which kinds agree (email, phone, ...)

    @property
    def open(self) -> bool:
        return Stage(self.stage) not in FINAL_STAGES and self.stage != Stage.RESPONDED

    @property
    def answered(self) -> bool:
        return self.stage in (Stage.RESPONDED, Stage.CLOSED)


def _name_key(value: str) -> str:
    """A name as the comparison sees it: accents, case, punctuation and word order aside."""
    text = unicodedata.normalize("NFKD", value)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    words = "".join(c if c.isalpha() else " " for c in text).split()
    return " ".join(sorted(words))


class SamePerson:
    def __init__(self, engine: Engine, key: bytes, *, phone_region: str = "GB") -> None:
        if len(key) < 16:
            raise ValueError("the key must be at least 16 bytes")
        self.engine = engine
        self._key = key
        self._region = phone_region
        create_tables(engine, [CaseIdentity.__table__])  # type: ignore[attr-defined]

    def hashes(self, identifiers: Mapping[str, str]) -> dict[str, str]:
        """kind -> keyed hash, for the distinctive kinds and the name given."""
        out: dict[str, str] = {}
        for kind, value in identifiers.items():
            if kind == NAME:
                normalised: str | None = _name_key(value) or None
            elif kind in DISTINCTIVE_KINDS:
                normalised = normalise(kind, value, self._region)
            else:
                continue
            if normalised:
                message = f"{kind}\x00{normalised}".encode()
                out[kind] = hmac.new(self._key, message, hashlib.sha256).hexdigest()
        return out

    def remember(self, reference: str, identifiers: Mapping[str, str]) -> None:
        """Keep a case's hashes (idempotent: a replayed intake adds nothing)."""
        hashes = self.hashes(identifiers)
        with write_session(self.engine) as session:
            query = select(col(CaseIdentity.kind)).where(col(CaseIdentity.reference) == reference)
            known = set(session.execute(query).scalars())
            now = datetime.now(UTC)
            for kind, digest in hashes.items():
                if kind not in known:
                    session.add(CaseIdentity(reference=reference, kind=kind, key_hash=digest, created_at=now))
            session.commit()

    def _of(self, session: Session, references: list[str]) -> dict[str, dict[str, str]]:
        query = select(col(CaseIdentity.reference), col(CaseIdentity.kind), col(CaseIdentity.key_hash))
        out: dict[str, dict[str, str]] = {}
        for reference, kind, digest in session.execute(
            query.where(col(CaseIdentity.reference).in_(references))
        ):
            out.setdefault(reference, {})[kind] = digest
        return out

    def related(self, reference: str) -> list[RelatedCase]:
        """The same person's other cases, newest first."""
        with Session(self.engine) as session:
            mine = self._of(session, [reference]).get(reference, {})
            distinctive = {k: v for k, v in mine.items() if k in DISTINCTIVE_KINDS}
            if not distinctive:
                return []
            sharing = select(col(CaseIdentity.reference)).where(
                col(CaseIdentity.key_hash).in_(list(distinctive.values())),
                col(CaseIdentity.reference) != reference,
            )
            candidates = sorted(set(session.execute(sharing).scalars()))
            same: dict[str, tuple[str, ...]] = {}
            for other, hashes in self._of(session, candidates).items() if candidates else ():
                agreed = tuple(sorted(k for k, v in distinctive.items() if hashes.get(k) == v))
                contradicted = any(k in hashes and hashes[k] != v for k, v in mine.items())
                if agreed and not contradicted:
                    same[other] = agreed
            if not same:
                return []
            columns = [col(getattr(Case, c)) for c in ("reference", "request_type", "regime", "stage")]
            columns += [col(Case.received_at), col(Case.closed_at)]
            query = select(*columns).where(col(Case.reference).in_(list(same)))
            rows = session.execute(query.order_by(col(Case.received_at).desc())).all()
        return [
            RelatedCase(ref, request_type, regime, stage, received, closed, agreed=same[ref])
            for ref, request_type, regime, stage, received, closed in rows
        ]


_CACHE: dict[tuple[str, bytes], SamePerson] = {}


def same_person(engine: Engine, key: bytes, phone_region: str = "GB") -> SamePerson:
    """One ``SamePerson`` per database and key in a process (its table is checked once)."""
    cache_key = (str(engine.url), key)
    if cache_key not in _CACHE:
        _CACHE[cache_key] = SamePerson(engine, key, phone_region=phone_region)
    return _CACHE[cache_key]


def days_since(moment: datetime | None, today: date) -> int | None:
    return None if moment is None else (today - moment.date()).days
