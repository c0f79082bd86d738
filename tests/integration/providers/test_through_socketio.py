"""Each real provider answering a chat turn end to end: Socket.IO client → server → SDK →
the provider's fake server, and back, token by token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import make_settings
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.llm_server import FakeLlmServer, Plan
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.tgi_fake import TgiFake
from tests.support.clients import Api, connect, text_of
from tests.support.server import LiveServer

KEY = "sk-test-0123456789abcdef"
MODEL = "model-a"
NAMES = ("openai", "anthropic", "ollama", "huggingface")


class Stack:
    def __init__(self, fakes: dict[str, FakeLlmServer], live: LiveServer, api: Api) -> None:
        self.fakes, self.live, self.api = fakes, live, api


@pytest_asyncio.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    fakes: dict[str, FakeLlmServer] = {
        "openai": OpenAIFake(api_key=KEY, models={MODEL}),
        "anthropic": AnthropicFake(api_key=KEY, models={MODEL}),
        "ollama": OllamaFake(models={MODEL}),
        "huggingface": TgiFake(api_key=KEY),
    }
    for fake in fakes.values():
        await fake.__aenter__()
    settings = make_settings(
        Path(tmp_path_factory.mktemp("providers")),
        openai_api_key=KEY,
        openai_base_url=fakes["openai"].base_url,
        anthropic_api_key=KEY,
        anthropic_base_url=fakes["anthropic"].base_url,
        ollama_base_url=fakes["ollama"].base_url,
        huggingface_api_key=KEY,
        huggingface_base_url=fakes["huggingface"].base_url,
        llm_first_token_timeout_s=5.0,
        llm_idle_timeout_s=5.0,
    )
    live = await LiveServer(settings).start()
    api = Api(live.url)
    try:
        yield Stack(fakes, live, api)
    finally:
        await api.aclose()
        await live.stop()
        for fake in fakes.values():
            await fake.__aexit__(None, None, None)


@pytest.mark.parametrize("name", NAMES)
async def test_each_provider_streams_an_answer_with_usage(stack: Stack, name: str) -> None:
    fake = stack.fakes[name]
    fake.reset()
    fake.plans = [Plan(tokens=12, rate=200)]
    user = await stack.api.user()
    ws = await stack.api.workspace(user, llm_provider=name, llm_model=MODEL)
    sock = await connect(stack.live.url, user.token)
    try:
        ack = await sock.call(
            "chat_message",
            {"workspace_id": ws["id"], "message": "hello provider", "rag_type": "none"},
        )
        final = await sock.wait_final(ack["message_id"])
        assert final.name == "chat_complete", final.data
        chunks = sock.named("chat_chunk", ack["message_id"])
        assert len(chunks) >= 2
        assert text_of(chunks) == final.data["full_response"] != ""
        assert final.data["finish_reason"] == "stop"
        if name != "huggingface":  # TGI's stream carries no prompt token count
            usage = final.data["usage"]
            assert usage["completion_tokens"] == 12 and usage["prompt_tokens"] > 0
        request = fake.requests[-1]
        assert "hello provider" in str(request.body)
        stored = await stack.api.wait_message(
            user, ack["session_id"], ack["message_id"], ("complete",)
        )
        assert stored["content"] == final.data["full_response"]
        assert stored["provider"] == name and stored["model"] == MODEL
    finally:
        await sock.disconnect()


@pytest.mark.parametrize("name", NAMES)
async def test_a_rejected_key_reaches_the_client_as_llm_auth(stack: Stack, name: str) -> None:
    fake = stack.fakes[name]
    fake.reset()
    fake.plans = [Plan(status=401)]
    user = await stack.api.user()
    ws = await stack.api.workspace(user, llm_provider=name, llm_model=MODEL)
    sock = await connect(stack.live.url, user.token)
    try:
        ack = await sock.call(
            "chat_message", {"workspace_id": ws["id"], "message": "x", "rag_type": "none"}
        )
        final = await sock.wait_final(ack["message_id"])
        assert final.name == "chat_error"
        assert final.data["error_type"] == "llm_auth" and final.data["retryable"] is False
        assert KEY not in final.data["message"]
    finally:
        await sock.disconnect()


@pytest.mark.parametrize("name", NAMES)
async def test_cancelling_closes_the_upstream_response_within_a_second(
    stack: Stack, name: str
) -> None:
    fake = stack.fakes[name]
    fake.reset()
    fake.plans = [Plan(tokens=500, rate=40)]
    user = await stack.api.user()
    ws = await stack.api.workspace(user, llm_provider=name, llm_model=MODEL)
    sock = await connect(stack.live.url, user.token)
    try:
        ack = await sock.call(
            "chat_message", {"workspace_id": ws["id"], "message": "x", "rag_type": "none"}
        )
        await sock.wait_chunks(ack["message_id"], 3)
        loop = asyncio.get_running_loop()
        sent = loop.time()
        answer = await sock.call("cancel_message", {"session_id": ack["session_id"]})
        assert answer["status"] == "cancelled"
        request = fake.requests[-1]
        await asyncio.wait_for(request.disconnected.wait(), 1.0)
        assert request.disconnected_at is not None and request.disconnected_at - sent < 1.0
        final = await sock.wait_final(ack["message_id"])
        assert final.name == "chat_cancelled"
    finally:
        await sock.disconnect()
