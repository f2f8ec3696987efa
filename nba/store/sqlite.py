"""Embedded interaction store: one SQLite file in WAL mode; the default backend.

Durability: with the default ``synchronous=NORMAL`` a write is in the WAL, in the operating
system's page cache, when ``record`` returns, so it survives ``kill -9`` of the process (and a
crash of the server) but the last transactions may be lost on power loss or a kernel crash.
Add ``?synchronous=full`` to the URL to fsync the WAL on every commit and survive those too,
at the price of one fsync per recorded interaction.

Concurrency: connections come from a small pool, one per concurrent caller, so the gRPC
thread pool reads in parallel (WAL readers do not block each other nor the writer); writers of
one process queue on a lock. Several processes may share the file: writes take SQLite's write
lock up front (``BEGIN IMMEDIATE``) and wait up to the busy timeout for it instead of failing
with "database is locked".

Consent lives in its own table, one row per (customer, channel), written by an upsert whose
``WHERE excluded.at >= consent.at`` makes the newest update win inside SQLite itself, so that
processes sharing the file need no read-then-write. ``snapshot`` reads history and consent in
one read transaction (measured cheaper than one UNION ALL statement, which needs sorting).

Retention: ``record`` trims the recording customer; ``sweep`` deletes everybody's expired rows
through the index on ``at``, in batches of ``SWEEP_BATCH`` rows, each its own short write
transaction, so records from this and other processes go on between batches.

Budgets (``take_budget``) are rows of their own table, read and written in one ``BEGIN
IMMEDIATE`` transaction, so processes sharing the file never grant past a limit; rows of
ended windows are ignored at once and deleted by ``sweep``.

Schema version 2 added the consent table and the ``at`` index. Both are created with
``IF NOT EXISTS`` on open, so a version 1 file is upgraded in place (building the index over
an existing table takes one write transaction of a length proportional to its rows).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from nba.pipeline.types import Interaction
from nba.store import (
    BULK_READ,
    MAX_SHOWN,
    Clock,
    RetentionSetting,
    Shown,
    StoreError,
    check_customer_id,
    checked_claims,
    checked_consent,
    checked_increments,
    latest_shown,
    prepared,
    retention_cutoff,
    sweep_cutoff,
)

SYNCHRONOUS_MODES = ("normal", "full", "extra")
BUSY_TIMEOUT_SECONDS = 5.0
SCHEMA_VERSION = 2
SWEEP_BATCH = 500
"""Rows deleted per write transaction by ``sweep``: a few milliseconds of write lock."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS interactions (
    customer_id    TEXT    NOT NULL,
    interaction_id TEXT    NOT NULL,
    action_id      TEXT    NOT NULL,
    channel        TEXT    NOT NULL,
    outcome        INTEGER NOT NULL,
    at             REAL    NOT NULL,
    decision_id    TEXT    NOT NULL,
    PRIMARY KEY (customer_id, interaction_id)
);
CREATE INDEX IF NOT EXISTS interactions_customer_at ON interactions (customer_id, at);
CREATE INDEX IF NOT EXISTS interactions_at ON interactions (at);
CREATE TABLE IF NOT EXISTS consent (
    customer_id TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    granted     INTEGER NOT NULL,
    at          REAL    NOT NULL,
    PRIMARY KEY (customer_id, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT NOT NULL PRIMARY KEY,
    value REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shown (
    customer_id TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    at          REAL NOT NULL,
    encoded     TEXT NOT NULL,
    PRIMARY KEY (customer_id, decision_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shown_customer_at ON shown (customer_id, at);
CREATE TABLE IF NOT EXISTS budgets (
    name       TEXT    NOT NULL PRIMARY KEY,
    count      INTEGER NOT NULL,
    expires_at REAL    NOT NULL
) WITHOUT ROWID;
"""
_BUDGET = "SELECT count, expires_at FROM budgets WHERE name = ?"
_SET_BUDGET = "INSERT OR REPLACE INTO budgets (name, count, expires_at) VALUES (?, ?, ?)"
_SWEEP_BUDGETS = "DELETE FROM budgets WHERE expires_at <= ?"
_REMEMBER = (
    "INSERT OR REPLACE INTO shown (customer_id, decision_id, at, encoded) VALUES (?, ?, ?, ?)"
)
_KEEP_LATEST = """
DELETE FROM shown WHERE customer_id = ? AND decision_id NOT IN
    (SELECT decision_id FROM shown WHERE customer_id = ? ORDER BY at DESC LIMIT ?)
"""
_RECALL = "SELECT encoded FROM shown WHERE customer_id = ? AND at >= ?"
_ADD_TO_COUNTER = """
INSERT INTO counters (name, value) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET value = value + excluded.value
"""
_INSERT = """
INSERT INTO interactions
    (customer_id, interaction_id, action_id, channel, outcome, at, decision_id)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (customer_id, interaction_id) DO UPDATE SET
    action_id = excluded.action_id, channel = excluded.channel, outcome = excluded.outcome,
    at = excluded.at, decision_id = excluded.decision_id
WHERE interactions.at < ?
"""
_TRIM = "DELETE FROM interactions WHERE customer_id = ? AND at < ?"
# rowid breaks ties in insertion order; the (customer_id, at) index already ends with rowid,
# so this ordering costs no sort.
_HISTORY = """
SELECT action_id, channel, outcome, at, interaction_id, decision_id
FROM interactions WHERE customer_id = ? AND at >= ? ORDER BY at, rowid
"""
_BULK_HISTORY = """
SELECT customer_id, action_id, channel, outcome, at, interaction_id, decision_id
FROM interactions WHERE customer_id IN ({}) AND at >= ? ORDER BY customer_id, at, rowid
"""
_BULK_CONSENT = "SELECT customer_id, channel, granted FROM consent WHERE customer_id IN ({})"
_UPDATE_CONSENT = """
INSERT INTO consent (customer_id, channel, granted, at) VALUES (?, ?, ?, ?)
ON CONFLICT (customer_id, channel) DO UPDATE SET granted = excluded.granted, at = excluded.at
WHERE excluded.at >= consent.at
"""
_CONSENT = "SELECT channel, granted FROM consent WHERE customer_id = ?"
# The subquery walks the interactions_at index (which ends with rowid) and stops at the limit.
_SWEEP = """
DELETE FROM interactions WHERE rowid IN (SELECT rowid FROM interactions WHERE at < ? LIMIT ?)
"""
_SWEEP_SHOWN = """
DELETE FROM shown WHERE (customer_id, decision_id) IN
    (SELECT customer_id, decision_id FROM shown WHERE at < ? LIMIT ?)
"""


class SqliteStore(RetentionSetting):
    """Interaction store in one SQLite file, shared safely by threads and processes."""

    def __init__(
        self,
        path: Path,
        *,
        retention_seconds: float,
        clock: Clock = time.time,
        synchronous: str = "normal",
    ) -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
        self._path = path
        self.retention_seconds = retention_seconds
        self._clock = clock
        self._synchronous = synchronous
        self._lock = threading.Lock()  # guards the pool
        # SQLite has one writer at a time anyway; queueing this process's writers on a lock
        # wakes the next one at once, where the busy handler would sleep and poll (up to
        # 100 ms a nap). Other processes still meet the busy handler.
        self._write_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(cls, url: str, *, retention_seconds: float, clock: Clock) -> SqliteStore:
        """``sqlite:///relative/path`` or ``sqlite:////absolute/path``, ``?synchronous=full``."""
        path, synchronous = parse_sqlite_url(url)
        return cls(path, retention_seconds=retention_seconds, clock=clock, synchronous=synchronous)

    def record(self, customer_id: str, interaction: Interaction) -> bool:
        item = prepared(customer_id, interaction)
        cutoff = retention_cutoff(self._clock, self._retention)
        row = (
            customer_id,
            item.interaction_id,
            item.action_id,
            item.channel,
            int(item.outcome),
            float(item.at),
            item.decision_id,
            cutoff,  # a known id whose interaction left the window is recorded anew
        )
        with self._write_lock, self._connection("record") as conn:
            conn.execute("BEGIN IMMEDIATE")
            inserted = conn.execute(_INSERT, row).rowcount == 1
            if inserted:
                conn.execute(_TRIM, (customer_id, cutoff))
            conn.execute("COMMIT")
        return inserted

    def history(self, customer_id: str, since: float) -> list[Interaction]:
        check_customer_id(customer_id)
        since = max(since, retention_cutoff(self._clock, self._retention))
        with self._connection("history") as conn:
            rows = conn.execute(_HISTORY, (customer_id, since)).fetchall()
        return [Interaction(*row) for row in rows]

    def update_consent(self, customer_id: str, changes: Mapping[str, bool], at: float) -> None:
        pairs = checked_consent(customer_id, changes, at)
        if not pairs:
            return
        rows = [(customer_id, channel, int(granted), float(at)) for channel, granted in pairs]
        with self._write_lock, self._connection("update_consent") as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_UPDATE_CONSENT, rows)
            conn.execute("COMMIT")

    def add_to_counters(self, increments: Mapping[str, float]) -> None:
        pairs = checked_increments(increments)
        if not pairs:
            return
        with self._write_lock, self._connection("add_to_counters") as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_ADD_TO_COUNTER, pairs)
            conn.execute("COMMIT")

    def take_budget(
        self, claims: Sequence[tuple[str, int]], expires_at: float
    ) -> tuple[bool, list[int]]:
        """One IMMEDIATE transaction: the write lock is held from the read of the counts to
        the write of the new ones, so processes sharing the file cannot both take the last."""
        checked = checked_claims(claims, expires_at)
        with self._write_lock, self._connection("take_budget") as conn:
            conn.execute("BEGIN IMMEDIATE")
            now = self._clock()
            counts = []
            for name in checked.names:
                row = conn.execute(_BUDGET, (name,)).fetchone()
                counts.append(int(row[0]) if row is not None and row[1] > now else 0)
            if not checked.fit(counts):
                conn.execute("ROLLBACK")
                return False, checked.per_claim(counts)
            after = [c + w for c, w in zip(counts, checked.wanted, strict=True)]
            conn.executemany(
                _SET_BUDGET, [(n, c, expires_at) for n, c in zip(checked.names, after, strict=True)]
            )
            conn.execute("COMMIT")
        return True, checked.per_claim(after)

    def budget_counts(self, prefix: str = "") -> dict[str, int]:
        upper = prefix + "\U0010ffff"
        with self._connection("budget_counts") as conn:
            rows = conn.execute(
                "SELECT name, count FROM budgets WHERE name >= ? AND name < ? AND expires_at > ?",
                (prefix, upper, self._clock()),
            ).fetchall()
        return {name: int(count) for name, count in rows}

    def counters(self, prefix: str = "") -> dict[str, float]:
        # A range on the primary key, not LIKE: a prefix may hold % or _.
        upper = prefix + "\U0010ffff"
        with self._connection("counters") as conn:
            rows = conn.execute(
                "SELECT name, value FROM counters WHERE name >= ? AND name < ?", (prefix, upper)
            ).fetchall()
        return {name: value for name, value in rows}

    def consent(self, customer_id: str) -> dict[str, bool]:
        check_customer_id(customer_id)
        with self._connection("consent") as conn:
            rows = conn.execute(_CONSENT, (customer_id,)).fetchall()
        return {channel: bool(granted) for channel, granted in rows}

    def snapshot(
        self, customer_id: str, since: float, with_consent: bool
    ) -> tuple[list[Interaction], dict[str, bool]]:
        check_customer_id(customer_id)
        since = max(since, retention_cutoff(self._clock, self._retention))
        with self._connection("snapshot") as conn:
            if not with_consent:
                rows = conn.execute(_HISTORY, (customer_id, since)).fetchall()
                return [Interaction(*row) for row in rows], {}
            conn.execute("BEGIN")  # one read snapshot for both selects
            rows = conn.execute(_HISTORY, (customer_id, since)).fetchall()
            consent = conn.execute(_CONSENT, (customer_id,)).fetchall()
            conn.execute("COMMIT")
        history = [Interaction(*row) for row in rows]
        return history, {channel: bool(granted) for channel, granted in consent}

    def snapshots(
        self, customer_ids: Sequence[str], since: float, with_consent: bool
    ) -> dict[str, tuple[list[Interaction], dict[str, bool]]]:
        """Two statements per BULK_READ customers, in one read transaction per batch."""
        ids = list(dict.fromkeys(customer_ids))
        for customer_id in ids:
            check_customer_id(customer_id)
        since = max(since, retention_cutoff(self._clock, self._retention))
        found: dict[str, tuple[list[Interaction], dict[str, bool]]] = {c: ([], {}) for c in ids}
        with self._connection("snapshots") as conn:
            for start in range(0, len(ids), BULK_READ):
                batch = ids[start : start + BULK_READ]
                marks = ",".join("?" * len(batch))
                conn.execute("BEGIN")
                rows = conn.execute(_BULK_HISTORY.format(marks), (*batch, since)).fetchall()
                consent = (
                    conn.execute(_BULK_CONSENT.format(marks), batch).fetchall()
                    if with_consent
                    else []
                )
                conn.execute("COMMIT")
                for customer_id, *fields in rows:
                    found[customer_id][0].append(Interaction(*fields))
                for customer_id, channel, granted in consent:
                    found[customer_id][1][channel] = bool(granted)
        return found

    def sweep(self, now: float | None = None, *, batch_size: int = SWEEP_BATCH) -> int:
        """See InteractionStore.sweep. Each batch of ``batch_size`` rows is one write
        transaction; the write lock is let go between batches."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        cutoff = sweep_cutoff(self._clock, self._retention, now)
        with self._connection("sweep") as conn:
            removed = self._sweep_batches(conn, _SWEEP, cutoff, batch_size)
            self._sweep_batches(conn, _SWEEP_SHOWN, cutoff, batch_size)  # not interactions
            with self._write_lock:  # budgets of ended windows: one row per budget and window
                conn.execute(_SWEEP_BUDGETS, (self._clock(),))
        return removed

    def _sweep_batches(
        self, conn: sqlite3.Connection, statement: str, cutoff: float, batch_size: int
    ) -> int:
        removed = 0
        while True:
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                deleted = conn.execute(statement, (cutoff, batch_size)).rowcount
                conn.execute("COMMIT")
            removed += deleted
            if deleted < batch_size:
                return removed
            time.sleep(0)  # let a thread queued on the write lock have it first

    def remember_shown(self, shown: Sequence[Shown]) -> None:
        rows = [(k.customer_id, k.decision_id, k.at, k.encode()) for k in shown]
        for row in rows:
            check_customer_id(row[0])
        customers = sorted({row[0] for row in rows})
        with self._write_lock, self._connection("remember_shown") as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_REMEMBER, rows)
            conn.executemany(_KEEP_LATEST, [(c, c, MAX_SHOWN) for c in customers])
            conn.execute("COMMIT")

    def recall_shown(
        self, customer_id: str, action_id: str, channel: str, decision_id: str = ""
    ) -> Shown | None:
        check_customer_id(customer_id)
        cutoff = retention_cutoff(self._clock, self._retention)
        with self._connection("recall_shown") as conn:
            rows = conn.execute(_RECALL, (customer_id, cutoff)).fetchall()
        kept = [Shown.decode(customer_id, encoded) for (encoded,) in rows]
        return latest_shown(kept, action_id, channel, decision_id)

    def ping(self) -> None:
        with self._connection("ping") as conn:
            conn.execute("SELECT 1 FROM interactions LIMIT 1").fetchall()

    def close(self) -> None:
        """Closes idle connections now and busy ones when their call returns."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _create(self) -> None:
        """Creates the directory, the file, WAL mode and the schema; all idempotent, so
        several processes may open a fresh file at once."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"sqlite open failed for {str(self._path)!r}: {exc}") from exc
        with self._connection("open") as conn:
            mode = enable_wal(conn)
            if mode.lower() != "wal":
                raise StoreError(
                    f"sqlite open failed for {str(self._path)!r}: WAL mode unavailable "
                    f"(journal_mode is {mode!r}; network filesystems do not support WAL)"
                )
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _connect(self) -> sqlite3.Connection:
        """A new connection in autocommit mode: transactions are explicit, see record()."""
        conn = sqlite3.connect(
            self._path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,  # pooled: used by one thread at a time, not always the same
        )
        try:
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _connection(self, operation: str) -> Iterator[sqlite3.Connection]:
        """Lends a pooled connection; turns sqlite errors into StoreError naming the
        operation, and rolls back a transaction the operation left open."""
        with self._lock:
            if self._closed:
                raise StoreError(f"sqlite {operation} on {str(self._path)!r}: store is closed")
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = self._connect()
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite {operation} failed on {str(self._path)!r}: {exc}") from exc
        finally:
            if conn is not None:
                self._give_back(conn)

    def _give_back(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.rollback()
            except sqlite3.Error:
                conn.close()
                return
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
        conn.close()


def enable_wal(conn: sqlite3.Connection) -> str:
    """Switches the file to WAL mode (persistent, so a no-op after the first time) and
    returns the journal mode. When processes open a fresh file at once, the switch may fail
    with SQLITE_BUSY without SQLite's busy handler ever waiting: retry until the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def parse_sqlite_url(url: str) -> tuple[Path, str]:
    """The database path and synchronous mode of a ``sqlite:`` URL; ValueError if malformed."""
    parts = urlsplit(url)
    if parts.netloc:
        raise ValueError(
            f"sqlite URL {url!r} has a host: use sqlite:///relative/path or sqlite:////abs/path"
        )
    path = unquote(parts.path)[1:]  # the third slash separates the (empty) host from the path
    if not path or path.endswith("/"):
        raise ValueError(f"sqlite URL {url!r} names no file: use sqlite:///path/to/nba.sqlite3")
    if path == ":memory:":
        raise ValueError("an in-memory sqlite store is not shared between threads: use memory://")
    options = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ValueError(f"sqlite URL {url!r}: unknown option(s) {sorted(unknown)}")
    synchronous = options.get("synchronous", ["normal"])[-1].lower()
    if synchronous not in SYNCHRONOUS_MODES:
        raise ValueError(f"sqlite URL {url!r}: synchronous must be one of {SYNCHRONOUS_MODES}")
    return Path(path), synchronous
