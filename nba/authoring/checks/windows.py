"""Policy windows implausible for their kind: a typo here quietly sets data retention.

Codes: window-too-short, window-too-long (warnings).

History is kept as long as the longest policy window needs (`Policies.horizon_seconds`), so
a cap written `within: 7300d` for `7d`, or a complaint pause of 3000 days, keeps every
customer's interactions for years; and `within: 1m` (one minute: `m` is minutes) for a
daily or monthly cap limits almost nothing. The plausible range of each kind:

  kind                   shortest  longest   why
  cap window (within)    1h        732d      caps are per hour, day, week, month, or year
  cooldown window        -         366d      "3 dismissals within N" looks back weeks
  cooldown pause         1h        366d      a rest of more than a year is a stop, not a pause
  complaint pause        -         1096d     three years covers regulators' contact bans
"""

from __future__ import annotations

from dataclasses import dataclass

from nba.authoring.checks.base import CheckerBase
from nba.errors import Location
from nba.ruleset.durations import format_duration

HOUR, DAY = 3600, 86400


@dataclass(frozen=True, slots=True)
class Plausible:
    """The range of one kind of window, and what such windows usually are."""

    kind: str
    shortest: int | None
    longest: int
    usual: str


CAP_WINDOW = Plausible("cap window", HOUR, 732 * DAY, "caps are usually per day, week or month")
COOLDOWN_WINDOW = Plausible(
    "cooldown window", None, 366 * DAY, "a cooldown usually counts over days or weeks"
)
COOLDOWN_PAUSE = Plausible(
    "cooldown pause", HOUR, 366 * DAY, "a cooldown usually rests an action for days or weeks"
)
COMPLAINT_PAUSE = Plausible(
    "complaint pause", None, 1096 * DAY, "a complaint pause is usually weeks or months"
)


class WindowChecks(CheckerBase):
    def windows(self) -> None:
        policies = self.rs.policies
        for cap in policies.caps:
            at = cap.within_at or cap.location
            self.window(f"cap '{cap.id}'", CAP_WINDOW, cap.within_seconds, at)
        for cooldown in policies.cooldowns:
            what = f"cooldown '{cooldown.id}'"
            retention = cooldown.within_seconds + cooldown.pause_seconds
            within_at = cooldown.within_at or cooldown.location
            pause_at = cooldown.pause_at or cooldown.location
            self.window(what, COOLDOWN_WINDOW, cooldown.within_seconds, within_at, retention)
            self.window(what, COOLDOWN_PAUSE, cooldown.pause_seconds, pause_at, retention)
        pause = policies.complaint_pause_seconds
        if pause is not None:
            where = policies.complaint_pause_at or policies.complaint_pause_location
            self.window("complaint_pause", COMPLAINT_PAUSE, pause, where)

    def window(
        self,
        what: str,
        kind: Plausible,
        seconds: int,
        at: Location | None,
        retention: int | None = None,
    ) -> None:
        written = format_duration(seconds)
        if kind.shortest is not None and seconds < kind.shortest:
            self.report(
                "window-too-short",
                f"{what} has a {kind.kind} of {written} ({_span(seconds)}; `m` is minutes),"
                f" which is too short to matter: {kind.usual}; expected at least"
                f" {format_duration(kind.shortest)} (a day is 1d, a month 30d)",
                at,
                error=False,
            )
        elif seconds > kind.longest:
            kept = _span(retention or seconds)
            self.report(
                "window-too-long",
                f"{what} has a {kind.kind} of {written} ({_span(seconds)}): {kind.usual},"
                " and history is kept as long as the longest window needs, so this keeps"
                f" every customer's history for {kept}; expected at most"
                f" {format_duration(kind.longest)} ({_span(kind.longest)})",
                at,
                error=False,
            )


def _span(seconds: int) -> str:
    """A window in words: `8.2 years`, `600 days`, `1 minute`."""
    if seconds >= 730 * DAY:
        return f"{seconds / (365.25 * DAY):.1f} years"
    for size, unit in ((DAY, "day"), (HOUR, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds / size
            text = f"{count:g}" if count == int(count) else f"{count:.1f}"
            return f"{text} {unit}{'' if text == '1' else 's'}"
    return f"{seconds} seconds"  # pragma: no cover - durations are whole minutes at least
