"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way out, whatever the driver stores.

    SQLite keeps no zone; PostgreSQL's timestamptz does. Either way the application only
    ever sees aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_last_now = datetime.min.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """Now, strictly increasing within the process, so rows inserted in a row sort in order."""
    global _last_now
    now = datetime.now(UTC)
    if now <= _last_now:
        from datetime import timedelta

        now = _last_now + timedelta(microseconds=1)
    _last_now = now
    return now


def isoformat(value: datetime) -> str:
    """PROTOCOL.md timestamps: ISO 8601, UTC, microseconds, a ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
