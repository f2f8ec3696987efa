"""The rule set a combination of arms decides with: the rule set as written, with each
arm's levers, weights, rules and scoring applied (in the order the experiments are
declared: when two arms set one lever, the later experiment's wins).

Built once per load for every combination that changes anything, so a decision only looks
its variant up; every variant is an ordinary RuleSet, checked by the same engines, and
consent and contact policies are part of every one of them: no arm can override them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from nba.ruleset.resolve import Const
from nba.ruleset.ruleset import UNIVERSAL_CONTROL, Arm, Experiment, Learning, Rule, RuleSet, Target

NO_MARKETING = "in the universal control group: no marketing"
Key = tuple[tuple[str, str], ...]  # (experiment id, arm id) of the arms that change something


def key_of(arms: Iterable[tuple[str, Arm]]) -> Key:
    return tuple((experiment, arm.id) for experiment, arm in arms if arm.changes)


def combinations(experiments: Sequence[Experiment]) -> Iterable[list[tuple[str, Arm]]]:
    """Every combination of changing arms a customer can be in (None: an unchanged arm)."""
    choices = [[None, *(a for a in e.arms if a.changes)] for e in experiments]
    for chosen in itertools.product(*choices):
        arms = [(e.id, a) for e, a in zip(experiments, chosen, strict=True) if a is not None]
        held_out = any(e == UNIVERSAL_CONTROL and a.id == "control" for e, a in arms)
        if not held_out or len(arms) == 1:  # the hold-out is in no other experiment
            yield arms


def variant(ruleset: RuleSet, arms: Sequence[Arm]) -> RuleSet:
    """`ruleset` as the customers in all of `arms` see it (no experiments of its own)."""
    rules = list(ruleset.rules)
    levers = list(ruleset.levers)
    learning, context = ruleset.learning, ruleset.learning_context
    for arm in arms:
        rules = _rules(rules, ruleset.dormant_rules, arm)
        levers = [replace(lv, factor=arm.levers.get(lv.id, lv.factor)) for lv in levers]
        if arm.scoring == "static":
            learning, context = {}, None
        elif arm.scoring in ("adaptive", "exploit"):
            learning = _exploring(learning, arm.scoring == "adaptive")
        if not arm.marketing:
            rules.append(_no_marketing(ruleset, rules))
    return replace(
        ruleset,
        rules=tuple(replace(r, index=i) for i, r in enumerate(rules)),
        levers=tuple(levers),
        learning=learning,
        learning_context=context,
        experiments=(),
        dormant_rules=(),
    )


def _rules(rules: list[Rule], dormant: Sequence[Rule], arm: Arm) -> list[Rule]:
    kept = [r for r in rules if not _disabled(r, arm)]
    kept += [r for r in dormant if r.id in arm.enable and r not in kept]
    return [
        replace(r, factor=arm.weights[r.id]) if r.kind == "weight" and r.id in arm.weights else r
        for r in kept
    ]


def _disabled(rule: Rule, arm: Arm) -> bool:
    return rule.kind in ("suppress", "weight") and rule.id in arm.disable


def _exploring(learning: Mapping[str, Learning], explore: bool) -> dict[str, Learning]:
    return {a: replace(x, explore=explore) for a, x in learning.items()}


def _no_marketing(ruleset: RuleSet, rules: list[Rule]) -> Rule:
    """A suppression that always holds, of every marketing action: the hold-out's rule."""
    marketing = frozenset(a.id for a in ruleset.actions.values() if a.purpose == "marketing")
    control = next(e for e in ruleset.experiments if any(not a.marketing for a in e.arms))
    last = max((r.stratum for r in rules if r.kind == "segment"), default=-1) + 1
    return Rule(
        index=len(rules),
        id="universal_control",
        kind="suppress",
        expr=Const(True),
        source="true",
        location=control.location,
        stratum=last,
        reason=NO_MARKETING,
        words=NO_MARKETING,
        targets=marketing,
        target=Target(purposes=frozenset({"marketing"})),
    )


def describe_arm(arm: Arm) -> str:
    """What an arm changes, in words for `nba explain`."""
    parts = [f"lever {k} x{v:g}" for k, v in arm.levers.items()]
    parts += [f"weight rule {k} x{v:g}" for k, v in arm.weights.items()]
    parts += [f"without rule {r}" for r in sorted(arm.disable)]
    parts += [f"with rule {r}" for r in sorted(arm.enable)]
    if arm.scoring is not None:
        parts.append(f"scoring {arm.scoring}")
    if not arm.marketing:
        parts.append("no marketing")
    return ", ".join(parts) or "the rule set as written"
