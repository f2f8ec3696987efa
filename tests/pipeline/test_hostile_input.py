"""Hostile and broken requests, fuzzed through the in-process pipeline.

Whatever a caller sends, Decide, RecordOutcome and UpdateConsent either answer or raise
RequestError (the service's INVALID_ARGUMENT) with a short message naming a field that
exists in the request. Nothing else escapes: no OverflowError from a date, no
RecursionError from a nested Struct, no megabyte-long status message.

Each request starts valid (drawn from the rule set's schema, so most of them decide) and
then has a few of its fields replaced by hostile values: huge and odd unicode strings,
random Struct trees, NaN and extreme numbers, timestamps across and past protobuf's
range, extreme nanos, out-of-range ints and unknown enum numbers. Lone surrogates cannot
be sent: protobuf refuses them on assignment (pinned below) and rejects invalid UTF-8 on
parsing, before validation is reached.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from nba.authoring.customers import generate_customers
from nba.errors import RequestError
from nba.pipeline.decider import Decider
from nba.pipeline.validate import MAX_SKEW_SECONDS, consent_update, outcome_record
from nba.ruleset.loader import load_ruleset
from nba.ruleset.model import ID_PATTERN
from nba.ruleset.ruleset import RuleSet
from nba.store import InteractionStore, open_store, prepared
from nba.v1 import decisioning_pb2 as pb
from tests.conftest import RULES

MESSAGE_LIMIT = 300
RULESET = load_ruleset(RULES)
# ~3,000 examples in all: about 30 s on a loaded 2-core machine.
FUZZ = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
YEAR_1 = -62_135_596_800
YEAR_10000 = 253_402_300_800
LATEST_DECIDABLE = 7_258_118_400  # 2200-01-01

# Values built once: drawing a megabyte string per example would dominate the run. Drawn
# by index, so that hypothesis never prints them.
HUGE = ["a" * 1_000_000, "é" * 300_000, "\U0001f600" * 100_000, "x" * 257, "y" * 65]
HUGE_VALUES = st.integers(0, len(HUGE) - 1).map(HUGE.__getitem__)
# Realistic customers as the starting point: most of them decide, so the whole pipeline
# meets whatever validation lets through.
BASES = list(generate_customers(RULESET, 40, seed=7))
ODD = ["", " ", "\x00", "\x00web", "web\n", "WEB", "we b", "‮web", "web" * 40, "'", '"', "\\"]


def names(ruleset: RuleSet) -> list[str]:
    """Every real name a field could hold, so near-misses are near something."""
    return sorted(
        {*ruleset.channels, *ruleset.stages, *ruleset.attributes, *ruleset.actions, "outbound"}
    )


def texts() -> st.SearchStrategy[str]:
    real = names(RULESET)
    return st.one_of(
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
        st.sampled_from(real),
        st.sampled_from(real).map(lambda name: name[:-1] + "x"),  # a near-miss
        st.sampled_from(ODD),
        HUGE_VALUES,
    )


def numbers() -> st.SearchStrategy[float]:
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 2.0**53, 2.0**53 + 2]),
        st.integers(-(2**70), 2**70).map(float),
        st.integers(-5, 200).map(float),
    )


def struct_trees() -> st.SearchStrategy[Any]:
    """JSON values as a Struct holds them (lists and objects of scalars, any depth)."""
    scalars = st.one_of(st.none(), st.booleans(), numbers(), texts())
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(texts(), inner, max_size=3)
        ),
        max_leaves=12,
    )


def timestamps() -> st.SearchStrategy[tuple[int, int]]:
    edges = [YEAR_1, YEAR_1 - 1, YEAR_10000, YEAR_10000 - 1, 0, -1, 1, LATEST_DECIDABLE]
    seconds = st.one_of(
        INT64, st.sampled_from(edges), st.integers(0, LATEST_DECIDABLE), st.integers(-3, 3)
    )
    nanos = st.one_of(st.just(0), INT32, st.sampled_from([-1, 999_999_999, 10**9]))
    return st.tuples(seconds, nanos)


def set_time(ts: Any, value: tuple[int, int]) -> None:
    ts.seconds, ts.nanos = value


def deep(struct: struct_pb2.Struct, key: str, depth: int, as_list: bool) -> None:
    """A chain `depth` levels deep under `key`, built without recursion."""
    if as_list:
        items = struct.get_or_create_list(key)
        for _ in range(depth):
            items = items.add_list()
    else:
        node = struct.get_or_create_struct(key)
        for _ in range(depth):
            node = node.get_or_create_struct("k")


def profile_keys() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(sorted(RULESET.attributes)), texts())


# Each mutation replaces one part of a valid DecideRequest with something hostile.
Mutation = Callable[[pb.DecideRequest], None]


def decide_mutations() -> st.SearchStrategy[Mutation]:
    def setter(path: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Mutation]:
        *parents, name = path.split(".")

        def apply(value: Any) -> Mutation:
            def mutate(msg: pb.DecideRequest) -> None:
                target = msg
                for parent in parents:
                    target = getattr(target, parent)
                setattr(target, name, value)

            return mutate

        return values.map(apply)

    def profile_value(pair: tuple[str, Any]) -> Mutation:
        return lambda msg: msg.profile.update({pair[0]: pair[1]})

    def undeclared(count: int) -> Mutation:
        return lambda msg: msg.profile.update({f"undeclared_{i}": i for i in range(count)})

    def nested(args: tuple[str, int, bool]) -> Mutation:
        return lambda msg: deep(msg.profile, *args)

    def as_of(value: tuple[int, int]) -> Mutation:
        return lambda msg: set_time(msg.as_of, value)

    def consent(pairs: dict[str, bool]) -> Mutation:
        return lambda msg: msg.consent.update(pairs)

    def preferred(values: list[str]) -> Mutation:
        return lambda msg: msg.preferred_channels.extend(values)

    def interaction(args: tuple[str, str, int, tuple[int, int]]) -> Mutation:
        def mutate(msg: pb.DecideRequest) -> None:
            item = msg.interactions.add(action_id=args[0], channel=args[1], outcome=args[2])
            set_time(item.at, args[3])

        return mutate

    def many_interactions(count: int) -> Mutation:
        def mutate(msg: pb.DecideRequest) -> None:
            for i in range(count):
                item = msg.interactions.add(action_id="a", channel="web", outcome=pb.CLICK)
                item.at.FromSeconds(1_700_000_000 + i)

        return mutate

    outcomes = st.one_of(INT32, st.sampled_from([0, 1, 6, 7, -1]))
    return st.one_of(
        setter("customer_id", texts()),
        setter("lifecycle_stage", texts()),
        setter("touchpoint.channel", texts()),
        setter("touchpoint.placement", texts()),
        setter("touchpoint.intent", texts()),
        setter("time_zone", st.one_of(texts(), st.sampled_from(["Asia/Tokyo", "Etc/GMT-14"]))),
        setter("max_results", st.one_of(INT32, st.integers(-2, 102))),
        setter("explain", st.booleans()),
        st.tuples(profile_keys(), struct_trees()).map(profile_value),
        st.integers(1, 3_000).map(undeclared),
        st.tuples(profile_keys(), st.integers(1, 3_000), st.booleans()).map(nested),
        timestamps().map(as_of),
        st.dictionaries(texts(), st.booleans(), max_size=4).map(consent),
        st.lists(texts(), max_size=4).map(preferred),
        st.lists(st.sampled_from(sorted(RULESET.channels)), min_size=90, max_size=120).map(
            preferred
        ),
        st.tuples(texts(), texts(), outcomes, timestamps()).map(interaction),
        st.integers(990, 1_010).map(many_interactions),
    )


# --------------------------------------------------------------------------- checks

_INDEXED = re.compile(r"^(?P<name>\w+)\[(?P<index>\d+)\]$")
_KEYED = re.compile(r'^(?P<name>\w+)\["(?P<key>.*)"\]$', re.DOTALL)


def key_matches(shown: str, keys: Any) -> bool:
    """Is `shown` one of `keys`, or one cut short with an ellipsis?"""
    if shown.endswith("…"):
        return any(key.startswith(shown[:-1]) for key in keys)
    return shown in keys


def assert_real_path(field: str, msg: Any) -> None:
    """`field` walks from the request to something it holds (or a declared attribute)."""
    if field.startswith("profile."):
        name = field.removeprefix("profile.")
        assert key_matches(name, {*msg.profile.keys(), *RULESET.attributes}), field
        return
    target = msg
    for part in [field] if _KEYED.match(field) else field.split("."):
        keyed, indexed = _KEYED.match(part), _INDEXED.match(part)
        name = keyed.group("name") if keyed else indexed.group("name") if indexed else part
        assert name in target.DESCRIPTOR.fields_by_name, field
        value = getattr(target, name)
        if keyed:
            assert key_matches(keyed.group("key"), value.keys()), field
        elif indexed:
            assert int(indexed.group("index")) < len(value), field
            value = value[int(indexed.group("index"))]
        target = value


def assert_rejected_well(exc: RequestError, msg: Any) -> None:
    assert len(exc.message) <= MESSAGE_LIMIT, exc.message[:400]
    assert len(str(exc)) <= 2 * MESSAGE_LIMIT
    assert_real_path(exc.field, msg)


# ----------------------------------------------------------------------------- Decide


@pytest.fixture(scope="module")
def store() -> InteractionStore:
    return open_store("memory://", retention_seconds=400 * 86400)


@pytest.fixture(scope="module")
def decider(store: InteractionStore) -> Decider:
    return Decider(RULESET, store=store)


def valid_request() -> pb.DecideRequest:
    msg = pb.DecideRequest(customer_id="c-example", lifecycle_stage="active")
    msg.profile.update({"age": 30})
    return msg


def as_of_mutation(seconds: int, nanos: int = 0, zone: str = "") -> list[Mutation]:
    def mutate(msg: pb.DecideRequest) -> None:
        msg.as_of.seconds, msg.as_of.nanos = seconds, nanos
        msg.time_zone = zone

    return [mutate]


def profile_mutation(values: dict[str, Any]) -> list[Mutation]:
    return [lambda msg: msg.profile.update(values)]


def nested_mutation(key: str) -> list[Mutation]:
    return [lambda msg: deep(msg.profile, key, 5_000, False)]


@given(
    base=st.integers(0, len(BASES) - 1).map(BASES.__getitem__),
    mutations=st.lists(decide_mutations(), max_size=3),
)
@FUZZ
# What failed before this suite: dates datetime cannot hold (OverflowError, ValueError)...
@example(base=valid_request(), mutations=as_of_mutation(YEAR_1, 0, "UTC"))
@example(base=valid_request(), mutations=as_of_mutation(YEAR_10000 + 10**6))
@example(base=valid_request(), mutations=as_of_mutation(YEAR_10000 - 1, 0, "Asia/Tokyo"))
@example(base=valid_request(), mutations=as_of_mutation(-(10**12)))
# ... nesting deeper than Python's recursion limit ...
@example(base=valid_request(), mutations=nested_mutation("region"))
@example(base=valid_request(), mutations=nested_mutation("not_an_attribute"))
# ... and status messages that echoed a whole megabyte.
@example(base=valid_request(), mutations=profile_mutation({"region": HUGE[0]}))
@example(base=valid_request(), mutations=profile_mutation({HUGE[0]: 1}))
def test_decide_answers_or_names_a_field(
    decider: Decider, base: pb.DecideRequest, mutations: list[Mutation]
) -> None:
    msg = pb.DecideRequest()
    msg.CopyFrom(base)  # examples share their base: mutate a copy
    for mutate in mutations:
        mutate(msg)
    try:
        response = decider.decide(msg)
    except RequestError as exc:
        event(f"rejected: {exc.field.split('[')[0].split('.')[0]}")
        assert_rejected_well(exc, msg)
    else:
        event("decided")
        assert isinstance(response, pb.DecideResponse)


def test_long_lifecycle_stage_and_time_zone_messages_are_short(decider: Decider) -> None:
    for field, value in (("lifecycle_stage", HUGE[0]), ("time_zone", "Europe/" + "x" * 10_000)):
        msg = valid_request()
        setattr(msg, field, value)
        with pytest.raises(RequestError) as caught:
            decider.decide(msg)
        assert caught.value.field == field
        assert_rejected_well(caught.value, msg)


def test_protobuf_refuses_lone_surrogates_before_validation() -> None:
    msg = pb.DecideRequest()
    with pytest.raises(UnicodeEncodeError):
        msg.customer_id = "\ud800"
    with pytest.raises(UnicodeEncodeError):
        msg.profile["\udc80"] = 1


# ------------------------------------------------------------- RecordOutcome, UpdateConsent


def customers() -> st.SearchStrategy[str]:
    return st.integers(0, 99).map(lambda n: f"c-fuzz-{n}")  # a short history each


@st.composite
def outcome_requests(draw: st.DrawFn) -> pb.RecordOutcomeRequest:
    msg = pb.RecordOutcomeRequest(customer_id=draw(st.one_of(customers(), texts())))
    item = msg.interaction
    actions = sorted(RULESET.actions)
    item.action_id = draw(st.one_of(st.sampled_from(actions), texts()))
    item.channel = draw(st.one_of(st.sampled_from(sorted(RULESET.channels)), texts()))
    item.outcome = draw(st.one_of(st.integers(1, 6), INT32))  # type: ignore[assignment]  # open enum
    now = int(time.time())
    at = draw(
        st.one_of(st.none(), timestamps(), st.integers(-86400, 600).map(lambda d: (now + d, 0)))
    )
    if at is not None:
        set_time(item.at, at)
    msg.interaction_id = draw(st.one_of(st.just(""), texts()))
    msg.decision_id = draw(st.one_of(st.just(""), texts()))
    return msg


def later_decide(decider: Decider, customer_id: str) -> None:
    """What was stored must not break the customer's next decision."""
    msg = valid_request()
    msg.customer_id = customer_id
    assert isinstance(decider.decide(msg), pb.DecideResponse)


def outcome_of(action_id: str, channel: str, at: tuple[int, int]) -> pb.RecordOutcomeRequest:
    msg = pb.RecordOutcomeRequest(customer_id="c-fuzz")
    msg.interaction.action_id, msg.interaction.channel = action_id, channel
    msg.interaction.outcome = pb.CLICK
    set_time(msg.interaction.at, at)
    return msg


@given(msg=outcome_requests())
@FUZZ
# Accepted before: a year-9999 outcome (never trimmed), and unknown channels.
@example(msg=outcome_of("card_cashback", "web", (YEAR_10000 - 1, 0)))
@example(msg=outcome_of("card_cashback", "website", (1_700_000_000, 0)))
@example(msg=outcome_of("card cashback", "web", (1_700_000_000, 0)))
@example(msg=outcome_of("card_cashback", "web", (YEAR_1, 0)))
def test_record_outcome_records_only_plausible_outcomes(
    decider: Decider, store: InteractionStore, msg: pb.RecordOutcomeRequest
) -> None:
    now = time.time()
    try:
        customer_id, interaction = outcome_record(msg, now, RULESET)
    except RequestError as exc:
        assert_rejected_well(exc, msg)
        return
    assert 0 < interaction.at <= now + MAX_SKEW_SECONDS
    assert interaction.channel in RULESET.channels
    assert re.fullmatch(ID_PATTERN, interaction.action_id)
    store.record(customer_id, prepared(customer_id, interaction))
    later_decide(decider, customer_id)


@st.composite
def consent_requests(draw: st.DrawFn) -> pb.UpdateConsentRequest:
    channels = st.one_of(st.sampled_from(sorted(RULESET.channels)), texts())
    msg = pb.UpdateConsentRequest(
        customer_id=draw(st.one_of(customers(), texts())),
        consent=draw(st.dictionaries(channels, st.booleans(), max_size=4)),
    )
    now = int(time.time())
    at = draw(
        st.one_of(st.none(), timestamps(), st.integers(-86400, 600).map(lambda d: (now + d, 0)))
    )
    if at is not None:
        set_time(msg.at, at)
    return msg


def consent_at(seconds: int) -> pb.UpdateConsentRequest:
    msg = pb.UpdateConsentRequest(customer_id="c-fuzz-consent", consent={"email": True})
    msg.at.seconds = seconds
    return msg


@given(msg=consent_requests())
@FUZZ
# Accepted before: a consent dated 9999-12-31 that no later opt-out could override.
@example(msg=consent_at(YEAR_10000 - 1))
@example(msg=consent_at(YEAR_10000 + 1))
def test_update_consent_stores_only_plausible_times(
    decider: Decider, store: InteractionStore, msg: pb.UpdateConsentRequest
) -> None:
    now = time.time()
    try:
        customer_id, changes, at = consent_update(msg, RULESET, now)
    except RequestError as exc:
        assert_rejected_well(exc, msg)
        return
    assert 0 < at <= now + MAX_SKEW_SECONDS
    assert set(changes) <= set(RULESET.channels)
    store.update_consent(customer_id, changes, at)
    later_decide(decider, customer_id)
