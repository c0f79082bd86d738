"""RabbitMQ fixtures: a throwaway vhost per test module, buses on it, rabbitmqctl helpers.

``amqp_url`` is meant for reuse by other test folders (import it from here in their
conftest). A test that cannot reach the broker skips with the reason, except under
``CI=true``, where it fails (``tests.support.services.require``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiormq
import pytest

from app.bus.amqp import AmqpBus
from tests.support.services import AMQP_HOST, AMQP_PORT, require

# RabbitMQ 3.10 can crash rabbit_fifo_dlx_sup when at-least-once quorum queues are deleted
# right after ``start_app``: a vhost is deleted no sooner than this after the last start.
_SETTLE_AFTER_START_S = 3.0
_last_start = 0.0


def _check_broker() -> None:
    require("RabbitMQ", AMQP_HOST, AMQP_PORT)
    if shutil.which("rabbitmqctl") is None:
        reason = "rabbitmqctl is not installed (it creates the test vhosts)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI=true: services are required)")
        pytest.skip(reason)


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


async def arabbitmqctl(*args: str) -> str:
    """rabbitmqctl without blocking the loop (the buses under test keep running)."""
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {(err or out).decode()}")
    return out.decode()


async def list_queues(vhost: str) -> dict[str, dict[str, Any]]:
    """name → {consumers, messages} as the broker sees them."""
    out = await arabbitmqctl(
        "list_queues", "-p", vhost, "name", "consumers", "messages", "--formatter", "json"
    )
    return {row["name"]: row for row in json.loads(out)}


async def wait_for_queues(
    vhost: str, expected: dict[str, dict[str, int]], *, within_s: float = 20.0
) -> dict[str, dict[str, Any]]:
    """Poll ``list_queues`` until every named queue shows the expected numbers.

    Quorum queues report consumers and messages through periodic metrics, a second or
    two behind; the last answer is returned so the caller can assert on it.
    """
    deadline = time.monotonic() + within_s
    while True:
        queues = await list_queues(vhost)
        if all(
            name in queues and all(queues[name][k] == v for k, v in fields.items())
            for name, fields in expected.items()
        ):
            return queues
        if time.monotonic() > deadline:
            got = {name: queues.get(name) for name in expected}
            pytest.fail(f"queues never reached {expected}: last {got}")
        await asyncio.sleep(0.5)


async def queue_state(url: str, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of ``queue``, from a passive declare: exact and quick."""
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        ok = await channel.queue_declare(queue, passive=True)
        return ok.message_count or 0, ok.consumer_count or 0
    finally:
        await connection.close()


async def consumer_tags(vhost: str) -> dict[str, list[str]]:
    """queue → consumer tags, straight from the broker's consumer records (no lag)."""
    out = await arabbitmqctl(
        "list_consumers", "-p", vhost, "queue_name", "consumer_tag", "--formatter", "json"
    )
    tags: dict[str, list[str]] = {}
    for row in json.loads(out):
        tags.setdefault(row["queue_name"], []).append(row["consumer_tag"])
    return tags


async def event_bindings(vhost: str, queue: str) -> set[str]:
    """Routing keys binding ``queue`` to insighthub.events."""
    out = await arabbitmqctl(
        "list_bindings",
        "-p",
        vhost,
        "source_name",
        "destination_name",
        "routing_key",
        "--formatter",
        "json",
    )
    return {
        row["routing_key"]
        for row in json.loads(out)
        if row["source_name"] == "insighthub.events" and row["destination_name"] == queue
    }


@pytest.fixture(scope="session")
def _vhost_reaper() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Vhost deletions run in the background (a couple of seconds each); checked at the end."""
    deletions: list[subprocess.Popen[bytes]] = []
    yield deletions
    failed = [d.args for d in deletions if d.wait(timeout=120) != 0]
    if failed:
        raise RuntimeError(f"could not delete test vhosts: {failed}")


@pytest.fixture(scope="module")
def amqp_vhost(_vhost_reaper: list[subprocess.Popen[bytes]]) -> Iterator[str]:
    """A fresh vhost for one test module, deleted after it."""
    _check_broker()
    vhost = f"insighthub-test-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        time.sleep(max(0.0, _last_start + _SETTLE_AFTER_START_S - time.monotonic()))
        _vhost_reaper.append(
            subprocess.Popen(
                ["rabbitmqctl", "delete_vhost", vhost],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )


@pytest.fixture(scope="module")
def amqp_url(amqp_vhost: str) -> str:
    return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{quote(amqp_vhost, safe='')}"


BusFactory = Callable[..., Awaitable[AmqpBus]]


@pytest.fixture
async def make_bus(amqp_url: str) -> AsyncIterator[BusFactory]:
    """Started buses ("nodes") on the module's vhost, closed after the test."""
    buses: list[AmqpBus] = []

    async def make(**kwargs: Any) -> AmqpBus:
        kwargs.setdefault("node_id", f"node-{uuid.uuid4().hex[:8]}")
        kwargs.setdefault("publish_timeout_s", 2.0)
        bus = AmqpBus(amqp_url, **kwargs)
        await bus.start()
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()


async def eventually(
    predicate: Callable[[], object], *, within_s: float = 10.0, what: str = "condition"
) -> None:
    """Poll until ``predicate()`` is truthy; fail after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_for_broker(url: str, within_s: float = 60.0) -> None:
    """Until an AMQP connection to ``url`` opens (the app may still be booting)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            connection = await aiormq.connect(url)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
        else:
            await connection.close()
            return


@asynccontextmanager
async def broker_stopped(url: str) -> AsyncIterator[None]:
    """``stop_app`` for the body; ``start_app`` afterwards, whatever happened inside."""
    global _last_start
    await arabbitmqctl("stop_app")
    try:
        yield
    finally:
        try:
            await arabbitmqctl("start_app")
        except BaseException:
            rabbitmqctl("start_app")  # a cancelled test still gets its broker back
            raise
        finally:
            _last_start = time.monotonic()
        await wait_for_broker(url)
