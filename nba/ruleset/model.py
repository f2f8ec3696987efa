"""The shape of a rule file, as pydantic models.

These models check structure and literal types only (a key is known, a factor is a
positive number, a purpose is "marketing" or "service"). Whether names refer to things
that exist, and whether conditions make sense, is checked later against the whole set.
Every model forbids unknown keys, so a misspelt key is an error with a suggestion.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

ID_PATTERN = r"^[a-z][a-z0-9_]*$"
Id = Annotated[StrictStr, Field(pattern=ID_PATTERN, max_length=64)]
"""Ids become durable_rules property names and log fields: lowercase snake case."""

_ConditionText = Annotated[StrictStr, Field(min_length=1, max_length=4000)]
Duration = Annotated[str, Field(pattern=r"^[1-9][0-9]*[dhm]$")]


class Strict(BaseModel):
    """Unknown keys are errors. Scalars use Strict* types so "5" is not silently 5."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@functools.cache
def known_time_zone(name: str) -> bool:
    """Is `name` an IANA time zone this machine knows (quiet hours need its rules)?"""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


class RuleSetMeta(Strict):
    name: str = "rules"
    description: str = ""
    time_zone: str = "UTC"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not known_time_zone(value):
            raise ValueError(f"'{value}' is not an IANA time zone; expected e.g. Europe/London")
        return value


class AttributeType(StrEnum):
    INT = "int"
    NUMBER = "number"
    BOOL = "bool"
    STRING = "string"
    ENUM = "enum"
    SET = "set"


class AttributeSpec(Strict):
    type: AttributeType
    values: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = ()
    min: StrictInt | StrictFloat | None = None
    max: StrictInt | StrictFloat | None = None
    required: StrictBool = False
    description: str = ""

    @model_validator(mode="after")
    def _values_match_type(self) -> AttributeSpec:
        needs_values = self.type in (AttributeType.ENUM, AttributeType.SET)
        if needs_values and not self.values:
            raise ValueError(f"a {self.type} attribute has no values; expected `values: [...]`")
        if not needs_values and self.values:
            raise ValueError(
                f"`values` given for a {self.type} attribute; expected them only on enum and set"
            )
        if len(set(self.values)) != len(self.values):
            raise ValueError("`values` lists a value twice; expected each value once")
        numeric = self.type in (AttributeType.INT, AttributeType.NUMBER)
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError(
                f"`min`/`max` given for a {self.type} attribute; expected them only on numbers"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(
                f"min ({self.min}) is greater than max ({self.max}); expected min <= max"
            )
        return self


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    BOTH = "both"


class ConsentDefault(StrEnum):
    OPT_IN = "opt_in"  # needs an explicit consent[channel] == true
    OPT_OUT = "opt_out"  # allowed unless consent[channel] == false


class ChannelSpec(Strict):
    id: Id
    direction: Direction
    marketing_consent: ConsentDefault = ConsentDefault.OPT_OUT
    service_consent: ConsentDefault | None = None  # None: service ignores opt-outs
    description: str = ""

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == "outbound":
            raise ValueError(
                "'outbound' is reserved for outbound requests; expected another channel id"
            )
        return value


def _condition_text(value: object) -> object:
    return ("true" if value else "false") if isinstance(value, bool) else value


Condition = Annotated[_ConditionText, BeforeValidator(_condition_text)]


# A condition's words stop being plain once they carry its syntax.
_SYNTAX = re.compile(r"==|!=|>=|<=|\b(profile|segment|touchpoint)\.[a-z_]|\baction=")
MAX_BECAUSE = 200


def _one_sentence(value: str) -> str:
    """`because:` is one line a call-center agent reads aloud: words, not the condition."""
    text = value.strip()
    if not text:
        raise ValueError("`because` is empty; expected a sentence saying why the rule holds")
    if "\n" in text:
        raise ValueError("`because` spans several lines; expected one sentence on one line")
    if len(text) > MAX_BECAUSE:
        raise ValueError(
            f"`because` is {len(text)} characters; expected one sentence of at most {MAX_BECAUSE}"
        )
    if _SYNTAX.search(text):
        raise ValueError(
            "`because` reads like a condition; expected plain words, e.g."
            " 'has not taken this offer before' (the condition itself is `when:`)"
        )
    return text


Because = Annotated[StrictStr, AfterValidator(_one_sentence)]
"""Why a rule or segment holds, in words; shown in a recommendation's reasons."""


class SegmentSpec(Strict):
    id: Id
    when: Condition
    description: str = ""
    because: Because = ""


class NamedCondition(Strict):
    id: Id
    when: Condition
    reason: str = ""  # why the rule excludes, when it does not hold
    because: Because = ""  # why it holds, when it does


def _engagement_shape(value: object) -> object:
    """One clear error instead of one per union member; YAML `true` is a condition too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | list):
        raise ValueError("expected a condition (text) or a list of {id, when, reason} entries")
    return value


Engagement = Annotated[Condition | list[NamedCondition], BeforeValidator(_engagement_shape)]


class Purpose(StrEnum):
    MARKETING = "marketing"
    SERVICE = "service"


_TEXT = Annotated[str, Field(max_length=4000)]


class TreatmentSpec(BaseModel):
    """Copy for one channel. Known keys map to Treatment fields; others to attributes."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)
    id: StrictStr = ""
    headline: _TEXT = ""
    body: _TEXT = ""
    call_to_action: _TEXT = ""
    script: _TEXT = ""
    subject: _TEXT = ""
    url: _TEXT = ""

    @model_validator(mode="after")
    def _extras_are_strings(self) -> TreatmentSpec:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str):
                raise ValueError(f"treatment field '{key}' is not text; expected a string")
        return self


class OfferSpec(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)
    code: str
    name: str = ""
    terms: str = ""

    @model_validator(mode="after")
    def _extras_are_strings(self) -> OfferSpec:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str):
                raise ValueError(f"offer field '{key}' is not text; expected a string")
        return self


Positive = Annotated[StrictInt | StrictFloat, Field(gt=0, allow_inf_nan=False)]


LearnedOutcome = Literal["click", "accept", "dismiss", "reject"]  # impressions: showings
Share = Annotated[StrictInt | StrictFloat, Field(ge=0, le=1)]


class MaturitySpec(Strict):
    """Until an action has `positives` positive outcomes, explore it on `share` of decisions."""

    positives: Annotated[StrictInt, Field(ge=0)] = 5
    share: Share = 0.2


class LearningOverride(Strict):
    """Learning settings an action (or a group, under `learning.groups`) changes."""

    positives: tuple[LearnedOutcome, ...] | None = None  # a success (default: accept, click)
    negatives: tuple[LearnedOutcome, ...] | None = None  # a failure (default: reject, dismiss)
    prior_strength: Annotated[StrictInt | StrictFloat, Field(gt=0, le=100000)] | None = None
    exploration: Literal["thompson", "off"] | None = None
    enabled: StrictBool | None = None

    @model_validator(mode="after")
    def _positive_or_negative(self) -> LearningOverride:
        both = set(self.positives or ()) & set(self.negatives or ())
        if both:
            raise ValueError(
                f"{', '.join(sorted(both))} is both a positive and a negative; expected each"
                " outcome in one list"
            )
        return self


class PredictorSpec(Strict):
    """One predictor of the contextual model: a profile attribute (binned) or a segment."""

    attribute: Id | None = None
    segment: Id | None = None
    # Cut points of a number attribute, ascending: [25, 40] makes bins <25, 25-40, >=40.
    bins: tuple[StrictInt | StrictFloat, ...] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PredictorSpec:
        if (self.attribute is None) == (self.segment is None):
            raise ValueError("expected exactly one of `attribute:` or `segment:`")
        if self.bins is not None:
            if self.segment is not None:
                raise ValueError("a segment is in or out: `bins:` is for number attributes")
            if not self.bins or list(self.bins) != sorted(set(self.bins)):
                raise ValueError("expected `bins:` as ascending cut points, e.g. [25, 40, 65]")
        return self


class ContextSpec(Strict):
    """`learning.context`: propensities per customer context, not one per action and channel.

    `segments`: a Beta posterior per segment (the first listed that the customer is in),
    shrunk towards the action's. `predictors`: naive Bayes over binned predictors,
    calibrated (nba/scoring/context.py). One or the other.
    """

    segments: tuple[Id, ...] = ()
    predictors: tuple[PredictorSpec, ...] = ()
    strength: Annotated[StrictInt | StrictFloat, Field(gt=0, le=100000)] = 20

    @model_validator(mode="after")
    def _one_model(self) -> ContextSpec:
        if bool(self.segments) == bool(self.predictors):
            raise ValueError(
                "expected one of `segments:` (a posterior per segment) or `predictors:`"
                " (naive Bayes); a segment can be a predictor: `- segment: affluent`"
            )
        return self


class LearningSpec(LearningOverride):
    """`learning:` in ruleset.yaml: adaptive propensity, on for every action unless off."""

    half_life: Duration = "30d"
    maturity: MaturitySpec = MaturitySpec()
    groups: dict[Id, LearningOverride] = {}
    context: ContextSpec | None = None


class ActionSpec(Strict):
    id: Id
    name: str = ""
    description: str = ""
    purpose: Purpose
    group: Id
    value: Positive = 1.0
    propensity: Annotated[StrictInt | StrictFloat, Field(gt=0, le=1)] = 0.05
    one_time: StrictBool = False
    offer: OfferSpec | None = None
    treatments: dict[Id, TreatmentSpec] = Field(min_length=1)
    eligible: Engagement | None = None
    applicable: Engagement | None = None
    suitable: Engagement | None = None
    learning: LearningOverride | None = None


class Targets(Strict):
    actions: tuple[Id, ...] = ()
    groups: tuple[Id, ...] = ()
    purposes: tuple[Purpose, ...] = ()
    all: StrictBool = False

    @model_validator(mode="after")
    def _names_something(self) -> Targets:
        if not (self.actions or self.groups or self.purposes or self.all):
            raise ValueError("no targets; expected actions, groups, purposes or all: true")
        return self


class WeightTargets(Targets):
    factor: Positive


class RuleSpec(Strict):
    id: Id
    when: Condition
    suppress: Targets | None = None
    weight: WeightTargets | None = None
    reason: str = ""
    because: Because = ""  # a weight's why; a suppression's sentence is `reason`
    description: str = ""
    enabled: StrictBool = True  # False: a challenger's rule, evaluated only in arms enabling it

    @model_validator(mode="after")
    def _one_effect(self) -> RuleSpec:
        if (self.suppress is None) == (self.weight is None):
            raise ValueError(
                "a rule needs exactly one effect; expected `suppress: {...}` or `weight: {...}`"
            )
        return self


class LeverSpec(WeightTargets):
    id: Id
    description: str = ""


class BudgetSpec(Targets):
    """At most `limit` recommendations of the targeted actions per calendar `per` window
    (in the rule set's time zone), over all customers; `paced` spreads them over the window."""

    id: Id
    limit: Annotated[StrictInt, Field(ge=0)]
    per: Literal["day", "week", "month", "total"]
    channel: Id | None = None  # only recommendations on this channel count; None: any
    paced: StrictBool = False
    description: str = ""


class ArbitrationSpec(Strict):
    max_results: Annotated[StrictInt, Field(ge=1, le=100)] = 3
    max_per_group: Annotated[StrictInt, Field(ge=0)] = 0


class FallbackSpec(Strict):
    action: Id
    channel: Id | None = None
    placement: str | None = None

    @model_validator(mode="after")
    def _placement_needs_channel(self) -> FallbackSpec:
        if self.placement is not None and self.channel is None:
            raise ValueError("a fallback for a placement has no channel; expected `channel: ...`")
        return self


class ArmRulesSpec(Strict):
    """Whole rules an arm changes: `disable` rule ids, `enable` dormant (`enabled: false`) ones."""

    disable: tuple[Id, ...] = ()
    enable: tuple[Id, ...] = ()


class ArmSpec(Strict):
    """One arm of an experiment and what it overrides for its customers."""

    id: Id
    share: Annotated[StrictInt | StrictFloat, Field(gt=0, le=1)]
    levers: dict[Id, Positive] = {}  # lever id -> factor in this arm
    weights: dict[Id, Positive] = {}  # weight rule id -> factor in this arm
    scoring: Literal["static", "adaptive", "exploit"] | None = None
    rules: ArmRulesSpec = ArmRulesSpec()


class ExperimentSpec(Strict):
    """A champion/challenger test. Assignment: nba/experiments/assign.py (documented hash)."""

    id: Id
    salt: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    layer: Id | None = None  # experiments of one layer are mutually exclusive; default: own
    traffic: Annotated[StrictInt | StrictFloat, Field(gt=0, le=1)] = 1.0  # share of the layer
    control: Id  # the arm the others are compared with
    arms: list[ArmSpec] = Field(min_length=2)


class UniversalControlSpec(Strict):
    """A share of customers held out of marketing (`none`) or of learning (`static`)."""

    share: Annotated[StrictInt | StrictFloat, Field(gt=0, lt=1)]
    salt: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    treatment: Literal["none", "static"] = "none"


Outcome = Literal["impression", "click", "accept", "dismiss", "reject", "complaint"]
ClockTime = Annotated[StrictStr, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class CapSpec(Strict):
    """At most `max` interactions with `outcomes` within the window, counted per `each`."""

    id: Id
    max: Annotated[StrictInt, Field(ge=0)]
    within: Duration
    outcomes: tuple[Outcome, ...] = ("impression",)
    channel: Id | None = None
    purpose: Purpose | None = None
    groups: tuple[Id, ...] = ()
    each: Literal["customer", "action", "group"] = "customer"
    reason: str = ""


class CooldownSpec(Strict):
    """After `count` interactions with `outcome` within the window, pause for `pause`.

    With `channel` (or `channels`) only interactions on those channels count, and the
    action rests only there: it stays free on every other channel.
    """

    id: Id
    outcome: Outcome
    count: Annotated[StrictInt, Field(ge=1)] = 1
    within: Duration
    pause: Duration
    each: Literal["action", "group"] = "action"
    purpose: Purpose | None = None
    channel: Id | None = None
    channels: tuple[Id, ...] = ()
    reason: str = ""

    @model_validator(mode="after")
    def _one_way_to_name_channels(self) -> CooldownSpec:
        if self.channel is not None and self.channels:
            raise ValueError(
                "a cooldown names `channel` or `channels`, not both;"
                " expected `channel: web` or `channels: [web, email]`"
            )
        return self


class ComplaintPauseSpec(Strict):
    pause: Duration
    purposes: tuple[Purpose, ...] = (Purpose.MARKETING,)


class QuietHoursSpec(Strict):
    """No outbound contact on these channels between `start` and `end`, customer's time."""

    id: Id
    channels: tuple[Id, ...] = Field(min_length=1)
    start: ClockTime
    end: ClockTime


class ConsentPolicySpec(Strict):
    stored: StrictBool = False  # also read consent recorded through UpdateConsent


class PoliciesSpec(Strict):
    consent: ConsentPolicySpec = ConsentPolicySpec()
    caps: list[CapSpec] = []
    cooldowns: list[CooldownSpec] = []
    complaint_pause: ComplaintPauseSpec | None = None
    quiet_hours: list[QuietHoursSpec] = []
    # How far ahead of the server's clock an interaction may be stamped and still count as
    # happening now (clocks across contact centre and web servers differ by seconds).
    clock_skew: StrictStr | None = None  # None: the default, 5m

    @field_validator("clock_skew")
    @classmethod
    def _skew_is_a_duration(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(0|[1-9][0-9]*)[dhm]", value):
            raise ValueError(
                f"'{value}' is not a duration; expected minutes, hours or days"
                " (e.g. 5m, 1h), or 0m for none"
            )
        return value


def expand_attribute(value: object) -> object:
    """`age: int` is shorthand for `age: {type: int}`."""
    return {"type": value} if isinstance(value, str) else value


# Each top-level section of a rule file and the model of one of its items. Items are
# validated one by one, so a broken action does not hide the errors of the others.
LIST_SECTIONS: dict[str, type[BaseModel]] = {
    "channels": ChannelSpec,
    "segments": SegmentSpec,
    "actions": ActionSpec,
    "rules": RuleSpec,
    "levers": LeverSpec,
    "fallbacks": FallbackSpec,
    "experiments": ExperimentSpec,
    "budgets": BudgetSpec,
}
SINGLE_SECTIONS: dict[str, type[BaseModel]] = {
    "ruleset": RuleSetMeta,
    "arbitration": ArbitrationSpec,
    "policies": PoliciesSpec,
    "learning": LearningSpec,
    "universal_control": UniversalControlSpec,
}
OTHER_SECTIONS = ("lifecycle_stages", "profile")
SECTIONS: tuple[str, ...] = (*SINGLE_SECTIONS, *OTHER_SECTIONS, *LIST_SECTIONS)
SINGLETON_SECTIONS = (
    "ruleset",
    "lifecycle_stages",
    "arbitration",
    "policies",
    "learning",
    "universal_control",
)


# "engaged" is not written by authors: it is an action's engagement rules as one rule,
# which the fast (non-explaining) path evaluates instead of each rule separately.
Kind = Literal["segment", "eligible", "applicable", "suitable", "suppress", "weight", "engaged"]
