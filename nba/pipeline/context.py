"""Pipeline stage 2, context: the request merged with what the store knows.

A client may send interactions the store already holds (it reported them through
RecordOutcome and also keeps its own recent list). Counting both would double every
cap and cooldown, so interactions are identified by content (customer, action, channel,
outcome, time to the microsecond) and each is kept once. Interactions after `as_of`
are dropped: a decision replayed for a past moment must not see the future.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from nba.pipeline.types import DecisionRequest, Interaction


def merge_context(
    request: DecisionRequest,
    stored: Iterable[Interaction],
    stored_consent: Mapping[str, bool],
) -> DecisionRequest:
    """The request with the stored history and consent folded in."""
    merged = merge_history(request, stored)
    if stored_consent:
        merged = replace(merged, consent=combine_consent(request.consent, stored_consent))
    return merged


def combine_consent(request: Mapping[str, bool], stored: Mapping[str, bool]) -> dict[str, bool]:
    """An opt-out anywhere wins; otherwise an opt-in anywhere counts."""
    combined = dict(stored)
    for channel, given in request.items():
        combined[channel] = given and combined.get(channel, True)
    return combined


def merge_history(request: DecisionRequest, stored: Iterable[Interaction]) -> DecisionRequest:
    """The request with its interactions and the stored ones, each once, oldest first."""
    as_of = request.as_of
    stored = list(stored)
    if not stored and all(item.at <= as_of for item in request.interactions):
        return request  # nothing to merge: the common store-less case costs nothing
    seen: set[tuple[str, str, int, int]] = set()
    merged: list[Interaction] = []
    for item in (*request.interactions, *stored):
        if item.at > as_of:
            continue
        # What identifies an interaction: its content, at microsecond resolution (the
        # store's ids are not known to the client, so they cannot be compared).
        key = (item.action_id, item.channel, item.outcome, round(item.at * 1_000_000))
        if key in seen:
            continue
        seen.add(key)
        merged.append(item)
    merged.sort(key=lambda i: i.at)
    return replace(request, interactions=tuple(merged))
