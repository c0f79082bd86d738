"""Payloads of the chat events, exactly as PROTOCOL.md names their fields.

Plain dicts: they are built per token on the hot path, so no models here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from app.errors import is_retryable

CHAT_CHUNK = "chat_chunk"
CHAT_COMPLETE = "chat_complete"
CHAT_CANCELLED = "chat_cancelled"
CHAT_ERROR = "chat_error"
DOCUMENT_STATUS = "document_status"
WORKSPACE_STATUS = "workspace_status"

FINAL_EVENTS = frozenset({CHAT_COMPLETE, CHAT_CANCELLED, CHAT_ERROR})
# routing-key suffix per event
EVENT_KINDS = {
    CHAT_CHUNK: "chunk",
    CHAT_COMPLETE: "complete",
    CHAT_CANCELLED: "cancelled",
    CHAT_ERROR: "error",
    DOCUMENT_STATUS: "document_status",
    WORKSPACE_STATUS: "workspace_status",
}


_second: tuple[int, str] = (-1, "")  # (unix second, its "YYYY-MM-DDTHH:MM:SS")


def timestamp() -> str:
    """Now, as ``datetime.now(UTC)`` with microseconds and a "Z" (PROTOCOL.md).

    Called for every chunk: the date and time of day are formatted once a second and
    only the microseconds each time, at a third of the cost of formatting a datetime.
    """
    global _second
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    if _second[0] != seconds:
        text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")[:-6]
        _second = (seconds, text)
    return f"{_second[1]}.{nanos // 1000:06d}Z"


def chunk(
    session_id: str, message_id: str, attempt: int, seq: int, offset: int, text: str
) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "message_id": message_id,
        "attempt": attempt,
        "seq": seq,
        "offset": offset,
        "chunk": text,
        "timestamp": timestamp(),
    }


def complete(
    session_id: str,
    message_id: str,
    attempt: int,
    full_response: str,
    finish_reason: str | None,
    usage: dict[str, int] | None,
    sources: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "message_id": message_id,
        "attempt": attempt,
        "full_response": full_response,
        "finish_reason": finish_reason or "stop",
        "usage": usage,
        "sources": sources,
        "timestamp": timestamp(),
    }


def cancelled(session_id: str, message_id: str, attempt: int, partial: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "message_id": message_id,
        "attempt": attempt,
        "partial_response": partial,
        "timestamp": timestamp(),
    }


def error(
    session_id: str, message_id: str, attempt: int, error_type: str, message: str
) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "message_id": message_id,
        "attempt": attempt,
        "error_type": error_type,
        "message": message,
        "retryable": is_retryable(error_type),
        "timestamp": timestamp(),
    }
