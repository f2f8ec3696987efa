"""Durations as rule files write them (`30d`, `12h`, `15m`): the one unit table.

Conditions (`dismissals(30d)`), policy windows (`within: 7d`) and the texts that show a
window back to an author or an agent all use this table, so `1d` reads and prints the same
everywhere.
"""

from __future__ import annotations

DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60}  # largest first: format_duration relies on it


def duration_seconds(text: str) -> int:
    """`30d` -> seconds. The caller has checked the form (digits, then d, h or m)."""
    return int(text[:-1]) * DURATION_UNITS[text[-1]]


def format_duration(seconds: int) -> str:
    """Seconds in the largest unit that divides them: 604800 -> `7d`, 5400 -> `90m`."""
    for unit, size in DURATION_UNITS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
