"""Connecting to Temporal with dsar's data converter (payload encryption on every client)."""

from __future__ import annotations

from functools import cache

from temporalio.client import Client
from temporalio.runtime import Runtime, TelemetryConfig

from dsar.codec import data_converter
from dsar.logs import core_logging_config
from dsar.settings import Settings


@cache
def runtime() -> Runtime:
    """One SDK runtime per process, its core logs forwarded through the scrubbing log chain."""
    return Runtime(telemetry=TelemetryConfig(logging=core_logging_config()))


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        runtime=runtime(),
    )
