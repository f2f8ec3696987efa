"""The decision log as JSON Lines files: `decisions-<pid>-<n>.jsonl` in one directory.

Each writing process has its own files, so several workers writing at once never
interleave or tear a line and need no lock; `n` counts a process's files, rotated once
one passes `rotate_bytes`. A reader scans every file, newest first. A record is one line
that starts with its decision id (`{"decision_id":"…"`), so finding one reads lines but
parses only the match; a partial last line (a crash mid-write) is skipped.

Retention runs on open, after each rotation and at most once a minute on write: files
whose last write is older than the age limit go, then the oldest until the total fits.
The file a live process writes is never removed (its writes would go to an unlinked
file): another process's newest file goes only once that process has exited.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from nba.decisionlog import DecisionRecord, Retention

FILE_PATTERN = re.compile(r"^decisions-(\d+)-(\d+)\.jsonl$")
RETENTION_EVERY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class LogFile:
    path: Path
    pid: int
    number: int
    size: int
    modified: float


def log_files(directory: Path) -> list[LogFile]:
    """Every log file in the directory, oldest write first."""
    found = []
    for entry in os.scandir(directory):
        match = FILE_PATTERN.match(entry.name)
        if match is None:
            continue
        try:
            stat = entry.stat()
        except FileNotFoundError:  # removed by another process's retention meanwhile
            continue
        pid, number = int(match.group(1)), int(match.group(2))
        found.append(LogFile(Path(entry.path), pid, number, stat.st_size, stat.st_mtime))
    found.sort(key=lambda f: (f.modified, f.pid, f.number))
    return found


def encode(record: DecisionRecord) -> bytes:
    """One line, compact: orjson (floats in their shortest exact form, like json's repr)."""
    return orjson.dumps(record.as_dict(), option=orjson.OPT_APPEND_NEWLINE)


class JsonlLog:
    """A DecisionLog in JSON Lines files; write from one thread per process.

    Open it in the process that writes (serve_one does, after the fork): a log opened
    before a fork would have two processes appending to one file.
    """

    def __init__(self, directory: Path, rotate_bytes: int, retention: Retention) -> None:
        self.directory = directory
        self.rotate_bytes = rotate_bytes
        self.retention = retention
        self.pid = os.getpid()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0
        self._next_retention = 0.0
        self.apply_retention()

    # -- writing
    def write(self, record: DecisionRecord) -> None:
        line = encode(record)
        if self._file is None or (self._size + len(line) > self.rotate_bytes and self._size):
            self._rotate()
        assert self._file is not None
        self._file.write(line)
        self._size += len(line)
        if time.monotonic() >= self._next_retention:
            self.apply_retention()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _rotate(self) -> None:
        self.close()
        numbers = [f.number for f in log_files(self.directory) if f.pid == self.pid]
        self._path = self.directory / f"decisions-{self.pid}-{max(numbers, default=-1) + 1}.jsonl"
        self._file = open(self._path, "ab")  # noqa: SIM115 -- kept open across writes
        self._size = self._file.tell()
        self.apply_retention()

    # -- reading
    def find(self, decision_id: str) -> DecisionRecord | None:
        self.flush()
        prefix = b'{"decision_id":' + orjson.dumps(decision_id) + b","
        for log_file in reversed(log_files(self.directory)):
            found = _find_in(log_file.path, prefix)
            if found is not None:
                return found
        return None

    def records(self) -> Iterator[DecisionRecord]:
        self.flush()
        for log_file in log_files(self.directory):
            try:
                with open(log_file.path, "rb") as lines:
                    for line in lines:
                        try:
                            yield DecisionRecord.from_dict(orjson.loads(line))
                        except (orjson.JSONDecodeError, TypeError):  # torn mid-write
                            continue
            except FileNotFoundError:  # removed by retention meanwhile
                continue

    # -- retention
    def apply_retention(self) -> None:
        self._next_retention = time.monotonic() + RETENTION_EVERY_SECONDS
        files = log_files(self.directory)
        newest_of: dict[int, int] = {}
        for f in files:
            newest_of[f.pid] = max(newest_of.get(f.pid, -1), f.number)
        removable = [f for f in files if not self._in_use(f, newest_of)]
        cutoff = time.time() - self.retention.max_age_seconds
        total = sum(f.size for f in files)
        for f in removable:  # oldest first
            if f.modified >= cutoff and total <= self.retention.max_total_bytes:
                break
            _remove(f.path)
            total -= f.size

    def _in_use(self, log_file: LogFile, newest_of: dict[int, int]) -> bool:
        if log_file.pid == os.getpid():  # this process writes only through this log
            return log_file.path == self._path
        return newest_of[log_file.pid] == log_file.number and _alive(log_file.pid)


def _find_in(path: Path, prefix: bytes) -> DecisionRecord | None:
    try:
        with open(path, "rb") as lines:
            for line in lines:
                if line.startswith(prefix):
                    try:
                        return DecisionRecord.from_dict(orjson.loads(line))
                    except (orjson.JSONDecodeError, TypeError):  # torn by a crash mid-write
                        continue
    except FileNotFoundError:  # removed by retention while scanning
        return None
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):  # another process's retention got there first
        path.unlink()
