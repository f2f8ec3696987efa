"""Shared pieces of the benchmarks: timing, statistics, tables, machine description.

Every number printed is a median, p99 or mean of per-call wall times taken with
`time.perf_counter_ns`, gc left on (as in production). Absolute times on a shared
machine are noise; the ratios to a baseline measured in the same run are the result.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RULES_DIR = REPO / "rules"


@dataclass(frozen=True, slots=True)
class Stats:
    """Per-call latency summary, in microseconds."""

    n: int
    median: float
    p99: float
    mean: float

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Stats:
        if not samples_ns:
            raise ValueError("no samples")
        ordered = sorted(samples_ns)
        n = len(ordered)
        mid = n // 2
        median = ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        p99 = ordered[min(n - 1, max(0, -(-99 * n // 100) - 1))]  # nearest rank
        return cls(n, median / 1000, p99 / 1000, sum(ordered) / n / 1000)


def time_calls(
    calls: Sequence[Callable[[], object]], iterations: int, warmup: int | None = None
) -> Stats:
    """Run the calls round-robin `iterations` times in all, after a warm-up; one sample each.

    Round-robin over different requests so that no single request's caches stay hot and
    the median is over the mix, as a server would see it.
    """
    count = len(calls)
    warm = warmup if warmup is not None else max(count, iterations // 10)
    for i in range(warm):
        calls[i % count]()
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    for i in range(iterations):
        call = calls[i % count]
        start = clock()
        call()
        append(clock() - start)
    return Stats.of(samples)


def us(value: float) -> str:
    """Microseconds, with a precision that suits the magnitude."""
    if value >= 1_000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> str:
    """A Markdown table (pastable in a README), columns padded for the terminal too."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    out = [f"\n### {title}\n"] if title else []
    out.append(line(cells[0]))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out.extend(line(r) for r in cells[1:])
    return "\n".join(out)


def show(text: str) -> None:
    print(text, flush=True)


def machine() -> str:
    """One line naming what the numbers were measured on."""
    cpu = _cpu_model()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"
        f" ({platform.python_implementation()}), {platform.platform()}"
    )


def _cpu_model() -> str:
    try:
        for text_line in Path("/proc/cpuinfo").read_text().splitlines():
            if text_line.startswith("model name"):
                return text_line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def command_line() -> str:
    """The command as typed: `python -m bench ...` rather than the path of __main__.py."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is not None and spec.name:
        module = spec.name.removesuffix(".__main__")
        return " ".join(["python", "-m", module, *sys.argv[1:]])
    return " ".join(["python", *sys.argv])


@dataclass(frozen=True, slots=True)
class Target:
    """One line of the summary: a measured value against a target (None: no target)."""

    what: str
    measured: str
    target: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        if self.met is None:
            return ""
        return "met" if self.met else "MISSED"


def show_targets(targets: Sequence[Target]) -> None:
    """The summary table: each measure against its target."""
    rows = [[t.what, t.measured, t.target, t.verdict] for t in targets]
    show(table(["measure", "measured", "target", "verdict"], rows, "Summary"))
