"""The program snapshot: a run after a few files changed redoes the last whole run's program
model for them, and must report exactly what a whole build of the changed tree reports."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from irqlint.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _tree(tmp_path: Path) -> Path:
    """The fixed shapes of seeds 001, 002 and 003 side by side: silent to begin with."""
    root = tmp_path / "tree"
    for seed in ("seed001_wait_under_lock", "seed002_lock_inversion", "seed003_sleep_devres"):
        shutil.copytree(EXAMPLES / seed / "fixed", root / seed)
    return root


def _check(root: Path, cache: Path, out: Path) -> dict:
    rc = main(["check", str(root), "--format", "json", "-o", str(out), "-q",
               "--cache-dir", str(cache), "-j", "1"])
    assert rc in (0, 1)
    return json.loads(out.read_text())


def _both(root: Path, tmp_path: Path, cache: Path, n: int) -> tuple[dict, dict]:
    """(the run on the warm cache, a whole run on a fresh cache) of the same tree."""
    warm = _check(root, cache, tmp_path / f"warm{n}.json")
    whole = _check(root, tmp_path / f"fresh{n}", tmp_path / f"whole{n}.json")
    assert "snapshot-patch" not in whole["stats"]["seconds"]
    return warm, whole


def _rules_lines(doc: dict) -> list[tuple[str, str, int]]:
    return [(f["rule"], Path(f["file"]).name, f["line"]) for f in doc["findings"]]


def test_changed_function_body_is_redone_from_the_snapshot(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    first = _check(root, cache, tmp_path / "first.json")
    assert first["findings"] == []
    assert list((cache / "program").glob("*.pkl"))

    # seed 001's bug: the wait moved under the lock the handler takes (same line count)
    dev = root / "seed001_wait_under_lock" / "evtchn_dev.c"
    lines = dev.read_text().splitlines(keepends=True)
    i = next(k for k, ln in enumerate(lines) if ln.strip() == "disable_irq(irq);")
    j = next(k for k in range(i + 1, len(lines)) if "spin_lock" in lines[k])
    lines[i], lines[j] = lines[j], lines[i]
    dev.write_text("".join(lines))
    warm, whole = _both(root, tmp_path, cache, 1)
    assert "snapshot-patch" in warm["stats"]["seconds"]
    assert warm["findings"] == whole["findings"]
    assert ("wait-under-lock", "evtchn_dev.c", j + 1) in _rules_lines(warm)

    # seed 003's bug, three files from the spinlock: pci_intx() now calls pcim_intx(), a new
    # edge of the call graph, and lines shift below it
    pci = root / "seed003_sleep_devres" / "pci.c"
    shutil.copy(EXAMPLES / "seed003_sleep_devres" / "pci.c", pci)
    warm, whole = _both(root, tmp_path, cache, 2)
    assert "snapshot-patch" in warm["stats"]["seconds"]
    assert warm["findings"] == whole["findings"]
    assert any(r == "sleep-in-atomic" and f == "vfio_intx.c" for r, f, _ in _rules_lines(warm))

    # and back: the fixed file again is silent on seed 003
    shutil.copy(EXAMPLES / "seed003_sleep_devres" / "fixed" / "pci.c", pci)
    warm, whole = _both(root, tmp_path, cache, 3)
    assert warm["findings"] == whole["findings"]
    assert not any(f == "vfio_intx.c" for _, f, _ in _rules_lines(warm))


def _falls_back(tmp_path: Path, file: str, tail: str,
                spoil: Callable[[bytes], bytes] | None = None) -> None:
    """After `tail` is appended to `file` (and the snapshot spoiled, if asked), the run
    builds the whole model, and reports what a run on a fresh cache reports."""
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    _check(root, cache, tmp_path / "first.json")
    if spoil is not None:
        for p in (cache / "program").glob("*.pkl"):
            p.write_bytes(spoil(p.read_bytes()))
    src = root / file
    src.write_text(src.read_text() + tail)
    warm, whole = _both(root, tmp_path, cache, 1)
    assert "snapshot-patch" not in warm["stats"]["seconds"]
    assert warm["findings"] == whole["findings"]


def test_a_new_function_falls_back_to_a_whole_build(tmp_path: Path) -> None:
    _falls_back(tmp_path, "seed003_sleep_devres/pci.c",
                "\nint pci_new_helper(void)\n{\n\treturn 0;\n}\n")


def test_a_corrupt_snapshot_is_rebuilt(tmp_path: Path) -> None:
    _falls_back(tmp_path, "seed001_wait_under_lock/evtchn_dev.c", "\n",
                lambda _: b"not a pickle")


def test_a_snapshot_cut_short_is_rebuilt(tmp_path: Path) -> None:
    _falls_back(tmp_path, "seed001_wait_under_lock/evtchn_dev.c", "\n",
                lambda data: data[: len(data) * 2 // 3])


def test_lock_imbalance_reads_the_snapshot_model_too(tmp_path: Path) -> None:
    """A callee of another file that always returns 0 makes an error return impossible: a
    snapshot run knows it as the whole run does (Function.const_return is kept)."""
    root = tmp_path / "tree"
    shutil.copytree(Path(__file__).resolve().parent / "fixtures" / "crossfile_zero", root)
    cache = tmp_path / "cache"
    first = _check(root, cache, tmp_path / "first.json")
    caller = root / "resume.c"  # the callee in power.c comes from the snapshot
    caller.write_text(caller.read_text() + "/* touched */\n")
    warm, whole = _both(root, tmp_path, cache, 1)
    assert "snapshot-patch" in warm["stats"]["seconds"]
    assert warm["findings"] == whole["findings"] == first["findings"]


def test_gates_and_callers_constants_read_from_the_snapshot(tmp_path: Path) -> None:
    """Lock-order gates (locks the callers hold) and a place every caller's constant rules
    out are read from the callers' sites: after a one-file change the snapshot's model gives
    them, and the findings, as a whole build does."""
    fixtures = Path(__file__).resolve().parent / "fixtures"
    root = tmp_path / "tree"
    root.mkdir()
    shutil.copy(fixtures / "program" / "gate.c", root / "gate.c")
    shutil.copy(fixtures / "flags" / "callers.c", root / "callers.c")
    (root / "other.c").write_text("int other(void)\n{\n\treturn 0;\n}\n")
    cache = tmp_path / "cache"
    assert _check(root, cache, tmp_path / "first.json")["findings"] == []
    (root / "other.c").write_text("int other(void)\n{\n\treturn 1;\n}\n")
    warm, whole = _both(root, tmp_path, cache, 1)
    assert "snapshot-patch" in warm["stats"]["seconds"]
    assert warm["findings"] == whole["findings"] == []
    # the gate dropped from one order, in the changed file: both runs see the cycle
    src = (root / "gate.c").read_text()
    (root / "gate.c").write_text(src.replace(
        "\tmutex_lock(&gate_adm_mutex);\n\tmutex_lock(&r->state);", "\tmutex_lock(&r->state);"))
    warm, whole = _both(root, tmp_path, cache, 2)
    assert warm["findings"] == whole["findings"]
    assert [f["rule"] for f in warm["findings"] if f["rule"] != "lock-imbalance"] == [
        "lock-order-inversion"]
