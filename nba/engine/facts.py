"""Pipeline stage 3, facts: the values of every term the rules use, for one request.

Rules never see raw history. Interactions are aggregated here into the counts the rules
ask for (`dismissals(30d, action=this)` becomes one number), because every interaction
asserted into durable_rules costs a join per rule that looks at history; a count costs
one property. Values are keyed by the term's property name (`p_age`, `h_dis_2592000_a_x`).

Missing profile attributes stay missing: a condition on them is false, as in the
reference evaluator. Segment flags are added later, stratum by stratum, by the engine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from nba.pipeline.types import OUTCOME_NUMBERS, DecisionRequest, within_window
from nba.ruleset.resolve import (
    CountTerm,
    LifecycleTerm,
    ProfileTerm,
    SetTerm,
    TouchpointTerm,
)
from nba.ruleset.ruleset import RuleSet

# (key, window_seconds, channel) of one count term, filed under what it is scoped by.
_CountSlot = tuple[str, int | None, str | None]


class FactBuilder:
    """Computes term values for one rule set; built once per load, used per request."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.action_group = ruleset.action_group
        self.profile_terms: list[tuple[str, str]] = []
        self.set_terms: list[tuple[str, str, str]] = []
        self.touchpoint_terms: list[tuple[str, str]] = []
        self.lifecycle = False
        # Count terms indexed so each interaction only visits the terms it can affect.
        self.by_action: dict[tuple[int, str], list[_CountSlot]] = defaultdict(list)
        self.by_group: dict[tuple[int, str], list[_CountSlot]] = defaultdict(list)
        self.by_outcome: dict[int, list[_CountSlot]] = defaultdict(list)
        for key, term in ruleset.terms.items():
            self._index(key, term)
        # Each (outcome, action) -> every count it adds to, merged once per load: one
        # lookup per interaction. Actions the rule set does not know count only toward
        # the unscoped counts of their outcome.
        self.slots: dict[tuple[int, str], tuple[_CountSlot, ...]] = {}
        for outcome in OUTCOME_NUMBERS.values():
            for action_id, group in self.action_group.items():
                merged = (
                    *self.by_outcome.get(outcome, ()),
                    *self.by_action.get((outcome, action_id), ()),
                    *self.by_group.get((outcome, group), ()),
                )
                if merged:
                    self.slots[(outcome, action_id)] = merged

    def _index(self, key: str, term: Any) -> None:
        if isinstance(term, ProfileTerm):
            self.profile_terms.append((key, term.attr))
        elif isinstance(term, SetTerm):
            self.set_terms.append((key, term.attr, term.value))
        elif isinstance(term, TouchpointTerm):
            self.touchpoint_terms.append((key, term.field))
        elif isinstance(term, LifecycleTerm):
            self.lifecycle = True
        elif isinstance(term, CountTerm):
            slot = (key, term.window_seconds, term.channel)
            outcome = OUTCOME_NUMBERS[term.outcome]
            if term.action is not None:
                self.by_action[(outcome, term.action)].append(slot)
            elif term.group is not None:
                self.by_group[(outcome, term.group)].append(slot)
            else:
                self.by_outcome[outcome].append(slot)

    def build(self, request: DecisionRequest) -> dict[str, Any]:
        """Term values for this request. Counts that are zero are left out (read as 0)."""
        props: dict[str, Any] = {}
        profile = request.profile
        for key, attr in self.profile_terms:
            if attr in profile:
                props[key] = profile[attr]
        for key, attr, value in self.set_terms:
            if attr in profile:
                props[key] = value in profile[attr]
        if self.lifecycle:
            props["lc"] = request.lifecycle
        for key, field in self.touchpoint_terms:
            props[key] = getattr(request, field)
        if request.interactions:
            self._count(request, props)
        return props

    def _count(self, request: DecisionRequest, props: dict[str, Any]) -> None:
        as_of = request.as_of
        slots, known, by_outcome = self.slots, self.action_group, self.by_outcome
        for item in request.interactions:
            found: Sequence[_CountSlot] | None = slots.get((item.outcome, item.action_id))
            if found is None:
                if item.action_id in known:
                    continue  # a known action none of the counts look at
                found = by_outcome.get(item.outcome)
                if not found:
                    continue
            at = item.at
            for key, window, channel in found:
                if (channel is None or channel == item.channel) and within_window(
                    at, as_of, window
                ):
                    props[key] = props.get(key, 0) + 1
