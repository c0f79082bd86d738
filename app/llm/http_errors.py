"""One mapping from upstream HTTP failures to ``LlmProviderError``, shared by every provider.

Status codes and error kinds map the same way whichever API spoke them, so a caller's
retry and fallback decisions never depend on which provider a workspace uses:

====================================  ==================  =========
upstream                              error_type          retryable
====================================  ==================  =========
401, 403, bad key                     llm_auth            no
429                                   llm_rate_limited    yes (Retry-After kept)
503, 529, Anthropic overloaded_error  llm_overloaded      yes
400, 404 (unknown model), other 4xx   llm_bad_request     no
408, 504, read/connect timeouts       llm_timeout         yes
other 5xx, refused, reset, dropped    llm_unavailable     yes
====================================  ==================  =========

Messages name the provider and the status and quote the upstream's own explanation, with
anything that looks like a key scrubbed: upstreams sometimes echo the key they rejected.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping

import httpx
import httpx2

from app.llm.base import LlmProviderError

# Upstream messages are quoted, not trusted: keep them short and free of secrets.
_MAX_MESSAGE_CHARS = 300
# Shorter "keys" are placeholders; replacing them would mangle ordinary words.
_MIN_SECRET_CHARS = 6
_KEYLIKE = re.compile(r"\b(?:sk|hf|pk|rk)[-_][A-Za-z0-9_\-]{6,}")

# Error kinds some APIs name in their bodies (Anthropic ``error.type``, OpenAI
# ``error.type``/``code``, TGI ``error_type``), for errors that arrive without a
# meaningful status, such as an error event in the middle of a 200 stream.
_KIND_TO_ERROR_TYPE: Mapping[str, str] = {
    "authentication_error": "llm_auth",
    "permission_error": "llm_auth",
    "invalid_api_key": "llm_auth",
    "rate_limit_error": "llm_rate_limited",
    "rate_limit_exceeded": "llm_rate_limited",
    "insufficient_quota": "llm_rate_limited",
    "overloaded_error": "llm_overloaded",
    "overloaded": "llm_overloaded",
    "invalid_request_error": "llm_bad_request",
    "not_found_error": "llm_bad_request",
    "model_not_found": "llm_bad_request",
    "request_too_large": "llm_bad_request",
    "validation": "llm_bad_request",
    "timeout_error": "llm_timeout",
    "api_error": "llm_unavailable",
    "server_error": "llm_unavailable",
    "generation": "llm_unavailable",
    "incomplete_generation": "llm_unavailable",
}


def error_type_for_status(status: int) -> str:
    """The PROTOCOL.md error type for an upstream HTTP status."""
    if status in (401, 403):
        return "llm_auth"
    if status == 429:
        return "llm_rate_limited"
    if status in (503, 529):
        return "llm_overloaded"
    if status in (408, 504):
        return "llm_timeout"
    if 400 <= status < 500:
        return "llm_bad_request"
    return "llm_unavailable"


def error_type_for_kind(kind: str | None, *, default: str = "llm_unavailable") -> str:
    """The error type for an error kind named in a body; ``default`` when unknown."""
    if kind is None:
        return default
    return _KIND_TO_ERROR_TYPE.get(kind, default)


def scrub(message: str, secret: str | None = None) -> str:
    """``message`` without the API key (or anything key-shaped), cut to a readable length."""
    if secret and len(secret) >= _MIN_SECRET_CHARS:
        message = message.replace(secret, "***")
    message = _KEYLIKE.sub("***", message)
    message = " ".join(message.split())
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 1] + "…"
    return message


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time())
    return value if 0 <= value < float("inf") else None


def status_error(
    provider: str,
    status: int,
    detail: str | None,
    *,
    headers: Mapping[str, str] | None = None,
    kind: str | None = None,
    secret: str | None = None,
) -> LlmProviderError:
    """An ``LlmProviderError`` for an HTTP error answer.

    ``kind`` (an error kind from the body) refines the status only where the status alone
    is ambiguous: Anthropic's ``overloaded_error`` may arrive as 529 or 503.
    """
    error_type = error_type_for_status(status)
    if kind is not None and error_type in ("llm_unavailable", "llm_bad_request"):
        refined = error_type_for_kind(kind, default=error_type)
        # A 404 is a bad request (unknown model) even if the body calls itself something else.
        if not (status == 404 and refined != "llm_bad_request"):
            error_type = refined
    retry_after = parse_retry_after(headers) if headers is not None else None
    text = f"{provider} answered HTTP {status}"
    if detail:
        text += f": {detail}"
    return LlmProviderError(error_type, scrub(text, secret), retry_after_s=retry_after)


def stream_error(
    provider: str, detail: str | None, *, kind: str | None, secret: str | None = None
) -> LlmProviderError:
    """An error the upstream reported inside a stream that had started with 200."""
    error_type = error_type_for_kind(kind)
    text = f"{provider} stream failed"
    if kind:
        text += f" ({kind})"
    if detail:
        text += f": {detail}"
    return LlmProviderError(error_type, scrub(text, secret))


def timeout_error(provider: str, what: str = "did not answer in time") -> LlmProviderError:
    return LlmProviderError("llm_timeout", f"{provider} {what}")


def unavailable_error(provider: str, exc: BaseException | None = None) -> LlmProviderError:
    """A refused, reset or dropped connection, or an answer cut short."""
    text = f"{provider} is unreachable or dropped the connection"
    if exc is not None:
        name = type(exc).__name__
        detail = str(exc)
        text += f" ({name}: {detail})" if detail else f" ({name})"
    return LlmProviderError("llm_unavailable", scrub(text))


def truncated_error(provider: str) -> LlmProviderError:
    return LlmProviderError("llm_unavailable", f"{provider} ended the stream before the answer")


# Both HTTP stacks are in play: our own providers use httpx, the SDKs use httpx2.
_TIMEOUTS: tuple[type[BaseException], ...] = (httpx.TimeoutException, httpx2.TimeoutException)
_TRANSPORT: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    httpx.DecodingError,
    httpx2.TransportError,
    httpx2.DecodingError,
    ConnectionError,
)


def transport_error(provider: str, exc: BaseException) -> LlmProviderError | None:
    """The error for a network-level failure of either HTTP stack; None if ``exc`` is not one."""
    if isinstance(exc, _TIMEOUTS):
        return timeout_error(provider)
    if isinstance(exc, _TRANSPORT):
        return unavailable_error(provider, exc)
    return None
