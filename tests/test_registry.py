"""`irqlint rules`, `irqlint explain` and the README's rule list come from one registry."""

from __future__ import annotations

import re

from conftest import ROOT, run_cli

from irqlint.rules import all_rules

SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead",
            "## Known false positives")


def test_rules_command_lists_the_registry() -> None:
    r = run_cli("rules")
    assert r.returncode == 0
    ids = [line.split()[0] for line in r.stdout.splitlines()]
    assert ids == [rule.id for rule in all_rules()]


def test_every_rule_documented_in_the_template() -> None:
    for rule in all_rules():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)+", rule.id)
        for s in SECTIONS:
            assert s in rule.doc, (rule.id, s)
        r = run_cli("explain", rule.id)
        assert r.returncode == 0 and rule.doc in r.stdout


def test_readme_lists_the_rules() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- rules:begin -->\n")[1].split("<!-- rules:end -->")[0]
    listed = re.findall(r"^\| `([a-z-]+)` \|", block, re.MULTILINE)
    assert listed == [rule.id for rule in all_rules()]
    # the whole table, default and summary included: regenerate with `irqlint rules --markdown`
    r = run_cli("rules", "--markdown")
    assert r.returncode == 0
    assert block == r.stdout


def test_rules_table_row_follows_the_registry() -> None:
    from irqlint.cli import rules_table

    rows = rules_table().splitlines()[2:]
    for rule, row in zip(all_rules(), rows, strict=True):
        assert row == f"| `{rule.id}` | {'on' if rule.default else 'off'} | {rule.summary} |"
