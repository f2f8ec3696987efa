"""The HTTP face's fast DecideResponse encoding is json_format's proto3 JSON, exactly."""

from __future__ import annotations

import json

from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings

from nba.authoring.strategies import any_requests
from nba.pipeline.decider import Decider
from nba.ruleset.loader import load_ruleset
from nba.server.json_codec import RECOMMENDATION_FIELDS, decide_response_json
from nba.v1 import decisioning_pb2 as pb
from tests.conftest import EXAMPLES, RULES, example

BANK = load_ruleset(RULES)
DECIDER = Decider(BANK)


def same_as_json_format(response: pb.DecideResponse) -> None:
    ours = json.loads(decide_response_json(response))
    reference = json.loads(json_format.MessageToJson(response, indent=None))
    assert ours == reference


def test_every_example_encodes_as_json_format_does_explained_or_not() -> None:
    for path in sorted(EXAMPLES.glob("*.json")):
        request = example(path.name)
        for explain in (False, True):
            request.explain = explain
            response = DECIDER.decide(request)
            same_as_json_format(response)
            same_as_json_format(response)  # the second time from the memo


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_requests(BANK))
def test_generated_decisions_encode_as_json_format_does(message: pb.DecideRequest) -> None:
    same_as_json_format(DECIDER.decide(message))


def test_a_degraded_fallback_and_learned_components_encode_as_json_format_does() -> None:
    response = pb.DecideResponse(decision_id="d", ruleset_version="v", degraded=True)
    rec = response.recommendations.add(rank=1, action_id="a", channel="web", fallback=True)
    rec.components.learned.prior = 0.05
    rec.components.learned.sampled = True
    rec.treatment.attributes["k"] = "v"
    same_as_json_format(response)


def test_every_recommendation_field_is_written() -> None:
    """A field added to the proto must be added to the fast encoder too."""
    assert {f.name for f in pb.Recommendation.DESCRIPTOR.fields} == RECOMMENDATION_FIELDS


def test_a_decision_in_experiment_arms_encodes_as_json_format_does_on_the_fast_path() -> None:
    from nba.server import json_codec
    from tests.experiments.bank import HOSTILE, bank_with

    decider = Decider(bank_with(HOSTILE.format(treatment="none")))
    for n in range(20):
        request = example("web_prospect_homepage.json")
        request.customer_id = f"c-{n}"
        request.explain = n % 2 == 0  # explained: json_format's path; the others: the fast one
        response = decider.decide(request)
        assert response.arms
        same_as_json_format(response)
    slow = json_codec.generic_json
    json_codec.generic_json = None  # type: ignore[assignment]  # the fast path, or it fails
    try:
        json_codec.decide_response_json(response)
    finally:
        json_codec.generic_json = slow
