"""Actions that can never be recommended: unreachable-action, eligible-and-suppressed."""

from __future__ import annotations

from collections.abc import Sequence

from nba.authoring.checks.base import CheckerBase
from nba.authoring.checks.solver import (
    CHANNEL,
    OUTBOUND,
    Lit,
    Node,
    Verdict,
    conj,
    disj,
    quoted,
    why_impossible,
)
from nba.ruleset.model import Direction
from nba.ruleset.ruleset import Action, Rule


class ActionChecks(CheckerBase):
    # -- actions that can never be recommended
    def action(self, action: Action) -> None:
        rules = self.rs.engagement.get(action.id, ())
        if any(self.status.get(r.index) == "never" for r in rules):
            return  # never-true already says the action is dead
        engaged = conj(self.cond(r) for r in rules)
        verdict = self.verdict(engaged)
        if verdict.unsat:
            self.contradictory_engagement(action, rules, verdict)
            return
        suppressions = [s for s in self.suppressions if action.id in s.targets]
        if any(self.status.get(s.index) == "always" for s in suppressions):
            return  # always-true-suppression already names it
        suppressions = self.live(suppressions)
        if self.suppressed_when_eligible(action, rules, engaged, suppressions):
            return
        unsuppressed = conj([engaged, *(self.cond(s, False) for s in suppressions)])
        if self.never(unsuppressed):
            self.suppressed_together(action, engaged, suppressions)
            return
        reachable = conj([unsuppressed, self.channel_ok(action)])
        if self.never(reachable):
            self.no_channel(action, unsuppressed)
            return
        self.reach[action.id] = reachable

    def channel_ok(self, action: Action) -> Node:
        """The touchpoints that can carry the action: its own channels, or outbound."""
        channels = list(action.channels)
        if any(self.rs.channels[c].direction != Direction.INBOUND for c in channels):
            channels.append(OUTBOUND)
        return disj(Lit(CHANNEL, "==", c) for c in channels)

    def contradictory_engagement(
        self, action: Action, rules: Sequence[Rule], verdict: Verdict
    ) -> None:
        for i, later in enumerate(rules):
            for earlier in rules[:i]:
                pair = self.verdict(self.cond(earlier), self.cond(later))
                if pair.unsat:
                    self.report(
                        "unreachable-action",
                        f"rule '{later.id}' can never hold together with rule '{earlier.id}'"
                        f" at {earlier.location}: {why_impossible(pair, self.schema)}, so action"
                        f" '{action.id}' can never be recommended{self._fallback_note(action)};"
                        " expected engagement rules a customer can meet together",
                        later.location,
                        error=not self._is_fallback(action),
                    )
                    return
        self.report(
            "unreachable-action",
            f"the engagement rules of action '{action.id}' can never all hold together:"
            f" {why_impossible(verdict, self.schema)}, so it can never be recommended"
            f"{self._fallback_note(action)}; expected rules a customer can meet together",
            action.location,
            error=not self._is_fallback(action),
        )

    def _is_fallback(self, action: Action) -> bool:
        return any(f.action == action.id for f in self.rs.fallbacks)

    def _fallback_note(self, action: Action) -> str:
        return " (it is still given as a fallback)" if self._is_fallback(action) else ""

    def suppressed_when_eligible(
        self, action: Action, rules: Sequence[Rule], engaged: Node, suppressions: list[Rule]
    ) -> bool:
        for suppression in suppressions:
            if not self.never(engaged, self.cond(suppression, False)):
                continue
            culprit = next(
                (r for r in rules if self.never(self.cond(r), self.cond(suppression, False))),
                None,
            )
            which = f"its rule '{culprit.id}'" if culprit else "its engagement rules"
            self.report(
                "eligible-and-suppressed",
                f"action '{action.id}' can never be recommended: whenever {which} hold"
                f"{'s' if culprit else ''}, suppression '{suppression.id}' at"
                f" {suppression.location} holds too and suppresses it; expected the"
                " suppression to cover only some of the cases where it is eligible",
                culprit.location if culprit else action.location,
                error=True,
            )
            return True
        return False

    def suppressed_together(self, action: Action, engaged: Node, suppressions: list[Rule]) -> None:
        involved = [s for s in suppressions if not self.never(engaged, self.cond(s))]
        listing = ", ".join(f"'{s.id}' at {s.location}" for s in involved)
        self.report(
            "unreachable-action",
            f"action '{action.id}' can never be recommended: whenever its engagement rules"
            f" hold, one of the suppressions {listing} holds; expected some eligible case"
            " that no suppression covers",
            action.location,
            error=True,
        )

    def no_channel(self, action: Action, unsuppressed: Node) -> None:
        allowed = [
            c
            for c in [*self.rs.channels, OUTBOUND]
            if not self.never(unsuppressed, Lit(CHANNEL, "==", c))
        ]
        outbound = (
            " (an outbound decision needs a treatment on an outbound channel)"
            if OUTBOUND in allowed
            else ""
        )
        self.report(
            "unreachable-action",
            f"action '{action.id}' can never be recommended: its rules hold only when"
            f" touchpoint.channel is {quoted(allowed)}, but it has treatments only for"
            f" {quoted(action.channels)}{outbound}; expected a treatment for a channel its"
            " rules allow",
            action.location,
            error=True,
        )
