"""Fallbacks: fallback-suppressed."""

from __future__ import annotations

from nba.authoring.checks.base import CheckerBase
from nba.authoring.checks.solver import (
    CHANNEL,
    PLACEMENT,
    Lit,
    conj,
)
from nba.ruleset.ruleset import Fallback


class FallbackChecks(CheckerBase):
    def fallback(self, fallback: Fallback) -> None:
        where = [Lit(CHANNEL, "==", fallback.channel)] if fallback.channel else []
        if fallback.placement is not None:
            where.append(Lit(PLACEMENT, "==", fallback.placement))
        touchpoint = conj(where)
        suppressions = [s for s in self.suppressions if fallback.action in s.targets]
        if any(self.status.get(s.index) == "always" for s in suppressions):
            return  # always-true-suppression names the action already
        suppressions = self.live(suppressions)
        if not suppressions:
            return
        single = next(
            (s for s in suppressions if self.never(touchpoint, self.cond(s, False))), None
        )
        if single is not None:
            culprits = f"suppression '{single.id}' at {single.location} always holds"
        elif self.never(touchpoint, *(self.cond(s, False) for s in suppressions)):
            culprits = (
                "one of the suppressions "
                + ", ".join(f"'{s.id}' at {s.location}" for s in suppressions)
                + " always holds"
            )
        else:
            return
        served = f"touchpoint.channel {fallback.channel}" if fallback.channel else "any touchpoint"
        self.report(
            "fallback-suppressed",
            f"fallback action '{fallback.action}' for {served} is never given: {culprits}"
            " there and suppresses it; expected a fallback action no suppression covers",
            fallback.location,
            error=True,
        )
