"""What an arm changes in a decision, and where the arms show: the response, explain, the
decision log, replay; the universal control group's "none" and "static"."""

from __future__ import annotations

from pathlib import Path

import pytest

from nba.authoring.explain import explain
from nba.decisionlog.archive import RuleSetArchive
from nba.decisionlog.record import RecordBuilder
from nba.decisionlog.replay import replay
from nba.experiments.assign import Assigner
from nba.pipeline.decider import Decider
from nba.ruleset.ruleset import UNIVERSAL_CONTROL, RuleSet
from nba.v1 import decisioning_pb2 as pb
from tests.conftest import example
from tests.experiments.bank import HOSTILE, bank_with

COMPLAINT = "call_center_complaint.json"  # complaint_no_marketing holds for this customer
PROSPECT = "web_prospect_homepage.json"


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hostile")
    bank_with(HOSTILE.format(treatment="none"), directory)
    return directory / "rules"


@pytest.fixture(scope="module")
def hostile(rules_dir: Path) -> RuleSet:
    from nba.ruleset.loader import load_ruleset

    return load_ruleset(rules_dir, display_root="")


@pytest.fixture(scope="module")
def decider(hostile: RuleSet) -> Decider:
    return Decider(hostile)


def customer_in(ruleset: RuleSet, experiment: str, arm: str, start: int = 0) -> str:
    """The first customer id c-N (N >= start) the documented hash puts in `arm`."""
    assigner = Assigner(ruleset.experiments)
    for i in range(start, start + 10_000):
        found = assigner.arms(f"c-{i}")
        if experiment in found and found[experiment].id == arm:
            return f"c-{i}"
    raise AssertionError(f"no customer in {experiment}/{arm}")


def decide_as(decider: Decider, name: str, customer: str) -> pb.DecideResponse:
    message = example(name)
    message.customer_id = customer
    return decider.decide(message)


def test_the_response_names_the_customers_arms(decider: Decider, hostile: RuleSet) -> None:
    customer = customer_in(hostile, "push", "levers")
    response = decide_as(decider, PROSPECT, customer)
    assert dict(response.arms) == {UNIVERSAL_CONTROL: "treated", "push": "levers"}


def test_a_lever_arm_changes_the_ranking_the_champion_keeps(
    decider: Decider, hostile: RuleSet
) -> None:
    champion = decide_as(decider, PROSPECT, customer_in(hostile, "push", "champion"))
    levers = decide_as(decider, PROSPECT, customer_in(hostile, "push", "levers"))
    plain = Decider(bank_with("")).decide(example(PROSPECT))
    first = [r.action_id for r in champion.recommendations]
    assert first == [r.action_id for r in plain.recommendations]
    boosted = levers.recommendations[0]
    assert boosted.action_id != first[0]
    assert boosted.group in ("savings", "mortgages", "cards")  # the levers' groups, x50


def test_an_arm_that_disables_a_suppression_lets_its_actions_through(
    decider: Decider, hostile: RuleSet
) -> None:
    champion = decide_as(decider, COMPLAINT, customer_in(hostile, "push", "champion"))
    unsuppressed = decide_as(decider, COMPLAINT, customer_in(hostile, "push", "unsuppressed"))
    assert all(r.purpose == "service" for r in champion.recommendations)
    assert any(r.purpose == "marketing" for r in unsuppressed.recommendations)


def test_universal_control_none_gets_no_marketing_and_explain_says_why(
    decider: Decider, hostile: RuleSet
) -> None:
    customer = customer_in(hostile, UNIVERSAL_CONTROL, "control")
    response = decide_as(decider, PROSPECT, customer)
    assert dict(response.arms) == {UNIVERSAL_CONTROL: "control"}
    assert response.recommendations, "the hold-out still gets service messages"
    assert all(r.purpose == "service" for r in response.recommendations)
    message = example(PROSPECT)
    message.customer_id = customer
    story = explain(decider, decider.validator.validate(message))
    assert [(c.rule, c.text) for c in story.arms] == [
        (UNIVERSAL_CONTROL, "arm control: no marketing")
    ]
    marketing = [s for s in story.actions if s.action.purpose == "marketing"]
    assert marketing and not any(s.recommended for s in marketing)
    assert any(
        c.rule == "universal_control" and "no marketing" in c.text
        for s in marketing
        for c in s.checks
    )


def test_universal_control_static_scores_with_the_priors_only(tmp_path: Path) -> None:
    rules = bank_with(HOSTILE.format(treatment="static"), tmp_path)
    decider = Decider(rules)
    held = decider.variant_for(customer_in(rules, UNIVERSAL_CONTROL, "control"))
    treated = decider.variant_for(customer_in(rules, "push", "champion"))
    assert not held.ruleset.learning and treated.ruleset.learning
    response = decide_as(decider, PROSPECT, customer_in(rules, UNIVERSAL_CONTROL, "control"))
    assert any(r.purpose == "marketing" for r in response.recommendations)


def test_explain_names_each_arm_and_what_it_changes(decider: Decider, hostile: RuleSet) -> None:
    message = example(PROSPECT)
    message.customer_id = customer_in(hostile, "push", "weighted")
    story = explain(decider, decider.validator.validate(message))
    texts = {c.rule: c.text for c in story.arms}
    assert texts["push"] == (
        "arm weighted: weight rule growing_cross_sell x50, weight rule mortgage_intent x50,"
        " weight rule savings_hub_boost x50, scoring static"
    )
    assert texts[UNIVERSAL_CONTROL] == "arm treated: the rule set as written"


def test_a_logged_decision_in_an_arm_replays_exactly_even_with_hashed_customer_ids(
    decider: Decider, hostile: RuleSet, rules_dir: Path, tmp_path: Path
) -> None:
    RuleSetArchive(tmp_path).archive(hostile, rules_dir)
    builder = RecordBuilder(hash_key=b"k" * 32)
    for arm in ("champion", "levers", "unsuppressed", "weighted"):
        message = example(PROSPECT)
        message.customer_id = customer_in(hostile, "push", arm)
        decision, _ = decider.decision_and_response(message)
        record = builder.record(decision, 1.0)
        assert record.arms["push"] == arm and record.customer.startswith("hmac-sha256:")
        result = replay(record, tmp_path)
        assert result.identical, (arm, result.differences)


def test_a_dormant_rule_runs_only_in_the_arm_that_enables_it(tmp_path: Path) -> None:
    experiments = """
rules:
  - id: challenger_savings_push
    enabled: false
    when: lifecycle == "prospect"
    weight: {groups: [savings], factor: 40}
    because: the challenger pushes savings to prospects
experiments:
  - id: savings_rule
    salt: s-1
    control: champion
    arms:
      - {id: champion, share: 0.5}
      - {id: challenger, share: 0.5, rules: {enable: [challenger_savings_push]}}
"""
    rules = bank_with(experiments, tmp_path)
    assert "challenger_savings_push" not in {r.id for r in rules.rules}
    decider = Decider(rules)
    champion = decide_as(decider, PROSPECT, customer_in(rules, "savings_rule", "champion"))
    challenger = decide_as(decider, PROSPECT, customer_in(rules, "savings_rule", "challenger"))
    assert challenger.recommendations[0].group == "savings"
    assert champion.recommendations[0].group != "savings"
