"""Connecting to Temporal with dsar's data converter (payload encryption on every client), and
the SDK's telemetry: its Prometheus exporter for a worker's metrics, OpenTelemetry tracing when
``DSAR_TRACING`` is on."""

from __future__ import annotations

import logging
import os
import socket
import sys
from functools import cache
from typing import NoReturn

from temporalio.client import Client, Interceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from dsar.codec import data_converter
from dsar.logs import core_logging_config
from dsar.settings import Settings

#: whether this process made a Temporal client (see ``end_process``)
_connected = False


def end_process(code: int) -> NoReturn:
    """End a command-line process with ``code``. Once a Temporal client was made, the
    interpreter's teardown is skipped: the SDK's Rust threads can outlive it and abort the
    process as it finalises (temporalio/sdk-python#300: "PyGILState_Release ... must be
    current"), turning a command that succeeded into exit code -6."""
    sys.stdout.flush()
    sys.stderr.flush()
    if not _connected:
        sys.exit(code)
    logging.shutdown()
    os._exit(code)


@cache
def runtime(metrics_address: str | None = None) -> Runtime:
    """One SDK runtime per process, its core logs forwarded through the scrubbing log chain;
    with ``metrics_address`` (host:port) its Prometheus exporter listens there."""
    metrics = None
    if metrics_address:
        metrics = PrometheusConfig(
            bind_address=metrics_address, counters_total_suffix=True, durations_as_seconds=True
        )
    return Runtime(telemetry=TelemetryConfig(logging=core_logging_config(), metrics=metrics))


def loopback_address() -> str:
    """A free port on loopback for the SDK's exporter (read by the worker's own /metrics)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def interceptors(settings: Settings) -> list[Interceptor]:
    """The SDK's OpenTelemetry interceptor when tracing is on (it serves the workers too)."""
    if not settings.tracing:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    from dsar.tracing import tracer

    return [TracingInterceptor(tracer())]


async def connect(settings: Settings, metrics_address: str | None = None) -> Client:
    global _connected
    _connected = True
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        runtime=runtime(metrics_address),
        interceptors=interceptors(settings),
    )
