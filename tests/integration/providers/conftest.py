"""Fixtures: each network provider wired to its fake server, over real HTTP.

``kit`` is parametrised over the four providers, so one test checks that all of them
behave the same (the same error types, the same cancel behaviour)::

    async def test_something(kit: Kit) -> None:
        kit.fake.plans = [Plan(tokens=3)]
        provider = kit.provider()
        ...

One fake server (and one default provider) per provider and test module, reset before
each test: building an HTTP client costs tens of milliseconds (its TLS context), which
adds up over a few hundred tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from app.llm.anthropic_provider import AnthropicProvider
from app.llm.base import LlmProvider
from app.llm.huggingface_provider import HuggingFaceProvider
from app.llm.ollama_provider import OllamaProvider
from app.llm.openai_provider import OpenAIProvider
from app.settings import HttpProviderConfig, ProviderTimeouts
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.llm_server import FakeLlmServer
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.tgi_fake import TgiFake

API_KEY = "sk-test-0123456789abcdef"
MODEL = "model-a"
TIMEOUTS = ProviderTimeouts(connect_s=2.0, first_token_s=5.0, idle_s=5.0)
KIT_NAMES = ("openai", "anthropic", "ollama", "huggingface")

# What each fake's default error event maps to.
_MID_STREAM = {
    "openai": "llm_unavailable",  # {"error": {"type": "server_error"}}
    "anthropic": "llm_overloaded",  # event: error, overloaded_error
    "ollama": "llm_unavailable",  # {"error": "..."} line
    "huggingface": "llm_unavailable",  # error_type "generation"
}


def _fake(name: str) -> tuple[FakeLlmServer, Callable[[HttpProviderConfig], LlmProvider]]:
    if name == "openai":
        return OpenAIFake(api_key=API_KEY, models={MODEL}), OpenAIProvider
    if name == "anthropic":
        return AnthropicFake(api_key=API_KEY, models={MODEL}), AnthropicProvider
    if name == "ollama":
        return OllamaFake(models={MODEL}), OllamaProvider
    return TgiFake(api_key=API_KEY), HuggingFaceProvider


@dataclass
class Served:
    """A running fake and the provider pointed at it with the default settings."""

    name: str
    fake: FakeLlmServer
    factory: Callable[[HttpProviderConfig], LlmProvider]
    default: LlmProvider | None = None


@dataclass
class Kit:
    """A fake server, and a factory for providers pointed at it."""

    name: str
    fake: FakeLlmServer
    served: Served
    uses_key: bool
    names_model: bool  # whether requests carry the model (TGI serves one model)
    mid_stream_error_type: str
    made: list[LlmProvider] = field(default_factory=list)

    def provider(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = API_KEY,
        timeouts: ProviderTimeouts = TIMEOUTS,
    ) -> LlmProvider:
        """The shared default provider, or a new one (closed after the test)."""
        if base_url is None and api_key == API_KEY and timeouts == TIMEOUTS:
            if self.served.default is None:
                self.served.default = self._make(self.fake.base_url, api_key, timeouts)
            return self.served.default
        provider = self._make(base_url or self.fake.base_url, api_key, timeouts)
        self.made.append(provider)
        return provider

    def _make(self, base_url: str, api_key: str | None, timeouts: ProviderTimeouts) -> LlmProvider:
        config = HttpProviderConfig(base_url, api_key if self.uses_key else None, MODEL, timeouts)
        return self.served.factory(config)

    def url_on_port(self, port: int) -> str:
        """The fake's base URL with another port (for "nothing listens there")."""
        return self.fake.base_url.replace(f":{self.fake.port}", f":{port}")


@pytest_asyncio.fixture(scope="module", params=KIT_NAMES)
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    fake, factory = _fake(request.param)
    async with fake:
        served = Served(request.param, fake, factory)
        try:
            yield served
        finally:
            if served.default is not None:
                await served.default.aclose()


@pytest_asyncio.fixture
async def kit(served: Served) -> AsyncIterator[Kit]:
    served.fake.reset()
    kit = Kit(
        name=served.name,
        fake=served.fake,
        served=served,
        uses_key=served.name != "ollama",
        names_model=served.name != "huggingface",
        mid_stream_error_type=_MID_STREAM[served.name],
    )
    try:
        yield kit
    finally:
        for provider in kit.made:
            await provider.aclose()
