"""The seven scenarios of the issue, each run against one target.

Each ``s<N>_...`` function takes a ``Target`` and the ``Params`` of this run and returns a
plain dict of figures (what the report and the JSON show). The load generator runs in its
own process on the client core (``LoadGen``); the server's memory (RSS of the API process)
and CPU (all its processes) are read here with psutil.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.servers import REPO, Target, pin, process_cpu_s, service_cpu_s

STAMP = "-stamp"


@dataclass(frozen=True)
class Params:
    """Sizes of one run; ``QUICK`` is the small version (well under a minute)."""

    throughput_tokens: int = 20_000
    throughput_repeats: int = 2
    stream_counts: tuple[int, ...] = (50, 200)
    stream_rate: float = 30.0
    stream_duration_s: float = 10.0
    stagger_s: float = 1.0
    ramp_counts: tuple[int, ...] = (250, 300, 350, 400, 500, 600, 800, 1000)
    ramp_down: tuple[int, ...] = (150, 100, 50)
    ramp_duration_s: float = 6.0
    knee_p99_ms: float = 100.0
    # s2_rounds: the largest count again, once per target per round, the targets one after
    # another, so each InsightHub p99 is compared with the bare server's of the same minute
    rounds: int = 3
    # Streams of a run start over some time (InsightHub stores each turn first); each lasts
    # this much longer per stream in the run, so all of them overlap for the run's duration.
    setup_allowance_s: float = 0.03
    ttft_trials: int = 100
    # turns started within one second, 3 tokens each: the CPU one turn costs
    burst_turns: int = 200
    idle_counts: tuple[int, ...] = (1000, 2000)
    slow_normal_streams: int = 50
    slow_duration_s: float = 20.0
    slow_rate: float = 1000.0
    slow_repeats: int = 5
    slow_extra_wait_s: float = 20.0
    slow_drop_wait_s: float = 10.0
    # long enough for the slow client's backlog to pass the kernel's buffers and the bound
    slow_expect_drop: bool = True
    settle_s: float = 1.0
    idle_cpu_s: float = 2.0
    cancel_trials: int = 30
    growth_counts: tuple[int, ...] = (1, 10, 100, 500)
    growth_rate: float = 10.0
    growth_duration_s: float = 10.0
    growth_window_s: float = 4.0


QUICK = Params(
    throughput_tokens=3000,
    throughput_repeats=1,
    stream_counts=(10, 30),
    stream_duration_s=1.0,
    stagger_s=0.2,
    ramp_counts=(60,),
    ramp_down=(10,),
    ramp_duration_s=0.6,
    rounds=2,
    setup_allowance_s=0.01,
    ttft_trials=12,
    burst_turns=30,
    idle_counts=(100, 200),
    slow_normal_streams=8,
    slow_duration_s=0.6,
    slow_rate=1000.0,
    slow_repeats=2,
    slow_extra_wait_s=0.3,
    slow_drop_wait_s=0.3,
    slow_expect_drop=False,
    settle_s=0.3,
    idle_cpu_s=0.4,
    cancel_trials=5,
    growth_counts=(1, 10, 30),
    growth_duration_s=1.2,
    growth_window_s=0.4,
)


def stream_tokens(p: Params, rate: float, duration_s: float, count: int) -> int:
    """Tokens per stream: ``duration_s`` at ``rate``, plus the setup allowance of the run."""
    return int(rate * (duration_s + p.setup_allowance_s * count))


def model(tokens: int, rate: float) -> str:
    rate_text = f"{rate:g}"
    return f"tokens-{tokens}-rate-{rate_text}{STAMP}"


# the load generator process ----------------------------------------------------------------
class LoadGen:
    """A load-generator process on the client core; JSON lines out, specs and commands in.

    ``persistent``: ``--serve`` runs one spec after another (``start(spec)``); otherwise
    the process runs the one spec it was started with.
    """

    def __init__(
        self, cores: set[int] | None, log: Path, spec: dict[str, Any] | None = None
    ) -> None:
        self._log = log.open("ab")
        arg = "--serve" if spec is None else json.dumps(spec)
        self.persistent = spec is None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.loadgen", arg],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            preexec_fn=pin(cores),
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def start(self, spec: dict[str, Any]) -> LoadGen:
        self.send(json.dumps(spec))
        return self

    def line(self, timeout: float) -> dict[str, Any]:
        try:
            raw = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the load generator said nothing for {timeout:.0f} s") from None
        if raw is None:
            raise RuntimeError(f"the load generator exited ({self.proc.wait()}); see its log")
        return dict(json.loads(raw))

    def wait_phase(self, phase: str, timeout: float = 120) -> dict[str, Any]:
        while True:
            msg = self.line(timeout)
            if msg.get("phase") == phase:
                return msg
            if "result" in msg:
                raise RuntimeError(f"the load generator ended early: {msg['result']}")

    def result(self, timeout: float = 180) -> dict[str, Any]:
        while True:
            msg = self.line(timeout)
            if "result" in msg:
                if not self.persistent:
                    self.close()
                result = dict(msg["result"])
                if "error" in result and len(result) == 1:
                    raise RuntimeError(f"the load generator failed: {result['error']}")
                return result

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def cpu_s(self) -> float:
        return process_cpu_s(self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None and self.persistent:
            try:
                self.send("exit")
            except OSError:
                pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class RssSampler:
    """The API process's RSS every 50 ms while it runs: start, peak, end."""

    def __init__(self, target: Target, interval_s: float = 0.05) -> None:
        self.target = target
        self.interval_s = interval_s
        self.start = target.rss()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.peak = max(self.peak, self.target.rss())
            except Exception:
                return

    def finish(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        end = self.target.rss()
        return {"start": self.start, "peak": max(self.peak, end), "end": end}


@dataclass
class Env:
    """What every scenario needs besides the target: cores, logs, the load generator."""

    client_cores: set[int] | None
    logdir: Path
    _shared: LoadGen | None = None

    def _spec(self, target: Target, mode: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"mode": mode, "url": target.url, "token": target.token, **spec}

    def loadgen(self, target: Target, mode: str, **spec: Any) -> LoadGen:
        """The run's one load-generator process, started on ``spec``."""
        if self._shared is None or self._shared.proc.poll() is not None:
            self._shared = LoadGen(self.client_cores, self.logdir / "loadgen.log")
        return self._shared.start(self._spec(target, mode, spec))

    def separate(self, target: Target, mode: str, **spec: Any) -> LoadGen:
        """A process of its own (one the harness stops and continues)."""
        return LoadGen(
            self.client_cores, self.logdir / "loadgen-separate.log", self._spec(target, mode, spec)
        )

    def reset(self) -> None:
        """After a failure: the shared process may be mid-spec; start afresh next time."""
        if self._shared is not None:
            self._shared.kill()
            self._shared = None

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None


def run_streams(
    env: Env,
    target: Target,
    count: int,
    tokens: int,
    rate: float,
    *,
    stagger_s: float = 0.0,
    steady_s: float | None = None,
) -> dict[str, Any]:
    """``count`` clients each following one answer; adds server CPU and RSS figures.

    ``steady_s``: also read the server's CPU over this many seconds of the steady state,
    from just after every stream has its first token (the setup of each answer is not a
    per-token cost).
    """
    spec_model = model(tokens, rate)
    gen = env.loadgen(
        target,
        "streams",
        workspace=target.workspace(spec_model),
        count=count,
        tokens=tokens,
        rate=rate,
        stagger_s=stagger_s,
        timeout_s=max(60.0, 3 * tokens / rate if rate else 60.0),
    )
    gen.wait_phase("connected", timeout=180)
    t0 = time.monotonic()
    cpu0 = target.cpu_s()
    services0 = service_cpu_s() if target.uses_services else 0.0
    client0 = gen.cpu_s()
    rss = RssSampler(target)
    gen.wait_phase("flowing", timeout=180)
    window: dict[str, float] = {}
    if steady_s is not None:
        time.sleep(0.2)
        a, ca = time.monotonic(), target.cpu_s()
        time.sleep(steady_s)
        b, cb = time.monotonic(), target.cpu_s()
        window = {"window_s": b - a, "cpu_s": cb - ca, "from_start_s": a - t0}
    gen.wait_phase("streamed", timeout=max(120.0, 4 * tokens / rate if rate else 120.0))
    elapsed = time.monotonic() - t0
    cpu = target.cpu_s() - cpu0
    services = service_cpu_s() - services0 if target.uses_services else None
    client_cpu = gen.cpu_s() - client0
    result = gen.result()
    # near 1.0: the load generator, not the server, may be what limits this run
    result["client_cpu_utilisation"] = client_cpu / elapsed if elapsed else float("nan")
    result["server"] = {
        "cpu_s": cpu,
        # RabbitMQ's and PostgreSQL's share (distributed), anything else using them included
        **({"services_cpu_s": services} if services is not None else {}),
        "elapsed_s": elapsed,
        "cpu_utilisation": cpu / elapsed if elapsed else float("nan"),
        "rss": rss.finish(),
        **({"steady": window} if window else {}),
    }
    result["model"] = spec_model
    return result


def _lat(result: dict[str, Any]) -> dict[str, Any]:
    return dict(result.get("latency_ms", {}))


def _stream_row(result: dict[str, Any]) -> dict[str, Any]:
    lat = _lat(result)
    return {
        "streams": result["streams"],
        "p50_ms": lat.get("p50"),
        "p99_ms": lat.get("p99"),
        "max_ms": lat.get("max"),
        "p99_all_flowing_ms": result.get("latency_all_flowing_ms", {}).get("p99"),
        "all_kept_rate": result["kept_rate"] == result["streams"]
        and result["tokens"] >= result["tokens_expected"],
        "kept_rate": result["kept_rate"],
        "tokens": result["tokens"],
        "tokens_expected": result["tokens_expected"],
        "chunks": result["chunks"],
        "tokens_per_s": result["tokens_per_s"],
        "min_stream_rate": result["min_stream_rate"],
        "order_errors": result["order_errors"],
        "errors": result["error_count"],
        "server_cpu_utilisation": result["server"]["cpu_utilisation"],
        "client_cpu_utilisation": result["client_cpu_utilisation"],
        "quantiles_ms": lat.get("quantiles"),
        "p99_by_second_ms": result.get("p99_by_second_ms"),
        "first_token_p50_ms": result.get("first_token_ms", {}).get("p50"),
        "first_token_p99_ms": result.get("first_token_ms", {}).get("p99"),
    }


def _knee_p99(row: dict[str, Any]) -> float:
    """A run's p99 for the knee search: infinite when tokens were lost or never came."""
    if row["p99_ms"] is None or row["tokens"] < row["tokens_expected"]:
        return float("inf")
    return float(row["p99_ms"])


# 1 ---------------------------------------------------------------------------------------------
def s1_throughput(env: Env, target: Target, p: Params) -> dict[str, Any]:
    """One stream as fast as the provider goes: tokens delivered per second (best of N)."""
    runs = [
        run_streams(env, target, 1, p.throughput_tokens, 0.0) for _ in range(p.throughput_repeats)
    ]
    best = max(runs, key=lambda r: r["tokens_per_s"])
    lat = _lat(best)
    return {
        "tokens": p.throughput_tokens,
        "tokens_per_s": best["tokens_per_s"],
        "all_runs_tokens_per_s": [r["tokens_per_s"] for r in runs],
        "events": best["chunks"],
        "events_per_s": best["chunks"] / best["window_s"] if best["window_s"] else None,
        "tokens_per_event": best["tokens"] / max(1, best["chunks"]),
        "complete": best["tokens"] == p.throughput_tokens and best["order_errors"] == 0,
        "latency_p50_ms": lat.get("p50"),
        "latency_p99_ms": lat.get("p99"),
        "server_cpu_utilisation": best["server"]["cpu_utilisation"],
    }


# 2 ---------------------------------------------------------------------------------------------
def s2_streams(env: Env, target: Target, p: Params) -> dict[str, Any]:
    """N streams at 30 tokens/s: per-token latency; then the count where p99 passes 100 ms.

    A count is past the limit only when a second run of it is too (``confirmed``).
    """
    runs = {}
    for count in p.stream_counts:
        tokens = stream_tokens(p, p.stream_rate, p.stream_duration_s, count)
        res = run_streams(env, target, count, tokens, p.stream_rate, stagger_s=p.stagger_s)
        runs[str(count)] = _stream_row(res)
    points: dict[int, float] = {int(k): _knee_p99(v) for k, v in runs.items()}
    ramp: dict[str, Any] = {}
    retries: dict[str, Any] = {}

    def ramp_run(count: int) -> dict[str, Any]:
        ramp_tokens = stream_tokens(p, p.stream_rate, p.ramp_duration_s, count)
        res = run_streams(env, target, count, ramp_tokens, p.stream_rate, stagger_s=p.stagger_s)
        row = _stream_row(res)
        row.pop("quantiles_ms", None)
        return row

    def confirmed(count: int) -> float:
        """The count's p99, run once more if it passed the limit: a count is past the knee
        when two runs say so (the better of the two), not when one run hit a stall of the
        machine's. Every target gets the same second chance."""
        if points[count] > p.knee_p99_ms:
            again = ramp_run(count)
            retries[str(count)] = again
            points[count] = min(points[count], _knee_p99(again))
        return points[count]

    def probe(count: int) -> float:
        row = ramp_run(count)
        ramp[str(count)] = row
        points[count] = _knee_p99(row)
        return confirmed(count)

    top = max(p.stream_counts)
    knee: int | None = None
    holds: int | None = None
    if confirmed(top) > p.knee_p99_ms:
        knee = top
        for count in p.ramp_down:
            if count >= top:
                continue
            if probe(count) > p.knee_p99_ms:
                knee = count
            else:
                holds = count
                break
    else:
        holds = top
        for count in p.ramp_counts:
            if count <= top:
                continue
            if probe(count) > p.knee_p99_ms:
                knee = count
                break
            holds = count
    return {
        "rate": p.stream_rate,
        "runs": runs,
        "ramp": ramp,
        "retries": retries,  # the second run of each count whose first passed the limit
        "knee_streams": knee,  # the first count whose p99 passed the limit (None: never)
        "knee_reached": knee is not None,
        "holds_streams": holds,  # the largest count measured within the limit
        # what the ratio compares: the knee, or the largest count tried when none passed
        "knee_or_cap": knee if knee is not None else max(points),
        "p99_by_streams": {str(k): v for k, v in sorted(points.items())},
    }


def s2_rounds(env: Env, target: Target, p: Params) -> dict[str, Any]:
    """One round of the largest ``s2_streams`` count (the issue's 200 streams at 30/s).

    The harness runs this ``rounds`` times, each round on every target one after another
    (``ROUNDS``), and ``round_summary`` puts the rounds together. A single run's p99 is set
    by its worst second, and on a shared machine that second is as often the machine's as
    the server's: the bare server's own p99 at 200 streams has read 6 and 54 ms in two
    full runs of one day. ``s2_streams`` runs each target's counts minutes apart from the
    others'; here the runs compared are a minute apart at most, and the check takes the
    median of the paired differences.
    """
    count = max(p.stream_counts)
    tokens = stream_tokens(p, p.stream_rate, p.stream_duration_s, count)
    row = _stream_row(run_streams(env, target, count, tokens, p.stream_rate, stagger_s=p.stagger_s))
    row.pop("quantiles_ms", None)
    return row


def round_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds of one target as one result: each round kept, the medians beside them."""
    done = [r for r in rounds if "error" not in r]
    p99s = [r["p99_ms"] for r in done if r.get("p99_ms") is not None]
    return {
        "streams": done[0]["streams"] if done else None,
        "rounds": rounds,
        "p99_ms": statistics.median(p99s) if p99s else None,
        "p99_ms_by_round": [r.get("p99_ms") for r in rounds],
        "all_kept_rate": bool(done)
        and len(done) == len(rounds)
        and all(r["all_kept_rate"] for r in done),
    }


# 3 ---------------------------------------------------------------------------------------------
def s3_ttft(env: Env, target: Target, p: Params) -> dict[str, Any]:
    """``chat_message`` sent → first ``chat_chunk``, with a provider that yields at once."""
    gen = env.loadgen(target, "ttft", workspace=target.workspace(model(1, 0)), trials=p.ttft_trials)
    res = gen.result()
    ttft = res["ttft_ms"]
    to_provider = res["request_to_provider_ms"]
    return {
        "trials": res["trials"],
        "errors": res["error_count"],
        "p50_ms": ttft.get("p50"),
        "p99_ms": ttft.get("p99"),
        "max_ms": ttft.get("max"),
        "request_to_provider_p50_ms": to_provider.get("p50"),
        "burst": turn_cpu(env, target, p.burst_turns),
    }


def turn_cpu(env: Env, target: Target, turns: int, tokens: int = 3) -> dict[str, Any]:
    """CPU one chat turn costs: ``turns`` short answers started within a second, from
    every client connected to every answer streamed (connecting is not counted).

    This is what a burst of new turns (the ramp of ``s2_streams``) asks of the machine
    on top of the streaming, the distributed target's share in RabbitMQ and PostgreSQL
    included (``run_streams`` reads it off those processes).
    """
    res = run_streams(env, target, turns, tokens, 30.0, stagger_s=1.0)
    server = res["server"]
    out: dict[str, Any] = {
        "turns": turns,
        "tokens_per_turn": tokens,
        "errors": res["error_count"],
        "server_cpu_ms_per_turn": server["cpu_s"] / turns * 1000,
        "first_token_p99_ms": res.get("first_token_ms", {}).get("p99"),
    }
    if "services_cpu_s" in server:
        out["services_cpu_ms_per_turn"] = server["services_cpu_s"] / turns * 1000
    return out


# 4 ---------------------------------------------------------------------------------------------
def _settled_rss(target: Target, settle_s: float) -> int:
    time.sleep(settle_s)
    samples = []
    for _ in range(5):
        samples.append(target.rss())
        time.sleep(settle_s / 10)
    return int(statistics.median(samples))


def s4_idle(env: Env, target: Target, p: Params) -> dict[str, Any]:
    """Memory per connected, authenticated, idle socket (RSS growth / sockets)."""
    base = _settled_rss(target, p.settle_s)
    gen = env.loadgen(target, "idle", counts=list(p.idle_counts))
    per: dict[str, Any] = {}
    try:
        for i, count in enumerate(p.idle_counts):
            msg = gen.wait_phase("connected", timeout=300)
            if msg["count"] != count:
                raise RuntimeError(f"connected {msg['count']} sockets, wanted {count}")
            rss = _settled_rss(target, p.settle_s)
            per[str(count)] = {
                "rss": rss,
                "bytes_per_socket": (rss - base) / count,
            }
            gen.send("next" if i + 1 < len(p.idle_counts) else "done")
        res = gen.result()
    except Exception:
        env.reset()
        raise
    return {"base_rss": base, "sockets": per, "alive_at_end": res["alive_at_end"]}


# 5 ---------------------------------------------------------------------------------------------
DROP_MARKER = "packets behind"  # app/realtime/backpressure.py's warning when it drops a socket


def _drops(target: Target) -> int:
    return sum(
        log.read_text(errors="replace").count(DROP_MARKER) for log in target.logs if log.exists()
    )


def s5_slow_client(env: Env, target: Target, p: Params) -> dict[str, Any]:
    """N normal streams without, then with, a client that stops reading mid-stream.

    The slow client's process is stopped (SIGSTOP) after its first tokens; its server keeps
    streaming to it at ``slow_rate``. The kernel takes the first megabytes (the server's
    send buffer grows to ``tcp_wmem`` max); only then does the server's own queue grow.

    The pair of runs is repeated ``slow_repeats`` times and the figures are the medians:
    one run's p99 moves by more than the 10 % the check allows on a shared machine (the
    bare server's own ratio has ranged from 0.6 to 2.9 in single pairs). Every other pair
    runs its halves the other way round, so whatever drifts over a pair (the data a server
    has stored, the memory the previous slow client left) is not always on the same side.
    """
    pairs = [_slow_pair(env, target, p, slow_first=i % 2 == 1) for i in range(p.slow_repeats)]

    def median(key: str) -> Any:
        values = [pair[key] for pair in pairs if pair[key] is not None]
        return statistics.median(values) if values else None

    return {
        "normal_streams": p.slow_normal_streams,
        "slow_rate": p.slow_rate,
        "repeats": len(pairs),
        "p99_without_ms": median("p99_without_ms"),
        "p99_with_ms": median("p99_with_ms"),
        "p99_change": median("p99_change"),
        "p99_changes": [pair["p99_change"] for pair in pairs],
        "all_kept_rate_with": all(pair["all_kept_rate_with"] for pair in pairs),
        "rss_growth_without": median("rss_growth_without"),
        "rss_growth_with": median("rss_growth_with"),
        "slow_client_bytes": median("slow_client_bytes"),
        "server_dropped_after_s": median("server_dropped_after_s"),
        "drop_expected": p.slow_expect_drop,
        # every pair's slow client was dropped (resumed): one that was not is the finding
        "slow_disconnected": all(pair["slow_disconnected"] for pair in pairs),
        "slow_resumed": all(pair["slow_resumed"] for pair in pairs),
        "pairs": pairs,
    }


def _slow_pair(env: Env, target: Target, p: Params, *, slow_first: bool) -> dict[str, Any]:
    """One run of the normal streams without the slow client and one with it, in that
    order or (``slow_first``) the other way round."""
    n = p.slow_normal_streams
    tokens = stream_tokens(p, p.stream_rate, p.slow_duration_s, n)

    def normal_streams() -> dict[str, Any]:
        return run_streams(env, target, n, tokens, p.stream_rate, stagger_s=p.stagger_s)

    without = None if slow_first else normal_streams()
    slow = env.separate(
        target,
        "slow",
        workspace=target.workspace(model(int(p.slow_rate * 600), p.slow_rate)),
        read_tokens=50,
        drop_wait_s=p.slow_drop_wait_s,
    )
    stopped = False
    drops0 = _drops(target)
    dropped_after: float | None = None
    try:
        slow.wait_phase("streaming", timeout=60)
        slow.signal(signal.SIGSTOP)
        stopped = True
        t_stop = time.monotonic()
        rss = RssSampler(target)
        with_slow = normal_streams()
        if target.kind != "bare":  # the bare server has no bound: it never drops anyone
            deadline = time.monotonic() + p.slow_extra_wait_s
            while _drops(target) == drops0 and time.monotonic() < deadline:
                time.sleep(0.1)
        if _drops(target) > drops0:
            dropped_after = time.monotonic() - t_stop  # at most this long after the stop
        rss_with = rss.finish()
        slow.signal(signal.SIGCONT)
        stopped = False
        slow.send("resume")
        slow_res = slow.result(timeout=90)
    finally:
        if stopped:
            slow.signal(signal.SIGCONT)
        slow.close()
    if without is None:
        without = normal_streams()
    p99_without = _lat(without).get("p99")
    p99_with = _lat(with_slow).get("p99")
    growth_without = without["server"]["rss"]["peak"] - without["server"]["rss"]["start"]
    growth_with = rss_with["peak"] - rss_with["start"]
    return {
        "normal_streams": n,
        "order": ["with", "without"] if slow_first else ["without", "with"],
        "p99_without_ms": p99_without,
        "p99_with_ms": p99_with,
        "p99_change": (p99_with / p99_without) if p99_without and p99_with else None,
        "all_kept_rate_with": with_slow["kept_rate"] == n,
        "rss_growth_without": growth_without,
        "rss_growth_with": growth_with,
        # what the slow client cost the server beyond the normal run's own growth
        "slow_client_bytes": max(0, growth_with - growth_without),
        "server_dropped_after_s": dropped_after,
        "slow_disconnected": slow_res.get("disconnected"),
        "slow_resumed": slow_res.get("resumed"),
        "slow_detail": slow_res,
    }


# 6 ---------------------------------------------------------------------------------------------
def s6_cancel(env: Env, target: Target, p: Params) -> dict[str, Any]:
    """``cancel_message`` sent → the provider's generator closed (its record file's time)."""
    gen = env.loadgen(
        target,
        "cancel",
        workspace=target.workspace(model(100_000, 100)),
        trials=p.cancel_trials,
        record_path=str(target.record_path),
    )
    res = gen.result()
    lat = res["cancel_to_closed_ms"]
    return {
        "trials": res["trials"],
        "errors": res["error_count"],
        "error_samples": res["errors"],
        "p50_ms": lat.get("p50"),
        "p99_ms": lat.get("p99"),
        "max_ms": lat.get("max"),
        "ack_p50_ms": res["cancel_ack_ms"].get("p50"),
    }


# 7 ---------------------------------------------------------------------------------------------
def s7_growth(env: Env, target: Target, p: Params) -> dict[str, Any]:
    """Server CPU per token in the steady state as the number of streams grows."""
    idle_a, idle_c = time.monotonic(), target.cpu_s()
    time.sleep(p.idle_cpu_s)
    idle_rate = (target.cpu_s() - idle_c) / (time.monotonic() - idle_a)
    by_count: dict[str, Any] = {}
    for count in p.growth_counts:
        tokens = stream_tokens(p, p.growth_rate, p.growth_duration_s, count)
        duration = tokens / p.growth_rate
        res = run_streams(
            env,
            target,
            count,
            tokens,
            p.growth_rate,
            stagger_s=p.stagger_s,
            steady_s=p.growth_window_s,
        )
        steady = res["server"]["steady"]
        window_tokens = count * p.growth_rate * steady["window_s"]
        by_count[str(count)] = {
            "cpu_us_per_token": steady["cpu_s"] / window_tokens * 1e6,
            "marginal_cpu_us_per_token": max(0.0, steady["cpu_s"] - idle_rate * steady["window_s"])
            / window_tokens
            * 1e6,
            "all_kept_rate": res["kept_rate"] == count,
            # the window must end before the first stream does, or the cost is diluted
            "window_inside_streams": steady["from_start_s"] + steady["window_s"] < duration,
            "p99_ms": _lat(res).get("p99"),
            "tokens_per_event": res["tokens"] / max(1, res["chunks"]),
        }
    costs = [v["marginal_cpu_us_per_token"] for k, v in by_count.items() if int(k) >= 10]
    return {
        "rate": p.growth_rate,
        "idle_cpu_utilisation": idle_rate,
        "by_streams": by_count,
        # the largest count's cost over the 10-stream cost: 1.0 is flat
        "growth_factor": costs[-1] / costs[0] if len(costs) >= 2 and costs[0] > 0 else None,
    }


SCENARIOS = {
    # idle first: a fresh heap shows what a socket costs, not what earlier runs freed
    "s4_idle": s4_idle,
    "s1_throughput": s1_throughput,
    "s3_ttft": s3_ttft,
    "s6_cancel": s6_cancel,
    "s2_streams": s2_streams,
    "s2_rounds": s2_rounds,
    "s5_slow_client": s5_slow_client,
    "s7_growth": s7_growth,
}


# scenarios that run in rounds, every target once per round: how many rounds
ROUNDS: dict[str, Callable[[Params], int]] = {"s2_rounds": lambda p: p.rounds}


def warm_up(env: Env, target: Target) -> None:
    """One short run so lazy imports, caches and pools are paid before anything is measured."""
    run_streams(env, target, 5, 10, 100.0)
