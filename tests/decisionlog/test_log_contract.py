"""What every decision-log backend guarantees (run over each of BACKENDS)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from nba.decisionlog import UNLIMITED, DecisionRecord, Retention, open_decision_log
from nba.decisionlog.jsonl import log_files
from tests.conftest import REPO
from tests.decisionlog.helpers import age_files, numbered

DAY = 86400.0


def test_a_written_record_is_found_whole_by_its_decision_id(
    backend: str, log_dir: Path, a_record: DecisionRecord
) -> None:
    log = open_decision_log(log_dir, backend)
    log.write(a_record)
    log.write(numbered(a_record, 1))
    assert log.find(a_record.decision_id) == a_record  # found before close: flushed first
    log.close()
    reader = open_decision_log(log_dir, backend)
    try:
        assert reader.find(a_record.decision_id) == a_record
        assert reader.find(numbered(a_record, 1).decision_id) == numbered(a_record, 1)
        assert reader.find("0" * 32) is None
    finally:
        reader.close()


def test_records_stay_findable_across_rotations(
    backend: str, log_dir: Path, a_record: DecisionRecord
) -> None:
    size = len(json.dumps(a_record.as_dict()))
    log = open_decision_log(log_dir, backend, rotate_bytes=size * 3)
    records = [numbered(a_record, i) for i in range(20)]
    for record in records:
        log.write(record)
    log.close()
    if backend == "jsonl":  # about three records per file
        assert len(log_files(log_dir)) >= 6
    reader = open_decision_log(log_dir, backend)
    try:
        assert all(reader.find(r.decision_id) == r for r in records)
    finally:
        reader.close()


def test_every_record_reads_back_once_oldest_first_across_rotations(
    backend: str, log_dir: Path, a_record: DecisionRecord
) -> None:
    size = len(json.dumps(a_record.as_dict()))
    log = open_decision_log(log_dir, backend, rotate_bytes=size * 3)
    records = [numbered(a_record, i) for i in range(12)]
    records = [
        DecisionRecord.from_dict({**r.as_dict(), "time": 1000.0 + i}) for i, r in enumerate(records)
    ]
    for record in records:
        log.write(record)
    log.close()
    reader = open_decision_log(log_dir, backend)
    try:
        assert [r.decision_id for r in reader.records()] == [r.decision_id for r in records]
    finally:
        reader.close()


def test_records_older_than_the_age_limit_are_removed(
    backend: str, log_dir: Path, a_record: DecisionRecord
) -> None:
    old = [numbered(a_record, i, at=time.time() - 3 * DAY) for i in range(5)]
    log = open_decision_log(log_dir, backend)
    for record in old:
        log.write(record)
    log.close()
    age_files(log_dir, 3 * DAY)  # the files' last write too: what the jsonl backend reads
    log = open_decision_log(log_dir, backend, retention=Retention(max_age_seconds=DAY))
    fresh = numbered(a_record, 99)
    log.write(fresh)
    try:
        assert log.find(fresh.decision_id) == fresh
        assert all(log.find(r.decision_id) is None for r in old)
    finally:
        log.close()


def test_past_the_total_size_the_oldest_records_go_first(
    backend: str, log_dir: Path, a_record: DecisionRecord
) -> None:
    size = len(json.dumps(a_record.as_dict()))
    log = open_decision_log(log_dir, backend, rotate_bytes=size * 2)
    now = time.time()
    records = [numbered(a_record, i, at=now - 100 + i) for i in range(20)]
    for record in records:
        log.write(record)
        log.flush()
        time.sleep(0.002)  # distinct file times, oldest first
    log.close()
    limit = Retention(max_age_seconds=DAY, max_total_bytes=size * 8)
    log = open_decision_log(log_dir, backend, rotate_bytes=size * 2, retention=limit)
    try:
        kept = [r for r in records if log.find(r.decision_id) is not None]
        assert 4 <= len(kept) <= 8, len(kept)
        assert kept == records[-len(kept) :]  # the newest survive
    finally:
        log.close()


def test_several_processes_writing_at_once_lose_and_tear_nothing(
    backend: str, log_dir: Path, a_record: DecisionRecord, tmp_path: Path
) -> None:
    record_file = tmp_path / "record.json"
    record_file.write_text(json.dumps(a_record.as_dict()))
    count, writers = 300, 4
    rotate = str(len(json.dumps(a_record.as_dict())) * 40)
    command = [sys.executable, "-m", "tests.decisionlog.log_writer", str(log_dir), backend]
    processes = [
        subprocess.Popen([*command, str(record_file), str(count), rotate], cwd=REPO)
        for _ in range(writers)
    ]
    pids = [p.pid for p in processes]
    assert [p.wait(timeout=60) for p in processes] == [0] * writers
    reader = open_decision_log(log_dir, backend, retention=UNLIMITED)
    try:
        for pid in pids:
            for i in (0, 1, count // 2, count - 1):
                found = reader.find(f"{pid:08x}{i:024x}")
                assert found is not None and found.request == a_record.request
    finally:
        reader.close()
    if backend == "jsonl":  # every line of every file is one whole record
        lines = [line for f in log_files(log_dir) for line in f.path.read_bytes().splitlines()]
        assert len(lines) == count * writers
        assert all(
            json.loads(line)["ruleset_version"] == a_record.ruleset_version for line in lines
        )
