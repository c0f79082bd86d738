"""The slow-client guard, over a real python-socketio server's bookkeeping (no network)."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from app.realtime.backpressure import BackpressureGuard
from app.realtime.engine_internals import all_sids, emit_fast, send_queue_depth


class FakeEioSocket:
    """engine.io's socket as far as the guard uses it: a send queue and close()."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False

    async def close(self, wait: bool = True, abort: bool = False) -> None:
        self.closed = True

    async def send(self, pkt: Any) -> None:
        self.queue.put_nowait(pkt)


async def server_with(sids: list[str]) -> tuple[socketio.AsyncServer, dict[str, FakeEioSocket]]:
    """A real AsyncServer whose manager knows these sockets, each with a send queue."""
    sio = socketio.AsyncServer(async_mode="asgi")
    sockets: dict[str, FakeEioSocket] = {}
    for name in sids:
        eio_sid = f"eio-{name}"
        sid = await sio.manager.pre_connect(eio_sid, "/")
        await sio.manager.connect(sid, "/")
        await sio.enter_room(sid, "room")
        sockets[sid] = FakeEioSocket()
        sio.eio.sockets[eio_sid] = sockets[sid]
    return sio, sockets


async def test_emit_fast_queues_one_packet_per_socket_in_the_rooms() -> None:
    sio, sockets = await server_with(["a", "b", "c"])
    sids = list(sockets)
    assert emit_fast(sio, "chat_chunk", {"x": 1}, "room", skip_sids={sids[1]}) == 2
    assert [send_queue_depth(sio, s) for s in sids] == [1, 0, 1]
    packet = sockets[sids[0]].queue.get_nowait()
    assert packet.encode() == '42["chat_chunk",{"x":1}]'
    # Several rooms: each socket once.
    assert emit_fast(sio, "e", None, [sids[0], "room"]) == 3
    assert set(all_sids(sio)) == set(sids)


async def test_the_guard_disconnects_only_clients_past_the_bound() -> None:
    sio, sockets = await server_with(["slow", "ok"])
    slow, ok = list(sockets)
    for _ in range(6):
        sockets[slow].queue.put_nowait(object())
    sockets[ok].queue.put_nowait(object())
    guard = BackpressureGuard(sio, max_send_queue=5)
    assert await guard.check_once() == [slow]
    assert guard.disconnected == 1
    # The slow one's backlog is freed and its writer told to stop; the other keeps its own.
    assert sockets[slow].closed is True
    left = [sockets[slow].queue.get_nowait() for _ in range(sockets[slow].queue.qsize())]
    assert len(left) == 2 and left[-1] is None  # the DISCONNECT packet, then the writer's stop
    assert not sio.manager.is_connected(slow, "/")
    assert sio.manager.is_connected(ok, "/") and sockets[ok].queue.qsize() == 1
