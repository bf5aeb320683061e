"""wait-under-lock: a synchronous wait for a callback while holding a lock that callback takes."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Finding
from ..program import (
    Program,
    Reg,
    Wait,
    direct_wait,
    locks_held,
    program_of,
    show,
)
from . import Rule, register
from ._explain import chain_names, cpu_rows, two_cpus

if TYPE_CHECKING:
    from ..driver import Analysis

RULE = "wait-under-lock"

DOC = """\
## What it does
Finds a synchronous wait -- disable_irq(), synchronize_irq(), free_irq(), del_timer_sync() /
timer_delete_sync(), cancel_work_sync(), flush_work(), flush_workqueue(), tasklet_kill(),
kthread_stop(); Xen kill_timer(), tasklet_kill() -- made, directly or through calls, while
holding a lock that the callback being waited for takes (directly or through calls).
The waited-for callback is matched precisely where the code allows (the handler registered
for the same irq/timer/work field); otherwise the callbacks of that kind registered in the
same file for an interrupt waited for by number (disable_irq(irq)). The finding says which
match it used. flush_workqueue() and kthread_stop() name no callback and are matched only when
a later version learns which work items go to which queue.

## Why is this bad?
The wait cannot finish until the callback returns, and the callback cannot return until it
gets the lock the waiter holds: a deadlock that lockdep does not model (it does not see waits
on IRQ handlers at all), and that needs the interrupt to fire in a narrow window to show up.

## Example
    spin_lock_irq(&port_user_lock);
    disable_irq(irq);           /* waits for evtchn_interrupt(), which takes port_user_lock */
    port_user[port] = NULL;
    spin_unlock_irq(&port_user_lock);

## Use instead
Wait before taking the lock (disable_irq() first, then lock), or use the non-waiting variant
(disable_irq_nosync(), del_timer(), cancel_work()) and make the callback tolerate running.

## Known false positives
Confidence: medium when matched by object, low when matched by file (the finding says
which): a driver with several interrupts may wait for one whose handler does not take the
lock. Locks are compared by class (struct type and field), not instance. The waited-for
object is matched by its field path and, when both it and the registered one resolve to
a plain field of a known struct, by that typed class too (`amdgpu_device::reset_work` is
not `amdgpu_reset_control::reset_work`). A callback that only tries the lock
(`mutex_trylock()`, `scoped_guard(mutex_try, ...)`) cannot hold the wait up. Nor can a
work item of an ordered workqueue (alloc_ordered_workqueue(), create_singlethread_workqueue(),
mac80211's ieee80211_queue_work()) that the waiter's own work item, of that queue only,
cancels: the queue runs one item at a time, so the one waited for is at most pending
(kb waits.json `queues`, `ordered_allocs`; a function running inside the very item it waits
for is still reported). Still false:
waits that the object's state rules out (a device marked not booted, a flag bit set just
before, a fresh object whose device pointer was just checked), and a reference count
that keeps the last put, and its cancel, out of the work itself.
Measured on the whole Linux 6.12 tree (tools/ and scripts/ left out), 104 findings; of 20
sampled (seed 24) 11 real, 2 plausible, 7 false: a state invariant (3: pvr `booted`,
ax25's checked device, a just-created ax25 control block), the ESD work's
`scoped_guard(mutex_try)` (2, fixed), a reference count (1, cifs), a callee's dropped
lock made unknown by a helper (1, workqueue, fixed). The sample before (seed 22, 93
findings): 11 real, 2 plausible, 7 false, of which the typed match, the wake_up() lock
helper and the trace of a callee's second cancel were fixed.
Stop 13: 98 findings (seed 30): 8 real, 1 plausible, 11 false: reference counts (2), a
constant or NULL argument that cuts the callback's way to the lock (3: cifs' NULL tree
connection behind a retry label, ax25's ETIMEDOUT; both fixed), code under the file's own
`#ifndef final_version` (fixed), a mode of the registering object, an object not yet
armed, an ordered workqueue, a uniprocessor platform, a different instance. 79 findings
after the fixes, a call reported once however many of its callee's waits deadlock
(seed 31): 10 real, 2 plausible, 8 false: an object not yet armed or a suspended device
(2), a flag bit set just before (1), a field NULL on the waiter's path and dereferenced on
the callback's (2), a mode of the registering object (1), instance identity (1), a
handler whose enabling flag is only set under `#if 0` (1). Two of the real ones wait for
the callback they run in (a work cancelling itself): the report names the lock, the hang
is the self-wait.
Stop 14 (seed 33, 79 findings, a third reader): 10 real, 1 plausible, 9 false: a state bit
that skips the wait (2, ionic's FW_RESET; test_bit()/set_bit() are followed now), conditions
on one field the two chains need opposite values of (2, ax25), a reference count (1, cifs),
an item never queued (1, the only queue_work() is commented out), an ordered workqueue (1,
rtw88: fixed, with cw1200's scan work), a uniprocessor-only platform (1), a callback path
taken only in another mode (1, sparc LDC). 75 findings after the fixes (ionic's reset path,
which sets the bit before its teardown, is one of them); no real or plausible finding of the
three samples (seeds 30, 31, 33) is gone, 5 false ones are.

## References
Documentation/core-api/genericirq.rst (disable_irq waits for running handlers);
Linux commit "xen/evtchn: avoid deadlock in evtchn_unbind_from_user" shape.
"""

_HOPS = re.compile(r"(?:->|\.)([A-Za-z_]\w*(?:@\w+)?)")
_ROOT = re.compile(r"[&*(\s]*([A-Za-z_]\w*)")


_CONST_INDEX = re.compile(r"\[\s*(\d+|[A-Z][A-Z0-9_]*)\s*\]")


def _path(expr: str) -> tuple[str, ...]:
    """The field path of what is waited for: `&d->priv.reset_work` -> ("priv", "reset_work");
    a plain name (`irq`, a parameter) has no path.  A constant index stays with its field
    (`np->msi_x_entry[NV_MSIX_TX].vector` -> ("msi_x_entry[NV_MSIX_TX]", "vector")); any
    other index is dropped and matches every element."""
    e = _CONST_INDEX.sub(lambda m: "@" + m.group(1), expr.replace(" ", ""))
    e = re.sub(r"\[[^\]]*\]", "", e)
    m = _ROOT.match(e)
    if not m:
        return ()
    return tuple(h.replace("@", "[", 1) + "]" if "@" in h else h
                 for h in _HOPS.findall(e, m.end()))


def _hop_matches(x: str, y: str) -> bool:
    """Two components of field paths name the same field, and, when both index it with a
    constant, the same element."""
    if x == y:
        return True
    fx, _, ix = x.partition("[")
    fy, _, iy = y.partition("[")
    return fx == fy and not (ix and iy)


def _same_object(a: tuple[str, ...], b: tuple[str, ...], generic: frozenset[str]) -> bool:
    """One field path is a suffix of the other (`dev->priv->work` and `priv->work`); a
    generic last name (`->work`, knowledge base) needs one more matching component."""
    n = min(len(a), len(b))
    if n == 0 or not all(_hop_matches(x, y) for x, y in zip(a[-n:], b[-n:], strict=True)):
        return False
    return a[-1] not in generic or n > 1


def _resolved(cls: str) -> bool:
    """`T::field`: re-rooted down to the struct that holds the field (Program.canon walks
    pointers and embedded structs: `throtl_grp::service_queue.pending_timer` is
    `throtl_service_queue::pending_timer`); a path it could not walk is not compared."""
    _, sep, fields = cls.partition("::")
    return bool(sep) and fields.isidentifier()


class _Matcher:
    """Registrations by role and directory; each wait matched once per (kind, arg, file)."""

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.roles = prog.kb.section("waits")["roles"]
        self.keys = prog.kb.section("waits")["key_args"]
        self.generic = frozenset(prog.kb.section("waits")["generic_fields"])
        self.by: dict[tuple[str, str], list[tuple[int, Reg, tuple[str, ...]]]] = {}
        for fid, regs in sorted(prog.registered.items()):
            for r in regs:
                k = self.keys.get(r.api)
                path = _path(r.args[k]) if k is not None and k < len(r.args) else ()
                self.by.setdefault((r.role, os.path.dirname(r.file)), []).append((fid, r, path))
        self.memo: dict[tuple[str, str, str, str], tuple[list[tuple[int, Reg]], str]] = {}

    def match(self, w: Wait, wfile: str) -> tuple[list[tuple[int, Reg]], str]:
        k = (w.what, w.arg, wfile, w.obj)
        got = self.memo.get(k)
        if got is None:
            got = self.memo[k] = self._match(w, wfile)
        return got

    def _same_type(self, a: str, b: str) -> bool:
        """Typed classes of the registered and the waited-for object do not say they differ:
        `amdgpu_device::reset_work` is not `amdgpu_reset_control::reset_work`, whatever
        their field paths' common suffix.  Only classes resolved down to their last struct
        (one plain field past `::`) are compared."""
        if not a or not b:
            return True
        ca, cb = self.prog.canon(a), self.prog.canon(b)
        return ca == cb or not (_resolved(ca) and _resolved(cb))

    def _match(self, w: Wait, wfile: str) -> tuple[list[tuple[int, Reg]], str]:
        wdir = os.path.dirname(wfile)
        local = [r for role in self.roles.get(w.what, []) for r in self.by.get((role, wdir), [])]
        path = _path(w.arg)
        if path:
            # the wait names its object: only a registration of that object counts
            same = [(f, r) for f, r, p in local if _same_object(p, path, self.generic)
                    and self._same_type(r.obj, w.obj)]
            # `->work` alone names no object: several work items of a file are all `work`
            return same, f"registered for the same '{'.'.join(path)}'"
        if w.what != "irq":
            # flush_workqueue(wq), kthread_stop(t): which callbacks run there is not in the
            # code's text; guessing by file was mostly wrong (Linux 6.12 sample)
            return [], ""
        same_file = [(f, r) for f, r, _ in local if r.file == wfile]
        return same_file, "registered in the same file (not matched by object)"


def check(analysis: Analysis) -> Iterator[Finding]:
    prog = program_of(analysis)
    waits = prog.kb.section("waits")["waits"]
    matcher = _Matcher(prog)
    for f, sites in enumerate(prog.held_sites):
        fn = prog.funcs[f]
        for site in sites:
            held = locks_held(site.held)
            if not held or prog.never(f, site.call.guard):
                continue
            c = site.call
            wl: list[Wait] = []
            if c.callee in waits:
                wl.append(direct_wait(waits, c, fn))
            elif site.propagates:
                for t in site.callees:
                    wl.extend(
                        Wait(w.api, w.what, w.arg, c.line, t, w.depth + 1, w.dropped, (), w.obj)
                        for w in prog.waits[t] if prog.possible(f, w.needs, c)
                    )
            # one finding per call: a callee's waits for its two interrupts (ldc_disconnect()
            # frees tx and rx) deadlock at one place, for one fix
            reported = False
            for w in wl:
                if reported:
                    break
                cands, how = matcher.match(w, prog.funcs[prog.wait_site(f, w)].file)
                for h, reg in cands:
                    # a lock the callback only tries (mutex_trylock) cannot hold it up; a
                    # lock a callee let go before waiting is not held during the wait
                    hacq = prog.acq[h]
                    common = [x for x in held if x[0] in hacq and not hacq[x[0]].trylock
                              and prog.canon(x[0]) not in w.dropped and x[0] not in prog.keyed]
                    if not common:
                        continue
                    if reg.role == "work" and prog.one_ordered_queue(f, reg.obj or w.obj):
                        # both run on one ordered workqueue: the work waited for is not
                        # running while f is, so the wait only takes it off the queue
                        continue
                    cls, _, line = common[0]
                    wchain = prog.wait_chain(f, w)
                    hname = prog.funcs[h].name
                    take = prog.step(f, line, f"takes {show(cls)}")
                    reg_step = (
                        prog.step(reg.by, reg.line, f"{reg.api}() registers {hname}()")
                        if reg.by >= 0
                        else None
                    )
                    hchain = prog.acq_chain(h, cls)
                    htrace = ([reg_step] if reg_step else []) + hchain
                    msg = (
                        f"{w.api}() waits for {hname}() ({reg.role}, {how}), which takes "
                        f"{show(cls)}, held here since line {line}: deadlock"
                    )
                    if _runs_in(prog, h, f):  # a wait for itself hangs, held or not
                        msg += (f"; the wait is made inside {hname}() itself, which would "
                                "wait for itself" if h == f else
                                f"; {fn.name}() also runs inside {hname}(), which would wait "
                                "for itself")
                    cpu0 = [f"lock({show(cls)})", "", f"{w.api}()  /* waits for {hname} */", ""]
                    cpu1 = ["", f"{hname}()", "", f"lock({show(cls)})  /* spins */"]
                    yield Finding(
                        RULE,
                        "warning",
                        msg,
                        fn.file,
                        c.line,
                        c.col,
                        fn.name,
                        chain_names([take], wchain, htrace),
                        (cls,),
                        ((take, *wchain), tuple(htrace)),
                        f"{w.api}:{hname}:{cls}",
                        tuple(two_cpus(cpu0, cpu1)),
                        trace_titles=(f"CPU0: holds {show(cls)}, then calls {w.api}()",
                                      f"CPU1: {hname}() takes {show(cls)}"),
                        scenario=cpu_rows(cpu0, cpu1),
                    )
                    reported = True
                    break


def _runs_in(prog: Program, h: int, f: int, depth: int = 4) -> bool:
    """f is the callback h or a function h calls (`depth` calls down): the wait can be made
    from inside the very callback it waits for (a work cancelling itself, a handler freeing
    its own interrupt on an error path)."""
    seen = {h}
    level = [h]
    for _ in range(depth + 1):
        if f in seen:
            return True
        level = [t for x in level for t in prog.fwd[x] if t not in seen]
        seen.update(level)
        if not level:
            break
    return f in seen


register(
    Rule(
        RULE,
        "warning",
        True,
        "a synchronous wait (disable_irq, del_timer_sync, cancel_work_sync, ...) while "
        "holding a lock that the waited-for callback takes",
        DOC,
        check,
        program=True,
        lean=True,
    )
)
