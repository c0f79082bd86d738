"""Top-k passages of a workspace for a question.

BM25 ranks every ready chunk of the workspace in Python, so ranking is the same on SQLite
and PostgreSQL; where chunks carry embeddings, a cosine ranking is fused with it (RRF).
The read transaction ends before ranking or embedding starts.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from sqlalchemy import select

from app.db.engine import SessionFactory
from app.db.models import Document, DocumentChunk
from app.llm.base import LlmProviderError
from app.llm.registry import ProviderRegistry
from app.rag.fusion import cosine, reciprocal_rank_fusion
from app.text.bm25 import rank_bm25

log = logging.getLogger(__name__)


class Retriever:
    def __init__(self, db: SessionFactory, providers: ProviderRegistry) -> None:
        self.db = db
        self.embedder = providers.embedder

    async def retrieve(
        self, workspace_id: uuid.UUID, question: str, top_k: int
    ) -> list[dict[str, Any]]:
        async with self.db() as s:
            rows = (
                await s.execute(
                    select(
                        DocumentChunk.document_id,
                        DocumentChunk.ordinal,
                        DocumentChunk.text,
                        DocumentChunk.embedding,
                        Document.filename,
                    )
                    .join(Document, Document.id == DocumentChunk.document_id)
                    .where(DocumentChunk.workspace_id == workspace_id, Document.status == "ready")
                    .order_by(Document.created_at, DocumentChunk.ordinal)
                )
            ).all()
        if not rows:
            return []
        texts = [r[2] for r in rows]
        lexical = await asyncio.to_thread(rank_bm25, question, texts)
        ranked: list[tuple[int, float]] = lexical
        vectors = [r[3] for r in rows]
        if self.embedder is not None and any(v for v in vectors):
            dense = await self._dense(question, vectors)
            if dense:
                ranked = reciprocal_rank_fusion([[i for i, _ in lexical], [i for i, _ in dense]])
        return [
            {
                "document_id": str(rows[i][0]),
                "filename": rows[i][4],
                "chunk_index": rows[i][1],
                "score": round(float(score), 6),
                "text": rows[i][2],
            }
            for i, score in ranked[:top_k]
        ]

    async def _dense(self, question: str, vectors: list[Any]) -> list[tuple[int, float]]:
        assert self.embedder is not None
        try:
            query = (await self.embedder.embed([question]))[0]
        except LlmProviderError as exc:
            log.warning("embedding the question failed (%s); lexical ranking only", exc.message)
            return []
        scored = [(i, cosine(query, v)) for i, v in enumerate(vectors) if v]
        scored.sort(key=lambda item: item[1], reverse=True)
        return [item for item in scored if item[1] > 0]
