"""Bus events → Socket.IO rooms on this node.

The routing key names the room: ``chat.<session>.*`` → ``session:<session>``,
``workspace.<id>.*`` → ``workspace:<id>`` (plus the members' ``user:<id>`` rooms for
``workspace_status``), ``user.<id>.*`` → ``user:<id>``, ``node.<this node>.*`` → replies
for this node's own requests.

A socket that is resuming a message is skipped by the room emits for that message until
its catch-up chunk is out; the relay keeps those events for it and sends them right after,
so the socket sees no gap and nothing out of order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from app.bus.messages import parse_event
from app.chat.events import FINAL_EVENTS
from app.chat.turns import ChatTurns
from app.realtime.engine_internals import emit_fast

log = logging.getLogger(__name__)

Held = list[tuple[str, dict[str, Any]]]


class Relay:
    def __init__(self, sio: socketio.AsyncServer, turns: ChatTurns) -> None:
        self.sio = sio
        self.turns = turns
        # message id → sid → events kept while that socket's catch-up is being prepared
        self._held: dict[str, dict[str, Held]] = {}
        # message id → queues of local listeners that are not sockets (the SSE route)
        self._listeners: dict[str, list[asyncio.Queue[tuple[str, dict[str, Any]]]]] = {}
        self.events_relayed = 0
        self.last_event_at = time.time()
        # set by the realtime server: takes a user's sockets out of a workspace's room
        self.on_access_revoked: Callable[[str, str], Awaitable[None]] | None = None

    def listen(self, message_id: str) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._listeners.setdefault(message_id, []).append(queue)
        return queue

    def unlisten(self, message_id: str, queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        queues = self._listeners.get(message_id)
        if queues and queue in queues:
            queues.remove(queue)
            if not queues:
                del self._listeners[message_id]

    def hold(self, sid: str, message_id: str) -> None:
        self._held.setdefault(message_id, {})[sid] = []

    async def release(self, sid: str, message_id: str, *, ended: bool = False) -> None:
        """Send the kept events; ``ended``: the socket was sent the final event already, so
        what was kept is older than it and is dropped (no chunk follows a final event)."""
        holders = self._held.get(message_id)
        if holders is None:
            return
        kept = holders.pop(sid, [])
        if not holders:
            del self._held[message_id]
        if ended:
            return
        for event, data in kept:
            emit_fast(self.sio, event, data, sid)

    async def on_event(self, routing_key: str, body: bytes) -> None:
        event, data, users = parse_event(body)
        kind, _, rest = routing_key.partition(".")
        target = rest.partition(".")[0]
        self.events_relayed += 1
        self.last_event_at = time.time()
        if kind == "chat":
            if event in FINAL_EVENTS:
                self.turns.observe_final(event, data)
            if self._listeners and (queues := self._listeners.get(data["message_id"])):
                for queue in queues:
                    queue.put_nowait((event, data))
            room = f"session:{target}"
            holders = self._held.get(data["message_id"]) if self._held else None
            if holders:
                for kept in holders.values():
                    kept.append((event, data))
                emit_fast(self.sio, event, data, room, holders.keys())
            else:
                emit_fast(self.sio, event, data, room)
        elif kind == "workspace":
            rooms = [f"workspace:{target}"]
            if users:
                rooms.extend(f"user:{u}" for u in users)
            emit_fast(self.sio, event, data, rooms)
        elif kind == "user":
            if event == "access_revoked":
                if self.on_access_revoked is not None:
                    await self.on_access_revoked(target, data["workspace_id"])
                return
            emit_fast(self.sio, event, data, f"user:{target}")
        elif kind == "node":
            if event == "text_reply":
                self.turns.observe_text_reply(data)
        else:
            log.warning("event with an unknown routing key %s", routing_key)
