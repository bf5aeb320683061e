"""Per-file facts for inconsistent-locking: which writes touch shared state, and the locks
the lock-state engine saw around them.

A write is *shared* unless it goes to a local object (`struct foo tmp; tmp.a = 1`, a local
array) or through a local pointer whose every assignment in the function is an allocator's
return value (the object is not published yet).  Shared writes become events of the lock
engine (``lockstate``), which records, per write, the lock classes held on every path to it,
those held on some paths only, and the caller locks released before it.  The program phase
(``locksets``) adds what callers hold.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tree_sitter import Node

from .ir import NOT_LOCKS, Sharing, WriteLocks
from .lockexpr import lock_class, normalise

if TYPE_CHECKING:
    from .extract import FileContext, _PendingFunction
    from .kb import KnowledgeBase

# `p = f(`, `p = (struct foo *)f(`, `p = &x`, `p = (struct foo *)buf`: the name assigned,
# `&` if any, the first word after `=` (and a cast), `(` if it is a call
_ASSIGN = re.compile(rb"(?<![\w.>])([A-Za-z_]\w*)\s*=(?!=)\s*"
                     rb"(?:\(\s*(?:const\s+)?(?:struct\s+)?\w+\s*\*+\s*\)\s*)?(&?)\s*(\w*)\s*(\(?)")
_BASE = re.compile(r"^[\s(*&]*([A-Za-z_]\w*)")


@lru_cache(maxsize=8)
def _patterns(kb: KnowledgeBase) -> tuple[re.Pattern[str],
                                          list[tuple[re.Pattern[bytes], str | None]],
                                          re.Pattern[bytes] | None, re.Pattern[bytes]]:
    sec = kb.section("sharing")
    alloc = re.compile(sec["allocator_pattern"])
    # a pattern whose group 1 is the lock, or {pattern, lock} for a fixed lock class
    asserts = [(re.compile(a.encode()), None) if isinstance(a, str)
               else (re.compile(a["pattern"].encode()), a["lock"])
               for a in sec["held_assertions"]]
    words = sec["init_sections"]
    section = re.compile(rb"\b(" + b"|".join(w.encode() for w in words) + rb")\b") \
        if words else None
    initcalls = re.compile(sec["initcalls"].encode(), re.MULTILINE)
    return alloc, asserts, section, initcalls


def _locals_and_fresh(pf: _PendingFunction, decls: list[Node], text: bytes,
                      alloc: re.Pattern[str]) -> tuple[set[str], set[str], set[str]]:
    """Local objects (not pointers, not static), local pointers only ever aimed at a local
    object (`p = (struct cmd *)buf`), and local pointers only ever assigned a fresh
    allocation."""
    local: set[str] = set()
    pointers: set[str] = set()
    for d in decls:
        if any(c.type == "storage_class_specifier" for c in d.children):
            continue  # static / extern inside a function: shared
        for dd in d.children_by_field_name("declarator"):
            n: Node | None = dd
            ptr = False
            while n is not None and n.type not in ("identifier", "field_identifier"):
                if n.type == "pointer_declarator":
                    ptr = True
                nxt = n.child_by_field_name("declarator")
                n = nxt
            if n is None or n.text is None:
                continue
            name = n.text.decode("utf-8", "replace")
            (pointers if ptr else local).add(name)
    fresh: dict[str, bool] = {}
    aimed: dict[str, bool] = {}  # pointer -> only ever aimed at a local object
    params = {p for p, _ in pf.params}
    for m in _ASSIGN.finditer(text, pf.body.start_byte, pf.body.end_byte):
        var = m.group(1).decode()
        if var not in pointers or var in params:
            continue
        word = m.group(3).decode()
        is_alloc = bool(m.group(4)) and bool(alloc.match(word))
        fresh[var] = fresh.get(var, True) and is_alloc
        aimed[var] = aimed.get(var, True) and not m.group(4) and word in local
    return (local, {v for v, ok in aimed.items() if ok},
            {v for v, ok in fresh.items() if ok})


def shared_writes(pf: _PendingFunction, ctx: FileContext, lhs_nodes: list[Node],
                  decls: list[Node]) -> None:
    """Mark the function's writes: `pf.shared_writes` (start byte, line) for the lock engine,
    `pf.write_flags` line -> "l" (local) / "f" (fresh object)."""
    if not lhs_nodes:
        return
    alloc, _, _, _ = _patterns(ctx.kb)
    local, aimed, fresh = _locals_and_fresh(pf, decls, ctx.text, alloc)
    for lhs in lhs_nodes:
        line = lhs.start_point[0] + 1
        txt = lhs.text.decode("utf-8", "replace") if lhs.text is not None else ""
        m = _BASE.match(txt)
        base = m.group(1) if m else ""
        rest = txt[m.end():].replace(" ", "") if m else ""
        if lhs.type != "identifier" and (
                (base in local and "->" not in rest)
                or (base in aimed and rest.startswith("->") and "->" not in rest[2:])):
            pf.write_flags[line] = "l"
            continue
        if base in fresh:
            pf.write_flags[line] = "f"
            continue
        pf.shared_writes.append((lhs.start_byte, line))
    pf.shared_writes.sort()


def write_locks(wat: dict[int, dict[int, Any]], imprecise: bool, held_status: frozenset[str]
                ) -> dict[int, WriteLocks]:
    """Per written line, from the lock states that reached it: held on every path, on some
    paths only, and caller locks released on some path."""
    out: dict[int, WriteLocks] = {}
    for line, states in wat.items():
        sets: list[set[tuple[str, str]]] = []
        dropped: set[str] = set()
        unsure = imprecise
        for locks in states.values():
            s = set()
            for e in locks:
                if e[3] in NOT_LOCKS or e[6].endswith("*"):
                    continue
                if e[1] in held_status:
                    s.add((e[6], e[3]))
                elif e[1] == "U":
                    dropped.add(e[6])
                elif e[1] == "?":
                    unsure = True  # a helper may have taken it (lock_params()): unknown
            sets.append(s)
        if not sets:
            continue
        every = set(sets[0])
        some: set[tuple[str, str]] = set()
        for s in sets:
            every &= s
            some |= s
        some -= every
        if every or some or dropped or unsure:
            out[line] = WriteLocks(line, tuple(sorted(every)), tuple(sorted(some)),
                                   tuple(sorted(dropped)), "?" if unsure else "")
    return out


def partial_at(at: dict[tuple[int, int], dict[int, Any]], held_status: frozenset[str]
               ) -> tuple[tuple[int, int, tuple[tuple[str, str], ...]], ...]:
    """Calls reached with a lock on some paths but not all: their held sets say "some path"."""
    out = []
    for (line, col), states in sorted(at.items()):
        sets = [{(e[6], e[3]) for e in locks if e[1] in held_status and e[3] not in NOT_LOCKS}
                for locks in states.values()]
        if len(sets) < 2:
            continue
        every = set(sets[0])
        for s in sets[1:]:
            every &= s
        part = set().union(*sets) - every
        if part:
            out.append((line, col, tuple(sorted(part))))
    return tuple(out)


def facts(pf: _PendingFunction, ctx: FileContext, source: bytes) -> Sharing:
    """The function's Sharing record (empty for most functions)."""
    _, asserts, section_re, initcall_re = _patterns(ctx.kb)
    if ctx.initcalls is None:
        ctx.initcalls = frozenset(m.group(1).decode() for m in initcall_re.finditer(ctx.text))
    wl = dict(pf.write_held)
    shared = {ln for _, ln in pf.shared_writes}
    for line, f in pf.write_flags.items():
        if line not in shared:  # a line with a shared write speaks for that write
            wl[line] = WriteLocks(line, flags=f)
    entry: set[str] = set()
    text = ctx.text
    for pat, fixed in asserts:
        for m in pat.finditer(text, pf.body.start_byte, pf.body.end_byte):
            if fixed is not None:
                entry.add(fixed)
                continue
            expr = normalise(m.group(1).decode("utf-8", "replace"))
            entry.add(lock_class(expr, pf.env, ctx.globals_, ctx.structs, ctx.path))
    for kind, expr in pf.annotations:
        if kind == "must_hold":
            entry.add(lock_class(expr, pf.env, ctx.globals_, ctx.structs, ctx.path))
    section = ""
    if section_re is not None and source:
        sm = section_re.search(source, pf.node.start_byte, pf.body.start_byte)
        section = sm.group(1).decode() if sm else ""
    if not section and pf.name in ctx.initcalls:
        section = "initcall"
    if not wl and not entry and not section and not pf.partial_at:
        return Sharing()
    return Sharing(tuple(wl[k] for k in sorted(wl)), pf.partial_at, tuple(sorted(entry)),
                   section)
