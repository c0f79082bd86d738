"""JWT access tokens: HS256, ``sub``/``iat``/``exp`` required, the algorithm pinned."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from app.errors import Unauthorized

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: uuid.UUID
    expires_at: float


class TokenCodec:
    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def issue(self, user_id: uuid.UUID, *, ttl_s: int | None = None) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "iat": now, "exp": now + (ttl_s or self.ttl_s)}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: object) -> TokenClaims:
        if not isinstance(token, str) or not token:
            raise Unauthorized("missing token")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "iat", "exp"]},
            )
            return TokenClaims(uuid.UUID(str(claims["sub"])), float(claims["exp"]))
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise Unauthorized("invalid token") from exc
