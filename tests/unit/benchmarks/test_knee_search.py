"""The search for the stream count where p99 passes 100 ms, on scripted runs.

A count counts as past the limit only when a second run of it is too: one run's p99 is set
by its worst second, and on a shared machine that second may be the machine's. The runs
here are scripted (count -> the p99 of each run in turn); what is tested is the search.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from benchmarks import scenarios
from benchmarks.scenarios import Params, s2_streams

PARAMS = dataclasses.replace(
    Params(), stream_counts=(50, 200), ramp_counts=(250, 300, 350), ramp_down=(150, 100)
)


def scripted(monkeypatch: pytest.MonkeyPatch, p99s: dict[int, list[float]]) -> list[int]:
    """Replace the load generator's runs; returns the counts in the order they ran."""
    ran: list[int] = []

    def run_streams(_env: Any, _target: Any, count: int, tokens: int, *_: Any, **__: Any) -> Any:
        ran.append(count)
        p99 = p99s[count].pop(0)
        return {
            "streams": count,
            "latency_ms": {"p50": 1.0, "p99": p99, "max": p99, "quantiles": []},
            "kept_rate": count,
            "tokens": tokens,
            "tokens_expected": tokens,
            "chunks": tokens,
            "tokens_per_s": 30.0 * count,
            "min_stream_rate": 30.0,
            "order_errors": 0,
            "error_count": 0,
            "server": {"cpu_utilisation": 0.5},
            "client_cpu_utilisation": 0.3,
        }

    monkeypatch.setattr(scenarios, "run_streams", run_streams)
    return ran


def test_a_count_whose_second_run_holds_is_not_the_knee(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = scripted(
        monkeypatch,
        {50: [2.0], 200: [120.0, 40.0], 250: [60.0], 300: [130.0, 140.0]},
    )
    res = s2_streams(None, None, PARAMS)  # type: ignore[arg-type]
    assert ran == [50, 200, 200, 250, 300, 300]
    assert res["knee_streams"] == 300 and res["holds_streams"] == 250
    assert res["p99_by_streams"] == {"50": 2.0, "200": 40.0, "250": 60.0, "300": 130.0}
    assert set(res["retries"]) == {"200", "300"}
    assert res["runs"]["200"]["p99_ms"] == 120.0  # the table still shows the first run


def test_two_runs_past_the_limit_send_the_search_down(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = scripted(
        monkeypatch,
        {50: [2.0], 200: [150.0, 110.0], 150: [105.0, 90.0]},
    )
    res = s2_streams(None, None, PARAMS)  # type: ignore[arg-type]
    assert ran == [50, 200, 200, 150, 150]
    assert res["knee_streams"] == 200 and res["holds_streams"] == 150
    assert res["knee_or_cap"] == 200


def test_no_count_past_the_limit_runs_nothing_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = scripted(monkeypatch, {50: [2.0], 200: [9.0], 250: [20.0], 300: [30.0], 350: [50.0]})
    res = s2_streams(None, None, PARAMS)  # type: ignore[arg-type]
    assert ran == [50, 200, 250, 300, 350]
    assert res["knee_reached"] is False and res["knee_or_cap"] == 350
    assert res["retries"] == {}
