"""scripts.common.writes: encoded on a few threads, written in order, each atomic; errors reach the caller."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from scripts.common import atomic
from scripts.common.writes import ParallelWrites


def test_every_file_is_written_whole_and_counted(tmp_path: Path) -> None:
    with ParallelWrites(workers=3) as writes:
        for i in range(20):
            writes.submit(tmp_path / f"f{i}.bin", lambda i=i: bytes([i]) * 1000)  # type: ignore[misc]
    assert writes.completed == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"f{i}.bin" for i in range(20))
    assert all((tmp_path / f"f{i}.bin").read_bytes() == bytes([i]) * 1000 for i in range(20))


def test_work_overlaps_but_stays_bounded(tmp_path: Path) -> None:
    running, most, lock = 0, 0, threading.Lock()

    def produce() -> bytes:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return b"x"

    with ParallelWrites(workers=2) as writes:
        for i in range(8):
            writes.submit(tmp_path / f"{i}", produce)
    assert most == 2


def test_a_failed_write_stops_the_later_ones_and_is_raised(tmp_path: Path) -> None:
    def broken() -> bytes:
        raise OSError(28, "No space left on device", str(tmp_path / "b"))

    with pytest.raises(OSError, match="No space left") as caught, ParallelWrites(workers=2) as writes:
        writes.submit(tmp_path / "a", lambda: b"a")
        writes.submit(tmp_path / "b", broken)
        writes.submit(tmp_path / "c", lambda: b"c")
    assert caught.value.filename == str(tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # as a plain loop: no b, no c, no temp file


def test_an_error_in_the_block_drops_files_not_yet_started(tmp_path: Path) -> None:
    gate = threading.Event()
    with pytest.raises(KeyboardInterrupt), ParallelWrites(workers=1) as writes:
        writes.submit(tmp_path / "first", lambda: b"1" if gate.wait(5) else b"")
        writes.submit(tmp_path / "second", lambda: b"2")
        gate.set()
        raise KeyboardInterrupt
    assert {p.name for p in tmp_path.iterdir()} <= {"first"}  # nothing partial, nothing after the stop


def test_files_are_written_in_submission_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    slow = threading.Event()
    real = atomic.write_bytes

    def first() -> bytes:
        slow.wait(5)  # encoded last, written first
        return b"1"

    def second() -> bytes:
        slow.set()
        return b"2"

    def record(target: Path, data: bytes) -> None:
        order.append(target.name)
        real(target, data)

    monkeypatch.setattr(atomic, "write_bytes", record)
    with ParallelWrites(workers=2) as writes:
        writes.submit(tmp_path / "one", first)
        writes.submit(tmp_path / "two", second)
    assert order == ["one", "two"]
