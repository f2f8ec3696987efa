"""The output of a batch run: a directory with one file per partition (a Parquet dataset
pyarrow, Dask, Spark and DuckDB read as one table, or JSON lines), and the manifest.

A partition's file is written under a temporary name and renamed when complete, so a
file that exists is whole: that is the checkpoint. A rerun with the same manifest skips
the partitions that have one; any other manifest is refused rather than mixed with.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nba.batch import BatchError
from nba.batch.decide import Decided

MANIFEST = "_nba_batch.json"
SCORED = "_scored"  # with budgets: each partition scored, before the global allocation
ALLOCATED = "_allocated.json"  # with budgets: the allocation is written and counted
BAD_RECORDS = "_bad_records.jsonl"
FORMATS = ("parquet", "jsonl")


def schema() -> Any:
    """The Parquet schema: a row per customer, its recommendations as a list of structs."""
    import pyarrow as pa

    recommendation = pa.struct(
        [
            ("rank", pa.int32()),
            ("action_id", pa.string()),
            ("channel", pa.string()),
            ("treatment_id", pa.string()),
            ("purpose", pa.string()),
            ("score", pa.float64()),
            ("fallback", pa.bool_()),
            ("reasons", pa.list_(pa.string())),
        ]
    )
    return pa.schema(
        [
            ("customer_id", pa.string()),
            ("decision_id", pa.string()),
            ("ruleset_version", pa.string()),
            ("degraded", pa.bool_()),
            ("arms", pa.map_(pa.string(), pa.string())),
            ("recommendations", pa.list_(recommendation)),
            ("max_results", pa.int32()),
            ("budget_excluded", pa.list_(pa.string())),
            ("fallback_option", pa.list_(recommendation)),  # budgets: if all else runs out
        ]
    )


def part_path(out: Path, index: int, output_format: str) -> Path:
    return out / f"part-{index:05d}.{output_format}"


def done(out: Path, indices: Sequence[int], output_format: str) -> set[int]:
    """The partitions whose output is already whole (a resumed run skips them)."""
    return {i for i in indices if part_path(out, i, output_format).exists()}


def write_part(out: Path, index: int, decided: Sequence[Decided], output_format: str) -> Path:
    """One partition's decisions, renamed into place only once complete."""
    return write_rows(out, index, [asdict(d) for d in decided], output_format)


def write_rows(out: Path, index: int, rows: list[dict[str, Any]], output_format: str) -> Path:
    final = part_path(out, index, output_format)
    temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    rows = [dict(r) for r in rows]
    if output_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        for row in rows:
            row["arms"] = list(row["arms"].items())
        pq.write_table(pa.Table.from_pylist(rows, schema=schema()), temporary)
    else:
        with temporary.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(temporary, final)
    return final


def open_output(out: Path, manifest: dict[str, Any], restart: bool) -> None:
    """Create the directory and its manifest, or check that it is this run's to resume."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / MANIFEST
    if path.exists() and not restart:
        found = json.loads(path.read_text())
        if found != manifest:
            changed = sorted(k for k in manifest if found.get(k) != manifest[k])
            raise BatchError(
                f"{out} holds a run of other input or rules (differs in {', '.join(changed)});"
                " expected the same input, rules and format to resume, or --restart to start"
                " afresh"
            )
        return
    for stale in [*out.glob("part-*"), *out.glob(f"{SCORED}/part-*"), *out.glob(ALLOCATED)]:
        stale.unlink()
    path.write_text(json.dumps(manifest, indent=1))


def write_bad(out: Path, bad: Sequence[tuple[str, str]]) -> Path:
    path = out / BAD_RECORDS
    with path.open("w", encoding="utf-8") as f:
        for where, what in bad:
            f.write(json.dumps({"where": where, "error": what}, ensure_ascii=False) + "\n")
    return path


def read_part(path: Path) -> list[dict[str, Any]]:
    """A Parquet part back as rows (its arms a dict again): for the budget pass."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    for row in rows:
        row["arms"] = dict(row["arms"] or [])
    return rows
