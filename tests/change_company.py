"""The demo company on real servers, searched and reviewed as a case would be, for the tests of
erasure and the other changes (tests/test_erasure.py, tests/test_changes.py) and the bench.

Its CRM and marketing databases are on SQLite, PostgreSQL or MariaDB (fresh, randomly named
databases, dropped afterwards), its recordings store is a versioned bucket on moto's S3 server.
A case runs the real activities: the search stage's ``search_system`` in two waves, the
exemption rules over what it collected (the decisions file, as the review writes it), then
``plan_change``, ``apply_change``, ``verify_change`` and ``record_suppression``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, select
from temporalio.testing import ActivityEnvironment

from activities.change import (
    ChangeActivities,
    ChangeApplied,
    ChangeInput,
    ChangePlan,
    ChangePlanInput,
    ChangeVerified,
    SuppressionInput,
    SuppressionRecorded,
)
from activities.search import PlanInput, SearchActivities, SearchInput, SearchOutcome, SearchPlan
from connectors.sql import database_url, dispose_engines
from demo.recordings import BUCKET, REGION, seed_recordings
from demo.seed import CRM, MARGARET, MARKETING, seed_demo
from dsar.blobs import LocalBlobStore, dispose_s3_clients, s3_client
from dsar.changes import Correction
from dsar.datamap import DataMap
from dsar.exemptions import CaseFacts, RecordDecision, evaluate_system
from dsar.model import Regime, RequestType, SystemResult
from dsar.suppression import SuppressionList
from tests.test_sql_connector import fresh_databases

ROOT = Path(__file__).resolve().parent.parent
DEMO_MAP = DataMap.load(ROOT / "demo" / "dsar.yaml")
HASH_KEY = "5a" * 32
SUPPRESSION_KEY = b"s" * 32
RECEIVED = date(2026, 4, 1)
S3_ENV = "DSAR_DEMO_S3_ENDPOINT"

#: What Margaret gives: everything but the numbers only the company's systems know.
HER_REQUEST = {k: v for k, v in MARGARET.items() if k not in ("customer_id", "account_number")}


@dataclass
class Company:
    backend: str
    urls: dict[str, str]
    datamap: DataMap
    blobs: LocalBlobStore
    suppression: SuppressionList
    s3: Any
    people: int

    @property
    def changes(self) -> ChangeActivities:
        return ChangeActivities(self.datamap, self.blobs, self.suppression, HASH_KEY)

    # -- a case, activity by activity ---------------------------------------------------------

    def search(self, reference: str, identifiers: dict[str, str]) -> list[SystemResult]:
        """The search stage: the first wave with what the person gave, the second with what it
        learned (the customer number the recordings are filed by)."""
        acts = SearchActivities(self.datamap, self.blobs)
        env = ActivityEnvironment()
        plan: SearchPlan = env.run(acts.plan_search, PlanInput(reference, sorted(identifiers)))
        results: list[SystemResult] = []
        learned: dict[str, str] = {}
        for system in plan.first:
            outcome: SearchOutcome = env.run(
                acts.search_system, SearchInput(reference, system, identifiers, plan.learn)
            )
            results.append(outcome.result)
            learned.update(outcome.learned)
        second = {**learned, **identifiers}
        for system in plan.second:
            results.append(env.run(acts.search_system, SearchInput(reference, system, second)).result)
        return results

    def records(self, result: SystemResult) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        if result.blob_ref:
            for line in self.blobs.get(result.blob_ref).splitlines():
                item = json.loads(line)
                out.setdefault(item["entity"], []).append(item["record"])
        return out

    def decide(
        self, reference: str, results: list[SystemResult], request_type: RequestType
    ) -> tuple[str, list[RecordDecision]]:
        """The review's decisions file: the data map's exemption rules over what was found."""
        case = CaseFacts(Regime.UK_GDPR, request_type, RECEIVED, reference)
        decisions: list[RecordDecision] = []
        for result in results:
            if result.status == "found":
                decisions += evaluate_system(case, self.datamap, result.system, self.records(result))
        ref = self.blobs.put(
            b"".join(d.dump() for d in decisions), case=reference, name="review-decisions.jsonl"
        )
        return ref, decisions

    def plan(
        self,
        reference: str,
        request_type: RequestType,
        identifiers: dict[str, str],
        results: list[SystemResult],
        decisions_ref: str = "",
        corrections: list[Correction] | None = None,
    ) -> ChangePlan:
        inp = ChangePlanInput(reference, request_type, identifiers, results, decisions_ref, corrections or [])
        plan: ChangePlan = ActivityEnvironment().run(self.changes.plan_change, inp)
        return plan

    def apply(self, reference: str, system: str, plan: ChangePlan) -> ChangeApplied:
        applied: ChangeApplied = ActivityEnvironment().run(
            self.changes.apply_change, ChangeInput(reference, system, plan.plan_ref)
        )
        return applied

    def verify(self, reference: str, system: str, plan: ChangePlan) -> ChangeVerified:
        verified: ChangeVerified = ActivityEnvironment().run(
            self.changes.verify_change, ChangeInput(reference, system, plan.plan_ref)
        )
        return verified

    def suppress(self, reference: str, plan: ChangePlan) -> SuppressionRecorded:
        recorded: SuppressionRecorded = ActivityEnvironment().run(
            self.changes.record_suppression, SuppressionInput(reference, plan.plan_ref)
        )
        return recorded

    # -- the truth, read directly -------------------------------------------------------------

    def snapshot(self, system: str) -> dict[str, dict[Any, dict[str, Any]]]:
        metadata: MetaData = CRM if system == "crm" else MARKETING
        engine = create_engine(database_url(self.urls[system]))
        try:
            with engine.connect() as conn:
                return {
                    table.name: {row.id: dict(row._mapping) for row in conn.execute(select(table))}
                    for table in metadata.sorted_tables
                }
        finally:
            engine.dispose()

    def execute(self, system: str, statement: Any) -> None:
        engine = create_engine(database_url(self.urls[system]))
        try:
            with engine.begin() as conn:
                conn.execute(statement)
        finally:
            engine.dispose()

    def objects(self) -> dict[tuple[str, str], bytes]:
        """Every version in the recordings bucket (key, version id) -> its body."""
        out: dict[tuple[str, str], bytes] = {}
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
            for entry in page.get("Versions", []):
                body = self.s3.get_object(Bucket=BUCKET, Key=entry["Key"], VersionId=entry["VersionId"])
                out[(entry["Key"], entry["VersionId"])] = body["Body"].read()
        return out

    def markers(self) -> list[tuple[str, str]]:
        out = []
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
            out += [(e["Key"], e["VersionId"]) for e in page.get("DeleteMarkers", [])]
        return out


@contextmanager
def open_company(
    backend: str, tmp: Path, s3_endpoint: str, people: int = 60, *, marketing_backend: str | None = None
) -> Iterator[Company]:
    """The demo company on ``backend`` (its marketing database on ``marketing_backend`` when
    given) and the S3 server, seeded, with a blob store and a suppression list of its own. The
    S3 endpoint must have been reset (an empty server)."""
    with ExitStack() as stack:
        for name in {backend, marketing_backend or backend}:
            (tmp / name).mkdir(parents=True, exist_ok=True)
        urls = dict(stack.enter_context(fresh_databases(backend, tmp / backend)))
        if marketing_backend is not None and marketing_backend != backend:
            other = stack.enter_context(fresh_databases(marketing_backend, tmp / marketing_backend))
            urls["marketing"] = other["marketing"]
        seed_demo(urls["crm"], urls["marketing"], people=people)
        systems = dict(DEMO_MAP.systems)
        for name in ("crm", "marketing"):
            env = f"DSAR_TEST_CHANGE_{backend.upper()}_{name.upper()}_URL"
            os.environ[env] = urls[name]
            systems[name] = replace(DEMO_MAP.systems[name], url_env=env)
        old = os.environ.get(S3_ENV)
        os.environ[S3_ENV] = s3_endpoint
        dispose_s3_clients()
        try:
            seed_recordings(s3_endpoint, urls["crm"])
            blobs = LocalBlobStore(tmp / "blobs", b"b" * 32)
            suppression = SuppressionList(f"sqlite:///{tmp / 'register.db'}", SUPPRESSION_KEY)
            yield Company(
                backend=backend,
                urls=urls,
                datamap=replace(DEMO_MAP, systems=systems),
                blobs=blobs,
                suppression=suppression,
                s3=s3_client(s3_endpoint, REGION),
                people=people,
            )
            suppression.close()
        finally:
            dispose_engines()
            if old is None:
                os.environ.pop(S3_ENV, None)
            else:
                os.environ[S3_ENV] = old


def lines_of(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in io.BytesIO(body).read().splitlines() if line.strip()]
