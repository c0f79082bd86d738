"""A closed Socket.IO connection is freed when it closes, not by a full garbage collection.

engine.io's own ASGI driver left each connection's object graph (uvicorn's websocket
protocol, the transport, engine.io's tasks) in reference cycles; the server's full
collections then had to walk and free them, stopping every stream while they did
(``app.realtime.asgi_driver``). Here the collector keeps what it finds (``DEBUG_SAVEALL``)
and the test looks for the server's websocket protocol objects among it.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from tests.support.clients import Api, connect
from tests.support.server import LiveServer

CONNECTIONS = 20


@pytest.fixture
def saved_garbage() -> list[object]:
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()


async def test_closed_websockets_leave_no_server_protocol_in_cycles(
    server: LiveServer, api: Api, saved_garbage: list[object]
) -> None:
    user = await api.user()
    sockets = [await connect(server.url, user.token) for _ in range(CONNECTIONS)]
    assert all(s.client.connected for s in sockets)
    for sock in sockets:
        await sock.disconnect()
    await asyncio.sleep(0.5)  # the server notices each close and ends its handlers
    gc.collect()
    kinds = Counter(type(o).__qualname__ for o in saved_garbage)
    assert not any(isinstance(o, WebSocketsSansIOProtocol) for o in saved_garbage), kinds
    # engine.io's driver made a class per request, whose methods held the connection
    per_request_classes = [
        o for o in saved_garbage if isinstance(o, type) and o.__name__ == "AwaitablePayload"
    ]
    assert per_request_classes == [], kinds
