"""The program phase: every file's facts joined into one model.

Built once per run from the per-file facts (in path order, so the same input always gives the
same model), then read by the whole-program checkers:

1. symbol table: static functions per file, global functions by name (several definitions of
   one name, arch or config variants, resolve to those nearest the caller's path);
2. call graph: direct calls; calls through function pointers, resolved through the struct
   type of the expression (`desc->chip->irq_shutdown` -> every function stored in
   `irq_chip::irq_shutdown` by a designated initializer or an assignment), and the field name
   alone as a weaker fallback when it names few functions; callbacks handed to registration
   calls (request_irq, INIT_WORK, timer_setup ...);
3. summaries, bottom-up over the strongly connected components of the call graph (a fixpoint
   inside each component): the lock classes a function may take (with a witness chain), whether
   it may sleep (GFP-aware, a gfp_t parameter followed to the caller's argument) and the
   synchronous waits it performs.  Each summary is a frozen value applied at call sites:
   nothing a caller holds leaks into it;
4. contexts: the callbacks that run in hardirq / softirq context or with IRQs off and a
   framework lock held (knowledge base `contexts`), and the functions they reach.

Checkers never re-walk syntax: they read sites (calls with what is held there) and summaries.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import os
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .ir import (
    FIELD_BASE,
    LAST_PUT,
    NOT_LOCKS,
    OR_MORE,
    WARNED,
    Call,
    FileFacts,
    Function,
    LockOp,
    Step,
    field_owner,
    need_key,
    rehome,
    zeroed,
)
from .kb import KnowledgeBase

FIELD_FALLBACK_MAX = 4  # a bare field name resolves only if it names at most this many functions
MAX_ACQ = 48  # lock classes kept per function summary (nearest first)
MAX_WAITS = 4
# how far a summary travels up the call graph: a lock, a sleep or a wait more than this many
# calls below a site is not charged to it.  Deeper chains were mostly paths no caller takes
# (Linux 6.12: the sleep-in-atomic chains of 20+ calls were all noise)
MAX_DEPTH = 4
TYPED_SLEEP_MAX = 2  # a sleep is charged through an ops field of at most this many functions
TYPED_MAX = 4  # other summaries through an ops field of at most this many functions
# CPU states and read-side sections: no lock object another CPU could be waiting on
_IDENT = re.compile(r"[A-Za-z_]\w*$")
_HOP = re.compile(r"(->|\.)([A-Za-z_]\w*)")


def identified(cls: str) -> bool:
    """A lock class the program phase can compare across functions: `struct::path`, a
    file-static `file:name`, or a global name; not a bare expression or a pseudo lock."""
    return not cls.endswith("*") and (":" in cls or cls.isidentifier())


def locks_held(held: tuple[tuple[str, str, int], ...]) -> list[tuple[str, str, int]]:
    """The real locks in a held set (no CPU states, no unidentified expressions)."""
    return [h for h in held if h[1] not in NOT_LOCKS and h[1][:1] != "-" and identified(h[0])]


def show(cls: str) -> str:
    """A lock class for people: `drivers/x/y.c:foo_lock` -> `foo_lock (y.c)`."""
    if "::" not in cls and ":" in cls:
        path, name = cls.rsplit(":", 1)
        return f"{name} ({path.rsplit('/', 1)[-1]})"
    return cls


# (parameter index, truth value) pairs: a summary's event happens only when the function's
# flag parameters test so (`if (wait) msleep(1)`); a call with a constant argument that says
# otherwise does not reach it
Needs = tuple[tuple[int, bool | str], ...]


def _fits(v: bool | str, w: bool | str) -> bool:
    """A constant argument `v` against what a callee's event needs of it, `w`: False only when
    they contradict (false for `if (flag)`, MODE_B for `if (mode == MODE_A)`, CMD_ASYNC for
    the else of `if (flags & CMD_ASYNC)`).  A named constant's truth value, a number's name,
    and the bits of a name other than the one tested (GFP_KERNEL holds __GFP_IO) are not
    known."""
    if isinstance(w, bool):
        return not isinstance(v, bool) or v == w
    kind, name = w[0], w[1:]
    if kind in "&~":  # a bit test: only 0, or the very name OR'ed in, says what it gives
        if isinstance(v, bool):
            return v or kind == "~"
        return kind == "&" or name not in v.split("|")
    if isinstance(v, bool) or "|" in v:
        return True
    return (v == name) == (kind == "=")


def _agree(values: list[bool | str]) -> bool:
    """Tests of one parameter that can all hold at once."""
    truth = {w for w in values if isinstance(w, bool)}
    named = [w for w in values if isinstance(w, str)]
    eq = {w[1:] for w in named if w[0] == "="}
    ne = {w[1:] for w in named if w[0] == "!"}
    bits = {w[1:] for w in named if w[0] == "&"}
    clear = {w[1:] for w in named if w[0] == "~"}
    return len(truth) <= 1 and len(eq) <= 1 and not eq & ne and not bits & clear


def reaches(needs: Needs, call: Call) -> bool:
    """Whether a callee's event that needs `needs` can happen through `call`: no constant
    argument of the call says otherwise."""
    if not needs or not call.consts:
        return True
    consts = dict(call.consts)
    passes = dict(call.passes) if call.passes else None
    for j, w in needs:
        v = _const(consts, passes, j)
        if v is not None and not _fits(v, w):
            return False
    return True


def _const(consts: dict[int, bool | str], passes: dict[int, int] | None, j: int
           ) -> bool | str | None:
    """The constant a call gives parameter (or parameter field) j, if any: a field the
    caller's initializer list or memset() left zero (one it set to none of its parameters)
    is false."""
    v = consts.get(j)
    if v is None and j >= FIELD_BASE and (passes is None or j not in passes):
        return False if zeroed(field_owner(j)) in consts else None
    return v


def plain(guard: Needs) -> Needs:
    """A guard without its last-put mark: what sleeping and waiting care about (a release
    that sleeps under its caller's spinlock is a bug whoever drops the last reference)."""
    return tuple(x for x in guard if x[0] != LAST_PUT) if guard and guard[0][0] == LAST_PUT \
        else guard


def last_put(guard: Needs) -> bool:
    """The call is made only by whoever drops an object's last reference."""
    return bool(guard) and guard[0][0] == LAST_PUT


def bind(needs: Needs, call: Call) -> Needs | None:
    """A callee's event that needs `needs`, seen from the caller: None when a constant
    argument of the call says otherwise (or the call is never made); else what the caller's
    own flags must say for it to happen: the call's guard, and the callee's needs on the
    arguments that are the caller's parameters passed on."""
    g = plain(call.guard)
    if not needs:
        return None if g and dead(g) else g
    out = set(g)
    consts = dict(call.consts) if call.consts else None
    passes = dict(call.passes) if call.passes else None
    for j, w in needs:
        v = _const(consts, passes, j) if consts else None
        if v is not None:
            if not _fits(v, w):
                return None
        elif passes:
            p = passes.get(j)
            if p is not None:
                if p < OR_MORE:
                    out.add((p, w))
                elif isinstance(w, str) and w[0] == "~":
                    # the field is the parameter with more bits set: the bit is clear only
                    # if it is clear in the parameter; what else the field tests is not known
                    out.add((p - OR_MORE, w))
            elif j >= FIELD_BASE and (p := passes.get(field_owner(j))) is not None:
                out.add((rehome(j, p), w))  # the caller's pointer parameter, passed on
    got = tuple(sorted(out, key=need_key))
    return None if dead(got) else got


def dead(guard: Needs) -> bool:
    """A call under contradicting tests of one flag (`if (!wait) return; ... else` of
    `if (wait)`) is never made; one on a WARN_ON() branch is not followed (what a kernel
    that has already found a bug does next is a second bug's path)."""
    if not guard:
        return False
    if guard[0][0] < 0:  # pseudo parameters sort first
        if any(k == WARNED for k, _ in guard):
            return True
        guard = plain(guard)
    if len({k for k, _ in guard}) == len(guard):
        return False
    by: dict[int, list[bool | str]] = {}
    for k, w in guard:
        by.setdefault(k, []).append(w)
    return not all(_agree(ws) for ws in by.values())


class Site(NamedTuple):
    """A call site with what is held there, and where it may go."""

    call: Call
    held: tuple[tuple[str, str, int], ...]  # (class, kind, line taken)
    callees: tuple[int, ...]
    # "direct", "typed" (through a typed function pointer), "wide" (an ops field with many
    # implementations), "field" (by field name alone), "" (unresolved)
    how: str

    @property
    def propagates(self) -> bool:
        """Summaries travel through direct calls and typed pointers only."""
        return self.how in _PROPAGATING


class Acq(NamedTuple):
    """How a function comes to take a lock class: directly at `line`, or through `callee`."""

    kind: str
    line: int
    callee: int  # -1: taken here
    depth: int
    trylock: bool
    api: str
    # caller locks this function (or one below it) has released when the lock is taken:
    # a caller holding one of them does not hold it then (vgic_queue_irq_unlock)
    dropped: frozenset[str] = frozenset()
    needs: Needs = ()  # only when these flag parameters test so (see Call.guard)


class Sleep(NamedTuple):
    line: int
    callee: int  # -1: the sleeping call is here
    what: str  # the sleeping call, e.g. "devres_alloc(GFP_KERNEL)" or "mutex_lock"
    depth: int
    # caller locks let go of before the sleep (maple tree's mas_nomem unlocks the tree
    # around its blocking allocation): a caller holding only those does not sleep holding them
    dropped: frozenset[str] = frozenset()
    needs: Needs = ()  # only when these flag parameters test so (see Call.guard)


class Reg(NamedTuple):
    """A callback handed to a framework."""

    role: str
    by: int  # the registering function (-1: a file-scope declaration)
    file: str
    line: int
    api: str
    args: tuple[str, ...]
    obj: str = ""  # typed class of what it registers for (ir.Registration.obj)


class Wait(NamedTuple):
    api: str
    what: str  # irq, timer, work ...
    arg: str  # what is waited for, as written where the wait is
    line: int
    callee: int
    depth: int
    dropped: frozenset[str] = frozenset()  # caller locks let go before the wait (b43)
    needs: Needs = ()  # only when these flag parameters test so (see Call.guard)
    obj: str = ""  # typed class of what is waited for, when typed (ir.Function.objs)


@dataclass(slots=True)
class Program:
    kb: KnowledgeBase
    funcs: list[Function] = field(default_factory=list)
    # every call site of a function, built when first asked for (only the checkers that are
    # off by default walk sites with nothing held and nothing known behind them)
    sites: Any = field(default_factory=list)
    # the sites a summary reads (resolved, a known API, or a lock operation), and the sites
    # with something held: what the summaries and the site checkers walk
    active: list[tuple[Site, ...]] = field(default_factory=list)
    held_sites: list[tuple[Site, ...]] = field(default_factory=list)
    acq: list[dict[str, Acq]] = field(default_factory=list)
    sleep: list[Sleep | None] = field(default_factory=list)
    sleep_param: list[dict[int, Sleep]] = field(default_factory=list)  # sleeps if arg i does
    waits: list[tuple[Wait, ...]] = field(default_factory=list)
    callers: list[list[tuple[int, int]]] = field(default_factory=list)  # (caller, site index)
    succ: list[list[int]] = field(default_factory=list)  # callees a summary travels from
    fwd: list[list[int]] = field(default_factory=list)  # every resolved callee
    irq_calls: set[tuple[int, int]] = field(default_factory=set)  # (caller, site): IRQs off
    # callbacks: function id -> [Reg]
    registered: dict[int, list[Reg]] = field(default_factory=dict)
    # functions an ops table stores: id -> [(struct::field, file, line)]
    stored: dict[int, list[tuple[str, str, int]]] = field(default_factory=dict)
    context: dict[int, str] = field(default_factory=dict)  # callback -> hardirq/softirq/process
    framework: dict[int, tuple[str, str, str]] = field(default_factory=dict)  # id->(cls,kind,why)
    irqs_off_entry: set[int] = field(default_factory=set)
    # lock classes the tree gives per-instance lockdep keys (lockdep_set_class()): which
    # instance is which is the kernel's business, not a class per struct field's
    keyed: frozenset[str] = frozenset()
    # per analysed file, in order: its path and its share of stored pointers and callbacks;
    # the struct definitions of all files (what a program snapshot needs to redo one file)
    paths: list[str] = field(default_factory=list)
    links: list[Links] = field(default_factory=list)
    structs: dict[str, dict[str, str]] = field(default_factory=dict)
    # a struct name two drivers each define privately -> their directories
    homes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # work item class -> the workqueues it is queued on ("": one not known); the ordered
    # workqueues; "directory:last name" of work items queued where their class is not
    # known -> the workqueues they go on
    queued: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ordered: frozenset[str] = frozenset()
    loose: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # knowledge, read once
    gfp: _Gfp = field(init=False)
    sleepers: frozenset[str] = frozenset()
    sleeping_kinds: frozenset[str] = frozenset()
    atomic_kinds: frozenset[str] = frozenset()
    boot: frozenset[str] = frozenset()  # start-up code: its IRQs-off section may sleep
    irqs_off_ok: frozenset[str] = frozenset()  # sleeping calls legal with IRQs off (schedule)
    # sleeping call -> the files that made it atomic-safe (kb sleep.json atomic_markers)
    atomic_calls: dict[str, frozenset[str]] = field(default_factory=dict)
    conditional_re: re.Pattern[str] = field(init=False)
    conditional_sleep: list[bool] = field(default_factory=list)
    comps: list[list[int]] = field(default_factory=list)  # strongly connected, callees first
    _canon: dict[str, str] = field(default_factory=dict)
    _boot_ids: frozenset[int] | None = None
    _entry: dict[tuple[int, int], frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sl = self.kb.section("sleep")
        self.conditional_re = re.compile(sl["conditional_params"])
        self.gfp = _Gfp(self.kb)
        self.sleepers = frozenset(sl["functions"])
        self.sleeping_kinds = frozenset(sl["sleeping_kinds"])
        self.atomic_kinds = frozenset(sl["atomic_kinds"])
        self.boot = frozenset(sl.get("boot_functions", ()))
        self.irqs_off_ok = frozenset(sl.get("irqs_off_ok", ()))

    def canon(self, cls: str) -> str:
        """A lock class re-rooted at the deepest struct the whole tree knows: a file that
        does not see `struct ma_state` calls its lock `ma_state::tree->ma_lock`, one that
        does `maple_tree::ma_lock`."""
        got = self._canon.get(cls)
        if got is None:
            got = self._canon[cls] = _reroot(cls, self.structs)
        return got

    def boot_only(self, fid: int) -> bool:
        """Start-up code: the kb's boot functions, and functions called from start-up code
        alone (parisc's init_IRQ(), called only by start_kernel(), turns IRQs off and
        requests its interrupts before anything can be scheduled).  A callback or a
        function an ops table stores has callers we cannot see: never start-up code."""
        if self._boot_ids is None:
            ids = {i for i, fn in enumerate(self.funcs) if fn.name in self.boot}
            work = list(ids)
            while work:
                for c in self.fwd[work.pop()]:
                    if c not in ids and c not in self.registered and c not in self.stored \
                            and all(caller in ids for caller, _ in self.callers[c]):
                        ids.add(c)
                        work.append(c)
            self._boot_ids = frozenset(ids)
        return fid in self._boot_ids

    def one_ordered_queue(self, fid: int, work: str) -> str:
        """The ordered workqueue that both runs every call of fid (fid is, or is only
        called from, work items queued on it alone) and is the only one `work` goes on: a
        work item of an ordered queue never runs while another of that queue does, so fid
        waiting for `work` waits for one that is at most pending.  "" when there is none."""
        here = os.path.dirname(self.funcs[fid].file)
        q = self._only_queue(work, here)
        if not q or q not in self.ordered:
            return ""
        seen = {fid}
        todo = [fid]
        while todo:
            f = todo.pop()
            if f in self.stored:
                return ""  # an ops table's method: its callers are not in view
            regs = self.registered.get(f, ())
            callers = self.callers[f]
            if regs:  # a work function: of that queue's items only (its callers too)
                if any(r.role != "work" or r.obj == work or self._only_queue(r.obj, here) != q
                       or self._only_queue(r.obj, os.path.dirname(r.file)) != q for r in regs):
                    return ""  # (the item itself: waiting for itself is a deadlock)
            elif not callers:
                return ""  # a root that is no work item of that queue
            for c, _ in callers:
                if c not in seen:
                    if len(seen) >= 64:
                        return ""
                    seen.add(c)
                    todo.append(c)
        return q

    def _only_queue(self, work: str, where: str) -> str:
        """The one workqueue a typed work item is ever queued on, or "": also when a call
        in directory `where` queues a work item of that name it cannot type on another
        queue (a helper's `queue_work(wq, work)`)."""
        qs = self.queued.get(work, ())
        if len(qs) != 1 or not qs[0]:
            return ""
        last = work.rsplit("::", 1)[-1].rsplit(".", 1)[-1].rsplit(">", 1)[-1]
        loose = self.loose
        return "" if any(q != qs[0] for q in (*loose.get(f"{where}:{last}", ()),
                                               *loose.get(f"{where}:*", ()))) else qs[0]

    def entry_locks(self, fid: int, depth: int = 2) -> frozenset[str]:
        """Canonical lock classes held on entry to fid by every caller the program shows,
        `depth` callers up (a lock a caller's own callers all hold counts too); nothing for a
        function with callers we cannot see (a callback, an ops method, no callers)."""
        key = (fid, depth)
        got = self._entry.get(key)
        if got is None:
            got = self._entry[key] = self._entry_locks(fid, depth)
        return got

    def _entry_locks(self, fid: int, depth: int) -> frozenset[str]:
        callers = self.callers[fid]
        if not depth or not callers or fid in self.registered or fid in self.stored:
            return frozenset()
        calls: dict[int, int] = {}  # caller -> how many of its calls go to fid
        for c, _ in callers:
            calls[c] = calls.get(c, 0) + 1
        out: frozenset[str] | None = None
        for c, n in calls.items():
            # the caller's calls of fid with something held (the sites a snapshot keeps
            # too): all of them, or some are made with nothing held
            at = [s for s in self.held_sites[c] if fid in s.callees]
            if len(at) < n:
                return frozenset()
            for s in at:
                held = frozenset(self.canon(h) for h, _, _ in locks_held(s.held))
                held |= self.entry_locks(c, depth - 1)
                out = held if out is None else out & held
                if not out:
                    return frozenset()
        return out or frozenset()

    def never(self, fid: int, guard: Needs, depth: int = 2) -> bool:
        """A place of function fid under `guard` (tests of its parameters) that is never
        reached: the tests contradict, or every call of fid passes a constant they rule out,
        directly or through its caller's own callers (`depth` levels up): all callers of
        usnic_ib_qp_grp_modify() pass NULL data.  A callback, a function an ops table
        stores, or one with no callers in view may be called from where we cannot see."""
        if not guard:
            return False
        if dead(guard):
            return True
        callers = self.callers[fid]
        if not callers or fid in self.registered or fid in self.stored:
            return False
        for c in sorted({c for c, _ in callers}):
            # the caller's calls of fid (its active sites: what a snapshot rebuilds too)
            for site in self.active[c]:
                if fid not in site.callees:
                    continue
                needs = bind(guard, site.call)
                if needs is None:
                    continue  # this call's constants rule the place out
                if not needs or depth == 0 or not self.never(c, needs, depth - 1):
                    return False
        return True

    def possible(self, fid: int, needs: Needs, c: Call) -> bool:
        """A callee's event that needs `needs` happens through call c of function fid: no
        constant of the call, test around it or constant of fid's callers (never())
        rules it out."""
        if not needs:
            return True
        b = bind(needs, c)
        return b is not None and not (b and self.never(fid, b))

    # --- chains ---------------------------------------------------------------------------
    def step(self, fid: int, line: int, note: str) -> Step:
        fn = self.funcs[fid]
        return Step(fn.file, line, fn.name, note)

    def acq_chain(self, fid: int, cls: str) -> list[Step]:
        out: list[Step] = []
        seen: set[int] = set()
        while fid not in seen:
            seen.add(fid)
            a = self.acq[fid].get(cls)
            if a is None:
                break
            if a.callee < 0:
                out.append(self.step(fid, a.line, f"{a.api}({show(cls)})"))
                break
            out.append(self.step(fid, a.line, f"calls {self.funcs[a.callee].name}()"))
            fid = a.callee
        return out

    def sleep_chain(self, fid: int, s: Sleep | None) -> list[Step]:
        out: list[Step] = []
        seen: set[int] = set()
        while s is not None and fid not in seen:
            seen.add(fid)
            if s.callee < 0:
                out.append(self.step(fid, s.line, f"{s.what} may sleep"))
                break
            out.append(self.step(fid, s.line, f"calls {self.funcs[s.callee].name}()"))
            fid, nxt = s.callee, self.sleep[s.callee]
            if nxt is None:  # reached through a gfp parameter: the callee's conditional sleep
                nxt = next(iter(self.sleep_param[fid].values()), None)
            s = nxt
        return out

    def _wait_hops(self, fid: int, w: Wait) -> list[tuple[int, Wait]]:
        """(function, its wait record) from the caller down to the wait call itself."""
        hops = [(fid, w)]
        for _ in range(w.depth):
            if w.callee < 0:
                break
            fid = w.callee
            nxt = next((x for x in self.waits[fid] if x.api == w.api and x.arg == w.arg), None)
            if nxt is None:
                break
            w = nxt
            hops.append((fid, w))
        return hops

    def wait_site(self, fid: int, w: Wait) -> int:
        """The function the wait call itself is in."""
        last, lw = self._wait_hops(fid, w)[-1]
        return last if lw.callee < 0 else lw.callee

    def wait_chain(self, fid: int, w: Wait) -> list[Step]:
        return [self.step(f, x.line, f"{x.api}({x.arg}) waits" if x.callee < 0
                          else f"calls {self.funcs[x.callee].name}()")
                for f, x in self._wait_hops(fid, w)]


# --- building --------------------------------------------------------------------------------
_ARCH = re.compile(r"(?:^|/)arch/([^/]+)/")
_WIDTH = re.compile(r"_(32|64)\.[ch]$")


class _Place(NamedTuple):
    """What name resolution asks of a file's path, computed once per path."""

    arch: str  # `arch/x86/kernel/irq.c` -> "x86"; "" outside arch/
    width: str  # "32" for `foo_32.c`, "64", or ""
    dir: str
    parts: tuple[str, ...]  # the directory's components


@functools.cache
def place(path: str) -> _Place:
    m, w = _ARCH.search(path), _WIDTH.search(path)
    d = os.path.dirname(path)
    return _Place(m.group(1) if m else "", w.group(1) if w else "", d, tuple(d.split("/")))


def arch_of(path: str) -> str:
    """`arch/x86/kernel/irq.c` -> "x86"; "" outside arch/."""
    return place(path).arch


def same_build(a: str, b: str) -> bool:
    """Two files that can be linked into one kernel: not in two different arch/ trees, not
    a `_32.c` and a `_64.c` file."""
    x, y = place(a), place(b)
    if x.arch and y.arch and x.arch != y.arch:
        return False
    return not (x.width and y.width and x.width != y.width)


@functools.lru_cache(maxsize=1 << 16)
def _sibling_dirs(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if "drivers" not in a or "drivers" not in b:
        return False
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    if n == len(a) or n == len(b):
        return False  # one directory holds the other: a driver and its core
    return "drivers" in a[:n] and n - a.index("drivers") - 1 >= 3


def sibling_driver(cand: str, path: str) -> bool:
    """Two drivers side by side under one vendor directory (drivers/net/wireless/mediatek/
    mt76/mt7603 and .../mediatek/mt7601u): a name one defines is, for the other, usually a
    macro of its own with the same name (mt76_poll), not a call into its neighbour."""
    return _sibling_dirs(place(cand).parts, place(path).parts)


def visible(header: str, path: str) -> bool:
    """A header a file can include: under an include/ directory, or in the file's own
    directory or one above it (a driver's private header is not another driver's)."""
    if "/include/" in header or header.startswith("include/"):
        return True
    d = place(header).dir
    return path.startswith(d + "/") or not d


def common_dirs(a: str, b: str) -> int:
    """How many leading directory components two paths share."""
    x, y = place(a).parts, place(b).parts
    n = 0
    for p, q in zip(x, y, strict=False):
        if p != q:
            break
        n += 1
    return n


class _Resolver:
    def __init__(self, funcs: list[Function], kb: KnowledgeBase) -> None:
        self.static: dict[tuple[str, str], list[int]] = {}
        self.header_static: dict[str, list[int]] = {}
        self.global_: dict[str, list[int]] = {}
        for i, fn in enumerate(funcs):
            if fn.static:
                self.static.setdefault((fn.file, fn.name), []).append(i)
                if fn.file.endswith(".h"):
                    self.header_static.setdefault(fn.name, []).append(i)
            else:
                self.global_.setdefault(fn.name, []).append(i)
        self.funcs = funcs
        sleep, waits = kb.section("sleep"), kb.section("waits")
        # known by their knowledge-base entry, never by their body
        self.known = (
            frozenset(sleep["functions"])
            | frozenset(sleep["never_sleep"])
            | frozenset(sleep["gfp_allocators"])
            | frozenset(waits["waits"])
            | frozenset(kb.lock_apis)
            # a noreturn call (panic, BUG) ends the path: what the dying kernel does next
            # is no lock order and no context
            | kb.names("noreturn")
        )
        self._cache: dict[tuple[str, str], dict[str, tuple[int, ...]]] = {}  # -> name -> ids

    def name(self, name: str, path: str, folder: str | None = None,
             branch: tuple[tuple[int, int], ...] = ()) -> tuple[int, ...]:
        if name in self.known:
            return ()
        hit = self.static.get((path, name))
        if hit:
            if len(hit) > 1 and branch:  # the twin of the caller's own #ifdef branch
                mine = dict(branch)
                for i in hit:
                    if all(mine.get(g, b) == b for g, b in self.funcs[i].branch):
                        return (i,)
            return tuple(hit[:1])  # #ifdef twins: one body stands for the name
        if folder is None:
            folder = place(path).dir
        # what follows depends on the file's directory and its _32/_64 width only
        ckey = (folder, place(path).width)
        cache = self._cache.get(ckey)
        if cache is None:
            cache = self._cache[ckey] = {}
        got = cache.get(name)
        if got is None:
            cands = [c for c in self.header_static.get(name, ())
                     if visible(self.funcs[c].file, path)] or self.global_.get(name) or []
            cands = [c for c in cands if same_build(self.funcs[c].file, path)
                     and not sibling_driver(self.funcs[c].file, path)]
            if len(cands) > 1 and not place(path).arch:
                # outside arch/, a generic definition stands for the name: which
                # architecture's override would be linked in is the build's business
                generic = [c for c in cands if not place(self.funcs[c].file).arch]
                cands = generic or cands
            got = cache[name] = self._nearest(cands, path) if len(cands) > 1 else tuple(cands)
        return got

    def _nearest(self, cands: list[int], path: str) -> tuple[int, ...]:
        """Arch/config variants of one name: those sharing the longest path prefix."""
        here = place(path).dir
        near = [c for c in cands if place(self.funcs[c].file).dir == here]
        if not near:
            common = {c: common_dirs(self.funcs[c].file, path) for c in cands}
            best = max(common.values())
            near = [c for c in cands if common[c] == best]
        seen: set[str] = set()
        out = []
        for c in near:  # one body per file
            if self.funcs[c].file not in seen:
                seen.add(self.funcs[c].file)
                out.append(c)
        return tuple(out[:4])


class Links(NamedTuple):
    """What one file adds to the tree-wide tables, resolved: function pointers it stores
    (target, struct::field, line) and the callbacks it registers, from inside its functions
    and at file scope.  Kept per file so that a changed file's share can be redone alone."""

    refs: tuple[tuple[int, str, int], ...]
    fn_regs: tuple[tuple[int, Reg], ...]
    file_regs: tuple[tuple[int, Reg], ...]

    def pairs(self) -> frozenset[tuple[str, int]]:
        """What call resolution reads of it: which functions each field may hold."""
        return frozenset((f, t) for t, f, _ in self.refs)


class _Linker:
    """Where a call may go: names through the resolver, pointers through the struct fields
    functions are stored in."""

    def __init__(self, funcs: list[Function], kb: KnowledgeBase,
                 structs: dict[str, dict[str, str]],
                 homes: dict[str, tuple[str, ...]] | None = None) -> None:
        self.funcs = funcs
        self.res = _Resolver(funcs, kb)
        self.structs = structs
        self.homes = homes or {}
        self.stored: dict[str, set[int]] = {}
        self.by_field: dict[str, set[int]] = {}

    def links(self, ff: FileFacts, first: int) -> Links:
        """`ff`'s share; its functions have the ids from `first` on."""
        name = self.res.name
        refs: list[tuple[int, str, int]] = []
        for r in itertools.chain(ff.fn_refs, (r for fn in ff.functions for r in fn.fn_refs)):
            if _IDENT.match(r.target):
                refs.extend((t, r.field, r.line) for t in name(r.target, ff.path))
        fn_regs = tuple((t, Reg(rg.role, first + k, fn.file, rg.line, rg.api, rg.args, rg.obj))
                        for k, fn in enumerate(ff.functions) for rg in fn.registrations
                        for t in name(rg.target, fn.file))
        file_regs = tuple((t, Reg(rg.role, -1, ff.path, rg.line, rg.api, rg.args, rg.obj))
                          for rg in ff.registrations for t in name(rg.target, ff.path))
        return Links(tuple(refs), fn_regs, file_regs)

    def add_refs(self, links: Links) -> None:
        # `hw->mac.ops.check_for_link = f` is kept under the path as written: re-rooted at
        # rtl_io::read8_sync, the USB and PCI drivers' stores made every PCI call through
        # rtlpriv->io a USB control message (a struct's field does not tell the bus)
        for t, fld, _ in links.refs:
            self.stored.setdefault(fld, set()).add(t)
            self.by_field.setdefault(fld.rsplit("::", 1)[-1], set()).add(t)

    def via_targets(self, via: str, path: str = "") -> tuple[tuple[int, ...], str]:
        structs, stored = self.structs, self.stored
        if "::" in via:
            t, rest = via.split("::", 1)
            hops = [h.group(2) for h in _HOP.finditer("." + rest)]
            for h in hops[:-1]:
                nxt = structs.get(t, {}).get(h)
                if nxt is None:
                    break
                t = nxt
            else:
                got = stored.get(f"{t}::{hops[-1]}") if hops else None
                if got:
                    homes = self.homes.get(t)
                    if homes and path:
                        got = self._at_home(got, homes, path)
                        if not got:
                            return (), ""
                    return tuple(sorted(got)), "typed"
            last = hops[-1] if hops else ""
        else:
            m = re.search(r"([A-Za-z_]\w*)\W*$", via)
            last = m.group(1) if m else ""
        got = self.by_field.get(last)
        if got and len(got) <= FIELD_FALLBACK_MAX:
            return tuple(sorted(got)), "field"
        return (), ""

    def _at_home(self, got: set[int], homes: tuple[str, ...], path: str) -> set[int]:
        """Of the functions stored in a field of a struct two drivers each define (igbvf's
        and e1000e's `struct e1000_mac_operations`), those of the caller's driver, and
        those of no such driver."""
        mine = [h for h in homes if path.startswith(h + "/")]
        if len(mine) != 1:
            return got
        funcs = self.funcs
        return {t for t in got if funcs[t].file.startswith(mine[0] + "/")
                or not any(funcs[t].file.startswith(h + "/") for h in homes)}

    def targets(self, c: Call, path: str, memo: dict[str, tuple[int, ...]], folder: str,
                branch: tuple[tuple[int, int], ...] = ()) -> tuple[tuple[int, ...], str]:
        """Where call c of a function in `path` may go, and how it was resolved (see Site.how).
        `memo`: names already resolved for that file."""
        if c.callee:
            key = c.callee + repr(branch) if branch else c.callee
            callees = memo.get(key)
            if callees is None:
                callees = memo[key] = self.res.name(c.callee, path, folder, branch)
            how = "direct"
        else:
            callees, how = self.via_targets(c.via, path)
            # an ops table of another architecture is never called from this one
            funcs = self.funcs
            callees = tuple(t for t in callees if same_build(path, funcs[t].file))
        if not callees:
            return callees, ""
        if how == "typed" and len(callees) > TYPED_MAX:
            # a generic ops field (file_operations::read): which implementation runs is the
            # object's business; summaries do not travel through it
            return callees, "wide"
        return callees, how

    def _held_at(self, path: str, c: Call, held: tuple[tuple[str, str, int], ...],
                 callees: tuple[int, ...], rels: list[tuple[int, frozenset[str]]]
                 ) -> tuple[tuple[str, str, int], ...]:
        """What is held at call c (its file's engine says `held`), less what the calls into
        other files before it let go of; notes in `rels` (line, lock names) what c itself
        lets go of, when every target of it does (`drm_gem_handle_create_tail()` unlocks
        the caller's object_name_lock).  Same-file callees' effects are the engine's."""
        if rels and held:
            held = _still_held(held, c.line, rels)
        if callees:
            funcs = self.funcs
            names: set[str] = set()
            for t in callees:
                fn = funcs[t]
                if fn.file == path or not fn.effect.releases:
                    return held
                names.update(_LAST.split(e)[-1] for e, _ in fn.effect.releases)
            rels.append((c.line, frozenset(names)))
        return held

    def sites(self, fn: Function, memo: dict[str, tuple[int, ...]]
              ) -> tuple[tuple[Site, ...], tuple[Site, ...], tuple[Site, ...], list[int]]:
        """fn's call sites; those a summary reads; those with something held; the callees
        summaries travel from.  `memo`: names already resolved for fn's file."""
        known = self.res.known
        held = {(ln, col): h for ln, col, h in fn.held} if fn.held else _NO_HELD
        folder = place(fn.file).dir
        ops = {(op.line, op.col) for op in fn.lock_ops} if fn.lock_ops else _NO_OPS
        out: list[Site] = []
        active: list[Site] = []
        at_held: list[Site] = []
        nexts: set[int] = set()
        rels: list[tuple[int, frozenset[str]]] = []
        for c in fn.calls:
            callees, how = self.targets(c, fn.file, memo, folder, fn.branch)
            h = self._held_at(fn.file, c, held.get((c.line, c.col), ()), callees, rels)
            site = Site(c, h, callees, how)
            if how in _PROPAGATING:
                nexts.update(callees)
            out.append(site)
            if callees or c.callee in known or (ops and (c.line, c.col) in ops):
                active.append(site)
            if site.held:
                at_held.append(site)
        return tuple(out), tuple(active), tuple(at_held), sorted(nexts)


    def scan(self, fn: Function, i: int, memo: dict[str, tuple[int, ...]],
             callers: list[list[tuple[int, int]]], irq_calls: set[tuple[int, int]]
             ) -> tuple[tuple[Site, ...], tuple[Site, ...], list[int], list[int]]:
        """What a whole build keeps of function i's call sites (sites() gives them all): it
        adds i's calls to the callers and IRQs-off tables itself and makes a Site record
        only for a call a summary or a checker reads; returns the sites a summary reads,
        those with something held, the callees summaries travel from, every callee."""
        known = self.res.known
        held = {(ln, col): h for ln, col, h in fn.held} if fn.held else None
        folder = place(fn.file).dir
        ops = {(op.line, op.col) for op in fn.lock_ops} if fn.lock_ops else None
        active: list[Site] = []
        at_held: list[Site] = []
        nexts: set[int] = set()
        fwd: set[int] = set()
        targets = self.targets
        rels: list[tuple[int, frozenset[str]]] = []
        for si, c in enumerate(fn.calls):
            callees, how = targets(c, fn.file, memo, folder, fn.branch)
            h = self._held_at(fn.file, c, held.get((c.line, c.col), ()), callees, rels) \
                if held else ()
            if callees:
                if how in _PROPAGATING:
                    nexts.update(callees)
                for t in callees:
                    callers[t].append((i, si))
                fwd.update(callees)
                if h and any(k == "irq" for _, k, _ in h):
                    irq_calls.add((i, si))
                site = Site(c, h, callees, how)
                active.append(site)
            elif c.callee in known or (ops and (c.line, c.col) in ops):
                site = Site(c, h, callees, "")
                active.append(site)
            elif h:
                site = Site(c, h, callees, "")
            else:
                continue
            if h:
                at_held.append(site)
        return tuple(active), tuple(at_held), sorted(nexts), sorted(fwd)


_LAST = re.compile(r"->|\.|::")


def _still_held(held: tuple[tuple[str, str, int], ...], line: int,
                rels: list[tuple[int, frozenset[str]]]) -> tuple[tuple[str, str, int], ...]:
    """`held` at a call on `line`, less the locks (by last field name) a call into another
    file let go of after they were taken: (call line, names) in `rels`."""
    keep = tuple(h for h in held if not any(
        h[2] < rl < line and _LAST.split(h[0])[-1].rstrip("*") in names for rl, names in rels))
    return keep if len(keep) != len(held) else held


class _AllSites:
    """Program.sites of a whole build: a function's call sites, resolved when first asked
    for, as sites() resolves them."""

    def __init__(self, link: _Linker) -> None:
        self.link = link
        self.got: dict[int, tuple[Site, ...]] = {}

    def __getitem__(self, f: int) -> tuple[Site, ...]:
        got = self.got.get(f)
        if got is None:
            got = self.got[f] = self.link.sites(self.link.funcs[f], {})[0]
        return got

    def __len__(self) -> int:
        return len(self.link.funcs)


def merge_links(prog: Program, files: list[Links]) -> None:
    """The tree-wide tables of stored pointers and registered callbacks, in file order."""
    prog.stored, prog.registered = {}, {}
    for path, lk in zip(prog.paths, files, strict=True):
        for t, fld, line in lk.refs:
            prog.stored.setdefault(t, []).append((fld, path, line))
    for lk in files:
        for t, rg in lk.fn_regs:
            prog.registered.setdefault(t, []).append(rg)
    for lk in files:  # file-scope registrations (DECLARE_WORK ...)
        for t, rg in lk.file_regs:
            prog.registered.setdefault(t, []).append(rg)


def add_calls(prog: Program, i: int, sites: tuple[Site, ...]) -> list[int]:
    """Function i's calls into the callers table (kept sorted) and the IRQs-off call table;
    returns every function i may call (a whole build does this in _Linker.scan)."""
    fwd: set[int] = set()
    callers = prog.callers
    for si, site in enumerate(sites):
        if site.callees:
            for t in site.callees:
                bisect.insort(callers[t], (i, si))
            fwd.update(site.callees)
            if site.held and any(k == "irq" for _, k, _ in site.held):
                prog.irq_calls.add((i, si))
    return sorted(fwd)


def build(facts: list[FileFacts], kb: KnowledgeBase) -> Program:
    prog = Program(kb)
    structs: dict[str, dict[str, str]] = {}
    markers = prog.kb.section("sleep").get("atomic_markers", {})
    safe: dict[str, set[str]] = {}
    homes: dict[str, set[str]] = {}
    for ff in facts:
        folder = place(ff.path).dir
        private = "include" not in place(ff.path).parts
        for s, fields in ff.structs.items():
            structs.setdefault(s, {}).update(fields)
            if private:
                homes.setdefault(s, set()).add(folder)
        prog.funcs.extend(ff.functions)
        for m in ff.markers:
            for call in markers.get(m, ()):
                safe.setdefault(call, set()).add(ff.path)
    prog.atomic_calls = {k: frozenset(v) for k, v in sorted(safe.items())}
    funcs = prog.funcs
    prog.homes = {s: tuple(sorted(d)) for s, d in sorted(homes.items()) if len(d) > 1}
    link = _Linker(funcs, kb, structs, prog.homes)
    first = 0
    for ff in facts:  # function pointers stored into fields, callbacks registered
        lk = link.links(ff, first)
        first += len(ff.functions)
        link.add_refs(lk)
        prog.links.append(lk)
        prog.paths.append(ff.path)
    merge_links(prog, prog.links)

    n = len(funcs)
    prog.callers = [[] for _ in range(n)]
    memo: dict[str, tuple[int, ...]] = {}
    memo_file = ""
    callers, irq_calls = prog.callers, prog.irq_calls
    for i, fn in enumerate(funcs):
        if fn.file != memo_file:  # a file's functions are contiguous
            memo_file, memo = fn.file, {}
        active, at_held, nexts, fwd = link.scan(fn, i, memo, callers, irq_calls)
        prog.active.append(active)
        prog.held_sites.append(at_held)
        prog.succ.append(nexts)
        prog.fwd.append(fwd)
    prog.sites = _AllSites(link)
    prog.structs = structs
    _queues(prog, kb)
    prog.keyed = frozenset(x for fn in funcs for c in fn.keyed if identified(c)
                           for x in _nested_classes(c, structs))
    _contexts(prog)
    _summaries(prog)
    _irqs_off_entry(prog)
    return prog


def _queues(prog: Program, kb: KnowledgeBase) -> None:
    """Which workqueues each work item goes on, and which queues are ordered."""
    queued: dict[str, set[str]] = {}
    ordered = {str(q["queue"]) for q in kb.section("waits")["queues"].values()
               if q.get("ordered")}
    loose: dict[str, set[str]] = {}
    for fn in prog.funcs:
        for _, work, wq in fn.queues:
            if not work:
                ordered.add(wq)
            elif work[0] == "?":
                loose.setdefault(f"{os.path.dirname(fn.file)}:{work[1:]}", set()).add(wq)
            else:
                queued.setdefault(work, set()).add(wq)
    prog.queued = {w: tuple(sorted(q)) for w, q in sorted(queued.items())}
    prog.ordered = frozenset(ordered)
    prog.loose = {k: tuple(sorted(v)) for k, v in sorted(loose.items())}


def _reroot(cls: str, structs: dict[str, dict[str, str]]) -> str:
    """`ma_state::tree->ma_lock` -> `maple_tree::ma_lock` when ma_state.tree is a struct
    maple_tree pointer, and `irdma_device::cm_core.listen_list_lock` ->
    `irdma_cm_core::listen_list_lock` when cm_core is an embedded struct irdma_cm_core
    (what the extractor does with the structs one file sees)."""
    t, sep, rest = cls.partition("::")
    if not sep or ("->" not in rest and "." not in rest):
        return cls
    tokens = _HOP_SPLIT.split(rest)
    hops, seps = tokens[0::2], tokens[1::2]
    i = 0
    while i < len(hops) - 1 and _IDENT.match(hops[i]):
        nxt = structs.get(t, {}).get(hops[i])
        if nxt is None:
            break
        t = nxt
        i += 1
    if not i:
        return cls
    return f"{t}::{hops[i]}" + "".join(x + h for x, h in zip(seps[i:], hops[i + 1:], strict=True))


_HOP_SPLIT = re.compile(r"(->|\.)")


def _nested_classes(cls: str, structs: dict[str, dict[str, str]]) -> set[str]:
    """A class and the classes of the same lock seen from the structs it is embedded in:
    `hub::rx.lock` is also `ring::lock` when hub.rx is a struct ring."""
    out = {cls}
    t, sep, rest = cls.partition("::")
    if not sep:
        return out
    hops = [h.group(2) for h in _HOP.finditer("." + rest)]
    for i, h in enumerate(hops[:-1]):
        nxt = structs.get(t, {}).get(h)
        if nxt is None:
            break
        t = nxt
        out.add(f"{t}::{'.'.join(hops[i + 1:])}")
    return out


def _contexts(prog: Program) -> None:
    ctx = prog.kb.section("contexts")
    roles = ctx["roles"]
    for fid, regs in sorted(prog.registered.items()):
        kinds = {roles.get(r.role, "process") for r in regs}
        for k in ("hardirq", "softirq", "process"):
            if k in kinds:
                prog.context[fid] = k
                break
    entries = ctx["entry_points"]
    for fid, fn in enumerate(prog.funcs):
        kind = entries.get(fn.name)
        if kind is not None and not fn.static and fid not in prog.context:
            prog.context[fid] = kind
            prog.registered.setdefault(fid, []).append(
                Reg(f"{kind}_entry", -1, fn.file, fn.line, "the architecture's entry code", ()))
    for cb in ctx["callbacks"]:
        keys = {f"{s}::{f}" for s in cb["structs"] for f in cb["fields"]}
        for fid, where in sorted(prog.stored.items()):
            hit = next((w for w in where if w[0] in keys), None)
            if hit is None:
                continue
            if cb.get("context") and fid not in prog.context:
                prog.context[fid] = cb["context"]
                prog.registered.setdefault(fid, []).append(
                    Reg(f"{cb['context']}_callback", -1, hit[1], hit[2], hit[0], ()))
            holds = cb.get("holds")
            if holds:
                prog.framework[fid] = (
                    holds["cls"],
                    holds["kind"],
                    f"{hit[0]} callback ({hit[1]}:{hit[2]})",
                )
            if cb["irqs_off"]:
                prog.irqs_off_entry.add(fid)


# --- summaries -------------------------------------------------------------------------------
def _sccs(n: int, succ: list[list[int]]) -> list[list[int]]:
    """Tarjan's algorithm, iterative; components come out callees first."""
    index = [-1] * n
    low = [0] * n
    on = [False] * n
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on[v] = True
            recurse = False
            s = succ[v]
            while i < len(s):
                w = s[i]
                i += 1
                if index[w] < 0:
                    work.append((v, i))
                    work.append((w, 0))
                    recurse = True
                    break
                if on[w]:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on[w] = False
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
    return out


_NEGATED = re.compile(r"~\s*\(?\s*[A-Za-z_]\w*")


class _Gfp:
    def __init__(self, kb: KnowledgeBase) -> None:
        s = kb.section("sleep")
        self.alloc: dict[str, int] = s["gfp_allocators"]
        self.sleeping = (
            re.compile(r"\b(?:" + "|".join(map(re.escape, s["gfp"]["sleeping"])) + r")\b")
            if s["gfp"]["sleeping"]
            else None
        )
        self.atomic = (
            re.compile(r"\b(?:" + "|".join(map(re.escape, s["gfp"]["atomic"])) + r")\b")
            if s["gfp"]["atomic"]
            else None
        )

    def classify(self, arg: str, fn: Function) -> str | int | None:
        """ "sleep", the index of fn's parameter the mask is (the allocation sleeps if the
        caller's argument does), or None."""
        arg = _NEGATED.sub("", arg)  # `gfp & ~__GFP_DIRECT_RECLAIM` takes the flag away
        if self.atomic is not None and self.atomic.search(arg):
            return None
        if self.sleeping is not None and self.sleeping.search(arg):
            return "sleep"
        a = arg.strip("() ")
        for j, (p, _) in enumerate(fn.params):
            if p == a:
                return j
        return None


def acquires_at(fn: Function) -> dict[tuple[int, int], LockOp]:
    return {(op.line, op.col): op for op in fn.lock_ops if op.op == "acquire"}


def site_sleep(
    prog: Program, site: Site, fn: Function, ops_at: dict[tuple[int, int], LockOp]
) -> tuple[Sleep | None, dict[int, Sleep]]:
    """May the call at `site` sleep: a known sleeper, an allocation whose GFP mask sleeps, a
    sleeping lock, or a callee whose summary sleeps.  Also the conditional sleeps it passes on:
    {parameter index: how} when the GFP mask is one of the caller's parameters."""
    c = site.call
    gfp = prog.gfp
    deps: dict[int, Sleep] = {}
    g = plain(c.guard)
    if c.callee in prog.sleepers:
        if fn.file in prog.atomic_calls.get(c.callee, ()):
            return None, deps  # pm_runtime_get_sync() of a driver that made its device IRQ-safe
        return Sleep(c.line, -1, f"{c.callee}()", 0, needs=g), deps
    if c.callee in gfp.alloc:
        idx = gfp.alloc[c.callee]
        if idx < len(c.args):
            k = gfp.classify(c.args[idx], fn)
            what = f"{c.callee}({c.args[idx]})"
            if k == "sleep":
                return Sleep(c.line, -1, what, 0, needs=g), deps
            if isinstance(k, int):
                deps[k] = Sleep(c.line, -1, what, 0)
        return None, deps
    op = ops_at.get((c.line, c.col))
    if op is not None:
        if op.kind in prog.sleeping_kinds:
            return Sleep(c.line, -1, f"{op.api}({op.expr})", 0, needs=g), deps
        return None, deps
    if not site.propagates:
        return None, deps
    if site.how == "typed" and len(site.callees) > TYPED_SLEEP_MAX:
        return None, deps  # a generic ops field: which implementation runs is not known
    for t in site.callees:
        if prog.conditional_sleep[t]:
            continue  # the caller chooses (sleep_ok, atomic ...): usually not to sleep
        s = prog.sleep[t]
        if s is not None and s.depth < MAX_DEPTH:
            b = bind(s.needs, c)
            if b is not None:
                return Sleep(c.line, t, s.what, s.depth + 1, s.dropped, b), deps
        for j, sp in sorted(prog.sleep_param[t].items()):
            if j < len(c.args) and sp.depth < MAX_DEPTH and reaches(sp.needs, c):
                k = gfp.classify(c.args[j], fn)
                if k == "sleep":
                    return Sleep(c.line, t, sp.what, sp.depth + 1, sp.dropped), deps
                if isinstance(k, int):
                    deps.setdefault(k, Sleep(c.line, t, sp.what, sp.depth + 1, sp.dropped))
    return None, deps


_PROPAGATING = frozenset({"direct", "typed"})
_NO_HELD: dict[tuple[int, int], tuple[tuple[str, str, int], ...]] = {}
_NO_OPS: frozenset[tuple[int, int]] = frozenset()


def direct_wait(waits: dict[str, Any], c: Call, fn: Function,
                dropped: frozenset[str] = frozenset()) -> Wait:
    """The wait a call to a wait API performs (what it waits for, as written and typed)."""
    spec = waits[c.callee]
    i = spec["arg"]
    arg = c.args[i] if i is not None and i < len(c.args) else ""
    obj = next((o for ln, col, o in fn.objs if ln == c.line and col == c.col), "") \
        if fn.objs else ""
    return Wait(c.callee, spec["what"], arg, c.line, -1, 0, dropped, (), obj)
_EMPTY: frozenset[str] = frozenset()


class _Summariser:
    """Function summaries from their callees' (see the module docstring, 3.)."""

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.waits = prog.kb.section("waits")["waits"]
        self.tests = frozenset(prog.kb.section("sleep").get("blocking_tests", ()))
        self._local: dict[int, tuple[dict[str, Acq], dict[tuple[int, int], frozenset[str]]]] = {}

    def local(self, f: int) -> tuple[dict[str, Acq], dict[tuple[int, int], frozenset[str]]]:
        """What f does itself: the classes it takes, and where it has let go of a caller's
        lock."""
        got = self._local.get(f)
        if got is not None:
            return got
        fn = self.prog.funcs[f]
        a: dict[str, Acq] = {}
        canon = self.prog.canon  # dropped sets hold canonical classes, as Sleep's do
        drops = {(ln, col): frozenset(canon(c) for c, k, _ in h if k[:1] == "-")
                 for ln, col, h in fn.held if any(k[:1] == "-" for _, k, _ in h)}
        guards = {(c.line, c.col): c.guard for c in fn.calls if c.guard} if fn.lock_ops else {}
        for op in fn.lock_ops:
            if op.op == "release" or op.kind in NOT_LOCKS or not identified(op.cls):
                continue
            g = guards.get((op.line, op.col), ()) if guards else ()
            if last_put(g):
                continue  # the release path: no caller holding a reference gets there
            old = a.get(op.cls)
            if (old is None or (old.needs and not g)) and not dead(g):
                a[op.cls] = Acq(op.kind, op.line, -1, 0, op.op == "trylock", op.api,
                                drops.get((op.line, op.col), frozenset()), g)
        got = self._local[f] = (a, drops)
        return got

    def reset(self, f: int) -> None:
        prog = self.prog
        prog.acq[f], prog.sleep[f], prog.sleep_param[f], prog.waits[f] = {}, None, {}, ()

    def summarise(self, f: int) -> bool:
        """Recompute f's summary from its callees'; True if it changed."""
        prog = self.prog
        active = prog.active[f]  # first: a snapshot's model fills in f's facts when asked
        fn = prog.funcs[f]
        local_acq, drops = self.local(f)
        acq = dict(local_acq)
        sleep: Sleep | None = None
        sparam: dict[int, Sleep] = {}
        cands: dict[int, list[Sleep]] = {}  # gfp parameter -> the sleeps that follow it
        wl: list[Wait] = []
        ops_at = acquires_at(fn) if fn.lock_ops else {}
        seen: set[object] = set()
        waits, gfp_alloc, sleepers = self.waits, prog.gfp.alloc, prog.sleepers
        atomic_kinds = prog.atomic_kinds
        p_sleep, p_param = prog.sleep, prog.sleep_param
        for site in active:  # resolved, a known API, or a lock operation
            c = site.call
            g = c.guard
            if g and dead(g):
                continue
            released = last_put(g)  # takes no part in lock order through this call
            g = plain(g)
            callees = site.callees
            prop = site.how in _PROPAGATING
            # may it sleep here?  (once a sleep is known, only conditional sleeps
            # through gfp parameters, or one that needs no flag, still matter; a call that
            # cannot sleep is told apart without asking site_sleep)
            if ((sleep is None or sleep.needs) and (
                    c.callee in sleepers or (ops_at and (c.line, c.col) in ops_at) or (
                        prop and any(p_sleep[t] is not None or p_param[t] for t in callees)))
                    ) or c.callee in gfp_alloc or (prop and any(p_param[t] for t in callees)):
                here, deps = site_sleep(prog, site, fn, ops_at)
                if deps:
                    for k, sp in deps.items():
                        cands.setdefault(k, []).append(_own_drops(prog, sp, site.held))
                # an atomic site is a finding here, not a summary; a function that
                # drops its caller's lock around a sleep (pci_wait_cfg) does not sleep
                # under that lock
                if here is not None and (sleep is None or (sleep.needs and not here.needs)) \
                        and not any((k in atomic_kinds and prog.canon(x) not in here.dropped)
                                    or k[:1] == "-" for x, k, _ in site.held):
                    sleep = _own_drops(prog, here, site.held)
            if c.callee in waits:
                if len(wl) < MAX_WAITS:
                    w = direct_wait(waits, c, fn, drops.get((c.line, c.col), _EMPTY)
                                    if drops else _EMPTY)
                    wl.append(w._replace(needs=g) if g else w)
                continue
            if not prop:
                continue
            for t in callees:
                # the first call of a callee speaks for the others made with the same
                # constant arguments under the same flags
                key = (t, c.consts, c.passes, g) if c.consts or c.passes or g else t
                if key in seen:
                    continue
                seen.add(key)
                tw = prog.waits[t]
                if tw and len(wl) < MAX_WAITS:
                    here_drops = drops.get((c.line, c.col), _EMPTY) if drops else _EMPTY
                    for w in tw:
                        if len(wl) < MAX_WAITS and w.depth < MAX_DEPTH and all(
                                x.api != w.api or x.arg != w.arg for x in wl):
                            b = bind(w.needs, c)
                            if b is not None:
                                wl.append(Wait(w.api, w.what, w.arg, c.line, t,
                                               w.depth + 1, w.dropped | here_drops, b, w.obj))
                ta = prog.acq[t]
                if ta and len(acq) < MAX_ACQ and not released:
                    here_drops = drops.get((c.line, c.col), _EMPTY) if drops else _EMPTY
                    for cls, a in ta.items():
                        b = bind(a.needs, c) if a.depth < MAX_DEPTH else None
                        if b is None:
                            continue
                        old = acq.get(cls)
                        if old is None or (old.needs and not b):
                            acq[cls] = Acq(a.kind, c.line, t, a.depth + 1, a.trylock,
                                           a.api, a.dropped | here_drops, b)
                            if len(acq) >= MAX_ACQ:
                                break
        for k, sl in cands.items():
            sparam[k] = _pick_gfp_sleep(k, sl, fn, self.tests)
        if (acq == prog.acq[f] and sleep == prog.sleep[f] and sparam == prog.sleep_param[f]
                and tuple(wl) == prog.waits[f]):
            return False
        prog.acq[f], prog.sleep[f] = acq, sleep
        prog.sleep_param[f], prog.waits[f] = sparam, tuple(wl)
        return True

    def component(self, comp: list[int]) -> None:
        """The summaries of one strongly connected component (sorted ids, members reset),
        once every component it calls is done."""
        prog = self.prog
        if len(comp) == 1:
            f = comp[0]
            if self.summarise(f) and f in prog.succ[f]:
                self.summarise(f)  # a function calling itself sees its own summary once
            return
        # a cycle: recompute a member only when one of its callees changed (bounded)
        members = set(comp)
        work = deque(reversed(comp))
        queued = set(comp)
        budget = 8 * len(comp)
        while work and budget > 0:
            f = work.pop()
            queued.discard(f)
            budget -= 1
            if self.summarise(f):
                for caller, _ in prog.callers[f]:
                    if caller in members and caller not in queued:
                        queued.add(caller)
                        work.appendleft(caller)


def _own_drops(prog: Program, s: Sleep, held: tuple[tuple[str, str, int], ...]) -> Sleep:
    """A callee's sleep as its caller's summary records it: the locks the callee let go of
    that this function took itself are not its caller's; the caller locks this function
    has let go of at the call are."""
    mine = {prog.canon(c) for c, k, _ in held if k[:1] != "-"}
    gone = frozenset(prog.canon(c) for c, k, _ in held if k[:1] == "-")
    dropped = (s.dropped - mine) | gone
    return s if dropped == s.dropped else s._replace(dropped=dropped)


def _pick_gfp_sleep(k: int, cands: list[Sleep], fn: Function, tests: frozenset[str]) -> Sleep:
    """What a gfp_t parameter's sleep is, from the calls it reaches.  A function that tests
    the mask itself (`if (gfpflags_allow_blocking(gfp))`) and lets go of a caller's lock
    around one of those calls blocks there only: the other calls get a mask that cannot
    block (mas_nomem).  Otherwise a call made with the caller's locks kept speaks for it."""
    kept = [s for s in cands if not s.dropped]
    gone = [s for s in cands if s.dropped]
    if gone and k < len(fn.params) and any(
            c.callee in tests and c.args and c.args[0].strip() == fn.params[k][0]
            for c in fn.calls):
        return gone[0]
    return (kept or gone)[0]


def chooses_sleep(prog: Program, fn: Function) -> bool:
    """fn takes a parameter by which its caller chooses whether it may sleep."""
    return any(p and prog.conditional_re.match(p) for p, _ in fn.params)


def _summaries(prog: Program) -> None:
    n = len(prog.funcs)
    prog.acq = [{} for _ in range(n)]
    prog.sleep = [None] * n
    prog.sleep_param = [{} for _ in range(n)]
    prog.waits = [() for _ in range(n)]
    prog.conditional_sleep = [chooses_sleep(prog, fn) for fn in prog.funcs]
    prog.comps = _sccs(n, prog.succ)
    sm = _Summariser(prog)
    for comp in prog.comps:
        sm.component(comp)


def _irqs_off_entry(prog: Program) -> None:
    """Functions only ever called with IRQs off (every caller site has them off, or its
    caller is such a function), or run by a framework with IRQs off.  A greatest fixpoint."""
    n = len(prog.funcs)
    # an ops-table method counts by the typed calls through its field; a callback handed to
    # a framework has callers we cannot see
    cand = [bool(prog.callers[i]) and i not in prog.registered for i in range(n)]
    for i, fn in enumerate(prog.funcs):
        if fn.irqs_off:
            prog.irqs_off_entry.add(i)
    for i in prog.irqs_off_entry:
        cand[i] = True
    hard = {f for f, k in prog.context.items() if k == "hardirq"}
    for f in hard:
        cand[f] = True
    fixed = set(prog.irqs_off_entry) | hard
    # the greatest fixpoint by a worklist: a function that drops out is re-examined in the
    # functions it calls
    work = [i for i in range(n - 1, -1, -1) if cand[i] and i not in fixed]
    while work:
        i = work.pop()
        if not cand[i] or i in fixed:
            continue
        for caller, si in prog.callers[i]:
            if not cand[caller] and (caller, si) not in prog.irq_calls:
                cand[i] = False
                work.extend(t for t in prog.fwd[i] if cand[t] and t not in fixed)
                break
    prog.irqs_off_entry = {i for i in range(n) if cand[i]}


def reach(prog: Program, roots: list[int]) -> dict[int, int]:
    """Functions reachable from roots through resolved calls: id -> the root it came from."""
    out: dict[int, int] = {}
    for r in roots:
        if r in out:
            continue
        out[r] = r
        work = [r]
        while work:
            f = work.pop()
            for s in prog.sites[f]:
                if s.propagates:
                    for t in s.callees:
                        if t not in out:
                            out[t] = r
                            work.append(t)
    return out


def program_of(analysis: Any) -> Program:
    """The analysis' program model, built on first use."""
    prog = getattr(analysis, "program", None)
    if prog is None:
        prog = build(analysis.facts or [], analysis.kb)
        analysis.program = prog
    return prog
