"""The REST routes of PROTOCOL.md: answers, error shapes, and who may see what."""

from __future__ import annotations

import uuid

from tests.support.clients import PASSWORD, Api
from tests.support.server import LiveServer


async def test_register_token_me_and_their_failures(api: Api) -> None:
    email = f"Reg-{uuid.uuid4().hex[:8]}@Example.com"
    r = await api.http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"id", "email", "created_at"}
    assert body["email"] == email.lower() and body["created_at"].endswith("Z")
    dup = await api.http.post(
        "/api/auth/register", json={"email": email.lower(), "password": PASSWORD}
    )
    assert dup.status_code == 409 and dup.json()["error_type"] == "conflict"
    for bad in (
        {"email": "nope", "password": PASSWORD},
        {"email": email},
        {"email": "a@b.co", "password": "short"},
    ):
        r = await api.http.post("/api/auth/register", json=bad)
        assert r.status_code == 422 and r.json()["error_type"] == "validation_error"
        assert isinstance(r.json()["detail"], list)
    tok = await api.http.post("/api/auth/token", data={"username": email, "password": PASSWORD})
    assert tok.status_code == 200
    assert tok.json()["token_type"] == "bearer" and tok.json()["expires_in"] > 0
    wrong = await api.http.post(
        "/api/auth/token", data={"username": email, "password": "wrong-one"}
    )
    assert wrong.status_code == 401 and wrong.json()["error_type"] == "unauthorized"
    nobody = await api.http.post(
        "/api/auth/token", data={"username": "x@example.com", "password": "whatever1"}
    )
    assert nobody.status_code == 401
    me = await api.http.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {tok.json()['access_token']}"}
    )
    assert me.status_code == 200 and me.json()["id"] == body["id"]
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"}):
        r = await api.http.get("/api/auth/me", headers=headers)
        assert r.status_code == 401 and r.json()["error_type"] == "unauthorized"


async def test_every_api_route_needs_a_token(api: Api) -> None:
    some = uuid.uuid4()
    routes = [
        ("GET", "/api/workspaces"),
        ("POST", "/api/workspaces"),
        ("GET", f"/api/workspaces/{some}"),
        ("GET", f"/api/workspaces/{some}/members"),
        ("GET", f"/api/workspaces/{some}/sessions"),
        ("GET", f"/api/sessions/{some}"),
        ("GET", f"/api/sessions/{some}/messages"),
        ("POST", f"/api/sessions/{some}/messages"),
        ("GET", f"/api/workspaces/{some}/documents"),
        ("GET", f"/api/documents/{some}"),
        ("GET", "/api/providers"),
    ]
    for method, path in routes:
        r = await api.http.request(method, path, json={})
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.json()["error_type"] == "unauthorized"


async def test_workspaces_crud_defaults_and_owner_rules(server: LiveServer, api: Api) -> None:
    owner, member, stranger = await api.user(), await api.user(), await api.user()
    ws = await api.workspace(owner, name="Research", description="papers")
    assert ws["llm_provider"] == "local" and ws["llm_model"] == "extractive"
    assert ws["status"] == "ready"
    r = await api.http.post(
        "/api/workspaces", json={"name": "x", "llm_provider": "openai"}, headers=owner.auth
    )
    assert r.status_code == 422 and r.json()["error_type"] == "validation_error"
    r = await api.http.post("/api/workspaces", json={"name": ""}, headers=owner.auth)
    assert r.status_code == 422
    listed = (await api.http.get("/api/workspaces", headers=owner.auth)).json()
    assert ws["id"] in [w["id"] for w in listed]
    assert (await api.http.get("/api/workspaces", headers=stranger.auth)).json() == []

    r = await api.http.post(
        f"/api/workspaces/{ws['id']}/members",
        json={"email": member.email, "role": "member"},
        headers=owner.auth,
    )
    assert r.status_code == 201 and r.json() == {
        "user_id": member.id,
        "email": member.email,
        "role": "member",
    }
    r = await api.http.post(
        f"/api/workspaces/{ws['id']}/members",
        json={"email": "ghost@example.com"},
        headers=owner.auth,
    )
    assert r.status_code == 404
    members = (
        await api.http.get(f"/api/workspaces/{ws['id']}/members", headers=member.auth)
    ).json()
    assert {m["role"] for m in members} == {"owner", "member"}
    # A member sees the workspace but may not change or delete it.
    assert (
        await api.http.get(f"/api/workspaces/{ws['id']}", headers=member.auth)
    ).status_code == 200
    assert (
        await api.http.patch(f"/api/workspaces/{ws['id']}", json={"name": "m"}, headers=member.auth)
    ).status_code == 404
    assert (
        await api.http.delete(f"/api/workspaces/{ws['id']}", headers=member.auth)
    ).status_code == 404
    # A stranger learns nothing.
    for method in ("GET", "PATCH", "DELETE"):
        r = await api.http.request(
            method, f"/api/workspaces/{ws['id']}", json={}, headers=stranger.auth
        )
        assert r.status_code == 404, method
    r = await api.http.patch(
        f"/api/workspaces/{ws['id']}",
        json={"name": "Renamed", "llm_provider": "synthetic"},
        headers=owner.auth,
    )
    assert r.status_code == 200
    assert r.json()["name"] == "Renamed" and r.json()["llm_model"] == "tokens-40-rate-40"
    bad = await api.http.patch(
        f"/api/workspaces/{ws['id']}", json={"llm_provider": "anthropic"}, headers=owner.auth
    )
    assert bad.status_code == 422
    assert (await api.http.get(f"/api/workspaces/{ws['id']}", headers=owner.auth)).json()[
        "llm_provider"
    ] == "synthetic"
    # A member may leave; the owner may not be removed.
    r = await api.http.delete(f"/api/workspaces/{ws['id']}/members/{owner.id}", headers=owner.auth)
    assert r.status_code == 409
    r = await api.http.delete(
        f"/api/workspaces/{ws['id']}/members/{member.id}", headers=member.auth
    )
    assert r.status_code == 204
    assert (
        await api.http.get(f"/api/workspaces/{ws['id']}", headers=member.auth)
    ).status_code == 404
    assert (
        await api.http.delete(f"/api/workspaces/{ws['id']}", headers=owner.auth)
    ).status_code == 204
    assert (
        await api.http.get(f"/api/workspaces/{ws['id']}", headers=owner.auth)
    ).status_code == 404


async def test_sessions_are_the_callers_newest_first_with_paging(api: Api) -> None:
    user, other = await api.user(), await api.user()
    ws = await api.workspace(user)
    made = []
    for i in range(5):
        r = await api.http.post(
            f"/api/workspaces/{ws['id']}/sessions", json={"title": f"s{i}"}, headers=user.auth
        )
        assert r.status_code == 201 and r.json()["workspace_id"] == ws["id"]
        made.append(r.json())
    listed = (await api.http.get(f"/api/workspaces/{ws['id']}/sessions", headers=user.auth)).json()
    assert [s["title"] for s in listed] == ["s4", "s3", "s2", "s1", "s0"]
    page = (
        await api.http.get(
            f"/api/workspaces/{ws['id']}/sessions",
            params={"limit": 2, "before": made[3]["id"]},
            headers=user.auth,
        )
    ).json()
    assert [s["title"] for s in page] == ["s2", "s1"]
    for params in ({"limit": 0}, {"limit": 501}, {"before": "nope"}, {"before": str(uuid.uuid4())}):
        r = await api.http.get(
            f"/api/workspaces/{ws['id']}/sessions", params=params, headers=user.auth
        )
        assert r.status_code == 422, params
    r = await api.http.get(f"/api/sessions/{made[0]['id']}", headers=other.auth)
    assert r.status_code == 404
    assert (
        await api.http.delete(f"/api/sessions/{made[0]['id']}", headers=other.auth)
    ).status_code == 404
    assert (
        await api.http.delete(f"/api/sessions/{made[0]['id']}", headers=user.auth)
    ).status_code == 204
    assert (
        await api.http.get(f"/api/sessions/{made[0]['id']}", headers=user.auth)
    ).status_code == 404


async def test_providers_health_readiness_metrics_and_docs(api: Api) -> None:
    user = await api.user()
    providers = (await api.http.get("/api/providers", headers=user.auth)).json()
    names = {p["name"] for p in providers}
    assert {"local", "synthetic"} <= names
    assert all(p["configured"] is True and p["default_model"] for p in providers)
    assert (await api.http.get("/healthz")).status_code == 200
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "up"
    metrics = await api.http.get("/metrics")
    assert metrics.status_code == 200 and "insighthub_sockets_connected" in metrics.text
    spec = (await api.http.get("/openapi.json")).json()
    assert "/api/sessions/{session_id}/messages" in spec["paths"]
    post = spec["paths"]["/api/sessions/{session_id}/messages"]["post"]
    assert "text/event-stream" in post["responses"]["200"]["content"]
    assert "requestBody" in post
    assert (await api.http.get("/docs")).status_code == 200
    unknown = await api.http.get("/api/nothing-here")
    assert unknown.status_code == 404 and unknown.json()["error_type"] == "not_found"


async def test_a_password_is_taken_exactly_as_typed(api: Api) -> None:
    email = f"pad-{uuid.uuid4().hex[:8]}@example.com"
    padded = "  spaced out password  "
    assert (
        await api.http.post("/api/auth/register", json={"email": email, "password": padded})
    ).status_code == 201
    ok = await api.http.post("/api/auth/token", data={"username": email, "password": padded})
    assert ok.status_code == 200
    trimmed = await api.http.post(
        "/api/auth/token", data={"username": email, "password": padded.strip()}
    )
    assert trimmed.status_code == 401


async def test_a_workspace_keeps_its_name_when_a_patch_sends_null(api: Api) -> None:
    user = await api.user()
    ws = await api.workspace(user, name="Keep me")
    for body in ({"name": None}, {"name": ""}, {"name": "x" * 201}, {"name": "a\x00b"}):
        r = await api.http.patch(f"/api/workspaces/{ws['id']}", json=body, headers=user.auth)
        assert r.status_code == 422 and r.json()["error_type"] == "validation_error", body
    assert (await api.http.get(f"/api/workspaces/{ws['id']}", headers=user.auth)).json()[
        "name"
    ] == "Keep me"


async def test_an_unknown_synthetic_error_type_is_a_bad_request(
    server: LiveServer, api: Api
) -> None:
    from tests.support.clients import connect

    user = await api.user()
    ws = await api.workspace(
        user, llm_provider="synthetic", llm_model="tokens-5-rate-0-fail-1-bogus"
    )
    sock = await connect(server.url, user.token)
    try:
        ack = await sock.call("chat_message", {"workspace_id": ws["id"], "message": "x"})
        final = await sock.wait_final(ack["message_id"])
        assert final.name == "chat_error" and final.data["error_type"] == "llm_bad_request"
    finally:
        await sock.disconnect()
