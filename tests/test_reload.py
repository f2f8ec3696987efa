"""Hot reload: edits are picked up live, a broken edit never serves, no request fails."""

from __future__ import annotations

import re
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nba.errors import EngineError
from nba.server.grpc_face import RULES_HEALTH, build_server
from nba.server.reload import LoadResult, RuleSetHolder, watch
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import RULES, example
from tests.helpers import served

CARDS = "actions/cards.yaml"


def copy_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Traffic:
    """Client threads calling Decide nonstop, remembering every outcome."""

    def __init__(self, port: int, threads: int = 4) -> None:
        self.port = port
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self) -> None:
        request = example("call_center_at_risk.json")
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            while not self.stop.is_set():
                try:
                    response = stub.Decide(request, timeout=10)
                except grpc.RpcError as exc:
                    with self.lock:
                        self.failures.append(f"{exc.code()}: {exc.details()}")
                    continue
                with self.lock:
                    self.versions[response.ruleset_version] += 1

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def seen(self, version: str) -> int:
        with self.lock:
            return self.versions[version]


@pytest.mark.slow
def test_good_broken_and_fixed_edits_under_traffic(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    cards = rules / CARDS
    original = cards.read_text()
    holder = RuleSetHolder(rules, "durable")
    first = holder.load()
    running = build_server(holder, "127.0.0.1", 0, threads=8)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(holder, stop, 100), daemon=True)
    watcher.start()
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{running.port}"))

    def rules_health() -> int:
        request = health_pb2.HealthCheckRequest(service=RULES_HEALTH)
        return health.Check(request, timeout=5).status

    try:
        with Traffic(running.port) as traffic:
            v0 = first.version
            wait_for(lambda: traffic.seen(v0) > 20, "traffic on the first version")
            time.sleep(0.3)  # let the watcher settle before the first edit

            cards.write_text(original.replace("value: 120", "value: 121", 1))  # a good edit
            wait_for(lambda: holder.current.version != v0, "the good edit to go live")
            v1 = holder.current.version
            wait_for(lambda: traffic.seen(v1) > 20, "traffic on the edited version")

            cards.write_text(original + "\n  - id: [broken\n")  # a broken edit
            wait_for(lambda: holder.state.last_errors != [], "the broken edit to be rejected")
            assert holder.current.version == v1
            assert rules_health() == health_pb2.HealthCheckResponse.NOT_SERVING
            assert any(
                re.match(r".*actions/cards\.yaml:\d+:\d+: ", e) for e in holder.state.last_errors
            )
            served_while_broken = traffic.seen(v1)
            wait_for(lambda: traffic.seen(v1) > served_while_broken + 20, "service while broken")

            cards.write_text(original.replace("value: 120", "value: 122", 1))  # the fix
            wait_for(lambda: holder.current.version not in (v0, v1), "the fix to go live")
            v2 = holder.current.version
            wait_for(lambda: traffic.seen(v2) > 20, "traffic on the fixed version")
            assert rules_health() == health_pb2.HealthCheckResponse.SERVING
            assert holder.state.last_errors == []
        assert traffic.failures == []
        assert set(traffic.versions) == {v0, v1, v2}
        assert sum(traffic.versions.values()) > 100
    finally:
        stop.set()
        running.server.stop(grace=None)
        holder.close()
    # the replaced rule sets were freed once their last request finished
    with pytest.raises(EngineError, match="closed"):
        first.engine.fire(first.validator.validate(example("call_center_at_risk.json")))


def test_a_request_in_flight_keeps_its_rule_set_until_it_ends(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    holder = RuleSetHolder(rules, "durable")
    holder.load()
    request = example("web_prospect_homepage.json")
    with holder.lease() as old:
        (rules / CARDS).write_text(
            (rules / CARDS).read_text().replace("value: 120", "value: 99", 1)
        )
        assert holder.reload()
        assert holder.current is not old
        assert old.decide(request).ruleset_version == old.version  # still usable in flight
    with pytest.raises(EngineError, match="closed"):
        old.decide(request)  # freed once the lease ended
    holder.close()


@pytest.mark.slow
def test_sighup_reloads_a_running_server(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    args = ("--rules", str(rules), "--port", "0", "--store", "memory://", "--workers", "1")
    with (
        served(*args, "--no-watch") as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        stub = pb_grpc.DecisionServiceStub(channel)
        before = stub.GetRuleSetStatus(pb.GetRuleSetStatusRequest(), timeout=5)
        cards = rules / CARDS
        cards.write_text(cards.read_text().replace("value: 120", "value: 130", 1))
        server.process.send_signal(signal.SIGHUP)
        changed = next(line for line in server.lines if "live" in line or "rejected" in line)
        assert f"rule set {before.ruleset_version} -> " in changed
        after = stub.GetRuleSetStatus(pb.GetRuleSetStatusRequest(), timeout=5)
        assert after.ruleset_version != before.ruleset_version
        response = stub.Decide(example("call_center_at_risk.json"), timeout=5)
        assert response.ruleset_version == after.ruleset_version


@pytest.mark.slow
def test_reloads_do_not_leak_the_replaced_rule_sets(tmp_path: Path) -> None:
    """Each bank-set compile takes ~10 MB inside durable_rules; replaced ones are freed."""
    import resource

    rules = copy_rules(tmp_path)
    cards = rules / CARDS
    original = cards.read_text()
    holder = RuleSetHolder(rules, "durable")
    holder.load()
    request = example("call_center_at_risk.json")

    def reload_and_use(value: int) -> None:
        cards.write_text(original.replace("value: 120", f"value: {value}", 1))
        assert holder.reload()
        with holder.lease() as decider:
            decider.decide(request)

    for value in range(200, 205):  # warm up allocator pools
        reload_and_use(value)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for value in range(300, 330):
        reload_and_use(value)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    holder.close()
    assert grown_mb < 60, f"memory grew {grown_mb:.0f} MB over 30 reloads"


def test_every_listener_hears_every_load_and_a_failing_one_stops_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = copy_rules(tmp_path)
    cards = rules / CARDS
    original = cards.read_text()
    holder = RuleSetHolder(rules, "reference")
    broken_heard: list[LoadResult] = []
    heard: list[LoadResult] = []

    def broken_listener(result: LoadResult) -> None:
        broken_heard.append(result)
        raise RuntimeError("a listener with a bug")

    holder.add_listener(broken_listener)  # first: the one after it must still hear
    holder.add_listener(heard.append)
    first = holder.load()
    cards.write_text(original.replace("value: 120", "value: 121", 1))
    assert holder.reload()  # the failing listener does not fail the reload
    second = holder.current.version
    cards.write_text(original + "\n  - id: [broken\n")
    assert not holder.reload()
    holder.close()

    assert broken_heard == heard
    assert [(r.loaded, r.serving) for r in heard] == [
        (True, first.version),
        (True, second),
        (False, second),  # rejected: the last good set still serves
    ]
    assert second != first.version
    assert heard[0].errors == heard[1].errors == ()
    assert any(re.match(r".*actions/cards\.yaml:\d+:\d+: ", e) for e in heard[2].errors)
    failures = [r for r in caplog.records if "rule-set listener failed" in r.getMessage()]
    assert len(failures) == 3 and all(r.exc_info for r in failures)
