"""Workspaces and their members. Membership decides access: strangers get ``NotFound``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import SessionFactory
from app.db.models import User, Workspace, WorkspaceMember
from app.db.types import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.llm.registry import ProviderRegistry

_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class Member:
    user_id: uuid.UUID
    email: str
    role: str


async def membership(
    s: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[Workspace, str]:
    row = (
        await s.execute(
            select(Workspace, WorkspaceMember.role)
            .join(WorkspaceMember, WorkspaceMember.workspace_id == Workspace.id)
            .where(Workspace.id == workspace_id, WorkspaceMember.user_id == user_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("workspace not found")
    return row[0], row[1]


async def get_workspace(
    db: SessionFactory, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> Workspace:
    async with db() as s:
        return (await membership(s, workspace_id, user_id))[0]


async def _owned(s: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID) -> Workspace:
    workspace, role = await membership(s, workspace_id, user_id)
    if role != "owner":
        # PROTOCOL.md has no "forbidden" type; a member is told in words that it cannot.
        raise NotFound("only the owner can change this workspace")
    return workspace


async def create_workspace(
    db: SessionFactory,
    providers: ProviderRegistry,
    owner_id: uuid.UUID,
    *,
    name: str,
    description: str | None,
    llm_provider: str | None,
    llm_model: str | None,
    fallback_provider: str | None = None,
    fallback_model: str | None = None,
) -> Workspace:
    provider, model = providers.resolve(llm_provider, llm_model)
    if fallback_provider is not None:
        fallback_provider, fallback_model = providers.resolve(fallback_provider, fallback_model)
    now = utcnow()
    async with db() as s, s.begin():
        workspace = Workspace(
            owner_id=owner_id,
            name=name,
            description=description,
            status="provisioning",
            llm_provider=provider,
            llm_model=model,
            fallback_provider=fallback_provider,
            fallback_model=fallback_model,
            created_at=now,
            updated_at=now,
        )
        s.add(workspace)
        await s.flush()
        s.add(WorkspaceMember(workspace_id=workspace.id, user_id=owner_id, role="owner"))
    return workspace


async def list_workspaces(db: SessionFactory, user_id: uuid.UUID) -> list[Workspace]:
    async with db() as s:
        rows = await s.scalars(
            select(Workspace)
            .join(WorkspaceMember, WorkspaceMember.workspace_id == Workspace.id)
            .where(WorkspaceMember.user_id == user_id)
            .order_by(Workspace.created_at.desc())
        )
        return list(rows.all())


async def update_workspace(
    db: SessionFactory,
    providers: ProviderRegistry,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    changes: dict[str, Any],
) -> Workspace:
    async with db() as s, s.begin():
        workspace = await _owned(s, workspace_id, user_id)
        if "name" in changes:
            if not changes["name"]:
                raise InvalidInput("name: a workspace needs a name")
            workspace.name = changes["name"]
        if "description" in changes:
            workspace.description = changes["description"]
        if "llm_provider" in changes or "llm_model" in changes:
            provider = changes.get("llm_provider", workspace.llm_provider)
            model = changes.get(
                "llm_model", workspace.llm_model if "llm_provider" not in changes else None
            )
            workspace.llm_provider, workspace.llm_model = providers.resolve(provider, model)
        if "fallback_provider" in changes or "fallback_model" in changes:
            fallback = changes.get("fallback_provider", workspace.fallback_provider)
            if fallback is None:
                workspace.fallback_provider, workspace.fallback_model = None, None
            else:
                workspace.fallback_provider, workspace.fallback_model = providers.resolve(
                    fallback, changes.get("fallback_model", workspace.fallback_model)
                )
        workspace.updated_at = utcnow()
    return workspace


async def delete_workspace(db: SessionFactory, workspace_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Deletes its sessions, messages, documents and chunks too (foreign-key cascades)."""
    async with db() as s, s.begin():
        workspace = await _owned(s, workspace_id, user_id)
        await s.delete(workspace)


async def list_members(
    db: SessionFactory, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> list[Member]:
    async with db() as s:
        await membership(s, workspace_id, user_id)
        rows = (
            await s.execute(
                select(WorkspaceMember.user_id, User.email, WorkspaceMember.role)
                .join(User, User.id == WorkspaceMember.user_id)
                .where(WorkspaceMember.workspace_id == workspace_id)
                .order_by(WorkspaceMember.created_at)
            )
        ).all()
    return [Member(r[0], r[1], r[2]) for r in rows]


async def member_ids(db: SessionFactory, workspace_id: uuid.UUID) -> list[uuid.UUID]:
    async with db() as s:
        rows = await s.scalars(
            select(WorkspaceMember.user_id).where(WorkspaceMember.workspace_id == workspace_id)
        )
        return list(rows.all())


async def add_member(
    db: SessionFactory, workspace_id: uuid.UUID, owner_id: uuid.UUID, email: str
) -> Member:
    async with db() as s, s.begin():
        await _owned(s, workspace_id, owner_id)
        user = await s.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise NotFound("no user with that email")
        if await s.get(WorkspaceMember, (workspace_id, user.id)) is not None:
            raise Conflict("that user is already a member")
        s.add(WorkspaceMember(workspace_id=workspace_id, user_id=user.id, role="member"))
        try:
            await s.flush()
        except IntegrityError as exc:
            raise Conflict("that user is already a member") from exc
        return Member(user.id, user.email, "member")


async def remove_member(
    db: SessionFactory, workspace_id: uuid.UUID, caller_id: uuid.UUID, member_id: uuid.UUID
) -> None:
    async with db() as s, s.begin():
        _workspace, role = await membership(s, workspace_id, caller_id)
        if caller_id != member_id and role != "owner":
            raise NotFound("member not found")
        target = await s.get(WorkspaceMember, (workspace_id, member_id))
        if target is None:
            raise NotFound("member not found")
        if target.role == "owner":
            raise Conflict("the owner cannot be removed; delete the workspace instead")
        await s.execute(
            delete(WorkspaceMember).where(
                WorkspaceMember.workspace_id == workspace_id, WorkspaceMember.user_id == member_id
            )
        )
