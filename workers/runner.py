"""A worker process: the chosen workers on the bus, until SIGTERM or SIGINT.

On a signal it stops taking jobs, lets running answers finish within the grace period
(``INSIGHTHUB_SHUTDOWN_GRACE_S``), and hands the rest back for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from app.heap import freeze_startup_heap
from app.main import build_context, start_workers, stop_workers
from app.settings import Settings

log = logging.getLogger("insighthub.worker")
KINDS = ("chat", "documents", "workspaces")


def kinds_for(name: str) -> set[str]:
    if name == "all":
        return set(KINDS)
    if name not in KINDS:
        raise SystemExit(f"unknown worker kind {name!r}: chat, documents, workspaces or all")
    return {name}


async def run_workers(settings: Settings, kinds: set[str]) -> None:
    if not settings.amqp_url:
        raise SystemExit(
            "workers run in their own process only in the distributed mode: set "
            "INSIGHTHUB_AMQP_URL (the embedded `insighthub serve` runs them itself)"
        )
    ctx = build_context(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await ctx.bus.start()
    workers = await start_workers(ctx, kinds)
    freeze_startup_heap()
    log.info("worker %s running: %s", settings.node_id, ", ".join(sorted(kinds)))
    try:
        await stop.wait()
        log.info("stopping: no new jobs; %.0fs for running answers", settings.shutdown_grace_s)
    finally:
        await stop_workers(workers)
        with contextlib.suppress(Exception):
            await ctx.bus.close()
        await ctx.providers.aclose()
        await ctx.engine.dispose()
    log.info("worker %s stopped", settings.node_id)
