"""The `budgets:` section: targets resolved like rules', and errors that say where and what."""

from __future__ import annotations

import pytest

from nba.errors import RuleSetError
from nba.ruleset.loader import load_documents
from nba.ruleset.ruleset import RuleSet
from tests.helpers import BASE, action


def load(extra: str) -> RuleSet:
    actions = action("a1") + action("l1", group="loans") + action("l2", group="loans")
    return load_documents([("rules/r.yaml", BASE + "actions:\n" + actions + extra)])


def errors(extra: str) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        load(extra)
    return [str(e) for e in caught.value.errors]


def test_a_budget_covers_its_actions_and_groups_on_its_channel() -> None:
    ruleset = load(
        """
budgets:
  - id: premium_cap
    limit: 500
    per: day
    actions: [a1]
    groups: [loans]
    channel: web
    paced: true
  - id: loans_total
    limit: 10000
    per: total
    groups: [loans]
"""
    )
    cap, total = ruleset.budgets
    assert (cap.id, cap.limit, cap.window, cap.paced) == ("premium_cap", 500, "day", True)
    assert cap.actions == {"a1", "l1", "l2"}
    assert cap.covers("l1", "web") and not cap.covers("l1", "email")
    assert total.covers("l2", "email") and not total.covers("a1", "web")
    assert str(cap.location).startswith("rules/r.yaml:")


def test_no_section_means_no_budgets() -> None:
    assert load("").budgets == ()


def test_pacing_a_total_is_an_error_where_paced_is_written() -> None:
    extra = """
budgets:
  - id: forever
    limit: 5
    per: total
    actions: [a1]
    paced: true
"""
    found = errors(extra)
    text = BASE + "actions:\n" + action("a1") + action("l1", group="loans")
    text += action("l2", group="loans") + extra
    line = text.splitlines().index("    paced: true") + 1
    assert len(found) == 1
    assert found[0].startswith(f"rules/r.yaml:{line}:12: ")  # where `paced`'s value is
    assert "budget 'forever' is paced but counted in total" in found[0]
    assert "expected `per: day`, `week` or `month`" in found[0]


def test_unknown_targets_channels_and_bad_values_are_located_errors() -> None:
    found = errors(
        """
budgets:
  - id: typo
    limit: 5
    per: day
    actions: [a2]
    groups: [lons]
    channel: wbe
  - id: wrong
    limit: -1
    per: year
    actions: [a1]
  - id: typo
    limit: 1
    per: week
    actions: [a1]
"""
    )
    joined = "\n".join(found)
    assert "unknown action 'a2'; expected a declared action" in joined
    assert "unknown group 'lons'" in joined and "did you mean 'loans'?" in joined
    assert "unknown channel 'wbe'; expected a declared channel (did you mean 'web'?)" in joined
    assert "budgets[1].limit: got -1; expected greater than or equal to 0" in joined
    assert "budgets[1].per: got 'year'; expected 'day', 'week', 'month' or 'total'" in joined
    assert "budget 'typo' is also defined at" in joined
    assert all(e.startswith("rules/r.yaml:") for e in found)


def test_a_budget_without_targets_is_an_error() -> None:
    found = errors("\nbudgets:\n  - {id: nothing, limit: 5, per: day}\n")
    assert any("no targets; expected actions, groups, purposes or all: true" in e for e in found)
