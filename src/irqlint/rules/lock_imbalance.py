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
Confidence: medium-high. Paths exclusive for a reason the tool cannot see (two different
conditions that are equivalent; a state machine; a value range such as `i >= 0` at the start
of an unwinding loop), and callees in *other files* that release or take the lock, or always
return 0 (when the whole-program rules run, a finding is dropped if a callee of another file
between the lock and the report has a lock effect of its own -- `drm_gem_handle_create_tail()`
"unconditionally unlocks" -- or if the error it returns comes only from callees that always
return 0; with a single file, or with only this rule enabled, those callees are invisible).
What the engine follows: the same condition at lock and unlock (also `a != b` vs `b != a`,
`a < b` vs `b > a` vs `!(a >= b)` and `++a < b`, each operand of a true `a && b` or a false
`a || b`, and constants set by `flag = false;`, `r.found = true;` or `bool locked = true;`),
trylock and *_interruptible results, gotos, noreturn calls (BUG(), panic(), die(), and
same-file functions none of whose paths return), `#ifdef`/`IS_ENABLED()` branches as build
alternatives, same-file callees through their lock effect (including #ifdef twins, and
`__releases()` annotations), lock-wrapper macros, locals standing for a path off a parameter
(`p = arg->x; lock(&p->lock)` is `arg->x->lock`), a release of one lock under another name of
the same class (a callee's `s->owner->lock` for the caller's `owner->lock`), pointers
re-pointed by assignment, loop cursors or `f(&p)`, calls that may drop locks of a class
(kb `lock_droppers`: handle_mm_fault() and the mmap_lock), IRQ/BH sections opened by
`*_irqsave` locks. It stays silent on functions meant to return holding a lock (named
*_lock/*_acquire/*_enter..., annotated __acquires/__releases/__must_hold, registered as a
paired callback such as `.pre_reset`, returning holding with a non-error value or a value the
path tested to be no error, or never releasing on any return the lock they take: the bug
shape it reports is an error return or a void return that forgot the unlock the other
returns do), on functions the grammar choked on, and on functions whose state space it had to
cut short.
Measured on the 47 findings of the whole Linux 6.12 tree (before the fixes above): 8 real
(kvmppc_xive_clr_mapped, native_hpte_removebolted, unregister_winch, init_phase3, run_osnoise
irq and preempt, iso_connect_ind, and rsem_AA1: the locking selftest's deliberate AA
deadlock), 39 false: a function taking a lock for its caller, never releasing it on any
return (13: *_start/*_stop pairs, __cleanup destructors, boot and entry code leaving IRQs off,
a caller's lock a callee dropped and this function retakes); one lock named two ways through
a local alias or a callee's parameter (7); a loop's exit test not related to the test after
it (4); a callee that always returns 0 (2); callees that may drop the caller's lock
(handle_mm_fault, the console_lock hand-over: 2); flags set by a declaration or a field (2);
error returns whose value the path tested to be no error (2); noreturn calls (die(), a
same-file function ending in for (;;): 2); lock APIs the knowledge base dropped
(__rtnl_unlock: 1); lock_sock() and bh_lock_sock() taken as one lock (1); a && condition
(1); an unwinding loop that always runs once (1); a bool return telling the caller the lock
is held (fast_dput's `return false`, 1). After the fixes: 10 findings, 8 real (80%); the two
false ones left are the unwinding loop (fsldma_suspend_late) and fast_dput's contract.

## References
Linux Documentation/locking/lockdep-design.rst; smatch check_locking.c ("inconsistent returns").
"""


def _window(d: Diagnostic) -> tuple[int, int]:
    """The lines between the lock and the report, in either order: a goto back (a retry
    loop) can put the report before the lock."""
    a, b = d.trace[0].line, d.line
    return min(a, b), max(a, b)


def _callee_effects(analysis: Analysis) -> Callable[[str, str, int, int], bool] | None:
    """With every file's facts at hand (whole-program rules on): does a function call, between
    two lines, a function of another file whose frozen lock effect releases, takes or loses
    track of a lock (`drm_gem_handle_create_tail()` "unconditionally unlocks")?"""
    if analysis.facts is None and analysis.program is None:
        return None
    prog = program_of(analysis)
    where = {(fn.file, fn.name): i for i, fn in enumerate(prog.funcs)}

    def touches(path: str, name: str, lo: int, hi: int) -> bool:
        f = where.get((path, name))
        if f is None:
            return False
        for site in prog.active[f]:
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
    if analysis.facts is None and analysis.program is None:
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
