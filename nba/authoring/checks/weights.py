"""Weights, levers and their targets: no-op-weight, weight-never-applies, empty-targets."""

from __future__ import annotations

from nba.authoring.checks.base import CheckerBase
from nba.authoring.checks.solver import (
    names,
    rule_name,
)
from nba.errors import Location
from nba.ruleset.ruleset import Rule


class WeightChecks(CheckerBase):
    # -- weights, levers and their targets
    def weights(self) -> None:
        for rule in self.rs.rules:
            if rule.kind in ("suppress", "weight") and not rule.targets:
                self.empty_targets(rule_name(rule), rule.location)
            if rule.kind != "weight":
                continue
            if rule.factor == 1:
                self.report(
                    "no-op-weight",
                    f"weight rule '{rule.id}' has factor 1, which changes no score; expected a"
                    " factor above 1 (boost) or below 1 (damp), or remove the rule",
                    rule.location,
                    error=False,
                )
            elif rule.index not in self.status and rule.targets:
                self.weight_applies(rule)
        for lever in self.rs.levers:
            if not lever.targets:
                self.empty_targets(f"lever '{lever.id}'", lever.location)
            if lever.factor == 1:
                self.report(
                    "no-op-weight",
                    f"lever '{lever.id}' has factor 1, which changes no score; expected a"
                    " factor above 1 (push) or below 1 (slow down), or remove the lever",
                    lever.location,
                    error=False,
                )

    def weight_applies(self, rule: Rule) -> None:
        reachable = [a for a in sorted(rule.targets) if a in self.reach]
        condition = self.cond(rule)
        if not reachable or any(not self.never(self.reach[a], condition) for a in reachable):
            return
        self.report(
            "weight-never-applies",
            f"weight rule '{rule.id}' never changes a recommendation: whenever it holds, none"
            f" of the actions it targets ({names(rule.targets)}) can be recommended; expected"
            " a condition that overlaps when some target is eligible (or other targets)",
            rule.location,
            error=False,
        )

    def empty_targets(self, what: str, at: Location) -> None:
        self.report(
            "empty-targets",
            f"{what} targets no action: no action matches its actions, groups or purposes;"
            " expected targets at least one action has",
            at,
            error=False,
        )
