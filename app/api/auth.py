"""Register, token (OAuth2 password flow, so /docs' Authorize button works), me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from app.api.deps import Ctx, CurrentUser
from app.api.schemas import TokenPublic, UserCreate, UserPublic
from app.auth import users

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: UserCreate, ctx: Ctx) -> UserPublic:
    user = await users.register(ctx.db, body.email, body.password)
    return UserPublic.model_validate(user)


@router.post("/token")
async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], ctx: Ctx) -> TokenPublic:
    user = await users.authenticate(ctx.db, form.username, form.password)
    return TokenPublic(access_token=ctx.tokens.issue(user.id), expires_in=ctx.tokens.ttl_s)


@router.get("/me")
async def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)
