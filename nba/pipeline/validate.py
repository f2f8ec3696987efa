"""Pipeline stage 1, validate: a DecideRequest proto becomes a checked DecisionRequest.

The profile arrives as a google.protobuf.Struct, typed only as JSON is. Its real schema
is the rule set's, so each loaded rule set gets a pydantic validator generated from its
`profile` section (strict types, enum values, bounds, required attributes). Everything
else in the request is already typed by protobuf and only needs semantic checks (a known
stage, a known channel, a set timestamp). The first problem found is raised as a
RequestError naming the field; the gRPC layer turns it into INVALID_ARGUMENT. Nothing
else escapes: whatever a caller sends, later stages only see values they can handle.

What is accepted, and why:

- Times. `as_of` lies in [1970-01-01, 2200-01-01): far past any real decision, and every
  moment the pipeline derives from it (the local time for quiet hours, as_of minus a
  history window, a trigger plus a cooldown) stays inside what `datetime` can hold (year
  1 to 9999; 9999-12-31 in Tokyo was year 10000). Interaction times are after 1970 (0
  means unset) and before 2200 too. Nanos are protobuf's 0..999,999,999.
- Recorded times (RecordOutcome `interaction.at`, UpdateConsent `at`) are also at most
  `max_skew_seconds` (default 5 minutes) past the server's clock: the newest consent wins
  and future outcomes are never trimmed, so one future date would pin consent or history.
- Size. The work per request is bounded by the rule set, not the input: profile keys are
  checked against the schema before any value is converted (map keys are unique, so at
  most one key more than the schema declares is ever looked at), a list has at most
  MAX_LIST_ITEMS items, nested objects are never walked (no declared type is one), ids
  and labels have at most MAX_ID_LENGTH characters, a number without declared bounds
  lies within +-2**53 (beyond that a double no longer holds every integer). Every value
  an error message repeats is cut by `nba.errors.echo`.
- RecordOutcome's action id. An id unknown to the current rule set is recorded when it is
  well-formed (the rule-file id pattern): an action removed by a reload still receives late
  outcomes, and they count again if the action returns. A malformed id (no rule file can
  declare it) is rejected, with a did-you-mean against the current actions. Its channel
  must be one the rule set declares: channels are configuration, not content, and a
  misspelt channel would record history that no cap or cooldown ever counts.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import time
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal, NoReturn, NotRequired, Required

from google.protobuf import struct_pb2, timestamp_pb2
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

from nba.errors import RequestError, cut, did_you_mean, echo, pydantic_message
from nba.pipeline.types import (
    OUTBOUND,
    OUTCOME_NAMES,
    RECORDED_OUTCOMES,
    DecisionRequest,
    Interaction,
)
from nba.ruleset.model import ID_PATTERN, AttributeSpec, AttributeType, known_time_zone
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb

MAX_RESULTS_LIMIT = 100
MAX_INTERACTIONS = 1000
MAX_LIST_ITEMS = 1000  # items of one profile list (a set attribute)
MAX_PREFERRED_CHANNELS = 100
MAX_ID_LENGTH = 256  # customer, action, interaction and decision ids; placement, intent
MAX_TIME_ZONE_LENGTH = 64  # the longest IANA name is 32
MAX_ACTION_ID_LENGTH = 64  # what a rule file may declare (nba.ruleset.model.Id)
PROFILE_NUMBER_LIMIT = 2**53  # |number| of an attribute without its own min / max
EARLIEST = 0  # 1970-01-01T00:00:00Z
LATEST = 7_258_118_400  # 2200-01-01T00:00:00Z, exclusive
MAX_NANOS = 999_999_999
MAX_SKEW_SECONDS = 300.0  # how far past the server's clock a recorded time may be
# As floats for the per-interaction loop: a float compared with an int takes CPython's
# generic path (with int bounds these checks cost the loop 9%; as floats, 2.5%).
_EARLIEST_SECONDS, _LATEST_SECONDS = float(EARLIEST), float(LATEST)
_VALID_OUTCOMES = RECORDED_OUTCOMES
_ACTION_ID = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))
_PROTOBUF_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class RequestValidator:
    """Validates requests against one rule set; built once per load."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.profile_validator = profile_validator(ruleset.attributes)
        self.attributes = frozenset(ruleset.attributes)
        self.stages = frozenset(ruleset.stages)
        self.channels = frozenset(ruleset.channels)

    def validate(self, msg: pb.DecideRequest, now: float | None = None) -> DecisionRequest:
        customer_id = customer(msg.customer_id)
        lifecycle = msg.lifecycle_stage
        if lifecycle not in self.stages:
            unknown_name("lifecycle_stage", lifecycle, self.ruleset.stages, "lifecycle stage")
        touchpoint = msg.touchpoint
        channel = touchpoint.channel or OUTBOUND
        if channel != OUTBOUND and channel not in self.channels:
            unknown_name("touchpoint.channel", channel, self.ruleset.channels, "channel")
        if not 0 <= msg.max_results <= MAX_RESULTS_LIMIT:
            raise RequestError(
                "max_results", f"is {msg.max_results}; expected 0 (default) to {MAX_RESULTS_LIMIT}"
            )
        consent = self.consent(msg.consent)
        preferred = self.preferred(msg.preferred_channels)
        as_of = moment("as_of", msg.as_of) if msg.HasField("as_of") else (now or time.time())
        return DecisionRequest(
            customer_id=customer_id,
            profile=self.profile(msg.profile),
            lifecycle=lifecycle,
            channel=channel,
            placement=bounded("touchpoint.placement", touchpoint.placement),
            intent=bounded("touchpoint.intent", touchpoint.intent),
            interactions=interactions(msg.interactions),
            consent=consent,
            max_results=msg.max_results or self.ruleset.arbitration.max_results,
            explain=msg.explain,
            as_of=as_of,
            preferred_channels=preferred,
            time_zone=self.time_zone(msg.time_zone),
        )

    def consent(self, given: Mapping[str, bool]) -> dict[str, bool]:
        if len(given) > len(self.channels):  # one key is unknown: find it before copying all
            for key in given:
                if key not in self.channels:
                    unknown_channel_key(key, self.ruleset)
        consent = dict(given)
        for key in consent:
            if key not in self.channels:
                unknown_channel_key(key, self.ruleset)
        return consent

    def preferred(self, given: Collection[str]) -> tuple[str, ...]:
        if len(given) > MAX_PREFERRED_CHANNELS:
            raise RequestError(
                "preferred_channels",
                f"has {len(given):,} entries; expected at most {MAX_PREFERRED_CHANNELS}",
            )
        preferred = tuple(given)
        for i, key in enumerate(preferred):
            if key not in self.channels:
                unknown_name(f"preferred_channels[{i}]", key, self.ruleset.channels, "channel")
        return preferred

    def time_zone(self, name: str) -> str:
        if not name:
            return self.ruleset.meta.time_zone
        if len(name) > MAX_TIME_ZONE_LENGTH or not _known_time_zone(name):
            raise RequestError(
                "time_zone", f"{echo(name)} is not an IANA time zone; expected e.g. Europe/London"
            )
        return name

    def profile(self, struct: struct_pb2.Struct) -> dict[str, Any]:
        """The declared profile, converted and validated; an undeclared key fails first.

        Keys are checked before their values are converted, so an undeclared key costs
        one lookup however much else the Struct holds.
        """
        out: dict[str, Any] = {}
        fields = struct.fields
        declared = self.attributes
        for key in fields:  # keys then lookups: the map's items() view is Python code
            if key not in declared:
                raise self._undeclared(key)
            converted = _value(fields[key], key)
            if converted is not None:
                out[key] = converted
        try:
            return self.profile_validator.validate_python(out)
        except ValidationError as exc:
            raise self._profile_error(exc) from None

    def _undeclared(self, name: str) -> RequestError:
        hint = did_you_mean(name, self.ruleset.attributes)
        return RequestError(
            f"profile.{cut(name)}",
            "is not a declared profile attribute"
            + (f" ({hint})" if hint else "; expected one of the rule set's schema"),
        )

    def _profile_error(self, exc: ValidationError) -> RequestError:
        errors = exc.errors()
        err = errors[0]
        if err["type"] == "int_type" and len(err["loc"]) > 1 and len(errors) > 1:
            err = errors[1]  # not an int, for a number (int | float): the float branch says why
        name = str(err["loc"][0]) if err["loc"] else ""
        field = f"profile.{name}" if name else "profile"
        if err["type"] == "extra_forbidden":  # unreachable: profile() checks keys first
            return self._undeclared(name)
        if err["type"] == "missing":
            return RequestError(field, "is required by the rule set's schema")
        return RequestError(field, pydantic_message(err["type"], err["msg"], err.get("input")))


def unknown_name(field: str, value: str, known: Collection[str], what: str) -> NoReturn:
    """Raise the one message for a name the rule set does not declare, with did-you-mean."""
    hint = did_you_mean(value, known)
    shown = echo(value) if value else "empty"
    raise RequestError(
        field,
        f"{shown} is not a known {what}; expected one of {listing(known)}"
        + (f" ({hint})" if hint else ""),
    )


def unknown_channel_key(key: str, ruleset: RuleSet) -> NoReturn:
    unknown_name(f'consent["{cut(key)}"]', key, ruleset.channels, "channel")


def listing(known: Collection[str], limit: int = 12) -> str:
    """The names a message offers, at most `limit` of them (a rule set may have hundreds)."""
    names = list(known)
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names) - limit} more)"


def customer(customer_id: str) -> str:
    if not customer_id:
        raise RequestError("customer_id", "is required; expected the customer's id")
    return bounded("customer_id", customer_id)


def bounded(field: str, value: str, limit: int = MAX_ID_LENGTH) -> str:
    if len(value) > limit:
        raise RequestError(field, f"is {len(value):,} characters long; expected at most {limit}")
    return value


@functools.lru_cache(maxsize=1024)
def _known_time_zone(name: str) -> bool:
    # Bounded, unlike known_time_zone's own cache: callers choose the names here.
    return known_time_zone.__wrapped__(name)


def moment(
    field: str,
    ts: timestamp_pb2.Timestamp,
    earliest: float = EARLIEST,
    latest: float = LATEST,
    why: str = "",
) -> float:
    """A Timestamp as unix seconds, checked to lie in [earliest, latest)."""
    seconds, nanos = ts.seconds, ts.nanos
    if not 0 <= nanos <= MAX_NANOS:
        raise RequestError(field, f"has nanos {nanos:,}; expected 0 to {MAX_NANOS:,}")
    at = seconds + nanos / 1e9
    if not earliest <= at < latest:
        raise RequestError(
            field,
            f"is {shown_time(seconds)}; expected from {shown_time(earliest)} to before"
            f" {shown_time(latest)}" + (f" ({why})" if why else ""),
        )
    return at


def empty(ts: timestamp_pb2.Timestamp) -> bool:
    """Is this the zero Timestamp (1970-01-01T00:00:00Z), which a client sends as unset?"""
    return ts.seconds == 0 and ts.nanos == 0


def shown_time(seconds: float) -> str:
    """Unix seconds as ISO 8601 when datetime can show them, else as a count of seconds."""
    try:
        moment_ = _PROTOBUF_EPOCH + dt.timedelta(seconds=int(seconds))
    except OverflowError:
        return f"{int(seconds):,} seconds from 1970 (outside year 1 to 9999)"
    return moment_.isoformat().removesuffix("+00:00") + "Z"  # strftime does not pad year 1


def recorded_at(
    field: str,
    msg: pb.Interaction | pb.UpdateConsentRequest,
    now: float,
    max_skew_seconds: float = MAX_SKEW_SECONDS,
) -> float:
    """When a recorded thing happened: after 1970, at most max_skew_seconds past now."""
    if not msg.HasField("at"):
        return now
    if empty(msg.at):
        raise RequestError(field, "is 1970-01-01T00:00:00Z; expected when it happened")
    why = f"at most {max_skew_seconds:g} s past the server's clock"
    return moment(field, msg.at, EARLIEST, now + max_skew_seconds, why)


def outcome_record(
    msg: pb.RecordOutcomeRequest,
    now: float,
    ruleset: RuleSet | None = None,
    *,
    max_skew_seconds: float = MAX_SKEW_SECONDS,
) -> tuple[str, Interaction]:
    """A RecordOutcome request as (customer id, interaction); an unset time means now.

    With a rule set the channel must be one of its channels; the action id need only be
    well-formed (see the module docstring). The service passes its current rule set.
    """
    customer_id = customer(msg.customer_id)
    item = msg.interaction
    action_id = item.action_id
    if not action_id:
        raise RequestError("interaction.action_id", "is required")
    if len(action_id) > MAX_ACTION_ID_LENGTH or not _ACTION_ID.fullmatch(action_id):
        malformed_action_id(action_id, ruleset)
    if not item.channel:
        raise RequestError(
            "interaction.channel", "is required; expected the channel it happened on"
        )
    if ruleset is not None and item.channel not in ruleset.channels:
        unknown_name("interaction.channel", item.channel, ruleset.channels, "channel")
    if item.outcome not in OUTCOME_NAMES or item.outcome == pb.OUTCOME_UNSPECIFIED:
        raise RequestError(
            "interaction.outcome", "is unset; expected IMPRESSION, CLICK, ACCEPT, ..."
        )
    at = recorded_at("interaction.at", item, now, max_skew_seconds)
    return customer_id, Interaction(
        action_id,
        item.channel,
        item.outcome,
        at,
        bounded("interaction_id", msg.interaction_id),
        bounded("decision_id", msg.decision_id),
    )


def malformed_action_id(action_id: str, ruleset: RuleSet | None) -> NoReturn:
    hint = did_you_mean(action_id, ruleset.actions) if ruleset is not None else ""
    raise RequestError(
        "interaction.action_id",
        f"{echo(action_id)} is not an action id; expected lowercase snake_case of at most"
        f" {MAX_ACTION_ID_LENGTH} characters, as rule files declare them"
        + (f" ({hint})" if hint else ""),
    )


def consent_update(
    msg: pb.UpdateConsentRequest,
    ruleset: RuleSet,
    now: float,
    *,
    max_skew_seconds: float = MAX_SKEW_SECONDS,
) -> tuple[str, dict[str, bool], float]:
    """An UpdateConsent request as (customer id, channel -> consent, time); unset time: now."""
    customer_id = customer(msg.customer_id)
    if not msg.consent:
        raise RequestError("consent", "is empty; expected channel -> true/false")
    for key in msg.consent:  # map keys are unique: at most one unknown key is looked at
        if key not in ruleset.channels:
            unknown_channel_key(key, ruleset)
    at = recorded_at("at", msg, now, max_skew_seconds)
    return customer_id, dict(msg.consent), at


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
        nanos = at.nanos
        seconds = at.seconds + nanos * 1e-9
        if not _EARLIEST_SECONDS < seconds < _LATEST_SECONDS:
            interaction_time(i, at)
        if not 0 <= nanos <= MAX_NANOS:
            interaction_time(i, at)
        action_id = item.action_id
        if not 0 < len(action_id) <= MAX_ID_LENGTH:
            interaction_action(i, action_id)
        out.append(Interaction(action_id, item.channel, outcome, seconds))
    return tuple(out)


def interaction_time(i: int, at: timestamp_pb2.Timestamp) -> NoReturn:
    field = f"interactions[{i}].at"
    if empty(at):  # unset (or 1970): either way not a contact time
        raise RequestError(field, "is unset; expected when it happened")
    moment(field, at)
    # Only a rounding of the sum at a bound gets here: still a time out of range.
    raise RequestError(field, f"is {shown_time(at.seconds)}; expected from 1970 to 2199")


def interaction_action(i: int, action_id: str) -> NoReturn:
    field = f"interactions[{i}].action_id"
    if action_id:
        bounded(field, action_id)  # raises: called only for an empty or too long id
    raise RequestError(field, "is required")


def struct_values(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python values, without MessageToDict (~70 µs), one level deep.

    Struct numbers are all doubles; whole ones become ints so that an int attribute
    accepts 35.0 but rejects 35.5. Nulls mean "not sent". A nested object is read as an
    empty dict, and an object or list inside a list as an empty one: no profile type is
    either, so their contents cannot matter, and reading them is unbounded work.
    """
    out: dict[str, Any] = {}
    fields = struct.fields
    for key in fields:
        converted = _value(fields[key], key)
        if converted is not None:
            out[key] = converted
    return out


def _value(value: struct_pb2.Value, key: str) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "list_value":
        items = value.list_value.values
        if len(items) > MAX_LIST_ITEMS:
            raise RequestError(
                f"profile.{cut(key)}",
                f"has {len(items):,} items; expected at most {MAX_LIST_ITEMS}",
            )
        return [_item(v) for v in items]
    if kind == "struct_value":
        return {}
    return None


def _item(value: struct_pb2.Value) -> Any:
    """A list item: a scalar as _value reads it; a list or object as an empty one."""
    kind = value.WhichOneof("kind")
    if kind == "list_value":
        return []
    if kind == "struct_value":
        return {}
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
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
    typed_dict: Any = TypedDict  # called with fields known only at run time
    profile = typed_dict("Profile", fields, total=False)
    profile.__pydantic_config__ = ConfigDict(extra="forbid", allow_inf_nan=False)
    return TypeAdapter(profile)


def _annotation(spec: AttributeSpec) -> Any:
    low = -PROFILE_NUMBER_LIMIT if spec.min is None else spec.min
    high = PROFILE_NUMBER_LIMIT if spec.max is None else spec.max
    bounds = Field(ge=low, le=high)
    # pydantic-core refuses a fractional bound on an int validator (`max: 2.5` would fail the
    # whole schema): an int lies within [low, high] exactly when it lies within these.
    int_bounds = Field(ge=math.ceil(low), le=math.floor(high))
    if spec.type == AttributeType.INT:
        return Annotated[StrictInt, int_bounds]
    if spec.type == AttributeType.NUMBER:  # bounds on each branch: on the union they are
        return Annotated[StrictInt, int_bounds] | Annotated[StrictFloat, bounds]  # Python calls
    if spec.type == AttributeType.BOOL:
        return StrictBool
    if spec.type == AttributeType.STRING:
        return Annotated[StrictStr, Field(max_length=1000)]
    choice: Any = Literal[spec.values]  # values known only at run time
    if spec.type == AttributeType.ENUM:
        return choice
    return frozenset[choice]
