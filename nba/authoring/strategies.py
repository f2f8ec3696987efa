"""Hypothesis strategies that generate decision requests from a rule set's own schema.

The same properties then run on any rule set: the bundled one in our tests, an author's
in `nba check`. Values are drawn around the literals the rules compare against (each
boundary, one below, one above), because that is where rule sets go wrong; the rest of
the domain is sampled too.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal, cast

from google.protobuf import struct_pb2
from hypothesis import strategies as st

from nba.pipeline.types import OUTBOUND
from nba.ruleset.model import AttributeSpec, AttributeType
from nba.ruleset.resolve import ProfileTerm, TouchpointTerm, comparisons
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb

AS_OF_SECONDS = 1_795_168_800  # 2026-11-20T10:00:00Z: fixed, so examples replay
_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)  # lone surrogates cannot be UTF-8 encoded
OUTCOMES = [v.number for v in pb.Outcome.DESCRIPTOR.values if v.number != 0]


def literals(ruleset: RuleSet) -> dict[str, set[Any]]:
    """Every literal each term is compared with, keyed by the term's key."""
    found: dict[str, set[Any]] = defaultdict(set)
    for rule in ruleset.rules:
        for cmp in comparisons(rule.expr):
            found[cmp.term.key].add(cmp.value)
    return found


def _number(spec: AttributeSpec, near: set[Any], integral: bool) -> st.SearchStrategy[Any]:
    low = spec.min if spec.min is not None else -1_000_000
    high = spec.max if spec.max is not None else 1_000_000
    edges = sorted(
        {v + d for v in near if isinstance(v, int | float) for d in (-1, 0, 1)} | {low, high}
    )
    edges = [e for e in edges if low <= e <= high]
    if integral:
        edges = [int(e) for e in edges if float(e).is_integer()]
        spread: st.SearchStrategy[Any] = st.integers(int(low), int(high))
    else:
        spread = st.floats(low, high, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from(edges), spread) if edges else spread


def attribute_values(spec: AttributeSpec, near: set[Any]) -> st.SearchStrategy[Any]:
    kind = spec.type
    if kind == AttributeType.INT:
        return _number(spec, near, integral=True)
    if kind == AttributeType.NUMBER:
        return _number(spec, near, integral=False)
    if kind == AttributeType.BOOL:
        return st.booleans()
    if kind == AttributeType.ENUM:
        return st.sampled_from(spec.values)
    if kind == AttributeType.SET:
        return st.frozensets(st.sampled_from(spec.values)).map(sorted)
    words = sorted(str(v) for v in near if isinstance(v, str))
    text = st.text(st.characters(codec="utf-8", exclude_categories=_SURROGATES), max_size=12)
    return st.one_of(st.sampled_from(words), text) if words else text


@st.composite
def profiles(draw: st.DrawFn, ruleset: RuleSet) -> dict[str, Any]:
    near = literals(ruleset)
    profile: dict[str, Any] = {}
    # Attributes are present 4 times in 5: rules mostly need them, and a customer missing
    # half their profile qualifies for little, which leaves most actions untested.
    for name, spec in ruleset.attributes.items():
        if spec.required or draw(st.integers(0, 4)) > 0:
            profile[name] = draw(attribute_values(spec, near.get(ProfileTerm(name, "").key, set())))
    return profile


def _touchpoint_words(ruleset: RuleSet, field: str) -> list[str]:
    key = TouchpointTerm(field).key
    return sorted({str(v) for v in literals(ruleset).get(key, set())} | {""})


@st.composite
def interactions(
    draw: st.DrawFn, ruleset: RuleSet, max_size: int = 12, as_of: int = AS_OF_SECONDS
) -> list[pb.Interaction]:
    actions = [*ruleset.actions, "retired_action"]
    channels = list(ruleset.channels)
    items = []
    for _ in range(draw(st.integers(0, max_size))):
        age = draw(st.one_of(st.integers(0, 120 * 86400), st.sampled_from([0, 86400, 30 * 86400])))
        item = pb.Interaction(
            action_id=draw(st.sampled_from(actions)),
            channel=draw(st.sampled_from(channels)),
            outcome=cast(pb.Outcome, draw(st.sampled_from(OUTCOMES))),
        )
        item.at.FromSeconds(as_of - age)
        items.append(item)
    return items


@st.composite
def decide_requests(
    draw: st.DrawFn, ruleset: RuleSet, max_interactions: int = 12
) -> pb.DecideRequest:
    """A valid DecideRequest for this rule set: any customer, touchpoint, history, consent."""
    channels = list(ruleset.channels)
    message = pb.DecideRequest(
        customer_id=f"c-{draw(st.integers(0, 10**6))}",
        lifecycle_stage=draw(st.sampled_from(ruleset.stages)),
        max_results=draw(st.integers(0, 6)),
        explain=draw(st.booleans()),
    )
    message.profile.update(_struct_ready(draw(profiles(ruleset))))
    tp = message.touchpoint
    tp.channel = draw(st.sampled_from([*channels, OUTBOUND, ""]))
    tp.placement = draw(st.sampled_from(_touchpoint_words(ruleset, "placement")))
    tp.intent = draw(st.sampled_from(_touchpoint_words(ruleset, "intent")))
    message.interactions.extend(draw(interactions(ruleset, max_interactions)))
    consent = draw(st.dictionaries(st.sampled_from(channels), st.booleans()))
    message.consent.update(consent)
    message.preferred_channels.extend(
        draw(st.lists(st.sampled_from(channels), unique=True, max_size=3))
    )
    message.as_of.FromSeconds(AS_OF_SECONDS)
    return message


def realistic_requests(ruleset: RuleSet) -> st.SearchStrategy[pb.DecideRequest]:
    """Customers from the realistic generator (nba gen-customers), drawn by seed.

    Random values alone rarely satisfy a whole action's rules, so most actions would go
    untested; realistic customers qualify for most of them. They shrink only by seed.
    """
    from nba.authoring.customers import generate_customers

    return st.integers(0, 2**31 - 1).map(lambda seed: next(generate_customers(ruleset, 1, seed)))


def any_requests(
    ruleset: RuleSet, max_interactions: int = 12
) -> st.SearchStrategy[pb.DecideRequest]:
    """Both: realistic customers for coverage, random ones for edges and small failures."""
    return st.one_of(decide_requests(ruleset, max_interactions), realistic_requests(ruleset))


def _struct_ready(profile: dict[str, Any]) -> dict[str, Any]:
    """Struct holds lists, not sets; everything else passes through."""
    return {k: list(v) if isinstance(v, frozenset | set) else v for k, v in profile.items()}


def struct_of(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(_struct_ready(values))
    return struct
