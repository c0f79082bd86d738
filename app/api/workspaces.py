"""Workspaces and members. Provisioning starts in the background (``workspace_status``)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from app.api.deps import Ctx, CurrentUser
from app.api.schemas import (
    MemberCreate,
    MemberPublic,
    WorkspaceCreate,
    WorkspacePublic,
    WorkspaceUpdate,
)
from app.bus.base import Bus, user_key
from app.bus.messages import WorkspaceJob, event_body
from app.workspaces import service

router = APIRouter(prefix="/api/workspaces", tags=["workspaces"])


async def revoke_access(bus: Bus, user_id: UUID, workspace_id: UUID) -> None:
    """Every node takes that user's sockets out of the workspace's room."""
    await bus.publish_event(
        user_key(user_id, "access_revoked"),
        event_body("access_revoked", {"workspace_id": str(workspace_id), "user_id": str(user_id)}),
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_workspace(body: WorkspaceCreate, ctx: Ctx, user: CurrentUser) -> WorkspacePublic:
    workspace = await service.create_workspace(
        ctx.db,
        ctx.providers,
        user.id,
        name=body.name,
        description=body.description,
        llm_provider=body.llm_provider,
        llm_model=body.llm_model,
        fallback_provider=body.fallback_provider,
        fallback_model=body.fallback_model,
    )
    await ctx.bus.publish_job("workspaces", WorkspaceJob(workspace_id=workspace.id).dumps())
    return WorkspacePublic.model_validate(workspace)


@router.get("")
async def list_workspaces(ctx: Ctx, user: CurrentUser) -> list[WorkspacePublic]:
    return [
        WorkspacePublic.model_validate(w) for w in await service.list_workspaces(ctx.db, user.id)
    ]


@router.get("/{workspace_id}")
async def read_workspace(workspace_id: UUID, ctx: Ctx, user: CurrentUser) -> WorkspacePublic:
    return WorkspacePublic.model_validate(
        await service.get_workspace(ctx.db, workspace_id, user.id)
    )


@router.patch("/{workspace_id}")
async def update_workspace(
    workspace_id: UUID, body: WorkspaceUpdate, ctx: Ctx, user: CurrentUser
) -> WorkspacePublic:
    changes = body.model_dump(exclude_unset=True)
    workspace = await service.update_workspace(
        ctx.db, ctx.providers, workspace_id, user.id, changes
    )
    return WorkspacePublic.model_validate(workspace)


@router.delete("/{workspace_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_workspace(workspace_id: UUID, ctx: Ctx, user: CurrentUser) -> Response:
    members = await service.member_ids(ctx.db, workspace_id)
    await service.delete_workspace(ctx.db, workspace_id, user.id)
    for member in members:
        await revoke_access(ctx.bus, member, workspace_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{workspace_id}/members")
async def list_members(workspace_id: UUID, ctx: Ctx, user: CurrentUser) -> list[MemberPublic]:
    members = await service.list_members(ctx.db, workspace_id, user.id)
    return [MemberPublic.model_validate(m) for m in members]


@router.post("/{workspace_id}/members", status_code=status.HTTP_201_CREATED)
async def add_member(
    workspace_id: UUID, body: MemberCreate, ctx: Ctx, user: CurrentUser
) -> MemberPublic:
    member = await service.add_member(ctx.db, workspace_id, user.id, body.email)
    return MemberPublic.model_validate(member)


@router.delete("/{workspace_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(workspace_id: UUID, user_id: UUID, ctx: Ctx, user: CurrentUser) -> Response:
    await service.remove_member(ctx.db, workspace_id, user.id, user_id)
    await revoke_access(ctx.bus, user_id, workspace_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
