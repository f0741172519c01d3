"""Demo cases opened on a fresh ``make run``, so the console and the Web UI show moving cases."""

from __future__ import annotations

from demo.seed import MARGARET, PETER, SUBSCRIBER
from dsar.model import Channel, Regime, RequestType
from intake.service import NewRequest

DEMO_REQUESTS = [
    NewRequest(
        request_type=RequestType.ACCESS,
        regime=Regime.UK_GDPR,
        identifiers={k: MARGARET[k] for k in ("name", "email", "phone", "postcode")},
        channel=Channel.EMAIL,
    ),
    NewRequest(
        request_type=RequestType.ERASURE,
        regime=Regime.UK_GDPR,
        identifiers={k: PETER[k] for k in ("name", "email", "account_number")},
        channel=Channel.WEB_FORM,
    ),
    NewRequest(
        request_type=RequestType.OPT_OUT_SALE_SHARING,
        regime=Regime.CCPA,
        identifiers={k: SUBSCRIBER[k] for k in ("name", "email")},
        channel=Channel.API,
    ),
]
