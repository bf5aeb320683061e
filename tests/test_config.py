"""The project config: irqlint.toml at the tree root or --config FILE; rules, paths, kb."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import EXAMPLES, FIXTURES, run_cli

BUGGY = (FIXTURES / "lock_imbalance" / "paths.c").read_text()


def _rules_and_files(r: subprocess.CompletedProcess[str]) -> set[tuple[str, str]]:
    assert r.returncode in (0, 1), r.stderr
    return {(f["rule"], Path(f["file"]).name) for f in json.loads(r.stdout)["findings"]}


def _check(tree: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("check", str(tree), "--no-cache", "--format", "json", "-q", *extra)


def test_paths_exclude_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "blob.c").write_text(BUGGY)
    (tmp_path / "mine.c").write_text(BUGGY)
    assert _rules_and_files(_check(tmp_path)) == {("lock-imbalance", "blob.c"),
                                                  ("lock-imbalance", "mine.c")}
    (tmp_path / "irqlint.toml").write_text('[paths]\nexclude = ["vendor"]\n')
    assert _rules_and_files(_check(tmp_path)) == {("lock-imbalance", "mine.c")}


def test_explicit_config_file_enables_a_default_off_rule(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "uart.c").write_text((EXAMPLES / "irq_unsafe_lock" / "uart.c").read_text())
    assert _rules_and_files(_check(tree)) == set()
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('[rules]\nenable = ["irq-unsafe-lock"]\n')
    assert _rules_and_files(_check(tree, "--config", str(cfg))) == {
        ("irq-unsafe-lock", "uart.c")}
    # the command line wins over the config
    assert _rules_and_files(_check(tree, "--config", str(cfg),
                                   "--disable", "irq-unsafe-lock")) == set()


def test_missing_explicit_config(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_text(BUGGY)
    r = run_cli("check", str(tmp_path), "--no-cache", "--config", str(tmp_path / "no.toml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"irqlint: error: {tmp_path / 'no.toml'}: config file not found"


def test_config_can_disable_the_suppression_rules(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_text(
        "int f(int x)\n{\n\treturn x; /* irqlint: ignore[lock-imbalance] stale */\n}\n")
    assert _rules_and_files(_check(tmp_path)) == {("unused-suppression", "a.c")}
    (tmp_path / "irqlint.toml").write_text('[rules]\ndisable = ["unused-suppression"]\n')
    assert _rules_and_files(_check(tmp_path)) == set()
