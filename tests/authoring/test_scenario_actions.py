"""Scenario expectations that name an action the rule set lacks are errors, located, with a hint."""

from __future__ import annotations

from pathlib import Path

from nba.authoring import scenarios as sc
from nba.pipeline.decider import Decider
from nba.ruleset.loader import load_ruleset
from tests.helpers import BASE, action, write_rules

TYPO = """
scenarios:
  - name: adults are not offered travel insurance
    request:
      customerId: c1
      lifecycleStage: active
      profile: {age: 30}
      touchpoint: {channel: web}
    expect:
      not_offered: [ins_singel_trip]
      excluded:
        - {action: gold_cardd, rule: gold.eligible}
"""


def run(tmp_path: Path, scenario: str) -> sc.Outcome:
    rules = write_rules(
        tmp_path / "rules",
        {
            "base.yaml": BASE,
            "actions.yaml": "actions:\n" + action("ins_single_trip") + action("gold_card"),
            "tests/typo.yaml": scenario,
        },
    )
    found, errors = sc.load_scenarios(rules, Path("rules"))
    assert errors == []
    decider = Decider(load_ruleset(rules, display_root="rules"), "reference")
    return sc.run_scenario(decider, found[0])


def test_a_misspelt_not_offered_action_is_an_error_with_did_you_mean(tmp_path: Path) -> None:
    outcome = run(tmp_path, TYPO)
    # Before: `not_offered: [ins_singel_trip]` held for every decision and the scenario passed.
    assert outcome.status == "ERROR"
    assert outcome.decision is None
    first, second = outcome.error.split("; rules/")
    assert first == (
        "rules/tests/typo.yaml:9:21: error[scenario-unknown-action]: not_offered names action"
        " 'ins_singel_trip', which the rule set does not declare; expected one of gold_card,"
        " ins_single_trip (did you mean 'ins_single_trip'?)"
    )
    assert second.startswith("tests/typo.yaml:11:20: error[scenario-unknown-action]:")
    assert "excluded.action names action 'gold_cardd'" in second
    assert "(did you mean 'gold_card'?)" in second


def test_known_names_run_as_before(tmp_path: Path) -> None:
    outcome = run(tmp_path, TYPO.replace("singel", "single").replace("cardd", "card"))
    assert outcome.error == ""
    assert outcome.decision is not None
    assert outcome.status == "FAIL"  # gold_card is recommended, not excluded
