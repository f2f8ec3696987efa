"""The condition language: tokens, parser and syntax tree.

A condition is one boolean expression a marketer can read:

    profile.age >= 18 and lifecycle in ["active", "growing"]
    dismissals(30d, action=this) < 2 and not segment.affluent

Parsing is hand-written recursive descent (no eval, no Python grammar): the language is
small and errors must point at the exact character. Names are resolved and types checked
afterwards, in `resolve.py`, against the rule set's declared schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nba.errors import NbaError
from nba.ruleset.durations import duration_seconds

# ---------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class Span:
    """Character offsets [start, end) inside the condition text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Literal:
    value: bool | int | float | str
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True)
class Ref:
    """A name: `profile.age`, `lifecycle`, `touchpoint.channel`, `segment.affluent`."""

    parts: tuple[str, ...]
    span: Span = field(compare=False)

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Count:
    """A history count such as `dismissals(30d, action=this)`."""

    outcome: str  # one of OUTCOME_FUNCTIONS' values
    window_seconds: int | None
    action: str | None  # an action id, THIS, or None (any action)
    group: str | None
    channel: str | None
    span: Span = field(compare=False)


Operand = Literal | Ref | Count


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # == != < <= > >=
    left: Operand
    right: Operand
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True)
class In:
    """`x in [..]` (or `not in`), and `"v" in profile.set_attr` when `item` is a Literal."""

    item: Operand
    container: tuple[Literal, ...] | Ref
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True)
class Truthy:
    """A bare operand used as a condition: `segment.affluent`, `profile.home_owner`."""

    operand: Operand
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    item: Node
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]
    span: Span = field(compare=False)


Node = Compare | In | Truthy | Not | And | Or | Literal

OUTCOME_FUNCTIONS = {
    "impressions": "IMPRESSION",
    "clicks": "CLICK",
    "accepts": "ACCEPT",
    "dismissals": "DISMISS",
    "rejections": "REJECT",
    "complaints": "COMPLAINT",
}
THIS = "@this"  # `action=this`; not an id (ids are snake_case), so never an action's name
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
NEGATED = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
MIRRORED = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
KEYWORDS = {"and", "or", "not", "in", "between", "true", "false", "this"}

# ---------------------------------------------------------------------------- tokens


class ConditionSyntaxError(NbaError, ValueError):
    """A condition that does not parse; `offset` is the character that is wrong."""

    def __init__(self, message: str, offset: int, expected: str = "") -> None:
        self.message = message
        self.offset = offset
        self.expected = expected
        super().__init__(f"{message} at character {offset + 1}")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # name, number, string, duration, op, punct, end
    text: str
    value: object
    start: int
    end: int


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<duration>[0-9]+[dhm](?![A-Za-z0-9_]))
  | (?P<number>-?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?(?![A-Za-z_]))
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|=)
  | (?P<punct>[().,\[\]])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def _unescape(body: str, start: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise ConditionSyntaxError(
                    f"unknown escape '\\{nxt}' in string",
                    start + 1 + i,
                    "one of \\n \\t \\\\ \\\" \\'",
                )
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            ch = text[pos]
            if ch in "\"'":
                raise ConditionSyntaxError("unterminated string", pos, f"a closing {ch}")
            expected = "a name, a value, an operator or parentheses"
            if ch == "#":
                expected += " (a condition cannot hold a comment)"
            raise ConditionSyntaxError(f"unexpected character '{ch}'", pos, expected)
        kind = match.lastgroup or ""
        raw = match.group()
        if kind != "space":
            tokens.append(Token(kind, raw, _token_value(kind, raw, pos), pos, match.end()))
        pos = match.end()
    tokens.append(Token("end", "", None, len(text), len(text)))
    return tokens


def _token_value(kind: str, raw: str, start: int) -> object:
    if kind == "number":
        is_int = not any(c in raw for c in ".eE")
        return int(raw) if is_int else float(raw)
    if kind == "string":
        return _unescape(raw[1:-1], start)
    if kind == "duration":
        return duration_seconds(raw)
    return raw


# ---------------------------------------------------------------------------- parser


MAX_DEPTH = 64  # parentheses and `not`s nested deeper than this are surely a mistake


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    def _deeper(self, at: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionSyntaxError(
                "nested too deeply", at, f"at most {MAX_DEPTH} levels of parentheses and `not`"
            )

    # -- token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _is(self, kind: str, text: str | None = None) -> bool:
        t = self.tok
        return t.kind == kind and (text is None or t.text == text)

    def _keyword(self, word: str) -> bool:
        return self._is("name", word)

    def _advance(self) -> Token:
        t = self.tok
        self.i += 1
        return t

    def _expect(self, kind: str, text: str, what: str) -> Token:
        if not self._is(kind, text):
            self._fail(what)
        return self._advance()

    def _fail(self, expected: str) -> None:
        t = self.tok
        found = "end of the condition" if t.kind == "end" else f"'{t.text}'"
        raise ConditionSyntaxError(f"unexpected {found}", t.start, expected)

    # -- grammar
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ConditionSyntaxError("empty condition", 0, "a boolean expression")
        node = self._or()
        if self.tok.kind != "end":
            self._fail("'and', 'or' or the end of the condition")
        return node

    def _or(self) -> Node:
        start = self.tok.start
        items = [self._and()]
        while self._keyword("or"):
            self._advance()
            items.append(self._and())
        return items[0] if len(items) == 1 else Or(tuple(items), self._span(start))

    def _and(self) -> Node:
        start = self.tok.start
        items = [self._not()]
        while self._keyword("and"):
            self._advance()
            items.append(self._not())
        return items[0] if len(items) == 1 else And(tuple(items), self._span(start))

    def _not(self) -> Node:
        if self._keyword("not"):
            start = self._advance().start
            self._deeper(start)
            inner = self._not()
            self.depth -= 1
            return Not(inner, self._span(start))
        return self._comparison()

    def _comparison(self) -> Node:
        start = self.tok.start
        if self._is("punct", "("):
            self._deeper(self._advance().start)
            inner = self._or()
            self._expect("punct", ")", "')'")
            self.depth -= 1
            return inner
        left = self._operand()
        if self.tok.kind == "op" and self.tok.text in COMPARISONS:
            op = self._advance().text
            right = self._operand()
            return Compare(op, left, right, self._span(start))
        if self._is("op", "="):
            raise ConditionSyntaxError("'=' assigns; compare with '=='", self.tok.start, "'=='")
        if self._keyword("in"):
            self._advance()
            return In(left, self._container(), self._span(start))
        if self._keyword("not") and self.tokens[self.i + 1].text == "in":
            not_start = self._advance().start
            self._advance()
            inner = In(left, self._container(), self._span(start))
            return Not(inner, Span(start, max(inner.span.end, not_start)))
        if self._keyword("between"):
            self._advance()
            low = self._operand()
            self._expect("name", "and", "'and' (as in `x between 1 and 5`)")
            high = self._operand()
            span = self._span(start)
            return And((Compare(">=", left, low, span), Compare("<=", left, high, span)), span)
        return Truthy(left, self._span(start))

    def _container(self) -> tuple[Literal, ...] | Ref:
        if self._is("punct", "["):
            self._advance()
            items: list[Literal] = []
            while not self._is("punct", "]"):
                operand = self._operand()
                if not isinstance(operand, Literal):
                    raise ConditionSyntaxError(
                        "a list holds literal values only", operand.span.start, "a literal value"
                    )
                items.append(operand)
                if not self._is("punct", ","):
                    break
                self._advance()
            self._expect("punct", "]", "',' or ']'")
            if not items:
                raise ConditionSyntaxError("empty list", self.tokens[self.i - 1].start, "values")
            return tuple(items)
        operand = self._operand()
        if not isinstance(operand, Ref):
            raise ConditionSyntaxError(
                "'in' needs a list or a set attribute", operand.span.start, "[...] or profile.<set>"
            )
        return operand

    def _operand(self) -> Operand:
        t = self.tok
        if t.kind in ("number", "string"):
            self._advance()
            return Literal(t.value, Span(t.start, t.end))  # type: ignore[arg-type]  # the lexer gives numbers and strings these values
        if t.kind == "duration":
            raise ConditionSyntaxError(
                f"a duration like '{t.text}' only goes inside a history count",
                t.start,
                "e.g. dismissals(30d)",
            )
        if t.kind != "name" or t.text in ("and", "or", "not", "in", "between", "this"):
            self._fail("a value, a name such as profile.age, or a history count")
        if t.text in ("true", "false"):
            self._advance()
            return Literal(t.text == "true", Span(t.start, t.end))
        if self.tokens[self.i + 1].text == "(" and self.tokens[self.i + 1].kind == "punct":
            return self._count()
        parts = [self._advance().text]
        while self._is("punct", "."):
            self._advance()
            if self.tok.kind != "name":
                self._fail("a name after '.'")
            parts.append(self._advance().text)
        return Ref(tuple(parts), self._span(t.start))

    def _count(self) -> Count:
        name = self._advance()
        if name.text not in OUTCOME_FUNCTIONS:
            known = ", ".join(OUTCOME_FUNCTIONS)
            raise ConditionSyntaxError(
                f"unknown function '{name.text}'", name.start, f"one of {known}"
            )
        self._advance()  # (
        window: int | None = None
        scope: dict[str, str] = {}
        first = True
        while not self._is("punct", ")"):
            if not first:
                self._expect("punct", ",", "',' or ')'")
            first = False
            if self._is("duration"):
                if window is not None or scope:
                    raise ConditionSyntaxError(
                        "the window comes first, once", self.tok.start, "e.g. dismissals(30d, ...)"
                    )
                token = self._advance()
                window = int(token.value)  # type: ignore[call-overload]  # a duration token's value is its seconds
                if window == 0:
                    raise ConditionSyntaxError(
                        f"a window of {token.text} counts nothing", token.start, "e.g. 30d or 12h"
                    )
                continue
            key = self.tok
            if key.kind != "name" or key.text not in ("action", "group", "channel"):
                self._fail("a window like 30d, or action=, group=, channel=")
            self._advance()
            self._expect("op", "=", "'='")
            if key.text in scope:
                raise ConditionSyntaxError(
                    f"'{key.text}' given twice", key.start, "each of action=, group=, channel= once"
                )
            value = self.tok
            if value.kind == "string":
                scope[key.text] = str(value.value)
                self._advance()
            elif key.text == "action" and value.kind == "name" and value.text == "this":
                scope[key.text] = THIS  # the keyword, not an action named "this"
                self._advance()
            else:
                self._fail(
                    'a quoted id such as "card_cashback"'
                    + (" or this" if key.text == "action" else "")
                )
        self._advance()  # )
        if "action" in scope and "group" in scope:
            raise ConditionSyntaxError(
                "a count is scoped by action or by group, not both",
                name.start,
                "either action= or group=",
            )
        return Count(
            OUTCOME_FUNCTIONS[name.text],
            window,
            scope.get("action"),
            scope.get("group"),
            scope.get("channel"),
            self._span(name.start),
        )

    def _span(self, start: int) -> Span:
        return Span(start, self.tokens[self.i - 1].end)


def parse(text: str) -> Node:
    """Parse a condition, raising ConditionSyntaxError at the offending character."""
    return _Parser(text).parse()


def walk(node: Node) -> list[Node | Operand]:
    """Every node and operand below (and including) `node`, depth first."""
    out: list[Node | Operand] = [node]
    if isinstance(node, And | Or):
        for item in node.items:
            out.extend(walk(item))
    elif isinstance(node, Not):
        out.extend(walk(node.item))
    elif isinstance(node, Compare):
        out.extend((node.left, node.right))
    elif isinstance(node, In):
        out.append(node.item)
        out.extend(node.container if isinstance(node.container, tuple) else (node.container,))
    elif isinstance(node, Truthy):
        out.append(node.operand)
    return out
