"""Outcomes counted in the context of the decision that showed the action.

RecordOutcome carries a customer, an action, a channel and (optionally) the decision id,
but no profile: a contextual model (learning.context, context.py) cannot bin the outcome
from the request. So each decision that scored in a context leaves in the interaction
store what it showed and in which bins (store.remember_shown), and an outcome is counted
in the bins of the decision it answers (store.recall_shown: the decision id when given,
otherwise the customer's latest decision that showed the action on that channel).

The decision path only queues (nba/background.py); one thread per process writes the
queue to the store in batches, one round trip each. An outcome that arrives before its
decision is written (within BATCH_SECONDS) counts in the action's evidence but in no bin.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any

from nba.background import Background
from nba.pipeline.types import Decision, Interaction
from nba.ruleset.ruleset import Learning, RuleSet
from nba.scoring.context import SCORE_FEATURE
from nba.scoring.evidence import context_increments
from nba.store import InteractionStore, Shown

log = logging.getLogger("nba.scoring")

QUEUE_SIZE = 10_000  # decisions waiting for the store; beyond, dropped and counted


def shown_of(decision: Decision) -> Shown | None:
    """What an outcome of this decision must be counted in; None: nothing to attribute."""
    scorer = decision.scorer
    customer_id = decision.request.customer_id
    if scorer is None or not customer_id:
        return None
    attribution = scorer.attribution()
    if not attribution:
        return None
    shown = tuple((p.action.id, p.channel) for p in decision.picks if not p.fallback)
    if not shown:
        return None
    payload = json.dumps(attribution, separators=(",", ":"))
    return Shown(customer_id, decision.decision_id, decision.request.as_of, shown, payload)


def bins_of(shown: Shown, action_id: str) -> list[tuple[str, str]]:
    """The (feature, bin) pairs an outcome of `action_id` from this decision counts in."""
    attribution: dict[str, Any] = json.loads(shown.payload)
    features = [(str(f), str(b)) for f, b in attribution.get("features", [])]
    score_bin = attribution.get("score_bins", {}).get(action_id)
    if score_bin:
        features.append((SCORE_FEATURE, str(score_bin)))
    return features


def outcome_increments(
    store: InteractionStore,
    ruleset: RuleSet,
    learning: Learning,
    customer_id: str,
    interaction: Interaction,
) -> dict[str, float]:
    """The contextual counters one recorded outcome adds ({} when it answers no decision
    kept, or the rule set learns no context)."""
    if ruleset.learning_context is None:
        return {}
    shown = store.recall_shown(
        customer_id, interaction.action_id, interaction.channel, interaction.decision_id
    )
    if shown is None or not shown.showed(interaction.action_id, interaction.channel):
        return {}
    return context_increments(learning, interaction, bins_of(shown, interaction.action_id))


class ShownRecorder:
    """Queues each contextual decision's Shown and writes them to the store in batches.

    The thread starts with the first decision that has something to keep: a rule set
    without learning.context costs one attribute check per decision and no thread.
    """

    def __init__(self, store: InteractionStore, queue_size: int = QUEUE_SIZE) -> None:
        self.store = store
        self.queue_size = queue_size
        self.failed = 0  # batches the store refused (counted, logged, not retried)
        self._queue: Background[Shown] | None = None
        self._starting = threading.Lock()

    @property
    def dropped(self) -> int:
        return 0 if self._queue is None else self._queue.dropped

    def submit(self, decision: Decision) -> None:
        shown = shown_of(decision)
        if shown is None:
            return
        queue = self._queue or self._start()
        queue.submit(shown)

    def _start(self) -> Background[Shown]:
        with self._starting:  # two first decisions at once must not start two threads
            if self._queue is None:
                self._queue = Background("attribution", self.queue_size, self._write, logger=log)
            return self._queue

    def _write(self, batch: Sequence[Shown]) -> None:
        try:
            self.store.remember_shown(batch)
        except Exception:  # an unreachable store must not kill the thread
            self.failed += 1
            if self.failed == 1 or self.failed % 100 == 0:
                log.exception("could not keep %d decisions for attribution", len(batch))

    def drain(self) -> None:
        """Write what is queued now (tests and replay tools; the thread does it anyway)."""
        if self._queue is not None:
            self._queue.drain()

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()
