"""The load generator: one process of python-socketio clients (websocket transport).

The harness starts it pinned to the client core as ``python -m benchmarks.loadgen --serve``
and writes one JSON spec a line to its stdin (or once: ``python -m benchmarks.loadgen
'<spec json>'``); it reads JSON lines from stdout (``{"phase": ...}`` while a spec runs,
then ``{"result": ...}``) and may write command lines to stdin (``next``, ``resume``).

Latency is read from the chunk text: with the synthetic provider's ``-stamp`` models each
token is ``t<time_ns>``, the wall-clock moment the provider yielded it, so a chunk that
carries several coalesced tokens gives one latency per token.

The clients are python-socketio's ``AsyncClient`` with one change that applies equally
to every server measured: engine.io's client runs each received message in a new task;
``_InlineEngineIO`` handles it inline (the handlers here are plain functions), so the
load generator spends its core on reading, not on task churn, and saturates later than
the servers it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import engineio
import orjson
import socketio
from engineio import packet as eio_packet


class _OrjsonModule:
    """The ``json`` module interface python-socketio expects, backed by orjson."""

    JSONDecodeError = orjson.JSONDecodeError

    @staticmethod
    def dumps(obj: Any, **_kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(s: str | bytes, **_kwargs: Any) -> Any:
        return orjson.loads(s)


class _InlineEngineIO(engineio.AsyncClient):  # type: ignore[misc]
    async def _receive_packet(self, pkt: eio_packet.Packet) -> None:
        if pkt.packet_type == eio_packet.MESSAGE:
            await self._trigger_event("message", pkt.data, run_async=False)
        else:
            await super()._receive_packet(pkt)


class BenchClient(socketio.AsyncClient):  # type: ignore[misc]
    def _engineio_client_class(self) -> type[engineio.AsyncClient]:
        return _InlineEngineIO


def _small_rcvbuf_session(rcvbuf: int) -> aiohttp.ClientSession:
    """A session whose sockets have a small receive buffer: a stopped reader backs the
    server up after a few kilobytes instead of the kernel's megabytes."""

    def factory(addr: tuple[Any, ...]) -> socket.socket:
        family, kind, proto, _name, _sockaddr = addr
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        return sock

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(socket_factory=factory))


def emit_line(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def read_command() -> str:
    line: str = await asyncio.to_thread(sys.stdin.readline)
    return line.strip()


FINALS = ("chat_complete", "chat_cancelled", "chat_error")


class Stream:
    """What one client saw of the answer it asked for."""

    __slots__ = (
        "ack",
        "arrived_ns",
        "chunks",
        "done",
        "final",
        "first_chunk",
        "first_ns",
        "first_stamp",
        "last_ns",
        "lat",
        "order_errors",
        "sent_ns",
        "text_len",
        "tokens",
    )

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.arrived_ns: list[int] = []  # when each of ``lat`` arrived (one per chunk)
        self.tokens = 0
        self.chunks = 0
        self.text_len = 0
        self.order_errors = 0
        self.sent_ns = 0
        self.first_ns = 0
        self.last_ns = 0
        self.first_stamp = 0
        self.final: str | None = None
        self.ack: dict[str, Any] | None = None
        self.done = asyncio.Event()
        self.first_chunk = asyncio.Event()

    def on_chunk(self, data: dict[str, Any]) -> None:
        now = time.time_ns()
        text = data["chunk"]
        offset = data["offset"]
        if offset + len(text) <= self.text_len:
            return  # a duplicate (a resume's catch-up may overlap)
        if offset > self.text_len:
            self.order_errors += 1
        else:
            text = text[self.text_len - offset :]
        self.text_len += len(text)
        words = text.split()
        lat = self.lat
        for w in words:
            stamp = int(w[1:])
            lat.append((now - stamp) / 1e6)
        self.arrived_ns.extend([now] * len(words))
        if not self.chunks:
            self.first_ns = now
            self.first_stamp = int(words[0][1:]) if words else 0
            self.first_chunk.set()
        self.chunks += 1
        self.tokens += len(words)
        self.last_ns = now

    def on_final(self, name: str) -> None:
        self.final = name
        self.done.set()


class Conn:
    """A connected client and the stream it is currently following."""

    def __init__(self, client: BenchClient) -> None:
        self.client = client
        self.stream = Stream()
        self.disconnected = asyncio.Event()
        client.on("chat_chunk", lambda data: self.stream.on_chunk(data))
        for name in FINALS:
            client.on(name, lambda _data, _n=name: self.stream.on_final(_n))
        client.on("disconnect", lambda *_a: self.disconnected.set())


async def connect(url: str, token: str, *, rcvbuf: int | None = None) -> Conn:
    kwargs: dict[str, Any] = {"reconnection": False, "json": _OrjsonModule, "handle_sigint": False}
    if rcvbuf:
        kwargs["http_session"] = _small_rcvbuf_session(rcvbuf)
    client = BenchClient(**kwargs)
    conn = Conn(client)
    await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=30)
    return conn


async def connect_many(url: str, token: str, count: int, parallel: int = 32) -> list[Conn]:
    slots = asyncio.Semaphore(parallel)

    async def one() -> Conn:
        async with slots:
            for attempt in range(3):
                try:
                    return await connect(url, token)
                except (socketio.exceptions.ConnectionError, aiohttp.ClientError):
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.2)
            raise AssertionError("unreachable")

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_all(conns: Iterable[Conn]) -> None:
    async def one(conn: Conn) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.client.disconnect(), 5)
        http = conn.client.eio.http
        if http is not None and not http.closed:
            with contextlib.suppress(Exception):
                await http.close()

    await asyncio.gather(*(one(c) for c in conns))


def chat_payload(workspace: str, text: str) -> dict[str, Any]:
    return {"workspace_id": workspace, "message": text, "rag_type": "none"}


# statistics ------------------------------------------------------------------------------
def percentile(sorted_values: list[float], q: float) -> float:
    """The value at rank ``q`` % of an already sorted list (q in 0..100), no interpolation."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[rank]


def summarize(values: Iterable[float]) -> dict[str, Any]:
    data = sorted(values)
    if not data:
        return {"n": 0}
    return {
        "n": len(data),
        "mean": sum(data) / len(data),
        "p50": percentile(data, 50),
        "p90": percentile(data, 90),
        "p99": percentile(data, 99),
        "max": data[-1],
        "min": data[0],
        # 201 points of the distribution, for the plot
        "quantiles": [percentile(data, q / 2) for q in range(201)],
    }


# modes -------------------------------------------------------------------------------------
def _p99_by_second(streams: list[Stream], start_ns: int) -> list[float]:
    """p99 of the tokens that arrived in each second of the run: the ramp and any periodic
    stall (checkpoints, sweeps, collections) show up as the seconds they happened in."""
    buckets: dict[int, list[float]] = {}
    for st in streams:
        for v, at in zip(st.lat, st.arrived_ns, strict=True):
            buckets.setdefault(max(0, (at - start_ns) // 1_000_000_000), []).append(v)
    return [
        round(percentile(sorted(buckets[i]), 99), 2) if buckets.get(i) else 0.0
        for i in range(max(buckets, default=-1) + 1)
    ]


async def mode_streams(spec: dict[str, Any]) -> dict[str, Any]:
    """``count`` clients, each asks for one answer (starts spread over ``stagger_s``)."""
    count = int(spec["count"])
    conns = await connect_many(spec["url"], spec["token"], count)
    emit_line({"phase": "connected", "count": count})
    timeout = float(spec.get("timeout_s", 120))
    stagger = float(spec.get("stagger_s", 0.0))
    errors: list[str] = []

    async def run(i: int, conn: Conn) -> None:
        await asyncio.sleep(stagger * i / max(1, count))
        st = conn.stream
        st.sent_ns = time.time_ns()
        try:
            ack = await conn.client.call(
                "chat_message", chat_payload(spec["workspace"], f"bench {i}"), timeout=timeout
            )
            st.ack = ack
            if not ack.get("ok"):
                errors.append(str(ack))
                return
            await asyncio.wait_for(st.done.wait(), timeout)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    async def flowing() -> None:
        """Tell the harness when every stream has its first token (or has ended)."""
        waits = []
        for c in conns:
            first = asyncio.ensure_future(c.stream.first_chunk.wait())
            done = asyncio.ensure_future(c.stream.done.wait())
            waits.append((first, done))
        try:
            for first, done in waits:
                await asyncio.wait({first, done}, return_when=asyncio.FIRST_COMPLETED)
            emit_line({"phase": "flowing"})
        finally:
            for pair in waits:
                for fut in pair:
                    fut.cancel()

    started = time.time_ns()
    watcher = asyncio.ensure_future(flowing())
    await asyncio.gather(*(run(i, c) for i, c in enumerate(conns)))
    ended = time.time_ns()
    if not watcher.done():
        watcher.cancel()
        emit_line({"phase": "flowing"})  # some stream failed before its first token
    emit_line({"phase": "streamed"})
    await close_all(conns)

    streams = [c.stream for c in conns]
    rate = float(spec.get("rate", 0))
    expected = int(spec.get("tokens", 0))
    kept = 0
    rates: list[float] = []
    for st in streams:
        if st.tokens > 1 and st.last_ns > st.first_ns:
            achieved = (st.tokens - 1) / ((st.last_ns - st.first_ns) / 1e9)
            rates.append(achieved)
            if st.tokens >= expected and (rate <= 0 or achieved >= 0.95 * rate):
                kept += 1
    tokens = sum(st.tokens for st in streams)
    first = min((st.first_ns for st in streams if st.first_ns), default=0)
    last = max((st.last_ns for st in streams), default=0)
    window_s = (last - first) / 1e9 if last > first else float("nan")
    all_flowing_ns = max((st.first_ns for st in streams if st.first_ns), default=0)
    return {
        "streams": count,
        "completed": sum(1 for st in streams if st.final == "chat_complete"),
        "kept_rate": kept,
        "tokens": tokens,
        "tokens_expected": expected * count,
        "chunks": sum(st.chunks for st in streams),
        "order_errors": sum(st.order_errors for st in streams),
        "errors": errors[:10],
        "error_count": len(errors),
        "window_s": window_s,
        "run_s": (ended - started) / 1e9,
        "tokens_per_s": (tokens - 1) / window_s if tokens > 1 else float("nan"),
        "min_stream_rate": min(rates, default=float("nan")),
        "latency_ms": summarize(v for st in streams for v in st.lat),
        "p99_by_second_ms": _p99_by_second(streams, first),
        # chat_message sent -> first chunk of each stream while the others start and flow:
        # how long a turn waits to start when many arrive at once (s3 measures one alone)
        "first_token_ms": summarize(
            (st.first_ns - st.sent_ns) / 1e6 for st in streams if st.first_ns and st.sent_ns
        ),
        # The same as latency_ms once every stream has had its first token: without the
        # turns' set-up (storing and claiming each turn), so the two together say where the
        # tail comes from.
        "latency_all_flowing_ms": summarize(
            v
            for st in streams
            for v, at in zip(st.lat, st.arrived_ns, strict=True)
            if at >= all_flowing_ns
        ),
    }


async def mode_ttft(spec: dict[str, Any]) -> dict[str, Any]:
    """Sequential answers from one client: ``chat_message`` sent → first ``chat_chunk``."""
    conn = await connect(spec["url"], spec["token"])
    ttft: list[float] = []
    to_provider: list[float] = []
    errors: list[str] = []
    warmup = int(spec.get("warmup", 3))
    for i in range(warmup + int(spec["trials"])):
        st = conn.stream = Stream()
        st.sent_ns = time.time_ns()
        try:
            ack = await conn.client.call(
                "chat_message", chat_payload(spec["workspace"], f"ttft {i}"), timeout=30
            )
            if not ack.get("ok"):
                errors.append(str(ack))
                continue
            await asyncio.wait_for(st.first_chunk.wait(), 30)
            await asyncio.wait_for(st.done.wait(), 30)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if i >= warmup:
            ttft.append((st.first_ns - st.sent_ns) / 1e6)
            to_provider.append((st.first_stamp - st.sent_ns) / 1e6)
        await asyncio.sleep(float(spec.get("pause_s", 0.01)))
    await close_all([conn])
    return {
        "trials": len(ttft),
        "errors": errors[:10],
        "error_count": len(errors),
        "ttft_ms": summarize(ttft),
        "request_to_provider_ms": summarize(to_provider),
    }


def _closed_at(path: Path, question: str) -> float | None:
    if not path.exists():
        return None
    for line in path.read_bytes().splitlines():
        if question.encode() not in line:
            continue
        rec = orjson.loads(line)
        if rec.get("event") == "closed" and rec.get("question") == question:
            return float(rec["t"])
    return None


async def mode_cancel(spec: dict[str, Any]) -> dict[str, Any]:
    """``cancel_message`` sent → the provider's generator closed (from its record file)."""
    conn = await connect(spec["url"], spec["token"])
    record = Path(spec["record_path"])
    latencies: list[float] = []
    acks: list[float] = []
    errors: list[str] = []
    for i in range(int(spec["trials"])):
        question = f"cancel {i} {uuid.uuid4().hex}"
        st = conn.stream = Stream()
        try:
            ack = await conn.client.call(
                "chat_message", chat_payload(spec["workspace"], question), timeout=30
            )
            if not ack.get("ok"):
                errors.append(str(ack))
                continue
            await asyncio.wait_for(st.first_chunk.wait(), 30)
            await asyncio.sleep(0.02)
            t0 = time.time()
            answer = await conn.client.call(
                "cancel_message",
                {"session_id": ack["session_id"], "message_id": ack["message_id"]},
                timeout=30,
            )
            acks.append((time.time() - t0) * 1e3)
            if not answer.get("ok"):
                errors.append(str(answer))
                continue
            await asyncio.wait_for(st.done.wait(), 30)
            closed = None
            for _ in range(200):
                closed = _closed_at(record, question)
                if closed is not None:
                    break
                await asyncio.sleep(0.01)
            if closed is None:
                errors.append("the provider's close was not recorded")
                continue
            latencies.append((closed - t0) * 1e3)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    await close_all([conn])
    return {
        "trials": len(latencies),
        "errors": errors[:10],
        "error_count": len(errors),
        "cancel_to_closed_ms": summarize(latencies),
        "cancel_ack_ms": summarize(acks),
    }


async def mode_idle(spec: dict[str, Any]) -> dict[str, Any]:
    """Connect in steps; after each step report and wait for ``next`` (the harness measures)."""
    conns: list[Conn] = []
    for total in spec["counts"]:
        conns.extend(await connect_many(spec["url"], spec["token"], int(total) - len(conns)))
        emit_line({"phase": "connected", "count": len(conns)})
        if await read_command() != "next":
            break
    alive = sum(1 for c in conns if c.client.connected)
    await close_all(conns)
    return {"connected": len(conns), "alive_at_end": alive}


async def mode_slow(spec: dict[str, Any]) -> dict[str, Any]:
    """A client that stops reading mid-stream (the harness SIGSTOPs this process), then
    comes back: reports whether the server dropped it and whether it could resume."""
    conn = await connect(spec["url"], spec["token"], rcvbuf=int(spec.get("rcvbuf", 4096)))
    st = conn.stream
    ack = await conn.client.call(
        "chat_message", chat_payload(spec["workspace"], f"slow {uuid.uuid4().hex}"), timeout=30
    )
    if not ack.get("ok"):
        return {"error": str(ack)}
    deadline = time.monotonic() + 30
    # a counter the chunk handler moves, polled: no event to wait for
    while st.tokens < int(spec.get("read_tokens", 50)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    emit_line({"phase": "streaming", "tokens": st.tokens})
    # The harness stops this process here and continues it later, then says "resume".
    await read_command()
    before = st.text_len
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(conn.disconnected.wait(), float(spec.get("drop_wait_s", 3)))
    result: dict[str, Any] = {
        "disconnected": conn.disconnected.is_set(),
        "text_before_drop": st.text_len,
        "read_after_continue": st.text_len - before,
        "resumed": False,
    }
    session_id, message_id = ack["session_id"], ack["message_id"]
    if conn.disconnected.is_set():
        await close_all([conn])
        fresh = await connect(spec["url"], spec["token"])
        fresh.stream = st  # the same text: the chunk rules continue from it
        answer = await fresh.client.call(
            "resume",
            {"session_id": session_id, "message_id": message_id, "offset": st.text_len},
            timeout=30,
        )
        result["resume_ack"] = {k: answer.get(k) for k in ("ok", "status", "attempt", "length")}
        chunks_before = st.chunks
        await asyncio.sleep(0.3)
        result["resumed"] = bool(answer.get("ok")) and st.chunks > chunks_before
        result["order_errors"] = st.order_errors
        conn = fresh
    with contextlib.suppress(Exception):
        await conn.client.call(
            "cancel_message", {"session_id": session_id, "message_id": message_id}, timeout=10
        )
    await close_all([conn])
    return result


MODES: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "streams": mode_streams,
    "ttft": mode_ttft,
    "cancel": mode_cancel,
    "idle": mode_idle,
    "slow": mode_slow,
}


async def _serve() -> None:
    """Run specs read from stdin, one a line, until ``exit`` or end of input: one process
    serves a whole benchmark run (python-socketio's import alone costs most of a second)."""
    while True:
        line = await read_command()
        if not line or line == "exit":
            return
        spec = json.loads(line)
        try:
            result = await MODES[spec["mode"]](spec)
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        emit_line({"result": result})


def main() -> None:
    try:
        import uvloop

        run: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    except ImportError:
        run = asyncio.run
    if sys.argv[1:] == ["--serve"]:
        run(_serve())
        return
    spec = json.loads(sys.argv[1])

    async def once() -> None:
        try:
            result = await MODES[spec["mode"]](spec)
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        emit_line({"result": result})

    run(once())


if __name__ == "__main__":
    main()
