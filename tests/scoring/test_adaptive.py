"""Learned propensity: evidence that decays, posteriors that move the right way, sampling a
decision reproduces, top-k still exact, consent still absolute."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import Spec, generate
from nba.authoring.strategies import any_requests
from nba.pipeline.decider import Decider
from nba.pipeline.types import OUTBOUND, Interaction
from nba.pipeline.validate import RequestValidator
from nba.ruleset.loader import load_documents, load_ruleset
from nba.ruleset.ruleset import Learning, Lever, RuleSet
from nba.scoring.adaptive import AdaptiveScorer, ModelCache
from nba.scoring.evidence import EPOCH, ERA_HALF_LIVES, increments, read_evidence
from nba.store import InteractionStore, open_store
from nba.v1 import decisioning_pb2 as pb
from tests.conftest import RULES, example

DAY = 86400
LEARN = Learning(
    positives=frozenset({2, 3}),
    negatives=frozenset({4, 5}),
    prior_strength=20.0,
    half_life_seconds=30 * DAY,
    explore=True,
    maturity_positives=0,
    maturity_share=1.0,
)


def evidence_after(outcomes: list[tuple[int, float]], now: float) -> tuple[float, float, float]:
    counters: dict[str, float] = {}
    for outcome, at in outcomes:
        for name, value in increments(LEARN, Interaction("a", "web", outcome, at)).items():
            counters[name] = counters.get(name, 0.0) + value
    found = read_evidence(counters, now, [LEARN.half_life_seconds]).get(("a", "web"))
    return (found.impressions, found.positives, found.negatives) if found else (0, 0, 0)


def test_an_outcome_weighs_half_after_one_half_life_and_an_era_boundary_changes_nothing() -> None:
    now = 1_800_000_000.0
    assert evidence_after([(3, now)], now) == pytest.approx((0, 1, 0))
    assert evidence_after([(3, now - 30 * DAY)], now) == pytest.approx((0, 0.5, 0))
    assert evidence_after([(1, now - 60 * DAY), (5, now)], now) == pytest.approx((0.25, 0, 1))
    era_end = EPOCH + ERA_HALF_LIVES * 30 * DAY
    before, after = era_end - DAY, era_end + DAY
    assert evidence_after([(3, before)], after) == pytest.approx((0, 2 ** (-2 / 30), 0))


@given(
    st.lists(st.tuples(st.sampled_from([1, 2, 3, 4, 5]), st.floats(0, 400 * DAY)), max_size=30),
    st.sampled_from([2, 3]),
)
def test_a_positive_outcome_never_lowers_the_posterior_mean(
    history: list[tuple[int, float]], positive: int
) -> None:
    now = 1_800_000_000.0
    before = [(o, now - age) for o, age in history]

    def mean(outcomes: list[tuple[int, float]]) -> float:
        impressions, positives, negatives = evidence_after(outcomes, now)
        failures = max(negatives, impressions - positives)
        alpha, beta = 20 * 0.1 + positives, 20 * 0.9 + failures
        return alpha / (alpha + beta)

    assert mean([*before, (positive, now)]) >= mean(before) - 1e-12


def learning_bank(exploration: str) -> RuleSet:
    """The bundled rules with exploration as given (the bundled set has it off)."""
    ruleset = load_ruleset(RULES)
    assert ruleset.learning
    documents = [(path, (RULES / path).read_text()) for path in ruleset.files]
    documents = [
        (p, t.replace('exploration: "off"', f"exploration: {exploration}")) for p, t in documents
    ]
    return load_documents(documents)


def cache_with(
    store: InteractionStore, ruleset: RuleSet, outcomes: list[Interaction]
) -> ModelCache:
    for item in outcomes:
        learning = ruleset.learning.get(item.action_id)
        if learning is not None:
            store.add_to_counters(increments(learning, item))
    cache = ModelCache(store)
    cache.follow(ruleset)
    return cache


@pytest.fixture
def store() -> InteractionStore:
    return open_store("memory://", retention_seconds=86400)


def test_accepts_raise_an_action_and_its_components_show_the_evidence(
    store: InteractionStore,
) -> None:
    ruleset = learning_bank('"off"')
    request = example("web_prospect_homepage.json")
    static = Decider(ruleset).decide(request)
    last = [r for r in static.recommendations if r.action_id in ruleset.learning][-1]
    now = time.time()  # the model cache reads the evidence as of now
    accepts = [Interaction(last.action_id, last.channel, 3, float(now - i)) for i in range(60)]
    learned = Decider(ruleset, model=cache_with(store, ruleset, accepts)).decide(request)
    ranks = {r.action_id: r.rank for r in learned.recommendations}
    assert ranks[last.action_id] < last.rank  # the evidence moved it up
    parts = next(r for r in learned.recommendations if r.action_id == last.action_id).components
    assert parts.learned.positives == pytest.approx(60, rel=1e-3)
    assert parts.learned.prior == pytest.approx(ruleset.actions[last.action_id].propensity)
    assert parts.propensity == pytest.approx(parts.learned.posterior_mean)
    assert not parts.learned.sampled


def test_thompson_sampling_is_reproducible_per_decision_and_varies_across_them(
    store: InteractionStore,
) -> None:
    ruleset = learning_bank("thompson")
    decider = Decider(ruleset, model=cache_with(store, ruleset, []))
    request = RequestValidator(ruleset).validate(example("web_prospect_homepage.json"), 0.0)
    first = decider.decide_request(request, "decision-1")
    again = decider.decide_request(request, "decision-1")
    assert [(p.action.id, p.scored and p.scored.score) for p in first.picks] == [
        (p.action.id, p.scored and p.scored.score) for p in again.picks
    ]
    scores = {
        round(p.scored.score, 12)
        for i in range(20)
        for p in decider.decide_request(request, f"d{i}").picks
        if p.scored is not None
    }
    assert len(scores) > 3  # samples differ between decisions


def test_an_immature_action_is_explored_on_its_share_of_decisions(store: InteractionStore) -> None:
    ruleset = learning_bank("thompson")  # maturity: 5 positives, share 0.2
    scorer = AdaptiveScorer(ruleset, cache_with(store, ruleset, []))
    action = ruleset.actions["card_cashback"]
    sampled = 0
    for i in range(2000):
        _, learned = scorer.session(f"d{i}", "web")._propensity(action, "web")
        assert learned is not None
        sampled += learned.sampled
    assert 0.17 < sampled / 2000 < 0.23


def generated_with_learning(exploration: str) -> RuleSet:
    generated = generate(Spec(actions=120, rules=600))
    header = yaml.safe_load(dict(generated.documents)["ruleset.yaml"])
    header["learning"] = {"prior_strength": 10, "exploration": exploration}
    documents = [(p, t) for p, t in generated.documents if p != "ruleset.yaml"]
    return load_documents([("ruleset.yaml", yaml.safe_dump(header)), *documents])


@pytest.mark.parametrize("exploration", ["thompson", "off"])
def test_top_k_stays_exact_with_learned_and_sampled_scores(exploration: str) -> None:
    ruleset = generated_with_learning(exploration)
    store = open_store("memory://", retention_seconds=86400)
    actions = sorted(ruleset.learning)[:40]
    outcomes = [
        Interaction(a, c, outcome, 1_795_000_000.0)
        for i, a in enumerate(actions)
        for c in ruleset.actions[a].channels
        for outcome in ([3] * (i % 7) + [1] * 20)
    ]
    decider = Decider(ruleset, model=cache_with(store, ruleset, outcomes))
    assert decider.evaluator.top_k_pays
    from bench.generate import customers

    for n, message in enumerate(customers(generate(Spec(actions=120, rules=600)), 30, 10)):
        request = RequestValidator(ruleset).validate(message, 0.0)
        channel = request.channel if request.channel != OUTBOUND else ""
        top = decider.evaluator.top_k(request, decider.scorer.session(f"d{n}", channel))
        full = decider.evaluator.full(request, decider.scorer.session(f"d{n}", channel))
        assert [(s.candidate.action.id, s.score) for s in top.ranked] == [
            (s.candidate.action.id, s.score) for s in full.ranked
        ]


CONSENT_BANK = learning_bank("thompson")
CONSENT_STORE = open_store("memory://", retention_seconds=86400)
EXPLORING = Decider(
    CONSENT_BANK,
    model=cache_with(
        CONSENT_STORE,
        CONSENT_BANK,
        [Interaction(a, "email", 3, 1_795_000_000.0) for a in CONSENT_BANK.learning] * 6,
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_requests(CONSENT_BANK))
def test_consent_is_never_violated_with_exploration_on(message: pb.DecideRequest) -> None:
    response = EXPLORING.decide(message)
    consent = dict(message.consent)
    for rec in response.recommendations:
        spec = CONSENT_BANK.channels[rec.channel]
        if rec.purpose != "marketing":
            continue
        if spec.marketing_consent == "opt_in":
            assert consent.get(rec.channel) is True, rec
        elif spec.marketing_consent == "opt_out":
            assert consent.get(rec.channel) is not False, rec
    assert all(math.isfinite(r.score) for r in response.recommendations)


MEAN_BANK = learning_bank('"off"')
MEAN_STORE = open_store("memory://", retention_seconds=86400)
MEAN_MODEL = cache_with(
    MEAN_STORE,
    MEAN_BANK,
    [
        Interaction(a, c, outcome, time.time() - 60)
        for i, a in enumerate(sorted(MEAN_BANK.learning))
        for c in MEAN_BANK.actions[a].channels
        for outcome in [1] * 30 + [3] * (i % 5)
    ],
)
MEAN_DECIDER = Decider(MEAN_BANK, "reference", model=MEAN_MODEL)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_requests(MEAN_BANK), st.sampled_from(["value", "lever"]), st.floats(1.01, 5))
def test_raising_an_actions_value_or_lever_never_lowers_its_rank(
    message: pb.DecideRequest, what: str, factor: float
) -> None:
    """With exploration off (learned means, no sampling)."""
    message.max_results = 5
    before = MEAN_DECIDER.decide(message)
    ranked = [r for r in before.recommendations if not r.fallback]
    if not ranked:
        return
    target = ranked[-1]
    action = MEAN_BANK.actions[target.action_id]
    if what == "value":
        actions = dict(MEAN_BANK.actions)
        actions[action.id] = dataclasses.replace(action, value=action.value * factor)
        raised = dataclasses.replace(MEAN_BANK, actions=actions)
    else:
        lever = Lever("raise", frozenset({action.id}), factor, "", action.location)
        raised = dataclasses.replace(MEAN_BANK, levers=(*MEAN_BANK.levers, lever))
    after = Decider(raised, "reference", model=MEAN_MODEL).decide(message)
    ranks = {r.action_id: r.rank for r in after.recommendations if not r.fallback}
    assert target.action_id in ranks
    assert ranks[target.action_id] <= target.rank


def test_nba_explain_with_a_store_shows_the_prior_the_evidence_and_the_posterior(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    store = open_store(url, retention_seconds=86400)
    ruleset = load_ruleset(RULES)
    request = example("web_prospect_homepage.json")
    top = Decider(ruleset).decide(request).recommendations
    action_id = next(r.action_id for r in top if r.action_id in ruleset.learning)
    cache_with(store, ruleset, [Interaction(action_id, "web", 2, time.time())] * 7)
    store.close()
    request_file = tmp_path / "request.json"
    request_file.write_text(json_format.MessageToJson(request))
    command = [sys.executable, "-m", "nba", "explain", str(request_file), "--rules", str(RULES)]
    shown = subprocess.run(
        [*command, "--action", action_id, "--store", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    prior = ruleset.actions[action_id].propensity
    assert f"Beta(prior {prior:g} x 100 observations + 7 positives, 0 negatives)" in shown


def test_a_decision_scored_again_from_its_logged_parameters_and_seed_is_identical(
    store: InteractionStore,
) -> None:
    """What the decision log keeps (parameters, decision id) is all a replay needs."""
    ruleset = learning_bank("thompson")
    clicks = [Interaction(a, "web", 2, time.time()) for a in sorted(ruleset.learning)[::3]] * 9
    decider = Decider(ruleset, model=cache_with(store, ruleset, clicks))
    request = RequestValidator(ruleset).validate(example("web_prospect_homepage.json"), 0.0)
    decision = decider.decide_request(request, "d-logged")
    logged = decision.scorer.parameters()
    assert any(positives > 0 for positives, _ in logged.values())
    replayed = Decider(ruleset, model=ModelCache.fixed(request.channel, logged))
    again = replayed.decide_request(request, "d-logged")

    def ranking(d: Any) -> list[tuple[str, float, bool]]:
        return [(p.action.id, p.scored.score, bool(p.scored.learned)) for p in d.picks]

    assert ranking(again) == ranking(decision)
