"""Pipeline stage 1, validate: a DecideRequest proto becomes a checked DecisionRequest.

The profile arrives as a google.protobuf.Struct, typed only as JSON is. Its real schema
is the rule set's, so each loaded rule set gets a pydantic validator generated from its
`profile` section (strict types, enum values, bounds, required attributes). Everything
else in the request is already typed by protobuf and only needs semantic checks (a known
stage, a known channel, a set timestamp). The first problem found is raised as a
RequestError naming the field; the gRPC layer turns it into INVALID_ARGUMENT.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal, NoReturn, NotRequired, Required

from google.protobuf import struct_pb2
from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from nba.errors import RequestError, did_you_mean, pydantic_message
from nba.pipeline.types import (
    OUTBOUND,
    OUTCOME_NAMES,
    RECORDED_OUTCOMES,
    DecisionRequest,
    Interaction,
)
from nba.ruleset.model import AttributeSpec, AttributeType, known_time_zone
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb

MAX_RESULTS_LIMIT = 100
MAX_INTERACTIONS = 1000
_VALID_OUTCOMES = RECORDED_OUTCOMES


class RequestValidator:
    """Validates requests against one rule set; built once per load."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.profile_validator = profile_validator(ruleset.attributes)
        self.stages = frozenset(ruleset.stages)
        self.channels = frozenset(ruleset.channels)

    def validate(self, msg: pb.DecideRequest, now: float | None = None) -> DecisionRequest:
        if not msg.customer_id:
            raise RequestError("customer_id", "is required; expected the customer's id")
        lifecycle = msg.lifecycle_stage
        if lifecycle not in self.stages:
            unknown_name("lifecycle_stage", lifecycle, self.ruleset.stages, "lifecycle stage")
        channel = msg.touchpoint.channel or OUTBOUND
        if channel != OUTBOUND and channel not in self.channels:
            unknown_name("touchpoint.channel", channel, self.ruleset.channels, "channel")
        if not 0 <= msg.max_results <= MAX_RESULTS_LIMIT:
            raise RequestError(
                "max_results", f"is {msg.max_results}; expected 0 (default) to {MAX_RESULTS_LIMIT}"
            )
        consent = dict(msg.consent)
        for key in consent:
            if key not in self.channels:
                unknown_name(f'consent["{key}"]', key, self.ruleset.channels, "channel")
        preferred = tuple(msg.preferred_channels)
        for i, key in enumerate(preferred):
            if key not in self.channels:
                unknown_name(f"preferred_channels[{i}]", key, self.ruleset.channels, "channel")
        as_of = _seconds(msg.as_of) if msg.HasField("as_of") else (now or time.time())
        time_zone = msg.time_zone or self.ruleset.meta.time_zone
        if msg.time_zone and not known_time_zone(msg.time_zone):
            raise RequestError(
                "time_zone",
                f"'{msg.time_zone}' is not an IANA time zone; expected e.g. Europe/London",
            )
        return DecisionRequest(
            customer_id=msg.customer_id,
            profile=self.profile(msg.profile),
            lifecycle=lifecycle,
            channel=channel,
            placement=msg.touchpoint.placement,
            intent=msg.touchpoint.intent,
            interactions=interactions(msg.interactions),
            consent=consent,
            max_results=msg.max_results or self.ruleset.arbitration.max_results,
            explain=msg.explain,
            as_of=as_of,
            preferred_channels=preferred,
            time_zone=time_zone,
        )

    def profile(self, struct: struct_pb2.Struct) -> dict[str, Any]:
        try:
            return self.profile_validator.validate_python(struct_values(struct))
        except ValidationError as exc:
            raise self._profile_error(exc) from None

    def _profile_error(self, exc: ValidationError) -> RequestError:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        field = f"profile.{name}" if name else "profile"
        if err["type"] == "extra_forbidden":
            hint = did_you_mean(name, self.ruleset.attributes)
            return RequestError(
                field,
                "is not a declared profile attribute"
                + (f" ({hint})" if hint else "; expected one of the rule set's schema"),
            )
        if err["type"] == "missing":
            return RequestError(field, "is required by the rule set's schema")
        return RequestError(field, pydantic_message(err["type"], err["msg"], err.get("input")))


def unknown_name(field: str, value: str, known: Collection[str], what: str) -> NoReturn:
    """Raise the one message for a name the rule set does not declare, with did-you-mean."""
    hint = did_you_mean(value, known)
    shown = f"'{value}'" if value else "empty"
    raise RequestError(
        field,
        f"{shown} is not a known {what}; expected one of {', '.join(known)}"
        + (f" ({hint})" if hint else ""),
    )


def outcome_record(msg: pb.RecordOutcomeRequest, now: float) -> tuple[str, Interaction]:
    """A RecordOutcome request as (customer id, interaction); an unset time means now."""
    if not msg.customer_id:
        raise RequestError("customer_id", "is required; expected the customer's id")
    item = msg.interaction
    if not item.action_id:
        raise RequestError("interaction.action_id", "is required")
    if not item.channel:
        raise RequestError(
            "interaction.channel", "is required; expected the channel it happened on"
        )
    if item.outcome not in OUTCOME_NAMES or item.outcome == pb.OUTCOME_UNSPECIFIED:
        raise RequestError(
            "interaction.outcome", "is unset; expected IMPRESSION, CLICK, ACCEPT, ..."
        )
    at = _seconds(item.at) if item.HasField("at") else now
    return msg.customer_id, Interaction(
        item.action_id, item.channel, item.outcome, at, msg.interaction_id, msg.decision_id
    )


def consent_update(
    msg: pb.UpdateConsentRequest, ruleset: RuleSet, now: float
) -> tuple[str, dict[str, bool], float]:
    """An UpdateConsent request as (customer id, channel -> consent, time); unset time: now."""
    if not msg.customer_id:
        raise RequestError("customer_id", "is required; expected the customer's id")
    if not msg.consent:
        raise RequestError("consent", "is empty; expected channel -> true/false")
    for key in msg.consent:
        if key not in ruleset.channels:
            unknown_name(f'consent["{key}"]', key, ruleset.channels, "channel")
    at = _seconds(msg.at) if msg.HasField("at") else now
    return msg.customer_id, dict(msg.consent), at


def interactions(messages: Any) -> tuple[Interaction, ...]:
    if len(messages) > MAX_INTERACTIONS:
        raise RequestError(
            "interactions", f"has {len(messages)} entries; expected at most {MAX_INTERACTIONS}"
        )
    out = []
    for i, item in enumerate(messages):  # the hot path: one pass, no HasField per item
        outcome = item.outcome
        if outcome not in _VALID_OUTCOMES:
            raise RequestError(
                f"interactions[{i}].outcome", "is unset; expected IMPRESSION, CLICK, ACCEPT, ..."
            )
        at = item.at
        seconds = at.seconds + at.nanos * 1e-9
        if seconds <= 0:  # unset (or 1970): either way not a real contact time
            raise RequestError(f"interactions[{i}].at", "is unset; expected when it happened")
        action_id = item.action_id
        if not action_id:
            raise RequestError(f"interactions[{i}].action_id", "is required")
        out.append(Interaction(action_id, item.channel, outcome, seconds))
    return tuple(out)


def _seconds(ts: Any) -> float:
    return ts.seconds + ts.nanos / 1e9


def struct_values(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python values, without MessageToDict (~70 µs) on the hot path.

    Struct numbers are all doubles; whole ones become ints so that an int attribute
    accepts 35.0 but rejects 35.5. Nulls mean "not sent".
    """
    out: dict[str, Any] = {}
    fields = struct.fields
    for key in fields:  # keys then lookups: the map's items() view is Python code
        converted = _value(fields[key])
        if converted is not None:
            out[key] = converted
    return out


def _value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "list_value":
        return [_value(v) for v in value.list_value.values]
    if kind == "struct_value":
        return struct_values(value.struct_value)
    return None


def profile_validator(attributes: Mapping[str, AttributeSpec]) -> TypeAdapter[dict[str, Any]]:
    """Validates the declared profile into a dict of the attributes sent.

    Unknown attributes are rejected. A TypedDict rather than a model: the validated dict
    is what the pipeline uses, and building it directly halves the cost.
    """
    fields: dict[str, Any] = {}
    for name, spec in attributes.items():
        annotation = _annotation(spec)
        fields[name] = Required[annotation] if spec.required else NotRequired[annotation]
    profile = TypedDict("Profile", fields, total=False)  # type: ignore[operator]
    profile.__pydantic_config__ = ConfigDict(extra="forbid", allow_inf_nan=False)  # type: ignore[attr-defined]
    return TypeAdapter(profile)


def _annotation(spec: AttributeSpec) -> Any:
    bounds = Field(ge=spec.min, le=spec.max)
    if spec.type == AttributeType.INT:
        return Annotated[StrictInt, bounds]
    if spec.type == AttributeType.NUMBER:
        return Annotated[StrictInt | StrictFloat, bounds]
    if spec.type == AttributeType.BOOL:
        return StrictBool
    if spec.type == AttributeType.STRING:
        return Annotated[StrictStr, Field(max_length=1000)]
    choice = Literal[spec.values]  # type: ignore[valid-type]
    if spec.type == AttributeType.ENUM:
        return choice
    return frozenset[choice]  # type: ignore[valid-type]
