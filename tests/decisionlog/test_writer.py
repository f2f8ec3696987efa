"""The serving side: a bounded queue and one writer thread; drops are counted and logged."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from nba.decisionlog import LogSettings, open_decision_log
from nba.decisionlog.sqlite import FILE_NAME
from nba.decisionlog.writer import DecisionRecorder
from nba.pipeline.decider import Decider
from tests.decisionlog.helpers import decided


def test_every_submitted_decision_is_written_by_close(bank_decider: Decider, log_dir: Path) -> None:
    recorder = DecisionRecorder(LogSettings(log_dir))
    decisions = [decided(bank_decider) for _ in range(30)]
    for decision in decisions:
        recorder.submit(decision)
    recorder.close()
    assert (recorder.written, recorder.dropped, recorder.failed) == (30, 0, 0)
    log = open_decision_log(log_dir)
    try:
        assert all(log.find(d.decision_id) is not None for d in decisions)
    finally:
        log.close()


def test_a_full_queue_drops_counts_and_logs_instead_of_waiting(
    bank_decider: Decider, log_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = LogSettings(log_dir, backend="sqlite", queue_size=3)
    recorder = DecisionRecorder(settings)
    blocker = sqlite3.connect(log_dir / FILE_NAME, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer's commit now waits (a disk that stalls)
    decisions = [decided(bank_decider) for _ in range(40)]
    with caplog.at_level(logging.WARNING, "nba.decisionlog"):
        for decision in decisions:
            recorder.submit(decision)  # returns at once even though nothing can be written
    blocker.execute("ROLLBACK")
    blocker.close()
    recorder.close()
    assert recorder.dropped >= 40 - 3 - 3  # the queue, and the chunk the thread had taken
    assert recorder.written + recorder.dropped == 40
    assert "decision log queue full" in caplog.text
    log = open_decision_log(log_dir, "sqlite")
    try:
        found = [d for d in decisions if log.find(d.decision_id) is not None]
    finally:
        log.close()
    assert len(found) == recorder.written


def test_sampling_writes_only_the_sampled_decisions(bank_decider: Decider, log_dir: Path) -> None:
    from nba.decisionlog.writer import sampled

    recorder = DecisionRecorder(LogSettings(log_dir, sample=0.3))
    decisions = [decided(bank_decider) for _ in range(60)]
    for decision in decisions:
        recorder.submit(decision)
    recorder.close()
    log = open_decision_log(log_dir)
    try:
        logged = {d.decision_id for d in decisions if log.find(d.decision_id) is not None}
    finally:
        log.close()
    assert logged == {d.decision_id for d in decisions if sampled(d.decision_id, 0.3)}
    assert 0 < len(logged) < 60
