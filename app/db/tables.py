"""Core handles on the mapped tables, and the way from a Core row back to a model object.

The statements a chat turn runs on its way to the first token and after the last one are
prebuilt in Core (``app.chat.store``, ``app.chat.service``): the ORM's unit of work and
statement compilation cost more CPU than the round trip itself, on the core that streams
the other answers. Callers still get model objects, built detached from the row.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import Label, RowMapping, Table, inspect

from app.db.models import (
    Base,
    ChatSession,
    DocumentChunk,
    Message,
    Workspace,
    WorkspaceMember,
)

M = TypeVar("M", bound=Base)

messages = cast(Table, Message.__table__)
chat_sessions = cast(Table, ChatSession.__table__)
workspaces = cast(Table, Workspace.__table__)
document_chunks = cast(Table, DocumentChunk.__table__)
workspace_members = cast(Table, WorkspaceMember.__table__)


@cache
def _attribute_keys(cls: type[Base]) -> tuple[str, ...]:
    # Every attribute of these models is named as its column (checked by a unit test).
    return tuple(attr.key for attr in inspect(cls).column_attrs)


def labelled(cls: type[Base], prefix: str) -> list[Label[Any]]:
    """Every column of the model's table, labelled ``<prefix><name>``, for a joined select."""
    table = cast(Table, cls.__table__)
    return [table.c[key].label(prefix + key) for key in _attribute_keys(cls)]


def detached(cls: type[M], row: RowMapping, prefix: str = "") -> M:
    """A model object holding the row's values, in no session: reading it never queries."""
    return cls(**{key: row[prefix + key] for key in _attribute_keys(cls)})
