"""The regime: a law the person names, where they say they live, their address or phone, the
mailbox they wrote to, and the controller's default, in that order of precedence.
"""

from __future__ import annotations

import re

from dsar.model import Regime
from intake.mail.identifiers import FoundIdentifiers
from intake.mail.message import MailboxPolicy

_FAMILY_GDPR = "GDPR"


LAW_RULES: list[tuple[Regime | str, re.Pattern[str]]] = [
    (
        Regime.UK_GDPR,
        re.compile(
            r"\buk gdpr\b|\bdata protection act 2018\b|\bdpa 2018\b|\bico\b"
            r"|\binformation commissioner"
        ),
    ),
    (Regime.EU_GDPR, re.compile(r"\beu gdpr\b|\bdsgvo\b|\brgpd\b|\bavg\b|\bregulamento geral")),
    (_FAMILY_GDPR, re.compile(r"(?<!uk )(?<!eu )\bgdpr\b|\bgeneral data protection regulation\b|2016/679")),
    (
        Regime.CCPA,
        re.compile(
            r"\bccpa\b|\bcpra\b|california consumer privacy act|california privacy rights act"
            r"|\b1798\.\d+"
        ),
    ),
    (Regime.VCDPA, re.compile(r"\bvcdpa\b|virginia consumer data protection act")),
    (Regime.CPA, re.compile(r"colorado privacy act")),
    (Regime.CTDPA, re.compile(r"\bctdpa\b|connecticut data privacy act")),
    (Regime.UCPA, re.compile(r"\bucpa\b|utah consumer privacy act")),
    (Regime.LGPD, re.compile(r"\blgpd\b|lei geral de prote[çc][ãa]o de dados|\b13\.709\b")),
    (Regime.PIPEDA, re.compile(r"\bpipeda\b|personal information protection and electronic documents act")),
]


_EU_PLACES = (
    r"(?<!northern )ireland|germany|deutschland|france|spain|espa[ñn]a|italy|italia|netherlands|holland"
    r"|belgium|belgique|austria|[öo]sterreich|portugal|sweden|denmark|finland|poland|greece|czech"
    r"|slovakia|hungary|romania|bulgaria|croatia|slovenia|estonia|latvia|lithuania|luxembourg|malta|cyprus"
    r"|dublin|cork|galway|berlin|munich|m[üu]nchen|hamburg|paris|lyon|madrid|barcelona|rome|milan|amsterdam"
    r"|rotterdam|brussels|vienna|wien|lisbon|lisboa|porto|stockholm|copenhagen|helsinki|warsaw|athens"
    r"|european union|eu resident|eu citizen"
)


_UK_PLACES = (
    r"united kingdom|\buk\b|\bu\.k\.|great britain|\bbritain\b|\bbritish\b(?! columbia)|\bengland\b|scotland"
    r"|\bwales\b|northern ireland|london|manchester|birmingham|leeds|glasgow|edinburgh|cardiff|belfast"
    r"|bristol|liverpool|coventry|sheffield|newcastle|nottingham|leicester|brighton|derry|swansea"
)


LOCATION_RULES: list[tuple[Regime, re.Pattern[str]]] = [
    (
        Regime.CCPA,
        re.compile(r"\bcalifornia\b|\bcalifornian\b|los angeles|san francisco|san diego|sacramento"),
    ),
    (Regime.VCDPA, re.compile(r"(?<!west )\bvirginia\b|\brichmond, va\b")),
    (Regime.CPA, re.compile(r"\bcolorado\b|\bdenver\b")),
    (Regime.CTDPA, re.compile(r"\bconnecticut\b|\bhartford\b")),
    (Regime.UCPA, re.compile(r"\butah\b|salt lake city")),
    (Regime.LGPD, re.compile(r"\bbra[sz]il\b|\bbrasileir[oa]\b|s[ãa]o paulo|rio de janeiro|belo horizonte")),
    (
        Regime.PIPEDA,
        re.compile(
            r"\bcanad(?:a|ian|ienne|ien)\b|\bontario\b|\bqu[ée]bec\b|british columbia"
            r"|\balberta\b|manitoba|saskatchewan|nova scotia|new brunswick|newfoundland"
            r"|toronto|montr[ée]al|vancouver|ottawa|calgary|winnipeg"
        ),
    ),
    (Regime.EU_GDPR, re.compile(rf"\b(?:{_EU_PLACES})\b")),
    (Regime.UK_GDPR, re.compile(rf"(?:{_UK_PLACES})")),
]


_PHONE_REGIONS: dict[str, Regime] = {"GB": Regime.UK_GDPR, "BR": Regime.LGPD, "CA": Regime.PIPEDA}


_EU_REGIONS = {"IE", "DE", "FR", "ES", "IT", "NL", "BE", "AT", "PT", "SE", "DK", "FI", "PL", "GR", "CZ", "LU"}


W_LAW, W_PLACE, W_RESIDENCE, W_ADDRESS, W_PHONE, W_MAILBOX, W_DEFAULT = 5, 2, 4, 2, 1, 2, 1


_RESIDENCE_BEFORE = (
    r"(?:live in|living in|reside in|residing in|resident of|resident in|based in|i'm in|i am in|moved to"
    r"|i'm from|i am from|home is in|home in|address is in|i'm living in|i am living in|moved back to"
    r"|writing from|back in|living at|resident at"
    # the same in the languages people write to a European privacy mailbox in
    r"|j'habite(?: en| au| aux| à| a)?|je (?:vis|r[ée]side|demeure)(?: en| au| aux| à| a)?"
    r"|ich wohne in|wohne in|ich lebe in|wohnhaft in|vivo en|resido en|vivo in|abito (?:in|a)"
    r"|risiedo (?:in|a)|ik woon in|woon in|moro (?:em|no|na|nos)|resido (?:em|no|na))"
    r"\s+(?:the\s+)?(?:state of |province of |city of )?"
)


_RESIDENCE_AFTER = r"\s+(?:resident|residents|consumer|citizen)\b"


_TOWN = r"(?:[\w'\-]+(?: [\w'\-]+)?,? )?"


_RESIDENCE_RULES = {
    regime: re.compile(
        rf"{_RESIDENCE_BEFORE}{_TOWN}(?:{pattern.pattern})|(?:{pattern.pattern}){_RESIDENCE_AFTER}"
    )
    for regime, pattern in LOCATION_RULES
}


def places_named(text: str) -> list[Regime]:
    """Regimes of the places that stand on a line of their own, as the last lines of an address
    or a signature do ("Rotterdam" / "Netherlands", "Calgary, Alberta"): where the writer is,
    without saying "I live in"."""
    found: list[Regime] = []
    for line in text.splitlines()[-60:]:
        line = line.strip(" \t,.").lower()
        if not line or len(line) > 40:
            continue
        for regime, pattern in LOCATION_RULES:
            m = pattern.search(line)
            if m and m.end() == len(line) and re.fullmatch(r"(?:[\w .'\-]+,\s*)?", line[: m.start()]):
                if regime not in found:
                    found.append(regime)
                break
    return found


def pick_regime(
    text: str,
    found: FoundIdentifiers,
    mailbox: Regime | None,
    mailbox_rule: str,
    policy: MailboxPolicy,
    place_lines: list[Regime] | None = None,
) -> tuple[Regime, str]:
    place_lines = place_lines or []
    scores: dict[Regime, float] = {}
    why: dict[Regime, list[str]] = {}

    def add(regime: Regime, weight: float, label: str) -> None:
        scores[regime] = scores.get(regime, 0) + weight
        if label not in why.setdefault(regime, []):
            why[regime].append(label)

    gdpr_named = False
    for target, pattern in LAW_RULES:
        if pattern.search(text):
            if isinstance(target, Regime):
                add(target, W_LAW, "names the law")
            else:
                gdpr_named = True
    for regime, pattern in LOCATION_RULES:
        if pattern.search(text):
            add(regime, W_PLACE, "the writer's stated location")
            if _RESIDENCE_RULES[regime].search(text):
                add(regime, W_RESIDENCE, "where the writer says they live")
    for regime in found.address_regimes:
        add(regime, W_ADDRESS, "the postal address given")
    for regime in place_lines:
        add(regime, W_ADDRESS, "a place on a line of its own (an address or signature)")
    if found.phone_region:
        phone_regime = _PHONE_REGIONS.get(found.phone_region) or (
            Regime.EU_GDPR if found.phone_region in _EU_REGIONS else None
        )
        if phone_regime:
            add(phone_regime, W_PHONE, "the phone number's country")
    if mailbox:
        add(mailbox, W_MAILBOX, mailbox_rule)
    add(policy.default_regime, W_DEFAULT, "the mailbox default")
    if gdpr_named:
        # "under GDPR": the UK's or the EU's, whichever the rest of the message points to
        uk, eu = scores.get(Regime.UK_GDPR, 0), scores.get(Regime.EU_GDPR, 0)
        add(Regime.UK_GDPR if uk > eu else Regime.EU_GDPR, W_LAW, "names the GDPR")
    # a tie goes to the regime the writer's own words point to, then to the mailbox's
    order = list(Regime)
    own_words = {r for r, labels in why.items() if set(labels) - {mailbox_rule, "the mailbox default"}}
    best = max(scores, key=lambda r: (scores[r], r in own_words, r == mailbox, -order.index(r)))
    return best, f"regime {best.value} ({', '.join(why[best])})"
