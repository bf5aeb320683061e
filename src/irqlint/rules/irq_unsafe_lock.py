"""irq-unsafe-lock: a lock taken in interrupt context and elsewhere with interrupts enabled."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Finding
from ..ir import Function, Step
from ..program import identified, program_of, reach, show
from . import Rule, register

if TYPE_CHECKING:
    from ..driver import Analysis

RULE = "irq-unsafe-lock"
SPINNING = frozenset({"spin", "raw_spin", "arch_spin", "rspin", "rwlock_r", "rwlock_w"})

DOC = """\
## What it does
Finds a spinning lock class taken in hardirq context (by a request_irq handler, directly or
any number of calls down) that is also taken in process context with IRQs enabled (plain
spin_lock(), no local_irq_save() or *_irqsave lock around it, in a function not only called
with IRQs off); likewise a lock taken in softirq context (timer, tasklet) and elsewhere with
BHs enabled. Xen profile: a lock taken both with IRQs enabled and with IRQs disabled, which
Xen's check_lock() refuses at run time (no softirq variant: Xen runs softirqs and tasklets
only at its own preemption points, never on top of hypervisor code holding a lock).

## Why is this bad?
If the interrupt arrives on the CPU that holds the lock with IRQs enabled, the handler spins
on a lock its own CPU holds and will never release: a single-CPU deadlock, lockdep's
"inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage".

## Example
    static irqreturn_t foo_irq(int irq, void *d) { spin_lock(&foo->lock); ... }
    void foo_update(struct foo *foo) { spin_lock(&foo->lock); ... }   /* IRQs on */

## Use instead
spin_lock_irqsave() (or spin_lock_irq() where IRQs are known to be on) outside the handler;
spin_lock_bh() for a lock shared with a timer or tasklet.

## Known false positives
Confidence: low; off by default (`--enable irq-unsafe-lock`). Measured on Linux 6.12 and Xen:
most findings were functions only ever called with IRQs already off by a caller the tool
cannot see (scheduler ops, list_sort comparators, init code that runs before IRQs are on).
Nor can it see that an interrupt is masked at the device while the lock is taken, or that a
lock class (struct field) covers different instances in interrupt and process context.

## References
Documentation/locking/lockdep-design.rst ("Lock-class state"); Xen common/spinlock.c
check_lock().
"""


def looks_like_handler(fn: Function) -> bool:
    """`irqreturn_t f(int irq, void *dev_id)`: an interrupt handler registered in a way
    the knowledge base does not know (ata_host_activate ...); never the process side."""
    p = fn.params
    return len(p) == 2 and p[0][1] == "int" and "irq" in p[0][0] and p[1][1] == "void"


def _state_at(
    fn_held: dict[tuple[int, int], tuple[tuple[str, str, int], ...]], line: int, col: int
) -> set[str]:
    return {k for _, k, _ in fn_held.get((line, col), ())}


def check(analysis: Analysis) -> Iterator[Finding]:
    prog = program_of(analysis)
    xen = prog.kb.profile == "xen"
    roots = {
        "hardirq": sorted(f for f, k in prog.context.items() if k == "hardirq"),
        # Xen runs softirqs and tasklets only at its own preemption points (on the way back
        # to a guest, in idle), never on top of hypervisor code holding a lock
        "softirq": [] if xen else sorted(f for f, k in prog.context.items() if k == "softirq"),
    }
    hard = reach(prog, roots["hardirq"])
    soft = reach(prog, roots["softirq"])
    # class -> [(context, root, its kind there, witness steps)], one per directory
    taken: dict[str, list[tuple[str, int, str, list[Step]]]] = {}
    for ctx in ("hardirq", "softirq"):
        for r in roots[ctx]:
            reg = prog.registered[r][0]
            for cls, a in sorted(prog.acq[r].items()):
                if a.kind in SPINNING and not a.trylock:
                    head = Step(
                        reg.file,
                        reg.line,
                        prog.funcs[reg.by].name if reg.by >= 0 else "",
                        f"{reg.api}() registers {prog.funcs[r].name}() ({ctx})",
                    )
                    chain = prog.acq_chain(r, cls)
                    where = os.path.dirname(chain[-1].file) if chain else ""
                    have = taken.setdefault(cls, [])
                    if all(os.path.dirname(w[3][-1].file) != where for w in have):
                        have.append((ctx, r, a.kind, [head, *chain]))
    if xen:  # Xen: any acquisition with IRQs off makes the class IRQ-safe
        for f, fn in enumerate(prog.funcs):
            held = {(ln, col): h for ln, col, h in fn.held}
            for op in fn.lock_ops:
                if (
                    op.op == "release"
                    or op.kind not in SPINNING
                    or op.cls in taken
                    or not identified(op.cls)
                ):
                    continue
                off = (
                    op.irq in ("off", "save")
                    or "irq" in _state_at(held, op.line, op.col)
                    or f in prog.irqs_off_entry
                )
                if off:
                    taken[op.cls] = [(
                        "irqs-off",
                        f,
                        op.kind,
                        [prog.step(f, op.line, f"{op.api}({op.expr}) with IRQs disabled")],
                    )]
    for f, fn in enumerate(prog.funcs):
        if not fn.lock_ops or f in hard or f in prog.irqs_off_entry or looks_like_handler(fn):
            continue
        held = {(ln, col): h for ln, col, h in fn.held}
        done: set[str] = set()
        for op in fn.lock_ops:
            ts = taken.get(op.cls)
            if op.op != "acquire" or ts is None or op.cls in done or op.irq is not None:
                continue
            if not xen and "::" in op.cls:
                # a struct field's lock is a class per driver, as lockdep's are per
                # spin_lock_init() site: two directories' uses are two different locks
                here_dir = os.path.dirname(fn.file)
                ts = [t for t in ts if os.path.dirname(t[3][-1].file) == here_dir]
                if not ts:
                    continue
            ctx, root, kind, witness = ts[0]
            if kind == "rwlock_r" and op.kind == "rwlock_r":
                continue  # readers do not exclude each other
            state = _state_at(held, op.line, op.col)
            if "irq" in state:
                continue
            if ctx == "softirq" and (f in soft or "bh" in state or op.bh is not None):
                continue
            done.add(op.cls)
            here = prog.step(
                f,
                op.line,
                f"{op.api}({op.expr}) with {'BHs' if ctx == 'softirq' else 'IRQs'} enabled",
            )
            if ctx == "irqs-off":
                msg = (
                    f"{show(op.cls)} is taken here with IRQs enabled, and with IRQs disabled in "
                    f"{prog.funcs[root].name}(): Xen's check_lock() forbids mixing"
                )
                titles = (f"CPU0: takes {show(op.cls)} with IRQs enabled",
                          f"{prog.funcs[root].name}() takes it with IRQs disabled")
                scen = (
                    "CPU0",
                    f"lock({show(op.cls)})   /* IRQs on */",
                    "<Interrupt>",
                    f"  lock({show(op.cls)})   /* an IRQ-off user spins on it */",
                    "*** DEADLOCK ***",
                )
            else:
                what = "interrupt" if ctx == "hardirq" else "softirq"
                msg = (
                    f"{show(op.cls)} is taken here with {'BHs' if ctx == 'softirq' else 'IRQs'} "
                    f"enabled, but also in {ctx} context by {prog.funcs[root].name}(): "
                    f"{'an' if what == 'interrupt' else 'a'} {what} on this CPU would spin on it "
                    "forever"
                )
                mask = "BHs" if ctx == "softirq" else "IRQs"
                titles = (f"CPU0: takes {show(op.cls)} with {mask} enabled",
                          f"CPU0, in the {what}: {prog.funcs[root].name}() takes it")
                scen = (
                    "CPU0",
                    f"lock({show(op.cls)})",
                    f"<{what}>",
                    f"  lock({show(op.cls)})",
                    "*** DEADLOCK ***",
                )
            yield Finding(
                RULE,
                "warning",
                msg,
                fn.file,
                op.line,
                op.col,
                fn.name,
                (fn.name, *dict.fromkeys(s.function for s in witness if s.function)),
                (op.cls,),
                ((here,), tuple(witness)),
                f"{op.cls}:{ctx}",
                scen,
                titles,
            )


register(
    Rule(
        RULE,
        "warning",
        False,  # off by default: see Known false positives
        "a lock taken in hardirq (softirq) context and elsewhere with IRQs (BHs) enabled; "
        "Xen: a lock taken both with IRQs on and off",
        DOC,
        check,
        program=True,
    )
)
