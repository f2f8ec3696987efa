"""Does learning per context pay? A simulation where the true click rates depend on who looks.

    python -m bench.context [--decisions 20000] [--seeds 3]

Visitors of a web placement have an age (uniform 18 to 79) and are affluent or not (30%).
Four offers, rated alike by the rule file (propensity 0.05), have true click rates that
depend on both (TRUE_RATE below): one for the young, one for the middle-aged, one for the
affluent, one alike for everybody. Every decision shows the top offer and the visitor
clicks with its true rate in their context. Outcomes go through the path RecordOutcome
takes: the action's counters, and, for a contextual model, the counters of the bins the
decision that showed the offer was scored in (nba/scoring/attribution.py). The model is
re-read every REFRESH_EVERY decisions, as a worker's refresh would. All strategies use
Thompson sampling, on the same visitors:

- per action: one Beta per offer, as if every visitor were alike;
- per segment: a Beta per offer and segment (`context: {segments: [affluent]}`);
- naive Bayes: age in bins (<30, 30-50, >=50) and the segment as predictors, calibrated;
- oracle: always the offer with the highest true rate in the visitor's context.

Printed per strategy, the mean over `--seeds` runs: clicks per 1,000 decisions, the regret
against the oracle (expected clicks lost), the share of the last 2,000 decisions that
showed the context's best offer, and each predictor's AUC as the model's counts give it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import show, table
from nba.pipeline.decider import Decider
from nba.pipeline.types import Interaction
from nba.pipeline.validate import RequestValidator
from nba.ruleset.loader import load_documents
from nba.ruleset.ruleset import RuleSet
from nba.scoring.adaptive import ModelCache
from nba.scoring.attribution import bins_of, shown_of
from nba.scoring.context import predictor_auc
from nba.scoring.evidence import context_increments, increments
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb

OFFERS = ("young_saver", "family_loan", "private_banking", "cashback_card")
REFRESH_EVERY = 100
LAST = 2000

RULES = """
lifecycle_stages: [active]
profile:
  age: {type: int, min: 0, max: 130}
  rich: {type: bool}
segments:
  - {id: affluent, when: profile.rich}
channels:
  - {id: web, direction: inbound}
arbitration: {max_results: 1}
learning:
  prior_strength: 20
  half_life: 365d
  exploration: thompson
  positives: [click]
%(context)s
actions:
%(actions)s
"""
ACTION = """  - id: %s
    purpose: marketing
    group: g_%s
    value: 1
    propensity: 0.05
    treatments: {web: {headline: h}}
"""
CONTEXTS = {
    "per action": "",
    "per segment": "  context: {segments: [affluent]}",
    "naive Bayes": (
        "  context:\n    predictors:\n      - {attribute: age, bins: [30, 50]}\n"
        "      - {segment: affluent}"
    ),
}


def true_rate(offer: str, age: int, affluent: bool) -> float:
    """The planted click rate of an offer for a visitor."""
    if offer == "young_saver":
        return 0.10 if age < 30 else 0.015
    if offer == "family_loan":
        return 0.08 if 30 <= age < 50 else 0.02
    if offer == "private_banking":
        return 0.12 if affluent else 0.01
    return 0.04  # cashback_card: alike for everybody


def ruleset(context: str) -> RuleSet:
    actions = "".join(ACTION % (a, a) for a in OFFERS)
    return load_documents(
        [("rules/ruleset.yaml", RULES % {"context": context, "actions": actions})]
    )


@dataclass
class Run:
    clicks: int
    regret: float
    best_share_last: float
    auc: dict[str, float]


def visitors(seed: int, n: int) -> list[tuple[int, bool]]:
    rng = random.Random(seed)
    return [(rng.randrange(18, 80), rng.random() < 0.3) for _ in range(n)]


def simulate(rules: RuleSet | None, people: list[tuple[int, bool]], seed: int) -> Run:
    """One strategy over the visitors; `rules` None: the oracle."""
    rng = random.Random(seed * 7919)
    clicks, regret, best_last = 0, 0.0, 0
    learner = Learner(rules) if rules is not None else None
    for n, (age, affluent) in enumerate(people):
        rates = {o: true_rate(o, age, affluent) for o in OFFERS}
        if learner is None:
            offer, bins = max(rates, key=rates.__getitem__), []
        else:
            offer, bins = learner.choose(n, age, affluent)
        clicked = rng.random() < rates[offer]
        if learner is not None:
            learner.record(n, offer, bins, clicked)
        clicks += clicked
        regret += max(rates.values()) - rates[offer]
        best_last += n >= len(people) - LAST and rates[offer] == max(rates.values())
    auc = _auc(learner) if learner is not None else {}
    return Run(clicks, regret, best_last / min(LAST, len(people)), auc)


class Learner:
    """Decides for one visitor and records the outcome as the service would."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.store = open_store("memory://", retention_seconds=400 * 86400)
        self.model = ModelCache(self.store, refresh_seconds=3600)
        self.model.follow(rules)
        self.decider = Decider(rules, "durable", model=self.model)
        self.validator = RequestValidator(rules)
        self.now = time.time()

    def choose(self, n: int, age: int, affluent: bool) -> tuple[str, list[tuple[str, str]]]:
        """The offer shown, and the bins an outcome of it counts in (attribution.py)."""
        message = pb.DecideRequest(customer_id=f"v-{n}", lifecycle_stage="active")
        message.touchpoint.channel = "web"
        message.profile.update({"age": age, "rich": affluent})
        request = self.validator.validate(message, self.now)
        decision = self.decider.decide_request(request, f"d-{n}")
        offer = decision.picks[0].action.id
        shown = shown_of(decision)
        return offer, bins_of(shown, offer) if shown is not None else []

    def record(self, n: int, offer: str, bins: list[tuple[str, str]], clicked: bool) -> None:
        """An impression, and a click or nothing: RecordOutcome's counter updates."""
        learning = self.rules.learning[offer]
        for outcome in (1, 2) if clicked else (1,):
            interaction = Interaction(offer, "web", outcome, self.now)
            counters = increments(learning, interaction)
            self.store.add_to_counters(counters | context_increments(learning, interaction, bins))
        if (n + 1) % REFRESH_EVERY == 0:
            self.model.refresh()


def _auc(learner: Learner) -> dict[str, float]:
    """Each predictor's AUC over all offers' bins, from the model's own counts."""
    context = learner.rules.learning_context
    if context is None:
        return {}
    counts = learner.model.snapshot.context
    features = [(p.feature, p.attribute or p.segment or "") for p in context.predictors]
    if context.segments:
        features = [(context.segment_feature, "segment")]
    found = {}
    for feature, name in features:
        bins = [e for (a, c, f, b), e in counts.items() if f == feature and c == "" and b != "*"]
        found[name] = predictor_auc(bins)
    return found


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20000)
    parser.add_argument("--seeds", type=int, default=3, help="runs per strategy")
    options = parser.parse_args(argv)
    n, seeds = options.decisions, range(1, options.seeds + 1)
    strategies: list[tuple[str, RuleSet | None]] = [(k, ruleset(v)) for k, v in CONTEXTS.items()]
    strategies.append(("oracle (true best per context)", None))
    rows = []
    for label, rules in strategies:
        runs = [simulate(rules, visitors(seed, n), seed) for seed in seeds]
        auc = {k: statistics.mean(r.auc[k] for r in runs) for k in runs[0].auc}
        rows.append(
            [
                label,
                f"{statistics.mean(r.clicks for r in runs) * 1000 / n:.1f}",
                f"{statistics.mean(r.regret for r in runs):.0f}",
                f"{statistics.mean(r.best_share_last for r in runs):.0%}",
                ", ".join(f"{k} {v:.2f}" for k, v in auc.items()) or "-",
            ]
        )
    headers = ["strategy", "clicks / 1,000", "regret vs oracle", "best, last 2,000", "AUC"]
    show(table(headers, rows, f"{n:,} decisions x {len(seeds)} seeds, rates by age and segment"))


if __name__ == "__main__":
    main()
