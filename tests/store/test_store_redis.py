"""What the Redis backend leaves in Redis: cluster-safe keys, TTLs, trimmed id sets."""

from __future__ import annotations

import pytest
import redis
from redis.crc import key_slot
from store_helpers import START, FakeClock, StoreFactory

from nba.store import StoredInteraction, StoreError
from nba.store.redis_store import customer_keys

CUSTOMERS = ["c-42", "a|b", "x:y", "{c}", "}c{", "a}b", "{", "}", "%7B", "顧客🙂", "{}", " "]


def record(
    store_url: str, make_store: StoreFactory, customer: str, *ids: str, at: float = START
) -> None:
    """Records ids at ``at``, ``at - 1``, ... through a store with 100 s retention."""
    store = make_store(store_url, retention_seconds=100)
    for n, interaction_id in enumerate(ids):
        store.record(customer, StoredInteraction("a", "web", 1, at - n, interaction_id))


@pytest.mark.redis
@pytest.mark.parametrize("customer", CUSTOMERS)
def test_all_keys_of_a_customer_share_one_hash_slot(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory, customer: str
) -> None:
    record(redis_url, make_store, customer, "i-1", "i-2")

    keys = sorted(redis_client.keys("*"))
    assert keys == sorted(customer_keys(customer))
    assert len({key_slot(key.encode()) for key in keys}) == 1


def test_customers_that_differ_only_in_braces_get_different_keys() -> None:
    all_keys = [key for customer in CUSTOMERS for key in customer_keys(customer)]

    assert len(set(all_keys)) == len(all_keys)


@pytest.mark.redis
def test_the_keys_expire_with_the_retention_window(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory
) -> None:
    record(redis_url, make_store, "c-1", "i-1")

    for key in customer_keys("c-1"):
        assert 99_000 < redis_client.pttl(key) <= 100_000


@pytest.mark.redis
def test_trimming_removes_entries_and_their_ids(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory, clock: FakeClock
) -> None:
    record(redis_url, make_store, "c-1", "i-1", "i-2", "i-3")  # at START, START-1, START-2
    clock.now = START + 100.5  # cutoff START+0.5: all three are out
    record(redis_url, make_store, "c-1", "i-new", at=clock.now)

    entries, ids = customer_keys("c-1")
    assert redis_client.zrange(ids, 0, -1) == ["i-new"]
    assert redis_client.zcard(entries) == 1


@pytest.mark.redis
def test_a_foreign_entry_is_a_store_error(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory
) -> None:
    redis_client.zadd(customer_keys("c-1")[0], {"not|json": START})

    with pytest.raises(StoreError, match="undecodable entry"):
        make_store(redis_url).history("c-1", since=0)
