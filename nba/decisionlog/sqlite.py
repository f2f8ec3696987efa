"""The decision log in one SQLite file, `decisions.sqlite3` in the log directory.

The same family as the interaction store's SQLite backend: WAL mode (readers never wait
for the writer), `synchronous=NORMAL`, a busy timeout so several worker processes can
write the one file. Records are buffered and committed in one transaction per `flush`
(the writer thread flushes whenever its queue runs empty), so a burst costs one commit.
`find` is a primary-key lookup. Retention deletes by age, then the oldest rows until
the records' total size fits; it runs on open and at most once a minute on write.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from nba.decisionlog import DecisionRecord, Retention
from nba.decisionlog.jsonl import RETENTION_EVERY_SECONDS
from nba.store.sqlite import enable_wal

FILE_NAME = "decisions.sqlite3"
DELETE_BATCH = 1000  # rows per delete, so retention never holds the write lock for long

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    time REAL NOT NULL,
    bytes INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (time);
"""


class SqliteLog:
    """A DecisionLog in one SQLite file; safe for several processes."""

    def __init__(self, directory: Path, retention: Retention) -> None:
        self.path = directory / FILE_NAME
        self.retention = retention
        self._lock = threading.Lock()  # the writer thread and a reader share the connection
        self._db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
        enable_wal(self._db)  # workers open a fresh file at once: SQLITE_BUSY is retried
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._pending: list[tuple[str, float, int, str]] = []
        self._next_retention = 0.0
        self.apply_retention()

    def write(self, record: DecisionRecord) -> None:
        text = orjson.dumps(record.as_dict()).decode()
        self._pending.append((record.decision_id, record.time, len(text), text))
        if time.monotonic() >= self._next_retention:
            self.flush()
            self.apply_retention()

    def flush(self) -> None:
        with self._lock:
            if not self._pending:
                return
            rows, self._pending = self._pending, []
            with self._db:
                self._db.executemany(
                    "INSERT OR IGNORE INTO decisions VALUES (?, ?, ?, ?)",
                    rows,  # a decision id is logged once: a repeat changes nothing
                )

    def find(self, decision_id: str) -> DecisionRecord | None:
        self.flush()
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM decisions WHERE decision_id = ?", (decision_id,)
            ).fetchone()
        return None if row is None else DecisionRecord.from_dict(orjson.loads(row[0]))

    def records(self) -> Iterator[DecisionRecord]:
        self.flush()
        with self._lock:
            rows = self._db.execute("SELECT record FROM decisions ORDER BY time").fetchall()
        for (text,) in rows:
            yield DecisionRecord.from_dict(orjson.loads(text))

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._db.close()

    def apply_retention(self) -> None:
        self._next_retention = time.monotonic() + RETENTION_EVERY_SECONDS
        cutoff = time.time() - self.retention.max_age_seconds
        with self._lock:
            while True:
                with self._db:
                    deleted = self._db.execute(
                        "DELETE FROM decisions WHERE decision_id IN (SELECT decision_id FROM"
                        " decisions WHERE time < ? LIMIT ?)",
                        (cutoff, DELETE_BATCH),
                    ).rowcount
                if deleted < DELETE_BATCH:
                    break
            self._trim_to_size()

    def _trim_to_size(self) -> None:
        limit = self.retention.max_total_bytes
        (total,) = self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM decisions").fetchone()
        while total > limit:
            rows = self._db.execute(
                "SELECT decision_id, bytes FROM decisions ORDER BY time LIMIT ?", (DELETE_BATCH,)
            ).fetchall()
            if not rows:
                return
            doomed = []
            for decision_id, size in rows:
                if total <= limit:
                    break
                doomed.append((decision_id,))
                total -= size
            with self._db:
                self._db.executemany("DELETE FROM decisions WHERE decision_id = ?", doomed)
