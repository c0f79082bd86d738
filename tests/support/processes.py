"""Real processes for the distributed tests: API nodes (`insighthub serve`) and workers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from tests.support.services import free_port

BIN = Path(sys.executable).parent / "insighthub"


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [str(BIN), *args], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.alive:
            self.popen.send_signal(sig)
        for _ in range(int(timeout * 20)):
            if not self.alive:
                break
            await asyncio.sleep(0.05)
        else:
            self.popen.kill()
        self.popen.wait()
        self._log.close()
        return int(self.popen.returncode)

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL, timeout=10)


class Node(Proc):
    def __init__(
        self, name: str, env: dict[str, str], log_dir: Path, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            name, ["serve", "--host", "127.0.0.1", "--port", str(self.port)], env, log_dir
        )

    async def wait_healthy(self, timeout: float = 60) -> Node:
        async with httpx.AsyncClient() as http:
            for _ in range(int(timeout * 10)):
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited:\n{self.log()}")
                try:
                    if (await http.get(f"{self.url}/healthz")).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /healthz:\n{self.log()}")


class Cluster:
    """Shared settings for every process of one distributed deployment."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHTHUB_")}
        self.env = base | env
        self.log_dir = log_dir
        self.procs: list[Proc] = []
        self._count = 0

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}-{self._count}"

    def migrate(self) -> None:
        subprocess.run(
            [str(BIN), "migrate"], env=self.env, check=True, capture_output=True, timeout=120
        )

    async def node(self, port: int | None = None, **extra_env: str) -> Node:
        node = Node(self._name("node"), self.env | extra_env, self.log_dir, port)
        self.procs.append(node)
        return await node.wait_healthy()

    def worker(self, kind: str = "all", **extra_env: str) -> Proc:
        proc = Proc(
            self._name(f"worker-{kind}"), ["worker", kind], self.env | extra_env, self.log_dir
        )
        self.procs.append(proc)
        return proc

    @contextmanager
    def workers_paused(self) -> Iterator[None]:
        """Freeze every worker (SIGSTOP) so new turns wait in the queue, still pending."""
        paused = [p for p in self.procs if p.name.startswith("worker-") and p.alive]
        for proc in paused:
            proc.popen.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for proc in paused:
                proc.popen.send_signal(signal.SIGCONT)

    async def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.alive:
                await proc.stop(timeout=15)
