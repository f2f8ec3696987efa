"""Serving side: decisions go to the log from a bounded queue, by one thread per process.

The decision path calls `submit`, which decides sampling (a hash of the decision id: the
same decision is in or out whoever asks) and puts the Decision on the queue without
waiting. Turning it into a record (masking, hashing, JSON) and writing it happen on the
writer thread, which flushes whenever the queue runs empty. A full queue (the disk cannot
keep up) drops the decision and counts it: the count is logged at most every
DROP_LOG_SECONDS and at close, never silently lost. `close` (the server's stop, after
calls in flight have finished) writes what is queued and flushes.

The recorder also archives every rule-set version that serves: it listens to the
holder's loads (the listener runs on the reloading thread, never on a decision).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from pathlib import Path

from nba.decisionlog import DecisionLog, LogSettings, open_decision_log
from nba.decisionlog.archive import RuleSetArchive
from nba.decisionlog.record import RecordBuilder
from nba.pipeline.types import Decision
from nba.ruleset.ruleset import RuleSet

log = logging.getLogger("nba.decisionlog")

DROP_LOG_SECONDS = 10.0
# Records written between GIL releases (~12 µs each): a decision waits at most ~0.4 ms
# behind the writer, instead of a whole batch (p99 3.4 ms with batches written whole).
CHUNK = 32
BATCH_SECONDS = 0.05  # how often the writer takes what is queued: the log is this far behind
CLOSE_TIMEOUT_SECONDS = 10.0


def sampled(decision_id: str, rate: float) -> bool:
    """Whether a decision is logged at `rate` (0..1): deterministic by the id's hash."""
    if rate >= 1.0:
        return True
    digest = hashlib.blake2b(decision_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest) < rate * 2**64


class DecisionRecorder:
    """Queues decisions for the log and writes them on its own thread."""

    def __init__(self, settings: LogSettings, engine: str = "durable") -> None:
        self.settings = settings
        self.log: DecisionLog = open_decision_log(
            settings.directory, settings.backend, settings.rotate_bytes, settings.retention
        )
        self.archive = RuleSetArchive(settings.directory)
        self.builder = RecordBuilder(settings.drop, settings.mask, settings.hash_key, engine)
        self._queue: queue.Queue[tuple[Decision, float]] = queue.Queue(settings.queue_size)
        self._stopping = threading.Event()
        self._drop_lock = threading.Lock()
        self.dropped = 0  # decisions not logged because the queue was full
        self.failed = 0  # records the log could not write
        self.written = 0
        self._dropped_logged = 0
        self._next_drop_log = 0.0
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    # -- the decision path
    def submit(self, decision: Decision) -> None:
        """Queue a decision for the log (if sampled); never waits."""
        if not sampled(decision.decision_id, self.settings.sample):
            return
        try:
            self._queue.put_nowait((decision, time.time()))
        except queue.Full:
            with self._drop_lock:  # decisions run on many threads: no count may be lost
                self.dropped += 1
            if time.monotonic() >= self._next_drop_log:
                self._log_drops()

    # -- the rule sets
    def archive_ruleset(self, ruleset: RuleSet, rules_dir: Path) -> None:
        self.archive.archive(ruleset, rules_dir)

    # -- the writer thread
    def _run(self) -> None:
        # Woken by the clock, not per decision: a thread blocked in queue.get() is woken
        # by every put, and each wake-up takes the GIL from the decisions (measured: a
        # sampled decision cost 2x more CPU with a wake-up each than drained in batches).
        while not self._stopping.wait(BATCH_SECONDS):
            self._drain()
        self._drain()  # close(): what was queued before it

    def _drain(self) -> None:
        wrote = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            self._write(item)
            wrote += 1
            if wrote % CHUNK == 0:
                time.sleep(0)  # let the decisions have the GIL: a batch must not stall them
        if wrote:
            self._flush()

    def _write(self, item: tuple[Decision, float]) -> None:
        decision, at = item
        try:
            self.log.write(self.builder.record(decision, at))
            self.written += 1
        except Exception:  # a full disk must not kill the thread: count, log, go on
            self.failed += 1
            if self.failed == 1 or self.failed % 1000 == 0:
                log.exception("could not write decision %s to the log", decision.decision_id)

    def _flush(self) -> None:
        try:
            self.log.flush()
        except Exception:
            log.exception("could not flush the decision log")

    def _log_drops(self) -> None:
        self._next_drop_log = time.monotonic() + DROP_LOG_SECONDS
        new = self.dropped - self._dropped_logged
        if new:
            self._dropped_logged = self.dropped
            log.warning(
                "decision log queue full: %d decisions not logged (%d in all)", new, self.dropped
            )

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Write what is queued, flush and close (at shutdown, once no call is in flight)."""
        self._stopping.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("decision log writer did not finish in %g s", timeout)
        self._log_drops()
        self.log.close()
        log.info(
            "decision log closed: %d written, %d dropped, %d failed",
            self.written,
            self.dropped,
            self.failed,
        )
