"""inconsistent-locking: shared state written under a lock on most paths, without it on others."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import locksets
from ..findings import Finding
from ..ir import Step
from ..locksets import Locksets, Path
from ..program import identified, program_of, show
from . import Rule, register
from ._explain import chain_names

if TYPE_CHECKING:
    from ..driver import Analysis

RULE = "inconsistent-locking"

DOC = """\
## What it does
Finds a shared struct field (by struct type and field path, array elements included) or a
global that is written with a lock L held on most of the paths that write it, and without L
on a few others; each of those few is reported, with the path that lacks L and one that
holds it. "Held" counts what callers hold: a function only ever called with L held writes
under L, and so does an irq_chip method (the framework holds irq_desc::lock) or a function
that asserts L (lockdep_assert_held(), __must_hold()). A lock held on some paths to a write
only is no protection. A write in a helper is followed up into its callers, so that a helper
called under L from four places and without it from a fifth gives one outlier, at the fifth
call. Findings rank by how consistent the majority is: the message gives "under L at k of n
write paths" (at least 75% by default, at least 3 protected paths in 2 functions).

Not counted: writes in init and teardown paths, where the object is not shared yet or any
more (__init/__exit functions; functions named like probe/init/alloc/create/setup/remove/
exit/release/destroy/free, or stored in such ops fields; functions only called from those),
writes through a local pointer that only ever holds a fresh allocation, writes to locals.
atomic_*() and WRITE_ONCE() are calls, not plain writes: such marked lockless accesses are
neither protected nor outliers. Read locks, RCU and IRQs-off do not protect a write.

## Why is this bad?
If every other writer takes L, the data is meant to be protected by L, and the writer that
does not take it races with them: lost updates, torn multi-field state, a mapping reset
behind a concurrent setup (seed 000: the event-channel mapping is updated under
irq_mapping_update_lock everywhere except in the irq_chip startup/shutdown methods, which
cannot take it). About 39% of driver race fixes follow this shape (RacerX, DILP).

## Example
    void foo_bind(struct foo *f, int port, int irq)
    {
            mutex_lock(&map_lock);
            port_to_irq[port] = irq;          /* under map_lock, like 5 other writers */
            mutex_unlock(&map_lock);
    }
    static void foo_shutdown(struct irq_data *d)
    {
            port_to_irq[port_of(d)] = -1;     /* no map_lock: the outlier */
    }

## Use instead
Take L around the write, or restructure so the path that cannot take L does not write the
shared state (seed 000's fix clears the mapping in an order that needs no lock); if the
access is lockless by design, say so with WRITE_ONCE()/atomics and a comment.

## Known false positives
Confidence: low to medium (the rule is off by default: see the measured precision in
README.md). Lock classes are compared by class (struct type and field), not instance, and
callers outside the analysed tree are invisible: an exported function documented "caller
holds L" without lockdep_assert_held() looks unprotected. Objects private to one thread at
that time (a state machine owned by a work item, a field set before the object is
published through a path not named like init) are the usual false positives; so are
fields written in a loop over per-CPU data.

## References
RacerX (Engler & Ashcraft, SOSP 2003), lockset inference; DILP driver race study;
seed 000 (xen/events: close evtchn after mapping cleanup).
"""


def _chain_steps(ls: Locksets, p: Path, lock: str) -> list[Step]:
    prog = ls.prog
    steps: list[Step] = []
    for c, si in p.chain:
        site = prog.sites[c][si]
        held, _ = ls.site_held(c, si)
        callee = prog.funcs[site.callees[0]].name if site.callees else "?"
        note = f"calls {callee}()"
        if lock in held:
            note += f" holding {show(lock)}"
        steps.append(prog.step(c, site.call.line, note))
    return steps


def _top_note(ls: Locksets, p: Path, lock: str) -> str:
    """How the top function is entered: by whom, holding what."""
    prog = ls.prog
    top = p.top
    fw = prog.framework.get(top)
    if fw is not None:
        return f"{fw[2]}, entered holding {show(fw[0])} only"
    if lock in ls.base[top]:
        return f"asserts {show(lock)} held"
    if ls.unknown_callers[top]:
        regs = prog.registered.get(top)
        if regs:
            return f"{regs[0].role} callback ({regs[0].api})"
        if top in prog.stored:
            return f"stored in {prog.stored[top][0][0]}"
        return "no caller in the analysed tree"
    return "its callers do not hold it"


def _describe(ls: Locksets, p: Path, lock: str, protected: bool) -> list[Step]:
    prog = ls.prog
    steps = _chain_steps(ls, p, lock)
    if protected:
        note = f"writes {show(p.target)} with {show(lock)} held"
    elif lock in p.partial:
        note = f"writes {show(p.target)}; {show(lock)} is held on some paths here only"
    else:
        note = f"writes {show(p.target)} without {show(lock)}"
    steps.append(prog.step(p.fid, p.line, note))
    return steps


def check(analysis: Analysis) -> Iterator[Finding]:
    prog = program_of(analysis)
    ls = locksets.build(prog)
    sec = prog.kb.section("sharing")
    min_share, min_prot, min_fns = sec["min_share"], sec["min_protected"], sec["min_functions"]
    for (target, _), writes in sorted(locksets.shared_writes(ls).items()):
        paths = [p for f, wl in writes for p in ls.write_paths(target, f, wl)]
        if len(paths) <= min_prot:
            continue
        counts: dict[str, int] = {}
        for p in paths:
            for cls in p.held:
                if identified(cls):
                    counts[cls] = counts.get(cls, 0) + 1
        if not counts:
            continue
        lock, k = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        n = len(paths)
        if k == n or k < min_prot or k < min_share * n:
            continue
        good = [p for p in paths if lock in p.held]
        if len({p.top for p in good}) < min_fns:
            continue
        witness = min(good, key=lambda p: (prog.funcs[p.top].file, prog.funcs[p.top].line,
                                            p.chain, p.line))
        wsteps = _describe(ls, witness, lock, True)
        reported: set[tuple[int, int]] = set()
        for p in sorted(paths, key=lambda p: (p.chain, p.fid, p.line)):
            if lock in p.held or not p.sure:
                continue
            top = prog.funcs[p.top]
            call = prog.sites[p.chain[0][0]][p.chain[0][1]].call if p.chain else None
            at_line, at_col = (call.line, call.col) if call is not None else (p.line, 1)
            if (p.top, at_line) in reported:
                continue
            reported.add((p.top, at_line))
            steps = _describe(ls, p, lock, False)
            steps[0] = steps[0]._replace(note=f"{steps[0].note} ({_top_note(ls, p, lock)})")
            pct = round(100 * k / n)
            msg = (f"{show(target)} written without {show(lock)}, which its other writers hold: "
                   f"under {show(lock)} at {k} of {n} write paths ({pct}%)")
            via = "/".join(prog.funcs[c].name for c, _ in p.chain)
            yield Finding(
                RULE, "warning", msg, top.file, at_line, at_col, top.name,
                chain_names(steps, wsteps), (lock,), (tuple(steps), tuple(wsteps)),
                f"{target}:{lock}:{via}:{prog.funcs[p.fid].name}",
                (f"consistency: {k}/{n} write paths under {show(lock)} ({pct}%), "
                 f"in {len({q.top for q in good})} functions",
                 f"{'CPU0':<38}CPU1",
                 f"lock({show(lock)})",
                 f"{show(target)} = ...;",
                 f"{'':<38}{show(target)} = ...;  /* without {show(lock)} */",
                 "*** DATA RACE ***"),
            )


register(
    Rule(
        RULE,
        "warning",
        False,
        "shared state (struct field class or global) written under a lock on most paths "
        "and without it on others",
        DOC,
        check,
        program=True,
    )
)
