"""The durable_rules adapter: each guard against a known sharp edge, and its semantics."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from nba.authoring.strategies import struct_of
from nba.engine.durable import (
    BRANCH_BUDGET,
    DurableEngine,
    branches,
    json_text,
    json_value,
    plan_chunks,
    to_nnf,
)
from nba.engine.reference import ReferenceEngine
from nba.errors import RuleSetError
from nba.pipeline.decider import Decider
from nba.pipeline.types import DecisionRequest
from nba.ruleset.loader import load_ruleset
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb
from tests.helpers import BASE, action, write_rules


def ruleset_with(tmp_path: Path, segments: str = "", rules: str = "", actions: str = "") -> RuleSet:
    files = {
        "base.yaml": BASE + (f"segments:\n{segments}" if segments else ""),
        "actions.yaml": "actions:\n" + (actions or action("a1")),
    }
    if rules:
        files["rules.yaml"] = f"rules:\n{rules}"
    return load_ruleset(write_rules(tmp_path / "rules", files), display_root="rules")


def request_for(ruleset: RuleSet, **profile: object) -> DecisionRequest:
    message = pb.DecideRequest(customer_id="c1", lifecycle_stage="active")
    message.profile.CopyFrom(struct_of(profile))
    message.touchpoint.channel = "web"
    return Decider(ruleset, "reference").validator.validate(message, now=1.8e9)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-05, "0.00001"),
        (2.5e-07, "0.00000025"),
        (1e20, "100000000000000000000.0"),
        (0.1, "0.1"),
        (3, "3"),
        (True, "true"),
        (False, "false"),
        ('a "quoted" café', '"a \\"quoted\\" café"'),
    ],
)
def test_json_values_never_use_exponents(value: object, text: str) -> None:
    assert json_value(value) == text
    assert json.loads(text) == value


def test_rule_definitions_with_tiny_literals_compile(tmp_path: Path) -> None:
    ruleset = ruleset_with(tmp_path, segments="  - id: tiny\n    when: profile.income < 0.00001\n")
    engine = DurableEngine(ruleset)
    assert "0.00001" in json_text({"x": 0.00001})
    fired = {r.id for r in engine.fire(request_for(ruleset, age=30, income=0.000001))}
    assert "tiny" in fired
    fired = {r.id for r in engine.fire(request_for(ruleset, age=30, income=0.5))}
    assert "tiny" not in fired


@pytest.mark.parametrize(
    ("condition", "profile", "holds"),
    [
        ("profile.income > 10", {"age": 30}, False),
        ("not (profile.income > 10)", {"age": 30}, True),
        ("profile.income <= 10", {"age": 30}, False),
        ('profile.region != "north"', {"age": 30}, False),
        ('not (profile.region == "north")', {"age": 30}, True),
        ('not (profile.region == "north")', {"age": 30, "region": "north"}, False),
        ('"card" in profile.products', {"age": 30}, False),
        ('not ("card" in profile.products)', {"age": 30}, True),
        ('not ("card" in profile.products)', {"age": 30, "products": ["card"]}, False),
        ('profile.region not in ["north"]', {"age": 30}, True),
        ("not (profile.vip or profile.income > 5)", {"age": 30, "income": 1}, True),
        ("not (profile.vip and profile.income > 5)", {"age": 30, "vip": True}, True),
        ("profile.age between 18 and 30", {"age": 30}, True),
        ("profile.age between 18 and 30", {"age": 31}, False),
        ("profile.nickname == 'O\\'Neil'", {"age": 1, "nickname": "O'Neil"}, True),
        ("true", {"age": 1}, True),
        ("false or profile.age > 0", {"age": 1}, True),
    ],
)
def test_missing_values_read_false_and_negation_flips(
    tmp_path: Path, condition: str, profile: dict[str, object], holds: bool
) -> None:
    """A test on an attribute the request did not send is false; `not` of it is true."""
    segment = f"  - id: s\n    when: {json.dumps(condition)}\n"
    ruleset = ruleset_with(tmp_path, segments=segment)
    request = request_for(ruleset, **profile)
    durable = "s" in {r.id for r in DurableEngine(ruleset).fire(request)}
    reference = "s" in {r.id for r in ReferenceEngine(ruleset).fire(request)}
    assert (durable, reference) == (holds, holds)


def test_a_rule_that_can_never_hold_is_not_compiled(tmp_path: Path) -> None:
    ruleset = ruleset_with(tmp_path, segments="  - id: never\n    when: false and profile.vip\n")
    engine = DurableEngine(ruleset)
    assert [r.id for r in engine.never] == ["never"]


def test_or_branches_fire_a_rule_once(tmp_path: Path) -> None:
    segment = "  - id: any\n    when: profile.vip or profile.age > 1 or profile.income > 1\n"
    ruleset = ruleset_with(tmp_path, segments=segment)
    fired = DurableEngine(ruleset).fire(request_for(ruleset, age=30, vip=True, income=9))
    assert [r.id for r in fired].count("any") == 1


def test_branch_count_sees_exclusive_alternatives() -> None:
    from nba.ruleset.conditions import parse
    from nba.ruleset.model import AttributeSpec, AttributeType
    from nba.ruleset.resolve import Scope, resolve

    scope = Scope(
        attributes={
            "x": AttributeSpec(type=AttributeType.INT),
            "e": AttributeSpec(type=AttributeType.ENUM, values=("a", "b", "c")),
        },
        stages=("s",),
        channels=("web",),
        segments=frozenset(),
        actions=frozenset(),
        groups=frozenset(),
    )

    def count(text: str) -> int:
        return branches(to_nnf(resolve(parse(text), scope)))

    assert count('profile.e in ["a", "b", "c"]') == 1  # one value matches at most one
    assert count("not (profile.x > 3)") == 1  # x <= 3, or x missing: exclusive
    assert count("profile.x > 3 or profile.x < 10") == 2
    assert count('(profile.x > 1 or profile.x > 2) and (profile.e == "a" or profile.x > 5)') == 4


def test_many_rules_on_one_fact_are_split_below_the_engine_limit(tmp_path: Path) -> None:
    """200 rules that all match one fact would be error 303 in a single ruleset."""
    segments = "".join(f"  - id: s{i}\n    when: profile.income > {i}\n" for i in range(200))
    ruleset = ruleset_with(tmp_path, segments=segments)
    engine = DurableEngine(ruleset)
    assert engine.chunk_count >= 200 // BRANCH_BUDGET
    fired = {r.id for r in engine.fire(request_for(ruleset, age=60, income=1000))}
    assert fired >= {f"s{i}" for i in range(200)}


def test_rules_written_alike_fire_once_for_all(tmp_path: Path) -> None:
    """Identical conditions share one durable rule; each rule still reports its firing."""
    segments = "".join(f"  - id: s{i}\n    when: profile.age >= 18\n" for i in range(100))
    ruleset = ruleset_with(tmp_path, segments=segments)
    engine = DurableEngine(ruleset)
    assert engine.chunk_count == 1
    fired = [r.id for r in engine.fire(request_for(ruleset, age=30))]
    assert sorted(fired) == sorted(f"s{i}" for i in range(100))
    assert engine.fire(request_for(ruleset, age=3)) == []


def test_chunks_respect_branch_and_property_budgets(tmp_path: Path) -> None:
    segments = "".join(
        f"  - id: s{i}\n    when: profile.vip or profile.age > {i} or profile.income > {i}\n"
        for i in range(40)
    )
    ruleset = ruleset_with(tmp_path, segments=segments)
    from nba.engine.durable import PROPERTY_BUDGET, compile_rule

    compiled = [c for r in ruleset.rules if (c := compile_rule(r)) is not None]
    assert sum(c.branches for c in compiled) == 40 * 3
    chunks = plan_chunks(compiled)
    assert len(chunks) == 3  # 120 branches, at most 48 per chunk, 3 per rule
    assert all(sum(c.branches for c in chunk) <= BRANCH_BUDGET for chunk in chunks)
    assert all(len(set().union(*(c.keys for c in chunk))) <= PROPERTY_BUDGET for chunk in chunks)
    fired = DurableEngine(ruleset).fire(request_for(ruleset, age=100, vip=True, income=100))
    assert {r.id for r in fired} >= {f"s{i}" for i in range(40)}


@pytest.mark.parametrize(("alternatives", "compiles"), [(13, True), (14, False)])
def test_a_condition_too_long_for_the_engine_is_a_located_error(
    tmp_path: Path, alternatives: int, compiles: bool
) -> None:
    """durable_rules fails with error 113 once a condition needs 32 expressions."""
    cond = " or ".join(
        f"(profile.age == {i} and profile.income > {i})" for i in range(alternatives)
    )
    ruleset = ruleset_with(tmp_path, segments=f"  - id: long\n    when: '{cond}'\n")
    if compiles:
        engine = DurableEngine(ruleset)
        assert "long" in {r.id for r in engine.fire(request_for(ruleset, age=3, income=50))}
        return
    with pytest.raises(RuleSetError) as caught:
        DurableEngine(ruleset)
    (error,) = caught.value.errors
    assert str(error.location) == "rules/base.yaml:21:11"
    assert "needs 32 engine expressions; expected at most 31" in error.message


def test_many_alternatives_exceed_the_branch_budget(tmp_path: Path) -> None:
    ors = " or ".join(f"profile.age > {i}" for i in range(BRANCH_BUDGET + 1))
    ruleset = ruleset_with(tmp_path, segments=f"  - id: wide\n    when: {ors}\n")
    with pytest.raises(RuleSetError) as caught:
        DurableEngine(ruleset)
    (error,) = caught.value.errors
    assert f"{BRANCH_BUDGET + 1} alternative branches" in error.message


def test_a_condition_matching_too_many_branches_is_a_located_error(tmp_path: Path) -> None:
    """Few expressions, but 2**6 branches could match one fact at once (error 303)."""
    pairs = [
        "profile.vip",
        "profile.age > 1",
        "profile.income > 1",
        'profile.region == "north"',
        '"card" in profile.products',
        '"loan" in profile.products',
        'profile.nickname == "x"',
    ]
    condition = " and ".join(f"({a} or {b})" for a, b in itertools.pairwise(pairs))
    ruleset = ruleset_with(tmp_path, segments=f"  - id: wide\n    when: '{condition}'\n")
    with pytest.raises(RuleSetError) as caught:
        DurableEngine(ruleset)
    (error,) = caught.value.errors
    assert "64 alternative branches that can hold at once; expected at most 48" in error.message


def test_not_in_on_an_optional_attribute_stays_small(tmp_path: Path) -> None:
    """Regression: one missing-test per value overflowed the 31-expression limit."""
    values = ", ".join(str(i) for i in range(20))
    segment = f"  - id: s\n    when: profile.age not in [{values}]\n"
    ruleset = ruleset_with(tmp_path, segments=segment)
    engine = DurableEngine(ruleset)
    assert "s" in {r.id for r in engine.fire(request_for(ruleset, age=30))}
    assert "s" not in {r.id for r in engine.fire(request_for(ruleset, age=3))}


def test_segments_chain_into_later_rules(tmp_path: Path) -> None:
    segments = (
        "  - id: adult\n    when: profile.age >= 18\n"
        "  - id: rich_adult\n    when: segment.adult and profile.income > 100\n"
        "  - id: poor_adult\n    when: segment.adult and not segment.rich_adult\n"
    )
    ruleset = ruleset_with(
        tmp_path,
        segments=segments,
        actions=action("a1", extra="eligible: segment.rich_adult"),
    )
    engine = DurableEngine(ruleset)
    rich = {r.id for r in engine.fire(request_for(ruleset, age=40, income=500))}
    poor = {r.id for r in engine.fire(request_for(ruleset, age=40, income=5))}
    assert {"adult", "rich_adult", "a1.eligible"} <= rich and "poor_adult" not in rich
    assert {"adult", "poor_adult"} <= poor and "rich_adult" not in poor


def test_working_memory_is_clean_between_requests(tmp_path: Path) -> None:
    """One reused state per chunk: a fact from one request never leaks into the next."""
    ruleset = ruleset_with(tmp_path, segments="  - id: vip\n    when: profile.vip\n")
    engine = DurableEngine(ruleset)
    for _ in range(3):
        assert "vip" in {r.id for r in engine.fire(request_for(ruleset, age=3, vip=True))}
        assert "vip" not in {r.id for r in engine.fire(request_for(ruleset, age=3, vip=False))}
        assert "vip" not in {r.id for r in engine.fire(request_for(ruleset, age=3))}


def test_fast_program_engages_the_same_actions_as_the_detailed_one(bank: RuleSet) -> None:
    from tests.conftest import EXAMPLES, example

    engine = DurableEngine(bank)
    decider = Decider(bank, engine)
    for path in sorted(EXAMPLES.glob("*.json")):
        request = decider.validator.validate(example(path.name))
        detailed = {r.index for r in engine.fire(request, detailed=True)}
        fast = {r.action for r in engine.fire(request, detailed=False) if r.kind == "engaged"}
        expected = {
            a
            for a, rules in bank.engagement.items()
            if rules and all(r.index in detailed for r in rules)
        }
        assert fast == expected, path.name
