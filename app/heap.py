"""Keeping the garbage collector's full passes off the streaming path.

A process of this server holds ~135,000 objects once it has imported FastAPI, SQLAlchemy,
pydantic, aio-pika and the providers; a full (generation 2) collection walks all of them,
measured here at ~80 ms, during which no token moves. Those objects live as long as the
process, so after start-up they are moved out of the collector's reach (``gc.freeze``):
full passes then cost what the objects made since then cost, and the per-token latency
loses its 100 ms spikes. Cycles among the frozen objects are never collected, which for
modules, classes and the app's wiring is no loss.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def freeze_startup_heap() -> None:
    started = time.perf_counter()
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    log.debug(
        "froze %d start-up objects in %.0f ms",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1e3,
    )
