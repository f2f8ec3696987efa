"""learning.context: per-segment posteriors and naive Bayes, attributed through the store."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nba.authoring.strategies import any_requests
from nba.errors import RuleSetError
from nba.pipeline.decider import Decider
from nba.pipeline.types import Interaction
from nba.pipeline.validate import RequestValidator
from nba.ruleset.loader import load_documents, load_ruleset
from nba.ruleset.ruleset import RuleSet
from nba.scoring.adaptive import AdaptiveScorer, ModelCache
from nba.scoring.context import (
    TOTAL,
    naive_bayes_log_odds,
    naive_bayes_posterior,
    predictor_auc,
    segment_posterior,
)
from nba.scoring.evidence import CONTEXT_PREFIX, Evidence, context_increments, increments
from nba.server.reload import RuleSetHolder
from nba.server.service import DecisionService
from nba.store import InteractionStore, open_store
from nba.v1 import decisioning_pb2 as pb
from tests.conftest import RULES, example

SEGMENTS = "  context: {segments: [affluent, digital_native], strength: 20}\n"
PREDICTORS = (
    "  context:\n"
    "    predictors:\n"
    "      - {attribute: age, bins: [25, 40, 60]}\n"
    "      - {attribute: employment}\n"
    "      - {segment: affluent}\n"
)


def documents(context: str, exploration: str = '"off"') -> list[tuple[str, str]]:
    """The bundled rules with `learning.context` added (and exploration as given)."""
    ruleset = load_ruleset(RULES)
    found = []
    for path in ruleset.files:
        text = (RULES / path).read_text()
        text = text.replace('exploration: "off"\n', f"exploration: {exploration}\n{context}")
        found.append((path, text))
    assert any(context in t for _, t in found)
    return found


def bank(context: str, exploration: str = '"off"') -> RuleSet:
    return load_documents(documents(context, exploration))


@pytest.fixture
def store() -> InteractionStore:
    return open_store("memory://", retention_seconds=86400)


def errors(context: str) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        bank(context)
    return [str(e) for e in caught.value.errors]


# --- the rule files ---------------------------------------------------------------------


def test_the_context_is_read_with_its_bins() -> None:
    context = bank(PREDICTORS).learning_context
    assert context is not None and context.model == "naive_bayes"
    age, employment, affluent = context.predictors
    assert age.cuts == (25, 40, 60) and age.bin_labels[1:] == (
        "< 25",
        "25 to 40",
        "40 to 60",
        ">= 60",
    )
    assert employment.values and employment.bin_labels[0] == "missing"
    assert affluent.segment == "affluent"
    assert bank(SEGMENTS).learning_context.model == "segment"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ("  context: {segments: [afluent]}\n", "unknown segment 'afluent'"),
        (
            "  context: {predictors: [{attribute: agee, bins: [30]}]}\n",
            "unknown profile attribute 'agee'",
        ),
        (
            "  context: {predictors: [{attribute: age}]}\n",
            "expected `bins:` (ascending cut points)",
        ),
        ("  context: {predictors: [{attribute: age, bins: [40, 30]}]}\n", "ascending cut points"),
        (
            "  context: {segments: [affluent], predictors: [{segment: affluent}]}\n",
            "expected one of",
        ),
    ],
)
def test_a_broken_context_names_the_place_and_what_was_expected(
    context: str, expected: str
) -> None:
    found = errors(context)
    assert any(expected in e for e in found), found
    assert all(e.split(" ")[0].count(":") >= 2 for e in found)  # file:line:column first


def test_a_misspelt_segment_is_suggested() -> None:
    assert any("did you mean 'affluent'" in e for e in errors("  context: {segments: [afluent]}\n"))


# --- the models -------------------------------------------------------------------------

KEY = ("a", "web")


def test_an_empty_bin_adds_nothing_and_no_evidence_scores_as_the_action() -> None:
    features = (("age", "2"), ("employment", "1"))
    assert naive_bayes_log_odds({}, KEY, features, 0.2, 20) == pytest.approx(math.log(0.2 / 0.8))
    counts = {(*KEY, "age", TOTAL): Evidence(0, 10, 90)}  # the predictor seen, bin 2 never
    assert naive_bayes_log_odds(counts, KEY, features, 0.2, 20) == pytest.approx(math.log(0.25))
    assert segment_posterior({}, KEY, (("seg", "x"),), 0.2, 20).mean == pytest.approx(0.2)


counts_strategy = st.tuples(st.floats(0, 50), st.floats(0, 50))


@given(counts_strategy, counts_strategy, st.floats(0.01, 0.99), st.floats(0.5, 200))
def test_a_positive_in_a_context_never_lowers_its_posterior_mean(
    in_bin: tuple[float, float], total: tuple[float, float], mu: float, strength: float
) -> None:
    features = (("age", "2"),)

    def counts(extra: float) -> dict[tuple[str, ...], Evidence]:
        positives, failures = in_bin
        return {
            (*KEY, "age", "2"): Evidence(0, positives + extra, failures),
            (*KEY, "age", TOTAL): Evidence(0, positives + total[0] + extra, failures + total[1]),
        }

    before = naive_bayes_posterior(counts(0), KEY, features, mu, strength).mean
    after = naive_bayes_posterior(counts(1), KEY, features, mu, strength).mean
    assert after >= before - 1e-9
    seg = (("age", "2"),)
    assert (
        segment_posterior(counts(1), KEY, seg, mu, strength).mean
        >= segment_posterior(counts(0), KEY, seg, mu, strength).mean - 1e-12
    )


def test_predictor_auc_is_one_for_a_perfect_split_and_a_half_for_none() -> None:
    assert predictor_auc([Evidence(0, 10, 0), Evidence(0, 0, 10)]) == pytest.approx(1.0)
    assert predictor_auc([Evidence(0, 5, 5), Evidence(0, 5, 5)]) == pytest.approx(0.5)
    # 64 pairs ordered rightly, 16 tied (half each) of 100: 0.8
    assert predictor_auc([Evidence(0, 8, 2), Evidence(0, 2, 8)]) == pytest.approx(0.8)


# --- scoring in a context ---------------------------------------------------------------


def contextual_cache(
    store: InteractionStore,
    ruleset: RuleSet,
    outcomes: list[tuple[Interaction, list[tuple[str, str]]]],
) -> ModelCache:
    """Outcomes added as RecordOutcome adds them: the action's counters and its bins'."""
    for item, features in outcomes:
        learning = ruleset.learning[item.action_id]
        store.add_to_counters(
            increments(learning, item) | context_increments(learning, item, features)
        )
    cache = ModelCache(store)
    cache.follow(ruleset)
    return cache


def scorer_in(
    ruleset: RuleSet, cache: ModelCache, profile: dict[str, Any], segments: list[str]
) -> AdaptiveScorer:
    scorer = AdaptiveScorer(ruleset, cache).session("d-1", "web").with_context(profile, segments)
    assert isinstance(scorer, AdaptiveScorer)
    return scorer


def test_accepts_in_one_segment_raise_it_there_and_not_in_another(store: InteractionStore) -> None:
    ruleset = bank(SEGMENTS)
    context = ruleset.learning_context
    assert context is not None
    action_id = sorted(ruleset.learning)[0]
    now = time.time()
    accepts = [Interaction(action_id, "web", 3, now - i) for i in range(40)]
    cache = contextual_cache(
        store, ruleset, [(a, [(context.segment_feature, "affluent")]) for a in accepts]
    )
    action = ruleset.actions[action_id]
    affluent = scorer_in(ruleset, cache, {}, ["affluent", "digital_native"])
    other = scorer_in(ruleset, cache, {}, ["digital_native"])
    rich, plain = affluent._propensity(action, "web"), other._propensity(action, "web")
    assert rich[0] > plain[0] * 2  # 40 accepts in the segment moved it
    # The other segment has no evidence of its own: it sits at the action's posterior
    # (which the 40 accepts also raised), shrunk from nothing.
    overall = (
        AdaptiveScorer(ruleset, cache)
        .session("d-1", "web")
        ._posterior(action, "web", ruleset.learning[action_id])
    )
    assert plain[0] == pytest.approx(overall[2], rel=1e-6)


def test_naive_bayes_learns_which_bin_answers(store: InteractionStore) -> None:
    ruleset = bank(PREDICTORS)
    context = ruleset.learning_context
    assert context is not None
    age = context.predictors[0].feature
    action_id = sorted(ruleset.learning)[0]
    now = time.time()
    young = [(Interaction(action_id, "web", 3, now - i), [(age, "1")]) for i in range(30)]
    old = [(Interaction(action_id, "web", 4, now - i), [(age, "4")]) for i in range(30)]
    cache = contextual_cache(store, ruleset, young + old)
    action = ruleset.actions[action_id]
    p_young = scorer_in(ruleset, cache, {"age": 20}, [])._propensity(action, "web")[0]
    p_old = scorer_in(ruleset, cache, {"age": 70}, [])._propensity(action, "web")[0]
    p_unknown = scorer_in(ruleset, cache, {}, [])._propensity(action, "web")[0]
    assert p_young > p_unknown > p_old


# --- attribution end to end: Decide, then RecordOutcome -----------------------------------


def served(tmp_path: Path, context: str, store: InteractionStore) -> DecisionService:
    """A service on a copy of the bundled rules with the context, on `store`."""
    for path, text in documents(context):
        target = tmp_path / Path(path).relative_to(RULES.resolve())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    holder = RuleSetHolder(tmp_path, "reference", store, ModelCache(store, refresh_seconds=3600))
    holder.load(load_ruleset(tmp_path))
    return DecisionService(holder)


def outcome(
    response: pb.DecideResponse, action_id: str, outcome: int, with_id: bool
) -> pb.RecordOutcomeRequest:
    rec = next(r for r in response.recommendations if r.action_id == action_id)
    message = pb.RecordOutcomeRequest(
        customer_id="p-10231",
        interaction=pb.Interaction(action_id=action_id, channel=rec.channel, outcome=outcome),
    )
    if with_id:
        message.decision_id = response.decision_id
    return message


@pytest.mark.parametrize("with_id", [True, False])
def test_an_outcome_counts_in_the_bins_of_the_decision_that_showed_it(
    tmp_path: Path, store: InteractionStore, with_id: bool
) -> None:
    service = served(tmp_path, PREDICTORS, store)
    try:
        response = service.decide(example("web_prospect_homepage.json"))
        learned = [
            r.action_id for r in response.recommendations if r.components.HasField("learned")
        ]
        assert learned
        assert service.shown is not None
        service.shown.drain()  # the thread would within BATCH_SECONDS
        service.record_outcome(outcome(response, learned[0], 3, with_id))
    finally:
        service.close()
    context = service.holder.current.ruleset.learning_context
    assert context is not None
    counted = {name.split("|")[5]: name.split("|")[6] for name in store.counters(CONTEXT_PREFIX)}
    age, employment, affluent = (p.feature for p in context.predictors)
    # The example is 31, employed, and not affluent: bins 2, "employed"'s, and "out".
    assert counted[age] == "2" and counted[affluent] == "1"
    employed = context.predictors[1].values.index("employed") + 1
    assert counted[employment] == str(employed)
    assert "score" in counted  # naive Bayes' calibration bin
    assert all(name.endswith("|p") for name in store.counters(CONTEXT_PREFIX))


def test_an_outcome_of_a_customer_never_decided_counts_only_for_the_action(
    tmp_path: Path, store: InteractionStore
) -> None:
    service = served(tmp_path, SEGMENTS, store)
    action_id = sorted(service.holder.current.ruleset.learning)[0]
    message = pb.RecordOutcomeRequest(
        customer_id="nobody",
        interaction=pb.Interaction(action_id=action_id, channel="web", outcome=pb.ACCEPT),
    )
    service.record_outcome(message)
    service.close()
    assert store.counters("m|") and not store.counters(CONTEXT_PREFIX)


# --- replay and consent -----------------------------------------------------------------


def test_a_contextual_decision_replays_exactly_from_its_logged_parameters(
    store: InteractionStore,
) -> None:
    ruleset = bank(PREDICTORS, "thompson")
    context = ruleset.learning_context
    assert context is not None
    age = context.predictors[0].feature
    now = time.time()
    outcomes = [
        (Interaction(a, "web", 2 + i % 2, now - i), [(age, "2")])
        for i, a in enumerate(sorted(ruleset.learning) * 4)
    ]
    decider = Decider(ruleset, model=contextual_cache(store, ruleset, outcomes))
    request = RequestValidator(ruleset).validate(example("web_prospect_homepage.json"), 0.0)
    decision = decider.decide_request(request, "d-logged")
    assert decision.scorer is not None
    logged = decision.scorer.parameters()
    assert any(len(p) == 4 for p in logged.values())  # the context's alpha and beta
    again = Decider(ruleset, model=ModelCache.fixed(request.channel, logged)).decide_request(
        request, "d-logged"
    )

    def ranking(d: Any) -> list[tuple[str, float]]:
        return [(p.action.id, p.scored.score) for p in d.picks if p.scored]

    assert ranking(again) == ranking(decision)


CONSENT_BANK = bank(PREDICTORS, "thompson")
CONSENT_STORE = open_store("memory://", retention_seconds=86400)
CONSENT_CONTEXT = CONSENT_BANK.learning_context
assert CONSENT_CONTEXT is not None
EXPLORING = Decider(
    CONSENT_BANK,
    model=contextual_cache(
        CONSENT_STORE,
        CONSENT_BANK,
        [
            (
                Interaction(a, "email", 3, 1_795_000_000.0),
                [(CONSENT_CONTEXT.predictors[0].feature, "3")],
            )
            for a in sorted(CONSENT_BANK.learning)
        ]
        * 6,
    ),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_requests(CONSENT_BANK))
def test_consent_is_never_violated_with_contextual_exploration(message: pb.DecideRequest) -> None:
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


# --- nba models ----------------------------------------------------------------------------


def test_nba_models_shows_each_predictors_bins_and_auc(tmp_path: Path) -> None:
    """Accepts only from the under-25s: age separates them (AUC 1), employment cannot."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    store = open_store(url, retention_seconds=86400)
    service = served(tmp_path / "rules", PREDICTORS, store)
    action_id = ""
    for n, age in enumerate([20, 22, 70, 75] * 3):
        message = example("web_prospect_homepage.json")
        message.customer_id = f"c-{n}"
        message.profile["age"] = age
        response = service.decide(message)
        if not action_id:
            action_id = next(
                r.action_id for r in response.recommendations if r.components.HasField("learned")
            )
        assert service.shown is not None
        service.shown.drain()
        record = outcome(response, action_id, 3 if age < 25 else 5, with_id=True)
        record.customer_id = message.customer_id
        service.record_outcome(record)
    service.close()
    command = ["models", "--store", url, "--rules", str(tmp_path / "rules"), "--format", "json"]
    shown = subprocess.run(
        [sys.executable, "-m", "nba", *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    model = next(m for m in json.loads(shown.stdout) if m["action_id"] == action_id)
    assert model["positives"] == pytest.approx(6, rel=1e-3)
    age, employment, _ = model["predictors"]
    assert age["name"] == "age" and age["auc"] == pytest.approx(1.0)
    assert employment["auc"] == pytest.approx(0.5)  # everyone is employed
    young = next(b for b in age["bins"] if b["label"] == "< 25")
    assert young["positives"] == pytest.approx(6, rel=1e-3) and young["failures"] < 1e-6


def test_explain_names_the_bins_a_contextual_action_was_scored_in(store: InteractionStore) -> None:
    from nba.authoring.explain import explain

    ruleset = bank(PREDICTORS)
    cache = ModelCache(store)
    cache.follow(ruleset)
    decider = Decider(ruleset, "reference", model=cache)
    request = decider.validator.validate(example("web_prospect_homepage.json"))
    story = explain(decider, request, None)
    texts = [c.text for s in story.actions for c in s.checks if c.rule == "context"]
    assert texts, "no contextual explanation"
    assert all("age 25 to 40" in t and "segment affluent out" in t for t in texts)
