"""Documents for the integration tests, and the few calls that upload and watch them.

Each sample holds one fact that no other sample mentions, so a test can ask about it and
check which document the answer cites. The PDF is a real one, drawn with reportlab; the
broken inputs are built byte by byte, as a careless or hostile client would send them.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.clients import Api, Socket, User
from tests.support.pdfs import make_pdf

TIMESTAMP = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
DOCUMENT_FIELDS = {
    "id",
    "workspace_id",
    "filename",
    "content_type",
    "size_bytes",
    "sha256",
    "status",
    "progress",
    "error",
    "created_at",
    "updated_at",
}
SOURCE_FIELDS = {"document_id", "filename", "chunk_index", "score", "text"}


@dataclass(frozen=True, slots=True)
class Sample:
    """An upload, what the server must make of it, and a question only it answers."""

    filename: str
    data: bytes
    content_type: str  # what detection must find, whatever the client declares
    fact: str  # a phrase of the document's text that must reach its chunks and answers
    question: str
    markup: tuple[str, ...] = ()  # what must NOT reach the chunks (tags, scripts)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def make_zip() -> bytes:
    """A real ZIP archive (what a DOCX is, too) holding one text file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("notes.txt", "a text file inside an archive")
    return buf.getvalue()


PLAIN = Sample(
    filename="harbour.txt",
    data=(
        b"Harbour log\n\n"
        b"The Halvorsen lighthouse keeper counts 37 fishing boats every night of the herring season.\n\n"
        b"Storms are recorded in the blue ledger.\n"
    ),
    content_type="text/plain",
    fact="37 fishing boats",
    question="How many fishing boats does the Halvorsen lighthouse keeper count?",
)

MARKDOWN = Sample(
    filename="onboarding.md",
    data=(
        b"# Onboarding\n\n"
        b"New engineers receive a brass compass engraved with the number 5521 on their first day.\n\n"
        b"## Tools\n\n"
        b"- a laptop\n"
        b"- an access badge\n"
    ),
    content_type="text/markdown",
    fact="engraved with the number 5521",
    question="Which number is engraved on the brass compass new engineers receive?",
)

HTML = Sample(
    filename="canteen.html",
    data=(
        b"<!DOCTYPE html>\n<html><head><title>Canteen</title>"
        b"<script>var trackingPixel = 'zzqx-secret';</script>"
        b"<style>p { color: teal; }</style></head>\n"
        b"<body><h1>Canteen</h1>"
        b"<p>The canteen serves <b>saffron risotto</b> every Thursday at noon.</p>"
        b"<p>Coffee is free on Mondays.</p></body></html>\n"
    ),
    content_type="text/html",
    fact="saffron risotto every Thursday",
    question="Which day does the canteen serve saffron risotto?",
    markup=("<p>", "<b>", "trackingPixel", "zzqx-secret", "color: teal"),
)

PDF = Sample(
    filename="kalder.pdf",
    data=make_pdf(
        "Observatory annual report\nPrepared by the night staff.",
        "The observatory on Mount Kalder recorded 912 meteors in August.\n"
        "The main telescope was serviced twice.",
    ),
    content_type="application/pdf",
    fact="912 meteors",
    question="How many meteors did the observatory on Mount Kalder record in August?",
    markup=("/Type", "endobj", "%PDF"),
)

SAMPLES = {"plain": PLAIN, "markdown": MARKDOWN, "html": HTML, "pdf": PDF}

# "%PDF-" and then nothing a PDF reader can make sense of.
CORRUPT_PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\nthis is not an object table\n"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


async def upload(
    api: Api,
    user: User,
    workspace_id: str,
    filename: str,
    data: bytes,
    declared: str = "application/octet-stream",
) -> httpx.Response:
    """A multipart upload as a browser sends it; the declared type is only a hint."""
    return await api.http.post(
        f"/api/workspaces/{workspace_id}/documents",
        files={"file": (filename, data, declared)},
        headers=user.auth,
    )


async def upload_ready(api: Api, user: User, workspace_id: str, sample: Sample) -> dict[str, Any]:
    """Upload ``sample`` and wait until it is indexed; the document as GET returns it."""
    r = await upload(api, user, workspace_id, sample.filename, sample.data)
    assert r.status_code == 202, r.text
    return await wait_document(api, user, r.json()["id"], ("ready",))


async def wait_document(
    api: Api, user: User, document_id: str, statuses: tuple[str, ...], timeout: float = 30
) -> dict[str, Any]:
    """Poll GET /api/documents/{id} until its status is one of ``statuses``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await api.http.get(f"/api/documents/{document_id}", headers=user.auth)
        assert r.status_code == 200, r.text
        document: dict[str, Any] = r.json()
        if document["status"] in statuses:
            return document
        if document["status"] in ("ready", "failed"):
            raise AssertionError(f"document ended {document['status']}: {document['error']}")
        if loop.time() > deadline:
            raise AssertionError(f"document {document_id} never reached {statuses}: {document}")
        await asyncio.sleep(0.05)


def document_events(sock: Socket, document_id: str) -> list[dict[str, Any]]:
    return [e for e in sock.named("document_status") if e.get("document_id") == document_id]


async def wait_document_event(
    sock: Socket, document_id: str, statuses: tuple[str, ...] = ("ready", "failed")
) -> list[dict[str, Any]]:
    """The ``document_status`` events of a document, once one of ``statuses`` has arrived."""
    await sock.wait_for(
        lambda: any(e["status"] in statuses for e in document_events(sock, document_id))
    )
    return document_events(sock, document_id)


async def barrier(sock: Socket, workspace_id: str) -> None:
    """A round trip on ``sock``: anything the server queued for it earlier has arrived.

    The server puts room events and acks on the same per-socket queue, so an event that
    was (wrongly) sent to this socket before another socket saw it arrives before this ack.
    """
    await sock.call("leave_workspace", {"workspace_id": workspace_id})


async def ask(
    sock: Socket, workspace_id: str, question: str, *, rag_type: str, session_id: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send a chat message; its ack and the data of its ``chat_complete``."""
    payload: dict[str, Any] = {
        "workspace_id": workspace_id,
        "message": question,
        "rag_type": rag_type,
    }
    if session_id is not None:
        payload["session_id"] = session_id
    ack = await sock.call("chat_message", payload)
    assert ack["ok"] is True, ack
    final = await sock.wait_final(ack["message_id"], timeout=30)
    assert final.name == "chat_complete", final
    return ack, dict(final.data)


def cited_documents(sources: list[dict[str, Any]]) -> set[str]:
    return {s["document_id"] for s in sources}
