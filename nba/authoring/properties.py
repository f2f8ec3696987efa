"""Properties every rule set must satisfy, checked on customers generated from its schema.

`nba check DIR` runs them on an author's rule set. Hypothesis generates requests from the
set's own profile schema, touchpoints, channels and actions (see nba.authoring.strategies), biased
to the literals the rules compare with; when a property breaks it shrinks the request to
a minimal failing customer, which is written as a request file to replay with
`nba explain`.

The properties (each holds by design; a failure is a bug in the engine or the compiler
that this rule set brings out, and is worth reporting with the file):
  consent               no marketing recommendation on a channel without consent
  suppression-wins      a suppression that holds always beats eligibility
  engagement-respected  no action is recommended whose engagement rules do not all hold
  well-formed           ranks 1..n, scores non-increasing, no action twice, max_results
  deterministic         the same request gives the same decision
  engines-agree         durable_rules and the reference evaluator decide the same
  explain-agrees        explaining a decision does not change it
  suppressions-only-remove
                        removing a rule that only suppresses never removes a qualifying
                        action that rule did not suppress
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from google.protobuf import json_format
from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from nba.authoring.strategies import any_requests
from nba.engine.reference import ReferenceEngine
from nba.pipeline.decider import Decider
from nba.pipeline.engagement import engage
from nba.pipeline.policies import allowed
from nba.pipeline.types import DecisionRequest
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb


@dataclass
class Context:
    """What the properties share: the rule set and its deciders, built once."""

    ruleset: RuleSet
    durable: Decider
    reference: Decider
    recommended: Counter[str] = field(default_factory=Counter)


Property = Callable[[Context, pb.DecideRequest, st.DataObject], None]
# (property running, customers checked so far, customers in all): for a progress bar
Progress = Callable[[str, int, int], None]


@dataclass
class Result:
    name: str
    examples: int
    failure: str = ""
    minimal: pb.DecideRequest | None = None

    @property
    def passed(self) -> bool:
        return not self.failure


def _ranking(response: pb.DecideResponse) -> list[tuple[object, ...]]:
    return [(r.rank, r.action_id, r.channel, r.score, r.fallback) for r in response.recommendations]


def consent(ctx: Context, message: pb.DecideRequest, _: st.DataObject) -> None:
    response = ctx.durable.decide(message)
    request = ctx.durable.validator.validate(message)
    for rec in response.recommendations:
        ctx.recommended[rec.action_id] += 1
        action = ctx.ruleset.actions[rec.action_id]
        channel = ctx.ruleset.channels[rec.channel]
        assert allowed(channel, action.purpose, request.consent), (
            f"{rec.action_id} ({action.purpose}) recommended on {rec.channel} without consent"
        )


def suppression_wins(ctx: Context, message: pb.DecideRequest, _: st.DataObject) -> None:
    request = ctx.reference.validator.validate(message)
    held = [r for r in ReferenceEngine(ctx.ruleset).fire(request) if r.kind == "suppress"]
    for rec in ctx.durable.decide(message).recommendations:
        for rule in held:
            assert rec.action_id not in rule.targets, (
                f"{rec.action_id} recommended though suppression '{rule.id}' ({rule.location})"
                " holds for this customer"
            )


def engagement_respected(ctx: Context, message: pb.DecideRequest, _: st.DataObject) -> None:
    request = ctx.reference.validator.validate(message)
    fired = {r.index for r in ReferenceEngine(ctx.ruleset).fire(request)}
    for rec in ctx.durable.decide(message).recommendations:
        if rec.fallback:
            continue  # a fallback is what is said when nothing qualifies
        for rule in ctx.ruleset.engagement[rec.action_id]:
            assert rule.index in fired, (
                f"{rec.action_id} recommended though its rule '{rule.id}' ({rule.location})"
                " does not hold"
            )


def well_formed(ctx: Context, message: pb.DecideRequest, _: st.DataObject) -> None:
    recs = list(ctx.durable.decide(message).recommendations)
    limit = message.max_results or ctx.ruleset.arbitration.max_results
    assert len(recs) <= limit, f"{len(recs)} recommendations, max_results {limit}"
    assert [r.rank for r in recs] == list(range(1, len(recs) + 1)), "ranks are not 1..n"
    scores = [r.score for r in recs]
    assert scores == sorted(scores, reverse=True), f"scores not non-increasing: {scores}"
    ids = [r.action_id for r in recs]
    assert len(set(ids)) == len(ids), f"an action recommended twice: {ids}"


def deterministic(ctx: Context, message: pb.DecideRequest, _: st.DataObject) -> None:
    first, second = ctx.durable.decide(message), ctx.durable.decide(message)
    assert _ranking(first) == _ranking(second), "the same request was decided differently"


def engines_agree(ctx: Context, message: pb.DecideRequest, _: st.DataObject) -> None:
    durable, reference = ctx.durable.decide(message), ctx.reference.decide(message)
    assert _ranking(durable) == _ranking(reference), (
        f"durable_rules {_ranking(durable)} != reference {_ranking(reference)}"
    )


def explain_agrees(ctx: Context, message: pb.DecideRequest, _: st.DataObject) -> None:
    quiet = pb.DecideRequest()
    quiet.CopyFrom(message)
    quiet.explain = False
    loud = pb.DecideRequest()
    loud.CopyFrom(message)
    loud.explain = True
    assert _ranking(ctx.durable.decide(quiet)) == _ranking(ctx.durable.decide(loud)), (
        "explaining changed the decision"
    )


def suppressions_only_remove(ctx: Context, message: pb.DecideRequest, data: st.DataObject) -> None:
    suppressions = [r for r in ctx.ruleset.rules if r.kind == "suppress"]
    if not suppressions:
        return
    removed = data.draw(st.sampled_from(suppressions), label="removed suppression")
    kept = tuple(
        replace(r, index=i) for i, r in enumerate(r for r in ctx.ruleset.rules if r is not removed)
    )
    without = replace(ctx.ruleset, rules=kept)  # post-init recomputes strata and lookups
    request = ctx.reference.validator.validate(message)
    before = _qualifying(ctx.ruleset, request)
    after = _qualifying(without, request)
    lost = before - after
    assert not lost, f"removing suppression '{removed.id}' removed {sorted(lost)}"
    gained = after - before
    assert gained <= removed.targets, (
        f"removing suppression '{removed.id}' added {sorted(gained - removed.targets)},"
        " which it does not target"
    )


def _qualifying(ruleset: RuleSet, request: DecisionRequest) -> set[str]:
    """Actions that pass their engagement rules and every suppression."""
    fired = ReferenceEngine(ruleset).fire(request, detailed=True)
    return {c.action.id for c in engage(ruleset, fired, explain=True).candidates}


PROPERTIES: dict[str, Property] = {
    "consent": consent,
    "suppression-wins": suppression_wins,
    "engagement-respected": engagement_respected,
    "well-formed": well_formed,
    "deterministic": deterministic,
    "engines-agree": engines_agree,
    "explain-agrees": explain_agrees,
    "suppressions-only-remove": suppressions_only_remove,
}


def run(
    ruleset: RuleSet,
    examples: int = 200,
    only: list[str] | None = None,
    properties: dict[str, Property] | None = None,
    engine: str = "durable",
    seed: int | None = None,
    progress: Progress | None = None,
) -> tuple[list[Result], Counter[str]]:
    """Each property on `examples` generated customers; and how often each action won.

    With a seed, the same customers are generated every run (reproducible checks in CI);
    without, each run explores new ones. progress(property, done, total) is called after
    every customer checked and once as each property ends (a run takes ~30 s).
    """
    chosen = properties or PROPERTIES
    names = only or list(chosen)
    ctx = Context(ruleset, Decider(ruleset, engine), Decider(ruleset, "reference"))
    total = examples * len(names)
    results = []
    for i, name in enumerate(names):
        tick = None
        if progress is not None:
            tick = _ticker(progress, name, i * examples, examples, total)
            tick(0)
        results.append(_run_one(name, chosen[name], ctx, examples, seed, tick))
        if tick is not None:
            tick(examples)  # hypothesis may stop early: the space of customers is exhausted
    return results, ctx.recommended


def _ticker(
    progress: Progress, name: str, before: int, examples: int, total: int
) -> Callable[[int], None]:
    """progress() for one property, its count capped: shrinking replays customers."""
    return lambda done: progress(name, before + min(done, examples), total)


def _run_one(
    name: str,
    prop: Property,
    ctx: Context,
    examples: int,
    seed: int | None = None,
    tick: Callable[[int], None] | None = None,
) -> Result:
    result = Result(name, examples)
    last: list[pb.DecideRequest] = []
    calls = [0]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
    )
    @given(any_requests(ctx.ruleset), st.data())
    def test(message: pb.DecideRequest, data: st.DataObject) -> None:
        last[:] = [message]  # hypothesis replays the minimal example last
        prop(ctx, message, data)
        if tick is not None:
            calls[0] += 1
            tick(calls[0])

    if seed is not None:
        test = hypothesis_seed(seed)(test)
    try:
        test()
    except AssertionError as exc:
        result.failure = str(exc) or "assertion failed"
        result.minimal = last[0] if last else None
    except Exception as exc:  # a crash is a failure too, with its minimal customer
        result.failure = f"{type(exc).__name__}: {exc}"
        result.minimal = last[0] if last else None
    return result


def write_failure(result: Result, directory: Path) -> Path | None:
    """The minimal failing request as proto3 JSON, ready for `nba explain`."""
    if result.minimal is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.name}.json"
    data = json_format.MessageToDict(result.minimal)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
