"""Helpers shared by the store tests (a plain module: conftest.py is not meant for importing)."""

from __future__ import annotations

import random
from collections.abc import Callable

from nba.store import InteractionStore

START = 1_700_000_000.0
"""The fake clock's time when a test starts."""

StoreFactory = Callable[..., InteractionStore]


class FakeClock:
    """A settable clock, so retention is tested without waiting."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


CONSENT_CHANNELS = ("web", "email", "sms", "push", "branch", "call-centre")


def consent_updates(worker: int, workers: int, rounds: int) -> list[tuple[str, bool, float]]:
    """The (channel, granted, at) updates that ``worker`` of ``workers`` (an even number)
    sends in a race, shuffled so that older updates often arrive after newer ones.

    On each channel every ``at`` is distinct across all workers, and the newest and second
    newest come from different workers with opposite values, so a stale overwrite shows.
    """
    updates = []
    for i in range(rounds):
        for k, channel in enumerate(CONSENT_CHANNELS):
            slot = (worker + k) % workers
            granted = ((i + worker) % 2 == 0) != (k % 3 == 0)
            updates.append((channel, granted, START + i * workers + slot))
    random.Random(f"{worker}/{workers}").shuffle(updates)
    return updates


def expected_consent(workers: int, rounds: int) -> dict[str, bool]:
    """The consent that the race of consent_updates(0..workers-1) must converge to."""
    newest: dict[str, tuple[float, bool]] = {}
    for worker in range(workers):
        for channel, granted, at in consent_updates(worker, workers, rounds):
            if channel not in newest or at > newest[channel][0]:
                newest[channel] = (at, granted)
    return {channel: granted for channel, (_, granted) in newest.items()}
