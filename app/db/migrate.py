"""Apply the Alembic migrations from inside a running event loop (``serve``, ``migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command

ROOT = Path(__file__).resolve().parents[2]


def alembic_config() -> Config:
    ini = ROOT / "alembic.ini"
    config = Config(str(ini))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    return config


async def upgrade_database(engine: AsyncEngine) -> None:
    config = alembic_config()

    def _upgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
