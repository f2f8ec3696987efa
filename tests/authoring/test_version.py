"""The rule-set version hashes file contents and paths inside the rules directory only."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from nba.ruleset.loader import load_ruleset
from tests.helpers import BASE, action, write_rules


def small_rules(directory: Path) -> Path:
    actions = "actions:\n" + action("gold", extra="eligible: profile.age >= 18")
    return write_rules(directory, {"base.yaml": BASE, "offers/actions.yaml": actions})


def validate_version(rules: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "nba", "validate", rules],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"ok, version ([0-9a-f]{12})", result.stdout)
    assert match is not None, result.stdout
    return match.group(1)


def test_relative_absolute_symlinked_and_copied_directories_share_a_version(
    tmp_path: Path,
) -> None:
    rules = small_rules(tmp_path / "rules")
    (tmp_path / "linked").symlink_to(rules, target_is_directory=True)
    copy = shutil.copytree(rules, tmp_path / "elsewhere" / "copy")
    versions = {
        load_ruleset(rules, display_root="rules").version,
        load_ruleset(rules.resolve()).version,
        load_ruleset(tmp_path / "linked").version,
        load_ruleset(copy, display_root=copy).version,
    }
    assert len(versions) == 1


def test_nba_validate_prints_one_version_for_rules_and_its_absolute_path(tmp_path: Path) -> None:
    rules = small_rules(tmp_path / "rules")
    relative = validate_version("rules", cwd=tmp_path)
    assert validate_version(str(rules.resolve()), cwd=Path("/")) == relative


def test_the_version_still_follows_contents_and_names(tmp_path: Path) -> None:
    rules = small_rules(tmp_path / "rules")
    before = load_ruleset(rules).version
    (rules / "offers" / "actions.yaml").rename(rules / "offers" / "more.yaml")
    renamed = load_ruleset(rules).version
    text = (rules / "base.yaml").read_text(encoding="utf-8")
    (rules / "base.yaml").write_text(text + "\n# a comment\n", encoding="utf-8")
    edited = load_ruleset(rules).version
    assert len({before, renamed, edited}) == 3
