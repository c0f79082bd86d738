"""Storing a chat turn on PostgreSQL: the transaction against the one statement, side by side.

``python -m benchmarks.turn_store [--turns N] [--rounds R] [--database-url URL]`` makes a
scratch database (dropped afterwards), then stores N new-session turns one after another
through each path, alternating for R rounds, and prints the API process's CPU and the wall
time per turn. The transaction is what SQLite still runs (``app.chat.service._accept``);
the one statement is what PostgreSQL runs (``app.chat.accept_pg``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from app.chat import service
from app.chat.requests import TurnRequest
from app.db.engine import SessionFactory, make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_database
from app.db.models import User, Workspace, WorkspaceMember
from app.settings import Settings

Store = Callable[[int], Awaitable[object]]


async def _seed(db: SessionFactory) -> tuple[uuid.UUID, uuid.UUID]:
    user, workspace = uuid.uuid4(), uuid.uuid4()
    async with db() as s, s.begin():
        await s.execute(insert(User).values(id=user, email="bench@example.com", password_hash="x"))
        await s.execute(
            insert(Workspace).values(
                id=workspace, owner_id=user, name="bench", status="ready", llm_provider="local"
            )
        )
        await s.execute(
            insert(WorkspaceMember).values(workspace_id=workspace, user_id=user, role="owner")
        )
    return user, workspace


async def _per_turn(store: Store, turns: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per turn over ``turns`` turns stored one after another."""
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(turns):
        await store(i)
    return (
        1000 * (time.process_time() - cpu) / turns,
        1000 * (time.perf_counter() - wall) / turns,
    )


async def measure(database_url: str, turns: int, rounds: int) -> dict[str, dict[str, float]]:
    engine = make_engine(Settings(database_url=database_url))
    db = make_session_factory(engine)
    try:
        await upgrade_database(engine)
        user, workspace = await _seed(db)

        async def in_transaction(i: int) -> object:
            async with transaction(db) as conn:
                return await service._accept(
                    conn, user, TurnRequest(workspace, None, f"turn {i}", "none", None)
                )

        async def in_one_statement(i: int) -> object:
            return await service.accept_message(
                db,
                user,
                workspace_id=workspace,
                session_id=None,
                message=f"turn {i}",
                rag_type="none",
                client_message_id=None,
            )

        paths: dict[str, Store] = {"transaction": in_transaction, "one statement": in_one_statement}
        seen: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
        for store in paths.values():  # warm the pool and the statement caches
            await _per_turn(store, max(1, turns // 10))
        for _ in range(rounds):
            for name, store in paths.items():
                seen[name].append(await _per_turn(store, turns))
        return {
            name: {
                "cpu_ms": statistics.median(c for c, _ in runs),
                "wall_ms": statistics.median(w for _, w in runs),
            }
            for name, runs in seen.items()
        }
    finally:
        await engine.dispose()


async def _admin(server_url: str, sql: str) -> None:
    url = make_url(server_url)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database="postgres"
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main_async(server_url: str, turns: int, rounds: int) -> dict[str, dict[str, float]]:
    name = f"insighthub_turn_store_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        return await measure(url, turns, rounds)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    if args.turns < 1 or args.rounds < 1:
        parser.error("--turns and --rounds must be at least 1")
    figures = asyncio.run(main_async(args.database_url, args.turns, args.rounds))
    print(f"{'path':15s} {'CPU ms/turn':>12s} {'wall ms/turn':>13s}")
    for name, row in figures.items():
        print(f"{name:15s} {row['cpu_ms']:12.3f} {row['wall_ms']:13.3f}")
    base, one = figures["transaction"], figures["one statement"]
    print(
        f"one statement / transaction: CPU {one['cpu_ms'] / base['cpu_ms']:.2f}, "
        f"wall {one['wall_ms'] / base['wall_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
