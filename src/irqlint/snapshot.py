"""Program snapshots: the last whole run's program model, redone for the few files that changed.

A one-line change in one driver of a 60,000-file tree changes the summaries of a handful of
functions; rebuilding the whole model for it (every file's facts unpickled, every call resolved,
every summary recomputed) costs minutes.  After a whole build the model is saved, compact and
as plain tuples: the functions without the facts only the build reads, the call sites with
something held (what the checkers walk), the summaries, the call graph and each file's share of
stored pointers and callbacks.  The next run with the same knowledge and lock wrappers loads
it, takes the changed files' new facts, and redoes (the call sites of any other function whose
summary must be redone are rebuilt from its file's cached facts, see _Sites):

1. their functions' call sites (resolved as a whole build resolves them), and the callers table;
2. the tree-wide tables of stored pointers and callbacks, then the contexts;
3. summaries: the changed functions' components of the call graph, then, callees first, the
   components whose callees' summaries came out different (a summary is a frozen value of
   its callees', so nothing else can change);
4. the functions only ever called with IRQs off (a greatest fixpoint, redone whole).

The result is the model a whole build of the new tree gives (tests compare the two).  Where a
change could reach further than that -- a function added, removed or renamed, a struct
definition, which functions a field holds, a lockdep key, a file added or gone -- it declines
and the caller builds the whole model, as it does for more than MAX_CHANGED changed files.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import pickle
from collections.abc import Iterator
from typing import Any

from .cache import Cache, code_id, discard
from .extract import extract_file
from .ir import Call, FileFacts, FileSummary, Function, LockEffect, LockOp, Sharing
from .kb import KnowledgeBase
from .macros import Wrappers
from .program import (
    Acq,
    Program,
    Site,
    Sleep,
    Wait,
    _contexts,
    _irqs_off_entry,
    _Linker,
    _sccs,
    _Summariser,
    add_calls,
    chooses_sleep,
    merge_links,
)

MAGIC = "irqlint-program-12"
_END = "end"  # the last pair's name: a file cut short is no snapshot
MAX_CHANGED = 64  # more changed files than this: a whole build is about as quick
# tables kept as they are (lists, dicts and tuples of plain values)
_PLAIN = ("callers", "succ", "fwd", "comps", "conditional_sleep", "keyed", "irq_calls",
          "paths", "links", "structs", "homes", "atomic_calls", "queued", "ordered", "loose")
_NO_EFFECT = LockEffect()


def config_key(kb: KnowledgeBase, wrappers_digest: str) -> str:
    """A model is only reused under the same irqlint, knowledge and lock wrappers."""
    return hashlib.blake2b(f"{MAGIC}\0{code_id()}\0{kb.digest}\0{wrappers_digest}".encode(),
                           digest_size=16).hexdigest()


def _lean(fn: Function) -> Function:
    """A function as the summaries read it: without what only the build reads."""
    return fn._replace(calls=(), field_writes=(), field_reads=(), fn_refs=(), registrations=(),
                       diagnostics=(), sharing=Sharing(), keyed=())


# Records are kept as plain tuples: pickle takes those at C speed, and named tuples at a few
# microseconds each (a whole-kernel model holds millions)
def _flat_fn(fn: Function, full: bool) -> tuple[Any, ...]:
    """What checkers read of a function; its lock operations, parameters and held sets only
    when a checker walks its sites (`full`), the rest comes back with its facts when a
    summary must be redone."""
    return (fn.name, fn.file, fn.line, fn.end_line, fn.static, fn.has_error, fn.error_hint,
            fn.irqs_off, None if fn.effect == _NO_EFFECT else tuple(fn.effect), fn.const_return,
            (fn.params, fn.annotations, tuple(map(tuple, fn.lock_ops)), fn.held, fn.objs)
            if full else None, fn.branch)


def _fn(t: tuple[Any, ...]) -> Function:
    name, file, line, end, static, err, hint, irqs_off, eff, const, full, branch = t
    params, ann, ops, held, objs = full or ((), (), (), (), ())
    return Function(name, file, line, end, static, params, ann, err, (),
                    tuple(LockOp._make(o) for o in ops), (), (), (), (),
                    LockEffect._make(eff) if eff else _NO_EFFECT, (), hint, held, irqs_off,
                    const_return=const, objs=objs, branch=branch)


def _flat_site(s: Site) -> tuple[Any, ...]:
    return tuple(s.call), s.held, s.callees, s.how


def _site(t: tuple[Any, ...]) -> Site:
    return Site(Call._make(t[0]), t[1], t[2], t[3])


def _shape(ff: FileFacts) -> str:
    """What of a file the rest of the model depends on beyond its function bodies: its
    functions' names in order, its struct definitions, its lockdep keys, the atomic
    markers it calls (kb sleep.json) and which work items it queues on which workqueues."""
    text = repr(([(fn.name, fn.static, fn.branch) for fn in ff.functions],
                 sorted((k, sorted(v.items())) for k, v in ff.structs.items()),
                 [fn.keyed for fn in ff.functions], ff.markers,
                 [sorted({(w, q) for _, w, q in fn.queues}) for fn in ff.functions]))
    return f"{len(ff.functions)}:{hashlib.blake2b(text.encode(), digest_size=16).hexdigest()}"


def _path(cache: Cache, ckey: str) -> str:
    assert cache.root is not None
    return os.path.join(cache.root, "program", ckey + ".pkl")


def save(cache: Cache, ckey: str, keys: list[tuple[str, str]], files: list[FileSummary],
         facts: list[FileFacts], prog: Program, skipped: list[tuple[str, str]]) -> None:
    """Keep the model of a whole build (one per configuration)."""
    if cache.root is None:
        return
    cache.write_all(_path(cache, ckey), _tables(ckey, keys, files, facts, prog, skipped))


def _tables(ckey: str, keys: list[tuple[str, str]], files: list[FileSummary],
            facts: list[FileFacts], prog: Program, skipped: list[tuple[str, str]]
            ) -> Iterator[Any]:
    """The header, then (name, table) pairs, each flattened only when it is written: the
    flat copies of the whole-kernel model never coexist."""
    yield MAGIC, ckey
    yield "keys", keys
    yield "files", files
    yield "skipped", skipped  # files the analysis could not take (phase 0's are the plan's)
    yield "shapes", [_shape(ff) for ff in facts]
    yield "funcs", [_flat_fn(fn, bool(h)) for fn, h in zip(prog.funcs, prog.held_sites,
                                                            strict=True)]
    yield "held_sites", [tuple(map(_flat_site, h)) if h else () for h in prog.held_sites]
    yield "acq", [tuple((c, tuple(a)) for c, a in d.items()) if d else () for d in prog.acq]
    yield "sleep", [tuple(x) if x is not None else None for x in prog.sleep]
    yield "sleep_param", [tuple((j, tuple(x)) for j, x in d.items()) if d else ()
                          for d in prog.sleep_param]
    yield "waits", [tuple(map(tuple, w)) if w else () for w in prog.waits]
    for k in _PLAIN:
        yield k, getattr(prog, k)
    yield _END, None


def load(cache: Cache, ckey: str) -> dict[str, Any] | None:
    if cache.root is None:
        return None
    path = _path(cache, ckey)
    value: dict[str, Any] = {}
    try:
        with open(path, "rb") as f:
            if pickle.load(f) != (MAGIC, ckey):
                raise ValueError("foreign snapshot")
            while True:
                name, table = pickle.load(f)
                if name == _END:
                    break
                value[name] = table
    except FileNotFoundError:
        return None
    except Exception:  # corrupt, cut short or foreign: a whole build replaces it
        discard(path)
        return None
    return value


def changed_files(snap: dict[str, Any], keys: list[tuple[str, str]]) -> list[int] | None:
    """Indices of the files whose content changed since the snapshot, or None when the set of
    files is not the same."""
    old = snap["keys"]
    if len(old) != len(keys) or any(a[0] != b[0] for a, b in zip(old, keys, strict=True)):
        return None
    return [i for i, (a, b) in enumerate(zip(old, keys, strict=True)) if a[1] != b[1]]


class _Sites:
    """Program.active of a snapshot's model: a file's call sites are rebuilt, as a whole build
    builds them, from its facts the first time one of its functions is asked for (its cached
    facts, or the file extracted again; a changed file's new facts)."""

    def __init__(self, prog: Program, link: _Linker, first: list[int],
                 key: dict[str, str], given: dict[str, FileFacts], cache: Cache,
                 wrappers: Wrappers) -> None:
        self.prog, self.link, self.first, self.key = prog, link, first, key
        self.given, self.cache, self.wrappers = given, cache, wrappers
        self.file_of: list[int] = []
        for k in range(len(first) - 1):
            self.file_of.extend([k] * (first[k + 1] - first[k]))
        self.sites: dict[int, tuple[Site, ...]] = {}

    def __getitem__(self, f: int) -> tuple[Site, ...]:
        got = self.sites.get(f)
        if got is None:
            self.load(self.file_of[f])
            got = self.sites[f]
        return got

    def facts(self, path: str) -> FileFacts:
        ff = self.given.get(path)
        if ff is None:
            hit = self.cache.get(self.key[path], True)
            ff = hit[1] if hit is not None and isinstance(hit[1], FileFacts) else None
        if ff is None:  # not in the cache any more: the same content gives the same facts
            with open(path, "rb") as fh:
                ff = extract_file(path, fh.read(), self.prog.kb, self.wrappers, frozenset())
        return ff

    def load(self, k: int) -> list[tuple[int, Function, tuple[Site, ...], tuple[Site, ...],
                                         list[int]]]:
        """File k's functions, sites, sites with something held, summary callees."""
        prog = self.prog
        ff = self.facts(prog.paths[k])
        memo: dict[str, tuple[int, ...]] = {}
        out = []
        for j, fn in enumerate(ff.functions):
            i = self.first[k] + j
            sites, active, held, nexts = self.link.sites(fn, memo)
            self.sites[i] = active
            prog.funcs[i] = _lean(fn)
            out.append((i, fn, sites, held, nexts))
        return out


def patch(snap: dict[str, Any], kb: KnowledgeBase, wrappers: Wrappers, cache: Cache,
          changed: dict[str, FileFacts]) -> Program | None:
    """The snapshot's model redone for the changed files' new facts; None when the change
    reaches further than that."""
    prog = Program(kb)
    for name in _PLAIN:
        setattr(prog, name, snap[name])
    paths: list[str] = prog.paths
    index = {p: k for k, p in enumerate(paths)}
    shapes = snap["shapes"]
    first = [0] * (len(paths) + 1)
    for k, shape in enumerate(shapes):
        first[k + 1] = first[k] + int(shape.split(":", 1)[0])
    if first[-1] != len(snap["funcs"]):
        return None
    todo = []
    for path, ff in changed.items():
        at = index.get(path)
        if at is None or _shape(ff) != shapes[at]:
            return None  # functions added, removed, renamed; structs; lockdep keys
        todo.append((at, ff))
    todo.sort(key=lambda t: t[0])

    prog.funcs = list(map(_fn, snap["funcs"]))
    prog.held_sites = [tuple(map(_site, h)) if h else () for h in snap["held_sites"]]
    prog.acq = [{c: Acq._make(a) for c, a in d} if d else {} for d in snap["acq"]]
    prog.sleep = [Sleep._make(x) if x is not None else None for x in snap["sleep"]]
    prog.sleep_param = [{j: Sleep._make(x) for j, x in d} if d else {}
                        for d in snap["sleep_param"]]
    prog.waits = [tuple(map(Wait._make, w)) if w else () for w in snap["waits"]]

    link = _Linker(prog.funcs, kb, prog.structs, prog.homes)
    for k, ff in todo:
        lk = link.links(ff, first[k])
        if lk.pairs() != prog.links[k].pairs():
            return None  # a field now holds other functions: calls through it elsewhere change
        prog.links[k] = lk
    for lk in prog.links:
        link.add_refs(lk)
    merge_links(prog, prog.links)

    sites = _Sites(prog, link, first, dict(snap["keys"]), dict(changed), cache, wrappers)
    prog.active = sites  # type: ignore[assignment]
    callers = prog.callers
    redo: set[int] = set()  # functions whose own facts changed
    callers_of: set[int] = set()  # functions whose callers must look again
    succ_changed = False
    for k, _ in todo:
        for i, fn, out, held, nexts in sites.load(k):
            for t in prog.fwd[i]:
                callers[t] = [x for x in callers[t] if x[0] != i]
            prog.irq_calls -= {x for x in prog.irq_calls if x[0] == i}
            prog.fwd[i] = add_calls(prog, i, out)
            prog.held_sites[i] = held
            if nexts != prog.succ[i]:
                prog.succ[i] = nexts
                succ_changed = True
            cond = chooses_sleep(prog, fn)
            if cond != prog.conditional_sleep[i]:
                prog.conditional_sleep[i] = cond
                callers_of.add(i)
            redo.add(i)

    _contexts(prog)
    if succ_changed:
        prog.comps = _sccs(len(prog.funcs), prog.succ)
    _resummarise(prog, redo, callers_of)
    _irqs_off_entry(prog)
    return prog


def _resummarise(prog: Program, redo: set[int], callers_of: set[int]) -> None:
    """Summaries of the changed functions' components, then of their callers' while they
    come out different; components in the order a whole build takes them (callees first)."""
    comp_of = [0] * len(prog.funcs)
    for ci, comp in enumerate(prog.comps):
        for f in comp:
            comp_of[f] = ci
    sm = _Summariser(prog)

    def notify(f: int, ci: int) -> None:
        for c, _ in prog.callers[f]:
            if comp_of[c] != ci:
                heapq.heappush(heap, comp_of[c])

    heap = sorted({comp_of[f] for f in redo})
    for f in callers_of:
        notify(f, comp_of[f])
    done: set[int] = set()
    while heap:
        ci = heapq.heappop(heap)
        if ci in done:
            continue
        done.add(ci)
        comp = prog.comps[ci]
        old = [(prog.acq[f], prog.sleep[f], prog.sleep_param[f], prog.waits[f]) for f in comp]
        for f in comp:
            sm.reset(f)
        sm.component(comp)
        for f, was in zip(comp, old, strict=True):
            if (prog.acq[f], prog.sleep[f], prog.sleep_param[f], prog.waits[f]) != was:
                notify(f, ci)
