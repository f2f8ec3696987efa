"""Both decision-log backends for the contract tests, each on a fresh directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from nba.decisionlog import BACKENDS, DecisionRecord
from nba.pipeline.decider import Decider
from tests.decisionlog.helpers import decided, record_of


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def a_record(bank_decider: Decider) -> DecisionRecord:
    """A real decision's record (the at-risk call-center example)."""
    return record_of(decided(bank_decider))


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "log"
