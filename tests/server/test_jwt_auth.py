"""JWT bearer tokens against a JWKS file: keys generated here, tokens signed with pyjwt."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from nba.server.auth import (
    JwtSettings,
    PermissionDeniedError,
    Scope,
    UnauthenticatedError,
    authenticator,
    require,
)
from nba.server.jwt_auth import JwksFileError, read_jwks
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import example
from tests.server.nba_process import exited, nba_serve, serving

ISSUER, AUDIENCE = "https://idp.example.com", "nba"


def jwk_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    algorithm = (
        jwt.algorithms.RSAAlgorithm
        if isinstance(key, rsa.RSAPrivateKey)
        else jwt.algorithms.ECAlgorithm
    )
    entry: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    entry.update(kid=kid, use="sig")
    return entry


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk_of(rsa_key, "r1"), jwk_of(ec_key, "e1")]}))
    return path, rsa_key, ec_key


def token(key: Any, kid: str, algorithm: str = "RS256", **claims: Any) -> str:
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "web-shop", "exp": time.time() + 300}
    body.update(claims)
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


def test_a_signed_token_grants_its_nba_scopes_and_nothing_else(keys: Any) -> None:
    path, rsa_key, ec_key = keys
    auth = authenticator(None, JwtSettings(path, ISSUER, AUDIENCE))
    caller = auth.authenticate("Bearer " + token(rsa_key, "r1", scope="decide record email"))
    assert caller.name == "jwt:web-shop"
    assert caller.scopes == {Scope.DECIDE, Scope.RECORD}  # `email` is another service's
    with pytest.raises(PermissionDeniedError, match="'consent' scope"):
        require(caller, Scope.CONSENT)
    listed = auth.authenticate("Bearer " + token(ec_key, "e1", "ES256", scope=["admin"]))
    assert listed.scopes == {Scope.ADMIN}


@pytest.mark.parametrize(
    "claims, why",
    [
        ({"exp": time.time() - 120}, "expired"),
        ({"aud": "another-service"}, "audience"),
        ({"iss": "https://evil.example.com"}, "issuer"),
        ({"sub": None}, "sub"),
    ],
)
def test_a_token_with_a_wrong_claim_is_unauthenticated(
    keys: Any, claims: dict[str, Any], why: str
) -> None:
    path, rsa_key, _ = keys
    auth = authenticator(None, JwtSettings(path, ISSUER, AUDIENCE))
    claims = {k: v for k, v in claims.items() if v is not None}
    text = token(rsa_key, "r1", scope="decide", **claims)
    if why == "sub":
        body = jwt.decode(text, options={"verify_signature": False})
        del body["sub"]
        text = jwt.encode(body, rsa_key, algorithm="RS256", headers={"kid": "r1"})
    with pytest.raises(UnauthenticatedError, match=rf"(?i){why}"):
        auth.authenticate("Bearer " + text)


def test_a_token_signed_by_a_key_not_in_the_jwks_or_with_a_secret_is_refused(keys: Any) -> None:
    path, _, _ = keys
    auth = authenticator(None, JwtSettings(path, ISSUER, AUDIENCE))
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(UnauthenticatedError, match=r"(?i)signature"):
        auth.authenticate("Bearer " + token(stranger, "r1", scope="decide"))  # kid reused
    with pytest.raises(UnauthenticatedError, match="not in the JWKS"):
        auth.authenticate("Bearer " + token(stranger, "r9", scope="decide"))
    forged = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": time.time() + 60, "scope": "admin"},
        "a shared secret of thirty-two bytes!",
        algorithm="HS256",
        headers={"kid": "r1"},
    )
    with pytest.raises(UnauthenticatedError):
        auth.authenticate("Bearer " + forged)  # an RSA public key is no HMAC secret


def test_a_jwks_of_shared_secrets_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}))
    with pytest.raises(JwksFileError, match="shared secret"):
        read_jwks(path)


def test_a_rotated_jwks_is_picked_up_without_a_restart(keys: Any) -> None:
    path, rsa_key, _ = keys
    auth = authenticator(None, JwtSettings(path, ISSUER, AUDIENCE))
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(UnauthenticatedError):
        auth.authenticate("Bearer " + token(new_key, "r2", scope="decide"))
    path.write_text(json.dumps({"keys": [jwk_of(new_key, "r2")]}))
    time.sleep(1.1)  # the file is checked at most once a second
    assert auth.authenticate("Bearer " + token(new_key, "r2", scope="decide")).scopes
    with pytest.raises(UnauthenticatedError):  # the retired key no longer signs
        auth.authenticate("Bearer " + token(rsa_key, "r1", scope="decide"))


def test_nba_serve_takes_jwts_and_opaque_tokens_side_by_side(keys: Any, tmp_path: Path) -> None:
    path, rsa_key, _ = keys
    tokens = tmp_path / "tokens.yaml"
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # sha256("test")
    tokens.write_text(f"tokens:\n  - {{name: ops, sha256: {digest}, scopes: [admin]}}\n")
    args = ("--auth-jwks", str(path), "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE)
    with (
        serving(*args, "--auth-tokens", str(tokens)) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        stub = pb_grpc.DecisionServiceStub(channel)
        decide = token(rsa_key, "r1", scope="decide")
        metadata = (("authorization", f"Bearer {decide}"),)
        assert stub.Decide(example("web_prospect_homepage.json"), metadata=metadata)
        status = stub.GetRuleSetStatus(
            pb.GetRuleSetStatusRequest(), metadata=(("authorization", "Bearer test"),)
        )
        assert status.ruleset_version
        with pytest.raises(grpc.RpcError) as denied:
            stub.GetRuleSetStatus(pb.GetRuleSetStatusRequest(), metadata=metadata)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        expired = token(rsa_key, "r1", scope="decide", exp=time.time() - 100)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Decide(
                example("web_prospect_homepage.json"),
                metadata=(("authorization", f"Bearer {expired}"),),
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_auth_jwks_without_issuer_and_audience_is_refused_at_start(keys: Any) -> None:
    path, _, _ = keys
    server = nba_serve("--auth-jwks", str(path))
    assert exited(server) == 2
    assert "--jwt-issuer and --jwt-audience" in server.stderr
