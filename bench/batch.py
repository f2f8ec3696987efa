"""Batch throughput on Dask: decisions per second with 1 and 2 workers, the scaling ratio,
peak memory per worker, the time 10 million customers would take per core; and what the
global budget allocation gains over first-come, and what its pass costs.

    python -m bench.batch [--customers 20000] [--rules rules]

The base is `nba gen-customers` output (JSON lines, 4 MB partitions), decided on a local
cluster of N single-threaded worker processes, written as Parquet. Each run starts a fresh
cluster; the seconds are the run's own (cluster start-up excluded), and each worker's peak
resident memory is read from the worker itself (getrusage) after the run.

Budgets: the same base with a budget on the offer most often ranked first
(sav_easy_access) of a tenth of the customers. The scored partitions are allocated twice,
in priority order (nba batch's) and in arrival order (what online, first-come claims
would give), and the expected value shown (summed scores of every recommendation made) is
compared; the pass's seconds are set against the scoring's.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import REPO, command_line, machine, show, table
from nba.authoring.customers import generate_customers, write_jsonl
from nba.batch.run import run_batch
from nba.ruleset.loader import load_ruleset

TEN_MILLION = 10_000_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def one_run(base: Path, rules: Path, workers: int, scratch: Path) -> tuple[float, int, float]:
    """(seconds, decided, the largest worker's peak MB) on a fresh local cluster."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        started = time.monotonic()
        run = run_batch(
            base,
            rules,
            scratch / f"out-{workers}",
            scheduler=cluster.scheduler_address,
            restart=True,
        )
        seconds = time.monotonic() - started
        peaks = client.run(peak_rss_mb)
    return seconds, run.decided, max(peaks.values())


BUDGET = """
budgets:
  - id: easy_access
    limit: {limit}
    per: day
    actions: [sav_easy_access]
"""


def budget_run(base: Path, rules: Path, customers: int, scratch: Path) -> list[list[object]]:
    """Global against first-come allocation of one budget, on one scored base."""
    import shutil

    from distributed import LocalCluster

    from nba.batch.allocate import allocate, apply
    from nba.batch.sink import SCORED, part_path, read_part
    from nba.pipeline.budgets import rooms as budget_rooms

    budgeted = scratch / "budget-rules"
    shutil.copytree(rules, budgeted, ignore=shutil.ignore_patterns("tests", "examples"))
    (budgeted / "budgets.yaml").write_text(BUDGET.format(limit=customers // 10))
    out = scratch / "out-budget"
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        run = run_batch(base, budgeted, out, scheduler=cluster.scheduler_address, restart=True)
    ruleset = load_ruleset(budgeted)
    parts = [(i, read_part(part_path(out / SCORED, i, "parquet"))) for i in range(run.partitions)]
    rooms = budget_rooms(ruleset.budgets, ruleset.meta.time_zone, time.time(), None)
    rows: list[list[object]] = []
    values = {}
    for order in ("priority", "arrival"):
        found = allocate(ruleset, parts, rooms, order)
        granted = [  # the budgeted offer in every customer's final list
            r["score"]
            for part, items in parts
            for row in apply(items, part, found)
            for r in row["recommendations"]
            if r["action_id"] == "sav_easy_access"
        ]
        values[order] = (found.value, sum(granted))
        rows.append(
            [
                order,
                f"{found.value:,.0f}",
                f"{sum(granted):,.0f}",
                len(granted),
                f"{found.seconds:.2f}",
            ]
        )
    (total, offer), (total_fc, offer_fc) = values["priority"], values["arrival"]
    rows.append(["gain", f"{total / total_fc - 1:+.1%}", f"{offer / offer_fc - 1:+.1%}", "", ""])
    rows.append(["scoring pass (2 workers)", "", "", "", f"{run.scoring_seconds:.2f}"])
    whole = run.seconds - run.scoring_seconds
    rows.append(["allocation pass, reading and writing every part", "", "", "", f"{whole:.2f}"])
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--rules", type=Path, default=REPO / "rules")
    options = parser.parse_args(argv)
    ruleset = load_ruleset(options.rules)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "base.jsonl"
        with base.open("w") as f:
            write_jsonl(generate_customers(ruleset, options.customers, 7), f)
        results = {w: one_run(base, options.rules, w, Path(scratch)) for w in (1, 2)}
        budget_rows = budget_run(base, options.rules, options.customers, Path(scratch))
    rows = []
    for workers, (seconds, decided, peak) in results.items():
        rate = decided / seconds
        rows.append(
            [
                workers,
                f"{decided:,}",
                f"{seconds:.1f}",
                f"{rate:,.0f}",
                f"{rate / workers:,.0f}",
                f"{peak:.0f}",
                f"{TEN_MILLION / (rate / workers) / 3600:.1f}",
            ]
        )
    show(
        table(
            [
                "workers",
                "decided",
                "seconds",
                "decisions/s",
                "per worker",
                "peak MB per worker",
                "10M per core, hours",
            ],
            rows,
            f"nba batch, {options.customers:,} generated customers, bundled rules",
        )
    )
    one, two = (results[w][1] / results[w][0] for w in (1, 2))
    show(f"scaling 1 -> 2 workers: {two / one:.2f}x (on {cores} cores)")
    show(
        table(
            [
                "allocation",
                "expected value shown",
                "of it, the budgeted offer",
                "offers granted",
                "seconds",
            ],
            budget_rows,
            f"one budget of {options.customers // 10:,} on sav_easy_access",
        )
    )
    show(f"\nmachine: {machine()}")
    show(f"command: {command_line()}")


if __name__ == "__main__":
    main()
