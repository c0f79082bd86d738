"""Parse functions for ParsePool tests; top-level so that a spawned child can import them."""

from __future__ import annotations

import os
import time

from app.documents.parsing import parse_document

CRASH = b"crash the process"
SLOW_PREFIX = b"slow:"


def crash_or_parse(data: bytes, content_type: str) -> str:
    """Kill the child on CRASH (as a segfault in a native library would); sleep on slow:."""
    if data == CRASH:
        os._exit(13)
    if data.startswith(SLOW_PREFIX):
        time.sleep(1.0)  # keeps this call in flight while another one crashes the pool
        data = data[len(SLOW_PREFIX) :]
    return parse_document(data, content_type)


def report_pid(data: bytes, content_type: str) -> str:
    return str(os.getpid())
