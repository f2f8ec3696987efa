"""The interaction store: what each customer did with which action, for Decide to read back.

``RecordOutcome`` writes interactions and every ``Decide`` reads a customer's recent history,
possibly on another replica a second later. AllOf of that goes through the small
:class:`InteractionStore` protocol, so the decision path does not care where history lives.
Three backends are chosen by URL in :func:`open_store`:

* ``memory://`` -- a dict in this process; for the store-less path and callers' unit tests.
* ``sqlite:///path.sqlite3`` -- the embedded default: one file, safe for threads and processes.
* ``redis://host:port/db`` -- shared by several replicas, Redis Cluster compatible.

Every backend gives the same guarantees: ``record`` is idempotent per (customer, interaction
id), it trims the customer's history older than the retention window, and ``history`` never
returns anything older than that window, whether or not it has been trimmed yet.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "Clock",
    "InteractionStore",
    "StoreError",
    "StoredInteraction",
    "interaction_key",
    "open_store",
]

SUPPORTED_SCHEMES = ("memory://", "sqlite:///path", "redis://host:port/db", "rediss://")

Clock = Callable[[], float]
"""Returns the current unix time in seconds; injectable so retention can be tested."""


class StoreError(Exception):
    """The backend failed (unreachable, locked, corrupt). The message names the operation and
    the store URL without its password, so it can be logged and shown to operators as is."""


@dataclass(frozen=True, slots=True)
class StoredInteraction:
    """One interaction of a customer with an action on a channel.

    ``outcome`` is the ``nba.v1.Outcome`` enum number (1 IMPRESSION, 2 CLICK, 3 ACCEPT,
    4 DISMISS, 5 REJECT, 6 COMPLAINT); kept as a plain int so the store does not depend on the
    generated protobuf code.
    """

    action_id: str
    channel: str
    outcome: int
    at: float
    interaction_id: str = ""
    decision_id: str = ""


def interaction_key(customer_id: str, action_id: str, channel: str, outcome: int, at: float) -> str:
    """Deterministic id for an interaction that has no client-chosen id.

    A short hex digest of the fields, with ``at`` rounded to microseconds so that a timestamp
    that went through protobuf or a database still gives the same key. Decide uses it to avoid
    counting twice an interaction that is both stored and sent in the request. The fields are
    JSON-encoded before hashing so that no choice of separator characters in the ids can make
    two different interactions collide.
    """
    fields = [customer_id, action_id, channel, int(outcome), round(at * 1_000_000)]
    payload = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.blake2b(payload, digest_size=10).hexdigest()


class InteractionStore(Protocol):
    """Where interactions are kept. Implementations are safe to call from many threads."""

    def record(self, customer_id: str, interaction: StoredInteraction) -> bool:
        """Store once. Returns False (and changes nothing) when interaction.interaction_id
        (or, if empty, interaction_key(...)) was recorded before for this customer: retries are
        idempotent. Trims that customer's history older than the retention window."""
        ...

    def history(self, customer_id: str, since: float) -> list[StoredInteraction]:
        """Interactions with at >= since, oldest first, each with its interaction_id filled.
        Interactions with the same ``at`` come in an unspecified order."""
        ...

    def ping(self) -> None:
        """Raises StoreError if the backend is unreachable; for health checks."""
        ...

    def close(self) -> None:
        """Releases connections. The store must not be used afterwards."""
        ...


def open_store(url: str, *, retention_seconds: float, clock: Clock = time.time) -> InteractionStore:
    """Opens the backend named by ``url``.

    Raises ValueError for a URL no backend understands. The sqlite backend creates its file
    (and parent directories) here and raises StoreError if it cannot; the Redis backend
    connects lazily, so a replica can start while Redis is down and report it through ping().
    Backend modules are imported here, on demand, so that the store-less path does not load
    the Redis client.
    """
    if retention_seconds <= 0:
        raise ValueError(f"retention_seconds must be positive, got {retention_seconds!r}")
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme == "memory":
        from nba.store.memory import MemoryStore

        return MemoryStore.from_url(url, retention_seconds=retention_seconds, clock=clock)
    if scheme == "sqlite":
        from nba.store.sqlite import SqliteStore

        return SqliteStore.from_url(url, retention_seconds=retention_seconds, clock=clock)
    if scheme in ("redis", "rediss"):
        from nba.store.redis_store import RedisStore

        return RedisStore.from_url(url, retention_seconds=retention_seconds, clock=clock)
    raise ValueError(
        f"unsupported interaction store URL {redact_url(url)!r}: "
        f"use one of {', '.join(SUPPORTED_SCHEMES)}"
    )


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``, fit for error messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if not password:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def check_customer_id(customer_id: str) -> None:
    """Rejects an empty customer id: it would share history between all anonymous callers
    and, in Redis, break the per-customer hash tag."""
    if not customer_id:
        raise ValueError("customer_id must be a non-empty string")


def retention_cutoff(clock: Clock, retention_seconds: float) -> float:
    """The oldest ``at`` still inside the retention window."""
    return clock() - retention_seconds


def prepared(customer_id: str, interaction: StoredInteraction) -> StoredInteraction:
    """The interaction as it is stored: checked, with its idempotency id (the client's, or
    else the deterministic key). Every backend records through this, so they agree on ids
    and reject the same bad input with ValueError instead of a backend-specific error."""
    check_customer_id(customer_id)
    if not math.isfinite(interaction.at):
        raise ValueError(f"interaction.at must be a finite unix time, got {interaction.at!r}")
    if interaction.interaction_id:
        return interaction
    key = interaction_key(
        customer_id, interaction.action_id, interaction.channel, interaction.outcome, interaction.at
    )
    return replace(interaction, interaction_id=key)
