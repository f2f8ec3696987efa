"""Serving side: decisions go to the log from a bounded queue, by one thread per process.

The decision path calls `submit`, which decides sampling (a hash of the decision id: the
same decision is in or out whoever asks) and puts the Decision on the queue without
waiting (nba/background.py). Turning it into a record (masking, hashing, JSON) and
writing it happen on the writer thread, which flushes whenever the queue runs empty. A
full queue (the disk cannot keep up) drops the decision and counts it. `close` (the
server's stop, after calls in flight have finished) writes what is queued and flushes.

The recorder also archives every rule-set version that serves: it listens to the
holder's loads (the listener runs on the reloading thread, never on a decision).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from nba.background import CLOSE_TIMEOUT_SECONDS, Background
from nba.decisionlog import DecisionLog, LogSettings, open_decision_log
from nba.decisionlog.archive import RuleSetArchive
from nba.decisionlog.record import RecordBuilder
from nba.pipeline.types import Decision
from nba.ruleset.ruleset import RuleSet

log = logging.getLogger("nba.decisionlog")


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
        self.failed = 0  # records the log could not write
        self.written = 0
        self._queue: Background[tuple[Decision, float]] = Background(
            "decision log", settings.queue_size, self._write, self._flush, log
        )

    @property
    def dropped(self) -> int:
        """Decisions not logged because the queue was full."""
        return self._queue.dropped

    # -- the decision path
    def submit(self, decision: Decision) -> None:
        """Queue a decision for the log (if sampled); never waits."""
        if sampled(decision.decision_id, self.settings.sample):
            self._queue.submit((decision, time.time()))

    # -- the rule sets
    def archive_ruleset(self, ruleset: RuleSet, rules_dir: Path) -> None:
        self.archive.archive(ruleset, rules_dir)

    # -- the writer thread
    def _write(self, items: Sequence[tuple[Decision, float]]) -> None:
        for decision, at in items:
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

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Write what is queued, flush and close (at shutdown, once no call is in flight)."""
        self._queue.close(timeout)
        self.log.close()
        log.info(
            "decision log closed: %d written, %d dropped, %d failed",
            self.written,
            self.dropped,
            self.failed,
        )
