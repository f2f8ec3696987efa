"""Properties of every decision, over customers generated from the rule set's own schema.

Consent comes first: whatever the rules, weights or levers say, no marketing action is
recommended on a channel the customer opted out of (or never opted in to, where the
channel needs an opt-in).
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nba.authoring.strategies import any_requests
from nba.pipeline.decider import Decider
from nba.ruleset.loader import load_ruleset
from nba.v1 import decisioning_pb2 as pb
from tests.conftest import RULES
from tests.consent import assert_consent_kept

BANK = load_ruleset(RULES)  # strategies need the rule set when the module is collected
DURABLE = Decider(BANK, "durable")
REFERENCE = Decider(BANK, "reference")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ranking(response: pb.DecideResponse) -> list[tuple[object, ...]]:
    return [
        (r.rank, r.action_id, r.channel, r.score, r.fallback, r.treatment.id)
        for r in response.recommendations
    ]


@SETTINGS
@given(any_requests(BANK))
def test_consent_is_never_violated(message: pb.DecideRequest) -> None:
    assert_consent_kept(BANK, message, DURABLE.decide(message))


@SETTINGS
@given(any_requests(BANK))
def test_ranking_is_well_formed(message: pb.DecideRequest) -> None:
    recs = list(DURABLE.decide(message).recommendations)
    limit = message.max_results or BANK.arbitration.max_results
    assert len(recs) <= limit
    assert [r.rank for r in recs] == list(range(1, len(recs) + 1))
    assert all(a.score >= b.score for a, b in pairwise(recs))
    assert len({r.action_id for r in recs}) == len(recs)
    assert all(r.fallback for r in recs) or not any(r.fallback for r in recs)
    per_group = BANK.arbitration.max_per_group
    if per_group:
        groups = [r.group for r in recs]
        assert all(groups.count(g) <= per_group for g in groups)


@SETTINGS
@given(any_requests(BANK))
def test_every_recommended_channel_has_a_treatment(message: pb.DecideRequest) -> None:
    for rec in DURABLE.decide(message).recommendations:
        action = BANK.actions[rec.action_id]
        assert rec.channel in action.treatments
        assert rec.treatment.channel == rec.channel
        inbound = message.touchpoint.channel not in ("", "outbound")
        assert rec.channel == (message.touchpoint.channel if inbound else rec.channel)


@SETTINGS
@given(any_requests(BANK), st.booleans())
def test_decisions_are_deterministic(message: pb.DecideRequest, explain: bool) -> None:
    message.explain = explain
    first, second = DURABLE.decide(message), DURABLE.decide(message)
    assert ranking(first) == ranking(second)
    assert [(e.action_id, e.rule) for e in first.excluded] == [
        (e.action_id, e.rule) for e in second.excluded
    ]


@SETTINGS
@given(any_requests(BANK))
def test_durable_rules_agrees_with_the_reference_evaluator(message: pb.DecideRequest) -> None:
    durable, reference = DURABLE.decide(message), REFERENCE.decide(message)
    assert ranking(durable) == ranking(reference)
    assert list(durable.segments) == list(reference.segments)
    assert [(e.action_id, e.rule) for e in durable.excluded] == [
        (e.action_id, e.rule) for e in reference.excluded
    ]


@SETTINGS
@given(any_requests(BANK))
def test_explaining_does_not_change_the_decision(message: pb.DecideRequest) -> None:
    message.explain = False
    quiet = ranking(DURABLE.decide(message))
    message.explain = True
    explained = DURABLE.decide(message)
    assert ranking(explained) == quiet
    recommended = {r.action_id for r in explained.recommendations}
    excluded = {e.action_id for e in explained.excluded}
    assert not recommended & excluded
    if not any(r.fallback for r in explained.recommendations):
        assert recommended | excluded == set(BANK.actions)


@pytest.mark.parametrize("engine", ["durable", "reference"])
def test_strategies_reach_real_decisions(engine: str) -> None:
    """Guard against a vacuous suite: generated customers do get recommendations."""
    decider = DURABLE if engine == "durable" else REFERENCE
    seen: list[int] = []

    @settings(max_examples=100, deadline=None, database=None)
    @given(any_requests(BANK))
    def collect(message: pb.DecideRequest) -> None:
        seen.append(len(decider.decide(message).recommendations))

    collect()
    assert sum(1 for n in seen if n > 0) > len(seen) // 2
