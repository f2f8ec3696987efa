"""What the decision log adds per decision: log off against on, in the same run.

    python -m bench.decision_log [--decisions 400] [--rounds 5] [--history 20]

Decisions go through `DecisionService.decide` (the hook `nba serve --decision-log`
uses; no transport), over the bundled examples with `--history` synthetic interactions
each, explain off. Each configuration runs `--rounds` times, interleaved with the
others so drift on a shared machine hits them alike; every round opens a fresh log in
a temporary directory and closes it, and its time runs until the close returns, so the
writer thread's work (record building, JSON, the file) is counted, not just the
enqueue. Printed per configuration: the decision path's median and p99 (per call, the
writer running beside it), the wall and CPU time per decision until everything is
written, and each as a ratio to the log off.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.common import RULES_DIR, Stats, command_line, machine, ratio, show, table, us
from bench.workload import example_requests
from nba.decisionlog import LogSettings
from nba.decisionlog.writer import DecisionRecorder
from nba.server.reload import RuleSetHolder
from nba.server.service import DecisionService
from nba.v1 import decisioning_pb2 as pb


@dataclass
class Config:
    name: str
    settings: Callable[[Path], LogSettings | None]
    samples: list[int] = field(default_factory=list)  # ns per decide call
    wall: float = 0.0  # seconds, until the log closed
    cpu: float = 0.0  # process CPU seconds (every thread), same span
    decisions: int = 0


CONFIGS = [
    Config("log off", lambda _d: None),
    Config("jsonl", lambda d: LogSettings(d)),
    Config("sqlite", lambda d: LogSettings(d, backend="sqlite")),
    Config("jsonl, --decision-log-sample 0.1", lambda d: LogSettings(d, sample=0.1)),
    Config(
        "jsonl, 2 fields dropped + hashed ids",
        lambda d: LogSettings(
            d,
            drop=("profile.monthly_income", "profile.credit_score"),
            hash_key=b"bench-key-of-sixteen-bytes",
        ),
    ),
]


def run_round(
    config: Config, holder: RuleSetHolder, requests: list[pb.DecideRequest], count: int
) -> None:
    with tempfile.TemporaryDirectory(prefix="nba-bench-log-") as directory:
        settings = config.settings(Path(directory))
        recorder = DecisionRecorder(settings) if settings is not None else None
        service = DecisionService(holder, decision_log=recorder)
        for request in requests:  # warm: first-call caches, the log file opened
            service.decide(request)
        clock = time.perf_counter_ns
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        for i in range(count):
            request = requests[i % len(requests)]
            start = clock()
            service.decide(request)
            config.samples.append(clock() - start)
        if recorder is not None:
            recorder.close()
        config.wall += time.perf_counter() - wall_start
        config.cpu += time.process_time() - cpu_start
        config.decisions += count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=400, help="per configuration and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--history", type=int, default=20, help="interactions per request")
    args = parser.parse_args()
    holder = RuleSetHolder(RULES_DIR, "durable", None)
    holder.load()
    requests = example_requests(holder.current.ruleset, history=args.history)
    configs = [replace(c, samples=[]) for c in CONFIGS]
    for _ in range(args.rounds):
        for config in configs:
            run_round(config, holder, requests, args.decisions)
    show(report(configs))
    show(f"\n{machine()}\n{command_line()}")


def report(configs: list[Config]) -> str:
    base = configs[0]
    base_stats = Stats.of(base.samples)
    base_wall, base_cpu = base.wall / base.decisions, base.cpu / base.decisions
    rows = []
    for config in configs:
        stats = Stats.of(config.samples)
        wall, cpu = config.wall / config.decisions, config.cpu / config.decisions
        rows.append(
            [
                config.name,
                us(stats.median),
                us(stats.p99),
                ratio(stats.median / base_stats.median),
                us(wall * 1e6),
                ratio(wall / base_wall),
                us(cpu * 1e6),
                ratio(cpu / base_cpu),
            ]
        )
    headers = [
        "configuration",
        "p50 µs",
        "p99 µs",
        "p50 vs off",
        "wall µs/decision (all written)",
        "vs off",
        "CPU µs/decision",
        "vs off",
    ]
    title = f"decision log cost, {base.decisions} decisions per configuration"
    return table(headers, rows, title)


if __name__ == "__main__":
    main()
