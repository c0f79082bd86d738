"""``--neighbour SHARE``: the benchmark's noisy neighbour burns CPU, and only when asked.

What is checked is that the process does work (it is meant to take CPU from the servers),
that it never takes the whole core, and that a share outside (0, 1) is refused; no figure
of the servers is asserted.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from benchmarks.__main__ import start_neighbour

ROOT = Path(__file__).resolve().parents[2]


def test_no_neighbour_unless_asked() -> None:
    assert start_neighbour(0.0, None) is None


@pytest.mark.parametrize("share", [1.0, 1.5, -0.2])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(SystemExit, match="between 0 and 1"):
        start_neighbour(share, None)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.neighbour", "--share", str(share)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert "between 0 and 1" in done.stderr


def test_the_neighbour_burns_part_of_a_core() -> None:
    proc = start_neighbour(0.5, None)
    assert proc is not None
    try:
        watched = psutil.Process(proc.pid)
        time.sleep(0.5)  # past the interpreter's start
        before = sum(watched.cpu_times()[:2])
        time.sleep(2.0)
        used = sum(watched.cpu_times()[:2]) - before
    finally:
        proc.kill()
        proc.wait()
    # Half of 2 s on average; the bounds leave room for a busy machine, not for idling
    # or for a loop that never sleeps.
    assert 0.1 < used < 1.9
