"""`nba models`: what each action has learned, read from the interaction store.

Per learning action (over all its channels): the prior, the decayed evidence, the
posterior mean and whether it is mature (the maturity rule's positives reached). With
`learning.context`, per predictor (or the segment model's one feature) its bins' counts
and rates and the predictor's AUC: how well its bins alone order positives above
failures (0.5: not at all), which is how Pega's model reports say which predictors
earn their place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nba.ruleset.ruleset import RuleSet
from nba.scoring.adaptive import ModelSnapshot
from nba.scoring.context import TOTAL, predictor_auc
from nba.scoring.evidence import Evidence

NONE = Evidence()


@dataclass(frozen=True, slots=True)
class BinCounts:
    label: str
    positives: float
    failures: float

    @property
    def rate(self) -> float | None:
        trials = self.positives + self.failures
        return self.positives / trials if trials else None


@dataclass(frozen=True, slots=True)
class PredictorReport:
    name: str
    auc: float
    bins: tuple[BinCounts, ...]


@dataclass(frozen=True, slots=True)
class ActionModel:
    action_id: str
    prior: float
    prior_strength: float
    positives: float
    failures: float
    posterior_mean: float
    mature: bool
    predictors: tuple[PredictorReport, ...] = ()


def models(ruleset: RuleSet, snapshot: ModelSnapshot) -> list[ActionModel]:
    """One report per learning action, in id order."""
    return [_action(ruleset, snapshot, a) for a in sorted(ruleset.learning)]


def _action(ruleset: RuleSet, snapshot: ModelSnapshot, action_id: str) -> ActionModel:
    learning = ruleset.learning[action_id]
    prior = ruleset.actions[action_id].propensity
    evidence = snapshot.evidence.get((action_id, ""), NONE)
    alpha = learning.prior_strength * prior + evidence.positives
    beta = learning.prior_strength * (1 - prior) + evidence.failures
    return ActionModel(
        action_id,
        prior,
        learning.prior_strength,
        evidence.positives,
        evidence.failures,
        alpha / (alpha + beta) if alpha + beta > 0 else prior,
        evidence.positives >= learning.maturity_positives,
        _predictors(ruleset, snapshot.context, action_id),
    )


def _predictors(
    ruleset: RuleSet, counts: Mapping[tuple[str, ...], Evidence], action_id: str
) -> tuple[PredictorReport, ...]:
    context = ruleset.learning_context
    if context is None:
        return ()
    if context.segments:
        labels = {s: s for s in (*context.segments, "-")}
        features = [("segment", context.segment_feature, labels)]
    else:
        features = [
            (p.attribute or f"segment {p.segment}", p.feature, dict(_numbered(p.bin_labels)))
            for p in context.predictors
        ]
    reports = []
    for name, feature, labels in features:
        found = {
            b: e for (a, c, f, b), e in counts.items() if (a, c, f) == (action_id, "", feature)
        }
        bins = tuple(
            BinCounts(label, found.get(b, NONE).positives, found.get(b, NONE).failures)
            for b, label in labels.items()
        )
        measured = [e for b, e in found.items() if b != TOTAL]
        reports.append(PredictorReport(name, predictor_auc(measured), bins))
    return tuple(reports)


def _numbered(labels: tuple[str, ...]) -> list[tuple[str, str]]:
    """A predictor's bins are named "0" (missing), "1", ... in the counters."""
    return [(str(i), label) for i, label in enumerate(labels)]
