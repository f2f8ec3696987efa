"""Helpers shared by the store tests (a plain module: conftest.py is not meant for importing)."""

from __future__ import annotations

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
