"""Off-policy evaluation: what a candidate rule set would have earned on traffic already seen.

`nba evaluate --log DIR --against RULES --store URL` reads logged decisions (the decision
log), the outcomes recorded against them (RecordOutcome's decision_id, in the store), and
estimates the candidate's accept rate and value per decision three ways:

    w_i = pi_new(a_i | x_i) / pi_log(a_i | x_i)          (a_i: the action shown first)
    IPS   = mean(w_i r_i)
    SNIPS = sum(w_i r_i) / sum(w_i)                        (self-normalised: lower variance)
    DR    = mean(q_new(x_i) + w_i (r_i - q(x_i, a_i)))      (doubly robust)

with q(x, a) the logged posterior mean of a (the logging model's own estimate of its
accept rate) and q_new(x) = sum_a pi_new(a | x) q(x, a). Intervals are 95%, from the
normal approximation for IPS and DR and a bootstrap for SNIPS.

Selection probabilities: a decision's first action is the eligible candidate (passing
consent and every policy) with the highest propensity x weight x value x lever. With
Thompson sampling the propensities are draws, so pi(a | x) is the share of `draws`
rankings, drawn from the logged posteriors (the record's parameters), that put a first;
without exploration it is 1 for the one first action. A logged probability is kept at
least 1/draws, so a rare pick cannot divide by zero (the estimate is then biased
towards zero for it; more draws, less bias).

What no estimator can do: judge a candidate that would show what the log (almost) never
showed first. `support` counts the logged decisions that overlap the candidate's
choices and `effective_size` what its weights are worth; under MIN_SUPPORT effective
decisions the evaluation carries a warning.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from nba.decisionlog import DecisionRecord
from nba.decisionlog.record import DEADLINE, decision_request
from nba.pipeline.decider import Decider
from nba.pipeline.types import OUTBOUND, DecisionRequest
from nba.scoring import Scorer
from nba.scoring.adaptive import AdaptiveScorer, ModelCache, Propensity
from nba.store import InteractionStore

Z95 = 1.959963984540054
MIN_SUPPORT = 30  # an effective sample smaller than this: the estimate is flagged


@dataclass(frozen=True, slots=True)
class Logged:
    """One logged decision with what came of it."""

    request: DecisionRequest  # as decided (history merged)
    shown: str  # the action recommended first
    reward: float  # 1.0: a positive outcome was recorded against the decision
    value: float  # the shown action's value (for value per decision)
    model: dict[str, list[float]]  # the logging scorer's parameters
    seed: str
    version: str = ""  # the rule-set version that decided (the logging policy)


@dataclass(frozen=True, slots=True)
class Estimate:
    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}]"


@dataclass(frozen=True, slots=True)
class Evaluation:
    decisions: int
    logged_rate: float  # what the logging policy earned (the plain mean of rewards)
    ips: Estimate
    snips: Estimate
    dr: Estimate
    value_snips: Estimate  # value per decision, self-normalised
    support: int  # logged decisions whose first action the candidate could have shown first
    effective_size: float  # (sum w)^2 / sum w^2: how many decisions the estimate is worth

    @property
    def warning(self) -> str:
        """Why the estimates should not be trusted, or ""."""
        if self.effective_size < MIN_SUPPORT:
            return (
                f"the log is worth {self.effective_size:.0f} decisions for this candidate"
                f" ({self.support} showed first what it would): it says little about it,"
                " and the intervals understate the uncertainty"
            )
        return ""


def first_action_probabilities(
    decider: Decider, request: DecisionRequest, model: ModelCache | None, draws: int, seed: str
) -> dict[str, float]:
    """pi(a | x): how often each action comes first under `decider` scoring with `model`
    (None: the decider's own scorer); see the module docstring."""
    session = _session(decider, model, request, seed)
    return _probabilities(decider, session, _eligible(decider, request, session), draws, seed)


Option = tuple[str, Propensity, float]  # action, how its propensity is chosen, the other factors


def _probabilities(
    decider: Decider, session: Scorer, options: list[Option], draws: int, seed: str
) -> dict[str, float]:
    if not options:
        return {}
    if not any(p.share for _, p, _ in options):  # nothing drawn: one ranking
        best = max(options, key=lambda o: o[1].fixed * o[2])
        return {best[0]: 1.0}
    # In action order: which draw goes to which action must not depend on the order an
    # engine reported the candidates in, or one policy judged twice would differ.
    options = sorted(options, key=lambda o: o[0])
    rng = random.Random(seed)
    wins: Counter[str] = Counter()
    for _ in range(draws):
        wins[max(options, key=lambda o: o[1].draw(rng) * o[2])[0]] += 1
    # The decision's own ranking (its seed's draws) is one more sample of the same policy:
    # counted, the logged action's probability is never 0, and a policy judged on its own
    # log gets weights of exactly 1.
    if isinstance(session, AdaptiveScorer):
        actions = decider.ruleset.actions
        wins[max(options, key=lambda o: session.drawn(actions[o[0]]) * o[2])[0]] += 1
        draws += 1
    return {action: n / draws for action, n in wins.items()}


def _session(
    decider: Decider, model: ModelCache | None, request: DecisionRequest, seed: str
) -> Scorer:
    channel = "" if request.channel == OUTBOUND else request.channel
    base = decider.scorer
    if model is not None and decider.ruleset.learning:
        base = AdaptiveScorer(decider.ruleset, model)
    return base.session(seed, channel)


def _eligible(decider: Decider, request: DecisionRequest, scorer: Scorer) -> list[Option]:
    """(action, how its propensity is chosen, weight x value x lever) of each candidate that
    consent and the policies let be shown first."""
    evaluation = decider.evaluator.full(request, scorer)
    lever = decider.ruleset.lever_factor
    options = []
    for candidate in evaluation.engagement.candidates:
        policies = decider.policies.prepare(request)  # fresh: as the first pick
        if policies.check(candidate) is not None or policies.place(candidate) is not None:
            continue
        action = candidate.action
        propensity = (
            scorer.distribution(action)
            if isinstance(scorer, AdaptiveScorer)
            else Propensity(action.propensity)
        )
        options.append((action.id, propensity, candidate.weight * action.value * lever[action.id]))
    return options


def evaluate(
    logged: Sequence[Logged],
    logging: Decider | Mapping[str, Decider],
    candidate: Decider,
    draws: int = 200,
    logging_model: ModelCache | None = None,
) -> Evaluation:
    """The candidate's estimated accept rate and value per decision on `logged`; `logging`
    is the rule set that decided, or one per version when the log spans several."""
    weights, rewards, values, direct, q_shown = [], [], [], [], []
    for item in logged:
        decider = logging if isinstance(logging, Decider) else logging[item.version]
        channel = "" if item.request.channel == OUTBOUND else item.request.channel
        model = ModelCache.fixed(channel, item.model) if item.model else logging_model
        session = _session(decider, model, item.request, item.seed)
        options = _eligible(decider, item.request, session)  # once: for pi_log and q
        pi_log = _probabilities(decider, session, options, draws, item.seed)
        pi_new = first_action_probabilities(candidate, item.request, model, draws, item.seed)
        # q(x, a): the logging model's expected accept rate, whatever exploration draws
        q = {action: propensity.posterior_mean for action, propensity, _ in options}
        weights.append(pi_new.get(item.shown, 0.0) / max(pi_log.get(item.shown, 0.0), 1 / draws))
        rewards.append(item.reward)
        values.append(item.reward * item.value)
        direct.append(sum(p * q.get(a, 0.0) for a, p in pi_new.items()))
        q_shown.append(q.get(item.shown, 0.0))
    n = len(logged)
    ips_terms = [w * r for w, r in zip(weights, rewards, strict=True)]
    dr_terms = [
        d + w * (r - qs) for d, w, r, qs in zip(direct, weights, rewards, q_shown, strict=True)
    ]
    return Evaluation(
        decisions=n,
        logged_rate=statistics.fmean(rewards) if n else 0.0,
        ips=_normal(ips_terms),
        snips=_snips(weights, rewards),
        dr=_normal(dr_terms),
        value_snips=_snips(weights, values),
        support=sum(1 for w in weights if w > 0),
        effective_size=sum(weights) ** 2 / sum(w * w for w in weights) if any(weights) else 0.0,
    )


def _normal(terms: Sequence[float]) -> Estimate:
    if not terms:
        return Estimate(math.nan, math.nan, math.nan)
    mean = statistics.fmean(terms)
    half = Z95 * (statistics.stdev(terms) / math.sqrt(len(terms)) if len(terms) > 1 else 0.0)
    return Estimate(mean, mean - half, mean + half)


def _snips(weights: Sequence[float], rewards: Sequence[float], rounds: int = 300) -> Estimate:
    total = sum(weights)
    if not total:
        return Estimate(math.nan, math.nan, math.nan)
    mean = sum(w * r for w, r in zip(weights, rewards, strict=True)) / total
    rng = random.Random(0)
    n = len(weights)
    samples = []
    for _ in range(rounds):
        picks = [rng.randrange(n) for _ in range(n)]
        w = sum(weights[i] for i in picks)
        if w:
            samples.append(sum(weights[i] * rewards[i] for i in picks) / w)
    samples.sort()
    low = samples[int(0.025 * len(samples))] if samples else math.nan
    high = samples[int(0.975 * len(samples)) - 1] if samples else math.nan
    return Estimate(mean, low, high)


# ---------------------------------------------------------------------------- from a log

POSITIVES_BY_DEFAULT = frozenset({2, 3})  # click, accept: for actions that do not learn


def from_log(
    records: Iterable[DecisionRecord],
    store: InteractionStore,
    decider_of: Callable[[str], Decider],
) -> tuple[list[Logged], Counter[str]]:
    """The logged decisions that can be evaluated, each with its reward from the store (a
    positive outcome recorded against the decision for the action shown first), and how
    many were left out, by reason."""
    logged: list[Logged] = []
    skipped: Counter[str] = Counter()
    for record in records:
        why = _unusable(record)
        if why:
            skipped[why] += 1
            continue
        decider = decider_of(record.ruleset_version)
        request = decision_request(
            record,
            decider.validator.profile_validator.validate_python(record.request["profile"]),
        )
        first = record.recommendations[0]
        shown = str(first["action"])
        learning = decider.ruleset.learning.get(shown)
        positives = learning.positives if learning is not None else POSITIVES_BY_DEFAULT
        outcomes = store.history(record.customer, record.time - 1)
        reward = any(
            i.decision_id == record.decision_id and i.action_id == shown and i.outcome in positives
            for i in outcomes
        )
        value = decider.ruleset.actions[shown].value
        logged.append(
            Logged(
                request,
                shown,
                float(reward),
                value,
                record.model,
                record.seed,
                record.ruleset_version,
            )
        )
    return logged, skipped


def _unusable(record: DecisionRecord) -> str:
    if record.customer.startswith("hmac-sha256:"):
        return "customer id hashed (outcomes cannot be joined)"
    if record.masked:
        return "profile masked"
    if record.path == DEADLINE:
        return "answered out of time"
    if not record.recommendations or record.recommendations[0].get("fallback"):
        return "fallback"
    return ""
