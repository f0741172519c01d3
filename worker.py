"""The dsar worker: runs the DataSubjectRequest workflow and its activities.

Workers are stateless; run as many as needed against one Temporal cluster. Blocking work (the
case register, mail, connectors) runs in a thread pool so the event loop stays free for
workflow tasks.

Searches of each system run on that system's own task queue (``<queue>-system-<name>``), polled
with the data map's ``max_concurrent`` cap: however many cases arrive at once, one worker process
runs at most that many searches against the system (the cap across the fleet is the cap times
the number of worker processes).
"""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from datetime import timedelta

import uvloop
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.ahead import WorkAheadActivities
from activities.audit import AuditActivities
from activities.change import ChangeActivities
from activities.export import ExportActivities, FulfilActivities
from activities.liveness import Heartbeats
from activities.notify import NotifyActivities
from activities.review import ReviewActivities
from activities.search import SearchActivities, system_task_queue
from activities.verify import VerifyActivities
from dsar.blobs import BlobStore, blob_store_from_settings
from dsar.casefile import LetterLog
from dsar.datamap import DataMap
from dsar.effects import EffectsLog
from dsar.engine import connect, loopback_address
from dsar.erasure import erasure_hash_key
from dsar.guard import GuardStore
from dsar.logs import configure_logging, get_logger
from dsar.mail import FileMailer, Mailer, SmtpMailer
from dsar.metrics import serve_worker_metrics
from dsar.settings import Settings
from dsar.store import CaseStore
from dsar.suppression import SuppressionList
from workflows.request import DataSubjectRequest

log = get_logger("dsar.worker")

#: Heartbeats reach the server at least every 3 s. The SDK's default throttle is 80% of the
#: heartbeat timeout: under load, heartbeats sent that rarely arrived too late, and activities
#: of live workers timed out and were retried again and again (bench/faults.py).
HEARTBEAT_THROTTLE = timedelta(seconds=3)


def mailer_from_settings(settings: Settings, effects: EffectsLog | None = None) -> Mailer:
    """SMTP when a host is set (each Message-ID handed to the relay once: ``effects``), else
    one file per letter in the outbox (leftover temporary files of a killed worker removed)."""
    if settings.smtp_host:
        return SmtpMailer(settings.smtp_host, settings.smtp_port, sent=effects)
    return FileMailer(settings.resolved_mail_dir)


def build_workers(
    client: Client,
    settings: Settings,
    *,
    store: CaseStore | None = None,
    datamap: DataMap | None = None,
    blobs: BlobStore | None = None,
    mailer: Mailer | None = None,
    task_queue: str | None = None,
    cache_workflows: bool = True,
    workflow: type[DataSubjectRequest] = DataSubjectRequest,
) -> list[Worker]:
    """The case worker on the main task queue, then one search worker per connected system.
    ``cache_workflows=False`` replays each case from its history on every task (no sticky queue):
    for tests that kill a worker on a test server that never hands its tasks on. ``workflow`` is
    the case workflow's code: a later version of it in the upgrade test (docs/versioning.md)."""
    store = store or CaseStore(settings.resolved_database_url)
    datamap = datamap or DataMap.load(settings.datamap)
    blobs = blobs or blob_store_from_settings(settings)
    effects = EffectsLog(store.engine)
    mailer = mailer or mailer_from_settings(settings, effects)
    audit = AuditActivities(store, blobs)
    notify = NotifyActivities(mailer, settings, blobs, LetterLog(store.engine), datamap)
    search = SearchActivities(datamap, blobs)
    verify = VerifyActivities(datamap, GuardStore.from_settings(settings))
    review = ReviewActivities(blobs, datamap)
    fulfil = FulfilActivities(blobs)
    export = ExportActivities(datamap, blobs, settings, store)
    change = ChangeActivities(
        datamap,
        blobs,
        SuppressionList.from_settings(settings, store.engine, phone_region=datamap.controller.phone_region),
        erasure_hash_key(settings),
        effects,
    )
    ahead = WorkAheadActivities(datamap, verify, search, review, export, change)
    # every ordinary activity heartbeats while it runs: a killed worker's work moves on quickly
    interceptors = [Heartbeats()]
    queue = task_queue or settings.task_queue
    executor = ThreadPoolExecutor(max_workers=settings.worker_activity_threads)
    systems = [
        Worker(
            client,
            task_queue=system_task_queue(queue, system.name),
            activities=[search.search_system, change.apply_change, change.verify_change, ahead.carry_out],
            activity_executor=executor,
            max_concurrent_activities=system.max_concurrent,
            interceptors=interceptors,
            max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
            default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        )
        for system in datamap.systems.values()
        if system.manual is None
    ]
    main = Worker(
        client,
        task_queue=queue,
        workflows=[workflow],
        activities=[
            audit.record_case,
            audit.purge_case,
            notify.send_letter,
            search.plan_search,
            verify.verify_identity,
            review.prepare_review,
            review.amend_review,
            fulfil.fulfil_request,
            export.build_access_package,
            export.issue_download_link,
            export.push_portable_data,
            ahead.work_ahead,
            change.plan_change,
            change.record_suppression,
        ],
        activity_executor=executor,
        max_concurrent_activities=settings.worker_activity_threads,
        max_concurrent_local_activities=settings.worker_activity_threads,
        max_concurrent_workflow_tasks=settings.worker_workflow_tasks,
        # No sandbox in the worker: it re-enters the sandbox for every payload of every
        # activation, a quarter of a worker's CPU per case. The determinism guard lives in the
        # tests instead: every case a workflow test runs is replayed there inside the sandbox
        # (tests/conftest.py), which refuses non-deterministic calls and any divergence.
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_cached_workflows=1000 if cache_workflows else 0,  # 1000: the SDK's default
        # a killed worker's cases move to the shared queue after 5 s rather than 10 s
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=5),
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        interceptors=interceptors,
    )
    return [main, *systems]


async def run_workers(workers: list[Worker], until: asyncio.Event) -> None:
    """Run every worker until ``until`` is set, then shut them all down."""
    async with AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        await until.wait()


async def run_worker(settings: Settings) -> None:
    # /metrics (DSAR_METRICS_PORT): dsar's and the SDK's, whose exporter listens on loopback
    sdk_metrics = loopback_address() if settings.metrics_port else None
    client = await connect(settings, metrics_address=sdk_metrics)
    workers = build_workers(client, settings)
    metrics = (
        serve_worker_metrics(settings.metrics_host, settings.metrics_port, sdk_metrics)
        if settings.metrics_port
        else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker started", task_queue=settings.task_queue)
    try:
        await run_workers(workers, stop)
    finally:
        if metrics is not None:
            metrics.shutdown()
        if settings.tracing:
            from dsar.tracing import shutdown

            shutdown()
    log.info("worker stopped")


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    # uvloop: the worker's event loop hands every task between the SDK core and the thread
    # pools; libuv does that for a fraction of the CPU of the pure-Python loop.
    uvloop.run(run_worker(settings))


if __name__ == "__main__":
    main()
