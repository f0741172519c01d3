"""Delivering the access package: the expiring download link served by the app (every download
and every refused attempt in the case's audit trail), and the S3 presigned URL against moto's
S3 server. The package is built by the real activities (Temporal's ActivityEnvironment) from
the demo company in PostgreSQL."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
import pyzipper
from temporalio.testing import ActivityEnvironment

from activities.export import ExportActivities, LinkInput, PackageInput, PackageResult
from console.app import create_app
from dsar.blobs import BlobStore, blob_store_from_settings, dispose_s3_clients
from dsar.delivery import S3_MAX_LINK, check_download_token, deliver_via_s3, mint_download_link
from dsar.links import LinkRefused, mint_link
from dsar.model import Channel, Regime, RequestType
from dsar.settings import Settings
from dsar.store import CaseStore, NewCase
from tests.conftest import make_settings
from tests.test_exemptions import demo_pg  # noqa: F401  (the PostgreSQL demo company)
from tests.test_package import DEMO_MAP, RECEIVED, open_package, search

PUBLIC = "http://public.test"


@pytest.fixture
def settings(tmp_path: Path, register_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url=register_url, public_url=PUBLIC)


@dataclass
class Delivered:
    reference: str
    package: PackageResult
    url: str
    blobs: BlobStore
    export: ExportActivities

    @property
    def password(self) -> str:
        assert self.package.password_ref
        return self.blobs.get(self.package.password_ref).decode()


def new_case(store: CaseStore) -> str:
    row, _ = store.open_case(NewCase(RequestType.ACCESS, Regime.UK_GDPR, Channel.API, datetime.now(UTC)))
    return row.reference


def package_for(
    store: CaseStore,
    settings: Settings,
    urls: dict[str, str],
    tmp: Path,
) -> Delivered:
    """A case in the register, searched, packaged and given a link, as the activities do it."""
    reference = new_case(store)
    blobs = blob_store_from_settings(settings)
    searched = search(urls, tmp, reference)
    # the search results, moved into the deployment's blob store where the app reads them
    systems = []
    for s in searched.systems:
        if s.blob_ref:
            s = replace(
                s, blob_ref=blobs.put(searched.blobs.get(s.blob_ref), case=reference, name="found.jsonl")
            )
        systems.append(s)
    export = ExportActivities(DEMO_MAP, blobs, settings, store)
    env = ActivityEnvironment()
    package = env.run(
        export.build_access_package,
        PackageInput(reference, Regime.UK_GDPR, RequestType.ACCESS, RECEIVED.isoformat(), systems),
    )
    link = env.run(export.issue_download_link, LinkInput(reference, package.blob_ref, package.file_name))
    return Delivered(reference, package, blobs.get(link.link_ref).decode(), blobs, export)


@pytest.fixture
def delivered(
    store: CaseStore,
    settings: Settings,
    demo_pg: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> Delivered:
    return package_for(store, settings, demo_pg, tmp_path)


@pytest.fixture
async def person(settings: Settings, store: CaseStore) -> AsyncIterator[httpx.AsyncClient]:
    """The person's browser, on the app (no workflow engine needed to download)."""
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


def actions(store: CaseStore, reference: str) -> list[tuple[str, str]]:
    return [(e.action, e.reason) for e in store.audit_trail(reference) if e.action.startswith("package:")]


def path_of(url: str) -> str:
    return url.removeprefix(PUBLIC)


def with_token(url: str, token: str) -> str:
    return url.split("?t=", 1)[0] + "?t=" + token


def token_of(url: str) -> str:
    return url.split("?t=", 1)[1]


def change_one_payload_char(token: str) -> str:
    header, payload, signature = token.split(".")
    i = len(payload) // 2
    return ".".join((header, payload[:i] + ("B" if payload[i] != "B" else "C") + payload[i + 1 :], signature))


# --------------------------------------------------------------------------------------------
# The app's link


async def test_the_link_downloads_the_package_and_every_download_is_audited(
    delivered: Delivered, person: httpx.AsyncClient, store: CaseStore
) -> None:
    assert delivered.url.startswith(f"{PUBLIC}/d/{delivered.reference}?t=")
    claims = json.loads(base64.urlsafe_b64decode(token_of(delivered.url).split(".")[1] + "=="))
    assert set(claims) == {"ref", "purpose", "blob", "name", "jti", "iat", "exp"}  # nothing about her
    assert claims["exp"] - claims["iat"] == 30 * 86400  # DSAR_DOWNLOAD_LINK_DAYS
    assert actions(store, delivered.reference) == [("package:link_issued", "")]

    for n in (1, 2):
        answer = await person.get(path_of(delivered.url))
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/zip"
        assert (
            answer.headers["content-disposition"]
            == f'attachment; filename="{delivered.reference}-your-data.zip"'
        )
        assert (
            answer.headers["cache-control"] == "no-store"
            and answer.headers["referrer-policy"] == "no-referrer"
        )
        assert answer.content == delivered.blobs.get(delivered.package.blob_ref)
        assert actions(store, delivered.reference).count(("package:downloaded", "")) == n
    package = open_package(answer.content, delivered.password)
    assert "report.html" in package.files and "data/crm/customers.json" in package.files
    downloaded = [e for e in store.audit_trail(delivered.reference) if e.action == "package:downloaded"]
    assert downloaded[0].actor == "public"
    assert set(downloaded[0].details) == {"package", "link", "expires"}
    assert store.verify_chain(delivered.reference).ok


async def test_expired_altered_forged_and_foreign_links_are_refused_and_audited(
    delivered: Delivered, person: httpx.AsyncClient, store: CaseStore, settings: Settings
) -> None:
    ref = delivered.reference
    token = token_of(delivered.url)
    past = datetime.now(UTC) - timedelta(days=31)
    expired = mint_download_link(
        settings, ref, delivered.package.blob_ref, "x.zip", expires_at=past + timedelta(days=30), now=past
    )
    confirm = mint_link(settings, ref, "confirm_request")  # a genuine link, for another purpose
    other = new_case(store)
    cases = [
        (expired.url, 410, "This link has expired", "expired"),
        (with_token(delivered.url, change_one_payload_char(token)), 400, "has been changed", "altered"),
        (with_token(delivered.url, "not-a-token"), 400, "does not work", "forged"),
        (with_token(delivered.url, token_of(confirm)), 400, "has been changed", "altered"),
        (f"{PUBLIC}/d/{other}?t={token}", 400, "for a different request", "other_case"),
    ]
    for url, code, words, reason in cases:
        answer = await person.get(path_of(url))
        assert answer.status_code == code, reason
        assert words in answer.text and token not in answer.text
        assert "zip" not in answer.headers["content-type"]
    refused = [r for a, r in actions(store, ref) if a == "package:download_refused"]
    assert refused == ["expired", "altered", "forged", "altered"]
    assert [r for a, r in actions(store, other) if a == "package:download_refused"] == ["other_case"]
    assert ("package:downloaded", "") not in actions(store, ref)

    # a download link is not a confirmation link either
    answer = await person.get(f"/r/{ref}/confirm?t={token}")
    assert answer.status_code == 400 and "Confirm" not in answer.text

    # once the package is purged, the genuine link finds nothing and says so
    delivered.blobs.delete(delivered.package.blob_ref)
    answer = await person.get(path_of(delivered.url))
    assert answer.status_code == 410 and "no longer available" in answer.text
    assert actions(store, ref)[-1] == ("package:download_refused", "gone")
    assert store.verify_chain(ref).ok


def test_the_token_names_no_more_than_its_case_and_package(delivered: Delivered, settings: Settings) -> None:
    claims = check_download_token(settings, delivered.reference, token_of(delivered.url))
    assert claims.package == delivered.package.blob_ref and claims.filename == delivered.package.file_name
    with pytest.raises(LinkRefused) as refused:
        check_download_token(settings, delivered.reference, token_of(delivered.url), now=claims.expires_at)
    assert refused.value.reason == "expired"
    with pytest.raises(ValueError, match="another case"):
        mint_download_link(settings, "DSR-2026-999999", claims.package, "x.zip", expires_at=claims.expires_at)
    rotated = make_settings(settings.var_dir, link_secret=f"new-key,{settings.link_secret_value}")
    assert check_download_token(rotated, delivered.reference, token_of(delivered.url)).jti == claims.jti


def test_issuing_the_link_again_with_the_same_key_audits_once(delivered: Delivered, store: CaseStore) -> None:
    env = ActivityEnvironment()
    key = f"{delivered.reference}/letter/response/1"
    inp = LinkInput(
        delivered.reference, delivered.package.blob_ref, delivered.package.file_name, audit_key=key
    )
    first = env.run(delivered.export.issue_download_link, inp)
    second = env.run(delivered.export.issue_download_link, inp)
    assert not delivered.blobs.exists(first.link_ref) and delivered.blobs.exists(second.link_ref)
    assert actions(store, delivered.reference).count(("package:link_issued", "")) == 2  # fixture's + this key


# --------------------------------------------------------------------------------------------
# S3: a presigned URL to a copy with server-side encryption


@pytest.fixture
def s3_settings(settings: Settings, moto_endpoint: str) -> Iterator[Settings]:
    dispose_s3_clients()
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="eu-west-2").create_bucket(
        Bucket="northwind-dsar-downloads", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
    )
    yield settings.model_copy(
        update={
            "package_delivery": "s3",
            "package_bucket": "northwind-dsar-downloads",
            "s3_endpoint_url": moto_endpoint,
            "s3_region": "eu-west-2",
        }
    )
    dispose_s3_clients()


def test_s3_delivery_presigns_an_encrypted_copy_and_audits_the_link(
    store: CaseStore,
    s3_settings: Settings,
    demo_pg: dict[str, str],  # noqa: F811
    tmp_path: Path,
    moto_endpoint: str,
) -> None:
    delivered = package_for(store, s3_settings, demo_pg, tmp_path)
    url = urlsplit(delivered.url)
    assert f"{url.scheme}://{url.netloc}" == moto_endpoint
    query = parse_qs(url.query)
    assert int(query["X-Amz-Expires"][0]) == int(S3_MAX_LINK.total_seconds())  # 30 days asked, 7 given
    assert url.path.startswith(f"/northwind-dsar-downloads/downloads/{delivered.reference}/")
    answer = httpx.get(delivered.url)
    assert answer.status_code == 200
    assert answer.content == delivered.blobs.get(delivered.package.blob_ref)
    assert answer.headers["content-disposition"] == f'attachment; filename="{delivered.package.file_name}"'
    with pyzipper.AESZipFile(io.BytesIO(answer.content)) as zf:
        zf.setpassword(delivered.password.encode())
        assert b"Northwind Post" in zf.read("report.html")
    s3: Any = boto3.client("s3", endpoint_url=moto_endpoint, region_name="eu-west-2")
    key = url.path.removeprefix("/northwind-dsar-downloads/")
    assert s3.head_object(Bucket="northwind-dsar-downloads", Key=key)["ServerSideEncryption"] == "AES256"
    issued = [e for e in store.audit_trail(delivered.reference) if e.action == "package:link_issued"]
    assert len(issued) == 1 and issued[0].details["via"] == "s3"

    # issued again: a new copy replaces the old one (moto checks no signatures, so tampering is
    # tested on the app's link only)
    again = deliver_via_s3(
        delivered.blobs,
        s3_settings,
        delivered.reference,
        delivered.package.blob_ref,
        delivered.package.file_name,
        expires_at=(now := datetime.now(UTC)) + timedelta(seconds=2),
        now=now,
    )
    listed = s3.list_objects_v2(Bucket="northwind-dsar-downloads", Prefix=f"downloads/{delivered.reference}/")
    assert [o["Key"] for o in listed["Contents"]] == [again.object_key]
    assert httpx.get(delivered.url).status_code in (403, 404)  # the old copy is gone
    assert httpx.get(again.url).status_code == 200
    # moto enforces neither signatures nor expiry: S3 itself refuses the URL after X-Amz-Expires
    signed = parse_qs(urlsplit(again.url).query)
    assert signed["X-Amz-Expires"] == ["2"] and again.expires_at == now + timedelta(seconds=2)
    assert signed["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


def test_a_zip_written_to_a_non_seekable_stream_is_a_standard_zip(
    delivered: Delivered, tmp_path: Path
) -> None:
    """Data descriptors, not seeks: check the central directory a standard reader sees."""
    path = tmp_path / "p.zip"
    path.write_bytes(delivered.blobs.get(delivered.package.blob_ref))
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[-2:] == ["report.html", "manifest.json"]
        assert all(i.flag_bits & 0x8 for i in zf.infolist()), "sizes after the data (streamed)"
