"""Socket.IO payloads, checked on the way in (PROTOCOL.md "Client → server")."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from app.inputs import StrictInput


class _In(StrictInput):
    pass


class ChatMessageIn(_In):
    workspace_id: UUID
    session_id: UUID | None = None
    message: str = Field(min_length=1, max_length=32_000)
    rag_type: Literal["vector", "none"] = "vector"
    client_message_id: str | None = Field(default=None, min_length=1, max_length=64)


class CancelMessageIn(_In):
    session_id: UUID
    message_id: UUID | None = None


class SessionRef(_In):
    session_id: UUID


class WorkspaceRef(_In):
    workspace_id: UUID


class ResumeIn(_In):
    session_id: UUID
    message_id: UUID
    attempt: int | None = Field(default=None, ge=1, strict=True)
    offset: int = Field(ge=0, strict=True)
