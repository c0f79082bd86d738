"""Turning a delivery into a job, the one way every consumer does it.

A body that does not parse is not a job: on a job queue it is rejected without requeue (so
it is dead-lettered) and logged; on a dead-letter queue it is parked in
``insighthub.parked`` for a person to look at. Either way the consumer goes on.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from app.bus.base import Bus, JobDelivery

log = logging.getLogger(__name__)
J = TypeVar("J", bound=BaseModel)


async def parse_job(delivery: JobDelivery, model: type[J]) -> J | None:
    try:
        return model.model_validate_json(delivery.body)
    except ValidationError:
        log.error("%s that does not parse, dead-lettered: %r", model.__name__, delivery.body[:200])
        await delivery.reject()
        return None


async def parse_dead_letter(bus: Bus, delivery: JobDelivery, model: type[J]) -> J | None:
    try:
        return model.model_validate_json(delivery.body)
    except ValidationError:
        park = getattr(bus, "park", None)
        if park is not None:
            await park(delivery.body, f"{model.__name__} does not parse")
        else:
            log.error("dead %s that does not parse: %r", model.__name__, delivery.body[:200])
        await delivery.ack()
        return None
