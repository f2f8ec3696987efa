"""Duplicated and shadowed rules: duplicate-rule, shadowed-rule, duplicate-segment."""

from __future__ import annotations

from nba.authoring.checks.base import CheckerBase
from nba.authoring.checks.solver import (
    rule_name,
)
from nba.ruleset.ruleset import Rule


class RedundancyChecks(CheckerBase):
    # -- duplicated and shadowed rules
    def redundancy(self) -> None:
        live = self.live(self.rs.rules)
        self.suppression_redundancy([r for r in live if r.kind == "suppress"])
        self.weight_duplicates([r for r in live if r.kind == "weight"])
        for action_id in self.rs.actions:
            self.engagement_redundancy(self.live(self.rs.engagement.get(action_id, ())))
        self.segment_duplicates([r for r in live if r.kind == "segment"])

    def suppression_redundancy(self, rules: list[Rule]) -> None:
        for rule in rules:
            for other in rules:
                if other is rule or not rule.targets <= other.targets:
                    continue
                if not self.implies(rule, other):
                    continue
                same = rule.targets == other.targets and self.implies(other, rule)
                if same and other.location < rule.location:
                    self.duplicate(rule, other)
                    break
                if not same:
                    more = "" if rule.targets == other.targets else " (and more)"
                    self.report(
                        "shadowed-rule",
                        f"suppression '{rule.id}' is shadowed by suppression '{other.id}' at"
                        f" {other.location}: whenever it holds, '{other.id}' holds too and"
                        f" suppresses the same actions{more}, so it never changes a decision;"
                        f" expected a condition '{other.id}' does not already cover (or remove"
                        " it)",
                        rule.location,
                        error=False,
                    )
                    break

    def weight_duplicates(self, rules: list[Rule]) -> None:
        for i, rule in enumerate(rules):
            for other in rules[:i]:
                if (rule.targets, rule.factor) != (other.targets, other.factor):
                    continue
                if self.equivalent(rule, other):
                    self.duplicate(*sorted((rule, other), key=lambda r: r.location, reverse=True))
                    break

    def engagement_redundancy(self, rules: list[Rule]) -> None:
        reported: set[int] = set()
        for i, rule in enumerate(rules):
            for other in rules[:i]:
                if self.equivalent(rule, other):
                    self.duplicate(rule, other)
                    reported.add(rule.index)
                    break
        for rule in rules:
            implied_by = next(
                (
                    o
                    for o in rules
                    if o is not rule and rule.index not in reported and self.implies(o, rule)
                ),
                None,
            )
            if implied_by is not None and not self.implies(rule, implied_by):
                self.report(
                    "shadowed-rule",
                    f"rule '{rule.id}' is implied by rule '{implied_by.id}' at"
                    f" {implied_by.location}: whenever '{implied_by.id}' holds it holds too,"
                    f" so it never excludes action '{rule.action}' on its own; expected a"
                    " condition that adds something (or remove it)",
                    rule.location,
                    error=False,
                )

    def duplicate(self, rule: Rule, other: Rule) -> None:
        twice = ""
        if rule.kind == "weight":
            twice = f", so both fire and the factor applies twice ({rule.factor**2:g} in all)"
        self.report(
            "duplicate-rule",
            f"{rule_name(rule)} duplicates {rule_name(other)} at {other.location}: equivalent"
            f" conditions and the same effect{twice}; expected each rule once (remove one)",
            rule.location,
            error=False,
        )

    def segment_duplicates(self, rules: list[Rule]) -> None:
        for i, rule in enumerate(rules):
            for other in rules[:i]:
                if self.equivalent(rule, other):
                    self.report(
                        "duplicate-segment",
                        f"segment '{rule.segment}' is equivalent to segment '{other.segment}'"
                        f" at {other.location}: they hold for exactly the same requests;"
                        " expected one segment per meaning (use one of them)",
                        rule.location,
                        error=False,
                    )
                    break
