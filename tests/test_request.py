"""Request validation: a malformed request names the field that is wrong."""

from __future__ import annotations

import pytest

from nba.authoring.strategies import struct_of
from nba.errors import RequestError
from nba.pipeline.validate import RequestValidator
from nba.ruleset.loader import load_ruleset
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
