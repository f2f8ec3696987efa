"""The condition parser: precedence, forms, and errors that point at the right character."""

from __future__ import annotations

import pytest

from nba.ruleset import conditions as c


def shape(node: object) -> object:
    """A compact, position-free rendering of a tree, for readable assertions."""
    if isinstance(node, c.And):
        return ("and", *(shape(i) for i in node.items))
    if isinstance(node, c.Or):
        return ("or", *(shape(i) for i in node.items))
    if isinstance(node, c.Not):
        return ("not", shape(node.item))
    if isinstance(node, c.Compare):
        return (node.op, shape(node.left), shape(node.right))
    if isinstance(node, c.In):
        container = (
            shape(node.container)
            if isinstance(node.container, c.Ref)
            else [shape(i) for i in node.container]
        )
        return ("in", shape(node.item), container)
    if isinstance(node, c.Truthy):
        return ("truthy", shape(node.operand))
    if isinstance(node, c.Ref):
        return node.dotted
    if isinstance(node, c.Literal):
        return node.value
    if isinstance(node, c.Count):
        return ("count", node.outcome, node.window_seconds, node.action, node.group, node.channel)
    raise AssertionError(node)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("profile.age >= 18", (">=", "profile.age", 18)),
        ("18 <= profile.age", ("<=", 18, "profile.age")),
        (
            "a == 1 or b == 2 and c == 3",
            ("or", ("==", "a", 1), ("and", ("==", "b", 2), ("==", "c", 3))),
        ),
        (
            "(a == 1 or b == 2) and c == 3",
            ("and", ("or", ("==", "a", 1), ("==", "b", 2)), ("==", "c", 3)),
        ),
        ("not a == 1 and b", ("and", ("not", ("==", "a", 1)), ("truthy", "b"))),
        ("not not segment.x", ("not", ("not", ("truthy", "segment.x")))),
        ('lifecycle in ["active", "growing"]', ("in", "lifecycle", ["active", "growing"])),
        ("x not in [1, 2.5]", ("not", ("in", "x", [1, 2.5]))),
        ('"card" in profile.products', ("in", "card", "profile.products")),
        ("x between 1 and 5", ("and", (">=", "x", 1), ("<=", "x", 5))),
        (
            "x between 1 and 5 and y",
            ("and", ("and", (">=", "x", 1), ("<=", "x", 5)), ("truthy", "y")),
        ),
        ("x != -3.25", ("!=", "x", -3.25)),
        ("x == 'single'", ("==", "x", "single")),
        ('x == "esc \\"q\\" \\n"', ("==", "x", 'esc "q" \n')),
        ("flag == true and other == false", ("and", ("==", "flag", True), ("==", "other", False))),
        (
            "dismissals(30d, action=this) < 2",
            ("<", ("count", "DISMISS", 30 * 86400, c.THIS, None, None), 2),
        ),
        (
            'impressions(12h, group="cards", channel="email") == 0',
            ("==", ("count", "IMPRESSION", 12 * 3600, None, "cards", "email"), 0),
        ),
        ("complaints() > 0", (">", ("count", "COMPLAINT", None, None, None, None), 0)),
        ('accepts(action="x") > 0', (">", ("count", "ACCEPT", None, "x", None, None), 0)),
        ("x > 1e3", (">", "x", 1000.0)),
    ],
)
def test_parses_to_the_expected_tree(text: str, expected: object) -> None:
    assert shape(c.parse(text)) == expected


@pytest.mark.parametrize(
    ("text", "offset", "fragment"),
    [
        ("profile.age >= ", 15, "unexpected end of the condition"),
        ("profile.age = 18", 12, "compare with '=='"),
        ("a == 1 and and b", 11, "unexpected 'and'"),
        ('x == "open', 5, "unterminated string"),
        ("x == 1 $ 2", 7, "unexpected character '$'"),
        ("(a == 1", 7, "unexpected end"),
        ("x in []", 6, "empty list"),
        ("x in [a]", 6, "literal values only"),
        ("frobs(30d) > 1", 0, "unknown function 'frobs'"),
        ("dismissals(action=this, 30d) > 1", 24, "window comes first"),
        ('dismissals(action="a", group="b") > 1', 0, "action or by group"),
        ("x > 30d", 4, "only goes inside a history count"),
        ("", 0, "empty condition"),
        ('x == "bad \\q"', 10, "unknown escape"),
    ],
)
def test_syntax_errors_point_at_the_culprit(text: str, offset: int, fragment: str) -> None:
    with pytest.raises(c.ConditionSyntaxError) as caught:
        c.parse(text)
    assert caught.value.offset == offset
    assert fragment in f"{caught.value.message} {caught.value.expected}"


def test_spans_cover_the_source_text() -> None:
    text = "profile.age >= 18 and lifecycle == 'active'"
    node = c.parse(text)
    assert isinstance(node, c.And)
    first, second = node.items
    assert text[first.span.start : first.span.end] == "profile.age >= 18"
    assert text[second.span.start : second.span.end] == "lifecycle == 'active'"


def test_the_this_keyword_is_not_an_action_named_this() -> None:
    keyword = c.parse("dismissals(action=this) > 0")
    quoted = c.parse('dismissals(action="this") > 0')
    assert isinstance(keyword, c.Compare) and isinstance(quoted, c.Compare)
    assert isinstance(keyword.left, c.Count) and isinstance(quoted.left, c.Count)
    assert (keyword.left.action, quoted.left.action) == (c.THIS, "this")


def test_a_zero_window_is_refused() -> None:
    with pytest.raises(c.ConditionSyntaxError, match="a window of 0d counts nothing"):
        c.parse("dismissals(0d) > 0")
