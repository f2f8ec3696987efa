"""Readable "why": conditions in plain words, and the authors' `because:` sentences.

A call-center agent reads a recommendation's reasons aloud; they must be words, never the
condition's syntax. Where an author wrote `because:`, that sentence is the reason; a bad
one is a located error like any other in a rule file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nba.errors import RuleSetError
from nba.pipeline.decider import Decider
from nba.ruleset import conditions as cond
from nba.ruleset.loader import load_ruleset
from nba.ruleset.resolve import Scope, resolve
from nba.ruleset.ruleset import RuleSet
from nba.ruleset.wording import Vocabulary, describe
from tests.conftest import example
from tests.helpers import BASE, action, write_rules

SYNTAX = ("==", "!=", ">=", "<=", "profile.", "segment.", "touchpoint.", "action=", "(")


def words(bank: RuleSet, text: str, this_action: str | None = "card_cashback") -> str:
    scope = Scope(
        attributes=bank.attributes,
        stages=bank.stages,
        channels=tuple(bank.channels),
        segments=frozenset(bank.segments),
        actions=frozenset(bank.actions),
        groups=frozenset(a.group for a in bank.actions.values()),
        this_action=this_action,
    )
    names = Vocabulary(action_names={a.id: a.name for a in bank.actions.values()})
    return describe(resolve(cond.parse(text), scope), names, this_action)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("accepts(action=this) == 0", "has not accepted this offer"),
        ("rejections(90d, action=this) == 0", "has not rejected this offer in the last 90 days"),
        (
            "dismissals(30d, action=this) < 2",
            "has dismissed this offer fewer than 2 times in the last 30 days",
        ),
        (
            'impressions(1d, channel="email") >= 1',
            "has been shown any of our messages on email in the last day",
        ),
        ("complaints(30d) == 0", "has not complained in the last 30 days"),
        ('not ("checking" in profile.products)', "does not have checking in products"),
        ('"mortgage" in profile.products', "has mortgage in products"),
        ('lifecycle in ["prospect", "onboarding"]', "is in the prospect or onboarding stage"),
        ('lifecycle != "prospect"', "is not in the prospect stage"),
        ("profile.monthly_income >= 1500", "monthly income is at least 1,500"),
        ("profile.age between 18 and 70", "age is between 18 and 70"),
        # a missing attribute makes a negated comparison hold: the words must say so
        ("not (profile.days_past_due > 0)", "days past due is not more than 0"),
        ("not profile.vulnerable", "vulnerable: no or not known"),
        ('touchpoint.intent == "cancel"', "intent is cancel"),
        ("not segment.in_arrears", "is not in the in arrears segment"),
        # De Morgan: not (a or b) reads as both negated
        (
            'not (lifecycle == "lapsed" or profile.age < 18)',
            "is not in the lapsed stage and age is not less than 18",
        ),
        (
            'profile.age >= 18 and (lifecycle == "active" or "isa" in profile.products)',
            "age is at least 18 and either is in the active stage or has isa in products",
        ),
    ],
)
def test_conditions_read_as_plain_words(bank: RuleSet, condition: str, expected: str) -> None:
    assert words(bank, condition) == expected


def test_another_actions_count_names_that_action(bank: RuleSet) -> None:
    assert words(bank, 'accepts(action="acct_student") == 0') == (
        "has not accepted Student current account"
    )


def test_no_bundled_rule_reads_as_syntax(bank: RuleSet) -> None:
    """Every rule in rules/ has words (or a because:) that carry none of the condition syntax."""
    for rule in bank.rules:
        assert rule.words, rule.id
        for mark in SYNTAX:
            assert mark not in rule.why, f"{rule.id} at {rule.location}: {rule.why!r}"


def test_recommendations_carry_because_or_words_never_raw_conditions(
    bank: RuleSet, bank_decider: Decider
) -> None:
    response = bank_decider.decide(example("web_prospect_homepage.json"))
    top = response.recommendations[0]
    assert top.action_id == "acct_current_switch"
    descriptions = {r.rule_id: r.description for r in top.reasons}
    rule = next(r for r in bank.rules if r.id == "acct_current_switch.applicable.not_rejected")
    assert rule.because, "the bundled rule should carry an author's sentence"
    assert descriptions[rule.id] == rule.because
    for reason in top.reasons:
        assert not any(mark in reason.description for mark in SYNTAX[:-1]), reason


def load(tmp_path: Path, extra: str, rules: str = "") -> RuleSet:
    files = {"base.yaml": BASE, "actions.yaml": "actions:\n" + action("a1", extra=extra)}
    if rules:
        files["rules.yaml"] = rules
    return load_ruleset(write_rules(tmp_path / "rules", files), display_root="rules")


def errors(tmp_path: Path, extra: str, rules: str = "") -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        load(tmp_path, extra, rules)
    return [str(e) for e in caught.value.errors]


ADULT = """
eligible:
  - id: adult
    when: profile.age >= 18
    because: {because}
"""


def test_because_on_an_engagement_rule_is_its_why(tmp_path: Path) -> None:
    ruleset = load(tmp_path, ADULT.format(because="is an adult"))
    rule = next(r for r in ruleset.rules if r.id == "a1.eligible.adult")
    assert (rule.because, rule.why, rule.words) == (
        "is an adult",
        "is an adult",
        "age is at least 18",
    )


@pytest.mark.parametrize(
    ("because", "message"),
    [
        ('""', "`because` is empty; expected a sentence"),
        ("profile.age >= 18", "`because` reads like a condition; expected plain words"),
        ("[is, an, adult]", "got list; expected a valid string"),
        ("x" * 201, "`because` is 201 characters; expected one sentence of at most 200"),
    ],
)
def test_a_bad_because_is_located(tmp_path: Path, because: str, message: str) -> None:
    found = errors(tmp_path, ADULT.format(because=because))
    assert len(found) == 1, found
    assert found[0].startswith("rules/actions.yaml:15:18:"), found[0]  # file:line:column
    assert message in found[0]


def test_because_on_a_suppression_is_refused_where_written(tmp_path: Path) -> None:
    rules = """
    rules:
      - id: no_minors
        when: profile.age < 18
        suppress: {all: true}
        because: is a minor
    """
    found = errors(tmp_path, "", rules)
    assert found == [
        "rules/rules.yaml:5:14: error[schema]: `because` on suppression 'no_minors': a suppression"
        " holds to exclude; expected its sentence as `reason:`"
    ]


def test_a_segments_because_is_how_it_reads_inside_other_rules(bank: RuleSet) -> None:
    rule = next(r for r in bank.rules if r.id == "high_value_at_risk")
    assert rule.source == 'segment.affluent and segment.long_standing and lifecycle == "at_risk"'
    assert rule.words == (
        "holds high balances with us or has a high income,"  # segment affluent's because:
        " has been with us five years or more and is in the at risk stage"
    )
    negated = next(r for r in bank.rules if r.id == "card_cashback.suitable.not_stretched")
    assert negated.words == "is not in the financially stretched segment"  # no negated sentence


def test_a_weights_because_is_its_reason_in_a_recommendation(bank_decider: Decider) -> None:
    response = bank_decider.decide(example("call_center_at_risk.json"))
    top = response.recommendations[0]
    weights = {r.rule_id: r.description for r in top.reasons if r.kind == "weight"}
    assert weights["cancel_intent_retention_first"] == (
        "x3: asked to close the account, so keeping them comes first"
    )
