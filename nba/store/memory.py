"""In-process interaction store: dicts under a lock.

For the store-less path (one process, history lost on restart) and for unit tests of callers.
It keeps the same semantics as the durable backends, retention, idempotency and consent
included, so that tests written against it hold for them too. ``sweep`` walks every customer,
a bounded batch of them per hold of the lock, so that a long sweep does not stall decisions.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from nba.pipeline.types import Interaction
from nba.store import (
    MAX_SHOWN,
    Clock,
    RetentionSetting,
    Shown,
    check_customer_id,
    checked_claims,
    checked_consent,
    checked_increments,
    latest_shown,
    prepared,
    retention_cutoff,
    sweep_cutoff,
)

SWEEP_BATCH = 1000
"""Customers trimmed per hold of the lock by ``sweep``."""


def _at(interaction: Interaction) -> float:
    return interaction.at


@dataclass(slots=True)
class _History:
    """One customer's interactions sorted by ``at`` (ties in insertion order), and the ``at``
    of each interaction id."""

    entries: list[Interaction] = field(default_factory=list)
    ids: dict[str, float] = field(default_factory=dict)

    def add(self, interaction: Interaction) -> None:
        bisect.insort_right(self.entries, interaction, key=_at)
        self.ids[interaction.interaction_id] = interaction.at

    def since(self, since: float) -> list[Interaction]:
        return self.entries[bisect.bisect_left(self.entries, since, key=_at) :]

    def trim(self, cutoff: float) -> int:
        """Drops entries older than ``cutoff``, their ids too like in the other backends;
        returns how many."""
        stale = bisect.bisect_left(self.entries, cutoff, key=_at)
        for old in self.entries[:stale]:
            self.ids.pop(old.interaction_id, None)
        del self.entries[:stale]
        return stale


class MemoryStore(RetentionSetting):
    """Thread-safe in-memory store. A customer who never records again keeps their (expired,
    hidden) history in memory until the next ``sweep``."""

    def __init__(self, *, retention_seconds: float, clock: Clock = time.time) -> None:
        self.retention_seconds = retention_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[str, float] = {}
        self._budgets: dict[str, tuple[int, float]] = {}  # name -> (count, expires_at)
        self._customers: dict[str, _History] = {}
        # customer -> channel -> (granted, at); apart from the histories, which retention empties
        self._shown: dict[str, list[Shown]] = {}  # oldest first, at most MAX_SHOWN
        self._consent: dict[str, dict[str, tuple[bool, float]]] = {}

    @classmethod
    def from_url(cls, url: str, *, retention_seconds: float, clock: Clock) -> MemoryStore:
        parts = urlsplit(url)
        if parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"the memory store URL takes no host, path or options: {url!r}")
        return cls(retention_seconds=retention_seconds, clock=clock)

    def record(self, customer_id: str, interaction: Interaction) -> bool:
        interaction = prepared(customer_id, interaction)
        cutoff = retention_cutoff(self._clock, self._retention)
        with self._lock:
            history = self._customers.setdefault(customer_id, _History())
            known_at = history.ids.get(interaction.interaction_id)
            if known_at is not None and known_at >= cutoff:
                return False
            history.trim(cutoff)  # first, so that it cannot drop the id being recorded
            if interaction.at >= cutoff:
                history.add(interaction)
            if not history.entries:
                del self._customers[customer_id]
            return True

    def history(self, customer_id: str, since: float) -> list[Interaction]:
        check_customer_id(customer_id)
        since = max(since, retention_cutoff(self._clock, self._retention))
        with self._lock:
            history = self._customers.get(customer_id)
            return history.since(since) if history else []

    def update_consent(self, customer_id: str, changes: Mapping[str, bool], at: float) -> None:
        pairs = checked_consent(customer_id, changes, at)
        if not pairs:
            return
        with self._lock:
            stored = self._consent.setdefault(customer_id, {})
            for channel, granted in pairs:
                current = stored.get(channel)
                if current is None or at >= current[1]:
                    stored[channel] = (granted, at)

    def consent(self, customer_id: str) -> dict[str, bool]:
        check_customer_id(customer_id)
        with self._lock:
            return self._consent_of(customer_id)

    def snapshot(
        self, customer_id: str, since: float, with_consent: bool
    ) -> tuple[list[Interaction], dict[str, bool]]:
        check_customer_id(customer_id)
        since = max(since, retention_cutoff(self._clock, self._retention))
        with self._lock:
            history = self._customers.get(customer_id)
            entries = history.since(since) if history else []
            return entries, self._consent_of(customer_id) if with_consent else {}

    def snapshots(
        self, customer_ids: Sequence[str], since: float, with_consent: bool
    ) -> dict[str, tuple[list[Interaction], dict[str, bool]]]:
        return {c: self.snapshot(c, since, with_consent) for c in dict.fromkeys(customer_ids)}

    def sweep(self, now: float | None = None) -> int:
        cutoff = sweep_cutoff(self._clock, self._retention, now)
        with self._lock:
            customers = list(self._customers)
        removed = 0
        for start in range(0, len(customers), SWEEP_BATCH):
            with self._lock:
                for customer_id in customers[start : start + SWEEP_BATCH]:
                    history = self._customers.get(customer_id)
                    if history is None:
                        continue
                    removed += history.trim(cutoff)
                    if not history.entries:
                        del self._customers[customer_id]
        with self._lock:  # bounded per customer: one pass drops those gone quiet
            for customer_id in [c for c, k in self._shown.items() if k[-1].at < cutoff]:
                del self._shown[customer_id]
        return removed

    def add_to_counters(self, increments: Mapping[str, float]) -> None:
        pairs = checked_increments(increments)
        with self._lock:
            for name, value in pairs:
                self._counters[name] = self._counters.get(name, 0.0) + value

    def counters(self, prefix: str = "") -> dict[str, float]:
        with self._lock:
            return {k: v for k, v in self._counters.items() if k.startswith(prefix)}

    def take_budget(
        self, claims: Sequence[tuple[str, int]], expires_at: float
    ) -> tuple[bool, list[int]]:
        checked = checked_claims(claims, expires_at)
        with self._lock:
            now = self._clock()
            counts = [self._budget_count(name, now) for name in checked.names]
            if not checked.fit(counts):
                return False, checked.per_claim(counts)
            after = [c + w for c, w in zip(counts, checked.wanted, strict=True)]
            for name, count in zip(checked.names, after, strict=True):
                self._budgets[name] = (count, expires_at)
            return True, checked.per_claim(after)

    def budget_counts(self, prefix: str = "") -> dict[str, int]:
        with self._lock:
            now = self._clock()
            for name in [n for n, (_, end) in self._budgets.items() if end <= now]:
                del self._budgets[name]  # ended windows: what the other backends expire
            return {n: c for n, (c, _) in self._budgets.items() if n.startswith(prefix)}

    def _budget_count(self, name: str, now: float) -> int:
        """A budget counter's count; the caller holds the lock."""
        count, expires_at = self._budgets.get(name, (0, math.inf))
        return count if expires_at > now else 0

    def remember_shown(self, shown: Sequence[Shown]) -> None:
        with self._lock:
            for item in shown:
                check_customer_id(item.customer_id)
                kept = self._shown.setdefault(item.customer_id, [])
                kept.append(item)
                kept.sort(key=lambda k: k.at)
                del kept[:-MAX_SHOWN]

    def recall_shown(
        self, customer_id: str, action_id: str, channel: str, decision_id: str = ""
    ) -> Shown | None:
        check_customer_id(customer_id)
        cutoff = retention_cutoff(self._clock, self._retention)
        with self._lock:
            kept = [k for k in self._shown.get(customer_id, ()) if k.at >= cutoff]
        return latest_shown(kept, action_id, channel, decision_id)

    def ping(self) -> None:
        """Always reachable."""

    def close(self) -> None:
        with self._lock:
            self._customers.clear()
            self._consent.clear()
            self._shown.clear()

    def _consent_of(self, customer_id: str) -> dict[str, bool]:
        """The customer's consent; the caller holds the lock."""
        stored = self._consent.get(customer_id)
        if not stored:
            return {}
        return {channel: granted for channel, (granted, _) in stored.items()}
