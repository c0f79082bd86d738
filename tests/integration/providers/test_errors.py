"""Every failure, from every provider, maps to the same error_type and retryable flag."""

from __future__ import annotations

import pytest

from app.llm.base import LlmProviderError
from app.settings import ProviderTimeouts
from tests.fakes.llm_server import Plan, closed_port, expected_text
from tests.integration.providers.conftest import API_KEY, Kit
from tests.integration.providers.helpers import TURNS, drain


def assert_clean(error: LlmProviderError) -> None:
    """Readable, and never the key."""
    assert error.message
    assert API_KEY not in error.message
    assert "0123456789abcdef" not in error.message


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [
        (400, "llm_bad_request", False),
        (401, "llm_auth", False),
        (403, "llm_auth", False),
        (500, "llm_unavailable", True),
        (503, "llm_overloaded", True),
        (529, "llm_overloaded", True),
    ],
)
async def test_http_status(kit: Kit, status: int, error_type: str, retryable: bool) -> None:
    kit.fake.plans = [Plan(status=status)]
    outcome = await drain(kit.provider().stream(TURNS))

    assert outcome.tokens == []
    assert outcome.error is not None
    assert (outcome.error.error_type, outcome.error.retryable) == (error_type, retryable)
    assert str(status) in outcome.error.message
    assert_clean(outcome.error)


async def test_rate_limited_carries_retry_after(kit: Kit) -> None:
    kit.fake.plans = [Plan(status=429, retry_after=7)]
    outcome = await drain(kit.provider().stream(TURNS))

    assert outcome.error is not None
    assert outcome.error.error_type == "llm_rate_limited"
    assert outcome.error.retryable
    assert outcome.error.retry_after_s == 7.0


async def test_wrong_key_is_auth_error_without_the_key(kit: Kit) -> None:
    if not kit.uses_key:
        pytest.skip("Ollama takes no key")
    wrong = "sk-wrong-key-9f8e7d6c5b4a"
    outcome = await drain(kit.provider(api_key=wrong).stream(TURNS))

    assert outcome.error is not None
    assert outcome.error.error_type == "llm_auth"
    assert not outcome.error.retryable
    assert wrong not in outcome.error.message
    assert "9f8e7d6c5b4a" not in outcome.error.message


async def test_unknown_model_is_bad_request(kit: Kit) -> None:
    if kit.names_model:
        outcome = await drain(kit.provider().stream(TURNS, model="no-such-model"))
    else:
        kit.fake.plans = [Plan(status=404)]  # an endpoint that does not serve it
        outcome = await drain(kit.provider().stream(TURNS))

    assert outcome.error is not None
    assert outcome.error.error_type == "llm_bad_request"
    assert not outcome.error.retryable
    assert "404" in outcome.error.message


async def test_connection_refused_is_unavailable(kit: Kit) -> None:
    provider = kit.provider(base_url=kit.url_on_port(closed_port()))
    outcome = await drain(provider.stream(TURNS))

    assert outcome.error is not None
    assert outcome.error.error_type == "llm_unavailable"
    assert outcome.error.retryable
    assert_clean(outcome.error)


async def test_error_event_mid_stream_keeps_partial_text(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=10, error_after=3)]
    outcome = await drain(kit.provider().stream(TURNS))

    assert outcome.text == expected_text(3)
    assert outcome.error is not None
    assert outcome.error.error_type == kit.mid_stream_error_type
    assert outcome.error.retryable


async def test_anthropic_style_overloaded_event_mid_stream(kit: Kit) -> None:
    """The API's own name for "overloaded" in an error event → llm_overloaded."""
    overloaded = {
        "openai": None,  # OpenAI has no such event kind
        "anthropic": "overloaded_error",
        "ollama": None,
        "huggingface": "overloaded",
    }[kit.name]
    if overloaded is None:
        pytest.skip("this API names no overloaded error event")
    kit.fake.plans = [Plan(tokens=5, error_after=1, error_kind=overloaded)]
    outcome = await drain(kit.provider().stream(TURNS))

    assert outcome.text == expected_text(1)
    assert outcome.error is not None
    assert outcome.error.error_type == "llm_overloaded"


async def test_invalid_request_event_mid_stream_is_not_retryable(kit: Kit) -> None:
    kind = {
        "openai": "invalid_request_error",
        "anthropic": "invalid_request_error",
        "ollama": None,
        "huggingface": "validation",
    }[kit.name]
    if kind is None:
        pytest.skip("Ollama's error lines carry no kind")
    kit.fake.plans = [Plan(tokens=5, error_after=0, error_kind=kind)]
    outcome = await drain(kit.provider().stream(TURNS))

    assert outcome.error is not None
    assert outcome.error.error_type == "llm_bad_request"
    assert not outcome.error.retryable


async def test_dropped_connection_mid_stream(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=10, drop_after=4)]
    outcome = await drain(kit.provider().stream(TURNS))

    assert outcome.text == expected_text(4)
    assert outcome.error is not None
    assert outcome.error.error_type == "llm_unavailable"
    assert outcome.error.retryable
    assert kit.fake.last.dropped_by_server


async def test_stall_beyond_read_timeout_is_timeout(kit: Kit) -> None:
    """Unguarded, the provider's own read timeout still ends a hung stream."""
    kit.fake.plans = [Plan(tokens=5, stall_after=2, stall_s=5)]
    timeouts = ProviderTimeouts(connect_s=1, first_token_s=0.3, idle_s=0.3)
    outcome = await drain(kit.provider(timeouts=timeouts).stream(TURNS))

    assert outcome.text == expected_text(2)
    assert outcome.error is not None
    assert outcome.error.error_type == "llm_timeout"
    assert outcome.error.retryable
