"""The run's figures as one table, the issue's targets as checks, JSON and a PNG plot.

Every InsightHub figure is shown beside the bare server's and as a ratio to it (figures
move ±15 % between runs on a shared machine; ratios measured side by side move less).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Results = dict[str, Any]  # target kind -> scenario -> figures


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    get: Callable[[Results], Any]
    fmt: str = "{:.1f}"


def _dig(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _at(*path: str, then: Callable[[Any], Any] | None = None) -> Callable[[Results], Any]:
    """A getter bound to ``path`` now: loop variables captured by a bare lambda would all
    read the last row's key, and lambdas with default arguments defeat type inference."""

    def get(results: Results) -> Any:
        value = _dig(results, *path)
        return value if then is None else then(value)

    return get


def metrics(bare: Results) -> list[Metric]:
    """The table's rows, from the stream counts this run actually used."""
    rows = [
        Metric(
            "s1.tokens_per_s",
            "1 stream flat out: tokens/s",
            lambda r: _dig(r, "s1_throughput", "tokens_per_s"),
            "{:.0f}",
        ),
        Metric(
            "s1.events_per_s",
            "1 stream flat out: events/s",
            lambda r: _dig(r, "s1_throughput", "events_per_s"),
            "{:.0f}",
        ),
    ]
    for count in _dig(bare, "s2_streams", "runs") or {}:
        base = ("s2_streams", "runs", count)
        rows += [
            Metric(
                f"s2.{count}.p50_ms",
                f"{count} streams x 30/s: latency p50 ms",
                _at(*base, "p50_ms"),
                "{:.2f}",
            ),
            Metric(
                f"s2.{count}.p99_ms",
                f"{count} streams x 30/s: latency p99 ms",
                _at(*base, "p99_ms"),
                "{:.2f}",
            ),
            Metric(
                f"s2.{count}.p99_flowing_ms",
                f"{count} streams x 30/s: p99 once all flow",
                _at(*base, "p99_all_flowing_ms"),
                "{:.2f}",
            ),
            Metric(
                f"s2.{count}.max_ms",
                f"{count} streams x 30/s: latency max ms",
                _at(*base, "max_ms"),
                "{:.1f}",
            ),
            Metric(
                f"s2.{count}.first_token_p99_ms",
                f"{count} streams x 30/s: first token p99 ms",
                _at(*base, "first_token_p99_ms"),
                "{:.1f}",
            ),
            Metric(
                f"s2.{count}.kept",
                f"{count} streams x 30/s: every stream at rate",
                _at(*base, "all_kept_rate"),
                "{}",
            ),
        ]
    rounds_of = _dig(bare, "s2_rounds", "streams")
    if rounds_of is not None:
        rows.append(
            Metric(
                "s2r.p99_ms",
                f"{rounds_of} streams x 30/s, in rounds: p99 median",
                lambda r: _dig(r, "s2_rounds", "p99_ms"),
                "{:.2f}",
            )
        )
    rows.append(
        Metric(
            "s2.knee",
            "streams at 30/s until p99 > 100 ms",
            lambda r: _dig(r, "s2_streams", "knee_or_cap"),
            "{:.0f}",
        )
    )
    rows += [
        Metric(
            "s3.p50_ms",
            "time to first token p50 ms",
            lambda r: _dig(r, "s3_ttft", "p50_ms"),
            "{:.2f}",
        ),
        Metric(
            "s3.p99_ms",
            "time to first token p99 ms",
            lambda r: _dig(r, "s3_ttft", "p99_ms"),
            "{:.2f}",
        ),
        Metric(
            "s3.turn_cpu_ms",
            "CPU per turn, servers ms",
            lambda r: _dig(r, "s3_ttft", "burst", "server_cpu_ms_per_turn"),
            "{:.2f}",
        ),
        Metric(
            "s3.turn_services_cpu_ms",
            "CPU per turn, RabbitMQ+PostgreSQL ms",
            lambda r: _dig(r, "s3_ttft", "burst", "services_cpu_ms_per_turn"),
            "{:.2f}",
        ),
    ]
    for count in _dig(bare, "s4_idle", "sockets") or {}:
        rows.append(
            Metric(
                f"s4.{count}.kb",
                f"idle socket KB/socket at {count}",
                _at("s4_idle", "sockets", count, "bytes_per_socket", then=_kb),
                "{:.1f}",
            )
        )
    rows += [
        Metric(
            "s5.p99_without_ms",
            "slow client: others' p99 ms without",
            lambda r: _dig(r, "s5_slow_client", "p99_without_ms"),
            "{:.2f}",
        ),
        Metric(
            "s5.p99_with_ms",
            "slow client: others' p99 ms with",
            lambda r: _dig(r, "s5_slow_client", "p99_with_ms"),
            "{:.2f}",
        ),
        Metric(
            "s5.slow_mb",
            "slow client: server MB for it",
            lambda r: _mb(_dig(r, "s5_slow_client", "slow_client_bytes")),
            "{:.1f}",
        ),
        Metric("s5.dropped", "slow client: dropped, then resumed", lambda r: _dropped(r), "{}"),
        Metric(
            "s6.p50_ms",
            "cancel -> provider closed p50 ms",
            lambda r: _dig(r, "s6_cancel", "p50_ms"),
            "{:.2f}",
        ),
        Metric(
            "s6.p99_ms",
            "cancel -> provider closed p99 ms",
            lambda r: _dig(r, "s6_cancel", "p99_ms"),
            "{:.2f}",
        ),
    ]
    for count in _dig(bare, "s7_growth", "by_streams") or {}:
        rows.append(
            Metric(
                f"s7.{count}.us",
                f"CPU us/token at {count} streams x 10/s",
                _at("s7_growth", "by_streams", count, "marginal_cpu_us_per_token"),
                "{:.0f}",
            )
        )
    rows.append(
        Metric(
            "s7.growth",
            "CPU/token growth (largest / 10 streams)",
            lambda r: _dig(r, "s7_growth", "growth_factor"),
            "{:.2f}",
        )
    )
    return rows


def _kb(value: Any) -> float | None:
    n = _num(value)
    return n / 1024 if n is not None else None


def _mb(value: Any) -> float | None:
    n = _num(value)
    return n / 2**20 if n is not None else None


def _dropped(r: Results) -> str | None:
    s5 = r.get("s5_slow_client")
    if not isinstance(s5, dict) or "slow_disconnected" not in s5:
        return None
    return f"{'yes' if s5['slow_disconnected'] else 'no'}/{'yes' if s5['slow_resumed'] else 'no'}"


def ratios(results: dict[str, Results], rows: list[Metric]) -> dict[str, dict[str, float | None]]:
    """target kind -> metric key -> value / bare value (numeric metrics only)."""
    bare = results.get("bare", {})
    out: dict[str, dict[str, float | None]] = {}
    for kind, res in results.items():
        if kind == "bare":
            continue
        out[kind] = {}
        for m in rows:
            a, b = _num(m.get(res)), _num(m.get(bare))
            if a is not None and b is not None:
                out[kind][m.key] = a / b if b else None
    return out


# the targets -------------------------------------------------------------------------
LIMITS = {
    "embedded": {"throughput": 1.0, "ttft_overhead_ms": 15.0, "cancel_p99_ms": 50.0},
    "distributed": {"throughput": 0.7, "ttft_overhead_ms": 30.0, "cancel_p99_ms": 100.0},
}


def paired_p99_above(
    rounds: dict[str, Any] | None, bare_rounds: dict[str, Any] | None
) -> tuple[int, float, int] | None:
    """(streams, median over rounds of this target's p99 less the bare server's of the same
    round, rounds paired), or None without rounds on both sides."""
    if not rounds or not bare_rounds:
        return None
    pairs = [
        (a, b)
        for a, b in zip(
            rounds.get("p99_ms_by_round") or [],
            bare_rounds.get("p99_ms_by_round") or [],
            strict=False,
        )
        if _num(a) is not None and _num(b) is not None
    ]
    if not pairs:
        return None
    median = statistics.median(a - b for a, b in pairs)
    return int(rounds.get("streams") or 0), median, len(pairs)


def checks(results: dict[str, Results]) -> list[dict[str, Any]]:
    """Each target of the issue: the value measured, the limit, and whether it is met."""
    bare = results.get("bare", {})
    found: list[dict[str, Any]] = []

    def add(kind: str, name: str, value: Any, limit: str, ok: bool | None) -> None:
        found.append({"target": kind, "check": name, "value": value, "limit": limit, "pass": ok})

    for kind, res in results.items():
        if kind not in LIMITS or not res:
            continue
        lim = LIMITS[kind]
        tp, btp = (
            _num(_dig(res, "s1_throughput", "tokens_per_s")),
            _num(_dig(bare, "s1_throughput", "tokens_per_s")),
        )
        if tp is not None and btp:
            add(
                kind,
                "throughput ratio (1 stream)",
                tp / btp,
                f">= {lim['throughput']}",
                tp / btp >= lim["throughput"],
            )
        above = paired_p99_above(_dig(res, "s2_rounds"), _dig(bare, "s2_rounds"))
        runs, bruns = _dig(res, "s2_streams", "runs") or {}, _dig(bare, "s2_streams", "runs") or {}
        if above is not None:
            count, diff, rounds = above
            add(
                kind,
                f"{count} streams: p99 above bare (ms), median of {rounds} rounds",
                diff,
                "<= 10",
                diff <= 10,
            )
        elif runs and bruns:
            top = max(runs, key=int)
            p99, bp99 = _num(runs[top]["p99_ms"]), _num(_dig(bruns, top, "p99_ms"))
            if p99 is not None and bp99 is not None:
                add(
                    kind,
                    f"{top} streams: p99 above bare (ms)",
                    p99 - bp99,
                    "<= 10",
                    p99 - bp99 <= 10,
                )
        if runs:
            top = max(runs, key=int)
            rounds_kept = _dig(res, "s2_rounds", "all_kept_rate")  # None: no rounds ran
            kept = bool(runs[top]["all_kept_rate"]) and rounds_kept is not False
            add(kind, f"{top} streams: every stream at rate", kept, "true", kept)
        knee, bknee = (
            _num(_dig(res, "s2_streams", "knee_or_cap")),
            _num(_dig(bare, "s2_streams", "knee_or_cap")),
        )
        if knee is not None and bknee:
            add(
                kind,
                "streams until p99 > 100 ms, ratio",
                knee / bknee,
                ">= 0.8",
                knee / bknee >= 0.8,
            )
        t50, bt50 = _num(_dig(res, "s3_ttft", "p50_ms")), _num(_dig(bare, "s3_ttft", "p50_ms"))
        if t50 is not None and bt50 is not None:
            add(
                kind,
                "time to first token p50 overhead (ms)",
                t50 - bt50,
                f"<= {lim['ttft_overhead_ms']:g}",
                t50 - bt50 <= lim["ttft_overhead_ms"],
            )
        for count, row in (_dig(res, "s4_idle", "sockets") or {}).items():
            b = _num(_dig(bare, "s4_idle", "sockets", count, "bytes_per_socket"))
            v = _num(row.get("bytes_per_socket"))
            if v is not None and b:
                add(kind, f"idle socket memory ratio at {count}", v / b, "<= 1.3", v / b <= 1.3)
        c99 = _num(_dig(res, "s6_cancel", "p99_ms"))
        if c99 is not None:
            add(
                kind,
                "cancel -> provider closed p99 (ms)",
                c99,
                f"<= {lim['cancel_p99_ms']:g}",
                c99 <= lim["cancel_p99_ms"],
            )
        change = _num(_dig(res, "s5_slow_client", "p99_change"))
        if change is not None:
            add(kind, "slow client: others' p99 with / without", change, "<= 1.1", change <= 1.1)
        dropped = _dig(res, "s5_slow_client", "slow_disconnected")
        if dropped is not None and _dig(res, "s5_slow_client", "drop_expected"):
            add(
                kind,
                "slow client dropped and resumed",
                bool(dropped and _dig(res, "s5_slow_client", "slow_resumed")),
                "true",
                bool(dropped and _dig(res, "s5_slow_client", "slow_resumed")),
            )
        growth = _num(_dig(res, "s7_growth", "growth_factor"))
        if growth is not None:
            add(
                kind, "CPU per token growth (largest / 10 streams)", growth, "<= 1.5", growth <= 1.5
            )
    return found


# output ------------------------------------------------------------------------------------------
def _cell(m: Metric, res: Results | None) -> str:
    if res is None:
        return "-"
    value = m.get(res)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf"
    try:
        return m.fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def table(
    results: dict[str, Results], rows: list[Metric], rat: dict[str, dict[str, float | None]]
) -> str:
    kinds = [k for k in ("bare", "embedded", "distributed") if k in results]
    header = ["metric"]
    for kind in kinds:
        header.append(kind)
        if kind != "bare":
            header.append("x bare")
    lines = [header]
    for m in rows:
        line = [m.label]
        for kind in kinds:
            line.append(_cell(m, results.get(kind)))
            if kind != "bare":
                r = rat.get(kind, {}).get(m.key)
                line.append(f"{r:.2f}" if r is not None else "-")
        lines.append(line)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = []
    for n, row in enumerate(lines):
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def checks_text(found: list[dict[str, Any]]) -> str:
    out = []
    for c in found:
        value = c["value"]
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        mark = "ok  " if c["pass"] else "MISS"
        out.append(f"  {mark} {c['target']:<11} {c['check']:<45} {shown:>9}  (target {c['limit']})")
    return "\n".join(out)


def sanitize(obj: Any) -> Any:
    """JSON without NaN or infinity (null instead), so any JSON reader takes the file."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [sanitize(v) for v in obj]
    return obj


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(sanitize(doc), indent=2, allow_nan=False) + "\n")


COLORS = {"bare": "#777777", "embedded": "#1f77b4", "distributed": "#d62728"}


def plot(path: Path, results: dict[str, Results]) -> None:
    """Per-token latency distribution (busiest fixed run) and throughput/p99 vs streams."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_cdf, ax_tp, ax_p99) = plt.subplots(1, 3, figsize=(17, 5))
    for kind, res in results.items():
        color = COLORS.get(kind, None)
        runs = _dig(res, "s2_streams", "runs") or {}
        if runs:
            top = max(runs, key=int)
            q = runs[top].get("quantiles_ms") or []
            if q:
                fractions = [i / (len(q) - 1) for i in range(len(q))]
                ax_cdf.plot(q, fractions, label=f"{kind} ({top} streams)", color=color)
        points: dict[int, dict[str, Any]] = {}
        for source in ("runs", "ramp"):
            for count, row in (_dig(res, "s2_streams", source) or {}).items():
                points[int(count)] = row
        if points:
            xs = sorted(points)
            ax_tp.plot(
                xs, [points[x]["tokens_per_s"] or 0 for x in xs], "o-", label=kind, color=color
            )
            ax_p99.plot(
                xs, [points[x]["p99_ms"] or float("nan") for x in xs], "o-", label=kind, color=color
            )
    ax_cdf.set_xscale("log")
    ax_cdf.set_xlabel("per-token latency, provider -> client (ms)")
    ax_cdf.set_ylabel("fraction of tokens")
    ax_cdf.set_title("latency distribution")
    ax_tp.set_xlabel("concurrent streams (30 tokens/s each)")
    ax_tp.set_ylabel("tokens delivered per second")
    ax_tp.set_title("throughput against streams")
    ax_p99.set_xlabel("concurrent streams (30 tokens/s each)")
    ax_p99.set_ylabel("p99 latency (ms)")
    if ax_p99.lines:
        ax_p99.set_yscale("log")
    ax_p99.axhline(100, color="#999999", linestyle="--", linewidth=1)
    ax_p99.set_title("p99 latency against streams")
    for ax in (ax_cdf, ax_tp, ax_p99):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
