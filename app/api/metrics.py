"""GET /metrics in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from app.api.deps import Ctx

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(ctx: Ctx, request: Request) -> str:
    lines: list[tuple[str, str, float]] = []
    if ctx.realtime is not None:
        lines.append(("insighthub_sockets_connected", "gauge", len(ctx.realtime.sockets)))
        lines.append(
            ("insighthub_events_relayed_total", "counter", ctx.realtime.relay.events_relayed)
        )
    guard = getattr(request.app.state, "guard", None)
    if guard is not None:
        lines.append(("insighthub_slow_clients_disconnected_total", "counter", guard.disconnected))
    for worker in ctx.workers:
        running = getattr(worker, "running", None)
        if running is not None:
            lines.append(("insighthub_answers_streaming", "gauge", len(running)))
            lines.append(("insighthub_chat_jobs_done_total", "counter", worker.jobs_done))
    out = []
    for name, kind, value in lines:
        out.append(f"# TYPE {name} {kind}\n{name} {value:g}\n")
    return "".join(out)
