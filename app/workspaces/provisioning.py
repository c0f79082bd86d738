"""The workspace worker: ``workspace.provision`` jobs → ``workspace_status`` events.

Provisioning checks what a workspace needs to answer (its provider is configured on this
worker) and marks it ``ready``; answers that waited for it start then. If it cannot be
made ready it is ``failed`` and the waiting answers end with ``workspace_unavailable``.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import update

from app.bus.base import Bus, JobDelivery, Subscription, workspace_key
from app.bus.messages import ChatJob, WorkspaceJob, event_body
from app.bus.parsing import parse_dead_letter, parse_job
from app.chat import events, store
from app.db.engine import SessionFactory
from app.db.models import Workspace
from app.db.types import utcnow
from app.llm.registry import ProviderRegistry
from app.workspaces.service import member_ids

log = logging.getLogger(__name__)


async def publish_workspace_status(
    db: SessionFactory, bus: Bus, workspace_id: uuid.UUID, status: str, message: str
) -> None:
    users = [str(u) for u in await member_ids(db, workspace_id)]
    data = {
        "workspace_id": str(workspace_id),
        "status": status,
        "message": message,
        "timestamp": events.timestamp(),
    }
    await bus.publish_event(
        workspace_key(workspace_id, "workspace_status"),
        event_body(events.WORKSPACE_STATUS, data, users=users),
    )


class WorkspaceWorker:
    def __init__(self, db: SessionFactory, bus: Bus, providers: ProviderRegistry) -> None:
        self.db = db
        self.bus = bus
        self.providers = providers
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        self._subscriptions.append(
            await self.bus.consume_jobs("workspaces", self._on_job, prefetch=8)
        )
        self._subscriptions.append(await self.bus.consume_dead_letters("workspaces", self._on_dead))

    async def stop(self) -> None:
        for sub in self._subscriptions:
            await sub.cancel()
        self._subscriptions.clear()

    async def _on_job(self, delivery: JobDelivery) -> None:
        job = await parse_job(delivery, WorkspaceJob)
        if job is None:
            return
        await self.provision(job.workspace_id)
        await delivery.ack()

    async def _on_dead(self, delivery: JobDelivery) -> None:
        job = await parse_dead_letter(self.bus, delivery, WorkspaceJob)
        if job is None:
            return
        await self._set_status(job.workspace_id, "failed", "provisioning kept failing")
        await delivery.ack()

    async def provision(self, workspace_id: uuid.UUID) -> None:
        async with self.db() as s:
            workspace = await s.get(Workspace, workspace_id)
        if workspace is None or workspace.status != "provisioning":
            return
        log.info("provisioning workspace %s", workspace_id)
        await publish_workspace_status(
            self.db, self.bus, workspace_id, "provisioning", "preparing the workspace"
        )
        if workspace.llm_provider not in self.providers:
            await self._set_status(
                workspace_id,
                "failed",
                f"provider {workspace.llm_provider!r} is not configured on the workers",
            )
            return
        await self._set_status(workspace_id, "ready", "the workspace is ready")

    async def _set_status(self, workspace_id: uuid.UUID, status: str, message: str) -> None:
        async with self.db() as s, s.begin():
            result = await s.execute(
                update(Workspace)
                .where(Workspace.id == workspace_id, Workspace.status == "provisioning")
                .values(status=status, status_message=message, updated_at=utcnow())
            )
            changed = bool(result.rowcount)  # type: ignore[attr-defined]
        if not changed:
            return
        await publish_workspace_status(self.db, self.bus, workspace_id, status, message)
        # The answers that waited for the workspace start now (or end, if it failed).
        for message_id, session_id in await store.pending_heads(self.db, workspace_id):
            await self.bus.publish_job(
                "chat", ChatJob(message_id=message_id, session_id=session_id).dumps()
            )
