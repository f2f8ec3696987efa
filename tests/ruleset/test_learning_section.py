"""The `learning:` section: layered settings, and errors that say where and what."""

from __future__ import annotations

import pytest

from nba.errors import RuleSetError
from nba.ruleset.loader import load_documents
from tests.helpers import BASE, action


def load(extra: str, actions: str = "") -> object:
    text = BASE + "actions:\n" + (actions or action("a1") + action("l1", group="loans")) + extra
    return load_documents([("rules/r.yaml", text)])


def errors(extra: str, actions: str = "") -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        load(extra, actions)
    return [str(e) for e in caught.value.errors]


def test_the_section_then_the_group_then_the_action_decide() -> None:
    ruleset = load(
        """
learning:
  prior_strength: 40
  positives: [click]
  groups:
    loans: {exploration: "off", prior_strength: 10}
""",
        action("a1")
        + action("l1", group="loans", extra="learning: {positives: [accept]}")
        + action("l2", group="loans", extra="learning: {enabled: false}"),
    )
    learning = ruleset.learning  # type: ignore[attr-defined]
    assert set(learning) == {"a1", "l1"}
    assert learning["a1"].prior_strength == 40 and learning["a1"].explore
    assert learning["a1"].positives == {2}  # click
    assert learning["l1"].prior_strength == 10 and not learning["l1"].explore
    assert learning["l1"].positives == {3}  # accept: the action's own
    assert learning["l1"].half_life_seconds == 30 * 86400  # the default


def test_no_section_means_static_scores() -> None:
    assert load("").learning == {}  # type: ignore[attr-defined]


def test_an_outcome_both_positive_and_negative_across_layers_is_an_error() -> None:
    found = errors(
        """
learning:
  positives: [click]
  groups:
    loans: {negatives: [click]}
    nosuch: {enabled: false}
"""
    )
    assert any("'l1' learns click as both a positive and a negative" in e for e in found)
    assert any("unknown group 'nosuch'" in e for e in found)
    assert all(":" in e.split(" ")[0] for e in found)  # file:line:column first


def test_bad_values_name_the_field_and_what_was_expected() -> None:
    found = errors(
        """
learning:
  exploration: maybe
  half_life: 30x
"""
    )
    text = "\n".join(found)
    assert "learning.exploration: got 'maybe'; expected 'thompson' or 'off'" in text
    assert "learning.half_life: got '30x'; expected a duration" in text


def test_a_cap_window_typo_is_described_as_a_duration() -> None:
    found = errors(
        """
policies:
  caps:
    - {id: daily, max: 3, within: 7x}
"""
    )
    assert any("within: got '7x'; expected a duration" in e for e in found)
