"""The values passed between pipeline stages, in the order a request meets them.

Every stage reads and returns these and nothing of another stage's internals, so a stage
can be read (and replaced) on its own:

    Interaction       one thing a customer did with an action (request, store, history)
    Outcome           what they did: the proto's enum numbers, as a Python IntEnum
    DecisionRequest   a validated request (stage 1), with its context folded in (stage 2)
    Exclusion         why an action was left out, with the rule or policy and its file:line
    Candidate         an action that passed its rules (stage 4), placed by policies (5)
    Engagement        stage 4's verdicts: the candidates, the excluded, segments, suppressions
    Scored            a candidate with its score and the score's components (stage 6)
    Pick              one recommendation; a fallback when nothing qualified
    Decision          the whole answer (stage 6), which respond (stage 7) turns into a proto

`within_window` is the one definition of "in the last N days" that facts, the reference
evaluator and the policies all use.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: the rule-set model imports nothing of the pipeline
    from nba.errors import Location
    from nba.ruleset.ruleset import Action, Fallback, Rule
    from nba.scoring import Scorer

OUTBOUND = "outbound"  # the touchpoint channel of an outbound run (no inbound channel)


class Outcome(IntEnum):
    """What a customer did with an action; the numbers are `nba.v1.Outcome`'s (a contract)."""

    UNSPECIFIED = 0
    IMPRESSION = 1
    CLICK = 2
    ACCEPT = 3
    DISMISS = 4
    REJECT = 5
    COMPLAINT = 6


OUTCOME_NAMES: Mapping[int, str] = {o.value: o.name for o in Outcome if o} | {
    0: "OUTCOME_UNSPECIFIED"
}
"""Outcome number -> its proto name (IMPRESSION, ...): how rule files and messages name them."""
OUTCOME_NUMBERS: Mapping[str, int] = {name: number for number, name in OUTCOME_NAMES.items()}
RECORDED_OUTCOMES = frozenset(o.value for o in Outcome if o)  # every outcome but UNSPECIFIED


@dataclass(slots=True)  # not frozen: a frozen init costs 4x, and Decide builds dozens per call
class Interaction:
    """One interaction of a customer with an action on a channel.

    ``outcome`` is an `Outcome` number, kept as a plain int: interactions are read from
    protobuf and from stores by the thousand, and an enum per item would cost 3x.
    """

    action_id: str
    channel: str
    outcome: int
    at: float
    interaction_id: str = ""
    decision_id: str = ""


def within_window(at: float, as_of: float, window_seconds: int | None) -> bool:
    """The one definition of "in the last N days": as_of - N <= at <= as_of."""
    return at <= as_of and (window_seconds is None or as_of - at <= window_seconds)


@dataclass(
    slots=True
)  # treated as immutable (stages use dataclasses.replace); not frozen for speed
class DecisionRequest:
    """A request that passed validation. Times are unix seconds (UTC)."""

    customer_id: str
    profile: Mapping[str, Any]
    lifecycle: str
    channel: str  # the touchpoint channel, or OUTBOUND
    placement: str
    intent: str
    interactions: tuple[Interaction, ...]
    consent: Mapping[str, bool]
    max_results: int
    explain: bool
    as_of: float
    preferred_channels: tuple[str, ...]
    time_zone: str
    degraded: bool = False  # the store could not be read: marketing is withheld

    @property
    def outbound(self) -> bool:
        return self.channel == OUTBOUND


@dataclass(slots=True)
class Exclusion:
    """Why an action was left out, in words a call-center agent can read."""

    action_id: str
    rule: str
    reason: str
    stage: str  # eligible applicable suitable suppressed policy channel arbitration
    location: Location | None = None
    channel: str = ""


@dataclass(slots=True)
class Candidate:
    """An action that passed its engagement rules and no suppression."""

    action: Action
    weight: float = 1.0
    weight_rules: list[Rule] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)  # usable, in preference order (policies)
    channel: str = ""  # the one chosen in arbitration


@dataclass(slots=True)
class Engagement:
    """What the fired rules mean per action (stage 4)."""

    candidates: list[Candidate]
    excluded: list[Exclusion]
    segments: list[str]
    suppressed: dict[str, Rule]  # action id -> the suppression that holds for it


@dataclass(frozen=True, slots=True)
class Learned:
    """How a learned propensity came about (nba/scoring/adaptive.py), for the response."""

    prior: float  # the rule file's propensity
    prior_strength: float  # worth this many observations
    positives: float  # decayed evidence
    negatives: float
    posterior_mean: float
    sampled: bool  # True: the propensity is a Thompson draw from the posterior


@dataclass(slots=True)
class Scored:
    """A recommended candidate, its score and the components the score was made of."""

    candidate: Candidate
    score: float
    propensity: float
    context_weight: float
    value: float
    lever: float
    learned: Learned | None = None  # set when the action learns its propensity


@dataclass(slots=True)
class Pick:
    """One recommendation of a decision, before it becomes a proto."""

    rank: int
    action: Action
    channel: str
    scored: Scored | None  # None for a fallback
    fallback: bool = False
    fallback_from: Fallback | None = None


@dataclass(slots=True)
class Decision:
    """What the pipeline decided for one request; respond turns it into a DecideResponse."""

    decision_id: str
    ruleset_version: str
    request: DecisionRequest
    picks: list[Pick]
    excluded: list[Exclusion]
    segments: list[str]
    fired: list[Rule] = field(default_factory=list)
    # The decision's scorer session (nba.scoring): its parameters() are what the scores
    # came from, for the decision log. None: not scored (the out-of-time fallback).
    scorer: Scorer | None = None
    # Experiment id -> the arm this customer is in (nba/experiments); {}: no experiments.
    arms: dict[str, str] = field(default_factory=dict)
    # Actions a suppression held for: what a fallback chosen later must also respect.
    suppressed: Collection[str] = ()
