"""In-process decision latency: the whole pipeline called as a function, no gRPC.

    python -m bench.inprocess [--quick] [--profile [examples|large]]

1. The bundled rule set over every example request: as sent, and with 20 synthetic
   interactions added (the target's condition); explain off, and on as a second row.
2. A breakdown of one decision (example set, 20 interactions, explain off) into
   validate / facts / rules / rest of the pipeline, each a median.
3. Scaling curves on generated rule sets: actions, rules, interactions in history.
   For each point: the cost ratio to the first point, the growth per step, and the
   local exponent log(cost ratio) / log(x ratio): 1 is linear, above 1 worse.
4. GC pauses: p99 with the collector as is, and with `gc.freeze()` after loading.
--profile runs cProfile over a workload instead and prints the top costs.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import pstats
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.common import RULES_DIR, Stats, Target, ratio, show, show_targets, table, time_calls, us
from bench.generate import Generated, Spec, customers, generate
from bench.workload import example_requests
from nba.pipeline.decider import Decider, history_horizon
from nba.ruleset.loader import load_ruleset
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb

HISTORY = 20  # interactions per request in the target workload
SUPERLINEAR = 1.1  # local exponent above this is flagged (medians wobble by a few %)


@dataclass(frozen=True, slots=True)
class Budget:
    """How long to measure: seconds per row, with floors and ceilings on the sample count."""

    seconds: float
    min_iterations: int
    max_iterations: int
    customers: int

    @classmethod
    def of(cls, quick: bool) -> Budget:
        return cls(0.4, 100, 5_000, 15) if quick else cls(2.0, 500, 50_000, 40)


def measure(calls: Sequence[Callable[[], object]], budget: Budget) -> Stats:
    """Warm up over every call once, then size the run from that pass to fit the budget."""
    start = time.perf_counter()
    for call in calls:
        call()
    per_call = (time.perf_counter() - start) / len(calls)
    wanted = int(budget.seconds / max(per_call, 1e-7))
    iterations = max(budget.min_iterations, min(budget.max_iterations, wanted))
    return time_calls(calls, iterations, warmup=min(iterations // 10, 2_000))


def decide_calls(
    decider: Decider, requests: Sequence[pb.DecideRequest]
) -> list[Callable[[], object]]:
    return [lambda m=m: decider.decide(m) for m in requests]


# ---------------------------------------------------------------------------- example set


def example_rows(budget: Budget) -> tuple[str, Stats]:
    """The example set under several conditions; returns the target row's stats too."""
    ruleset = load_ruleset(RULES_DIR)
    plain = Decider(ruleset, "durable")
    # The server's default-free path: `nba serve --store memory://` reads an (empty) store.
    stored = Decider(
        ruleset,
        "durable",
        store=open_store("memory://", retention_seconds=history_horizon(ruleset)),
    )
    cases = [
        ("as sent (0-4 interactions), explain off", plain, 0, False),
        ("as sent, explain on", plain, 0, True),
        (f"+{HISTORY} interactions, explain off (target)", plain, HISTORY, False),
        (f"+{HISTORY} interactions, explain on", plain, HISTORY, True),
        (f"+{HISTORY} interactions, explain off, memory:// store", stored, HISTORY, False),
    ]
    rows, target = [], None
    base = None
    for label, decider, history, explain in cases:
        requests = example_requests(ruleset, history=history, explain=explain)
        stats = measure(decide_calls(decider, requests), budget)
        base = base or stats
        target = stats if "(target)" in label else target
        rows.append(_stat_row(label, stats, base))
    headers = ["example set (19 requests)", "n", "median µs", "p99 µs", "mean µs", "x row 1"]
    show(table(headers, rows, f"In-process decide, bundled rules ({ruleset.summary()})"))
    assert target is not None
    return ruleset.summary(), target


def _stat_row(label: str, stats: Stats, base: Stats) -> list[object]:
    return [
        label,
        stats.n,
        us(stats.median),
        us(stats.p99),
        us(stats.mean),
        ratio(stats.median / base.median),
    ]


def breakdown(budget: Budget) -> None:
    """Where one decision's time goes, stage by stage (each a median of its own)."""
    ruleset = load_ruleset(RULES_DIR)
    decider = Decider(ruleset, "durable")
    engine = decider.engine
    messages = example_requests(ruleset, history=HISTORY)
    requests = [decider.validator.validate(m) for m in messages]
    facts = getattr(engine, "facts", None)
    program = getattr(engine, "fast", None)
    stages: list[tuple[str, list[Callable[[], object]]]] = [
        (
            "validate (proto -> DecisionRequest)",
            [lambda m=m: decider.validator.validate(m) for m in messages],
        ),
    ]
    if facts is not None and program is not None:
        props = [facts.build(r) for r in requests]
        stages.append(
            ("facts (term values, counts)", [lambda r=r: facts.build(r) for r in requests])
        )
        stages.append(
            (
                "rules (durable_rules, fast program)",
                [lambda p=p: engine.fire_props(p, program) for p in props],
            )
        )
    stages += [
        (
            "engine.fire (facts + rules)",
            [lambda r=r: engine.fire(r, detailed=False) for r in requests],
        ),
        (
            "after validate (decide_request + respond)",
            [lambda r=r: decider.responses.build(decider.decide_request(r)) for r in requests],
        ),
        ("whole decide()", decide_calls(decider, messages)),
    ]
    measured = {label: measure(calls, budget) for label, calls in stages}
    total = measured["whole decide()"].median
    rest = (
        measured["after validate (decide_request + respond)"].median
        - measured["engine.fire (facts + rules)"].median
    )
    rows = [[label, us(s.median), f"{s.median / total:.0%}"] for label, s in measured.items()]
    rows.insert(
        -1,
        [
            "rest (engage, policies, arbitrate, respond) = after validate - fire",
            us(rest),
            f"{rest / total:.0%}",
        ],
    )
    if facts is None:
        rows.append(["(facts/rules not split: the engine has no `facts`/`fast`)", "", ""])
    show(
        table(
            ["stage (example set, +20 interactions, explain off)", "median µs", "of decide"],
            rows,
            "Breakdown",
        )
    )


# ---------------------------------------------------------------------------- curves


@dataclass(frozen=True, slots=True)
class Point:
    label: str
    x: int
    spec: Spec
    history: int


def curves() -> dict[str, tuple[str, list[Point]]]:
    """name -> (what x is, points). Rules scale with actions (2 per action) on the first."""
    return {
        "actions": (
            "actions",
            [
                Point(f"{a} actions / {2 * a} rules", a, Spec(a, 2 * a), HISTORY)
                for a in (10, 100, 1000)
            ],
        ),
        "rules": (
            "rules",
            [Point(f"100 actions / {r} rules", r, Spec(100, r), HISTORY) for r in (100, 500, 2000)],
        ),
        "interactions": (
            "interactions",
            [
                Point(f"100 actions / 500 rules, {k} interactions", k, Spec(100, 500), k)
                for k in (0, 20, 200)
            ],
        ),
    }


def run_curve(name: str, unit: str, points: list[Point], budget: Budget) -> dict[str, Stats]:
    results: list[tuple[Point, Stats, int]] = []
    loaded: dict[Spec, tuple[Generated, Decider]] = {}
    for point in points:
        if point.spec not in loaded:
            generated = generate(point.spec)
            loaded[point.spec] = (generated, Decider(generated.load(), "durable"))
        generated, decider = loaded[point.spec]
        requests = customers(generated, budget.customers, point.history)
        # As the server runs: after a load it collects once and freezes what is loaded, so
        # full collections never walk the rule set (see the GC table below for the cost).
        gc.collect()
        gc.freeze()
        try:
            stats = measure(decide_calls(decider, requests), budget)
        finally:
            gc.unfreeze()
        results.append((point, stats, getattr(decider.engine, "chunk_count", 0)))
    show(
        table(
            _CURVE_HEADERS,
            _curve_rows(unit, results),
            f"Scaling: {name} (generated sets, {budget.customers} customers)",
        )
    )
    return {p.label: s for p, s, _ in results}


_CURVE_HEADERS = [
    "point",
    "chunks",
    "median µs",
    "p99 µs",
    "mean µs",
    "x first",
    "cost x prev (x step)",
    "exponent",
    "µs per unit",
    "growth",
]


def _curve_rows(unit: str, results: list[tuple[Point, Stats, int]]) -> list[list[object]]:
    rows: list[list[object]] = []
    first = results[0][1].median
    prev: tuple[Point, Stats] | None = None
    for point, stats, chunks in results:
        step, exponent, marginal, growth = "", "", "", ""
        if prev is not None:
            p_point, p_stats = prev
            cost_step = stats.median / p_stats.median
            marginal = f"{(stats.median - p_stats.median) / (point.x - p_point.x):.2f}/{unit[:-1]}"
            if p_point.x > 0:
                x_step = point.x / p_point.x
                step = f"{cost_step:.2f} ({x_step:g})"
                e = math.log(cost_step) / math.log(x_step)
                exponent = f"{e:.2f}"
                growth = "WORSE THAN LINEAR" if e > SUPERLINEAR else "sublinear/linear"
            else:
                step = f"{cost_step:.2f} (from 0)"
                growth = "n/a (from 0)"
        rows.append(
            [
                point.label,
                chunks,
                us(stats.median),
                us(stats.p99),
                us(stats.mean),
                ratio(stats.median / first),
                step,
                exponent,
                marginal,
                growth,
            ]
        )
        prev = (point, stats)
    return rows


# ---------------------------------------------------------------------------- gc


def gc_pauses(budget: Budget) -> None:
    """p99 with the collector as it is, then with the loaded rule set moved out of its reach.

    A full (generation 2) collection walks every live object, the loaded rule set's
    included: on a large set that is a pause of tens of ms every few hundred decisions.
    `gc.freeze()` after loading takes those objects out of every collection.
    """
    ruleset = load_ruleset(RULES_DIR)
    big = generate(Spec(1000, 2000))
    cases = [
        (
            f"bundled rules, examples +{HISTORY} interactions",
            Decider(ruleset, "durable"),
            example_requests(ruleset, history=HISTORY),
        ),
        (
            f"generated 1000 actions / 2000 rules, {HISTORY} interactions",
            Decider(big.load(), "durable"),
            customers(big, budget.customers, HISTORY),
        ),
    ]
    rows = []
    for label, decider, requests in cases:
        calls = decide_calls(decider, requests)
        normal = measure(calls, budget)
        gc.collect()
        gc.freeze()
        try:
            frozen = measure(calls, budget)
        finally:
            gc.unfreeze()
        rows.append(
            [
                label,
                us(normal.median),
                us(normal.p99),
                us(frozen.median),
                us(frozen.p99),
                ratio(normal.p99 / frozen.p99),
            ]
        )
    headers = [
        "workload",
        "median µs",
        "p99 µs",
        "median, frozen",
        "p99, frozen",
        "p99 gc / frozen",
    ]
    show(table(headers, rows, "GC pauses: gc as is vs gc.freeze() after load"))


# ---------------------------------------------------------------------------- entry points


def run(quick: bool = False) -> list[Target]:
    budget = Budget.of(quick)
    _summary, target = example_rows(budget)
    breakdown(budget)
    measured: dict[str, Stats] = {}
    for name, (unit, points) in curves().items():
        measured.update(run_curve(name, unit, points, budget))
    gc_pauses(budget)
    big = measured["1000 actions / 2000 rules"]
    return [
        Target(
            "in-process median, example set +20 interactions",
            f"{us(target.median)} µs",
            "<= 150 µs",
            target.median <= 150,
        ),
        Target(
            "in-process p99, example set +20 interactions",
            f"{us(target.p99)} µs",
            "<= 500 µs",
            target.p99 <= 500,
        ),
        Target(
            "in-process median, generated 1,000 actions / 2,000 rules",
            f"{us(big.median)} µs",
            "<= 3,000 µs",
            big.median <= 3000,
        ),
    ]


def profile(quick: bool = False, workload: str = "examples") -> None:
    """cProfile over a workload; prints the top functions by own and by cumulative time.

    examples: the target workload (bundled rules, examples +20 interactions);
    large: generated 1000 actions / 2000 rules, 40 customers with 20 interactions.
    """
    if workload == "large":
        big = generate(Spec(1000, 2000))
        decider = Decider(big.load(), "durable")
        requests = customers(big, 40, HISTORY)
        rounds = 2 if quick else 10
    else:
        ruleset = load_ruleset(RULES_DIR)
        decider = Decider(ruleset, "durable")
        requests = example_requests(ruleset, history=HISTORY)
        rounds = 100 if quick else 500
    for msg in requests:
        decider.decide(msg)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(rounds):
        for msg in requests:
            decider.decide(msg)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    decisions = rounds * len(requests)
    show(f"cProfile: {decisions} decisions, {workload} workload, explain off")
    show(out.getvalue())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="examples",
        choices=("examples", "large"),
        help="profile a workload instead of timing (default: examples, the target's)",
    )
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.quick, args.profile)
        return
    targets = run(args.quick)
    show_targets(targets)


if __name__ == "__main__":
    main()
