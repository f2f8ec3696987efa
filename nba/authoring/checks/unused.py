"""Names nothing uses: unused-segment, unused-attribute."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from nba.authoring.checks.base import CheckerBase
from nba.authoring.checks.solver import (
    quoted,
)
from nba.ruleset.resolve import (
    AllOf,
    AnyOf,
    Cmp,
    Expr,
    Not,
    ProfileTerm,
    SegmentTerm,
    SetTerm,
    Term,
)


class UnusedChecks(CheckerBase):
    # -- unused segments and attributes
    def unused(self) -> None:
        used_by: dict[str, set[str]] = {s: set() for s in self.rs.segments}
        attributes: set[str] = set()
        for rule in self.rs.rules:
            for term in _terms(rule.expr):
                if isinstance(term, SegmentTerm) and term.segment != rule.segment:
                    used_by[term.segment].add(rule.segment or "")
                elif isinstance(term, ProfileTerm | SetTerm):
                    attributes.add(term.attr)
        alive = _alive_segments(used_by)
        for name, segment in self.rs.segments.items():
            if name in alive:
                continue
            users = sorted(used_by[name])
            how = (
                f"it is used only by segment {quoted(users)}, which nothing uses either"
                if users
                else f"no rule or segment refers to segment.{name}"
            )
            self.report(
                "unused-segment",
                f"segment '{name}' is never used: {how}; expected a rule that uses it, or"
                " remove it (it is still listed in explain output's segments)",
                segment.location,
                error=False,
            )
        unused = [a for a in self.rs.attributes if a not in attributes]
        places = self.rs.attribute_locations
        for attr in unused:
            spec = self.rs.attributes[attr]
            note = " and every request must still send it" if spec.required else ""
            self.report(
                "unused-attribute",
                f"profile attribute '{attr}' is declared but no rule uses it{note}; expected a"
                " rule that uses it, or remove it from the profile schema",
                places.get(attr),
                error=False,
            )


def _alive_segments(used_by: Mapping[str, set[str]]) -> set[str]:
    """Segments a non-segment rule uses, directly or through other used segments."""
    alive = {s for s, users in used_by.items() if "" in users}
    changed = True
    while changed:
        grown = {s for s, users in used_by.items() if users & alive}
        changed = not grown <= alive
        alive |= grown
    return alive


def _terms(expr: Expr) -> Iterator[Term]:
    if isinstance(expr, Cmp):
        yield expr.term
    elif isinstance(expr, Not):
        yield from _terms(expr.item)
    elif isinstance(expr, AllOf | AnyOf):
        for item in expr.items:
            yield from _terms(item)
