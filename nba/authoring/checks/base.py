"""The plumbing every family of checks shares (one module per family, joined in `Checker`)."""

from __future__ import annotations

from collections.abc import Iterable

from nba.authoring.checks.solver import (
    Node,
    Normalizer,
    Schema,
    Solver,
    Verdict,
    canonical,
)
from nba.errors import Location, RuleError, Severity
from nba.ruleset.ruleset import Rule, RuleSet


class CheckerBase:
    """What every family of checks shares: the rule set, the solver, and the findings so far."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.rs = ruleset
        self.schema = Schema(ruleset)
        self.solver = Solver(self.schema)
        segments = {r.segment: r.expr for r in ruleset.rules if r.segment is not None}
        self.normalizer = Normalizer(segments)
        self.found: list[RuleError] = []
        self.status: dict[int, str] = {}  # rule index -> "never" | "always"
        self.reach: dict[str, Node] = {}  # action id -> when it can be recommended
        self.suppressions = [r for r in ruleset.rules if r.kind == "suppress"]

    # -- plumbing
    def report(self, code: str, message: str, at: Location | None, error: bool) -> None:
        severity = Severity.ERROR if error else Severity.WARNING
        self.found.append(RuleError(code, message, at, severity=severity))

    def cond(self, rule: Rule, positive: bool = True) -> Node:
        return self.normalizer.node(rule.expr, positive)

    def verdict(self, *nodes: Node) -> Verdict:
        return self.solver.solve(nodes)

    def never(self, *nodes: Node) -> bool:
        return self.verdict(*nodes).unsat

    def implies(self, a: Rule, b: Rule) -> bool:
        return self.never(self.cond(a), self.cond(b, False))

    def equivalent(self, a: Rule, b: Rule) -> bool:
        if canonical(a.expr) == canonical(b.expr):
            return True
        return self.implies(a, b) and self.implies(b, a)

    def live(self, rules: Iterable[Rule]) -> list[Rule]:
        """Rules that neither never nor always hold (those are reported on their own)."""
        return [r for r in rules if r.index not in self.status]
