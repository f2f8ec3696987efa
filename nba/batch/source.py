"""The input of a batch run: DecideRequests as JSON lines (the `nba gen-customers` form) or
Parquet (one column per DecideRequest field, nested values as structs and lists), split into
partitions that workers read by themselves: the driver never holds the customers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nba.batch import BatchError

JSONL_BYTES_PER_PARTITION = 1 << 20  # ~800 gen-customers lines: a task under a second


@dataclass(frozen=True, slots=True)
class Partition:
    index: int
    path: str
    format: str  # "jsonl" | "parquet"
    start: int  # jsonl: byte offset of its first line; parquet: its row group
    end: int  # jsonl: byte offset past its last line; parquet: the row group again
    first_line: int = 1  # jsonl: the file's line number of its first line, for messages


@dataclass(frozen=True, slots=True)
class Record:
    """One input record: where it is, for error messages, and the request as a dict."""

    where: str  # "customers.jsonl:1234" (line) or "customers.parquet: row group 3, row 17"
    request: dict[str, Any] | None
    error: str = ""  # set when the record could not be read at all


def input_format(path: Path) -> str:
    if path.suffix == ".parquet":
        return "parquet"
    if path.suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    raise BatchError(f"{path}: expected a .jsonl (JSON lines) or .parquet file of customers")


def plan(path: Path, bytes_per_partition: int = JSONL_BYTES_PER_PARTITION) -> list[Partition]:
    """The partitions of `path`: byte ranges ending at line ends, or Parquet row groups."""
    if not path.is_file():
        raise BatchError(f"{path}: no such file; expected the customers to decide for")
    kind = input_format(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        groups = pq.ParquetFile(path).num_row_groups
        return [Partition(i, str(path), kind, i, i) for i in range(groups)]
    return _line_ranges(path, bytes_per_partition)


def _line_ranges(path: Path, size: int) -> list[Partition]:
    """Cut at the first line end after every `size` bytes; one sequential read of the file
    counts the lines before each cut, so messages can name the file's own line numbers."""
    partitions: list[Partition] = []
    start, line = 0, 1
    with path.open("rb") as f:
        while True:
            chunk = f.read(size)
            if not chunk:
                break
            chunk += f.readline()  # to the end of the line the cut fell in
            end = start + len(chunk)
            partitions.append(Partition(len(partitions), str(path), "jsonl", start, end, line))
            start, line = end, line + chunk.count(b"\n")
    return partitions


def records(partition: Partition) -> Iterator[Record]:
    """The partition's records, in input order."""
    if partition.format == "parquet":
        yield from _parquet_records(partition)
    else:
        yield from _jsonl_records(partition)


def _jsonl_records(partition: Partition) -> Iterator[Record]:
    name = os.path.basename(partition.path)
    with open(partition.path, "rb") as f:
        f.seek(partition.start)
        data = f.read(partition.end - partition.start)
    for n, line in enumerate(data.splitlines()):
        if not line.strip():
            continue
        where = f"{name}:{partition.first_line + n}"
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield Record(where, None, f"not JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield Record(where, None, "expected a JSON object (a DecideRequest)")
            continue
        yield Record(where, value)


def _parquet_records(partition: Partition) -> Iterator[Record]:
    import pyarrow.parquet as pq

    name = os.path.basename(partition.path)
    table = pq.ParquetFile(partition.path).read_row_group(partition.start)
    for i, row in enumerate(table.to_pylist()):
        where = f"{name}: row group {partition.start}, row {i}"
        yield Record(where, _without_nulls(row))


def _without_nulls(value: Any) -> Any:
    """Parquet has a null for every absent field; a DecideRequest has no field at all."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def identity(path: Path, partitions: list[Partition]) -> dict[str, Any]:
    """What a rerun must find unchanged to resume: the file's size and time, the split."""
    stat = path.stat()
    return {
        "input": str(path.resolve()),
        "bytes": stat.st_size,
        "modified_ns": stat.st_mtime_ns,
        "partitions": [asdict(p) | {"path": ""} for p in partitions],
    }
