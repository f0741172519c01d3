"""Identity verification: do the identifiers a requester gave match one person we hold?

Each SQL system offers :class:`connectors.base.Candidate` person-records (those that any supplied
identifier located) with every identifier they hold; :func:`match_identity` compares the
supplied identifiers with them, kind by kind, and counts points of identity (LEGAL.md §4: two
matching data points are a "reasonable", three a "reasonably high" degree of certainty).

Comparison is exact where a near miss is somebody else's identifier and fuzzy where people
write the same thing differently:

* email: trimmed and case-folded, then exact (constant time).
* phone: E.164 (``connectors.base.normalise_phone``, with the controller's region), exact.
* customer_id, account_number: trimmed and case-folded, exact (constant time).
* postcode: without spaces, upper case, exact.
* date_of_birth: ISO (``1958-03-14``, ``1958-3-14``), numeric (``14/03/1958``: day first,
  month first in month-first regions such as US) or written (``14 March 1958``,
  ``March 14th, 1958``); equal dates. Two-digit years are not guessed.
* name: accents, case, punctuation, titles and order (``Ellis, Margaret``) do not matter;
  an initial matches a given name (``M. Ellis``); middle names are optional (if both sides have
  some, one side's must appear in the other's, in order). Surnames and given names are compared
  word by word with :data:`WORD_SIMILARITY`, rapidfuzz's optimal-string-alignment similarity
  (1 - edits / length of the longer word): one typo or swapped pair of letters per six
  letters passes (Margret, Margaert for Margaret; Elizabeth/Elisabeth), while names of five
  letters or fewer must be spelt exactly, because short names a letter apart are usually
  different names (Maria/Marie, Jonas/Jones). A different given name never matches
  (Peter Ellis is not Margaret Ellis).
* postal_address: accents, case, punctuation and common abbreviations (Rd, St, Ave, Ln, Apt...)
  do not matter; the house and flat numbers must be equal, the street types (Road, Lane...) too
  where both sides name one; then rapidfuzz ``token_set_ratio`` of at least
  :data:`ADDRESS_SIMILARITY` (a town left out on one side still matches), or every word of the
  shorter address found (with the typo allowance above) in the other. A house number and a
  street type alone ("12 Lane") match nothing.
* last_transaction: free text ("order 17, £12.00 on 3 March 2024") is read for references,
  amounts and dates; a point when a reference is one of the person's transactions, or when an
  amount and a date both match the same transaction.

Counting: the points are the kinds that match the *same* person, the best-scoring one.
A person found in several systems (the CRM's customer and the marketing list's entry with the
same email) is one person: candidates of different systems are merged when they share a matched
email or phone and one of them matched nothing but email and phone, so the marketing entry's
match adds to the customer's instead of competing with it. Records of one system are never
merged. When two people tie on the best score (a household's shared postcode and address, a
namesake's name) nobody is identified and no point counts; when the best person lacks a kind
that another person matches (A's email with B's phone), the report says the identifiers are
``split`` across people, and the policy (not this module) decides what that costs.

Everything here is pure Python without I/O, and reports name identifier *kinds*, never values.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from connectors.base import Candidate, identifier_kind, normalise_phone, normalise_postcode
from dsar.model import IdentifierKind

#: Smallest optimal-string-alignment similarity (rapidfuzz ``OSA.normalized_similarity``) at
#: which two words of a name or an address are taken as one word misspelt: one edit in six
#: letters (0.833) passes, one edit in five (0.8) does not.
WORD_SIMILARITY = 0.83

#: Smallest rapidfuzz ``token_set_ratio`` (0-100) for two addresses with equal numbers.
#: "12 Orchard Lane, Coventry" and "12 Orchard Road, Coventry" score 88, which the street-type
#: check refuses anyway; a town missing on one side scores 100.
ADDRESS_SIMILARITY = 90

#: Kinds that, matched in two systems, show the two records are one person's.
SHARED_ACROSS_SYSTEMS = frozenset({IdentifierKind.EMAIL.value, IdentifierKind.PHONE.value})

#: Regions whose people write numeric dates month first (03/14/1958).
MONTH_FIRST_REGIONS = frozenset({"US", "PH", "FM", "MH", "PW", "AS", "GU", "MP", "PR", "UM", "VI"})


@dataclass
class MatchReport:
    """How the supplied identifiers match the people we hold. ``reason`` is written for the
    case file and names identifier kinds only, never values."""

    points: int  # identifier kinds that match the ONE best person
    matched_kinds: list[str]  # sorted
    unmatched_kinds: list[str]  # supplied kinds that did not match that person (sorted)
    person: str | None  # "<system>:<person_key>" of that person; None when none or ambiguous
    contact_email: str | None  # that person's email on file
    split: bool  # supplied identifiers match different people (A's email, B's phone)
    ambiguous: bool  # two or more persons tie on the best points
    reason: str
    #: the systems that person is registered in (how sensitive their data may be)
    systems: list[str] = field(default_factory=list)


def match_identity(supplied: dict[str, str], candidates: list[Candidate], region: str = "GB") -> MatchReport:
    """Compare the supplied identifiers (kind -> value) with the candidates' records.

    Unknown kinds are a caller error (ValueError naming the kind); empty values count as not
    supplied. ``region`` reads national phone numbers and numeric dates."""
    matchers: dict[str, Callable[[list[str]], bool]] = {}
    for kind, value in supplied.items():
        parsed = identifier_kind(kind)
        if value is None or not str(value).strip():
            continue
        matchers[parsed.value] = _matcher(parsed, str(value), region)
    kinds = sorted(matchers)
    if not kinds:
        return MatchReport(0, [], [], None, None, False, False, "no identifiers were given")

    matched = [
        frozenset(kind for kind, matches in matchers.items() if matches(candidate.values.get(kind, [])))
        for candidate in candidates
    ]
    persons = [p for p in _persons(candidates, matched) if p.kinds]
    if not persons:
        return MatchReport(
            0, [], kinds, None, None, False, False, "no person record matches the identifiers given"
        )

    best = max(len(p.kinds) for p in persons)
    top = [p for p in persons if len(p.kinds) == best]
    if len(top) > 1:
        split = len({p.kinds for p in top}) > 1
        if split:
            reason = (
                f"the identifiers point to different people ({_spread(top)}): no single person identified"
            )
        else:
            on = _listed(sorted(top[0].kinds))
            reason = f"matches more than one person on {on}: no single person identified"
        return MatchReport(0, [], kinds, None, None, split, True, reason)

    (person,) = top
    others = set().union(*(p.kinds for p in persons if p is not person))
    elsewhere = sorted(others - person.kinds)
    good = sorted(person.kinds)
    unmatched = sorted(set(kinds) - person.kinds)
    reason = f"{len(good)} point(s) for one person: {_listed(good)}"
    if unmatched:
        reason += f"; not matched: {_listed(unmatched)}"
    if elsewhere:
        reason += f"; the identifiers point to different people: {_listed(elsewhere)} matched someone else"
    return MatchReport(
        points=len(good),
        matched_kinds=good,
        unmatched_kinds=unmatched,
        person=f"{person.representative.system}:{person.representative.person_key}",
        contact_email=person.contact_email,
        split=bool(elsewhere),
        ambiguous=False,
        reason=reason,
        systems=sorted({c.system for c, _ in person.members}),
    )


# --------------------------------------------------------------------------------------------
# Persons: candidates, merged across systems.


@dataclass
class _Person:
    members: list[tuple[Candidate, frozenset[str]]]
    kinds: frozenset[str]

    @property
    def representative(self) -> Candidate:
        """The member holding most identifier kinds (the customer record rather than the
        marketing entry), then the one that matched most; the first of equals."""
        return max(self.members, key=lambda m: (len(m[0].values), len(m[1])))[0]

    @property
    def contact_email(self) -> str | None:
        first = self.representative
        ordered = [first, *(c for c, _ in self.members if c is not first)]
        return next((c.contact_email for c in ordered if c.contact_email), None)


def _persons(candidates: list[Candidate], matched: list[frozenset[str]]) -> list[_Person]:
    """Candidates grouped into persons (see the module's docstring), in candidate order."""
    parent = list(range(len(candidates)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(candidates):
        for j in range(i + 1, len(candidates)):
            b = candidates[j]
            shared = matched[i] & matched[j] & SHARED_ACROSS_SYSTEMS
            if (
                a.system != b.system
                and shared
                and (matched[i] <= SHARED_ACROSS_SYSTEMS or matched[j] <= SHARED_ACROSS_SYSTEMS)
            ):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(candidates)):
        groups.setdefault(root(i), []).append(i)
    return [
        _Person(
            members=[(candidates[i], matched[i]) for i in members],
            kinds=frozenset().union(*(matched[i] for i in members)),
        )
        for members in groups.values()
    ]


def _spread(top: list[_Person]) -> str:
    """ "email: one person; phone: another": which kinds point where, kinds only."""
    groups = sorted({_listed(sorted(p.kinds)) for p in top})
    return f"{groups[0]}: one person; " + "; ".join(f"{g}: another" for g in groups[1:])


def _listed(kinds: Iterable[str]) -> str:
    return ", ".join(kinds)


# --------------------------------------------------------------------------------------------
# Per-kind matchers: a supplied value normalised once, then compared with stored values.


def _matcher(kind: IdentifierKind, value: str, region: str) -> Callable[[list[str]], bool]:
    if kind is IdentifierKind.EMAIL:
        return _exact(normalise_email_strict(value), normalise_email_strict)
    if kind is IdentifierKind.PHONE:
        return _exact(normalise_phone(value, region), lambda stored: normalise_phone(stored, region))
    if kind in (IdentifierKind.CUSTOMER_ID, IdentifierKind.ACCOUNT_NUMBER):
        return _exact(normalise_reference(value), normalise_reference)
    if kind is IdentifierKind.POSTCODE:
        return _exact(normalise_postcode(value) or None, lambda stored: normalise_postcode(stored) or None)
    if kind is IdentifierKind.DATE_OF_BIRTH:
        wanted = parse_date(value, region)
        return lambda stored: wanted is not None and any(parse_date(s, region) == wanted for s in stored)
    if kind is IdentifierKind.NAME:
        tokens = name_tokens(value)
        return lambda stored: bool(tokens) and any(names_match(tokens, name_tokens(s)) for s in stored)
    if kind is IdentifierKind.POSTAL_ADDRESS:
        address = address_tokens(value)
        return lambda stored: any(addresses_match(address, address_tokens(s)) for s in stored)
    if kind is IdentifierKind.LAST_TRANSACTION:
        quoted = parse_transaction_text(value, region)
        return lambda stored: transaction_matches(quoted, stored, region)
    raise ValueError(f"no matcher for identifier kind '{kind.value}'")  # pragma: no cover


def _exact(wanted: str | None, normalise: Callable[[str], str | None]) -> Callable[[list[str]], bool]:
    """Equality of normalised values, compared in constant time (no timing hint of how much
    of a guessed identifier was right)."""
    if not wanted:
        return lambda stored: False
    target = wanted.encode()

    def matches(stored: list[str]) -> bool:
        found = False
        for value in stored:
            normal = normalise(value)
            if normal and hmac.compare_digest(normal.encode(), target):
                found = True
        return found

    return matches


def normalise_email_strict(value: str) -> str:
    """Trimmed and case-folded (unlike SQL matching, both sides are folded here in Python)."""
    return value.strip().casefold()


def normalise_reference(value: str) -> str:
    """Customer numbers and account numbers: trimmed, case-folded."""
    return value.strip().casefold()


def _plain(value: str) -> str:
    """Without accents (NFKD, combining marks dropped), case-folded."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# -- names -----------------------------------------------------------------------------------

#: Apostrophes are dropped, not spaced: O'Brien is one word ("\u2019" is the typographic one).
_APOSTROPHES = "['\u2019`]"
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "lady", "lord", "rev"})


def name_tokens(value: str) -> list[str]:
    """A name's words without accents, case, punctuation or title; "Ellis, Margaret" reordered
    to "margaret ellis"."""
    text = _plain(value)
    if text.count(",") == 1:
        surname, given = text.split(",")
        text = f"{given} {surname}"
    text = re.sub(_APOSTROPHES, "", text)
    words = re.sub(r"[^\w]+|_", " ", text).split()
    while words and words[0] in _TITLES and len(words) > 1:
        words = words[1:]
    return words


def words_match(a: str, b: str) -> bool:
    """The same word, or one misspelt (see :data:`WORD_SIMILARITY`)."""
    return a == b or OSA.normalized_similarity(a, b) >= WORD_SIMILARITY


def _given_match(a: str, b: str) -> bool:
    """Given or middle names: an initial matches a name that starts with it."""
    if len(a) == 1 or len(b) == 1:
        return a[0] == b[0]
    return words_match(a, b)


def names_match(supplied: list[str], stored: list[str]) -> bool:
    """Whether two tokenised names are one person's name (see the module's docstring)."""
    if not supplied or not stored:
        return False
    orders = [(supplied, stored)]
    if len(supplied) > 1:
        orders.append(([*supplied[1:], supplied[0]], stored))  # "Ellis Margaret"
    if len(stored) > 1:
        orders.append((supplied, [*stored[1:], stored[0]]))
    return any(_same_name(a, b) for a, b in orders)


def _same_name(a: list[str], b: list[str]) -> bool:
    if len(a) == 1 or len(b) == 1:
        return len(a) == len(b) and words_match(a[0], b[0])
    if not words_match(a[-1], b[-1]) or not _given_match(a[0], b[0]):
        return False
    middle_a, middle_b = a[1:-1], b[1:-1]
    if not middle_a or not middle_b:
        return True
    shorter, longer = sorted((middle_a, middle_b), key=len)
    remaining = iter(longer)
    return all(any(_given_match(word, other) for other in remaining) for word in shorter)


# -- addresses -------------------------------------------------------------------------------

_ABBREVIATIONS = {
    "rd": "road",
    "st": "street",
    "str": "street",
    "ave": "avenue",
    "av": "avenue",
    "ln": "lane",
    "dr": "drive",
    "cl": "close",
    "cres": "crescent",
    "ct": "court",
    "pl": "place",
    "sq": "square",
    "gdns": "gardens",
    "gr": "grove",
    "grv": "grove",
    "ter": "terrace",
    "terr": "terrace",
    "pk": "park",
    "hse": "house",
    "apt": "flat",
    "apartment": "flat",
    "unit": "flat",
    "no": "",
    "number": "",
}
_STREET_TYPES = frozenset(
    {"road", "street", "avenue", "lane", "drive", "close", "crescent", "court", "place", "square",
     "gardens", "grove", "terrace", "way", "walk", "row", "mews", "hill", "parade"}
)  # fmt: skip
_GENERIC = _STREET_TYPES | {"flat", "house", "the", "and", "of"}
_NUMBER = re.compile(r"\d+[a-z]?")


@dataclass(frozen=True)
class _Address:
    text: str  # normalised words, space-separated
    numbers: tuple[str, ...]  # house and flat numbers, sorted ("12", "3a")
    words: tuple[str, ...]  # the other words
    types: frozenset[str]  # street types named (road, lane...)


def address_tokens(value: str) -> _Address:
    """An address without accents, case or punctuation, abbreviations written out."""
    text = re.sub(_APOSTROPHES, "", _plain(value))
    # "12a" stays one token, "12-14" is two numbers, "flat3" is "flat 3"
    text = re.sub(r"\b(flat|apt|unit)(?=\d)", r"\1 ", text)
    raw = re.sub(r"[^\w]+|_", " ", text).split()
    words = [w for w in (_ABBREVIATIONS.get(w, w) for w in raw) if w]
    numbers = tuple(sorted(w for w in words if _NUMBER.fullmatch(w)))
    others = tuple(w for w in words if not _NUMBER.fullmatch(w))
    return _Address(" ".join(words), numbers, others, frozenset(others) & _STREET_TYPES)


def addresses_match(a: _Address, b: _Address) -> bool:
    """Whether two normalised addresses are the same place (see the module's docstring)."""
    if not a.words or not b.words or a.numbers != b.numbers:
        return False
    if a.types and b.types and a.types != b.types:
        return False
    shorter, longer = sorted((a.words, b.words), key=len)
    if not any(word not in _GENERIC for word in shorter):
        return False  # "12 Lane": no street name to compare
    if fuzz.token_set_ratio(a.text, b.text) >= ADDRESS_SIMILARITY:
        return True
    pool = list(longer)
    for word in shorter:
        found = next((other for other in pool if words_match(word, other)), None)
        if found is None:
            return False
        pool.remove(found)
    return True


# -- dates -----------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ISO_DATE = re.compile(
    r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?:[t ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?![\d.])"
)
_COMPACT_DATE = re.compile(r"(?<![\d.])(\d{4})(\d{2})(\d{2})(?![\d.])")
_NUMERIC_DATE = re.compile(r"(?<![\d.])(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?!\d)")
_DAY_MONTH_YEAR = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?[\s-]+(?:of\s+)?({_MONTH})\b\.?,?[\s-]+(\d{{4}})(?!\d)"
)
_MONTH_DAY_YEAR = re.compile(rf"\b({_MONTH})\b\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})(?!\d)")


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def find_dates(text: str, region: str = "GB") -> list[tuple[date, tuple[int, int]]]:
    """Every date written in ``text``, with where it is (so that callers can remove it)."""
    lowered = text.casefold()
    found: list[tuple[date, tuple[int, int]]] = []
    taken: list[tuple[int, int]] = []

    def add(value: date | None, span: tuple[int, int]) -> None:
        if value is not None and not any(s < span[1] and span[0] < e for s, e in taken):
            found.append((value, span))
            taken.append(span)

    for m in _ISO_DATE.finditer(lowered):
        add(_date(int(m[1]), int(m[2]), int(m[3])), m.span())
    for m in _DAY_MONTH_YEAR.finditer(lowered):
        add(_date(int(m[3]), _MONTHS[m[2]], int(m[1])), m.span())
    for m in _MONTH_DAY_YEAR.finditer(lowered):
        add(_date(int(m[3]), _MONTHS[m[1]], int(m[2])), m.span())
    month_first = region.upper() in MONTH_FIRST_REGIONS
    for m in _NUMERIC_DATE.finditer(lowered):
        first, second, year = int(m[1]), int(m[3]), int(m[4])
        day, month = (second, first) if month_first else (first, second)
        add(_date(year, month, day) or _date(year, day, month), m.span())
    for m in _COMPACT_DATE.finditer(lowered):
        add(_date(int(m[1]), int(m[2]), int(m[3])), m.span())
    return sorted(found, key=lambda item: item[1])


def parse_date(value: str, region: str = "GB") -> date | None:
    """The (first) date written in ``value``: ISO, numeric or with the month in words."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        dates = find_dates(text, region)
        return dates[0][0] if dates else None
    return parsed.date()


# -- transactions ----------------------------------------------------------------------------

_AMOUNT = re.compile(
    r"[£$€]\s*(\d{1,3}(?:,\d{3})+|\d+)(?:[.,](\d{1,2}))?(?!\d)"  # £12, £1,250.00, €12,50
    r"|(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)[.,](\d{2})(?![\d.,])"  # 12.00, 12,50
    r"|(?<![\d.,])(\d+)\s*(?:gbp|eur|usd|pounds?|euros?|dollars?)\b"  # 12 GBP
)
_TOKEN = r"[a-z0-9][a-z0-9/-]*"
_TOKENS = re.compile(_TOKEN)
#: A reference is a token after a cue ("order 17", "ref: NW-17", "invoice no. 3", "#A-42"), a
#: token mixing letters and digits ("NW1234GB"), or the whole text ("17"); a stray number in a
#: sentence ("I called 2 times", "1=1") is none.
_CUED_REFERENCE = re.compile(
    r"(?:\b(?:order|ref|reference|invoice|transaction|receipt|purchase|payment)\b[\s.:]*"
    r"(?:\b(?:no|number|num|nr)\b[\s.:]*)?#?\s*|#\s*)"
    rf"({_TOKEN})"
)


@dataclass(frozen=True)
class QuotedTransaction:
    """What a person wrote about a transaction: references, amounts and dates found in it."""

    references: frozenset[str]
    amounts: frozenset[Decimal]
    dates: frozenset[date]


def _amount(whole: str, cents: str | None) -> Decimal | None:
    try:
        return Decimal(whole.replace(",", "") + ("." + cents.ljust(2, "0") if cents else ""))
    except InvalidOperation:  # pragma: no cover - the pattern only admits digits
        return None


def _reference(value: str) -> str:
    """A transaction reference compared without case, separators or leading zeros."""
    text = re.sub(r"[\s/#-]", "", value.strip().casefold())
    return (text.lstrip("0") or "0") if text.isdigit() else text


def parse_transaction_text(value: str, region: str = "GB") -> QuotedTransaction:
    """Read references, amounts and dates from free text: dates first (so "3/3/2024" is not
    read as numbers), then amounts (a currency sign, a code or two decimals), and what remains
    with a digit in it is a reference ("order 17", "#A-1001")."""
    text = value.casefold().replace("|", " ")
    dates = find_dates(text, region)
    for _, span in sorted(dates, key=lambda d: d[1], reverse=True):
        text = text[: span[0]] + " " + text[span[1] :]
    amounts: set[Decimal] = set()

    def take(m: re.Match[str]) -> str:
        if m[1] is not None:
            amount = _amount(m[1], m[2])
        elif m[3] is not None:
            amount = _amount(m[3], m[4])
        else:
            amount = _amount(m[5], None)
        if amount is not None:
            amounts.add(amount)
        return " "

    text = _AMOUNT.sub(take, text)
    tokens = _TOKENS.findall(text)
    found = _CUED_REFERENCE.findall(text)
    found += [t for t in tokens if re.search(r"[a-z]", t)]  # mixed: digits are checked below
    if len(tokens) == 1:
        found.append(tokens[0])
    references = {_reference(token) for token in found if any(c.isdigit() for c in token)}
    return QuotedTransaction(frozenset(references), frozenset(amounts), frozenset(d for d, _ in dates))


def transaction_matches(quoted: QuotedTransaction, stored: list[str], region: str = "GB") -> bool:
    """Whether one of the stored ``"<reference>|<amount>|<date ISO>"`` transactions is the one
    quoted: by its reference, or by its amount and its date together."""
    for transaction in stored:
        parts = transaction.rsplit("|", 2)
        if len(parts) != 3:
            continue
        reference, amount_text, when = parts
        if reference.strip() and _reference(reference) in quoted.references:
            return True
        try:
            amount = Decimal(amount_text.strip()) if amount_text.strip() else None
        except InvalidOperation:
            amount = None
        day = parse_date(when, region) if when.strip() else None
        if amount is not None and day is not None and amount in quoted.amounts and day in quoted.dates:
            return True
    return False


__all__ = [
    "ADDRESS_SIMILARITY",
    "WORD_SIMILARITY",
    "MatchReport",
    "QuotedTransaction",
    "address_tokens",
    "addresses_match",
    "find_dates",
    "match_identity",
    "name_tokens",
    "names_match",
    "parse_date",
    "parse_transaction_text",
    "transaction_matches",
]
