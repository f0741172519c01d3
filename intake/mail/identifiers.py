"""The person's own identifiers, and an agent writing for them.

From labelled lines ("Account number: ..."), "my ... is" sentences, the signature, postal
addresses and phone numbers; the agent's name, organisation and authority when someone writes
on the person's behalf. Other people named in the message are not the person's identifiers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from dsar.model import AgentAuthority, AgentDetails, IdentifierKind, Regime
from intake.mail.cleaning import RequesterText
from intake.mail.headers import DAEMON, clean_header_text, name_like, valid_address

_US_STATE_REGIMES = {
    "CA": Regime.CCPA,
    "VA": Regime.VCDPA,
    "CO": Regime.CPA,
    "CT": Regime.CTDPA,
    "UT": Regime.UCPA,
}


AGENT = re.compile(
    r"\bon behalf of (?:my|our|the) (?:client|mother|mum|mom|father|dad|son|daughter|child|children|wife"
    r"|husband|partner|brother|sister|grandmother|grandfather|gran|grandma|grandpa|aunt|uncle|friend"
    r"|customer|consumer|member|late)\b|\bon (?:his|her|their) behalf\b|\b(?:our|my) client(?:'s)?\b"
    r"|\bauthori[sz]ed agent\b|\bwe (?:act|are acting) (?:for|on behalf of)\b|\bacting on behalf of\b"
    r"|\bpower of attorney\b|\blasting power\b|\bletter of authority\b|\bform of authority\b"
    r"|\bsigned (?:authori[sz]ation|permission|consent)\b|\bem nome d[eao]\b|\bprocura[çc][ãa]o\b"
    r"|\bau nom de\b|\bmandataire\b|\bprocuration\b|\bim auftrag\b|\bim namen\b|\bvollmacht\b|\bmandant"
)


AGENT_NAMED = re.compile(r"\b[Oo]n behalf of (?:(?:Mr|Mrs|Ms|Miss|Dr|Mx)\.? )?[A-Z][a-z]+ [A-Z][a-z]+")


_POWER_OF_ATTORNEY = re.compile(
    r"power of attorney|lasting power|procura[çc][ãa]o|procuration|vollmacht|\bexecutor\b|\bdeputy\b"
)


_ORGANISATION = re.compile(
    r"\b(?:solicitors?|llp|ltd|limited|inc|llc|law|legal|advocacia|advogados|avocats|rechtsanw[äa]lte|kanzlei"
    r"|associates|chambers|privacy services?)\b",
    re.IGNORECASE,
)


def agent_details(requester: RequesterText, text: str) -> AgentDetails:
    organisation = ""
    for line in [requester.name, *requester.signature.splitlines()]:
        if _ORGANISATION.search(line) and len(line) < 100:
            organisation = clean_header_text(line, 100)
            break
    authority = (
        AgentAuthority.POWER_OF_ATTORNEY
        if _POWER_OF_ATTORNEY.search(text)
        else AgentAuthority.WRITTEN_PERMISSION
    )
    name = name_like(requester.name) or ""
    return AgentDetails(
        name=name, email=requester.address or "", authority=authority, organisation=organisation
    )


@dataclass
class FoundIdentifiers:
    values: dict[str, str]
    address_regimes: list[Regime]
    phone_region: str | None


_UK_POSTCODE = re.compile(
    r"\b(GIR ?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})\b", re.IGNORECASE
)


_US_ZIP = re.compile(
    r"\b(AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY"
    r"|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)\s+(\d{5}(?:-\d{4})?)\b"
)


_CA_POSTCODE = re.compile(r"\b([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d)\b")


_BR_CEP = re.compile(r"\b(\d{5}-\d{3})\b")


_CA_PROVINCES = r"(?:ON|QC|BC|AB|MB|SK|NS|NB|NL|PE|YT|NT|NU)"


_STREET = re.compile(
    r"^\s*(?:(?:flat|apartment|apt|unit|suite)\s*\w+,?\s*)?\d{1,5}[A-Za-z]?,?\s+[A-Za-zÀ-ÿ'.\- ]{2,60}"
    r"|\b(?:road|street|st\.?|lane|avenue|ave\.?|drive|close|way|court|place|crescent|terrace|gardens"
    r"|grove|rua|avenida|boulevard|blvd|rue|stra(?:ß|ss)e|str\.|hill|row|walk|mews|square|parade)\b",
    re.IGNORECASE,
)


_LABEL = re.compile(r"^\s*(?:[-*•]\s*)?(?P<label>[A-Za-zÀ-ÿ'./# ]{2,40}?)\s*[:\uff1a]\s*(?P<value>.*)$")


_WHOSE = (
    r"(?:(?:your |our |the |my )?(?:client|customer|consumer|data subject|account holder|member)(?:'?s)? )?"
)


def _label(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"^{_WHOSE}(?:{pattern})$", re.IGNORECASE)


_LABELS: list[tuple[str, re.Pattern[str]]] = [
    (
        IdentifierKind.NAME,
        _label(
            r"(?:full |account )?name|client|our client|data subject|customer|consumer|account holder"
            r"|nome(?: completo)?|nom(?: complet)?|name des kunden|vollst[äa]ndiger name"
        ),
    ),
    (IdentifierKind.EMAIL, _label(r"(?:account |registered |login )?e-?mail(?: address)?|courriel")),
    (
        IdentifierKind.PHONE,
        _label(
            r"(?:home |work )?(?:phone|telephone|tel\.?|mobile|mob\.?|mobile number|cell|phone number"
            r"|contact number|telefone|t[ée]l[ée]phone|telefon|handy|celular)"
        ),
    ),
    (
        IdentifierKind.POSTAL_ADDRESS,
        _label(
            r"(?:postal |home |current |registered |previous |old |new )?address"
            r"|endere[çc]o|adresse|anschrift"
        ),
    ),
    (IdentifierKind.POSTCODE, _label(r"post ?code|zip(?: code)?|postal code|cep|plz|code postal")),
    (
        IdentifierKind.DATE_OF_BIRTH,
        _label(r"date of birth|dob|d\.o\.b\.?|birth date|data de nascimento|date de naissance|geburtsdatum"),
    ),
    (
        IdentifierKind.ACCOUNT_NUMBER,
        _label(
            r"(?:mobile |broadband )?account(?: number| no\.?| #| num)?|acct(?: no\.?)?|a/c(?: no\.?)?"
            r"|n[úu]mero da conta"
        ),
    ),
    (
        IdentifierKind.CUSTOMER_ID,
        _label(
            r"(?:customer|client|consumer|member|membership)(?:'?s)? (?:number|no\.?|id|ref(?:erence)?)"
            r"|loyalty card(?: number)?|kundennummer|n[úu]mero (?:de|do) cliente|num[ée]ro de client"
        ),
    ),
    (IdentifierKind.LAST_TRANSACTION, _label(r"order (?:number|no\.?|#|ref(?:erence)?)|order")),
]


_ID_VALUE = r"#?\s*([A-Z0-9][A-Z0-9\-/]{2,24})"


_INLINE: list[tuple[str, re.Pattern[str]]] = [
    (
        IdentifierKind.ACCOUNT_NUMBER,
        re.compile(rf"\bac+ount (?:number|no\.?|num|#|ref(?:erence)?)\s*(?:is|was|:)?\s*{_ID_VALUE}", re.I),
    ),
    (
        IdentifierKind.CUSTOMER_ID,
        re.compile(
            r"\b(?:customer|member(?:ship)?|loyalty card)\s*(?:number|no\.?|id|#|ref(?:erence)?)"
            r"\s*(?:is|was|:)?\s*"
            rf"{_ID_VALUE}|\bkundennummer\s*:?\s*{_ID_VALUE}|\bn[úu]mero de cliente\s*:?\s*{_ID_VALUE}",
            re.I,
        ),
    ),
    (
        IdentifierKind.LAST_TRANSACTION,
        re.compile(
            rf"\border\s*(?:number|no\.?|#|ref(?:erence)?)\s*(?:is|was|:)?\s*{_ID_VALUE}|\border\s+#\s*{_ID_VALUE}",
            re.I,
        ),
    ),
    (
        IdentifierKind.DATE_OF_BIRTH,
        re.compile(
            r"\b(?:date of birth|dob|d\.o\.b\.?|born on|birthday)\s*(?:is|was|as|:)?\s*"
            r"(\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{4}-\d{2}-\d{2}"
            r"|\d{1,2}(?:st|nd|rd|th)? [A-Za-z]{3,9},? \d{4}"
            r"|[A-Za-z]{3,9} \d{1,2}(?:st|nd|rd|th)?,? \d{4})",
            re.I,
        ),
    ),
]


_POSTCODE_SAID = re.compile(
    r"\b(?:post ?code|zip(?: code)?|postal code)\s*(?:is|was|:)?\s*"
    r"([A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|\d{5}(?:-\d{4})?|[A-Z]\d[A-Z] ?\d[A-Z]\d)\b",
    re.IGNORECASE,
)


_MY_NAME = re.compile(
    r"\b(?:my name is|i am called|je m'appelle|meu nome [ée]|mein name ist)\s+"
    r"((?:(?:Mr|Mrs|Ms|Miss|Dr)\.? )?[A-ZÀ-Ý][\w'\-]+(?: [A-ZÀ-Ý][\w'\-]+){0,3})"
)


_BEHALF_NAME = re.compile(
    r"\bon behalf of (?:(?:my|our|the) (?:client|mother|mum|mom|father|dad|son|daughter|wife|husband|partner"
    r"|brother|sister|grandmother|grandfather|customer|consumer),? )?"
    r"((?:(?:Mr|Mrs|Ms|Miss|Dr|Mx)\.? )?[A-ZÀ-Ý][\w'\-]+(?: [A-ZÀ-Ý][\w'\-]+){1,3})"
)


_MY_EMAIL = re.compile(
    r"\b(?:(?:my|her|his|their|client's) (?:account |registered |login |old |usual )?e-?mail(?: address)?"
    r"|registered (?:with|under|to)|signed up (?:with|using)|account is under)\s*(?:is|was|:)?\s*"
    r"(?:the address )?<?([A-Za-z0-9._%+\-']{1,64}@[A-Za-z0-9.\-]{1,200}\.[A-Za-z]{2,24})",
    re.I,
)


_ADDRESS_CONTEXT = re.compile(
    r"\b(?:(?:my|her|his|their|our client's|client's) (?:home |postal |current |old |previous |registered )?"
    r"address (?:is|was|:|from)?|i live at|(?:lives|living|reside|resides|residing|resident) at"
    r"|moved (?:from|to)|address (?:from|on file is|you have is|on (?:the|my|her|his|their) account"
    r"(?: is| was)?))\s*:?\s*",
    re.I,
)


_PHONE_CONTEXT = re.compile(
    r"(?:phone|tel|mobile|cell|number|call me|reach me|contact me|text me|telefone|t[ée]l[ée]phone|telefon"
    r"|handy|celular|whatsapp)",
    re.I,
)


def find_identifiers(requester: RequesterText, by_agent: bool) -> FoundIdentifiers:
    """The data subject's identifiers. For an agent's letter the sender, the letterhead and the
    signature are the agent's: only labelled lines and "on behalf of <name>" count then."""
    text = requester.text[:50_000]
    signature = requester.signature
    # an agent's letterhead (above "Dear ...") and signature are the agent's own details
    mine_text = _after_salutation(text[: requester.signature_at]) if by_agent else text
    flow = _flow(mine_text)  # sentences wrapped over lines, for "my account number is ..."
    values: dict[str, str] = {}
    regimes: list[Regime] = []

    labelled = _labelled(mine_text)
    for kind, value in labelled.items():
        values[kind] = value

    # name
    if IdentifierKind.NAME not in values:
        m = (_BEHALF_NAME.search(flow) if by_agent else None) or _MY_NAME.search(flow)
        candidate = name_like(m.group(1)) if m else None
        if not candidate and not by_agent:
            display = name_like(requester.name)
            signed = _signature_name(signature)
            if display and (len(display.split()) >= 2 or not signed):
                candidate = display
            else:
                candidate = signed or display
        if candidate:
            values[IdentifierKind.NAME] = candidate

    # email
    if IdentifierKind.EMAIL not in values:
        m = _MY_EMAIL.search(flow)
        email_value = valid_address(m.group(1)) if m else None
        if not email_value and not by_agent:
            email_value = requester.address
        if email_value and not DAEMON.match(email_value):
            values[IdentifierKind.EMAIL] = email_value
    elif values.get(IdentifierKind.EMAIL):
        checked = valid_address(values[IdentifierKind.EMAIL].strip("<>"))
        if checked:
            values[IdentifierKind.EMAIL] = checked
        else:
            del values[IdentifierKind.EMAIL]

    # reference numbers and date of birth written in sentences
    for kind, pattern in _INLINE:
        if kind in values:
            continue
        for m in pattern.finditer(flow):
            value = next((g for g in m.groups() if g), "")
            if kind == IdentifierKind.DATE_OF_BIRTH or re.search(r"\d", value):
                values[kind] = clean_header_text(value, 60).rstrip(".,;")
                break

    # postal address and postcode
    address, postcode, address_regime = _postal_address(
        labelled, flow, "" if by_agent else signature, "" if by_agent else text
    )
    if address and IdentifierKind.POSTAL_ADDRESS not in values:
        values[IdentifierKind.POSTAL_ADDRESS] = address
    if postcode and IdentifierKind.POSTCODE not in values:
        values[IdentifierKind.POSTCODE] = postcode
    if address_regime:
        regimes.append(address_regime)

    # phone
    phone_region = None
    if IdentifierKind.PHONE in values:
        normalised = _phone(values[IdentifierKind.PHONE], anywhere=True)
        if normalised:
            values[IdentifierKind.PHONE], phone_region = normalised
    else:
        found = _phone(mine_text, anywhere=False, signature_at=-1 if by_agent else requester.signature_at)
        if found:
            values[IdentifierKind.PHONE], phone_region = found

    clean = {str(k): clean_header_text(v, 200) for k, v in values.items() if v and clean_header_text(v, 200)}
    return FoundIdentifiers(clean, regimes, phone_region)


_SALUTATION = re.compile(
    r"^\s*(?:dear|to whom|hello|hi|good (?:morning|afternoon)|prezad|caro|cher|sehr geehrte)\b",
    re.IGNORECASE | re.MULTILINE,
)


_NOT_A_PHONE = re.compile(
    r"(?:account|customer|order|membership|card|policy|case)\s*(?:number|no\.?|num|#|id|ref\w*)\s*(?:is|was|:)?\s*$"
    r"|\bref(?:erence)?\s*(?:is|:)?\s*$|#\s*$|\b(?:cpf|cnpj|rg|nino|ssn|sin|iban)\W*$",
    re.IGNORECASE,
)


def _after_salutation(text: str) -> str:
    m = _SALUTATION.search(text[:3000])
    return text[m.start() :] if m else text


def _flow(text: str) -> str:
    """Join lines inside a paragraph (mail clients wrap at 72 columns); keep blank lines."""
    return re.sub(r"[ \t]*(?<!\n)\n(?!\n)[ \t]*", " ", text)


def _labelled(text: str) -> dict[str, str]:
    """Lines such as "Account number: NW-448812" or "Address: 14 Larch Road" (with its next lines)."""
    found: dict[str, str] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines[:400]):
        m = _LABEL.match(line)
        if not m:
            continue
        label = " ".join(m.group("label").lower().split())
        value = m.group("value").strip()
        for kind, pattern in _LABELS:
            if kind in found or not pattern.match(label):
                continue
            if kind == IdentifierKind.POSTAL_ADDRESS:
                parts = [value] if value else []
                for nxt in lines[i + 1 : i + 5]:
                    if not nxt.strip() or _LABEL.match(nxt):
                        break
                    parts.append(nxt.strip())
                value = ", ".join(p.strip(" ,") for p in parts if p.strip(" ,"))
            if kind == IdentifierKind.NAME:
                value = name_like(value) or ""
            if kind in (
                IdentifierKind.ACCOUNT_NUMBER,
                IdentifierKind.CUSTOMER_ID,
                IdentifierKind.LAST_TRANSACTION,
            ):
                value = value.split()[0].strip(".,;#") if value.split() else ""
                if not re.search(r"\d", value):
                    value = ""
            if value:
                found[kind] = value[:200]
            break
    return found


def _signature_name(signature: str) -> str | None:
    for line in signature.splitlines()[:3]:
        candidate = name_like(line)
        if candidate and all(t[0].isupper() for t in candidate.split()):
            return candidate
    return None


def _postcode_in(text: str) -> tuple[str, Regime | None] | None:
    m = _US_ZIP.search(text)
    if m:
        return m.group(2), _US_STATE_REGIMES.get(m.group(1))
    m = re.search(rf"\b{_CA_PROVINCES}\s+([A-Z]\d[A-Z] ?\d[A-Z]\d)\b", text) or _CA_POSTCODE.search(text)
    if m:
        return m.group(1).upper(), Regime.PIPEDA
    m = _UK_POSTCODE.search(text)
    if m:
        value = m.group(1).upper()
        if " " not in value:
            value = f"{value[:-3]} {value[-3:]}"
        return value, Regime.UK_GDPR
    m = _BR_CEP.search(text)
    if m and re.search(r"\b(?:cep|brasil|brazil|sp|rj|mg)\b", text, re.I):
        return m.group(1), Regime.LGPD
    return None


def _postal_address(
    labelled: dict[str, str], text: str, signature: str, letter: str
) -> tuple[str | None, str | None, Regime | None]:
    """A labelled address; else one introduced by "my address is"/"I live at" up to its
    postcode; else the address block above a postcode in the signature or the letterhead."""
    address = labelled.get(IdentifierKind.POSTAL_ADDRESS)
    if not address:
        for m in _ADDRESS_CONTEXT.finditer(text):
            tail = text[m.end() : m.end() + 160]
            span = _first_postcode_span(tail)
            if span is None:
                continue
            starts = list(_HOUSE_NUMBER.finditer(tail[: span[0]]))
            if starts and _STREET.search(tail[starts[-1].start() : span[0]]):
                found = tail[starts[-1].start() : span[1]]
                address = " ".join(found.replace("\n", ", ").split()).strip(" ,")
                break
    if not address:
        head = "\n".join(letter.splitlines()[:12])
        for block in (signature, head):
            address = _address_block(block)
            if address:
                break
    code = _postcode_in(address) if address else None
    if code is None and labelled.get(IdentifierKind.POSTCODE):
        code = _postcode_in(labelled[IdentifierKind.POSTCODE]) or (labelled[IdentifierKind.POSTCODE], None)
    if code is None and (said := _POSTCODE_SAID.search(text)):
        code = _postcode_in(said.group(1).upper()) or (said.group(1).upper(), None)
    if code is None and signature:
        code = _postcode_in(signature)
    return address, code[0] if code else None, code[1] if code else None


#: where a written address starts: "Flat 3, 41 Albert Road", "5 Orchard Way", "1540 Oak Grove Ave"
_HOUSE_NUMBER = re.compile(
    r"(?:\b(?:flat|apartment|apt|unit|suite)\s*\w+,?\s*)?(?<![\w-])\d{1,5}[A-Za-z]?,?\s+[A-Za-zÀ-ÿ]",
    re.IGNORECASE,
)


def _first_postcode_span(text: str) -> tuple[int, int] | None:
    """Where the first postcode or ZIP (with its state) in the text starts and ends."""
    best: tuple[int, int] | None = None
    for pattern in (_US_ZIP, _UK_POSTCODE, _CA_POSTCODE, _BR_CEP):
        m = pattern.search(text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), m.end())
    return best


#: the line above a street that still belongs to the address: a flat, or a house name
_ABOVE_STREET = re.compile(
    r"(?:flat|apartment|apt|unit|suite)\b|(?:the\s|.*\b(?:house|cottage|farm|rectory|vicarage|lodge|barn|mill"
    r"|manor|hall|villa|court|mansions|building)\b)",
    re.IGNORECASE,
)


def _address_block(block: str) -> str | None:
    """Lines ending at a postcode line, going up while they look like an address."""
    lines = [x.strip() for x in block.splitlines()]
    for i, line in enumerate(lines):
        if not line or _postcode_in(line) is None or _LABEL.match(line) or "@" in line:
            continue
        if _PHONE_CONTEXT.search(line):
            continue
        street_at = _STREET.search(line)
        if street_at and re.match(r"\s*(?:flat |apt |unit |suite )?\d", line, re.I):
            return line
        collected = [line]
        found_street = False
        for j in range(i - 1, max(-1, i - 5), -1):
            prev = lines[j]
            if not prev or "@" in prev or _LABEL.match(prev) or _PHONE_CONTEXT.search(prev):
                break
            if re.match(r"\s*(?:flat|apartment|apt|unit|suite)?\s*\d", prev, re.I) or _STREET.search(prev):
                collected.insert(0, prev)
                found_street = True
                if j > 0 and _ABOVE_STREET.match(lines[j - 1]):
                    collected.insert(0, lines[j - 1])
                break
            if len(prev.split()) <= 4 and not re.search(r"\d", prev):
                collected.insert(0, prev)
                continue
            break
        if found_street:
            return ", ".join(p.strip(" ,") for p in collected)
    return None


_NANP = re.compile(r"(?:\+?1[\s.\-]?)?(?:\(\d{3}\)|\d{3})[\s.\-]?\d{3}[\s.\-]?\d{4}")


def _phone(text: str, anywhere: bool, signature_at: int = -1) -> tuple[str, str | None] | None:
    """The first phone number the person gives as theirs: labelled, after "my number/mobile/call
    me", or in the signature; E.164. Ofcom drama numbers (07700 900xxx) are only "possible"
    numbers, hence the POSSIBLE leniency, checked against the number's shape."""
    sig_start = signature_at
    candidates: list[tuple[int, str, str | None]] = []
    for region in ("GB", "US"):
        try:
            matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE)
            for match in matcher:
                raw = match.raw_string.strip()
                if region == "GB" and not raw.startswith(("0", "+")):
                    continue
                if region == "US" and not _NANP.fullmatch(raw):
                    continue
                digits = re.sub(r"\D", "", raw)
                if len(digits) < 10:
                    continue
                before = text[max(0, match.start - 40) : match.start]
                in_signature = sig_start >= 0 and match.start >= sig_start
                if not (anywhere or in_signature or _PHONE_CONTEXT.search(before)):
                    continue
                if _NOT_A_PHONE.search(before):
                    continue
                e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
                candidates.append((match.start, e164, phonenumbers.region_code_for_number(match.number)))
        except Exception:
            continue
    if not candidates:
        return None
    candidates.sort()
    return candidates[0][1], candidates[0][2]
