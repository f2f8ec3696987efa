"""The circuit breaker on a real Redis of the test's own that hangs (SIGSTOP) and comes back."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest

from nba.errors import StoreError
from nba.pipeline.types import Interaction
from nba.store import open_store
from nba.store.guarded import GuardedStore, StoreUnavailableError

pytestmark = pytest.mark.redis


def click(at: float) -> Interaction:
    return Interaction("card_cashback", "web", 3, at)


def guarded_redis(port: int, probe_seconds: float = 0.2) -> GuardedStore:
    store = open_store(f"redis://127.0.0.1:{port}/0", retention_seconds=3600)
    return GuardedStore(store, failures_to_open=3, probe_seconds=probe_seconds)


def test_a_hung_store_costs_three_timeouts_then_fails_fast_and_recovers_by_itself(
    own_redis: tuple[subprocess.Popen[bytes], int],
) -> None:
    redis, port = own_redis
    store = guarded_redis(port)
    heard: list[bool] = []
    changed = threading.Event()
    store.add_listener(lambda available: (heard.append(available), changed.set()))
    try:
        assert store.record("c1", click(time.time()))
        redis.send_signal(signal.SIGSTOP)
        slow = []
        for _ in range(3):  # each waits out the socket timeout (0.25 s)
            started = time.monotonic()
            with pytest.raises(StoreError):
                store.snapshot("c1", 0, True)
            slow.append(time.monotonic() - started)
        assert min(slow) >= 0.2
        assert not store.available and heard == [False]
        started = time.monotonic()
        for _ in range(100):
            with pytest.raises(StoreUnavailableError):
                store.snapshot("c1", 0, True)
        assert time.monotonic() - started < 0.05  # 100 calls, no waiting
        changed.clear()
        redis.send_signal(signal.SIGCONT)
        assert changed.wait(timeout=5), "the prober did not notice the store came back"
        assert store.available and heard == [False, True]
        history, _ = store.snapshot("c1", 0, True)
        assert [i.action_id for i in history] == ["card_cashback"]
    finally:
        redis.send_signal(signal.SIGCONT)
        store.close()


def test_one_success_between_failures_keeps_the_circuit_closed(
    own_redis: tuple[subprocess.Popen[bytes], int],
) -> None:
    """Only failures in a row open it: a flaky store is slow sometimes, not cut off."""
    redis, port = own_redis
    store = guarded_redis(port)
    try:
        for _ in range(3):
            redis.send_signal(signal.SIGSTOP)
            for _ in range(2):
                with pytest.raises(StoreError):
                    store.ping()
            redis.send_signal(signal.SIGCONT)
            store.ping()
        assert store.available
    finally:
        redis.send_signal(signal.SIGCONT)
        store.close()


def test_an_unreachable_store_at_start_is_found_at_once(
    own_redis: tuple[subprocess.Popen[bytes], int],
) -> None:
    redis, port = own_redis
    redis.kill()
    redis.wait(timeout=10)
    store = guarded_redis(port, probe_seconds=60)
    try:
        assert not store.check_now()
        assert not store.available
        with pytest.raises(StoreUnavailableError):
            store.record("c1", click(time.time()))
    finally:
        store.close()
