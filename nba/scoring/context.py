"""Contextual propensity: a posterior per segment, or naive Bayes over binned predictors.

An action's propensity per action and channel (adaptive.py) treats every customer alike.
`learning.context` in the rule files learns it per customer context instead, with one
of two models; both start from, and fall back to, the action's own posterior (its prior
and evidence on the channel), so a context with little evidence scores as the action does:

`segments: [a, b, ...]`: a Beta posterior per segment, the first listed that the customer
is in (or none of them), shrunk towards the action's posterior mean mu with `strength`
pseudo-observations:

    alpha = strength x mu + positives in the segment
    beta  = strength x (1 - mu) + failures in the segment

`predictors: [...]`: naive Bayes in the manner of Pega's adaptive models. Per predictor
and bin, decayed positive and failure counts. A bin's rate is shrunk towards its
predictor's overall rate r with `strength` pseudo-observations, and its log-likelihood
ratio is the difference of log-odds (Bayes' rule: P(bin|+)/P(bin|-) =
odds(+|bin)/odds(+)), so an empty bin adds nothing:

    log-odds = logit(mu) + sum over predictors of (logit(r_bin) - logit(r))

Naive Bayes counts correlated predictors twice; as Pega does, the raw score is then
calibrated on outcomes: scores fall in bins of SCORE_BIN_WIDTH log-odds, each with its own
counts (attributed by the decision that showed the action), and the propensity is the
score bin's rate shrunk towards the raw score:

    alpha = strength x raw + positives in the score bin    (and beta likewise)

Thompson sampling draws from that Beta, whose concentration (strength + the bin's
evidence) says how much is known about customers scored like this one.

Predictor bins come from the decision (its profile and segments), and an outcome is
counted in the bins of the decision that showed the action (nba/scoring/attribution.py),
since RecordOutcome carries no profile. Counters are named in evidence.py.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nba.ruleset.ruleset import LearningContext, Predictor
from nba.scoring.evidence import Evidence

SCORE_FEATURE = "score"
SCORE_BIN_WIDTH = 0.5  # log-odds per calibration bin: 0.5 is a factor of 1.65 in odds
SCORE_BIN_LIMIT = 10.0  # scores beyond +-10 log-odds share the end bins
TOTAL = "*"  # the bin name under which a feature's counts over all bins are kept
MISSING = "0"
NONE_SEGMENT = "-"  # the segment model's bin for a customer in none of the listed segments
_EPS = 1e-9

Features = tuple[tuple[str, str], ...]  # (feature, bin) for each predictor of a decision


def features_of(
    context: LearningContext, profile: Mapping[str, Any], segments: Collection[str]
) -> Features:
    """The decision's bins: one per predictor, or the segment model's one."""
    if context.segments:
        found = next((s for s in context.segments if s in segments), NONE_SEGMENT)
        return ((context.segment_feature, found),)
    return tuple((p.feature, bin_of(p, profile, segments)) for p in context.predictors)


def bin_of(predictor: Predictor, profile: Mapping[str, Any], segments: Collection[str]) -> str:
    """Bin "0" when the attribute was not sent; "1" for the first bin and on."""
    if predictor.segment is not None:
        return "2" if predictor.segment in segments else "1"
    value = profile.get(predictor.attribute or "")
    if value is None:
        return MISSING
    if predictor.cuts:
        below = sum(1 for cut in predictor.cuts if value >= cut)
        return str(below + 1)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    try:
        return str(predictor.values.index(text) + 1)
    except ValueError:
        return MISSING


def score_bin(log_odds: float) -> str:
    clamped = min(max(log_odds, -SCORE_BIN_LIMIT), SCORE_BIN_LIMIT - _EPS)
    return str(math.floor((clamped + SCORE_BIN_LIMIT) / SCORE_BIN_WIDTH))


def logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


ContextCounts = Mapping[tuple[str, ...], Evidence]  # (action, channel, feature, bin)


@dataclass(frozen=True, slots=True)
class ContextPosterior:
    """An action's Beta posterior in one context, and the score bin it fell in (NB)."""

    alpha: float
    beta: float
    score_bin: str = ""  # naive Bayes: the calibration bin an outcome will count in

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


def segment_posterior(
    counts: ContextCounts,
    key: tuple[str, str],
    features: Features,
    mu: float,
    strength: float,
) -> ContextPosterior:
    """The segment's posterior, shrunk towards the action's mean `mu`."""
    feature, segment = features[0]
    evidence = counts.get((*key, feature, segment), _NONE)
    alpha = strength * mu + evidence.positives
    beta = strength * (1.0 - mu) + evidence.failures
    return ContextPosterior(max(alpha, _EPS), max(beta, _EPS))


def naive_bayes_log_odds(
    counts: ContextCounts, key: tuple[str, str], features: Features, mu: float, strength: float
) -> float:
    """logit(mu) plus each predictor's log-likelihood ratio for its bin (module doc)."""
    log_odds = logit(mu)
    for feature, bin_ in features:
        total = counts.get((*key, feature, TOTAL))
        if total is None:
            continue
        overall = _rate(total, mu, strength)
        in_bin = counts.get((*key, feature, bin_), _NONE)
        log_odds += logit(_rate(in_bin, overall, strength)) - logit(overall)
    return log_odds


def naive_bayes_posterior(
    counts: ContextCounts, key: tuple[str, str], features: Features, mu: float, strength: float
) -> ContextPosterior:
    """The calibrated naive-Bayes propensity as a Beta (module doc)."""
    raw_log_odds = naive_bayes_log_odds(counts, key, features, mu, strength)
    raw = sigmoid(raw_log_odds)
    bin_ = score_bin(raw_log_odds)
    evidence = counts.get((*key, SCORE_FEATURE, bin_), _NONE)
    alpha = strength * raw + evidence.positives
    beta = strength * (1.0 - raw) + evidence.failures
    return ContextPosterior(max(alpha, _EPS), max(beta, _EPS), bin_)


def _rate(evidence: Evidence, towards: float, strength: float) -> float:
    """The evidence's positive rate, shrunk towards `towards` by `strength` observations."""
    trials = evidence.positives + evidence.failures
    return (evidence.positives + strength * towards) / (trials + strength)


_NONE = Evidence()


def predictor_auc(bins: Sequence[Evidence]) -> float:
    """How well a predictor's bins alone rank positives above failures (0.5: not at all).

    The area under the ROC curve of scoring each customer by their bin's positive rate:
    the share of (positive, failure) pairs the bins order rightly, ties counting half.
    """
    counted = [(b.positives, b.failures) for b in bins if b.positives + b.failures > 0]
    counted.sort(key=lambda pf: pf[0] / (pf[0] + pf[1]), reverse=True)
    positives = sum(p for p, _ in counted)
    failures = sum(f for _, f in counted)
    if not positives or not failures:
        return 0.5
    area, failures_below = 0.0, failures
    for p, f in counted:
        failures_below -= f
        area += p * (failures_below + f / 2)  # this bin's positives beat those below it
    return area / (positives * failures)
