"""durable_rules against the reference evaluator: same rules, same requests, side by side.

    python -m bench.engines [--quick]

Before timing anything, every request is decided by both engines and the results are
compared: the rules that fire (detailed and fast programs, as sets), the recommendations
(same actions, same order, same channels, same scores), and with explain on the
exclusions and segments. Any difference stops the run with exit status 1 and a diff:
a benchmark of two engines that disagree would measure nothing.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import RULES_DIR, Stats, Target, ratio, show, table, us
from bench.generate import Spec, customers, generate
from bench.inprocess import HISTORY, Budget, decide_calls, measure
from bench.workload import example_requests
from nba.pipeline.decider import Decider
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb

GENERATED = Spec(100, 500)


class EnginesDisagree(SystemExit):
    """The engines gave different answers; the message lists the first differences."""


@dataclass(frozen=True, slots=True)
class Workload:
    label: str
    ruleset: RuleSet
    requests: list[pb.DecideRequest]


def workloads(quick: bool) -> list[Workload]:
    from nba.ruleset.loader import load_ruleset

    bundled = load_ruleset(RULES_DIR)
    generated = generate(GENERATED)
    count = 15 if quick else 40
    return [
        Workload(
            f"bundled rules, examples +{HISTORY} interactions",
            bundled,
            example_requests(bundled, history=HISTORY),
        ),
        Workload(
            f"generated {GENERATED.label}, {HISTORY} interactions",
            generated.load(),
            customers(generated, count, HISTORY),
        ),
    ]


# ---------------------------------------------------------------------------- check


def _recommendations(response: pb.DecideResponse) -> list[tuple[object, ...]]:
    return [(r.rank, r.action_id, r.channel, r.fallback, r.score) for r in response.recommendations]


def _same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> bool:
    """Equal, scores compared to 1e-9 relative (both engines feed the same arithmetic)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x[:-1] != y[:-1] or not math.isclose(x[-1], y[-1], rel_tol=1e-9):  # type: ignore[arg-type]
            return False
    return True


def _exclusions(response: pb.DecideResponse) -> list[tuple[str, ...]]:
    return [(e.action_id, e.rule, e.stage, e.channel) for e in response.excluded]


def check(workload: Workload, durable: Decider, reference: Decider) -> int:
    """Compare both engines on every request; raise EnginesDisagree on any difference."""
    problems: list[str] = []
    for msg in workload.requests:
        problems += _check_one(msg, durable, reference)
    if problems:
        shown = "\n  ".join(problems[:20])
        raise EnginesDisagree(
            f"ENGINES DISAGREE on {workload.label}: {len(problems)} differences\n  {shown}"
        )
    return len(workload.requests)


def _check_one(msg: pb.DecideRequest, durable: Decider, reference: Decider) -> list[str]:
    who = msg.customer_id
    problems = []
    request = durable.validator.validate(msg)
    for detailed in (False, True):
        d_ids = {r.id for r in durable.engine.fire(request, detailed=detailed)}
        r_ids = {r.id for r in reference.engine.fire(request, detailed=detailed)}
        if d_ids != r_ids:
            problems.append(
                f"{who} fired (detailed={detailed}): only durable {sorted(d_ids - r_ids)},"
                f" only reference {sorted(r_ids - d_ids)}"
            )
    for explain in (False, True):
        copy = pb.DecideRequest()
        copy.CopyFrom(msg)
        copy.explain = explain
        d, r = durable.decide(copy), reference.decide(copy)
        if not _same(_recommendations(d), _recommendations(r)):
            problems.append(
                f"{who} recommendations (explain={explain}): durable {_recommendations(d)}"
                f" != reference {_recommendations(r)}"
            )
        if explain and (_exclusions(d) != _exclusions(r) or list(d.segments) != list(r.segments)):
            problems.append(f"{who} exclusions or segments differ (explain on)")
    return problems


# ---------------------------------------------------------------------------- timing


def compare(workload: Workload, budget: Budget) -> list[list[object]]:
    durable = Decider(workload.ruleset, "durable")
    reference = Decider(workload.ruleset, "reference")
    checked = check(workload, durable, reference)
    requests = [durable.validator.validate(m) for m in workload.requests]
    rows = []
    for what in ("decide()", "engine.fire (fast)", "engine.fire (detailed)"):
        stats: dict[str, Stats] = {}
        for name, decider in (("durable", durable), ("reference", reference)):
            if what == "decide()":
                calls = decide_calls(decider, workload.requests)
            else:
                detailed = what.endswith("(detailed)")
                calls = [lambda r=r, e=decider.engine, d=detailed: e.fire(r, d) for r in requests]
            stats[name] = measure(calls, budget)
        d, r = stats["durable"], stats["reference"]
        rows.append(
            [
                workload.label,
                what,
                us(d.median),
                us(r.median),
                ratio(r.median / d.median),
                f"equal ({checked} requests)",
            ]
        )
    return rows


def run(quick: bool = False) -> list[Target]:
    budget = Budget.of(quick)
    rows: list[list[object]] = []
    for workload in workloads(quick):
        rows += compare(workload, budget)
    headers = [
        "workload",
        "measured",
        "durable median µs",
        "reference median µs",
        "reference / durable",
        "results",
    ]
    show(table(headers, rows, "Engines: durable_rules vs the reference evaluator (explain off)"))
    decide_rows = [r for r in rows if r[1] == "decide()"]
    return [
        Target(f"reference / durable decide(), {r[0]}", str(r[4]), "results equal", True)
        for r in decide_rows
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    run(parser.parse_args(argv).quick)


if __name__ == "__main__":
    main()
