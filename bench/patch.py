"""The per-patch workflow on a real tree: a baseline, then a one-line change that introduces a
seed-like bug, then `check --diff HEAD` (in a git work tree), `check --patch` and
`check --baseline` on the changed tree (warm cache).

    python bench/patch.py [TREE] [--jobs N] [--cache-dir DIR]

The default change is seed 001's shape in drivers/tty/ipwireless/hardware.c: send_packet()
calls del_timer_sync() on the setup timer while holding hw->lock, and the timer's callback,
ipwireless_setup_timer(), takes hw->lock.  The file is restored (content and mtime) whatever
happens.  Reported, never asserted: the findings each mode prints and the wall seconds.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from run import ensure_tree

FILE = "drivers/tty/ipwireless/hardware.c"
ANCHOR = "\tlist_add_tail(&packet->queue, &hw->tx_queue[priority]);\n"
INSERT = "\tdel_timer_sync(&hw->setup_timer);\n"


def irqlint(*args: str) -> tuple[float, int]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "irqlint", *args], capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit(f"bench: irqlint {' '.join(args)} failed: {p.stderr[-2000:]}")
    return round(time.perf_counter() - t, 1), p.returncode


def findings(path: str) -> list[dict[str, object]]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    return [{"rule": x["rule"], "file": x["file"], "line": x["line"], "message": x["message"]}
            for x in doc["findings"]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tree", nargs="?")
    ap.add_argument("--jobs", default="2")
    ap.add_argument("--cache-dir", default=None, help="reuse a warm cache (default: a new one)")
    args = ap.parse_args()
    # a kill still restores the tree (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tree = ensure_tree(args.tree)
    work = tempfile.mkdtemp(prefix="irqlint-patch-")
    cache = args.cache_dir or os.path.join(work, "cache")
    common = ["-q", "-j", args.jobs, "--cache-dir", cache]
    target = os.path.join(tree, FILE)
    with open(target, encoding="utf-8") as f:
        before = f.readlines()
    st = os.stat(target)
    if ANCHOR not in before:
        sys.exit(f"bench: {FILE} does not have the anchor line; another kernel version?")
    after = list(before)
    where = after.index(ANCHOR) + 1
    after.insert(where, INSERT)
    diff = "".join(difflib.unified_diff(before, after, f"a/{FILE}", f"b/{FILE}"))
    patch = os.path.join(work, "change.diff")
    with open(patch, "w", encoding="utf-8") as f:
        f.write(diff)

    report: dict[str, object] = {"tree": tree, "change": f"{FILE}:{where + 1}: {INSERT.strip()}"}
    base = os.path.join(work, "baseline.json")
    report["baseline_s"], _ = irqlint("baseline", tree, "-o", base, *common)
    try:
        with open(target, "w", encoding="utf-8") as f:
            f.writelines(after)
        out1, out2 = os.path.join(work, "new.json"), os.path.join(work, "patch.json")
        # the per-patch mode first: it is the run that meets the change (the program model
        # of the baseline run redone for the changed file); the others find its results.
        # In a git work tree `--diff HEAD` goes first (the Debian tree is none: `git init;
        # git add -f -A .; git commit` makes it one, its .gitignore ignores everything)
        out3 = os.path.join(work, "diff.json")
        if subprocess.run(["git", "-C", tree, "rev-parse", "--verify", "HEAD"],
                          capture_output=True).returncode == 0:
            report["check_diff_s"], _ = irqlint("check", tree, "--diff", "HEAD",
                                                "--format", "json", "-o", out3, *common)
            report["diff_findings"] = findings(out3)
            with open(out3, encoding="utf-8") as f:
                report["diff_seconds"] = {k: round(v, 1)
                                          for k, v in json.load(f)["stats"]["seconds"].items()}
        report["check_patch_s"], _ = irqlint("check", tree, "--patch", patch,
                                             "--format", "json", "-o", out2, *common)
        report["check_baseline_s"], _ = irqlint("check", tree, "--baseline", base,
                                                "--format", "json", "-o", out1, *common)
        with open(out2, encoding="utf-8") as f:
            report["patch_seconds"] = {k: round(v, 1)
                                       for k, v in json.load(f)["stats"]["seconds"].items()}
        report["baseline_findings"] = findings(out1)
        report["patch_findings"] = findings(out2)
    finally:
        with open(target, "w", encoding="utf-8") as f:
            f.writelines(before)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
