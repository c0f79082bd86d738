"""Uploads: size limit, type from the content, dedup by sha256, then a background job."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.db.engine import SessionFactory
from app.db.models import Document, DocumentContent
from app.db.types import utcnow
from app.documents.detect import detect_content_type
from app.errors import NotFound, PayloadTooLarge
from app.workspaces.service import membership

HEAD_BYTES = 8192


@dataclass(frozen=True, slots=True)
class Upload:
    document: Document
    created: bool  # False: the same content was already in that workspace


def clean_filename(name: str | None) -> str:
    """The last path component, without control characters, at most 255 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return (base or "upload")[:255]


async def read_limited(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole upload, refused with 413 the moment it passes ``limit``."""
    parts: list[bytes] = []
    size = 0
    async for part in chunks:
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"the upload is larger than the {limit} byte limit")
        parts.append(part)
    return b"".join(parts)


async def store_upload(
    db: SessionFactory,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    filename: str | None,
    declared_type: str | None,
    data: bytes,
) -> Upload:
    name = clean_filename(filename)
    content_type = (
        detect_content_type(data[:HEAD_BYTES], name, declared_type) if data else "text/plain"
    )
    digest = hashlib.sha256(data).hexdigest()
    async with db() as s:
        await membership(s, workspace_id, user_id)
        existing = await s.scalar(
            select(Document).where(Document.workspace_id == workspace_id, Document.sha256 == digest)
        )
    if existing is not None:
        return Upload(existing, created=False)
    now = utcnow()
    document = Document(
        workspace_id=workspace_id,
        filename=name,
        content_type=content_type,
        size_bytes=len(data),
        sha256=digest,
        status="queued",
        progress=0.0,
        created_at=now,
        updated_at=now,
    )
    try:
        async with db() as s, s.begin():
            s.add(document)
            await s.flush()
            s.add(DocumentContent(document_id=document.id, data=data))
    except IntegrityError:
        async with db() as s:
            raced = await s.scalar(
                select(Document).where(
                    Document.workspace_id == workspace_id, Document.sha256 == digest
                )
            )
        if raced is None:
            raise
        return Upload(raced, created=False)
    return Upload(document, created=True)


async def list_documents(
    db: SessionFactory, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> list[Document]:
    async with db() as s:
        await membership(s, workspace_id, user_id)
        rows = await s.scalars(
            select(Document)
            .where(Document.workspace_id == workspace_id)
            .order_by(Document.created_at)
        )
        return list(rows.all())


async def get_document(db: SessionFactory, document_id: uuid.UUID, user_id: uuid.UUID) -> Document:
    async with db() as s:
        document = await s.get(Document, document_id)
        if document is None:
            raise NotFound("document not found")
        try:
            await membership(s, document.workspace_id, user_id)
        except NotFound:
            raise NotFound("document not found") from None
        return document


async def delete_document(db: SessionFactory, document_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Its content and chunks go too (foreign-key cascades)."""
    document = await get_document(db, document_id, user_id)
    async with db() as s, s.begin():
        row = await s.get(Document, document.id)
        if row is not None:
            await s.delete(row)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
