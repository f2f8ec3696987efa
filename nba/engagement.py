"""Pipeline stage 4, rules: what the fired rules mean for each action.

The engine says which rules hold; this stage turns that into a verdict per action:
- every engagement rule of the action (eligible, then applicable, then suitable) must
  have fired, or the first that did not is the exclusion;
- a fired suppression that targets the action excludes it, whatever else holds;
- fired weight rules multiply the action's context weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nba.errors import Location
from nba.ruleset.ruleset import Action, Rule, RuleSet

_STAGE_WORDS = {
    "eligible": "Not eligible",
    "applicable": "Not applicable now",
    "suitable": "Not suitable",
}


@dataclass(slots=True)
class Exclusion:
    """Why an action was left out, in words a call-center agent can read."""

    action_id: str
    rule: str
    reason: str
    stage: str  # eligible applicable suitable suppressed policy channel arbitration
    location: Location | None = None
    channel: str = ""


@dataclass(slots=True)
class Candidate:
    """An action that passed its engagement rules and no suppression."""

    action: Action
    weight: float = 1.0
    weight_rules: list[Rule] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)  # usable, in preference order (policies)
    channel: str = ""  # the one chosen in arbitration


@dataclass(slots=True)
class Engagement:
    candidates: list[Candidate]
    excluded: list[Exclusion]
    segments: list[str]
    suppressed: dict[str, Rule]  # action id -> the suppression that holds for it


def engage(ruleset: RuleSet, fired: list[Rule], explain: bool) -> Engagement:
    """Verdicts per action. With explain, `fired` must come from the detailed program."""
    fired_ids = {rule.index for rule in fired}
    engaged = {rule.action for rule in fired if rule.kind == "engaged"}
    suppressed: dict[str, Rule] = {}
    weights: dict[str, list[Rule]] = {}
    segments: list[str] = []
    for rule in fired:
        if rule.kind == "suppress":
            for action in rule.targets:
                suppressed.setdefault(action, rule)
        elif rule.kind == "weight":
            for action in rule.targets:
                weights.setdefault(action, []).append(rule)
        elif rule.segment is not None:
            segments.append(rule.segment)

    candidates: list[Candidate] = []
    excluded: list[Exclusion] = []
    for action_id, action in ruleset.actions.items():
        if explain:
            failed = next(
                (r for r in ruleset.engagement[action_id] if r.index not in fired_ids), None
            )
            if failed is not None:
                excluded.append(engagement_exclusion(action_id, failed))
                continue
        elif action_id not in engaged and action_id not in ruleset.unconditional:
            continue
        suppressor = suppressed.get(action_id)
        if suppressor is not None:
            if explain:
                excluded.append(suppression_exclusion(action_id, suppressor))
            continue
        candidate = Candidate(action)
        for rule in weights.get(action_id, ()):
            candidate.weight *= rule.factor
            candidate.weight_rules.append(rule)
        candidates.append(candidate)
    return Engagement(candidates, excluded, segments, suppressed)


def engagement_exclusion(action_id: str, rule: Rule) -> Exclusion:
    reason = rule.reason or f"requires {rule.source}"
    return Exclusion(
        action_id, rule.id, f"{_STAGE_WORDS[rule.kind]}: {reason}", rule.kind, rule.location
    )


def suppression_exclusion(action_id: str, rule: Rule) -> Exclusion:
    reason = rule.reason or f"suppressed while {rule.source}"
    return Exclusion(action_id, rule.id, f"Suppressed: {reason}", "suppressed", rule.location)
