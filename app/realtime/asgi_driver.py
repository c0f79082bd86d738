"""engine.io's ASGI driver, without the two reference cycles that kept every closed
connection in memory until a full garbage collection.

python-engineio turns each ASGI request into a WSGI-style environ and wraps each websocket
in a small class (``engineio.async_drivers.asgi``). Two details of it make a connection's
whole object graph (uvicorn's protocol, the transport, the socket, websockets' state,
engine.io's tasks: ~90 objects) cyclic garbage when it closes:

- ``translate_request`` defines its ``wsgi.input`` class inside the function, so every
  request creates a new class. A class is always in a reference cycle, and this one's
  methods close over the request's ``receive``, which holds the connection.
- the websocket's ``wait`` raises ``OSError`` when the client goes away; engine.io's read
  loop awaits it through ``asyncio.wait_for``, whose frame, the task and the exception's
  traceback then refer to one another.

Objects that only a collection can free reach the oldest generation on a long-lived
connection, so they wait for a full pass, and a full pass walks all of them: in the
benchmark's 200-stream runs the API's full passes collected 23-40 k objects and stopped
every stream for 18-41 ms. With this driver a closed connection leaves ~5 objects of
cyclic garbage under uvicorn's h11 parser and ~24 under httptools (its parser and
protocol refer to each other), against ~92 and ~111 before (measured with
``gc.DEBUG_SAVEALL`` over 100 connections).

``install`` puts these two in the server's driver table; everything else is engine.io's.
The environ is the one engine.io builds (a unit test compares the two), and a websocket
that closes in the middle of an upgrade from polling still raises ``OSError``, which the
upgrade path expects.
"""

from __future__ import annotations

import sys
from typing import Any

import socketio
from engineio.async_drivers import asgi as engineio_asgi

Receive = Any  # an ASGI receive callable
Send = Any  # an ASGI send callable


class RequestBody:
    """``wsgi.input``: the request's body, read from ASGI on the first ``read``."""

    __slots__ = ("_event", "_payload", "_receive")

    def __init__(self, event: dict[str, Any], receive: Receive) -> None:
        self._event = event
        self._payload: bytes | None = None
        self._receive = receive

    async def read(self, length: int | None = None) -> bytes:
        if self._payload is None and self._event["type"] == "http.request":
            self._payload = self._event.get("body") or b""
            while self._event.get("more_body"):
                self._event = await self._receive()
                wanted = length is None or len(self._payload) < length
                if self._event["type"] == "http.request" and wanted:
                    self._payload += self._event.get("body") or b""
        payload = self._payload or b""
        if length is None:
            self._payload = b""
            return payload
        self._payload = payload[length:]
        return payload[:length]


async def translate_request(scope: dict[str, Any], receive: Receive, send: Send) -> dict[str, Any]:
    """The environ engine.io reads a request from ({} for anything but a request)."""
    event = await receive()
    if event["type"] not in ("http.request", "websocket.connect"):
        return {}
    query = ""
    if scope.get("query_string"):
        try:
            query = scope["query_string"].decode("utf-8")
        except UnicodeDecodeError:
            query = ""
    path = scope["path"]
    environ: dict[str, Any] = {
        "wsgi.input": RequestBody(event, receive),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.async": True,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "SERVER_SOFTWARE": "asgi",
        "REQUEST_METHOD": scope.get("method", "GET"),
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "RAW_URI": f"{path}?{query}" if query else path,
        "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "0",
        "SERVER_NAME": "asgi",
        "SERVER_PORT": "0",
        "asgi.receive": receive,
        "asgi.send": send,
        "asgi.scope": scope,
    }
    for raw_name, raw_value in scope["headers"]:
        try:
            name, value = raw_name.upper().decode("utf-8"), raw_value.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a header that is not UTF-8 is left out
        if name in ("CONTENT-TYPE", "CONTENT-LENGTH"):
            environ[name.replace("-", "_")] = value
            continue
        key = "HTTP_" + name.replace("-", "_")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    environ["wsgi.url_scheme"] = environ.get("HTTP_X_FORWARDED_PROTO", "http")
    return environ


class WebSocket(engineio_asgi.WebSocket):  # type: ignore[misc]
    """engine.io's websocket wrapper, telling a client's departure by returning None."""

    async def wait(self) -> bytes | str | None:
        event = await self.asgi_receive()
        if event["type"] != "websocket.receive":
            socket = getattr(self.handler, "__self__", None)
            if socket is not None and socket.upgraded and not socket.upgrading:
                return None  # engine.io's read loop: "connection closed by client"
            raise OSError("the websocket closed")  # what the upgrade path waits for
        if event.get("bytes") is not None:
            data: bytes = event["bytes"]
            return data
        if event.get("text") is not None:
            text: str = event["text"]
            return text
        raise OSError("a websocket message with neither text nor bytes")


def install(sio: socketio.AsyncServer) -> None:
    """Use this module's request translation and websocket wrapper in ``sio``'s engine.io
    server (its own copy of the driver table; the module's table is left alone)."""
    eio = sio.eio
    eio._async = {**eio._async, "translate_request": translate_request, "websocket": WebSocket}
