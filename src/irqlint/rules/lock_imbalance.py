"""lock-imbalance: read the lock engine's per-function diagnostics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..findings import Finding
from ..program import program_of
from . import Rule, register

if TYPE_CHECKING:
    from ..driver import Analysis
    from ..ir import Diagnostic

DOC = """\
## What it does
Follows every path through a function that takes locks (spinlocks, rwlocks, mutexes, rwsems,
RCU read side, IRQ/BH/preemption disabling, guard()/scoped_guard()) and flags:
- a lock acquired again on a path that already holds it (self-deadlock);
- a lock released twice on the same path;
- a return that still holds a lock which the function's other returns have released.

## Why is this bad?
A missing unlock on an error path leaves the lock held forever: the next taker spins or sleeps
for good, usually far from the bug. A double lock of a non-recursive lock deadlocks the CPU on
itself; a double unlock corrupts the lock and lets two CPUs into the critical section.

## Example
    spin_lock(&dev->lock);
    if (!dev->ready)
        return -ENODEV;          /* returns with dev->lock held */
    ...
    spin_unlock(&dev->lock);
    return 0;

## Use instead
    spin_lock(&dev->lock);
    if (!dev->ready) {
        ret = -ENODEV;
        goto out_unlock;
    }
    ...
    out_unlock:
    spin_unlock(&dev->lock);
    return ret;

## Known false positives
Confidence: medium. Paths exclusive for a reason the tool cannot see (two different conditions
that are equivalent; a state machine), and callees in *other files* that release or take the
lock (when the whole-program rules run, a finding is dropped if a callee of another file
between the lock and the report has a lock effect of its own -- `drm_gem_handle_create_tail()`
"unconditionally unlocks"; with only this rule enabled, those callees are invisible), and
noreturn functions missing from the knowledge base. Measured on Linux 6.12: see the project notes.
What the engine already follows: the same condition at lock and unlock (also `a != b` vs
`b != a`, and `flag = false;` assignments), trylock and *_interruptible results, gotos,
noreturn calls (BUG(), panic()), `#ifdef`/`IS_ENABLED()` branches as build alternatives,
same-file callees through their lock effect (including #ifdef twins), lock-wrapper macros,
pointers re-pointed by assignment, loop cursors or `f(&p)`, IRQ/BH sections opened by
`*_irqsave` locks. It stays silent on functions meant to return holding a lock (named
*_lock/*_acquire/*_enter..., annotated __acquires/__releases/__must_hold, registered as a
paired callback such as `.pre_reset`, or returning holding with a non-error value: the bug
shape it reports is an error return or a void return that forgot the unlock), on functions
the grammar choked on, and on functions whose state space it had to cut short.
Measured on the whole Linux 6.12 tree: 49 findings, of 20 sampled 6 real, 14 false: a
caller's lock dropped by a callee and taken again (3), IRQ state in entry code (3, among
them hard_irq_disable(), now no lock), a helper that takes a lock for its caller released by
a __cleanup destructor (2), callees that always return 0 (2), one lock named two ways
through aliases (2), a failed trylock branch (1), a loop that always runs once (1).

## References
Linux Documentation/locking/lockdep-design.rst; smatch check_locking.c ("inconsistent returns").
"""


def _window(d: Diagnostic) -> tuple[int, int]:
    """The lines between the lock and the report: a goto back (a retry loop) can put the
    report before the lock, so the span of every line of the trace."""
    lines = [s.line for s in d.trace] + [d.line]
    return min(lines), max(lines)


def _callee_effects(analysis: Analysis) -> Callable[[str, str, int, int], bool] | None:
    """With every file's facts at hand (whole-program rules on): does a function call, between
    two lines, a function of another file whose frozen lock effect releases, takes or loses
    track of a lock (`drm_gem_handle_create_tail()` "unconditionally unlocks")?"""
    if analysis.facts is None:
        return None
    prog = program_of(analysis)
    where = {(fn.file, fn.name): i for i, fn in enumerate(prog.funcs)}

    def touches(path: str, name: str, lo: int, hi: int) -> bool:
        f = where.get((path, name))
        if f is None:
            return False
        for site in prog.sites[f]:
            if lo <= site.call.line <= hi and site.propagates:
                for t in site.callees:
                    e = prog.funcs[t].effect
                    if prog.funcs[t].file != path and (e.releases or e.acquires or e.unknown):
                        return True
        return False

    return touches


def _cannot_fail(analysis: Analysis) -> Callable[[tuple[str, ...]], bool] | None:
    """With every file's facts at hand: do all these functions (the ones whose result an
    error return passes on) always return 0 (`gx_powerup()`)? Then that path cannot run."""
    if analysis.facts is None:
        return None
    prog = program_of(analysis)
    zero: dict[str, bool] = {}
    for fn in prog.funcs:  # a name defined more than once must return 0 everywhere
        zero[fn.name] = zero.get(fn.name, True) and fn.const_return == "0"

    def cannot_fail(names: tuple[str, ...]) -> bool:
        return bool(names) and all(zero.get(n, False) for n in names)

    return cannot_fail


def check(analysis: Analysis) -> Iterator[Finding]:
    touches = _callee_effects(analysis)
    cannot_fail = _cannot_fail(analysis)
    for summary in analysis.files:
        seen: dict[tuple[str, str], int] = {}
        for fname, d in summary.diagnostics:
            if touches is not None and d.trace and touches(
                    summary.path, fname, *_window(d)):
                continue  # a callee in another file moves the lock: its summary says so
            if cannot_fail is not None and cannot_fail(d.error_from):
                continue  # the error comes from a callee that always returns 0
            n = seen.get((fname, d.key), 0)
            seen[(fname, d.key)] = n + 1
            yield Finding(
                rule=d.rule, severity="warning", message=d.message, file=summary.path,
                line=d.line, column=d.col, function=fname, functions=(fname,),
                locks=d.locks, traces=(d.trace,), key=d.key if n == 0 else f"{d.key}#{n}",
            )


register(Rule("lock-imbalance", "warning", True,
              "double lock, unlock of a lock not held, return with a lock held on some paths only",
              DOC, check))
