"""What the two httpx-based providers (Ollama, TGI) share: one client, one error path."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import orjson

from app.llm import http_errors
from app.llm.base import LlmProviderError
from app.settings import ProviderTimeouts


def make_client(
    base_url: str, timeouts: ProviderTimeouts, headers: Mapping[str, str] | None = None
) -> httpx.AsyncClient:
    """One pooled client per provider; the read timeout only backs up the guard's timers."""
    read_s = max(timeouts.first_token_s, timeouts.idle_s)
    return httpx.AsyncClient(
        base_url=base_url,
        headers=dict(headers or {}),
        timeout=httpx.Timeout(read_s, connect=timeouts.connect_s, pool=timeouts.connect_s),
    )


async def status_error_from(
    label: str,
    response: httpx.Response,
    *,
    secret: str | None = None,
) -> LlmProviderError:
    """Read a non-200 answer's body (``{"error": ..., "error_type"?: ...}``) into an error."""
    try:
        raw = await response.aread()
    except httpx.HTTPError:
        raw = b""
    detail: str | None = None
    kind: str | None = None
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
        detail = raw.decode("utf-8", "replace")[:200] or None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str):
            detail = error
        elif isinstance(error, dict) and isinstance(error.get("message"), str):
            detail = error["message"]
        error_type = body.get("error_type")
        kind = error_type if isinstance(error_type, str) else None
    return http_errors.status_error(
        label, response.status_code, detail, headers=response.headers, kind=kind, secret=secret
    )
