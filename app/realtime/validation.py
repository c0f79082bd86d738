"""Turning a pydantic failure into a message a person can act on."""

from __future__ import annotations

from pydantic import ValidationError


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
