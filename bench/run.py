"""Run the benchmarks and print one summary table, ready to paste into a README.

    python -m bench                      # everything (2-3 minutes)
    python -m bench --quick              # smoke run: fewer iterations, under a minute
    python -m bench inprocess engines    # some parts only
    python -m bench grpc --workers 2     # needs `nba serve --workers`; else 1 process

Parts: generate (the generated sets load, and how much of them fires), inprocess
(latency and scaling curves), engines (durable_rules vs the reference evaluator, with a
check that they agree), stores (Decide with SQLite and Redis against no store), grpc
(end to end against an echo server). Not in the default run, only when named:
instructions (CPU instructions per decision under callgrind, a few minutes).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from bench import engines, generate, grpc_e2e, inprocess, instructions, stores
from bench.common import Target, command_line, machine, show, show_targets

PARTS: dict[str, Callable[[argparse.Namespace], list[Target]]] = {
    "generate": lambda a: generate.run(a.quick),
    "inprocess": lambda a: inprocess.run(a.quick),
    "engines": lambda a: engines.run(a.quick),
    "stores": lambda a: stores.run(a.quick),
    "grpc": lambda a: grpc_e2e.run(a.quick, a.workers, a.clients),
    "instructions": lambda a: instructions.run(
        instructions.QUICK_CALLS if a.quick else instructions.DEFAULT_CALLS
    ),
}
OPTIONAL = ("instructions",)  # minutes under valgrind: run only when named


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "parts", nargs="*", help=f"any of {', '.join(PARTS)} (default: all but instructions)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("--workers", type=int, default=1, help="grpc: server processes")
    parser.add_argument("--clients", type=int, default=2, help="grpc: load generator processes")
    args = parser.parse_args(argv)
    parts = args.parts or [p for p in PARTS if p not in OPTIONAL]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}; expected any of {', '.join(PARTS)}")
    show(f"nba benchmarks: {', '.join(parts)}{' (quick)' if args.quick else ''}")
    show(f"machine: {machine()}")
    started = time.monotonic()
    targets: list[Target] = []
    for name in parts:
        show(f"\n## {name}")
        targets += PARTS[name](args)
    summary(targets, time.monotonic() - started)


def summary(targets: list[Target], seconds: float) -> None:
    show_targets(targets)
    show(f"\nmachine: {machine()}")
    show(f"command: {command_line()}")
    show(f"took {seconds:.0f} s; absolute times on a shared machine are noise, ratios are not")


if __name__ == "__main__":
    main()
