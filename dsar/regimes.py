"""Per-regime facts that letters and reports quote (LEGAL.md §1-2, §6)."""

from __future__ import annotations

from dataclasses import dataclass

from dsar.model import Regime, RequestType


@dataclass(frozen=True)
class RegimeFacts:
    label: str
    authority: str  # where a person may complain
    extension_basis: str | None  # the provision that allows an extension, None if there is none


REGIMES: dict[Regime, RegimeFacts] = {
    Regime.UK_GDPR: RegimeFacts(
        "UK GDPR", "the Information Commissioner's Office (ico.org.uk)", "UK GDPR Article 12A"
    ),
    Regime.EU_GDPR: RegimeFacts(
        "GDPR", "the data protection supervisory authority of your member state", "GDPR Article 12(3)"
    ),
    Regime.CCPA: RegimeFacts(
        "CCPA/CPRA", "the California Privacy Protection Agency", "Cal. Civ. Code §1798.130(a)(2)(A)"
    ),
    Regime.VCDPA: RegimeFacts("VCDPA", "the Virginia Attorney General", "Va. Code §59.1-577(B)(1)"),
    Regime.CPA: RegimeFacts("Colorado Privacy Act", "the Colorado Attorney General", "C.R.S. §6-1-1306(2)"),
    Regime.CTDPA: RegimeFacts("CTDPA", "the Connecticut Attorney General", "Conn. Gen. Stat. §42-518(c)(1)"),
    Regime.UCPA: RegimeFacts("UCPA", "the Utah Division of Consumer Protection", "Utah Code §13-61-203"),
    Regime.LGPD: RegimeFacts("LGPD", "the Autoridade Nacional de Proteção de Dados (ANPD)", None),
    Regime.PIPEDA: RegimeFacts("PIPEDA", "the Office of the Privacy Commissioner of Canada", "PIPEDA s 8(4)"),
}

REQUEST_LABELS: dict[RequestType, str] = {
    RequestType.ACCESS: "access (a copy of your personal data)",
    RequestType.ERASURE: "erasure",
    RequestType.RECTIFICATION: "correction",
    RequestType.PORTABILITY: "data portability",
    RequestType.RESTRICTION: "restriction of processing",
    RequestType.OBJECTION: "objection to processing",
    RequestType.OPT_OUT_SALE_SHARING: "opt-out of sale or sharing",
    RequestType.LIMIT_SENSITIVE: "limit the use of sensitive personal information",
}
