"""A loaded rule set: immutable, resolved, versioned by content.

Everything a decision needs is computed here once per load (targets of suppressions as
sets of action ids, rules per action, strata of segments), so the hot path only looks
things up. Engines compile from this (see nba.engine); nothing here knows durable_rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nba.errors import Location
from nba.ruleset.model import (
    ArbitrationSpec,
    AttributeSpec,
    ChannelSpec,
    Kind,
    OfferSpec,
    Purpose,
    RuleSetMeta,
    TreatmentSpec,
)
from nba.ruleset.resolve import AllOf, Expr, Term

ENGAGEMENT_STAGES: tuple[Kind, ...] = ("eligible", "applicable", "suitable")
DEFAULT_CLOCK_SKEW_SECONDS = 300  # `policies: clock_skew:` when a rule set does not say


@dataclass(frozen=True, slots=True)
class Action:
    id: str
    name: str
    description: str
    purpose: Purpose
    group: str
    value: float
    propensity: float
    one_time: bool
    offer: OfferSpec | None
    treatments: Mapping[str, TreatmentSpec]
    channels: tuple[str, ...]  # channels with a treatment, in the rule set's channel order
    location: Location


@dataclass(frozen=True, slots=True)
class Target:
    """What a suppression or weight applies to, as the author wrote it."""

    actions: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    purposes: frozenset[str] = frozenset()
    all: bool = False


@dataclass(frozen=True, slots=True, eq=False)  # identity: hashing the condition tree is slow
class Rule:
    """One condition the engine evaluates, and what happens when it holds."""

    index: int  # position in RuleSet.rules; engines report fired rules by index
    id: str
    kind: Kind
    expr: Expr
    source: str  # the condition as written
    location: Location
    stratum: int  # segments first, in dependency order; everything else last
    reason: str = ""  # why it excludes (engagement: when it fails; suppress: when it holds)
    because: str = ""  # the author's sentence for why it holds (`because:`)
    words: str = ""  # the condition in plain words (nba.ruleset.wording), always set on load
    action: str | None = None  # engagement rules: the action they gate
    segment: str | None = None  # segment rules: the segment they define
    targets: frozenset[str] = frozenset()  # suppress / weight: action ids affected
    target: Target | None = None  # the same, as written: lets decisions look up, not expand
    factor: float = 1.0  # weight rules

    @property
    def why(self) -> str:
        """Why it holds, for people: the author's `because:`, else the condition in words."""
        return self.because or self.words or self.source


@dataclass(frozen=True, slots=True)
class Lever:
    id: str
    targets: frozenset[str]
    factor: float
    description: str
    location: Location


@dataclass(frozen=True, slots=True)
class Fallback:
    action: str
    channel: str | None
    placement: str | None
    location: Location


@dataclass(frozen=True, slots=True)
class Cap:
    id: str
    max: int
    within_seconds: int
    outcomes: frozenset[int]  # nba.v1 Outcome numbers
    channel: str | None
    purpose: str | None
    groups: frozenset[str]
    each: str  # customer | action | group
    reason: str
    location: Location
    within_at: Location | None = None  # where `within:` is written, for the window checks

    def applies(self, action: Action, channel: str) -> bool:
        """Does recommending `action` on `channel` add to what this cap counts?"""
        return (
            (self.channel is None or self.channel == channel)
            and (self.purpose is None or self.purpose == action.purpose)
            and (not self.groups or action.group in self.groups)
        )


@dataclass(frozen=True, slots=True)
class Cooldown:
    id: str
    outcome: int
    count: int
    within_seconds: int
    pause_seconds: int
    each: str  # action | group
    purpose: str | None
    reason: str
    location: Location
    channels: tuple[str, ...] = ()  # counted and paused only on these; () is every channel
    within_at: Location | None = None  # where `within:` and `pause:` are written
    pause_at: Location | None = None


@dataclass(frozen=True, slots=True)
class QuietHours:
    id: str
    channels: frozenset[str]
    start_minute: int  # minutes after local midnight
    end_minute: int
    location: Location

    def covers(self, minute_of_day: int) -> bool:
        if self.start_minute <= self.end_minute:
            return self.start_minute <= minute_of_day < self.end_minute
        return minute_of_day >= self.start_minute or minute_of_day < self.end_minute  # overnight


@dataclass(frozen=True, slots=True)
class Learning:
    """How one action learns its propensity from outcomes (`learning:` in the rule files).

    Per (action, channel) a Beta posterior: the prior is the action's `propensity` worth
    `prior_strength` observations; each positive outcome is a success, each negative one
    a failure, and so is each impression answered by neither; evidence halves every
    `half_life_seconds` (nba/scoring/evidence.py).
    """

    positives: frozenset[int]  # outcome numbers that count as a success (accept, click)
    negatives: frozenset[int]  # outcome numbers that count as a failure (reject, dismiss)
    prior_strength: float
    half_life_seconds: int
    explore: bool  # Thompson sampling; False: the posterior mean
    maturity_positives: int  # fewer positives than this: explored on maturity_share only
    maturity_share: float


@dataclass(frozen=True, slots=True)
class Predictor:
    """One predictor of the contextual model, and how a customer falls into its bins.

    `feature` names it in the store's counters, with a digest of its definition: changing
    its bins starts its evidence afresh rather than mixing bins that mean other things.
    Bin "0" is "missing" (an attribute not sent); the rest are numbered from 1.
    """

    feature: str
    attribute: str | None  # a profile attribute, or
    segment: str | None  # a segment (bins "1" out, "2" in)
    cuts: tuple[float, ...] = ()  # a number attribute's cut points
    values: tuple[str, ...] = ()  # an enum attribute's values, one bin each
    bin_labels: tuple[str, ...] = ()  # what each bin means, for `nba models`


@dataclass(frozen=True, slots=True)
class LearningContext:
    """`learning.context`: per-segment posteriors, or naive Bayes on predictors."""

    segments: tuple[str, ...] = ()  # per-segment model: the first listed the customer is in
    segment_feature: str = ""  # its counters' name, with a digest of the list
    predictors: tuple[Predictor, ...] = ()
    strength: float = 20.0  # pseudo-observations pulling a context towards the action

    @property
    def model(self) -> str:
        return "segment" if self.segments else "naive_bayes"


@dataclass(frozen=True, slots=True)
class Budget:
    """A volume constraint over all customers (`budgets:` in the rule files).

    At most `limit` recommendations of the actions it covers (on `channel`, or any channel)
    per calendar `window` in the rule set's time zone ("day", "week", "month") or in
    "total"; `paced`: spread evenly over the window, so a daily budget is not spent by 9 am.
    Counted atomically in the interaction store, shared by every worker and replica.
    """

    id: str
    limit: int
    window: str  # "day" | "week" | "month" | "total"
    actions: frozenset[str]  # resolved from the author's actions and groups
    channel: str | None
    paced: bool
    location: Location

    def covers(self, action_id: str, channel: str) -> bool:
        return action_id in self.actions and (self.channel is None or self.channel == channel)


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm of an experiment: its share of the experiment's customers, and what it
    changes for them (nba/experiments/variants.py applies it to the rule set)."""

    id: str
    share: float  # of the experiment's customers; an experiment's arms sum to 1
    location: Location
    levers: Mapping[str, float] = field(default_factory=dict)  # lever id -> its factor here
    weights: Mapping[str, float] = field(default_factory=dict)  # weight rule id -> factor
    scoring: str | None = None  # "static" | "adaptive" | "exploit" (no exploration); None: as is
    disable: frozenset[str] = frozenset()  # rule ids this arm does not evaluate
    enable: frozenset[str] = frozenset()  # dormant rules (`enabled: false`) it evaluates
    marketing: bool = True  # False: no marketing at all (the universal control's "none")

    @property
    def changes(self) -> bool:
        """Does this arm decide differently from the rule set as written?"""
        return (
            bool(self.levers or self.weights or self.scoring or self.disable or self.enable)
            or not self.marketing
        )


@dataclass(frozen=True, slots=True)
class Experiment:
    """A test declared in the rule files (`experiments:`), assigned by a documented hash of
    (salt, experiment id, customer id) into buckets (nba/experiments). The universal control
    group is the experiment UNIVERSAL_CONTROL, with arms "control" and "treated".
    """

    id: str
    salt: str  # fixed: membership never reshuffles unless the author changes it
    layer: str  # experiments of one layer are mutually exclusive
    arms: tuple[Arm, ...]
    control: str  # the arm every other arm is compared with (the champion)
    location: Location
    traffic: float = 1.0  # its share of the layer's customers; a layer's experiments sum <= 1


UNIVERSAL_CONTROL = "universal_control"


@dataclass(frozen=True, slots=True)
class Policies:
    stored_consent: bool = False
    caps: tuple[Cap, ...] = ()
    cooldowns: tuple[Cooldown, ...] = ()
    complaint_pause_seconds: int | None = None
    complaint_pause_purposes: frozenset[str] = frozenset()
    complaint_pause_location: Location | None = None
    complaint_pause_at: Location | None = None  # where its `pause:` value is written
    quiet_hours: tuple[QuietHours, ...] = ()
    clock_skew_seconds: int = DEFAULT_CLOCK_SKEW_SECONDS  # ahead of as_of, still "now"

    def horizon_seconds(self) -> int:
        """The longest look back any policy needs."""
        spans = [c.within_seconds for c in self.caps]
        spans += [c.within_seconds + c.pause_seconds for c in self.cooldowns]
        spans += [self.complaint_pause_seconds or 0]
        return max(spans, default=0)


@dataclass(frozen=True, slots=True)
class Segment:
    id: str
    description: str
    location: Location


@dataclass(frozen=True)
class RuleSet:
    version: str
    meta: RuleSetMeta
    stages: tuple[str, ...]
    channels: Mapping[str, ChannelSpec]  # in preference order
    attributes: Mapping[str, AttributeSpec]
    segments: Mapping[str, Segment]
    actions: Mapping[str, Action]
    rules: tuple[Rule, ...]
    levers: tuple[Lever, ...]
    arbitration: ArbitrationSpec
    fallbacks: tuple[Fallback, ...]
    files: tuple[str, ...]
    policies: Policies = Policies()
    learning: Mapping[str, Learning] = field(default_factory=dict)  # action id -> how; {}: static
    learning_context: LearningContext | None = None  # None: per action and channel
    budgets: tuple[Budget, ...] = ()
    experiments: tuple[Experiment, ...] = ()
    # Rules written `enabled: false`: checked on load, evaluated only in an arm enabling them.
    dormant_rules: tuple[Rule, ...] = ()
    attribute_locations: Mapping[str, Location] = field(default_factory=dict)
    channel_locations: Mapping[str, Location] = field(default_factory=dict)  # consent's file:line
    strata: tuple[tuple[int, ...], ...] = field(init=False)
    fast_strata: tuple[tuple[int, ...], ...] = field(init=False)
    all_rules: tuple[Rule, ...] = field(init=False)  # rules, then one "engaged" rule per action
    engaged: Mapping[str, Rule] = field(init=False)
    unconditional: frozenset[str] = field(init=False)  # actions without engagement rules
    engagement: Mapping[str, tuple[Rule, ...]] = field(init=False)
    terms: Mapping[str, Term] = field(init=False)
    lever_factor: Mapping[str, float] = field(init=False)
    action_group: Mapping[str, str] = field(init=False)

    def __post_init__(self) -> None:
        depth = max((r.stratum for r in self.rules), default=0)
        strata = tuple(
            tuple(r.index for r in self.rules if r.stratum == level) for level in range(depth + 1)
        )
        engagement: dict[str, list[Rule]] = {a: [] for a in self.actions}
        for rule in self.rules:
            if rule.action is not None:
                engagement[rule.action].append(rule)
        engaged = self._engaged_rules(engagement, depth)
        fast_strata = (
            (
                *strata[:-1],
                (
                    *(i for i in strata[-1] if self.rules[i].action is None),
                    *(r.index for r in engaged.values()),
                ),
            )
            if strata
            else ()
        )
        terms: dict[str, Term] = {}
        for rule in self.rules:
            for term in _terms(rule.expr):
                terms.setdefault(term.key, term)
        levers = dict.fromkeys(self.actions, 1.0)
        for lever in self.levers:
            for action in lever.targets:
                levers[action] *= lever.factor
        object.__setattr__(self, "strata", strata)
        object.__setattr__(self, "fast_strata", fast_strata)
        object.__setattr__(self, "all_rules", (*self.rules, *engaged.values()))
        object.__setattr__(self, "engaged", engaged)
        object.__setattr__(
            self, "unconditional", frozenset(a for a, r in engagement.items() if not r)
        )
        object.__setattr__(self, "engagement", {a: tuple(r) for a, r in engagement.items()})
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "lever_factor", levers)
        object.__setattr__(self, "action_group", {a.id: a.group for a in self.actions.values()})

    def _engaged_rules(self, engagement: dict[str, list[Rule]], depth: int) -> dict[str, Rule]:
        """Each action's engagement rules as one conjunction: one firing per qualifying action."""
        engaged: dict[str, Rule] = {}
        for action_id, rules in engagement.items():
            if not rules:
                continue
            action = self.actions[action_id]
            engaged[action_id] = Rule(
                index=len(self.rules) + len(engaged),
                id=f"{action_id}.engaged",
                kind="engaged",
                expr=AllOf(tuple(r.expr for r in rules)),
                source=" and ".join(f"({r.source})" for r in rules),
                location=action.location,
                stratum=depth,
                action=action_id,
            )
        return engaged

    @property
    def rule_count(self) -> int:
        return len(self.rules)

    def summary(self) -> str:
        return (
            f"{len(self.actions)} actions, {len(self.rules)} rules, "
            f"{len(self.segments)} segments, {len(self.channels)} channels, "
            f"{len(self.files)} files"
        )


def _terms(expr: Expr) -> list[Term]:
    from nba.ruleset.resolve import terms_of

    return terms_of(expr)
