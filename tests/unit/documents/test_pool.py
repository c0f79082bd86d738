"""ParsePool with real spawned processes: a crash costs one call, never the others."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from app.documents.detect import PLAIN
from app.documents.parsing import DocumentParseError
from app.documents.pool import ParsePool
from tests.unit.documents.parsers_for_tests import CRASH, SLOW_PREFIX, crash_or_parse, report_pid


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[ParsePool]:
    pool = ParsePool(max_workers=2, parse_fn=crash_or_parse)
    yield pool
    await pool.aclose()


async def test_parses_in_a_child_process() -> None:
    pool = ParsePool(max_workers=1, parse_fn=report_pid)
    try:
        pid = int(await pool.parse(b"x", PLAIN))
    finally:
        await pool.aclose()
    assert pid != os.getpid()


async def test_default_parser_runs_in_the_pool() -> None:
    pool = ParsePool(max_workers=1)
    try:
        assert await pool.parse(b"hello there", PLAIN) == "hello there"
        with pytest.raises(DocumentParseError, match="empty"):
            await pool.parse(b"   ", PLAIN)
    finally:
        await pool.aclose()


async def test_a_crash_fails_that_call_and_the_pool_recovers(pool: ParsePool) -> None:
    with pytest.raises(DocumentParseError, match="parser crashed"):
        await pool.parse(CRASH, PLAIN)
    assert await pool.parse(b"still working", PLAIN) == "still working"


async def test_calls_in_flight_during_a_crash_still_succeed(
    pool: ParsePool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.documents.pool")
    slow = asyncio.create_task(pool.parse(SLOW_PREFIX + b"innocent", PLAIN))
    await asyncio.sleep(0.3)  # let the slow call reach a child before the crash
    crash = asyncio.create_task(pool.parse(CRASH, PLAIN))
    results = await asyncio.gather(slow, crash, return_exceptions=True)
    assert results[0] == "innocent"
    assert isinstance(results[1], DocumentParseError)
    # The pool broke under both calls and was replaced once.
    assert [r.getMessage() for r in caplog.records].count(
        "a document parser process died; starting a new pool"
    ) == 1


async def test_inline_mode_runs_in_this_process() -> None:
    pool = ParsePool(parse_inline=True, parse_fn=report_pid)
    assert int(await pool.parse(b"x", PLAIN)) == os.getpid()
    await pool.aclose()


async def test_inline_mode_raises_parse_errors() -> None:
    pool = ParsePool(parse_inline=True)
    with pytest.raises(DocumentParseError):
        await pool.parse(b"", PLAIN)
    await pool.aclose()


async def test_a_closed_pool_refuses_work() -> None:
    pool = ParsePool(max_workers=1)
    await pool.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await pool.parse(b"x", PLAIN)


def test_max_workers_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ParsePool(max_workers=0)
