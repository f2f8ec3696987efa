"""Top-k evaluation decides exactly what full evaluation does, and does less work for it.

The bundled rule set fits one engaged chunk, so top-k never runs on it: these tests use a
generated rule set of a few hundred rules (many chunks), plus one action too wide for a
single durable rule (split into parts the engine runs outside its chunks) with the
highest value of all, so the bound of no chunk reaches it.
"""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings

from bench.generate import Spec, customers, generate
from nba.authoring.strategies import any_requests
from nba.engine.durable import DurableEngine
from nba.pipeline.decider import Decider
from nba.pipeline.evaluate import Evaluation
from nba.pipeline.types import DecisionRequest
from nba.pipeline.validate import RequestValidator
from nba.ruleset.loader import load_documents
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb

# Six alternatives on two attributes: 2**6 branches as one conjunction, over the engine's
# budget of 48, so the compiler keeps this action's rules apart.
WIDE_ELIGIBLE = [
    {"id": f"wide_{i}", "when": f"profile.age > {17 + i} or profile.tenure_months > {i}"}
    for i in range(6)
]
WIDE = {
    "id": "wide_premium",
    "purpose": "marketing",
    "group": "g_wide",
    "value": 100000,
    "propensity": 0.9,
    "treatments": {"web": {"headline": "Premium"}, "email": {"headline": "Premium"}},
    "eligible": WIDE_ELIGIBLE,
}


def _wide_ruleset() -> RuleSet:
    generated = generate(Spec(actions=120, rules=600))
    documents = [*generated.documents, ("actions/wide.yaml", yaml.safe_dump({"actions": [WIDE]}))]
    return load_documents(documents)


RULESET = _wide_ruleset()
REQUESTS = customers(generate(Spec(actions=120, rules=600)), count=40, interactions=20)


DECIDER = Decider(RULESET, "durable")


def summary(evaluation: Evaluation) -> list[tuple[str, str, float]]:
    return [(s.candidate.action.id, s.candidate.channel, s.score) for s in evaluation.ranked]


def validated(message: pb.DecideRequest) -> DecisionRequest:
    return RequestValidator(RULESET).validate(message, 0.0)


def test_the_generated_set_has_chunks_to_skip_and_a_split_action() -> None:
    engine = DECIDER.engine
    assert isinstance(engine, DurableEngine)
    assert DECIDER.evaluator.top_k_pays
    assert len(engine.engaged_chunks) >= 4
    assert "wide_premium" in engine._split


def test_top_k_fires_fewer_rules_and_decides_the_same() -> None:
    evaluator = DECIDER.evaluator
    fired_top_k = fired_full = wide_recommended = 0
    for message in REQUESTS:
        request = validated(message)
        top, full = evaluator.top_k(request), evaluator.full(request)
        assert summary(top) == summary(full), message.customer_id
        assert {r.index for r in top.fired} <= {r.index for r in full.fired}
        fired_top_k += len(top.fired)
        fired_full += len(full.fired)
        wide_recommended += any(s.candidate.action.id == "wide_premium" for s in top.ranked)
    assert fired_top_k < 0.8 * fired_full  # the chunks skipped are real work saved
    # The split action outscores everything when eligible; top-k must still see it.
    assert wide_recommended > 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_requests(RULESET))
def test_top_k_equals_full_on_generated_customers(message: pb.DecideRequest) -> None:
    message.explain = False  # explained decisions always take the full path
    request = validated(message)
    evaluator = DECIDER.evaluator
    assert summary(evaluator.top_k(request)) == summary(evaluator.full(request))
