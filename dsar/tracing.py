"""OpenTelemetry tracing (``DSAR_TRACING``): one tracer provider per process, exporting spans
over OTLP/HTTP in batches. Where they go and what the service is called come from the standard
variables (OTEL_EXPORTER_OTLP_ENDPOINT, default http://localhost:4318; OTEL_SERVICE_NAME,
default "dsar")."""

from __future__ import annotations

import os
from functools import cache

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer


@cache
def provider() -> TracerProvider:
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "dsar")})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return tracer_provider


def tracer() -> Tracer:
    return provider().get_tracer("dsar")


def flush() -> None:
    """Send what is buffered now."""
    if provider.cache_info().currsize:
        provider().force_flush()


def shutdown() -> None:
    """Send what is buffered and stop exporting (at a process's end)."""
    if provider.cache_info().currsize:
        provider().shutdown()
        provider.cache_clear()
