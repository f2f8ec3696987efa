"""Off-policy estimates against the truth, on a simulation where the truth is known.

    python -m bench.offpolicy [--decisions 3000] [--draws 200]

The logging policy is bench/learning.py's web placement learning with Thompson sampling
(five offers rated alike, true click rates 2-12%); every decision is logged as the
decision log keeps it (the request, the first action, the scorer's parameters, the
seed) with its simulated click. Then each candidate rule set is evaluated on that log
by nba.authoring.offpolicy (IPS, self-normalised IPS, doubly robust), and compared with
its true click rate on the same traffic: the mean over the logged decisions of
sum_a pi_new(a | x) x true rate(a), exact because the true rates are planted.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence

from bench.common import show, table
from bench.learning import ACTION, RULES, TRUE_RATES, ruleset
from nba.authoring.offpolicy import Logged, evaluate, first_action_probabilities
from nba.pipeline.decider import Decider
from nba.pipeline.types import Interaction
from nba.pipeline.validate import RequestValidator
from nba.ruleset.loader import load_documents
from nba.ruleset.ruleset import RuleSet
from nba.scoring.adaptive import ModelCache
from nba.scoring.evidence import increments
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb


def static_set(propensities: dict[str, float]) -> RuleSet:
    """The placement with fixed propensities (no learning section)."""
    actions = "".join(ACTION % (a, a) for a in TRUE_RATES)
    for action_id, p in propensities.items():
        old = f"  - id: {action_id}\n    purpose: marketing\n    group: g_{action_id}\n"
        old += "    value: 1\n    propensity: 0.05\n"
        actions = actions.replace(old, old.replace("propensity: 0.05", f"propensity: {p}"))
    text = RULES % {"exploration": '"off"', "maturity": 0, "actions": actions}
    text = text[: text.index("learning:")] + text[text.index("actions:") :]
    return load_documents([("rules/ruleset.yaml", text)])


def log_traffic(decisions: int, seed: int) -> tuple[list[Logged], Decider]:
    rules = ruleset("thompson", 0)
    rng = random.Random(seed)
    store = open_store("memory://", retention_seconds=400 * 86400)
    model = ModelCache(store, refresh_seconds=3600)
    model.follow(rules)
    decider = Decider(rules, "durable", model=model)
    message = pb.DecideRequest(customer_id="v", lifecycle_stage="active")
    message.touchpoint.channel = "web"
    validator = RequestValidator(rules)
    logged, now = [], time.time()
    for n in range(decisions):
        message.customer_id = f"visitor-{n}"
        request = validator.validate(message, now)
        decision = decider.decide_request(request, f"d-{seed}-{n}")
        shown = decision.picks[0].action.id
        clicked = rng.random() < TRUE_RATES[shown]
        logged.append(
            Logged(
                decision.request,
                shown,
                1.0 if clicked else 0.0,
                1.0,
                decision.scorer.parameters(),
                decision.decision_id,
            )
        )
        for outcome in (1, 2) if clicked else (1,):
            item = Interaction(shown, "web", outcome, now)
            store.add_to_counters(increments(rules.learning[shown], item))
        if (n + 1) % 50 == 0:
            model.refresh()
    return logged, Decider(rules, "durable")


def truth(candidate: Decider, logged: Sequence[Logged], draws: int) -> float:
    total = 0.0
    for item in logged:
        model = ModelCache.fixed("web", item.model) if item.model else None
        pi = first_action_probabilities(candidate, item.request, model, draws, item.seed)
        total += sum(p * TRUE_RATES[a] for a, p in pi.items())
    return total / len(logged)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    started = time.monotonic()
    logged, logging = log_traffic(options.decisions, options.seed)
    candidates = {
        "offer_e rated best (always offer_e)": Decider(static_set({"offer_e": 0.2}), "durable"),
        "offer_c rated best (always offer_c)": Decider(static_set({"offer_c": 0.2}), "durable"),
        "greedy on the same evidence": Decider(ruleset('"off"', 0), "durable"),
        "the logging policy itself": logging,
    }
    rows = []
    for label, candidate in candidates.items():
        found = evaluate(logged, logging, candidate, options.draws)
        true = truth(candidate, logged, options.draws)
        error = f"{abs(found.dr.mean - true):.4f}"
        support = f"{found.support:,} ({found.effective_size:,.0f})"
        rows.append(
            [label, f"{true:.4f}", str(found.ips), str(found.snips), str(found.dr), error, support]
        )
    rate = sum(item.reward for item in logged) / len(logged)
    title = (
        f"{len(logged):,} logged Thompson decisions (logged click rate {rate:.4f});"
        f" {options.draws} draws per selection probability; estimates with 95% intervals"
    )
    headers = ["candidate", "truth", "IPS", "SNIPS", "DR", "|DR - truth|", "support (ESS)"]
    show(table(headers, rows, title))
    show(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
