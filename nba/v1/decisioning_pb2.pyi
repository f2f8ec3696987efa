import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    IMPRESSION: _ClassVar[Outcome]
    CLICK: _ClassVar[Outcome]
    ACCEPT: _ClassVar[Outcome]
    DISMISS: _ClassVar[Outcome]
    REJECT: _ClassVar[Outcome]
    COMPLAINT: _ClassVar[Outcome]
OUTCOME_UNSPECIFIED: Outcome
IMPRESSION: Outcome
CLICK: Outcome
ACCEPT: Outcome
DISMISS: Outcome
REJECT: Outcome
COMPLAINT: Outcome

class Interaction(_message.Message):
    __slots__ = ("action_id", "channel", "outcome", "at")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    channel: str
    outcome: Outcome
    at: _timestamp_pb2.Timestamp
    def __init__(self, action_id: _Optional[str] = ..., channel: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Touchpoint(_message.Message):
    __slots__ = ("channel", "placement", "intent")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    channel: str
    placement: str
    intent: str
    def __init__(self, channel: _Optional[str] = ..., placement: _Optional[str] = ..., intent: _Optional[str] = ...) -> None: ...

class DecideRequest(_message.Message):
    __slots__ = ("customer_id", "profile", "lifecycle_stage", "interactions", "touchpoint", "consent", "max_results", "explain", "as_of", "preferred_channels", "time_zone")
    class ConsentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_STAGE_FIELD_NUMBER: _ClassVar[int]
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    TOUCHPOINT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    profile: _struct_pb2.Struct
    lifecycle_stage: str
    interactions: _containers.RepeatedCompositeFieldContainer[Interaction]
    touchpoint: Touchpoint
    consent: _containers.ScalarMap[str, bool]
    max_results: int
    explain: bool
    as_of: _timestamp_pb2.Timestamp
    preferred_channels: _containers.RepeatedScalarFieldContainer[str]
    time_zone: str
    def __init__(self, customer_id: _Optional[str] = ..., profile: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., lifecycle_stage: _Optional[str] = ..., interactions: _Optional[_Iterable[_Union[Interaction, _Mapping]]] = ..., touchpoint: _Optional[_Union[Touchpoint, _Mapping]] = ..., consent: _Optional[_Mapping[str, bool]] = ..., max_results: _Optional[int] = ..., explain: _Optional[bool] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., preferred_channels: _Optional[_Iterable[str]] = ..., time_zone: _Optional[str] = ...) -> None: ...

class ScoreComponents(_message.Message):
    __slots__ = ("propensity", "context_weight", "value", "lever", "learned")
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LEVER_FIELD_NUMBER: _ClassVar[int]
    LEARNED_FIELD_NUMBER: _ClassVar[int]
    propensity: float
    context_weight: float
    value: float
    lever: float
    learned: LearnedPropensity
    def __init__(self, propensity: _Optional[float] = ..., context_weight: _Optional[float] = ..., value: _Optional[float] = ..., lever: _Optional[float] = ..., learned: _Optional[_Union[LearnedPropensity, _Mapping]] = ...) -> None: ...

class LearnedPropensity(_message.Message):
    __slots__ = ("prior", "prior_strength", "positives", "negatives", "posterior_mean", "sampled")
    PRIOR_FIELD_NUMBER: _ClassVar[int]
    PRIOR_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    POSITIVES_FIELD_NUMBER: _ClassVar[int]
    NEGATIVES_FIELD_NUMBER: _ClassVar[int]
    POSTERIOR_MEAN_FIELD_NUMBER: _ClassVar[int]
    SAMPLED_FIELD_NUMBER: _ClassVar[int]
    prior: float
    prior_strength: float
    positives: float
    negatives: float
    posterior_mean: float
    sampled: bool
    def __init__(self, prior: _Optional[float] = ..., prior_strength: _Optional[float] = ..., positives: _Optional[float] = ..., negatives: _Optional[float] = ..., posterior_mean: _Optional[float] = ..., sampled: _Optional[bool] = ...) -> None: ...

class Treatment(_message.Message):
    __slots__ = ("id", "channel", "headline", "body", "call_to_action", "script", "subject", "url", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    HEADLINE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CALL_TO_ACTION_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    channel: str
    headline: str
    body: str
    call_to_action: str
    script: str
    subject: str
    url: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., channel: _Optional[str] = ..., headline: _Optional[str] = ..., body: _Optional[str] = ..., call_to_action: _Optional[str] = ..., script: _Optional[str] = ..., subject: _Optional[str] = ..., url: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("code", "name", "terms", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    code: str
    name: str
    terms: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, code: _Optional[str] = ..., name: _Optional[str] = ..., terms: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("rule_id", "file", "line", "kind", "description")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    file: str
    line: int
    kind: str
    description: str
    def __init__(self, rule_id: _Optional[str] = ..., file: _Optional[str] = ..., line: _Optional[int] = ..., kind: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class Recommendation(_message.Message):
    __slots__ = ("rank", "action_id", "channel", "purpose", "score", "components", "treatment", "offer", "reasons", "name", "group", "fallback")
    RANK_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    TREATMENT_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    rank: int
    action_id: str
    channel: str
    purpose: str
    score: float
    components: ScoreComponents
    treatment: Treatment
    offer: Offer
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    name: str
    group: str
    fallback: bool
    def __init__(self, rank: _Optional[int] = ..., action_id: _Optional[str] = ..., channel: _Optional[str] = ..., purpose: _Optional[str] = ..., score: _Optional[float] = ..., components: _Optional[_Union[ScoreComponents, _Mapping]] = ..., treatment: _Optional[_Union[Treatment, _Mapping]] = ..., offer: _Optional[_Union[Offer, _Mapping]] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., name: _Optional[str] = ..., group: _Optional[str] = ..., fallback: _Optional[bool] = ...) -> None: ...

class Exclusion(_message.Message):
    __slots__ = ("action_id", "rule", "reason", "stage", "file", "line", "channel")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    rule: str
    reason: str
    stage: str
    file: str
    line: int
    channel: str
    def __init__(self, action_id: _Optional[str] = ..., rule: _Optional[str] = ..., reason: _Optional[str] = ..., stage: _Optional[str] = ..., file: _Optional[str] = ..., line: _Optional[int] = ..., channel: _Optional[str] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("decision_id", "ruleset_version", "recommendations", "excluded", "segments", "degraded", "arms")
    class ArmsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    ruleset_version: str
    recommendations: _containers.RepeatedCompositeFieldContainer[Recommendation]
    excluded: _containers.RepeatedCompositeFieldContainer[Exclusion]
    segments: _containers.RepeatedScalarFieldContainer[str]
    degraded: bool
    arms: _containers.ScalarMap[str, str]
    def __init__(self, decision_id: _Optional[str] = ..., ruleset_version: _Optional[str] = ..., recommendations: _Optional[_Iterable[_Union[Recommendation, _Mapping]]] = ..., excluded: _Optional[_Iterable[_Union[Exclusion, _Mapping]]] = ..., segments: _Optional[_Iterable[str]] = ..., degraded: _Optional[bool] = ..., arms: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RecordOutcomeRequest(_message.Message):
    __slots__ = ("customer_id", "interaction", "decision_id", "interaction_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    interaction: Interaction
    decision_id: str
    interaction_id: str
    def __init__(self, customer_id: _Optional[str] = ..., interaction: _Optional[_Union[Interaction, _Mapping]] = ..., decision_id: _Optional[str] = ..., interaction_id: _Optional[str] = ...) -> None: ...

class RecordOutcomeResponse(_message.Message):
    __slots__ = ("recorded", "interaction_id")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    interaction_id: str
    def __init__(self, recorded: _Optional[bool] = ..., interaction_id: _Optional[str] = ...) -> None: ...

class UpdateConsentRequest(_message.Message):
    __slots__ = ("customer_id", "consent", "at")
    class ConsentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    consent: _containers.ScalarMap[str, bool]
    at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., consent: _Optional[_Mapping[str, bool]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpdateConsentResponse(_message.Message):
    __slots__ = ("consent",)
    class ConsentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    consent: _containers.ScalarMap[str, bool]
    def __init__(self, consent: _Optional[_Mapping[str, bool]] = ...) -> None: ...

class GetRuleSetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RuleSetStatus(_message.Message):
    __slots__ = ("ruleset_version", "loaded_at", "actions", "rules", "segments", "last_reload_errors", "last_reload_at", "worker")
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_ERRORS_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_AT_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    ruleset_version: str
    loaded_at: _timestamp_pb2.Timestamp
    actions: int
    rules: int
    segments: int
    last_reload_errors: _containers.RepeatedScalarFieldContainer[str]
    last_reload_at: _timestamp_pb2.Timestamp
    worker: str
    def __init__(self, ruleset_version: _Optional[str] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actions: _Optional[int] = ..., rules: _Optional[int] = ..., segments: _Optional[int] = ..., last_reload_errors: _Optional[_Iterable[str]] = ..., last_reload_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., worker: _Optional[str] = ...) -> None: ...
