"""Small rule sets written inline, for tests that need exact control over the rules."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

BASE = """
lifecycle_stages: [prospect, active, at_risk]
profile:
  age: {type: int, min: 0, max: 130, required: true}
  income: {type: number, min: 0}
  vip: bool
  region: {type: enum, values: [north, south]}
  products: {type: set, values: [checking, card, loan]}
  nickname: string
channels:
  - id: web
    direction: inbound
  - id: call_center
    direction: both
  - id: email
    direction: outbound
    marketing_consent: opt_in
  - id: postal_mail
    direction: outbound
"""


def write_rules(directory: Path, files: dict[str, str]) -> Path:
    """Write rule files (dedented) into `directory`; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return directory


def action(
    action_id: str,
    *,
    purpose: str = "marketing",
    group: str = "cards",
    value: float = 10,
    propensity: float = 0.1,
    channels: tuple[str, ...] = ("web", "email", "call_center", "postal_mail"),
    extra: str = "",
) -> str:
    """The YAML of one action, with a treatment on each channel."""
    treatments = "\n".join(
        f"      {c}: {{headline: {action_id} on {c}, script: say {action_id}}}" for c in channels
    )
    body = textwrap.indent(textwrap.dedent(extra).strip("\n"), "    ") if extra else ""
    return (
        f"  - id: {action_id}\n    purpose: {purpose}\n    group: {group}\n"
        f"    value: {value}\n    propensity: {propensity}\n    treatments:\n{treatments}\n"
        + (body + "\n" if body else "")
    )


@dataclass
class Served:
    """A running `nba serve` process: its port, ready line and the log lines after it."""

    process: subprocess.Popen[str]
    port: int
    ready: str
    lines: Iterator[str]


def stderr_lines(process: subprocess.Popen[str], timeout: float = 60) -> Iterator[str]:
    """The process's stderr line by line; AssertionError when none comes within `timeout`.

    A thread reads, so a server that hangs silently fails the test instead of hanging it.
    """
    assert process.stderr is not None
    lines: queue.Queue[str] = queue.Queue()

    def read(stream: IO[str]) -> None:
        with stream:
            for line in stream:
                lines.put(line)
        lines.put("")  # end of the stream

    threading.Thread(target=read, args=(process.stderr,), daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nba serve wrote nothing for {timeout} s") from None
        if not line:
            return
        yield line


@contextmanager
def served(*args: str, timeout: float = 60) -> Iterator[Served]:
    """`python -m nba serve ARGS` until the block ends; then SIGTERM, and exit status 0.

    The HTTP face is off unless ARGS set --http-port: its default port (8080) is fixed,
    and tests run several servers at once.
    """
    if "--http-port" not in args:
        args = (*args, "--http-port", "0")
    process = subprocess.Popen(
        [sys.executable, "-m", "nba", "serve", *args],
        cwd=Path(__file__).resolve().parents[1],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = stderr_lines(process, timeout)
    try:
        deadline = time.monotonic() + timeout
        ready = ""
        while "ready on" not in ready:
            assert time.monotonic() < deadline, "nba serve did not get ready"
            ready = next(lines)
        port = re.search(r"ready on [^:]+:(\d+)", ready)
        assert port is not None, ready
        yield Served(process, int(port.group(1)), ready, lines)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)  # the reader thread closes stderr at its end
    assert code == 0, f"nba serve exited with {code}"
