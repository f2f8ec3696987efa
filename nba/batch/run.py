"""Driver of a batch run: plan the partitions, start (or join) a Dask cluster, hand the
rule set to every worker, run a task per partition not yet done, stop on too many bad
records. What a user needs to run it on a real cluster: README, "Batch"."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nba.batch import BatchError
from nba.batch.allocate import Allocation, allocate, apply, write_back
from nba.batch.decide import BatchSettings, RuleSetPlugin, decide_partition
from nba.batch.sink import (
    ALLOCATED,
    FORMATS,
    SCORED,
    done,
    open_output,
    part_path,
    read_part,
    write_bad,
    write_part,
    write_rows,
)
from nba.batch.source import JSONL_BYTES_PER_PARTITION, Partition, identity, plan
from nba.pipeline.budgets import rooms as budget_rooms
from nba.ruleset.loader import load_documents, rule_files
from nba.ruleset.ruleset import RuleSet

DEFAULT_MAX_BAD = 1000  # Pega's default: a run stops after this many bad records
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class PartDone:
    """What a task sends back: a count and the bad records, never the decisions."""

    index: int
    decided: int
    bad: list[tuple[str, str]]
    seconds: float
    worker: str


@dataclass(slots=True)
class BatchRun:
    out: Path
    partitions: int
    resumed: int  # partitions already done by an earlier run, skipped
    decided: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    task_seconds: float = 0.0  # summed over tasks: the work, whatever the parallelism
    workers: set[str] = field(default_factory=set)
    scoring_seconds: float = 0.0  # deciding every partition
    allocation: Allocation | None = None  # the global budget pass, when budgets exist


def decide_and_write(partition: Partition, out: str, output_format: str) -> PartDone:
    """One task: a partition decided on this worker and written; small result back."""
    from distributed import get_worker

    result = decide_partition(partition)
    write_part(Path(out), partition.index, result.decided, output_format)
    return PartDone(
        partition.index, len(result.decided), result.bad, result.seconds, get_worker().address
    )


def run_batch(
    customers: Path,
    rules: Path,
    out: Path,
    *,
    output_format: str = "parquet",
    scheduler: str | None = None,
    workers: int | None = None,
    store_url: str | None = None,
    as_of: float | None = None,
    max_bad: int = DEFAULT_MAX_BAD,
    restart: bool = False,
    partition_bytes: int = JSONL_BYTES_PER_PARTITION,
    progress: Progress | None = None,
) -> BatchRun:
    """Decide for every customer in `customers`; BatchError when it cannot or had to stop."""
    if output_format not in FORMATS:
        raise BatchError(f"--format {output_format}: expected one of {', '.join(FORMATS)}")
    files = _rule_texts(rules)
    ruleset = load_documents(files)  # RuleSetError, located, before any cluster starts
    partitions = plan(customers, partition_bytes)
    manifest = identity(customers, partitions) | {
        "rules_version": ruleset.version,
        "format": output_format,
    }
    open_output(out, manifest, restart)
    # With budgets each partition is first scored (the checkpoint) and written in its final
    # form only after the global allocation (allocate.py).
    scored, scored_format = (out / SCORED, "parquet") if ruleset.budgets else (out, output_format)
    scored.mkdir(exist_ok=True)
    finished = done(scored, [p.index for p in partitions], scored_format)
    todo = [p for p in partitions if p.index not in finished]
    run = BatchRun(out, len(partitions), len(finished))
    started = time.monotonic()
    if todo:
        settings = BatchSettings(as_of, store_url)
        with _client(scheduler, workers) as client:
            client.register_plugin(RuleSetPlugin(files, settings))
            _run_tasks(client, todo, scored, scored_format, run, max_bad, progress)
    run.scoring_seconds = time.monotonic() - started
    # A rerun of a finished budgeted run does not allocate again: its grants are counted.
    if ruleset.budgets and len(run.bad) <= max_bad and not (out / ALLOCATED).exists():
        run.allocation = _allocate(ruleset, partitions, out, output_format, store_url, as_of)
    run.seconds = time.monotonic() - started
    if run.bad:
        _report_bad(out, run.bad, max_bad)
    return run


def _report_bad(out: Path, bad: list[tuple[str, str]], max_bad: int) -> None:
    """Every bad record in the output's file; past --max-bad, BatchError naming the first."""
    path = write_bad(out, bad)
    if len(bad) > max_bad:
        where, what = bad[0]
        raise BatchError(
            f"stopped after {len(bad)} bad records, more than --max-bad {max_bad};"
            f" the first: {where}: {what}; all of them in {path}; the partitions"
            " already written are kept, and a rerun resumes after the input is fixed"
        )


def _allocate(
    ruleset: RuleSet,
    partitions: list[Partition],
    out: Path,
    output_format: str,
    store_url: str | None,
    as_of: float | None,
) -> Allocation:
    """The global budget pass over every scored partition, then the final files."""
    from nba.store import open_store

    now = as_of if as_of is not None else time.time()
    store = open_store(store_url, retention_seconds=86400) if store_url else None
    try:
        rooms = budget_rooms(ruleset.budgets, ruleset.meta.time_zone, now, store)
        parts = [
            (p.index, read_part(part_path(out / SCORED, p.index, "parquet"))) for p in partitions
        ]
        allocation = allocate(ruleset, parts, rooms)
        for index, rows in parts:
            write_rows(out, index, apply(rows, index, allocation), output_format)
        if store is not None:
            write_back(store, rooms, allocation.granted)
        # After the counters: a crash in between counts the grants twice on a rerun (fewer
        # offers), never not at all (more offers than the budget).
        (out / ALLOCATED).write_text(json.dumps(allocation.granted))
    finally:
        if store is not None:
            store.close()
    return allocation


def _run_tasks(
    client: Any,
    todo: list[Partition],
    out: Path,
    output_format: str,
    run: BatchRun,
    max_bad: int,
    progress: Progress | None,
) -> None:
    from distributed import as_completed

    futures = client.map(
        decide_and_write, todo, out=str(out), output_format=output_format, pure=False, retries=2
    )
    finished = run.resumed
    for future in as_completed(futures):
        part: PartDone = future.result()
        run.decided += part.decided
        run.bad += part.bad
        run.task_seconds += part.seconds
        run.workers.add(part.worker)
        finished += 1
        if progress is not None:
            progress(finished, run.partitions)
        if len(run.bad) > max_bad:
            client.cancel(futures)
            return


@contextmanager
def _client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A client of the cluster at `scheduler`, or of a local one: a process per core."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    logging.getLogger("distributed").setLevel(logging.WARNING)
    count = workers or os.cpu_count() or 1
    with (
        LocalCluster(
            n_workers=count, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _rule_texts(rules: Path) -> list[tuple[str, str]]:
    """The rule files as (name, text): what every worker compiles, shipped once."""
    if not rules.is_dir():
        raise BatchError(f"--rules {rules}: no such directory")
    return [(str(p.relative_to(rules)), p.read_text(encoding="utf-8")) for p in rule_files(rules)]
