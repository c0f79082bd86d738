"""The base of every request body and Socket.IO payload: no unknown fields, trimmed text,
and no NUL characters.

PostgreSQL's text types cannot hold U+0000: a message with one in it got as far as the
INSERT and failed there as a ``server_error``, while SQLite stored it. Refusing it here
makes it a ``validation_error`` that names the field, the same on both databases.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain a NUL character (U+0000)")
        return value
