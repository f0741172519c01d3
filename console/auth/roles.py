"""Who a member of staff is and what they may do.

Roles come from the identity provider (a configurable claim) or, in development, from the
local sign-in page. ``operator`` works cases, ``reviewer`` approves what is disclosed or erased,
``admin`` may do both, and ``owner:<system>`` is the person who searches one manually searched
system (the CCTV recorder, a paper archive): they see only that system's tasks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

OPERATOR = "operator"
REVIEWER = "reviewer"
ADMIN = "admin"
ROLES = frozenset({OPERATOR, REVIEWER, ADMIN})
#: ``owner:<system>``: searches one system by hand (the data map's ``connector: manual``).
OWNER_PREFIX = "owner:"
_SYSTEM = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
#: What may stand for a member of staff in the audit trail ("operator:alice@example.com").
_ACTOR_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,120}$")


def is_role(name: str) -> bool:
    """A role dsar knows: one of ``ROLES``, or ``owner:<system>``."""
    if name in ROLES:
        return True
    return name.startswith(OWNER_PREFIX) and bool(_SYSTEM.match(name.removeprefix(OWNER_PREFIX)))


def check_actor_name(name: str) -> str:
    """The name the audit trail records. Refused rather than mangled when it could be confused
    with a role separator or hold odd characters: who decided must be unambiguous."""
    if not _ACTOR_NAME.match(name):
        raise ValueError(
            "a staff member's name must be 1-120 letters, digits or . _ @ + - "
            "(the identity provider's username claim, or the development sign-in's name)"
        )
    return name


@dataclass(frozen=True)
class Staff:
    """A verified member of staff: who (``sub``) and what they may do (``roles``)."""

    sub: str
    roles: tuple[str, ...]
    name: str = ""  # as shown on pages (the provider's ``name``), never used to decide anything

    def has(self, *roles: str) -> bool:
        """Admin may do everything; otherwise one of ``roles`` must be held."""
        return ADMIN in self.roles or any(r in self.roles for r in roles)

    def actor(self, *roles: str) -> str:
        """``role:sub`` for the audit trail, naming the role that authorised the action."""
        held = [r for r in roles if r in self.roles] or ([ADMIN] if ADMIN in self.roles else list(self.roles))
        return f"{held[0]}:{self.sub}" if held else self.sub

    @property
    def owned_systems(self) -> tuple[str, ...]:
        """The manually searched systems this person searches."""
        return tuple(r.removeprefix(OWNER_PREFIX) for r in self.roles if r.startswith(OWNER_PREFIX))

    def owns(self, system: str) -> bool:
        return ADMIN in self.roles or f"{OWNER_PREFIX}{system}" in self.roles

    @property
    def works_cases(self) -> bool:
        """May see the queue and case pages (an owner sees only their own tasks)."""
        return self.has(OPERATOR, REVIEWER)


def known_roles(names: Iterable[str]) -> tuple[str, ...]:
    """The roles dsar knows among ``names``, in order, without repeats (others are ignored: an
    identity provider's groups usually include many that mean nothing here)."""
    out: list[str] = []
    for name in names:
        if isinstance(name, str) and is_role(name) and name not in out:
            out.append(name)
    return tuple(out)
