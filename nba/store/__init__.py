"""The interaction store: what each customer did with which action, for Decide to read back.

``RecordOutcome`` writes interactions and every ``Decide`` reads a customer's recent history,
possibly on another replica a second later. All of that goes through the small
:class:`InteractionStore` protocol, so the decision path does not care where history lives.
The store also keeps each customer's latest consent per channel, set by another system (a
preference center) through ``update_consent``; Decide reads history and consent together with
one ``snapshot`` call, one round trip or read transaction whatever the backend.
Three backends are chosen by URL in :func:`open_store`:

* ``memory://`` -- a dict in this process; for the store-less path and callers' unit tests.
* ``sqlite:///path.sqlite3`` -- the embedded default: one file, safe for threads and processes.
* ``redis://host:port/db`` -- shared by several replicas.
* ``redis+cluster://host:port[,host:port]`` -- the same on a Redis Cluster.

Every backend gives the same guarantees: ``record`` is idempotent per (customer, interaction
id) within the retention window, it trims the customer's history older than that window, and
``history`` never returns anything older than it, whether or not it has been removed yet. An
id whose interaction has left the window is new again, removed or not, so no answer depends on
when trimming ran. ``sweep`` removes what trimming on record misses: the history of customers
who went quiet.
The window is ``retention_seconds``, which a rule-set reload may change on a live store.
Consent is not interaction history: no retention applies to it, so an opt-out never expires by
itself; for each channel the update with the newest ``at`` wins, whatever order updates arrive
in and whichever replica applies them.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from nba.errors import StoreError
from nba.pipeline.types import Interaction

__all__ = [
    "Clock",
    "Interaction",
    "InteractionStore",
    "Shown",
    "StoreError",
    "interaction_key",
    "open_store",
]

SUPPORTED_SCHEMES = (
    "memory://",
    "sqlite:///path",
    "redis://host:port/db",
    "rediss://",
    "redis+cluster://host:port[,host:port]",
)

Clock = Callable[[], float]
"""Returns the current unix time in seconds; injectable so retention can be tested."""

MAX_SHOWN = 32  # decisions kept per customer for attributing outcomes (remember_shown)


@dataclass(frozen=True, slots=True)
class Shown:
    """What one decision showed a customer, for attributing their outcomes to it."""

    customer_id: str
    decision_id: str
    at: float
    actions: tuple[tuple[str, str], ...]  # (action id, channel) of each recommendation
    payload: str  # opaque to the store: what the learner needs (attribution.py)

    def showed(self, action_id: str, channel: str) -> bool:
        return (action_id, channel) in self.actions

    def encode(self) -> str:
        return json.dumps(
            [self.decision_id, self.at, [list(a) for a in self.actions], self.payload],
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, customer_id: str, text: str) -> Shown:
        decision_id, at, actions, payload = json.loads(text)
        return cls(customer_id, str(decision_id), float(at), _pairs(actions), str(payload))


def _pairs(items: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(a), str(c)) for a, c in items)


def latest_shown(
    kept: Sequence[Shown], action_id: str, channel: str, decision_id: str
) -> Shown | None:
    """recall_shown over one customer's kept decisions, in any order (every backend's rule)."""
    if decision_id:
        for item in kept:
            if item.decision_id == decision_id:
                return item
    showing = [k for k in kept if k.showed(action_id, channel)]
    return max(showing, key=lambda k: k.at, default=None)


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

    def record(self, customer_id: str, interaction: Interaction) -> bool:
        """Store once. Returns False (and changes nothing) when interaction.interaction_id
        (or, if empty, interaction_key(...)) was recorded before for this customer and that
        interaction is still inside the retention window: retries are idempotent. Otherwise
        stores it (replacing the expired one with the same id, if any), trims that customer's
        history older than the window and returns True, also for an interaction that is itself
        older than the window and so is dropped at once."""
        ...

    def history(self, customer_id: str, since: float) -> list[Interaction]:
        """Interactions with at >= since, oldest first, each with its interaction_id filled.
        Interactions with the same ``at`` come in an unspecified order."""
        ...

    def update_consent(self, customer_id: str, changes: Mapping[str, bool], at: float) -> None:
        """Stores the customer's consent (True: opted in) for each channel in ``changes``, as of
        ``at`` (unix seconds). Per channel the newest ``at`` wins, atomically: an update older
        than the stored one changes nothing, so a late, out-of-order delivery or a race between
        replicas cannot bring back a stale value; at an equal ``at`` the later call wins.
        Channels not named keep their value. Consent is never trimmed, swept nor expired.
        ValueError for an empty customer id or channel, a non-bool value or a non-finite at."""
        ...

    def consent(self, customer_id: str) -> dict[str, bool]:
        """The stored consent per channel; an empty dict when nothing is stored."""
        ...

    def snapshot(
        self, customer_id: str, since: float, with_consent: bool
    ) -> tuple[list[Interaction], dict[str, bool]]:
        """``(history(customer_id, since), consent(customer_id))`` read together, in one round
        trip or read transaction: what Decide reads for each decision. With ``with_consent``
        false the consent is not read and comes back as ``{}``."""
        ...

    def snapshots(
        self, customer_ids: Sequence[str], since: float, with_consent: bool
    ) -> dict[str, tuple[list[Interaction], dict[str, bool]]]:
        """``snapshot()`` of each customer (a repeated id once), in as few round trips as the
        backend allows (a read per BULK_READ customers): what `nba batch` reads for a
        partition. Each customer's pair is read together; customers are not one snapshot."""
        ...

    def sweep(self, now: float | None = None) -> int:
        """Removes every customer's interactions older than the retention window as of
        ``now`` (default: the store's clock), with their idempotency ids: a retry of a swept
        interaction is recorded again, as after trimming (and if it is itself older than the
        window, it is trimmed again at once and never shown). Consent is kept. Returns how
        many interactions were removed; a backend that expires data by itself returns 0.
        Meant to be called periodically; it works in short batches, so records go on."""
        ...

    @property
    def retention_seconds(self) -> float:
        """The retention window, in seconds."""
        ...

    @retention_seconds.setter
    def retention_seconds(self, value: float) -> None:
        """Changes the window for later records, reads and sweeps (ValueError unless positive
        and finite). A shorter window hides older interactions at once; a longer one shows
        again those not yet removed, but cannot bring back what was trimmed or swept."""
        ...

    def add_to_counters(self, increments: Mapping[str, float]) -> None:
        """Adds each increment to its named counter (absent: 0), all at once and atomically
        across threads, processes and replicas: the learned models' evidence
        (nba/scoring/evidence.py). Counters are shared by every customer, never trimmed,
        swept nor expired. ValueError for an empty name or a non-finite increment."""
        ...

    def counters(self, prefix: str = "") -> dict[str, float]:
        """Every counter whose name starts with ``prefix``, in one read: what a worker's
        model refresh reads every few seconds."""
        ...

    def take_budget(
        self, claims: Sequence[tuple[str, int]], expires_at: float
    ) -> tuple[bool, list[int]]:
        """Claims one unit of each (budget counter, limit) pair, all or nothing, atomically
        across threads, processes and replicas (volume constraints, nba/pipeline/budgets.py).
        If every named counter (absent or expired: 0) can take what is claimed of it without
        passing its limit (a counter named twice takes 2), adds to all of them, sets their
        expiry to ``expires_at`` (unix seconds; ``math.inf``: never) and returns (True, the
        counts after); otherwise changes nothing and returns (False, the counts now), one
        count per claim, in order. ValueError for an empty name, a limit that is not an int
        >= 0, one counter with two limits, or a NaN ``expires_at``."""
        ...

    def budget_counts(self, prefix: str = "") -> dict[str, int]:
        """Every unexpired budget counter whose name starts with ``prefix``, in one read."""
        ...

    def remember_shown(self, shown: Sequence[Shown]) -> None:
        """Keeps, per customer, what each decision showed and the payload an outcome of it
        will need (nba/scoring/attribution.py): the customer's latest MAX_SHOWN decisions,
        for the retention window. One round trip or transaction for the whole batch."""
        ...

    def recall_shown(
        self, customer_id: str, action_id: str, channel: str, decision_id: str = ""
    ) -> Shown | None:
        """The decision `decision_id` of the customer, if kept; without an id (or when it
        is not kept), the latest kept decision that showed the action on the channel."""
        ...

    def ping(self) -> None:
        """Raises StoreError if the backend is unreachable; for health checks."""
        ...

    def close(self) -> None:
        """Releases connections. The store must not be used afterwards."""
        ...


BULK_READ = 500  # customers per round trip or statement in snapshots()


def open_store(url: str, *, retention_seconds: float, clock: Clock = time.time) -> InteractionStore:
    """Opens the backend named by ``url``.

    Raises ValueError for a URL no backend understands. The sqlite backend creates its file
    (and parent directories) here and raises StoreError if it cannot; the Redis backend
    connects lazily, so a replica can start while Redis is down and report it through ping().
    Backend modules are imported here, on demand, so that the store-less path does not load
    the Redis client.
    """
    retention_seconds = check_retention(retention_seconds)
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
    if scheme in ("redis+cluster", "rediss+cluster"):
        from nba.store.redis_cluster import RedisClusterStore

        return RedisClusterStore.from_url(url, retention_seconds=retention_seconds, clock=clock)
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


def checked_increments(increments: Mapping[str, float]) -> list[tuple[str, float]]:
    """The increments as (name, float) pairs, or ValueError naming the bad one."""
    pairs = []
    for name, value in increments.items():
        if not name:
            raise ValueError("a counter name must not be empty")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"counter {name!r}: increment {value!r} is not a finite number")
        pairs.append((name, float(value)))
    return pairs


@dataclass(frozen=True, slots=True)
class BudgetClaims:
    """A take_budget call's claims, checked: each counter once, with what it is asked for."""

    names: tuple[str, ...]  # each counter once, in the order first claimed
    wanted: tuple[int, ...]  # how many each is asked for
    limits: tuple[int, ...]
    order: tuple[int, ...]  # for each claim, its counter's index in names

    def fit(self, counts: Sequence[int]) -> bool:
        """Can counters at `counts` (per name) take what is claimed of them?"""
        return all(c + w <= lim for c, w, lim in zip(counts, self.wanted, self.limits, strict=True))

    def per_claim(self, counts: Sequence[int]) -> list[int]:
        """Counts per name, as take_budget answers them: one per claim."""
        return [int(counts[i]) for i in self.order]


def checked_claims(claims: Sequence[tuple[str, int]], expires_at: float) -> BudgetClaims:
    """take_budget's arguments checked the same way by every backend (see its docstring)."""
    if math.isnan(expires_at):
        raise ValueError("expires_at must be a unix time or math.inf, not NaN")
    index: dict[str, int] = {}
    wanted: list[int] = []
    limits: list[int] = []
    order = []
    for name, limit in claims:
        if not name:
            raise ValueError("a budget counter name must not be empty")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"budget {name!r}: limit {limit!r} is not an int >= 0")
        if name not in index:
            index[name] = len(index)
            wanted.append(0)
            limits.append(limit)
        elif limits[index[name]] != limit:
            raise ValueError(
                f"budget {name!r} is claimed with limits {limits[index[name]]} and {limit}"
            )
        wanted[index[name]] += 1
        order.append(index[name])
    return BudgetClaims(tuple(index), tuple(wanted), tuple(limits), tuple(order))


def check_customer_id(customer_id: str) -> None:
    """Rejects an empty customer id: it would share history between all anonymous callers
    and, in Redis, break the per-customer hash tag."""
    if not customer_id:
        raise ValueError("customer_id must be a non-empty string")


class RetentionSetting:
    """The retention window a store keeps, checked whenever it is set (every store has one)."""

    _retention: float

    @property
    def retention_seconds(self) -> float:
        return self._retention

    @retention_seconds.setter
    def retention_seconds(self, value: float) -> None:
        self._retention = check_retention(value)


def check_retention(retention_seconds: float) -> float:
    """The retention window as a float; ValueError unless it is a positive, finite number."""
    if (
        isinstance(retention_seconds, bool)
        or not isinstance(retention_seconds, int | float)
        or not math.isfinite(retention_seconds)
        or retention_seconds <= 0
    ):
        raise ValueError(
            f"retention_seconds must be a positive number of seconds, got {retention_seconds!r}"
        )
    return float(retention_seconds)


def retention_cutoff(clock: Clock, retention_seconds: float) -> float:
    """The oldest ``at`` still inside the retention window."""
    return clock() - retention_seconds


def sweep_cutoff(clock: Clock, retention_seconds: float, now: float | None) -> float:
    """The cutoff of a sweep as of ``now`` (the clock's time when None)."""
    if now is None:
        return retention_cutoff(clock, retention_seconds)
    if not math.isfinite(now):
        raise ValueError(f"now must be a finite unix time, got {now!r}")
    return now - retention_seconds


def checked_consent(
    customer_id: str, changes: Mapping[str, bool], at: float
) -> list[tuple[str, bool]]:
    """The (channel, granted) pairs of a consent update, checked the same way by every
    backend: a non-empty customer id and channels, bool values (not ints or strings, which
    would be read as opt-ins), a finite ``at``."""
    check_customer_id(customer_id)
    if not math.isfinite(at):
        raise ValueError(f"consent at must be a finite unix time, got {at!r}")
    pairs = list(changes.items())
    for channel, granted in pairs:
        if not isinstance(channel, str) or not channel:
            raise ValueError(f"consent channels must be non-empty strings, got {channel!r}")
        if not isinstance(granted, bool):
            raise ValueError(f"consent for {channel!r} must be True or False, got {granted!r}")
    return pairs


def prepared(customer_id: str, interaction: Interaction) -> Interaction:
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
