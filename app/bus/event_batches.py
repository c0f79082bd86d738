"""Several events in one AMQP message: the framing, and nothing else.

Under load a chat worker produces thousands of events a second, each a few hundred bytes
for a different session. One AMQP message per event costs the worker, the broker and the
API node far more than the event itself (the profile: a third of the worker in
``basic_publish``). ``AmqpBus`` therefore sends what it has collected in one pass of the
event loop as one message; this module only turns ``(routing_key, body)`` pairs into bytes
and back.

The framing is binary so that a node can skip the events no local client watches without
parsing them: a version byte, then for each event a 2-byte key length, a 4-byte body
length (big-endian), the key (UTF-8) and the body, which stays the exact bytes published.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

VERSION = 1
_HEADER = struct.Struct(">HI")
_VERSION_BYTE = bytes([VERSION])


class MalformedBatch(ValueError):
    """The bytes are not a batch this code wrote (truncated, or another version)."""


def encode_batch(events: Sequence[tuple[str, bytes]]) -> bytes:
    parts = [_VERSION_BYTE]
    pack = _HEADER.pack
    for key, body in events:
        raw_key = key.encode()
        parts.append(pack(len(raw_key), len(body)))
        parts.append(raw_key)
        parts.append(body)
    return b"".join(parts)


def encoded_size(key: str, body: bytes) -> int:
    """Bytes one event adds to a batch (for keeping batches under a size)."""
    return _HEADER.size + len(key) + len(body)


def decode_batch(data: bytes) -> Iterator[tuple[str, bytes]]:
    """The events in publish order; ``MalformedBatch`` at the first thing that is wrong
    (events before it have been yielded: each is whole, and events are transient)."""
    if not data or data[0] != VERSION:
        raise MalformedBatch(f"not a version {VERSION} event batch")
    view = memoryview(data)
    offset = 1
    end = len(data)
    header = _HEADER.size
    unpack = _HEADER.unpack_from
    while offset < end:
        if offset + header > end:
            raise MalformedBatch(f"truncated event header at byte {offset}")
        key_len, body_len = unpack(data, offset)
        offset += header
        stop = offset + key_len + body_len
        if stop > end:
            raise MalformedBatch(f"truncated event at byte {offset}")
        try:
            key = str(view[offset : offset + key_len], "utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedBatch(f"routing key at byte {offset} is not UTF-8") from exc
        yield key, bytes(view[offset + key_len : stop])
        offset = stop
