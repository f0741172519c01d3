"""Server-side staff sessions: the browser holds only a random key, the register holds the rest.

A session ends when its member of staff signs out, after ``DSAR_STAFF_IDLE_MINUTES`` without a
request, or ``DSAR_STAFF_SESSION_HOURS`` after sign-in, whichever comes first. Only a SHA-256 of
the cookie is stored, so a copy of the database does not sign anyone in. Each session carries
its own CSRF token, which every form posts back (the synchronizer-token pattern).

A sign-in in progress (the OpenID state, nonce and PKCE verifier) is kept the same way, bound to
a second short-lived cookie, so that the answer coming back from the provider is accepted only in
the browser that asked for it (no login CSRF), once, within ``SIGN_IN_MINUTES``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, Text, delete
from sqlmodel import Field, Session, SQLModel, col, select

from console.auth.roles import Staff, known_roles
from dsar.settings import Settings
from dsar.store import UTCDateTime, create_tables, write_session

#: How long a sign-in may take at the provider.
SIGN_IN_MINUTES = 10
#: ``last_seen`` is written at most this often (a page view is not worth a write each time).
TOUCH_SECONDS = 60


class StaffSession(SQLModel, table=True):
    __tablename__ = "staff_session"

    id: str = Field(primary_key=True)  # SHA-256 of the cookie value
    sub: str
    name: str = ""
    roles: str = Field(default="[]", sa_type=Text)  # JSON list
    csrf: str
    id_token: str | None = Field(default=None, sa_type=Text)  # for the provider's sign-out
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_seen: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class SignInAttempt(SQLModel, table=True):
    __tablename__ = "staff_sign_in"

    state: str = Field(primary_key=True)  # SHA-256 of the OpenID state
    binding: str  # SHA-256 of the browser's sign-in cookie
    nonce: str
    code_verifier: str
    next_path: str = "/console"
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


@dataclass(frozen=True)
class ActiveSession:
    staff: Staff
    csrf: str
    id_token: str | None
    expires_at: datetime

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf, sent or "")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class SessionStore:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.idle = timedelta(minutes=settings.staff_idle_minutes)
        self.lifetime = timedelta(hours=settings.staff_session_hours)
        create_tables(engine, [StaffSession.__table__, SignInAttempt.__table__])  # type: ignore[attr-defined]

    # ---- sessions

    def create(self, staff: Staff, id_token: str | None = None) -> str:
        """A new session; returns the cookie value (never stored as such)."""
        cookie = secrets.token_urlsafe(32)
        now = _now()
        row = StaffSession(
            id=_digest(cookie),
            sub=staff.sub,
            name=staff.name,
            roles=json.dumps(list(staff.roles)),
            csrf=secrets.token_urlsafe(32),
            id_token=id_token,
            created_at=now,
            last_seen=now,
            expires_at=now + self.lifetime,
        )
        with write_session(self.engine) as session:
            session.exec(delete(StaffSession).where(col(StaffSession.expires_at) < now))
            session.add(row)
            session.commit()
        return cookie

    def load(self, cookie: str) -> ActiveSession | None:
        """The session behind a cookie, if it is still alive (and mark it as used)."""
        now = _now()
        with write_session(self.engine) as session:
            row = session.get(StaffSession, _digest(cookie))
            if row is None:
                return None
            if now >= row.expires_at or now - row.last_seen >= self.idle:
                session.delete(row)
                session.commit()
                return None
            if (now - row.last_seen).total_seconds() >= TOUCH_SECONDS:
                row.last_seen = now
                session.add(row)
                session.commit()
            roles = known_roles(json.loads(row.roles))
            return ActiveSession(
                staff=Staff(sub=row.sub, roles=roles, name=row.name),
                csrf=row.csrf,
                id_token=row.id_token,
                expires_at=row.expires_at,
            )

    def end(self, cookie: str) -> None:
        with write_session(self.engine) as session:
            session.exec(delete(StaffSession).where(col(StaffSession.id) == _digest(cookie)))
            session.commit()

    # ---- sign-ins in progress

    def begin_sign_in(self, binding: str, state: str, nonce: str, code_verifier: str, next_path: str) -> None:
        now = _now()
        with write_session(self.engine) as session:
            stale = now - timedelta(minutes=SIGN_IN_MINUTES)
            session.exec(delete(SignInAttempt).where(col(SignInAttempt.created_at) < stale))
            session.add(
                SignInAttempt(
                    state=_digest(state),
                    binding=_digest(binding),
                    nonce=nonce,
                    code_verifier=code_verifier,
                    next_path=next_path,
                    created_at=now,
                )
            )
            session.commit()

    def take_sign_in(self, state: str, binding: str) -> SignInAttempt | None:
        """The sign-in this answer belongs to, used up; None if it is unknown, stale, or was
        started in another browser."""
        with write_session(self.engine) as session:
            row = session.get(SignInAttempt, _digest(state))
            if row is None:
                return None
            session.delete(row)
            session.commit()
        if not hmac.compare_digest(row.binding, _digest(binding)):
            return None
        if _now() - row.created_at > timedelta(minutes=SIGN_IN_MINUTES):
            return None
        return row

    def count(self) -> int:
        with Session(self.engine) as session:
            return len(session.exec(select(StaffSession.id)).all())
