"""sleep-in-atomic: a call that may sleep, reached with a spinlock held, IRQs or preemption
off, inside an RCU read-side section, or from hardirq/softirq context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Finding
from ..program import acquires_at, program_of, show, site_sleep
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
Confidence: medium-low (about half real, below). Sleeps guarded by a runtime test of the
context (`if (!in_atomic())`,
`gfpflags_allow_blocking()` on a mask computed from flags); paths the caller never takes
with the lock held for reasons a parameter test does not spell out: a flag copied into a
heap object's field before the test (`port->wktest = !!enable; if (port->wktest)`), a
field a `switch` sets (register_sys_off_handler()'s `handler->blocking`), a field a
request is built with in another function (irdma's `cqp_request->waiting`), a bit of a
computed value, a slot the caller preallocated; an `IS_ENABLED()` test repeated around a
long loop whose correlation the path budget loses; a runtime-PM get on a device made
IRQ-safe in another file; and function pointers resolved by field name (not followed for
sleeping). A summary keeps one conditional witness per function: a second sleep under
another constant is not reported (giving the witness the tests both imply instead made
ALSA's snd_pcm_stop() sleep in every IRQ handler).
What a flag parameter does say is followed: `if (flag)`, `if (!flag)`, `if (!flag) return`
and the rest of the block, `if (mode == NAME)` / `!=`, `switch (mode)` cases (a case
fallen into needs none of the other labels), `if (flags & NAME)`, and the terms of `&&`,
against constants, named constants and OR'ed named constants the callers pass, through
helpers that pass the parameter on, up to two callers above the atomic region. So is a
field of a pointer parameter the callee tests and never writes (`cmd->flags & CMD_ASYNC`,
`switch (info->cmd)`), against what a caller's local struct passed by address holds (its
initializer list, an assignment or a memset() before the call, or the caller's own flag),
and a state bit (`test_bit(NAME, p->state)`) against a `set_bit()` the caller makes first.
An address passed (`&list`) is not taken for a non-NULL constant. So is
knowledge in kb/sleep.json: calls that never sleep for their callers (hid_hw_request(),
mbox_send_message(), vfree()), pm_runtime_get_sync() in a file that calls
pm_runtime_irq_safe(), start_kernel()'s IRQs-off section and the IRQs- or preemption-off
sections of machine_power_off()/machine_halt()/machine_restart() (the other CPUs are
stopped and might_sleep() is quiet then), schedule() with IRQs off.
Measured on the whole Linux 6.12 tree (tools/ and scripts/ left out), two fresh samples of
20 read against the code:
- 395 findings (seed 24): 14 real, 2 plausible, 4 false: a callee's `assert_spin_locked()`
  taken for a lock helper of unknown effect (2, ocfs2 dlm, fixed), a helper that takes and
  releases the lock on its success path only made the callee's dropped lock unknown (1,
  workqueue, fixed), a flag copied into a field (1).
- 373 findings after those fixes (seed 25): 14 real, 1 plausible, 5 false: the sys-off
  handler's `blocking` field set in a switch, schedule() with IRQs off in an arch exit loop
  (now known), an `IS_ENABLED()` correlation, a computed MSR bit, a preallocated buffer.
Earlier (stop 10, 565 findings): 5 real, 2 plausible, 13 false; what they were is in the
CHANGELOG.
Stop 13, two more samples (a second reader each):
- 368 findings (seed 30): 10 real, 1 plausible, 9 false: a value set before the call makes
  the sleeping branch dead (5: a zero-filled request, NULL data from every caller (fixed), a
  field set to NULL just before, two state invariants), a flag mask turned into a GFP mask
  (1), an indirect call resolved into another driver's struct of the same name (1, fixed),
  an `#ifdef` twin of the other branch (1, fixed), boot code (1).
- 347 findings after the fixes (seed 31): 9 real, 2 plausible, 9 false: state invariants
  (4: lazy init, a flag set with request_irq(), an argument combination a BUG_ON rejects,
  a preallocation), a flag copied into a struct field (`cmd.flags = CMD_ASYNC`), a field
  the driver never writes, cleanup written after panic() (fixed: calls no path reaches
  are dropped), boot code reached through `late_time_init` or secondary CPU bring-up (2).
Stop 14 (seed 33, 338 findings, a third reader): 10 real, 1 plausible, 9 false: values
the caller passes (5: a flag mask made a GFP mask, a non-NULL list address, a
request type outside the IRQs-off branch, a non-waiting request built from a flag in
another function, a command that never takes the sleeping case (fixed)), an indirect call
into another transport's hook (1), state invariants (3: order-0 folios, a buffer allocated
at probe, a node always set). 336 findings after this stop's fixes. Of the three samples'
60 findings (seeds 30, 31, 33: 33 real or plausible, 27 false) no real or plausible one is
gone from the final report, and 6 false ones are (2 by this stop's fixes: iwlegacy's
CMD_ASYNC and bnx2x's completion command).
So about half of what this rule reports is real; what is left is mostly state a
path-insensitive summary cannot carry (fields of heap objects, reference counts, lazy
initialisation).
## References
Documentation/locking/locktypes.rst; might_sleep(); DSAC (Bai et al., "Effective Detection of
Sleep-in-atomic-context Bugs in the Linux Kernel").
"""


_BOOT_OFF = ("irq", "preempt")  # what start-up code turns off without making itself atomic


def check(analysis: Analysis) -> Iterator[Finding]:
    prog = program_of(analysis)
    kinds = prog.atomic_kinds
    for f, sites in enumerate(prog.held_sites):
        fn = prog.funcs[f]
        ops_at = acquires_at(fn) if sites and fn.lock_ops else {}
        done: set[int] = set()
        boot = prog.boot_only(f)
        for site in sites:
            # start-up code runs with IRQs (and preemption) off before there is anything
            # to schedule; so does power-off once the other CPUs are stopped
            held = tuple(h for h in site.held if h[1] not in _BOOT_OFF) if boot \
                else site.held
            atomic = strongest(held, kinds)
            if atomic is None or site.call.line in done or prog.never(f, site.call.guard):
                continue
            s, _ = site_sleep(prog, site, fn, ops_at)
            if s is None or (s.needs and prog.never(f, s.needs)):
                continue  # no sleep, or one that needs flags no caller of f passes
            if s.dropped:  # the callee lets go of these before it sleeps
                atomic = strongest(tuple(h for h in held
                                         if prog.canon(h[0]) not in s.dropped), kinds)
                if atomic is None:
                    continue
            cls, kind, line = atomic
            if kind == "irq" and s.what.split("(", 1)[0] in prog.irqs_off_ok:
                continue  # schedule() with IRQs off: the arch exit-to-user loops do it
            done.add(site.call.line)
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
