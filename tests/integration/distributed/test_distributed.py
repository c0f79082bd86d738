"""The distributed mode with real processes: two API nodes, worker processes, RabbitMQ and
PostgreSQL. A client on one node and a watcher on the other see one stream."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiormq

from tests.support.clients import Api, Socket, User, assert_caught_up, connect, text_of
from tests.support.processes import Cluster, Node


def recorded(cluster: Cluster, question: str) -> list[dict[str, Any]]:
    path = Path(cluster.env["INSIGHTHUB_SYNTHETIC_RECORD_PATH"])
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("question") == question]


def api(clients: dict[str, Api], node: Node) -> Api:
    if node.url not in clients:
        clients[node.url] = Api(node.url)
    return clients[node.url]


@dataclass
class TwoNodes:
    """One user on two API nodes: a sender's socket on the first, a watcher's on the second."""

    node1: Node
    node2: Node
    user: User
    workspace: dict[str, Any]
    sender: Socket
    watcher: Socket


@asynccontextmanager
async def two_nodes(
    cluster: Cluster, api_of: dict[str, Api], model: str
) -> AsyncIterator[TwoNodes]:
    node1, node2 = await cluster.node(), await cluster.node()
    user = await api(api_of, node1).user()
    ws = await api(api_of, node1).workspace(user, llm_provider="synthetic", llm_model=model)
    sender = await connect(node1.url, user.token)
    watcher = await connect(node2.url, user.token)
    try:
        yield TwoNodes(node1, node2, user, ws, sender, watcher)
    finally:
        await sender.disconnect()
        await watcher.disconnect()


def assert_once_in_order(sock: Socket, message_id: str) -> None:
    chunks = sock.named("chat_chunk", message_id)
    assert [c["seq"] for c in chunks] == list(range(len(chunks))), "a chunk was lost or repeated"
    offsets = [c["offset"] for c in chunks]
    assert offsets == sorted(set(offsets))


async def test_a_worker_process_streams_to_clients_on_two_nodes(
    cluster: Cluster, api_of: dict[str, Api]
) -> None:
    cluster.worker("all")
    async with two_nodes(cluster, api_of, "tokens-60-rate-120") as pair:
        user, ws, sender, watcher = pair.user, pair.workspace, pair.sender, pair.watcher
        ack = await sender.call(
            "chat_message", {"workspace_id": ws["id"], "message": "across nodes"}
        )
        assert (await watcher.call("join_session", {"session_id": ack["session_id"]}))["ok"]
        # It joined mid-stream (the first chunk can beat the join): it catches up, as a
        # client must, from what the worker holds, then follows live.
        caught = await watcher.call(
            "resume",
            {"session_id": ack["session_id"], "message_id": ack["message_id"], "offset": 0},
        )
        assert caught["ok"] is True
        a = await sender.wait_final(ack["message_id"], timeout=30)
        b = await watcher.wait_final(ack["message_id"], timeout=30)
        assert a.name == b.name == "chat_complete"
        assert_once_in_order(sender, ack["message_id"])
        live = [c["seq"] for c in watcher.named("chat_chunk", ack["message_id"]) if c["seq"] >= 0]
        assert live and live == list(range(live[0], live[0] + len(live))), live
        assert text_of(sender.named("chat_chunk", ack["message_id"])) == a.data["full_response"]
        assert_caught_up(
            watcher.named("chat_chunk", ack["message_id"]), caught, a.data["full_response"]
        )
        assert b.data["full_response"] == a.data["full_response"]
        stored = await api(api_of, pair.node2).messages(user, ack["session_id"])
        assert (
            stored[-1]["content"] == a.data["full_response"] and stored[-1]["status"] == "complete"
        )


async def test_a_watcher_that_resumes_before_the_worker_starts_gets_every_chunk_live(
    cluster: Cluster, api_of: dict[str, Api]
) -> None:
    cluster.worker("all")
    async with two_nodes(cluster, api_of, "tokens-30-rate-120") as pair:
        sender, watcher, ws = pair.sender, pair.watcher, pair.workspace
        with cluster.workers_paused():  # the turn waits in the queue, still pending
            ack = await sender.call(
                "chat_message", {"workspace_id": ws["id"], "message": "resume while queued"}
            )
            caught = await watcher.call(
                "resume",
                {"session_id": ack["session_id"], "message_id": ack["message_id"], "offset": 0},
            )
        assert caught == {"ok": True, "status": "pending", "attempt": 1, "length": 0}
        final = await watcher.wait_final(ack["message_id"], timeout=30)
        assert final.name == "chat_complete"
        assert_once_in_order(watcher, ack["message_id"])
        assert (
            text_of(watcher.named("chat_chunk", ack["message_id"])) == final.data["full_response"]
        )


async def test_a_cancel_through_the_other_node_stops_the_workers_stream(
    cluster: Cluster, api_of: dict[str, Api]
) -> None:
    async with two_nodes(cluster, api_of, "tokens-500-rate-40") as pair:
        user, ws, sender, other = pair.user, pair.workspace, pair.sender, pair.watcher
        ack = await sender.call(
            "chat_message", {"workspace_id": ws["id"], "message": "cancel across"}
        )
        await other.call("join_session", {"session_id": ack["session_id"]})
        await sender.wait_chunks(ack["message_id"], 3, timeout=30)
        answer = await other.call("cancel_message", {"session_id": ack["session_id"]})
        assert answer == {"ok": True, "message_id": ack["message_id"], "status": "cancelled"}
        for sock in (sender, other):
            final = await sock.wait_final(ack["message_id"])
            assert final.name == "chat_cancelled"
        closes = [r for r in recorded(cluster, "cancel across") if r["event"] == "closed"]
        assert closes and closes[-1]["outcome"] == "closed" and closes[-1]["tokens"] < 500
        stored = await api(api_of, pair.node1).wait_message(
            user, ack["session_id"], ack["message_id"], ("cancelled",)
        )
        assert stored["content"] == sender.named("chat_cancelled")[-1]["partial_response"]


async def test_a_worker_killed_mid_stream_is_replaced_and_attempt_two_completes(
    cluster: Cluster, api_of: dict[str, Api]
) -> None:
    for proc in [p for p in cluster.procs if p.name.startswith("worker") and p.alive]:
        await proc.stop()
    victim = cluster.worker("all")
    node = await cluster.node()
    user = await api(api_of, node).user()
    ws = await api(api_of, node).workspace(
        user, llm_provider="synthetic", llm_model="tokens-150-rate-60"
    )
    sock = await connect(node.url, user.token)
    try:
        ack = await sock.call(
            "chat_message", {"workspace_id": ws["id"], "message": "survive a crash"}
        )
        await sock.wait_chunks(ack["message_id"], 10, timeout=30)
        await victim.kill()
        cluster.worker("all")
        final = await sock.wait_final(ack["message_id"], timeout=60)
        assert final.name == "chat_complete", final.data
        assert final.data["attempt"] == 2
        second = [c for c in sock.named("chat_chunk", ack["message_id"]) if c["attempt"] == 2]
        assert second[0]["offset"] == 0 and second[0]["seq"] == 0
        assert text_of(second) == final.data["full_response"]
        assert len(final.data["full_response"].split()) == 150
        stored = await api(api_of, node).messages(user, ack["session_id"])
        answers = [m for m in stored if m["role"] == "assistant"]
        assert len(answers) == 1
        assert answers[0]["content"] == final.data["full_response"] and answers[0]["attempt"] == 2
    finally:
        await sock.disconnect()


async def test_a_malformed_job_is_dead_lettered_and_the_next_job_is_served(
    cluster: Cluster, api_of: dict[str, Api]
) -> None:
    url = cluster.env["INSIGHTHUB_AMQP_URL"]
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        await channel.confirm_delivery()
        await channel.basic_publish(
            b"{not json",
            exchange="insighthub.jobs",
            routing_key="chat.request",
            properties=aiormq.spec.Basic.Properties(delivery_mode=2),
        )
        parked = 0
        for _ in range(100):
            ok = await channel.queue_declare("insighthub.parked", passive=True)
            parked = ok.message_count or 0
            if parked:
                break
            await asyncio.sleep(0.1)
        assert parked >= 1
    finally:
        await connection.close()
    node = await cluster.node()
    user = await api(api_of, node).user()
    ws = await api(api_of, node).workspace(
        user, llm_provider="synthetic", llm_model="tokens-5-rate-0"
    )
    sock = await connect(node.url, user.token)
    try:
        ack = await sock.call(
            "chat_message", {"workspace_id": ws["id"], "message": "after garbage"}
        )
        assert (await sock.wait_final(ack["message_id"], timeout=30)).name == "chat_complete"
    finally:
        await sock.disconnect()


async def test_a_worker_hands_running_answers_back_on_sigterm(
    cluster: Cluster, api_of: dict[str, Api]
) -> None:
    for proc in [p for p in cluster.procs if p.name.startswith("worker") and p.alive]:
        await proc.stop()
    leaving = cluster.worker("all", INSIGHTHUB_SHUTDOWN_GRACE_S="0.5")
    node = await cluster.node()
    user = await api(api_of, node).user()
    ws = await api(api_of, node).workspace(
        user, llm_provider="synthetic", llm_model="tokens-200-rate-50"
    )
    sock = await connect(node.url, user.token)
    try:
        ack = await sock.call("chat_message", {"workspace_id": ws["id"], "message": "hand me back"})
        await sock.wait_chunks(ack["message_id"], 5, timeout=30)
        code = await leaving.stop(signal.SIGTERM)
        assert code == 0, leaving.log()
        assert "stopped" in leaving.log()
        cluster.worker("all")
        final = await sock.wait_final(ack["message_id"], timeout=60)
        assert final.name == "chat_complete" and final.data["attempt"] == 2
        assert len(final.data["full_response"].split()) == 200
    finally:
        await sock.disconnect()
