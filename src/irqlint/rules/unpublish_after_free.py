"""unpublish-after-free: a key released to its owner before its lookup mapping is removed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import keyflow
from ..findings import Finding
from ..ir import KeyEvent
from ..program import Program, program_of
from . import Rule, register
from ._explain import chain_names, cpu_rows, two_cpus

if TYPE_CHECKING:
    from ..driver import Analysis

RULE = "unpublish-after-free"

DOC = """\
## What it does
Finds an identifier or object released to its owner -- an allocator (kfree(),
kmem_cache_free()), an ID allocator (ida_free(), irq_free_desc()), the hypervisor (Xen's
EVTCHNOP_close) -- and, later on the same path, removed from a lookup structure that maps it
with the same key: idr_remove(), xa_erase(), radix_tree_delete(), list_del*(), hlist_del*(),
rb_erase(), a table slot reset to -1/NULL/0, or a setter that stores a sentinel. Both sides
are followed through calls: a function that releases (or unpublishes, or stores under) a key
given by a parameter, or by a field of one, is summarised, so xen_evtchn_close(port) is a
release of port and xen_irq_info_cleanup(info) an unpublish of info->evtchn. A key copied into
a local, or into a field of a local struct, is the same key.

## Why is this bad?
Between the release and the unpublish the owner may give the same key to another CPU, which
publishes its own mapping for it; the late cleanup then wipes that new mapping (or unlinks
memory that is already someone else's). The seed case: shutdown_pirq() closed the event
channel and only then cleared evtchn_to_irq[evtchn]; a concurrent startup_pirq() got the same
channel back from Xen, mapped it, and lost the mapping.

## Example
    xen_evtchn_close(evtchn);        /* the hypervisor may hand evtchn out again ...  */
    xen_irq_info_cleanup(info);      /* ... and this clears the new owner's mapping    */

## Use instead
Unpublish first, then release -- the reverse of the set-up order (allocate, then publish):

    evtchn_port_t evtchn = info->evtchn;
    xen_irq_info_cleanup(info);
    xen_evtchn_close(evtchn);

## Known false positives
Confidence: low; off by default (`--enable unpublish-after-free`). On the whole Linux 6.12
tree it reports 11 findings and all 11 were false when read against the code; Xen's
hypervisor tree gives 1, also false. The causes, and what would remove them:
- 5 of 11: the callee releases only on its error return, and the caller's `if (err) goto`
  (or the same condition tested again) skips the later unpublish. Needs summaries per return
  outcome (effects when it returns 0 vs an error) and correlated conditions.
- 3 of 11: kunit tests, ended by kunit_skip() (now known as noreturn).
- 1: the pointer is set to NULL after the free and the second call is guarded by it.
- 1: two objects that share a variable name across two loops.
- 1 (tegra241_cmdqv_deinit_vintf: ida_free() before clearing cmdqv->vintfs[idx]): the bug's
  shape, but no concurrent allocator exists for that id space.
Eight of the eleven pair a kfree() with a later list_del()/irq_domain_remove() of the same
pointer: were the path feasible, that would be a use-after-free, not a lost mapping; pairing
only re-allocatable IDs (ida/idr/xarray indices, event channels, IRQ numbers) would keep
the seed's shape and drop those. With seed 000's fix reverted in drivers/xen/events, both of
the thread's sites (shutdown_pirq, __unbind_from_irq) are reported.
The order is judged per function on its control-flow graph, later statements only: a release
and an unpublish on exclusive branches, or around a loop's back edge, are silent; two
branches guarded by the same condition tested twice are still one path. A key reassigned
between the two calls (also through f(&key)) ends the path. It is a timing question only when
the owner hands the key out without the caller's lock (an ID allocator, the hypervisor): a
table slot cleared under the same lock its lookups take after kfree() of a key is reported
all the same.
Not reported (false negatives): calls to functions of the tree whose name does not look like
a wrapper of a release or unpublish (`wrapper_pattern` in kb/unpublish.json: free, release,
close, remove, del, clear, set_ ...) are not recorded; an object released while a table slot
still holds it (the slot's value, not its index, is the object); keys returned by a function
(evtchn_from_irq(irq)) rather than read from a field. A release summary needs the release on
every path but early exits on a validity test, so a put that frees on its last reference
(refcount_dec_and_test()) is no release; kfree_rcu() and reference drops (put_device(),
kref_put()) are not releases.

## References
Linux commit "xen/events: close evtchn after mapping cleanup" (v6.8-rc5).
"""


def _bits(mask: int) -> Iterator[int]:
    j = 0
    while mask:
        if mask & 1:
            yield j
        mask >>= 1
        j += 1


def _shown(ev: KeyEvent) -> str:
    if ev.kind == "slot":
        table, index, value = ev.args
        return f"{table}[{index}] = {value}"
    return f"{ev.callee}({', '.join(ev.args)})"


def _key_ok(key: str) -> bool:
    return bool(key) and (key[0].isalpha() or key[0] in "_&*")


def check(analysis: Analysis) -> Iterator[Finding]:
    prog = program_of(analysis)
    kfw = keyflow.build(prog, analysis.facts or [])
    for f in sorted(kfw.keyfacts):
        kf = kfw.keyfacts[f]
        acts: dict[int, list[keyflow.Action]] = {}

        def of(i: int, f: int = f, acts: dict[int, list[keyflow.Action]] = acts
               ) -> list[keyflow.Action]:
            if i not in acts:
                acts[i] = kfw.actions(f, i)
            return acts[i]

        for i, ev in enumerate(kf.events):
            if not ev.after:
                continue
            reported: set[str] = set()
            for r in of(i):
                if r.kind != "release" or not _key_ok(r.key) or r.key in reported:
                    continue
                for j in _bits(ev.after):
                    u = next((a for a in of(j) if a.kind == "unpublish" and a.key == r.key),
                             None)
                    if u is not None:
                        reported.add(r.key)
                        yield _finding(prog, f, ev, kf.events[j], r, u)
                        break


def _finding(prog: Program, f: int, rel: KeyEvent, unp: KeyEvent,
             r: keyflow.Action, u: keyflow.Action) -> Finding:
    fn = prog.funcs[f]
    key = r.key
    raw = keyflow._clean(r.raw)
    named = key if raw == key else f"{raw} ({key})"
    by = f"{rel.callee}()" if len(r.chain) == 1 else f"{rel.callee}() ({r.what})"
    if unp.kind == "slot":
        clear = f"{u.what} at line {unp.line} removes its mapping"
    else:
        clear = f"{unp.callee}() at line {unp.line} removes its mapping" + (
            f" ({u.what})" if len(u.chain) > 1 else "")
    msg = (f"{named} is released by {by} before {clear}: another CPU can get it again and "
           "publish it in between, and then lose that mapping")
    cpu0 = [_shown(rel), f"  releases {key}", "", "", _shown(unp),
            f"  removes the mapping of {key}"]
    cpu1 = ["", "", f"gets {key} again from its owner", "publishes a new mapping for it", "", ""]
    outcome = f"*** CPU1's mapping of {key} is lost ***"
    expl = tuple(two_cpus(cpu0, cpu1, outcome=outcome))
    traces = (r.chain, u.chain)
    return Finding(RULE, "warning", msg, fn.file, rel.line, rel.col, fn.name,
                   chain_names(list(r.chain), list(u.chain)), (), traces,
                   f"{key}:{r.what}:{u.what}", expl, scenario=cpu_rows(cpu0, cpu1))


register(Rule(RULE, "warning", False,
              "an ID or object released (to an allocator, hypervisor, free list) before its "
              "lookup mapping is cleared, so a concurrent allocation can reuse it and then lose "
              "its mapping", DOC, check, program=True, facts=frozenset({"keys"})))
