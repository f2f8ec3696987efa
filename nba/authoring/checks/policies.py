"""Contact policies: cap-blocks-all, cap-covers-nothing, cooldown-covers-nothing, quiet-hours-*."""

from __future__ import annotations

from nba.authoring.checks.base import CheckerBase
from nba.authoring.checks.solver import (
    names,
    quoted,
)
from nba.errors import Location
from nba.ruleset.model import Direction


class PolicyChecks(CheckerBase):
    # -- contact policies
    def policies(self) -> None:
        policies = self.rs.policies
        for cap in policies.caps:
            covered = {
                a.id: [c for c in a.channels if cap.applies(a, c)] for a in self.rs.actions.values()
            }
            covered = {a: cs for a, cs in covered.items() if cs}
            if not covered:
                self.report(
                    "cap-covers-nothing",
                    f"cap '{cap.id}' covers no action: none matches its channel, purpose and"
                    " groups, so it never limits anything; expected filters some action meets",
                    cap.location,
                    error=False,
                )
            elif cap.max == 0:
                self.cap_blocks_all(cap.id, cap.location, covered)
        purposes = {a.purpose for a in self.rs.actions.values()}
        for cooldown in policies.cooldowns:
            if cooldown.purpose is not None and cooldown.purpose not in purposes:
                self.report(
                    "cooldown-covers-nothing",
                    f"cooldown '{cooldown.id}' is for purpose '{cooldown.purpose}', which no"
                    " action has, so it never pauses anything; expected a purpose some action"
                    " has",
                    cooldown.location,
                    error=False,
                )
        for quiet in policies.quiet_hours:
            self.quiet_hours(
                quiet.id, quiet.location, quiet.start_minute, quiet.end_minute, quiet.channels
            )

    def cap_blocks_all(self, cap_id: str, at: Location, covered: dict[str, list[str]]) -> None:
        dead = [a for a, cs in covered.items() if set(cs) == set(self.rs.actions[a].channels)]
        listing = "; ".join(f"{a} on {', '.join(cs)}" for a, cs in sorted(covered.items())[:8])
        more = f" and {len(covered) - 8} more" if len(covered) > 8 else ""
        never = (
            f"; {names(dead)} can never be recommended at all (every channel they have is capped)"
            if dead
            else ""
        )
        self.report(
            "cap-blocks-all",
            f"cap '{cap_id}' has max 0, so it blocks everything it covers in every decision:"
            f" {listing}{more}{never}; expected a max of at least 1 (or remove the treatments"
            " or the cap)",
            at,
            error=False,
        )

    def quiet_hours(
        self, quiet_id: str, at: Location, start: int, end: int, channels: frozenset[str]
    ) -> None:
        if start == end:
            self.report(
                "quiet-hours-empty",
                f"quiet hours '{quiet_id}' start and end at the same time, which covers no"
                " minute at all (it never applies); expected a start and an end that differ"
                ' (e.g. "21:00" to "08:00")',
                at,
                error=False,
            )
            return
        inbound = sorted(
            c
            for c in channels
            if c in self.rs.channels and self.rs.channels[c].direction == Direction.INBOUND
        )
        if inbound:
            self.report(
                "quiet-hours-no-effect",
                f"quiet hours '{quiet_id}' name inbound-only channel(s) {quoted(inbound)}:"
                " quiet hours restrain only contacts we start, so they never apply there;"
                " expected outbound or both-way channels",
                at,
                error=False,
            )
