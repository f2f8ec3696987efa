"""A real `nba serve` on a Redis of the test's own that hangs, is down at start, and returns."""

from __future__ import annotations

import signal
import subprocess
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import example
from tests.server.nba_process import serving

pytestmark = pytest.mark.redis
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def store_health(channel: grpc.Channel) -> int:
    request = health_pb2.HealthCheckRequest(service="nba.store")
    return health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status


def wait_for_health(channel: grpc.Channel, status: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while store_health(channel) != status:
        assert time.monotonic() < deadline, f"nba.store never became {status}"
        time.sleep(0.05)


def test_a_hung_store_keeps_decide_within_its_deadline_and_health_says_so(
    own_redis: tuple[subprocess.Popen[bytes], int],
) -> None:
    redis, port = own_redis
    with serving("--store", f"redis://127.0.0.1:{port}/0") as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            request = example("mobile_app_dismissed_cashback.json")
            assert not stub.Decide(request, timeout=5).degraded
            assert store_health(channel) == SERVING
            redis.send_signal(signal.SIGSTOP)
            try:
                answered, slow = [], 0
                for _ in range(5):  # a loaded CI machine may stretch a 0.25 s timeout past 0.3 s
                    started = time.monotonic()
                    answered.append(stub.Decide(request, timeout=5).degraded)
                    slow += time.monotonic() - started > 0.15
                assert slow <= 3  # the timeouts that open the circuit, no more
                for _ in range(20):
                    answered.append(stub.Decide(request, timeout=0.3).degraded)  # raises if late
                assert all(answered)  # marketing withheld: consent could not be read
                assert store_health(channel) == NOT_SERVING
                started = time.monotonic()
                with pytest.raises(grpc.RpcError) as refused:
                    stub.RecordOutcome(
                        pb.RecordOutcomeRequest(
                            customer_id="c1",
                            interaction=pb.Interaction(
                                action_id="card_cashback", channel="web", outcome=pb.CLICK
                            ),
                        ),
                        timeout=5,
                    )
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() - started < 0.1
            finally:
                redis.send_signal(signal.SIGCONT)
            wait_for_health(channel, SERVING)
            assert not stub.Decide(request, timeout=5).degraded
        assert "interaction store unavailable" in server.stderr


def test_a_store_down_at_start_up_is_logged_and_the_server_serves_degraded(
    own_redis: tuple[subprocess.Popen[bytes], int],
) -> None:
    redis, port = own_redis
    redis.kill()
    redis.wait(timeout=10)
    with serving("--store", f"redis://127.0.0.1:{port}/0") as server:
        ready = server.wait_for("nba ready on")
        assert "UNREACHABLE: deciding degraded" in ready
        assert "WARNING" in ready
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            assert store_health(channel) == NOT_SERVING
            response = pb_grpc.DecisionServiceStub(channel).Decide(
                example("mobile_app_dismissed_cashback.json"), timeout=5
            )
            assert response.degraded
            assert all(r.purpose == "service" for r in response.recommendations)
