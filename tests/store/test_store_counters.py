"""Shared counters (the learned models' evidence): the contract on every backend."""

from __future__ import annotations

import threading

import pytest
from store_helpers import StoreFactory

from nba.store import InteractionStore


def test_increments_add_up_and_read_back_by_prefix(store: InteractionStore) -> None:
    assert store.counters() == {}
    store.add_to_counters({"m|card|web|t": 1.0, "m|card|web|p": 0.5})
    store.add_to_counters({"m|card|web|t": 2.25, "m|loan|web|t": 1})
    assert store.counters() == {"m|card|web|t": 3.25, "m|card|web|p": 0.5, "m|loan|web|t": 1.0}
    assert store.counters("m|card|") == {"m|card|web|t": 3.25, "m|card|web|p": 0.5}
    assert store.counters("m|%") == {}  # a prefix, never a pattern
    store.add_to_counters({})  # nothing to do


@pytest.mark.parametrize("bad", [{"": 1.0}, {"x": float("nan")}, {"x": float("inf")}, {"x": True}])
def test_a_bad_increment_is_refused_and_changes_nothing(
    store: InteractionStore, bad: dict[str, float]
) -> None:
    store.add_to_counters({"x": 1.0})
    with pytest.raises(ValueError):
        store.add_to_counters({"y": 1.0, **bad})
    assert store.counters() == {"x": 1.0}


def test_concurrent_increments_are_never_lost(make_store: StoreFactory, shared_url: str) -> None:
    """Eight store instances (as eight workers) add at once: every increment counts."""
    stores = [make_store(shared_url) for _ in range(8)]
    barrier = threading.Barrier(len(stores))

    def add(store: InteractionStore) -> None:
        barrier.wait()
        for _ in range(100):
            store.add_to_counters({"t": 1.0, "p": 0.5})

    threads = [threading.Thread(target=add, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert stores[0].counters() == {"t": 800.0, "p": 400.0}
