"""An orjson-backed ``json`` module for python-socketio and python-engineio packets."""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any, **_kwargs: Any) -> str:
    return orjson.dumps(obj).decode()


def loads(s: str | bytes, **_kwargs: Any) -> Any:
    return orjson.loads(s)
