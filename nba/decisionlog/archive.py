"""Every rule-set version that served, kept by its content hash: `<log>/rulesets/<version>/`.

The version is a hash of the rule files' relative paths and bytes (nba.ruleset.loader),
so the archive holds exactly those files, at the same relative paths, and loading the
directory gives the same version back; `nba replay` checks that it does.

A RuleSet knows its files' names (`RuleSet.files`, relative to the rules directory) but
not their bytes, so they are read again when the set starts serving (the reload
listener runs right after the swap) and kept only if they still hash to the version
that serves: a file edited in between is not passed off as the version that served
(that is logged; the next reload archives the new version). Each version is written
once: into a temporary directory, then renamed into place, so several workers archiving
the same version at once leave one complete copy and a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from nba.ruleset.ruleset import RuleSet

log = logging.getLogger("nba.decisionlog")

ARCHIVE_DIR = "rulesets"


def content_version(files: dict[str, bytes]) -> str:
    """The rule-set version of these files (relative path -> bytes), as the loader computes it.

    tests/decisionlog pins this against `load_ruleset(...).version`.
    """
    identities = sorted(
        path + "\0" + hashlib.sha256(data).hexdigest() for path, data in files.items()
    )
    digest = hashlib.sha256()
    for identity in identities:
        digest.update(identity.encode() + b"\0")
    return digest.hexdigest()[:12]


class RuleSetArchive:
    """The archived rule sets under one decision-log directory."""

    def __init__(self, log_directory: Path) -> None:
        self.root = log_directory / ARCHIVE_DIR

    def path_of(self, version: str) -> Path:
        if not version or os.sep in version or version.startswith("."):
            raise ValueError(f"'{version}' is not a rule-set version")
        return self.root / version

    def has(self, version: str) -> bool:
        return self.path_of(version).is_dir()

    def archive(self, ruleset: RuleSet, rules_dir: Path) -> bool:
        """Keep the files of `ruleset` (loaded from `rules_dir`) unless already kept.

        True when the version is archived afterwards; False (logged) when the files on
        disk no longer hash to it.
        """
        target = self.path_of(ruleset.version)
        if target.is_dir():
            return True
        try:
            files = {name: (rules_dir / name).read_bytes() for name in ruleset.files}
        except OSError as exc:
            log.warning("rule set %s not archived: %s", ruleset.version, exc)
            return False
        if content_version(files) != ruleset.version:
            log.warning(
                "rule set %s not archived: its files changed on disk after it was loaded;"
                " its decisions cannot be replayed",
                ruleset.version,
            )
            return False
        self._write(target, files)
        log.info("archived rule set %s in %s", ruleset.version, target)
        return True

    def _write(self, target: Path, files: dict[str, bytes]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=self.root))
        try:
            for name, data in files.items():
                path = staging / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            try:
                staging.rename(target)
            except OSError:  # another worker renamed its copy first: the same files
                if not target.is_dir():
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
