"""Locks held on entry to functions, and the write paths of shared state.

Read by inconsistent-locking; built on the program model (``program``), never on syntax.

1. Init paths: functions in an init/exit section (nothing else runs yet: none of their
   writes count), and functions named like a set-up or tear-down function or stored in such
   an ops field (the object they set up is not shared yet, or any more: their writes of
   struct fields do not count, their writes of globals do); also functions only ever called
   from such functions.
2. Entry locks: the lock classes held on entry to a function on every path the program
   shows: the intersection over its callers' call sites (held on every path there, plus what
   the caller itself was entered with, minus what it let go), computed as a greatest
   fixpoint.  A function with callers we cannot see (a callback, an ops method, an entry
   point, or nothing in the tree calls it) is entered with nothing, except what a framework
   holds for it (kb contexts) or what it asserts (lockdep_assert_held, __must_hold).
3. Write paths: each shared write, followed up into its callers (a few levels, a few
   callers each), so that a helper called under the lock from four places and without it
   from a fifth gives five paths, four protected and one not.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .ir import Function, WriteLocks
from .program import Program, _sccs, identified

Chain = tuple[tuple[int, int], ...]  # (caller, site index), from the top down
SECTION, SETUP = 2, 1  # init levels: an init/exit section; a set-up or tear-down function
_STRUCT_TARGET = re.compile(r"^[A-Za-z_]\w*::[A-Za-z_]")
# a file-static global (`path:name...`) may go through pointers; a bare name through `->`
# is as likely an untyped local pointer as a global
_GLOBAL_TARGET = re.compile(r"^(?:[\w./+-]+:[A-Za-z_]\w*(?:\[\]|(?:\.|->)[A-Za-z_]\w*)*"
                            r"|[A-Za-z_]\w*(?:\[\]|\.[A-Za-z_]\w*)*)$")
_NO_WRITE = WriteLocks(0)


def shared_target(target: str) -> bool:
    """A struct field class or a global, not an expression we could not type."""
    return bool(_STRUCT_TARGET.match(target) or _GLOBAL_TARGET.match(target))


class _Way(NamedTuple):
    """A way into a function: the calls from the top function down, the locks held on entry
    that way, whether it goes through a set-up/tear-down function, whether it starts in one."""

    chain: Chain
    entry: frozenset[str]
    via_setup: bool
    top_setup: bool


class Path(NamedTuple):
    """One way a shared write happens: the chain of calls from its top function, and the
    protecting lock classes held (on every path) when it does."""

    target: str
    fid: int  # the function with the write
    line: int
    chain: Chain
    held: frozenset[str]
    partial: frozenset[str]  # held on some paths to the write only: no protection
    sure: bool  # the lock engine kept the paths apart (no state cut, no parse error)

    @property
    def top(self) -> int:
        return self.chain[0][0] if self.chain else self.fid


@dataclass(slots=True)
class Locksets:
    prog: Program
    kinds: frozenset[str] = frozenset()
    init: list[int] = field(default_factory=list)  # SECTION, SETUP or 0
    unknown_callers: list[bool] = field(default_factory=list)
    opaque: list[bool] = field(default_factory=list)  # calls a lock helper we cannot follow
    learned: set[str] = field(default_factory=set)  # locks learnt as held around ops methods
    base: list[frozenset[str]] = field(default_factory=list)  # framework holds, assertions
    entry: list[frozenset[str]] = field(default_factory=list)
    max_fanin: int = 12
    max_up: int = 3
    max_paths: int = 32
    _paths: dict[tuple[int, int], list[_Way]] = field(default_factory=dict)
    _partial: dict[int, dict[tuple[int, int], frozenset[str]]] = field(default_factory=dict)

    # --- call sites ---------------------------------------------------------------------
    def site_held(self, f: int, si: int) -> tuple[frozenset[str], frozenset[str]]:
        """(protecting classes held on every path to the call, caller locks let go there)."""
        site = self.prog.sites[f][si]
        if not site.held:
            return frozenset(), frozenset()
        part = self._partial.get(f)
        if part is None:
            part = self._partial[f] = {
                (ln, col): frozenset(c for c, _ in p)
                for ln, col, p in self.prog.funcs[f].sharing.partial_at}
        some = frozenset(c for c, k, _ in site.held if k in self.kinds and identified(c))
        drop = frozenset(c for c, k, _ in site.held if k[:1] == "-")
        return some - part.get((site.call.line, site.call.col), frozenset()), drop

    def callers(self, f: int) -> Iterator[tuple[int, int]]:
        """Resolved callers that run once other CPUs can (not in an init section)."""
        for c, si in self.prog.callers[f]:
            if self.prog.sites[c][si].propagates and self.init[c] != SECTION:
                yield c, si

    # --- write paths --------------------------------------------------------------------
    def paths(self, f: int, depth: int = 0) -> list[_Way]:
        """The ways into f, each from its top function down."""
        key = (f, depth)
        got = self._paths.get(key)
        if got is not None:
            return got
        callers = list(self.callers(f))
        setup = self.init[f] == SETUP
        out: list[_Way] = []
        if depth >= self.max_up or len(callers) > self.max_fanin:
            out = [_Way((), self.entry[f], setup, setup)]
        else:
            if self.unknown_callers[f] or not callers:
                out.append(_Way((), self.base[f], setup, setup))
            for c, si in callers:
                held, drop = self.site_held(c, si)
                for w in self.paths(c, depth + 1):
                    out.append(_Way((*w.chain, (c, si)), ((w.entry | held) - drop) | self.base[f],
                                    w.via_setup or setup, w.top_setup))
                if len(out) > self.max_paths:
                    out = [_Way((), self.entry[f], setup, setup)]
                    break
        self._paths[key] = out
        return out

    def write_paths(self, target: str, f: int, wl: WriteLocks) -> list[Path]:
        held = frozenset(c for c, k in wl.held if k in self.kinds)
        partial = frozenset(c for c, k in wl.partial if k in self.kinds)
        drop = frozenset(wl.dropped)
        sure = "?" not in wl.flags and not self.opaque[f]
        # a set-up or tear-down function's object is not shared (yet, or any more): a field
        # written on a way through one does not count; a global, only when the whole way is
        # one (its top function sets up or tears down)
        field_ = "::" in target
        return [Path(target, f, wl.line, w.chain, (w.entry - drop) | held, partial,
                     sure and not any(self.opaque[c] for c, _ in w.chain))
                for w in self.paths(f)
                if not (w.via_setup if field_ else w.top_setup)]


def build(prog: Program) -> Locksets:
    sec = prog.kb.section("sharing")
    ls = Locksets(prog, frozenset(sec["protecting_kinds"]), max_fanin=sec["max_fanin"],
                  max_up=sec["max_up"], max_paths=sec["max_paths"])
    funcs = prog.funcs
    n = len(funcs)
    _init_paths(ls, sec)
    ls.unknown_callers = [
        i in prog.registered or i in prog.stored or i in prog.context
        or not any(prog.sites[c][si].propagates for c, si in prog.callers[i])
        for i in range(n)]
    ls.base = []
    for i, fn in enumerate(funcs):
        b = set(fn.sharing.entry_held)
        fw = prog.framework.get(i)
        if fw is not None and fw[1] in ls.kinds:
            b.add(fw[0])
        ls.base.append(frozenset(b))
    _entry_fixpoint(ls)
    if _ops_holds(ls):
        _entry_fixpoint(ls)
    ls.opaque = [_opaque(prog, i) for i in range(n)]
    return ls


def _ops_holds(ls: Locksets) -> bool:
    """An ops method (stored in a struct field) whose every call through that field that
    the program shows holds L is entered with L: the framework's lock, learnt from the
    framework's own code (snd_timer's core calls timer->hw.stop() under timer->lock)."""
    prog = ls.prog
    changed = False
    for f in sorted(prog.stored):
        if f in prog.registered or f in prog.context:
            continue
        acc: frozenset[str] | None = None
        for c, si in prog.callers[f]:
            if prog.sites[c][si].how not in ("typed", "wide") or ls.init[c] == SECTION:
                continue
            held, drop = ls.site_held(c, si)
            got = (ls.entry[c] | held) - drop
            acc = got if acc is None else acc & got
            if not acc:
                break
        if acc and not acc <= ls.base[f]:
            ls.learned |= acc - ls.base[f]
            ls.base[f] = ls.base[f] | acc
            changed = True
    return changed


def _opaque(prog: Program, f: int) -> bool:
    """f calls a lock helper the lock engine could not apply: not a known lock API, and not
    defined in f's file (a header's static inline such as uart_port_lock_irqsave(), another
    file's foo_lock()).  What f holds at its writes is then a guess."""
    lock_re = prog.kb.lock_function_re
    apis = prog.kb.lock_apis
    fn = prog.funcs[f]
    for s in prog.sites[f]:
        name = s.call.callee
        if name and name not in apis and lock_re.search(name) and not any(
                prog.funcs[t].file == fn.file for t in s.callees):
            return True
    return False


def _init_paths(ls: Locksets, sec: dict[str, Any]) -> None:
    prog = ls.prog
    name_re = re.compile(str(sec["init_function_pattern"]))
    fields = frozenset(sec["init_fields"])
    init = [SECTION if fn.sharing.section else SETUP if name_re.search(fn.name) else 0
            for fn in prog.funcs]
    for f, where in prog.stored.items():
        if not init[f] and any(w[0].rsplit("::", 1)[-1] in fields for w in where):
            init[f] = SETUP
    # only called from init paths (a least fixpoint: cycles stay out); a worklist from the
    # init functions down, counting for each callee the callers not yet known to be init, so
    # that a function with thousands of callers is not re-examined for each of them
    pending: dict[int, int] = {}
    low: dict[int, int] = {}
    work = [f for f in range(len(init)) if init[f]]
    while work:
        g = work.pop()
        for t in prog.succ[g]:  # each init function is popped once: one count per caller
            if init[t] or t in prog.registered or t in prog.stored:
                continue
            left = pending.get(t)
            if left is None:
                left = len({c for c, si in prog.callers[t] if prog.sites[c][si].propagates})
            left -= 1
            pending[t] = left
            low[t] = min(low.get(t, init[g]), init[g])
            if left == 0:
                init[t] = low[t]
                work.append(t)
    ls.init = init


def _entry_fixpoint(ls: Locksets) -> None:
    """Greatest fixpoint of entry locks, callers before callees; None stands for "all"."""
    prog = ls.prog
    n = len(prog.funcs)
    entry: list[frozenset[str] | None] = [
        ls.base[i] if ls.unknown_callers[i] else None for i in range(n)]
    order = [f for comp in reversed(_sccs(n, prog.succ)) for f in comp]
    todo = [f for f in reversed(order) if entry[f] is None]  # popped callers first
    queued = set(todo)
    while todo:
        f = todo.pop()
        queued.discard(f)
        acc: frozenset[str] | None = None
        for c, si in ls.callers(f):
            ec = entry[c]
            if ec is None:
                continue  # not known yet: "all", the identity of the intersection
            held, drop = ls.site_held(c, si)
            got = (ec | held) - drop
            acc = got if acc is None else acc & got
        if acc is None:
            continue
        new = acc | ls.base[f]
        if new != entry[f]:
            entry[f] = new
            for s in prog.sites[f]:
                if s.propagates:
                    for t in s.callees:
                        if not ls.unknown_callers[t] and t not in queued:
                            queued.add(t)
                            todo.append(t)
    ls.entry = [e if e is not None else ls.base[i] for i, e in enumerate(entry)]


Key = tuple[str, str]  # (target, scope)


def shared_writes(ls: Locksets) -> tuple[dict[Key, list[tuple[int, WriteLocks]]], set[Key]]:
    """(target, scope) -> its shared writes (function, lock facts), init paths and locals
    left out; and the targets written next to a memory barrier somewhere (a lockless
    protocol by design).  A struct field is compared within one directory (two drivers'
    `struct priv` are different structs, and lockdep classes are per init site too); a
    global is one."""
    out: dict[Key, list[tuple[int, WriteLocks]]] = {}
    lockless: set[Key] = set()
    barriers = frozenset(ls.prog.kb.section("sharing")["barriers"])
    for f, fn in enumerate(ls.prog.funcs):
        if not fn.field_writes:
            continue
        folder = os.path.dirname(fn.file)
        fenced = {ln for c in fn.calls if c.callee in barriers
                  for ln in (c.line - 1, c.line, c.line + 1)}
        if fenced:
            for w in fn.field_writes:
                if w.line in fenced:
                    lockless.add((w.target, folder if "::" in w.target else ""))
        if ls.init[f] == SECTION:
            continue
        by_line = _by_line(fn)
        seen: set[tuple[str, int]] = set()
        for w in fn.field_writes:
            if (w.target, w.line) in seen or not shared_target(w.target):
                continue
            seen.add((w.target, w.line))
            wl = by_line.get(w.line, _NO_WRITE)
            if "l" in wl.flags or "f" in wl.flags:
                continue
            if wl is _NO_WRITE:
                wl = WriteLocks(w.line)
            out.setdefault((w.target, folder if "::" in w.target else ""), []).append((f, wl))
    return out, lockless


def _by_line(fn: Function) -> dict[int, WriteLocks]:
    return {w.line: w for w in fn.sharing.writes}
