"""Per-file front end: normalised source -> tree -> per-function IR and facts.

One parse per file (a second, with #else branches blanked, only when a conditional splits a
statement); every syntactic fact comes from a handful of tree-sitter queries run once over the
file and bucketed by function, so Python touches only the nodes that matter.  Functions that
contain lock operations get a control-flow graph and the lock-state engine (``lockstate``);
their frozen results (diagnostics, net lock effect) go into the cached ``Function`` record.
"""

from __future__ import annotations

import bisect
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tree_sitter import Node

from . import keyevents, lockstate, sharing
from .ir import (
    LAST_PUT,
    OR_MORE,
    WARNED,
    Call,
    FieldWrite,
    FileFacts,
    FnRef,
    Function,
    LockEffect,
    LockOp,
    Registration,
    Sharing,
    WriteLocks,
    field_param,
    need_key,
    zeroed,
)
from .kb import KnowledgeBase
from .lockexpr import base_type, lock_class, normalise
from .macros import Wrappers, function_macros
from .normalize import Normalized, blank_alternatives, branches, code_before, normalize
from .parse import captures, parse

_DEFINE_LOCK = re.compile(
    rb"(?:DEFINE_(?:SPINLOCK|RAW_SPINLOCK|MUTEX|RWLOCK|SEQLOCK|SEMAPHORE|"
    rb"RWSEM|STATIC_SRCU|SRCU|PER_CPU|SPINLOCK_IRQSAVE|IDR|IDA|XARRAY\w*)|DECLARE_RWSEM|LIST_HEAD)"
    rb"[ \t]*\((?:[^,()]*,)?[ \t]*(\w+)[ \t]*\)"
)

_KEYWORDS = frozenset(
    """if while for switch return sizeof do else case goto break continue typeof __typeof__
    defined __attribute__ asm __asm__ volatile int char long short unsigned signed void""".split()
)


@dataclass(slots=True)
class FileContext:
    """Per-file tables the function extraction reads."""

    path: str
    kb: KnowledgeBase
    wrappers: Wrappers
    text: bytes
    norm: Normalized
    keep_args: frozenset[str] = frozenset()  # calls whose argument texts are recorded
    paired: set[str] = field(default_factory=set)  # callbacks that return holding by contract
    globals_: dict[str, bool] = field(default_factory=dict)  # name -> static?
    structs: dict[str, dict[str, str]] = field(default_factory=dict)
    summaries: dict[str, tuple[tuple[str, ...], LockEffect]] = field(default_factory=dict)
    noreturn: dict[str, bool] = field(default_factory=dict)  # same-file functions: never return?
    source: bytes = b""  # the file as read (section annotations the normalizer blanked)
    initcalls: frozenset[str] | None = None  # module_init(f) & co. (``sharing``), on demand
    families: frozenset[str] = frozenset()  # optional fact families to extract (FAMILIES)
    # one scan of the file each, bucketed by function with bisect (a regex per body is slow)
    gfp_at: list[int] = field(default_factory=list)  # offsets of "gfp" in any case
    irqs_off_at: list[int] = field(default_factory=list)  # IRQs-off assertions
    reads_at: list[tuple[int, str]] = field(default_factory=list)  # ->field / .field
    local_macros: frozenset[str] = frozenset()  # function-like macros this file #defines
    alternatives: frozenset[str] = frozenset()  # functions the file also #defines as macros
    # start byte of a call -> its constant arguments by truth value (see Call.consts)
    consts_at: dict[int, tuple[tuple[int, bool | str], ...]] = field(default_factory=dict)
    # `x++`, `--x`, `&x` (identifiers only)
    changed: _Buckets = field(default_factory=lambda: _Buckets([]))
    bit_changes: frozenset[str] = frozenset()  # kb functions.json bit_sets and bit_clears
    forever_at: list[int] | None = None  # `for (;;)`, `while (1)`: on demand

    def scan(self) -> None:
        text = self.text
        self.gfp_at = _find_all(text.lower(), b"gfp")
        if any(w in text for w in self.kb.irqs_off_words):
            self.irqs_off_at = [m.start() for m in self.kb.irqs_off_re.finditer(text)]
        # function-like macros this file defines itself (`#define STORE(v) ...`)
        self.local_macros = frozenset(m.group(1).decode() for m in function_macros(self.source))
        if "sharing" in self.families:
            self.reads_at = [(m.start(), m.group(1).decode())
                             for m in _FIELD_READ.finditer(text)]


def _find_all(text: bytes, word: bytes) -> list[int]:
    out = []
    i = text.find(word)
    while i != -1:
        out.append(i)
        i = text.find(word, i + 1)
    return out


def within(offsets: list[int], start: int, end: int) -> bool:
    """Whether a sorted offset list has one in [start, end)."""
    i = bisect.bisect_left(offsets, start)
    return i < len(offsets) and offsets[i] < end


def _slice(pairs: list[tuple[int, Any]], start: int, end: int) -> list[Any]:
    lo = bisect.bisect_left(pairs, (start,))
    hi = bisect.bisect_left(pairs, (end,))
    return [v for _, v in pairs[lo:hi]]


def _text(n: Node) -> str:
    return n.text.decode("utf-8", "replace") if n.text is not None else ""


def _declarator_name(n: Node | None) -> tuple[str, bool]:
    """(identifier, is_pointer) of a declarator chain."""
    ptr = False
    while n is not None:
        t = n.type
        if t in ("identifier", "field_identifier", "type_identifier"):
            return _text(n), ptr
        if t == "pointer_declarator":
            ptr = True
        nxt = n.child_by_field_name("declarator")
        if nxt is None:
            for c in n.named_children:
                if c.type in ("identifier", "parenthesized_declarator", "pointer_declarator"):
                    nxt = c
                    break
        n = nxt
    return "", ptr


def _type_name(n: Node | None) -> str:
    if n is None:
        return ""
    if n.type in ("struct_specifier", "union_specifier"):
        name = n.child_by_field_name("name")
        return _text(name) if name is not None else ""
    return base_type(_text(n))


def _function_header(fn: Node) -> tuple[str, list[tuple[str, str]], Node | None]:
    d = fn.child_by_field_name("declarator")
    while d is not None and d.type != "function_declarator":
        d = d.child_by_field_name("declarator")
    if d is None:
        return "", [], None
    name, _ = _declarator_name(d.child_by_field_name("declarator"))
    params: list[tuple[str, str]] = []
    plist = d.child_by_field_name("parameters")
    if plist is not None:
        for p in plist.named_children:
            if p.type == "parameter_declaration":
                pname, _ = _declarator_name(p.child_by_field_name("declarator"))
                params.append((pname, _type_name(p.child_by_field_name("type"))))
    return name, params, d


def _collect_globals(root: Node, ctx: FileContext) -> None:
    text = ctx.norm.text
    for m in _DEFINE_LOCK.finditer(text):
        ls = text.rfind(b"\n", 0, m.start()) + 1
        prefix = text[ls : m.start()]
        if prefix.strip() in (b"", b"static"):  # a file-scope definition, not a use
            ctx.globals_[m.group(1).decode()] = prefix.strip() == b"static"
    for child in root.named_children:
        if child.type != "declaration":
            continue
        static = any(c.type == "storage_class_specifier" and _text(c) == "static"
                     for c in child.children)
        for d in child.children_by_field_name("declarator"):
            name, _ = _declarator_name(d)
            if name:
                ctx.globals_.setdefault(name, static)


def _collect_structs(nodes: list[Node], ctx: FileContext) -> None:
    for st in nodes:
        name_node = st.child_by_field_name("name")
        body = st.child_by_field_name("body")
        if name_node is None or body is None:
            continue
        fields: dict[str, str] = {}
        for fd in body.named_children:
            if fd.type != "field_declaration":
                continue
            ftype = _type_name(fd.child_by_field_name("type"))
            for d in fd.children_by_field_name("declarator"):
                fname, _ = _declarator_name(d)
                if fname and ftype:
                    fields[fname] = ftype
        if fields:
            ctx.structs.setdefault(_text(name_node), {}).update(fields)


def _error_culprit(text: bytes, offset: int) -> str:
    """The macro-looking name nearest before an ERROR node, for `stats`."""
    ls = text.rfind(b"\n", 0, offset) + 1
    le = text.find(b"\n", offset)
    line = text[ls : le if le != -1 else len(text)].decode("utf-8", "replace")
    names: list[str] = [n for n in re.findall(r"([A-Za-z_]\w*)\s*\(", line)
                        if n not in _KEYWORDS]
    if names:
        return names[0]
    words = [w for w in re.findall(r"[A-Za-z_]\w*", line) if w not in _KEYWORDS]
    return words[0] if words else "(syntax)"


class _Buckets:
    """Nodes of one query, sorted by start byte, sliced per function range."""

    def __init__(self, nodes: list[Node]) -> None:
        nodes.sort(key=lambda n: n.start_byte)
        self.nodes = nodes
        self.starts = [n.start_byte for n in nodes]

    def within(self, start: int, end: int) -> list[Node]:
        i = bisect.bisect_left(self.starts, start)
        j = bisect.bisect_left(self.starts, end)
        return self.nodes[i:j]


_SIMPLE_LVALUE = re.compile(r"^([A-Za-z_]\w*)((?:(?:->|\.)[A-Za-z_]\w*|\[[^\]]*\])+)$")
_FIELD_READ = re.compile(rb"(?:->|\.)\s*([A-Za-z_]\w*)")
_RETURN = re.compile(rb"\breturn\b\s*([^;]*);")
# `(;;)`, `(1)`, `(true)`: a literal the engine scans for quickly; the keyword before is
# checked on the few hits
_FOREVER_COND = re.compile(rb"\(\s*(?:(;)\s*;|1|true)\s*\)")
_KEYWORD_BEFORE = re.compile(rb"(?<![\w.>])(for|while)\s*$")


def loops_forever(ctx: FileContext, body: Node) -> bool:
    """`for (;;)` or `while (1)` in a body."""
    if ctx.forever_at is None:
        ctx.forever_at = []
        for m in _FOREVER_COND.finditer(ctx.text):
            kw = _KEYWORD_BEFORE.search(ctx.text, max(0, m.start() - 32), m.start())
            if kw is not None and (kw.group(1) == b"for") == (m.group(1) is not None):
                ctx.forever_at.append(m.start())
    return within(ctx.forever_at, body.start_byte, body.end_byte)


def _write_target(lhs: str, env: dict[str, str], ctx: FileContext) -> str:
    """Class of an assigned lvalue; a fast path for the common `p->a.b` shape."""
    s = lhs.replace(" ", "").replace("\n", "").replace("\t", "")
    m = _SIMPLE_LVALUE.match(s)
    if m:
        base, rest = m.group(1), re.sub(r"\[[^\]]*\]", "[]", m.group(2))
        if base in env:
            return f"{env[base]}::{rest.lstrip('.').removeprefix('->')}"
        if base in ctx.globals_:
            return f"{ctx.path}:{base}{rest}" if ctx.globals_[base] else base + rest
        return base + rest
    return lock_class(normalise(lhs), env, ctx.globals_, ctx.structs, ctx.path)


# Facts only some default-off rules read, extracted when one of them is enabled (a rule names
# them in its registry entry; the cache key carries the set): "keys", the key events of
# unpublish-after-free; "sharing", the write locksets of inconsistent-locking, with every
# function's field writes and reads.
FAMILIES = frozenset({"keys", "sharing"})


def extract_file(path: str, source: bytes, kb: KnowledgeBase, wrappers: Wrappers,
                 families: frozenset[str] = FAMILIES) -> FileFacts:
    t0 = time.perf_counter()
    facts = FileFacts(path)
    if path.endswith(".h") and b"{" not in source:
        # a header of #defines and prototypes (normalising never adds a brace): nothing to
        # parse.  The register maps of some drivers are hundreds of these, megabytes each
        return facts
    markers = [m for m in kb.section("sleep").get("atomic_markers", {})
               if m.encode() + b"(" in source]
    norm = normalize(source, kb)
    tree = parse(norm.text)
    t1 = time.perf_counter()
    if tree.root_node.has_error and (b"#else" in norm.text or b"#elif" in norm.text):
        alt = blank_alternatives(norm.text)
        tree2 = parse(alt)
        if _error_count(tree2.root_node) < _error_count(tree.root_node):
            tree = tree2
            norm = Normalized(alt, norm.annotations, norm.guard_loops, norm.loops)
    t2 = time.perf_counter()
    ctx = FileContext(path, kb, wrappers, norm.text, norm, keep_args=_keep_args(kb, wrappers),
                      source=source, families=families)
    ctx.scan()
    root = tree.root_node
    cap = captures("facts", root)
    _collect_globals(root, ctx)
    _collect_structs(cap.get("struct", []), ctx)
    facts.structs = ctx.structs
    if root.has_error:
        _count_swallowed(root, facts, norm.text)

    fn_nodes = cap.get("function", [])
    names = _Buckets(cap.get("call.name", []))
    vias = _Buckets(cap.get("call.via", []) + cap.get("call.inner", []))
    decls = _Buckets(cap.get("decl", []))
    assigns = _Buckets(cap.get("assign.lhs", []))
    flags = _Buckets(cap.get("if.flag", []))
    cmps = _Buckets([n for n in cap.get("if.cmp", []) if _named_test(n)])
    switches = _Buckets(cap.get("switch.flag", []))
    ands = _Buckets(cap.get("if.and", []))
    idargs = _Buckets(cap.get("call.idarg", []))
    warning_tests = kb.names("warning_tests")
    warns = _Buckets([n for n in cap.get("if.warn", []) if _text(n) in warning_tests])
    tested_calls = cap.get("if.warn", []) + cap.get("if.notcall", [])  # `if ([!]f(...))`
    put_tests, bit_tests = kb.names("last_put_tests"), kb.names("bit_tests")
    puts = _Buckets([n for n in tested_calls if _text(n) in put_tests])
    bits = _Buckets([n for n in tested_calls if _text(n) in bit_tests])
    ctx.changed = _Buckets(cap.get("changed", []))
    moved = _Buckets(cap.get("changed.field", []))
    ctx.bit_changes = kb.names("bit_sets") | kb.names("bit_clears")
    ctx.consts_at = _const_args(cap.get("call.const", []) + [
        n for n in cap.get("call.idarg", []) if _NAMED.fullmatch(n.text or b"")],
        ctx.keep_args)
    t3 = time.perf_counter()

    # file-scope designated initializers: .irq_shutdown = shutdown_pirq
    fn_ranges = sorted((f.start_byte, f.end_byte) for f in fn_nodes)
    for value in cap.get("init.value", []):
        pair = value.parent
        if pair is None or _inside(fn_ranges, pair.start_byte):
            continue
        des = pair.child_by_field_name("designator")
        fid = des.named_children[0] if des is not None and des.named_children else None
        if fid is None:
            continue
        struct = _initializer_struct(pair)
        fname = _text(fid)
        facts.fn_refs.append(FnRef(f"{struct}::{fname}" if struct else fname, _text(value),
                                   pair.start_point[0] + 1))

    paired_fields = ctx.kb.names("paired_callbacks")
    ctx.paired = {r.target for r in facts.fn_refs if r.field.rsplit("::", 1)[-1] in paired_fields}
    pending: list[_PendingFunction] = []
    for fn in fn_nodes:
        name, params, _ = _function_header(fn)
        body = fn.child_by_field_name("body")
        if not name or body is None:
            continue
        pf = _PendingFunction(fn, body, name, params)
        pf.static = any(c.type == "storage_class_specifier" and _text(c) == "static"
                        for c in fn.children)
        pf.annotations = tuple((k, normalise(a)) for off, k, a in norm.annotations
                               if fn.start_byte <= off < body.start_byte)
        pf.env = {p: t for p, t in params if p and t}
        pf.decls = decls.within(body.start_byte, body.end_byte)
        for d in pf.decls:
            dtype = _type_name(d.child_by_field_name("type"))
            if not dtype:
                continue
            for dd in d.children_by_field_name("declarator"):
                vname, _ = _declarator_name(dd)
                if vname:
                    pf.env.setdefault(vname, dtype)
        pf.names = [(n, _text(n)) for n in names.within(body.start_byte, body.end_byte)]
        pf.vias = vias.within(body.start_byte, body.end_byte)
        pf.callees = {t for _, t in pf.names}
        pf.flags = flags.within(body.start_byte, body.end_byte)
        pf.cmps = cmps.within(body.start_byte, body.end_byte) if params else []
        pf.switches = switches.within(body.start_byte, body.end_byte) if params else []
        pf.ands = ands.within(body.start_byte, body.end_byte) if params else []
        pf.warns = warns.within(body.start_byte, body.end_byte)
        pf.puts = puts.within(body.start_byte, body.end_byte)
        pf.bits = bits.within(body.start_byte, body.end_byte) if params else []
        pf.moved = {_member_key(n) for n in moved.within(body.start_byte, body.end_byte)}
        pf.idargs = idargs.within(body.start_byte, body.end_byte) if params else []
        pending.append(pf)

    # a macro of this file named like one of its functions stands in for it in some
    # configurations only (#ifdef alternatives): its calls stay calls, and what the function
    # does to locks and IRQs is sure only where the macro does it too (cfi_cmdset_0002's
    # xip_disable() turns IRQs off with CONFIG_MTD_XIP, its empty macro does not)
    ctx.alternatives = ctx.local_macros & {pf.name for pf in pending}
    ctx.local_macros -= ctx.alternatives
    statics = [pf.name for pf in pending if pf.static]
    # #ifdef twins: a call goes to the twin of the caller's own branch
    where = branches(source, [pf.node.start_byte for pf in pending]) \
        if len(set(statics)) < len(statics) else {}
    for pf in _callee_first(pending):
        got = _finish_function(pf, ctx, assigns)
        if where:
            got = got._replace(branch=where[pf.node.start_byte])
        facts.functions.append(got)
        if "keys" in families:
            kf = keyevents.collect(pf, ctx, assigns, decls)
            if kf is not None:
                facts.key_facts.append(kf)
    t4 = time.perf_counter()
    facts.seconds = {"normalize+parse": t1 - t0, "reparse": t2 - t1, "queries": t3 - t2,
                     "functions": t4 - t3}
    facts.functions.sort(key=lambda f: (f.line, f.name))
    if markers:  # called, not only named in a comment
        facts.markers = tuple(m for m in markers
                              if any(c.callee == m for fn in facts.functions for c in fn.calls))
    facts.key_facts.sort(key=lambda k: (k.line, k.function))
    return facts


_KEEP_CACHE: dict[tuple[str, str], frozenset[str]] = {}


def _keep_args(kb: KnowledgeBase, wrappers: Wrappers) -> frozenset[str]:
    k = (kb.extract_digest, wrappers.digest)
    if k not in _KEEP_CACHE:
        _KEEP_CACHE[k] = frozenset(kb.lock_apis) | frozenset(kb.registrations) | frozenset(
            wrappers.defs) | frozenset(kb.section("sleep")["gfp_allocators"]) | frozenset(
            kb.section("waits")["waits"]) | kb.names("lockdep_keys") | frozenset(
            kb.section("waits")["queues"]) | frozenset(kb.section("waits")["ordered_allocs"])
    return _KEEP_CACHE[k]


def _key(n: Node) -> tuple[int, int]:
    return (n.start_byte, n.end_byte)


def _error_count(root: Node) -> int:
    return len(captures("errors", root).get("e", []))


_BODY_OPEN_LINE = re.compile(rb"^\{[ \t]*$", re.MULTILINE)


def _count_swallowed(root: Node, facts: FileFacts, text: bytes) -> None:
    """Functions lost inside top-level ERROR nodes (kernel style: a body opens with `{` alone
    on a line, after a header ending in `)`; a `{` after `},` opens a table entry, as in the
    array fragments that files such as the BPF verifier tests #include), and the macro names
    nearest to each error, for `irqlint stats`."""
    for child in root.children:
        if child.type == "ERROR":
            body = text[child.start_byte : child.end_byte]
            n = sum(1 for m in _BODY_OPEN_LINE.finditer(body)
                    if code_before(text, child.start_byte + m.start()).endswith(b")"))
            if n:
                facts.failed_functions += n
                culprit = _error_culprit(text, child.start_byte)
                facts.error_macros[culprit] = facts.error_macros.get(culprit, 0) + n


def _inside(ranges: list[tuple[int, int]], pos: int) -> bool:
    i = bisect.bisect_right(ranges, (pos, 1 << 62)) - 1
    return i >= 0 and ranges[i][0] <= pos < ranges[i][1]


def _initializer_struct(pair: Node) -> str:
    """The struct type of the initializer list a designated pair sits in, if declared."""
    n = pair.parent
    while n is not None and n.type not in ("declaration", "init_declarator"):
        if n.type == "compound_literal_expression":
            return _type_name(n.child_by_field_name("type"))
        n = n.parent
    if n is not None and n.type == "init_declarator":
        n = n.parent
    if n is not None and n.type == "declaration":
        return _type_name(n.child_by_field_name("type"))
    return ""


@dataclass(slots=True)
class _PendingFunction:
    node: Node
    body: Node
    name: str
    params: list[tuple[str, str]]
    static: bool = False
    annotations: tuple[tuple[str, str], ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    names: list[tuple[Node, str]] = field(default_factory=list)  # identifiers called directly
    vias: list[Node] = field(default_factory=list)  # function expressions of other calls
    callees: set[str] = field(default_factory=set)
    flags: list[Node] = field(default_factory=list)  # `x` of `if (x)` and `if (!x)`
    cmps: list[Node] = field(default_factory=list)  # `x` of `if (x == NAME)` and `!=`
    switches: list[Node] = field(default_factory=list)  # `x` of `switch (x)`
    ands: list[Node] = field(default_factory=list)  # `a && b` of `if (a && b)`
    idargs: list[Node] = field(default_factory=list)  # identifiers passed as arguments
    warns: list[Node] = field(default_factory=list)  # `WARN_ON` of `if (WARN_ON(x))`
    # `refcount_dec_and_test` of `if (refcount_dec_and_test(r))` or `if (!...(r)) return;`
    puts: list[Node] = field(default_factory=list)
    bits: list[Node] = field(default_factory=list)  # `test_bit` of `if (test_bit(N, p->f))`
    # fields of the body handed out by address or counted (`&p->f`, `x.f++`): "p->f", "x.f"
    moved: set[str] = field(default_factory=set)
    # fields whose bits the body sets or clears -> those bits ("*": one not named)
    bit_changed: dict[str, set[str]] = field(default_factory=dict)
    # inconsistent-locking (``sharing``): declarations of the body; shared writes (start byte,
    # line) for the lock engine; line -> "l"/"f" for local / fresh-object writes; what the
    # engine saw at each shared write and at calls reached with a lock on some paths only
    decls: list[Node] = field(default_factory=list)
    shared_writes: list[tuple[int, int]] = field(default_factory=list)
    write_flags: dict[int, str] = field(default_factory=dict)
    write_held: dict[int, WriteLocks] = field(default_factory=dict)
    partial_at: tuple[tuple[int, int, tuple[tuple[str, str], ...]], ...] = ()
    # (line, column) of calls no path reaches: after panic() and other noreturn calls
    dead_calls: frozenset[tuple[int, int]] = frozenset()


def _callee_first(pending: list[_PendingFunction]) -> list[_PendingFunction]:
    """File-local functions ordered so that callees come before callers (DFS post-order).
    A name defined more than once (#ifdef alternatives) is emitted with all its bodies."""
    by_name: dict[str, list[_PendingFunction]] = {}
    for pf in pending:
        by_name.setdefault(pf.name, []).append(pf)
    order: list[_PendingFunction] = []
    state: dict[str, int] = {}
    for root in pending:
        if root.name in state:
            continue
        callees = sorted({c for pf in by_name[root.name] for c in pf.callees})
        stack = [(root.name, iter(callees))]
        state[root.name] = 1
        while stack:
            name, it = stack[-1]
            nxt = next((c for c in it if c in by_name and c not in state), None)
            if nxt is None:
                stack.pop()
                state[name] = 2
                order.extend(by_name[name])
            else:
                state[nxt] = 1
                stack.append((nxt, iter(sorted({c for pf in by_name[nxt] for c in pf.callees}))))
    return order


def _finish_function(pf: _PendingFunction, ctx: FileContext, assigns: _Buckets) -> Function:
    kb = ctx.kb
    body = pf.body
    keep = ctx.keep_args
    calls: list[Call] = []
    regs: list[Registration] = []
    gfp_params = frozenset(p for p, t in pf.params if p and "gfp" in t)
    keyers = kb.names("lockdep_keys")
    keyed: set[str] = set()
    wait_specs = kb.section("waits")["waits"]
    key_args = kb.section("waits")["key_args"]
    queue_specs = kb.section("waits")["queues"]
    objs: list[tuple[int, int, str]] = []
    queues: list[tuple[int, str, str]] = []
    # arguments are kept for known APIs, and wherever a gfp mask is passed on
    gfp_here = bool(gfp_params) or within(ctx.gfp_at, body.start_byte, body.end_byte)
    tests = pf.flags or pf.cmps or pf.switches or pf.ands or pf.bits
    flag_params = _flag_params(pf, assigns, ctx.changed, ctx.bit_changes) \
        if tests or pf.idargs else {}
    flag_ranges = _flag_ranges(pf, flag_params) if tests or pf.warns or pf.puts else []
    passes_at = _passed_params(pf, flag_params) if pf.idargs and flag_params else {}
    consts_at = ctx.consts_at
    fields_at = _field_args(pf, assigns, ctx.changed, flag_params)
    for at, cs in _set_bits(pf, ctx, assigns).items():
        old = fields_at.get(at, ((), ()))
        fields_at[at] = (old[0] + cs, old[1])
    if fields_at:  # what the fields of `&local` arguments hold, as constants or parameters
        consts_at, passes_at = dict(consts_at), dict(passes_at)
        for at, (cs, ps) in fields_at.items():
            if cs:
                consts_at[at] = tuple(consts_at.get(at, ())) + cs
            if ps:
                passes_at[at] = tuple(passes_at.get(at, ())) + ps
    for n, name in pf.names:
        if name in ctx.local_macros and name not in keep:
            continue  # the file's own macro: no call of a function of that name elsewhere
        sp = n.start_point
        argv: tuple[str, ...] = ()
        if name in keep or gfp_here:
            args = n.parent.child_by_field_name("arguments") if n.parent is not None else None
            if args is not None and (name in keep or within(
                    ctx.gfp_at, args.start_byte, args.end_byte) or (gfp_params and any(
                        a.type == "identifier" and _text(a) in gfp_params
                        for a in args.named_children))):
                argv = tuple(" ".join(_text(a).split()) for a in args.named_children
                             if a.type != "comment")
                if name in keyers and argv:
                    keyed.add(lock_class(normalise(argv[0]), pf.env, ctx.globals_,
                                         ctx.structs, ctx.path))
                elif name in ctx.wrappers.defs and argv:
                    # a macro that keys a lock (sock_lock_init_class_and_name(sk, ...) keys
                    # sk->sk_lock.slock per protocol family)
                    for api, aargs in ctx.wrappers.expand(name, list(argv), ctx.path):
                        if api in keyers and aargs:
                            keyed.add(lock_class(normalise(aargs[0]), pf.env, ctx.globals_,
                                                 ctx.structs, ctx.path))
                for spec in kb.registrations.get(name, ()):
                    if spec["arg"] < len(argv):
                        target = argv[spec["arg"]].lstrip("&").strip("() ")
                        if re.fullmatch(r"[A-Za-z_]\w*", target):
                            k = key_args.get(name)
                            obj = _obj_class(argv[k], pf, ctx) \
                                if k is not None and k < len(argv) else ""
                            regs.append(Registration(name, spec["role"], target, sp[0] + 1,
                                                     argv, obj))
                if name in wait_specs:
                    k = wait_specs[name]["arg"]
                    if k is not None and k < len(argv):
                        obj = _obj_class(argv[k], pf, ctx)
                        if obj:
                            objs.append((sp[0] + 1, sp[1] + 1, obj))
                qspec = queue_specs.get(name)
                if qspec is not None and qspec["work"] < len(argv):
                    queues.append(_queued(argv, qspec, sp[0] + 1, pf, ctx))
        if flag_ranges or consts_at or passes_at:
            at = n.start_byte  # a direct call starts with its callee's name
            guard = _guard_at(flag_ranges, at) if flag_ranges else ()
            consts = consts_at.get(at, ()) if name not in keep else ()
            passes = passes_at.get(at, ()) if name not in keep else ()
            if guard or consts or passes:
                calls.append(Call(name, "", sp[0] + 1, sp[1] + 1, argv, guard, consts,
                                  passes))
                continue
        calls.append(Call(name, "", sp[0] + 1, sp[1] + 1, argv))
    for v in pf.vias:
        if v.type == "call_expression":
            continue  # guard(...)(...): a lock operation, not a call through a pointer
        sp = v.start_point
        # `desc->chip->irq_shutdown` -> `irq_desc::chip->irq_shutdown` when desc is typed: the
        # program phase walks the remaining hops through every file's struct definitions
        via = lock_class(normalise(_text(v)), pf.env, ctx.globals_, ctx.structs, ctx.path)
        at = v.start_byte
        calls.append(Call("", via, sp[0] + 1, sp[1] + 1, (),
                          _guard_at(flag_ranges, at) if flag_ranges else (),
                          consts_at.get(at, ()) if consts_at else (), passes_at.get(at, ())))
    calls.sort(key=lambda c: (c.line, c.col))

    field_writes: list[FieldWrite] = []
    fn_refs: list[FnRef] = []
    written: list[Node] = []
    share = "sharing" in ctx.families
    for lhs in assigns.within(body.start_byte, body.end_byte):
        t = lhs.type
        if t == "identifier":
            if not share or _text(lhs) not in ctx.globals_ or _text(lhs) in pf.env:
                continue
        elif t not in ("field_expression", "subscript_expression"):
            continue
        rhs = lhs.parent.child_by_field_name("right") if lhs.parent is not None else None
        stored = rhs if t == "field_expression" and rhs is not None \
            and rhs.type == "identifier" else None  # `x->fn = handler`
        if not share and stored is None:
            continue
        target = _write_target(_text(lhs), pf.env, ctx)
        line = lhs.start_point[0] + 1
        if share:
            written.append(lhs)
            field_writes.append(FieldWrite(target, line))
        if stored is not None:
            fid = lhs.child_by_field_name("field")
            fname = _text(fid) if fid is not None else ""
            fn_refs.append(FnRef(target if "::" in target else fname, _text(stored), line))
    # `priv->wq = alloc_ordered_workqueue(...)`: a queue that runs one work item at a time
    allocs = kb.section("waits")["ordered_allocs"]
    if any(a in pf.callees for a in allocs):
        for lhs in assigns.within(body.start_byte, body.end_byte):
            rhs = lhs.parent.child_by_field_name("right") if lhs.parent is not None else None
            fn_node = rhs.child_by_field_name("function") if rhs is not None \
                and rhs.type == "call_expression" else None
            if fn_node is not None and _text(fn_node) in allocs:
                wq = _wq_class(_text(lhs), pf, ctx)
                if wq:
                    queues.append((lhs.start_point[0] + 1, "", wq))
    # the fields read, only for the rules that read them
    reads = sorted(set(_slice(ctx.reads_at, body.start_byte, body.end_byte))) if share else []

    if share:
        sharing.shared_writes(pf, ctx, written, pf.decls)
    lock_ops, diags, effect, held = lockstate.analyse(pf, ctx)
    if pf.dead_calls:  # what a dying kernel would do next is no sleep, lock or wait
        calls = [c for c in calls if (c.line, c.col) not in pf.dead_calls]
    params = tuple(p for p, _ in pf.params)
    if pf.name in ctx.alternatives:
        effect = _merge_effects(LockEffect(), effect)
    prev = ctx.summaries.get(pf.name)
    if prev is not None and prev != (params, effect):
        effect = _merge_effects(prev[1], effect)  # #ifdef alternatives: keep what is sure
    ctx.summaries[pf.name] = (params, effect)
    fn = pf.node
    hint = _first_error_hint(fn, ctx.text) if fn.has_error else ""
    return Function(
        name=pf.name, file=ctx.path, line=fn.start_point[0] + 1, end_line=fn.end_point[0] + 1,
        static=pf.static, params=tuple(pf.params), annotations=pf.annotations,
        has_error=fn.has_error, calls=tuple(calls), lock_ops=tuple(lock_ops),
        field_writes=tuple(field_writes), field_reads=tuple(reads), fn_refs=tuple(fn_refs),
        registrations=tuple(regs), effect=effect, diagnostics=tuple(diags), error_hint=hint,
        held=held, irqs_off=within(ctx.irqs_off_at, body.start_byte, body.end_byte),
        sharing=sharing.facts(pf, ctx, ctx.source) if share else Sharing(),
        keyed=tuple(sorted(keyed)),
        const_return=_const_return(ctx.text[body.start_byte:body.end_byte]),
        objs=tuple(objs),
        queues=tuple(queues),
    )


def _queued(argv: tuple[str, ...], spec: dict[str, object], line: int, pf: _PendingFunction,
            ctx: FileContext) -> tuple[int, str, str]:
    """(line, work item, queue) of a call that queues a work item: the item's typed class
    (`rtw_coex::bt_remain_work`), or "?" and its last name when it is not a typed field
    ("?*" for a plain pointer, which may be any item); the
    queue's class, global name or the knowledge base's name for it ("" when not known)."""
    work = argv[int(spec["work"])]  # type: ignore[call-overload]
    obj = _obj_class(work, pf, ctx)
    if not obj:  # a pointer handed in (`work`) may be any item: "*"
        names = re.findall(r"[A-Za-z_]\w*", work)
        obj = "?" + (names[-1] if names and re.search(r"->|\.", work) else "*")
    k = spec["wq"]
    if k is None:
        wq = str(spec.get("queue", ""))
    else:
        wq = _wq_class(argv[k], pf, ctx) if int(k) < len(argv) else ""  # type: ignore[call-overload]
    return line, obj, wq


def _wq_class(text: str, pf: _PendingFunction, ctx: FileContext) -> str:
    """A workqueue pointer's class: a struct field's (`cw1200_common::workqueue`), a global's
    name; "" for a local or anything else."""
    e = normalise(text)
    if re.fullmatch(r"[A-Za-z_]\w*", e):
        return "" if e in pf.env else _write_target(e, pf.env, ctx)
    cls = _write_target(e, pf.env, ctx)
    return cls if "::" in cls else ""


def _obj_class(arg: str, pf: _PendingFunction, ctx: FileContext) -> str:
    """The typed class of a struct field a wait or a registration names (`&ar->scan.timeout`
    -> `ath11k::scan.timeout`), or "" when it is no typed field."""
    e = normalise(arg)
    if "->" not in e and "." not in e:
        return ""
    cls = lock_class(e, pf.env, ctx.globals_, ctx.structs, ctx.path)
    return cls if "::" in cls else ""


_INT = re.compile(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*")


# an enumerator or a #define'd constant, by kernel naming: MODE_POLL, EFCT_CMD_NOWAIT, and
# the errno names (ax25_disconnect(ax25, ETIMEDOUT) tests `reason == ENETUNREACH`)
_NAMED = re.compile(rb"[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]|E[A-Z][A-Z0-9]+")


_TESTS = {"==": ("=", "!"), "!=": ("!", "="), "&": ("&", "~")}
_TESTED = ("identifier", "field_expression")  # a flag, or a field of a pointer to flags


def _or_names(n: Node) -> list[str]:
    """The named constants OR'ed together in `A | B | C`, or [] for anything else."""
    if n.type == "identifier" and _NAMED.fullmatch(n.text or b""):
        return [_text(n)]
    op = n.child_by_field_name("operator") if n.type == "binary_expression" else None
    if op is None or op.type != "|":
        return []
    left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
    a = _or_names(left) if left is not None else []
    b = _or_names(right) if right is not None else []
    return a + b if a and b else []


def _named_test(n: Node) -> bool:
    """`x` of `if (x == NAME)`, `if (x != NAME)` or `if (x & NAME)` (`!(x & NAME)` too),
    NAME a named constant."""
    test = n.parent
    if test is None:
        return False
    op = test.child_by_field_name("operator")
    right = test.child_by_field_name("right")
    return op is not None and op.type in _TESTS and right is not None \
        and _NAMED.fullmatch(right.text or b"") is not None


def _const_args(nodes: list[Node], known: frozenset[str] = frozenset()
                ) -> dict[int, tuple[tuple[int, bool | str], ...]]:
    """Start byte of each call with constant arguments -> (argument index, truth value, or
    the constant's name); not for calls of `known` APIs (spin_lock(&x->lock): their
    constants are the knowledge base's business)."""
    out: dict[int, tuple[tuple[int, bool | str], ...]] = {}
    for n in nodes:
        al = n.parent
        call = al.parent if al is not None else None
        if al is None or call is None or call.type != "call_expression" \
                or call.start_byte in out:
            continue
        fn = call.child_by_field_name("function")
        if fn is not None and fn.type == "identifier" and known and _text(fn) in known:
            out[call.start_byte] = ()
            continue
        got: list[tuple[int, bool | str]] = []
        i = 0
        for a in al.named_children:
            if a.type == "comment":
                continue
            v = _const_value(a)
            if v is not None:
                got.append((i, v))
            i += 1
        out[call.start_byte] = tuple(got)
    return out


def _const_value(a: Node) -> bool | str | None:
    """What a constant expression says: a truth value (true, false, NULL, a number), the
    name of a named constant, "A|B" for `A | B`; None for anything else."""
    t = a.type
    if t == "true":
        return True
    if t in ("false", "null"):
        return False
    if t == "identifier":
        name = a.text or b""
        return name.decode() if _NAMED.fullmatch(name) else None
    if t == "binary_expression":  # `CMD_ASYNC | CMD_WANT_SKB`
        names = _or_names(a)
        return "|".join(names) if names else None
    if t == "number_literal":
        m = _INT.fullmatch(_text(a))
        if m is not None:  # 0x10, 0644, 1UL: true unless every digit is 0
            digits = m.group(1)
            return digits[2 if digits[:2] in ("0x", "0X") else 0:].strip("0") != ""
    return None


def _flag_params(pf: _PendingFunction, assigns: _Buckets, changed: _Buckets,
                 bit_changes: frozenset[str] = frozenset()) -> dict[str, int]:
    """The parameters the body never assigns, increments or hands out by address, by name
    -> index: what a test of one says holds for the whole call."""
    body = pf.body
    written = {_text(n) for n in assigns.within(body.start_byte, body.end_byte)
               if n.type == "identifier"}
    bumped = {_text(n) for n in changed.within(body.start_byte, body.end_byte)}
    index = {p: i for i, (p, _) in enumerate(pf.params) if p and p not in written | bumped}
    if index:
        index.update(_copies(pf, assigns, bumped, index))
        index.update(_param_fields(pf, assigns, index, bit_changes))
    return index


FieldArgs = dict[int, tuple[tuple[tuple[int, bool | str], ...], tuple[tuple[int, int], ...]]]


def _field_args(pf: _PendingFunction, assigns: _Buckets, changed: _Buckets,
                flags: dict[str, int]) -> FieldArgs:
    """Start byte of each call given the address of a local struct -> the constants and the
    caller's flag parameters its fields hold there, as field indices of that argument
    (`struct il_host_cmd cmd = { .flags = flags }; il_send_cmd(il, &cmd)` passes parameter
    `flags` as field `flags` of argument 1; the fields an initializer list or a memset()
    leaves out are zero).  A struct whose address goes anywhere else but memset() and one
    call, or that is assigned whole, says nothing; nor does a field assigned twice, after the
    call, or by address."""
    body = pf.body
    lo, hi = body.start_byte, body.end_byte
    addressed: dict[str, list[Node]] = {}
    for n in changed.within(lo, hi):
        if n.parent is not None and n.parent.type == "pointer_expression":
            addressed.setdefault(_text(n), []).append(n.parent)
    if not addressed:
        return {}
    inits = _struct_locals(pf, addressed)
    if not inits:
        return {}
    writes: dict[str, list[tuple[int, str, str, Node | None]]] = {x: [] for x in inits}
    for lhs in assigns.within(lo, hi):
        op = lhs.parent.child_by_field_name("operator") if lhs.parent is not None else None
        if lhs.type == "identifier" and _text(lhs) in writes:
            writes.pop(_text(lhs))  # assigned whole
        elif lhs.type == "field_expression" and op is not None:
            x, dot, f = _member_key(lhs).partition(".")
            if dot and x in writes:
                right = lhs.parent.child_by_field_name("right") if lhs.parent else None
                writes[x].append((lhs.start_byte, f, op.type, right))
    out: FieldArgs = {}
    for x, ws in writes.items():
        init, call, k, zero = _the_call(addressed[x], inits[x])
        if call is None:
            continue
        at = call.start_byte
        pairs = init.named_children if init is not None else []
        for pair in pairs:
            if pair.type == "comment":
                continue
            des = pair.child_by_field_name("designator") if pair.type == "initializer_pair" \
                else None
            if des is None or des.type != "field_designator" or not des.named_children:
                zero = False  # positional initializers: which field is which is not known
                continue
            ws.append((pair.start_byte, _text(des.named_children[0]), "=",
                       pair.child_by_field_name("value")))
        cs: list[tuple[int, bool | str]] = []
        ps: list[tuple[int, int]] = []
        by_field: dict[str, list[tuple[int, str, str, Node | None]]] = {}
        for w in ws:
            by_field.setdefault(w[1], []).append(w)
        for f, fw in sorted(by_field.items()):
            sets = [w for w in fw if w[2] == "="]
            ors = [w for w in fw if w[2] == "|="]
            if any(w[0] > at for w in fw) or len(sets) + len(ors) != len(fw) \
                    or len(sets) > 1 or (not sets and not zero) or f"{x}.{f}" in pf.moved:
                zero = False  # not one value: not zero either
                continue
            value = sets[0][3] if sets else None
            p = flags.get(_text(value)) if value is not None and value.type == "identifier" \
                else None
            j = field_param(k, f)
            if p is not None and p < len(pf.params):
                ps.append((j, p + OR_MORE if ors else p))
                continue
            v = _const_value(value) if value is not None else False
            if ors:  # `|= NAME`: the names OR'ed into a zero or a named value
                more = [_or_names(w[3]) if w[3] is not None else [] for w in ors]
                v = "|".join(([] if v is False else [v]) + [n for m in more for n in m]) \
                    if all(more) and (v is False or isinstance(v, str)) else None
            if v is not None:
                cs.append((j, v))
        if zero:
            cs.append((zeroed(k), False))
        if cs or ps:
            out[at] = (tuple(cs), tuple(ps))
    return out


def _set_bits(pf: _PendingFunction, ctx: FileContext, assigns: _Buckets
              ) -> dict[int, tuple[tuple[int, bool | str], ...]]:
    """Start byte of each call after a `set_bit(NAME, x->state)` statement of the body's own
    block (no test before it skips it) that passes x on -> the bit as a constant of that
    argument's field ("NAME|?": set, the other bits not known).  A bit the body clears
    anywhere, or a pointer it assigns, says nothing."""
    kb = ctx.kb
    sets_api = kb.names("bit_sets")
    if not any(name in sets_api for _, name in pf.names):
        return {}
    clears = kb.names("bit_clears")
    body = pf.body
    sets: list[tuple[int, str, str, str]] = []
    cleared: set[str] = set()
    for n, name in pf.names:
        t = _bit_args(n.parent) if name in sets_api or name in clears else None
        if t is None:
            continue
        key = _flag_key(t[1])
        if name in clears:
            cleared.add(key)
            continue
        stmt = n.parent.parent if n.parent is not None else None
        if key and stmt is not None and stmt.type == "expression_statement" \
                and stmt.parent == body and _NAMED.fullmatch(t[0].text or b""):
            x, f = key.split("->", 1)
            sets.append((n.start_byte, x, f, _text(t[0])))
    sets = [st for st in sets if f"{st[1]}->{st[2]}" not in cleared]
    if not sets:
        return {}
    reassigned = {_text(a) for a in assigns.within(body.start_byte, body.end_byte)
                  if a.type == "identifier"}
    ptrs = {x for _, x, _, _ in sets if x not in reassigned}
    out: dict[int, tuple[tuple[int, bool | str], ...]] = {}
    for fnode in [n for n, _ in pf.names] + list(pf.vias):
        call = fnode.parent
        args = call.child_by_field_name("arguments") if call is not None else None
        if call is None or args is None:
            continue
        at = call.start_byte
        got: list[tuple[int, bool | str]] = []
        for j, a in enumerate(c for c in args.named_children if c.type != "comment"):
            if a.type != "identifier" or _text(a) not in ptrs:
                continue
            by_field: dict[str, set[str]] = {}
            for b, x, f, name in sets:
                if x == _text(a) and b < at:
                    by_field.setdefault(f, set()).add(name)
            got.extend((field_param(j, f), "|".join([*sorted(ns), "?"]))
                       for f, ns in sorted(by_field.items()))
        if got:
            out[at] = tuple(got)
    return out


def _struct_locals(pf: _PendingFunction, addressed: dict[str, list[Node]]
                   ) -> dict[str, Node | None]:
    """The body's local struct variables whose address it takes -> their initializer list
    (None: declared without one); a name declared twice is left out."""
    out: dict[str, Node | None] = {}
    twice: set[str] = set()
    for d in pf.decls:
        t = d.child_by_field_name("type")
        if t is None or t.type != "struct_specifier":
            continue
        for dd in d.children_by_field_name("declarator"):
            name: Node | None = dd
            value: Node | None = None
            if dd.type == "init_declarator":
                name, value = dd.child_by_field_name("declarator"), \
                    dd.child_by_field_name("value")
                if value is None or value.type != "initializer_list":
                    continue
            if name is None or name.type != "identifier" or _text(name) not in addressed:
                continue
            if _text(name) in out:
                twice.add(_text(name))
            out[_text(name)] = value
    for x in twice:
        del out[x]
    return out


def _the_call(uses: list[Node], init: Node | None
              ) -> tuple[Node | None, Node | None, int, bool]:
    """(initializer list, the one call other than memset() that is given `&x`, its argument
    index, the fields are zeroed first); the call is None when `&x` goes elsewhere."""
    call: Node | None = None
    k = -1
    zero = init is not None
    for amp in uses:
        al = amp.parent
        c = al.parent if al is not None and al.type == "argument_list" else None
        if c is None or al is None or c.type != "call_expression":
            return init, None, -1, False
        fn = c.child_by_field_name("function")
        args = [a for a in al.named_children if a.type != "comment"]
        if fn is not None and _text(fn) == "memset" and len(args) == 3 and args[0] == amp:
            zero = _text(args[1]) == "0"
            continue
        if call is not None:
            return init, None, -1, False
        call, k = c, next(i for i, a in enumerate(args) if a == amp)
    return init, call, k, zero


def _flag_key(n: Node) -> str:
    """How a tested expression is looked up among the flags: `wait`, or `cmd->flags` for a
    field of a pointer parameter."""
    if n.type == "field_expression":
        key = _member_key(n)
        return key if "->" in key else ""
    return _text(n)


def _member_key(n: Node) -> str:
    """`p->f` or `x.f` for a field of a named pointer or struct, else ""."""
    arg, fld = n.child_by_field_name("argument"), n.child_by_field_name("field")
    op = n.child_by_field_name("operator")
    if arg is None or fld is None or op is None or arg.type != "identifier":
        return ""
    return f"{_text(arg)}{op.type}{_text(fld)}"


def _param_fields(pf: _PendingFunction, assigns: _Buckets, index: dict[str, int],
                  bit_changes: frozenset[str] = frozenset()) -> dict[str, int]:
    """`cmd->flags` -> its field index, for the fields of flag parameters the body tests and
    never assigns (il_send_cmd() tests `cmd->flags & CMD_ASYNC`)."""
    tested = [n for n in pf.flags + pf.cmps + pf.switches if n.type == "field_expression"]
    for both in pf.ands:
        tested.extend(n for n, _ in _conjuncts(both) if n.type == "field_expression")
    tested.extend(t[1] for n in pf.bits if (t := _bit_args(n.parent)) is not None)
    if not tested:
        return {}
    body = pf.body
    written = {_flag_key(n) for n in assigns.within(body.start_byte, body.end_byte)
               if n.type == "field_expression"}
    if pf.bits:  # a bit the body sets or clears itself is no flag of its caller's
        for n, name in pf.names:
            t = _bit_args(n.parent) if name in bit_changes else None
            if t is not None:
                bit = _text(t[0]) if _NAMED.fullmatch(t[0].text or b"") else "*"
                pf.bit_changed.setdefault(_flag_key(t[1]), set()).add(bit)
    out: dict[str, int] = {}
    for n in tested:
        key = _flag_key(n)
        if not key or key in written or key in out:
            continue
        p, f = key.split("->", 1)
        k = index.get(p)
        if k is None or k >= len(pf.params) or pf.params[k][0] != p:
            continue  # not a parameter itself (a local copy of one)
        if key in pf.moved:
            continue  # handed out by address or counted: not a flag
        out[key] = field_param(k, f)
    return out


def _copies(pf: _PendingFunction, assigns: _Buckets, bumped: set[str],
            index: dict[str, int]) -> dict[str, int]:
    """Locals that only ever hold a flag parameter: set once, from it (a cast or not), never
    changed after (`trans_spec = (struct usnic_transport_spec *) data;`, `bool wait = sync;`)."""
    body = pf.body
    sets: dict[str, list[int | None]] = {}
    for n in assigns.within(body.start_byte, body.end_byte):
        if n.type == "identifier" and n.parent is not None:
            op = n.parent.child_by_field_name("operator")
            k = _param_of(n.parent.child_by_field_name("right"), index) \
                if op is not None and op.type == "=" else None
            sets.setdefault(_text(n), []).append(k)
    for d in pf.decls:
        for dd in d.children_by_field_name("declarator"):
            if dd.type == "init_declarator":
                name = dd.child_by_field_name("declarator")
                if name is not None and name.type == "identifier":
                    sets.setdefault(_text(name), []).append(
                        _param_of(dd.child_by_field_name("value"), index))
    params = {p for p, _ in pf.params}
    return {x: ks[0] for x, ks in sets.items()
            if len(ks) == 1 and ks[0] is not None and x not in bumped and x not in params}


def _param_of(n: Node | None, index: dict[str, int]) -> int | None:
    """The flag parameter an expression is, behind casts and parentheses."""
    while n is not None and n.type in ("cast_expression", "parenthesized_expression"):
        n = n.child_by_field_name("value") if n.type == "cast_expression" \
            else (n.named_children[0] if n.named_child_count == 1 else None)
    return index.get(_text(n)) if n is not None and n.type == "identifier" else None


def _passed_params(pf: _PendingFunction, index: dict[str, int]
                   ) -> dict[int, tuple[tuple[int, int], ...]]:
    """Start byte of each call passing parameters on -> (argument index, parameter index)."""
    out: dict[int, list[tuple[int, int]]] = {}
    by_bytes = {p.encode(): k for p, k in index.items()}
    for n in pf.idargs:
        k = by_bytes.get(n.text or b"")
        if k is None:
            continue
        al = n.parent
        call = al.parent if al is not None else None
        if call is None or call.type != "call_expression" or al is None:
            continue
        i = 0
        for a in al.named_children:
            if a.start_byte == n.start_byte:
                out.setdefault(call.start_byte, []).append((i, k))
                break
            if a.type != "comment":
                i += 1
    return {at: tuple(v) for at, v in out.items()}


def _flag_ranges(pf: _PendingFunction, index: dict[str, int]
                 ) -> list[tuple[int, int, int, bool | str]]:
    """(start, end, parameter index, truth value): where the body runs only when one of its
    parameters, never assigned in it, tests true or false (`if (wait) ...`, `if (!wait)
    return 0;` and the rest of that block)."""
    out: list[tuple[int, int, int, bool | str]] = []
    for w in pf.warns:  # `if (WARN_ON(x))`: the branch of a kernel that has warned
        call = w.parent
        stmt = call.parent.parent if call is not None and call.parent is not None else None
        cons = stmt.child_by_field_name("consequence") if stmt is not None else None
        if cons is not None:
            out.append((cons.start_byte, cons.end_byte, WARNED, True))
    for put in pf.puts:  # the release run by whoever drops the last reference
        call = put.parent
        neg = call.parent if call is not None else None
        if neg is not None and neg.type == "unary_expression":  # `if (!put(r)) return;`
            stmt = neg.parent.parent if neg.parent is not None else None
            if stmt is None or stmt.child_by_field_name("alternative") is not None:
                continue
            cons = stmt.child_by_field_name("consequence")
            end = _rest_of_block(pf, stmt) if cons is not None and _jumps(cons) else None
            if end is not None:
                out.append((stmt.end_byte, end, LAST_PUT, True))
        else:
            stmt = call.parent.parent if call is not None and call.parent is not None else None
            cons = stmt.child_by_field_name("consequence") if stmt is not None else None
            if cons is not None:
                out.append((cons.start_byte, cons.end_byte, LAST_PUT, True))
    changed = pf.bit_changed
    for flag in pf.flags + pf.cmps:
        key = _flag_key(flag)
        k = index.get(key) if key not in changed else None  # (a word whose bits the body
        if k is None:                                        # changes is no caller's flag)
            continue
        cond = flag.parent
        want: bool | str = True
        other: bool | str = False
        if cond is not None and cond.type == "unary_expression":
            want, other, cond = False, True, cond.parent
        elif cond is not None and cond.type == "binary_expression":
            op, right = cond.child_by_field_name("operator"), cond.child_by_field_name("right")
            name = _text(right) if right is not None else ""
            yes, no = _TESTS[op.type] if op is not None and op.type in _TESTS else ("=", "!")
            want, other = yes + name, no + name
            cond = cond.parent
            neg = cond.parent if cond is not None else None
            if neg is not None and neg.type == "unary_expression":  # `if (!(x & NAME))`
                want, other, cond = other, want, neg.parent
        _branches(pf, cond, k, want, other, out)
    for b in pf.bits:  # `if (test_bit(NAME, p->state))`, `if (!test_bit(...)) return;`
        call = b.parent
        t = _bit_args(call) if call is not None else None
        k = index.get(_flag_key(t[1])) if t is not None else None
        if t is None or k is None or call is None or not _NAMED.fullmatch(t[0].text or b""):
            continue
        mine = changed.get(_flag_key(t[1]), ()) if changed else ()
        if _text(t[0]) in mine or "*" in mine:
            continue  # this bit (or one not named) the body sets or clears itself
        want, other = "&" + _text(t[0]), "~" + _text(t[0])
        cond = call.parent
        if cond is not None and cond.type == "unary_expression":
            want, other, cond = other, want, cond.parent
        _branches(pf, cond, k, want, other, out)
    for sw in pf.switches:
        k = index.get(_flag_key(sw)) if _flag_key(sw) not in changed else None
        if k is not None:
            out.extend(_case_ranges(sw, k))
    for both in pf.ands:  # `if (ret == 0 && reason == MODE_A)`: the branch needs each term
        stmt = both.parent.parent if both.parent is not None else None
        cons = stmt.child_by_field_name("consequence") if stmt is not None else None
        if cons is None:
            continue
        for ident, want in _conjuncts(both):
            k = index.get(_flag_key(ident)) if _flag_key(ident) not in changed else None
            if k is not None:
                out.append((cons.start_byte, cons.end_byte, k, want))
    return out


def _branches(pf: _PendingFunction, cond: Node | None, k: int, want: bool | str,
              other: bool | str, out: list[tuple[int, int, int, bool | str]]) -> None:
    """The ranges of an `if` whose condition (in parentheses) is `cond`: its consequence
    needs `want`, its alternative `other`, and so does the rest of the block after a
    consequence that jumps out."""
    stmt = cond.parent if cond is not None else None
    if stmt is None or stmt.type != "if_statement":
        return
    cons = stmt.child_by_field_name("consequence")
    alt = stmt.child_by_field_name("alternative")
    if cons is not None:
        out.append((cons.start_byte, cons.end_byte, k, want))
    if alt is not None:
        out.append((alt.start_byte, alt.end_byte, k, other))
    elif cons is not None and _jumps(cons):
        end = _rest_of_block(pf, stmt)
        if end is not None:
            out.append((stmt.end_byte, end, k, other))


def _bit_args(call: Node | None) -> tuple[Node, Node] | None:
    """(bit, field) of `test_bit(NAME, p->state)` / `set_bit(NAME, &p->flags)`: the field a
    pointer's `->` names, behind a `&`."""
    args = call.child_by_field_name("arguments") if call is not None else None
    kids = [a for a in args.named_children if a.type != "comment"] if args is not None else []
    if len(kids) < 2:
        return None
    addr = kids[1]
    if addr.type == "pointer_expression" and (addr.text or b"")[:1] == b"&":
        addr = addr.child_by_field_name("argument") or addr
    return (kids[0], addr) if addr.type == "field_expression" else None


def _conjuncts(n: Node) -> list[tuple[Node, bool | str]]:
    """The parameter tests among the terms of an `&&` chain: `flag`, `!flag`, `x == NAME`,
    `x != NAME`, `x & NAME` (each term in parentheses or not)."""
    while n.type == "parenthesized_expression" and n.named_child_count == 1:
        n = n.named_children[0]
    if n.type in _TESTED:
        return [(n, True)]
    if n.type == "unary_expression":
        op, arg = n.child_by_field_name("operator"), n.child_by_field_name("argument")
        if op is not None and op.type == "!" and arg is not None and arg.type in _TESTED:
            return [(arg, False)]
        return []
    if n.type != "binary_expression":
        return []
    op = n.child_by_field_name("operator")
    left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
    if op is None or left is None or right is None:
        return []
    if op.type == "&&":
        return _conjuncts(left) + _conjuncts(right)
    if op.type in _TESTS and left.type in _TESTED and _NAMED.fullmatch(right.text or b""):
        return [(left, _TESTS[op.type][0] + _text(right))]
    return []


def _case_ranges(flag: Node, k: int) -> list[tuple[int, int, int, bool | str]]:
    """`switch (mode) { case MODE_A: ... break; ... default: ... }`: a case reached from its
    own label only (the case before it ends in a break, return, goto or continue) runs with
    `mode == MODE_A`; `default:` with none of the cases' names.  A case with a number, or one
    another falls into, says nothing."""
    paren = flag.parent
    stmt = paren.parent if paren is not None else None
    body = stmt.child_by_field_name("body") if stmt is not None \
        and stmt.type == "switch_statement" else None
    if body is None:
        return []
    cases = [c for c in body.named_children if c.type == "case_statement"]
    values = [c.child_by_field_name("value") for c in cases]
    names = [_text(v) for v in values if v is not None]
    if not all(_NAMED.fullmatch(n.encode()) for n in names):
        return []  # a number among the cases: what default means is not a set of names
    out: list[tuple[int, int, int, bool | str]] = []
    alone = True  # the case is entered from its own label only
    entered: set[str] | None = set()  # the labels that lead here, falling through
    for c, v in zip(cases, values, strict=True):
        stmts = [x for x in c.named_children if x != v and x.type != "comment"]
        if alone:
            entered = set()
        if entered is not None:
            entered = entered | {_text(v)} if v is not None else None
        if alone and stmts:
            if v is not None:
                out.append((c.start_byte, c.end_byte, k, "=" + _text(v)))
            else:
                out.extend((c.start_byte, c.end_byte, k, "!" + n) for n in names)
        elif stmts and entered is not None:
            # fallen into from the cases before: none of the other names
            out.extend((c.start_byte, c.end_byte, k, "!" + n) for n in names
                       if n not in entered)
        alone = bool(stmts) and _jumps(stmts[-1])
    return out


_JUMPS = frozenset({"return_statement", "goto_statement", "break_statement",
                    "continue_statement"})


def _rest_of_block(pf: _PendingFunction, stmt: Node) -> int | None:
    """Where what follows an `if (...) return;` in its block stops being behind the test:
    the next label a goto from before the test can get to, or the block's end (None: the
    statement is not in a block)."""
    block = stmt.parent
    if block is None or block.type != "compound_statement":
        return None
    return next((c.start_byte for c in block.named_children
                 if c.start_byte > stmt.start_byte and c.type == "labeled_statement"
                 and _entered_before(pf.body, c, stmt.end_byte)), block.end_byte)


def _entered_before(body: Node, labeled: Node, after: int) -> bool:
    """Some `goto` to the label of `labeled` lies before byte `after` (a jump that skips a
    test made there); a label only jumped to from past the test (`again:` of a retry loop
    below `if (!tcon) return 0;`) is behind the test too."""
    label = labeled.child_by_field_name("label")
    if label is None:
        return True
    text = body.text or b""
    pat = re.compile(rb"\bgoto\s+" + re.escape(label.text or b"") + rb"\s*;")
    return any(body.start_byte + m.start() < after for m in pat.finditer(text))


def _jumps(n: Node) -> bool:
    """A statement that never falls through to the rest of its block: a return, goto, break
    or continue (the flag it tests says the same in every iteration), or a block ending in
    one."""
    if n.type == "compound_statement":
        kids = [c for c in n.named_children if c.type != "comment"]
        return bool(kids) and kids[-1].type in _JUMPS
    return n.type in _JUMPS


def _guard_at(ranges: list[tuple[int, int, int, bool | str]], at: int
              ) -> tuple[tuple[int, bool | str], ...]:
    return tuple(sorted({(k, w) for s, e, k, w in ranges if s <= at < e}, key=need_key))


def _const_return(body: bytes) -> str:
    """The literal every return of a body returns (`return 0;` only), or ""."""
    values = {v.strip() for v in _RETURN.findall(body)}
    return values.pop().decode() if len(values) == 1 and b"0" in values else ""


def _merge_effects(a: LockEffect, b: LockEffect) -> LockEffect:
    if a == b:
        return a
    touched = {e for e, _ in a.acquires + a.releases + b.acquires + b.releases}
    return LockEffect((), (), tuple(sorted(touched | set(a.unknown) | set(b.unknown))))


def _first_error_hint(fn: Node, text: bytes) -> str:
    node = fn
    while True:
        for child in node.children:
            if child.type == "ERROR" or child.is_missing:
                return _error_culprit(text, child.start_byte)
            if child.has_error:
                node = child
                break
        else:
            return _error_culprit(text, node.start_byte)


def lock_op_for(api: str, args: list[str], line: int, col: int, env: dict[str, str],
                ctx: FileContext, scoped: bool = False, spec: dict[str, object] | None = None
                ) -> LockOp | None:
    """A LockOp for a call to the lock API `api` with argument texts `args`."""
    spec = spec if spec is not None else ctx.kb.lock_apis.get(api)
    if spec is None:
        return None
    arg = spec.get("arg", 0)
    if arg is None or "id" in spec:
        expr = str(spec.get("id", api))
        cls = expr
    else:
        assert isinstance(arg, int)
        if arg >= len(args):
            return None
        expr = normalise(args[arg])
        cls = str(spec["cls"]) if "cls" in spec else lock_class(
            expr, env, ctx.globals_, ctx.structs, ctx.path)
        if "cls" in spec and "::" in cls:
            # lock_sock(sk) is sk->sk_lock, bh_lock_sock(sk) sk->sk_lock.slock: two locks of
            # one object, never one lock named `sk`
            expr = f"{expr}->{cls.split('::', 1)[1]}"
    return LockOp(str(spec.get("op", "acquire")), api, str(spec["kind"]), expr, cls,
                  spec.get("irq"), spec.get("bh"), line, col, scoped)  # type: ignore[arg-type]


__all__ = ["FileContext", "LockOp", "extract_file", "lock_op_for"]
