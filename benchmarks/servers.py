"""Starting the servers a run measures, each on a free port, pinned to the server core.

``start_target(kind, ...)`` gives a ``Target``: its URL, an auth token, ``workspace(model)``
(an id the load generator puts in ``chat_message``), the server processes (RSS of the API
process, CPU of all of them) and ``stop()``.

- ``bare``: ``python -m benchmarks.baseline`` (FastAPI + python-socketio, same uvicorn).
- ``embedded``: ``insighthub serve`` with nothing but a data folder: SQLite, the in-process
  bus, the workers as tasks.
- ``distributed``: a throwaway RabbitMQ vhost and PostgreSQL database, ``insighthub
  migrate``, ``insighthub serve`` and a separate ``insighthub worker all``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
KINDS = ("bare", "embedded", "distributed")
PASSWORD = "bench-Passw0rd!"
AMQP_HOST_PORT = ("127.0.0.1", 5672)
PG_HOST_PORT = ("127.0.0.1", 5432)


class TargetUnavailable(RuntimeError):
    """The target cannot run here (a service is missing, a process did not start)."""


def process_cpu_s(pid: int) -> float:
    """CPU seconds of a process: Linux's scheduler clock (nanoseconds, every thread) where
    there is one, else psutil's user + system time (in clock ticks, 10 ms apart)."""
    tasks = Path(f"/proc/{pid}/task")
    try:
        total_ns = 0
        for task in tasks.iterdir():
            try:
                total_ns += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that just ended
        if total_ns:
            return total_ns / 1e9
    except OSError:
        pass
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def service_cpu_s() -> float:
    """CPU seconds so far of this machine's RabbitMQ and PostgreSQL processes (the services
    the distributed target shares with whatever else runs here). A PostgreSQL backend that
    starts and ends between two readings is missed: the figure is a floor."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        name = proc.info["name"] or ""
        if name.startswith(("beam", "postgres")):
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def pin(cores: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child to ``cores`` (Linux), or None."""
    if not cores or not hasattr(os, "sched_setaffinity"):
        return None

    def apply() -> None:
        os.sched_setaffinity(0, cores)

    return apply


def plan_cores() -> tuple[set[int] | None, set[int] | None]:
    """(server cores, client cores): one core each where there are two or more."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return {cores[0]}, {cores[1]}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any INSIGHTHUB_* the developer's shell has set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHTHUB_")}
    env.update(extra)
    return env


@dataclass
class Target:
    kind: str
    url: str
    token: str
    record_path: Path
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]
    make_workspace: Callable[[str], str]
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    uses_services: bool = False  # RabbitMQ and PostgreSQL do part of its work
    _workspaces: dict[str, str] = field(default_factory=dict)

    def workspace(self, model: str) -> str:
        if model not in self._workspaces:
            self._workspaces[model] = self.make_workspace(model)
        return self._workspaces[model]

    @property
    def api(self) -> psutil.Process:
        return psutil.Process(self.procs[0].pid)

    def rss(self) -> int:
        return int(self.api.memory_info().rss)

    def cpu_s(self) -> float:
        """CPU seconds used so far by every server process of this target (all threads)."""
        return sum(process_cpu_s(proc.pid) for proc in self.procs)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for fn in reversed(self.cleanup):
            try:
                fn()
            except Exception as exc:  # cleanup must not hide the run's results
                print(f"  cleanup of {self.kind} failed: {exc}", file=sys.stderr)


def _spawn(
    args: list[str], env: dict[str, str], log: Path, cores: set[int] | None
) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    try:
        return subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            preexec_fn=pin(cores),
        )
    finally:
        handle.close()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _command_line(args: Any) -> str:
    """``Popen.args`` as text: a sequence when started from a list, else one value."""
    if isinstance(args, str | bytes | os.PathLike):
        return str(args)
    return " ".join(str(arg) for arg in args)


def _wait_healthy(
    url: str, procs: list[subprocess.Popen[bytes]], logs: list[Path], path: str
) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            for proc, log in zip(procs, logs, strict=True):
                if proc.poll() is not None:
                    raise TargetUnavailable(
                        f"{_command_line(proc.args)} exited with {proc.returncode}:\n" + _tail(log)
                    )
            try:
                if http.get(url + path).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise TargetUnavailable(f"{url}{path} did not answer 200 within 60 s:\n" + _tail(logs[0]))


# bare --------------------------------------------------------------------------------------
def start_bare(workdir: Path, cores: set[int] | None, _extra: dict[str, str]) -> Target:
    port = free_port()
    token = secrets.token_urlsafe(24)
    record = workdir / "bare-synthetic.jsonl"
    log = workdir / "bare.log"
    args = [
        sys.executable,
        "-m",
        "benchmarks.baseline",
        "--port",
        str(port),
        f"--token={token}",  # one joined word: a token may start with "-"
    ]
    proc = _spawn([*args, "--record", str(record)], clean_env(), log, cores)
    url = f"http://127.0.0.1:{port}"
    target = Target("bare", url, token, record, [proc], [log], make_workspace=lambda m: m)
    try:
        _wait_healthy(url, target.procs, target.logs, "/healthz")
    except Exception:
        target.stop()
        raise
    return target


# InsightHub ----------------------------------------------------------------------------------
def _insighthub_env(workdir: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        INSIGHTHUB_DATA_DIR=str(workdir / "data"),
        INSIGHTHUB_SYNTHETIC_RECORD_PATH=str(workdir / "synthetic.jsonl"),
        # The default (64 answers at once per worker) is below the stream counts measured.
        INSIGHTHUB_WORKER_CONCURRENCY="4096",
        **extra,
    )


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "--log-level", "warning", *args]


def _login(url: str) -> tuple[str, Callable[[str], str]]:
    """Register a user, get a token, and a function that makes a ready synthetic workspace."""
    http = httpx.Client(base_url=url, timeout=30)
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    r = http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    r.raise_for_status()
    r = http.post("/api/auth/token", data={"username": email, "password": PASSWORD})
    r.raise_for_status()
    token = str(r.json()["access_token"])
    auth = {"Authorization": f"Bearer {token}"}

    def make_workspace(model: str) -> str:
        r = http.post(
            "/api/workspaces",
            json={"name": f"bench {model}", "llm_provider": "synthetic", "llm_model": model},
            headers=auth,
        )
        r.raise_for_status()
        wid = str(r.json()["id"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = http.get(f"/api/workspaces/{wid}", headers=auth).json()["status"]
            if status == "ready":
                return wid
            if status == "failed":
                raise TargetUnavailable(f"workspace for {model} failed to provision")
            time.sleep(0.05)
        raise TargetUnavailable(f"workspace for {model} never became ready")

    return token, make_workspace


def start_embedded(workdir: Path, cores: set[int] | None, extra: dict[str, str]) -> Target:
    port = free_port()
    log = workdir / "embedded.log"
    env = _insighthub_env(workdir, INSIGHTHUB_JWT_SECRET=secrets.token_urlsafe(32), **extra)
    proc = _spawn(_cli("serve", "--host", "127.0.0.1", "--port", str(port)), env, log, cores)
    url = f"http://127.0.0.1:{port}"
    target = Target(
        "embedded", url, "", workdir / "synthetic.jsonl", [proc], [log], make_workspace=lambda m: m
    )
    try:
        _wait_healthy(url, target.procs, target.logs, "/healthz")
        target.token, target.make_workspace = _login(url)
    except Exception:
        target.stop()
        raise
    return target


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise TargetUnavailable(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")


def _psql(sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(
            host=PG_HOST_PORT[0], port=PG_HOST_PORT[1], user="postgres", database="postgres"
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def distributed_missing() -> str | None:
    """Why the distributed mode cannot run here, or None."""
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed (it creates the benchmark's vhost)"
    if not reachable(*AMQP_HOST_PORT):
        return "RabbitMQ is not reachable at 127.0.0.1:5672"
    if not reachable(*PG_HOST_PORT):
        return "PostgreSQL is not reachable at 127.0.0.1:5432"
    return None


def start_distributed(workdir: Path, cores: set[int] | None, extra: dict[str, str]) -> Target:
    missing = distributed_missing()
    if missing:
        raise TargetUnavailable(missing)
    name = f"insighthub_bench_{uuid.uuid4().hex[:8]}"
    cleanup: list[Callable[[], None]] = []
    _rabbitmqctl("add_vhost", name)
    cleanup.append(lambda: _rabbitmqctl("delete_vhost", name))
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        _psql(f'CREATE DATABASE "{name}"')
        cleanup.append(lambda: _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        env = _insighthub_env(
            workdir,
            INSIGHTHUB_JWT_SECRET=secrets.token_urlsafe(32),
            INSIGHTHUB_AMQP_URL=f"amqp://guest:guest@127.0.0.1:5672/{quote(name, safe='')}",
            INSIGHTHUB_DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
            **extra,
        )
        migrate = subprocess.run(
            _cli("migrate"), cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        if migrate.returncode != 0:
            raise TargetUnavailable(f"insighthub migrate failed: {migrate.stderr[-2000:]}")
    except Exception:
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as exc:
                print(f"  cleanup failed: {exc}", file=sys.stderr)
        raise
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api_log, worker_log = workdir / "distributed-api.log", workdir / "distributed-worker.log"
    procs = [
        _spawn(_cli("serve", "--host", "127.0.0.1", "--port", str(port)), env, api_log, cores),
        _spawn(_cli("worker", "all"), env, worker_log, cores),
    ]
    target = Target(
        "distributed",
        url,
        "",
        workdir / "synthetic.jsonl",
        procs,
        [api_log, worker_log],
        make_workspace=lambda m: m,
        cleanup=cleanup,
        uses_services=True,
    )
    try:
        _wait_healthy(url, target.procs, target.logs, "/readyz")
        target.token, target.make_workspace = _login(url)
    except Exception:
        target.stop()
        raise
    return target


STARTERS: dict[str, Callable[[Path, set[int] | None, dict[str, str]], Target]] = {
    "bare": start_bare,
    "embedded": start_embedded,
    "distributed": start_distributed,
}


def start_target(
    kind: str, workdir: Path, cores: set[int] | None, extra_env: dict[str, str] | None = None
) -> Target:
    """Start one target; ``extra_env`` (INSIGHTHUB_* settings) reaches InsightHub's servers."""
    workdir.mkdir(parents=True, exist_ok=True)
    return STARTERS[kind](workdir, cores, extra_env or {})


def describe(target: Target) -> dict[str, Any]:
    return {"kind": target.kind, "url": target.url, "pids": target.pids()}
