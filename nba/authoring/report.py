"""`nba report`: how actions and experiment arms did, from the decision log and the store.

Rows, per action, channel and arm (a customer's arms joined, "-" outside every
experiment): the logged decisions that recommended the action, the impressions and
positive outcomes recorded against those decisions (RecordOutcome's decision_id), the
response rate with a 95% Wilson interval and the value per impression. The rate's
denominator is the impressions where any were recorded, the decisions otherwise (a
call-center script has no impressions: the agent records the answer).

Arms, per experiment: decisions and customers in each arm, the share of decisions
that got a positive outcome, and each arm's uplift against the experiment's control:
the difference of rates and the relative uplift (rate / control - 1) with 95% intervals
by the delta method,

    Var(p1 - p0) = p1 (1 - p1) / n1 + p0 (1 - p0) / n0
    Var(log(p1 / p0)) ~ Var(p1) / p1^2 + Var(p0) / p0^2

(the relative interval is exp(log(p1 / p0) +- 1.96 sd) - 1: a ratio's interval on the log
scale never goes below -100% and is as skewed as the ratio, where the linear form gave
-300% on a small control).

A sample-ratio mismatch (the arms' customers not matching their declared shares: a
chi-square test, p < SRM_ALPHA) is flagged: the assignment or the logging is broken,
and the uplift cannot be trusted.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from nba.authoring.models import ActionModel
from nba.decisionlog import DecisionRecord
from nba.pipeline.types import Outcome
from nba.ruleset.ruleset import RuleSet
from nba.store import InteractionStore

Z95 = 1.959963984540054
SRM_ALPHA = 0.001  # what the experimentation platforms use: a false alarm once in 1,000
NO_ARM = "-"
POSITIVES_BY_DEFAULT = frozenset({Outcome.CLICK, Outcome.ACCEPT})


@dataclass(frozen=True, slots=True)
class Rate:
    """A proportion and its 95% Wilson interval."""

    successes: float
    trials: float
    value: float  # successes / trials (a field, so the JSON report carries it)
    low: float
    high: float

    @classmethod
    def of(cls, successes: float, trials: float) -> Rate:
        if trials <= 0:
            return cls(0.0, 0.0, 0.0, 0.0, 1.0)
        p, z2 = successes / trials, Z95 * Z95
        centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
        half = Z95 * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
        half /= 1 + z2 / trials
        low, high = max(0.0, centre - half), min(1.0, centre + half)
        return cls(successes, trials, p, low, high)


@dataclass(frozen=True, slots=True)
class ActionRow:
    action_id: str
    channel: str
    arm: str  # "experiment=arm, ..." or NO_ARM
    decisions: int
    impressions: int
    positives: int
    rate: Rate
    value_per_impression: float


@dataclass(frozen=True, slots=True)
class Uplift:
    difference: float
    difference_low: float
    difference_high: float
    relative: float | None  # None: the control had no positives
    relative_low: float | None
    relative_high: float | None


@dataclass(frozen=True, slots=True)
class ArmRow:
    arm: str
    share: float  # declared
    customers: int
    decisions: int
    rate: Rate  # decisions with a positive outcome
    uplift: Uplift | None  # None for the control


@dataclass(frozen=True, slots=True)
class ExperimentReport:
    experiment: str
    control: str
    arms: tuple[ArmRow, ...]
    srm_p: float  # the chi-square test's p-value of the arms' customer counts
    srm: bool  # a mismatch: p < SRM_ALPHA


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """One budget's current window: the store's count against its limit and, from the
    decision log, how the logged recommendations it covers were spent over the window."""

    budget: str
    window: str  # "today", "this week", ...
    start: float | None  # the window's start (unix seconds); None for a total
    limit: int
    allowed_now: int  # the limit, or a paced budget's allowance at the report's moment
    used: int  # the store's counter: every worker's and replica's claims
    paced: bool
    spent: tuple[tuple[float, int], ...]  # (elapsed fraction, logged so far), <= 60 points


@dataclass(frozen=True, slots=True)
class Report:
    decisions: int
    rows: tuple[ActionRow, ...]
    experiments: tuple[ExperimentReport, ...]
    skipped: Mapping[str, int] = field(default_factory=dict)
    models: tuple[ActionModel, ...] = ()  # maturity per learning action (nba models)
    budgets: tuple[BudgetUse, ...] = ()


@dataclass(slots=True)
class _Joined:
    """One logged decision with the outcomes recorded against it."""

    record: DecisionRecord
    impressions: set[tuple[str, str]]  # (action, channel)
    positives: set[tuple[str, str]]


def report(
    records: Iterable[DecisionRecord],
    store: InteractionStore,
    ruleset: RuleSet,
    models: Sequence[ActionModel] = (),
    now: float | None = None,
) -> Report:
    """The report over every logged decision whose outcomes the store can join."""
    records = list(records)
    joined, skipped = _join(records, store, ruleset)
    rows, experiments = _rows(joined, ruleset), _experiments(joined, ruleset)
    budgets = budget_use(records, store, ruleset, time.time() if now is None else now)
    return Report(len(joined), rows, experiments, skipped, tuple(models), budgets)


def budget_use(
    records: Sequence[DecisionRecord], store: InteractionStore, ruleset: RuleSet, now: float
) -> tuple[BudgetUse, ...]:
    """Per budget, its current window's count (store) and spending curve (the log)."""
    from nba.pipeline.budgets import rooms

    found = []
    for room in rooms(ruleset.budgets, ruleset.meta.time_zone, now, store):
        budget, current = room.claim.budget, room.claim.window
        times = sorted(
            r.time
            for r in records
            if current.start <= r.time < current.end
            for rec in r.recommendations
            if budget.covers(str(rec["action"]), str(rec["channel"]))
        )
        step = max(1, len(times) // 60)
        spent = tuple(
            (current.elapsed(t), i + 1) for i, t in enumerate(times) if (i + 1) % step == 0
        )
        start = current.start if math.isfinite(current.start) else None
        found.append(
            BudgetUse(
                budget.id,
                current.label,
                start,
                budget.limit,
                room.claim.allowed,
                room.used,
                budget.paced,
                spent,
            )
        )
    return tuple(found)


def _join(
    records: Iterable[DecisionRecord], store: InteractionStore, ruleset: RuleSet
) -> tuple[list[_Joined], dict[str, int]]:
    by_customer: dict[str, list[DecisionRecord]] = defaultdict(list)
    skipped: dict[str, int] = defaultdict(int)
    for record in records:
        if record.customer.startswith("hmac-sha256:"):
            skipped["customer id hashed (outcomes cannot be joined)"] += 1
        else:
            by_customer[record.customer].append(record)
    joined: list[_Joined] = []
    for customer, kept in by_customer.items():  # one store read per customer
        by_id = {r.decision_id: _Joined(r, set(), set()) for r in kept}
        for item in store.history(customer, min(r.time for r in kept) - 1):
            found = by_id.get(item.decision_id)
            if found is None:
                continue
            key = (item.action_id, item.channel)
            if item.outcome == Outcome.IMPRESSION:
                found.impressions.add(key)
            elif item.outcome in _positives(ruleset, item.action_id):
                found.positives.add(key)
        joined += by_id.values()
    return joined, dict(skipped)


def _positives(ruleset: RuleSet, action_id: str) -> frozenset[int]:
    learning = ruleset.learning.get(action_id)
    return learning.positives if learning is not None else POSITIVES_BY_DEFAULT


def _arm_label(arms: Mapping[str, str]) -> str:
    return ", ".join(f"{e}={a}" for e, a in sorted(arms.items())) or NO_ARM


def _rows(joined: list[_Joined], ruleset: RuleSet) -> tuple[ActionRow, ...]:
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for item in joined:
        arm = _arm_label(item.record.arms)
        for rec in item.record.recommendations:
            key = (str(rec["action"]), str(rec["channel"]))
            row = counts[(*key, arm)]
            row[0] += 1
            row[1] += key in item.impressions
            row[2] += key in item.positives
    rows = []
    for (action_id, channel, arm), (decisions, impressions, positives) in sorted(counts.items()):
        action = ruleset.actions.get(action_id)
        value = action.value if action is not None else 0.0
        shown = impressions or decisions
        rows.append(
            ActionRow(
                action_id,
                channel,
                arm,
                decisions,
                impressions,
                positives,
                Rate.of(positives, shown),
                positives * value / shown if shown else 0.0,
            )
        )
    return tuple(rows)


def _experiments(joined: list[_Joined], ruleset: RuleSet) -> tuple[ExperimentReport, ...]:
    reports = []
    for experiment in ruleset.experiments:
        decisions: dict[str, list[bool]] = defaultdict(list)
        customers: dict[str, set[str]] = defaultdict(set)
        for item in joined:
            arm = item.record.arms.get(experiment.id)
            if arm is not None:
                decisions[arm].append(bool(item.positives))
                customers[arm].add(item.record.customer)
        if not decisions:
            continue
        rates = {a.id: Rate.of(sum(decisions[a.id]), len(decisions[a.id])) for a in experiment.arms}
        control = rates[experiment.control]
        arms = tuple(
            ArmRow(
                a.id,
                a.share,
                len(customers[a.id]),
                len(decisions[a.id]),
                rates[a.id],
                None if a.id == experiment.control else uplift(rates[a.id], control),
            )
            for a in experiment.arms
        )
        observed = [len(customers[a.id]) for a in experiment.arms]
        p = srm_p_value(observed, [a.share for a in experiment.arms])
        reports.append(ExperimentReport(experiment.id, experiment.control, arms, p, p < SRM_ALPHA))
    return tuple(reports)


def uplift(arm: Rate, control: Rate) -> Uplift:
    """The arm against the control: difference and relative uplift, delta-method 95%."""
    p1, p0 = arm.value, control.value
    var1 = p1 * (1 - p1) / arm.trials if arm.trials else 0.0
    var0 = p0 * (1 - p0) / control.trials if control.trials else 0.0
    half = Z95 * math.sqrt(var1 + var0)
    difference = p1 - p0
    if p0 <= 0:
        return Uplift(difference, difference - half, difference + half, None, None, None)
    ratio = p1 / p0
    if p1 <= 0:  # no positives in the arm: log(ratio) is undefined; the linear form, >= -100%
        rel_half = Z95 * math.sqrt(var0) / p0
        low, high = -1.0, rel_half - 1.0
    else:  # on the log scale: never below -100%, and right-skewed as a ratio is
        spread = Z95 * math.sqrt(var1 / (p1 * p1) + var0 / (p0 * p0))
        low, high = ratio * math.exp(-spread) - 1, ratio * math.exp(spread) - 1
    return Uplift(difference, difference - half, difference + half, ratio - 1, low, high)


def srm_p_value(observed: list[int], shares: list[float]) -> float:
    """Pearson's chi-square test of counts against expected shares: its p-value."""
    total = sum(observed)
    cells = [(o, s * total) for o, s in zip(observed, shares, strict=True) if s > 0]
    if total == 0 or len(cells) < 2:
        return 1.0
    statistic = sum((o - e) ** 2 / e for o, e in cells)
    return chi_square_survival(statistic, len(cells) - 1)


def chi_square_survival(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square with integer `df` degrees of freedom.

    The closed forms for integer degrees of freedom (Abramowitz & Stegun 26.4.4-5), exact
    and a few lines, instead of scipy (a 40 MB dependency) for one function.
    """
    if x <= 0:
        return 1.0
    half = x / 2
    if df % 2 == 0:  # e^(-x/2) * sum_{i < df/2} (x/2)^i / i!
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= half / i
            total += term
        return min(1.0, math.exp(-half) * total)
    # odd: erfc(sqrt(x/2)) + e^(-x/2) sqrt(2x/pi) * sum_{i < (df-1)/2} x^i / (1*3*...*(2i+1))
    survival = math.erfc(math.sqrt(half))
    term, total = 1.0, 0.0
    for i in range((df - 1) // 2):
        total += term
        term *= x / (2 * i + 3)
    return min(1.0, survival + math.exp(-half) * math.sqrt(2 * x / math.pi) * total)
