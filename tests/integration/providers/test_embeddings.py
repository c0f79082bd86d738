"""Both embedders against their fakes: order, batching, errors, and build_embedder."""

from __future__ import annotations

import pytest

from app.llm.base import LlmProviderError
from app.llm.embeddings import (
    DEFAULT_OLLAMA_EMBEDDING_MODEL,
    DEFAULT_OPENAI_EMBEDDING_MODEL,
    Embedder,
    OllamaEmbedder,
    OpenAIEmbedder,
    build_embedder,
)
from app.settings import HttpProviderConfig, Settings
from tests.fakes.llm_server import Plan, closed_port
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.vectors import fake_embedding
from tests.integration.providers.conftest import API_KEY, TIMEOUTS

TEXTS = ["the cat sat", "a dog barked", "the cat purred", "rain again", "sun at last"]


def assert_vectors(got: list[list[float]], want: list[list[float]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(w, abs=1e-6)


def config(base_url: str, key: str | None = API_KEY) -> HttpProviderConfig:
    return HttpProviderConfig(base_url, key, "unused", TIMEOUTS)


async def test_openai_vectors_in_input_order_across_batches() -> None:
    async with OpenAIFake(api_key=API_KEY) as fake:
        embedder = OpenAIEmbedder(config(fake.base_url), "text-embedding-x", batch_size=2)
        try:
            vectors = await embedder.embed(TEXTS)
        finally:
            await embedder.aclose()
    assert_vectors(vectors, [fake_embedding(t) for t in TEXTS])
    assert [r.body["input"] for r in fake.requests] == [TEXTS[0:2], TEXTS[2:4], TEXTS[4:5]]
    assert all(r.body["encoding_format"] == "float" for r in fake.requests)
    assert fake.last.body["model"] == "text-embedding-x"


async def test_openai_embedder_errors_map() -> None:
    async with OpenAIFake(api_key=API_KEY) as fake:
        wrong = OpenAIEmbedder(config(fake.base_url, "sk-wrong-000000000000"), "m")
        limited = OpenAIEmbedder(config(fake.base_url), "m")
        try:
            with pytest.raises(LlmProviderError) as auth:
                await wrong.embed(["x"])
            fake.plans = [Plan(status=429, retry_after=2)]
            with pytest.raises(LlmProviderError) as rate:
                await limited.embed(["x"])
        finally:
            await wrong.aclose()
            await limited.aclose()
    assert auth.value.error_type == "llm_auth"
    assert "sk-wrong-000000000000" not in auth.value.message
    assert rate.value.error_type == "llm_rate_limited"
    assert rate.value.retry_after_s == 2.0


async def test_ollama_vectors_and_batches() -> None:
    async with OllamaFake(models={"embed-x"}) as fake:
        embedder = OllamaEmbedder(config(fake.base_url, None), "embed-x", batch_size=3)
        try:
            vectors = await embedder.embed(TEXTS)
            assert await embedder.embed([]) == []
        finally:
            await embedder.aclose()
    assert_vectors(vectors, [fake_embedding(t) for t in TEXTS])
    assert [r.path for r in fake.requests] == ["/api/embed", "/api/embed"]
    assert [r.body for r in fake.requests] == [
        {"model": "embed-x", "input": TEXTS[0:3]},
        {"model": "embed-x", "input": TEXTS[3:5]},
    ]


async def test_ollama_embedder_unknown_model_and_refused() -> None:
    async with OllamaFake(models={"embed-x"}) as fake:
        unknown = OllamaEmbedder(config(fake.base_url, None), "nope")
        try:
            with pytest.raises(LlmProviderError) as bad:
                await unknown.embed(["x"])
        finally:
            await unknown.aclose()
    assert bad.value.error_type == "llm_bad_request"
    assert "not found" in bad.value.message

    refused = OllamaEmbedder(config(f"http://127.0.0.1:{closed_port()}", None), "embed-x")
    try:
        with pytest.raises(LlmProviderError) as down:
            await refused.embed(["x"])
    finally:
        await refused.aclose()
    assert down.value.error_type == "llm_unavailable"
    assert down.value.retryable


async def test_similar_texts_embed_closer() -> None:
    """The fake's vectors mean something, so retrieval tests can rank with them."""

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    async with OllamaFake() as fake:
        embedder = OllamaEmbedder(config(fake.base_url, None), "embed-x")
        try:
            cat1, cat2, rain = await embedder.embed(["the cat sat", "the cat purred", "rain"])
        finally:
            await embedder.aclose()
    assert cosine(cat1, cat2) > cosine(cat1, rain)


async def test_build_embedder() -> None:
    assert build_embedder(Settings(embedding_provider=None)) is None

    openai = build_embedder(
        Settings(embedding_provider="openai", openai_api_key=API_KEY, openai_base_url="http://x")
    )
    ollama = build_embedder(
        Settings(embedding_provider="ollama", ollama_base_url="http://x", embedding_model="e5")
    )
    try:
        assert isinstance(openai, OpenAIEmbedder)
        assert isinstance(openai, Embedder)
        assert openai.model == DEFAULT_OPENAI_EMBEDDING_MODEL
        assert isinstance(ollama, OllamaEmbedder)
        assert ollama.model == "e5"
        assert DEFAULT_OLLAMA_EMBEDDING_MODEL
    finally:
        for embedder in (openai, ollama):
            if embedder is not None:
                await embedder.aclose()

    with pytest.raises(ValueError, match="OLLAMA_BASE_URL"):
        build_embedder(Settings(embedding_provider="ollama", ollama_base_url=None))
    with pytest.raises(ValueError, match="unknown embedding_provider"):
        build_embedder(Settings(embedding_provider="cohere"))
