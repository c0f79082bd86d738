"""Message conversions, finish-reason maps and which providers the settings build."""

from __future__ import annotations

import pytest

from app.llm.anthropic_provider import (
    CONTINUATION_PROMPT,
    AnthropicProvider,
    map_stop_reason,
    to_anthropic_messages,
)
from app.llm.base import ChatTurn, LlmProvider
from app.llm.huggingface_provider import HuggingFaceProvider, render_prompt
from app.llm.huggingface_provider import map_finish_reason as tgi_finish
from app.llm.network import build_network_providers
from app.llm.ollama_provider import OllamaProvider, map_done_reason
from app.llm.openai_provider import OpenAIProvider, map_finish_reason
from app.settings import Settings


def test_anthropic_messages_alternate_and_start_with_user() -> None:
    system, turns = to_anthropic_messages(
        [
            ChatTurn("assistant", "Hi, how can I help?"),
            ChatTurn("system", "Be kind."),
            ChatTurn("user", "one"),
            ChatTurn("user", "   "),
            ChatTurn("user", "two"),
            ChatTurn("assistant", "three"),
            ChatTurn("assistant", "four"),
        ]
    )
    assert system == "Be kind."
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[0]["content"] == CONTINUATION_PROMPT
    assert turns[2]["content"] == "one\n\ntwo"
    assert turns[3]["content"] == "three\n\nfour"


def test_anthropic_without_system_or_turns() -> None:
    assert to_anthropic_messages([ChatTurn("user", "q")]) == (
        None,
        [{"role": "user", "content": "q"}],
    )
    assert to_anthropic_messages([ChatTurn("system", "only")]) == ("only", [])


def test_finish_reason_maps() -> None:
    assert [map_finish_reason(r) for r in ("stop", "length", "max_tokens", "content_filter")] == [
        "stop",
        "length",
        "length",
        "stop",
    ]
    assert [map_stop_reason(r) for r in ("end_turn", "stop_sequence", "max_tokens", None)] == [
        "stop",
        "stop",
        "length",
        "stop",
    ]
    assert [map_done_reason(r) for r in ("stop", "length", None)] == ["stop", "length", "stop"]
    assert [tgi_finish(r) for r in ("eos_token", "stop_sequence", "length")] == [
        "stop",
        "stop",
        "length",
    ]


def test_tgi_prompt_template() -> None:
    prompt = render_prompt(
        [
            ChatTurn("system", "S"),
            ChatTurn("user", " Q1 "),
            ChatTurn("assistant", "A1"),
            ChatTurn("user", "Q2"),
            ChatTurn("assistant", ""),
        ]
    )
    assert prompt == "System: S\n\nUser: Q1\n\nAssistant: A1\n\nUser: Q2\n\nAssistant:"


async def test_no_network_provider_configured_by_default() -> None:
    assert build_network_providers(Settings()) == {}


async def test_each_configured_provider_is_built() -> None:
    settings = Settings(
        openai_api_key="sk-1",
        anthropic_base_url="http://127.0.0.1:1",
        ollama_base_url="http://127.0.0.1:2",
        huggingface_base_url="http://127.0.0.1:3",
        ollama_default_model="qwen",
    )
    providers = build_network_providers(settings)
    try:
        assert {name: type(p) for name, p in providers.items()} == {
            "openai": OpenAIProvider,
            "anthropic": AnthropicProvider,
            "ollama": OllamaProvider,
            "huggingface": HuggingFaceProvider,
        }
        for name, provider in providers.items():
            assert isinstance(provider, LlmProvider)
            assert provider.name == name
            assert provider.info().provider == name
        assert providers["ollama"].info().default_model == "qwen"
    finally:
        for provider in providers.values():
            await provider.aclose()


def test_httpx_providers_need_a_base_url() -> None:
    from app.settings import HttpProviderConfig, ProviderTimeouts

    config = HttpProviderConfig(None, None, "m", ProviderTimeouts(1, 1, 1))
    with pytest.raises(ValueError):
        OllamaProvider(config)
    with pytest.raises(ValueError):
        HuggingFaceProvider(config)
