"""Adapters to the systems that hold personal data, one class per system type."""

from connectors.base import (
    Collected,
    Connector,
    ConnectorError,
    ConnectorMisconfigured,
    ConnectorRefused,
    ConnectorUnavailable,
    Located,
    connector_for,
)

__all__ = [
    "Collected",
    "Connector",
    "ConnectorError",
    "ConnectorMisconfigured",
    "ConnectorRefused",
    "ConnectorUnavailable",
    "Located",
    "connector_for",
]
