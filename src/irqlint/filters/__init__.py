"""What happens to findings between the rules and the renderers, in this order:

1. inline suppressions (`irqlint: ignore[rule] reason`) drop the findings they cover and add
   findings of the meta rules (invalid-suppression, unused-suppression);
2. a baseline (`--baseline FILE`) drops the findings it already has;
3. a patch (`--diff REV`, `--patch FILE`) keeps only findings that touch a changed line.

Suppressions come first so that a suppression is "used" whatever the baseline and the patch
hide.  Nothing here reads syntax or re-runs a rule: only findings, source text and function
line ranges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..findings import Finding
from . import baseline, changes, suppress


@dataclass(slots=True)
class Filters:
    baseline: Counter[str] | None = None
    changes: changes.Changes | None = None
    root: str | None = None  # where the paths of `changes` are relative to (None: --patch)


@dataclass(slots=True)
class Outcome:
    findings: list[Finding]
    hidden: dict[str, int] = field(default_factory=dict)  # why -> how many


def run(findings: list[Finding], flt: Filters, files: list[str],
        read: Callable[[str], str | None], ranges_of: Callable[[str], suppress.Ranges],
        known: set[str], enabled: set[str]) -> Outcome:
    kept, meta, n = suppress.apply(findings, files, read, ranges_of, known, enabled)
    out = sorted(kept + meta, key=Finding.sort_key)
    hidden = {"suppressed": n}
    if flt.baseline is not None:
        before = len(out)
        out = baseline.subtract(out, flt.baseline)
        hidden["baseline"] = before - len(out)
    if flt.changes is not None:
        before = len(out)
        out = changes.keep(out, flt.changes, flt.root)
        hidden["outside_patch"] = before - len(out)
    return Outcome(out, hidden)
