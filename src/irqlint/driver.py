"""The analysis driver.

Algorithm (one direction, no back-and-forth):

1. discover .c/.h files under the given paths (sorted);
2. phase 0, per file (workers): read, refuse what cannot be analysed (binary, not UTF-8, too
   large: skipped, counted, reported in one line), hash, collect lock-wrapper macros; a stat
   index answers for files unchanged since the last run without reading them;
3. join the macros into one Wrappers table (its digest joins the cache key);
4. phase 1, per file (workers): facts from the cache, or normalise + parse + extract (IR, lock
   engine, lock-imbalance diagnostics) and store them;
5. the program phase: rules run over all files' facts and return findings, sorted.

Results never depend on the job count: workers return per-file values that the main process
puts in path order before anything global happens.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import snapshot
from .cache import Cache, code_id, content_hash
from .errors import InputError
from .extract import extract_file
from .ir import FileFacts, FileSummary, MacroDef
from .kb import KnowledgeBase, tree_layouts
from .macros import Wrappers, collect_macros
from .progress import Progress
from .sources import Layout, check_source, discover, find_tree


@dataclass(slots=True)
class Options:
    jobs: int = 0
    cache_dir: str | None = None
    profile: str = "auto"
    exclude: list[str] = field(default_factory=list)
    max_file_size: int = 16 * 1024 * 1024
    kb_extra: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    full_facts: bool = False  # load every file's full facts (rules that need more than summaries)
    families: frozenset[str] = frozenset()  # optional fact families the enabled rules read


@dataclass(slots=True)
class Analysis:
    files: list[FileSummary]
    facts: list[FileFacts] | None  # only when Options.full_facts
    skipped: list[tuple[str, str]]
    kb: KnowledgeBase
    wrappers: Wrappers
    seconds: dict[str, float]
    cached: int = 0
    program: Any = None  # the program model, built by the first whole-program rule
    filtered: dict[str, int] = field(default_factory=dict)  # findings hidden after the rules
    # the files that may hold suppression comments (None: not known, look in all)
    marked: frozenset[str] | None = None
    left_out: dict[str, int] = field(default_factory=dict)  # userspace directory -> C files


@contextmanager
def gc_paused() -> Iterator[None]:
    """Loading facts and building the program allocate tens of millions of long-lived tuples
    that are never garbage; the cyclic collector would rescan them on every full pass (loading
    is 4x slower with it, measured).  Pause it, then freeze what was built so later passes
    skip it."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


# --- worker side ----------------------------------------------------------------------------
_W: dict[str, Any] = {}


def _init_worker(kb: KnowledgeBase, wrappers: Wrappers | None, max_size: int,
                 families: frozenset[str] = frozenset()) -> None:
    _W["kb"], _W["wrappers"], _W["max"], _W["families"] = kb, wrappers, max_size, families


def _phase0(path: str) -> tuple[str, int, int, str, list[MacroDef], str | None, bool]:
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            data = f.read(_W["max"] + 1)
    except OSError as exc:
        return path, 0, 0, "", [], f"unreadable ({exc.strerror})", False
    reason = check_source(data, _W["max"])
    if reason is not None:
        return path, st.st_size, st.st_mtime_ns, "", [], reason, False
    # `marked`: the file may hold a suppression comment (only those are read again for them)
    return (path, st.st_size, st.st_mtime_ns, content_hash(data), collect_macros(path, data),
            None, SUPPRESSION_MARK in data)


def _phase1(job: tuple[str, str, str | None, bool]
            ) -> tuple[str, FileSummary | str, FileFacts | None]:
    path, key, cache_root, full = job
    try:
        with open(path, "rb") as f:
            data = f.read()
        facts = extract_file(path, data, _W["kb"], _W["wrappers"], _W["families"])
    except RecursionError:
        return path, "too deeply nested for the parser", None
    except Exception as exc:  # one bad file must not end a whole-tree run ...
        if os.environ.get("IRQLINT_STRICT"):  # ... but the test suite wants to see it
            raise
        return path, f"internal error ({type(exc).__name__}: {exc}); please report it", None
    summary = FileSummary.of(facts)
    if cache_root:
        Cache(cache_root).put(key, summary, facts)
        # the main process reads the facts back from the cache once the workers are done:
        # pickling them down the pipe too would cost the workers a second serialisation and
        # the main process a third CPU's worth of unpickling while they run
        return path, summary, None
    return path, summary, facts if full else None


def _map(fn: Any, items: list[Any], jobs: int, init_args: tuple[Any, ...],
         progress: Progress) -> list[Any]:
    if jobs <= 1 or len(items) < 8:
        _init_worker(*init_args)
        out = []
        for it in items:
            out.append(fn(it))
            progress.tick()
        return out
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(jobs, initializer=_init_worker, initargs=init_args) as pool:
        out = []
        chunk = max(1, min(64, len(items) // (jobs * 16)))
        for r in pool.imap_unordered(fn, items, chunksize=chunk):
            out.append(r)
            progress.tick()
    return out


def _load_back(job: tuple[str, str, str | None, bool]) -> FileFacts | None:
    """The full facts of a file a worker extracted, read back from the cache."""
    f, key, root, _ = job
    hit = Cache(root).get(key, True)
    if hit is not None and isinstance(hit[1], FileFacts):
        return hit[1]
    # the entry could not be written or read back: extract it here
    return _phase1((f, key, None, True))[2]


def detect_profile(paths: list[str], layouts: dict[str, list[Layout]]) -> str:
    """The profile of the first known tree a path is in; Linux when none is."""
    for p in paths:
        tree = find_tree(p, layouts)
        if tree is not None:
            return tree.profile
    return "linux"


_INDEX_FIELDS = 6  # size, mtime, content hash, macros, why skipped, marked
SUPPRESSION_MARK = b"irqlint:"


@dataclass(slots=True)
class Plan:
    """What phase 0 decided: the files to analyse with their cache keys, what was skipped, the
    knowledge and lock wrappers in force, and a digest of all of it (the whole-tree key)."""

    keys: list[tuple[str, str]]  # (path, cache key), in path order
    skipped: list[tuple[str, str]]
    kb: KnowledgeBase
    wrappers: Wrappers
    seconds: dict[str, float]
    jobs: int
    show: bool
    digest: str
    marked: frozenset[str] = frozenset()  # files that may hold suppression comments
    left_out: dict[str, int] = field(default_factory=dict)  # see sources.discover


def load_incremental(plan: Plan, opts: Options) -> Analysis | None:
    """The last whole run's program model redone for the files changed since (see
    snapshot.py), or None: no model to start from, too much changed, or a change that reaches
    further than the files it is in.  Only the changed files' facts are read."""
    cache = Cache(opts.cache_dir)
    if cache.root is None:
        return None
    t = time.perf_counter()
    ckey = snapshot.config_key(plan.kb, plan.wrappers.digest)
    with gc_paused():
        snap = snapshot.load(cache, ckey)
    if snap is None:
        return None
    changed = snapshot.changed_files(snap, plan.keys)
    plan.seconds["snapshot-load"] = time.perf_counter() - t
    if not changed or len(changed) > snapshot.MAX_CHANGED:
        return None
    sub = Plan([plan.keys[i] for i in changed], [], plan.kb, plan.wrappers, plan.seconds,
               plan.jobs, False, plan.digest)
    part = load(sub, opts)
    if part.skipped or part.facts is None:
        return None  # a changed file that cannot be analysed any more
    t = time.perf_counter()
    with gc_paused():
        prog = snapshot.patch(snap, plan.kb, plan.wrappers, cache,
                              {ff.path: ff for ff in part.facts})
    if prog is None:
        return None
    plan.seconds["snapshot-patch"] = time.perf_counter() - t
    files: list[FileSummary] = snap["files"]
    pos = {f.path: i for i, f in enumerate(files)}
    for s in part.files:
        files[pos[s.path]] = s
    skipped = sorted(plan.skipped + snap["skipped"])
    a = Analysis(files, None, skipped, plan.kb, plan.wrappers, plan.seconds,
                 cached=len(files) - len(part.files) + part.cached, marked=plan.marked,
                 left_out=plan.left_out)
    a.program = prog
    return a


def save_snapshot(plan: Plan, opts: Options, a: Analysis) -> None:
    """Keep the program model of a whole build for the next run's load_incremental()."""
    if a.program is None or a.facts is None:
        return
    t = time.perf_counter()
    mine = {s for s, _ in plan.skipped}
    with gc_paused():
        snapshot.save(Cache(opts.cache_dir), snapshot.config_key(plan.kb, plan.wrappers.digest),
                      plan.keys, a.files, a.facts, a.program,
                      [x for x in a.skipped if x[0] not in mine])
    a.seconds["snapshot-save"] = time.perf_counter() - t


def analyse(paths: list[str], opts: Options) -> Analysis:
    return load(prepare(paths, opts), opts)


def prepare(paths: list[str], opts: Options) -> Plan:
    """Discover, refuse what cannot be analysed, collect lock wrappers, key every file."""
    t0 = time.perf_counter()
    for p in paths:
        if not os.path.exists(p):
            raise InputError(f"{p}: no such file or directory")
    layouts = tree_layouts(opts.kb_extra)
    profile = detect_profile(paths, layouts) if opts.profile == "auto" else opts.profile
    kb = KnowledgeBase.load(profile, opts.kb_extra)
    files, left_out = discover(paths, opts.exclude, {profile: layouts.get(profile, [])})
    if not files:
        raise InputError(f"no C files (.c, .h) under {' '.join(paths)}")
    jobs = opts.jobs or os.cpu_count() or 1
    cache = Cache(opts.cache_dir)
    index = cache.load_index()
    seconds: dict[str, float] = {"discover": time.perf_counter() - t0}
    explicit = {os.path.normpath(p) for p in paths if os.path.isfile(p)}

    # phase 0
    t = time.perf_counter()
    rows: dict[str, tuple[Any, ...]] = {}
    todo = []
    for f in files:
        ent = index.get(os.path.abspath(f))
        if ent is not None and len(ent) == _INDEX_FIELDS:
            try:
                st = os.stat(f)
            except OSError:
                todo.append(f)
                continue
            if (st.st_size, st.st_mtime_ns) == ent[0:2]:
                rows[f] = (f, *ent)
                continue
        todo.append(f)
    show = opts.progress and sys.stderr.isatty()
    with Progress("reading", len(todo), show) as prog:
        for r in _map(_phase0, todo, jobs, (kb, None, opts.max_file_size), prog):
            rows[r[0]] = r
    skipped: list[tuple[str, str]] = []
    macros: list[MacroDef] = []
    usable: list[tuple[str, str]] = []
    marked: set[str] = set()
    for f in files:
        _, size, mtime, chash, mdefs, reason, mark = rows[f]
        index[os.path.abspath(f)] = (size, mtime, chash, mdefs, reason, mark)
        if mark:
            marked.add(f)
        if reason is not None:
            if f in explicit:
                raise InputError(f"{f}: {reason}")
            skipped.append((f, reason))
            continue
        macros.extend(mdefs)
        usable.append((f, chash))
    if not usable:
        raise InputError(f"no analysable C files under {' '.join(paths)} "
                         f"({len(skipped)} skipped: {skipped[0][1]})")
    # lock wrappers, and macros that give a lock a lockdep class of its own
    wrappers = Wrappers.build(macros, set(kb.lock_apis) | kb.names("lockdep_keys"))
    cache.save_index(index)
    fams = ",".join(sorted(opts.families))
    keys = [(f, cache.key(f, chash, kb.extract_digest, wrappers.digest, fams))
            for f, chash in usable]
    h = hashlib.blake2b(digest_size=16)
    for part in (code_id(), kb.digest, wrappers.digest, *(k for _, k in keys)):
        h.update(part.encode())
        h.update(b"\0")
    seconds["read+macros"] = time.perf_counter() - t
    return Plan(keys, skipped, kb, wrappers, seconds, jobs, show, h.hexdigest(),
                frozenset(marked), left_out)


def load(plan: Plan, opts: Options) -> Analysis:
    """Phase 1: every file's facts, from the cache or extracted by the workers."""
    kb, wrappers, seconds, jobs, show = plan.kb, plan.wrappers, plan.seconds, plan.jobs, plan.show
    skipped = list(plan.skipped)
    cache = Cache(opts.cache_dir)
    t = time.perf_counter()
    summaries: dict[str, FileSummary] = {}
    facts: dict[str, FileFacts] = {}
    full = opts.full_facts
    jobs1 = []
    with gc_paused():
        for f, key in plan.keys:
            hit = cache.get(key, full)
            if hit is not None and isinstance(hit[0], FileSummary) and \
                    (not full or isinstance(hit[1], FileFacts)):
                summaries[f] = hit[0]
                if full:
                    facts[f] = hit[1]
            else:
                jobs1.append((f, key, cache.root, full))
    seconds["cache-load"] = time.perf_counter() - t
    cached = len(summaries)
    t = time.perf_counter()
    init = (kb, wrappers, opts.max_file_size, opts.families)
    # the full facts a worker stored are read back as soon as it is done with the file:
    # this process has nothing else to do while the workers run
    back = {job[0]: job for job in jobs1} if full else {}
    waited = 0.0
    _init_worker(*init)  # what _load_back needs if it has to extract a file itself
    with Progress("analysing", len(jobs1), show) as prog, gc_paused():
        for path, res, ff in _map(_phase1, jobs1, jobs, init, prog):
            if isinstance(res, str):
                skipped.append((path, res))
                continue
            summaries[path] = res
            if ff is None and path in back:
                w = time.perf_counter()
                ff = _load_back(back[path])
                waited += time.perf_counter() - w
            if ff is not None:
                facts[path] = ff
    seconds["extract"] = time.perf_counter() - t - waited
    if full:
        t = time.perf_counter()
        with gc_paused():
            for job in jobs1:
                if job[0] in summaries and job[0] not in facts:
                    got = _load_back(job)
                    if got is not None:
                        facts[job[0]] = got
        seconds["facts-load"] = time.perf_counter() - t + waited
    ordered = [summaries[f] for f, _ in plan.keys if f in summaries]
    ordered_facts = [facts[f] for f, _ in plan.keys if f in facts] if full else None
    skipped.sort()
    return Analysis(ordered, ordered_facts, skipped, kb, wrappers, seconds, cached,
                    marked=plan.marked, left_out=plan.left_out)
