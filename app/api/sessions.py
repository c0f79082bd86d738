"""Chat sessions and their messages over REST."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from app.api.deps import Before, Ctx, CurrentUser, Limit
from app.api.schemas import MessagePublic, SessionCreate, SessionPublic
from app.chat import service

router = APIRouter(tags=["sessions"])


@router.post("/api/workspaces/{workspace_id}/sessions", status_code=status.HTTP_201_CREATED)
async def create_session(
    workspace_id: UUID, body: SessionCreate, ctx: Ctx, user: CurrentUser
) -> SessionPublic:
    session = await service.create_session(ctx.db, workspace_id, user.id, body.title)
    return SessionPublic.model_validate(session)


@router.get("/api/workspaces/{workspace_id}/sessions")
async def list_sessions(
    workspace_id: UUID, ctx: Ctx, user: CurrentUser, limit: Limit = 100, before: Before = None
) -> list[SessionPublic]:
    sessions = await service.list_sessions(
        ctx.db, workspace_id, user.id, limit=limit, before=before
    )
    return [SessionPublic.model_validate(s) for s in sessions]


@router.get("/api/sessions/{session_id}")
async def read_session(session_id: UUID, ctx: Ctx, user: CurrentUser) -> SessionPublic:
    return SessionPublic.model_validate(await service.get_session(ctx.db, session_id, user.id))


@router.delete("/api/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(session_id: UUID, ctx: Ctx, user: CurrentUser) -> Response:
    await service.delete_session(ctx.db, session_id, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/sessions/{session_id}/messages")
async def list_messages(
    session_id: UUID, ctx: Ctx, user: CurrentUser, limit: Limit = 100, before: Before = None
) -> list[MessagePublic]:
    messages = await service.list_messages(ctx.db, session_id, user.id, limit=limit, before=before)
    return [MessagePublic.model_validate(m) for m in messages]
