"""lock-order-inversion: a cycle in the global lock-order graph (AB-BA, or longer)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from ..findings import Finding, OrderEdge
from ..ir import NOT_LOCKS, Step
from ..program import (
    Program,
    acquires_at,
    common_dirs,
    identified,
    locks_held,
    place,
    program_of,
    show,
)
from . import Rule, register
from ._explain import chain_names, cpu_rows, two_cpus

if TYPE_CHECKING:
    from ..driver import Analysis

RULE = "lock-order-inversion"

DOC = """\
## What it does
Builds the lock-order graph of the whole program: an edge A -> B wherever lock class B is
taken, directly or any number of calls down (across files and typed function pointers),
while A is held. Lock classes are what lockdep would call them: `struct vgic_irq_rank::lock`,
a file-static or global lock. Framework-held locks count too (an irq_chip method runs under
irq_desc::lock). Each cycle (AB-BA, or A -> B -> C -> A) is reported once, with the call chain
that creates each of its edges and the CPU0/CPU1 scenario.

## Why is this bad?
Two CPUs taking the same two locks in opposite orders deadlock as soon as each gets its first
lock. The two orders usually live in different files and show up only when both paths run at
once, which is why lockdep on a test machine rarely sees them; Xen's rank/vgic lock inversion
(seed 002) was found by Coverity, not by testing.

## Example
    /* gic.c */                           /* vgic.c */
    spin_lock(&v->arch.vgic.lock);        vgic_lock_rank(v, rank, flags);
    gic_update_one_lr(v, i);              vgic_migrate_irq(old, new, irq);
      -> vgic_get_target_vcpu()             -> spin_lock(&old->arch.vgic.lock);
        -> vgic_lock_rank(...)

## Use instead
Pick one order and document it; move the inner call out of the outer critical section, or
pass the already-computed value in instead of re-reading it under the other lock.

## Known false positives
Confidence: medium. Lock classes are per struct field, so two instances of one class nested
on purpose (parent and child) look like A -> A and are ignored, but two classes ordered by an
invariant the code keeps elsewhere (the locks are never both contended) still show up.
Acquisitions annotated for lockdep (`*_nested`) and trylocks create no edge. Paths are
per-function: a callee's lock is assumed reachable whenever the callee is called, unless it
is taken only under a test of a flag parameter (`if (flag)`, `if (!flag) return`) that the
call's constant argument rules out, directly or through helpers passing the flag on, or
only on a last reference's release (`if (refcount_dec_and_test(&x->ref))`, kb
`last_put_tests`), which a caller holding a lock of the object with a reference of its own
never runs. A cycle is not reported when every witness of every edge holds one outer lock,
itself or on every way into its function.
Measured on the whole Linux 6.12 tree: 99 findings, of 20 sampled 7 real, 1 plausible, 12
false: two instances of one class, several with per-instance lockdep_set_class() keys (4),
a lock released before the call or inside the callee (3), correlated conditions or constant
arguments (3), an indirect call resolved to a target that is never installed there (1), a
freshly allocated object not yet shared (1).
Stop 11 (73 findings, seed 13): 4 real, 3 plausible, 13 false: constant or enum arguments
(4), object-state invariants (4), tools/perf userspace (2), a lock released inside the
callee (1), socket families' per-family lock classes (1), a loop-correlated condition (1).
Since then tools/ is left out, flag paths read named constants, switch cases, `&&` terms
and bit tests, and one lock named two ways is one node: five of those 13 are gone (both
tools/, venus, sgx, mptbase), and drbd's with the canonical classes;
68 findings at the end of stop 12.
Left: state and reference-count invariants (landlock's iput() on an inode it holds twice),
per-family socket classes, a switch that sets a field the callee tests later.
Stop 13: 68 findings (seed 30): 7 real, 3 plausible, 10 false: constant or flag arguments
and fields (4), event values never produced (2), a lock a callee of another file lets go
of (1, fixed), a reference-counted release that cannot run (1), a lock the callee takes
again while it is held (1, fixed: that is a self-deadlock, not an order), an outer lock
both chains hold (1, fixed). 65 findings after the fixes (seed 31): 7 real, 13 false:
reference-counted releases (3, fixed since: a release only the last put runs orders no
lock through the call; nbd, rnbd, landlock and two more cycles went, 64 -> 59), constant
or NULL arguments (3), lock-if-NULL or
lock-if-flag state (3), outer locks the callers of both chains hold (2, fixed: a lock
every way into a witness holds is a gate), a generic container's lock class (`struct
__queue::lock` for two queues), an indirect call installed only for another mode. Two of
the real ones were shown through a chain that cannot run (a NULL argument) while another
chain makes the same order.
Stop 14 (seed 33, 59 findings, a third reader): 5 real, 1 plausible, 14 false: argument,
flag or lazy-init conditions (4), a lock let go before the second is taken (3: ceph's
`lock_snap_rwsem` flag lost when paths merged (fixed), cfi's get_chip(), which really keeps
`shared->lock` on a `goto retry` and re-takes it: a self-deadlock more than an order, and an
ocfs2 switch whose value is always one of its cases), different instances of one class
(3: tty ports of two drivers, an SVA domain, a completed task), an event value never
produced and a mode fnic never uses (2), an outer lock every caller holds (1, tracing's
event_mutex, three callers up), mutually exclusive `#ifdef` halves joined through a .c file
that includes another (1, ubi fastmap). 58 findings after the fixes; no real or plausible
finding of the four samples (seeds 30-33) is gone, 8 false ones are.
Confidence: low; most of what is left needs values of fields and reference counts carried
across calls, and lock instances told apart by the object that contains them.

## References
Documentation/locking/lockdep-design.rst; DLOS (Cai et al.) for cross-function cycles.
"""


class Edge(NamedTuple):
    depth: int
    fid: int
    held_line: int  # where A was taken in fid
    line: int  # the call or acquisition that takes B
    callee: int  # -1: B is taken in fid itself
    api: str
    a_raw: str = ""  # A and B as named where the edge was seen (the graph's nodes are
    b_raw: str = ""  # canonical; the callee's summary knows B by this name)


ALTERNATES = 4  # equally short witnesses kept per edge, to tell one cycle's story in one place


class Gates:
    """Per edge, what serialises its witnesses: the locks each holds besides the outer one
    (all of them), and the functions they are in, whose callers may hold one more (a lock
    every way into a function holds); the latter is asked for a cycle's edges only."""

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.held: dict[tuple[str, str], frozenset[str]] = {}
        self.fids: dict[tuple[str, str], set[int]] = {}

    def add(self, edge: tuple[str, str], fid: int, held: frozenset[str]) -> None:
        g = self.held.get(edge)
        self.held[edge] = held - set(edge) if g is None else g & held
        self.fids.setdefault(edge, set()).add(fid)

    def of(self, edge: tuple[str, str]) -> frozenset[str]:
        """Locks held around every witness of the edge: by the witness itself, or on every
        way into all of the witnesses' functions (tracing's event_mutex, taken by the
        callers of both orders)."""
        entry: frozenset[str] | None = None
        for f in sorted(self.fids.get(edge, ())):
            e = self.prog.entry_locks(f)
            entry = e if entry is None else entry & e
            if not entry:
                break
        return self.held.get(edge, frozenset()) | (entry or frozenset())


def _edges(prog: Program
           ) -> tuple[dict[tuple[str, str], Edge], dict[tuple[str, str], list[Edge]], Gates]:
    """The lock-order graph: its edges with their shortest witness (and equally short
    others), and what serialises each edge's witnesses (its gates)."""
    edges: dict[tuple[str, str], Edge] = {}
    alts: dict[tuple[str, str], list[Edge]] = {}
    gates = Gates(prog)

    def add(a: str, b: str, e: Edge, held: frozenset[str] = frozenset()) -> None:
        # one lock, one node: `iscsi_conn::session->back_lock` is `iscsi_session::back_lock`
        a, b = prog.canon(a), prog.canon(b)
        if a == b:
            return
        gates.add((a, b), e.fid, held)
        old = edges.get((a, b))
        if old is None or e.depth < old.depth:
            edges[(a, b)] = e
            alts.pop((a, b), None)
        elif e.depth == old.depth and e.fid != old.fid:
            more = alts.setdefault((a, b), [])
            if len(more) < ALTERNATES:
                more.append(e)

    for f, sites in enumerate(prog.held_sites):
        fn = prog.funcs[f]
        ops = acquires_at(fn) if sites and fn.lock_ops else {}
        for site in sites:
            held = locks_held(site.held)
            if not held or prog.never(f, site.call.guard):
                continue
            c = site.call
            targets: list[tuple[str, int, int, str, frozenset[str]]] = []
            op = ops.get((c.line, c.col))
            if op is not None:
                if (
                    op.kind not in NOT_LOCKS
                    and identified(op.cls)
                    and "nested" not in op.api
                    and op.kind != "rwlock_r"
                ):
                    targets.append((op.cls, 0, -1, op.api, frozenset()))
            elif site.propagates:
                for t in site.callees:
                    for cls, a in prog.acq[t].items():
                        if not a.trylock and "nested" not in a.api and a.kind != "rwlock_r" \
                                and prog.possible(f, a.needs, c):
                            targets.append((cls, a.depth + 1, t, a.api, a.dropped))
            mine = {prog.canon(h) for h, _, _ in held}
            for b, depth, callee, api, dropped in targets:
                if prog.canon(b) in mine and prog.canon(b) not in dropped:
                    # `b` is held already: taking it again is a self-deadlock (or another
                    # instance nested in it), not an order after the locks taken since
                    continue
                kept = frozenset(mine - dropped)
                for outer, _, line in held:
                    if prog.canon(outer) not in dropped:  # let go of before `b` is taken
                        add(outer, b, Edge(depth, f, line, c.line, callee, api, outer, b),
                            kept)
        fw = prog.framework.get(f)
        if fw is not None:  # the framework holds its lock around the callback
            for cls, a in prog.acq[f].items():
                if not a.trylock:
                    add(fw[0], cls, Edge(a.depth, f, 0, a.line, a.callee, a.api, fw[0], cls))
    return edges, alts, gates


def _nearest(prog: Program, e: Edge, more: list[Edge], near: str) -> Edge:
    """Of equally short witnesses of an edge, the one whose file is closest to `near` (the
    first edge's): a cycle between two files of one driver reads better than one that wanders
    to a copy of the same code elsewhere."""
    if not more:
        return e
    def shared(x: Edge) -> int:  # directories in common, less the ones it wanders into
        mine = prog.funcs[x.fid].file
        return 2 * common_dirs(mine, near) - len(place(mine).parts)

    best = e
    for x in more:
        if shared(x) > shared(best):
            best = x
    return best


def _trace(prog: Program, a: str, b: str, e: Edge) -> list[Step]:
    a, b = e.a_raw or a, e.b_raw or b
    fw = prog.framework.get(e.fid)
    if e.held_line:
        out = [prog.step(e.fid, e.held_line, f"takes {show(a)}")]
    else:
        assert fw is not None
        out = [prog.step(e.fid, prog.funcs[e.fid].line, f"runs with {show(a)} held: {fw[2]}")]
    if e.callee < 0:
        out.append(prog.step(e.fid, e.line, f"{e.api}({show(b)}) while holding {show(a)}"))
    else:
        out.append(
            prog.step(e.fid, e.line, f"calls {prog.funcs[e.callee].name}() while holding {show(a)}")
        )
        out.extend(prog.acq_chain(e.callee, b))
    return out


def _cycles(edges: dict[tuple[str, str], Edge]) -> list[tuple[str, ...]]:
    succ: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        succ.setdefault(a, []).append(b)
    out: list[tuple[str, ...]] = []
    two = set()
    for a, b in sorted(edges):
        if a < b and (b, a) in edges:
            out.append((a, b))
            two.add(frozenset((a, b)))
    for a, bs in sorted(succ.items()):
        for b in bs:
            if b <= a or frozenset((a, b)) in two:
                continue
            for c in succ.get(b, []):
                if c <= a or c == b or (c, a) not in edges:
                    continue
                if frozenset((b, c)) in two or frozenset((a, c)) in two:
                    continue
                out.append((a, b, c))
    return out


NEARBY = 6  # edges drawn next to a cycle: enough for context, few enough to read


def _graph(
    prog: Program,
    edges: dict[tuple[str, str], Edge],
    touching: dict[str, list[tuple[str, str]]],
    pairs: list[tuple[str, str]],
    chosen: dict[tuple[str, str], Edge],
    name: dict[str, str],
) -> tuple[OrderEdge, ...]:
    """The cycle's edges, then the shallowest other edges into or out of its locks."""
    on = set(pairs)
    near = sorted(
        {p for a, _ in pairs for p in touching[a] if p not in on},
        key=lambda p: (edges[p].depth, p),
    )[:NEARBY]
    return tuple(
        OrderEdge(show(name.get(a, a)), show(name.get(b, b)),
                  prog.funcs[chosen.get((a, b), edges[(a, b)]).fid].name,
                  (a, b) in on)
        for a, b in [*pairs, *near]
    )


def check(analysis: Analysis) -> Iterator[Finding]:
    prog = program_of(analysis)
    edges, alts, gates = _edges(prog)
    touching: dict[str, list[tuple[str, str]]] = {}
    name: dict[str, str] = {}  # canonical node -> the name the code first gives it
    for (a, b), e in sorted(edges.items()):
        touching.setdefault(a, []).append((a, b))
        touching.setdefault(b, []).append((a, b))
        name.setdefault(a, e.a_raw or a)
        name.setdefault(b, e.b_raw or b)
    keyed = prog.keyed | {prog.canon(k) for k in prog.keyed}
    for canon_cyc in _cycles(edges):
        if not keyed.isdisjoint(canon_cyc):
            continue  # instances with lockdep keys of their own: not one lock
        pairs = [(canon_cyc[i], canon_cyc[(i + 1) % len(canon_cyc)])
                 for i in range(len(canon_cyc))]
        if frozenset.intersection(*(gates.of(p) for p in pairs)):
            continue  # every witness of every edge holds one outer lock: it serialises them
        near = prog.funcs[edges[pairs[0]].fid].file
        chosen = {p: _nearest(prog, edges[p], alts.get(p, []), near) for p in pairs}
        # each lock as the cycle's own witnesses name it, not as some other edge did
        nm = {**name, **{a: chosen[(a, b)].a_raw or name[a] for a, b in pairs}}
        cyc = tuple(nm[x] for x in canon_cyc)
        traces = [_trace(prog, a, b, chosen[(a, b)]) for a, b in pairs]
        first = traces[0][-1]  # reported where the first edge's inner lock is taken
        fids = [chosen[p].fid for p in pairs]
        others = ", ".join(
            f"{show(nm[b])} while holding {show(nm[a])} in "
            f"{prog.funcs[chosen[(a, b)].fid].name}()"
            for a, b in pairs[1:]
        )
        msg = (
            f"lock order inversion: {show(nm[pairs[0][1]])} taken while holding "
            f"{show(nm[pairs[0][0]])} (via {prog.funcs[fids[0]].name}()), but {others}"
        )
        rows: tuple[tuple[str, str], ...] = ()
        if len(cyc) == 2:
            a, b = cyc
            cpu0 = [f"lock({show(a)})", "", "", f"lock({show(b)})"]
            cpu1 = ["", f"lock({show(b)})", f"lock({show(a)})", ""]
            scen = two_cpus(cpu0, cpu1)
            rows = cpu_rows(cpu0, cpu1)
        else:
            scen = (
                [
                    f"CPU0..CPU{len(cyc) - 1} each hold one lock of the cycle and wait for "
                    "the next:"
                ]
                + [
                    f"  CPU{i}: holds {show(a)}, waits for {show(b)}"
                    for i, (a, b) in enumerate(zip(cyc, cyc[1:] + cyc[:1], strict=True))
                ]
                + ["*** DEADLOCK ***"]
            )
        yield Finding(
            RULE,
            "warning",
            msg,
            first.file,
            first.line,
            1,
            first.function,
            chain_names(*traces),
            cyc,
            tuple(tuple(t) for t in traces),
            "->".join(cyc),
            tuple(scen),
            tuple(f"CPU{i}: holds {show(a)}, then takes {show(b)}"
                  for i, (a, b) in enumerate(zip(cyc, cyc[1:] + cyc[:1], strict=True))),
            scenario=rows,
            graph=_graph(prog, edges, touching, pairs, chosen, nm),
        )


register(
    Rule(
        RULE,
        "warning",
        True,
        "a cycle in the lock-order graph (AB-BA or longer) across call chains",
        DOC,
        check,
        program=True,
        lean=True,
    )
)
