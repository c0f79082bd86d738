"""FastAPI dependencies: the node's context, the caller, list parameters."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth.users import get_user
from app.context import AppContext
from app.db.models import User
from app.errors import Unauthorized

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_context)]


async def get_current_user(ctx: Ctx, token: Annotated[str | None, Depends(oauth2)]) -> User:
    if not token:
        raise Unauthorized("missing bearer token")
    claims = ctx.tokens.verify(token)
    return await get_user(ctx.db, claims.user_id)


CurrentUser = Annotated[User, Depends(get_current_user)]
Limit = Annotated[int, Query(ge=1, le=500)]
Before = Annotated[UUID | None, Query()]
