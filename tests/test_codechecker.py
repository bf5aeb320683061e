"""CodeChecker takes irqlint's SARIF: `report-converter -t gcc` reads SARIF 2.1.0 (the format
of GCC's -fanalyzer), and `CodeChecker parse` then lists every finding with its chain.

Runs when CodeChecker is installed in the test's environment (CI installs a pinned one, see
.ci/run) or on PATH; skipped otherwise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, all_rules_enabled, check_json, run_cli


def _tool(name: str) -> str | None:
    beside = Path(sys.executable).parent / name  # the venv's bin/, when not on PATH
    return str(beside) if beside.is_file() else shutil.which(name)


CONVERTER = _tool("report-converter")
CODECHECKER = _tool("CodeChecker")
pytestmark = pytest.mark.skipif(CONVERTER is None or CODECHECKER is None,
                                reason="CodeChecker is not installed")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def test_codechecker_parse_lists_every_finding(tmp_path: Path) -> None:
    assert CONVERTER and CODECHECKER
    extra = (*all_rules_enabled(), "--jobs", "1")
    sarif = tmp_path / "irqlint.sarif"
    r = run_cli("check", "examples", "--format", "sarif", "--no-cache", "-q", *extra,
                "-o", str(sarif), cwd=ROOT)
    assert r.returncode == 1, r.stderr
    doc = check_json(ROOT / "examples", extra=extra)
    assert doc["findings"]

    reports = tmp_path / "reports"
    conv = _run(CONVERTER, "-t", "gcc", "-o", str(reports), str(sarif))
    assert conv.returncode == 0, conv.stdout + conv.stderr
    out = tmp_path / "parsed.json"
    parsed = _run(CODECHECKER, "parse", str(reports), "-e", "json", "-o", str(out))
    assert parsed.returncode in (0, 2), parsed.stdout + parsed.stderr  # 2: reports found
    listed = json.loads(out.read_text())["reports"]

    assert len(listed) == len(doc["findings"])
    want = sorted((f["rule"], str(Path(f["file"]).resolve()), f["line"], f["message"],
                   sum(len(t) for t in f["traces"])) for f in doc["findings"])
    got = sorted((x["checker_name"], x["file"]["path"], x["line"], x["message"],
                  len(x["bug_path_events"])) for x in listed)
    assert got == want

    # and the plain `CodeChecker parse` a user runs shows each one, gcc-style.  Its text
    # listing names the file of the last step of the last chain (Clang's plist convention:
    # a path ends at the bug), so only line, column, message and rule are compared here.
    text = _run(CODECHECKER, "parse", str(reports)).stdout
    for f in doc["findings"]:
        assert f":{f['line']}:{f['column']}: {f['message']} [{f['rule']}]" in text
