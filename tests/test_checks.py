"""Static checks (nba.authoring.checks): each finding's code, message, file:line, near misses."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from nba.authoring.checks import Checker, check
from nba.errors import RuleError, Severity
from nba.ruleset.loader import load_ruleset
from nba.ruleset.ruleset import RuleSet
from tests.helpers import BASE, action, write_rules

SEGMENTS = """
segments:
  - id: minor
    when: profile.age < 18
  - id: low_income
    when: profile.income < 1000
"""
# Codes every small set below gets for attributes or segments it does not happen to use.
UNUSED = ("unused-attribute", "unused-segment")


def load(tmp_path: Path, files: dict[str, str]) -> RuleSet:
    return load_ruleset(write_rules(tmp_path / "rules", files), display_root="rules")


def findings(tmp_path: Path, files: dict[str, str], *codes: str) -> list[RuleError]:
    """What check finds, limited to `codes` (or everything but the unused-name warnings)."""
    found = check(load(tmp_path, files))
    return [e for e in found if (e.code in codes if codes else e.code not in UNUSED)]


def texts(found: list[RuleError]) -> list[str]:
    return [str(e) for e in found]


def where(files: dict[str, str], name: str, needle: str) -> str:
    """`rules/<name>:<line>:<column>` of the first `needle` in a file as write_rules writes it."""
    text = textwrap.dedent(files[name]).lstrip("\n")
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return f"rules/{name}:{number}:{line.index(needle) + 1}"
    raise AssertionError(f"{needle!r} not in {name}")


def one_action(condition: str, base: str = BASE) -> dict[str, str]:
    """One action eligible when `condition` (single-quoted: it may start with a quote)."""
    actions = "actions:\n" + action("a1", extra=f"eligible: '{condition}'")
    return {"base.yaml": base, "actions.yaml": actions}


# ---------------------------------------------------------------------------- never-true


@pytest.mark.parametrize(
    ("condition", "why"),
    [
        (
            "profile.age < 18 and profile.age > 65",
            "`profile.age < 18` and `profile.age > 65` cannot both hold",
        ),
        (
            "profile.age > 200",
            "`profile.age > 200` can never hold:"
            " profile.age is declared {int, min 0, max 130, required}",
        ),
        (
            "profile.age > 17 and profile.age < 18",
            "`profile.age > 17` and `profile.age < 18` cannot both hold:"
            " profile.age is declared {int, min 0, max 130, required}",
        ),
        (
            'lifecycle == "active" and lifecycle == "at_risk"',
            '`lifecycle == "active"` and `lifecycle == "at_risk"` cannot both hold',
        ),
        (
            "segment.minor and not segment.minor",
            "`profile.age < 18` (in segment.minor) and `not (profile.age < 18)`"
            " (in segment.minor) cannot both hold",
        ),
        (
            "dismissals(30d) < 0",
            "`dismissals(30d) < 0` can never hold: a count is a whole number, 0 or more",
        ),
        (
            'profile.region in ["north"] and profile.region != "north"',
            '`profile.region == "north"` and `profile.region != "north"` cannot both hold',
        ),
        (
            "not (profile.income > 5) and profile.income > 10",
            "`not (profile.income > 5)` and `profile.income > 10` cannot both hold",
        ),
        (
            '"card" in profile.products and not ("card" in profile.products)',
            '`"card" in profile.products` and `not ("card" in profile.products)` cannot both',
        ),
        ("false", "it is literally false"),
        (
            "(profile.income > 10 and profile.income < 5) or (profile.vip and not profile.vip)",
            "none of its alternatives can hold: (1) `profile.income > 10` and"
            " `profile.income < 5` cannot both hold; (2) `profile.vip` and `not profile.vip`"
            " cannot both hold",
        ),
    ],
)
def test_never_true_conditions_are_errors_saying_why(
    tmp_path: Path, condition: str, why: str
) -> None:
    files = one_action(condition, base=BASE + SEGMENTS)
    found = findings(tmp_path, files)
    assert [e.code for e in found] == ["never-true"], texts(found)
    error = found[0]
    assert error.severity == Severity.ERROR
    assert str(error.location) == where(files, "actions.yaml", f"'{condition}")
    assert error.message.startswith(f"rule 'a1.eligible' can never be true: {why}")
    assert "so action 'a1' can never be recommended; expected a condition" in error.message


@pytest.mark.parametrize(
    "condition",
    [
        "profile.age < 18 or profile.age > 65",
        "not (profile.income > 5) and profile.income < 3",
        "not (profile.income > 5) and not (profile.income <= 5)",  # income not sent
        "profile.income > 0.5 and profile.income < 1",  # a number, not an int
        "profile.age >= 130",  # the declared max itself
        'profile.region != "north"',
        'not ("card" in profile.products) and not ("loan" in profile.products)',
        'lifecycle in ["active", "at_risk"] and lifecycle != "active"',
        'touchpoint.channel == "outbound"',
        'touchpoint.placement == ""',
        "dismissals(30d) == 0 and impressions(7d, action=this) >= 3",
        "segment.minor and not segment.low_income or profile.vip",
        "profile.vip == true or profile.vip == false",  # not always true: vip may be missing
        "profile.income >= 0",  # likewise: income is optional
    ],
)
def test_near_misses_are_not_flagged(tmp_path: Path, condition: str) -> None:
    found = findings(tmp_path, one_action(condition, base=BASE + SEGMENTS))
    assert found == [], texts(found)


def test_never_true_rules_of_every_kind(tmp_path: Path) -> None:
    files = {
        "base.yaml": BASE + "segments:\n  - id: odd\n    when: profile.vip and not profile.vip\n",
        "actions.yaml": "actions:\n" + action("a1", extra="eligible: not segment.odd"),
        "rules.yaml": """
            rules:
              - id: never_suppress
                when: profile.income < 0
                suppress: {actions: [a1]}
              - id: never_weight
                when: lifecycle == "prospect" and lifecycle == "active" or profile.age > 999
                weight: {actions: [a1], factor: 2}
        """,
    }
    found = findings(tmp_path, files, "never-true")
    assert [(str(e.location), e.message.split(":")[0]) for e in found] == [
        (where(files, "base.yaml", "profile.vip and"), "segment 'odd' can never be true"),
        (
            where(files, "rules.yaml", "profile.income < 0"),
            "suppression 'never_suppress' can never be true",
        ),
        (
            where(files, "rules.yaml", 'lifecycle == "prospect"'),
            "weight rule 'never_weight' can never be true",
        ),
    ]
    assert "so every rule that needs it is dead too" in found[0].message
    assert (
        "`profile.income < 0` can never hold: profile.income is declared"
        " {number, min 0, optional}, so it never suppresses anything" in found[1].message
    )
    assert "so its factor 2 never applies" in found[2].message


# ---------------------------------------------------------------------------- always-true


def test_always_true_engagement_rule_is_a_warning_naming_the_schema(tmp_path: Path) -> None:
    files = one_action("profile.age >= 0")
    found = findings(tmp_path, files)
    at = where(files, "actions.yaml", "'profile.age >= 0")
    assert texts(found) == [
        f"{at}: warning[always-true]: rule"
        " 'a1.eligible' is always true because profile.age is declared {int, min 0, max 130,"
        " required}: it never excludes anything; expected a condition that can be false"
        " (remove it, or tighten it)"
    ]


def test_a_tautology_is_always_true_but_a_literal_true_is_left_alone(tmp_path: Path) -> None:
    found = findings(tmp_path / "taut", one_action("profile.vip or not profile.vip"))
    assert [e.code for e in found] == ["always-true"]
    assert "is always true (a tautology)" in found[0].message
    assert findings(tmp_path / "lit", one_action("true")) == []


def test_always_true_suppression_is_an_error_naming_its_targets(tmp_path: Path) -> None:
    files = {
        "base.yaml": BASE,
        "actions.yaml": "actions:\n" + action("a1", group="loans") + action("a2"),
        "rules.yaml": """
            rules:
              - id: every_time
                when: profile.age <= 130
                suppress: {groups: [loans]}
        """,
    }
    found = findings(tmp_path, files)
    assert texts(found) == [
        f"{where(files, 'rules.yaml', 'profile.age <= 130')}: error[always-true-suppression]:"
        " suppression 'every_time' is always true because profile.age is declared {int, min 0,"
        " max 130, required}, so it suppresses a1 in every decision and they can never be"
        " recommended; expected a condition that holds only for some requests"
    ]


# ---------------------------------------------------------------------------- unreachable actions


def test_engagement_rules_that_contradict_each_other(tmp_path: Path) -> None:
    files = {
        "base.yaml": BASE,
        "actions.yaml": "actions:\n"
        + action(
            "a1",
            extra="""
                eligible:
                  - id: rich
                    when: profile.income >= 5000
                applicable:
                  - id: poor
                    when: profile.income < 1000
            """,
        ),
    }
    found = findings(tmp_path, files)
    rich = where(files, "actions.yaml", "profile.income >= 5000")
    assert texts(found) == [
        f"{where(files, 'actions.yaml', 'profile.income < 1000')}: error[unreachable-action]:"
        f" rule 'a1.applicable.poor' can never hold together with rule 'a1.eligible.rich' at"
        f" {rich}: `profile.income >= 5000` and `profile.income < 1000` cannot both hold, so"
        " action 'a1' can never be recommended; expected engagement rules a customer can meet"
        " together"
    ]


def test_eligible_only_when_suppressed(tmp_path: Path) -> None:
    files = {
        "base.yaml": BASE,
        "actions.yaml": "actions:\n"
        + action("a1", group="loans", extra='eligible: lifecycle == "prospect"')
        + action("a2", group="loans", extra='eligible: lifecycle in ["prospect", "active"]'),
        "rules.yaml": """
            rules:
              - id: no_loans
                when: lifecycle in ["prospect", "at_risk"]
                suppress: {groups: [loans]}
        """,
    }
    found = findings(tmp_path, files)
    assert texts(found) == [
        f"{where(files, 'actions.yaml', 'lifecycle == ')}: error[eligible-and-suppressed]:"
        " action 'a1' can never be recommended: whenever its rule 'a1.eligible' holds,"
        f" suppression 'no_loans' at {where(files, 'rules.yaml', 'lifecycle in')} holds too and"
        " suppresses it; expected the suppression to cover only some of the cases where it is"
        " eligible"
    ]


def test_suppressions_that_together_cover_every_eligible_case(tmp_path: Path) -> None:
    files = {
        "base.yaml": BASE,
        "actions.yaml": "actions:\n"
        + action("a1", extra='eligible: lifecycle != "prospect"')
        + action("a2", group="loans", extra='eligible: lifecycle != "prospect"'),
        "rules.yaml": """
            rules:
              - id: not_active
                when: lifecycle == "active"
                suppress: {groups: [cards, loans]}
              - id: not_at_risk
                when: lifecycle == "at_risk"
                suppress: {groups: [cards]}
        """,
    }
    found = findings(tmp_path, files)
    assert [e.code for e in found] == ["unreachable-action"], texts(found)
    assert str(found[0].location) == where(files, "actions.yaml", "id: a1")
    active = where(files, "rules.yaml", 'lifecycle == "active"')
    at_risk = where(files, "rules.yaml", 'lifecycle == "at_risk"')
    assert found[0].message == (
        "action 'a1' can never be recommended: whenever its engagement rules hold, one of the"
        f" suppressions 'not_active' at {active}, 'not_at_risk' at {at_risk} holds;"
        " expected some eligible case that no suppression covers"
    )


def test_action_eligible_only_where_it_has_no_treatment(tmp_path: Path) -> None:
    outbound_or_email = 'eligible: touchpoint.channel in ["outbound", "email"]'
    files = {
        "base.yaml": BASE,
        "actions.yaml": "actions:\n"
        + action("a1", channels=("web",), extra='eligible: touchpoint.channel == "call_center"')
        + action("a2", channels=("web",), extra=outbound_or_email)
        # call_center goes both ways: an outbound decision may use it.
        + action("ok1", channels=("web", "call_center"), extra=outbound_or_email)
        + action("ok2", channels=("call_center",), extra='eligible: touchpoint.channel != "web"')
        + action(
            "ok3", channels=("postal_mail",), extra='eligible: touchpoint.channel == "outbound"'
        ),
    }
    found = findings(tmp_path, files)
    assert texts(found) == [
        f"{where(files, 'actions.yaml', 'id: a1')}: error[unreachable-action]: action 'a1'"
        " can never be recommended: its rules hold only when touchpoint.channel is"
        ' "call_center", but it has treatments only for "web"; expected a treatment for a'
        " channel its rules allow",
        f"{where(files, 'actions.yaml', 'id: a2')}: error[unreachable-action]: action 'a2'"
        ' can never be recommended: its rules hold only when touchpoint.channel is "email",'
        ' "outbound", but it has treatments only for "web" (an outbound decision needs a'
        " treatment on an outbound channel); expected a treatment for a channel its rules"
        " allow",
    ]


def test_fallback_suppressed_wherever_it_is_given(tmp_path: Path) -> None:
    fallbacks = """
        fallbacks:
          - channel: web
            action: svc
          - channel: call_center
            action: svc
    """
    files = {
        "base.yaml": BASE + textwrap.dedent(fallbacks),
        "actions.yaml": "actions:\n" + action("svc", purpose="service", group="service"),
        "rules.yaml": """
            rules:
              - id: quiet_web
                when: touchpoint.channel == "web"
                suppress: {purposes: [service]}
              - id: vip_calls
                when: touchpoint.channel == "call_center" and profile.vip
                suppress: {purposes: [service]}
        """,
    }
    found = findings(tmp_path, files)
    assert texts(found) == [
        f"{where(files, 'base.yaml', 'channel: web')}: error[fallback-suppressed]: fallback"
        " action 'svc' for touchpoint.channel web is never given: suppression 'quiet_web' at"
        f" {where(files, 'rules.yaml', 'touchpoint.channel == ')} always holds there and"
        " suppresses it; expected a fallback action no suppression covers"
    ]


# ---------------------------------------------------------------------------- redundancy


def test_shadowed_and_duplicated_suppressions(tmp_path: Path) -> None:
    files = {
        "base.yaml": BASE,
        "actions.yaml": "actions:\n" + action("a1") + action("l1", group="loans"),
        "rules.yaml": """
            rules:
              - id: vip_no_cards
                when: profile.vip
                suppress: {groups: [cards, loans]}
              - id: rich_vip_no_cards
                when: profile.vip and profile.income > 100
                suppress: {groups: [cards]}
              - id: same_again
                when: profile.vip == true
                suppress: {groups: [loans, cards]}
              - id: other_targets
                when: profile.vip and profile.income > 5
                suppress: {groups: [loans]}
              - id: wider_not_narrower
                when: profile.vip or profile.income > 100
                suppress: {groups: [cards]}
        """,
    }
    found = findings(tmp_path, files)
    first = "rules/rules.yaml:3:11"
    assert texts(found) == [
        "rules/rules.yaml:6:11: warning[shadowed-rule]: suppression 'rich_vip_no_cards' is"
        f" shadowed by suppression 'vip_no_cards' at {first}: whenever it holds, 'vip_no_cards'"
        " holds too and suppresses the same actions (and more), so it never changes a decision;"
        " expected a condition 'vip_no_cards' does not already cover (or remove it)",
        f"rules/rules.yaml:9:11: warning[duplicate-rule]: suppression 'same_again' duplicates"
        f" suppression 'vip_no_cards' at {first}: equivalent conditions and the same effect;"
        " expected each rule once (remove one)",
        "rules/rules.yaml:12:11: warning[shadowed-rule]: suppression 'other_targets' is shadowed"
        f" by suppression 'vip_no_cards' at {first}: whenever it holds, 'vip_no_cards' holds too"
        " and suppresses the same actions (and more), so it never changes a decision; expected"
        " a condition 'vip_no_cards' does not already cover (or remove it)",
    ]


def test_duplicate_weights_and_engagement_rules(tmp_path: Path) -> None:
    files = {
        "base.yaml": BASE,
        "actions.yaml": "actions:\n"
        + action(
            "a1",
            extra="""
                eligible:
                  - id: one
                    when: profile.vip and profile.income > 10
                  - id: two
                    when: profile.income > 10 and profile.vip
                suitable:
                  - id: wide
                    when: profile.income > 5
            """,
        ),
        "rules.yaml": """
            rules:
              - id: w1
                when: touchpoint.intent == "x" or touchpoint.intent == "y"
                weight: {groups: [cards], factor: 2}
              - id: w2
                when: touchpoint.intent in ["y", "x"]
                weight: {actions: [a1], factor: 2}
              - id: w3
                when: touchpoint.intent == "x"
                weight: {groups: [cards], factor: 2}
        """,
    }
    found = findings(tmp_path, files)
    one = where(files, "actions.yaml", "profile.vip and")
    assert texts(found) == [
        f"{where(files, 'actions.yaml', 'profile.income > 10 and')}: warning[duplicate-rule]:"
        f" rule 'a1.eligible.two' duplicates rule 'a1.eligible.one' at {one}: equivalent"
        " conditions and the same effect; expected each rule once (remove one)",
        f"{where(files, 'actions.yaml', 'profile.income > 5')}: warning[shadowed-rule]: rule"
        f" 'a1.suitable.wide' is implied by rule 'a1.eligible.one' at {one}: whenever"
        " 'a1.eligible.one' holds it holds too, so it never excludes action 'a1' on its own;"
        " expected a condition that adds something (or remove it)",
        "rules/rules.yaml:6:11: warning[duplicate-rule]: weight rule 'w2' duplicates weight rule"
        " 'w1' at rules/rules.yaml:3:11: equivalent conditions and the same effect, so both fire"
        " and the factor applies twice (4 in all); expected each rule once (remove one)",
    ]


def test_equivalent_segments_and_a_missing_value_near_miss(tmp_path: Path) -> None:
    segments = """
        segments:
          - id: minor
            when: profile.age < 18
          - id: young
            when: not (profile.age >= 18)
          - id: low_income
            when: profile.income < 1000
          - id: not_high_income
            when: not (profile.income >= 1000)
        rules:
          - id: uses_them
            when: segment.minor or segment.young or segment.low_income or segment.not_high_income
            weight: {all: true, factor: 2}
    """
    files = {
        "base.yaml": BASE + textwrap.dedent(segments),
        "actions.yaml": "actions:\n" + action("a1"),
    }
    found = findings(tmp_path, files)
    # Age is required, so "not >= 18" is "< 18"; income may be missing, where only the
    # negated form holds: those two segments differ.
    minor = where(files, "base.yaml", "profile.age <")
    assert texts(found) == [
        f"{where(files, 'base.yaml', 'not (profile.age')}: warning[duplicate-segment]: segment"
        f" 'young' is equivalent to segment 'minor' at {minor}:"
        " they hold for exactly the same requests; expected one segment per meaning (use one of"
        " them)"
    ]


# ---------------------------------------------------------------------------- weights, targets


def test_no_op_weights_levers_and_empty_targets(tmp_path: Path) -> None:
    files = {
        "base.yaml": BASE + "levers:\n  - id: flat\n    groups: [cards]\n    factor: 1\n",
        "actions.yaml": "actions:\n" + action("a1", extra='eligible: lifecycle == "active"'),
        "rules.yaml": """
            rules:
              - id: flat_weight
                when: profile.vip
                weight: {groups: [cards], factor: 1.0}
              - id: prospects_only
                when: lifecycle == "prospect"
                weight: {actions: [a1], factor: 2}
              - id: no_service_actions
                when: profile.vip
                suppress: {purposes: [service]}
        """,
    }
    found = findings(tmp_path, files)
    assert [(e.code, str(e.location)) for e in found] == [
        ("no-op-weight", where(files, "base.yaml", "id: flat")),
        ("no-op-weight", "rules/rules.yaml:3:11"),
        ("weight-never-applies", "rules/rules.yaml:6:11"),
        ("empty-targets", "rules/rules.yaml:9:11"),
    ]
    assert found[0].message.startswith("lever 'flat' has factor 1, which changes no score")
    assert found[1].message.startswith("weight rule 'flat_weight' has factor 1")
    assert found[2].message.startswith(
        "weight rule 'prospects_only' never changes a recommendation: whenever it holds, none"
        " of the actions it targets (a1) can be recommended"
    )
    assert found[3].message.startswith("suppression 'no_service_actions' targets no action")


# ---------------------------------------------------------------------------- unused names


def test_unused_segments_and_attributes(tmp_path: Path) -> None:
    segments = """
        segments:
          - id: base_seg
            when: profile.vip
          - id: built_on_it
            when: segment.base_seg and profile.income > 5
          - id: used
            when: profile.age > 30
    """
    files = {
        "base.yaml": BASE + textwrap.dedent(segments),
        "actions.yaml": "actions:\n"
        + action("a1", extra='eligible: segment.used or "card" in profile.products'),
    }
    found = findings(tmp_path, files, *UNUSED)
    assert [(e.code, str(e.location)) for e in found] == [
        ("unused-attribute", where(files, "base.yaml", "region:")),
        ("unused-attribute", where(files, "base.yaml", "nickname:")),
        ("unused-segment", where(files, "base.yaml", "id: base_seg")),
        ("unused-segment", where(files, "base.yaml", "id: built_on_it")),
    ]
    assert found[0].message == (
        "profile attribute 'region' is declared but no rule uses it; expected a rule that uses"
        " it, or remove it from the profile schema"
    )
    assert all(e.severity == Severity.WARNING for e in found)
    assert 'it is used only by segment "built_on_it", which nothing uses either' in found[2].message
    assert "no rule or segment refers to segment.built_on_it" in found[3].message
    # The loaded set keeps where each attribute is declared, however it was loaded.
    again = [e for e in check(load(tmp_path / "again", files)) if e.code == "unused-attribute"]
    assert [e.location for e in again] == [e.location for e in found[:2]]


# ---------------------------------------------------------------------------- policies


def test_policy_problems(tmp_path: Path) -> None:
    policies = """
        policies:
          caps:
            - id: no_email
              max: 0
              within: 7d
              channel: email
            - id: service_web
              max: 3
              within: 7d
              channel: web
              purpose: service
          cooldowns:
            - id: service_pause
              outcome: dismiss
              within: 7d
              pause: 7d
              purpose: service
          quiet_hours:
            - id: zero_length
              channels: [email]
              start: "22:00"
              end: "22:00"
            - id: web_nights
              channels: [web, call_center]
              start: "21:00"
              end: "08:00"
    """
    files = {
        "base.yaml": BASE + textwrap.dedent(policies),
        "actions.yaml": "actions:\n" + action("a1") + action("e1", channels=("email",)),
    }
    found = findings(tmp_path, files)
    assert [(e.code, str(e.location)) for e in found] == [
        ("cap-blocks-all", where(files, "base.yaml", "id: no_email")),
        ("cap-covers-nothing", where(files, "base.yaml", "id: service_web")),
        ("cooldown-covers-nothing", where(files, "base.yaml", "id: service_pause")),
        ("quiet-hours-empty", where(files, "base.yaml", "id: zero_length")),
        ("quiet-hours-no-effect", where(files, "base.yaml", "id: web_nights")),
    ]
    assert found[0].message == (
        "cap 'no_email' has max 0, so it blocks everything it covers in every decision: a1 on"
        " email; e1 on email; e1 can never be recommended at all (every channel they have is"
        " capped); expected a max of at least 1 (or remove the treatments or the cap)"
    )
    assert 'name inbound-only channel(s) "web"' in found[4].message
    assert all(e.severity == Severity.WARNING for e in found)


# ---------------------------------------------------------------------------- the whole


def test_findings_are_sorted_by_location_across_files(tmp_path: Path) -> None:
    files = {
        "base.yaml": BASE + "segments:\n  - id: odd\n    when: profile.vip and not profile.vip\n",
        "actions.yaml": "actions:\n"
        + action("a1", extra="eligible: profile.age > 500")
        + action("a2", extra="eligible: profile.age < 0"),
    }
    found = check(load(tmp_path, files))
    keys = [e.sort_key() for e in found]
    assert keys == sorted(keys)
    assert [e.location.file for e in found if e.location][:2] == ["rules/actions.yaml"] * 2


def test_search_gives_up_quietly_beyond_its_budget(tmp_path: Path) -> None:
    # Every assignment of three flags is excluded by one clause: impossible, but only a
    # search through the branches shows it.
    flags = ("profile.vip", '"card" in profile.products', '"loan" in profile.products')
    clauses = []
    for mask in range(8):
        parts = [f if mask >> i & 1 else f"not ({f})" for i, f in enumerate(flags)]
        clauses.append("(" + " or ".join(parts) + ")")
    ruleset = load(tmp_path, one_action(" and ".join(clauses)))
    assert [e.code for e in check(ruleset) if e.code == "never-true"] == ["never-true"]
    checker = Checker(ruleset)
    checker.solver.budget = 2
    assert [e.code for e in checker.run() if e.severity == Severity.ERROR] == []
    assert checker.solver.gave_up > 0


def test_bundled_rule_set_has_no_errors(bank: RuleSet) -> None:
    started = time.perf_counter()
    found = check(bank)
    elapsed = time.perf_counter() - started
    errors = [str(e) for e in found if e.severity == Severity.ERROR]
    assert errors == []
    assert elapsed < 5, f"check took {elapsed:.2f} s on the bundled set"
