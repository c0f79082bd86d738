"""The network providers the settings configure, built once each (one pool each).

Each provider module is imported only when configured: the SDKs take seconds to import,
and the embedded default uses none of them.
"""

from __future__ import annotations

from app.llm.base import LlmProvider
from app.settings import Settings


def build_network_providers(settings: Settings) -> dict[str, LlmProvider]:
    """``{name: provider}`` for each network provider with a key or base URL set.

    The caller owns the providers and closes each with ``aclose()``.
    """
    providers: dict[str, LlmProvider] = {}
    if (config := settings.openai()) is not None:
        from app.llm.openai_provider import OpenAIProvider

        providers["openai"] = OpenAIProvider(config)
    if (config := settings.anthropic()) is not None:
        from app.llm.anthropic_provider import DEFAULT_MAX_TOKENS, AnthropicProvider

        providers["anthropic"] = AnthropicProvider(
            config, default_max_tokens=settings.llm_max_tokens or DEFAULT_MAX_TOKENS
        )
    if (config := settings.ollama()) is not None:
        from app.llm.ollama_provider import OllamaProvider

        providers["ollama"] = OllamaProvider(config)
    if (config := settings.huggingface()) is not None:
        from app.llm.huggingface_provider import HuggingFaceProvider

        providers["huggingface"] = HuggingFaceProvider(config)
    return providers
