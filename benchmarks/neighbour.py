"""A noisy neighbour: ``python -m benchmarks.neighbour --share 0.3`` burns that share of a core.

The figures of a shared machine move with whatever else runs on it, and a change that only
helps (or only hurts) when the server core is short of CPU cannot be judged on a quiet
machine. ``python -m benchmarks --neighbour 0.3`` starts this process pinned to the server
core, so every target of the run shares the core with the same competitor: busy for a few
milliseconds at random moments, idle between, at the given share on average, the way
another tenant's work arrives. It runs at normal priority; the scheduler shares the core as
it would with any other process.
"""

from __future__ import annotations

import argparse
import random
import time

BURST_S = 0.004  # how long one piece of the neighbour's work takes, on average


def check_share(share: float, option: str = "--share") -> None:
    """``SystemExit`` unless 0 < share < 1 (the only rule, for this command and the run's)."""
    if not 0.0 < share < 1.0:
        raise SystemExit(f"{option} wants a share between 0 and 1, not {share}")


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def run(share: float, seed: int | None = None) -> None:
    """Forever: a burst of work (exponential, mean ``BURST_S``), then an idle gap whose mean
    makes the busy time ``share`` of the whole."""
    rng = random.Random(seed)
    idle_mean = BURST_S * (1.0 - share) / share
    while True:
        burn(rng.expovariate(1.0 / BURST_S))
        time.sleep(rng.expovariate(1.0 / idle_mean))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.neighbour", description=__doc__)
    parser.add_argument("--share", type=float, required=True, help="0 < SHARE < 1")
    args = parser.parse_args(argv)
    check_share(args.share)
    try:
        run(args.share)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
