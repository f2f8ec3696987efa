"""A real Connect client from npm (connect-node, JSON form) calls Decide on `nba serve --http-port`.

examples/connect-node/decide.js uses the client protoc-gen-es generates from protos/, over
HTTP/1.1 and HTTP/2; each example is decided from Node over HTTP and from the generated
Python stub over gRPC, and the recommendations compared. A malformed request comes back as
the Connect error the server sent (InvalidArgument naming the field), not as a transport error.

Node and examples/connect-node/node_modules (`npm ci --prefix examples/connect-node`) are
needed: skipped without them on a developer's machine, failed under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import EXAMPLES, REPO, RULES, example
from tests.helpers import served
from tests.test_node_client import LINE, Picks

NODE_DIR = REPO / "examples" / "connect-node"
DECIDE_JS = NODE_DIR / "decide.js"
NAMES = ("web_active_travel_money.json", "call_center_at_risk.json", "mobile_app_onboarding.json")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, once the example's dependencies are installed."""
    path = shutil.which("node")
    if path is None:
        missing = "node is not on PATH"
    elif not (NODE_DIR / "node_modules" / "@connectrpc" / "connect-node").is_dir():
        missing = f"the Connect example's dependencies are missing: npm ci --prefix {NODE_DIR}"
    else:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing} (CI=true requires the Connect client test to run)", pytrace=False)
    pytest.skip(missing)


@dataclass
class Addresses:
    http: str
    grpc: str


@pytest.fixture(scope="module")
def server() -> Iterator[Addresses]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        http_port = s.getsockname()[1]
    args = ("--rules", str(RULES), "--port", "0", "--http-port", str(http_port))
    with served(*args, "--store", "memory://", "--workers", "1", "--no-watch") as running:
        yield Addresses(f"http://127.0.0.1:{http_port}", f"127.0.0.1:{running.port}")


def run_node(
    node: str, base_url: str, request: Path, http_version: str = "1.1"
) -> subprocess.CompletedProcess[str]:
    command = [node, str(DECIDE_JS), "--base-url", base_url, "--http-version", http_version]
    return subprocess.run(
        [*command, str(request)], capture_output=True, text=True, timeout=60, cwd=NODE_DIR
    )


def node_decides(node: str, base_url: str, request: Path, http_version: str = "1.1") -> Picks:
    result = run_node(node, base_url, request, http_version)
    assert result.returncode == 0, f"decide.js failed: {result.stderr}"
    matches = (LINE.match(line) for line in result.stdout.splitlines())
    return [(int(m[1]), m[2], m[3], float(m[4])) for m in matches if m]


def grpc_decides(address: str, name: str) -> Picks:
    with grpc.insecure_channel(address) as channel:
        response = pb_grpc.DecisionServiceStub(channel).Decide(example(name), timeout=10)
    return [(r.rank, r.action_id, r.channel, r.score) for r in response.recommendations]


@pytest.mark.parametrize("name", NAMES)
def test_connect_node_gets_what_grpc_gets(node: str, server: Addresses, name: str) -> None:
    over_grpc = grpc_decides(server.grpc, name)
    assert over_grpc, f"{name}: no recommendation over gRPC"
    assert node_decides(node, server.http, EXAMPLES / name) == over_grpc


def test_connect_node_over_http2(node: str, server: Addresses) -> None:
    name = NAMES[0]
    assert node_decides(node, server.http, EXAMPLES / name, "2") == grpc_decides(server.grpc, name)


def test_connect_node_reads_the_connect_error(node: str, server: Addresses, tmp_path: Path) -> None:
    request = json.loads((EXAMPLES / NAMES[0]).read_text(encoding="utf-8"))
    request["profile"]["age"] = "old"
    path = tmp_path / "bad_age.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    result = run_node(node, server.http, path)
    assert result.returncode == 1
    assert result.stderr.startswith("InvalidArgument: profile.age: "), result.stderr


def test_the_committed_generated_client_is_fresh(node: str, tmp_path: Path) -> None:
    """examples/connect-node/gen matches protos/ (regenerate: `npm run generate` there)."""
    import sys

    plugin = NODE_DIR / "node_modules" / ".bin" / "protoc-gen-es"
    protos = REPO / "protos"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(protos),
            f"--plugin=protoc-gen-es={plugin}",
            f"--es_out={tmp_path}",
            "--es_opt=target=js+dts,import_extension=js",
            str(protos / "nba/v1/decisioning.proto"),
            str(protos / "google/api/annotations.proto"),
            str(protos / "google/api/http.proto"),
        ],
        check=True,
        env={**os.environ, "PATH": f"{Path(node).parent}:{os.environ['PATH']}"},
    )
    for fresh in tmp_path.rglob("*.*s"):
        committed = NODE_DIR / "gen" / fresh.relative_to(tmp_path)
        assert committed.read_text() == fresh.read_text(), (
            f"{committed} is stale: `npm run generate --prefix examples/connect-node`"
        )
