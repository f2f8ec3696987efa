"""YAML rule files read into plain values, remembering where every value came from.

PyYAML's composer gives nodes with marks (line, column); the constructor throws them
away. We compose, then build the values ourselves so that any path into a document
(`("actions", 3, "eligible", 0, "when")`) maps back to `file:line:column`. Conditions
also need the scalar's style, to turn an offset inside the string into a file column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nba.errors import Location, RuleError

try:  # libyaml is ~10x faster; fall back to pure Python where the wheel lacks it
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ScalarSource:
    """Where a scalar sits in its file, enough to locate a character inside it."""

    location: Location
    style: str | None  # None (plain), "'", '"', "|", ">"
    single_line: bool

    def locate(self, offset: int) -> Location:
        """The file location of character `offset` of the scalar's value."""
        loc = self.location
        if self.style in ("|", ">") or not self.single_line:
            return loc  # folded or multi-line text: point at the value's start
        quote = 1 if self.style in ("'", '"') else 0
        return Location(loc.file, loc.line, loc.column + quote + offset)


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One rule file: its values and the source of every node in them."""

    file: str
    data: Any
    sources: dict[Path_, ScalarSource]
    keys: dict[Path_, Location]  # where each mapping key is written

    def locate_key(self, path: Path_) -> Location:
        """Where the key at the end of `path` is written (its value's place if unknown)."""
        return self.keys.get(path) or self.locate(path)

    def locate(self, path: Path_) -> Location:
        """The location of the value at `path`, or of its nearest located parent."""
        while path:
            if path in self.sources:
                return self.sources[path].location
            path = path[:-1]
        return self.sources.get((), ScalarSource(Location(self.file, 1, 1), None, True)).location


def _location(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_RESOLVER = yaml.resolver.Resolver()


def _looks_like_date(text: str) -> bool:
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))
    return tag == _TIMESTAMP


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.sources: dict[Path_, ScalarSource] = {}
        self.keys: dict[Path_, Location] = {}
        self.errors: list[RuleError] = []
        self._scalars = yaml.constructor.SafeConstructor()
        self._open: set[int] = set()  # collections being built: an alias to one is a cycle

    def build(self, node: yaml.Node, path: Path_) -> Any:
        loc = _location(self.file, node)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self.sources[path] = ScalarSource(loc, None, True)
            if id(node) in self._open:
                self._error("an alias refers to a value that contains it", loc, "a finite value")
                return None
            self._open.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self._open.discard(id(node))
        assert isinstance(node, yaml.ScalarNode)  # collections returned above; aliases resolved
        single_line = node.start_mark.line == node.end_mark.line
        self.sources[path] = ScalarSource(loc, node.style, single_line)
        return self._scalar(node, loc)

    def _scalar(self, node: yaml.ScalarNode, loc: Location) -> Any:
        """The value of a scalar; anything that looks like a date stays text (no rule reads
        dates, and `2001-02-30` in a description must not be an error)."""
        if node.tag == _TIMESTAMP and _looks_like_date(node.value):
            return node.value
        try:
            return self._scalars.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._error(
                f"cannot read {node.value!r} as {node.tag.rsplit(':', 1)[-1]} ({reason})",
                loc,
                "plain text, a number, true/false, a list or a mapping",
            )
            return node.value

    def _error(self, message: str, loc: Location, expected: str) -> None:
        self.errors.append(RuleError("yaml", f"{message}; expected {expected}", loc))

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        previous: tuple[yaml.Node, yaml.Node] | None = None
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.errors.append(
                    RuleError(
                        "yaml",
                        "a mapping key must be a plain name; expected `name: value`",
                        _location(self.file, key_node),
                    )
                )
                continue
            key = self._scalars.construct_object(key_node)
            if key in result:
                self.errors.append(
                    RuleError(
                        "duplicate-key",
                        f"key '{key}' appears twice in this mapping; expected each key once",
                        _location(self.file, key_node),
                    )
                )
                continue
            if previous is not None and _comma_split(node, key_node, value_node, previous[1]):
                self.errors.append(_comma_error(self.file, key_node, *previous))
                continue  # the key is half of the value before it, not a field of its own
            self.keys[(*path, key)] = _location(self.file, key_node)
            result[key] = self.build(value_node, (*path, key))
            previous = (key_node, value_node)
        return result


def _comma_split(
    mapping: yaml.MappingNode, key: yaml.Node, value: yaml.Node, before: yaml.Node
) -> bool:
    """`{headline: Save water, save money}`: YAML ended the value at the comma and read the
    rest as a key with no value. Only in a {...} mapping, only after a plain text value."""
    return (
        mapping.flow_style is True
        and isinstance(key, yaml.ScalarNode)
        and not key.style  # plain: None from PyYAML, "" from libyaml
        and isinstance(value, yaml.ScalarNode)
        and value.tag == "tag:yaml.org,2002:null"
        and value.value == ""
        and isinstance(before, yaml.ScalarNode)
        and not before.style
        and before.tag == "tag:yaml.org,2002:str"
    )


def _comma_error(file: str, stray: yaml.Node, key: yaml.Node, value: yaml.Node) -> RuleError:
    whole = f"{value.value}, {stray.value}"
    return RuleError(
        "yaml",
        f"'{stray.value}' is a key with no value: in a {{...}} mapping a comma ends a value,"
        f" so `{key.value}: {whole}` was read as {key.value} '{value.value}' and a key"
        f" '{stray.value}'; expected the value in quotes",
        _location(file, stray),
        f"quote it: {key.value}: {_quoted(whole)}",
    )


_UNQUOTED_COLON = (  # the problem texts of PyYAML and of libyaml for `key: text: more`
    "mapping values are not allowed",
    "expected ',' or '}', but got ':'",
    "did not find expected ',' or '}'",
)


def _colon_hint(text: str, line: int, column: int) -> str:
    """For `body: Note: fees apply`, the same line with the value quoted."""
    lines = _LINE_BREAK.split(text)
    if not 0 <= line < len(lines):
        return ""
    source = lines[line]
    start = max(source.rfind(",", 0, column), source.rfind("{", 0, column)) + 1
    ends = [i for i in (source.find(",", column), source.find("}", column)) if i >= 0]
    segment = source[start : min(ends) if start and ends else len(source)].strip()
    key, sep, value = segment.removeprefix("- ").partition(": ")
    if not sep or not value.strip():
        return ""
    return f"a value with ': ' in it must be quoted: {key}: {_quoted(value.strip())}"


def _quoted(value: str) -> str:
    """The value as YAML text in quotes: double, unless it holds a double quote."""
    if '"' not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "''") + "'"


def read_document(path: Path, display_name: str) -> tuple[SourceDocument | None, list[RuleError]]:
    """Parse one YAML file. A syntax error comes back as a located RuleError, not raised."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [RuleError("io", f"cannot read file: {exc}", Location(display_name, 1, 1))]
    return parse_text(text, display_name)


# The line breaks YAML (and PyYAML's marks) count: a lone \r, NEL and the Unicode line and
# paragraph separators end a line too, so every location agrees with the marks'.
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _line_and_column(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of a character position, counted as YAML counts lines."""
    line, start = 1, 0
    for found in _LINE_BREAK.finditer(text, 0, position):
        line, start = line + 1, found.end()
    return line, position - start + 1


def parse_text(text: str, display_name: str) -> tuple[SourceDocument | None, list[RuleError]]:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.reader.ReaderError as exc:  # not a MarkedYAMLError: it has a position only
        position = exc.position
        if _Loader is not yaml.SafeLoader:  # libyaml counts UTF-8 bytes, not characters
            position = len(text.encode()[:position].decode("utf-8", "ignore"))
        line, column = _line_and_column(text, position)
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        message = f"YAML syntax: character {char} is not allowed; expected printable text"
        return None, [RuleError("yaml", message, Location(display_name, line, column))]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(display_name, mark.line + 1, mark.column + 1) if mark else None
        problem = exc.problem or "invalid YAML"
        context = f" {exc.context}" if exc.context else ""
        message = f"YAML syntax: {problem}{context}; expected valid YAML"
        hint = ""
        if mark is not None and problem.startswith(_UNQUOTED_COLON):
            hint = _colon_hint(text, mark.line, mark.column)
        return None, [RuleError("yaml", message, loc, hint)]
    except yaml.YAMLError as exc:
        return None, [RuleError("yaml", f"YAML error: {exc}", Location(display_name, 1, 1))]
    if node is None:
        return SourceDocument(display_name, {}, {}, {}), []
    builder = _Builder(display_name)
    data = builder.build(node, ())
    return SourceDocument(display_name, data, builder.sources, builder.keys), builder.errors
