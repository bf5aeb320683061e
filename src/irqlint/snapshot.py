"""Program snapshots: the last whole run's program model, redone for the few files that changed.

A one-line change in one driver of a 60,000-file tree changes the summaries of a handful of
functions; rebuilding the whole model for it (every file's facts unpickled, every call resolved,
every summary recomputed) costs minutes.  After a whole build the model is saved, compact: the
functions without the facts only the build reads, the call sites a summary or a checker reads,
the summaries, the call graph and each file's share of stored pointers and callbacks.  The next
run with the same knowledge and lock wrappers loads it, takes the changed files' new facts, and
redoes:

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

import bisect
import hashlib
import heapq
import os
import pickle
from typing import Any

from . import __version__
from .cache import Cache
from .ir import FileFacts, FileSummary, Function, Sharing
from .kb import KnowledgeBase
from .program import (
    Program,
    _contexts,
    _irqs_off_entry,
    _Linker,
    _sccs,
    _Summariser,
    chooses_sleep,
    merge_links,
)

MAGIC = "irqlint-program-1"
MAX_CHANGED = 64  # more changed files than this: a whole build is about as quick
# what a snapshot keeps of the model, beside the functions and the call sites
_TABLES = ("acq", "sleep", "sleep_param", "waits", "callers", "succ", "comps",
           "conditional_sleep", "keyed", "paths", "links", "structs", "active", "held_sites")


def config_key(kb: KnowledgeBase, wrappers_digest: str) -> str:
    """A model is only reused under the same irqlint, knowledge and lock wrappers."""
    return hashlib.blake2b(f"{MAGIC}\0{__version__}\0{kb.digest}\0{wrappers_digest}".encode(),
                           digest_size=16).hexdigest()


def _lean(fn: Function) -> Function:
    """A function as the checkers read it: without what only the build reads."""
    return fn._replace(calls=(), field_writes=(), field_reads=(), fn_refs=(), registrations=(),
                       diagnostics=(), sharing=Sharing())


def _shape(ff: FileFacts) -> tuple[tuple[tuple[str, bool], ...], str]:
    """What of a file the rest of the model depends on beyond its function bodies: its
    functions' names in order, its struct definitions and its lockdep keys."""
    names = tuple((fn.name, fn.static) for fn in ff.functions)
    rest = pickle.dumps((ff.structs, [fn.keyed for fn in ff.functions]), protocol=4)
    return names, hashlib.blake2b(rest, digest_size=16).hexdigest()


def _path(cache: Cache, ckey: str) -> str:
    assert cache.root is not None
    return os.path.join(cache.root, "program", ckey + ".pkl")


def save(cache: Cache, ckey: str, keys: list[tuple[str, str]], files: list[FileSummary],
         facts: list[FileFacts], prog: Program, skipped: list[tuple[str, str]]) -> None:
    """Keep the model of a whole build (one per configuration)."""
    if cache.root is None:
        return
    # the sites no summary and no lean checker reads (a call to a macro or a function outside
    # the tree, nothing held) are None: positions stay, Program.callers indexes them
    sites = []
    for out, active, held in zip(prog.sites, prog.active, prog.held_sites, strict=True):
        keep = {id(s) for s in active} | {id(s) for s in held}
        sites.append(tuple(s if id(s) in keep else None for s in out))
    value = {
        "keys": keys,
        "files": files,
        "skipped": skipped,  # files the analysis could not take (phase 0's are the plan's)
        "shapes": [_shape(ff) for ff in facts],
        "funcs": [_lean(fn) for fn in prog.funcs],
        "sites": sites,
        **{k: getattr(prog, k) for k in _TABLES},
    }
    cache._write(_path(cache, ckey), (MAGIC, ckey), value)


def load(cache: Cache, ckey: str) -> dict[str, Any] | None:
    if cache.root is None:
        return None
    path = _path(cache, ckey)
    try:
        with open(path, "rb") as f:
            magic, stored = pickle.load(f)
            if (magic, stored) != (MAGIC, ckey):
                raise ValueError("foreign snapshot")
            value: dict[str, Any] = pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception:  # corrupt or foreign: a whole build replaces it
        try:
            os.unlink(path)
        except OSError:
            pass
        return None
    return value


def changed_files(snap: dict[str, Any], keys: list[tuple[str, str]]) -> list[int] | None:
    """Indices of the files whose content changed since the snapshot, or None when the set of
    files is not the same."""
    old = snap["keys"]
    if len(old) != len(keys) or any(a[0] != b[0] for a, b in zip(old, keys, strict=True)):
        return None
    return [i for i, (a, b) in enumerate(zip(old, keys, strict=True)) if a[1] != b[1]]


def patch(snap: dict[str, Any], kb: KnowledgeBase, changed: dict[str, FileFacts]
          ) -> Program | None:
    """The snapshot's model redone for the changed files' new facts; None when the change
    reaches further than that."""
    prog = Program(kb)
    prog.funcs = snap["funcs"]
    prog.sites = snap["sites"]
    for name in _TABLES:
        setattr(prog, name, snap[name])
    paths: list[str] = prog.paths
    index = {p: k for k, p in enumerate(paths)}
    first = [0] * (len(paths) + 1)
    shapes = snap["shapes"]
    for k, (names, _) in enumerate(shapes):
        first[k + 1] = first[k] + len(names)
    if first[-1] != len(prog.funcs):
        return None
    todo = []
    for path, ff in changed.items():
        at = index.get(path)
        if at is None or _shape(ff) != shapes[at]:
            return None  # functions added, removed, renamed; structs; lockdep keys
        todo.append((at, ff))
    todo.sort(key=lambda t: t[0])

    link = _Linker(prog.funcs, kb, prog.structs)
    for k, ff in todo:
        lk = link.links(ff, first[k])
        if lk.pairs() != prog.links[k].pairs():
            return None  # a field now holds other functions: calls through it elsewhere change
        prog.links[k] = lk
    for lk in prog.links:
        link.add_refs(lk)
    merge_links(prog, prog.links)

    callers = prog.callers
    redo: set[int] = set()  # functions whose own facts changed
    callers_of: set[int] = set()  # functions whose callers must look again
    succ_changed = False
    for k, ff in todo:
        memo: dict[str, tuple[int, ...]] = {}
        for j, fn in enumerate(ff.functions):
            i = first[k] + j
            for si, site in enumerate(prog.sites[i]):
                if site is not None:
                    for t in site.callees:
                        callers[t].remove((i, si))
            out, active, held, nexts = link.sites(fn, memo)
            keep = {id(s) for s in active} | {id(s) for s in held}
            # None: a site no lean rule reads (see save())
            prog.sites[i] = tuple(s if id(s) in keep else None  # type: ignore[misc]
                                  for s in out)
            prog.active[i], prog.held_sites[i] = active, held
            for si, site in enumerate(out):
                for t in site.callees:
                    bisect.insort(callers[t], (i, si))
            if nexts != prog.succ[i]:
                prog.succ[i] = nexts
                succ_changed = True
            cond = chooses_sleep(prog, fn)
            if cond != prog.conditional_sleep[i]:
                prog.conditional_sleep[i] = cond
                callers_of.add(i)
            prog.funcs[i] = _lean(fn)
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
