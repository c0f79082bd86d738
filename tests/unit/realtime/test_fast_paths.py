"""The hot path's shortcuts produce exactly what the slow, general code produces."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import socketio
from socketio import packet as sio_packet

from app.chat import events
from app.realtime import jsonmod
from app.realtime.engine_internals import encode_event


def reference(sio: socketio.AsyncServer, event: str, data: object) -> object:
    return sio.packet_class(sio_packet.EVENT, namespace="/", data=[event, data]).encode()


@pytest.mark.parametrize(
    "data",
    [
        events.chunk("s", "m", 1, 0, 0, 'héllo 👋 "quoted" \\ back\nslash '),
        {"nested": {"list": [1, 2.5, None, True, "x"]}, "empty": {}},
        {"usage": None, "sources": []},
        "a bare string",
    ],
)
@pytest.mark.parametrize("json_module", [jsonmod, json], ids=["orjson", "stdlib"])
def test_encode_event_matches_python_socketio(data: object, json_module: object) -> None:
    sio = socketio.AsyncServer(async_mode="asgi")
    saved = sio.packet_class.json  # a class attribute: the app's servers set it process-wide
    sio.packet_class.json = json_module
    try:
        assert encode_event(sio, "chat_chunk", data) == reference(sio, "chat_chunk", data)
    finally:
        sio.packet_class.json = saved


def test_bytes_take_python_socketio_path() -> None:
    sio = socketio.AsyncServer(async_mode="asgi", json=jsonmod)
    data = {"blob": b"\x00\x01"}
    assert encode_event(sio, "x", data) == reference(sio, "x", data)


STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_timestamp_is_now_in_protocol_format() -> None:
    before = datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
    stamp = events.timestamp()
    after = datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
    assert STAMP.match(stamp), stamp
    assert before <= stamp <= after


def test_timestamp_formats_each_second_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    moments = iter(
        [1_700_000_000_999_999_999, 1_700_000_001_000_000_500, 1_700_000_001_000_123_000]
    )
    monkeypatch.setattr(events.time, "time_ns", lambda: next(moments))
    assert events.timestamp() == "2023-11-14T22:13:20.999999Z"
    assert events.timestamp() == "2023-11-14T22:13:21.000000Z"
    assert events.timestamp() == "2023-11-14T22:13:21.000123Z"
