"""Who may connect, and what every client event answers to a bad payload or a stranger."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import jwt
import pytest
import socketio

from tests.support.clients import Api, connect
from tests.support.server import LiveServer


async def refusal(url: str, auth: Any) -> dict[str, Any]:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", lambda data: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=5)
    assert errors, "no connect_error was received"
    return dict(errors[0])


def secret_of(server: LiveServer) -> str:
    assert server.settings.jwt_secret is not None
    return server.settings.jwt_secret.get_secret_value()


async def test_refused_connects_say_unauthorized(server: LiveServer, api: Api) -> None:
    user = await api.user()
    now = int(time.time())
    secret = secret_of(server)
    bad_tokens: list[Any] = [
        None,
        {},
        {"token": ""},
        {"token": 42},
        {"token": "not-a-jwt"},
        {"token": user.token[:-4] + ("abcd" if not user.token.endswith("abcd") else "wxyz")},
        {"token": jwt.encode({"sub": user.id, "iat": now, "exp": now + 60}, "wrong-secret")},
        {"token": jwt.encode({"sub": user.id, "iat": now - 120, "exp": now - 60}, secret)},
        {"token": jwt.encode({"sub": user.id, "iat": now}, secret)},  # no exp
        {
            "token": jwt.encode(
                {"sub": user.id, "iat": now, "exp": now + 60}, secret, algorithm="HS512"
            )
        },
        {"token": jwt.encode({"sub": str(uuid.uuid4()), "iat": now, "exp": now + 60}, secret)},
        {"token": jwt.encode({"sub": "nobody", "iat": now, "exp": now + 60}, secret)},
    ]
    unsigned = jwt.encode({"sub": user.id, "iat": now, "exp": now + 60}, None, algorithm="none")
    bad_tokens.append({"token": unsigned})
    for auth in bad_tokens:
        why = await refusal(server.url, auth)
        assert why["data"] == {"error_type": "unauthorized"}, auth
        assert why["message"]


async def test_a_token_that_expires_while_connected_is_disconnected(
    server: LiveServer, api: Api
) -> None:
    user = await api.user()
    short = server.ctx.tokens.issue(uuid.UUID(user.id), ttl_s=1)
    sock = await connect(server.url, short)
    await sock.wait_for(lambda: bool(sock.named("error")), timeout=5)
    assert sock.named("error")[0]["error_type"] == "unauthorized"
    await sock.wait_for(lambda: not sock.client.connected, timeout=5)


async def test_cross_site_origins_are_refused(server: LiveServer, api: Api) -> None:
    user = await api.user()
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            server.url,
            auth={"token": user.token},
            headers={"Origin": "https://evil.example"},
            transports=["websocket"],
            wait_timeout=5,
        )
    same = await connect(server.url, user.token, headers={"Origin": server.url})
    assert same.client.connected
    await same.disconnect()


BAD_PAYLOADS: dict[str, list[Any]] = {
    "chat_message": [
        None,
        "hello",
        42,
        [1, 2],
        {},
        {"workspace_id": "not-a-uuid", "message": "x"},
        {"workspace_id": "WS", "message": "   "},
        {"workspace_id": "WS", "message": ""},
        {"workspace_id": "WS", "message": 42},
        {"workspace_id": "WS", "message": "x" * 32_001},
        {"workspace_id": "WS", "message": "x", "rag_type": "graph"},
        {"workspace_id": "WS", "message": "x", "rag_type": "VECTOR"},
        {"workspace_id": "WS", "message": "x", "client_message_id": "c" * 65},
        {"workspace_id": "WS", "message": "x", "session_id": "nope"},
        {"workspace_id": "WS", "message": "x", "unexpected": 1},
        # PostgreSQL cannot store U+0000: refused before it reaches the database
        {"workspace_id": "WS", "message": "before\x00after"},
        {"workspace_id": "WS", "message": "x", "client_message_id": "c\x00"},
    ],
    "cancel_message": [None, [], {}, {"session_id": "x"}, {"session_id": "S", "message_id": 5}],
    "join_session": [None, "S", {}, {"session_id": 1}],
    "leave_session": [None, {}, {"session_id": []}],
    "join_workspace": [None, {}, {"workspace_id": "nope"}],
    "leave_workspace": [None, {"workspace_id": None}],
    "resume": [
        None,
        {},
        {"session_id": "S", "message_id": "M"},
        {"session_id": "S", "message_id": "M", "offset": -1},
        {"session_id": "S", "message_id": "M", "offset": "3"},
        {"session_id": "S", "message_id": "M", "offset": 0, "attempt": 0},
    ],
}


def _fill(payload: Any, ws: str, session: str, message: str) -> Any:
    if not isinstance(payload, dict):
        return payload
    swap = {"WS": ws, "S": session, "M": message}
    return {k: swap.get(v, v) if isinstance(v, str) else v for k, v in payload.items()}


async def test_every_bad_payload_is_a_validation_error_and_the_socket_stays_usable(
    server: LiveServer, api: Api
) -> None:
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-3-rate-0")
    sock = await connect(server.url, user.token)
    try:
        ok = await sock.call("chat_message", {"workspace_id": ws["id"], "message": "setup"})
        await sock.wait_final(ok["message_id"])
        for event, payloads in BAD_PAYLOADS.items():
            for payload in payloads:
                filled = _fill(payload, ws["id"], ok["session_id"], ok["message_id"])
                ack = await sock.call(event, filled)
                assert ack["ok"] is False, (event, payload)
                assert ack["error_type"] == "validation_error", (event, payload, ack)
                assert isinstance(ack["message"], str) and ack["message"]
        assert sock.client.connected
        again = await sock.call("chat_message", {"workspace_id": ws["id"], "message": "still here"})
        assert (await sock.wait_final(again["message_id"])).name == "chat_complete"
    finally:
        await sock.disconnect()


async def test_strangers_get_not_found_for_workspaces_sessions_and_messages(
    server: LiveServer, api: Api
) -> None:
    owner, stranger = await api.user(), await api.user()
    ws = await api.workspace(owner, llm_provider="synthetic", llm_model="tokens-200-rate-40")
    mine = await connect(server.url, owner.token)
    theirs = await connect(server.url, stranger.token)
    try:
        ack = await mine.call("chat_message", {"workspace_id": ws["id"], "message": "private"})
        sid, mid = ack["session_id"], ack["message_id"]
        attempts = [
            ("chat_message", {"workspace_id": ws["id"], "message": "let me in"}),
            ("chat_message", {"workspace_id": str(uuid.uuid4()), "message": "hi"}),
            ("chat_message", {"workspace_id": ws["id"], "session_id": sid, "message": "hi"}),
            ("join_session", {"session_id": sid}),
            ("join_session", {"session_id": str(uuid.uuid4())}),
            ("join_workspace", {"workspace_id": ws["id"]}),
            ("cancel_message", {"session_id": sid}),
            ("cancel_message", {"session_id": sid, "message_id": mid}),
            ("resume", {"session_id": sid, "message_id": mid, "offset": 0}),
        ]
        for event, payload in attempts:
            answer = await theirs.call(event, payload)
            assert answer["ok"] is False and answer["error_type"] == "not_found", (event, answer)
        await mine.wait_chunks(mid, 2)
        assert theirs.of_message(mid) == []
        for path in (
            f"/api/workspaces/{ws['id']}",
            f"/api/sessions/{sid}",
            f"/api/sessions/{sid}/messages",
        ):
            r = await api.http.get(path, headers=stranger.auth)
            assert r.status_code == 404 and r.json()["error_type"] == "not_found", path
        # Another user's session in one's own workspace is not one's own either.
        await mine.call("cancel_message", {"session_id": sid})
    finally:
        await mine.disconnect()
        await theirs.disconnect()


async def test_a_removed_member_stops_receiving_the_workspaces_events(
    server: LiveServer, api: Api
) -> None:
    owner, member = await api.user(), await api.user()
    ws = await api.workspace(owner)
    r = await api.http.post(
        f"/api/workspaces/{ws['id']}/members", json={"email": member.email}, headers=owner.auth
    )
    assert r.status_code == 201
    sock = await connect(server.url, member.token)
    try:
        assert (await sock.call("join_workspace", {"workspace_id": ws["id"]}))["ok"]
        files = {"file": ("a.txt", b"Alpha paragraph about owls.", "text/plain")}
        up = await api.http.post(
            f"/api/workspaces/{ws['id']}/documents", files=files, headers=owner.auth
        )
        doc = up.json()["id"]
        await sock.wait_for(
            lambda: any(
                d["status"] == "ready"
                for d in sock.named("document_status")
                if d["document_id"] == doc
            )
        )
        r = await api.http.delete(
            f"/api/workspaces/{ws['id']}/members/{member.id}", headers=owner.auth
        )
        assert r.status_code == 204
        await asyncio.sleep(0.2)
        seen = len(sock.named("document_status"))
        files = {"file": ("b.txt", b"Beta paragraph about bees.", "text/plain")}
        up = await api.http.post(
            f"/api/workspaces/{ws['id']}/documents", files=files, headers=owner.auth
        )
        for _ in range(100):
            got = (
                await api.http.get(f"/api/documents/{up.json()['id']}", headers=owner.auth)
            ).json()
            if got["status"] == "ready":
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        assert len(sock.named("document_status")) == seen
        rejoin = await sock.call("join_workspace", {"workspace_id": ws["id"]})
        assert rejoin["ok"] is False and rejoin["error_type"] == "not_found"
    finally:
        await sock.disconnect()


async def test_configured_origins_get_cors_headers_on_rest(tmp_path: Any) -> None:
    import httpx

    from tests.conftest import make_settings

    live = await LiveServer(make_settings(tmp_path, cors_origins="https://app.example")).start()
    try:
        async with httpx.AsyncClient(base_url=live.url) as http:
            pre = await http.options(
                "/api/workspaces",
                headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
            )
            assert pre.headers.get("access-control-allow-origin") == "https://app.example"
            other = await http.options(
                "/api/workspaces",
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
            )
            assert "access-control-allow-origin" not in other.headers
    finally:
        await live.stop()


async def test_tokens_never_appear_in_the_logs(
    server: LiveServer, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-3-rate-0")
    sock = await connect(server.url, user.token)
    try:
        ack = await sock.call("chat_message", {"workspace_id": ws["id"], "message": "log check"})
        await sock.wait_final(ack["message_id"])
    finally:
        await sock.disconnect()
    await refusal(server.url, {"token": user.token + "x"})
    assert caplog.records, "nothing was logged: the check would prove nothing"
    signature = user.token.rsplit(".", 1)[-1]
    for record in caplog.records:
        text = record.getMessage() + str(record.args or "")
        assert signature not in text, record.name
