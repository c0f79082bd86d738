"""The baseline: what a user writes instead of InsightHub, in about fifty lines.

A minimal FastAPI + python-socketio ASGI app under the same uvicorn as ``insighthub
serve``. On ``chat_message`` it iterates the same synthetic provider and emits one
``chat_chunk`` per token with ``sio.emit`` (the naive implementation: default JSON
encoder, no bus, no database, no coalescing), then ``chat_complete``. ``cancel_message``
cancels the streaming task, which closes the provider's generator. The socket's
``workspace_id`` names the synthetic model (``tokens-N-rate-R-stamp``), so the load
generator sends the same payloads to both servers.

Run: ``python -m benchmarks.baseline --port 8001 --token SECRET [--record FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import socketio
import uvicorn
from fastapi import FastAPI

from app.llm.base import ChatTurn
from app.llm.synthetic_provider import StreamRecorder, SyntheticProvider


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def create_baseline(token: str, record_path: Path | None = None) -> socketio.ASGIApp:
    """The bare app; ``token`` is the one auth token it accepts (a stand-in for a JWT)."""
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[])
    api = FastAPI()
    provider = SyntheticProvider(StreamRecorder(record_path))
    streams: dict[str, asyncio.Task[None]] = {}

    @api.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        if not isinstance(auth, dict) or auth.get("token") != token:
            raise socketio.exceptions.ConnectionRefusedError(
                "bad token", {"error_type": "unauthorized"}
            )
        return True

    async def stream(sid: str, session_id: str, message_id: str, model: str, text: str) -> None:
        seq = offset = 0
        parts: list[str] = []
        try:
            async for tok in provider.stream([ChatTurn("user", text)], model=model):
                if not tok.text:
                    continue
                await sio.emit(
                    "chat_chunk",
                    {
                        "session_id": session_id,
                        "message_id": message_id,
                        "attempt": 1,
                        "seq": seq,
                        "offset": offset,
                        "chunk": tok.text,
                        "timestamp": _now(),
                    },
                    to=sid,
                )
                parts.append(tok.text)
                seq += 1
                offset += len(tok.text)
            await sio.emit(
                "chat_complete",
                {
                    "session_id": session_id,
                    "message_id": message_id,
                    "attempt": 1,
                    "full_response": "".join(parts),
                    "finish_reason": "stop",
                    "usage": None,
                    "sources": [],
                    "timestamp": _now(),
                },
                to=sid,
            )
        except asyncio.CancelledError:
            await sio.emit(
                "chat_cancelled",
                {
                    "session_id": session_id,
                    "message_id": message_id,
                    "attempt": 1,
                    "partial_response": "".join(parts),
                    "timestamp": _now(),
                },
                to=sid,
            )
        finally:
            streams.pop(message_id, None)

    async def chat_message(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session_id = data.get("session_id") or str(uuid.uuid4())
        message_id = str(uuid.uuid4())
        streams[message_id] = asyncio.create_task(
            stream(sid, session_id, message_id, str(data["workspace_id"]), str(data["message"]))
        )
        return {
            "ok": True,
            "session_id": session_id,
            "user_message_id": str(uuid.uuid4()),
            "message_id": message_id,
        }

    async def cancel_message(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        task = streams.get(str(data.get("message_id")))
        if task is None:
            return {"ok": False, "error_type": "not_found", "message": "nothing in progress"}
        task.cancel()
        return {"ok": True, "message_id": data["message_id"], "status": "cancelled"}

    async def resume(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"ok": False, "error_type": "not_found", "message": "the baseline cannot resume"}

    # Registered by call, not with ``@sio.event``: python-socketio ships no type hints, so
    # its decorator would erase the handlers' signatures under mypy --strict.
    for handler in (connect, chat_message, cancel_message, resume):
        sio.on(handler.__name__, handler)

    return socketio.ASGIApp(sio, other_asgi_app=api, socketio_path="socket.io")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--record", default=None)
    args = parser.parse_args()
    app = create_baseline(args.token, Path(args.record) if args.record else None)
    # The same uvicorn settings `insighthub serve` uses (app/cli.py), minus its extras.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ws_max_size=257 * 1024)


if __name__ == "__main__":
    main()
