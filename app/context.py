"""Everything a running node holds, built once by ``app.main`` and handed to the edges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.sign_in_throttle import SignInThrottle
from app.auth.tokens import TokenCodec
from app.bus.base import Bus
from app.chat.turns import ChatTurns
from app.db.engine import SessionFactory
from app.llm.registry import ProviderRegistry
from app.settings import Settings

if TYPE_CHECKING:
    from app.realtime.server import RealtimeServer


@dataclass(eq=False)
class AppContext:
    settings: Settings
    engine: AsyncEngine
    db: SessionFactory
    bus: Bus
    providers: ProviderRegistry
    tokens: TokenCodec
    turns: ChatTurns
    sign_ins: SignInThrottle
    realtime: RealtimeServer | None = None
    workers: list[Any] = field(default_factory=list)
    metrics: dict[str, int] = field(default_factory=dict)
