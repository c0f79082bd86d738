"""Register, token (OAuth2 password flow, so /docs' Authorize button works), me.

Token requests pass the sign-in throttle (app/auth/sign_in_throttle.py) first: repeated
failures for one account or from one address answer 429 before any password is hashed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from app.api.deps import Ctx, CurrentUser
from app.api.schemas import TokenPublic, UserCreate, UserPublic
from app.auth import users
from app.errors import Unauthorized

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: UserCreate, ctx: Ctx) -> UserPublic:
    user = await users.register(ctx.db, body.email, body.password)
    return UserPublic.model_validate(user)


@router.post("/token")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, ctx: Ctx
) -> TokenPublic:
    account = users.normalise_email(form.username)
    address = request.client.host if request.client else None
    attempt = ctx.sign_ins.admit(account, address)
    try:
        user = await users.authenticate(ctx.db, form.username, form.password)
    except Unauthorized:
        raise  # counted: it was admitted as a failure
    except BaseException:
        ctx.sign_ins.withdraw(attempt)
        raise
    ctx.sign_ins.succeeded(attempt)
    return TokenPublic(access_token=ctx.tokens.issue(user.id), expires_in=ctx.tokens.ttl_s)


@router.get("/me")
async def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)
