"""devres-on-detach: a managed (devres) resource registered on a driver's teardown path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Finding
from ..ir import Step
from ..program import Program, program_of
from . import Rule, register
from ._explain import chain_names

if TYPE_CHECKING:
    from ..driver import Analysis

RULE = "devres-on-detach"

DOC = """\
## What it does
Finds a managed resource -- devres_add(), devm_add_action(), a devm_*/pcim_* allocation or
mapping -- registered, any number of calls down, from a teardown entry: a devres release
callback (the function given to devm_add_action(), devm_add_action_or_reset(), devres_alloc())
or a driver's .remove/.shutdown callback. devm_/pcim_ helpers defined in the tree are
followed into, so the finding names the registration itself and the whole chain to it.

## Why is this bad?
Devres entries are released when the driver detaches, by walking the device's devres list.
A release callback that adds a new entry to that list while it is being torn down leaks it
or corrupts the walk; a .shutdown callback's managed resource is never released at all.
The seed case: pci_free_irq_vectors() from a devres release action reached pci_intx(), which
had quietly become managed (pcim_intx() -> devres_add()) once the device was pcim-enabled.

## Example
    static void pcim_msi_release(void *pdev)      /* devm_add_action() callback */
    {
        pci_free_irq_vectors(pdev);               /* ... -> pci_intx() -> pcim_intx()
                                                      -> devres_add() */
    }

## Use instead
Call the unmanaged primitive on teardown paths (__pci_intx(), kfree(), iounmap()), or make
the managed wrapper refuse to register while the device is being detached.

## Known false positives
Confidence: low; off by default (`--enable devres-on-detach`). On Linux 6.12 (whose pci_intx()
no longer registers a devres, so the seed is silent there, correctly) the chains from .remove
and release callbacks to a registration ran 8-15 calls deep through branches the teardown
never takes (re-initialising on an error path, SR-IOV re-enable); following only the
teardown's own paths needs path conditions across calls, which the summaries do not carry.
A registration on a path the teardown entry never takes at run time
(guarded by a state the device cannot be in then) is still reported: the chain is per
function, not per path. .remove callbacks: managed resources created there are released right
after .remove returns; they are reported because they are almost always a mistake.

## References
Documentation/driver-api/driver-model/devres.rst.
"""


def _entries(prog: Program) -> list[tuple[int, Step]]:
    lc = prog.kb.section("lifecycle")
    struct_re = re.compile(lc["teardown_fields"]["struct_pattern"])
    fields = set(lc["teardown_fields"]["fields"])
    out: dict[int, Step] = {}
    for fid, regs in sorted(prog.registered.items()):
        for r in regs:
            if r.role == "devres_release":
                out.setdefault(fid, Step(r.file, r.line,
                                         prog.funcs[r.by].name if r.by >= 0 else "",
                                         f"{r.api}() registers {prog.funcs[fid].name}() as a "
                                         "devres release callback"))
    for fid, where in sorted(prog.stored.items()):
        for fld, path, line in where:
            st, _, name = fld.rpartition("::")
            if name in fields and st and struct_re.search(st):
                out.setdefault(fid, Step(path, line, "", f"{fld} = {prog.funcs[fid].name}: a "
                                                         "driver teardown callback"))
    return sorted(out.items())


def check(analysis: Analysis) -> Iterator[Finding]:
    prog = program_of(analysis)
    lc = prog.kb.section("lifecycle")
    managed = frozenset(lc["managed"])
    pat, not_pat = re.compile(lc["managed_pattern"]), re.compile(lc["managed_not"])
    entries = _entries(prog)
    why_of = dict(entries)
    # one breadth-first search from every teardown entry at once: each function is reached
    # from its nearest entry, by the shortest chain
    parent: dict[int, tuple[int, int] | None] = {e: None for e, _ in entries}
    root: dict[int, int] = {e: e for e, _ in entries}
    queue = [e for e, _ in entries]
    i = 0
    while i < len(queue):
        f = queue[i]
        i += 1
        for site in prog.sites[f]:
            c = site.call
            name = c.callee
            if name in managed or (not site.callees and bool(pat.search(name))
                                   and not not_pat.search(name)):
                yield _finding(prog, f, c.line, c.col, name, parent, why_of[root[f]], root[f])
                continue
            if not site.propagates:
                continue
            for t in site.callees:
                if t not in parent:
                    parent[t] = (f, c.line)
                    root[t] = root[f]
                    queue.append(t)


def _finding(prog: Program, f: int, line: int, col: int, name: str,
             parent: dict[int, tuple[int, int] | None], why: Step, entry: int) -> Finding:
    nodes = [(f, line)]
    while (p := parent[nodes[-1][0]]) is not None:
        nodes.append(p)
    nodes.reverse()
    chain = [prog.step(g, ln, f"calls {prog.funcs[nodes[k + 1][0]].name}()")
             for k, (g, ln) in enumerate(nodes[:-1])]
    chain.append(prog.step(f, line, f"{name}() registers a managed resource"))
    fn = prog.funcs[f]
    entry_name = prog.funcs[entry].name
    depth = len(chain) - 1
    kind = "a devres release callback" if "devres" in why.note else "a driver teardown callback"
    msg = (f"{name}() registers a managed resource on a teardown path: reached from "
           f"{entry_name}(), {kind}" + (f", through {depth} call(s)" if depth else ""))
    trace = (why, *chain)
    return Finding(RULE, "warning", msg, fn.file, line, col, fn.name, chain_names(list(trace)),
                   (), (trace,), name)  # not the entry: only the nearest of several


register(Rule(RULE, "warning", False,  # off by default: see Known false positives
              "a managed (devm_/pcim_) resource registered on a teardown path: from a devres "
              "release action or a .remove/.shutdown callback", DOC, check, program=True))
