"""What dsar tells Prometheus: cases by stage and overdue (from the register, on the web app),
time in each stage, letters sent, and each system's errors and latency (from the workers).

Names and labels carry no personal data: a stage, a regime, a letter kind, a system's name from
the data map. The workers also serve the Temporal SDK's own metrics (task slots, schedule-to-start
latency: the task-queue backlog) on the same ``/metrics``, read from the SDK's Prometheus exporter
on loopback at each scrape. The Grafana dashboard and the alert rules in ``deploy/monitoring/``
use these names; tests/test_metrics.py checks that every name they use is served.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func
from sqlmodel import col, select

from dsar.logs import get_logger
from dsar.model import OPEN_STAGES
from dsar.store import AuditEvent, Case
from dsar.timeutil import local_date

if TYPE_CHECKING:
    from dsar.store import CaseStore

log = get_logger("dsar.metrics")

__all__ = ["CONTENT_TYPE_LATEST", "LETTERS_SENT", "STAGE_SECONDS"]

_HOUR, _DAY = 3600.0, 86400.0

LETTERS_SENT = Counter(
    "dsar_letters_sent", "Letters sent, by template and by whom they went to", ["kind", "audience"]
)
STAGE_SECONDS = Histogram(
    "dsar_stage_seconds",
    "How long cases spent in a stage, observed when they leave it",
    ["stage"],
    buckets=(60, 600, _HOUR, 6 * _HOUR, _DAY, 3 * _DAY, 7 * _DAY, 14 * _DAY, 30 * _DAY, 60 * _DAY, 90 * _DAY),
)
CONNECTOR_SECONDS = Histogram(
    "dsar_connector_seconds",
    "How long a call to a system took (search, change, verification), whatever its outcome",
    ["system", "operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
CONNECTOR_ERRORS = Counter(
    "dsar_connector_errors",
    "Calls to a system that failed, by the kind of failure (SystemUnavailable: unreachable)",
    ["system", "operation", "error"],
)
CONNECTOR_LAST_SUCCESS = Gauge(
    "dsar_connector_last_success_timestamp_seconds", "When a call to the system last succeeded", ["system"]
)
CONNECTOR_LAST_ERROR = Gauge(
    "dsar_connector_last_error_timestamp_seconds", "When a call to the system last failed", ["system"]
)


@contextmanager
def connector_call(system: str, operation: str) -> Iterator[None]:
    """Time one call to a system and count its failure by type (an ``ApplicationError``'s
    ``type``, e.g. ``SystemUnavailable``, else the exception's class name)."""
    start = time.perf_counter()
    try:
        yield
    except BaseException as e:
        CONNECTOR_ERRORS.labels(system, operation, getattr(e, "type", None) or type(e).__name__).inc()
        CONNECTOR_LAST_ERROR.labels(system).set(time.time())
        raise
    else:
        CONNECTOR_LAST_SUCCESS.labels(system).set(time.time())
    finally:
        CONNECTOR_SECONDS.labels(system, operation).observe(time.perf_counter() - start)


def observe_stages_left(store: CaseStore, reference: str, stage_actions: Sequence[str], at: datetime) -> None:
    """Before ``stage:<x>`` events are written together: observe how long the case spent in
    each stage it leaves, the first from that stage's own event in the register (one read), the
    others passed through in the same write (no time at all, as the register saw them). A
    retried activity, whose events are already written, observes nothing."""
    if not stage_actions:
        return
    with store.engine.connect() as conn:
        last = conn.execute(
            select(col(AuditEvent.action), col(AuditEvent.at))
            .where(col(AuditEvent.reference) == reference, col(AuditEvent.action).startswith("stage:"))
            .order_by(col(AuditEvent.seq).desc())
            .limit(1)
        ).first()
    if last is None or last.action == stage_actions[-1]:
        return
    since = last.at if last.at.tzinfo else last.at.replace(tzinfo=UTC)
    STAGE_SECONDS.labels(last.action.removeprefix("stage:")).observe(max(0.0, (at - since).total_seconds()))
    for left in stage_actions[:-1]:
        STAGE_SECONDS.labels(left.removeprefix("stage:")).observe(0.0)


class RegisterMetrics:
    """Cases by stage and overdue cases, counted in the register at each scrape (every web app
    replica reports the same numbers: aggregate with ``max``)."""

    def __init__(self, store: CaseStore, timezone: str) -> None:
        self.store, self.timezone = store, timezone

    def collect(self) -> Iterable[Metric]:
        by_stage = GaugeMetricFamily(
            "dsar_cases", "Cases in the register, by stage and regime", labels=["stage", "regime"]
        )
        overdue = GaugeMetricFamily(
            "dsar_cases_overdue", "Open cases past their statutory due date, by regime", labels=["regime"]
        )
        today = local_date(datetime.now(UTC), self.timezone)
        open_stages = [s.value for s in OPEN_STAGES]
        with self.store.engine.connect() as conn:
            for stage, regime, count in conn.execute(
                select(col(Case.stage), col(Case.regime), func.count()).group_by(
                    col(Case.stage), col(Case.regime)
                )
            ):
                by_stage.add_metric([stage, regime], count)
            late: dict[str, int] = {
                regime: count
                for regime, count in conn.execute(
                    select(col(Case.regime), func.count())
                    .where(col(Case.stage).in_(open_stages), col(Case.due) < today)
                    .group_by(col(Case.regime))
                )
            }
        for regime in sorted({*late, *(s.labels["regime"] for s in by_stage.samples)}):
            overdue.add_metric([regime], late.get(regime, 0))
        yield by_stage
        yield overdue


def exposition(*registries: CollectorRegistry) -> bytes:
    """The text format of several registries, one after the other (their names never overlap)."""
    return b"".join(generate_latest(r) for r in registries)


class SdkMetrics:
    """The Temporal SDK's metrics, read from its Prometheus exporter on loopback at each scrape,
    so that a worker serves one ``/metrics``."""

    def __init__(self, address: str) -> None:
        self.url = f"http://{address}/metrics"

    def collect(self) -> Iterable[Metric]:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as answer:
                text = answer.read().decode()
        except OSError as e:
            log.warning("the SDK's metrics could not be read", error=type(e).__name__)
            return []
        return list(text_string_to_metric_families(text))


class _Together:
    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for c in self.collectors:
            yield from c.collect()


def serve_worker_metrics(host: str, port: int, sdk_address: str | None) -> Any:
    """``/metrics`` of a worker process: dsar's (this process's registry) and the SDK's. Returns
    the HTTP server (``shutdown()`` stops it)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Together(REGISTRY, *([SdkMetrics(sdk_address)] if sdk_address else [])))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    log.info("metrics served", port=port)
    return server
