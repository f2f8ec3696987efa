"""sweep(), idempotency at the edge of the window, and a retention window that changes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_helpers import START, FakeClock, StoreFactory

from nba.pipeline.types import Interaction
from nba.store import InteractionStore

RETENTION = 100.0


def make(at: float, interaction_id: str) -> Interaction:
    return Interaction("offer-1", "web", 2, at, interaction_id)


def ids(store: InteractionStore, customer_id: str) -> list[str]:
    return [i.interaction_id for i in store.history(customer_id, since=0)]


@pytest.fixture(params=["memory", "sqlite"])
def sweeping_url(request: pytest.FixtureRequest) -> str:
    """The backends whose sweep deletes (Redis expires keys instead: test_store_redis.py)."""
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue("sqlite_url")


@pytest.fixture
def quiet_customers(make_store: StoreFactory, store_url: str) -> InteractionStore:
    """c-1 with two interactions that will expire and one that will not; c-2 with one that
    will; neither records again."""
    store = make_store(store_url, retention_seconds=RETENTION)
    store.record("c-1", make(START - 90, "old-1"))
    store.record("c-1", make(START - 50, "old-2"))
    store.record("c-1", make(START - 10, "recent"))
    store.record("c-2", make(START - 80, "old"))
    return store


def test_sweep_removes_old_rows_of_customers_who_never_record_again(
    make_store: StoreFactory, sweeping_url: str, clock: FakeClock
) -> None:
    store = make_store(sweeping_url, retention_seconds=RETENTION)
    store.record("c-1", make(START - 90, "old-1"))
    store.record("c-1", make(START - 50, "old-2"))
    store.record("c-1", make(START - 10, "recent"))
    store.record("c-2", make(START - 80, "old"))

    clock.now = START + 55  # cutoff START - 45
    assert store.sweep() == 3
    assert store.sweep() == 0

    clock.now = START  # turn back time: what was swept does not come back
    assert ids(store, "c-1") == ["recent"]
    assert ids(store, "c-2") == []


def test_sweep_as_of_a_given_time(make_store: StoreFactory, sweeping_url: str) -> None:
    store = make_store(sweeping_url, retention_seconds=RETENTION)
    store.record("c-1", make(START - 50, "old"))
    store.record("c-1", make(START - 10, "recent"))

    assert store.sweep(now=START + 55) == 1  # the clock still says START
    assert ids(store, "c-1") == ["recent"]


def test_sweep_keeps_an_interaction_exactly_at_the_cutoff(
    make_store: StoreFactory, sweeping_url: str
) -> None:
    store = make_store(sweeping_url, retention_seconds=RETENTION)
    store.record("c-1", make(START - 100, "edge"))

    assert store.sweep(now=START) == 0
    assert store.sweep(now=START + 0.001) == 1


def test_sweep_with_nothing_to_remove_returns_0(
    make_store: StoreFactory, store_url: str, clock: FakeClock
) -> None:
    store = make_store(store_url, retention_seconds=RETENTION)
    assert store.sweep() == 0

    store.record("c-1", make(START - 10, "recent"))
    assert store.sweep() == 0
    assert ids(store, "c-1") == ["recent"]


def test_sweep_rejects_a_non_finite_time(store: InteractionStore) -> None:
    for now in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            store.sweep(now=now)


def test_a_swept_interaction_is_recorded_again(
    quiet_customers: InteractionStore, clock: FakeClock
) -> None:
    """Idempotency holds within the retention window: once an interaction has left it, its
    id is new again, on every backend and whether or not a sweep removed it yet."""
    store = quiet_customers
    clock.now = START + 55
    store.sweep()

    assert store.record("c-1", make(START - 50, "old-2")) is True  # a late retry: dropped
    assert ids(store, "c-1") == ["recent"]
    assert store.record("c-1", make(START + 50, "old-2")) is True  # the id, reused
    assert store.record("c-1", make(START + 50, "old-2")) is False
    assert ids(store, "c-1") == ["recent", "old-2"]
    assert store.record("c-1", make(START - 10, "recent")) is False  # still in the window


def test_an_expired_id_is_new_again_before_any_sweep(
    quiet_customers: InteractionStore, clock: FakeClock
) -> None:
    store = quiet_customers
    clock.now = START + 55  # no sweep: old-1 and old-2 are only hidden

    assert store.record("c-1", make(START + 55, "old-2")) is True  # trims its old self
    assert store.record("c-1", make(START + 55, "old-2")) is False
    assert ids(store, "c-1") == ["recent", "old-2"]
    assert store.record("c-1", make(START - 90, "old-1")) is True
    assert ids(store, "c-1") == ["recent", "old-2"]


def test_a_sweep_in_many_batches_removes_everything_old(
    make_store: StoreFactory, sqlite_url: str
) -> None:
    store = make_store(sqlite_url, retention_seconds=RETENTION)
    for n in range(1_000):
        store.record(f"c-{n % 37}", make(START - 99 + (n % 2) * 98, f"i-{n}"))  # half expire

    assert store.sweep(now=START + 50, batch_size=7) == 500  # type: ignore[call-arg]
    assert sum(len(store.history(f"c-{n}", since=0)) for n in range(37)) == 500
    with pytest.raises(ValueError, match="batch_size"):
        store.sweep(batch_size=0)  # type: ignore[call-arg]


def test_the_sqlite_sweep_walks_the_at_index(make_store: StoreFactory, tmp_path: Path) -> None:
    make_store(f"sqlite:///{tmp_path}/nba.sqlite3").ping()
    from nba.store.sqlite import _SWEEP

    conn = sqlite3.connect(tmp_path / "nba.sqlite3")
    try:
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {_SWEEP}", (0, 1)))
    finally:
        conn.close()
    assert "USING COVERING INDEX interactions_at (at<?)" in plan
    assert "SCAN interactions " not in f"{plan} "


def test_a_shorter_window_hides_older_rows_on_the_next_read(
    make_store: StoreFactory, store_url: str, clock: FakeClock
) -> None:
    store = make_store(store_url, retention_seconds=RETENTION)
    store.record("c-1", make(START - 50, "older"))
    store.record("c-1", make(START - 10, "newer"))
    assert store.retention_seconds == RETENTION

    store.retention_seconds = 30
    assert store.retention_seconds == 30.0
    assert ids(store, "c-1") == ["newer"]
    assert [i.interaction_id for i in store.snapshot("c-1", 0, with_consent=True)[0]] == ["newer"]

    store.retention_seconds = RETENTION  # nothing was removed yet: it shows again
    assert ids(store, "c-1") == ["older", "newer"]


def test_a_changed_window_applies_to_records_and_sweeps(
    make_store: StoreFactory, store_url: str, clock: FakeClock
) -> None:
    store = make_store(store_url, retention_seconds=RETENTION)
    store.record("c-1", make(START - 50, "older"))
    store.record("c-2", make(START - 50, "other"))

    store.retention_seconds = 30
    assert store.record("c-1", make(START, "trims")) is True  # trims "older" with the new window
    store.sweep()  # and c-2's, on backends that sweep
    store.retention_seconds = RETENTION
    assert ids(store, "c-1") == ["trims"]
    assert ids(store, "c-2") == ([] if not store_url.startswith("redis") else ["other"])

    store.retention_seconds = 1_000  # a longer window keeps a record older than the old one
    assert store.record("c-1", make(START - 500, "long-ago")) is True
    assert ids(store, "c-1") == ["long-ago", "trims"]


@pytest.mark.parametrize("bad", [0, -1, -0.5, float("nan"), float("inf"), "60", None, True])
def test_an_invalid_window_is_rejected_and_changes_nothing(
    store: InteractionStore, bad: object
) -> None:
    before = store.retention_seconds
    with pytest.raises(ValueError, match="retention_seconds"):
        store.retention_seconds = bad  # type: ignore[assignment]
    assert store.retention_seconds == before
