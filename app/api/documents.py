"""Document routes: upload (202, or 200 for content already there), list, get, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse

from app.api.deps import Ctx, CurrentUser
from app.api.schemas import _Public
from app.bus.messages import DocumentJob
from app.documents import service
from app.errors import PayloadTooLarge

router = APIRouter(tags=["documents"])
READ_BYTES = 64 * 1024


class DocumentPublic(_Public):
    id: UUID
    workspace_id: UUID
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    status: str
    progress: float
    error: str | None
    created_at: datetime
    updated_at: datetime


async def _chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while part := await file.read(READ_BYTES):
        yield part


@router.post(
    "/api/workspaces/{workspace_id}/documents",
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": DocumentPublic, "description": "the same content was already there"}},
)
async def upload_document(
    workspace_id: UUID, file: UploadFile, request: Request, ctx: Ctx, user: CurrentUser
) -> JSONResponse:
    limit = ctx.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLarge(f"the upload is larger than the {limit} byte limit")
    data = await service.read_limited(_chunks(file), limit)
    upload = await service.store_upload(
        ctx.db,
        workspace_id,
        user.id,
        filename=file.filename,
        declared_type=file.content_type,
        data=data,
    )
    if upload.created:
        await ctx.bus.publish_job(
            "documents",
            DocumentJob(document_id=upload.document.id, workspace_id=workspace_id).dumps(),
        )
    body = DocumentPublic.model_validate(upload.document).model_dump(mode="json")
    return JSONResponse(body, status.HTTP_202_ACCEPTED if upload.created else status.HTTP_200_OK)


@router.get("/api/workspaces/{workspace_id}/documents")
async def list_documents(workspace_id: UUID, ctx: Ctx, user: CurrentUser) -> list[DocumentPublic]:
    docs = await service.list_documents(ctx.db, workspace_id, user.id)
    return [DocumentPublic.model_validate(d) for d in docs]


@router.get("/api/documents/{document_id}")
async def read_document(document_id: UUID, ctx: Ctx, user: CurrentUser) -> DocumentPublic:
    return DocumentPublic.model_validate(await service.get_document(ctx.db, document_id, user.id))


@router.delete("/api/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_document(document_id: UUID, ctx: Ctx, user: CurrentUser) -> Response:
    await service.delete_document(ctx.db, document_id, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
