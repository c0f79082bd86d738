"""The one status → error_type table, Retry-After parsing, and key scrubbing."""

from __future__ import annotations

import email.utils
import time

import httpx
import httpx2
import pytest

from app.llm.http_errors import (
    error_type_for_status,
    parse_retry_after,
    scrub,
    status_error,
    stream_error,
    transport_error,
)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "llm_bad_request"),
        (401, "llm_auth"),
        (403, "llm_auth"),
        (404, "llm_bad_request"),
        (408, "llm_timeout"),
        (422, "llm_bad_request"),
        (429, "llm_rate_limited"),
        (500, "llm_unavailable"),
        (502, "llm_unavailable"),
        (503, "llm_overloaded"),
        (504, "llm_timeout"),
        (529, "llm_overloaded"),
    ],
)
def test_status_table(status: int, error_type: str) -> None:
    assert error_type_for_status(status) == error_type


def test_body_kind_refines_an_ambiguous_status() -> None:
    assert status_error("X", 500, None, kind="overloaded_error").error_type == "llm_overloaded"
    assert status_error("X", 500, None, kind="api_error").error_type == "llm_unavailable"
    # A 404 stays a bad request whatever the body calls it; a 429 stays rate limited.
    assert status_error("X", 404, None, kind="api_error").error_type == "llm_bad_request"
    assert status_error("X", 429, None, kind="overloaded").error_type == "llm_rate_limited"


def test_status_error_message_and_retry_after() -> None:
    error = status_error("OpenAI", 429, "slow down", headers={"retry-after": "3"})
    assert error.message == "OpenAI answered HTTP 429: slow down"
    assert error.retryable
    assert error.retry_after_s == 3.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    value = parse_retry_after({"retry-after": when})
    assert value is not None and 25 <= value <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0.0


def test_scrub_removes_the_key_and_key_shaped_strings() -> None:
    secret = "my-very-secret-value"
    text = scrub(f"bad key {secret} and also sk-proj-AbC123xyz789 here", secret)
    assert secret not in text
    assert "sk-proj-AbC123xyz789" not in text
    assert text.startswith("bad key *** and also *** here")


def test_scrub_ignores_placeholder_keys_and_truncates() -> None:
    assert scrub("invalid x-api-key", "k") == "invalid x-api-key"
    assert len(scrub("word " * 500)) <= 300


def test_stream_error_kinds() -> None:
    assert stream_error("A", "x", kind="overloaded_error").error_type == "llm_overloaded"
    assert stream_error("A", "x", kind="invalid_request_error").error_type == "llm_bad_request"
    assert stream_error("A", "x", kind=None).error_type == "llm_unavailable"
    assert stream_error("A", "x", kind="never-heard-of-it").error_type == "llm_unavailable"


def test_transport_errors_of_both_http_stacks() -> None:
    for exc in (httpx.ReadTimeout("t"), httpx2.ConnectTimeout("t")):
        mapped = transport_error("P", exc)
        assert mapped is not None and mapped.error_type == "llm_timeout"
    for other in (httpx.ConnectError("c"), httpx2.RemoteProtocolError("r"), ConnectionResetError()):
        mapped = transport_error("P", other)
        assert mapped is not None and mapped.error_type == "llm_unavailable"
    assert transport_error("P", ValueError("a bug")) is None
