"""Work the decision path hands off: a bounded queue drained in batches by one thread.

The decision log (nba/decisionlog/writer.py) and outcome attribution
(nba/scoring/attribution.py) both take something from every decision and write it
somewhere slower than a decision may wait for. `submit` never waits: a full queue (the
disk or the store cannot keep up) drops the item and counts it, and the count is logged
at most every DROP_LOG_SECONDS and at close, never silently lost. The thread wakes on a
clock, takes what is queued in chunks, hands each chunk to `write`, and calls `flush`
when the queue runs empty. `close` (at shutdown, once no call is in flight) writes what
is queued.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")

DROP_LOG_SECONDS = 10.0
# Items handed over between GIL releases: a decision waits at most one chunk's writing
# behind the thread (a whole batch at once gave the decision log's p99 3.4 ms).
CHUNK = 32
BATCH_SECONDS = 0.05  # how often the thread takes what is queued: the writes lag this much
CLOSE_TIMEOUT_SECONDS = 10.0


class Background(Generic[Item]):
    """A bounded queue and the one thread that writes what is put on it."""

    def __init__(
        self,
        name: str,
        size: int,
        write: Callable[[Sequence[Item]], None],
        flush: Callable[[], None] = lambda: None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self._write = write
        self._flush = flush
        self._log = logger or logging.getLogger("nba")
        self._queue: queue.Queue[Item] = queue.Queue(size)
        self._stopping = threading.Event()
        self._drop_lock = threading.Lock()
        self.dropped = 0  # items not written because the queue was full
        self._dropped_logged = 0
        self._next_drop_log = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> None:
        """Queue an item; never waits."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._drop_lock:  # decisions run on many threads: no count may be lost
                self.dropped += 1
            if time.monotonic() >= self._next_drop_log:
                self._log_drops()

    def _run(self) -> None:
        # Woken by the clock, not per item: a thread blocked in queue.get() is woken by
        # every put, and each wake-up takes the GIL from the decisions (measured: a logged
        # decision cost 2x more CPU with a wake-up each than drained in batches).
        while not self._stopping.wait(BATCH_SECONDS):
            self.drain()
        self.drain()  # close(): what was queued before it

    def drain(self) -> None:
        """Write everything queued now, a chunk at a time, then flush."""
        wrote = False
        while chunk := self._take(CHUNK):
            self._write(chunk)
            wrote = True
            time.sleep(0)  # let the decisions have the GIL: a batch must not stall them
        if wrote:
            self._flush()

    def _take(self, most: int) -> list[Item]:
        taken: list[Item] = []
        while len(taken) < most:
            try:
                taken.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return taken

    def _log_drops(self) -> None:
        self._next_drop_log = time.monotonic() + DROP_LOG_SECONDS
        new = self.dropped - self._dropped_logged
        if new:
            self._dropped_logged = self.dropped
            self._log.warning(
                "%s queue full: %d not written (%d in all)", self.name, new, self.dropped
            )

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Write what is queued and stop the thread."""
        self._stopping.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._log.error("%s did not finish in %g s", self.name, timeout)
        self._log_drops()
