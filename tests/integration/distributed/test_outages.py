"""The broker and the database going away and coming back, with nothing restarted."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.integration.bus.conftest import broker_stopped, consumer_tags
from tests.support.clients import Api, connect
from tests.support.processes import Cluster
from tests.support.tcp_proxy import TcpProxy


async def ready(url: str) -> tuple[int, dict[str, str]]:
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.get(f"{url}/readyz")
        return r.status_code, r.json()


async def until_ready(url: str, expected: int, within_s: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + within_s
    while True:
        status, body = await ready(url)
        if status == expected:
            return body
        assert time.monotonic() < deadline, f"/readyz stayed {status}: {body}"
        await asyncio.sleep(0.3)


def via(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def test_a_broker_restart_while_idle_brings_every_consumer_back(
    cluster: Cluster, amqp_vhost: str
) -> None:
    cluster.worker("all")
    node1, node2 = await cluster.node(), await cluster.node()
    apis = [Api(node1.url), Api(node2.url)]
    try:
        user = await apis[0].user()
        ws = await apis[0].workspace(user, llm_provider="synthetic", llm_model="tokens-5-rate-0")
        before = await consumer_tags(amqp_vhost)
        assert len(before.get("chat.requests", [])) == 1
        sock = await connect(node1.url, user.token)
        watcher = await connect(node2.url, user.token)
        slow = await apis[0].workspace(
            user, llm_provider="synthetic", llm_model="tokens-60-rate-30"
        )
        running = await watcher.call(
            "chat_message", {"workspace_id": slow["id"], "message": "through it"}
        )
        await watcher.wait_chunks(running["message_id"], 2, timeout=30)
        async with broker_stopped(cluster.env["INSIGHTHUB_AMQP_URL"]):
            started = time.monotonic()
            ack = await sock.call(
                "chat_message", {"workspace_id": ws["id"], "message": "while down"}, timeout=30
            )
            took = time.monotonic() - started
            assert ack["ok"] is False and ack["error_type"] == "server_error", ack
            assert took < 10, f"a publish during the outage took {took:.1f}s"
            status, body = await ready(node1.url)
            assert status == 503 and body["broker"] == "down" and body["database"] == "up"
        await sock.disconnect()
        for node in (node1, node2):
            await until_ready(node.url, 200)
        # The answer that was streaming went on (its worker kept the database); the
        # events published during the outage are gone, and the node catches up from there.
        final = await watcher.wait_final(running["message_id"], timeout=40)
        assert final.name == "chat_complete"
        stored = await apis[1].wait_message(
            user, running["session_id"], running["message_id"], ("complete",)
        )
        assert final.data["full_response"] == stored["content"]
        assert len(stored["content"].split()) == 60
        await watcher.disconnect()
        deadline = time.monotonic() + 30
        while True:
            tags = await consumer_tags(amqp_vhost)
            event_queues = [q for q in tags if q.startswith("insighthub.events.")]
            if len(tags.get("chat.requests", [])) == 1 and len(event_queues) >= 2:
                break
            assert time.monotonic() < deadline, f"consumers did not come back: {tags}"
            await asyncio.sleep(0.5)
        for queue in ("chat.requests", "document.jobs", "workspace.jobs", "chat.requests.dead"):
            assert len(tags.get(queue, [])) == 1, (queue, tags)
        assert all(len(tags[q]) == 1 for q in event_queues), tags
        for node in (node1, node2):
            sock = await connect(node.url, user.token)
            try:
                ack = await sock.call(
                    "chat_message", {"workspace_id": ws["id"], "message": f"after {node.name}"}
                )
                assert ack["ok"], ack
                assert (
                    await sock.wait_final(ack["message_id"], timeout=30)
                ).name == "chat_complete"
            finally:
                await sock.disconnect()
    finally:
        for client in apis:
            await client.aclose()


async def test_readyz_names_what_is_down_and_recovers_without_a_restart(cluster: Cluster) -> None:
    db_url = cluster.env["INSIGHTHUB_DATABASE_URL"]
    amqp_url = cluster.env["INSIGHTHUB_AMQP_URL"]
    db_proxy = TcpProxy("127.0.0.1", urlsplit(db_url).port or 5432)
    mq_proxy = TcpProxy("127.0.0.1", urlsplit(amqp_url).port or 5672)
    await db_proxy.open()
    # The broker is away when the node starts: it starts anyway and says so.
    node = await cluster.node(
        INSIGHTHUB_DATABASE_URL=via(db_url, db_proxy.port),
        INSIGHTHUB_AMQP_URL=via(amqp_url, mq_proxy.port),
    )
    try:
        body = await until_ready(node.url, 503)
        assert body["broker"] == "down" and body["database"] == "up"
        assert "broker" in body["detail"] and body["error_type"] == "server_error"
        await mq_proxy.open()
        await until_ready(node.url, 200)
        await db_proxy.close()
        body = await until_ready(node.url, 503)
        assert body["database"] == "down" and body["broker"] == "up"
        await db_proxy.open()
        await until_ready(node.url, 200)
        await mq_proxy.close()
        body = await until_ready(node.url, 503)
        assert body["broker"] == "down"
        await mq_proxy.open()
        await until_ready(node.url, 200)
    finally:
        await node.stop()
        await db_proxy.close()
        await mq_proxy.close()
