"""Where InsightHub reaches into python-socketio / python-engineio internals.

Kept in this one small module (and the engine.io minor version pinned in pyproject.toml)
so an upgrade is checked here and in tests/unit/realtime/test_engine_internals.py:

- ``emit_fast``: python-socketio's room emit creates one task per recipient and waits for
  them all; for a chunk that goes to one or two sockets that costs more than the rest of
  the hot path. This encodes the packet once (``encode_event``: without python-socketio's
  search of the payload for bytes) and puts it on each recipient's engine.io send queue
  directly (what ``AsyncSocket.send`` does, minus its per-packet log line).
- ``send_queue_depth``: engine.io's per-client send queue is unbounded; the backpressure
  guard reads its depth to find clients that fell too far behind.

The third, engine.io's ASGI driver table, is replaced in ``app.realtime.asgi_driver``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

_EVENT = str(sio_packet.EVENT)


def emit_fast(
    sio: socketio.AsyncServer,
    event: str,
    data: Any,
    rooms: str | list[str],
    skip_sids: Collection[str] = (),
) -> int:
    """Queue ``event`` for every socket in ``rooms`` (each once); returns how many."""
    manager = sio.manager
    if "/" not in manager.rooms:
        return 0
    sockets = sio.eio.sockets
    pkt: eio_packet.Packet | None = None
    sent = 0
    for sid, eio_sid in manager.get_participants("/", rooms):
        if sid in skip_sids:
            continue
        sock = sockets.get(eio_sid)
        if sock is None or sock.closed:
            continue
        if pkt is None:
            pkt = eio_packet.Packet(eio_packet.MESSAGE, encode_event(sio, event, data))
        sock.queue.put_nowait(pkt)
        sent += 1
    return sent


def encode_event(sio: socketio.AsyncServer, event: str, data: Any) -> str:
    """The EVENT packet for namespace "/", exactly as ``packet_class(...).encode()`` makes it.

    python-socketio's packet walks the whole payload looking for bytes (to make a binary
    event) before encoding it: several times the cost of encoding it. The payloads here
    are JSON values, which hold no bytes; the JSON encoder refuses bytes with TypeError,
    and that rare payload takes python-socketio's own path.
    """
    try:
        body: str = sio.packet_class.json.dumps([event, data], separators=(",", ":"))
    except TypeError:
        encoded: str = sio.packet_class(
            sio_packet.EVENT, namespace="/", data=[event, data]
        ).encode()
        return encoded
    return _EVENT + body


def send_queue_depth(sio: socketio.AsyncServer, sid: str) -> int:
    eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
    sock = sio.eio.sockets.get(eio_sid) if eio_sid else None
    if sock is None:
        return 0
    return int(sock.queue.qsize())


def all_sids(sio: socketio.AsyncServer) -> list[str]:
    return [sid for sid, _eio in sio.manager.get_participants("/", None)]


async def drop_client(sio: socketio.AsyncServer, sid: str) -> None:
    """Disconnect a client that fell behind and free what is queued for it.

    ``sio.disconnect`` alone queues its DISCONNECT packet behind the backlog, which a
    client that stopped reading never takes: the packets would stay in memory until the
    ping times out. The queue is emptied and closed (``None`` ends engine.io's writer).
    """
    eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
    sock = sio.eio.sockets.get(eio_sid) if eio_sid else None
    if sock is not None:
        queue = sock.queue
        while not queue.empty():
            queue.get_nowait()
            queue.task_done()
    await sio.disconnect(sid)
    if sock is not None:
        await sock.close(wait=False, abort=True)
        sock.queue.put_nowait(None)
