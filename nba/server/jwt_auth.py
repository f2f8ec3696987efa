"""JWT bearer tokens checked against a JWKS file: for callers an identity provider vouches for.

`nba serve --auth-jwks keys.json --jwt-issuer https://idp.example.com --jwt-audience nba`

The JWKS file holds the identity provider's public keys (what its `jwks_uri` serves),
re-read when it changes, so a key rotation needs no restart. A token must be signed by
one of them with an asymmetric algorithm (RS*, PS*, ES*, EdDSA: a JWKS of shared secrets
would let anyone who reads the file mint tokens, so `oct` keys are refused at load),
name the issuer and the audience, carry `exp` and `sub`, and be unexpired (30 s leeway
for clock skew). Scopes come from one claim (`scope` by default: space-separated, as in
OAuth 2; a list is taken too); names that are not nba scopes are ignored, since a token
from a shared identity provider carries scopes for other services. The caller's name is
`jwt:<sub>`. Verification is pyjwt's.
"""

from __future__ import annotations

import json
from pathlib import Path

import jwt

from nba.errors import NbaError
from nba.server.auth import (
    SCOPE_NAMES,
    Caller,
    JwtSettings,
    ReloadedFile,
    Scope,
    UnauthenticatedError,
    bearer,
)

LEEWAY_SECONDS = 30
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
ALGORITHMS = (*ASYMMETRIC, "EdDSA")


class JwksFileError(NbaError):
    """A JWKS file that cannot be used; the message names the file and the key."""


class JwtAuthenticator:
    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._keys = ReloadedFile(settings.jwks, read_jwks, "JWKS file")

    def authenticate(self, authorization: str | None) -> Caller:
        token = bearer(authorization)
        key = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(f"the bearer JWT is not accepted: {exc}") from None
        return Caller(f"jwt:{claims['sub']}", scopes_of(claims.get(self.settings.scope_claim)))

    def _key_for(self, token: str) -> jwt.PyJWK:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise UnauthenticatedError("the bearer token is not a JWT") from None
        keys = self._keys.current()
        kid = header.get("kid")
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        key = keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise UnauthenticatedError(f"the JWT's key id {str(kid)[:40]!r} is not in the JWKS")
        return key


def scopes_of(claim: object) -> frozenset[Scope]:
    """The nba scopes a claim grants: a space-separated string or a list of names."""
    names = claim.split() if isinstance(claim, str) else claim
    if not isinstance(names, list):
        return frozenset()
    return frozenset(Scope(n) for n in names if isinstance(n, str) and n in SCOPE_NAMES)


def read_jwks(path: Path) -> dict[str | None, jwt.PyJWK]:
    """The public keys of a JWKS file by key id; JwksFileError naming what is wrong."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JwksFileError(f"{path}: cannot read a JWKS: {exc}") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise JwksFileError(f'{path}: expected {{"keys": [...]}} with at least one key')
    keys: dict[str | None, jwt.PyJWK] = {}
    for position, entry in enumerate(entries, start=1):
        where = f"{path}: key {position}"
        if not isinstance(entry, dict):
            raise JwksFileError(f"{where}: expected a JSON object")
        if entry.get("kty") == "oct":
            raise JwksFileError(f"{where}: a shared secret (kty oct); expected a public key")
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            raise JwksFileError(f"{where}: {exc}") from None
        if key.algorithm_name not in ALGORITHMS:
            raise JwksFileError(
                f"{where}: algorithm {key.algorithm_name}; expected one of RS*, PS*, ES*, EdDSA"
            )
        keys[entry.get("kid")] = key
    return keys
