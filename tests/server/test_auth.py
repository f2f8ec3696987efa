"""Bearer tokens with scopes, against a real `nba serve --auth-tokens` process.

Pinned: each call needs its scope (decide, record, consent, admin) and every other token
is PERMISSION_DENIED naming the scope, never the token; no token or an unknown one is
UNAUTHENTICATED; health needs no token; reflection needs admin; the file is reloaded
when it changes and a broken edit keeps the last good tokens (logged with file:line).
The token file parser is also pinned in-process (file:line for each kind of mistake).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from nba.server.auth import Scope, TokenFileError, read_tokens
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import example
from tests.server.nba_process import ServerProcess, serving

TOKENS = {"web": "web-secret-1", "crm": "crm-secret-2", "ops": "ops-secret-3"}
SCOPES = {"web": ["decide", "record"], "crm": ["consent"], "ops": ["admin"]}


def token_file(path: Path, tokens: dict[str, str], scopes: dict[str, list[str]]) -> Path:
    lines = ["tokens:"]
    for name, token in tokens.items():
        digest = hashlib.sha256(token.encode()).hexdigest()
        lines.append(f"  - {{name: {name}, sha256: {digest}, scopes: [{', '.join(scopes[name])}]}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def consent_request() -> pb.UpdateConsentRequest:
    update = pb.UpdateConsentRequest(customer_id="c-auth-1", consent={"email": False})
    update.at.FromSeconds(1_000)
    return update


def outcome_request() -> pb.RecordOutcomeRequest:
    record = pb.RecordOutcomeRequest(customer_id="c-auth-1", interaction_id="auth-1")
    record.interaction.action_id = "card_cashback"
    record.interaction.channel = "mobile_app"
    record.interaction.outcome = pb.DISMISS
    record.interaction.at.FromSeconds(1_000)
    return record


Call = Callable[[pb_grpc.DecisionServiceStub, list[tuple[str, str]]], Any]
CALLS: dict[Scope, Call] = {
    Scope.DECIDE: lambda s, m: s.Decide(
        example("web_active_travel_money.json"), metadata=m, timeout=10
    ),
    Scope.RECORD: lambda s, m: s.RecordOutcome(outcome_request(), metadata=m, timeout=10),
    Scope.CONSENT: lambda s, m: s.UpdateConsent(consent_request(), metadata=m, timeout=10),
    Scope.ADMIN: lambda s, m: s.GetRuleSetStatus(
        pb.GetRuleSetStatusRequest(), metadata=m, timeout=10
    ),
}


@pytest.fixture(scope="module")
def tokens_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return token_file(tmp_path_factory.mktemp("auth") / "tokens.yaml", TOKENS, SCOPES)


@pytest.fixture(scope="module")
def server(tokens_path: Path) -> Iterator[ServerProcess]:
    with serving("--auth-tokens", str(tokens_path)) as running:
        yield running


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def code_of(call: Call, channel: grpc.Channel, metadata: list[tuple[str, str]]) -> grpc.StatusCode:
    try:
        call(pb_grpc.DecisionServiceStub(channel), metadata)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


@pytest.mark.slow
@pytest.mark.parametrize("scope", list(Scope))
def test_each_call_needs_its_scope_and_every_other_token_is_denied(
    channel: grpc.Channel, scope: Scope
) -> None:
    call = CALLS[scope]
    for name, token in TOKENS.items():
        expected = (
            grpc.StatusCode.OK if scope in SCOPES[name] else grpc.StatusCode.PERMISSION_DENIED
        )
        assert code_of(call, channel, bearer(token)) == expected, (scope, name)


@pytest.mark.slow
def test_permission_denied_names_the_scope_and_never_the_token(channel: grpc.Channel) -> None:
    stub = pb_grpc.DecisionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as denied:
        stub.UpdateConsent(consent_request(), metadata=bearer(TOKENS["web"]), timeout=10)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'consent' scope" in denied.value.details()
    assert TOKENS["web"] not in denied.value.details()


@pytest.mark.slow
@pytest.mark.parametrize(
    "metadata",
    [[], bearer("not-a-token"), [("authorization", TOKENS["web"])], [("authorization", "Bearer ")]],
    ids=["none", "unknown", "no-bearer-prefix", "empty"],
)
def test_no_valid_token_is_unauthenticated_and_changes_nothing(
    channel: grpc.Channel, metadata: list[tuple[str, str]]
) -> None:
    for scope in Scope:
        assert code_of(CALLS[scope], channel, metadata) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.slow
def test_health_needs_no_token(channel: grpc.Channel) -> None:
    request = health_pb2.HealthCheckRequest(service="")
    status = health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def list_services(channel: grpc.Channel, metadata: list[tuple[str, str]]) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    answers = stub.ServerReflectionInfo(iter([request]), metadata=metadata, timeout=10)
    return [s.name for answer in answers for s in answer.list_services_response.service]


@pytest.mark.slow
def test_reflection_needs_the_admin_scope(channel: grpc.Channel) -> None:
    assert "nba.v1.DecisionService" in list_services(channel, bearer(TOKENS["ops"]))
    for metadata, code in [
        (bearer(TOKENS["web"]), grpc.StatusCode.PERMISSION_DENIED),
        ([], grpc.StatusCode.UNAUTHENTICATED),
    ]:
        with pytest.raises(grpc.RpcError) as refused:
            list_services(channel, metadata)
        assert refused.value.code() == code


def eventually(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_the_token_file_is_reloaded_and_a_broken_edit_keeps_the_last_good_tokens(
    server: ServerProcess, channel: grpc.Channel, tokens_path: Path
) -> None:
    decide = CALLS[Scope.DECIDE]
    rotated = {**TOKENS, "web": "web-secret-rotated"}
    token_file(tokens_path, rotated, SCOPES)
    assert eventually(
        lambda: code_of(decide, channel, bearer(rotated["web"])) == grpc.StatusCode.OK
    )
    assert code_of(decide, channel, bearer(TOKENS["web"])) == grpc.StatusCode.UNAUTHENTICATED

    tokens_path.write_text("tokens:\n  - {name: web, sha256: nothex, scopes: [decide]}\n")
    still_good = bearer(rotated["web"])  # calls make the server look at the file again
    assert eventually(
        lambda: (
            code_of(decide, channel, still_good) == grpc.StatusCode.OK
            and "token file rejected" in server.stderr
        )
    )
    assert f"{tokens_path}:2:" in server.wait_for("token file rejected")
    token_file(tokens_path, TOKENS, SCOPES)  # as the module's other tests expect
    assert eventually(lambda: code_of(decide, channel, bearer(TOKENS["web"])) == grpc.StatusCode.OK)


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("tokens: [\n", 2, "not YAML"),
        ("users: []\n", 1, "missing `tokens:`"),
        ("tokens:\n  - {name: a, sha256: abc, scopes: [decide]}\n", 2, "64 hex digits"),
        (
            f"tokens:\n  - {{name: a, sha256: {'0' * 64}, scopes: [decid]}}\n",
            2,
            "unknown scope 'decid'",
        ),
        (f"tokens:\n  - {{name: a, sha256: {'0' * 64}}}\n", 2, "expected `scopes: [...]`"),
        (f"tokens:\n  - {{name: a, sha256: {'0' * 64}, scopes: [], token: x}}\n", 2, "unknown key"),
    ],
)
def test_a_broken_token_file_names_file_and_line(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    with pytest.raises(TokenFileError) as broken:
        read_tokens(path)
    assert str(broken.value).startswith(f"{path}:{line}:") and says in str(broken.value)
