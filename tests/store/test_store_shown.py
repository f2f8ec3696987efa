"""What decisions showed, kept for attributing outcomes: the contract on every backend."""

from __future__ import annotations

from store_helpers import START, FakeClock, StoreFactory

from nba.store import MAX_SHOWN, InteractionStore, Shown


def shown(customer: str, decision: str, at: float, *actions: tuple[str, str]) -> Shown:
    return Shown(customer, decision, at, tuple(actions), f"payload of {decision}")


def test_an_outcome_finds_its_decision_by_id_or_the_latest_that_showed_the_action(
    store: InteractionStore,
) -> None:
    store.remember_shown(
        [
            shown("c1", "d1", START - 30, ("card", "web"), ("loan", "web")),
            shown("c1", "d2", START - 20, ("card", "web")),
            shown("c1", "d3", START - 10, ("loan", "email")),
            shown("c2", "d4", START - 5, ("card", "web")),
        ]
    )
    by_id = store.recall_shown("c1", "card", "web", decision_id="d1")
    assert by_id == shown("c1", "d1", START - 30, ("card", "web"), ("loan", "web"))
    latest = store.recall_shown("c1", "card", "web")
    assert latest is not None and latest.decision_id == "d2"  # not c2's later d4
    assert latest.payload == "payload of d2"
    loan_web = store.recall_shown("c1", "loan", "web")
    assert loan_web is not None and loan_web.decision_id == "d1"  # d3 showed it on email
    # An id that is not kept falls back to the latest that showed it.
    fallback = store.recall_shown("c1", "card", "web", decision_id="gone")
    assert fallback is not None and fallback.decision_id == "d2"
    assert store.recall_shown("c1", "card", "sms") is None
    assert store.recall_shown("nobody", "card", "web") is None


def test_only_the_latest_decisions_of_a_customer_are_kept(store: InteractionStore) -> None:
    store.remember_shown(
        [shown("c1", f"d{i}", START - 1000 + i, ("card", "web")) for i in range(MAX_SHOWN + 5)]
    )
    assert store.recall_shown("c1", "card", "web", decision_id="d4") is not None
    oldest_kept = MAX_SHOWN + 5 - MAX_SHOWN
    assert store.recall_shown("c1", "card", "web", decision_id=f"d{oldest_kept}") is not None
    dropped = store.recall_shown("c1", "card", "web", decision_id=f"d{oldest_kept - 1}")
    assert dropped is not None and dropped.decision_id == f"d{MAX_SHOWN + 4}"  # the latest


def test_what_was_shown_before_the_retention_window_is_forgotten(
    make_store: StoreFactory, store_url: str, clock: FakeClock
) -> None:
    store = make_store(store_url, retention_seconds=100.0)
    store.remember_shown([shown("c1", "old", START - 150, ("card", "web"))])
    store.remember_shown([shown("c1", "new", START - 50, ("loan", "web"))])
    assert store.recall_shown("c1", "card", "web") is None
    assert store.recall_shown("c1", "card", "web", decision_id="old") is None
    assert store.recall_shown("c1", "loan", "web") is not None
    clock.now = START + 60
    store.sweep()
    assert store.recall_shown("c1", "loan", "web") is None


def test_every_store_instance_on_one_backend_sees_what_another_kept(
    make_store: StoreFactory, shared_url: str
) -> None:
    writer, reader = make_store(shared_url), make_store(shared_url)
    writer.remember_shown([shown("c1", "d1", START, ("card", "web"))])
    found = reader.recall_shown("c1", "card", "web")
    assert found is not None and found.decision_id == "d1"
