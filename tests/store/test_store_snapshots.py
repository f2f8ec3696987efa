"""snapshots(): many customers' history and consent in bulk, as nba batch reads a partition;
the same answer as snapshot() one by one, on every backend."""

from __future__ import annotations

from store_helpers import START

from nba.pipeline.types import Interaction
from nba.store import BULK_READ, InteractionStore


def test_a_bulk_read_answers_as_each_customers_snapshot(store: InteractionStore) -> None:
    customers = [f"bulk-{i}" for i in range(BULK_READ + 20)]  # more than one batch
    for i, customer in enumerate(customers):
        for k in range(i % 3):  # 0, 1 or 2 interactions each
            store.record(customer, Interaction("card", "web", 1 + k, START - 100 + k))
        if i % 4 == 0:
            store.update_consent(customer, {"email": i % 8 == 0, "sms": True}, START - 50)
    store.record("bulk-1", Interaction("card", "web", 1, START - 4000))  # before `since`
    asked = [*customers, "bulk-3", "nobody"]  # a repeat, and a customer never seen
    found = store.snapshots(asked, START - 3600, with_consent=True)
    assert set(found) == {*customers, "nobody"}
    for customer in (*customers, "nobody"):
        assert found[customer] == store.snapshot(customer, START - 3600, True), customer
    assert found["nobody"] == ([], {})
    assert [i.outcome for i in found["bulk-2"][0]] == [1, 2]  # oldest first
    assert found["bulk-8"][1] == {"email": True, "sms": True}
    assert found["bulk-4"][1] == {"email": False, "sms": True}
    without = store.snapshots(customers[:10], START - 3600, with_consent=False)
    assert all(consent == {} for _, consent in without.values())
    assert without["bulk-2"][0] == found["bulk-2"][0]


def test_an_empty_bulk_read_is_empty(store: InteractionStore) -> None:
    assert store.snapshots([], START, with_consent=True) == {}
