"""Every activity says it is alive while it runs, so that one lost with a killed worker starts
again on another within seconds, not minutes.

Temporal learns that a worker died only when an activity misses its heartbeat (or runs out its
whole start-to-close time). Connectors heartbeat every few hundred rows, but a slow query, a
large package being encrypted or a redaction model loading can keep one busy for longer; and
short activities did not heartbeat at all. A worker interceptor therefore heartbeats for every
ordinary activity from a small thread every ``HEARTBEAT_EVERY_SECONDS``, for as long as the
activity runs: the workflow can then give each one a short heartbeat timeout
(``workflows.rules.HEARTBEAT_TIMEOUT``). A hung activity still ends at its start-to-close
timeout; the SDK throttles what reaches the server.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

#: How often the thread heartbeats (the timeout is 12 s; the worker sends one to the server at
#: least every 3 s).
HEARTBEAT_EVERY_SECONDS = 2.0


class Heartbeats(Interceptor):
    """The worker interceptor (``worker.build_workers`` installs it)."""

    def __init__(self, every: float = HEARTBEAT_EVERY_SECONDS) -> None:
        self.every = every

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next, self.every)


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, every: float) -> None:
        super().__init__(next)
        self.every = every

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if info.is_local or not info.heartbeat_timeout or inspect.iscoroutinefunction(input.fn):
            return await self.next.execute_activity(input)
        stop = threading.Event()
        context = contextvars.copy_context()  # the activity's context: heartbeat needs it

        def beat() -> None:
            while not stop.wait(self.every):
                try:
                    context.run(activity.heartbeat)
                except Exception:  # the activity is ending (cancelled, completed): stop quietly
                    return

        thread = threading.Thread(target=beat, name=f"heartbeat-{info.activity_type}", daemon=True)
        thread.start()
        try:
            return await self.next.execute_activity(input)
        finally:
            stop.set()
