"""Fallbacks: what is said when nothing qualifies.

Codes: fallback-suppressed, fallback-bypasses-eligibility, fallback-is-marketing,
fallback-needs-opt-in.

A fallback skips its action's engagement rules, but never suppressions, consent or contact
policies. So a marketing action declared as a fallback reaches customers its own rules
exclude (an error when it has rules: they are certainly bypassed; a warning when it has
none: every customer with nothing else hears a sales message), and a fallback whose channel
needs an explicit opt-in for its purpose is withheld from every customer without one (a
warning: consent is honoured, the fallback just rarely appears).
"""

from __future__ import annotations

from nba.authoring.checks.base import CheckerBase
from nba.authoring.checks.solver import (
    CHANNEL,
    PLACEMENT,
    Lit,
    conj,
)
from nba.ruleset.model import ConsentDefault, Purpose
from nba.ruleset.ruleset import Action, Fallback


class FallbackChecks(CheckerBase):
    def fallback(self, fallback: Fallback) -> None:
        action = self.rs.actions[fallback.action]
        if action.purpose == Purpose.MARKETING:
            self.marketing_fallback(fallback, action)
        self.fallback_consent(fallback, action)
        self.fallback_suppressed(fallback)

    def marketing_fallback(self, fallback: Fallback, action: Action) -> None:
        rules = self.rs.engagement.get(action.id, ())
        served = _served(fallback)
        if rules:
            listing = ", ".join(f"'{r.id}' at {r.location}" for r in rules[:3])
            more = f" and {len(rules) - 3} more" if len(rules) > 3 else ""
            self.report(
                "fallback-bypasses-eligibility",
                f"fallback action '{action.id}' for {served} is a marketing action with"
                f" engagement rules ({listing}{more}), which a fallback skips: it reaches"
                " customers its own rules exclude; expected a service action as the fallback"
                " (or no fallback for this touchpoint)",
                fallback.location,
                error=True,
            )
            return
        self.report(
            "fallback-is-marketing",
            f"fallback action '{action.id}' for {served} is a marketing action: every"
            " customer nothing else qualifies for gets this sales message, whoever they are;"
            " expected a service action as the fallback",
            fallback.location,
            error=False,
        )

    def fallback_consent(self, fallback: Fallback, action: Action) -> None:
        channels = [fallback.channel] if fallback.channel else list(action.channels)
        needing = [c for c in channels if c in action.channels and self._opt_in(c, action)]
        if not needing or needing != channels:
            return  # a channel-less fallback still has a channel without an opt-in
        where = self.rs.channel_locations.get(needing[0])
        declared = f" (declared at {where})" if where else ""
        self.report(
            "fallback-needs-opt-in",
            f"fallback action '{action.id}' for {_served(fallback)} is a {action.purpose}"
            f" message on {', '.join(needing)}, where {action.purpose} needs an explicit"
            f" opt-in{declared}: every customer without consent[{needing[0]}] = true gets no"
            " fallback at all; expected a fallback action whose purpose the channel allows"
            " by default (e.g. a service message)",
            fallback.location,
            error=False,
        )

    def _opt_in(self, channel: str, action: Action) -> bool:
        spec = self.rs.channels[channel]
        default = (
            spec.marketing_consent if action.purpose == Purpose.MARKETING else spec.service_consent
        )
        return default == ConsentDefault.OPT_IN

    def fallback_suppressed(self, fallback: Fallback) -> None:
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
        self.report(
            "fallback-suppressed",
            f"fallback action '{fallback.action}' for {_served(fallback)} is never given:"
            f" {culprits} there and suppresses it; expected a fallback action no suppression"
            " covers",
            fallback.location,
            error=True,
        )


def _served(fallback: Fallback) -> str:
    return f"touchpoint.channel {fallback.channel}" if fallback.channel else "any touchpoint"
