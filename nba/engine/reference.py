"""The reference evaluator: the condition language run directly in Python.

It reads the request itself (profile, lifecycle, touchpoint, raw interaction history),
not the facts prepared for durable_rules, so it checks the whole durable path: fact
building, compilation and the engine. It is the oracle of the differential property
tests, and the fallback engine where durable_rules cannot run (Python 3.13+).
Written for clarity, not speed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from nba.engine import EngagedChunk, RankedRun
from nba.pipeline.types import OUTCOME_NAMES, DecisionRequest, within_window
from nba.ruleset.resolve import (
    AllOf,
    AnyOf,
    Cmp,
    Const,
    CountTerm,
    Expr,
    LifecycleTerm,
    Not,
    ProfileTerm,
    SegmentTerm,
    SetTerm,
    Term,
    TouchpointTerm,
)
from nba.ruleset.ruleset import Rule, RuleSet

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class ReferenceEngine:
    name = "reference"
    engaged_chunks: tuple[EngagedChunk, ...] = ()  # nothing to skip: all runs on entry

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset

    def ranked(self, request: DecisionRequest) -> AbstractContextManager[RankedRun]:
        return nullcontext(_WholeRun(self.fire(request, detailed=False)))

    def fire(self, request: DecisionRequest, detailed: bool = True) -> list[Rule]:
        segments: set[str] = set()
        fired: list[Rule] = []
        for stratum in self.ruleset.strata if detailed else self.ruleset.fast_strata:
            new_segments = []
            for index in stratum:
                rule = self.ruleset.all_rules[index]
                if evaluate(rule.expr, request, segments, self.ruleset):
                    fired.append(rule)
                    if rule.segment is not None:
                        new_segments.append(rule.segment)
            segments.update(new_segments)
        return fired


class _WholeRun:
    """A RankedRun whose program has already run whole: there are no chunks to fire."""

    def __init__(self, fired: list[Rule]) -> None:
        self.fired = fired

    def fire_chunk(self, index: int) -> None:
        raise IndexError(f"the reference engine has no engaged chunks (asked for {index})")


def evaluate(expr: Expr, request: DecisionRequest, segments: set[str], ruleset: RuleSet) -> bool:
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, Not):
        return not evaluate(expr.item, request, segments, ruleset)
    if isinstance(expr, AllOf):
        return all(evaluate(i, request, segments, ruleset) for i in expr.items)
    if isinstance(expr, AnyOf):
        return any(evaluate(i, request, segments, ruleset) for i in expr.items)
    assert isinstance(expr, Cmp)
    value = term_value(expr.term, request, segments, ruleset)
    if value is None:  # a test on a value the request did not send is false
        return False
    return _COMPARE[expr.op](value, expr.value)


def term_value(term: Term, request: DecisionRequest, segments: set[str], ruleset: RuleSet) -> Any:
    if isinstance(term, ProfileTerm):
        return request.profile.get(term.attr)
    if isinstance(term, SetTerm):
        held = request.profile.get(term.attr)
        return None if held is None else term.value in held
    if isinstance(term, LifecycleTerm):
        return request.lifecycle
    if isinstance(term, TouchpointTerm):
        return {
            "channel": request.channel,
            "placement": request.placement,
            "intent": request.intent,
        }[term.field]
    if isinstance(term, SegmentTerm):
        return term.segment in segments
    assert isinstance(term, CountTerm)
    return sum(1 for item in request.interactions if _counts(term, item, request, ruleset))


def _counts(term: CountTerm, item: Any, request: DecisionRequest, ruleset: RuleSet) -> bool:
    if OUTCOME_NAMES.get(item.outcome) != term.outcome:
        return False
    if not within_window(item.at, request.as_of, term.window_seconds):
        return False
    if term.action is not None and item.action_id != term.action:
        return False
    if term.group is not None and ruleset.action_group.get(item.action_id) != term.group:
        return False
    return term.channel is None or item.channel == term.channel
