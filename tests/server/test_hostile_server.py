"""What a hostile caller gets from a real `nba serve` process.

Pinned: undecodable bytes, invalid UTF-8 and a Struct nested 34 deep, sent raw, answer
INVALID_ARGUMENT naming the message, with no traceback in the server's stderr and at
most a line per 10 s in its log; a request past --max-request-bytes is
RESOURCE_EXHAUSTED; fuzzed Decide, RecordOutcome and UpdateConsent requests (hypothesis
over every field, ~2,000 in all) answer only OK or INVALID_ARGUMENT; calls past
--max-in-flight are refused at once with RESOURCE_EXHAUSTED, in the service layer too;
--no-reflection hides the schema; status and reasons never show an absolute path.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nba.server.limits import InFlight, OverloadedError
from nba.server.reload import RuleSetHolder
from nba.server.service import DecisionService
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import RULES, example
from tests.pipeline.test_hostile_input import (
    BASES,
    Mutation,
    consent_requests,
    decide_mutations,
    outcome_requests,
)
from tests.server.nba_process import ServerProcess, serving

OK_OR_INVALID = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
SERVER_FUZZ = settings(
    max_examples=700,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples each run: a server test must not flake
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    # 4 MiB: the fuzz sends megabyte strings on purpose; the size limit has its own test.
    with serving("--max-request-bytes", str(4 * 1024 * 1024), "--threads", "4") as running:
        yield running


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


def raw_call(channel: grpc.Channel, method: str, data: bytes) -> grpc.RpcError:
    call = channel.unary_unary(
        f"/nba.v1.DecisionService/{method}", request_serializer=None, response_deserializer=None
    )
    with pytest.raises(grpc.RpcError) as failed:
        call(data, timeout=10)
    return failed.value


def deep_struct_request(depth: int) -> bytes:
    msg = example("web_active_travel_money.json")  # valid but for the nesting
    struct = msg.profile
    for _ in range(depth):
        struct = struct.get_or_create_struct("k")
    return msg.SerializeToString()


INVALID_UTF8_CUSTOMER_ID = b"\x0a\x02\xc3\x28"  # field 1 (customer_id), 2 bytes, not UTF-8
UNDECODABLE = {
    "garbage": b"\xff\xff\xff\xff",
    "truncated": b"\x0a\x7fabc",
    "invalid-utf8": INVALID_UTF8_CUSTOMER_ID,
    "struct-34-deep": deep_struct_request(34),
}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["Decide", "RecordOutcome", "UpdateConsent", "GetRuleSetStatus"])
def test_undecodable_bytes_are_invalid_argument_naming_the_message_without_a_traceback(
    server: ServerProcess, channel: grpc.Channel, method: str
) -> None:
    message = f"{method}Request" if method != "GetRuleSetStatus" else "GetRuleSetStatusRequest"
    for name, data in UNDECODABLE.items():
        if method != "Decide" and name == "struct-34-deep":
            continue  # only DecideRequest carries a Struct
        if method == "GetRuleSetStatus" and name == "invalid-utf8":
            continue  # it has no field 1: protobuf keeps unknown bytes unread
        failed = raw_call(channel, method, data)
        assert failed.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, failed.details())
        assert failed.details().startswith(f"{message}: undecodable bytes"), name
    time.sleep(0.3)  # what the server logs about them has reached the reader
    assert "Traceback" not in server.stderr
    assert "Exception deserializing" not in server.stderr


@pytest.mark.slow
def test_a_flood_of_undecodable_requests_is_rate_limited_in_the_log(
    server: ServerProcess, channel: grpc.Channel
) -> None:
    before = server.stderr.count("undecodable DecideRequest")
    for _ in range(50):
        raw_call(channel, "Decide", b"\xff\xff")
    time.sleep(0.3)
    assert server.stderr.count("undecodable DecideRequest") - before <= 1


@pytest.mark.slow
def test_a_struct_nested_33_deep_still_decodes(channel: grpc.Channel) -> None:
    """The limit is protobuf's own: what it parses reaches validation, which names the key."""
    failed = raw_call(channel, "Decide", deep_struct_request(33))
    assert failed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.details().startswith("profile")


@pytest.mark.slow
def test_a_request_past_max_request_bytes_is_resource_exhausted(tmp_path: Path) -> None:
    with (
        serving("--max-request-bytes", "65536") as small,
        grpc.insecure_channel(f"127.0.0.1:{small.port}") as channel,
    ):
        stub = pb_grpc.DecisionServiceStub(channel)
        request = example("web_active_travel_money.json")
        assert stub.Decide(request, timeout=10).recommendations  # under the limit: decides
        request.profile["region"] = "x" * 70_000
        with pytest.raises(grpc.RpcError) as failed:
            stub.Decide(request, timeout=10)
    assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def status_of(call: Any, msg: Message) -> grpc.StatusCode:
    try:
        call(msg, timeout=30)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        assert len(exc.details() or "") <= 400  # short messages, whatever was echoed
        return code
    return grpc.StatusCode.OK


@pytest.mark.slow
@given(
    base=st.integers(0, len(BASES) - 1).map(BASES.__getitem__),
    mutations=st.lists(decide_mutations(), max_size=3),
)
@SERVER_FUZZ
def test_fuzzed_decides_answer_ok_or_invalid_argument(
    channel: grpc.Channel, base: pb.DecideRequest, mutations: list[Mutation]
) -> None:
    msg = pb.DecideRequest()
    msg.CopyFrom(base)
    for mutate in mutations:
        mutate(msg)
    assert status_of(pb_grpc.DecisionServiceStub(channel).Decide, msg) in OK_OR_INVALID


@pytest.mark.slow
@given(msg=outcome_requests())
@SERVER_FUZZ
def test_fuzzed_outcomes_answer_ok_or_invalid_argument(
    channel: grpc.Channel, msg: pb.RecordOutcomeRequest
) -> None:
    assert status_of(pb_grpc.DecisionServiceStub(channel).RecordOutcome, msg) in OK_OR_INVALID


@pytest.mark.slow
@given(msg=consent_requests())
@SERVER_FUZZ
def test_fuzzed_consent_updates_answer_ok_or_invalid_argument(
    channel: grpc.Channel, msg: pb.UpdateConsentRequest
) -> None:
    assert status_of(pb_grpc.DecisionServiceStub(channel).UpdateConsent, msg) in OK_OR_INVALID


@pytest.mark.slow
def test_calls_past_max_in_flight_are_refused_at_once_and_reflection_can_be_off() -> None:
    with (
        serving("--threads", "2", "--max-in-flight", "2", "--no-reflection") as busy,
        grpc.insecure_channel(f"127.0.0.1:{busy.port}") as channel,
    ):
        stub = pb_grpc.DecisionServiceStub(channel)
        request = example("web_active_travel_money.json")
        request.explain = True
        stub.Decide(request, timeout=10)  # warm: the first call connects
        started = time.monotonic()
        calls = [stub.Decide.future(request, timeout=10) for _ in range(60)]
        codes = [call.code() for call in calls]
        elapsed = time.monotonic() - started
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        listing = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        with pytest.raises(grpc.RpcError) as hidden:
            list(listing)
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) > 0
    assert codes.count(grpc.StatusCode.OK) >= 2
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert elapsed < 10  # refused, not queued behind the others
    assert hidden.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_service_layer_refuses_past_its_in_flight_limit_for_every_face() -> None:
    holder = RuleSetHolder(RULES, "reference")
    holder.load()
    service = DecisionService(holder, in_flight=InFlight(1))
    request = example("web_active_travel_money.json")
    try:
        assert service.decide(request).recommendations
        assert service.in_flight is not None
        with (
            service.in_flight.admitted(),  # another call holds the only slot
            pytest.raises(OverloadedError, match="1 calls in flight"),
        ):
            service.decide(request)
        assert service.decide(request).recommendations  # the slot came back
    finally:
        holder.close()


def strings_in(msg: Message) -> Iterator[str]:
    """Every string anywhere in a message (repeated and nested fields included)."""
    for field, value in msg.ListFields():
        values = value if field.is_repeated else [value]
        for item in values:
            if isinstance(item, Message):
                yield from strings_in(item)
            elif isinstance(item, str):
                yield item


@pytest.mark.slow
def test_status_and_reasons_never_show_an_absolute_path(tmp_path: Path) -> None:
    rules = shutil.copytree(RULES, tmp_path / "rules")
    with serving("--rules", str(rules)) as running:
        cards = rules / "actions/cards.yaml"
        cards.write_text(cards.read_text() + "\n  - id: [broken\n")
        running.process.send_signal(signal.SIGHUP)
        running.wait_for("rule files rejected")
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            status = stub.GetRuleSetStatus(pb.GetRuleSetStatusRequest(), timeout=10)
            shown = list(strings_in(status))
            for path in sorted((RULES / "examples").glob("*.json")):
                request = example(path.name)
                request.explain = True
                shown += strings_in(stub.Decide(request, timeout=10))
    assert any("actions/cards.yaml" in text for text in status.last_reload_errors)
    assert any(text.endswith(".yaml") for text in shown)  # the reasons do name their files
    # (links in treatments start with "/" too: what must not appear is where the files are)
    leaked = [text for text in shown if str(tmp_path) in text or str(Path.cwd()) in text]
    leaked += [text for text in shown if ".yaml" in text and text.startswith("/")]
    assert not leaked
