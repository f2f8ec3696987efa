"""Conditions that can never be, or are always, true.

Codes: never-true, always-true, always-true-suppression.
"""

from __future__ import annotations

from nba.authoring.checks.base import CheckerBase
from nba.authoring.checks.solver import (
    Verdict,
    minimal_conflict,
    names,
    rule_name,
    why_impossible,
)
from nba.ruleset.resolve import (
    Const,
)
from nba.ruleset.ruleset import Rule


class ConditionChecks(CheckerBase):
    # -- conditions that can never be, or are always, true
    def conditions(self) -> None:
        for rule in self.rs.rules:
            verdict = self.verdict(self.cond(rule))
            if verdict.unsat:
                self.status[rule.index] = "never"
                self.never_true(rule, verdict)
                continue
            negation = self.verdict(self.cond(rule, False))
            if negation.unsat:
                self.status[rule.index] = "always"
                self.always_true(rule, negation)

    def never_true(self, rule: Rule, verdict: Verdict) -> None:
        why = why_impossible(verdict, self.schema)
        consequence = {
            "segment": ", so every rule that needs it is dead too",
            "suppress": ", so it never suppresses anything",
            "weight": f", so its factor {rule.factor:g} never applies",
        }.get(rule.kind, f", so action '{rule.action}' can never be recommended")
        self.report(
            "never-true",
            f"{rule_name(rule)} can never be true: {why}{consequence};"
            " expected a condition some request can meet (fix the bounds or operators,"
            " or remove the rule)",
            rule.location,
            error=True,
        )

    def always_true(self, rule: Rule, negation: Verdict) -> None:
        schema_notes = [
            self.schema.describe(c.term)
            for c in negation.conflicts
            if c.term is not None and minimal_conflict(list(c.lits), self.schema, False) is None
        ]
        because = f" because {schema_notes[0]}" if schema_notes else " (a tautology)"
        if rule.kind == "suppress":
            self.report(
                "always-true-suppression",
                f"suppression '{rule.id}' is always true{because}, so it suppresses"
                f" {names(rule.targets)} in every decision and they can never be recommended;"
                " expected a condition that holds only for some requests",
                rule.location,
                error=True,
            )
            return
        if isinstance(rule.expr, Const):
            return  # written `true` on purpose: nothing to tell the author
        effect = {
            "segment": "every request is in it",
            "weight": f"its factor {rule.factor:g} applies to every decision (a lever does that)",
        }.get(rule.kind, "it never excludes anything")
        self.report(
            "always-true",
            f"{rule_name(rule)} is always true{because}: {effect};"
            " expected a condition that can be false (remove it, or tighten it)",
            rule.location,
            error=False,
        )
