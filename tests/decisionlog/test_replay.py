"""Replay of the decisions a server makes without the whole pipeline: degraded, out of time;
and a damaged archive. (Replay of served decisions: tests/server/test_decision_log.py.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nba.decisionlog.archive import RuleSetArchive
from nba.decisionlog.record import DEADLINE, DECIDED, RecordBuilder
from nba.decisionlog.replay import ReplayError, replay
from nba.pipeline.decider import Decider
from nba.ruleset.loader import load_ruleset
from tests.conftest import RULES, example
from tests.decisionlog.helpers import EXAMPLE


@pytest.fixture
def archived(tmp_path: Path) -> Path:
    RuleSetArchive(tmp_path).archive(load_ruleset(RULES, display_root=""), RULES)
    return tmp_path


def test_an_out_of_time_fallback_replays_as_one(bank_decider: Decider, archived: Path) -> None:
    request = bank_decider.validator.validate(example(EXAMPLE))
    decision = bank_decider.out_of_time(request)
    record = RecordBuilder().record(decision, 1.0)
    assert record.path == DEADLINE and record.recommendations[0]["fallback"]
    assert replay(record, archived).identical


def test_a_degraded_decision_replays_identical(bank_decider: Decider, archived: Path) -> None:
    request = bank_decider.validator.validate(example(EXAMPLE))
    decision = bank_decider.decide_request(replace(request, degraded=True))
    record = RecordBuilder().record(decision, 1.0)
    assert record.path == DECIDED and record.request["degraded"]
    result = replay(record, archived)
    assert result.identical, result.differences
    normal = RecordBuilder().record(bank_decider.decide_request(request), 1.0)
    assert normal.recommendations != record.recommendations  # degraded mattered, and was kept


def test_an_archive_edited_after_it_was_written_is_refused(
    bank_decider: Decider, archived: Path
) -> None:
    record = RecordBuilder().record(bank_decider.decision_and_response(example(EXAMPLE))[0], 1.0)
    policies = RuleSetArchive(archived).path_of(record.ruleset_version) / "policies.yaml"
    policies.write_text(policies.read_text() + "\n# edited\n")
    with pytest.raises(ReplayError, match="changed after it was written"):
        replay(record, archived)


def test_a_version_never_archived_is_named(bank_decider: Decider, tmp_path: Path) -> None:
    record = RecordBuilder().record(bank_decider.decision_and_response(example(EXAMPLE))[0], 1.0)
    with pytest.raises(ReplayError, match=f"rule set {record.ruleset_version} .* not archived"):
        replay(record, tmp_path)
