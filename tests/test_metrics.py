"""Eyes on it: a case runs through a worker whose client is what ``dsar worker`` connects (the
SDK's Prometheus exporter, tracing on), then ``/metrics`` of the worker and of the web app are
scraped over HTTP; every metric the Grafana dashboard and the alert rules in deploy/monitoring/
use must be served, and the case must show in them. The spans reach an OTLP/HTTP endpoint."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from console.app import create_app
from dsar.devstack import free_port
from dsar.engine import connect, loopback_address
from dsar.metrics import (
    RegisterMetrics,
    connector_call,
    exposition,
    observe_stages_left,
    serve_worker_metrics,
)
from dsar.model import Channel, Regime, RequestType, Stage
from dsar.settings import Settings
from dsar.store import AuditSpec, CaseStore, NewCase
from dsar.tracing import shutdown as shutdown_tracing
from intake.service import NewRequest, open_case
from tests.conftest import ROOT, _settle_and_terminate
from tests.test_workflow import MARGARET, DecisionKind, at_stage, decide, wait_until
from worker import build_workers, run_workers

MONITORING = ROOT / "deploy" / "monitoring"


def expressions() -> list[str]:
    """Every PromQL expression of the dashboard's panels and of the alert rules."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                found.append(node["expr"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads((MONITORING / "grafana-dashboard.json").read_text()))
    walk(yaml.safe_load((MONITORING / "alerts.yaml").read_text()))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads, from its syntax tree (Prometheus's own
    grammar: an expression that does not parse fails here)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)
            return
        for part in ("lhs", "rhs", "expr", "vector_selector", "param", "args"):
            child = getattr(node, part, None)
            for c in child if isinstance(child, list) else [child]:
                if c is not None:
                    walk(c)

    walk(promql_parser.parse(expr))
    return names


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def served(text: str) -> dict[str, float]:
    """Every sample name served (with its series summed), and each declared family's names."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(
            family.type, ("",)
        )
        for suffix in suffixes:
            out.setdefault(family.name + suffix, 0.0)
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def sample(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


class _Collector(BaseHTTPRequestHandler):
    bodies: list[bytes]

    def do_POST(self) -> None:  # an OTLP/HTTP endpoint: POST /v1/traces, protobuf
        self.bodies.append(self.path.encode() + b" " + self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def otlp_collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    bodies: list[bytes] = []
    handler = type("Collector", (_Collector,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "dsar-test")
    try:
        yield bodies
    finally:
        server.shutdown()


def test_alert_rules_and_dashboard_read_the_metrics_they_mean() -> None:
    """The parser that the scrape test relies on finds the names (so it cannot pass vacuously)."""
    names = set().union(*(metric_names(e) for e in expressions()))
    assert {"dsar_cases_overdue", "dsar_connector_last_success_timestamp_seconds"} <= names
    assert any(n.startswith("temporal_") for n in names)
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())["groups"][0]["rules"]
    assert {"CaseOverdue", "SystemUnreachable", "TaskQueueBacklog"} <= {r["alert"] for r in rules}


async def test_metrics_serve_every_name_the_dashboard_and_alerts_use(
    ts_env: WorkflowEnvironment, settings: Settings, store: CaseStore, otlp_collector: list[bytes]
) -> None:
    settings = settings.model_copy(update={"tracing": True})
    settings.temporal_address = ts_env.client.service_client.config.target_host
    sdk = loopback_address()
    client = await connect(settings, metrics_address=sdk)
    workers = build_workers(client, settings, store=store)
    port = free_port()
    server = serve_worker_metrics("127.0.0.1", port, sdk)
    stop = asyncio.Event()
    running = asyncio.create_task(run_workers(workers, stop))
    reference = ""
    try:
        opened = await open_case(
            client,
            store,
            settings,
            NewRequest(
                request_type=RequestType.ACCESS,
                regime=Regime.UK_GDPR,
                identifiers=MARGARET,
                channel=Channel.API,
                received_at=await ts_env.get_current_time(),
            ),
            controller="Northwind Post & Mobile",
        )
        reference = opened.reference
        handle = client.get_workflow_handle(reference)
        await at_stage(handle, Stage.VERIFYING)  # type: ignore[arg-type]
        await decide(handle, DecisionKind.VERIFY)  # type: ignore[arg-type]
        await wait_until(handle, lambda s: s.waiting_for == "reviewer: approve the review package")  # type: ignore[arg-type]
        await decide(handle, DecisionKind.APPROVE)  # type: ignore[arg-type]
        await at_stage(handle, Stage.RESPONDED)  # type: ignore[arg-type]
        worker_text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        )
        app = create_app(settings, client=ts_env.client, store=store)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dsar") as web:
            answer = await web.get("/metrics")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
        web_text = answer.text
    finally:
        if reference:
            await _settle_and_terminate(client, reference)
        stop.set()
        await running
        server.shutdown()
        shutdown_tracing()  # sends what is buffered, and stops exporting
    everything = {**served(web_text), **served(worker_text)}
    used = set().union(*(metric_names(e) for e in expressions()))
    missing = sorted(used - set(everything))
    assert not missing, f"deploy/monitoring uses {missing}, which nothing serves"
    # the case shows: its letters, its stages, its systems, the register's count
    assert sample(worker_text, "dsar_letters_sent_total", kind="response", audience="person") >= 1
    assert sample(worker_text, "dsar_stage_seconds_count", stage="verifying") >= 1
    assert sample(worker_text, "dsar_connector_seconds_count", system="crm", operation="search") >= 1
    assert sample(worker_text, "dsar_connector_last_success_timestamp_seconds", system="crm") > 0
    assert sample(web_text, "dsar_cases", stage="responded") >= 1
    assert "dsar_cases_overdue" in served(web_text)
    # the SDK's own: workflow tasks were scheduled and picked up on this task queue
    assert sample(worker_text, "temporal_workflow_task_schedule_to_start_latency_count") >= 1

    spans = b"".join(otlp_collector)
    assert spans.startswith(b"/v1/traces") and b"RunActivity:send_letter" in spans and b"dsar-test" in spans
    assert b"margaret" not in spans.lower() and b"7911" not in spans


# --- The metrics' own logic, on a register of their own ----------------------------------------


def _register(tmp_path: Path) -> CaseStore:
    return CaseStore(f"sqlite:///{tmp_path / 'metrics.db'}")


def _opened(store: CaseStore, regime: Regime, at: datetime) -> str:
    row, _ = store.open_case(NewCase(RequestType.ACCESS, regime, Channel.EMAIL, at))
    return row.reference


def test_overdue_counts_open_cases_past_their_due_date_only(tmp_path: Path) -> None:
    store = _register(tmp_path)
    now = datetime.now(UTC)
    late, answered, on_time = (_opened(store, Regime.UK_GDPR, now) for _ in range(3))
    store.sync_case(late, stage="searching", due=now.date() - timedelta(days=2))
    store.sync_case(answered, stage="responded", due=now.date() - timedelta(days=2))
    store.sync_case(on_time, stage="reviewing", due=now.date() + timedelta(days=9))
    store.sync_case(_opened(store, Regime.CCPA, now), stage="verifying", due=now.date() + timedelta(days=1))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RegisterMetrics(store, "Europe/London"))
    text = exposition(registry).decode()
    assert sample(text, "dsar_cases_overdue", regime="UK_GDPR") == 1
    assert sample(text, "dsar_cases_overdue", regime="CCPA") == 0
    assert sample(text, "dsar_cases", stage="responded", regime="UK_GDPR") == 1
    assert sample(text, "dsar_cases") == 4
    store.close()


def test_a_failed_call_is_counted_by_its_kind_and_dates_the_system() -> None:
    before = sample(generate_latest().decode(), "dsar_connector_errors_total", system="billing-test")
    with pytest.raises(ApplicationError), connector_call("billing-test", "search"):
        raise ApplicationError("billing-test unreachable", type="SystemUnavailable", non_retryable=True)
    with connector_call("billing-test", "search"):
        pass
    text = generate_latest().decode()
    errors = sample(text, "dsar_connector_errors_total", system="billing-test", error="SystemUnavailable")
    assert errors == before + 1
    assert sample(text, "dsar_connector_seconds_count", system="billing-test") == 2
    failed = sample(text, "dsar_connector_last_error_timestamp_seconds", system="billing-test")
    answered = sample(text, "dsar_connector_last_success_timestamp_seconds", system="billing-test")
    assert 0 < failed <= answered


def test_time_in_a_stage_is_observed_once_when_the_case_leaves_it(tmp_path: Path) -> None:
    store = _register(tmp_path)
    t0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    ref = _opened(store, Regime.UK_GDPR, t0)
    store.record(ref, [AuditSpec("stage:triage", "system", "", {}, event_key=f"{ref}/1")], at=t0)

    def count() -> float:
        return sample(generate_latest().decode(), "dsar_stage_seconds_count", stage="triage")

    def total() -> float:
        return sample(generate_latest().decode(), "dsar_stage_seconds_sum", stage="triage")

    n, s = count(), total()
    left = t0 + timedelta(hours=5)
    observe_stages_left(store, ref, ["stage:verifying"], left)
    store.record(ref, [AuditSpec("stage:verifying", "system", "", {}, event_key=f"{ref}/2")], at=left)
    observe_stages_left(store, ref, ["stage:verifying"], left)  # a retried activity: nothing more
    assert count() == n + 1 and total() == pytest.approx(s + 5 * 3600)
    # stages a case passed through in one write (worked ahead) were left as they were entered
    verifying = sample(generate_latest().decode(), "dsar_stage_seconds_count", stage="verifying")
    searching = sample(generate_latest().decode(), "dsar_stage_seconds_count", stage="searching")
    later = left + timedelta(seconds=30)
    observe_stages_left(store, ref, ["stage:searching", "stage:reviewing"], later)
    assert sample(generate_latest().decode(), "dsar_stage_seconds_count", stage="verifying") == verifying + 1
    assert sample(generate_latest().decode(), "dsar_stage_seconds_count", stage="searching") == searching + 1
    store.close()
