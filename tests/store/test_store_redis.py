"""What the Redis backend leaves in Redis: cluster-safe keys, TTLs, trimmed id sets, consent
values; and how its pipelined snapshot behaves when things go wrong."""

from __future__ import annotations

import time

import pytest
import redis
from redis.crc import key_slot
from store_helpers import START, FakeClock, StoreFactory

from nba.pipeline.types import Interaction
from nba.store import StoreError
from nba.store.redis_store import consent_key, customer_keys

CUSTOMERS = ["c-42", "a|b", "x:y", "{c}", "}c{", "a}b", "{", "}", "%7B", "顧客🙂", "{}", " "]


def record(
    store_url: str, make_store: StoreFactory, customer: str, *ids: str, at: float = START
) -> None:
    """Records ids at ``at``, ``at - 1``, ... through a store with 100 s retention."""
    store = make_store(store_url, retention_seconds=100)
    for n, interaction_id in enumerate(ids):
        store.record(customer, Interaction("a", "web", 1, at - n, interaction_id))


@pytest.mark.redis
@pytest.mark.parametrize("customer", CUSTOMERS)
def test_all_keys_of_a_customer_share_one_hash_slot(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory, customer: str
) -> None:
    record(redis_url, make_store, customer, "i-1", "i-2")
    make_store(redis_url).update_consent(customer, {"email": False}, at=START)

    keys = sorted(redis_client.keys("*"))
    assert keys == sorted([*customer_keys(customer), consent_key(customer)])
    assert len({key_slot(key.encode()) for key in keys}) == 1


def test_customers_that_differ_only_in_braces_get_different_keys() -> None:
    all_keys = [
        key for customer in CUSTOMERS for key in (*customer_keys(customer), consent_key(customer))
    ]

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


@pytest.mark.redis
def test_a_shorter_window_shortens_the_ttl_on_the_next_record(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory
) -> None:
    store = make_store(redis_url, retention_seconds=1000)
    store.record("c-1", Interaction("a", "web", 1, START, "i-1"))
    store.retention_seconds = 10
    store.record("c-1", Interaction("a", "web", 1, START, "i-2"))

    for key in customer_keys("c-1"):
        assert 9_000 < redis_client.pttl(key) <= 10_000


@pytest.mark.redis
def test_the_keys_of_a_quiet_customer_really_expire_but_not_consent(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory
) -> None:
    """What makes sweep unnecessary on Redis: both sets go by themselves one window after
    the customer's last record; consent stays."""
    store = make_store(redis_url, retention_seconds=0.05, clock=time.time)
    store.update_consent("c-1", {"email": False}, at=START)
    store.record("c-1", Interaction("a", "web", 1, time.time(), "i-1"))
    assert all(redis_client.exists(key) for key in customer_keys("c-1"))

    deadline = time.monotonic() + 5
    while redis_client.exists(*customer_keys("c-1")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert redis_client.exists(*customer_keys("c-1")) == 0
    assert redis_client.pttl(consent_key("c-1")) == -1  # exists, no TTL
    assert store.sweep() == 0
    assert store.consent("c-1") == {"email": False}


@pytest.mark.redis
def test_sweep_leaves_the_keys_to_their_ttl(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory, clock: FakeClock
) -> None:
    record(redis_url, make_store, "c-1", "i-1")  # at START, 100 s retention
    store = make_store(redis_url, retention_seconds=100)
    clock.now = START + 1000

    assert store.sweep() == 0
    assert store.history("c-1", since=0) == []  # hidden by the window
    for key in customer_keys("c-1"):
        assert 0 < redis_client.pttl(key) <= 100_000


@pytest.mark.redis
def test_consent_values_hold_the_flag_and_the_exact_time(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory
) -> None:
    at = 1_700_000_000.123456
    make_store(redis_url).update_consent("c-1", {"email": False, "sms": True}, at=at)

    assert redis_client.hgetall(consent_key("c-1")) == {"email": f"0 {at!r}", "sms": f"1 {at!r}"}
    assert redis_client.pttl(consent_key("c-1")) == -1


@pytest.mark.redis
def test_a_foreign_consent_value_is_a_store_error_until_overwritten(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory
) -> None:
    redis_client.hset(consent_key("c-1"), "email", "yes")
    store = make_store(redis_url)

    with pytest.raises(StoreError, match="undecodable entry"):
        store.consent("c-1")
    with pytest.raises(StoreError, match=r"redis snapshot failed.*undecodable entry"):
        store.snapshot("c-1", since=0, with_consent=True)
    assert store.snapshot("c-1", since=0, with_consent=False) == ([], {})

    store.update_consent("c-1", {"email": True}, at=START)
    assert store.consent("c-1") == {"email": True}


@pytest.mark.redis
@pytest.mark.parametrize("protocol", [2, 3])
def test_snapshot_under_either_protocol(
    redis_url: str, make_store: StoreFactory, protocol: int
) -> None:
    store = make_store(f"{redis_url}?protocol={protocol}")
    interaction = Interaction("a", "web", 1, START - 1, "i-1")
    store.record("c-1", interaction)
    store.update_consent("c-1", {"email": False, "sms": True}, at=START)

    assert store.snapshot("c-1", since=0, with_consent=True) == (
        [interaction],
        {"email": False, "sms": True},
    )


@pytest.mark.redis
def test_a_failed_snapshot_does_not_leave_a_reply_behind(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory
) -> None:
    """An error on the first pipelined command leaves the second reply unread: the
    connection must not go back to the pool, or the next call would read that reply."""
    store = make_store(redis_url)
    store.update_consent("c-1", {"email": False}, at=START)
    redis_client.set(customer_keys("c-1")[0], "not a sorted set")

    with pytest.raises(StoreError, match=r"redis snapshot failed.*WRONGTYPE"):
        store.snapshot("c-1", since=0, with_consent=True)

    redis_client.delete(customer_keys("c-1")[0])
    store.update_consent("c-2", {"sms": True}, at=START)
    for _ in range(3):
        assert store.consent("c-2") == {"sms": True}
        assert store.history("c-1", since=0) == []
        assert store.snapshot("c-1", since=0, with_consent=True) == ([], {"email": False})


@pytest.mark.redis
def test_snapshot_survives_its_connections_being_killed(
    redis_url: str, redis_client: redis.Redis, make_store: StoreFactory
) -> None:
    store = make_store(redis_url)
    store.update_consent("c-1", {"email": False}, at=START)
    assert store.snapshot("c-1", since=0, with_consent=True) == ([], {"email": False})

    redis_client.client_kill_filter(_type="normal", skipme=True)

    assert store.snapshot("c-1", since=0, with_consent=True) == ([], {"email": False})
