"""sleep-in-atomic: a call that may sleep, reached with a spinlock held, IRQs or preemption
off, inside an RCU read-side section, or from hardirq/softirq context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Finding
from ..program import acquires_at, dead, program_of, show, site_sleep
from . import Rule, register
from ._explain import chain_names, held_word, strongest

if TYPE_CHECKING:
    from ..driver import Analysis

RULE = "sleep-in-atomic"

DOC = """\
## What it does
Finds calls that may sleep made where sleeping is forbidden: with a spinlock or rwlock held,
with IRQs, BHs or preemption disabled, inside rcu_read_lock(), in a hardirq or softirq
callback (request_irq handler, timer, tasklet), or in a framework callback that runs with IRQs
off (irq_chip methods). "May sleep" is followed through any number of calls, across files and
through function pointers resolved by struct type: mutexes, rwsems and semaphores, msleep(),
wait_for_completion(), copy_from_user(), and allocations whose GFP mask allows direct reclaim
(GFP_KERNEL, GFP_NOFS, GFP_NOIO; never GFP_ATOMIC/GFP_NOWAIT). A gfp_t parameter passed down
is followed to the argument the caller gives it. The message names the atomic region's start
and the whole chain down to the sleeping call.

## Why is this bad?
Sleeping with a spinlock held or IRQs off schedules away while other CPUs spin on the lock
or the local CPU's interrupt work is blocked: "BUG: sleeping function called from invalid
context", lockups, or a deadlock when the scheduler wants the same lock. These bugs hide
behind configuration (PREEMPT_RT, CONFIG_DEBUG_ATOMIC_SLEEP) and behind rarely taken paths:
pci_intx() only allocated a devres once the device was managed, three calls down from a
caller holding its irqlock.

## Example
    spin_lock_irqsave(&vdev->irqlock, flags);
    pci_intx(pdev, 0);          /* -> pcim_intx() -> devres_alloc(GFP_KERNEL) */
    spin_unlock_irqrestore(&vdev->irqlock, flags);

## Use instead
Move the sleeping call out of the atomic region, allocate before taking the lock, pass
GFP_ATOMIC (and handle failure), or use a helper that never sleeps (__pci_intx()).

## Known false positives
Confidence: medium. Sleeps guarded by a runtime test of the context (`if (!in_atomic())`,
`gfpflags_allow_blocking()` on a mask computed from flags), paths the caller never takes
with the lock held that a flag parameter does not spell out (a summary knows the flag
parameters its sleep needs only from `if (flag)`, `if (!flag)` and `if (!flag) return`
around it; a test such as `flags & X` or `mode == Y`, a flag kept in a struct field, or a
sleep only on a `WARN_ON()` failure branch, as in btrfs_put_block_group(), is not seen),
a runtime-PM get on a device its driver made IRQ-safe
(pm_runtime_irq_safe()) or that is already active, a callback-or-fallback dispatch whose
fallback sleeps (hid_hw_request() on a transport with an asynchronous .request), a mailbox
client set non-blocking, and function pointers resolved by field name (those are not
followed for sleeping). The list of sleeping functions is in the knowledge base
(kb/sleep.json); a project config can add to it.
Not false positives any more: a callee that lets go of the caller's lock around its blocking
allocation, allocating without it only when its mask cannot block (maple tree mas_nomem;
kb/sleep.json `blocking_tests`), and the IRQ/BH section of a guard (`guard(spinlock_irq)`,
`scoped_guard(spinlock_irqsave, ...)`), which now ends with the guard's scope.
Measured on the whole Linux 6.12 tree: 660 findings; of 20 sampled (seed 11) 2 real,
1 plausible, 17 false: the maple tree lock dropped in mas_nomem (4, fixed), a constant
argument ruling the path out (3), an IRQ section of a scoped guard left open after its scope
(2, fixed), a sleep on a WARN_ON() branch only (2), a GFP mask test on flags (1), an #ifdef
twin of a static function taken for the other configuration (1), pm_runtime_irq_safe (1),
a non-blocking mailbox client (1), a transport-dependent HID request (1), an object that
never reaches the sleeping branch (1).
After those two fixes: 565 findings; a fresh sample (seed 11): 5 real, 2 plausible, 13 false:
a callee that releases the caller's lock before sleeping and says so with `__releases`
(xlog_wait, unix_wait_for_peer) or through a `MA_STATE` local of unknown type (3), a constant
argument ruling the path out (3), the wrong body or target (an #ifdef twin, another
transport's function pointer, and a file's own macro `STORE()` taken for another file's
function, now fixed) (3), early boot under GFP_BOOT_MASK (1), an RCU Tasks Trace reader
(sleepable, now fixed) (1), pm_runtime_irq_safe (1), a slot the caller preallocated (1).
With those two fixed: 551 findings.
Flag parameters (a callee that sleeps only under `if (flag)`, or after `if (!flag) return`,
called with a constant that says otherwise, directly or through helpers that pass the flag
on): 551 -> 506 findings, for example ext4's `__es_alloc_extent(false)`, which allocates
with GFP_ATOMIC, and defxx's `dfx_rcv_init(bp, 0)` in its interrupt path.
## References
Documentation/locking/locktypes.rst; might_sleep(); DSAC (Bai et al., "Effective Detection of
Sleep-in-atomic-context Bugs in the Linux Kernel").
"""


def check(analysis: Analysis) -> Iterator[Finding]:
    prog = program_of(analysis)
    kinds = prog.atomic_kinds
    for f, sites in enumerate(prog.held_sites):
        fn = prog.funcs[f]
        ops_at = acquires_at(fn) if sites and fn.lock_ops else {}
        done: set[int] = set()
        boot = fn.name in prog.boot
        for site in sites:
            # start_kernel() runs with IRQs off before there is anything to schedule
            held = tuple(h for h in site.held if h[1] != "irq") if boot else site.held
            atomic = strongest(held, kinds)
            if atomic is None or site.call.line in done or dead(site.call.guard):
                continue
            s, _ = site_sleep(prog, site, fn, ops_at)
            if s is None:
                continue
            if s.dropped:  # the callee lets go of these before it sleeps
                atomic = strongest(tuple(h for h in held
                                         if prog.canon(h[0]) not in s.dropped), kinds)
                if atomic is None:
                    continue
            done.add(site.call.line)
            cls, kind, line = atomic
            word = held_word(cls, kind)
            chain = prog.sleep_chain(f, s)
            start = prog.step(
                f,
                line,
                f"{word} from here"
                if kind in ("irq", "bh", "preempt", "rcu")
                else f"takes {show(cls)}",
            )
            callee = site.call.callee or site.call.via
            depth = f", {s.depth} call(s) down" if s.depth else ""
            msg = f"'{callee}' may sleep ({s.what}{depth}) with {word} (since line {line})"
            yield Finding(
                RULE,
                "warning",
                msg,
                fn.file,
                site.call.line,
                site.call.col,
                fn.name,
                chain_names([start], chain),
                (cls.rstrip("*"),),
                ((start, *chain),),
                f"{callee}:{cls}",
            )
        # a callback of an atomic context that sleeps, below its own locks
        ctx = prog.context.get(f)
        why = None
        if ctx in ("hardirq", "softirq"):
            reg = prog.registered[f][0]
            why = (
                f"runs in {ctx} context: registered by {reg.api}() at {reg.file}:{reg.line}",
                f"{ctx} callback",
            )
        elif f in prog.framework:
            cls, _, what = prog.framework[f]
            why = (
                f"called with IRQs off and {show(cls)} held: {what}",
                "callback run with IRQs off",
            )
        s = prog.sleep[f]
        if why is None or s is None:
            continue
        chain = prog.sleep_chain(f, s)
        head = prog.step(f, fn.line, why[0])
        depth = f", {s.depth} call(s) down" if s.depth else ""
        yield Finding(
            RULE,
            "warning",
            f"{fn.name}() is a {why[1]}, but may sleep ({s.what}{depth})",
            fn.file,
            s.line,
            1,
            fn.name,
            chain_names([head], chain),
            (),
            ((head, *chain),),
            f"context:{why[1]}",  # not what sleeps: that is in another function
        )


register(
    Rule(
        RULE,
        "warning",
        True,
        "a call that may sleep (GFP-aware, through any number of calls) with a spinlock "
        "held, IRQs/preemption off, in RCU read side, or in hardirq/softirq context",
        DOC,
        check,
        program=True,
        lean=True,
    )
)
