"""What travels between processes: job and control bodies, versioned by ``v``.

Jobs and control commands are pydantic models, validated where they enter a consumer.
Events are the wire payloads themselves (plain dicts, no per-token validation): the
body is ``{"event": <Socket.IO event name>, "data": <payload>}`` and the routing key says
which room it goes to.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    v: Literal[1] = 1

    def dumps(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class ChatJob(_Body):
    message_id: UUID
    session_id: UUID


class DocumentJob(_Body):
    document_id: UUID
    workspace_id: UUID


class WorkspaceJob(_Body):
    workspace_id: UUID


class CancelCommand(_Body):
    kind: Literal["cancel"] = "cancel"
    message_id: UUID


class TextRequest(_Body):
    """Ask the worker generating a message for its current text (resume across nodes)."""

    kind: Literal["text_request"] = "text_request"
    message_id: UUID
    request_id: str
    reply_to: str  # the asking node's id: the answer goes to node.<id>.text_reply


ControlCommand = Annotated[CancelCommand | TextRequest, Field(discriminator="kind")]
control_adapter: TypeAdapter[CancelCommand | TextRequest] = TypeAdapter(ControlCommand)


def parse_control(body: bytes) -> CancelCommand | TextRequest:
    return control_adapter.validate_json(body)


def event_body(event: str, data: dict[str, Any], *, users: list[str] | None = None) -> bytes:
    """``users``: also emit to these users' ``user:<id>`` rooms (workspace_status)."""
    if users is None:
        return orjson.dumps({"event": event, "data": data})
    return orjson.dumps({"event": event, "data": data, "users": users})


def parse_event(body: bytes) -> tuple[str, dict[str, Any], list[str] | None]:
    decoded = orjson.loads(body)
    return decoded["event"], decoded["data"], decoded.get("users")
