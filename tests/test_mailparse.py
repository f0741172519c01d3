"""Email intake's parser on a corpus of real-looking mail, on hostile mail built at run time,
and ``dsar intake-email --dry-run`` run as a user runs it.

The corpus (tests/data/emails, expected.jsonl) has a "set" per file: "tuning" files were used
while writing the rules; each "holdout-N" set was written blind (without looking at the rules'
wording), measured once, and only then, for some, used to widen the rules:

- holdout-1, holdout-2: measured, then tuned on.
- holdout-3 (51 files): measured on the first rules (type 32/44), then tuned on.
- holdout-4 (57 files): measured after the second widening (type 31/49), then tuned on.
- holdout-5 (56 files): measured after the third widening (type 37/48) and NOT tuned on. Its four
  wrong types (UK "opt me out of marketing" read as a CCPA opt-out, and the like) were described
  to the next round, which answered with regime-aware types (a right the regime lacks is read as
  the one it has, LEGAL.md §1) rather than with its wording; with those and the statistical second
  opinion it measured type 43/48, outcome 51/56.
- holdout-6 (73 files): written blind before that round, measured on the rules as they were (type
  50/57, regime 64/66, outcome 67/73), then after it (type 51/57, regime 64/66, outcome 66/73).
  Never tuned on.

The unseen sets' floors are what they measured, a little below; raise them only when the rules
improve without looking at them, and never tune on them (write a new set).

The statistical second opinion (intake/training/classifier.py) learns from the tuned sets only
(intake/training/types.json) and speaks only when the rules found no type.

A message whose type is not recognised goes to triage (an operator classifies it), so a miss on
unseen mail is mostly a case waiting in triage, not a case on the wrong path.
"""

from __future__ import annotations

import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from dsar.model import AgentAuthority, Regime, RequestType
from intake.mail import MailboxPolicy, Outcome, ParsedMessage, parse_message
from intake.mail.attachments import sanitise_filename
from intake.mail.classify import US_REGIMES, fit_type_to_regime
from intake.mail.message import MB
from intake.training import classifier, extract
from intake.training.classifier import FOLDS

EMAILS = Path(__file__).resolve().parent / "data" / "emails"
ROOT = Path(__file__).resolve().parent.parent
DSAR = Path(sys.executable).parent / "dsar"


def corpus_policy() -> MailboxPolicy:
    raw = json.loads((EMAILS / "policy.json").read_text())
    return MailboxPolicy(
        default_regime=Regime(raw["default_regime"]),
        mailboxes={k: Regime(v) for k, v in raw["mailboxes"].items()},
        domains={k: Regime(v) for k, v in raw["domains"].items()},
    )


POLICY = corpus_policy()
#: Sets the rules were widened with: held to the project's floors, file by file where it matters.
TUNED_SETS = {"tuning", "holdout-1", "holdout-2", "holdout-3", "holdout-4"}
#: Sets never tuned on, with the floors they measured (type, regime, outcome accuracy).
UNSEEN_FLOORS = {"holdout-5": (0.87, 0.98, 0.89), "holdout-6": (0.87, 0.95, 0.88)}
EXPECTED: list[dict[str, Any]] = [
    json.loads(line) for line in (EMAILS / "expected.jsonl").read_text().splitlines() if line.strip()
]


#: how a reason says the statistical second opinion named the type
SECOND_OPINION_DECIDED = ": decides"


def parse_file(name: str, policy: MailboxPolicy = POLICY) -> ParsedMessage:
    return parse_message((EMAILS / name).read_bytes(), policy)


# --------------------------------------------------------------------------------------------
# The corpus


def test_the_corpus_is_big_and_varied_enough() -> None:
    files = sorted(p.name for p in EMAILS.glob("*.eml"))
    assert len(files) >= 70
    assert sorted(e["file"] for e in EXPECTED) == files, "expected.jsonl must list every .eml exactly once"
    types = {e["type"] for e in EXPECTED if e["outcome"] == "request"}
    assert types == {t.value for t in RequestType}
    assert {e["outcome"] for e in EXPECTED} == {"request", "reply", "triage", "ignored"}
    regimes = {e["regime"] for e in EXPECTED if e["regime"]}
    assert {"UK_GDPR", "EU_GDPR", "CCPA", "VCDPA", "CPA", "LGPD", "PIPEDA"} <= regimes


def test_corpus_accuracy() -> None:
    """Floors the project promises on the tuned sets (type and regime >= 95%, outcome exact for
    every file that must not become an ordinary case), the measured floors on the unseen set,
    and no exception on any file."""
    results: dict[str, ParsedMessage] = {}
    times: list[float] = []
    for e in EXPECTED:
        raw = (EMAILS / e["file"]).read_bytes()
        start = time.perf_counter()
        results[e["file"]] = parse_message(raw, POLICY)  # never raises: an exception fails here
        times.append(time.perf_counter() - start)

    def rate(rows: list[dict[str, Any]], field: str) -> tuple[float, int]:
        def got(e: dict[str, Any]) -> object:
            r = results[e["file"]]
            value = {"type": r.request_type, "regime": r.regime, "outcome": r.outcome}[field]
            return value.value if value is not None else None

        right = sum(got(e) == e[field] for e in rows)
        return right / len(rows), len(rows)

    def figures(rows: list[dict[str, Any]]) -> tuple[float, float, float]:
        type_acc, n_type = rate([e for e in rows if e["type"] is not None], "type")
        regime_acc, n_regime = rate([e for e in rows if e["regime"] is not None], "regime")
        outcome_acc, n_all = rate(rows, "outcome")
        print(
            f"  type {type_acc:.3f} ({n_type} typed), regime {regime_acc:.3f} ({n_regime}), "
            f"outcome {outcome_acc:.3f} ({n_all} files)"
        )
        return type_acc, regime_acc, outcome_acc

    assert {e["set"] for e in EXPECTED} == TUNED_SETS | set(UNSEEN_FLOORS)
    kinds_exact = sum(sorted(results[e["file"]].identifiers) == e["identifier_kinds"] for e in EXPECTED)
    print(
        f"\ncorpus: {len(EXPECTED)} files, identifier kinds exact {kinds_exact}/{len(EXPECTED)}; parse time "
        f"median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms"
    )
    for name in sorted(TUNED_SETS | set(UNSEEN_FLOORS)):
        rows = [e for e in EXPECTED if e["set"] == name]
        asked = [e for e in rows if "statistical second opinion" in results[e["file"]].reason]
        decided = [e for e in asked if SECOND_OPINION_DECIDED in results[e["file"]].reason]
        right = sum(results[e["file"]].request_type == RequestType(e["type"]) for e in decided if e["type"])
        print(f"  {name}: second opinion asked {len(asked)}, decided {len(decided)} ({right} right)")
    for name in sorted(TUNED_SETS | set(UNSEEN_FLOORS)):
        print(f"{name}{' (never tuned on)' if name in UNSEEN_FLOORS else ''}:", end="")
        figures([e for e in EXPECTED if e["set"] == name])
    print("tuned sets together:", end="")
    tuned = [e for e in EXPECTED if e["set"] in TUNED_SETS]
    type_acc, regime_acc, _ = figures(tuned)
    assert type_acc >= 0.95
    assert regime_acc >= 0.95
    for name, floors in UNSEEN_FLOORS.items():
        print(f"{name}:", end="")
        measured = figures([e for e in EXPECTED if e["set"] == name])
        assert all(got >= floor for got, floor in zip(measured, floors, strict=True)), (name, measured)
    assert kinds_exact / len(EXPECTED) >= 0.9
    for e in EXPECTED:
        r = results[e["file"]]
        assert r.reason, e["file"]
        if e["set"] not in TUNED_SETS:
            continue
        if e["outcome"] in ("ignored", "triage"):
            assert r.outcome.value == e["outcome"], (e["file"], r.reason)
        if e["outcome"] == "reply":
            assert r.outcome == Outcome.REPLY, (e["file"], r.reason)
            assert r.case_reference == e.get("case_reference"), e["file"]
        assert r.by_agent == e.get("by_agent", False), e["file"]


def test_no_personal_value_in_reasons_or_notes() -> None:
    """Reasons and notes go to case notes, logs and dry-run output: rule names, never values."""
    for e in EXPECTED:
        r = parse_file(e["file"])
        said = " ".join([r.reason, *r.notes]).lower()
        for value in r.identifiers.values():
            assert value.lower() not in said, (e["file"], value)
        for a in r.attachments:
            assert a.filename.lower() not in said, e["file"]


def test_ignored_messages_carry_no_identifiers() -> None:
    ignored = 0
    for e in EXPECTED:
        r = parse_file(e["file"])
        if r.outcome == Outcome.IGNORED:  # whichever set: what is ignored keeps nothing
            ignored += 1
            assert r.identifiers == {} and r.regime is None and r.request_type is None, e["file"]
    assert ignored >= 15


# --------------------------------------------------------------------------------------------
# Identifiers: kinds and values


def test_formal_letter_identifiers() -> None:
    r = parse_file("access_formal_letter_uk.eml")
    assert r.identifiers == {
        "name": "Margaret Ann Ellis",
        "email": "margaret.ellis@example.net",
        "postal_address": "16 Larch Road, Coventry, CV3 4LP",
        "postcode": "CV3 4LP",
        "date_of_birth": "14/07/1962",
        "account_number": "NW-448812",
    }
    assert r.message_id == "<DB7PR02MB4891A1C2F0E8C3D4B6E1A2B3C4D5@DB7PR02MB4891.eurprd02.prod.example.net>"
    assert r.subject == "Subject Access Request - Article 15 UK GDPR"
    assert r.mailbox == "privacy@northwind.example.co.uk"


def test_signature_block_address_and_phone() -> None:
    r = parse_file("access_apple_mail_signature_block.eml")
    assert r.identifiers["postal_address"] == "The Old Rectory, Church Street, Much Wenlock, TF13 6AR"
    assert r.identifiers["postcode"] == "TF13 6AR"
    assert r.identifiers["phone"] == "+441632960411"
    r = parse_file("access_chatty_sar.eml")
    assert r.identifiers == {
        "name": "Dave Pritchard",
        "email": "davepritch77@example.com",
        "phone": "+447700900417",
    }


def test_us_identifiers_labelled() -> None:
    r = parse_file("access_ccpa_right_to_know.eml")
    assert r.identifiers["name"] == "Marisol Alvarez"
    assert r.identifiers["phone"] == "+14155550142"
    assert r.identifiers["postcode"] == "94117"
    assert r.identifiers["postal_address"].startswith("2210 Fulton Street")
    assert r.regime == Regime.CCPA


def test_agent_letter_gives_the_clients_identifiers_not_the_firms() -> None:
    r = parse_file("access_agent_solicitor.eml")
    assert r.by_agent
    assert r.identifiers == {
        "name": "Daniel Okafor",
        "postal_address": "7 Weaver Close, Bradford BD4 7TY",
        "postcode": "BD4 7TY",
        "date_of_birth": "02/11/1988",
        "account_number": "NW-552019",
    }
    assert r.agent is not None
    assert (r.agent.name, r.agent.email) == ("Rebecca Thorne", "r.thorne@harpercole-law.example.co.uk")
    assert r.agent.authority == AgentAuthority.WRITTEN_PERMISSION
    assert "Harper & Cole" in r.agent.organisation
    assert [a.purpose for a in r.attachments] == ["agent_authority"]

    r = parse_file("erasure_agent_mother_poa.eml")
    assert r.by_agent and r.agent is not None and r.agent.authority == AgentAuthority.POWER_OF_ATTORNEY
    assert r.identifiers["name"] == "Mrs Joan Bennett"
    assert r.identifiers["postcode"] == "LA9 6AB"
    assert "email" not in r.identifiers  # the son's address is the agent's, not the person's


def test_forwarded_message_gives_the_original_senders_identifiers() -> None:
    r = parse_file("access_forwarded_by_store.eml")
    assert r.identifiers == {
        "name": "Connor Walsh",
        "email": "connor.walsh88@example.com",
        "phone": "+447700900733",
    }
    assert r.sender == "store.leeds@northwind.example.co.uk"
    r = parse_file("erasure_outlook_forward_fw.eml")
    assert r.identifiers["email"] == "dot.price@example.net"
    assert r.identifiers["postal_address"] == "4 Rosemary Close, Exeter EX2 5TH"
    r = parse_file("access_forwarded_as_attachment.eml")
    assert r.identifiers == {
        "name": "Bilal Chaudhry",
        "email": "bilal.chaudhry@example.com",
        "customer_id": "C-88213",
    }


def test_numbers_that_are_not_phones() -> None:
    """A Brazilian CPF, an account number and a date are not phone numbers."""
    r = parse_file("erasure_brazil_portuguese.eml")
    assert "phone" not in r.identifiers
    r = parse_file("rect_correct_my_address.eml")
    assert "phone" not in r.identifiers and r.identifiers["account_number"] == "40029317"
    assert r.identifiers["postal_address"] == "5 Orchard Way, Reading RG1 4QT"  # the one on file


def test_a_quoted_letter_of_ours_gives_no_identifiers() -> None:
    r = parse_file("reply_case_ref_with_id.eml")
    assert r.identifiers == {"name": "Margaret Ellis", "email": "margaret.ellis@example.net"}
    assert r.case_reference == "DSR-2026-000042" and r.outcome == Outcome.REPLY
    assert r.in_reply_to == ["<ack-DSR-2026-000042@dsar.northwind.example.co.uk>"]
    assert [a.purpose for a in r.attachments] == ["identity_document"]


# --------------------------------------------------------------------------------------------
# Hostile and broken mail, built at run time


def request_message(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.get("from", "Ann Other <ann.other@example.com>")
    msg["To"] = headers.get("to", "privacy@northwind.example.co.uk")
    msg["Subject"] = headers.get("subject", "Please delete my data")
    msg["Message-ID"] = headers.get("message_id", "<hostile-1@example.com>")
    msg.set_content("Hello,\n\nPlease delete my account and all my personal data.\n\nAnn Other\n")
    return msg


@pytest.fixture(scope="module")
def big_attachment_message() -> bytes:
    msg = request_message()
    msg.add_attachment(b"\x00" * (30 * MB), maintype="application", subtype="pdf", filename="scan.pdf")
    return msg.as_bytes()


def test_30_mb_attachment_is_refused_undecoded(big_attachment_message: bytes) -> None:
    tracemalloc.start()
    start = time.perf_counter()
    r = parse_message(big_attachment_message, POLICY)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"\n30 MB attachment: message {len(big_attachment_message) / MB:.1f} MB, parsed in {elapsed:.2f} s, "
        f"peak Python memory {peak / MB:.0f} MB"
    )
    assert r.outcome == Outcome.REQUEST and r.request_type == RequestType.ERASURE
    (a,) = r.attachments
    assert a.refused == f"{30 * MB} bytes over the 25 MB cap"
    assert a.size == 30 * MB and a.data == b"" and a.sha256 is None
    assert f"attachment 1 refused: {30 * MB} bytes over the 25 MB cap" in r.notes


def test_message_over_the_size_cap_goes_to_triage_unread() -> None:
    msg = request_message(message_id="<big-1@example.com>")
    msg.add_attachment(os.urandom(2 * MB), maintype="application", subtype="octet-stream", filename="x.bin")
    raw = msg.as_bytes()
    r = parse_message(raw, MailboxPolicy(max_message_bytes=1 * MB))
    assert r.outcome == Outcome.TRIAGE
    assert r.reason == f"message of {len(raw)} bytes is over the 1 MB cap: not read, a person must look"
    assert r.message_id == "<big-1@example.com>" and r.sender == "ann.other@example.com"
    assert r.identifiers == {} and r.attachments == []


def zip_of(entries: dict[str, bytes | int]) -> bytes:
    """A zip; an int entry is that many zero bytes, streamed (a bomb without the memory)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, content in entries.items():
            if isinstance(content, int):
                with z.open(name, "w", force_zip64=True) as f:
                    chunk = b"\x00" * MB
                    for _ in range(content // MB):
                        f.write(chunk)
            else:
                z.writestr(name, content)
    return buf.getvalue()


def with_attachment(data: bytes, filename: str) -> bytes:
    msg = request_message()
    msg.add_attachment(data, maintype="application", subtype="zip", filename=filename)
    return msg.as_bytes()


def test_zip_bomb_is_flagged_and_never_extracted() -> None:
    bomb = zip_of({"zeros.bin": 200 * MB})
    assert len(bomb) < MB  # 200 MB of zeros in a few hundred KB
    start = time.perf_counter()
    r = parse_message(with_attachment(bomb, "photos.zip"), POLICY)
    assert time.perf_counter() - start < 5  # read the directory only
    (a,) = r.attachments
    assert a.refused is not None and "zip bomb" in a.refused and "never extracted" in a.refused
    assert a.data == b"" and r.outcome == Outcome.REQUEST
    assert any(n.startswith("attachment 1 refused: archive declares") for n in r.notes)


def test_archives_in_archives_and_broken_archives_are_refused_small_ones_kept() -> None:
    nested = zip_of({"inner.zip": zip_of({"a.txt": b"hello"})})
    (a,) = parse_message(with_attachment(nested, "docs.zip"), POLICY).attachments
    assert a.refused == "archive contains archives (never extracted)"
    (a,) = parse_message(with_attachment(b"PK\x03\x04 this is not a zip", "id.zip"), POLICY).attachments
    assert a.refused == "an archive that cannot be read"
    fine = zip_of({"passport.jpg": b"\xff\xd8\xff" + os.urandom(5000)})
    (a,) = parse_message(with_attachment(fine, "id documents.zip"), POLICY).attachments
    assert a.refused is None and a.data == fine and a.filename == "id documents.zip"


def nested_multipart(levels: int, text: str = "Please delete my account and my personal data.") -> bytes:
    head = "From: Ann Other <ann.other@example.com>\nTo: privacy@northwind.example.co.uk\nSubject: nest\n"
    head += "Message-ID: <nest@example.com>\nMIME-Version: 1.0\n"
    body = f"Content-Type: text/plain; charset=utf-8\n\n{text}\n"
    for i in reversed(range(levels)):
        body = (f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n{body}\n--b{i}--\n')  # fmt: skip
    return (head + body).encode()


def test_deep_nesting_goes_to_triage_without_recursing() -> None:
    r = parse_message(nested_multipart(200), POLICY)
    assert r.outcome == Outcome.TRIAGE
    assert r.reason.startswith("MIME nesting deeper than 20 levels: the rest was not read")
    shallow = parse_message(nested_multipart(5), POLICY)
    assert shallow.outcome == Outcome.REQUEST and shallow.request_type == RequestType.ERASURE
    # deeper than the stdlib parser's own recursion: still an answer, never an exception
    r = parse_message(nested_multipart(3000), POLICY)
    assert r.outcome == Outcome.TRIAGE and r.message_id.startswith("<")


def test_header_injection_is_neutralised() -> None:
    raw = (
        b"From: =?utf-8?q?Evil=0D=0ABcc:_victim@example.org?= <evil@example.com>\r\n"
        b"To: privacy@northwind.example.co.uk\r\n"
        b"Subject: =?utf-8?q?Delete_my_data=0D=0ABcc:_victim@example.org=0A=0D=0Ahello?=\r\n"
        b"Message-ID: <inj\r\n @example.com>\r\n"
        b"\r\nPlease delete my account.\r\n"
    )
    r = parse_message(raw, POLICY)
    for value in [r.subject, r.sender, r.message_id, *r.identifiers.values()]:
        assert "\r" not in value and "\n" not in value
    assert r.subject == "Delete my data Bcc: victim@example.org hello"
    assert "name" not in r.identifiers  # "Evil Bcc: victim@example.org" is not a person's name
    long_subject = b"Subject: " + b"A" * 10_000 + b"\x1b[31m\r\n"
    r = parse_message(b"From: a@example.com\r\n" + long_subject + b"\r\nplease delete my account\r\n", POLICY)
    assert len(r.subject) == 200 and "\x1b" not in r.subject


def test_truncated_base64_and_wrong_charsets_still_read() -> None:
    text = "Bonjour, je demande la suppression de mes données. Zoë".encode()
    import base64

    encoded = base64.b64encode(text).decode()[:-7]  # cut mid-quantum
    raw = (
        "From: Zoe <zoe@example.org>\nTo: privacy@northwind.example.co.uk\nSubject: x\n"
        "Message-ID: <t@example.org>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="B"\n\n--B\n'
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        f"{encoded}\n--B\nContent-Type: application/pdf; name=a.pdf\nContent-Disposition: attachment; "
        f'filename="a.pdf"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQKJ\n--B--\n'
    ).encode()
    r = parse_message(raw, POLICY)
    assert r.request_type == RequestType.ERASURE
    assert "attachment 1: base64 damaged or truncated, kept as decoded" in r.notes
    r = parse_file("access_unknown_charset.eml")
    assert "unknown charset declared: read as UTF-8 or Windows-1252" in r.notes
    r = parse_file("access_wrong_charset.eml")
    assert r.identifiers["name"] == "Zoë Lefèvre"
    r = parse_file("access_iso2022jp.eml")
    assert r.identifiers["name"] == "田中 美咲" and r.identifiers["phone"] == "+447700900284"


def test_garbage_empty_and_not_bytes() -> None:
    assert parse_message(b"", POLICY).reason == "empty message"
    assert parse_message(b"\r\n \r\n", POLICY).outcome == Outcome.TRIAGE
    garbage = parse_message(bytes(range(256)) * 50, POLICY)
    assert garbage.outcome == Outcome.TRIAGE and garbage.reason.startswith("not an email message")
    assert parse_message(None, POLICY).reason == "input is not bytes"  # type: ignore[arg-type]
    assert parse_message(bytearray(b"From: a@example.com\n\nplease delete my data"), POLICY).outcome == (  # type: ignore[arg-type]
        Outcome.REQUEST
    )


def mutations(seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    samples = [p.read_bytes() for p in sorted(EMAILS.glob("*.eml"))]
    for _ in range(300):
        raw = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 40)):
            if not raw:
                break
            at = rng.randrange(len(raw))
            op = rng.random()
            if op < 0.4:
                raw[at] = rng.randrange(256)
            elif op < 0.7:
                del raw[at : at + rng.randint(1, 200)]
            else:
                raw[at:at] = rng.choice([b"\r\n", b"--", b"=?utf-8?b?", b"boundary=", b"\x00", b"<", b":"])
        yield bytes(raw)
    for _ in range(50):
        yield rng.randbytes(rng.randint(0, 5000))


def test_mutated_and_random_input_never_raises() -> None:
    outcomes = set()
    for raw in mutations(seed=7):
        r = parse_message(raw, POLICY)
        outcomes.add(r.outcome)
        assert r.message_id.startswith("<") and r.message_id.endswith(">")
        assert "\n" not in r.subject and "\r" not in r.subject
    assert Outcome.TRIAGE in outcomes


def test_message_id_is_normalised_or_synthesised_stably() -> None:
    base = b"From: a@example.com\r\nTo: privacy@northwind.example.co.uk\r\nSubject: delete my data\r\n"
    r = parse_message(base + b"Message-ID:   <Abc.123@Example.COM>  (comment)\r\n\r\nbody", POLICY)
    assert r.message_id == "<Abc.123@Example.COM>"
    one = parse_message(base + b"\r\nplease delete my data", POLICY)
    again = parse_message(base + b"\r\nplease delete my data", POLICY)
    other = parse_message(base + b"\r\nplease delete all my data", POLICY)
    assert one.message_id == again.message_id != other.message_id
    assert one.message_id.startswith("<sha256-") and one.message_id.endswith("@dsar-intake.invalid>")


def test_filenames_are_sanitised() -> None:
    assert sanitise_filename("../../etc/passwd", 1) == "passwd"
    assert sanitise_filename("C:\\Users\\me\\scan.pdf", 1) == "scan.pdf"
    assert sanitise_filename("\x00evil\r\n.pdf", 2) == "evil .pdf"
    assert sanitise_filename("...", 3) == "attachment-3"
    assert sanitise_filename("=?utf-8?q?pa=C3=9Fport.jpg?=", 4) == "paßport.jpg"
    long = sanitise_filename("x" * 500 + ".pdf", 5)
    assert len(long) <= 100 and long.endswith(".pdf")
    r = parse_file("access_sar_pdf_letter_attached.eml")
    assert [a.filename for a in r.attachments] == ["SAR letter.pdf"]


def test_regime_from_mailbox_plus_address_and_brand_domain() -> None:
    policy = MailboxPolicy(
        default_regime=Regime.UK_GDPR,
        mailboxes={"Privacy-US@Northwind.example.com": Regime.CCPA},
        domains={"northwind.example.ie": Regime.EU_GDPR},
    )
    msg = request_message(to="privacy-us+web@northwind.example.com")
    r = parse_message(msg.as_bytes(), policy)
    assert r.regime == Regime.CCPA and r.mailbox == "privacy-us@northwind.example.com"
    r = parse_message(request_message(to="dpo@northwind.example.ie").as_bytes(), policy)
    assert r.regime == Regime.EU_GDPR
    r = parse_message(request_message(to="someone@example.net").as_bytes(), policy)
    assert r.regime == Regime.UK_GDPR and "the mailbox default" in r.reason


def test_auto_reply_quoting_a_case_reference_is_ignored_not_a_reply() -> None:
    r = parse_file("auto_ooo_auto_submitted.eml")
    assert r.outcome == Outcome.IGNORED and r.reason == "auto-reply (Auto-Submitted header)"


def test_spam_flag_on_a_real_request_goes_to_triage() -> None:
    r = parse_file("spam_flagged_but_real_request.eml")
    assert r.outcome == Outcome.TRIAGE and r.request_type == RequestType.ERASURE
    assert r.reason.startswith("marked as spam by the mail filter (x-spam-flag), but it reads like a request")


# --------------------------------------------------------------------------------------------
# Request types as the regime has them, and the statistical second opinion


def written(body: str, to: str, subject: str = "My data") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Ann Other <ann.other@example.com>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<regime-fit-1@example.com>"
    msg.set_content(f"Hello,\n\n{body}\n\nAnn Other\n")
    return msg.as_bytes()


UK_BOX, US_BOX, CA_BOX = (
    "privacy@northwind.example.co.uk",
    "privacy-us@northwind.example.com",
    "privacy@northwind.example.ca",
)


@pytest.mark.parametrize(
    ("body", "to", "expected"),
    [
        # the same words, the right each law has (LEGAL.md §1)
        ("Please do not sell or share my personal information.", US_BOX, RequestType.OPT_OUT_SALE_SHARING),
        ("Please do not sell or share my personal information.", UK_BOX, RequestType.OBJECTION),
        ("Please do not sell or share my personal information.", CA_BOX, RequestType.OBJECTION),
        (
            "I live in California. Please stop using my health data and restrict processing of it.",
            US_BOX,
            RequestType.LIMIT_SENSITIVE,
        ),
        (
            "Please limit the use of my sensitive personal information to what the service needs.",
            US_BOX,
            RequestType.LIMIT_SENSITIVE,
        ),
        (
            "Please limit the use of my sensitive personal information to what the service needs.",
            UK_BOX,
            RequestType.RESTRICTION,
        ),
        (
            "I am in Virginia. I object to profiling and targeted advertising.",
            US_BOX,
            RequestType.OPT_OUT_SALE_SHARING,
        ),
        # what every regime has stays as it is
        ("Please stop sending me marketing emails.", UK_BOX, RequestType.OBJECTION),
        ("Please delete my account and my personal data.", US_BOX, RequestType.ERASURE),
    ],
)
def test_request_type_is_the_right_the_regime_has(body: str, to: str, expected: RequestType) -> None:
    r = parse_message(written(body, to), POLICY)
    assert r.outcome == Outcome.REQUEST and r.request_type == expected, r.reason
    if r.regime not in US_REGIMES:
        assert r.request_type not in (RequestType.OPT_OUT_SALE_SHARING, RequestType.LIMIT_SENSITIVE)
        assert not {RequestType.OPT_OUT_SALE_SHARING, RequestType.LIMIT_SENSITIVE} & set(r.also_requested)


def test_fit_type_to_regime_keeps_what_the_regime_has() -> None:
    scores = {RequestType.OBJECTION: (2, ["marketing"]), RequestType.RESTRICTION: (4, ["until"])}
    assert fit_type_to_regime(RequestType.OPT_OUT_SALE_SHARING, [], scores, Regime.EU_GDPR)[0] == (
        RequestType.RESTRICTION
    )
    assert (
        fit_type_to_regime(RequestType.OPT_OUT_SALE_SHARING, [], {}, Regime.LGPD)[0] == RequestType.OBJECTION
    )
    assert (
        fit_type_to_regime(RequestType.LIMIT_SENSITIVE, [], {}, Regime.UK_GDPR)[0] == RequestType.RESTRICTION
    )
    # an objection to marketing emails from Colorado stays as read: no sale or ads wording
    assert fit_type_to_regime(RequestType.OBJECTION, [], scores, Regime.CPA) == (
        RequestType.OBJECTION,
        [],
        None,
    )
    for regime in Regime:
        for t in RequestType:
            fitted, also, _ = fit_type_to_regime(t, list(RequestType), {}, regime)
            assert fitted is not None and fitted not in also
            if regime not in US_REGIMES:
                assert {fitted, *also}.isdisjoint(
                    {RequestType.OPT_OUT_SALE_SHARING, RequestType.LIMIT_SENSITIVE}
                )


def test_training_texts_come_from_the_tuned_sets_only_and_are_current() -> None:
    """The second opinion must not have seen the unseen sets, and types.json must be what
    extract.py builds from the corpus today (no hand edits, no drift)."""
    shipped = classifier.load_examples()
    assert {e.source.split("/")[0] for e in shipped} <= TUNED_SETS == set(extract.TRAINING_SETS)
    unseen = {e["file"] for e in EXPECTED if e["set"] not in TUNED_SETS}
    assert not any(e.source.split("/")[1] in unseen for e in shipped)
    rebuilt = extract.training_rows(EMAILS)
    assert [(r["text"], r["label"], r["source"]) for r in rebuilt] == [
        (e.text, e.label, e.source) for e in shipped
    ]
    assert {e.label for e in shipped} == {t.value for t in RequestType} | {classifier.NOT_A_REQUEST}


def test_second_opinion_cross_validated_and_its_threshold() -> None:
    """5-fold cross-validation on the training texts: the shipped threshold is the one the
    procedure picks, its decisions are >= 95% right out of fold, and the model beats a floor."""
    cv = classifier.cross_validate()
    print(
        f"\nsecond opinion, {FOLDS}-fold CV on {cv.n} tuned texts: accuracy {cv.accuracy:.3f}; at threshold "
        f"{cv.threshold:.2f} its decisions are {cv.precision:.3f} right, cover {cv.coverage:.3f} of requests"
    )
    assert cv.threshold == classifier.THRESHOLD
    assert cv.precision >= classifier.TARGET_PRECISION
    assert cv.accuracy >= 0.80 and cv.coverage >= 0.5


def test_second_opinion_is_deterministic_and_never_raises() -> None:
    examples = classifier.load_examples()
    text = "i'd like to get hold of everything on your systems with my name on it"
    one = classifier.train(examples).predict_proba([classifier.features_text(text)])
    two = classifier.train(examples).predict_proba([classifier.features_text(text)])
    assert (one == two).all()
    opinion = classifier.second_opinion(text)
    assert opinion is not None and 0.0 <= opinion.probability <= 1.0
    assert text not in opinion.describe()
    for odd in ["", "   ", "\x00" * 10, "ü" * 100_000]:
        result = classifier.second_opinion(odd)
        assert result is None or isinstance(result, classifier.Opinion)
    assert classifier.second_opinion(123) is None  # type: ignore[arg-type]


def test_second_opinion_only_speaks_when_the_rules_find_no_type() -> None:
    rules_decide = parse_file("access_formal_letter_uk.eml")
    assert "statistical second opinion" not in rules_decide.reason
    question = parse_file("triage_parcel_question.eml")  # not a request: it stays in triage
    assert question.outcome == Outcome.TRIAGE and "statistical second opinion" in question.reason
    assert SECOND_OPINION_DECIDED not in question.reason


# --------------------------------------------------------------------------------------------
# The dry-run contract, run as a user runs it


def test_dry_run_cli(tmp_path: Path) -> None:
    files = [
        "access_formal_letter_uk.eml",
        "optout_do_not_sell_ccpa.eml",
        "reply_confirm_erasure.eml",
        "bounce_postfix_dsn.eml",
        "triage_parcel_question.eml",
    ]
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(bytes(range(256)) * 20 + b"\nFrom: \xff\xfe\x00\n\n")
    missing = tmp_path / "missing.eml"
    args = [str(EMAILS / f) for f in files] + [str(garbage), str(missing), str(tmp_path)]
    policy = json.loads((EMAILS / "policy.json").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSAR_")}
    env.update(
        DSAR_VAR_DIR=str(tmp_path / "var"),
        DSAR_INTAKE_DEFAULT_REGIME=policy["default_regime"],
        DSAR_INTAKE_MAILBOXES=json.dumps(policy["mailboxes"]),
        DSAR_INTAKE_DOMAINS=json.dumps(policy["domains"]),
    )
    proc = subprocess.run(
        [str(DSAR), "intake-email", "--dry-run", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 1, proc.stderr  # two paths could not be read
    assert "Traceback" not in proc.stderr and proc.stderr == ""
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["file"] for line in lines] == args
    keys = {"file", "outcome", "type", "regime", "identifier_kinds", "reason"}
    by_file = {Path(line["file"]).name: line for line in lines}
    for line in lines:
        assert keys <= set(line) <= keys | {"reply_to"}
        assert line["outcome"] in {"request", "triage", "ignored"}
    expected = {e["file"]: e for e in EXPECTED}
    for name in files:
        e, line = expected[name], by_file[name]
        assert line["outcome"] == ("request" if e["outcome"] == "reply" else e["outcome"])
        assert (line["type"], line["regime"], line["identifier_kinds"]) == (
            e["type"],
            e["regime"],
            e["identifier_kinds"],
        )
    assert by_file["reply_confirm_erasure.eml"]["reply_to"] == "DSR-2026-000137"
    assert "reply_to" not in by_file["access_formal_letter_uk.eml"]
    assert by_file["garbage.eml"]["outcome"] == "triage"
    assert by_file["missing.eml"]["reason"] == "error: cannot read the file (No such file or directory)"
    assert by_file[tmp_path.name]["reason"] == "error: cannot read the file (Is a directory)"

    printed = proc.stdout + proc.stderr
    for name in files:
        for value in parse_file(name).identifiers.values():
            assert value not in printed, (name, value)

    ok = subprocess.run(
        [str(DSAR), "intake-email", "--dry-run", str(EMAILS / files[0])],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 1
    usage = subprocess.run([str(DSAR), "intake-email"], capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and "--dry-run" in usage.stderr and "Traceback" not in usage.stderr
