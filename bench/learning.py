"""Does learning find the best offer? A simulation with planted true click rates.

    python -m bench.learning [--decisions 6000] [--seeds 5]

A web placement with five offers the rule file rates alike (propensity 0.05 each) whose
true click rates are 2%, 3%, 5%, 8% and 12% (value 1 each, so the best offer is the most
clicked one). Each decision shows the top offer; the simulated visitor clicks with its
true rate; the outcome (an impression, and a click or nothing) is recorded through the
same path RecordOutcome takes (store counters), and the model is re-read every 50
decisions, as a worker's refresh would. Strategies, in the same run and on the same
visitors (one random stream per strategy, the same seed):

- static: the rule file's propensities, never learning (ties broken by the rule set);
- greedy: the posterior mean (exploration off);
- thompson: Thompson sampling (exploration on, maturity off);
- thompson + maturity: sampling only on 20% of decisions until an offer has 5 clicks.

Printed per strategy, as the mean over `--seeds` runs (the median for the last column):
clicks per 1,000 decisions, the regret against always showing the best offer (expected
clicks lost), the share of the last 1,000 decisions given to the best offer, and the
first decision after which the best offer leads for good (its share of every later
200-decision window above 50%; "never" counts as the run's length).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import show, table
from nba.pipeline.decider import Decider
from nba.pipeline.types import Interaction
from nba.ruleset.loader import load_documents
from nba.ruleset.ruleset import RuleSet
from nba.scoring.adaptive import ModelCache
from nba.scoring.evidence import increments
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb

TRUE_RATES = {"offer_a": 0.02, "offer_b": 0.03, "offer_c": 0.05, "offer_d": 0.08, "offer_e": 0.12}
BEST = max(TRUE_RATES, key=TRUE_RATES.__getitem__)
REFRESH_EVERY = 50
WINDOW = 200

RULES = """
lifecycle_stages: [active]
profile:
  age: {type: int, min: 0, max: 130}
channels:
  - {id: web, direction: inbound}
arbitration: {max_results: 1}
learning:
  prior_strength: 20
  half_life: 90d
  exploration: %(exploration)s
  positives: [click]
  maturity: {positives: %(maturity)d, share: 0.2}
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


@dataclass
class Outcome:
    label: str
    clicks: int
    regret: float
    best_share_last: float
    leads_from: int | None


def ruleset(exploration: str, maturity: int) -> RuleSet:
    actions = "".join(ACTION % (a, a) for a in TRUE_RATES)
    text = RULES % {"exploration": exploration, "maturity": maturity, "actions": actions}
    return load_documents([("rules/ruleset.yaml", text)])


def simulate(label: str, rules: RuleSet, decisions: int, seed: int, learn: bool) -> Outcome:
    rng = random.Random(seed)
    store = open_store("memory://", retention_seconds=400 * 86400)
    model = ModelCache(store, refresh_seconds=3600)
    model.follow(rules)
    decider = Decider(rules, "durable", model=model if learn else None)
    request = pb.DecideRequest(customer_id="v", lifecycle_stage="active")
    request.touchpoint.channel = "web"
    shown: list[str] = []
    clicks, regret = 0, 0.0
    now = time.time()
    for n in range(decisions):
        request.customer_id = f"visitor-{n}"
        action_id = decider.decide(request).recommendations[0].action_id
        shown.append(action_id)
        clicked = rng.random() < TRUE_RATES[action_id]
        clicks += clicked
        regret += TRUE_RATES[BEST] - TRUE_RATES[action_id]
        learning = rules.learning[action_id]
        for outcome in (1, 2) if clicked else (1,):
            store.add_to_counters(increments(learning, Interaction(action_id, "web", outcome, now)))
        if (n + 1) % REFRESH_EVERY == 0:
            model.refresh()
    last = Counter(shown[-1000:])
    return Outcome(label, clicks, regret, last[BEST] / min(1000, decisions), _leads_from(shown))


def _leads_from(shown: Sequence[str]) -> int | None:
    """The first decision from which every later window gives the best offer > 50%."""
    leads: int | None = None
    for start in range(0, len(shown) - WINDOW + 1, WINDOW // 4):
        window = shown[start : start + WINDOW]
        holds = window.count(BEST) / WINDOW > 0.5
        leads = (start if leads is None else leads) if holds else None
    return leads


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=6000)
    parser.add_argument("--seeds", type=int, default=5, help="runs per strategy")
    options = parser.parse_args(argv)
    n, seeds = options.decisions, range(1, options.seeds + 1)
    strategies = [
        ("static (rule file)", ruleset('"off"', 0), False),
        ("greedy (posterior mean)", ruleset('"off"', 0), True),
        ("thompson", ruleset("thompson", 0), True),
        ("thompson + maturity 5", ruleset("thompson", 5), True),
    ]
    rows = []
    for label, rules, learn in strategies:
        runs = [simulate(label, rules, n, seed, learn) for seed in seeds]
        leads = sorted(n if o.leads_from is None else o.leads_from for o in runs)
        rows.append(
            [
                label,
                f"{statistics.mean(o.clicks for o in runs) * 1000 / n:.1f}",
                f"{statistics.mean(o.regret for o in runs):.0f}",
                f"{statistics.mean(o.best_share_last for o in runs):.0%}",
                "never" if leads[len(leads) // 2] == n else f"{leads[len(leads) // 2]:,}",
            ]
        )
    best = TRUE_RATES[BEST] * 1000
    headers = ["strategy", "clicks / 1,000", "regret (clicks)", "best's share, last 1,000"]
    headers.append("best leads from decision")
    title = f"{n:,} decisions, true rates {TRUE_RATES} (always-best: {best:.0f} / 1,000)"
    show(table(headers, rows, title))


if __name__ == "__main__":
    main()
