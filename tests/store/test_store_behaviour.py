"""The InteractionStore contract, run against every backend."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from store_helpers import START, FakeClock, StoreFactory

from nba.pipeline.types import Interaction
from nba.store import InteractionStore, interaction_key

CLICK, ACCEPT, REJECT = 2, 3, 5


def make(at: float, interaction_id: str = "", action: str = "offer-1") -> Interaction:
    return Interaction(action, "web", CLICK, at, interaction_id)


def test_record_then_history(store: InteractionStore) -> None:
    interaction = Interaction("offer-1", "email", ACCEPT, START - 5, "i-1", "d-1")

    assert store.record("c-1", interaction) is True
    assert store.history("c-1", since=0) == [interaction]


def test_history_of_an_unknown_customer_is_empty(store: InteractionStore) -> None:
    assert store.history("nobody", since=0) == []


def test_a_retry_with_the_same_id_is_recorded_once(store: InteractionStore) -> None:
    first = make(START - 10, "i-1")
    retry = replace(first, at=START - 1, action_id="something-else")

    assert store.record("c-1", first) is True
    assert store.record("c-1", retry) is False
    assert store.history("c-1", since=0) == [first]


def test_without_an_id_the_interaction_key_is_the_id(store: InteractionStore) -> None:
    interaction = Interaction("offer-1", "sms", REJECT, START - 3.25)

    assert store.record("c-1", interaction) is True
    assert store.record("c-1", interaction) is False
    [stored] = store.history("c-1", since=0)
    assert stored == replace(
        interaction, interaction_id=interaction_key("c-1", "offer-1", "sms", REJECT, START - 3.25)
    )


def test_same_fields_for_another_customer_are_another_interaction(store: InteractionStore) -> None:
    interaction = make(START - 1)

    assert store.record("c-1", interaction) is True
    assert store.record("c-2", interaction) is True


def test_the_same_id_for_another_customer_is_recorded(store: InteractionStore) -> None:
    assert store.record("c-1", make(START - 1, "shared-id")) is True
    assert store.record("c-2", make(START - 1, "shared-id")) is True


def test_history_filters_by_since_inclusive_and_is_oldest_first(store: InteractionStore) -> None:
    ats = [START - 300 + i for i in range(0, 300, 10)]
    for at in random.Random(7).sample(ats, len(ats)):
        store.record("c-1", make(at, f"i-{at}"))

    since = START - 150
    assert [i.at for i in store.history("c-1", since=since)] == [at for at in ats if at >= since]
    assert [i.at for i in store.history("c-1", since=0)] == ats
    assert store.history("c-1", since=START + 1) == []


def test_timestamps_come_back_exactly(store: InteractionStore) -> None:
    at = 1_700_000_000.123456
    store.record("c-1", Interaction("a", "web", CLICK, at, "i-1"))

    assert store.history("c-1", since=at)[0].at == at
    assert store.history("c-1", since=at + 1e-6) == []


def test_customers_are_isolated(store: InteractionStore) -> None:
    store.record("c-1", make(START - 2, "i-1", action="for-c1"))
    store.record("c-2", make(START - 1, "i-1", action="for-c2"))

    assert [i.action_id for i in store.history("c-1", since=0)] == ["for-c1"]
    assert [i.action_id for i in store.history("c-2", since=0)] == ["for-c2"]


def test_retention_hides_then_trims_old_entries(
    make_store: StoreFactory, store_url: str, clock: FakeClock
) -> None:
    store = make_store(store_url, retention_seconds=100)
    store.record("c-1", make(START - 50, "old"))
    store.record("c-1", make(START - 10, "recent"))
    store.record("c-2", make(START - 50, "other-customer"))

    clock.now = START + 60  # "old" is now 110 s old: hidden even before any trimming
    assert [i.interaction_id for i in store.history("c-1", since=0)] == ["recent"]

    store.record("c-1", make(START + 60, "new"))  # trims c-1's history
    clock.now = START  # turn back time: a trimmed entry does not come back
    assert [i.interaction_id for i in store.history("c-1", since=0)] == ["recent", "new"]
    assert [i.interaction_id for i in store.history("c-2", since=0)] == ["other-customer"]


def test_an_interaction_older_than_retention_is_not_kept(
    make_store: StoreFactory, store_url: str, clock: FakeClock
) -> None:
    store = make_store(store_url, retention_seconds=100)

    assert store.record("c-1", make(START - 101, "too-old")) is True
    clock.now = START - 100
    assert store.history("c-1", since=0) == []


def test_a_duplicate_changes_nothing(
    make_store: StoreFactory, store_url: str, clock: FakeClock
) -> None:
    store = make_store(store_url, retention_seconds=100)
    store.record("c-1", make(START - 50, "old"))
    store.record("c-1", make(START, "current"))

    clock.now = START + 60
    assert store.record("c-1", make(START, "current")) is False  # must not trim "old"
    clock.now = START
    assert [i.interaction_id for i in store.history("c-1", since=0)] == ["old", "current"]


ODD_IDS = [
    "a|b|c",
    "a:b:c",
    "nba:{c-1}:h",
    "{",
    "}",
    "}{",
    "%7B",
    "%",
    "ünïcødé-顧客-🙂",
    'quote"back\\slash',
    "new\nline\ttab",
    "[1,2]",
    " ",
]


@pytest.mark.parametrize("odd", ODD_IDS)
def test_odd_characters_in_ids_round_trip(store: InteractionStore, odd: str) -> None:
    interaction = Interaction(odd, odd, ACCEPT, START - 1, odd, odd)

    assert store.record(odd, interaction) is True
    assert store.record(odd, interaction) is False
    assert store.history(odd, since=0) == [interaction]


def test_customers_with_odd_ids_do_not_collide(store: InteractionStore) -> None:
    for n, customer in enumerate(ODD_IDS):
        store.record(customer, make(START - 1, "same-id", action=f"action-{n}"))

    for n, customer in enumerate(ODD_IDS):
        assert [i.action_id for i in store.history(customer, since=0)] == [f"action-{n}"]


def test_an_empty_customer_id_is_rejected(store: InteractionStore) -> None:
    with pytest.raises(ValueError, match="customer_id"):
        store.record("", make(START))
    with pytest.raises(ValueError, match="customer_id"):
        store.history("", since=0)


@pytest.mark.parametrize("at", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_time_is_rejected(store: InteractionStore, at: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        store.record("c-1", make(at))
    assert store.history("c-1", since=0) == []


def test_ping_succeeds_on_a_live_backend(store: InteractionStore) -> None:
    store.ping()
