"""Alembic environment, async, usable two ways.

- ``insighthub migrate`` / ``alembic upgrade head``: builds an async engine from the
  settings and runs the migrations on it.
- ``insighthub serve`` (already inside a running loop): ``app.db.migrate`` hands a sync
  connection through ``config.attributes["connection"]`` from ``connection.run_sync``, so
  this file never calls ``asyncio.run`` inside a loop.

``render_as_batch`` lets one migration set serve SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Connection

from alembic import context
from app.db.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    from app.db.engine import make_engine
    from app.settings import Settings

    engine = make_engine(Settings())
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_async())
