"""Accounts: register and authenticate."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.auth.passwords import hash_password, verify_password
from app.db.engine import SessionFactory
from app.db.models import User
from app.errors import Conflict, Unauthorized


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def register(db: SessionFactory, email: str, password: str) -> User:
    email = normalise_email(email)
    hashed = await hash_password(password)
    async with db() as s:
        if await s.scalar(select(User.id).where(User.email == email)):
            raise Conflict("that email is already registered")
        user = User(email=email, password_hash=hashed)
        s.add(user)
        try:
            await s.commit()
        except IntegrityError as exc:
            raise Conflict("that email is already registered") from exc
        return user


async def authenticate(db: SessionFactory, email: str, password: str) -> User:
    async with db() as s:
        user = await s.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))
    if not await verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthorized("incorrect email or password")
    return user


async def get_user(db: SessionFactory, user_id: uuid.UUID) -> User:
    async with db() as s:
        user = await s.get(User, user_id)
    if user is None:
        raise Unauthorized("unknown user")
    return user
