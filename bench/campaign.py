"""A simulated campaign: does `nba report` find the uplift that was planted?

    python -m bench.campaign [--decisions 4000] [--seeds 20]

A web placement shows one of two savings offers or, to the universal control group
(10%, treatment none), a service message. The rule file rates `basic_saver` above
`bonus_saver`; the experiment `bonus_push` gives its challenger arm a lever that puts
`bonus_saver` first. Planted true click rates: basic 4%, bonus 6%, the service message
1%: the challenger's true uplift on the champion is +2.0 points, +50%.

Each run decides for `--decisions` new customers through the Decider (assignment by the
documented hash), records an impression and, with the true rate, a click against each
decision in a SQLite interaction store, and reports from the decision records with
`nba report`'s own code. Printed: one run's report of the arms, then over `--seeds`
runs the mean estimate of the challenger's uplift and how often its 95% interval held the
truth (about 95% of runs, if the intervals are right).

Then a budget under concurrent load: `--processes` processes decide `--load` customers
each at once on one SQLite store, with a budget of `--limit` challenger offers a day; the
recommendations made and the store's count must both be exactly the limit.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import show, table
from nba.authoring.report import ExperimentReport, report
from nba.decisionlog import DecisionRecord
from nba.decisionlog.record import RecordBuilder
from nba.pipeline.budgets import KEY_PREFIX
from nba.pipeline.decider import Decider
from nba.pipeline.types import Interaction, Outcome
from nba.ruleset.loader import load_documents
from nba.ruleset.ruleset import RuleSet
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb

TRUE_RATE = {"basic_saver": 0.04, "bonus_saver": 0.06, "service_tip": 0.01}
TRUE_UPLIFT = TRUE_RATE["bonus_saver"] / TRUE_RATE["basic_saver"] - 1

RULES = """
lifecycle_stages: [active]
channels:
  - {id: web, direction: inbound}
arbitration: {max_results: 1}
actions:
  - {id: basic_saver, purpose: marketing, group: savings, propensity: 0.05,
     treatments: {web: {headline: Easy access saver}}}
  - {id: bonus_saver, purpose: marketing, group: bonus, propensity: 0.04,
     treatments: {web: {headline: Bonus saver}}}
  - {id: service_tip, purpose: service, group: service, propensity: 0.01,
     treatments: {web: {headline: Keep your account safe}}}
levers:
  - {id: bonus_lever, groups: [bonus], factor: 1.0}
universal_control: {share: 0.1, salt: uc-bench, treatment: none}
experiments:
  - id: bonus_push
    salt: bonus-push-1
    control: champion
    arms:
      - {id: champion, share: 0.5}
      - {id: challenger, share: 0.5, levers: {bonus_lever: 1.5}}
"""


def campaign(
    rules: RuleSet, decisions: int, seed: int, directory: Path
) -> dict[str, ExperimentReport]:
    """One run: decide, record outcomes at the true rates, report every experiment."""
    rng = random.Random(seed)
    store = open_store(f"sqlite:///{directory / f'store-{seed}.db'}", retention_seconds=86400)
    decider, builder, now = Decider(rules), RecordBuilder(), time.time()
    records: list[DecisionRecord] = []
    for n in range(decisions):
        message = pb.DecideRequest(customer_id=f"s{seed}-c{n}", lifecycle_stage="active")
        message.touchpoint.channel = "web"
        decision = decider.decide_request(decider.validator.validate(message, now))
        records.append(builder.record(decision, now))
        shown = decision.picks[0].action.id
        for outcome in (Outcome.IMPRESSION, Outcome.CLICK):
            if outcome == Outcome.CLICK and rng.random() >= TRUE_RATE[shown]:
                break
            store.record(
                message.customer_id,
                Interaction(shown, "web", outcome, now, decision_id=decision.decision_id),
            )
    found = report(records, store, rules)
    store.close()
    decider.close()
    return {e.experiment: e for e in found.experiments}


# The true rate of each arm: what its customers are shown, at the planted rates.
TRUTH = {
    ("bonus_push", "champion"): TRUE_RATE["basic_saver"],
    ("bonus_push", "challenger"): TRUE_RATE["bonus_saver"],
    ("universal_control", "control"): TRUE_RATE["service_tip"],
    ("universal_control", "treated"): (TRUE_RATE["basic_saver"] + TRUE_RATE["bonus_saver"]) / 2,
}


BUDGET = "budgets:\n  - {id: bonus_daily, limit: %d, per: day, actions: [bonus_saver]}\n"


def _deciding(args: tuple[str, int, int, int]) -> int:
    """One process of the load: decide `n` customers on the shared store; bonus offers made."""
    store_url, limit, worker, n = args
    rules = load_documents([("rules/ruleset.yaml", RULES), ("rules/budgets.yaml", BUDGET % limit)])
    store = open_store(store_url, retention_seconds=86400)
    decider = Decider(rules, store=store)
    made = 0
    for i in range(n):
        message = pb.DecideRequest(customer_id=f"w{worker}-c{i}", lifecycle_stage="active")
        message.touchpoint.channel = "web"
        response = decider.decide(message)
        made += sum(r.action_id == "bonus_saver" for r in response.recommendations)
    decider.close()
    store.close()
    return made


def budget_under_load(processes: int, each: int, limit: int, directory: Path) -> tuple[int, int]:
    """(offers made by all processes, the store's count) for one budget of `limit`."""
    from concurrent.futures import ProcessPoolExecutor

    url = f"sqlite:///{directory / 'budget.db'}"
    open_store(url, retention_seconds=86400).close()  # the schema, before they race
    with ProcessPoolExecutor(processes) as pool:
        made = sum(pool.map(_deciding, [(url, limit, w, each) for w in range(processes)]))
    store = open_store(url, retention_seconds=86400)
    counted = sum(store.budget_counts(KEY_PREFIX).values())
    store.close()
    return made, counted


def _arm_rows(found: ExperimentReport) -> list[list[object]]:
    rows: list[list[object]] = []
    for arm in found.arms:
        r, u = arm.rate, arm.uplift
        uplift = (
            f"{u.relative:+.1%} [{u.relative_low:+.1%}, {u.relative_high:+.1%}]"
            if u is not None and u.relative is not None and u.relative_low is not None
            else "-"
        )
        truth = TRUTH[(found.experiment, arm.arm)]
        rows.append(
            [
                found.experiment,
                arm.arm,
                arm.customers,
                f"{r.value:.2%} [{r.low:.2%}, {r.high:.2%}]",
                f"{truth:.2%}",
                uplift,
            ]
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20000)
    parser.add_argument("--seeds", type=int, default=20, help="runs, for the intervals' coverage")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--load", type=int, default=1000, help="decisions per process")
    parser.add_argument("--limit", type=int, default=500, help="the budget under load")
    options = parser.parse_args(argv)
    rules = load_documents([("rules/ruleset.yaml", RULES)])
    with tempfile.TemporaryDirectory() as scratch:
        started = time.monotonic()
        made, counted = budget_under_load(
            options.processes, options.load, options.limit, Path(scratch)
        )
        load_seconds = time.monotonic() - started
        runs = [
            campaign(rules, options.decisions, s, Path(scratch))
            for s in range(1, options.seeds + 1)
        ]
    first = runs[0]
    show(
        table(
            [
                "experiment",
                "arm",
                "customers",
                "click rate [95%]",
                "truth",
                "uplift on champion [95%]",
            ],
            _arm_rows(first["universal_control"]) + _arm_rows(first["bonus_push"]),
            f"run 1 ({options.decisions:,} decisions;"
            f" sample-ratio test p = {first['bonus_push'].srm_p:.2f})",
        )
    )
    estimates, covered = [], 0
    for found in (r["bonus_push"] for r in runs):
        challenger = next(a for a in found.arms if a.arm == "challenger")
        u = challenger.uplift
        assert u is not None and u.relative is not None
        assert u.relative_low is not None and u.relative_high is not None
        estimates.append(u.relative)
        covered += u.relative_low <= TRUE_UPLIFT <= u.relative_high
    show(
        f"over {len(runs)} runs: challenger uplift estimated {statistics.mean(estimates):+.1%}"
        f" (sd {statistics.stdev(estimates) if len(estimates) > 1 else 0:.1%}) against a true"
        f" {TRUE_UPLIFT:+.1%}; its 95% interval held the truth in {covered} of {len(runs)} runs;"
        f" sample-ratio mismatch flagged in {sum(e.srm for r in runs for e in r.values())}"
    )
    total = options.processes * options.load
    show(
        f"budget under load: {options.processes} processes deciding {total:,} customers at once"
        f" on one SQLite store in {load_seconds:.1f} s; budget {options.limit:,}: {made:,}"
        f" offers made, the store counts {counted:,}"
        + (" (held)" if made == counted == options.limit else " (NOT HELD)")
    )


if __name__ == "__main__":
    main()
