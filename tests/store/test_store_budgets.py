"""Budget counters (volume constraints): the take_budget contract on every backend."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from store_helpers import FakeClock, StoreFactory

from nba.store import InteractionStore

# In the future for the Redis server's clock too (it expires keys by its own), and after the
# fake clock's start, so every backend counts these counters as live.
DAY_END = time.time() + 86400.0
WORKER = Path(__file__).with_name("budget_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_claims_are_granted_until_the_limit_then_refused_without_change(
    store: InteractionStore,
) -> None:
    claims = [("b|cap|2026-12-04", 3), ("b|all|total", 10)]
    assert store.take_budget(claims, DAY_END) == (True, [1, 1])
    assert store.take_budget(claims, DAY_END) == (True, [2, 2])
    assert store.take_budget(claims, DAY_END) == (True, [3, 3])
    # The first is full: nothing is added to the second either.
    assert store.take_budget(claims, DAY_END) == (False, [3, 3])
    assert store.take_budget([("b|all|total", 10)], DAY_END) == (True, [4])
    assert store.budget_counts("b|") == {"b|cap|2026-12-04": 3, "b|all|total": 4}
    assert store.budget_counts("b|cap|") == {"b|cap|2026-12-04": 3}
    assert store.budget_counts("b|%") == {}  # a prefix, never a pattern


def test_a_counter_claimed_twice_in_one_call_takes_two(store: InteractionStore) -> None:
    assert store.take_budget([("b|g|d", 3), ("b|g|d", 3)], DAY_END) == (True, [2, 2])
    assert store.take_budget([("b|g|d", 3), ("b|g|d", 3)], DAY_END) == (False, [2, 2])
    assert store.take_budget([("b|g|d", 3)], DAY_END) == (True, [3])


def test_a_limit_of_zero_grants_nothing_and_no_claims_grant_at_once(
    store: InteractionStore,
) -> None:
    assert store.take_budget([("b|never|d", 0)], DAY_END) == (False, [0])
    assert store.take_budget([], DAY_END) == (True, [])
    assert store.budget_counts() == {}


def test_a_raised_limit_grants_again_where_a_lower_one_refused(store: InteractionStore) -> None:
    """A reload may raise a limit, or pacing allow more later in the window."""
    assert store.take_budget([("b|p|d", 1)], DAY_END) == (True, [1])
    assert store.take_budget([("b|p|d", 1)], DAY_END) == (False, [1])
    assert store.take_budget([("b|p|d", 2)], DAY_END) == (True, [2])


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_counter_is_gone_when_its_window_ends(
    make_store: StoreFactory, request: pytest.FixtureRequest, clock: FakeClock, backend: str
) -> None:
    """On the fake clock; Redis expires keys by its own (the next, wall-clock test)."""
    url = "memory://" if backend == "memory" else request.getfixturevalue("sqlite_url")
    store = make_store(url)
    assert store.take_budget([("b|cap|d1", 1)], DAY_END) == (True, [1])
    assert store.take_budget([("b|cap|total", 5)], math.inf) == (True, [1])
    clock.now = DAY_END
    assert store.budget_counts() == {"b|cap|total": 1}
    assert store.take_budget([("b|cap|d1", 1)], DAY_END + 86400) == (True, [1])  # from 0 again
    assert store.sweep() == 0  # ended windows are not interactions
    assert store.budget_counts() == {"b|cap|total": 1, "b|cap|d1": 1}


def test_redis_counters_expire_at_the_window_end(make_store: StoreFactory, shared_url: str) -> None:
    store = make_store(shared_url, clock=time.time)
    assert store.take_budget([("b|short|d", 5)], time.time() + 0.3) == (True, [1])
    assert store.budget_counts() == {"b|short|d": 1}
    time.sleep(0.5)
    assert store.budget_counts() == {}
    assert store.take_budget([("b|short|d", 5)], time.time() + 60) == (True, [1])


@pytest.mark.parametrize(
    ("claims", "expires_at"),
    [
        ([("", 1)], DAY_END),
        ([("b|x", -1)], DAY_END),
        ([("b|x", True)], DAY_END),
        ([("b|x", 1.5)], DAY_END),
        ([("b|x", 1), ("b|x", 2)], DAY_END),
        ([("b|x", 1)], math.nan),
    ],
)
def test_bad_claims_are_refused_and_change_nothing(
    store: InteractionStore, claims: list[tuple[str, int]], expires_at: float
) -> None:
    with pytest.raises(ValueError):
        store.take_budget(claims, expires_at)
    assert store.budget_counts() == {}


def test_budgets_are_not_the_learning_counters(store: InteractionStore) -> None:
    store.take_budget([("b|cap|d", 5)], DAY_END)
    store.add_to_counters({"b|cap|d": 7.0})
    assert store.budget_counts() == {"b|cap|d": 1}
    assert store.counters() == {"b|cap|d": 7.0}


def test_threads_on_several_store_instances_never_pass_the_limit(
    make_store: StoreFactory, shared_url: str
) -> None:
    """Eight instances (eight workers) race for 100 units: exactly 100 are granted."""
    stores = [make_store(shared_url, clock=time.time) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    granted = [0] * len(stores)
    expires = time.time() + 600

    def take(n: int) -> None:
        barrier.wait()
        for _ in range(30):
            ok, _ = stores[n].take_budget([("b|race|d", 100), ("b|race|total", 1000)], expires)
            granted[n] += ok

    threads = [threading.Thread(target=take, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(granted) == 100
    assert stores[0].budget_counts() == {"b|race|d": 100, "b|race|total": 100}


def run_budget_workers(url: str, processes: int, tries: int, limit: int) -> list[int]:
    """Processes that each try `tries` claims of one budget at once; what each was granted."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(WORKER.parent)])}
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, str(tries), str(limit)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(processes)
    ]
    try:
        for proc in workers:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in workers:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in workers:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0
            results.append(int(out.strip()))
        return results
    finally:
        for proc in workers:
            proc.kill()
            proc.communicate()


def test_processes_sharing_a_store_grant_exactly_the_limit(
    make_store: StoreFactory, shared_url: str
) -> None:
    """Four processes try 150 claims each of a budget of 250: 250 granted in all, never more."""
    granted = run_budget_workers(shared_url, processes=4, tries=150, limit=250)
    assert sum(granted) == 250
    store = make_store(shared_url, clock=time.time)
    assert store.budget_counts() == {"b|procs|total": 250}
