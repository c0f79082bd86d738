"""Liveness, readiness, providers."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.api.deps import Ctx, CurrentUser
from app.api.schemas import ProviderPublic

router = APIRouter()


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _database_up(ctx: Ctx) -> bool:
    try:
        async with asyncio.timeout(3):
            async with ctx.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


async def _broker_up(ctx: Ctx) -> bool:
    try:
        async with asyncio.timeout(3):
            return await ctx.bus.ping()
    except Exception:
        return False


@router.get("/readyz", tags=["health"])
async def readyz(ctx: Ctx) -> JSONResponse:
    database, broker = await asyncio.gather(_database_up(ctx), _broker_up(ctx))
    checks = {"database": "up" if database else "down", "broker": "up" if broker else "down"}
    if database and broker:
        return JSONResponse({"status": "ready", **checks})
    down = [name for name, up in (("database", database), ("broker", broker)) if not up]
    return JSONResponse(
        {
            "status": "unavailable",
            **checks,
            "detail": f"{' and '.join(down)} unreachable",
            "error_type": "server_error",
        },
        503,
    )


@router.get("/api/providers", tags=["providers"])
async def providers(ctx: Ctx, _user: CurrentUser) -> list[ProviderPublic]:
    return [
        ProviderPublic(name=name, default_model=ctx.providers.default_model(name))
        for name in ctx.providers.names()
    ]
