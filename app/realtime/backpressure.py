"""A slow client never slows the others, and never holds unbounded memory.

engine.io queues every packet for a client without limit. This guard looks at each
socket's queue depth a few times a second and disconnects a client that fell more than
``max_send_queue`` packets behind; it reconnects and resumes from the stored text.
"""

from __future__ import annotations

import asyncio
import logging

import socketio

from app.realtime.engine_internals import all_sids, drop_client, send_queue_depth

log = logging.getLogger(__name__)


class BackpressureGuard:
    def __init__(self, sio: socketio.AsyncServer, max_send_queue: int, interval_s: float = 0.25):
        self.sio = sio
        self.max_send_queue = max_send_queue
        self.interval_s = interval_s
        self.disconnected = 0

    async def check_once(self) -> list[str]:
        laggards = [
            sid
            for sid in all_sids(self.sio)
            if send_queue_depth(self.sio, sid) > self.max_send_queue
        ]
        for sid in laggards:
            log.warning("disconnecting %s: more than %d packets behind", sid, self.max_send_queue)
            self.disconnected += 1
            await drop_client(self.sio, sid)
        return laggards

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check_once()
            except Exception:
                log.warning("backpressure check failed", exc_info=True)
