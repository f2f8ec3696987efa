"""Values YAML splits at an unquoted comma or colon get a hint to quote them (item 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nba.errors import RuleSetError
from nba.ruleset.loader import load_ruleset
from tests.helpers import BASE, action, write_rules


def load_errors(tmp_path: Path, treatment: str) -> list[str]:
    """The errors of a rule set whose one action's web treatment is `treatment`."""
    text = action("a1", channels=("web",)).replace(
        "{headline: a1 on web, script: say a1}", treatment
    )
    rules = write_rules(
        tmp_path / "rules", {"base.yaml": BASE, "actions.yaml": "actions:\n" + text}
    )
    with pytest.raises(RuleSetError) as caught:
        load_ruleset(rules, display_root="rules")
    return [str(e) for e in caught.value.errors]


def test_a_comma_in_a_flow_mapping_value_is_located_and_hinted(tmp_path: Path) -> None:
    # Before: "treatment field 'save money' is not text", at the mapping, with no hint.
    assert load_errors(tmp_path, "{headline: Save water, save money, script: s}") == [
        "rules/actions.yaml:8:35: error[yaml]: 'save money' is a key with no value: in a {...}"
        " mapping a comma ends a value, so `headline: Save water, save money` was read as"
        " headline 'Save water' and a key 'save money'; expected the value in quotes (quote"
        ' it: headline: "Save water, save money")'
    ]


def test_a_colon_in_a_block_value_gets_the_quoted_line(tmp_path: Path) -> None:
    (error,) = load_errors(tmp_path, "\n        headline: hi\n        body: Note: fees apply")
    assert error.startswith("rules/actions.yaml:10:19: error[yaml]: YAML syntax:")
    assert error.endswith("""(a value with ': ' in it must be quoted: body: "Note: fees apply")""")


def test_a_colon_in_a_flow_value_gets_the_quoted_pair(tmp_path: Path) -> None:
    (error,) = load_errors(tmp_path, '{headline: hi, body: Say "no": fees apply, script: s}')
    assert error.startswith("rules/actions.yaml:8:41: error[yaml]: YAML syntax:")
    assert error.endswith("""quoted: body: 'Say "no": fees apply')""")


def test_quoted_values_load(tmp_path: Path) -> None:
    text = action("a1", channels=("web",)).replace(
        "{headline: a1 on web, script: say a1}",
        '{headline: "Save water, save money", body: "Note: fees apply", script: s}',
    )
    rules = write_rules(
        tmp_path / "rules", {"base.yaml": BASE, "actions.yaml": "actions:\n" + text}
    )
    treatment = load_ruleset(rules).actions["a1"].treatments["web"]
    assert treatment.headline == "Save water, save money"
    assert treatment.body == "Note: fees apply"
