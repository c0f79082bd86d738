from __future__ import annotations

from pathlib import Path

import orjson

from app.llm.synthetic_provider import StreamRecorder


def test_memory_keeps_only_the_newest_records() -> None:
    recorder = StreamRecorder(keep=3)
    for n in range(5):
        recorder.record(event="started", n=n)
    assert [r["n"] for r in recorder.records] == [2, 3, 4]


def test_the_record_file_keeps_every_record(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.jsonl"
    recorder = StreamRecorder(path, keep=2)
    for n in range(4):
        recorder.record(event="closed", n=n)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["n"] for line in lines] == [0, 1, 2, 3]
    assert all(isinstance(line["t"], float) for line in lines)
    assert len(recorder.records) == 2
