"""Which cases a review policy covers: four-eyes, a second approver.

A policy names cases by selectors, so that a controller can ask for more care where the law
or its own risk calls for it (an erasure cannot be undone; a CCPA request to know specific
pieces discloses most): ``*``, a regime (``UK_GDPR``), a request type (``erasure``), or both
(``CCPA/access``). Checked once at start-up (``Settings``); read by the workflow.
"""

from __future__ import annotations

from dsar.model import Regime, RequestType


def policy_applies(selectors: list[str], regime: Regime, request_type: RequestType) -> bool:
    """Whether a review policy (four-eyes, a second approver) covers a case. A selector is
    ``*``, a regime (``UK_GDPR``), a request type (``erasure``) or both (``CCPA/access``)."""
    for selector in selectors:
        if selector == "*":
            return True
        first, _, second = selector.partition("/")
        if second:
            if first == regime.value and second == request_type.value:
                return True
        elif first in (regime.value, request_type.value):
            return True
    return False


def check_selector(selector: str) -> str:
    """A review policy selector, refused at start-up when it names no regime or request type."""
    regimes, types = {r.value for r in Regime}, {t.value for t in RequestType}
    first, _, second = selector.partition("/")
    ok = selector == "*" or (
        (first in regimes and second in types) if second else (first in regimes or first in types)
    )
    if not ok:
        raise ValueError(
            f"{selector!r}: use '*', a regime ({', '.join(sorted(regimes))}), a request type "
            f"({', '.join(sorted(types))}) or REGIME/TYPE"
        )
    return selector
