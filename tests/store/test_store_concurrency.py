"""Threads, processes and kill -9 against the backends that are shared."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from store_helpers import StoreFactory, consent_updates, expected_consent

from nba.pipeline.types import Interaction
from nba.store import InteractionStore

THREADS = 8
PER_THREAD = 200
RETENTION = 10 * 365 * 86400.0  # far longer than the wall-clock timestamps' age
WORKER = Path(__file__).with_name("store_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def run_threads(target: Callable[[int], None]) -> None:
    """Runs target(0..THREADS-1) in threads released together; re-raises their errors."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            target(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_concurrent_records_are_all_kept(make_store: StoreFactory, shared_url: str) -> None:
    store = make_store(shared_url, retention_seconds=RETENTION, clock=time.time)
    now = time.time()

    def record(n: int) -> None:
        for i in range(PER_THREAD):
            interaction = Interaction("offer", "web", 1, now + i * 1e-3, f"t{n}-{i}")
            assert store.record("c-1", interaction) is True

    run_threads(record)

    history = store.history("c-1", since=0)
    assert len(history) == THREADS * PER_THREAD
    assert len({i.interaction_id for i in history}) == THREADS * PER_THREAD


@pytest.mark.parametrize("shared_instance", [True, False], ids=["one-store", "store-per-thread"])
def test_the_same_interaction_from_many_threads_is_recorded_once(
    make_store: StoreFactory, shared_url: str, shared_instance: bool
) -> None:
    """Each thread records the same 50 ids in the same order, racing on every one; with a
    store per thread this is several replicas recording one retry at once."""
    count = 1 if shared_instance else THREADS
    stores = [
        make_store(shared_url, retention_seconds=RETENTION, clock=time.time) for _ in range(count)
    ]
    now = time.time()
    wins = [0] * THREADS

    def record(n: int) -> None:
        store = stores[n % len(stores)]
        for i in range(50):
            wins[n] += store.record("c-1", Interaction("offer", "web", 1, now, f"same-{i}"))

    run_threads(record)

    assert sum(wins) == 50
    assert len(stores[0].history("c-1", since=0)) == 50


def test_memory_store_is_thread_safe(make_store: StoreFactory) -> None:
    store = make_store("memory://", retention_seconds=RETENTION, clock=time.time)
    now = time.time()
    wins = [0] * THREADS

    def record(n: int) -> None:
        for i in range(PER_THREAD):
            wins[n] += store.record("c-1", Interaction("o", "web", 1, now + i, f"t{n}-{i}"))
            wins[n] += store.record("c-1", Interaction("o", "web", 1, now, f"same-{i}"))

    run_threads(record)

    assert sum(wins) == THREADS * PER_THREAD + PER_THREAD
    assert len(store.history("c-1", since=0)) == THREADS * PER_THREAD + PER_THREAD


def start_worker(url: str, prefix: str, count: int, *flags: str) -> subprocess.Popen[str]:
    """A store_worker.py process that waits for a line on stdin (see its docstring)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(WORKER.parent)])}
    argv = [sys.executable, str(WORKER), url, "c-1", prefix, str(count)]
    proc = subprocess.Popen(
        [*argv, *flags],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def run_workers(url: str, count: int, *flags: str, processes: int = 2) -> None:
    """Starts the workers, releases them together once all are ready, checks they succeed.
    ``{n}`` in a flag becomes the worker's number."""
    workers = [
        start_worker(url, f"p{n}", count, *(flag.format(n=n) for flag in flags))
        for n in range(processes)
    ]
    try:
        for proc in workers:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in workers:
            out, _ = proc.communicate(timeout=30)
            assert (proc.returncode, out.strip()) == (0, "ok")
    finally:
        for proc in workers:
            proc.kill()
            proc.communicate()


def test_two_processes_record_concurrently(make_store: StoreFactory, shared_url: str) -> None:
    run_workers(shared_url, 300)

    store = make_store(shared_url, retention_seconds=RETENTION, clock=time.time)
    ids = {i.interaction_id for i in store.history("c-1", since=0)}
    assert ids == {f"p{n}-{i}" for n in range(2) for i in range(300)}


CONSENT_ROUNDS = 40


def race_consent_updates(stores: list[InteractionStore]) -> None:
    """8 threads send interleaved updates of 6 channels, each in a shuffled order, thread n
    through stores[n % len(stores)]."""

    def update(n: int) -> None:
        store = stores[n % len(stores)]
        for channel, granted, at in consent_updates(n, THREADS, CONSENT_ROUNDS):
            store.update_consent("c-1", {channel: granted}, at)

    run_threads(update)


def test_concurrent_consent_updates_converge_to_the_newest(
    make_store: StoreFactory, store_url: str
) -> None:
    """On every channel the update with the highest ``at`` is what is left."""
    store = make_store(store_url)
    race_consent_updates([store])

    assert store.consent("c-1") == expected_consent(THREADS, CONSENT_ROUNDS)


def test_consent_updates_from_many_replicas_converge_to_the_newest(
    make_store: StoreFactory, shared_url: str
) -> None:
    stores = [make_store(shared_url) for _ in range(THREADS)]
    race_consent_updates(stores)

    expected = expected_consent(THREADS, CONSENT_ROUNDS)
    assert [store.consent("c-1") for store in stores] == [expected] * THREADS


def test_two_processes_update_consent_concurrently(
    make_store: StoreFactory, shared_url: str
) -> None:
    run_workers(shared_url, CONSENT_ROUNDS * 5, "--consent={n}/2")

    store = make_store(shared_url)
    assert store.consent("c-1") == expected_consent(2, CONSENT_ROUNDS * 5)


@pytest.mark.parametrize("round_", range(3))
def test_processes_may_open_a_fresh_sqlite_file_at_once(
    make_store: StoreFactory, tmp_path: Path, round_: int
) -> None:
    """Switching a new file to WAL mode takes a lock that SQLite's busy handler does not
    wait for; the store must retry instead of failing a replica's start."""
    url = f"sqlite:///{tmp_path}/fresh.sqlite3"
    run_workers(url, 5, "--open-on-go", processes=4)

    store = make_store(url, retention_seconds=RETENTION, clock=time.time)
    assert len(store.history("c-1", since=0)) == 4 * 5


def test_an_acknowledged_sqlite_record_survives_kill_9(
    make_store: StoreFactory, sqlite_url: str
) -> None:
    proc = start_worker(sqlite_url, "durable", 20, "--hang")
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    store = make_store(sqlite_url, retention_seconds=RETENTION, clock=time.time)
    ids = [i.interaction_id for i in store.history("c-1", since=0)]
    assert ids == [f"durable-{i}" for i in range(20)]


def test_a_busy_sqlite_store_shares_its_file_with_a_second_instance(
    make_store: StoreFactory, sqlite_url: str
) -> None:
    """Two store instances in one process (two pools) interleave writes and reads."""
    first = make_store(sqlite_url, retention_seconds=RETENTION, clock=time.time)
    second = make_store(sqlite_url, retention_seconds=RETENTION, clock=time.time)
    now = time.time()

    def record(n: int) -> None:
        store = (first, second)[n % 2]
        for i in range(50):
            store.record("c-1", Interaction("o", "web", 1, now + i, f"t{n}-{i}"))
            store.history("c-1", since=0)

    run_threads(record)

    assert len(first.history("c-1", since=0)) == THREADS * 50
    assert second.history("c-1", since=0) == first.history("c-1", since=0)
