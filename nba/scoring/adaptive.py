"""The adaptive scorer: propensity learned from outcomes, a Beta posterior per action and channel.

For an action with `learning` (nba/ruleset/ruleset.py, `Learning`), deciding for the
touchpoint's channel c (evidence is kept per action and channel; a decision without a
touchpoint channel, an outbound run, reads the action's evidence over all channels):

    alpha = strength x prior + successes       beta = strength x (1 - prior) + failures

where prior is the rule file's `propensity`, strength its `prior_strength`
(pseudo-observations) and the evidence the decayed counts of nba/scoring/evidence.py.
The propensity used is:
- exploration on (Thompson sampling): a draw from Beta(alpha, beta), from a generator
  seeded by (decision id, action), so a given decision always ranks the same
  (tests and replays reproduce it);
- exploration off: the posterior mean alpha / (alpha + beta);
- an immature action (fewer positives than `maturity.positives`): the prior itself,
  except on `maturity.share` of decisions (chosen by the same seed), where it is
  sampled: a new action's noisy posterior moves only a small share of the traffic.
Actions without `learning` score as the static scorer scores them.

Upper bounds for top-k (the Scorer contract, score <= bound x weight): 1.0 for an
action that may be sampled (a draw can reach any value below 1), else the largest of
its prior and its posterior means over its channels, as of the cache's generation.

The evidence lives in the interaction store's counters, shared by every worker and
replica; `ModelCache` keeps this process's copy, refreshed every few seconds by a thread,
so the decision path makes no store round trip for it.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nba.pipeline.types import Candidate, Learned, Scored
from nba.ruleset.ruleset import Action, Learning, LearningContext, RuleSet
from nba.scoring.context import (
    ContextPosterior,
    Features,
    features_of,
    naive_bayes_posterior,
    segment_posterior,
)
from nba.scoring.evidence import (
    CONTEXT_PREFIX,
    PREFIX,
    Evidence,
    read_context_evidence,
    read_evidence,
)
from nba.store import Clock, InteractionStore, StoreError

if TYPE_CHECKING:
    from nba.scoring import Scorer

log = logging.getLogger("nba.scoring")

DEFAULT_REFRESH_SECONDS = 5.0
NO_EVIDENCE = Evidence()


class ModelCache:
    """This process's copy of the learned evidence, read from the store's counters."""

    def __init__(
        self,
        store: InteractionStore | None,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        # Swapped whole on every refresh: a decision reads one snapshot throughout, so its
        # top-k bounds and its scores agree.
        self.snapshot = ModelSnapshot(0, {}, {})
        self._half_lives: frozenset[int] = frozenset()
        self._contextual = False

    def follow(self, ruleset: RuleSet) -> None:
        """Also read the half-lives this rule set learns with (on every load), and refresh.

        Added to those of earlier sets, not replacing them: a reload that fails after this
        leaves the serving set's evidence in the snapshot.
        """
        self._half_lives |= {x.half_life_seconds for x in ruleset.learning.values()}
        self._contextual |= ruleset.learning_context is not None
        self.refresh()

    @property
    def generation(self) -> int:
        return self.snapshot.generation

    @classmethod
    def fixed(cls, channel: str, parameters: Mapping[str, Sequence[float]]) -> ModelCache:
        """A model that never refreshes, holding logged parameters (AdaptiveScorer.parameters)
        as the evidence of `channel`: what a replay scores with. A contextual decision's
        parameters also carry the posterior (alpha, beta) its context gave each action."""
        cache = cls(None)
        evidence = {(a, channel): Evidence(0.0, p[0], p[1]) for a, p in parameters.items()}
        posteriors = {a: (p[2], p[3]) for a, p in parameters.items() if len(p) == 4}
        cache.snapshot = ModelSnapshot(1, evidence, {}, posteriors)
        return cache

    def refresh(self) -> None:
        """Read the counters now; on a store error keep the last copy (and log it)."""
        if not self._half_lives or self.store is None:
            return
        try:
            counters = self.store.counters(PREFIX)
            context = self.store.counters(CONTEXT_PREFIX) if self._contextual else {}
        except StoreError as exc:
            log.warning("learned models not refreshed (the last copy stays): %s", exc)
            return
        now = self.clock()
        self.snapshot = ModelSnapshot(
            self.snapshot.generation + 1,
            read_evidence(counters, now, self._half_lives),
            read_context_evidence(context, now, self._half_lives) if context else {},
        )

    def refresh_forever(self, stopped: threading.Event) -> None:
        while not stopped.wait(self.refresh_seconds):
            self.refresh()


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    """The learned evidence as of one refresh."""

    generation: int
    evidence: Mapping[tuple[str, str], Evidence]  # (action, channel)
    context: Mapping[tuple[str, ...], Evidence]  # (action, channel, feature, bin)
    # A replay's logged posteriors (ModelCache.fixed): action -> (alpha, beta), as scored.
    posteriors: Mapping[str, tuple[float, float]] = field(default_factory=dict)


class AdaptiveScorer:
    """The Scorer for rule sets with `learning` (see the module docstring)."""

    def __init__(
        self,
        ruleset: RuleSet,
        cache: ModelCache,
        seed: str = "",
        channel: str = "",
        snapshot: ModelSnapshot | None = None,
        features: Features = (),
    ) -> None:
        self.ruleset = ruleset
        self.cache = cache
        self.seed = seed
        # The channel whose evidence scores every candidate: the touchpoint's, known
        # before arbitration places a candidate (ranking and reported score must agree).
        self.channel = channel
        self.snapshot = snapshot or cache.snapshot
        self.generation = self.snapshot.generation
        self._evidence = self.snapshot.evidence
        self._lever: Mapping[str, float] = ruleset.lever_factor
        self._learning: Mapping[str, Learning] = ruleset.learning
        self._context: LearningContext | None = ruleset.learning_context
        self.features = features  # the decision's bins (learning.context), once known
        self._in_context: AdaptiveScorer | None = None
        # Each action is drawn once per decision: ranking (total) and the response (score)
        # ask twice, and top-k's passes ask again.
        self._drawn: dict[str, tuple[float, Learned | None]] = {}
        self._posteriors: dict[str, ContextPosterior] = {}  # contextual, per action

    def parameters(self) -> dict[str, list[float]]:
        found = (self._evidence.get((a, self.channel), NO_EVIDENCE) for a in self._learning)
        parameters = {
            a: [e.positives, e.failures] for a, e in zip(self._learning, found, strict=True)
        }
        for action_id, posterior in self._posteriors.items():
            parameters[action_id] += [posterior.alpha, posterior.beta]
        return parameters

    def attribution(self) -> dict[str, Any]:
        """What an outcome of this decision counts in (attribution.py): its bins, and per
        action the score bin naive Bayes placed it in. {} without learning.context."""
        if not self.features:
            return {}
        bins = {a: p.score_bin for a, p in self._posteriors.items() if p.score_bin}
        return {"features": [list(f) for f in self.features], "score_bins": bins}

    def session(self, seed: str, channel: str = "") -> AdaptiveScorer:
        """This decision's scorer: the cache's current snapshot, sampling with `seed`, the
        evidence of `channel` ("": over all channels)."""
        return AdaptiveScorer(self.ruleset, self.cache, seed, channel)

    def with_context(self, profile: Mapping[str, Any], segments: Collection[str]) -> Scorer:
        """The session for this decision's context (its bins), on the same snapshot."""
        if self._context is None:
            return self
        if self._in_context is None:  # top-k asks once per pass; the context is the same
            features = features_of(self._context, profile, segments)
            self._in_context = AdaptiveScorer(
                self.ruleset, self.cache, self.seed, self.channel, self.snapshot, features
            )
        return self._in_context

    def total(self, candidate: Candidate) -> float:
        action = candidate.action
        propensity = self._propensity(action, self.channel)[0]
        return propensity * candidate.weight * action.value * self._lever[action.id]

    def score(self, candidate: Candidate) -> Scored:
        action, weight = candidate.action, candidate.weight
        propensity, learned = self._propensity(action, self.channel)
        lever = self._lever[action.id]
        total = propensity * weight * action.value * lever
        return Scored(candidate, total, propensity, weight, action.value, lever, learned)

    def upper_bound(self, action: Action) -> float:
        learning = self._learning.get(action.id)
        if learning is None:
            propensity = action.propensity
        elif learning.explore or self._context is not None:
            # A Thompson draw may reach any value below 1; a context's posterior, known
            # only once the decision's bins are, may be as high as its evidence says.
            propensity = 1.0
        else:
            channels = (*action.channels, "")  # "": over all channels
            means = [self._posterior(action, c, learning)[2] for c in channels]
            propensity = max([action.propensity, *means])
        return propensity * 1.0 * action.value * self._lever[action.id]

    def _propensity(self, action: Action, channel: str) -> tuple[float, Learned | None]:
        drawn = self._drawn.get(action.id)
        if drawn is None:
            drawn = self._drawn[action.id] = self._draw(action, channel)
        return drawn

    def _draw(self, action: Action, channel: str) -> tuple[float, Learned | None]:
        learning = self._learning.get(action.id)
        if learning is None:
            return action.propensity, None
        alpha, beta, mean, evidence = self._posterior(action, channel, learning)
        rng: random.Random | None = None
        sampled = False
        if learning.explore:
            rng = HashStream(_seed(self.seed, action.id))
            mature = evidence.positives >= learning.maturity_positives
            sampled = mature or rng.random() < learning.maturity_share
        if sampled and rng is not None:
            propensity = rng.betavariate(alpha, beta)
        elif learning.explore:
            propensity = action.propensity  # immature and not this decision's turn
        else:
            propensity = mean
        learned = Learned(
            action.propensity,
            learning.prior_strength,
            evidence.positives,
            evidence.failures,
            mean,
            sampled,
        )
        return propensity, learned

    def drawn(self, action: Action) -> float:
        """The propensity this decision uses for `action` (its own draw, by its seed)."""
        return self._propensity(action, self.channel)[0]

    def distribution(self, action: Action) -> Propensity:
        """How this decision's propensity of `action` is chosen: what off-policy evaluation
        draws from to know how likely each ranking was."""
        learning = self._learning.get(action.id)
        if learning is None:
            return Propensity(action.propensity)
        alpha, beta, mean, evidence = self._posterior(action, self.channel, learning)
        if not learning.explore:
            return Propensity(mean)
        mature = evidence.positives >= learning.maturity_positives
        share = 1.0 if mature else learning.maturity_share
        return Propensity(action.propensity, alpha, beta, share)

    def _posterior(
        self, action: Action, channel: str, learning: Learning
    ) -> tuple[float, float, float, Evidence]:
        evidence = self._evidence.get((action.id, channel), NO_EVIDENCE)
        logged = self.snapshot.posteriors.get(action.id)
        if logged is not None:  # a replay: the posterior the decision's context gave
            return logged[0], logged[1], logged[0] / (logged[0] + logged[1]), evidence
        strength = learning.prior_strength
        alpha = strength * action.propensity + evidence.positives
        # A prior of 1 with no failures would make beta 0, which Beta(alpha, beta) refuses.
        beta = max(strength * (1.0 - action.propensity) + evidence.failures, 1e-9)
        if self.features and self._context is not None:
            posterior = self._contextual(action.id, channel, alpha / (alpha + beta))
            return posterior.alpha, posterior.beta, posterior.mean, evidence
        return alpha, beta, alpha / (alpha + beta), evidence

    def _contextual(self, action_id: str, channel: str, mu: float) -> ContextPosterior:
        """The action's posterior in this decision's context (context.py)."""
        found = self._posteriors.get(action_id)
        if found is None:
            context = self._context
            assert context is not None
            model = segment_posterior if context.segments else naive_bayes_posterior
            found = model(
                self.snapshot.context, (action_id, channel), self.features, mu, context.strength
            )
            self._posteriors[action_id] = found
        return found


@dataclass(frozen=True, slots=True)
class Propensity:
    """A propensity as the scorer chooses it: `fixed`, or with probability `share` a draw
    from Beta(alpha, beta) (and `fixed`, the prior, otherwise)."""

    fixed: float
    alpha: float = 0.0
    beta: float = 0.0
    share: float = 0.0  # 0: always `fixed`

    def draw(self, rng: random.Random) -> float:
        if self.share and (self.share >= 1.0 or rng.random() < self.share):
            return rng.betavariate(self.alpha, self.beta)
        return self.fixed

    @property
    def posterior_mean(self) -> float:
        """The posterior's mean when drawn from, else the fixed propensity."""
        return self.alpha / (self.alpha + self.beta) if self.share else self.fixed


class HashStream(random.Random):
    """random.Random's distributions (betavariate here) over splitmix64, seeded by one int.

    Python's own generator spends thousands of instructions seeding its 624-word state;
    a decision seeds one stream per action it samples, and needs a few draws from each.
    random.Random documents subclassing with random() and seed() overridden for this.
    """

    _MASK = (1 << 64) - 1

    def __init__(self, seed: int) -> None:
        self._state = seed & self._MASK
        self.gauss_next = None  # what random.Random.seed would reset

    def seed(self, a: object = None, version: int = 2) -> None:
        self._state = hash(a) & self._MASK

    def random(self) -> float:
        self._state = (self._state + 0x9E3779B97F4A7C15) & self._MASK
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self._MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self._MASK
        z ^= z >> 31
        return (z >> 11) * (1.0 / (1 << 53))  # 53 random bits in [0, 1)

    def getstate(self) -> tuple[int]:  # one int is the state
        return (self._state,)

    def setstate(self, state: tuple[int]) -> None:  # type: ignore[override]
        self._state = state[0]


def _seed(decision_seed: str, action_id: str) -> int:
    """A generator seed from (decision, action): stable across processes."""
    digest = hashlib.blake2b(f"{decision_seed}|{action_id}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big")
