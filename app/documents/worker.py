"""The document worker: parse → chunk → index → ready, with ``document_status`` events.

Progress only grows. A document that cannot be read ends ``failed`` with the reason, and
nothing else is touched. Parsing runs in a process pool (it is CPU-bound).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from app.bus.base import Bus, JobDelivery, Subscription, workspace_key
from app.bus.messages import DocumentJob, event_body
from app.bus.parsing import parse_dead_letter, parse_job
from app.chat import events
from app.db.engine import SessionFactory
from app.db.models import Document, DocumentChunk, DocumentContent
from app.db.types import utcnow
from app.documents.chunking import chunk_text
from app.documents.parsing import DocumentParseError
from app.documents.pool import ParsePool
from app.llm.base import LlmProviderError
from app.llm.registry import ProviderRegistry
from app.settings import Settings

log = logging.getLogger(__name__)
EMBED_BATCH = 64


class DocumentGone(Exception):
    """The document was deleted while it was being processed."""


class DocumentWorker:
    def __init__(
        self,
        settings: Settings,
        db: SessionFactory,
        bus: Bus,
        providers: ProviderRegistry,
        *,
        pool: ParsePool | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.embedder = providers.embedder
        self.pool = pool or ParsePool(max_workers=settings.parse_workers)
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        self._subscriptions.append(
            await self.bus.consume_jobs("documents", self._on_job, prefetch=2)
        )
        self._subscriptions.append(await self.bus.consume_dead_letters("documents", self._on_dead))

    async def stop(self) -> None:
        for sub in self._subscriptions:
            await sub.cancel()
        self._subscriptions.clear()
        await self.pool.aclose()

    async def _on_job(self, delivery: JobDelivery) -> None:
        job = await parse_job(delivery, DocumentJob)
        if job is None:
            return
        try:
            await self.process(job.document_id)
        except DocumentGone:
            log.info("document %s was deleted while processing", job.document_id)
        await delivery.ack()

    async def _on_dead(self, delivery: JobDelivery) -> None:
        job = await parse_dead_letter(self.bus, delivery, DocumentJob)
        if job is None:
            return
        async with self.db() as s:
            document = await s.get(Document, job.document_id)
        if document is not None and document.status in ("queued", "processing"):
            # A failed document always says why (PROTOCOL.md: documents list their error).
            reason = "processing kept failing on the server; upload the document again"
            await self._status(document, "failed", document.progress, reason, reason)
        await delivery.ack()

    async def _status(
        self,
        document: Document,
        status: str,
        progress: float,
        message: str,
        error: str | None = None,
    ) -> None:
        progress = max(progress, document.progress)
        async with self.db() as s, s.begin():
            result = await s.execute(
                update(Document)
                .where(Document.id == document.id)
                .values(status=status, progress=progress, error=error, updated_at=utcnow())
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise DocumentGone(str(document.id))
        document.status, document.progress = status, progress
        data = {
            "workspace_id": str(document.workspace_id),
            "document_id": str(document.id),
            "status": status,
            "progress": progress,
            "message": message,
            "timestamp": events.timestamp(),
        }
        await self.bus.publish_event(
            workspace_key(document.workspace_id, "document_status"),
            event_body(events.DOCUMENT_STATUS, data),
        )

    async def process(self, document_id: uuid.UUID) -> None:
        async with self.db() as s:
            document = await s.get(Document, document_id)
            content = await s.get(DocumentContent, document_id)
        if document is None or content is None or document.status in ("ready", "failed"):
            return
        await self._status(document, "processing", 0.05, "parsing the document")
        try:
            text = await self.pool.parse(content.data, document.content_type)
        except DocumentParseError as exc:
            await self._status(document, "failed", document.progress, exc.message, exc.message)
            return
        await self._status(document, "processing", 0.4, "splitting into passages")
        pieces = await asyncio.to_thread(
            chunk_text,
            text,
            size_chars=self.settings.chunk_size_chars,
            overlap_chars=self.settings.chunk_overlap_chars,
        )
        if not pieces:
            reason = "the document has no text to index"
            await self._status(document, "failed", document.progress, reason, reason)
            return
        await self._status(document, "processing", 0.6, f"indexing {len(pieces)} passages")
        vectors = await self._embed(document, pieces)
        try:
            async with self.db() as s, s.begin():
                await s.execute(
                    delete(DocumentChunk).where(DocumentChunk.document_id == document.id)
                )
                s.add_all(
                    DocumentChunk(
                        document_id=document.id,
                        workspace_id=document.workspace_id,
                        ordinal=i,
                        text=piece,
                        embedding=vectors[i] if vectors else None,
                    )
                    for i, piece in enumerate(pieces)
                )
        except IntegrityError as exc:
            raise DocumentGone(str(document.id)) from exc
        await self._status(document, "ready", 1.0, f"ready: {len(pieces)} passages indexed")

    async def _embed(self, document: Document, pieces: list[str]) -> list[list[float]] | None:
        if self.embedder is None:
            return None
        vectors: list[list[float]] = []
        try:
            for start in range(0, len(pieces), EMBED_BATCH):
                vectors.extend(await self.embedder.embed(pieces[start : start + EMBED_BATCH]))
                done = min(len(pieces), start + EMBED_BATCH) / len(pieces)
                await self._status(document, "processing", 0.6 + 0.3 * done, "embedding passages")
        except LlmProviderError as exc:
            log.warning("embedding %s failed (%s); lexical search only", document.id, exc.message)
            return None
        return vectors
