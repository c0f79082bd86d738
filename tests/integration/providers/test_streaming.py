"""Each provider, real SDK or httpx over real HTTP, against its API's fake: the happy paths."""

from __future__ import annotations

import pytest

from app.llm.base import ChatTurn
from tests.fakes.llm_server import Plan, expected_text
from tests.integration.providers.conftest import API_KEY, MODEL, Kit
from tests.integration.providers.helpers import TURNS, drain


async def test_streams_tokens_then_usage_and_stop(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=6)]
    outcome = await drain(kit.provider().stream(TURNS))

    assert outcome.error is None
    assert outcome.text == expected_text(6)
    assert all(t.text for t in outcome.tokens[:-1]), "no empty tokens before the last"
    final = outcome.final
    assert final.text == ""
    assert final.finish_reason == "stop"
    assert final.usage is not None
    assert final.usage.completion_tokens >= 6
    assert final.usage.prompt_tokens > 0
    assert all(t.stamp is not None for t in outcome.tokens)
    assert kit.fake.last.completed


async def test_length_finish_and_max_tokens_sent(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=3, finish="length")]
    outcome = await drain(kit.provider().stream(TURNS, max_tokens=3))

    assert outcome.text == expected_text(3)
    assert outcome.final.finish_reason == "length"
    body = kit.fake.last.body
    sent_limit = {
        "openai": lambda: body["max_tokens"],  # a custom base URL: the compatible name
        "anthropic": lambda: body["max_tokens"],
        "ollama": lambda: body["options"]["num_predict"],
        "huggingface": lambda: body["parameters"]["max_new_tokens"],
    }[kit.name]()
    assert sent_limit == 3


async def test_default_and_explicit_model(kit: Kit) -> None:
    if not kit.names_model:
        pytest.skip("TGI requests do not name a model")
    provider = kit.provider()
    assert provider.info().default_model == MODEL
    await drain(provider.stream(TURNS))
    assert kit.fake.last.body["model"] == MODEL
    kit.fake.models = None
    await drain(provider.stream(TURNS, model="other-model"))
    assert kit.fake.last.body["model"] == "other-model"


async def test_one_connection_pool_reused_across_calls(kit: Kit) -> None:
    provider = kit.provider()
    for _ in range(3):
        outcome = await drain(provider.stream(TURNS))
        assert outcome.error is None
    peers = {r.peer for r in kit.fake.requests}
    assert len(kit.fake.requests) == 3
    assert len(peers) == 1, "each call should reuse the pooled keep-alive connection"


async def test_key_sent_as_configured(kit: Kit) -> None:
    if not kit.uses_key:
        pytest.skip("Ollama takes no key")
    await drain(kit.provider().stream(TURNS))
    headers = kit.fake.last.headers
    assert (
        headers.get("Authorization") == f"Bearer {API_KEY}" or headers.get("x-api-key") == API_KEY
    )


async def test_openai_request_asks_for_usage() -> None:
    """Checked on the wire: stream=True and stream_options.include_usage."""
    from app.llm.openai_provider import OpenAIProvider
    from app.settings import HttpProviderConfig
    from tests.fakes.openai_fake import OpenAIFake
    from tests.integration.providers.conftest import TIMEOUTS

    async with OpenAIFake() as fake:
        provider = OpenAIProvider(HttpProviderConfig(fake.base_url, None, "gpt-x", TIMEOUTS))
        try:
            outcome = await drain(provider.stream(TURNS))
        finally:
            await provider.aclose()
    body = fake.last.body
    assert outcome.error is None
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Say a few words."},
    ]
    assert fake.last.headers["Authorization"] == "Bearer no-key"


async def test_anthropic_system_parameter_and_alternating_roles() -> None:
    from app.llm.anthropic_provider import CONTINUATION_PROMPT, AnthropicProvider
    from app.settings import HttpProviderConfig
    from tests.fakes.anthropic_fake import AnthropicFake
    from tests.integration.providers.conftest import TIMEOUTS

    turns = [
        ChatTurn("system", "Be terse."),
        ChatTurn("assistant", "Hello!"),
        ChatTurn("user", "First."),
        ChatTurn("user", "Second."),
        ChatTurn("system", "Cite sources."),
        ChatTurn("assistant", ""),
    ]
    async with AnthropicFake() as fake:
        provider = AnthropicProvider(
            HttpProviderConfig(fake.base_url, "sk-ant-test", "claude-x", TIMEOUTS),
            default_max_tokens=77,
        )
        try:
            outcome = await drain(provider.stream(turns))
        finally:
            await provider.aclose()
    body = fake.last.body
    assert outcome.error is None
    assert body["system"] == "Be terse.\n\nCite sources."
    assert body["messages"] == [
        {"role": "user", "content": CONTINUATION_PROMPT},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "First.\n\nSecond."},
    ]
    assert body["max_tokens"] == 77
    assert body["stream"] is True


async def test_ollama_request_shape() -> None:
    from app.llm.ollama_provider import OllamaProvider
    from app.settings import HttpProviderConfig
    from tests.fakes.ollama_fake import OllamaFake
    from tests.integration.providers.conftest import TIMEOUTS

    async with OllamaFake() as fake:
        provider = OllamaProvider(HttpProviderConfig(fake.base_url, None, "llama-x", TIMEOUTS))
        try:
            await drain(provider.stream(TURNS))
        finally:
            await provider.aclose()
    body = fake.last.body
    assert fake.last.path == "/api/chat"
    assert body["stream"] is True
    assert body["model"] == "llama-x"
    assert body["messages"][1] == {"role": "user", "content": "Say a few words."}
    assert "options" not in body


async def test_huggingface_prompt_template_and_details() -> None:
    from app.llm.huggingface_provider import HuggingFaceProvider
    from app.settings import HttpProviderConfig
    from tests.fakes.tgi_fake import TgiFake
    from tests.integration.providers.conftest import TIMEOUTS

    async with TgiFake() as fake:
        provider = HuggingFaceProvider(HttpProviderConfig(fake.base_url, None, "tgi", TIMEOUTS))
        try:
            outcome = await drain(provider.stream(TURNS))
        finally:
            await provider.aclose()
    body = fake.last.body
    assert body["inputs"] == ("System: Answer briefly.\n\nUser: Say a few words.\n\nAssistant:")
    assert body["parameters"] == {"details": True}
    assert "</s>" not in outcome.text, "special tokens are skipped"
    assert outcome.text == expected_text(5)


async def test_huggingface_usage_is_none_without_input_length() -> None:
    from app.llm.huggingface_provider import HuggingFaceProvider
    from app.settings import HttpProviderConfig
    from tests.fakes.tgi_fake import TgiFake
    from tests.integration.providers.conftest import TIMEOUTS

    async with TgiFake(report_input_length=False) as fake:
        provider = HuggingFaceProvider(HttpProviderConfig(fake.base_url, None, "tgi", TIMEOUTS))
        try:
            outcome = await drain(provider.stream(TURNS))
        finally:
            await provider.aclose()
    assert outcome.error is None
    assert outcome.final.finish_reason == "stop"
    assert outcome.final.usage is None


async def test_huggingface_without_key_sends_no_authorization() -> None:
    from app.llm.huggingface_provider import HuggingFaceProvider
    from app.settings import HttpProviderConfig
    from tests.fakes.tgi_fake import TgiFake
    from tests.integration.providers.conftest import TIMEOUTS

    async with TgiFake() as fake:
        provider = HuggingFaceProvider(HttpProviderConfig(fake.base_url, None, "tgi", TIMEOUTS))
        try:
            outcome = await drain(provider.stream(TURNS))
        finally:
            await provider.aclose()
    assert outcome.error is None
    assert "Authorization" not in fake.last.headers
