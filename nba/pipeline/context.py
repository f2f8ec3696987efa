"""Pipeline stage 2, context: the request merged with what the store knows.

A client may send interactions the store already holds (it reported them through
RecordOutcome and also keeps its own recent list). Counting both would double every
cap and cooldown, so interactions are identified by content (customer, action, channel,
outcome, time to the microsecond) and each is kept once. Interactions after `as_of`
are dropped: a decision replayed for a past moment must not see the future.

Except by a few seconds: clocks across a contact centre and web servers differ, so an
ACCEPT stamped 5 s ahead of this server is what just happened, not the future. An
interaction up to the rule set's clock skew (`policies: clock_skew`, default 5m) after
`as_of` is taken as happening at `as_of`; every later stage (facts, both engines,
policies) then sees it as now, with no skew of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from nba.pipeline.types import DecisionRequest, Interaction
from nba.ruleset.ruleset import DEFAULT_CLOCK_SKEW_SECONDS


def merge_context(
    request: DecisionRequest,
    stored: Iterable[Interaction],
    stored_consent: Mapping[str, bool],
    skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
) -> DecisionRequest:
    """The request with the stored history and consent folded in."""
    merged = merge_history(request, stored, skew_seconds)
    if stored_consent:
        merged = replace(merged, consent=combine_consent(request.consent, stored_consent))
    return merged


def combine_consent(request: Mapping[str, bool], stored: Mapping[str, bool]) -> dict[str, bool]:
    """An opt-out anywhere wins; otherwise an opt-in anywhere counts."""
    combined = dict(stored)
    for channel, given in request.items():
        combined[channel] = given and combined.get(channel, True)
    return combined


def merge_history(
    request: DecisionRequest,
    stored: Iterable[Interaction],
    skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
) -> DecisionRequest:
    """The request with its interactions and the stored ones, each once, oldest first.

    Also with no store (`stored` empty): the request's own interactions ahead of `as_of`
    are clamped to it within the skew and dropped beyond it.
    """
    as_of = request.as_of
    stored = list(stored)
    if not stored and all(item.at <= as_of for item in request.interactions):
        return request  # nothing to merge or clamp: the common store-less case costs nothing
    latest = as_of + skew_seconds
    seen: set[tuple[str, str, int, int]] = set()
    merged: list[Interaction] = []
    for item in (*request.interactions, *stored):
        at = item.at
        if at > latest:
            continue  # the future, even allowing for clocks that differ
        # What identifies an interaction: its content, at microsecond resolution (the
        # store's ids are not known to the client, so they cannot be compared).
        key = (item.action_id, item.channel, item.outcome, round(at * 1_000_000))
        if key in seen:
            continue
        seen.add(key)
        merged.append(item if at <= as_of else replace(item, at=as_of))
    merged.sort(key=lambda i: i.at)
    return replace(request, interactions=tuple(merged))
