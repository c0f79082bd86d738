"""Every failure as ``{"detail": ..., "error_type": ...}`` (PROTOCOL.md), never a trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import InsightHubError, RateLimited, Unauthorized

log = logging.getLogger(__name__)

_STATUS_TYPES = {
    400: "validation_error",
    401: "unauthorized",
    404: "not_found",
    405: "not_found",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(status: int, detail: object, error_type: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": detail, "error_type": error_type}, status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InsightHubError)
    async def _domain(_request: Request, exc: InsightHubError) -> JSONResponse:
        response = error_response(exc.http_status, exc.message, exc.error_type)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {k: v for k, v in err.items() if k in ("loc", "msg", "type")} for err in exc.errors()
        ]
        return error_response(422, errors, "validation_error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = _STATUS_TYPES.get(exc.status_code, "server_error")
        return error_response(exc.status_code, exc.detail, error_type)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal server error", "server_error")
