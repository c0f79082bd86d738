"""Clients the tests drive the server with, as a user would: REST with httpx, sockets with
python-socketio's ``AsyncClient``."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio

PASSWORD = "s3cret-Passw0rd!"


@dataclass
class Event:
    name: str
    data: Any


@dataclass
class User:
    email: str
    token: str
    id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def user(self) -> User:
        email = f"u-{uuid.uuid4().hex[:10]}@example.com"
        r = await self.http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = await self.http.post("/api/auth/token", data={"username": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        me = (
            await self.http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        ).json()
        return User(email, token, me["id"])

    async def workspace(self, user: User, *, ready: bool = True, **fields: Any) -> dict[str, Any]:
        body = {"name": fields.pop("name", "test workspace"), **fields}
        r = await self.http.post("/api/workspaces", json=body, headers=user.auth)
        assert r.status_code == 201, r.text
        workspace: dict[str, Any] = r.json()
        if ready:
            for _ in range(200):
                current = (
                    await self.http.get(f"/api/workspaces/{workspace['id']}", headers=user.auth)
                ).json()
                if current["status"] == "ready":
                    return dict(current)
                await asyncio.sleep(0.02)
            raise AssertionError("workspace never became ready")
        return workspace

    async def messages(self, user: User, session_id: str) -> list[dict[str, Any]]:
        r = await self.http.get(f"/api/sessions/{session_id}/messages", headers=user.auth)
        assert r.status_code == 200, r.text
        return list(r.json())

    async def wait_message(
        self,
        user: User,
        session_id: str,
        message_id: str,
        statuses: tuple[str, ...],
        timeout: float = 20,
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for m in await self.messages(user, session_id):
                if m["id"] == message_id and m["status"] in statuses:
                    return m
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"message {message_id} never reached {statuses}")
            await asyncio.sleep(0.05)


@dataclass
class Socket:
    """A connected socket that keeps every event it receives, in order."""

    client: socketio.AsyncClient
    events: list[Event] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def call(self, event: str, data: Any = None, timeout: float = 20) -> Any:
        return await self.client.call(event, data, timeout=timeout)

    def named(self, name: str, message_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e.data
            for e in self.events
            if e.name == name and (message_id is None or e.data.get("message_id") == message_id)
        ]

    def of_message(self, message_id: str) -> list[Event]:
        return [
            e
            for e in self.events
            if isinstance(e.data, dict) and e.data.get("message_id") == message_id
        ]

    async def wait_for(self, predicate: Any, timeout: float = 20) -> None:
        async def _wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_wait(), timeout)

    async def wait_final(self, message_id: str, timeout: float = 20) -> Event:
        finals = ("chat_complete", "chat_cancelled", "chat_error")

        def done() -> bool:
            return any(e.name in finals for e in self.of_message(message_id))

        await self.wait_for(done, timeout)
        return next(e for e in self.of_message(message_id) if e.name in finals)

    async def wait_chunks(self, message_id: str, count: int, timeout: float = 20) -> None:
        await self.wait_for(lambda: len(self.named("chat_chunk", message_id)) >= count, timeout)

    async def disconnect(self) -> None:
        await self.client.disconnect()


RECORDED = (
    "connected",
    "chat_chunk",
    "chat_complete",
    "chat_cancelled",
    "chat_error",
    "error",
    "document_status",
    "workspace_status",
)


async def connect(base_url: str, token: str | None, **kwargs: Any) -> Socket:
    client = socketio.AsyncClient(reconnection=False)
    sock = Socket(client)
    for name in RECORDED:

        def handler(data: Any = None, _name: str = name) -> None:
            sock.events.append(Event(_name, data))
            sock.changed.set()

        client.on(name, handler)

    def on_disconnect(*_args: Any) -> None:
        sock.events.append(Event("disconnect", None))
        sock.changed.set()

    client.on("disconnect", on_disconnect)
    await client.connect(
        base_url,
        auth={"token": token} if token is not None else None,
        transports=["websocket"],
        wait_timeout=10,
        **kwargs,
    )
    return sock


def text_of(chunks: list[dict[str, Any]]) -> str:
    """Apply PROTOCOL.md's chunk rules, as a client must."""
    text = ""
    for c in chunks:
        if c["offset"] + len(c["chunk"]) <= len(text):
            continue
        assert c["offset"] <= len(text), f"gap: offset {c['offset']} after {len(text)} chars"
        text += c["chunk"][len(text) - c["offset"] :]
    return text


def assert_caught_up(chunks: list[dict[str, Any]], resumed: dict[str, Any], full: str) -> None:
    """A socket that joined a session and resumed from offset 0 holds the whole answer.

    Where the answer had text when resume read it (``resumed["length"]``), one catch-up chunk
    (seq -1) carries that text and the live chunks after it the rest; live chunks published
    between the join and the read may come before it. Where it had none yet, there is no
    catch-up chunk and every chunk arrives live, from seq 0.
    """
    catch_up = [i for i, c in enumerate(chunks) if c["seq"] == -1]
    if resumed["length"]:
        assert len(catch_up) == 1, chunks
        assert text_of(chunks[catch_up[0] :]) == full
    else:
        assert not catch_up and chunks and chunks[0]["seq"] == 0, chunks
        assert text_of(chunks) == full
