"""The serving rule set: loaded whole or not at all, swapped atomically.

A reload compiles the new files aside (parse, check, compile onto durable_rules, build
every per-load cache). Only a set with no errors replaces the serving one, in a single
reference assignment, so a request in flight finishes on the Decider it started with
and the next one sees the new set. A broken edit keeps the last good set serving; its
errors are logged with file:line and kept for the status RPC and the health service.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nba.decide import Decider
from nba.errors import RuleSetError
from nba.ruleset.loader import load_ruleset
from nba.store import InteractionStore

log = logging.getLogger("nba.reload")


@dataclass
class ReloadState:
    loaded_at: float = 0.0
    last_attempt_at: float = 0.0
    last_errors: list[str] = field(default_factory=list)
    reloads: int = 0
    failures: int = 0


class RuleSetHolder:
    """Holds the Decider that serves; `current` is read on every request, lock-free."""

    def __init__(
        self,
        rules_dir: str | Path,
        engine: str = "durable",
        store: InteractionStore | None = None,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.rules_dir = Path(rules_dir)
        self.engine = engine
        self.store = store
        self.state = ReloadState()
        self._on_change = on_change
        self._reload_lock = threading.Lock()  # one compilation at a time
        self._current: Decider | None = None

    @property
    def current(self) -> Decider:
        decider = self._current
        if decider is None:
            raise RuntimeError("no rule set loaded yet")
        return decider

    @property
    def loaded(self) -> bool:
        return self._current is not None

    def build(self) -> Decider:
        """Compile the rules directory into a new Decider, without touching the serving one."""
        ruleset = load_ruleset(self.rules_dir, display_root=self.rules_dir)
        return Decider(ruleset, self.engine, self.store)

    def load(self) -> Decider:
        """The first load: errors propagate (there is nothing to keep serving)."""
        decider = self.build()
        self._swap(decider)
        return decider

    def reload(self) -> bool:
        """Try the files as they are now. True when a new version went live."""
        with self._reload_lock:
            self.state.last_attempt_at = time.time()
            try:
                decider = self.build()
            except RuleSetError as exc:
                self.state.failures += 1
                self.state.last_errors = [str(e) for e in exc.errors]
                serving = self._current.version if self._current else "none"
                log.error(
                    "rule files rejected, still serving version %s:\n%s", serving, exc.report()
                )
                self._notify(False)
                return False
            except Exception:  # a bug in the compiler must not take the service down
                self.state.failures += 1
                self.state.last_errors = ["internal error while loading rules (see the log)"]
                log.exception("internal error while reloading rules; keeping the serving set")
                self._notify(False)
                return False
            previous = self._current.version if self._current else None
            self._swap(decider)
            self.state.reloads += 1
            if previous == decider.version:
                log.info("rule files reloaded, unchanged version %s", decider.version)
            else:
                log.info(
                    "rule set %s -> %s live (%s)",
                    previous,
                    decider.version,
                    decider.ruleset.summary(),
                )
            return True

    def _swap(self, decider: Decider) -> None:
        if self.store is not None:  # keep exactly what the serving rules and policies need
            self.store.retention_seconds = decider.history_seconds
        self._current = decider  # one reference assignment: atomic for readers
        self.state.loaded_at = time.time()
        self.state.last_errors = []
        self._notify(True)

    def _notify(self, healthy: bool) -> None:
        if self._on_change is not None:
            self._on_change(healthy)
