"""The decision log: one record per decision (or a sample), enough to replay it exactly.

Every record carries what the decision was made from and what it came to: the request
as decided (the validated profile after masking, the interactions after the store's
history was merged in, the consent used, `as_of`), the rule-set version, and every
recommendation with its score components, the ranking and the exclusions. Nothing else
is needed to decide again: `nba replay` loads the archived rule set (archive.py) and
re-decides the logged request with no store (replay.py).

Like the interaction store, the log is a small protocol with one module per backend, and
one set of contract tests runs over every backend:

* ``jsonl`` -- JSON Lines files in a directory, one file per writing process (so several
  workers never interleave a line), rotated by size, with retention by age and total size.
* ``sqlite`` -- one SQLite file in the directory (WAL, safe for several processes), with
  the same retention.

On the serving side (writer.py) decisions reach the log through a bounded queue and one
writer thread per process: the decision path only enqueues; a full queue drops and counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "BACKENDS",
    "DecisionLog",
    "DecisionRecord",
    "LogSettings",
    "Retention",
    "open_decision_log",
]

BACKENDS = ("jsonl", "sqlite")
DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_AGE_SECONDS = 30 * 86400.0
DEFAULT_MAX_TOTAL_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One logged decision, as plain JSON values (the field order is the file's).

    `request` is the request as decided (see DecisionRequest): `profile`, `lifecycle`,
    `channel`, `placement`, `intent`, `interactions` (each a list: action id, channel,
    outcome number, at, interaction id, decision id), `consent`, `max_results`, `explain`, `as_of`,
    `preferred_channels`, `time_zone`, `degraded`. `recommendations` are the ranking
    returned, best first, each `rank action channel fallback` and, unless a fallback,
    `score propensity weight value lever`. `excluded`: `action channel stage rule reason`.
    `masked`: the profile paths the log dropped or masked ("dropped" / "masked"); a
    decision with any cannot be replayed exactly. `path`: "decided", or "deadline" for a
    decision that answered the fallback at once for want of time. `model` and `seed` are
    what a learned scorer scored with ([positives, failures] per learning action, on the
    touchpoint's channel) and its exploration seed (the decision id): replay scores again
    from them, exactly.
    """

    decision_id: str
    time: float  # unix seconds when the decision was made
    ruleset_version: str
    customer: str  # the customer id, or "hmac-sha256:<hex>" of it with a hash key
    touchpoint: dict[str, str]
    segments: list[str]
    recommendations: list[dict[str, Any]]
    excluded: list[dict[str, Any]]
    request: dict[str, Any]
    engine: str = "durable"
    path: str = "decided"
    masked: dict[str, str] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    seed: str = ""
    arms: dict[str, str] = field(default_factory=dict)  # experiment id -> arm

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecisionRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})  # newer fields: ignored


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of the log is kept: records older than `max_age_seconds` go, and the
    oldest go first once the log passes `max_total_bytes` (math.inf: no limit)."""

    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS
    max_total_bytes: float = DEFAULT_MAX_TOTAL_BYTES


UNLIMITED = Retention(math.inf, math.inf)


class DecisionLog(Protocol):
    """Where decision records go. `write` is called from one thread per process; any
    number of processes may write the same log at once, and `find` sees all of them."""

    def write(self, record: DecisionRecord) -> None:
        """Append one record (buffered: `flush` or `close` makes it durable to readers)."""
        ...

    def flush(self) -> None:
        """Make every record written so far visible to `find` in any process."""
        ...

    def find(self, decision_id: str) -> DecisionRecord | None:
        """The record of that decision, whichever process wrote it; None when not logged
        (not sampled, dropped, or removed by retention)."""
        ...

    def records(self) -> Iterator[DecisionRecord]:
        """Every record of every process, oldest first (by file or time): what `nba
        evaluate` reads. A line torn by a crash mid-write is skipped."""
        ...

    def close(self) -> None:
        """Flush and release the files; the log must not be used afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class LogSettings:
    """`nba serve --decision-log DIR` and its options, as the serving process needs them."""

    directory: Path
    backend: str = "jsonl"
    sample: float = 1.0  # the share of decisions logged, chosen by a hash of the decision id
    drop: tuple[str, ...] = ()  # profile paths left out ("profile.income")
    mask: tuple[str, ...] = ()  # profile paths whose value is replaced by MASK
    hash_key: bytes | None = None  # HMAC-SHA256 key for customer ids; None: ids as they are
    rotate_bytes: int = DEFAULT_ROTATE_BYTES
    retention: Retention = Retention()
    queue_size: int = 10_000  # decisions waiting for the writer thread before drops start


def open_decision_log(
    directory: str | Path,
    backend: str = "jsonl",
    rotate_bytes: int = DEFAULT_ROTATE_BYTES,
    retention: Retention = UNLIMITED,
) -> DecisionLog:
    """The log kept in `directory` (created if missing) by `backend` (one of BACKENDS).

    Reading (`nba replay`) needs no retention: UNLIMITED never removes anything.
    """
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    if backend == "jsonl":
        from nba.decisionlog.jsonl import JsonlLog

        return JsonlLog(path, rotate_bytes, retention)
    if backend == "sqlite":
        from nba.decisionlog.sqlite import SqliteLog

        return SqliteLog(path, retention)
    raise ValueError(f"unknown decision log backend {backend!r}; expected one of {BACKENDS}")


def detect_backend(directory: str | Path) -> str:
    """The backend whose files are in `directory` (for readers): sqlite if its file is there."""
    from nba.decisionlog.sqlite import FILE_NAME

    return "sqlite" if (Path(directory) / FILE_NAME).exists() else "jsonl"
