"""``--profile``: py-spy samples every server process while each scenario runs.

The profile is what says *why* a figure is what it is, so it is taken in the same run as
the figures, under the same load. py-spy attaches from outside (no code in the server
changes, no overhead until it samples) and writes collapsed stacks (``raw`` format, one
line per distinct stack with its sample count): ``summarize`` turns them into the
functions that hold the most samples, inclusive and own, which is what the README's
Performance section and the issue's notes quote.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_RATE_HZ = 250


class ProfilerUnavailable(RuntimeError):
    """py-spy is not installed (``pip install py-spy``) or may not attach here."""


def py_spy() -> str:
    found = shutil.which("py-spy")
    if found is None:
        raise ProfilerUnavailable("--profile needs py-spy on PATH (pip install py-spy)")
    return found


@dataclass
class Recording:
    """py-spy processes attached to one target's servers for one scenario."""

    outputs: list[Path] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> list[Path]:
        """Ask each py-spy to write its file (SIGINT) and wait for it."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        return [path for path in self.outputs if path.exists()]


def record(pids: dict[str, int], outdir: Path) -> Recording:
    """Start one py-spy per named process; their files land in ``outdir``."""
    exe = py_spy()
    outdir.mkdir(parents=True, exist_ok=True)
    rec = Recording()
    for name, pid in pids.items():
        out = outdir / f"{name}.txt"
        rec.outputs.append(out)
        rec.procs.append(
            subprocess.Popen(
                [
                    *(exe, "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE_HZ)),
                    *("--format", "raw", "--nonblocking", "--output", str(out)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=(outdir / f"{name}.log").open("wb"),
            )
        )
    return rec


def _frames(stack: str) -> list[str]:
    """py-spy's raw frames are ``function (file:line)``; the line makes each call site
    distinct, which hides a function's total, so it is cut off."""
    frames = []
    for frame in stack.split(";"):
        name, _, where = frame.partition(" (")
        path = where.rsplit(":", 1)[0]
        frames.append(f"{name} ({_short(path)})")
    return frames


def _short(path: str) -> str:
    for marker in ("site-packages/", "/app/", "/workers/", "/benchmarks/", "/lib/python3"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail if marker == "site-packages/" else marker.strip("/") + "/" + tail
    return path


def summarize(path: Path, top: int = 15) -> str:
    """The ``top`` functions by inclusive and by own share of the samples of one file."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if total == 0:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {total} samples"]
    for title, counter in (("inclusive", inclusive), ("own", own)):
        lines.append(f"  {title}:")
        for frame, count in counter.most_common(top):
            lines.append(f"    {100 * count / total:5.1f}%  {frame}")
    return "\n".join(lines)
