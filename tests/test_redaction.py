"""Third-party redaction: precision and recall on labelled texts, the subject's own data kept,
known other people matched exactly, and ``dsar redact`` as a real subprocess.

The labelled texts (tests/data/redaction) mark the spans of other people's data that must go:
``corpus.jsonl`` (rebuilt by make_corpus.py: the ``dev`` set and the ``heldout`` set),
``blind.jsonl`` (rebuilt by make_blind.py: ``blind2``, ``blind3``, ``blind4``, written by hand)
and ``round5.jsonl`` (rebuilt by make_round5.py: ``dev5``, tuned on for issue 15, and ``blind5``,
frozen before that tuning and never tuned on).
The measure is bench/redaction.py's (``python bench/redaction.py`` prints the same tables and a
JSON line): a predicted span is right if it overlaps a labelled span of the same kind; a
labelled span is found if a predicted span of the same kind overlaps it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dsar import redaction
from dsar.redaction import (
    MARKER,
    DataKind,
    RedactionResult,
    Redactor,
    Source,
    SubjectProfile,
    SubjectProfileError,
    build_analyzer,
    name_lists,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "redaction"
DSAR = Path(sys.executable).parent / "dsar"
THIRD_PARTY = MARKER.format(reason="third party")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


BENCH = _load("bench_redaction", ROOT / "bench" / "redaction.py")
MAKE_BLIND = _load("make_blind", DATA / "make_blind.py")
MAKE_ROUND5 = _load("make_round5", DATA / "make_round5.py")
CORPUS: list[dict[str, Any]] = BENCH.load("corpus.jsonl")
BLIND: list[dict[str, Any]] = BENCH.load("blind.jsonl")
ROUND5: list[dict[str, Any]] = BENCH.load("round5.jsonl")
ALL = CORPUS + BLIND + ROUND5
#: SHA-256 of blind5's lines in round5.jsonl as committed before the detector was tuned for
#: issue 15 (commit 53ff2e9): blind5 stays exactly what was measured blind.
BLIND5_SHA256 = "f6c1ad5a694c052eca5239d4c20a8477fb60d1c2f9b44bb63f327d4e91aa222d"

#: Floors a little under what the detector measures (issue 5's targets: recall >= 0.98 on
#: third-party identifiers, precision >= 0.90). Measured, with bench/redaction.py:
#:
#:   set       tuned on?                         before (P / R)   after (P / R)
#:   dev       yes                               0.990 / 0.990    1.000 / 1.000
#:   heldout   yes (this round)                  0.946 / 0.897    1.000 / 0.994
#:   blind2    blind in round 1, tuned round 2   0.937 / 0.855    0.986 / 0.986 (round 1: 0.970 / 0.942)
#:   blind3    blind in round 1, tuned round 2   0.963 / 0.802    0.989 / 0.979 (round 1: 0.957 / 0.926)
#:   blind4    never tuned on                    0.875 / 0.787    0.910 / 0.910
#:   all                                         0.951 / 0.887    0.984 / 0.981
#:
#: The honest figure for text the detector has not seen is blind4's: recall 0.91, short of the
#: 0.98 target (lone first names absent from the name lists, streets without a type word).
#:
#: Issue 15 (dates of birth, e-mails under reserved domains, phones in any format, names after
#: relationship words; target recall >= 0.95 at precision >= 0.90 on unseen text). blind5 was
#: written and committed before the change and not tuned on; dev5 was:
#:
#:   set       tuned on?   before (P / R)   after (P / R)
#:   dev5      yes         1.000 / 0.729    1.000 / 1.000
#:   blind5    never       0.966 / 0.769    0.973 / 0.973   (DATE_OF_BIRTH 0/24 -> 0.958,
#:                                                          EMAIL 0.360 -> 0.960)
#:   the older sets: unchanged (dev, heldout, blind2, blind3, blind4 as above)
FLOORS = {  # set: (precision, recall)
    "all": (0.97, 0.97),
    "dev": (0.98, 0.98),
    "heldout": (0.97, 0.97),
    "blind2": (0.96, 0.96),
    "blind3": (0.96, 0.95),
    "blind4": (0.89, 0.89),
    "dev5": (0.98, 0.98),
    "blind5": (0.95, 0.95),
}
#: Per kind on blind5, the kinds issue 15 names: (precision, recall) floors.
BLIND5_KIND_FLOORS = {"DATE_OF_BIRTH": (0.90, 0.95), "EMAIL": (0.95, 0.95), "PHONE": (0.90, 0.95)}
#: Median time of a ~200-word text after warm-up is about 40-50 ms on an idle 2-core machine;
#: the ceiling only catches a pathological slowdown (the machine running the tests is shared).
MEDIAN_MS_CEILING = 250

MARGARET = SubjectProfile(
    names=("Margaret Ellis", "Maggie Ellis"),
    emails=("margaret.ellis@example.com",),
    phones=("+44 7911 123456",),
    addresses=("12 Orchard Lane, Coventry CV3 4LP",),
    postcodes=("CV3 4LP",),
    accounts=("NW100001",),
)
PETER = ("Peter Ellis", "peter.ellis@example.net", "07700 900461", "NW100002")


def test_corpus_is_big_varied_and_well_formed() -> None:
    assert len(CORPUS) >= 220
    splits = Counter(line["split"] for line in ALL)
    assert splits["heldout"] >= 80 and splits["dev"] >= 80
    assert splits["blind2"] >= 60 and splits["blind3"] >= 60 and splits["blind4"] >= 60
    assert splits["dev5"] >= 50 and splits["blind5"] >= 90
    for lines in (CORPUS, BLIND):
        assert {"ticket", "call_note", "delivery", "complaint", "chat", "agent_note"} <= {
            x["kind"] for x in lines
        }
        assert sum(1 for x in lines if not x["spans"]) >= 15  # texts with no third party at all
    kinds = Counter(s["kind"] for x in ALL for s in x["spans"])
    assert set(kinds) == {k.value for k in DataKind}
    assert len({x["text"] for x in ALL}) == len(ALL)
    assert len({x["id"] for x in ALL}) == len(ALL)
    for line in ALL:
        for span in line["spans"]:
            piece = line["text"][span["start"] : span["end"]]
            assert piece and piece == piece.strip(), line["id"]
        SubjectProfile.from_mapping(line["subject"])


def test_blind_sets_are_what_make_blind_writes() -> None:
    """blind.jsonl is generated from the marked-up texts in make_blind.py, offsets included."""
    written = [row for split, texts in MAKE_BLIND.SETS.items() for row in MAKE_BLIND.lines(split, texts)]
    assert written == BLIND
    written = [row for split, texts in MAKE_ROUND5.SETS.items() for row in MAKE_ROUND5.lines(split, texts)]
    assert written == ROUND5


def test_blind5_is_as_frozen_before_tuning() -> None:
    """blind5 is exactly what was committed before the detector was tuned for issue 15."""
    lines = (DATA / "round5.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    blind5 = "".join(line for line in lines if '"split": "blind5"' in line)
    assert hashlib.sha256(blind5.encode("utf-8")).hexdigest() == BLIND5_SHA256


def test_precision_and_recall_per_kind(capsys: pytest.CaptureFixture[str]) -> None:
    build_analyzer()  # a second one, as a worker would build it: the shared one is used below
    timing = BENCH.timing(ALL)
    tallies = BENCH.by_set(ALL)
    with capsys.disabled():
        print()
        for name, tally in tallies.items():
            print(tally.table(name))
        print(
            f"analyzer load {timing['analyzer_load_s']:.2f} s; median {timing['median_ms_200_words']:.1f} ms "
            f"per {timing['words_per_text']:.0f}-word text"
        )
    for name, (precision, recall) in FLOORS.items():
        tally = tallies[name]
        assert tally.recall() >= recall, tally.table(name)
        assert tally.precision() >= precision, tally.table(name)
    for kind, (precision, recall) in BLIND5_KIND_FLOORS.items():
        tally = tallies["blind5"]
        assert tally.recall(kind) >= recall and tally.precision(kind) >= precision, tally.table("blind5")
    assert timing["median_ms_200_words"] < MEDIAN_MS_CEILING


# ----------------------------------------------------------------------------------------------
# The subject's own data is kept


@pytest.mark.parametrize(
    "text",
    [
        "Customer Margaret Ellis called about her parcel.",
        "MARGARET ELLIS, 12 Orchard Lane, Coventry CV3 4LP.",
        "Ellis, Margaret - DOB verified, postcode CV34LP.",
        "Mrs Ellis rang. M. Ellis is on the account; Maggie says hi.",
        "Call her on 07911 123456, 07911123456, +447911123456, 0044 7911 123456 or (07911) 123-456.",
        "Email Margaret.Ellis@Example.COM or margaret.ellis@example.com.",
        "Deliver to 12 Orchard Ln, Coventry. Account NW100001, also written NW 100001.",
        "Left at no. 12 as requested. Signed M Ellis.",
        "Dear Margaret,\nThank you for your letter.\nYours, Northwind",
        "Maggie rang about the bill, then Margaret emailed.",  # spaCy's span is "Maggie rang"
        "Post to 12 Orchard Lane, CV3 4LP please.",  # her address with the city left out
    ],
)
def test_subject_data_is_kept(text: str) -> None:
    result = Redactor(MARGARET).redact(text)
    assert result.spans == () and result.text == text


def test_customer_margaret_ellis_plus_a_neighbour() -> None:
    text = (
        "Customer Margaret Ellis said her neighbour David Brookes (07700 900888, david@example.net) "
        "signed for parcel 5521 at 16 Larch Road, Coventry CV3 4LF."
    )
    result = Redactor(MARGARET).redact(text)
    assert result.text.startswith("Customer Margaret Ellis said her neighbour [REDACTED: third party]")
    for gone in ("David Brookes", "07700 900888", "david@example.net", "16 Larch Road"):
        assert gone not in result.text
    assert {s.kind for s in result.spans} == {
        DataKind.PERSON,
        DataKind.PHONE,
        DataKind.EMAIL,
        DataKind.ADDRESS,
    }


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Sam rang about the bill. Later I spoke to Tunde Bakare in billing.", ["Sam", "Tunde Bakare"]),
        ("Agent: Priyanka has moved teams.\nWendell: Hello! How can I help?", ["Priyanka", "Wendell"]),
        ("hello, my flatmate callum keeps answering. My sister-in-law Dee bought it.", ["callum", "Dee"]),
        (
            "Signed: K WOJCIK and R. Krishnan; handed to T. Chikwanha.",
            ["K WOJCIK", "R. Krishnan", "T. Chikwanha"],
        ),
    ],
)
def test_names_without_a_cue_word_lower_case_and_initials(text: str, names: list[str]) -> None:
    """Given names from the lists, proper nouns that are no English word, initials + surname."""
    spans = Redactor(MARGARET).find(text)
    assert [(text[s.start : s.end], s.kind) for s in spans] == [(n, DataKind.PERSON) for n in names]


def test_words_that_look_like_names_are_not_redacted() -> None:
    text = (
        "Bill payments paused. Password set on account. Grace period ends in June. "
        "Mark the parcel as lost. The store on Union Ave was shut. Dear Sirs, thanks."
    )
    assert Redactor(MARGARET).find(text) == []


def test_a_flat_on_its_own_and_the_subjects_flat() -> None:
    lars = SubjectProfile(names=("Lars Eriksen",), addresses=("Flat 9, 2 Quayside, Newcastle NE1 3DX",))
    text = "Not Flat 9: it went to Flat 19, 2 Quayside and then to flat 10."
    found = [(text[s.start : s.end], s.kind) for s in Redactor(lars).find(text)]
    assert found == [("Flat 19", DataKind.ADDRESS), ("flat 10", DataKind.ADDRESS)]


def test_name_lists_come_from_fakers_locales() -> None:
    names = name_lists()
    assert len(names.given) > 20_000 and len(names.surnames) > 20_000
    assert {"tasha", "wendell", "chiara", "zoe", "siobhan"} <= names.given  # folded: Zoë, Siobhán
    assert {"kowalski", "wojcik", "nguyen"} <= names.surnames
    assert not {"bill", "will", "may", "password", "street"} & (names.given | names.surnames)


def test_a_relative_with_the_subjects_surname_is_someone_else() -> None:
    result = Redactor(MARGARET).redact("Margaret Ellis and Tom Ellis share the bill; Mrs Ellis pays.")
    assert result.text == f"Margaret Ellis and {THIRD_PARTY} share the bill; Mrs Ellis pays."


def test_a_neighbour_on_the_subjects_street_is_redacted_her_house_is_not() -> None:
    result = Redactor(MARGARET).redact(
        "Not at 12 Orchard Lane: the driver left it at 14 Orchard Lane instead."
    )
    assert result.text == f"Not at 12 Orchard Lane: the driver left it at {THIRD_PARTY} instead."


# ----------------------------------------------------------------------------------------------
# Issue 15: dates of birth, e-mails under any domain, phones in any format, relations' names


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("Her son's DOB is 14/11/2009, please note it.", "14/11/2009"),
        ("Husband: Tom, D.O.B. 3.7.92, not on the account.", "3.7.92"),
        ("Partner's date of birth 1979-11-02 given for the credit check.", "1979-11-02"),
        ("My daughter was born on the 5th of June 2011.", "5th of June 2011"),
        ("Added her mother (b. 1941-02-28) as a contact.", "1941-02-28"),
        ("Brother's birthday: March 3, 1990.", "March 3, 1990"),
        ("dob given for the caller's wife was 7/4/85", "7/4/85"),
    ],
)
def test_a_third_partys_date_of_birth_is_redacted(text: str, date: str) -> None:
    spans = Redactor(MARGARET).find(text)
    start = text.index(date)
    assert [s.kind for s in spans if s.start <= start and start + len(date) <= s.end] == [
        DataKind.DATE_OF_BIRTH
    ]
    assert all(len(text[s.start : s.end]) <= len(date) + 4 for s in spans)  # the date, not the sentence


def test_the_subjects_own_date_of_birth_and_other_dates_are_kept() -> None:
    margaret = dataclasses.replace(MARGARET, dates_of_birth=("1961-03-12",))
    for text in (
        "Customer verified: DOB 12/03/1961, postcode CV3 4LP.",
        "Mrs Ellis (born 12 March 1961) rang.",
        "Date of birth: March 12, 1961.",
        "Parcel delivered 14/11/2025; contract started 01/02/2024 and ends 31/01/2026.",
        "Born and raised in Coventry, she rang on 3 March about the bill.",
    ):
        assert Redactor(margaret).find(text) == [], text
    # the same text about someone born on another day: that date goes
    text = "Her sister's DOB 12/03/1965 was given."
    spans = Redactor(margaret).find(text)
    assert [(text[s.start : s.end], s.kind) for s in spans] == [("12/03/1965", DataKind.DATE_OF_BIRTH)]


@pytest.mark.parametrize(
    "email",
    [
        "layla.h@home.example",
        "dom.w@mailbox.test",
        "m.reid1976@mail.invalid",
        "ewa.z@inbox.localhost",
        "it@printers.internal",
        "KOFI.OWUSU@EXAMPLE.ORG",
        "o'brien+bills@example.ie",
        "suresh@shahpatel.example.co.uk",
    ],
)
def test_emails_under_any_domain_reserved_ones_included(email: str) -> None:
    text = f"Her partner's e-mail is {email}, please remove it."
    spans = Redactor(MARGARET).find(text)
    assert [(text[s.start : s.end], s.kind) for s in spans] == [(email, DataKind.EMAIL)]


def test_a_file_name_with_an_at_sign_is_no_email() -> None:
    assert Redactor(MARGARET).find("Attached logo@2x.png and scan@300dpi.pdf for the ticket.") == []


@pytest.mark.parametrize(
    "phone",
    ["+33 6 12 45 78 90", "+49 151 23456789", "+1-718-555-0143", "0033 6 98 76 54 32", "(020) 7946 0011",
     "+44 (0) 7700 900 512", "415.555.0162", "+351 934 567 890", "07700900344"],
)  # fmt: skip
def test_phones_in_any_format(phone: str) -> None:
    text = f"Call her brother on {phone} if she is out."
    spans = Redactor(MARGARET).find(text)
    assert [(text[s.start : s.end], s.kind) for s in spans] == [(phone, DataKind.PHONE)]


def test_names_after_relationship_words_and_the_same_name_again() -> None:
    text = "Customer: my boyfriend owain\nAgent: Thanks. Partner gave his email too."
    spans = Redactor(MARGARET).find(text)
    assert [(text[s.start : s.end], s.kind) for s in spans] == [("owain", DataKind.PERSON)]
    text = "Her grandmother Nerys Price is moving in. Wants a landline for Nerys. Price Ltd invoiced."
    found = [text[s.start : s.end] for s in Redactor(MARGARET).find(text)]
    assert found == ["Nerys Price", "Nerys"]  # the firm is not the person
    text = "c/o Priya Desai, Desai & Moyo Accountants."
    assert [text[s.start : s.end] for s in Redactor(MARGARET).find(text)] == ["Priya Desai"]


def test_an_initial_and_a_surname_that_is_also_a_place() -> None:
    text = "DELIVERED 3/14 4:52 PM - Signed: D. WASHINGTON"
    spans = Redactor(MARGARET).find(text)
    assert [(text[s.start : s.end], s.kind) for s in spans] == [("D. WASHINGTON", DataKind.PERSON)]


# ----------------------------------------------------------------------------------------------
# Other people our systems know


def test_known_others_are_matched_exactly_in_any_format() -> None:
    text = "PETER rang from +44 7700 900461 (PETER.ELLIS@EXAMPLE.NET) about NW 100002. Peter Ellis again."
    result = Redactor(MARGARET, others=PETER).redact(text)
    assert result.text == (
        f"{THIRD_PARTY} rang from {THIRD_PARTY} ({THIRD_PARTY}) about {THIRD_PARTY}. {THIRD_PARTY} again."
    )
    assert all(s.source is Source.KNOWN_OTHER for s in result.spans)


def test_shared_surname_alone_and_the_subjects_own_identifiers_in_others_are_not_redacted() -> None:
    # "Ellis" could be either of them; a namesake with the subject's own name cannot be told apart
    redactor = Redactor(
        MARGARET, others=(*PETER, "Margaret Ellis", "margaret.ellis@example.com", "07911 123456")
    )
    text = "The Ellis household: Margaret Ellis (margaret.ellis@example.com, 07911 123456)."
    assert redactor.redact(text).spans == ()


def test_marker_names_the_reason_and_offsets_point_into_the_original() -> None:
    text = "Signed for by Ravi Patel at no. 14; his email is ravi.patel@example.org."
    result = Redactor(MARGARET).redact(text)
    assert result.text == f"Signed for by {THIRD_PARTY} at {THIRD_PARTY}; his email is {THIRD_PARTY}."
    assert [text[s.start : s.end] for s in result.spans] == ["Ravi Patel", "no. 14", "ravi.patel@example.org"]
    assert all(s.reason == "third party" for s in result.spans)


def test_cards_accounts_and_ni_numbers() -> None:
    text = (
        "Refund to her son's card 4111 1111 1111 1111, not 4111 1111 1111 1112. "
        "IBAN GB82 WEST 1234 5698 7654 32, account 43219876, NI number AB 12 34 56 C."
    )
    result = Redactor(MARGARET).redact(text)
    kinds = [(text[s.start : s.end], s.kind) for s in result.spans]
    assert ("4111 1111 1111 1111", DataKind.CARD) in kinds
    assert "4111 1111 1111 1112" in result.text  # fails the Luhn check: not a card number
    assert ("GB82 WEST 1234 5698 7654 32", DataKind.ACCOUNT) in kinds
    assert ("43219876", DataKind.ACCOUNT) in kinds
    assert ("AB 12 34 56 C", DataKind.NINO) in kinds


def test_empty_and_blank_text() -> None:
    assert Redactor(MARGARET).redact("") == RedactionResult(text="", spans=())
    assert Redactor(MARGARET).redact(" \n\t") == RedactionResult(text=" \n\t", spans=())


def test_long_text_is_analysed_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    paragraph = "Parcel signed for by Ravi Patel at 14 Larch Road. Customer Margaret Ellis was out.\n"
    text = paragraph * 30
    monkeypatch.setattr(redaction, "CHUNK_CHARS", 500)
    spans = Redactor(MARGARET).find(text)
    found = [text[s.start : s.end] for s in spans]
    assert found == ["Ravi Patel", "14 Larch Road"] * 30


def test_profile_validation_names_the_field_not_the_value() -> None:
    with pytest.raises(SubjectProfileError, match="unknown field"):
        SubjectProfile.from_mapping({"name": ["Margaret Ellis"]})
    with pytest.raises(SubjectProfileError, match="names: expected a list of strings") as info:
        SubjectProfile.from_mapping({"names": ["Margaret Ellis", 7]})
    assert "Margaret" not in str(info.value)
    with pytest.raises(SubjectProfileError, match="no identifiers"):
        SubjectProfile.from_mapping({"names": [" "]})
    with pytest.raises(SubjectProfileError, match="dates_of_birth: a value is not a date") as info:
        SubjectProfile.from_mapping({"names": ["Margaret Ellis"], "dates_of_birth": ["Margaret's birthday"]})
    assert "Margaret" not in str(info.value)


def test_no_personal_data_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    text = "Signed for by Ravi Patel (07700 900123, ravi.patel@example.org) at 14 Larch Road."
    with caplog.at_level(logging.DEBUG):
        Redactor(MARGARET).redact(text)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("Ravi", "Patel", "900123", "ravi.patel", "Larch"):
        assert secret not in logged


def test_one_analyzer_shared_by_threads() -> None:
    texts = [line["text"] for line in CORPUS[:24]]
    redactors = [
        Redactor(SubjectProfile.from_mapping(line["subject"]), line["others"]) for line in CORPUS[:24]
    ]
    expected = [r.redact(t) for r, t in zip(redactors, texts, strict=True)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        analyzers = list(pool.map(lambda _: redaction.analyzer(), range(8)))
        results = list(pool.map(lambda pair: pair[0].redact(pair[1]), zip(redactors, texts, strict=True)))
    assert all(a is analyzers[0] for a in analyzers)
    assert results == expected


# ----------------------------------------------------------------------------------------------
# dsar redact, as an operator runs it


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(DSAR), "redact", *args], input=stdin, capture_output=True, timeout=120)


def test_cli_redacts_stdin(tmp_path: Path) -> None:
    subject = tmp_path / "subject.json"
    subject.write_text(json.dumps({"names": ["Margaret Ellis"], "emails": ["margaret.ellis@example.com"],
                                   "postcodes": ["CV3 4LP"], "others": ["Peter Ellis"]}))  # fmt: skip
    text = "Margaret Ellis (CV3 4LP) says Peter and her neighbour Ravi Patel share the parcel.\n"
    done = run_cli("--subject", str(subject), stdin=text.encode())
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == (
        f"Margaret Ellis (CV3 4LP) says {THIRD_PARTY} and her neighbour {THIRD_PARTY} share the parcel.\n"
    )
    done = run_cli("--subject", str(subject), "--json", stdin=text.encode())
    body = json.loads(done.stdout)
    assert [(s["kind"], s["source"]) for s in body["spans"]] == [
        ("PERSON", "known other person"),
        ("PERSON", "detected"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the subject file"),
        ("{not json", "is not valid JSON (line 1, column 2)"),
        ('["Margaret Ellis"]', "must hold a JSON object"),
        ('{"names": "Margaret Ellis", "phone": ["07911 123456"]}', "unknown field(s) 'phone'"),
        ('{"names": ["Margaret Ellis"], "others": "Peter Ellis"}', "others: expected a list of strings"),
        ("{}", "the subject has no identifiers"),
    ],
)
def test_cli_errors_are_one_line_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    subject = tmp_path / "subject.json"
    if content is not None:
        subject.write_text(content)
    done = run_cli("--subject", str(subject), stdin=b"Ravi Patel signed.")
    err = done.stderr.decode()
    assert done.returncode == 2 and done.stdout == b""
    assert err.startswith("dsar redact: ") and message in err and err.count("\n") == 1, err
    assert "Traceback" not in err and "Margaret" not in err and "07911" not in err and "Peter" not in err


def test_cli_refuses_text_that_is_not_utf8(tmp_path: Path) -> None:
    subject = tmp_path / "subject.json"
    subject.write_text('{"names": ["Margaret Ellis"]}')
    done = run_cli("--subject", str(subject), stdin=b"\xff\xfe Ravi")
    assert (
        done.returncode == 2
        and done.stderr.decode() == "dsar redact: the text on standard input is not UTF-8\n"
    )


def test_cli_help_documents_the_subject_file() -> None:
    done = subprocess.run([str(DSAR), "redact", "--help"], capture_output=True, timeout=60)
    out = done.stdout.decode()
    assert done.returncode == 0
    for key in (
        "names",
        "emails",
        "phones",
        "addresses",
        "postcodes",
        "accounts",
        "dates_of_birth",
        "others",
    ):
        assert f'"{key}"' in out
