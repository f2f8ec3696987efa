"""Redis Cluster interaction store: the Redis backend's key layout and scripts, spread by slot.

    redis+cluster://host:port[,host:port...]   (rediss+cluster:// for TLS)

Every key of a customer carries the customer id as hash tag (redis_store.py), so one
customer's history, ids and consent live in one slot: the record and consent scripts and
the snapshot's two commands stay single-slot, as Cluster requires. The learned models'
counters are one hash, so on one node. redis-py's RedisCluster follows MOVED and ASK
redirections and rediscovers the slots when the cluster changes. The only difference from
the single-node backend is the snapshot's round trip: there it is written straight on a
pooled connection; here it is a (non-transactional) cluster pipeline to the slot's node.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis
from redis.cluster import ClusterNode

from nba.store import Clock, redact_url
from nba.store.redis_store import SOCKET_TIMEOUT_SECONDS, RedisStore

SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


class RedisClusterStore(RedisStore):
    """RedisStore on a Redis Cluster (see the module docstring)."""

    @classmethod
    def from_url(cls, url: str, *, retention_seconds: float, clock: Clock) -> RedisClusterStore:
        """``redis+cluster://[:password@]host:port[,host:port...]``; connects on first use."""
        parts = urlsplit(url)
        scheme = SCHEMES.get(parts.scheme.lower())
        hosts = parts.netloc.rpartition("@")[2]
        if scheme is None or not hosts:
            raise ValueError(
                f"redis cluster URL {redact_url(url)!r}: use redis+cluster://host:port[,host:port]"
            )
        userinfo = parts.netloc.rpartition("@")[0]
        seeds = [_node(seed) for seed in hosts.split(",")]
        first = f"{userinfo}@{hosts.split(',')[0]}" if userinfo else hosts.split(",")[0]
        client = redis.RedisCluster.from_url(
            urlunsplit((scheme, first, parts.path, parts.query, "")),
            startup_nodes=seeds,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        )
        return cls(client, url=url, retention_seconds=retention_seconds, clock=clock)

    def _pipelined(self, commands: list[tuple[str, ...]]) -> list[object]:
        pipeline = self._client.pipeline(transaction=False)
        for command in commands:
            pipeline.execute_command(*command)
        return list(pipeline.execute())


def _node(seed: str) -> ClusterNode:
    host, _, port = seed.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"redis cluster node {seed!r}: expected host:port")
    return ClusterNode(host.strip("[]"), int(port))


__all__ = ["RedisClusterStore"]
