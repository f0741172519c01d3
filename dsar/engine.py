"""Connecting to Temporal with dsar's data converter (payload encryption on every client)."""

from __future__ import annotations

from temporalio.client import Client

from dsar.codec import data_converter
from dsar.settings import Settings


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )
