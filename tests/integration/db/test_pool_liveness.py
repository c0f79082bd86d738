"""The PostgreSQL pool hands out only live connections, without a query per checkout.

``app.db.engine`` replaced ``pool_pre_ping`` (a round trip on every checkout) with asking
asyncpg whether the server closed the socket. These tests end the pool's backends from
outside, the way a database restart or an administrator does, and expect the next
statements to succeed on fresh connections.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from sqlalchemy import text

from app.db.engine import (
    SessionFactory,
    autocommit_connection,
    make_engine,
    make_session_factory,
)
from tests.conftest import fresh_postgres_database, make_settings
from tests.support.services import PG_HOST, PG_PORT


async def _terminate_backends(database: str) -> int:
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        ended = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return len(ended)
    finally:
        await admin.close()


async def _backend_pids(db: SessionFactory, count: int) -> set[int]:
    """Check out ``count`` connections at once, so the pool holds that many."""

    async def one() -> int:
        async with db() as s:
            pid = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await asyncio.sleep(0.05)  # keep it checked out while the others are taken
            return int(pid)

    return set(await asyncio.gather(*(one() for _ in range(count))))


async def test_statements_after_the_server_ended_every_pooled_connection_succeed(
    tmp_path: Path,
) -> None:
    with fresh_postgres_database() as url:
        engine = make_engine(make_settings(tmp_path, url))
        db = make_session_factory(engine)
        try:
            before = await _backend_pids(db, 3)
            assert len(before) == 3
            assert await _terminate_backends(url.rsplit("/", 1)[1]) >= 3
            await asyncio.sleep(0.2)  # the loop reads each socket's EOF

            after = await _backend_pids(db, 3)
            async with autocommit_connection(db) as conn:
                assert (await conn.execute(text("SELECT 41 + 1"))).scalar_one() == 42
            assert not (after & before), "a connection the server had closed was handed out"
        finally:
            await engine.dispose()


async def test_an_autocommit_connection_stores_each_statement_at_once(tmp_path: Path) -> None:
    with fresh_postgres_database() as url:
        engine = make_engine(make_settings(tmp_path, url))
        db = make_session_factory(engine)
        try:
            async with db() as s, s.begin():
                await s.execute(text("CREATE TABLE t (n int)"))
            async with autocommit_connection(db) as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
                # Visible to another connection before this one is returned: no transaction.
                async with db() as other:
                    seen = (await other.execute(text("SELECT count(*) FROM t"))).scalar_one()
                assert seen == 1
            async with db() as s, s.begin():
                # An ordinary session still rolls back what it did not commit.
                await s.execute(text("INSERT INTO t VALUES (2)"))
                await s.rollback()
            async with db() as s:
                assert (await s.execute(text("SELECT array_agg(n) FROM t"))).scalar_one() == [1]
        finally:
            await engine.dispose()
