"""The HTTP face of a real `nba serve`: Connect unary JSON and proto, errors, CORS, health.

Each test talks to a real server process over loopback with httpx, as curl or a browser's
`fetch` would: the same recommendations as gRPC, Connect error objects naming the field
with the Connect spec's HTTP status, CORS only for the configured origin, HTTP/2 by prior
knowledge (h2c), workers sharing the HTTP port, and /readyz following the store.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from google.protobuf import json_format

from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import EXAMPLES, RULES, example
from tests.helpers import served
from tests.own_redis import free_port

pytestmark = pytest.mark.slow

DECIDE = "/nba.v1.DecisionService/Decide"
JSON = {"content-type": "application/json"}
ALLOWED = "https://shop.example"
EXAMPLE = "web_active_travel_money.json"
TIMEOUT = httpx.Timeout(10.0)


@dataclass
class Face:
    url: str
    grpc_address: str


@pytest.fixture(scope="module")
def face() -> Iterator[Face]:
    """`nba serve` on the bundled rules, HTTP on a free port, one allowed CORS origin."""
    http_port = free_port()
    args = ("--rules", str(RULES), "--port", "0", "--http-port", str(http_port))
    args += ("--store", "memory://", "--workers", "1", "--no-watch", "--cors-origin", ALLOWED)
    with served(*args) as server:
        assert f"http 127.0.0.1:{http_port}" in server.ready
        yield Face(f"http://127.0.0.1:{http_port}", f"127.0.0.1:{server.port}")


@pytest.fixture(scope="module")
def client(face: Face) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=face.url, timeout=TIMEOUT) as c:
        yield c


def picks(response: pb.DecideResponse) -> list[tuple[str, str, float]]:
    return [(r.action_id, r.channel, r.score) for r in response.recommendations]


def test_json_decide_answers_what_grpc_answers(face: Face, client: httpx.Client) -> None:
    body = (EXAMPLES / EXAMPLE).read_bytes()  # the file as a user would curl it
    answer = client.post(DECIDE, content=body, headers=JSON)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    over_http = json_format.Parse(answer.text, pb.DecideResponse())
    with grpc.insecure_channel(face.grpc_address) as channel:
        over_grpc = pb_grpc.DecisionServiceStub(channel).Decide(example(EXAMPLE), timeout=10)
    assert picks(over_http), "the example should get recommendations"
    assert picks(over_http) == picks(over_grpc)
    assert over_http.ruleset_version == over_grpc.ruleset_version


def test_binary_proto_decide(client: httpx.Client) -> None:
    request = example(EXAMPLE).SerializeToString()
    answer = client.post(DECIDE, content=request, headers={"content-type": "application/proto"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/proto"
    assert pb.DecideResponse.FromString(answer.content).recommendations


def test_annotation_path_serves_decide(client: httpx.Client) -> None:
    answer = client.post("/v1/decide", content=(EXAMPLES / EXAMPLE).read_bytes(), headers=JSON)
    assert answer.status_code == 200
    assert answer.json()["recommendations"]


def connect_error(answer: httpx.Response, status: int) -> str:
    """The Connect error object's message, once its status and code are as expected."""
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert set(error) == {"code", "message"}
    assert "Traceback" not in error["message"]
    return str(error["message"])


def test_field_of_the_wrong_type_names_the_field(client: httpx.Client) -> None:
    answer = client.post(DECIDE, content=b'{"customerId": 42}', headers=JSON)
    assert answer.json()["code"] == "invalid_argument"
    assert connect_error(answer, 400).startswith("customer_id: ")


def test_unknown_field_is_refused_by_name(client: httpx.Client) -> None:
    answer = client.post(DECIDE, content=b'{"customerId": "c1", "channnel": "web"}', headers=JSON)
    message = connect_error(answer, 400)
    assert message.startswith("channnel: unknown field")
    assert answer.json()["code"] == "invalid_argument"


def test_invalid_json_names_the_body(client: httpx.Client) -> None:
    answer = client.post(DECIDE, content=b'{"customerId": ', headers=JSON)
    assert connect_error(answer, 400).startswith("body: ")


def test_validation_error_names_the_profile_field(client: httpx.Client) -> None:
    request = json_format.MessageToDict(example(EXAMPLE))
    request["profile"]["age"] = "old"
    answer = client.post(DECIDE, json=request)
    assert connect_error(answer, 400).startswith("profile.age: ")
    assert answer.json()["code"] == "invalid_argument"


def test_wrong_content_type_is_415(client: httpx.Client) -> None:
    answer = client.post(DECIDE, content=b"customerId=c1", headers={"content-type": "text/plain"})
    assert connect_error(answer, 415).startswith("content-type: ")
    assert "application/json" in answer.headers["accept-post"]


def test_malformed_timeout_header_names_it(client: httpx.Client) -> None:
    headers = {**JSON, "connect-timeout-ms": "soon"}
    answer = client.post(DECIDE, content=(EXAMPLES / EXAMPLE).read_bytes(), headers=headers)
    assert connect_error(answer, 400).startswith("connect-timeout-ms: ")


def test_rejected_offer_rests_on_the_next_decide(client: httpx.Client) -> None:
    """The website loop over HTTP: decide, record REJECT, decide again."""
    request = json_format.MessageToDict(example(EXAMPLE))
    request["customerId"] = "http-loop-1"
    first = client.post(DECIDE, json=request).json()["recommendations"][0]
    outcome = {
        "customerId": "http-loop-1",
        "interactionId": "http-loop-1-reject",
        "interaction": {
            "actionId": first["actionId"],
            "channel": first["channel"],
            "outcome": "REJECT",
        },
    }
    record = "/nba.v1.DecisionService/RecordOutcome"
    assert client.post(record, json=outcome).json()["recorded"] is True
    retry = client.post(record, json=outcome).json()  # proto3 JSON omits a false field
    assert retry == {"interactionId": "http-loop-1-reject"}  # recorded once only
    again = client.post(DECIDE, json=request).json()["recommendations"]
    assert first["actionId"] not in [r["actionId"] for r in again]


def preflight(client: httpx.Client, origin: str) -> httpx.Response:
    return client.options(
        DECIDE,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,connect-protocol-version,authorization",
        },
    )


def test_cors_preflight_allows_the_configured_origin(client: httpx.Client) -> None:
    answer = preflight(client, ALLOWED)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert {"content-type", "connect-protocol-version", "authorization"} <= set(
        allowed.replace(" ", "").split(",")
    )
    call = client.post(
        DECIDE, content=(EXAMPLES / EXAMPLE).read_bytes(), headers={**JSON, "origin": ALLOWED}
    )
    assert call.headers["access-control-allow-origin"] == ALLOWED
    assert "grpc-status" in call.headers["access-control-expose-headers"].lower()


def test_cors_preflight_refuses_another_origin(client: httpx.Client) -> None:
    answer = preflight(client, "https://evil.example")
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers
    call = client.post(DECIDE, content=b"{}", headers={**JSON, "origin": "https://evil.example"})
    assert "access-control-allow-origin" not in call.headers


def test_health_and_static_page(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "live"}
    assert client.get("/readyz").json() == {"status": "ready"}
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]


def test_http2_prior_knowledge(face: Face) -> None:
    with httpx.Client(http1=False, http2=True, timeout=TIMEOUT) as h2:
        answer = h2.post(
            f"{face.url}{DECIDE}", content=(EXAMPLES / EXAMPLE).read_bytes(), headers=JSON
        )
    assert answer.http_version == "HTTP/2"
    assert answer.json()["recommendations"]


def test_no_store_is_failed_precondition() -> None:
    port = free_port()
    args = ("--rules", str(RULES), "--port", "0", "--http-port", str(port), "--store", "none")
    with served(*args, "--workers", "1", "--no-watch"), httpx.Client(timeout=TIMEOUT) as c:
        interaction = {"actionId": "card_travel_rewards", "channel": "web", "outcome": "CLICK"}
        outcome = {"customerId": "c1", "interaction": interaction}
        answer = c.post(
            f"http://127.0.0.1:{port}/nba.v1.DecisionService/RecordOutcome", json=outcome
        )
        assert answer.json()["code"] == "failed_precondition"
        assert "--store none" in connect_error(answer, 400)
        assert c.get(f"http://127.0.0.1:{port}/readyz").status_code == 200


def test_two_workers_share_the_http_port() -> None:
    port = free_port()
    args = ("--rules", str(RULES), "--port", "0", "--http-port", str(port), "--store", "none")
    with served(*args, "--workers", "2", "--no-watch"):
        seen: set[str] = set()
        deadline = time.monotonic() + 20
        while len(seen) < 2 and time.monotonic() < deadline:
            # a fresh connection per call: the kernel spreads connections, not calls
            with httpx.Client(timeout=TIMEOUT) as c:
                status = c.post(f"http://127.0.0.1:{port}/v1/status", json={})
            seen.add(status.json()["worker"])
    assert len(seen) == 2, f"only {seen} answered"


def test_readyz_follows_the_store(own_redis: tuple[subprocess.Popen[bytes], int]) -> None:
    redis, redis_port = own_redis
    port = free_port()
    args = ("--rules", str(RULES), "--port", "0", "--http-port", str(port))
    args += ("--store", f"redis://127.0.0.1:{redis_port}/0", "--workers", "1", "--no-watch")
    with served(*args), httpx.Client(timeout=TIMEOUT) as c:
        assert c.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        redis.send_signal(signal.SIGKILL)
        redis.wait(timeout=10)
        answer = c.get(f"http://127.0.0.1:{port}/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"status": "not ready", "reason": "interaction store unreachable"}
        assert c.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
