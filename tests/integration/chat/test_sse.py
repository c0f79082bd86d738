"""POST /api/sessions/{id}/messages as server-sent events, read with httpx."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.support.clients import Api, User
from tests.support.server import LiveServer


async def read_events(
    response: httpx.Response, stop_after: int | None = None
) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    name = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: ") and name is not None:
            events.append((name, json.loads(line[len("data: ") :])))
            name = None
            if stop_after is not None and len(events) >= stop_after:
                break
    return events


async def session_in(api: Api, user: User, **workspace: Any) -> str:
    ws = await api.workspace(user, **workspace)
    r = await api.http.post(f"/api/workspaces/{ws['id']}/sessions", json={}, headers=user.auth)
    return str(r.json()["id"])


async def test_a_turn_streams_as_server_sent_events(api: Api) -> None:
    user = await api.user()
    sid = await session_in(api, user, llm_provider="synthetic", llm_model="tokens-25-rate-500")
    async with api.http.stream(
        "POST", f"/api/sessions/{sid}/messages", json={"message": "over http"}, headers=user.auth
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = await read_events(response)
    names = [n for n, _ in events]
    assert names[0] == "chat_accepted" and names[-1] == "chat_complete"
    assert set(names[1:-1]) == {"chat_chunk"}
    accepted = events[0][1]
    assert accepted["session_id"] == sid
    chunks = [d for n, d in events if n == "chat_chunk"]
    assert all(c["message_id"] == accepted["message_id"] for c in chunks)
    text = "".join(c["chunk"] for c in chunks)
    assert text == events[-1][1]["full_response"] and len(text.split()) == 25
    stored = await api.messages(user, sid)
    assert stored[-1]["content"] == text and stored[-1]["status"] == "complete"


async def test_a_client_that_disconnects_cancels_the_answer(server: LiveServer, api: Api) -> None:
    user = await api.user()
    sid = await session_in(api, user, llm_provider="synthetic", llm_model="tokens-500-rate-50")
    async with api.http.stream(
        "POST", f"/api/sessions/{sid}/messages", json={"message": "leave early"}, headers=user.auth
    ) as response:
        events = await read_events(response, stop_after=4)
    message_id = events[0][1]["message_id"]
    stored = await api.wait_message(user, sid, message_id, ("cancelled",), timeout=10)
    assert 0 < len(stored["content"].split()) < 500
    recorder = server.ctx.providers.get("synthetic").recorder  # type: ignore[attr-defined]
    for _ in range(50):
        closed = [
            r for r in recorder.records if r["event"] == "closed" and r["question"] == "leave early"
        ]
        if closed:
            break
        await asyncio.sleep(0.05)
    assert closed and closed[-1]["outcome"] == "closed"


async def test_bad_requests_are_refused_before_any_stream(api: Api) -> None:
    user, stranger = await api.user(), await api.user()
    sid = await session_in(api, user, llm_provider="synthetic", llm_model="tokens-5-rate-0")
    url = f"/api/sessions/{sid}/messages"
    r = await api.http.post(url, json={"message": "hi"})
    assert r.status_code == 401 and r.json()["error_type"] == "unauthorized"
    r = await api.http.post(url, json={"message": "hi"}, headers=stranger.auth)
    assert r.status_code == 404 and r.json()["error_type"] == "not_found"
    for body in (
        {},
        {"message": "  "},
        {"message": "x" * 32_001},
        {"message": "x", "rag_type": "graph"},
    ):
        r = await api.http.post(url, json=body, headers=user.auth)
        assert r.status_code == 422 and r.json()["error_type"] == "validation_error", body
    assert await api.messages(user, sid) == []


async def test_a_quiet_stream_sends_heartbeat_comments(tmp_path: Any) -> None:
    from tests.conftest import make_settings

    live = await LiveServer(make_settings(tmp_path, sse_heartbeat_s=0.1)).start()
    api = Api(live.url)
    try:
        user = await api.user()
        sid = await session_in(api, user, llm_provider="synthetic", llm_model="tokens-3-rate-4")
        comments = 0
        async with api.http.stream(
            "POST", f"/api/sessions/{sid}/messages", json={"message": "slow"}, headers=user.auth
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith(": heartbeat"):
                    comments += 1
                if line.startswith("event: chat_complete"):
                    break
        assert comments >= 2
    finally:
        await api.aclose()
        await live.stop()
