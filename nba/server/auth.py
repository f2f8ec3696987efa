"""Who may call: bearer tokens with scopes, checked by the service layer for every transport.

A token file (`nba serve --auth-tokens PATH`) lists the callers:

    tokens:
      - name: web                      # named in the log, never the token itself
        sha256: 9f86d081884c7d65...    # hex SHA-256 of the token the client sends
        scopes: [decide, record]

Clients send `authorization: Bearer <token>`. The server keeps only the digests: the
presented token is hashed and compared with every digest in constant time
(hmac.compare_digest, no early exit), so neither the file nor the timing gives a token
away. A missing or unknown token is UnauthenticatedError; a known token without the scope
the call needs is PermissionDeniedError, naming the scope (never the token).

The file is re-read when its mtime or size changes (checked at most once a second, on a
call): a broken edit is logged with file:line and the last good set of tokens stays in
force. Without a token file every caller is `anonymous` with every scope (the loopback
default; `nba serve` refuses a non-loopback address without TLS unless --insecure).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import yaml

from nba.errors import NbaError

log = logging.getLogger(__name__)

BEARER = "bearer "
RECHECK_SECONDS = 1.0  # how stale a token file may be: one stat per second, not per call
T = TypeVar("T")


class Scope(StrEnum):
    """What a token allows; each DecisionService call needs one."""

    DECIDE = "decide"  # Decide
    RECORD = "record"  # RecordOutcome
    CONSENT = "consent"  # UpdateConsent
    ADMIN = "admin"  # GetRuleSetStatus, server reflection


class UnauthenticatedError(NbaError):
    """No token, a malformed authorization header, or a token the server does not know."""


class PermissionDeniedError(NbaError):
    """A known caller whose token lacks the scope the call needs."""


class TokenFileError(NbaError):
    """A token file that cannot be used; the message names file:line."""


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated identity and what it may do."""

    name: str
    scopes: frozenset[Scope]


SCOPE_NAMES = frozenset(s.value for s in Scope)


ANYONE = Caller("anonymous", frozenset(Scope))


class Authenticator(Protocol):
    """The policy every transport applies: who is calling, and may they do this."""

    def authenticate(self, authorization: str | None) -> Caller:
        """The caller behind an `authorization` header value (None: no header)."""
        ...


class OpenDoor:
    """No token file: every caller is `anonymous` with every scope."""

    def authenticate(self, authorization: str | None) -> Caller:
        return ANYONE


def require(caller: Caller, scope: Scope) -> None:
    """PermissionDeniedError unless `caller` holds `scope`."""
    if scope not in caller.scopes:
        raise PermissionDeniedError(f"this call needs the '{scope}' scope; {caller.name} lacks it")


@dataclass(frozen=True, slots=True)
class _Token:
    name: str
    digest: bytes
    scopes: frozenset[Scope]


class ReloadedFile(Generic[T]):
    """A file's parsed content, re-read when its mtime or size changes.

    Checked at most once a second, on a call; a broken edit (the parser's NbaError) is
    logged and the last good content stays in force. A broken file at startup raises:
    it is the operator's to fix.
    """

    def __init__(self, path: Path, parse: Callable[[Path], T], what: str) -> None:
        self.path = path
        self.what = what  # "token file", "JWKS file": named in the log
        self._parse = parse
        self._lock = threading.Lock()
        self._signature = _signature(path)
        self._content = parse(path)
        self._checked = time.monotonic()

    def current(self) -> T:
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            with self._lock:
                if now - self._checked >= RECHECK_SECONDS:
                    self._checked = now
                    self._reload_if_changed()
        return self._content

    def _reload_if_changed(self) -> None:
        signature = _signature(self.path)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            content = self._parse(self.path)
        except NbaError as exc:
            log.error("%s rejected, the previous one stays: %s", self.what, exc)
            return
        self._content = content
        log.info("%s %s reloaded", self.what, self.path)


class TokenFile:
    """Bearer tokens from a YAML file, reloaded when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tokens = ReloadedFile(path, read_tokens, "token file")

    def authenticate(self, authorization: str | None) -> Caller:
        presented = bearer(authorization)
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found: _Token | None = None
        for token in self._tokens.current():  # every digest compared: the time says nothing
            if hmac.compare_digest(token.digest, digest):
                found = token
        if found is None:
            raise UnauthenticatedError("unknown bearer token")
        return Caller(found.name, found.scopes)


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def bearer(authorization: str | None) -> str:
    """The token of an `authorization: Bearer <token>` value; UnauthenticatedError otherwise."""
    if not authorization:
        raise UnauthenticatedError("missing 'authorization: Bearer <token>' metadata")
    if authorization[: len(BEARER)].lower() != BEARER or not authorization[len(BEARER) :].strip():
        raise UnauthenticatedError("the authorization metadata must be 'Bearer <token>'")
    return authorization[len(BEARER) :].strip()


def read_tokens(path: Path) -> tuple[_Token, ...]:
    """Every token of a token file, or TokenFileError naming file:line."""
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"{path}: cannot read: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise TokenFileError(f"{path}:{line}: not YAML: {exc.problem}") from None
    entries = _mapping_value(path, document, "tokens")
    if not isinstance(entries, yaml.SequenceNode):
        raise TokenFileError(f"{path}:{_line(document)}: expected `tokens: [...]`")
    tokens = tuple(_token(path, node) for node in entries.value)
    names = [t.name for t in tokens]
    for token in tokens:
        if names.count(token.name) > 1:
            raise TokenFileError(f"{path}: token name '{token.name}' appears twice")
    return tokens


def _token(path: Path, node: yaml.Node) -> _Token:
    where = f"{path}:{_line(node)}"
    if not isinstance(node, yaml.MappingNode):
        raise TokenFileError(f"{where}: expected {{name: ..., sha256: ..., scopes: [...]}}")
    fields = {key.value: value for key, value in node.value}
    unknown = set(fields) - {"name", "sha256", "scopes"}
    if unknown:
        raise TokenFileError(f"{where}: unknown key '{sorted(unknown)[0]}'")
    name, digest = fields.get("name"), fields.get("sha256")
    if not isinstance(name, yaml.ScalarNode) or not name.value:
        raise TokenFileError(f"{where}: expected `name: <who holds the token>`")
    if not isinstance(digest, yaml.ScalarNode) or not _is_sha256(digest.value):
        raise TokenFileError(f"{where}: expected `sha256: <64 hex digits>` for '{name.value}'")
    scopes = fields.get("scopes")
    if not isinstance(scopes, yaml.SequenceNode):
        raise TokenFileError(f"{where}: expected `scopes: [...]` of {', '.join(Scope)}")
    return _Token(name.value, bytes.fromhex(digest.value), _scopes(path, scopes))


def _scopes(path: Path, node: yaml.SequenceNode) -> frozenset[Scope]:
    known = ", ".join(Scope)
    scopes = set()
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or item.value not in SCOPE_NAMES:
            shown = item.value if isinstance(item, yaml.ScalarNode) else "a non-scalar"
            raise TokenFileError(f"{path}:{_line(item)}: unknown scope '{shown}'; expected {known}")
        scopes.add(Scope(item.value))
    return frozenset(scopes)


def _mapping_value(path: Path, document: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(document, yaml.MappingNode):
        raise TokenFileError(f"{path}:{_line(document)}: expected a mapping with `{key}:`")
    for name, value in document.value:
        if name.value == key:
            found: yaml.Node = value
            return found
    raise TokenFileError(f"{path}:{_line(document)}: missing `{key}:`")


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _is_sha256(text: object) -> bool:
    if not isinstance(text, str) or len(text) != 64:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def authenticator(path: Path | None, jwt: JwtSettings | None = None) -> Authenticator:
    """The policy for `--auth-tokens PATH` and `--auth-jwks` (neither: the open door).

    With both, a bearer value shaped like a JWT (three dot-separated parts) is checked as
    one, anything else against the token file.
    """
    tokens = None if path is None else TokenFile(path)
    if jwt is None:
        return OpenDoor() if tokens is None else tokens
    from nba.server.jwt_auth import JwtAuthenticator

    verifier = JwtAuthenticator(jwt)
    return verifier if tokens is None else EitherTokenOrJwt(tokens, verifier)


class EitherTokenOrJwt:
    """Opaque tokens from the token file, JWTs from the JWKS: both kinds of client at once."""

    def __init__(self, tokens: Authenticator, jwts: Authenticator) -> None:
        self.tokens = tokens
        self.jwts = jwts

    def authenticate(self, authorization: str | None) -> Caller:
        token = bearer(authorization)
        return (self.jwts if token.count(".") == 2 else self.tokens).authenticate(authorization)


@dataclass(frozen=True)
class JwtSettings:
    """`--auth-jwks PATH --jwt-issuer ISS --jwt-audience AUD [--jwt-scope-claim NAME]`."""

    jwks: Path
    issuer: str
    audience: str
    scope_claim: str = "scope"  # OAuth 2 (RFC 8693): space-separated; a list works too
