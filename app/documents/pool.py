"""Running the CPU-bound parser off the event loop, in child processes.

A malformed PDF can make pypdf spin, balloon or (through a native dependency) crash; in a
child process that costs the child, not the server. When a child dies, every call then in
flight on the pool fails with ``BrokenProcessPool``, the guilty one and the innocent alike,
so each of them runs once more, alone, in a fresh one-off process: the innocent succeed,
and the one that kills its process again is the document to blame::

    pool = ParsePool(max_workers=2)
    try:
        text = await pool.parse(data, "application/pdf")
    finally:
        await pool.aclose()
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from app.documents.parsing import DocumentParseError, parse_document

logger = logging.getLogger(__name__)

ParseFn = Callable[[bytes, str], str]

# Spawn, not fork: forking a process that runs an event loop and threads copies their
# locks in whatever state they are in.
_SPAWN = multiprocessing.get_context("spawn")


class ParsePool:
    """``parse_document`` in a small process pool, or in a thread with ``parse_inline=True``.

    ``parse_fn`` must be a picklable top-level function; it is there so tests can run a
    parser that crashes its process.
    """

    def __init__(
        self,
        *,
        max_workers: int = 2,
        parse_inline: bool = False,
        parse_fn: ParseFn = parse_document,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers
        self._parse_inline = parse_inline
        self._parse_fn = parse_fn
        self._closed = False
        self._executor: ProcessPoolExecutor | None = None if parse_inline else self._new()

    async def parse(self, data: bytes, content_type: str) -> str:
        """The document's text; :class:`DocumentParseError` if it cannot be read."""
        if self._closed:
            raise RuntimeError("the parse pool is closed")
        if self._parse_inline:
            return await asyncio.to_thread(self._parse_fn, data, content_type)
        executor = self._executor
        assert executor is not None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, self._parse_fn, data, content_type)
        except BrokenProcessPool:
            self._replace(executor)
        # Alone in its own process, a parse that crashes again is the cause, not a bystander.
        return await self._parse_isolated(data, content_type)

    async def aclose(self) -> None:
        """Refuse new calls, drop queued ones, and wait for the running ones to end."""
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            # shutdown(wait=True) joins processes: a blocking call, so not on the loop.
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    def _new(self, max_workers: int | None = None) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=max_workers or self._max_workers, mp_context=_SPAWN)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        # Several calls see the same breakage; only the first replaces the pool.
        if self._executor is broken and not self._closed:
            logger.warning("a document parser process died; starting a new pool")
            self._executor = self._new()
            broken.shutdown(wait=False, cancel_futures=True)

    async def _parse_isolated(self, data: bytes, content_type: str) -> str:
        executor = self._new(max_workers=1)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, self._parse_fn, data, content_type)
        except BrokenProcessPool as exc:
            raise DocumentParseError(
                "the parser crashed while reading this document; it may be damaged"
            ) from exc
        finally:
            # Without waiting: a cancelled caller must not wait for the parse to end; the
            # process exits by itself once it has.
            executor.shutdown(wait=False, cancel_futures=True)
