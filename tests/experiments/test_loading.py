"""Broken experiments: each error names file:line:column, what was wrong and what was
expected, and the rule set does not load (the server keeps the last good one)."""

from __future__ import annotations

import pytest

from nba.errors import RuleSetError
from tests.experiments.bank import bank_with


def errors_of(text: str) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        bank_with(text)
    return [str(e) for e in caught.value.errors]


def arms(*lines: str) -> str:
    return (
        "experiments:\n  - id: test\n    salt: t-1\n    control: champion\n    arms:\n"
        "      - {id: champion, share: 0.5}\n" + "".join(f"      {line}\n" for line in lines)
    )


def test_an_unknown_lever_is_named_where_it_is_written_with_a_suggestion() -> None:
    (error,) = errors_of(arms("- {id: b, share: 0.5, levers: {q4_deposit_pus: 2}}"))
    assert error.startswith("rules/experiments.yaml:7:")
    assert (
        "arm 'b': unknown lever 'q4_deposit_pus'; expected a lever the rule set declares" in error
    )
    assert "q4_deposit_push" in error  # did you mean


def test_shares_that_do_not_add_up_to_one() -> None:
    (error,) = errors_of(arms("- {id: b, share: 0.4}"))
    assert "rules/experiments.yaml:6:7:" in error  # the arms
    assert "share 0.9 of its customers; expected shares that add up to 1" in error


def test_a_control_that_is_not_an_arm() -> None:
    text = arms("- {id: b, share: 0.5}").replace("control: champion", "control: champ")
    (error,) = errors_of(text)
    assert "rules/experiments.yaml:4:14:" in error
    assert (
        "control arm 'champ' is not an arm of experiment 'test'; expected one of champion, b"
        in error
    )


def test_disabling_an_unknown_rule_and_enabling_one_that_is_not_dormant() -> None:
    found = errors_of(
        arms("- {id: b, share: 0.5, rules: {disable: [no_such_rule], enable: [mortgage_intent]}}")
    )
    assert any(
        "unknown rule 'no_such_rule'; expected the id of a suppression or weight rule" in e
        for e in found
    )
    assert any(
        "unknown rule 'mortgage_intent'; expected a rule written `enabled: false`" in e
        for e in found
    )


def test_a_layer_given_more_than_all_its_customers() -> None:
    one = (
        "  - id: {id}\n    salt: s\n    layer: home\n    traffic: 0.6\n    control: a\n"
        "    arms: [{{id: a, share: 0.5}}, {{id: b, share: 0.5}}]\n"
    )
    (error,) = errors_of("experiments:\n" + one.format(id="x") + one.format(id="y"))
    assert "rules/experiments.yaml:11:14:" in error  # the last traffic:
    assert "layer 'home' gives 1.2 of its customers to its experiments (x 0.6, y 0.6)" in error


def test_the_universal_control_id_is_reserved_and_its_share_checked() -> None:
    text = arms("- {id: b, share: 0.5}").replace("id: test", "id: universal_control")
    assert any("'universal_control' is reserved" in e for e in errors_of(text))
    (error,) = errors_of("universal_control: {share: 1.5, salt: u}\n")
    assert error.startswith("rules/experiments.yaml:1:") and "share" in error


def test_yaml_booleans_as_arm_ids_are_caught() -> None:
    found = errors_of(arms("- {id: off, share: 0.5}"))
    assert any("arms[1].id: got False; expected a valid string" in e for e in found)
