"""Health: is the app up, and can it reach Temporal (for load balancers and ``make run``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter

from console.services import ServicesDep

health_router = APIRouter(tags=["health"])


@health_router.get("/healthz")
async def healthz(svc: ServicesDep) -> dict[str, bool]:
    """Liveness of the app and reachability of Temporal (for load balancers and ``make run``)."""

    async def probe() -> bool:
        client = await svc.client()
        return await client.service_client.check_health(timeout=timedelta(seconds=2))

    try:
        temporal = await asyncio.wait_for(probe(), timeout=3)
    except Exception:  # any failure means "not reachable now", which is the answer
        temporal = False
    return {"ok": True, "temporal": bool(temporal)}
