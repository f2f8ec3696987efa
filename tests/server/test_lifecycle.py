"""Stopping, dying and starting twice, on real `nba serve` processes (issue 12, lifecycle)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import REPO
from tests.server.nba_process import READY, exited, finished, nba_serve, serving, stop

IN_FLIGHT = 50


def slow_request() -> pb.DecideRequest:
    """A decision that takes milliseconds: 1,000 interactions (the most a request may carry)."""
    message = pb.DecideRequest(customer_id="c-drain", lifecycle_stage="active")
    message.profile.update({"age": 40, "products": ["checking"]})
    message.touchpoint.channel = "web"
    now = int(time.time())
    for i in range(1000):
        item = message.interactions.add(action_id="card_cashback", channel="web", outcome=1)
        item.at.FromSeconds(now - 3600 - i)
    return message


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def shared_store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


def test_sigterm_finishes_every_call_in_flight_and_health_goes_not_serving_first() -> None:
    with serving("--max-in-flight", str(IN_FLIGHT * 2), "--grace", "10") as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            request = slow_request()
            assert stub.Decide(request, timeout=30).recommendations
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=30
            )
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            calls = [stub.Decide.future(request, timeout=30) for _ in range(IN_FLIGHT)]
            time.sleep(0.02)  # sent: they are in flight when the signal arrives
            server.process.send_signal(signal.SIGTERM)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            codes = [call.code() for call in calls]
        assert codes == [grpc.StatusCode.OK] * IN_FLIGHT
        assert exited(server, timeout=30) == 0
        assert "draining calls in flight (10 s grace)" in server.stderr


def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    server = nba_serve("--workers", "2", "--store", shared_store(tmp_path))
    workers: list[int] = []
    try:
        server.wait_for("nba ready on", timeout=90)
        workers = children(server.process.pid)
        assert len(workers) == 2
        server.process.kill()
        finished(server, server.process.wait(timeout=10))
        deadline = time.monotonic() + 5
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if running(pid)], "workers outlived the supervisor"
    finally:
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        stop(server)


def test_a_second_server_on_the_port_of_a_running_one_exits_with_a_clear_message(
    tmp_path: Path,
) -> None:
    store = shared_store(tmp_path)
    with serving("--workers", "2", "--store", store) as first:
        second = nba_serve("--workers", "2", "--store", store, "--port", str(first.port))
        code = exited(second, timeout=60)
        assert code == 1
        assert f"port 127.0.0.1:{first.port} is already in use" in second.stderr
        assert "nba ready" not in second.stderr
    one = nba_serve("--port", str(first.port))  # free again once the first has stopped
    match = READY.search(one.wait_for("nba ready on", timeout=60))
    stop(one)
    assert match is not None and int(match.group(1)) == first.port


def test_sigterm_while_workers_start_stops_them_all(tmp_path: Path) -> None:
    server = nba_serve("--workers", "2", "--store", shared_store(tmp_path))
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(workers) < 2 and time.monotonic() < deadline:  # forked, not yet serving
            workers = children(server.process.pid)
            time.sleep(0.01)
        assert len(workers) == 2
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        assert not [pid for pid in workers if running(pid)]
        assert "nba ready" not in "".join(server.lines)
    finally:
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        if server.process.poll() is None:
            server.process.kill()
        finished(server, server.process.wait(timeout=10))


def test_calls_arriving_during_the_drain_are_still_answered() -> None:
    """Between SIGTERM and the stop, a load balancer may still send calls: they succeed."""
    with serving("--max-in-flight", "64", "--grace", "10") as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            request = slow_request()
            stub.Decide(request, timeout=30)
            failures: list[grpc.StatusCode] = []
            answered_from: list[float] = []  # when each answered call was sent
            done = threading.Event()

            def steady() -> None:
                # one call after another, as a client on an open connection does
                while not done.is_set():
                    sent = time.monotonic()
                    try:
                        stub.Decide(request, timeout=30)
                    except grpc.RpcError as exc:
                        failures.append(exc.code())
                        return
                    answered_from.append(sent)

            clients = [threading.Thread(target=steady) for _ in range(4)]
            for client in clients:
                client.start()
            time.sleep(0.2)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.1)  # calls keep arriving in the drain
            done.set()
            for client in clients:
                client.join(timeout=30)
        # the server listened until the clients stopped: nothing failed, and calls sent
        # after the signal were answered
        assert failures == []
        assert sum(sent > signalled for sent in answered_from) >= 4
        assert exited(server, timeout=30) == 0


def test_the_grace_option_rejects_a_negative_value() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nba", "serve", "--grace", "-1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--grace" in result.stderr
