"""The S3 connector against a real S3 endpoint (moto's server on loopback, see tests/s3server.py).

The bucket is shaped like the demo's ``recordings`` system: call audio under
``recordings/<customer_id>/`` and the delivery partner's daily JSONL exports, which name several
people - the subject, a namesake with another email, and a neighbour sharing her postcode -
plus objects matched by metadata and tags, free text, CSV and JSON documents.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from connectors.base import (
    HEARTBEAT_EVERY,
    ConnectorMisconfigured,
    ConnectorUnavailable,
    ErasurePlan,
    FieldChange,
    Rectification,
    Subject,
    connector_for,
)
from connectors.s3 import MAX_DOCUMENT_BYTES, S3Connector, _lines
from dsar.blobs import S3ObjectWriter, s3_client
from dsar.datamap import DataMap, Marker, SystemConfig
from tests.s3server import free_port

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "northwind-call-recordings"
REGION = "eu-west-2"
ENDPOINT_ENV = "DSAR_TEST_S3_ENDPOINT"

DATAMAP = f"""
version: 1
controller:
  name: Northwind Post & Mobile Ltd
  contact_email: privacy@northwind.example.com
  phone_region: GB
systems:
  recordings:
    connector: s3
    bucket: {BUCKET}
    endpoint_env: {ENDPOINT_ENV}
    region: {REGION}
    defaults:
      category: Call recordings
      purpose: Quality assurance
      legal_basis: legitimate_interests
      retention: 12 months
    entities:
      call_audio:
        prefix: "recordings/{{customer_id}}/"
        format: binary
        erasure: delete
        fields:
          {{key: {{}}, version_id: {{}}, last_modified: {{}}, size: {{}}, content_type: {{}}, metadata: {{}}}}
      legacy_audio:
        prefix: "legacy/{{customer_id}}"
        format: binary
        erasure: delete
        fields: {{key: {{}}, size: {{}}}}
      proof_of_delivery:
        prefix: "pod-exports/"
        format: jsonl
        identity:
          content.recipient_email: email
          content.recipient_phone: phone
        erasure: delete
        fields: {{key: {{}}, version_id: {{}}, last_modified: {{}}, content: {{}}}}
      uploads:
        prefix: "uploads/"
        format: binary
        identity:
          metadata.customer-email: email
          tag.customer-phone: phone
        erasure: delete
        fields: {{key: {{}}, content_type: {{}}, metadata: {{}}, tags: {{}}}}
      notes:
        prefix: "notes/"
        format: text
        identity: {{content: email}}
        erasure: delete
        fields: {{key: {{}}, content: {{}}}}
      sms:
        prefix: "sms/"
        format: text
        identity: {{content: phone}}
        erasure: {{strategy: keep, reason: Ofcom record keeping}}
        fields: {{key: {{}}, content: {{}}}}
      returns:
        prefix: "returns/"
        format: csv
        identity:
          content.email: email
          content.postcode: postcode
        erasure: delete
        fields: {{key: {{}}, content: {{}}}}
      claims:
        prefix: "claims/"
        format: json
        identity:
          content.customer.email: email
        erasure: delete
        fields: {{key: {{}}, content: {{}}}}
"""

EMAIL = "margaret.ellis@example.co.uk"
PHONE = "07911 123456"
CUSTOMER = "42"
POSTCODE = "CV3 4LP"
MARGARET = {"customer_id": CUSTOMER, "email": EMAIL, "phone": PHONE}

POD_KEY = "pod-exports/2026-01-03.jsonl"
POD_LINES: list[dict[str, Any] | str] = [
    {
        "parcel": "P-1001",
        "recipient_name": "Margaret Ellis",
        "recipient_email": " Margaret.Ellis@Example.co.uk",
        "recipient_phone": "07911 123456",
        "postcode": "CV3 4LP",
        "photo": "pod/P-1001.jpg",
    },
    {  # the namesake: same name, another email and phone
        "parcel": "P-1002",
        "recipient_name": "Margaret Ellis",
        "recipient_email": "m.ellis@example.org",
        "recipient_phone": "07700 900111",
        "postcode": "B1 1AA",
    },
    {  # the neighbour: same postcode
        "parcel": "P-1003",
        "recipient_name": "David Brookes",
        "recipient_email": "david@example.net",
        "recipient_phone": "07922 555666",
        "postcode": "CV3 4LP",
    },
    "",  # a blank line
    {
        "parcel": "P-1004",
        "recipient_name": "M. Ellis",
        "recipient_phone": "+44 7911 123456",
        "postcode": "CV34LP",
    },
    "not json at all",
]


def jsonl(lines: list[dict[str, Any] | str]) -> bytes:
    return b"".join((json.dumps(line) if isinstance(line, dict) else line).encode() + b"\n" for line in lines)


RETURNS_CSV = (
    b"email,postcode,item,notes\r\n"
    b'margaret.ellis@example.co.uk,CV3 4LP,Kettle,"left with\r\nneighbour"\r\n'
    b"david@example.net,cv3 4lp,Toaster,\r\n"
    b"m.ellis@example.org,B1 1AA,Lamp,\r\n"
)

CLAIMS = [
    {"claim": "C-1", "customer": {"email": "MARGARET.ELLIS@example.co.uk"}, "amount": "12.50"},
    {"claim": "C-2", "customer": {"email": "david@example.net"}, "amount": "3.00"},
]


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(ENDPOINT_ENV, moto_endpoint)
    client = s3_client(moto_endpoint, REGION)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


@pytest.fixture
def system(s3: Any) -> SystemConfig:
    return DataMap.parse(DATAMAP).system("recordings")


def seed(s3: Any) -> None:
    for key, customer in [
        ("recordings/42/000001.wav", "42"),
        ("recordings/42/000002.wav", "42"),
        ("recordings/420/000003.wav", "420"),
        ("recordings/4/000004.wav", "4"),
        ("legacy/42.wav", "42"),
        ("legacy/4.wav", "4"),
    ]:
        s3.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=b"RIFF" + customer.encode() * 100,
            ContentType="audio/wav",
            Metadata={"direction": "inbound", "agent": "Sam", "customer": customer},
        )
    s3.put_object(Bucket=BUCKET, Key=POD_KEY, Body=jsonl(POD_LINES), ContentType="application/x-ndjson")
    s3.put_object(
        Bucket=BUCKET,
        Key="pod-exports/2026-01-04.jsonl",
        Body=jsonl([POD_LINES[2], POD_LINES[1]]),
    )
    s3.put_object(
        Bucket=BUCKET,
        Key="uploads/a.bin",
        Body=b"\x00\x01",
        Metadata={"customer-email": "MARGARET.ELLIS@example.co.uk"},
        Tagging="customer-phone=%2B447911123456&source=web",
    )
    s3.put_object(
        Bucket=BUCKET, Key="uploads/b.bin", Body=b"\x00", Metadata={"customer-email": "david@example.net"}
    )
    s3.put_object(Bucket=BUCKET, Key="notes/n1.txt", Body=f"Customer {EMAIL.upper()} called.".encode())
    s3.put_object(Bucket=BUCKET, Key="notes/n2.txt", Body=f"Write to x{EMAIL}.org or {EMAIL}x".encode())
    s3.put_object(Bucket=BUCKET, Key="sms/s1.txt", Body=b"From +44 (0)7911 123-456: parcel late")
    s3.put_object(Bucket=BUCKET, Key="sms/s2.txt", Body=b"From 07911 1234567 and 0791 1123457: other")
    s3.put_object(Bucket=BUCKET, Key="returns/2026-01.csv", Body=RETURNS_CSV, ContentType="text/csv")
    s3.put_object(Bucket=BUCKET, Key="claims/c.json", Body=json.dumps(CLAIMS, indent=2).encode())


def records(sink: io.BytesIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.getvalue().splitlines()]


def body(s3: Any, key: str, **kwargs: Any) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key, **kwargs)["Body"].read())


def versions(s3: Any, prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    answer = s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
    return answer.get("Versions", []), answer.get("DeleteMarkers", [])


# -- locate --------------------------------------------------------------------------------------


def test_connector_for_builds_the_s3_connector(system: SystemConfig) -> None:
    assert isinstance(connector_for(system), S3Connector)


def test_check(system: SystemConfig) -> None:
    S3Connector(system).check()


def test_locate_by_template_metadata_tag_and_content(system: SystemConfig, s3: Any) -> None:
    seed(s3)
    located = S3Connector(system).locate(MARGARET)
    assert located.system == "recordings"
    assert located.matches == {
        "customer_id": ["call_audio:recordings/42/", "legacy_audio:legacy/42"],
        "email": [
            "claims:claims/c.json#1",
            "notes:notes/n1.txt",
            f"proof_of_delivery:{POD_KEY}#1",
            "returns:returns/2026-01.csv#2",
            "uploads:uploads/a.bin",
        ],
        "phone": [
            f"proof_of_delivery:{POD_KEY}#1",
            f"proof_of_delivery:{POD_KEY}#5",
            "sms:sms/s1.txt",
            "uploads:uploads/a.bin",
        ],
    }
    assert located.matched_kinds == ["customer_id", "email", "phone"]
    assert set(located.person_keys) == {k for keys in located.matches.values() for k in keys}


def test_placeholder_kind_not_supplied_skips_the_template_entity(system: SystemConfig, s3: Any) -> None:
    seed(s3)
    located = S3Connector(system).locate({"email": EMAIL})
    assert "customer_id" not in located.matches
    assert not any(key.startswith(("call_audio:", "legacy_audio:")) for key in located.person_keys)


def test_template_ending_in_a_placeholder_does_not_take_longer_numbers(system: SystemConfig, s3: Any) -> None:
    seed(s3)
    s3.delete_object(Bucket=BUCKET, Key="legacy/4.wav")
    # customer 4 has no legacy recording; customer 42's "legacy/42.wav" starts with "legacy/4"
    located = S3Connector(system).locate({"customer_id": "4"})
    assert located.matches == {"customer_id": ["call_audio:recordings/4/"]}


def test_household_shares_a_postcode_but_collect_takes_only_the_accepted_row(
    system: SystemConfig, s3: Any
) -> None:
    seed(s3)
    connector = S3Connector(system)
    located = connector.locate({"postcode": "cv34lp"})
    assert located.matches == {"postcode": ["returns:returns/2026-01.csv#2", "returns:returns/2026-01.csv#4"]}
    sink = io.BytesIO()
    collected = connector.collect(
        {"postcode": POSTCODE}, sink, person_keys=["returns:returns/2026-01.csv#2", "crm:customers:1"]
    )
    assert collected.entities["returns"] == 1
    (record,) = records(sink)
    assert record == {
        "entity": "returns",
        "record": {
            "key": "returns/2026-01.csv",
            "content": {
                "email": EMAIL,
                "postcode": "CV3 4LP",
                "item": "Kettle",
                "notes": "left with\r\nneighbour",
            },
        },
    }


@pytest.mark.parametrize(
    "value",
    [
        "../",
        "../42",
        "42/../420",
        "*",
        "4*",
        "%2F",
        "42%2F..%2F420",
        "4" * 5000,
        "4\x002",
        "4\n2",
        "..",
        ".",
        "",
        " ",
    ],
)
def test_injection_like_values_match_nothing_and_never_raise(
    system: SystemConfig, s3: Any, value: str
) -> None:
    seed(s3)
    connector = S3Connector(system)
    identifiers = {"customer_id": value, "email": value, "postcode": value, "name": value}
    located = connector.locate(identifiers)
    assert located.person_keys == []
    sink = io.BytesIO()
    assert connector.collect(identifiers, sink).records == 0
    assert sink.getvalue() == b""


def test_text_matches_whole_addresses_and_numbers_only(system: SystemConfig, s3: Any) -> None:
    seed(s3)
    connector = S3Connector(system)
    # n2 mentions "x<email>.org" and "<email>x": neither is the address
    assert connector.locate({"email": EMAIL}).matches["email"].count("notes:notes/n2.txt") == 0
    # s1 writes the number as "+44 (0)7911 123-456"; s2 holds a longer and a shifted number
    assert connector.locate({"phone": "+447911123456"}).matches["phone"] == [
        f"proof_of_delivery:{POD_KEY}#1",
        f"proof_of_delivery:{POD_KEY}#5",
        "sms:sms/s1.txt",
        "uploads:uploads/a.bin",
    ]


# -- collect ---------------------------------------------------------------------------------------


def test_collect_returns_every_record_of_the_subject_and_nothing_else(system: SystemConfig, s3: Any) -> None:
    seed(s3)
    connector = S3Connector(system)
    located = connector.locate(MARGARET)
    sink = io.BytesIO()
    collected = connector.collect(MARGARET, sink, person_keys=located.person_keys)
    out = records(sink)
    assert collected.records == len(out) == 10
    assert collected.entities == {
        "call_audio": 2,
        "legacy_audio": 1,
        "proof_of_delivery": 2,
        "uploads": 1,
        "notes": 1,
        "sms": 1,
        "returns": 1,
        "claims": 1,
    }
    by_entity: dict[str, list[dict[str, Any]]] = {}
    for line in out:
        by_entity.setdefault(line["entity"], []).append(line["record"])

    audio = sorted(by_entity["call_audio"], key=lambda r: r["key"])
    for record, key in zip(audio, ["recordings/42/000001.wav", "recordings/42/000002.wav"], strict=True):
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert record == {
            "key": key,
            "version_id": None,
            "last_modified": head["LastModified"].isoformat(),
            "size": 4 + 200,
            "content_type": "audio/wav",
            "metadata": {"direction": "inbound", "agent": "Sam", "customer": "42"},
        }
    assert by_entity["legacy_audio"] == [{"key": "legacy/42.wav", "size": 204}]
    pod = by_entity["proof_of_delivery"]
    assert [r["content"] for r in pod] == [POD_LINES[0], POD_LINES[4]]
    assert all(r["key"] == POD_KEY and r["version_id"] is None and r["last_modified"] for r in pod)
    assert by_entity["uploads"] == [
        {
            "key": "uploads/a.bin",
            "content_type": "binary/octet-stream",
            "metadata": {"customer-email": "MARGARET.ELLIS@example.co.uk"},
            "tags": {"customer-phone": "+447911123456", "source": "web"},
        }
    ]
    assert by_entity["notes"] == [{"key": "notes/n1.txt", "content": f"Customer {EMAIL.upper()} called."}]
    assert by_entity["sms"] == [{"key": "sms/s1.txt", "content": "From +44 (0)7911 123-456: parcel late"}]
    assert by_entity["claims"] == [{"key": "claims/c.json", "content": CLAIMS[0]}]
    text = sink.getvalue().decode().lower()
    for other in (
        "david",
        "m.ellis@example.org",
        "07700",
        "toaster",
        "recordings/420",
        "recordings/4/",
        "c-2",
    ):
        assert other not in text


def test_collect_without_person_keys_takes_every_located_person(system: SystemConfig, s3: Any) -> None:
    seed(s3)
    sink = io.BytesIO()
    collected = S3Connector(system).collect({"postcode": "CV3 4LP"}, sink)
    assert collected.entities["returns"] == 2  # Margaret's and her neighbour's rows


def test_collect_is_narrowed_to_accepted_keys(system: SystemConfig, s3: Any) -> None:
    seed(s3)
    sink = io.BytesIO()
    collected = S3Connector(system).collect(MARGARET, sink, person_keys=[f"proof_of_delivery:{POD_KEY}#5"])
    assert collected.records == 1
    assert records(sink)[0]["record"]["content"] == POD_LINES[4]


def test_demo_recordings_system(s3: Any, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> None:
    """The demo data map's own ``recordings`` system works as written."""
    demo = DataMap.load(ROOT / "demo" / "dsar.yaml").system("recordings")
    assert demo.bucket is not None and demo.bucket.bucket == BUCKET
    monkeypatch.setenv(demo.bucket.endpoint_env, moto_endpoint)
    seed(s3)
    connector = connector_for(demo)
    located = connector.locate(MARGARET)
    assert "call_audio:recordings/42/" in located.person_keys
    assert f"proof_of_delivery:{POD_KEY}#1" in located.person_keys
    sink = io.BytesIO()
    collected = connector.collect(MARGARET, sink, person_keys=located.person_keys)
    assert collected.records >= 4
    assert b"david" not in sink.getvalue().lower()


# -- versioned buckets -------------------------------------------------------------------------------


def test_versioned_bucket_collects_every_version_and_erase_leaves_nothing(
    system: SystemConfig, s3: Any
) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    key = "recordings/42/000001.wav"
    ids = [s3.put_object(Bucket=BUCKET, Key=key, Body=f"take {i}".encode())["VersionId"] for i in range(3)]
    s3.put_object(Bucket=BUCKET, Key="recordings/42/gone.wav", Body=b"x")
    s3.delete_object(Bucket=BUCKET, Key="recordings/42/gone.wav")  # a delete marker over a version
    s3.put_object(Bucket=BUCKET, Key="recordings/420/000003.wav", Body=b"other")
    connector = S3Connector(system)

    located = connector.locate({"customer_id": CUSTOMER})
    assert located.person_keys == ["call_audio:recordings/42/"]
    sink = io.BytesIO()
    connector.collect({"customer_id": CUSTOMER}, sink, person_keys=located.person_keys)
    got = {(r["record"]["key"], r["record"]["version_id"]) for r in records(sink)}
    assert got == {(key, vid) for vid in ids} | {
        ("recordings/42/gone.wav", versions(s3, "recordings/42/gone.wav")[0][0]["VersionId"])
    }

    plan = ErasurePlan.from_datamap(system, Subject({"customer_id": CUSTOMER}, located.person_keys))
    erased = connector.erase(plan)
    assert erased.deleted["call_audio"] == 4  # three takes and the hidden version
    assert versions(s3, "recordings/42/") == ([], [])  # no version, no delete marker
    assert len(versions(s3, "recordings/420/")[0]) == 1

    again = S3Connector(system).erase(plan)
    assert again.deleted["call_audio"] == 0
    assert S3Connector(system).locate({"customer_id": CUSTOMER}).person_keys == []


def test_versioned_jsonl_rewrite_deletes_older_versions_holding_the_lines(
    system: SystemConfig, s3: Any
) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=BUCKET, Key=POD_KEY, Body=jsonl(POD_LINES[:3]))["VersionId"]
    clean = s3.put_object(Bucket=BUCKET, Key=POD_KEY, Body=jsonl(POD_LINES[1:3]))["VersionId"]
    s3.put_object(Bucket=BUCKET, Key=POD_KEY, Body=jsonl(POD_LINES))
    connector = S3Connector(system)
    located = connector.locate({"email": EMAIL, "phone": PHONE})
    assert located.matches["email"] == [f"proof_of_delivery:{POD_KEY}#1"]
    sink = io.BytesIO()
    connector.collect({"email": EMAIL, "phone": PHONE}, sink, person_keys=located.person_keys)
    assert len({r["record"]["version_id"] for r in records(sink)}) == 2  # the first and the latest

    plan = ErasurePlan.from_datamap(system, Subject({"email": EMAIL, "phone": PHONE}, located.person_keys))
    erased = connector.erase(plan)
    assert erased.deleted["proof_of_delivery"] == 2 + 2  # two lines emptied, two old versions
    live, markers = versions(s3, POD_KEY)
    assert markers == []
    assert first not in {v["VersionId"] for v in live}
    assert clean in {v["VersionId"] for v in live}  # never held her lines: history kept
    for version in live:
        assert b"margaret.ellis" not in body(s3, POD_KEY, VersionId=version["VersionId"]).lower()
    assert S3Connector(system).erase(plan).deleted["proof_of_delivery"] == 0


# -- erase, restrict, rectify ------------------------------------------------------------------------------


def test_erase_rewrites_a_shared_export_without_the_subjects_lines(system: SystemConfig, s3: Any) -> None:
    seed(s3)
    s3.put_object_tagging(
        Bucket=BUCKET, Key=POD_KEY, Tagging={"TagSet": [{"Key": "partner", "Value": "swift"}]}
    )
    s3.put_object(Bucket=BUCKET, Key="pod-exports/2026-01-05.jsonl", Body=jsonl([POD_LINES[0], ""]))
    before = body(s3, POD_KEY).splitlines(keepends=True)
    connector = S3Connector(system)
    located = connector.locate(MARGARET)
    subject = Subject(MARGARET, located.person_keys)
    erased = connector.erase(ErasurePlan.from_datamap(system, subject))

    assert erased.deleted["proof_of_delivery"] == 2 + 1  # two lines emptied, one object deleted
    after = body(s3, POD_KEY).splitlines(keepends=True)
    assert len(after) == len(before)  # every other line keeps its number
    assert after[0] == b"\n" and after[4] == b"\n"
    assert [after[i] for i in (1, 2, 3, 5)] == [before[i] for i in (1, 2, 3, 5)]
    head = s3.head_object(Bucket=BUCKET, Key=POD_KEY)
    assert head["ContentType"] == "application/x-ndjson"
    assert s3.get_object_tagging(Bucket=BUCKET, Key=POD_KEY)["TagSet"] == [
        {"Key": "partner", "Value": "swift"}
    ]
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert "pod-exports/2026-01-05.jsonl" not in listed  # nothing but hers: deleted
    assert "pod-exports/2026-01-04.jsonl" in listed
    assert not any(k.startswith("recordings/42/") for k in listed) and "recordings/420/000003.wav" in listed
    assert {"uploads/b.bin", "notes/n2.txt", "sms/s1.txt"} <= listed  # sms is kept (its strategy)
    assert "uploads/a.bin" not in listed and "notes/n1.txt" not in listed
    assert "sms" not in erased.deleted

    returns = body(s3, "returns/2026-01.csv")
    assert returns.splitlines(keepends=True) == [
        b"email,postcode,item,notes\r\n",
        b"\r\n",
        b"\r\n",
        b"david@example.net,cv3 4lp,Toaster,\r\n",
        b"m.ellis@example.org,B1 1AA,Lamp,\r\n",
    ]
    claims = json.loads(body(s3, "claims/c.json"))
    assert claims == [None, CLAIMS[1]]

    again = S3Connector(system).erase(ErasurePlan.from_datamap(system, subject))
    assert sum(again.deleted.values()) == 0
    assert body(s3, POD_KEY).splitlines(keepends=True) == after


def test_erase_a_neighbours_line_is_never_touched_on_a_retry(system: SystemConfig, s3: Any) -> None:
    """A retried erasure (same plan) after a rewrite must not take the line now at her number."""
    seed(s3)
    shared = {"postcode": POSTCODE}
    subject = Subject(shared, ["returns:returns/2026-01.csv#2"])
    plan = ErasurePlan.from_datamap(system, subject)
    assert S3Connector(system).erase(plan).deleted["returns"] == 1
    assert S3Connector(system).erase(plan).deleted["returns"] == 0
    assert b"david@example.net" in body(s3, "returns/2026-01.csv")


def test_restrict_tags_the_subjects_objects_keeping_their_tags(system: SystemConfig, s3: Any) -> None:
    seed(s3)
    connector = S3Connector(system)
    subject = Subject(MARGARET, connector.locate(MARGARET).person_keys)
    changed = connector.restrict(subject)
    assert changed.entities["call_audio"] == 2 and changed.entities["uploads"] == 1
    assert changed.entities["proof_of_delivery"] == 1  # the shared export, tagged as a whole

    def tags(key: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]}

    assert tags("uploads/a.bin") == {
        "customer-phone": "+447911123456",
        "source": "web",
        "dsar-restricted": "true",
    }
    assert tags("recordings/42/000001.wav") == {"dsar-restricted": "true"}
    assert tags("recordings/420/000003.wav") == {}
    assert tags("uploads/b.bin") == {}
    assert sum(S3Connector(system).restrict(subject).entities.values()) == 0


def test_marks_reads_the_restriction_tag_back_and_other_markers_have_nothing_to_set(
    system: SystemConfig, s3: Any
) -> None:
    seed(s3)
    connector = S3Connector(system)
    subject = Subject(MARGARET, connector.locate(MARGARET).person_keys)
    before = connector.marks(subject, Marker.RESTRICTION)
    assert before.marked["call_audio"] == 0 and before.unmarked["call_audio"] == 2
    connector.restrict(subject)
    after = connector.marks(subject, Marker.RESTRICTION)
    assert sum(after.unmarked.values()) == 0 and after.marked["call_audio"] == 2
    # an exempt object is neither tagged nor counted
    s3.delete_object_tagging(Bucket=BUCKET, Key="recordings/42/000002.wav")
    exempt = frozenset({"call_audio:recordings/42/000002.wav"})
    assert connector.mark(subject, Marker.RESTRICTION, exempt).entities["call_audio"] == 0
    assert connector.marks(subject, Marker.RESTRICTION, exempt).unmarked["call_audio"] == 0
    assert connector.marks(subject, Marker.RESTRICTION).unmarked["call_audio"] == 1
    # objection and opt-outs are flags in a register of persons: an object store has none
    assert connector.mark(subject, Marker.OPT_OUT).entities == {}
    assert connector.marks(subject, Marker.OBJECTION).marked == {}


def test_erase_keeps_the_objects_the_plan_keeps(system: SystemConfig, s3: Any) -> None:
    seed(s3)
    connector = S3Connector(system)
    subject = Subject(MARGARET, connector.locate(MARGARET).person_keys)
    plan = ErasurePlan.from_datamap(system, subject)
    for step in plan.entities:
        if step.entity == "call_audio":
            step.keep = ["call_audio:recordings/42/000001.wav"]
        if step.entity == "proof_of_delivery":  # kept in part: an object is kept whole
            step.keep_fields = {f"proof_of_delivery:{POD_KEY}": ["content"]}
    erased = connector.erase(plan)
    assert erased.deleted["call_audio"] == 1 and erased.deleted["proof_of_delivery"] == 0
    assert erased.kept == {"call_audio": 1, "proof_of_delivery": 1}
    s3.head_object(Bucket=BUCKET, Key="recordings/42/000001.wav")
    assert jsonl(POD_LINES) == s3.get_object(Bucket=BUCKET, Key=POD_KEY)["Body"].read()
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key="recordings/42/000002.wav")
    assert connector.erase(plan).deleted["call_audio"] == 0


def test_rectify_sets_the_field_on_the_subjects_lines_only(system: SystemConfig, s3: Any) -> None:
    seed(s3)
    connector = S3Connector(system)
    subject = Subject(MARGARET, connector.locate(MARGARET).person_keys)
    before = body(s3, POD_KEY).splitlines(keepends=True)
    change = Rectification(
        subject,
        [
            FieldChange("proof_of_delivery", "content.recipient_name", "Margaret Ellis-Brown"),
            FieldChange("returns", "item", "Kettle (2L)"),
            FieldChange("claims", "customer.name", "Margaret Ellis-Brown"),
        ],
    )
    changed = connector.rectify(change)
    assert changed.entities == {"proof_of_delivery": 2, "returns": 1, "claims": 1}
    after = body(s3, POD_KEY).splitlines(keepends=True)
    assert json.loads(after[0])["recipient_name"] == "Margaret Ellis-Brown"
    assert json.loads(after[4]) == {**POD_LINES[4], "recipient_name": "Margaret Ellis-Brown"}  # type: ignore[dict-item]
    assert [after[i] for i in (1, 2, 3, 5)] == [before[i] for i in (1, 2, 3, 5)]
    returns = body(s3, "returns/2026-01.csv").splitlines(keepends=True)
    assert len(returns) == 5 and returns[3:] == RETURNS_CSV.splitlines(keepends=True)[3:]
    assert b"Kettle (2L)" in returns[1]
    assert json.loads(body(s3, "claims/c.json"))[1] == CLAIMS[1]
    assert sum(S3Connector(system).rectify(change).entities.values()) == 0


@pytest.mark.parametrize(
    ("entity", "field"), [("call_audio", "content"), ("uploads", "metadata"), ("notes", "content.x")]
)
def test_rectify_what_cannot_be_corrected_is_an_error(
    system: SystemConfig, s3: Any, entity: str, field: str
) -> None:
    seed(s3)
    subject = Subject(MARGARET, S3Connector(system).locate(MARGARET).person_keys)
    with pytest.raises(ConnectorMisconfigured, match=f"'{field}' of entity '{entity}'") as caught:
        S3Connector(system).rectify(Rectification(subject, [FieldChange(entity, field, "new@example.com")]))
    assert "new@example.com" not in str(caught.value) and EMAIL not in str(caught.value)


# -- failures ------------------------------------------------------------------------------------


def test_endpoint_down_is_unavailable_without_personal_data(
    system: SystemConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, f"http://127.0.0.1:{free_port()}")
    connector = S3Connector(system)
    started = time.monotonic()
    for call in (
        connector.check,
        lambda: connector.locate(MARGARET),
        lambda: connector.collect(MARGARET, io.BytesIO()),
    ):
        with pytest.raises(ConnectorUnavailable) as caught:
            call()
        message = str(caught.value)
        assert "recordings" in message and BUCKET in message
        for value in (EMAIL, "7911", "testing", "/42"):
            assert value not in message
    assert time.monotonic() - started < 30


def test_unusable_endpoint_url_is_misconfigured(
    system: SystemConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, "not a url (user:s3cret@host)")
    with pytest.raises(ConnectorMisconfigured, match=ENDPOINT_ENV) as caught:
        S3Connector(system).locate(MARGARET)
    assert "s3cret" not in str(caught.value)


def test_missing_bucket_is_misconfigured(system: SystemConfig, s3: Any) -> None:
    s3.delete_bucket(Bucket=BUCKET)
    connector = S3Connector(system)
    with pytest.raises(ConnectorMisconfigured, match=f"bucket '{BUCKET}' does not exist"):
        connector.check()
    with pytest.raises(ConnectorMisconfigured, match="does not exist") as caught:
        connector.locate(MARGARET)
    assert EMAIL not in str(caught.value)


def test_document_over_the_size_cap_is_skipped_and_counted(
    system: SystemConfig, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import connectors.s3 as module

    monkeypatch.setattr(module, "MAX_DOCUMENT_BYTES", 100)
    s3.put_object(Bucket=BUCKET, Key="notes/big.txt", Body=f"{EMAIL} ".encode() * 20)
    s3.put_object(Bucket=BUCKET, Key="notes/small.txt", Body=EMAIL.encode())
    connector = S3Connector(system)
    assert connector.locate({"email": EMAIL}).person_keys == ["notes:notes/small.txt"]
    assert connector.skipped == {"notes": 1}
    assert MAX_DOCUMENT_BYTES == 20 * 1024 * 1024


def test_fifty_thousand_lines_are_collected_with_bounded_memory(system: SystemConfig, s3: Any) -> None:
    padding = "x" * 600
    key = "pod-exports/big.jsonl"
    writer = S3ObjectWriter(s3, BUCKET, key)
    expected = 0
    for n in range(50_000):
        mine = n % 5 == 0
        expected += mine
        line = {
            "parcel": f"P-{n}",
            "recipient_email": EMAIL if mine else f"person{n}@example.net",
            "recipient_phone": "07911 123456" if mine else f"07700 9{n % 100000:05d}",
            "padding": padding,
        }
        writer.write(json.dumps(line).encode() + b"\n")
    writer.close()
    size = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    assert size > 30 * 1024 * 1024

    class HashSink:
        def __init__(self) -> None:
            self.digest = hashlib.sha256()
            self.lines = 0

        def write(self, data: bytes, /) -> int:
            self.digest.update(data)
            self.lines += 1
            return len(data)

    beats: list[float] = []
    connector = S3Connector(system, heartbeat=lambda: beats.append(time.monotonic()))
    connector.check()  # the client is built (and its service model loaded) before measuring
    sink = HashSink()
    tracemalloc.start()
    try:
        collected = connector.collect({"email": EMAIL}, sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert collected.records == sink.lines == expected == 10_000
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"  # measured: under 1 MiB
    assert len(beats) >= expected // HEARTBEAT_EVERY


# -- the line reader --------------------------------------------------------------------------------


def test_lines_across_chunks_and_oversized_lines() -> None:
    chunks = [b"ab", b"c\nde", b"f\r\n\n", b"x" * 10, b"y\nlast"]
    assert list(_lines(chunks, limit=8)) == [b"abc\n", b"def\r\n", b"\n", None, b"last"]
    assert list(_lines([b"a\n"], limit=8)) == [b"a\n"]
    assert list(_lines([], limit=8)) == []
