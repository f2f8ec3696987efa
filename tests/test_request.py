"""Request validation: a malformed request names the field that is wrong."""

from __future__ import annotations

import math

import pytest

from nba.authoring.strategies import struct_of
from nba.errors import RequestError, echo
from nba.pipeline import validate as validate_module
from nba.pipeline.validate import (
    MAX_ID_LENGTH,
    MAX_LIST_ITEMS,
    RequestValidator,
    consent_update,
    outcome_record,
)
from nba.ruleset.loader import load_ruleset
from nba.ruleset.ruleset import RuleSet
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb
from tests.helpers import BASE, action, write_rules


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> RequestValidator:
    directory = tmp_path_factory.mktemp("rules")
    write_rules(directory, {"base.yaml": BASE, "a.yaml": "actions:\n" + action("a1")})
    return RequestValidator(load_ruleset(directory))


def message(**profile: object) -> pb.DecideRequest:
    msg = pb.DecideRequest(customer_id="c1", lifecycle_stage="active")
    msg.profile.CopyFrom(struct_of(profile or {"age": 30}))
    msg.touchpoint.channel = "web"
    return msg


def field_of(validator: RequestValidator, msg: pb.DecideRequest) -> tuple[str, str]:
    with pytest.raises(RequestError) as caught:
        validator.validate(msg)
    return caught.value.field, caught.value.message


def test_a_valid_request_is_typed(validator: RequestValidator) -> None:
    msg = message(age=30, income=1500.5, vip=True, region="north", products=["card"])
    request = validator.validate(msg, now=100.0)
    assert request.profile == {
        "age": 30,
        "income": 1500.5,
        "vip": True,
        "region": "north",
        "products": frozenset({"card"}),
    }
    assert (request.channel, request.max_results, request.as_of) == ("web", 3, 100.0)


@pytest.mark.parametrize(
    ("profile", "field", "fragment"),
    [
        ({"age": "thirty"}, "profile.age", "valid integer"),
        ({"age": 30.5}, "profile.age", "valid integer"),
        ({"age": 200}, "profile.age", "less than or equal to 130"),
        ({"age": 30, "income": -1}, "profile.income", "greater than or equal to 0"),
        ({"age": 30, "vip": "yes"}, "profile.vip", "valid boolean"),
        ({"age": 30, "region": "east"}, "profile.region", "'north' or 'south'"),
        (
            {"age": 30, "products": ["card", "boat"]},
            "profile.products",
            "'checking', 'card' or 'loan'",
        ),
        ({"age": 30, "agee": 3}, "profile.agee", "did you mean 'age'?"),
        ({"income": 3}, "profile.age", "required"),
        ({"age": 30, "nickname": 7}, "profile.nickname", "valid string"),
    ],
)
def test_profile_violations_name_the_attribute(
    validator: RequestValidator, profile: dict[str, object], field: str, fragment: str
) -> None:
    got_field, text = field_of(validator, message(**profile))
    assert got_field == field
    assert fragment in text


def test_whole_numbers_from_struct_doubles_are_ints(validator: RequestValidator) -> None:
    msg = message()
    msg.profile["age"] = 30.0  # Struct only has doubles
    assert validator.validate(msg).profile["age"] == 30


def test_unknown_stage_suggests_the_declared_one(validator: RequestValidator) -> None:
    msg = message()
    msg.lifecycle_stage = "at-risk"
    field, text = field_of(validator, msg)
    assert field == "lifecycle_stage" and "did you mean 'at_risk'?" in text


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: setattr(m, "customer_id", ""), "customer_id"),
        (lambda m: setattr(m.touchpoint, "channel", "fax"), "touchpoint.channel"),
        (lambda m: setattr(m, "max_results", 500), "max_results"),
        (lambda m: m.consent.update({"pigeon": True}), 'consent["pigeon"]'),
        (lambda m: m.preferred_channels.append("mail"), "preferred_channels[0]"),
        (lambda m: m.interactions.add(action_id="a1", channel="web"), "interactions[0].outcome"),
        (lambda m: m.interactions.add(action_id="a1", outcome=pb.CLICK), "interactions[0].at"),
    ],
)
def test_other_fields_are_named_too(validator: RequestValidator, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    msg = message()
    mutate(msg)
    assert field_of(validator, msg)[0] == field


def test_unset_channel_means_outbound(validator: RequestValidator) -> None:
    msg = message()
    msg.touchpoint.channel = ""
    assert validator.validate(msg).outbound
    msg.touchpoint.channel = "outbound"
    assert validator.validate(msg).outbound


# ------------------------------------------------------------------ hostile and broken input

YEAR_1 = -62_135_596_800  # 0001-01-01T00:00:00Z, protobuf's earliest Timestamp
YEAR_10000 = 253_402_300_800  # one second past protobuf's latest
NOW = 1_795_168_800.0  # 2026-11-20T10:00:00Z


@pytest.mark.parametrize(
    ("seconds", "nanos", "fragment"),
    [
        (YEAR_1, 0, "0001-01-01T00:00:00Z"),
        (YEAR_10000, 0, "outside year 1 to 9999"),
        (YEAR_10000 - 1, 0, "9999-12-31T23:59:59Z"),  # valid protobuf, past 2200
        (-1, 0, "1969-12-31T23:59:59Z"),
        (2**62, 0, "outside year 1 to 9999"),
        (1_700_000_000, -5, "nanos -5"),
        (1_700_000_000, 1_000_000_000, "nanos 1,000,000,000"),
    ],
)
def test_as_of_outside_1970_to_2200_names_the_field(
    validator: RequestValidator, seconds: int, nanos: int, fragment: str
) -> None:
    msg = message()
    msg.as_of.seconds, msg.as_of.nanos = seconds, nanos
    field, text = field_of(validator, msg)
    assert field == "as_of"
    assert fragment in text
    assert "2200-01-01" in text or "nanos" in text


def test_as_of_at_the_edges_of_the_range_is_accepted(validator: RequestValidator) -> None:
    msg = message()
    msg.as_of.seconds = 0
    assert validator.validate(msg).as_of == 0.0
    msg.as_of.seconds, msg.as_of.nanos = 7_258_118_399, 0  # 2199-12-31T23:59:59Z
    assert validator.validate(msg).as_of == 7_258_118_399.0


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(-5, 0), (YEAR_10000 - 1, 0), (1_700_000_000, -1), (1_700_000_000, 2**31 - 1)],
)
def test_interaction_times_out_of_range_name_the_item(
    validator: RequestValidator, seconds: int, nanos: int
) -> None:
    msg = message()
    msg.interactions.add(action_id="a1", channel="web", outcome=pb.CLICK).at.FromSeconds(10**9)
    bad = msg.interactions.add(action_id="a1", channel="web", outcome=pb.CLICK)
    bad.at.seconds, bad.at.nanos = seconds, nanos
    assert field_of(validator, msg)[0] == "interactions[1].at"


@pytest.mark.parametrize(
    ("number", "fragment"),
    [
        (math.nan, "finite number"),
        (math.inf, "finite number"),
        (-math.inf, "finite number"),
        (1e308, "less than or equal to 9007199254740992"),
        (-1e20, "greater than or equal to 0"),  # income has its own min: 0
    ],
)
def test_non_finite_and_huge_numbers_name_the_attribute(
    validator: RequestValidator, number: float, fragment: str
) -> None:
    field, text = field_of(validator, message(age=30, income=number))
    assert field == "profile.income"
    assert fragment in text


@pytest.mark.parametrize("declared", [True, False])
@pytest.mark.parametrize("container", ["struct", "list"])
def test_deeply_nested_values_are_rejected_not_a_recursion_error(
    validator: RequestValidator, declared: bool, container: str
) -> None:
    msg = message()
    key = "region" if declared else "regoin"
    if container == "struct":
        node = msg.profile.get_or_create_struct(key)
        for _ in range(5_000):
            node = node.get_or_create_struct("x")
    else:
        items = msg.profile.get_or_create_list(key)
        for _ in range(5_000):
            items = items.add_list()
    field, text = field_of(validator, msg)
    assert field == f"profile.{key}"
    assert ("got dict" in text or "got list" in text) if declared else "did you mean" in text


def test_a_list_longer_than_the_limit_is_rejected(validator: RequestValidator) -> None:
    msg = message()
    msg.profile.get_or_create_list("products").extend(["card"] * (MAX_LIST_ITEMS + 1))
    field, text = field_of(validator, msg)
    assert field == "profile.products" and "at most 1000" in text


def test_undeclared_keys_are_found_before_any_value_is_converted(
    validator: RequestValidator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20,000 undeclared keys cost one lookup, not 20,000 conversions."""
    converted = 0
    original = validate_module._value

    def counting(value: object, key: str) -> object:
        nonlocal converted
        converted += 1
        return original(value, key)  # type: ignore[arg-type]

    monkeypatch.setattr(validate_module, "_value", counting)
    msg = message()
    for i in range(20_000):
        msg.profile[f"extra_{i}"] = float(i)
    field, text = field_of(validator, msg)
    assert field.startswith("profile.extra_") and "not a declared profile attribute" in text
    assert converted <= len(validator.ruleset.attributes)


HUGE = "a" * 1_000_000


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: m.profile.update({"region": HUGE}), "profile.region"),
        (lambda m: m.profile.update({"nickname": HUGE}), "profile.nickname"),
        (lambda m: m.profile.update({HUGE: 1}), "profile." + "a" * 100 + "…"),
        (lambda m: setattr(m, "lifecycle_stage", HUGE), "lifecycle_stage"),
        (lambda m: setattr(m.touchpoint, "channel", HUGE), "touchpoint.channel"),
        (lambda m: m.consent.update({HUGE: True}), 'consent["' + "a" * 100 + '…"]'),
        (lambda m: m.preferred_channels.append(HUGE), "preferred_channels[0]"),
        (lambda m: setattr(m, "time_zone", HUGE), "time_zone"),
        (lambda m: setattr(m, "customer_id", HUGE), "customer_id"),
        (lambda m: setattr(m.touchpoint, "placement", HUGE), "touchpoint.placement"),
    ],
)
def test_a_huge_value_is_echoed_cut_to_a_short_message(  # type: ignore[no-untyped-def]
    validator: RequestValidator, mutate, field: str
) -> None:
    msg = message()
    mutate(msg)
    with pytest.raises(RequestError) as caught:
        validator.validate(msg)
    assert caught.value.field == field
    assert len(caught.value.message) <= 300
    assert len(str(caught.value)) <= 500
    if "'aaa" in caught.value.message:
        assert "…' (1,000,000 characters)" in caught.value.message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("short", "'short'"),
        ("a" * 150, "'" + "a" * 100 + "…' (150 characters)"),
        ("\x00" * 150, "'" + "\\x00" * 25 + "…' (150 characters)"),
        (1.5, "1.5"),
    ],
)
def test_echo_quotes_and_cuts(value: object, shown: str) -> None:
    assert echo(value) == shown


def test_ids_have_a_length_limit(validator: RequestValidator) -> None:
    msg = message()
    msg.customer_id = "c" * (MAX_ID_LENGTH + 1)
    field, text = field_of(validator, msg)
    assert field == "customer_id" and "257 characters long; expected at most 256" in text
    msg = message()
    msg.interactions.add(action_id="a" * 300, channel="web", outcome=pb.CLICK).at.FromSeconds(9)
    assert field_of(validator, msg)[0] == "interactions[0].action_id"


# ------------------------------------------------------------- RecordOutcome / UpdateConsent


def outcome(**fields: object) -> pb.RecordOutcomeRequest:
    msg = pb.RecordOutcomeRequest(customer_id="c1")
    item = msg.interaction
    item.action_id, item.channel, item.outcome = "a1", "web", pb.CLICK
    item.at.FromSeconds(int(NOW) - 60)
    for name, value in fields.items():
        setattr(item, name, value)
    return msg


def outcome_field(msg: pb.RecordOutcomeRequest, ruleset: RuleSet) -> tuple[str, str]:
    with pytest.raises(RequestError) as caught:
        outcome_record(msg, NOW, ruleset)
    return caught.value.field, caught.value.message


def test_a_future_dated_outcome_is_rejected(validator: RequestValidator) -> None:
    msg = outcome()
    msg.interaction.at.FromSeconds(YEAR_10000 - 1)
    field, text = outcome_field(msg, validator.ruleset)
    assert field == "interaction.at" and "at most 300 s past the server's clock" in text
    msg.interaction.at.FromSeconds(int(NOW) + 299)  # clock skew within the allowance
    assert outcome_record(msg, NOW, validator.ruleset)[1].at == NOW + 299
    with pytest.raises(RequestError):
        outcome_record(msg, NOW, validator.ruleset, max_skew_seconds=60)


@pytest.mark.parametrize(("seconds", "nanos"), [(0, 0), (YEAR_1, 0), (10**9, -1)])
def test_outcome_times_before_1970_or_invalid_are_rejected(
    validator: RequestValidator, seconds: int, nanos: int
) -> None:
    msg = outcome()
    msg.interaction.at.seconds, msg.interaction.at.nanos = seconds, nanos
    assert outcome_field(msg, validator.ruleset)[0] == "interaction.at"


def test_an_outcome_on_an_unknown_channel_suggests_the_declared_one(
    validator: RequestValidator,
) -> None:
    field, text = outcome_field(outcome(channel="webb"), validator.ruleset)
    assert field == "interaction.channel" and "did you mean 'web'?" in text


def test_a_well_formed_unknown_action_id_is_recorded_a_malformed_one_is_not(
    validator: RequestValidator,
) -> None:
    """Late outcomes of an action a reload removed still count; no rule file has 'a-1'."""
    _, recorded = outcome_record(outcome(action_id="retired_offer"), NOW, validator.ruleset)
    assert recorded.action_id == "retired_offer"
    for bad in ("A1", "a-1", "a1\n", "1a", "a" * 65):
        field, text = outcome_field(outcome(action_id=bad), validator.ruleset)
        assert field == "interaction.action_id" and "snake_case" in text
    assert "did you mean 'a1'?" in outcome_field(outcome(action_id="a-1"), validator.ruleset)[1]


def test_outcome_ids_have_a_length_limit(validator: RequestValidator) -> None:
    for name in ("customer_id", "interaction_id", "decision_id"):
        msg = outcome()
        setattr(msg, name, "x" * (MAX_ID_LENGTH + 1))
        assert outcome_field(msg, validator.ruleset)[0] == name


def test_a_future_dated_consent_cannot_pin_consent_against_a_later_opt_out(
    validator: RequestValidator,
) -> None:
    store = open_store("memory://", retention_seconds=86400)
    pinned = pb.UpdateConsentRequest(customer_id="c1", consent={"email": True})
    pinned.at.FromSeconds(YEAR_10000 - 1)
    opt_out = pb.UpdateConsentRequest(customer_id="c1", consent={"email": False})
    rejected = []
    for update in (pinned, opt_out):  # the opt-out is real, and newer than the server's now
        try:
            store.update_consent(*consent_update(update, validator.ruleset, NOW))
        except RequestError as exc:
            rejected.append(exc.field)
    assert rejected == ["at"]
    assert store.consent("c1") == {"email": False}
