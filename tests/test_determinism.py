"""The same findings for any job count, cold or warm cache; fingerprints survive line shifts;
a corrupt cache entry is discarded, not trusted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import EXAMPLES, FIXTURES, run_cli


def _tree(tmp: Path) -> Path:
    root = tmp / "tree"
    for i in range(6):
        shutil.copytree(FIXTURES / "lock_imbalance", root / f"copy{i}")
        shutil.copytree(EXAMPLES / "seed002_lock_inversion", root / f"seed{i}")
    return root


def _run(root: Path, cache: Path, jobs: int) -> bytes:
    r = run_cli("check", str(root), "--format", "json", "-j", str(jobs), "--cache-dir",
                str(cache), "-q")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    return json.dumps(doc["findings"], sort_keys=True).encode()


def test_jobs_and_cache_do_not_change_findings(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    c1, c2 = tmp_path / "c1", tmp_path / "c2"
    cold1 = _run(root, c1, 1)
    cold2 = _run(root, c2, 2)
    warm1 = _run(root, c2, 1)
    warm2 = _run(root, c1, 2)
    assert cold1 == cold2 == warm1 == warm2
    assert json.loads(cold1)


def test_corrupt_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    first = _run(root, cache, 1)
    entries = sorted((cache / "facts").rglob("*.pkl"))
    assert entries
    for e in entries[:5]:
        e.write_bytes(b"garbage")
    results = sorted((cache / "results").glob("*.pkl"))
    assert results
    for e in results:
        e.write_bytes(b"garbage")
    (cache / "index.pkl").write_bytes(b"\x80\x04garbage")
    assert _run(root, cache, 2) == first


def _stats(root: Path, cache: Path, *extra: str) -> tuple[list[dict], dict]:
    r = run_cli("check", str(root), "--format", "json", "--cache-dir", str(cache), "-q", *extra)
    doc = json.loads(r.stdout)
    return doc["findings"], doc["stats"]


def test_unchanged_tree_reuses_the_last_results(tmp_path: Path) -> None:
    """Nothing changed, same rules: the last run's findings stand; any change to a file, or
    another rule set, runs the rules again."""
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    cold, st = _stats(root, cache)
    assert "results-cache" not in st["seconds"]
    warm, st = _stats(root, cache)
    assert warm == cold and "results-cache" in st["seconds"]
    assert st["functions"] > 0
    _, st = _stats(root, cache, "--enable", "irq-unsafe-lock")
    assert "results-cache" not in st["seconds"]
    victim = root / "seed0" / "vgic.c"
    victim.write_text(victim.read_text().replace("vgic_lock_rank(v, rank, flags);", ""))
    changed, st = _stats(root, cache)
    assert "results-cache" not in st["seconds"]
    assert changed != cold


def test_fingerprints_survive_unrelated_edits(tmp_path: Path) -> None:
    src = (FIXTURES / "lock_imbalance" / "paths.c").read_text()
    a = tmp_path / "a"
    a.mkdir()
    (a / "paths.c").write_text(src)
    before = json.loads(run_cli("check", str(a), "--format", "json", "--no-cache").stdout)
    shifted = "/* a new comment\n * shifting every line\n */\n" + src.replace(
        "int interruptible(struct dev *d)\n{",
        "int interruptible(struct dev *d)\n{\n\tint unused = 0;\n")
    (a / "paths.c").write_text(shifted)
    after = json.loads(run_cli("check", str(a), "--format", "json", "--no-cache").stdout)
    assert [f["line"] for f in before["findings"]] != [f["line"] for f in after["findings"]]
    assert sorted(f["fingerprint"] for f in before["findings"]) == \
        sorted(f["fingerprint"] for f in after["findings"])


def test_other_irqlint_code_does_not_read_the_cache(tmp_path: Path, monkeypatch) -> None:
    """A checkout that moved on keeps its release number: the digest of irqlint's sources in
    every key makes it extract and judge afresh instead of trusting what older code wrote."""
    from irqlint import cache as cache_mod
    from irqlint import driver, snapshot
    from irqlint.cli import main

    root, cache, out = _tree(tmp_path), tmp_path / "cache", tmp_path / "out.json"

    def stats() -> dict:
        assert main(["check", str(root), "--format", "json", "-o", str(out), "-q",
                     "--cache-dir", str(cache), "-j", "1"]) in (0, 1)
        return json.loads(out.read_text())["stats"]

    assert cache_mod.code_id().startswith(cache_mod.__version__ + "+")
    assert stats()["cached_files"] == 0
    assert stats()["cached_files"] > 0
    for mod in (cache_mod, driver, snapshot):
        monkeypatch.setattr(mod, "code_id", lambda entry="": f"0.1.0+other{entry}")
    st = stats()
    assert st["cached_files"] == 0 and "results-cache" not in st["seconds"]
