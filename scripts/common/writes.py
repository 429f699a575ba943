"""Encode files on a few threads and write them in order on another, each write atomic.

`ParallelWrites` runs each submitted `produce() -> bytes` (render and encode, say) on a small
thread pool, while one writer thread takes the results in submission order and writes each
with `atomic.write_bytes` (temp name, fsync, rename). Pillow releases the GIL while it resizes
and encodes, and the kernel while it syncs, so encoding overlaps itself and the syncing, where a
single loop would wait on each file's fsync in turn. Files still appear in submission order, and
the first failed write stops the ones after it, exactly as in a plain loop: a run that fails
leaves a prefix of complete files and no partial one. At most `2 * workers` files are pending
(`submit` waits), so memory stays bounded. Leaving the `with` block waits for the writer and
raises the first write error; when the block itself fails, files not yet written are dropped.
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from scripts.common import atomic


def default_workers() -> int:
    return max(2, min(8, os.cpu_count() or 1))


class ParallelWrites:
    def __init__(self, workers: int | None = None, on_written: Callable[[], object] | None = None) -> None:
        self.workers = workers or default_workers()
        self._on_written = on_written  # called on the writer thread after each durable write
        self.completed = 0  # files written so far (only the writer thread changes it)
        self._encoders = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="encode")
        self._queue: queue.Queue[tuple[Path, Future[bytes]] | None] = queue.Queue()
        self._slots = threading.BoundedSemaphore(2 * self.workers)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_in_order, name="write", daemon=True)
        self._writer.start()

    def _write_in_order(self) -> None:
        while (item := self._queue.get()) is not None:
            path, future = item
            try:
                if self._error is None and not self._stop.is_set():
                    atomic.write_bytes(path, future.result())
                    self.completed += 1
                    if self._on_written is not None:
                        self._on_written()
            except BaseException as error:  # handed to the caller when the block ends
                self._error = error
            finally:
                self._slots.release()

    def submit(self, path: Path, produce: Callable[[], bytes]) -> None:
        """Queue one file; waits while `2 * workers` are pending; raises an earlier write's error."""
        if self._error is not None:
            raise self._error
        self._slots.acquire()
        self._queue.put((path, self._encoders.submit(produce)))

    def __enter__(self) -> ParallelWrites:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is not None:
            self._stop.set()
        self._queue.put(None)
        self._writer.join()
        self._encoders.shutdown(wait=True, cancel_futures=True)
        if kind is None and self._error is not None:
            raise self._error
