"""The chat page in headless Chromium against a real `insighthub serve`.

Each module run starts its own server (embedded default: SQLite and the in-process bus in a
temporary data folder, no other INSIGHTHUB_ setting) and drives the page the way a person
would: sign up, create a workspace, upload a document, ask, watch the answer stream, stop it,
reload, and survive a dropped connection. The streaming parts use the `synthetic` provider
(PROTOCOL.md) at a fixed token rate, because the local provider may answer faster than a page
can be watched. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, FilePayload, Locator, Page, expect, sync_playwright

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
INSIGHTHUB = Path(sys.executable).parent / "insighthub"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "s3cret-Passw0rd!"
# 80 tokens at 20 per second: about four seconds of streaming, long enough to watch and stop.
SLOW_MODEL = "tokens-80-rate-20"
# Six seconds: the answer is still streaming after the page has been offline and come back.
LONG_MODEL = "tokens-120-rate-20"

if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)


# --- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """An `insighthub serve` subprocess on a fixed port and data folder."""

    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHTHUB_")}
        env["INSIGHTHUB_DATA_DIR"] = str(self.data_dir)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(INSIGHTHUB), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited at start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"no answer from /healthz within 30 s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not INSIGHTHUB.exists():
        pytest.skip(f"{INSIGHTHUB} is not installed")
    data_dir = tmp_path_factory.mktemp("insighthub-data")
    srv = Server(port=free_port(), data_dir=data_dir, log_path=data_dir / "server.log")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # A synthetic answer streams for seconds and a server may be slow under a parallel test run:
    # wait for the page the way a patient person would, not the 5 s of Playwright's default.
    expect.set_options(timeout=30_000)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# --- REST helpers (what the page stored, checked from outside) ------------------------------------


def rest(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def stored_messages(server: Server, token: str, session_id: str) -> list[dict[str, Any]]:
    with rest(server, token) as client:
        answer = client.get(f"/api/sessions/{session_id}/messages")
        answer.raise_for_status()
        messages: list[dict[str, Any]] = answer.json()
        return messages


def page_token(page: Page) -> str:
    token = page.evaluate("localStorage.getItem('insighthub.token')")
    assert isinstance(token, str) and token
    return token


def current_session_id(page: Page) -> str:
    session = page.evaluate("new URLSearchParams(location.hash.slice(1)).get('session')")
    assert isinstance(session, str) and session
    return session


def sign_up(page: Page, server: Server) -> str:
    email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
    page.goto(server.base_url + "/")
    page.get_by_test_id("email").fill(email)
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("sign-up").click()
    expect(page.get_by_test_id("user-email")).to_have_text(email)
    expect(page.get_by_test_id("connection-badge")).to_have_attribute("data-state", "connected")
    return email


def last_assistant(page: Page) -> Locator:
    return page.locator('[data-testid="message"][data-role="assistant"]').last


def ask(page: Page, text: str) -> str:
    """Sends a message through the composer; returns the id of the answer bubble it brings."""
    answers = page.locator('[data-testid="message"][data-role="assistant"]')
    before = answers.count()
    page.get_by_test_id("message-input").fill(text)
    page.get_by_test_id("send").click()
    expect(answers).to_have_count(before + 1)
    answer_id = answers.last.get_attribute("data-message-id")
    assert answer_id
    return answer_id


def bubble_state(page: Page, message_id: str) -> dict[str, str]:
    """Status and text of one message bubble, read in one go so that they belong together."""
    state: dict[str, str] = page.evaluate(
        """(id) => {
            const el = document.querySelector(`[data-testid="message"][data-message-id="${id}"]`);
            if (!el) return {status: "", text: ""};
            const text = el.querySelector('[data-testid="message-text"]').textContent;
            return {status: el.dataset.status, text};
        }""",
        message_id,
    )
    return state


def watch_growth(page: Page, message_id: str, samples: int, after: str = "") -> list[str]:
    """Reads the streaming answer until it has grown `samples` times past `after`.

    Returns the texts seen, each longer than the one before (fewer if the answer ended first).
    """
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while len(seen) < samples and time.monotonic() < deadline:
        state = bubble_state(page, message_id)
        if state["status"] in ("complete", "cancelled", "failed"):
            break
        if state["status"] == "streaming" and len(state["text"]) > len(seen[-1] if seen else after):
            seen.append(state["text"])
        page.wait_for_timeout(120)
    return seen


# --- the tests ----------------------------------------------------------------------------------


def test_sign_up_upload_ask_stream_stop_and_reload(page: Page, server: Server) -> None:
    sign_up(page, server)
    token = page_token(page)

    # A workspace: provisioning, then ready, live from workspace_status.
    page.get_by_test_id("workspace-name").fill("Launch notes")
    page.get_by_test_id("workspace-create").click()
    item = page.get_by_test_id("workspace-item").filter(has_text="Launch notes")
    expect(item).to_have_attribute("data-status", "ready")
    expect(page.get_by_test_id("workspace-status")).to_have_text("ready")
    workspace_id = item.get_attribute("data-workspace-id")
    assert workspace_id

    # A document: its bar goes to full as the server reports progress.
    text = (
        "Project Bluebird launch notes.\n"
        "The launch code for Project Bluebird is PELICAN-42.\n"
        "The launch happens on the roof at dawn.\n"
    )
    # Its name is markup: it must show as characters, never become an element.
    filename = "<img src=x onerror=window.pwned=1>bluebird.txt"
    page.get_by_test_id("upload-input").set_input_files(
        files=[FilePayload(name=filename, mimeType="text/plain", buffer=text.encode())]
    )
    row = page.get_by_test_id("document-row").filter(has_text="bluebird.txt")
    expect(row).to_have_attribute("data-status", "ready")
    expect(row).to_have_attribute("data-progress", "1")
    assert row.get_by_test_id("document-progress").evaluate("bar => bar.value") == 1
    expect(row.get_by_test_id("document-name")).to_have_text(filename)

    # A type the server cannot read: 415, said in words, nothing else breaks.
    page.get_by_test_id("upload-input").set_input_files(
        files=[FilePayload(name="photo.png", mimeType="image/png", buffer=b"\x89PNG\r\n\x1a\n" * 8)]
    )
    expect(page.get_by_test_id("error-banner")).to_contain_text("photo.png")
    failed = page.get_by_test_id("document-row").filter(has_text="photo.png")
    expect(failed).to_have_attribute("data-status", "failed")

    # A question about the document (the default provider): shown at once, answered in full.
    question = "What is the launch code of <b>Project Bluebird</b>?"
    page.get_by_test_id("message-input").fill(question)
    page.get_by_test_id("send").click()
    mine = page.locator('[data-testid="message"][data-role="user"]').last
    expect(mine.get_by_test_id("message-text")).to_have_text(question)  # as text, not as HTML
    assert page.locator('[data-testid="transcript"] b').count() == 0
    answer = last_assistant(page)
    expect(answer).to_have_attribute("data-status", "complete")
    assert answer.get_by_test_id("message-text").inner_text().strip()
    expect(answer.get_by_test_id("sources")).to_contain_text(filename)
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.pwned") is None
    shot(page, "01-answered")

    # The synthetic provider at 20 tokens per second: watch it grow, then stop it.
    with rest(server, token) as client:
        patched = client.patch(
            f"/api/workspaces/{workspace_id}",
            json={"llm_provider": "synthetic", "llm_model": SLOW_MODEL},
        )
        assert patched.status_code == 200, patched.text
    streaming_id = ask(page, "Tell me more about the launch.")
    growth = watch_growth(page, streaming_id, samples=3)
    assert len(growth) == 3, f"the answer did not grow three times while streaming: {growth}"
    assert all(len(a) < len(b) for a, b in itertools.pairwise(growth))
    expect(last_assistant(page).get_by_test_id("typing-indicator")).to_be_visible()
    expect(page.get_by_test_id("tokens-per-second")).to_contain_text("tokens/s")
    expect(page.get_by_test_id("stop")).to_be_enabled()
    shot(page, "02-streaming")

    page.get_by_test_id("stop").click()
    stopped = last_assistant(page)
    expect(stopped).to_have_attribute("data-status", "cancelled")
    expect(stopped.get_by_test_id("typing-indicator")).to_be_hidden()
    expect(page.get_by_test_id("stop")).to_be_disabled()
    stopped_id = stopped.get_attribute("data-message-id")
    stopped_text = stopped.get_by_test_id("message-text").text_content() or ""
    assert stopped_text.startswith(growth[-1])
    assert len(stopped_text.split()) < 80, "Stop came too late: the answer had already ended"
    session_id = current_session_id(page)
    stored = {m["id"]: m for m in stored_messages(server, token, session_id)}
    assert stored[stopped_id]["status"] == "cancelled"
    assert stored[stopped_id]["content"] == stopped_text
    shot(page, "03-stopped")

    # A reload comes back to the same conversation, from the server's history.
    page.reload()
    expect(page.get_by_test_id("connection-badge")).to_have_attribute("data-state", "connected")
    bubbles = page.get_by_test_id("message")
    expect(bubbles).to_have_count(4)
    expect(bubbles.nth(0).get_by_test_id("message-text")).to_have_text(question)
    again = page.locator(f'[data-testid="message"][data-message-id="{stopped_id}"]')
    expect(again).to_have_attribute("data-status", "cancelled")
    expect(again.get_by_test_id("message-text")).to_have_text(stopped_text)
    expect(page.get_by_test_id("session-item")).to_have_count(1)
    expect(page.get_by_test_id("document-row").filter(has_text="bluebird.txt")).to_have_attribute(
        "data-status", "ready"
    )
    shot(page, "04-reloaded")


def test_dropped_connection_ends_with_exactly_the_stored_text(page: Page, server: Server) -> None:
    sign_up(page, server)
    token = page_token(page)
    with rest(server, token) as client:
        created = client.post(
            "/api/workspaces",
            json={"name": "Flaky line", "llm_provider": "synthetic", "llm_model": LONG_MODEL},
        )
        assert created.status_code == 201, created.text
    page.reload()
    expect(page.get_by_test_id("workspace-status")).to_have_text("ready")

    first_id = ask(page, "Stream through a dropped connection, please.")
    growth = watch_growth(page, first_id, samples=2)
    assert len(growth) == 2, growth

    # Cut the transport and keep the network away, so chunks are really missed.
    page.context.set_offline(True)
    page.evaluate("window.insighthub.socket.io.engine.close()")
    expect(page.get_by_test_id("connection-badge")).to_have_attribute("data-state", "offline")
    cut_at = bubble_state(page, first_id)["text"]
    page.wait_for_timeout(1_500)  # about 30 tokens go by on the server
    assert bubble_state(page, first_id)["text"] == cut_at, "text arrived while offline"

    # A message typed while offline waits in the queue, shown in the page.
    page.get_by_test_id("message-input").fill("And a second question, typed offline.")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("outbox")).to_be_visible()
    expect(page.get_by_test_id("outbox-item")).to_have_text(
        ["And a second question, typed offline."]
    )
    queued = page.locator('[data-testid="message"][data-role="user"]').last
    expect(queued).to_have_attribute("data-status", "queued")
    shot(page, "05-offline")

    page.context.set_offline(False)
    expect(page.get_by_test_id("connection-badge")).to_have_attribute(
        "data-state", "connected", timeout=20_000
    )
    # Still streaming: what the page shows now was rebuilt from the resume's catch-up chunk and
    # the live chunks after it (the final event, which carries the whole text, has not come yet).
    caught_up = watch_growth(page, first_id, samples=2, after=cut_at)
    assert caught_up, "the answer ended before the page was back: nothing to check mid-stream"
    expect(page.get_by_test_id("outbox")).to_be_hidden()
    first = page.locator(f'[data-testid="message"][data-message-id="{first_id}"]')
    expect(first).to_have_attribute("data-status", "complete")
    # The queued message's answer starts after the first one; stopping it saves the wait.
    second = last_assistant(page)
    expect(second).not_to_have_attribute("data-message-id", first_id)
    expect(second).to_have_attribute("data-status", "streaming")
    shot(page, "06-recovered")
    page.get_by_test_id("stop").click()
    expect(second).to_have_attribute("data-status", "cancelled")

    session_id = current_session_id(page)
    stored = stored_messages(server, token, session_id)
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"], (
        "the queued message was answered once, and nothing else was sent"
    )
    assert [m["status"] for m in stored[1::2]] == ["complete", "cancelled"]
    for message in stored[1::2]:
        shown = page.locator(f'[data-testid="message"][data-message-id="{message["id"]}"]')
        assert shown.get_by_test_id("message-text").text_content() == message["content"]
    final = stored[1]["content"]
    assert final.startswith(cut_at) and len(final) > len(cut_at)
    for text in caught_up:
        assert len(text) > len(cut_at)
        assert final.startswith(text), "a hole or a duplicate in the text after the reconnect"


def test_a_refused_token_returns_to_sign_in(page: Page, server: Server) -> None:
    page.goto(server.base_url + "/")
    page.evaluate("localStorage.setItem('insighthub.token', 'not-a-real-token')")
    page.reload()
    expect(page.get_by_test_id("auth-message")).to_be_visible()
    expect(page.get_by_test_id("sign-in")).to_be_visible()
    assert page.evaluate("localStorage.getItem('insighthub.token')") is None

    page.get_by_test_id("email").fill(f"nobody-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_test_id("password").fill("wrong-password")
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("auth-message")).to_have_text("Wrong email or password.")


def test_password_guessing_is_refused_and_the_page_says_for_how_long(
    page: Page, server: Server
) -> None:
    email = f"guessed-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        assert (
            client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        ).status_code == 201
        for n in range(10):  # INSIGHTHUB_SIGN_IN_FAILURES_PER_ACCOUNT's default
            wrong = client.post("/api/auth/token", data={"username": email, "password": f"x{n}"})
            assert wrong.status_code == 401
    page.goto(server.base_url + "/")
    page.get_by_test_id("email").fill(email)
    page.get_by_test_id("password").fill(PASSWORD)  # the right one, refused all the same
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("auth-message")).to_have_text(
        "Too many failed sign-ins. Try again in 5 min."
    )
    expect(page.get_by_test_id("sign-in")).to_be_visible()
    assert page.evaluate("localStorage.getItem('insighthub.token')") is None


def test_a_failed_answer_is_told_in_words(page: Page, server: Server) -> None:
    sign_up(page, server)
    token = page_token(page)
    with rest(server, token) as client:
        created = client.post(
            "/api/workspaces",
            json={
                "name": "Overloaded",
                "llm_provider": "synthetic",
                "llm_model": "tokens-40-rate-0-fail-5-llm_overloaded",
            },
        )
        assert created.status_code == 201, created.text
    page.reload()
    expect(page.get_by_test_id("workspace-status")).to_have_text("ready")

    page.get_by_test_id("message-input").fill("This one will fail after five tokens.")
    page.get_by_test_id("send").click()
    answer = last_assistant(page)
    expect(answer).to_have_attribute("data-status", "failed")
    expect(answer.get_by_test_id("message-error")).to_contain_text("overloaded")
    expect(answer.get_by_test_id("typing-indicator")).to_be_hidden()
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_contain_text("overloaded")
    shot(page, "07-failed")
    expect(banner).to_be_hidden(timeout=15_000)  # the banner clears itself
    expect(answer.get_by_test_id("message-error")).to_contain_text("overloaded")  # the bubble not

    stored = stored_messages(server, token, current_session_id(page))
    assert stored[-1]["status"] == "failed"
    assert stored[-1]["error_type"] == "llm_overloaded"
    assert answer.get_by_test_id("message-text").text_content() == stored[-1]["content"]
