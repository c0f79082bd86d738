"""``python -m benchmarks [--quick] [--targets bare,embedded,distributed] [--out DIR]``.

Starts every server it measures (pinned to one core), runs each scenario on each of them
in turn (interleaved, so a change in the machine's load hits all of them alike), drives
them from load-generator processes pinned to another core, then prints one table, writes
``results.json`` and ``results.png`` into ``--out`` (default ``benchmarks/out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks import profiling, report
from benchmarks.neighbour import check_share
from benchmarks.scenarios import (
    QUICK,
    ROUNDS,
    SCENARIOS,
    Env,
    Params,
    round_summary,
    warm_up,
)
from benchmarks.servers import (
    KINDS,
    REPO,
    Target,
    TargetUnavailable,
    pin,
    plan_cores,
    start_target,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a small version (well under a minute)"
    )
    parser.add_argument(
        "--targets",
        default=None,
        help="comma-separated: bare,embedded,distributed (default: all three; "
        "--quick: bare,embedded). bare is always included: ratios are to it",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated subset of " + ",".join(SCENARIOS),
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample every server process with py-spy during each scenario; collapsed "
        "stacks and a summary go to OUT/profiles/<scenario>/<target>/",
    )
    parser.add_argument(
        "--streams",
        default=None,
        help="comma-separated stream counts for s2_streams instead of the defaults, with no "
        "search for the count where p99 passes the limit (for quick A/B comparisons)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an INSIGHTHUB_* setting for every InsightHub server of the run (repeatable), "
        "to measure a setting against the bare server",
    )
    parser.add_argument(
        "--neighbour",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="run a noisy neighbour on the server core that burns this share of it "
        "(0 < SHARE < 1), to see how each target copes with a shared machine",
    )
    return parser.parse_args(argv)


def start_neighbour(share: float, cores: set[int] | None) -> subprocess.Popen[bytes] | None:
    """``benchmarks.neighbour`` pinned to the server core, or None when none was asked for."""
    if share == 0:
        return None
    check_share(share, "--neighbour")
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.neighbour", "--share", str(share)],
        cwd=REPO,
        preexec_fn=pin(cores),
    )


def server_env(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs as a dict; only INSIGHTHUB_* keys, so a typo cannot pass unseen."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("INSIGHTHUB_"):
            raise SystemExit(f"--server-env wants INSIGHTHUB_KEY=VALUE, not {pair!r}")
        out[key] = value
    return out


def server_counters(target: Target) -> dict[str, float]:
    """InsightHub's ``/metrics`` counters (``*_total``) now; {} for the bare server."""
    if target.kind == "bare":
        return {}
    try:
        text = httpx.get(target.url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.endswith("_total") and value:
            out[name] = float(value)
    return out


def counter_deltas(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What each counter grew by during a scenario (events relayed, slow clients dropped)."""
    return {name: after[name] - before.get(name, 0.0) for name in after}


def process_names(target: Target) -> dict[str, int]:
    """The API process first, then the worker processes (distributed)."""
    pids = target.pids()
    names = ["api"] + [f"worker{i}" if len(pids) > 2 else "worker" for i in range(1, len(pids))]
    return dict(zip(names, pids, strict=True))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_rounds(
    name: str,
    rounds: int,
    targets: dict[str, Target],
    run_one: Callable[[str, str, Target], dict[str, Any]],
    results: dict[str, dict[str, Any]],
) -> None:
    """``name`` ``rounds`` times on every target, one target after another in each round.

    Each round starts one target later than the one before, so no target always runs
    first (just after the previous scenario) or always last.
    """
    kinds = list(targets)
    by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for r in range(rounds):
        for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
            by_kind[kind].append(run_one(name, kind, targets[kind]))
    for kind, figures in by_kind.items():
        results[kind][name] = round_summary(figures)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    params = QUICK if args.quick else Params()
    if args.streams:
        counts = tuple(int(c) for c in args.streams.split(",") if c.strip())
        params = dataclasses.replace(params, stream_counts=counts, ramp_counts=(), ramp_down=())
    extra_env = server_env(args.server_env)
    default = "bare,embedded" if args.quick else ",".join(KINDS)
    kinds = [k.strip() for k in (args.targets or default).split(",") if k.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise SystemExit(f"unknown targets: {', '.join(sorted(unknown))}")
    if "bare" not in kinds:
        kinds.insert(0, "bare")
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if set(chosen) - set(SCENARIOS):
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(set(chosen) - set(SCENARIOS)))}")
    scenarios = [s for s in SCENARIOS if s in chosen]
    if args.profile:
        profiling.py_spy()  # fail before anything starts, not after the first scenario

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    logdir = out / "logs"
    logdir.mkdir(exist_ok=True)
    server_cores, client_cores = plan_cores()
    if client_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, client_cores)  # the harness stays off the server core
    env = Env(client_cores, logdir)
    neighbour: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    status: dict[str, Any] = {}
    targets: dict[str, Target] = {}
    target: Target | None

    def run_one(name: str, kind: str, target: Target) -> dict[str, Any]:
        """One scenario on one target, profiled if asked; a failure is recorded, not raised."""
        log(f"{name} on {kind} ...")
        t0 = time.monotonic()
        recording = (
            profiling.record(process_names(target), out / "profiles" / name / kind)
            if args.profile
            else None
        )
        figures: dict[str, Any]
        try:
            if not target.alive():
                raise RuntimeError("the server process is gone")
            before = server_counters(target)
            figures = SCENARIOS[name](env, target, params)
            if before:
                figures["server_counters"] = counter_deltas(before, server_counters(target))
        except Exception as exc:
            log(f"  {name} on {kind} failed: {exc}")
            env.reset()
            figures = {"error": f"{type(exc).__name__}: {exc}"}
            failed = status[kind].setdefault("failed", [])
            if name not in failed:
                failed.append(name)
            (logdir / f"{kind}-{name}.traceback").write_text(traceback.format_exc())
        finally:
            if recording is not None:
                for path in recording.stop():
                    summary = profiling.summarize(path)
                    path.with_suffix(".summary").write_text(summary + "\n")
        log(f"  {time.monotonic() - t0:.1f} s")
        return figures

    with tempfile.TemporaryDirectory(prefix="insighthub-bench-") as tmp:
        try:
            neighbour = start_neighbour(args.neighbour, server_cores)
            log(f"starting {', '.join(kinds)} ...")
            with ThreadPoolExecutor(len(kinds)) as pool:  # most of a start is imports
                starting = {
                    kind: pool.submit(start_target, kind, Path(tmp) / kind, server_cores, extra_env)
                    for kind in kinds
                }
            for kind, future in starting.items():
                target = None
                try:
                    target = future.result()
                    warm_up(env, target)
                except Exception as exc:
                    reason = "" if isinstance(exc, TargetUnavailable) else type(exc).__name__ + ": "
                    log(f"  {kind} is not available: {reason}{exc}")
                    status[kind] = {"status": "unavailable", "error": (reason + str(exc))[-4000:]}
                    env.reset()
                    if target is not None:
                        target.stop()
                    continue
                targets[kind] = target
                results[kind] = {}
                status[kind] = {"status": "ok"}
            for name in scenarios:
                if name in ROUNDS:
                    run_rounds(name, ROUNDS[name](params), targets, run_one, results)
                    continue
                for kind, target in targets.items():
                    results[kind][name] = run_one(name, kind, target)
        finally:
            env.close()
            for target in targets.values():
                target.stop()
                for path in target.logs:  # kept beside the loadgen's (the tmp dir goes)
                    if path.exists():
                        shutil.copyfile(path, logdir / path.name)
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()

    rows = report.metrics(results.get("bare", {}))
    rat = report.ratios(results, rows)
    found = report.checks(results)
    doc: dict[str, Any] = {
        "meta": {
            "created": datetime.now(UTC).isoformat(),
            "quick": args.quick,
            "params": params.__dict__,
            "targets": kinds,
            "scenarios": scenarios,
            "server_env": extra_env,
            "neighbour_share": args.neighbour,
            "server_cores": sorted(server_cores) if server_cores else None,
            "client_cores": sorted(client_cores) if client_cores else None,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "duration_s": time.monotonic() - started,
        },
        "status": status,
        "results": results,
        "ratios": rat,
        "checks": found,
    }
    report.write_json(out / "results.json", doc)
    try:
        report.plot(out / "results.png", results)
    except Exception as exc:
        log(f"plotting failed: {exc}")
    print(report.table(results, rows, rat))
    print()
    print("targets (from the issue):")
    print(report.checks_text(found))
    for kind, st in status.items():
        if st["status"] != "ok" or st.get("failed"):
            print(f"\n{kind}: {st.get('error') or 'failed: ' + ', '.join(st['failed'])}")
    print(f"\n{out / 'results.json'}, {out / 'results.png'}  ({doc['meta']['duration_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
