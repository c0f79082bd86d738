"""Domain errors, each carrying its PROTOCOL.md ``error_type``.

The core raises these; only the edges (HTTP handlers, Socket.IO acks, AMQP consumers)
turn them into status codes, ack payloads or rejections.

InsightHubError (server_error, 500)
  * Unauthorized (401)
  * NotFound (404): strangers get it too, so nothing reveals that a thing exists
  * Conflict (409)
  * InvalidInput (422, validation_error)
  * PayloadTooLarge (413), UnsupportedMediaType (415)
  * RateLimited (429)
  * ServiceUnavailable (503, server_error): the database or broker did not answer in time
  * WorkspaceUnavailable (workspace_unavailable)
"""

from __future__ import annotations

from typing import ClassVar

RETRYABLE_ERROR_TYPES = frozenset(
    {
        "rate_limited",
        "llm_rate_limited",
        "llm_overloaded",
        "llm_timeout",
        "llm_unavailable",
        "worker_lost",
        "server_error",
    }
)

ERROR_TYPES = frozenset(
    {
        "unauthorized",
        "validation_error",
        "not_found",
        "conflict",
        "rate_limited",
        "payload_too_large",
        "unsupported_media_type",
        "workspace_unavailable",
        "llm_auth",
        "llm_rate_limited",
        "llm_overloaded",
        "llm_timeout",
        "llm_bad_request",
        "llm_unavailable",
        "worker_lost",
        "server_error",
    }
)


def is_retryable(error_type: str) -> bool:
    return error_type in RETRYABLE_ERROR_TYPES


class InsightHubError(Exception):
    error_type: ClassVar[str] = "server_error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.error_type)

    @property
    def message(self) -> str:
        return str(self.args[0])


class Unauthorized(InsightHubError):
    """Not authenticated."""

    error_type = "unauthorized"
    http_status = 401


class NotFound(InsightHubError):
    """Not found."""

    error_type = "not_found"
    http_status = 404


class Conflict(InsightHubError):
    """Conflict."""

    error_type = "conflict"
    http_status = 409


class InvalidInput(InsightHubError):
    """Invalid input."""

    error_type = "validation_error"
    http_status = 422


class PayloadTooLarge(InsightHubError):
    """Payload too large."""

    error_type = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(InsightHubError):
    """Unsupported media type."""

    error_type = "unsupported_media_type"
    http_status = 415


class RateLimited(InsightHubError):
    """Too many requests."""

    error_type = "rate_limited"
    http_status = 429

    def __init__(self, message: str | None = None, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class ServiceUnavailable(InsightHubError):
    """A backing service did not answer in time."""

    error_type = "server_error"
    http_status = 503


class WorkspaceUnavailable(InsightHubError):
    """The workspace could not be provisioned."""

    error_type = "workspace_unavailable"
    http_status = 409
