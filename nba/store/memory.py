"""In-process interaction store: a dict under a lock.

For the store-less path (one process, history lost on restart) and for unit tests of callers.
It keeps the same semantics as the durable backends, retention and idempotency included, so
that tests written against it hold for them too.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from nba.store import (
    Clock,
    StoredInteraction,
    check_customer_id,
    prepared,
    retention_cutoff,
)


def _at(interaction: StoredInteraction) -> float:
    return interaction.at


@dataclass(slots=True)
class _History:
    """One customer's interactions sorted by ``at`` (ties in insertion order) and their ids."""

    entries: list[StoredInteraction] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    def add(self, interaction: StoredInteraction) -> None:
        bisect.insort_right(self.entries, interaction, key=_at)
        self.ids.add(interaction.interaction_id)

    def since(self, since: float) -> list[StoredInteraction]:
        return self.entries[bisect.bisect_left(self.entries, since, key=_at) :]

    def trim(self, cutoff: float) -> None:
        """Drops entries older than ``cutoff``; their ids go too, like in the other backends."""
        stale = bisect.bisect_left(self.entries, cutoff, key=_at)
        for old in self.entries[:stale]:
            self.ids.discard(old.interaction_id)
        del self.entries[:stale]


class MemoryStore:
    """Thread-safe in-memory store. A customer who never records again keeps their (expired,
    hidden) history in memory until the process ends; fine for tests and small deployments."""

    def __init__(self, *, retention_seconds: float, clock: Clock = time.time) -> None:
        self._retention = retention_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._customers: dict[str, _History] = {}

    @classmethod
    def from_url(cls, url: str, *, retention_seconds: float, clock: Clock) -> MemoryStore:
        parts = urlsplit(url)
        if parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"the memory store URL takes no host, path or options: {url!r}")
        return cls(retention_seconds=retention_seconds, clock=clock)

    def record(self, customer_id: str, interaction: StoredInteraction) -> bool:
        interaction = prepared(customer_id, interaction)
        with self._lock:
            history = self._customers.setdefault(customer_id, _History())
            if interaction.interaction_id in history.ids:
                return False
            history.add(interaction)
            history.trim(retention_cutoff(self._clock, self._retention))
            if not history.entries:
                del self._customers[customer_id]
            return True

    def history(self, customer_id: str, since: float) -> list[StoredInteraction]:
        check_customer_id(customer_id)
        since = max(since, retention_cutoff(self._clock, self._retention))
        with self._lock:
            history = self._customers.get(customer_id)
            return history.since(since) if history else []

    def ping(self) -> None:
        """Always reachable."""

    def close(self) -> None:
        with self._lock:
            self._customers.clear()
