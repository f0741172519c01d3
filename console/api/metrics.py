"""``/metrics`` for Prometheus: cases by stage and overdue cases counted in the register, and
this process's own (letters and connector calls are the workers'; see dsar/metrics.py). Counts
and durations only: nothing personal. Serve it to the cluster, not the internet (deploy/)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import REGISTRY, CollectorRegistry

from console.services import ServicesDep
from dsar.metrics import CONTENT_TYPE_LATEST, RegisterMetrics, exposition

metrics_router = APIRouter(tags=["health"])


@metrics_router.get("/metrics", response_class=Response)
async def metrics(request: Request, svc: ServicesDep) -> Response:
    """Prometheus's text format: the register's gauges, then the process's metrics."""
    app_state = request.app.state
    if getattr(app_state, "register_metrics", None) is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(RegisterMetrics(svc.store, svc.settings.timezone))
        app_state.register_metrics = registry
    body = await run_in_threadpool(exposition, app_state.register_metrics, REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
