"""Command-line side of the per-patch workflow: --baseline, --diff, --patch, `irqlint
baseline`, and the wiring of the finding filters (filters/) into a run.

Inputs are read and checked before the analysis starts, so that a typo in a revision or a
missing baseline costs a second, not a whole-tree run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from .driver import Analysis
from .errors import InputError
from .extract import extract_file
from .filters import Filters, baseline, changes, run, suppress
from .findings import Finding


def add_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline", metavar="FILE", default=None,
                   help="report only findings not in this baseline (see `irqlint baseline`)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--diff", metavar="REV", default=None,
                   help="report only findings touching lines changed since git revision REV")
    g.add_argument("--patch", metavar="FILE", default=None,
                   help="report only findings touching lines changed by this unified diff")


def add_baseline_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="where to write the baseline (JSON)")


def filters(args: argparse.Namespace) -> Filters:
    flt = Filters()
    if args.cmd == "baseline":  # fail before a long run, not after it
        out = args.output
        d = os.path.dirname(os.path.abspath(out))
        if os.path.isdir(out) or not os.path.isdir(d):
            raise InputError(f"{out}: cannot write baseline "
                             f"({'is a directory' if os.path.isdir(out) else 'no such directory'})")
    if getattr(args, "baseline", None):
        flt.baseline = baseline.load(args.baseline)
    if getattr(args, "diff", None):
        flt.root, flt.changes = changes.from_git(args.paths, args.diff)
    elif getattr(args, "patch", None):
        flt.changes = changes.from_patch(args.patch)
    return flt


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _ranges(a: Analysis) -> Callable[[str], suppress.Ranges]:
    index: dict[str, suppress.Ranges] = {}

    def ranges_of(path: str) -> suppress.Ranges:
        if path not in index:
            if a.facts is not None:
                for ff in a.facts:
                    index[ff.path] = [(fn.name, fn.line, fn.end_line) for fn in ff.functions]
            if path not in index:  # only summaries were loaded: extract this one file again
                with open(path, "rb") as f:
                    data = f.read()
                fns = extract_file(path, data, a.kb, a.wrappers, frozenset()).functions
                index[path] = [(fn.name, fn.line, fn.end_line) for fn in fns]
        return index[path]

    return ranges_of


def apply(flt: Filters, findings: list[Finding], a: Analysis, known: set[str],
          enabled: set[str]) -> list[Finding]:
    """Suppressions, baseline, patch; the counts of what was hidden go to a.filtered."""
    from .rules.suppressions import META

    t = time.perf_counter()
    if META & enabled:  # unused and invalid comments can be in any file (that has one)
        files = [s.path for s in a.files if a.marked is None or s.path in a.marked]
    else:
        files = sorted({f.file for f in findings})
    ranges_of = _ranges(a)
    out = run(findings, flt, files, _read, ranges_of, known, enabled)
    a.filtered = {k: v for k, v in out.hidden.items() if v or k != "suppressed"}
    a.seconds["filters"] = time.perf_counter() - t
    return out.findings


def write_baseline(args: argparse.Namespace, findings: list[Finding]) -> None:
    baseline.write(args.output, findings)
    if not args.quiet:
        sys.stderr.write(f"irqlint: wrote {len(findings)} finding(s) to {args.output}\n")


def hidden_note(a: Analysis) -> str:
    """`, 3 hidden (2 in the baseline, 1 suppressed)` for the summary line."""
    words = {"suppressed": "suppressed", "baseline": "in the baseline",
             "outside_patch": "outside the patch"}
    parts = [f"{n} {words[k]}" for k, n in a.filtered.items() if n]
    return f", {sum(a.filtered.values())} hidden ({', '.join(parts)})" if parts else ""
