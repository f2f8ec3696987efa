"""Loading rule sets: every error at once, as file:line:column with what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from nba.errors import RuleSetError
from nba.ruleset.loader import load_ruleset
from nba.ruleset.ruleset import RuleSet
from tests.helpers import BASE, action, write_rules


def load(tmp_path: Path, files: dict[str, str]) -> RuleSet:
    return load_ruleset(write_rules(tmp_path / "rules", files), display_root="rules")


def errors(tmp_path: Path, files: dict[str, str]) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        load(tmp_path, files)
    return [str(e) for e in caught.value.errors]


def test_bundled_rule_set_loads_with_its_promised_size(bank: RuleSet) -> None:
    assert len(bank.actions) >= 25
    assert len(bank.channels) >= 6
    assert set(bank.stages) == {"prospect", "onboarding", "active", "growing", "at_risk", "lapsed"}
    purposes = {a.purpose for a in bank.actions.values()}
    assert purposes == {"marketing", "service"}
    assert any(rule.stratum > 0 and rule.kind == "segment" for rule in bank.rules), (
        "some segment should build on another (forward chaining)"
    )


def test_a_valid_set_loads_and_is_versioned_by_content(tmp_path: Path) -> None:
    files = {"base.yaml": BASE, "actions.yaml": "actions:\n" + action("a1")}
    first = load(tmp_path / "one", files)
    second = load(tmp_path / "two", files)
    assert first.version == second.version
    changed = load(tmp_path / "three", {**files, "actions.yaml": "actions:\n" + action("a2")})
    assert changed.version != first.version


def test_misspelt_attribute_is_located_and_suggested(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        {
            "base.yaml": BASE,
            "actions.yaml": "actions:\n"
            + action("a1", extra="eligible: profile.agee >= 18 and profile.income > 0"),
        },
    )
    assert found == [
        "rules/actions.yaml:12:15: error[type]: unknown profile attribute 'agee';"
        " expected a declared profile attribute (did you mean 'age'?)"
    ]


def test_every_error_is_reported_at_once_across_files(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        {
            "base.yaml": BASE + "segments:\n  - id: rich\n    when: profile.income >= 'lots'\n",
            "actions.yaml": "actions:\n"
            + action("a1", extra='applicable: lifecycle == "activ"')
            + action("a2", purpose="marketting"),
            "rules.yaml": "rules:\n  - id: r1\n    when: segment.richh\n"
            "    suppress: {groups: [cardz]}\n",
        },
    )
    joined = "\n".join(found)
    assert len(found) == 5, joined
    assert (
        "rules/base.yaml:21:29: error[type]: profile.income is a number, but 'lots' is text"
        in joined
    )
    assert (
        "'activ' is not a possible value of lifecycle" in joined
        and "did you mean 'active'?" in joined
    )
    assert "actions[1].purpose: got 'marketting'; expected 'marketing' or 'service'" in joined
    assert "did you mean 'marketing'?" in joined
    assert "unknown segment 'richh'" in joined and "did you mean 'rich'?" in joined
    assert "unknown group 'cardz'" in joined and "did you mean 'cards'?" in joined


def test_unknown_key_suggests_the_known_one(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        {"base.yaml": BASE, "actions.yaml": "actions:\n" + action("a1", extra="eligable: true")},
    )
    assert len(found) == 1
    assert found[0].startswith("rules/actions.yaml:12:5: error[unknown-key]: actions[0].eligable")
    assert "did you mean 'eligible'?" in found[0]


def test_yaml_syntax_error_has_its_position(tmp_path: Path) -> None:
    found = errors(tmp_path, {"base.yaml": BASE, "bad.yaml": "actions: [\n  - id: x\n"})
    assert len(found) == 1
    assert found[0].startswith("rules/bad.yaml:2:")
    assert "YAML syntax" in found[0]


def test_duplicate_ids_name_both_places(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        {
            "base.yaml": BASE,
            "one.yaml": "actions:\n" + action("same"),
            "two.yaml": "actions:\n" + action("same"),
        },
    )
    assert found == [
        "rules/two.yaml:2:9: error[duplicate-id]: action 'same' is also defined at"
        " rules/one.yaml:2:9; expected each action id once"
    ]


def test_segment_cycles_are_errors_at_each_member(tmp_path: Path) -> None:
    segments = (
        "segments:\n"
        "  - id: a\n    when: segment.b\n"
        "  - id: b\n    when: segment.c and profile.vip\n"
        "  - id: c\n    when: segment.a\n"
        "  - id: d\n    when: segment.a\n"
    )
    found = errors(tmp_path, {"base.yaml": BASE + segments, "a.yaml": "actions:\n" + action("x")})
    cycle = [e for e in found if "segment-cycle" in e]
    assert len(cycle) == 3
    assert all("a -> b -> c -> a" in e for e in cycle)


def test_segments_are_stratified_by_dependency(tmp_path: Path) -> None:
    segments = (
        "segments:\n"
        "  - id: top\n    when: segment.mid and profile.vip\n"
        "  - id: base\n    when: profile.age >= 18\n"
        "  - id: mid\n    when: segment.base and profile.income > 100\n"
    )
    ruleset = load(tmp_path, {"base.yaml": BASE + segments, "a.yaml": "actions:\n" + action("x")})
    strata = {r.segment: r.stratum for r in ruleset.rules if r.kind == "segment"}
    assert strata == {"base": 0, "mid": 1, "top": 2}


def test_fallback_needs_a_treatment_for_its_channel(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        {
            "base.yaml": BASE + "fallbacks:\n  - channel: web\n    action: a1\n",
            "a.yaml": "actions:\n" + action("a1", channels=("email",)),
        },
    )
    assert len(found) == 1 and "no treatment for channel 'web'" in found[0]


def test_values_outside_an_enum_are_rejected(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        {
            "base.yaml": BASE,
            "a.yaml": "actions:\n" + action("a1", extra='eligible: profile.region == "nort"'),
        },
    )
    assert len(found) == 1 and "did you mean 'north'?" in found[0]


def test_missing_sections_are_named(tmp_path: Path) -> None:
    found = errors(tmp_path, {"only.yaml": "profile:\n  age: int\n"})
    assert {e.split("`")[1] for e in found} == {"lifecycle_stages", "channels", "actions"}


def test_a_directory_without_rule_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuleSetError, match="no rule files"):
        load_ruleset(tmp_path / "empty")


def test_tests_and_examples_directories_are_not_rule_files(tmp_path: Path) -> None:
    ruleset = load(
        tmp_path,
        {
            "base.yaml": BASE,
            "a.yaml": "actions:\n" + action("a1"),
            "tests/scenarios.yaml": "scenarios: []\n",
            "examples/not_rules.yaml": "garbage: [\n",
        },
    )
    assert ruleset.files == ("rules/a.yaml", "rules/base.yaml")


def test_a_file_that_does_not_parse_does_not_cascade(tmp_path: Path) -> None:
    """Names it may define are not reported unknown everywhere else: one error, its own."""
    broken_base = BASE.replace(
        "  age: {type: int, min: 0, max: 130, required: true}", "  age: {type: int, max: 130: 5}"
    )
    found = errors(
        tmp_path,
        {
            "base.yaml": broken_base,
            "actions.yaml": "actions:\n"
            + action("a1", extra="eligible: profile.age >= 18 and segment.nowhere"),
        },
    )
    assert len(found) == 1, found
    assert found[0].startswith("rules/base.yaml:3:") and "YAML syntax" in found[0]


def test_numbers_too_large_to_compare_exactly_are_rejected(tmp_path: Path) -> None:
    """Regression: 1e20 as an integer literal overflowed durable_rules' int64 and flipped `>`."""
    found = errors(
        tmp_path,
        {
            "base.yaml": BASE,
            "a.yaml": "actions:\n"
            + action("a1", extra="eligible: profile.income > 100000000000000000000"),
        },
    )
    assert len(found) == 1
    assert "too large to compare exactly" in found[0]
    assert "expected a number between -9007199254740992 and 9007199254740992" in found[0]


def test_an_empty_touchpoint_channel_is_rejected(tmp_path: Path) -> None:
    """An unset channel means "outbound": comparing with "" could never hold."""
    found = errors(
        tmp_path,
        {
            "base.yaml": BASE,
            "a.yaml": "actions:\n" + action("a1", extra="eligible: touchpoint.channel == ''"),
        },
    )
    assert len(found) == 1
    assert "'' is not a possible value of touchpoint.channel" in found[0]
    assert '"outbound"' in found[0]
