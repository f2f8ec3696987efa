"""Static checks of a loaded rule set: the problems no single rule shows on its own.

The loader already rejects unknown names, type errors and segment cycles, one condition at
a time. `check(ruleset)` reasons about the whole set and returns what it finds, sorted by
location, each with a fixed code, the file:line:column of the rule concerned, what is wrong
and what was expected (and, in the message, where the other rule involved is):

Conditions
  never-true               error    a rule's condition can never hold (`age < 18 and age > 65`,
                                    a value outside the declared min/max, a count below 0, ...)
  always-true              warning  an engagement rule, weight rule or segment holds for every
                                    request (`age >= 18` when the schema says min 18, required)
  always-true-suppression  error    a suppression holds for every request: its targets can
                                    never be recommended, not even as a fallback
Actions
  unreachable-action       error    an action can never be recommended: its engagement rules
                                    contradict each other, suppressions together cover every
                                    case where it is eligible, or it is eligible only on
                                    touchpoints it has no treatment for
  eligible-and-suppressed  error    whenever an action is eligible, one suppression of it holds
Fallbacks
  fallback-suppressed      error    a fallback's action is suppressed at every touchpoint the
                                    fallback serves, so the fallback is never given
  fallback-bypasses-eligibility
                           error    a marketing fallback with engagement rules: a fallback skips
                                    them, so it reaches customers they exclude
  fallback-is-marketing    warning  a marketing fallback without engagement rules
  fallback-needs-opt-in    warning  a fallback on a channel whose consent for its purpose is
                                    opt-in: customers without an opt-in get no fallback
Redundancy
  duplicate-rule           warning  two rules with the same effect and equivalent conditions
  shadowed-rule            warning  a rule that never changes a decision because another rule
                                    with the same effect holds whenever it does
  duplicate-segment        warning  two segments that hold for exactly the same requests
Weights and targets
  no-op-weight             warning  a weight rule or lever with factor 1 (changes no score)
  weight-never-applies     warning  a weight rule that never holds when any action it targets
                                    can be recommended
  empty-targets            warning  a suppression, weight rule or lever that targets no action
Unused
  unused-segment           warning  a segment no rule uses (still listed in explain output)
  unused-attribute         warning  a profile attribute no rule uses (still validated)
Policies
  cap-blocks-all           warning  a cap with `max: 0`: every action it covers is blocked there
  cap-covers-nothing       warning  a cap no recommendable action/channel falls under
  cooldown-covers-nothing  warning  a cooldown for a purpose no action has
  quiet-hours-empty        warning  quiet hours with start == end cover no minute at all
  quiet-hours-no-effect    warning  quiet hours on inbound-only channels (never restrained)
  window-too-short         warning  a cap window or cooldown pause under an hour (`1m` is a minute)
  window-too-long          warning  a policy window longer than its kind plausibly needs: it sets
                                    how long every customer's history is kept (ranges in windows.py)

Errors are what is certainly broken: something that can never happen, or an action that can
never be shown. Warnings are what has no effect or is redundant: harmless to serve, but the
author most likely meant something else.

How conditions are reasoned about is told in `nba.authoring.checks.solver`. Each family of
checks is one module here (its codes in its docstring); `Checker` joins them.
"""

from __future__ import annotations

from nba.authoring.checks.actions import ActionChecks
from nba.authoring.checks.conditions import ConditionChecks
from nba.authoring.checks.fallbacks import FallbackChecks
from nba.authoring.checks.policies import PolicyChecks
from nba.authoring.checks.redundancy import RedundancyChecks
from nba.authoring.checks.unused import UnusedChecks
from nba.authoring.checks.weights import WeightChecks
from nba.authoring.checks.windows import WindowChecks
from nba.errors import RuleError
from nba.ruleset.ruleset import RuleSet

__all__ = ["Checker", "check"]


def check(ruleset: RuleSet) -> list[RuleError]:
    """Warnings and errors of a loaded rule set, sorted by location."""
    return Checker(ruleset).run()


class Checker(
    ConditionChecks,
    ActionChecks,
    FallbackChecks,
    RedundancyChecks,
    WeightChecks,
    UnusedChecks,
    PolicyChecks,
    WindowChecks,
):
    """Every family of checks over one rule set; `run()` returns the findings, sorted."""

    def run(self) -> list[RuleError]:
        self.conditions()  # first: the later checks skip rules found never or always true
        for action in self.rs.actions.values():
            self.action(action)  # before weights: it fills `reach`
        for fallback in self.rs.fallbacks:
            self.fallback(fallback)
        self.redundancy()
        self.weights()
        self.unused()
        self.policies()
        self.windows()
        return sorted(self.found, key=RuleError.sort_key)
