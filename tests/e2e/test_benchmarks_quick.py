"""``python -m benchmarks --quick`` runs end to end and writes complete, sane figures.

No timing is asserted: the machine's load decides those. What is checked is that every
scenario ran on the bare server and on the embedded InsightHub, that each figure is a
finite number of the right sign, that every stream delivered all its tokens in order, that
the ratios to the bare server were computed, and that the table, JSON and PNG exist.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.scenarios import QUICK, SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("bare", "embedded")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path_factory.mktemp("bench-out")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHTHUB_")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    def no_nan(token: str) -> Any:
        raise AssertionError(f"results.json holds {token}")

    doc = json.loads((out / "results.json").read_text(), parse_constant=no_nan)
    return doc, done.stdout, out


def positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def non_negative(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def test_every_target_ran_every_scenario(run: tuple[dict[str, Any], str, Path]) -> None:
    doc, _, _ = run
    assert doc["meta"]["quick"] is True
    for kind in TARGETS:
        assert doc["status"][kind]["status"] == "ok", doc["status"][kind]
        assert not doc["status"][kind].get("failed"), doc["status"][kind]
        assert set(doc["results"][kind]) == set(SCENARIOS)
        for name, figures in doc["results"][kind].items():
            assert "error" not in figures, (kind, name, figures)


@pytest.mark.parametrize("kind", TARGETS)
def test_figures_are_sane(run: tuple[dict[str, Any], str, Path], kind: str) -> None:
    res = run[0]["results"][kind]

    s1 = res["s1_throughput"]
    assert s1["complete"] is True
    assert positive(s1["tokens_per_s"]) and positive(s1["events_per_s"])
    assert s1["tokens_per_event"] >= 1

    s2 = res["s2_streams"]
    assert set(s2["runs"]) == {str(c) for c in QUICK.stream_counts}
    for count, row in {**s2["runs"], **s2["ramp"]}.items():
        assert row["tokens"] == row["tokens_expected"] > 0, (count, row)
        assert row["order_errors"] == 0 and row["errors"] == 0, (count, row)
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"], (count, row)
    for count, row in s2["runs"].items():
        # a subset of the tokens: its p99 lies within the whole run's range
        assert 0 < row["p99_all_flowing_ms"] <= row["max_ms"], (count, row)
        assert len(row["quantiles_ms"]) == 201, count
        assert row["quantiles_ms"] == sorted(row["quantiles_ms"]), count
        # every stream had a first token, and it came after its chat_message was sent
        assert 0 < row["first_token_p50_ms"] <= row["first_token_p99_ms"], (count, row)
    assert positive(s2["knee_or_cap"])

    # the largest count again, once a round, every round measured in full
    s2r = res["s2_rounds"]
    assert s2r["streams"] == max(QUICK.stream_counts)
    assert len(s2r["rounds"]) == QUICK.rounds == len(s2r["p99_ms_by_round"])
    for row in s2r["rounds"]:
        assert row["tokens"] == row["tokens_expected"] > 0, row
        assert row["order_errors"] == 0 and row["errors"] == 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"], row
    assert s2r["p99_ms_by_round"] == [row["p99_ms"] for row in s2r["rounds"]]
    assert min(s2r["p99_ms_by_round"]) <= s2r["p99_ms"] <= max(s2r["p99_ms_by_round"])

    s3 = res["s3_ttft"]
    assert s3["trials"] == QUICK.ttft_trials and s3["errors"] == 0
    assert 0 < s3["p50_ms"] <= s3["p99_ms"]
    burst = s3["burst"]
    assert burst["turns"] == QUICK.burst_turns and burst["errors"] == 0, burst
    # a turn costs the server something; only the distributed target reads services
    assert positive(burst["server_cpu_ms_per_turn"]) and positive(burst["first_token_p99_ms"])
    assert "services_cpu_ms_per_turn" not in burst

    s4 = res["s4_idle"]
    assert set(s4["sockets"]) == {str(c) for c in QUICK.idle_counts}
    for row in s4["sockets"].values():
        assert positive(row["bytes_per_socket"])
    assert s4["alive_at_end"] == max(QUICK.idle_counts)

    s5 = res["s5_slow_client"]
    assert positive(s5["p99_without_ms"]) and positive(s5["p99_with_ms"])
    assert non_negative(s5["slow_client_bytes"])
    assert isinstance(s5["slow_disconnected"], bool)
    # the figures are medians of the pairs; every pair is kept in the JSON
    assert len(s5["pairs"]) == s5["repeats"] == QUICK.slow_repeats
    assert s5["p99_changes"] == [pair["p99_change"] for pair in s5["pairs"]]
    # every other pair runs its halves the other way round, and both halves were measured
    assert [pair["order"] for pair in s5["pairs"]] == [
        ["without", "with"] if i % 2 == 0 else ["with", "without"] for i in range(s5["repeats"])
    ]
    for pair in s5["pairs"]:
        assert positive(pair["p99_without_ms"]) and positive(pair["p99_with_ms"])

    s6 = res["s6_cancel"]
    assert s6["trials"] == QUICK.cancel_trials and s6["errors"] == 0, s6
    assert 0 < s6["p50_ms"] <= s6["p99_ms"]

    s7 = res["s7_growth"]
    assert set(s7["by_streams"]) == {str(c) for c in QUICK.growth_counts}
    for row in s7["by_streams"].values():
        assert non_negative(row["marginal_cpu_us_per_token"]) and positive(row["cpu_us_per_token"])
    assert positive(s7["growth_factor"])


def test_ratios_and_checks_are_computed(run: tuple[dict[str, Any], str, Path]) -> None:
    doc, _, _ = run
    ratios = doc["ratios"]["embedded"]
    top = str(max(QUICK.stream_counts))
    for key in ("s1.tokens_per_s", f"s2.{top}.p99_ms", "s2.knee", "s3.p50_ms", "s6.p99_ms"):
        assert positive(ratios.get(key)), (key, ratios.get(key))
    for count in QUICK.idle_counts:
        assert positive(ratios.get(f"s4.{count}.kb")), count
    names = {c["check"] for c in doc["checks"] if c["target"] == "embedded"}
    assert "throughput ratio (1 stream)" in names
    assert "time to first token p50 overhead (ms)" in names
    top = max(QUICK.stream_counts)
    assert f"{top} streams: p99 above bare (ms), median of {QUICK.rounds} rounds" in names
    assert all(isinstance(c["pass"], bool) for c in doc["checks"])


def test_table_and_plot_are_written(run: tuple[dict[str, Any], str, Path]) -> None:
    _, stdout, out = run
    header = next(line for line in stdout.splitlines() if line.startswith("metric"))
    assert "bare" in header and "embedded" in header and "x bare" in header
    assert "1 stream flat out: tokens/s" in stdout
    png = (out / "results.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_insighthub_counters_are_recorded_per_scenario(
    run: tuple[dict[str, Any], str, Path],
) -> None:
    """What the servers counted during a scenario (``/metrics``), beside the figures."""
    results = run[0]["results"]
    counters = results["embedded"]["s2_streams"]["server_counters"]
    assert counters["insighthub_events_relayed_total"] > 0
    assert all(non_negative(value) for value in counters.values())
    assert "server_counters" not in results["bare"]["s2_streams"]
