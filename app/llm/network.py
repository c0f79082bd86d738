"""The network providers the settings configure, built once each (one pool each)."""

from __future__ import annotations

from app.llm.anthropic_provider import DEFAULT_MAX_TOKENS, AnthropicProvider
from app.llm.base import LlmProvider
from app.llm.huggingface_provider import HuggingFaceProvider
from app.llm.ollama_provider import OllamaProvider
from app.llm.openai_provider import OpenAIProvider
from app.settings import Settings


def build_network_providers(settings: Settings) -> dict[str, LlmProvider]:
    """``{name: provider}`` for each network provider with a key or base URL set.

    The caller owns the providers and closes each with ``aclose()``.
    """
    providers: dict[str, LlmProvider] = {}
    if (config := settings.openai()) is not None:
        providers["openai"] = OpenAIProvider(config)
    if (config := settings.anthropic()) is not None:
        providers["anthropic"] = AnthropicProvider(
            config, default_max_tokens=settings.llm_max_tokens or DEFAULT_MAX_TOKENS
        )
    if (config := settings.ollama()) is not None:
        providers["ollama"] = OllamaProvider(config)
    if (config := settings.huggingface()) is not None:
        providers["huggingface"] = HuggingFaceProvider(config)
    return providers
