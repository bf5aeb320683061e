"""Bad input gets one clear line and exit 2 (or a counted skip inside a tree), never a
traceback; exit codes 0/1/2; nothing the user gave is modified."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conftest import FIXTURES, run_cli

GOOD = (FIXTURES / "lock_imbalance" / "paths.c").read_bytes()
CLEAN = b"int add(int a, int b)\n{\n\treturn a + b;\n}\n"


def _one_line_error(r, rc: int = 2) -> str:
    assert r.returncode == rc, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("irqlint: error: ")
    return lines[0]


def test_missing_path(tmp_path: Path) -> None:
    line = _one_line_error(run_cli("check", str(tmp_path / "nope"), "--no-cache"))
    assert "no such file or directory" in line


def test_directory_without_c_files(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("hello\n")
    line = _one_line_error(run_cli("check", str(tmp_path), "--no-cache"))
    assert "no C files" in line


def test_binary_file_given_explicitly(tmp_path: Path) -> None:
    f = tmp_path / "blob.c"
    f.write_bytes(b"\x7fELF\x00\x01\x02" * 100)
    line = _one_line_error(run_cli("check", str(f), "--no-cache"))
    assert "binary file" in line


def test_non_utf8_file_given_explicitly(tmp_path: Path) -> None:
    f = tmp_path / "latin.c"
    f.write_bytes(b"/* caf\xe9 */\nint x;\n")
    line = _one_line_error(run_cli("check", str(f), "--no-cache"))
    assert "not UTF-8" in line and "0xe9" in line


def test_bad_files_inside_a_tree_are_skipped_counted_and_said(tmp_path: Path) -> None:
    (tmp_path / "good.c").write_bytes(GOOD)
    (tmp_path / "blob.c").write_bytes(b"\x00\x01" * 50)
    (tmp_path / "latin.h").write_bytes(b"/* \xff */\n")
    r = run_cli("check", str(tmp_path), "--no-cache", "--format", "json")
    assert r.returncode == 1  # the good file still has its findings
    assert "Traceback" not in r.stderr
    doc = json.loads(r.stdout)
    assert doc["stats"]["skipped_files"] == 2
    assert doc["findings"]
    skip_lines = [ln for ln in r.stderr.splitlines() if "skipped" in ln]
    assert len(skip_lines) == 1 and "skipped 2 file(s)" in skip_lines[0]


def test_huge_generated_file_is_skipped_with_a_clear_line(tmp_path: Path) -> None:
    big = tmp_path / "gen_regs.h"
    row = b"#define REG_%08d 0x%08x\n"
    with big.open("wb") as f:
        n = 0
        while f.tell() < 50 * 1024 * 1024:
            f.write(b"".join(row % (i, i) for i in range(n, n + 10000)))
            n += 10000
    (tmp_path / "ok.c").write_bytes(CLEAN)
    r = run_cli("check", str(tmp_path), "--no-cache")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "skipped 1 file(s)" in r.stderr and "larger than 16 MB" in r.stderr
    line = _one_line_error(run_cli("check", str(big), "--no-cache"))
    assert "larger than 16 MB" in line


def test_empty_file_is_clean(tmp_path: Path) -> None:
    f = tmp_path / "empty.c"
    f.write_bytes(b"")
    r = run_cli("check", str(f), "--no-cache")
    assert r.returncode == 0 and r.stdout == ""


def test_malformed_config(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_bytes(CLEAN)
    cfg = tmp_path / "irqlint.toml"
    cfg.write_text("[rules\ndisable = 3\n")
    line = _one_line_error(run_cli("check", str(tmp_path), "--no-cache"))
    assert "malformed config" in line
    cfg.write_text("[rules]\ndisable = [\"no-such-rule\"]\n")
    line = _one_line_error(run_cli("check", str(tmp_path), "--no-cache"))
    assert "unknown rule 'no-such-rule'" in line
    cfg.write_text("[surprise]\nx = 1\n")
    assert "unknown section" in _one_line_error(run_cli("check", str(tmp_path), "--no-cache"))


def test_config_kb_entry_is_schema_checked(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_bytes(CLEAN)
    (tmp_path / "irqlint.toml").write_text(
        '[kb.locks_linux.locks.my_lock]\nop = "grab"\nkind = "spin"\n')
    line = _one_line_error(run_cli("check", str(tmp_path), "--no-cache"))
    assert "knowledge base entry" in line and "my_lock" in line


def test_config_adds_knowledge_and_disables_rules(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_bytes(
        b"void f(struct d *d)\n{\n\tmy_grab(&d->l);\n\tif (d->x)\n\t\treturn;\n"
        b"\tmy_drop(&d->l);\n}\n")
    (tmp_path / "irqlint.toml").write_text(
        '[kb.locks_linux.locks.my_grab]\nop = "acquire"\nkind = "spin"\n'
        '[kb.locks_linux.locks.my_drop]\nop = "release"\nkind = "spin"\n')
    r = run_cli("check", str(tmp_path), "--no-cache", "--format", "json")
    assert r.returncode == 1, r.stderr
    (f,) = json.loads(r.stdout)["findings"]
    assert (f["rule"], f["line"]) == ("lock-imbalance", 5)
    with (tmp_path / "irqlint.toml").open("a") as fh:
        fh.write('[rules]\ndisable = ["lock-imbalance"]\n')
    assert run_cli("check", str(tmp_path), "--no-cache").returncode == 0


def test_usage_errors_exit_2() -> None:
    r = run_cli("check")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = run_cli("frobnicate")
    assert r.returncode == 2
    assert _one_line_error(run_cli("explain", "no-such-rule"))


def test_inputs_are_not_modified(tmp_path: Path) -> None:
    f = tmp_path / "a.c"
    f.write_bytes(GOOD)
    before = hashlib.sha256(f.read_bytes()).hexdigest()
    run_cli("check", str(tmp_path), "--cache-dir", str(tmp_path / ".." / "cache"))
    assert hashlib.sha256(f.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.c"]


def test_text_format_is_gcc_style(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_bytes(GOOD)
    r = run_cli("check", str(tmp_path / "a.c"), "--no-cache")
    assert r.returncode == 1
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"{tmp_path / 'a.c'}:12:1: warning: ")
    assert first.endswith("[lock-imbalance]")


def test_json_contract(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_bytes(GOOD)
    r = run_cli("check", str(tmp_path), "--no-cache", "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["version"] == 1 and doc["tool"] == "irqlint"
    for key in ("files", "functions", "functions_with_parse_errors", "seconds"):
        assert key in doc["stats"]
    for f in doc["findings"]:
        for key in ("rule", "severity", "message", "file", "line", "column", "function",
                    "functions", "locks", "traces", "fingerprint"):
            assert key in f
        for trace in f["traces"]:
            for step in trace:
                assert set(step) == {"file", "line", "function", "note"}


def _linux_tree(root: Path) -> None:
    for marker in ("Kbuild", "MAINTAINERS"):
        (root / marker).write_text("\n")
    for rel, text in (("init/main.c", CLEAN), ("drivers/x/paths.c", GOOD),
                      ("tools/perf/paths.c", GOOD), ("scripts/mod/paths.c", GOOD)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(text)


def test_kernel_tree_leaves_out_userspace_programs_and_says_so(tmp_path: Path) -> None:
    _linux_tree(tmp_path)
    r = run_cli("check", str(tmp_path), "--no-cache", "--format", "json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert {Path(f["file"]).relative_to(tmp_path).parts[0] for f in doc["findings"]} \
        == {"drivers"}
    assert doc["stats"]["left_out_files"] == 2 and doc["stats"]["profile"] == "linux"
    said = [ln for ln in r.stderr.splitlines() if "left out" in ln]
    assert len(said) == 1 and "left out 2 file(s)" in said[0]
    assert "tools/" in said[0] and "scripts/" in said[0]


def test_userspace_directory_named_is_checked(tmp_path: Path) -> None:
    _linux_tree(tmp_path)
    r = run_cli("check", str(tmp_path / "tools"), "--no-cache", "--format", "json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["findings"] and doc["stats"]["left_out_files"] == 0
    assert all("/tools/perf/" in f["file"] for f in doc["findings"])
    assert "left out" not in r.stderr


def test_xen_tree_is_detected_from_its_layout(tmp_path: Path) -> None:
    (tmp_path / "include" / "xen").mkdir(parents=True)
    (tmp_path / "include" / "xen" / "sched.h").write_text("\n")
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "paths.c").write_bytes(GOOD)
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "symbols.c").write_bytes(CLEAN)
    r = run_cli("check", str(tmp_path), "--no-cache", "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["stats"]["profile"] == "xen" and doc["stats"]["left_out_files"] == 1


def test_malformed_tree_layout_in_config(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_bytes(CLEAN)
    (tmp_path / "irqlint.toml").write_text('[kb.trees]\nlinux = [{markers = "Kbuild"}]\n')
    line = _one_line_error(run_cli("check", str(tmp_path), "--no-cache"))
    assert "trees" in line


def test_an_internal_error_is_one_line_and_exit_3(monkeypatch, capsys) -> None:
    """A bug of ours is neither findings (1) nor bad input (2): a CI gate must not read a
    crash as findings."""
    import irqlint.cli as cli

    def broken(args):
        raise KeyError("lppaca_of")

    monkeypatch.delenv("IRQLINT_STRICT", raising=False)
    monkeypatch.delenv("IRQLINT_TRACEBACK", raising=False)
    monkeypatch.setattr(cli, "cmd_rules", broken)
    assert cli.main(["rules"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (KeyError: 'lppaca_of')" in err
    assert "Traceback" not in err
