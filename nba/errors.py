"""Errors of nba, as data.

Rule-file problems are collected, not raised one at a time: a rule author fixing a file
wants every error at once, each with where it is and what was expected.

    NbaError                      the root: `except NbaError` catches everything nba raises
     ├── RuleSetError             a rule set failed to load; .errors holds every RuleError
     ├── RequestError             a request is malformed; .field names the culprit (ValueError)
     ├── EngineError              the rule engine failed on a valid request (a bug, never input)
     ├── StoreError               the interaction store failed (unreachable, locked, corrupt)
     ├── NotConfiguredError       the server lacks what a call needs (e.g. runs without a store)
     ├── DeadlineExceededError    the caller's deadline passed before the call was worked on
     ├── ConditionSyntaxError     a condition does not parse (nba.ruleset.conditions)
     ├── ConditionTypeError       a condition names something unknown or mixes types
     ├── ConditionCheckError      every type error of one condition
     ├── CustomerFileError        a line of a customers file is not a request (authoring)
     └── SimulationError          a simulation could not run (authoring)

The condition errors are raised inside the loader and end up as RuleErrors of a
RuleSetError; they sit under the root so a tool using the parser directly can catch them.
The transports map each class to a status in one table (nba.server.errors).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A place in a rule file; line and column count from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class RuleError:
    """One problem in a rule set: a fixed code, where it is, what was wrong and expected."""

    code: str
    message: str
    location: Location | None = None
    hint: str = ""
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.severity}[{self.code}]: {self.message}{hint}"

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.file, loc.line, loc.column, self.code) if loc else ("", 0, 0, self.code)

    def as_dict(self) -> dict[str, object]:
        loc = self.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "severity": str(self.severity),
            "code": self.code,
            "message": self.message,
            "hint": self.hint or None,
        }


class NbaError(Exception):
    """The root of every error nba raises on purpose."""


class RuleSetError(NbaError):
    """A rule set did not load. Holds every error, sorted by location."""

    def __init__(self, errors: Iterable[RuleError]) -> None:
        self.errors = sorted(errors, key=RuleError.sort_key)
        super().__init__(self.report())

    def report(self) -> str:
        count = len(self.errors)
        head = f"{count} error{'s' if count != 1 else ''} occurred:"
        return "\n".join([head, *(str(e) for e in self.errors)])


ECHO_LIMIT = 100
"""How much of a caller's value an error repeats: enough to recognise it. A status message
is bounded (gRPC's default metadata limit is 8 KiB): echoing a 1 MB value whole turned
INVALID_ARGUMENT into RESOURCE_EXHAUSTED."""
FIELD_LIMIT = 200  # a field path embeds the caller's keys (`consent["..."]`)
MESSAGE_LIMIT = 300  # the backstop: cuts the tail of a long "expected" list after an echo


def cut(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text`, or its first `limit` characters and an ellipsis."""
    return text if len(text) <= limit else text[:limit] + "…"


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """A caller's value as an error message shows it: repr-quoted, at most `limit`
    characters of it, and when cut, its length: `'aaaa…' (1,000,000 characters)`."""
    if not isinstance(value, str):
        try:
            return cut(repr(value), limit)
        except ValueError:  # an int past Python's 4,300-digit str() limit
            return f"an {type(value).__name__} too long to show"
    shown = repr(value[:limit])  # repr of the head only: never copy a huge value
    quote, body = shown[0], shown[1:-1]
    if len(value) <= limit and len(body) <= limit:
        return shown
    return f"{quote}{body[:limit]}…{quote} ({len(value):,} characters)"


class RequestError(NbaError, ValueError):
    """A decision request is malformed. `field` is the request path, e.g. `profile.age`.

    Both parts are cut to a bounded length whatever the caller sent (see `echo`), so the
    status message always fits.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = cut(field, FIELD_LIMIT)
        self.message = cut(message, MESSAGE_LIMIT)
        super().__init__(f"{self.field}: {self.message}")


class EngineError(NbaError, RuntimeError):
    """The rule engine failed on a valid request: a bug to report, never the caller's fault."""


class StoreError(NbaError):
    """The interaction store failed (unreachable, locked, corrupt). The message names the
    operation and the store URL without its password, so it can be logged and shown to
    operators as is."""


class DeadlineExceededError(NbaError):
    """The caller's deadline had passed when the call reached the service: not worked on."""


class NotConfiguredError(NbaError):
    """The server was started without what this call needs (e.g. `--store none`)."""


def pydantic_message(kind: str, message: str, got: object, key: str = "") -> str:
    """A pydantic error reworded to say what was wrong and what was expected.

    "Input should be a valid integer" becomes "got 'forty'; expected a valid integer".
    """
    if message.startswith("Value error, "):
        return message.removeprefix("Value error, ")  # our validators say it already
    if kind == "missing":
        return f"missing; expected `{key}: ...`" if key else "missing"
    shown = type(got).__name__ if isinstance(got, dict | list) else echo(got)
    found = re.match(r"^\w+ should (be )?(.*)$", message)
    if found:
        wanted = found.group(2) if found.group(1) else f"to {found.group(2)}"
        if kind == "string_pattern_mismatch" and "[dhm]" in message:  # model.Duration
            wanted = "a duration: a whole number of days, hours or minutes, e.g. 30d, 12h, 15m"
        elif kind == "string_pattern_mismatch":
            wanted = "lowercase snake_case starting with a letter, e.g. card_cashback"
        return f"got {shown}; expected {wanted}"
    return f"{message}; expected a valid value"


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A suggestion for a misspelt name, or "" when nothing is close."""
    candidates = list(candidates)
    # A ratio of 0.6 needs len(name) <= 2.33 x a candidate's: skip the O(len) matcher setup
    # for a name longer than that (a 1 MB name took 0.2 s for nothing).
    if len(name) > 3 * max(map(len, candidates), default=0):
        return ""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""
