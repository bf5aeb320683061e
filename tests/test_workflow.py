"""Baselines and the per-patch modes: a one-line change that introduces a bug is reported,
and only it, by `--baseline`, `--diff REV` and `--patch FILE`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import EXAMPLES, FIXTURES, run_cli

from irqlint.filters.changes import parse

TIMER = (FIXTURES / "workflow" / "timer_drv.c").read_text()
BUG = "\tdel_timer_sync(&d->poll_timer);\n"
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _tree(tmp_path: Path) -> Path:
    """The examples with every rule on (their irqlint.toml) and one clean driver."""
    tree = tmp_path / "tree"
    shutil.copytree(EXAMPLES, tree)
    (tree / "drivers").mkdir()
    (tree / "drivers" / "timer_drv.c").write_text(TIMER)
    return tree


def _introduce_bug(tree: Path) -> int:
    """One added line: a wait for the timer under the lock its callback takes."""
    f = tree / "drivers" / "timer_drv.c"
    text = f.read_text()
    f.write_text(text.replace("\td->running = 0;\n", "\td->running = 0;\n" + BUG, 1))
    return text.splitlines().index("\td->running = 0;") + 2


def _check(tree: Path, *extra: str) -> tuple[int, list[dict]]:
    r = run_cli("check", ".", "--format", "json", "--no-cache", "-q", *extra, cwd=tree)
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    return r.returncode, doc["findings"]


def _one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("irqlint: error: ")
    return line


def _git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t",
                           *args], cwd=tree, check=True, capture_output=True,
                          text=True).stdout


def test_baseline_then_a_new_bug(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    base = tmp_path / "known.json"
    r = run_cli("baseline", ".", "-o", str(base), "--no-cache", cwd=tree)
    assert r.returncode == 0, r.stderr
    doc = json.loads(base.read_text())
    assert (doc["version"], doc["tool"]) == (1, "irqlint")
    rows = doc["baseline"]
    assert len(rows) >= 8
    assert rows == sorted(rows, key=lambda x: (x["file"], x["function"], x["rule"],
                                               x["fingerprint"], x["message"]))
    assert set(rows[0]) == {"fingerprint", "rule", "file", "function", "message"}
    _, before = _check(tree)
    assert sorted(x["fingerprint"] for x in before) == sorted(x["fingerprint"] for x in rows)

    rc, left = _check(tree, "--baseline", str(base))
    assert (rc, left) == (0, [])
    line = _introduce_bug(tree)
    rc, new = _check(tree, "--baseline", str(base))
    assert rc == 1
    assert [(x["rule"], x["file"], x["line"]) for x in new] == [
        ("wait-under-lock", "drivers/timer_drv.c", line)]
    r = run_cli("check", ".", "--no-cache", "--baseline", str(base), cwd=tree)
    assert "1 finding(s)" in r.stderr and "in the baseline" in r.stderr


def test_baseline_is_a_multiset() -> None:
    from collections import Counter

    from irqlint.filters.baseline import subtract
    from irqlint.findings import Finding

    f = Finding("lock-imbalance", "warning", "m", "a.c", 3, 1, "f", (), (), (), "k")
    g = Finding("lock-imbalance", "warning", "m", "a.c", 9, 1, "f", (), (), (), "k")
    assert f.fingerprint == g.fingerprint
    assert subtract([f, g], Counter({f.fingerprint: 1})) == [g]
    assert subtract([f, g], Counter({f.fingerprint: 2})) == []


def test_bad_baselines_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_text(TIMER)
    cases = {
        "missing.json": ("baseline file not found", None),
        "broken.json": ("malformed baseline", "{\"version\": 1,"),
        "other.json": ("not an irqlint baseline", "{\"findings\": []}"),
        "newer.json": ("version 7 is not supported",
                       '{"version": 7, "tool": "irqlint", "baseline": []}'),
        "oldfp.json": ("take the baseline again", '{"version": 1, "tool": "irqlint", '
                       '"fingerprint_version": "0", "baseline": []}'),
        "rows.json": ("entry 1 has no fingerprint", '{"version": 1, "tool": "irqlint", '
                      '"fingerprint_version": "1", "baseline": [{"rule": "x"}]}'),
    }
    for name, (want, content) in cases.items():
        p = tmp_path / name
        if content is not None:
            p.write_text(content)
        line = _one_line_error(run_cli("check", str(tmp_path / "a.c"), "--no-cache",
                                       "--baseline", str(p)))
        assert want in line and name in line, line
    line = _one_line_error(run_cli("baseline", str(tmp_path / "a.c"), "--no-cache"))
    assert "-o/--output" in line
    line = _one_line_error(run_cli("baseline", str(tmp_path / "a.c"), "--no-cache",
                                   "-o", str(tmp_path / "no" / "dir.json")))
    assert "cannot write baseline (no such directory)" in line


@needs_git
def test_diff_reports_only_what_the_change_touches(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    _git(tree, "init", "-q")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-qm", "base")
    rc, everything = _check(tree, "--diff", "HEAD")
    assert (rc, everything) == (0, [])
    line = _introduce_bug(tree)
    rc, new = _check(tree, "--diff", "HEAD")
    assert rc == 1
    assert [(x["rule"], x["file"], x["line"]) for x in new] == [
        ("wait-under-lock", "drivers/timer_drv.c", line)]
    # the same change as a patch file, checked from another directory
    patch = tmp_path / "0001-stop.patch"
    patch.write_text(_git(tree, "diff", "HEAD"))
    r = run_cli("check", str(tree), "--format", "json", "--no-cache", "-q",
                "--patch", str(patch), cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert [(x["rule"], x["line"]) for x in json.loads(r.stdout)["findings"]] == [
        ("wait-under-lock", line)]


@needs_git
def test_diff_keeps_a_finding_whose_other_chain_changed(tmp_path: Path) -> None:
    """Seed 002's inversion is reported in vgic.c; touching gic.c's step keeps it."""
    tree = _tree(tmp_path)
    _git(tree, "init", "-q")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-qm", "base")
    gic = tree / "seed002_lock_inversion" / "gic.c"
    _, before = _check(tree)
    (inv,) = [x for x in before if x["rule"] == "lock-order-inversion"]
    steps = {(s["file"], s["line"]) for t in inv["traces"] for s in t}
    gic_line = min(ln for f, ln in steps if f.endswith("gic.c") and not f.endswith("vgic.c"))
    assert inv["file"].endswith("vgic.c")
    lines = gic.read_text().splitlines(keepends=True)
    lines[gic_line - 1] = lines[gic_line - 1].rstrip("\n") + " /* touched */\n"
    gic.write_text("".join(lines))
    _, kept = _check(tree, "--diff", "HEAD")
    assert [x["rule"] for x in kept] == ["lock-order-inversion"]
    # a comment added elsewhere in the same file touches nothing
    _git(tree, "commit", "-qam", "touch")
    gic.write_text(gic.read_text() + "/* trailing note */\n")
    assert _check(tree, "--diff", "HEAD") == (0, [])


@needs_git
def test_diff_errors(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_text(TIMER)
    alone = {"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)}  # even if /tmp is in a repo
    line = _one_line_error(run_cli("check", str(tmp_path), "--no-cache", "--diff", "HEAD",
                                   cwd=tmp_path, env=alone))
    assert "not inside a git repository" in line
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "base")
    line = _one_line_error(run_cli("check", ".", "--no-cache", "--diff", "no-such-rev",
                                   cwd=tmp_path))
    assert "unknown revision 'no-such-rev'" in line
    line = _one_line_error(run_cli("check", ".", "--no-cache", "--patch",
                                   str(tmp_path / "a.c"), cwd=tmp_path))
    assert "not a unified diff" in line
    line = _one_line_error(run_cli("check", ".", "--no-cache", "--patch",
                                   str(tmp_path / "none.patch"), cwd=tmp_path))
    assert "patch file not found" in line
    r = run_cli("check", ".", "--diff", "HEAD", "--patch", "x", cwd=tmp_path)
    assert r.returncode == 2 and "not allowed with" in r.stderr


def test_parse_unified_diff() -> None:
    text = """\
From 1234 Mon Sep 17 00:00:00 2001
Subject: [PATCH] x

---
diff --git a/drivers/x.c b/drivers/x.c
--- a/drivers/x.c
+++ b/drivers/x.c
@@ -10,3 +10,4 @@ int f(void)
     a();
-    b();
+    c();
+    d();
     e();
@@ -40,4 +41,3 @@ int g(void)
     a();
-    spin_unlock(&l);
     return 0;
 }
diff --git a/old.c b/old.c
deleted file mode 100644
--- a/old.c
+++ /dev/null
@@ -1,2 +0,0 @@
-int x;
-int y;
diff --git a/y.h b/y.h
--- a/y.h
+++ b/y.h
@@ -5,0 +6 @@ struct s {
+    int added;
@@ -20 +20,0 @@ struct s {
-    int gone;
\\ No newline at end of file
--
2.39.0
"""
    assert parse(text) == {
        "drivers/x.c": {11, 12,  # the replacement, not the unchanged neighbours
                        41, 42},  # a pure deletion: the lines either side of it
        "y.h": {6, 20, 21},
    }
