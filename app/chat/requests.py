"""What a ``chat_message`` asks the server to store, as one value the storing paths share."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """A new session in ``workspace_id``, or the next turn of ``session_id`` (which, with
    ``workspace_id`` too, must be in that workspace); the question and its options."""

    workspace_id: uuid.UUID | None
    session_id: uuid.UUID | None
    message: str
    rag_type: str
    client_message_id: str | None
