"""Records and decisions for the decision-log tests: made by the real pipeline."""

from __future__ import annotations

import os
import time
from pathlib import Path

from nba.decisionlog import DecisionRecord
from nba.decisionlog.record import RecordBuilder
from nba.pipeline.decider import Decider
from nba.pipeline.types import Decision
from tests.conftest import example

EXAMPLE = "call_center_at_risk.json"


def decided(decider: Decider, name: str = EXAMPLE) -> Decision:
    """The pipeline's Decision for one bundled example request."""
    return decider.decision_and_response(example(name))[0]


def record_of(decision: Decision, at: float | None = None) -> DecisionRecord:
    return RecordBuilder().record(decision, time.time() if at is None else at)


def numbered(record: DecisionRecord, i: int, at: float | None = None) -> DecisionRecord:
    """The same record under decision id `i` (and time `at`): many distinct records cheaply."""
    data = record.as_dict() | {"decision_id": f"{os.getpid():08x}{i:024x}"}
    if at is not None:
        data["time"] = at
    return DecisionRecord.from_dict(data)


def age_files(directory: Path, seconds: float) -> None:
    """Set every log file's last write `seconds` back (what retention by age reads)."""
    then = time.time() - seconds
    for path in directory.iterdir():
        if path.is_file():
            os.utime(path, (then, then))
