"""``resume`` after a dropped connection: the text ends exactly as stored, no gap, no duplicate."""

from __future__ import annotations

import asyncio
import random

from tests.support.clients import Api, Socket, connect, text_of
from tests.support.server import LiveServer


def apply(text: str, chunk: dict[str, object]) -> str:
    """PROTOCOL.md's rule for one chunk; a gap is a failure here."""
    offset, piece = int(chunk["offset"]), str(chunk["chunk"])  # type: ignore[call-overload]
    if offset + len(piece) <= len(text):
        return text
    assert offset <= len(text), f"gap: chunk at {offset}, text has {len(text)}"
    return text + piece[len(text) - offset :]


async def resumed_text(sock: Socket, message_id: str, held: str) -> str:
    text = held
    for c in sock.named("chat_chunk", message_id):
        text = apply(text, c)
    return text


async def test_resume_at_random_cut_points_ends_with_exactly_the_stored_text(
    server: LiveServer, api: Api
) -> None:
    rng = random.Random(20261202)
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-120-rate-200")
    for round_ in range(6):
        first = await connect(server.url, user.token)
        ack = await first.call(
            "chat_message", {"workspace_id": ws["id"], "message": f"cut {round_}"}
        )
        mid = ack["message_id"]
        await first.wait_chunks(mid, rng.randint(1, 60))
        await first.disconnect()
        held = text_of(first.named("chat_chunk", mid))
        await asyncio.sleep(rng.uniform(0, 0.25))
        second = await connect(server.url, user.token)
        try:
            answer = await second.call(
                "resume",
                {
                    "session_id": ack["session_id"],
                    "message_id": mid,
                    "attempt": 1,
                    "offset": len(held),
                },
            )
            assert answer["ok"] is True and answer["attempt"] == 1
            assert answer["status"] in ("streaming", "complete")
            assert answer["length"] >= len(held)
            final = await second.wait_final(mid)
            assert final.name == "chat_complete"
            text = await resumed_text(second, mid, held)
            assert text == final.data["full_response"]
            stored = await api.wait_message(user, ack["session_id"], mid, ("complete",))
            assert stored["content"] == text
            catch_up = [c for c in second.named("chat_chunk", mid) if c["seq"] == -1]
            assert len(catch_up) <= 1
            if catch_up:
                assert catch_up[0]["offset"] == len(held)
                # The catch-up comes before any live event of the message.
                assert second.of_message(mid)[0].data["seq"] == -1
        finally:
            await second.disconnect()


async def test_resume_edge_cases(server: LiveServer, api: Api) -> None:
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-20-rate-0")
    sock = await connect(server.url, user.token)
    try:
        ack = await sock.call("chat_message", {"workspace_id": ws["id"], "message": "short"})
        mid, sid = ack["message_id"], ack["session_id"]
        full = (await sock.wait_final(mid)).data["full_response"]
        late = await connect(server.url, user.token)
        try:
            # Ended: the missing text, then the final event again.
            answer = await late.call("resume", {"session_id": sid, "message_id": mid, "offset": 5})
            assert answer == {"ok": True, "status": "complete", "attempt": 1, "length": len(full)}
            await late.wait_final(mid)
            events = late.of_message(mid)
            assert [e.name for e in events] == ["chat_chunk", "chat_complete"]
            assert events[0].data["seq"] == -1 and events[0].data["offset"] == 5
            assert events[0].data["chunk"] == full[5:]
            # Nothing new (offset at or past the end): no chunk, just the final event.
            for offset in (len(full), len(full) + 10):
                late.events.clear()
                answer = await late.call(
                    "resume", {"session_id": sid, "message_id": mid, "offset": offset}
                )
                assert answer["length"] == len(full)
                await late.wait_final(mid)
                assert [e.name for e in late.of_message(mid)] == ["chat_complete"]
            # Another attempt than the client holds: the whole text from offset 0.
            late.events.clear()
            answer = await late.call(
                "resume", {"session_id": sid, "message_id": mid, "attempt": 7, "offset": 9}
            )
            await late.wait_final(mid)
            chunk = late.named("chat_chunk", mid)[0]
            assert chunk["offset"] == 0 and chunk["chunk"] == full
        finally:
            await late.disconnect()
    finally:
        await sock.disconnect()


async def test_resume_of_a_queued_answer_sends_no_text_then_the_live_stream(
    server: LiveServer, api: Api
) -> None:
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-40-rate-100")
    sock = await connect(server.url, user.token)
    try:
        first = await sock.call("chat_message", {"workspace_id": ws["id"], "message": "first"})
        queued = await sock.call(
            "chat_message",
            {"workspace_id": ws["id"], "session_id": first["session_id"], "message": "second"},
        )
        other = await connect(server.url, user.token)
        try:
            answer = await other.call(
                "resume",
                {
                    "session_id": first["session_id"],
                    "message_id": queued["message_id"],
                    "offset": 0,
                },
            )
            assert answer["ok"] and answer["status"] == "pending" and answer["length"] == 0
            final = await other.wait_final(queued["message_id"], timeout=30)
            assert final.name == "chat_complete"
            assert (
                text_of(other.named("chat_chunk", queued["message_id"]))
                == final.data["full_response"]
            )
        finally:
            await other.disconnect()
    finally:
        await sock.disconnect()
