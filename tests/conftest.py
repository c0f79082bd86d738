"""Shared fixtures: settings for each database, a live server, clients."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from app.settings import Settings
from tests.support.clients import Api
from tests.support.server import LiveServer
from tests.support.services import PG_HOST, PG_PORT, require

# Tests build their own settings: nothing from the developer's shell leaks in.
for _name in [n for n in os.environ if n.startswith("INSIGHTHUB_")]:
    del os.environ[_name]

DB_KINDS = ("sqlite", "postgres")


def make_settings(data_dir: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "jwt_secret": "test-secret-" + uuid.uuid4().hex,
        "llm_retry_base_delay_s": 0.05,
        "checkpoint_interval_s": 0.2,
        "sweep_interval_s": 2.0,
        "lease_s": 3.0,
        "synthetic_record_path": str(data_dir / "synthetic.jsonl"),
        "auto_migrate": True,
    }
    values.update(overrides)
    return Settings(**values)


def _in_own_loop(coro: Any) -> Any:
    """Run a coroutine to completion on a loop of its own (sync fixtures, outside the tests' loop)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(coro)))
    thread.start()
    thread.join()
    return result[0] if result else None


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    require("PostgreSQL", PG_HOST, PG_PORT)
    name = f"insighthub_test_{uuid.uuid4().hex[:8]}"
    _in_own_loop(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _in_own_loop(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The PostgreSQL database of this test run's embedded servers."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("insighthub")


@pytest_asyncio.fixture(scope="module", params=DB_KINDS)
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    """A live embedded server, once on SQLite and once on PostgreSQL."""
    kind = request.param
    url = request.getfixturevalue("postgres_server") if kind == "postgres" else None
    data_dir = tmp_path_factory.mktemp(f"server-{kind}")
    live = await LiveServer(make_settings(data_dir, url)).start()
    try:
        yield live
    finally:
        await live.stop()


@pytest_asyncio.fixture(scope="module")
async def api(server: LiveServer) -> AsyncIterator[Api]:
    client = Api(server.url)
    try:
        yield client
    finally:
        await client.aclose()
