"""A real uvicorn server on a free port, in the test's event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import uvicorn

from app.context import AppContext
from app.main import create_app
from app.settings import Settings
from tests.support.services import free_port


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.asgi = create_app(settings)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[Any] | None = None

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.asgi.other_asgi_app.state.ctx
        return ctx

    async def start(self) -> LiveServer:
        config = uvicorn.Config(
            self.asgi,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws_max_size=self.settings.max_frame_bytes + 1024,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                if self._task.done():
                    self._task.result()
                    raise RuntimeError("the server stopped at start")
                try:
                    if (await http.get(f"{self.url}/healthz")).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("the server did not start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 30)
