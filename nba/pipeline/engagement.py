"""Pipeline stage 4, rules: what the fired rules mean for each action.

The engine says which rules hold; this stage turns that into a verdict per action:
- every engagement rule of the action (eligible, then applicable, then suitable) must
  have fired, or the first that did not is the exclusion;
- a fired suppression that targets the action excludes it, whatever else holds;
- fired weight rules multiply the action's context weight.
"""

from __future__ import annotations

from collections import defaultdict
from operator import attrgetter

from nba.pipeline.types import Candidate, Engagement, Exclusion
from nba.ruleset.ruleset import Action, Rule, RuleSet

_STAGE_WORDS = {
    "eligible": "Not eligible",
    "applicable": "Not applicable now",
    "suitable": "Not suitable",
}


class Effects:
    """Fired suppressions or weights, filed by what they target, for O(1) lookups.

    Expanding each fired rule into its target actions costs a loop over whole groups
    per request; a lookup by the action's id, group and purpose does not.
    """

    def __init__(self, rules: list[Rule]) -> None:
        self.everything: list[Rule] = []
        self.by_action: dict[str, list[Rule]] = defaultdict(list)
        self.by_group: dict[str, list[Rule]] = defaultdict(list)
        self.by_purpose: dict[str, list[Rule]] = defaultdict(list)
        for rule in sorted(rules, key=attrgetter("index")):  # rule order, whatever the engine's
            target = rule.target
            assert target is not None
            if target.all:
                self.everything.append(rule)
            for action in target.actions:
                self.by_action[action].append(rule)
            for group in target.groups:
                self.by_group[group].append(rule)
            for purpose in target.purposes:
                self.by_purpose[purpose].append(rule)
        self.empty = not rules
        self._shared: dict[tuple[str, str], list[Rule]] = {}  # (group, purpose) -> rules

    def matching(self, action: Action) -> list[Rule]:
        """The rules that apply to `action`, in rule order, each once."""
        if self.empty:
            return []
        shared = self.of_class(action.group, action.purpose)
        own = self.by_action.get(action.id)
        return _merge(shared, own) if own else shared

    def of_class(self, group: str, purpose: str) -> list[Rule]:
        """The rules that apply to every action of this group and purpose."""
        key = (group, purpose)
        shared = self._shared.get(key)
        if shared is None:  # actions of one group and purpose share these: compute once
            shared = _merge(
                self.everything, self.by_group.get(group, []), self.by_purpose.get(purpose, [])
            )
            self._shared[key] = shared
        return shared


def _merge(*lists: list[Rule]) -> list[Rule]:
    """Rules of several lists, each once, in rule order."""
    present = [rules for rules in lists if rules]
    if len(present) <= 1:
        return present[0] if present else []
    unique = {r.index: r for rules in present for r in rules}
    return sorted(unique.values(), key=attrgetter("index"))


def engage(ruleset: RuleSet, fired: list[Rule], explain: bool) -> Engagement:
    """Verdicts per action. With explain, `fired` must come from the detailed program."""
    by_kind: dict[str, list[Rule]] = defaultdict(list)
    for rule in fired:
        by_kind[rule.kind].append(rule)
    suppressions = Effects(by_kind["suppress"])
    weights = Effects(by_kind["weight"])
    segments = [r.segment for r in by_kind["segment"] if r.segment is not None]
    candidates: list[Candidate] = []
    excluded: list[Exclusion] = []
    suppressed: dict[str, Rule] = {}
    if explain:  # every action, to say why each one is out
        fired_ids = {rule.index for rule in fired}
        passed = []
        for action_id in ruleset.actions:
            failed = next(
                (r for r in ruleset.engagement[action_id] if r.index not in fired_ids), None
            )
            if failed is None:
                passed.append(action_id)
            else:
                excluded.append(engagement_exclusion(action_id, failed))
    else:  # only the qualifying ones: one "engaged" rule fired for each
        passed = [r.action for r in by_kind["engaged"] if r.action is not None]
        passed.extend(ruleset.unconditional)
    actions = ruleset.actions
    for action_id in passed:
        action = actions[action_id]
        suppressors = suppressions.matching(action)
        if suppressors:
            suppressed[action_id] = suppressors[0]
            if explain:
                excluded.append(suppression_exclusion(action_id, suppressors[0]))
            continue
        candidate = Candidate(action)
        for rule in weights.matching(action):
            candidate.weight *= rule.factor
            candidate.weight_rules.append(rule)
        candidates.append(candidate)
    # Fallbacks skip engagement rules but never suppressions: note theirs too, even for a
    # fallback action that did not qualify.
    for fallback in ruleset.fallbacks:
        action = actions[fallback.action]
        if fallback.action not in suppressed and (found := suppressions.matching(action)):
            suppressed[fallback.action] = found[0]
    return Engagement(candidates, excluded, segments, suppressed)


def engagement_exclusion(action_id: str, rule: Rule) -> Exclusion:
    reason = rule.reason or f"requires that {rule.words or rule.source}"
    return Exclusion(
        action_id, rule.id, f"{_STAGE_WORDS[rule.kind]}: {reason}", rule.kind, rule.location
    )


def suppression_exclusion(action_id: str, rule: Rule) -> Exclusion:
    reason = rule.reason or f"suppressed while {rule.words or rule.source}"
    return Exclusion(action_id, rule.id, f"Suppressed: {reason}", "suppressed", rule.location)
