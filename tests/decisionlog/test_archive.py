"""The rule-set archive: the files as loaded, under their version, written once."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from nba.decisionlog.archive import RuleSetArchive, content_version
from nba.ruleset.loader import load_ruleset, rule_files
from tests.conftest import RULES


def copy_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    return rules


def test_the_archive_version_is_the_loaders_content_hash() -> None:
    files = {p.relative_to(RULES).as_posix(): p.read_bytes() for p in rule_files(RULES)}
    assert content_version(files) == load_ruleset(RULES).version


def test_an_archived_rule_set_loads_as_the_same_version_with_the_same_relative_files(
    tmp_path: Path,
) -> None:
    ruleset = load_ruleset(RULES, display_root="")
    archive = RuleSetArchive(tmp_path / "log")
    assert archive.archive(ruleset, RULES)
    archived = archive.path_of(ruleset.version)
    assert load_ruleset(archived, display_root="").version == ruleset.version
    assert sorted(p.relative_to(archived).as_posix() for p in rule_files(archived)) == sorted(
        ruleset.files
    )
    assert [p.name for p in archive.root.iterdir()] == [ruleset.version]  # no staging left


def test_files_edited_after_the_load_are_not_archived_as_that_version(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    ruleset = load_ruleset(rules, display_root="")
    policies = rules / "policies.yaml"
    policies.write_text(policies.read_text() + "\n# edited\n")
    archive = RuleSetArchive(tmp_path / "log")
    assert not archive.archive(ruleset, rules)
    assert not archive.has(ruleset.version)


def test_workers_archiving_one_version_at_once_leave_one_complete_copy(tmp_path: Path) -> None:
    ruleset = load_ruleset(RULES, display_root="")
    archive = RuleSetArchive(tmp_path / "log")
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(archive.archive(ruleset, RULES)))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [True] * 6
    assert [p.name for p in archive.root.iterdir()] == [ruleset.version]
    assert load_ruleset(archive.path_of(ruleset.version)).version == ruleset.version
