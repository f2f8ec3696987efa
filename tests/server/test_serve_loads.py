"""`nba serve --workers 2` parses the rule files once; each worker still reloads on its own.

Counted, not patched: every parse by the server logs "loaded rule set" from the process
that made it, and `nba serve` logs everything to stderr with the pid.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, RULES
from tests.helpers import stderr_lines

LOADED = re.compile(r"INFO nba\.server\.reload\[(\d+)\]: loaded rule set ([0-9a-f]{12}) from ")


def lines_until(lines: Iterator[str], last: str, count: int = 1, timeout: float = 60) -> list[str]:
    """The lines read up to and including the `count`-th one containing `last`."""
    deadline = time.monotonic() + timeout
    read: list[str] = []
    while sum(last in line for line in read) < count:
        assert time.monotonic() < deadline, f"no {last!r} in:\n{''.join(read)}"
        read.append(next(lines))
    return read


@pytest.mark.slow
def test_serve_parses_once_for_all_workers_and_each_worker_reloads(tmp_path: Path) -> None:
    rules = shutil.copytree(RULES, tmp_path / "rules")
    args = ["--rules", str(rules), "--port", "0", "--http-port", "0", "--workers", "2"]
    args.append("--no-watch")
    process = subprocess.Popen(
        [sys.executable, "-m", "nba", "serve", *args, "--store", f"sqlite:///{tmp_path}/s.db"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = stderr_lines(process)
    try:
        startup = lines_until(lines, "ready on")
        loads = [m.groups() for line in startup if (m := LOADED.search(line))]
        ready_version = re.search(r" version ([0-9a-f]{12}) ", startup[-1])
        assert ready_version is not None, startup[-1]
        assert loads == [(str(process.pid), ready_version.group(1))]  # once, in the parent

        cards = rules / "actions/cards.yaml"
        cards.write_text(cards.read_text().replace("value: 120", "value: 121", 1))
        process.send_signal(signal.SIGHUP)  # forwarded to each worker
        reloaded = lines_until(lines, " live (", count=2)
        reloads = {m.group(1) for line in reloaded if (m := LOADED.search(line))}
        assert len(reloads) == 2 and str(process.pid) not in reloads  # one per worker
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0
