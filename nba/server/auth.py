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
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import yaml

from nba.errors import NbaError

log = logging.getLogger(__name__)

BEARER = "bearer "
RECHECK_SECONDS = 1.0  # how stale a token file may be: one stat per second, not per call


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


class TokenFile:
    """Bearer tokens from a YAML file, reloaded when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature = _signature(path)
        self._tokens = read_tokens(path)  # a broken file at startup is the operator's to fix
        self._checked = time.monotonic()

    def authenticate(self, authorization: str | None) -> Caller:
        presented = _bearer(authorization)
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found: _Token | None = None
        for token in self._current():  # every digest compared: the time says nothing
            if hmac.compare_digest(token.digest, digest):
                found = token
        if found is None:
            raise UnauthenticatedError("unknown bearer token")
        return Caller(found.name, found.scopes)

    def _current(self) -> tuple[_Token, ...]:
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            with self._lock:
                if now - self._checked >= RECHECK_SECONDS:
                    self._checked = now
                    self._reload_if_changed()
        return self._tokens

    def _reload_if_changed(self) -> None:
        signature = _signature(self.path)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            tokens = read_tokens(self.path)
        except TokenFileError as exc:
            log.error(
                "token file rejected, the previous %d tokens stay: %s", len(self._tokens), exc
            )
            return
        self._tokens = tokens
        log.info("token file %s reloaded: %d tokens", self.path, len(tokens))


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _bearer(authorization: str | None) -> str:
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


def authenticator(path: Path | None) -> Authenticator:
    """The policy for `--auth-tokens PATH` (None: the open door)."""
    return OpenDoor() if path is None else TokenFile(path)
