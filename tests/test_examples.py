"""The bundled example requests: they cover what the README promises and all decide."""

from __future__ import annotations

import pytest

from nba.pipeline.decider import Decider
from nba.ruleset.ruleset import RuleSet
from tests.conftest import EXAMPLES, example

NAMES = sorted(p.name for p in EXAMPLES.glob("*.json"))


def test_examples_cover_stages_and_directions(bank: RuleSet) -> None:
    requests = [example(name) for name in NAMES]
    assert len(requests) >= 12
    assert {r.lifecycle_stage for r in requests} == set(bank.stages)
    channels = {r.touchpoint.channel or "outbound" for r in requests}
    assert {"web", "mobile_app", "call_center", "outbound"} <= channels


@pytest.mark.parametrize("name", NAMES)
def test_example_decides_the_same_on_both_engines(
    name: str, bank_decider: Decider, reference_decider: Decider
) -> None:
    request = example(name)
    durable = bank_decider.decide(request)
    reference = reference_decider.decide(request)
    assert durable.recommendations, f"{name}: no recommendation at all"
    assert [(r.action_id, r.channel, r.score) for r in durable.recommendations] == [
        (r.action_id, r.channel, r.score) for r in reference.recommendations
    ]
