"""Copies of the letters a case sent, for the case file the staff console shows.

Each letter is filed once (by its letter key, so a retried send files nothing twice) as an
encrypted copy in the case's blob store, with a register row that holds no personal data: the
kind, who it went to (the person, the team, a system's owner, or the post), how, and when. The
copy is made without credentials: a link the person must click, or an archive's password, is
replaced by a note saying it was sent, so that reading the case file never hands anyone the
person's download. The copies go with the case's other blobs when its retention ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, bindparam, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from dsar.store import UTCDateTime, create_tables


class FiledLetter(SQLModel, table=True):
    __tablename__ = "letter_filed"

    key: str = Field(primary_key=True)  # the letter key: "<reference>/letter/<kind>/<seq>"
    reference: str = Field(index=True)
    kind: str
    audience: str  # "person", "team", "staff", "post"
    transport: str  # "smtp", "file"
    copy_ref: str  # blob reference of the copy (an RFC 822 message, credentials removed)
    sent_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


@dataclass(frozen=True)
class LetterEntry:
    key: str
    kind: str
    audience: str
    transport: str
    copy_ref: str
    sent_at: datetime


# Core statements, built once: a letter is filed at every letter of every case.
_FILED = select(col(FiledLetter.key)).where(col(FiledLetter.key) == bindparam("key"))
_FILE = insert(FiledLetter.__table__)  # type: ignore[attr-defined]


class LetterLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, [FiledLetter.__table__])  # type: ignore[attr-defined]

    def filed(self, key: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(_FILED, {"key": key}).first() is not None

    def file(self, entry: LetterEntry, reference: str) -> None:
        """Record a letter's copy; a second filing of the same key is ignored."""
        try:
            with self.engine.begin() as conn:  # one INSERT: it waits for SQLite's write lock
                conn.execute(_FILE, {"reference": reference, **entry.__dict__})
        except IntegrityError:
            pass  # filed already by an earlier attempt

    def letters(self, reference: str) -> list[LetterEntry]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(FiledLetter)
                .where(col(FiledLetter.reference) == reference)
                .order_by(col(FiledLetter.sent_at))
            ).all()
            return [LetterEntry(r.key, r.kind, r.audience, r.transport, r.copy_ref, r.sent_at) for r in rows]
