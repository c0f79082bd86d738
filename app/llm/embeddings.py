"""Text embeddings for retrieval, from OpenAI (or a compatible server) or Ollama.

::

    embedder = build_embedder(settings)      # None: no embedding provider configured
    if embedder is not None:
        vectors = await embedder.embed(["first chunk", "second chunk"])
        await embedder.aclose()

Failures raise ``LlmProviderError`` with the same error types as the chat providers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import orjson

from app.llm import http_errors
from app.llm._httpx_stream import make_client, status_error_from
from app.llm.base import LlmProviderError
from app.settings import HttpProviderConfig, Settings

if TYPE_CHECKING:
    from openai import AsyncOpenAI

DEFAULT_OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
DEFAULT_OLLAMA_EMBEDDING_MODEL = "nomic-embed-text"


@runtime_checkable
class Embedder(Protocol):
    model: str

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...

    async def aclose(self) -> None: ...


def _batches(texts: Sequence[str], size: int) -> list[Sequence[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)]


class OpenAIEmbedder:
    """``embeddings.create`` in batches; floats requested, so compatible servers work too."""

    def __init__(self, config: HttpProviderConfig, model: str, *, batch_size: int = 256) -> None:
        # Imported here: the SDK is slow to import, and only this embedder needs it.
        from openai import AsyncOpenAI

        from app.llm.openai_provider import NO_KEY, OPENAI_BASE_URL, sdk_timeout

        self.model = model
        self._batch_size = batch_size
        self._secret = config.api_key
        self._client: AsyncOpenAI = AsyncOpenAI(
            api_key=config.api_key or NO_KEY,
            base_url=config.base_url or OPENAI_BASE_URL,
            max_retries=0,
            timeout=sdk_timeout(config.timeouts),
        )

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        from app.llm.openai_provider import map_openai_error

        vectors: list[list[float]] = []
        for batch in _batches(texts, self._batch_size):
            try:
                response = await self._client.embeddings.create(
                    model=self.model, input=list(batch), encoding_format="float"
                )
            except Exception as exc:
                mapped = map_openai_error(exc, secret=self._secret)
                if mapped is None:
                    raise
                raise mapped from exc
            items = sorted(response.data, key=lambda item: item.index)
            if len(items) != len(batch):
                raise _count_mismatch("OpenAI", len(batch), len(items))
            vectors.extend(list(item.embedding) for item in items)
        return vectors

    async def aclose(self) -> None:
        await self._client.close()


class OllamaEmbedder:
    """``POST /api/embed {model, input: [...]}`` → ``{embeddings: [[...], ...]}``."""

    def __init__(self, config: HttpProviderConfig, model: str, *, batch_size: int = 64) -> None:
        if not config.base_url:
            raise ValueError("the Ollama embedder needs a base URL")
        self.model = model
        self._batch_size = batch_size
        self._client = make_client(config.base_url, config.timeouts)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for batch in _batches(texts, self._batch_size):
            vectors.extend(await self._embed_batch(batch))
        return vectors

    async def _embed_batch(self, batch: Sequence[str]) -> list[list[float]]:
        body = orjson.dumps({"model": self.model, "input": list(batch)})
        try:
            response = await self._client.post(
                "/api/embed", content=body, headers={"content-type": "application/json"}
            )
        except Exception as exc:
            mapped = http_errors.transport_error("Ollama", exc)
            if mapped is None:
                raise
            raise mapped from exc
        if response.status_code != 200:
            raise await status_error_from("Ollama", response)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise LlmProviderError(
                "llm_unavailable", "Ollama sent embeddings that are not JSON"
            ) from None
        embeddings = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(embeddings, list):
            raise LlmProviderError("llm_unavailable", "Ollama sent no embeddings")
        if len(embeddings) != len(batch):
            raise _count_mismatch("Ollama", len(batch), len(embeddings))
        if not all(isinstance(vector, list) for vector in embeddings):
            raise LlmProviderError("llm_unavailable", "Ollama sent malformed embeddings")
        return [[float(x) for x in vector] for vector in embeddings]

    async def aclose(self) -> None:
        await self._client.aclose()


def _count_mismatch(provider: str, wanted: int, got: int) -> LlmProviderError:
    return LlmProviderError(
        "llm_unavailable", f"{provider} returned {got} embeddings for {wanted} texts"
    )


def build_embedder(settings: Settings) -> Embedder | None:
    """The embedder ``embedding_provider`` names, or None when it names none.

    Raises ValueError for an unknown name or a provider whose connection is not configured.
    """
    name = settings.embedding_provider
    if not name:
        return None
    if name == "openai":
        config = settings.openai()
        if config is None:
            raise ValueError(
                "embedding_provider=openai needs INSIGHTHUB_OPENAI_API_KEY or _BASE_URL"
            )
        return OpenAIEmbedder(config, settings.embedding_model or DEFAULT_OPENAI_EMBEDDING_MODEL)
    if name == "ollama":
        config = settings.ollama()
        if config is None:
            raise ValueError("embedding_provider=ollama needs INSIGHTHUB_OLLAMA_BASE_URL")
        return OllamaEmbedder(config, settings.embedding_model or DEFAULT_OLLAMA_EMBEDDING_MODEL)
    raise ValueError(f"unknown embedding_provider {name!r}: use 'openai' or 'ollama'")
