"""Stored consent and snapshot(), run against every backend."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from store_helpers import START, FakeClock, StoreFactory

from nba.pipeline.types import Interaction
from nba.store import InteractionStore

ODD_CHANNELS = ["1 ", "0 1", "a:b", "{web}", "顧客🙂", 'q"\\', "new\nline", " "]


def make(at: float, interaction_id: str) -> Interaction:
    return Interaction("offer-1", "web", 2, at, interaction_id)


def test_consent_of_an_unknown_customer_is_empty(store: InteractionStore) -> None:
    assert store.consent("nobody") == {}


def test_update_then_read(store: InteractionStore) -> None:
    store.update_consent("c-1", {"email": False, "sms": True}, at=START)

    assert store.consent("c-1") == {"email": False, "sms": True}


def test_a_newer_update_replaces_an_older_one(store: InteractionStore) -> None:
    store.update_consent("c-1", {"email": True}, at=START)
    store.update_consent("c-1", {"email": False}, at=START + 1)

    assert store.consent("c-1") == {"email": False}


def test_an_older_update_arriving_second_changes_nothing(store: InteractionStore) -> None:
    store.update_consent("c-1", {"email": False}, at=START)
    store.update_consent("c-1", {"email": True}, at=START - 0.001)

    assert store.consent("c-1") == {"email": False}


def test_at_an_equal_time_the_later_update_wins(store: InteractionStore) -> None:
    store.update_consent("c-1", {"email": False}, at=START)
    store.update_consent("c-1", {"email": True}, at=START)

    assert store.consent("c-1") == {"email": True}


def test_times_are_compared_exactly(store: InteractionStore) -> None:
    """1e-6 apart at unix-time magnitude: one ulp is ~2.4e-7, so text or Lua number
    round-trips that lost digits would make these equal or reverse them."""
    at = 1_700_000_000.123456
    store.update_consent("c-1", {"email": False}, at=at)
    store.update_consent("c-1", {"email": True}, at=at - 1e-6)
    assert store.consent("c-1") == {"email": False}

    store.update_consent("c-1", {"email": True}, at=at + 1e-6)
    assert store.consent("c-1") == {"email": True}


def test_channels_are_independent(store: InteractionStore) -> None:
    store.update_consent("c-1", {"email": False, "sms": False}, at=START)
    # one update, older for email and new for push: only push changes
    store.update_consent("c-1", {"email": True, "push": True}, at=START - 10)
    store.update_consent("c-1", {"sms": True}, at=START + 10)

    assert store.consent("c-1") == {"email": False, "sms": True, "push": True}


def test_customers_are_isolated(store: InteractionStore) -> None:
    store.update_consent("c-1", {"email": False}, at=START)
    store.update_consent("c-2", {"email": True}, at=START - 100)

    assert store.consent("c-1") == {"email": False}
    assert store.consent("c-2") == {"email": True}
    assert store.consent("c-3") == {}


@pytest.mark.parametrize("channel", ODD_CHANNELS)
def test_odd_channel_names_round_trip(store: InteractionStore, channel: str) -> None:
    store.update_consent("{c-1}", {channel: True}, at=START)
    store.update_consent("{c-1}", {channel: False}, at=START - 1)

    assert store.consent("{c-1}") == {channel: True}


def test_an_empty_update_changes_nothing(store: InteractionStore) -> None:
    store.update_consent("c-1", {}, at=START)
    assert store.consent("c-1") == {}

    store.update_consent("c-1", {"sms": False}, at=START)
    store.update_consent("c-1", {}, at=START + 1)
    assert store.consent("c-1") == {"sms": False}


@pytest.mark.parametrize(
    ("customer", "changes", "at", "message"),
    [
        ("", {"sms": True}, START, "customer_id"),
        ("c-1", {"": True}, START, "channel"),
        ("c-1", {"sms": 1}, START, "True or False"),
        ("c-1", {"sms": "false"}, START, "True or False"),
        ("c-1", {"sms": None}, START, "True or False"),
        ("c-1", {"sms": True}, float("nan"), "finite"),
        ("c-1", {"sms": True}, float("inf"), "finite"),
    ],
)
def test_bad_updates_are_rejected_whole(
    store: InteractionStore, customer: str, changes: Mapping[str, bool], at: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.update_consent(customer, {"email": False, **changes}, at=at)
    assert store.consent("c-1") == {}


def test_an_empty_customer_id_is_rejected_by_the_reads(store: InteractionStore) -> None:
    with pytest.raises(ValueError, match="customer_id"):
        store.consent("")
    with pytest.raises(ValueError, match="customer_id"):
        store.snapshot("", since=0, with_consent=True)


def test_consent_outlives_retention_trimming_and_sweep(
    make_store: StoreFactory, store_url: str, clock: FakeClock
) -> None:
    store = make_store(store_url, retention_seconds=100)
    store.update_consent("c-1", {"email": False}, at=START - 10_000)  # older than the window
    store.record("c-1", make(START - 50, "old"))

    clock.now = START + 1_000_000
    store.record("c-1", make(clock.now, "trims-the-rest"))
    store.sweep()
    store.sweep(now=clock.now + 1_000_000)

    assert store.consent("c-1") == {"email": False}
    assert store.snapshot("c-1", since=0, with_consent=True)[1] == {"email": False}


def test_consent_is_shared_by_instances(make_store: StoreFactory, shared_url: str) -> None:
    """What one replica stores, another reads; and its stale update loses."""
    first, second = make_store(shared_url), make_store(shared_url)
    first.update_consent("c-1", {"email": False}, at=START)
    second.update_consent("c-1", {"email": True}, at=START - 1)

    assert second.consent("c-1") == {"email": False}


def test_snapshot_is_history_plus_consent(store: InteractionStore) -> None:
    for n in range(20):
        store.record("c-1", make(START - 100 + n * 5, f"i-{n}"))
    store.record("c-2", make(START - 1, "other"))
    store.update_consent("c-1", {"email": False, "sms": True}, at=START)
    store.update_consent("c-2", {"email": True}, at=START)

    for since in (0, START - 60, START - 5, START + 1):
        history = store.history("c-1", since=since)
        assert store.snapshot("c-1", since=since, with_consent=True) == (
            history,
            {"email": False, "sms": True},
        )
        assert store.snapshot("c-1", since=since, with_consent=False) == (history, {})
    assert len(store.snapshot("c-1", since=0, with_consent=True)[0]) == 20


def test_snapshot_of_an_unknown_customer(store: InteractionStore) -> None:
    assert store.snapshot("nobody", since=0, with_consent=True) == ([], {})
    assert store.snapshot("nobody", since=0, with_consent=False) == ([], {})


def test_snapshot_of_consent_without_history_and_the_reverse(store: InteractionStore) -> None:
    store.update_consent("c-1", {"push": False}, at=START)
    store.record("c-2", make(START - 1, "i-1"))

    assert store.snapshot("c-1", since=0, with_consent=True) == ([], {"push": False})
    assert store.snapshot("c-2", since=0, with_consent=True) == ([make(START - 1, "i-1")], {})


def test_snapshot_hides_what_retention_excludes(
    make_store: StoreFactory, store_url: str, clock: FakeClock
) -> None:
    store = make_store(store_url, retention_seconds=100)
    store.record("c-1", make(START - 50, "old"))
    store.record("c-1", make(START - 10, "recent"))

    clock.now = START + 60
    history, _ = store.snapshot("c-1", since=0, with_consent=True)
    assert [i.interaction_id for i in history] == ["recent"]
    history, _ = store.snapshot("c-1", since=0, with_consent=False)
    assert [i.interaction_id for i in history] == ["recent"]
