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
that asserts L (lockdep_assert_held(), __must_hold()), or an ops method whose every call
through its field in the analysed tree holds L. A lock held on some paths to a write
only is no protection. A write in a helper is followed up into its callers, so that a helper
called under L from four places and without it from a fifth gives one outlier, at the fifth
call. Findings rank by how consistent the majority is: the message gives "under L at k of n
write paths" (at least 75% by default, at least 3 protected paths in 2 functions).

Not counted: writes in __init/__exit functions and functions registered with
module_init()/*_initcall() (nothing else runs yet); struct-field writes on a path through
a set-up or tear-down function (named like probe/init/alloc/create/setup/remove/exit/
release/destroy/free/suspend/resume, or stored in such an ops field), and global writes on
a path that starts in one (the object is not shared yet, or any more); writes through a
local pointer that only ever holds a fresh allocation or points into a local object;
writes to locals. A target written next to a memory barrier (smp_mb(), smp_store_release()
...) is a lockless protocol by design and is skipped whole. atomic_*() and WRITE_ONCE()
are calls, not plain writes: such marked lockless accesses are neither protected nor
outliers. Read locks, RCU and IRQs-off do not protect a write. A path through a lock helper
the lock engine cannot follow (a header's static inline lock wrapper) is never reported.

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
Confidence: low; off by default. On the whole Linux 6.12 tree: 2,570 findings, of 20
sampled 3 real and 2 plausible; the false ones were another object of the same type (a
fresh allocation, a stack object, another ring element, a generic helper on many instances:
6), protection it does not model (dma_resv reservation, a bit lock, a lock named after
another driver's struct: 3), init, teardown or exclusive-open phases (3), a lock held across
an indirect call or an async completion (2), dead code (1). What would fix the largest group:
object identity (a write through the same lock-owning parent, fresh objects unshared until
published). Xen's hypervisor tree: 15 findings. Earlier, on Linux 6.12 subtrees (drivers/xen,
drivers/pci, kernel/irq, e1000e, drivers/input, drivers/tty, sound/core) and Xen
xen/common: 63 findings, of 20 sampled 13 real (65%; mostly counter and shadow-register
races in old drivers); drivers/net/ethernet/intel: 56 findings, of 10 sampled 5 real (the
iavf flag words set without crit_lock). Below the 80% aim. The false ones: a lock the
framework holds around
an ops method when the framework is not in the analysed tree or takes it through a header
wrapper (serial core's uart_port_lock(), the tty core's termios_rwsem, snd_timer's hw ops);
an on-stack object handed to a helper before it is published; one lock named two ways (a
file-static pointer and a typed parameter to the same struct); two instances of one struct
type under two locks (a send and a receive ring's descriptors); stop-machine and kgdb
paths. What would fix them: framework holds as knowledge for the common ops tables, header
lock wrappers as lock APIs, objects passed by `&local` treated as local in the callee.
Lock classes are compared by class (struct type and field), not instance, and callers
outside the analysed tree are invisible: an exported function documented "caller
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
    below = [c for c, _ in p.chain[1:]] + ([p.fid] if p.chain else [])
    for (c, si), nxt in zip(p.chain, below, strict=True):
        site = prog.sites[c][si]
        held, _ = ls.site_held(c, si)
        callee = prog.funcs[nxt].name
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


def _report_point(p: Path, on_good: set[int]) -> int:
    """Where the path leaves the protected ones: the index into p.chain of the call to
    report (-1: the write itself).  Going up from the write, the first function that no
    protected path of the same write passes through is where the lock goes missing."""
    if p.fid not in on_good:
        return -1
    for i in range(len(p.chain) - 1, -1, -1):
        if p.chain[i][0] not in on_good:
            return i
    return 0 if p.chain else -1


def _unseen_entry(ls: Locksets, top: int) -> bool:
    """A static function nothing calls, registers or stores: it is entered in a way the
    program model does not see (a macro-built table, a pointer we did not resolve)."""
    prog = ls.prog
    return (prog.funcs[top].static and not prog.callers[top] and top not in prog.registered
            and top not in prog.stored and top not in prog.context)


def _related(target: str, lock: str, framework: set[str]) -> bool:
    """A lock a framework holds around callbacks (irq_desc::lock) protects its own struct's
    fields; that it is held around other writes is the callback's nature, not a discipline."""
    if lock not in framework:
        return True
    return "::" in target and target.split("::", 1)[0] == lock.split("::", 1)[0]


def check(analysis: Analysis) -> Iterator[Finding]:
    prog = program_of(analysis)
    ls = locksets.build(prog)
    sec = prog.kb.section("sharing")
    min_share, min_prot, min_fns = sec["min_share"], sec["min_protected"], sec["min_functions"]
    framework = {v[0] for v in prog.framework.values()} | ls.learned
    writes_of, lockless = locksets.shared_writes(ls)
    for key, writes in sorted(writes_of.items()):
        if key in lockless:
            continue
        target = key[0]
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
        if k == n or k < min_prot or k < min_share * n or not _related(target, lock, framework):
            continue
        good = [p for p in paths if lock in p.held]
        if len({p.top for p in good}) < min_fns:
            continue
        yield from _outliers(ls, target, lock, paths, good, k, n)


def _outliers(ls: Locksets, target: str, lock: str, paths: list[Path], good: list[Path],
              k: int, n: int) -> Iterator[Finding]:
    prog = ls.prog
    on_good: dict[tuple[int, int], set[int]] = {}
    for p in good:
        on_good.setdefault((p.fid, p.line), set()).update({p.fid, *(c for c, _ in p.chain)})
    # the discipline must be visible where the write is: a protected write in the same file
    # (another driver's lock on a shared core struct is that driver's business)
    disciplined = {prog.funcs[p.fid].file for p in good}
    witness = min(good, key=lambda p: (prog.funcs[p.top].file, prog.funcs[p.top].line,
                                        p.chain, p.line))
    wsteps = _describe(ls, witness, lock, True)
    # unprotected paths grouped by where the lock goes missing; the shortest one speaks
    groups: dict[tuple[int, int, int], list[tuple[int, Path]]] = {}
    for p in paths:
        if lock in p.held or not p.sure or prog.funcs[p.fid].file not in disciplined \
                or _unseen_entry(ls, p.top):
            continue
        i = _report_point(p, on_good.get((p.fid, p.line), set()))
        if i < 0:
            where = (p.fid, p.line, 1)
        else:
            c, si = p.chain[i]
            call = prog.sites[c][si].call
            where = (c, call.line, call.col)
        groups.setdefault(where, []).append((i, p))
    pct = round(100 * k / n)
    tops = len({q.top for q in good})
    for (fid, line, col), members in sorted(groups.items()):
        i, p = min(members, key=lambda m: (len(m[1].chain) - max(m[0], 0), m[1].chain))
        sub = p._replace(chain=p.chain[max(i, 0):]) if i >= 0 else p._replace(chain=())
        steps = _describe(ls, sub, lock, False)
        if sub.chain or i < 0:
            steps[0] = steps[0]._replace(note=f"{steps[0].note} ({_top_note(ls, p, lock)})")
        fn = prog.funcs[fid]
        others = len({m[1].top for m in members}) - 1
        more = f"; reached from {others + 1} entry functions" if others else ""
        msg = (f"{show(target)} written without {show(lock)}, which its other writers hold: "
               f"under {show(lock)} at {k} of {n} write paths ({pct}%){more}")
        via = "/".join(prog.funcs[c].name for c, _ in sub.chain)
        yield Finding(
            RULE, "warning", msg, fn.file, line, col, fn.name,
            chain_names(steps, wsteps), (lock,), (tuple(steps), tuple(wsteps)),
            f"{target}:{lock}:{via}:{prog.funcs[p.fid].name}",
            (f"consistency: {k}/{n} write paths under {show(lock)} ({pct}%), in {tops} "
             "functions",
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
        program=True, facts=frozenset({"sharing"}),
    )
)
