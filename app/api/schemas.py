"""REST request and response bodies (PROTOCOL.md field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_serializer

from app.db.types import isoformat
from app.inputs import StrictInput


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_serializer("*", when_used="json")
    def _timestamps(self, value: Any) -> Any:
        return isoformat(value) if isinstance(value, datetime) else value


class _In(StrictInput):
    pass


class UserCreate(BaseModel):
    # Not _In: a password is taken exactly as typed, as the token route checks it.
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    password: str = Field(min_length=8, max_length=256)


class UserPublic(_Public):
    id: UUID
    email: str
    created_at: datetime


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class WorkspaceCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    llm_provider: str | None = Field(default=None, max_length=40)
    llm_model: str | None = Field(default=None, min_length=1, max_length=200)
    fallback_provider: str | None = Field(default=None, max_length=40)
    fallback_model: str | None = Field(default=None, min_length=1, max_length=200)


class WorkspaceUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    llm_provider: str | None = Field(default=None, max_length=40)
    llm_model: str | None = Field(default=None, min_length=1, max_length=200)
    fallback_provider: str | None = Field(default=None, max_length=40)
    fallback_model: str | None = Field(default=None, min_length=1, max_length=200)


class WorkspacePublic(_Public):
    id: UUID
    name: str
    description: str | None
    status: str
    llm_provider: str
    llm_model: str | None
    fallback_provider: str | None = None
    fallback_model: str | None = None
    created_at: datetime
    updated_at: datetime


class MemberCreate(_In):
    email: EmailStr
    role: Literal["member"] = "member"


class MemberPublic(_Public):
    user_id: UUID
    email: str
    role: str


class SessionCreate(_In):
    title: str | None = Field(default=None, max_length=200)


class SessionPublic(_Public):
    id: UUID
    workspace_id: UUID
    title: str | None
    created_at: datetime
    updated_at: datetime


class MessagePublic(_Public):
    id: UUID
    session_id: UUID
    role: str
    content: str
    status: str
    attempt: int
    error_type: str | None
    provider: str | None
    model: str | None
    usage: dict[str, Any] | None
    sources: list[dict[str, Any]] | None
    client_message_id: str | None
    created_at: datetime
    completed_at: datetime | None


class MessageCreate(_In):
    message: str = Field(min_length=1, max_length=32_000)
    rag_type: Literal["vector", "none"] = "vector"
    client_message_id: str | None = Field(default=None, min_length=1, max_length=64)


class ProviderPublic(BaseModel):
    name: str
    default_model: str
    configured: bool = True
