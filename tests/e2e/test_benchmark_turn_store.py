"""``python -m benchmarks.turn_store`` prints both paths' figures and leaves no database behind.

No figure is compared: the script is checked for complete, sane output only.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import asyncpg

from tests.support.services import PG_HOST, PG_PORT, require

ROOT = Path(__file__).resolve().parents[2]


async def _scratch_databases() -> list[str]:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'insighthub_turn_store_%'"
        )
        return [row["datname"] for row in rows]
    finally:
        await conn.close()


def test_a_small_run_prints_both_paths_and_drops_its_database() -> None:
    require("PostgreSQL", PG_HOST, PG_PORT)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.turn_store", "--turns", "5", "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for path in ("transaction", "one statement"):
        found = re.search(rf"^{path}\s+(\d+\.\d+)\s+(\d+\.\d+)$", done.stdout, re.MULTILINE)
        assert found, done.stdout
        assert float(found[1]) > 0 and float(found[2]) > 0
    assert re.search(r"CPU \d+\.\d\d, wall \d+\.\d\d", done.stdout)
    assert asyncio.run(_scratch_databases()) == []


def test_a_count_below_one_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.turn_store", "--turns", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "at least 1" in done.stderr
