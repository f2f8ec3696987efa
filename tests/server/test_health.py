"""The `nba.rules` health name follows reloads on every face that serves one holder."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nba.server.grpc_face import RULES_HEALTH, build_server
from nba.server.reload import LoadResult, RuleSetHolder
from tests.conftest import RULES

CARDS = "actions/cards.yaml"


def rules_health(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        request = health_pb2.HealthCheckRequest(service=RULES_HEALTH)
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status


def test_two_faces_on_one_holder_both_follow_a_broken_and_a_fixed_edit(tmp_path: Path) -> None:
    rules = shutil.copytree(RULES, tmp_path / "rules")
    cards = rules / CARDS
    original = cards.read_text()
    holder = RuleSetHolder(rules, "reference")
    holder.load()
    heard: list[LoadResult] = []
    holder.add_listener(heard.append)  # registered before the faces: they must not replace it
    faces = [build_server(holder, "127.0.0.1", 0, threads=2) for _ in range(2)]
    try:
        assert [rules_health(f.port) for f in faces] == [health_pb2.HealthCheckResponse.SERVING] * 2
        cards.write_text(original + "\n  - id: [broken\n")
        assert not holder.reload()
        broken = [rules_health(f.port) for f in faces]
        cards.write_text(original.replace("value: 120", "value: 121", 1))
        assert holder.reload()
        fixed = [rules_health(f.port) for f in faces]
    finally:
        for face in faces:
            face.server.stop(grace=None)
        holder.close()
    assert broken == [health_pb2.HealthCheckResponse.NOT_SERVING] * 2
    assert fixed == [health_pb2.HealthCheckResponse.SERVING] * 2
    assert [r.loaded for r in heard] == [False, True]
