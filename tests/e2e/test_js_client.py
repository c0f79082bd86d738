"""The protocol works for the JavaScript socket.io-client the browser app uses, run by Node."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.support.clients import Api
from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
SCRIPT = Path(__file__).parent / "js" / "socketio_client.mjs"


async def test_node_socketio_client_streams_cancels_and_is_refused(
    server: LiveServer, api: Api
) -> None:
    if shutil.which("node") is None or not (WEB / "node_modules" / "socket.io-client").is_dir():
        pytest.fail(
            "node and web/node_modules/socket.io-client are required (scripts/test installs them)"
        )
    user = await api.user()
    streaming = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-40-rate-400")
    slow = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-400-rate-40")
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        str(WEB),
        server.url,
        user.token,
        streaming["id"],
        slow["id"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    seen = json.loads(out.decode().strip().splitlines()[-1])
    assert "error" not in seen and not seen.get("gap"), seen
    assert seen["refusal"]["data"] == {"error_type": "unauthorized"}
    stream = seen["stream"]
    assert stream["ack"]["ok"] is True and stream["final"] == "chat_complete"
    assert stream["text"] == stream["full"] and len(stream["full"].split()) == 40
    cancel = seen["cancel"]
    assert cancel["ack"]["ok"] is True and cancel["ack"]["status"] == "cancelled"
    assert cancel["final"] == "chat_cancelled"
    assert cancel["partial"] == cancel["text"] and 0 < len(cancel["partial"].split()) < 400
    stored = await api.messages(user, stream["ack"]["session_id"])
    assert stored[-1]["content"] == stream["full"]
