"""Documents, workspace provisioning and retrieval against a live server, on each database.

Uploads go over real HTTP multipart, events come to real Socket.IO clients, answers are
the offline ``local`` provider's (extractive, so the fact it quotes can be checked), and
what deletion leaves behind is checked in the database itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, or_, select

from app.db.models import (
    ChatSession,
    Document,
    DocumentChunk,
    DocumentContent,
    Message,
)
from app.documents.worker import DocumentWorker
from app.workspaces.provisioning import WorkspaceWorker
from tests.conftest import make_settings
from tests.support.clients import Api, User, connect
from tests.support.documents import (
    CORRUPT_PDF,
    DOCUMENT_FIELDS,
    HTML,
    MARKDOWN,
    PDF,
    PLAIN,
    PNG,
    SAMPLES,
    SOURCE_FIELDS,
    TIMESTAMP,
    ask,
    barrier,
    cited_documents,
    document_events,
    make_zip,
    upload,
    upload_ready,
    wait_document,
    wait_document_event,
)
from tests.support.server import LiveServer


# Registering costs two Argon2 hashes; each test makes its own workspaces, so the users
# can be shared by the tests of one server.
@pytest_asyncio.fixture(scope="module")
async def owner(api: Api) -> User:
    return await api.user()


@pytest_asyncio.fixture(scope="module")
async def stranger(api: Api) -> User:
    return await api.user()


@pytest_asyncio.fixture(scope="module")
async def member(api: Api) -> User:
    return await api.user()


async def _count(server: LiveServer, model: Any, *where: Any) -> int:
    async with server.ctx.db() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _chunk_texts(server: LiveServer, document_id: str) -> list[str]:
    async with server.ctx.db() as s:
        rows = await s.execute(
            select(DocumentChunk.ordinal, DocumentChunk.text, DocumentChunk.workspace_id)
            .where(DocumentChunk.document_id == uuid.UUID(document_id))
            .order_by(DocumentChunk.ordinal)
        )
        chunks = rows.all()
    assert [c[0] for c in chunks] == list(range(len(chunks)))
    return [c[1] for c in chunks]


async def _list(api: Api, user: Any, workspace_id: str) -> list[dict[str, Any]]:
    r = await api.http.get(f"/api/workspaces/{workspace_id}/documents", headers=user.auth)
    assert r.status_code == 200, r.text
    return list(r.json())


def _assert_not_found(r: Any) -> None:
    assert r.status_code == 404, r.text
    assert r.json()["error_type"] == "not_found"


# -- uploads that work ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SAMPLES))
async def test_an_upload_is_accepted_indexed_and_reported_only_to_the_sockets_in_its_workspace(
    server: LiveServer, api: Api, owner: User, stranger: User, kind: str
) -> None:
    sample = SAMPLES[kind]
    ws = await api.workspace(owner)
    strangers_ws = await api.workspace(stranger)
    watcher = await connect(server.url, owner.token)
    same_user_not_joined = await connect(server.url, owner.token)
    outsider = await connect(server.url, stranger.token)
    try:
        joined = await watcher.call("join_workspace", {"workspace_id": ws["id"]})
        assert joined["ok"] is True and joined["status"] == "ready"
        refused = await outsider.call("join_workspace", {"workspace_id": ws["id"]})
        assert refused["ok"] is False and refused["error_type"] == "not_found"
        assert (await outsider.call("join_workspace", {"workspace_id": strangers_ws["id"]}))["ok"]

        # The declared type is what many clients send for everything: the content decides.
        r = await upload(api, owner, ws["id"], sample.filename, sample.data)
        assert r.status_code == 202, r.text
        doc = r.json()
        assert set(doc) == DOCUMENT_FIELDS
        assert uuid.UUID(doc["id"]) and doc["workspace_id"] == ws["id"]
        assert doc["filename"] == sample.filename
        assert doc["content_type"] == sample.content_type
        assert doc["size_bytes"] == len(sample.data)
        assert doc["sha256"] == hashlib.sha256(sample.data).hexdigest()
        assert doc["status"] == "queued" and doc["progress"] == 0 and doc["error"] is None

        events = await wait_document_event(watcher, doc["id"])
        statuses = [e["status"] for e in events]
        progress = [e["progress"] for e in events]
        assert statuses[-1] == "ready", events
        assert statuses[:-1] and set(statuses[:-1]) == {"processing"}
        assert progress == sorted(progress) and progress[0] >= 0 and progress[-1] == 1.0
        for event in events:
            assert event["workspace_id"] == ws["id"]
            assert isinstance(event["message"], str) and event["message"]
            assert TIMESTAMP.match(event["timestamp"]), event["timestamp"]

        # Whatever was queued for the other sockets has arrived once each answers a call.
        await barrier(watcher, ws["id"])
        await barrier(same_user_not_joined, ws["id"])
        await barrier(outsider, strangers_ws["id"])
        assert document_events(watcher, doc["id"]) == events  # nothing after `ready`
        assert same_user_not_joined.named("document_status") == []
        assert outsider.named("document_status") == []

        stored = await wait_document(api, owner, doc["id"], ("ready",), timeout=5)
        assert stored["progress"] == 1.0 and stored["error"] is None
        assert {k: stored[k] for k in ("content_type", "sha256", "size_bytes", "filename")} == {
            k: doc[k] for k in ("content_type", "sha256", "size_bytes", "filename")
        }
        assert [d["id"] for d in await _list(api, owner, ws["id"])] == [doc["id"]]

        # What was indexed is the document's text, not its markup or its bytes.
        indexed = " ".join(await _chunk_texts(server, doc["id"]))
        assert sample.fact in " ".join(indexed.split())
        for markup in sample.markup:
            assert markup not in indexed
    finally:
        for sock in (watcher, same_user_not_joined, outsider):
            await sock.disconnect()


async def test_the_content_decides_the_type_not_the_file_name_or_the_declared_type(
    server: LiveServer, api: Api, owner: User
) -> None:
    ws = await api.workspace(owner)
    pdf = await upload(api, owner, ws["id"], "scan.txt", PDF.data, declared="text/plain")
    html = await upload(api, owner, ws["id"], "page.txt", HTML.data, declared="text/plain")
    assert pdf.status_code == html.status_code == 202
    assert pdf.json()["content_type"] == "application/pdf"
    assert html.json()["content_type"] == "text/html"
    await wait_document(api, owner, pdf.json()["id"], ("ready",))
    await wait_document(api, owner, html.json()["id"], ("ready",))
    assert PDF.fact in " ".join(await _chunk_texts(server, pdf.json()["id"]))
    assert "<p>" not in " ".join(await _chunk_texts(server, html.json()["id"]))


async def test_the_same_content_again_is_the_same_document_in_that_workspace_and_new_elsewhere(
    server: LiveServer, api: Api, owner: User
) -> None:
    ws_a, ws_b = await api.workspace(owner, name="a"), await api.workspace(owner, name="b")
    first = await upload(api, owner, ws_a["id"], PLAIN.filename, PLAIN.data)
    assert first.status_code == 202
    doc = first.json()

    # Under another name and declared type it is still the same content.
    again = await upload(api, owner, ws_a["id"], "copy.txt", PLAIN.data, declared="text/plain")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == doc["id"]
    assert again.json()["filename"] == PLAIN.filename and again.json()["workspace_id"] == ws_a["id"]

    await wait_document(api, owner, doc["id"], ("ready",))
    after_ready = await upload(api, owner, ws_a["id"], PLAIN.filename, PLAIN.data)
    assert after_ready.status_code == 200
    assert after_ready.json()["id"] == doc["id"] and after_ready.json()["status"] == "ready"

    elsewhere = await upload(api, owner, ws_b["id"], PLAIN.filename, PLAIN.data)
    assert elsewhere.status_code == 202, elsewhere.text
    assert elsewhere.json()["id"] != doc["id"] and elsewhere.json()["workspace_id"] == ws_b["id"]
    assert elsewhere.json()["status"] == "queued"

    one_byte_more = await upload(api, owner, ws_a["id"], PLAIN.filename, PLAIN.data + b"\n")
    assert one_byte_more.status_code == 202 and one_byte_more.json()["id"] != doc["id"]

    await wait_document(api, owner, elsewhere.json()["id"], ("ready",))
    assert {d["id"] for d in await _list(api, owner, ws_a["id"])} == {
        doc["id"],
        one_byte_more.json()["id"],
    }
    assert [d["id"] for d in await _list(api, owner, ws_b["id"])] == [elsewhere.json()["id"]]
    ws_ids = [uuid.UUID(ws_a["id"]), uuid.UUID(ws_b["id"])]
    assert await _count(server, Document, Document.workspace_id.in_(ws_ids)) == 3


# -- uploads that fail ---------------------------------------------------------------------


async def test_a_corrupt_pdf_and_an_empty_file_end_failed_with_the_reason_and_lose_nothing(
    server: LiveServer, api: Api, owner: User
) -> None:
    ws = await api.workspace(owner)
    kept = await upload_ready(api, owner, ws["id"], PLAIN)
    watcher = await connect(server.url, owner.token)
    try:
        assert (await watcher.call("join_workspace", {"workspace_id": ws["id"]}))["ok"]
        corrupt = await upload(api, owner, ws["id"], "broken.pdf", CORRUPT_PDF)
        empty = await upload(api, owner, ws["id"], "empty.txt", b"")
        assert corrupt.status_code == empty.status_code == 202
        assert corrupt.json()["content_type"] == "application/pdf"
        assert empty.json()["size_bytes"] == 0
        assert empty.json()["sha256"] == hashlib.sha256(b"").hexdigest()

        reasons = {"broken.pdf": "PDF", "empty.txt": "empty"}
        for r in (corrupt, empty):
            doc = r.json()
            events = await wait_document_event(watcher, doc["id"])
            assert events[-1]["status"] == "failed", events
            assert [e["status"] for e in events].count("failed") == 1
            assert "ready" not in [e["status"] for e in events]
            failed = await wait_document(api, owner, doc["id"], ("failed",), timeout=5)
            reason = reasons[doc["filename"]]
            assert isinstance(failed["error"], str) and reason in failed["error"], failed
            assert reason in events[-1]["message"]
            assert await _chunk_texts(server, doc["id"]) == []

        listed = {d["id"]: d for d in await _list(api, owner, ws["id"])}
        assert set(listed) == {kept["id"], corrupt.json()["id"], empty.json()["id"]}
        assert listed[kept["id"]]["status"] == "ready" and listed[kept["id"]]["error"] is None
        assert PLAIN.fact in " ".join(await _chunk_texts(server, kept["id"]))
    finally:
        await watcher.disconnect()


async def test_a_document_whose_processing_keeps_failing_ends_failed_with_a_reason(
    server: LiveServer, api: Api, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fault of the server rather than of the document: every delivery of its job raises,
    # the bus gives up after its delivery limit, and the document must not stay
    # "processing" for ever, nor end "failed" without saying why.
    worker = next(w for w in server.ctx.workers if isinstance(w, DocumentWorker))
    parse = worker.pool.parse
    poison = b"a text that this server fails to parse, every time\n"
    attempts = 0

    async def broken_host(data: bytes, content_type: str) -> str:
        nonlocal attempts
        if data == poison:
            attempts += 1
            raise RuntimeError("the parser host is out of memory")
        return await parse(data, content_type)

    monkeypatch.setattr(worker.pool, "parse", broken_host)
    ws = await api.workspace(owner)
    watcher = await connect(server.url, owner.token)
    try:
        assert (await watcher.call("join_workspace", {"workspace_id": ws["id"]}))["ok"]
        r = await upload(api, owner, ws["id"], "poison.txt", poison)
        assert r.status_code == 202
        events = await wait_document_event(watcher, r.json()["id"])
        assert events[-1]["status"] == "failed" and events[-1]["message"]
        failed = await wait_document(api, owner, r.json()["id"], ("failed",), timeout=5)
        assert isinstance(failed["error"], str) and failed["error"], failed
        assert attempts == server.ctx.bus.delivery_limit  # type: ignore[attr-defined]
        # The worker goes on with the next document.
        assert (await upload_ready(api, owner, ws["id"], PLAIN))["status"] == "ready"
    finally:
        await watcher.disconnect()


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("pixel.png", PNG),
        ("pixel.txt", PNG),  # a name that says text does not make it text
        ("archive.zip", make_zip()),
        ("letter.docx", make_zip()),
        ("fake.pdf", b"plain words in a file named like a PDF"),
    ],
    ids=["png", "png-named-txt", "zip", "docx", "text-named-pdf"],
)
async def test_a_type_the_server_cannot_read_is_refused_with_415_and_nothing_is_stored(
    server: LiveServer, api: Api, owner: User, filename: str, data: bytes
) -> None:
    ws = await api.workspace(owner)
    kept = await upload_ready(api, owner, ws["id"], MARKDOWN)
    r = await upload(api, owner, ws["id"], filename, data)
    assert r.status_code == 415, r.text
    body = r.json()
    assert body["error_type"] == "unsupported_media_type"
    assert isinstance(body["detail"], str) and filename in body["detail"]
    listed = await _list(api, owner, ws["id"])
    assert [(d["id"], d["status"]) for d in listed] == [(kept["id"], "ready")]
    assert await _count(server, Document, Document.workspace_id == uuid.UUID(ws["id"])) == 1


async def test_an_upload_request_without_a_file_is_refused_with_422(
    server: LiveServer, api: Api, owner: User
) -> None:
    ws = await api.workspace(owner)
    kept = await upload_ready(api, owner, ws["id"], PLAIN)
    url = f"/api/workspaces/{ws['id']}/documents"
    wrong_field = await api.http.post(
        url, files={"document": ("a.txt", b"some text", "text/plain")}, headers=owner.auth
    )
    no_body = await api.http.post(url, headers=owner.auth)
    not_a_file = await api.http.post(url, data={"file": "just a form field"}, headers=owner.auth)
    for r in (wrong_field, no_body, not_a_file):
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["error_type"] == "validation_error"
        assert any("file" in err["loc"] for err in body["detail"]), body
    assert [d["id"] for d in await _list(api, owner, ws["id"])] == [kept["id"]]


async def test_an_upload_over_the_size_limit_is_refused_with_413_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    limit = 4096
    live = await LiveServer(make_settings(tmp_path, max_upload_bytes=limit)).start()
    api = Api(live.url)
    try:
        owner = await api.user()
        ws = await api.workspace(owner)
        kept = await upload_ready(api, owner, ws["id"], PLAIN)
        at_limit = (b"lorem ipsum " * limit)[:limit]
        r = await upload(api, owner, ws["id"], "at-limit.txt", at_limit)
        assert r.status_code == 202, r.text
        assert r.json()["size_bytes"] == limit

        # One byte over (caught while reading) and far over (caught from Content-Length).
        for size in (limit + 1, 200 * 1024):
            r = await upload(api, owner, ws["id"], f"{size}.txt", (b"x" * size))
            assert r.status_code == 413, r.text
            assert r.json()["error_type"] == "payload_too_large"
            assert str(limit) in r.json()["detail"]

        listed = {d["filename"]: d for d in await _list(api, owner, ws["id"])}
        assert set(listed) == {PLAIN.filename, "at-limit.txt"}
        assert listed[PLAIN.filename]["id"] == kept["id"]
        assert listed[PLAIN.filename]["status"] == "ready"
        await wait_document(api, owner, listed["at-limit.txt"]["id"], ("ready",))
    finally:
        await api.aclose()
        await live.stop()


# -- who may see documents -----------------------------------------------------------------


async def test_a_stranger_gets_404_for_a_workspaces_documents_and_cannot_delete_them(
    server: LiveServer, api: Api, owner: User, stranger: User, member: User
) -> None:
    ws = await api.workspace(owner)
    doc = await upload_ready(api, owner, ws["id"], PLAIN)
    url = f"/api/documents/{doc['id']}"
    listing = f"/api/workspaces/{ws['id']}/documents"

    _assert_not_found(await api.http.get(url, headers=stranger.auth))
    _assert_not_found(await api.http.delete(url, headers=stranger.auth))
    _assert_not_found(await api.http.get(listing, headers=stranger.auth))
    _assert_not_found(await upload(api, stranger, ws["id"], MARKDOWN.filename, MARKDOWN.data))
    _assert_not_found(await api.http.get(f"/api/documents/{uuid.uuid4()}", headers=owner.auth))
    _assert_not_found(await api.http.delete(f"/api/documents/{uuid.uuid4()}", headers=owner.auth))
    unauthenticated = await api.http.get(url)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error_type"] == "unauthorized"

    # Membership is what grants access: a member sees the same document.
    added = await api.http.post(
        f"/api/workspaces/{ws['id']}/members",
        json={"email": member.email, "role": "member"},
        headers=owner.auth,
    )
    assert added.status_code == 201, added.text
    seen = await api.http.get(url, headers=member.auth)
    assert seen.status_code == 200 and seen.json()["id"] == doc["id"]

    assert [(d["id"], d["status"]) for d in await _list(api, owner, ws["id"])] == [
        (doc["id"], "ready")
    ]
    assert await _count(server, Document, Document.workspace_id == uuid.UUID(ws["id"])) == 1


# -- retrieval -----------------------------------------------------------------------------


async def test_a_vector_answer_quotes_and_cites_the_document_that_holds_the_fact(
    server: LiveServer, api: Api, owner: User
) -> None:
    ws = await api.workspace(owner)
    assert ws["llm_provider"] == "local"
    docs = {s.filename: await upload_ready(api, owner, ws["id"], s) for s in (PLAIN, MARKDOWN, PDF)}
    sock = await connect(server.url, owner.token)
    try:
        ack, done = await ask(sock, ws["id"], PDF.question, rag_type="vector")
        sources = done["sources"]
        assert 1 <= len(sources) <= server.settings.retrieval_top_k
        assert all(set(s) == SOURCE_FIELDS for s in sources), sources
        top = sources[0]
        assert top["document_id"] == docs[PDF.filename]["id"]
        assert top["filename"] == PDF.filename
        assert isinstance(top["chunk_index"], int) and top["chunk_index"] >= 0
        assert isinstance(top["score"], float) and top["score"] > 0
        assert PDF.fact in top["text"]
        scores = [s["score"] for s in sources]
        assert scores == sorted(scores, reverse=True)

        answer = done["full_response"]
        assert "912" in answer and "[1]" in answer
        cited = [int(n) for n in re.findall(r"\[(\d+)\]", answer)]
        assert cited and all(1 <= n <= len(sources) for n in cited)
        assert {sources[n - 1]["document_id"] for n in cited} == {docs[PDF.filename]["id"]}

        _, plain = await ask(
            sock, ws["id"], PDF.question, rag_type="none", session_id=ack["session_id"]
        )
        assert plain["sources"] == []
        assert "912" not in plain["full_response"] and "[1]" not in plain["full_response"]

        stored = [
            m for m in await api.messages(owner, ack["session_id"]) if m["role"] == "assistant"
        ]
        assert [m["status"] for m in stored] == ["complete", "complete"]
        assert stored[0]["content"] == answer and stored[0]["sources"] == sources
        assert stored[1]["content"] == plain["full_response"] and stored[1]["sources"] == []
    finally:
        await sock.disconnect()


async def test_a_deleted_document_is_gone_and_its_passages_are_no_longer_cited(
    server: LiveServer, api: Api, owner: User
) -> None:
    ws = await api.workspace(owner)
    kept = await upload_ready(api, owner, ws["id"], PLAIN)
    doomed = await upload_ready(api, owner, ws["id"], MARKDOWN)
    sock = await connect(server.url, owner.token)
    try:
        _, before = await ask(sock, ws["id"], MARKDOWN.question, rag_type="vector")
        assert before["sources"][0]["document_id"] == doomed["id"]
        assert "5521" in before["full_response"]

        r = await api.http.delete(f"/api/documents/{doomed['id']}", headers=owner.auth)
        assert r.status_code == 204 and r.content == b""
        _assert_not_found(await api.http.get(f"/api/documents/{doomed['id']}", headers=owner.auth))
        _assert_not_found(
            await api.http.delete(f"/api/documents/{doomed['id']}", headers=owner.auth)
        )
        assert [d["id"] for d in await _list(api, owner, ws["id"])] == [kept["id"]]
        gone = uuid.UUID(doomed["id"])
        assert await _count(server, DocumentChunk, DocumentChunk.document_id == gone) == 0
        assert await _count(server, DocumentContent, DocumentContent.document_id == gone) == 0

        _, after = await ask(sock, ws["id"], MARKDOWN.question, rag_type="vector")
        assert doomed["id"] not in cited_documents(after["sources"])
        assert "5521" not in after["full_response"]

        # The rest of the workspace still answers.
        _, other = await ask(sock, ws["id"], PLAIN.question, rag_type="vector")
        assert other["sources"][0]["document_id"] == kept["id"]
        assert "37" in other["full_response"]
    finally:
        await sock.disconnect()


# -- workspaces ----------------------------------------------------------------------------


async def test_the_creator_hears_provisioning_then_ready_without_joining_the_workspace(
    server: LiveServer, api: Api, owner: User, stranger: User
) -> None:
    creator = await connect(server.url, owner.token)
    other = await connect(server.url, stranger.token)
    try:
        await creator.wait_for(lambda: bool(creator.named("connected")))
        r = await api.http.post("/api/workspaces", json={"name": "fresh"}, headers=owner.auth)
        assert r.status_code == 201, r.text
        ws = r.json()
        assert ws["status"] == "provisioning" and ws["llm_provider"] == "local"

        def of_ws() -> list[dict[str, Any]]:
            return [e for e in creator.named("workspace_status") if e["workspace_id"] == ws["id"]]

        await creator.wait_for(lambda: any(e["status"] == "ready" for e in of_ws()))
        await barrier(creator, ws["id"])
        await barrier(other, ws["id"])
        assert [e["status"] for e in of_ws()] == ["provisioning", "ready"]
        for event in of_ws():
            assert isinstance(event["message"], str) and event["message"]
            assert TIMESTAMP.match(event["timestamp"])
        assert other.named("workspace_status") == []
        current = await api.http.get(f"/api/workspaces/{ws['id']}", headers=owner.auth)
        assert current.json()["status"] == "ready"
    finally:
        await creator.disconnect()
        await other.disconnect()


async def test_a_message_sent_while_the_workspace_provisions_is_acked_then_answered_when_ready(
    server: LiveServer, api: Api, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Provisioning is instant in the embedded mode; the worker is held at a gate so the
    # window between "created" and "ready" can be observed at all.
    worker = next(w for w in server.ctx.workers if isinstance(w, WorkspaceWorker))
    provision = worker.provision
    gate = asyncio.Event()
    held: list[uuid.UUID] = []

    async def gated(workspace_id: uuid.UUID) -> None:
        held.append(workspace_id)
        await gate.wait()
        await provision(workspace_id)

    monkeypatch.setattr(worker, "provision", gated)
    sock = await connect(server.url, owner.token)
    try:
        ws = await api.workspace(owner, ready=False, name="slow to provision")
        for _ in range(200):
            if uuid.UUID(ws["id"]) in held:
                break
            await asyncio.sleep(0.01)
        assert uuid.UUID(ws["id"]) in held, "the provisioning job never reached the worker"

        ack = await sock.call(
            "chat_message", {"workspace_id": ws["id"], "message": "hello, is anyone there?"}
        )
        assert ack["ok"] is True and set(ack) >= {"session_id", "user_message_id", "message_id"}
        await asyncio.sleep(0.3)
        assert sock.of_message(ack["message_id"]) == []
        waiting = await api.messages(owner, ack["session_id"])
        assert [(m["role"], m["status"]) for m in waiting] == [
            ("user", "complete"),
            ("assistant", "pending"),
        ]
        r = await api.http.get(f"/api/workspaces/{ws['id']}", headers=owner.auth)
        assert r.json()["status"] == "provisioning"

        gate.set()
        final = await sock.wait_final(ack["message_id"])
        assert final.name == "chat_complete" and final.data["full_response"]
        assert final.data["sources"] == []
        order = [
            (e.name, e.data.get("status"))
            for e in sock.events
            if (e.name == "workspace_status" and e.data["workspace_id"] == ws["id"])
            or (isinstance(e.data, dict) and e.data.get("message_id") == ack["message_id"])
        ]
        assert order[:2] == [("workspace_status", "provisioning"), ("workspace_status", "ready")]
        assert order[-1] == ("chat_complete", None)
        assert {name for name, _ in order[2:-1]} == {"chat_chunk"}
        done = await api.wait_message(owner, ack["session_id"], ack["message_id"], ("complete",))
        assert done["content"] == final.data["full_response"]
    finally:
        gate.set()
        await sock.disconnect()


async def test_deleting_a_workspace_removes_its_sessions_messages_documents_and_chunks(
    server: LiveServer, api: Api, owner: User
) -> None:
    doomed, control = await api.workspace(owner, name="doomed"), await api.workspace(owner)
    docs = [await upload_ready(api, owner, doomed["id"], s) for s in (PLAIN, PDF)]
    control_doc = await upload_ready(api, owner, control["id"], PLAIN)
    sock = await connect(server.url, owner.token)
    try:
        ack, _ = await ask(sock, doomed["id"], PDF.question, rag_type="vector")
        control_ack, _ = await ask(sock, control["id"], PLAIN.question, rag_type="vector")
    finally:
        await sock.disconnect()

    r = await api.http.delete(f"/api/workspaces/{doomed['id']}", headers=owner.auth)
    assert r.status_code == 204, r.text
    auth = owner.auth
    _assert_not_found(await api.http.get(f"/api/workspaces/{doomed['id']}", headers=auth))
    _assert_not_found(await api.http.get(f"/api/workspaces/{doomed['id']}/documents", headers=auth))
    _assert_not_found(await api.http.get(f"/api/workspaces/{doomed['id']}/sessions", headers=auth))
    _assert_not_found(await api.http.get(f"/api/sessions/{ack['session_id']}", headers=auth))
    _assert_not_found(
        await api.http.get(f"/api/sessions/{ack['session_id']}/messages", headers=auth)
    )
    for doc in docs:
        _assert_not_found(await api.http.get(f"/api/documents/{doc['id']}", headers=auth))

    ws_id = uuid.UUID(doomed["id"])
    doc_ids = [uuid.UUID(d["id"]) for d in docs]
    session_id = uuid.UUID(ack["session_id"])
    message_ids = [uuid.UUID(ack["user_message_id"]), uuid.UUID(ack["message_id"])]
    assert await _count(server, ChatSession, ChatSession.workspace_id == ws_id) == 0
    assert (
        await _count(
            server, Message, or_(Message.session_id == session_id, Message.id.in_(message_ids))
        )
        == 0
    )
    assert await _count(server, Document, Document.workspace_id == ws_id) == 0
    assert await _count(server, DocumentContent, DocumentContent.document_id.in_(doc_ids)) == 0
    assert (
        await _count(
            server,
            DocumentChunk,
            or_(DocumentChunk.workspace_id == ws_id, DocumentChunk.document_id.in_(doc_ids)),
        )
        == 0
    )

    # The owner's other workspace is untouched.
    control_ws = uuid.UUID(control["id"])
    assert await _count(server, ChatSession, ChatSession.workspace_id == control_ws) == 1
    assert (
        await _count(server, Message, Message.session_id == uuid.UUID(control_ack["session_id"]))
        == 2
    )
    assert (
        await _count(
            server, DocumentChunk, DocumentChunk.document_id == uuid.UUID(control_doc["id"])
        )
        >= 1
    )
    assert [d["id"] for d in await _list(api, owner, control["id"])] == [control_doc["id"]]
