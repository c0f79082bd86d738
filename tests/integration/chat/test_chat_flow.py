"""A chat turn end to end: a real uvicorn server, a real Socket.IO client, each database."""

from __future__ import annotations

import asyncio
from itertools import accumulate
from pathlib import Path

import pytest

from tests.conftest import DB_KINDS, make_settings
from tests.support.clients import Api, assert_caught_up, connect, text_of
from tests.support.server import LiveServer


async def test_answer_streams_in_order_then_completes_and_is_stored(
    server: LiveServer, api: Api
) -> None:
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-30-rate-300")
    sock = await connect(server.url, user.token)
    try:
        await sock.wait_for(lambda: bool(sock.named("connected")))
        assert sock.named("connected")[0]["user_id"] == user.id
        ack = await sock.call("chat_message", {"workspace_id": ws["id"], "message": "hello there"})
        assert ack["ok"] is True
        assert set(ack) >= {"session_id", "user_message_id", "message_id"}
        final = await sock.wait_final(ack["message_id"])
        chunks = sock.named("chat_chunk", ack["message_id"])
        assert final.name == "chat_complete"
        assert len(chunks) >= 2
        assert [c["seq"] for c in chunks] == list(range(len(chunks)))
        assert [c["offset"] for c in chunks] == list(
            accumulate((len(c["chunk"]) for c in chunks[:-1]), initial=0)
        )
        assert all(c["attempt"] == 1 for c in chunks)
        streamed = "".join(c["chunk"] for c in chunks)
        assert streamed == final.data["full_response"]
        assert len(streamed.split()) == 30
        assert final.data["usage"]["completion_tokens"] == 30
        assert final.data["finish_reason"] == "stop"
        stored = await api.messages(user, ack["session_id"])
        assert [m["role"] for m in stored] == ["user", "assistant"]
        assert stored[0]["content"] == "hello there" and stored[0]["status"] == "complete"
        assert stored[1]["id"] == ack["message_id"]
        assert stored[1]["content"] == streamed and stored[1]["status"] == "complete"
        # No chunk of a message follows its final event.
        names = [e.name for e in sock.of_message(ack["message_id"])]
        assert names[-1] == "chat_complete" and names.count("chat_complete") == 1
    finally:
        await sock.disconnect()


async def test_a_second_tab_that_joins_the_session_sees_the_same_stream(
    server: LiveServer, api: Api
) -> None:
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-60-rate-60")
    first = await connect(server.url, user.token)
    second = await connect(server.url, user.token)
    try:
        ack = await first.call("chat_message", {"workspace_id": ws["id"], "message": "two tabs"})
        joined = await second.call("join_session", {"session_id": ack["session_id"]})
        assert joined == {"ok": True, "session_id": ack["session_id"]}
        # A tab that joins mid-stream catches up with resume, then follows live.
        caught = await second.call(
            "resume",
            {"session_id": ack["session_id"], "message_id": ack["message_id"], "offset": 0},
        )
        assert caught["ok"] is True
        a = await first.wait_final(ack["message_id"])
        b = await second.wait_final(ack["message_id"])
        assert a.name == b.name == "chat_complete"
        live = [c for c in second.named("chat_chunk", ack["message_id"]) if c["seq"] >= 0]
        assert live, "the second tab received no live chunk"
        assert_caught_up(
            second.named("chat_chunk", ack["message_id"]), caught, a.data["full_response"]
        )
        assert b.data["full_response"] == a.data["full_response"]
    finally:
        await first.disconnect()
        await second.disconnect()


async def test_cancel_mid_stream_closes_the_generator_and_stores_the_partial_text(
    server: LiveServer, api: Api
) -> None:
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-400-rate-50")
    sock = await connect(server.url, user.token)
    try:
        ack = await sock.call(
            "chat_message", {"workspace_id": ws["id"], "message": "cancel me please"}
        )
        await sock.wait_chunks(ack["message_id"], 3)
        cancel = await sock.call("cancel_message", {"session_id": ack["session_id"]})
        assert cancel == {"ok": True, "message_id": ack["message_id"], "status": "cancelled"}
        final = await sock.wait_final(ack["message_id"])
        assert final.name == "chat_cancelled"
        partial = final.data["partial_response"]
        chunks = sock.named("chat_chunk", ack["message_id"])
        assert partial == "".join(c["chunk"] for c in chunks)
        assert 0 < len(partial.split()) < 400
        stored = await api.wait_message(user, ack["session_id"], ack["message_id"], ("cancelled",))
        assert stored["content"] == partial
        recorder = server.ctx.providers.get("synthetic").recorder  # type: ignore[attr-defined]
        closed = [
            r
            for r in recorder.records
            if r["event"] == "closed" and r["question"] == "cancel me please"
        ]
        assert closed and closed[-1]["outcome"] == "closed"
        await asyncio.sleep(0.3)
        assert sock.of_message(ack["message_id"])[-1].name == "chat_cancelled"
        again = await sock.call(
            "cancel_message", {"session_id": ack["session_id"], "message_id": ack["message_id"]}
        )
        assert again == {"ok": True, "message_id": ack["message_id"], "status": "cancelled"}
        nothing = await sock.call("cancel_message", {"session_id": ack["session_id"]})
        assert nothing["ok"] is False and nothing["error_type"] == "not_found"
    finally:
        await sock.disconnect()


async def test_a_provider_failure_mid_stream_keeps_the_partial_text_and_the_session_goes_on(
    server: LiveServer, api: Api
) -> None:
    user = await api.user()
    ws = await api.workspace(
        user, llm_provider="synthetic", llm_model="tokens-50-rate-500-fail-10-llm_overloaded"
    )
    sock = await connect(server.url, user.token)
    try:
        ack = await sock.call("chat_message", {"workspace_id": ws["id"], "message": "fail"})
        final = await sock.wait_final(ack["message_id"])
        assert final.name == "chat_error"
        assert final.data["error_type"] == "llm_overloaded"
        assert final.data["retryable"] is True
        partial = text_of(sock.named("chat_chunk", ack["message_id"]))
        assert len(partial.split()) == 10
        stored = await api.wait_message(user, ack["session_id"], ack["message_id"], ("failed",))
        assert stored["content"] == partial and stored["error_type"] == "llm_overloaded"
        r = await api.http.patch(
            f"/api/workspaces/{ws['id']}", json={"llm_model": "tokens-5-rate-0"}, headers=user.auth
        )
        assert r.status_code == 200
        nxt = await sock.call(
            "chat_message",
            {"workspace_id": ws["id"], "session_id": ack["session_id"], "message": "again"},
        )
        assert nxt["session_id"] == ack["session_id"]
        done = await sock.wait_final(nxt["message_id"])
        assert done.name == "chat_complete" and len(done.data["full_response"].split()) == 5
    finally:
        await sock.disconnect()


async def test_a_resent_client_message_id_returns_the_first_ack_and_starts_nothing(
    server: LiveServer, api: Api
) -> None:
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-10-rate-100")
    sock = await connect(server.url, user.token)
    try:
        payload = {"workspace_id": ws["id"], "message": "once", "client_message_id": "cm-1"}
        first = await sock.call("chat_message", payload)
        second = await sock.call("chat_message", payload)
        assert first == second
        await sock.wait_final(first["message_id"])
        third = await sock.call("chat_message", payload | {"session_id": first["session_id"]})
        assert third == first
        stored = await api.messages(user, first["session_id"])
        assert [m["role"] for m in stored] == ["user", "assistant"]
        assert stored[0]["client_message_id"] == "cm-1"
        await asyncio.sleep(0.2)
        assert len(sock.named("chat_complete", first["message_id"])) == 1
    finally:
        await sock.disconnect()


async def test_messages_sent_back_to_back_are_answered_one_after_another_in_order(
    server: LiveServer, api: Api
) -> None:
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-15-rate-150")
    sock = await connect(server.url, user.token)
    try:
        first = await sock.call("chat_message", {"workspace_id": ws["id"], "message": "one"})
        sid = first["session_id"]
        acks = [first] + [
            await sock.call(
                "chat_message", {"workspace_id": ws["id"], "session_id": sid, "message": text}
            )
            for text in ("two", "three")
        ]
        assert all(a["ok"] for a in acks)
        for ack in acks:
            final = await sock.wait_final(ack["message_id"])
            assert final.name == "chat_complete"
        order = [
            e.data["message_id"]
            for e in sock.events
            if e.name in ("chat_chunk", "chat_complete") and e.data["session_id"] == sid
        ]
        # Each answer's events come after all of the previous answer's: no interleaving.
        firsts = [order.index(a["message_id"]) for a in acks]
        lasts = [len(order) - 1 - order[::-1].index(a["message_id"]) for a in acks]
        assert lasts[0] < firsts[1] and lasts[1] < firsts[2]
        stored = await api.messages(user, sid)
        assert [m["content"] for m in stored if m["role"] == "user"] == ["one", "two", "three"]
        assert all(m["status"] == "complete" for m in stored)
    finally:
        await sock.disconnect()


async def test_a_lost_cancel_command_is_sent_again(server: LiveServer, api: Api) -> None:
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-400-rate-50")
    sock = await connect(server.url, user.token)
    bus = server.ctx.bus
    original = bus.publish_control
    dropped: list[bytes] = []

    async def lose_the_first(body: bytes) -> None:
        if not dropped:
            dropped.append(body)  # the broker lost it
            return
        await original(body)

    bus.publish_control = lose_the_first  # type: ignore[method-assign]
    try:
        ack = await sock.call("chat_message", {"workspace_id": ws["id"], "message": "lost cancel"})
        await sock.wait_chunks(ack["message_id"], 2)
        answer = await sock.call("cancel_message", {"session_id": ack["session_id"]})
        assert dropped and answer["status"] == "cancelled"
        assert (await sock.wait_final(ack["message_id"])).name == "chat_cancelled"
    finally:
        bus.publish_control = original  # type: ignore[method-assign]
        await sock.disconnect()


@pytest.mark.parametrize("kind", DB_KINDS)
async def test_a_burst_of_turns_through_one_setup_slot_is_answered_in_full(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """With one turn stored (API) and one claimed (worker) at a time, twenty turns sent at
    once from ten sockets all stream to completion, each stored with its own answer."""
    url = request.getfixturevalue("postgres_server") if kind == "postgres" else None
    live = await LiveServer(make_settings(tmp_path, url, turn_setup_concurrency=1)).start()
    api = Api(live.url)
    socks = []
    try:
        user = await api.user()
        ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-12-rate-200")
        socks = [await connect(live.url, user.token) for _ in range(10)]
        acks = await asyncio.gather(
            *(
                sock.call("chat_message", {"workspace_id": ws["id"], "message": f"burst {i}"})
                for i in range(2)
                for sock in socks
            )
        )
        assert all(ack["ok"] for ack in acks), acks
        assert len({ack["session_id"] for ack in acks}) == 20
        for n, ack in enumerate(acks):
            sock = socks[n % len(socks)]
            final = await sock.wait_final(ack["message_id"])
            assert final.name == "chat_complete"
            assert len(final.data["full_response"].split()) == 12
            stored = await api.messages(user, ack["session_id"])
            assert [m["status"] for m in stored] == ["complete", "complete"]
            assert stored[1]["content"] == final.data["full_response"]
    finally:
        for sock in socks:
            await sock.disconnect()
        await api.aclose()
        await live.stop()
