"""The providers this process can use: one instance (one connection pool) each."""

from __future__ import annotations

import logging
from types import TracebackType

from app.errors import InvalidInput
from app.llm.base import LlmProvider
from app.llm.embeddings import Embedder, build_embedder
from app.llm.synthetic_provider import StreamRecorder, SyntheticProvider
from app.settings import Settings

log = logging.getLogger(__name__)


class ProviderRegistry:
    """Builds every configured provider once and closes them all at shutdown::

    async with ProviderRegistry(settings) as providers:
        provider = providers.get("openai")
    """

    def __init__(self, settings: Settings, *, recorder: StreamRecorder | None = None) -> None:
        from app.llm.local_provider import LocalProvider
        from app.llm.network import build_network_providers

        self.settings = settings
        self._providers: dict[str, LlmProvider] = {"local": LocalProvider()}
        if settings.synthetic_provider:
            self._providers["synthetic"] = SyntheticProvider(recorder)
        self._providers.update(build_network_providers(settings))
        self.embedder: Embedder | None = build_embedder(settings)

    async def __aenter__(self) -> ProviderRegistry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.embedder is not None:
            await self.embedder.aclose()
        for provider in self._providers.values():
            try:
                await provider.aclose()
            except Exception:
                log.exception("closing provider %s failed", provider.name)

    def names(self) -> list[str]:
        return list(self._providers)

    def get(self, name: str) -> LlmProvider:
        try:
            return self._providers[name]
        except KeyError:
            raise InvalidInput(f"provider {name!r} is not configured on this server") from None

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def default_model(self, name: str) -> str:
        return self.get(name).info().default_model

    def resolve(self, provider: str | None, model: str | None) -> tuple[str, str]:
        """What a workspace stores: the named (or default) provider and a model for it."""
        name = provider or self.settings.default_provider
        if name not in self._providers:
            raise InvalidInput(f"provider {name!r} is not configured on this server")
        if model:
            return name, model
        if provider is None and self.settings.default_model:
            return name, self.settings.default_model
        return name, self.default_model(name)
