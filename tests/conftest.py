"""Shared helpers: run the CLI as a user would, read `/* expect: RULE */` markers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
_EXPECT = re.compile(r"/\*\s*expect:\s*([a-z-]+(?:\s*,\s*[a-z-]+)*)\s*\*/")


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env["IRQLINT_STRICT"] = "1"  # an internal error fails the test instead of a skip
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "irqlint", *args], capture_output=True,
                          text=True, cwd=cwd, env=full_env, timeout=300)


def all_rules_enabled() -> tuple[str, ...]:
    """--enable for every registered rule, default-off ones included."""
    from irqlint.rules import all_rules

    return tuple(a for r in all_rules() for a in ("--enable", r.id))


def check_json(*paths: Path | str, extra: tuple[str, ...] = ()) -> dict:
    r = run_cli("check", *map(str, paths), "--format", "json", "--no-cache", "-q", *extra)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


def expected_markers(root: Path) -> set[tuple[str, str, int]]:
    """(rule, path, line) of every expect marker under root (fixed/ copies have none)."""
    out = set()
    for p in sorted(root.rglob("*.[ch]")):
        for i, line in enumerate(p.read_text().splitlines(), 1):
            m = _EXPECT.search(line)
            if m:
                for rule in m.group(1).split(","):
                    out.add((rule.strip(), str(p), i))
    return out


def found(doc: dict) -> set[tuple[str, str, int]]:
    return {(f["rule"], str(Path(f["file"]).resolve()), f["line"]) for f in doc["findings"]}


@pytest.fixture
def tmp_tree(tmp_path: Path) -> Path:
    return tmp_path
