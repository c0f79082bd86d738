"""The replacement ASGI driver builds the environ engine.io builds, reads bodies the same
way, and tells a client's departure from a broken upgrade."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from engineio.async_drivers import asgi as engineio_asgi

from app.realtime import asgi_driver

SCOPES: list[dict[str, Any]] = [
    {"type": "http", "method": "GET", "path": "/socket.io/", "headers": []},
    {
        "type": "http",
        "method": "POST",
        "path": "/socket.io/",
        "query_string": b"EIO=4&transport=polling&sid=abc",
        "headers": [
            (b"content-type", b"text/plain;charset=UTF-8"),
            (b"content-length", b"11"),
            (b"x-forwarded-proto", b"https"),
            (b"accept", b"text/html"),
            (b"accept", b"*/*"),
            (b"x-bad", b"\xff\xfe"),
        ],
    },
    {
        "type": "websocket",
        "path": "/socket.io/",
        "query_string": b"\xff",
        "headers": [(b"origin", b"http://localhost:8000")],
    },
]


def receiver(events: list[dict[str, Any]]) -> Callable[[], Awaitable[dict[str, Any]]]:
    pending = list(events)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    return receive


def first_event(scope: dict[str, Any]) -> dict[str, Any]:
    if scope["type"] == "websocket":
        return {"type": "websocket.connect"}
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(_message: dict[str, Any]) -> None:
    return None


@pytest.mark.parametrize("scope", SCOPES, ids=["get", "post-with-headers", "websocket"])
async def test_the_environ_is_the_one_engineio_builds(scope: dict[str, Any]) -> None:
    theirs = await engineio_asgi.translate_request(scope, receiver([first_event(scope)]), send)
    ours = await asgi_driver.translate_request(scope, receiver([first_event(scope)]), send)
    assert isinstance(ours.pop("wsgi.input"), asgi_driver.RequestBody)
    theirs.pop("wsgi.input")
    for key in ("asgi.receive", "asgi.send"):
        assert callable(ours.pop(key)) and callable(theirs.pop(key))
    assert ours == theirs


async def test_an_event_that_is_not_a_request_gives_no_environ() -> None:
    scope = SCOPES[0]
    lifespan = [{"type": "lifespan.startup"}]
    assert await asgi_driver.translate_request(scope, receiver(lifespan), send) == {}
    assert await engineio_asgi.translate_request(scope, receiver(lifespan), send) == {}


@pytest.mark.parametrize("lengths", [[None], [4, None], [3, 3, 100, None], [0, None]])
async def test_a_body_in_several_events_reads_as_engineio_reads_it(
    lengths: list[int | None],
) -> None:
    events = [
        {"type": "http.request", "body": b"hello ", "more_body": True},
        {"type": "http.request", "body": b"wor", "more_body": True},
        {"type": "http.request", "body": b"ld", "more_body": False},
    ]
    scope = SCOPES[1]
    ours = await asgi_driver.translate_request(scope, receiver(events), send)
    theirs = await engineio_asgi.translate_request(scope, receiver(events), send)
    for length in lengths:
        assert await ours["wsgi.input"].read(length) == await theirs["wsgi.input"].read(length)


def websocket(events: list[dict[str, Any]], *, upgraded: bool, upgrading: bool) -> Any:
    socket = SimpleNamespace(upgraded=upgraded, upgrading=upgrading)
    handler = SimpleNamespace(__self__=socket)
    ws = asgi_driver.WebSocket(handler, server=None)
    ws.asgi_receive = receiver(events)
    return ws


async def test_messages_pass_through_and_a_departure_after_the_upgrade_is_none() -> None:
    ws = websocket(
        [
            {"type": "websocket.receive", "text": "4hello"},
            {"type": "websocket.receive", "bytes": b"\x04raw"},
            {"type": "websocket.disconnect", "code": 1000},
        ],
        upgraded=True,
        upgrading=False,
    )
    assert await ws.wait() == "4hello"
    assert await ws.wait() == b"\x04raw"
    assert await ws.wait() is None


async def test_a_departure_in_the_middle_of_an_upgrade_still_raises() -> None:
    for upgraded, upgrading in ((False, True), (False, False)):
        ws = websocket([{"type": "websocket.disconnect"}], upgraded=upgraded, upgrading=upgrading)
        with pytest.raises(OSError):
            await ws.wait()


async def test_a_message_with_neither_text_nor_bytes_raises() -> None:
    ws = websocket([{"type": "websocket.receive"}], upgraded=True, upgrading=False)
    with pytest.raises(OSError):
        await ws.wait()
