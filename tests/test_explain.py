"""`nba explain`: each action's story, with rules, places, values and the score."""

from __future__ import annotations

import subprocess
import sys

from nba.authoring.explain import explain
from nba.pipeline.decider import Decider
from tests.conftest import EXAMPLES, REPO, example


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nba", "explain", *args], cwd=REPO, capture_output=True, text=True
    )


def test_every_action_gets_a_story_consistent_with_the_decision(bank_decider: Decider) -> None:
    request = bank_decider.validator.validate(example("call_center_at_risk.json"))
    story = explain(bank_decider, request)
    assert {s.action.id for s in story.actions} == set(bank_decider.ruleset.actions)
    recommended = {p.action.id: p.rank for p in story.decision.picks}
    for item in story.actions:
        if item.action.id in recommended:
            assert item.verdict.startswith(f"rank {recommended[item.action.id]} on call_center")
            assert any(c.rule == "score" for c in item.checks)
            assert all(
                c.held is not False
                for c in item.checks
                if c.stage in ("eligible", "applicable", "suitable")
            )
        else:
            assert item.verdict.startswith("not recommended")


def test_a_failing_rule_shows_where_it_is_and_what_it_read() -> None:
    result = run(str(EXAMPLES / "mobile_app_dismissed_cashback.json"), "--action", "card_cashback")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    failing = [
        line for line in lines if " NO  card_cashback.applicable.not_dismissed_twice" in line
    ]
    assert len(failing) == 1
    assert "rules/actions/cards.yaml:73:15" in failing[0]
    assert 'dismissals(30d, action="card_cashback") = 2' in failing[0]
    assert "card_cashback (cards, marketing): not recommended: Not applicable now:" in result.stdout
    assert "segments: " in result.stdout


def test_recommended_actions_show_their_score_arithmetic() -> None:
    result = run(str(EXAMPLES / "call_center_at_risk.json"), "--action", "ret_fee_waiver")
    assert "ret_fee_waiver (retention, marketing): rank 1 on call_center" in result.stdout
    assert "score 337.5 = propensity 0.3 x weight 4.5 x value 250 x lever 1" in result.stdout
    assert "weight      yes cancel_intent_retention_first" in result.stdout


def test_unknown_action_is_suggested() -> None:
    result = run(str(EXAMPLES / "call_center_at_risk.json"), "--action", "ret_fee_waver")
    assert result.returncode == 2
    assert "did you mean 'ret_fee_waiver'?" in result.stderr
