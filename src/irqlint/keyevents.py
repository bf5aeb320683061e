"""Per-function key events: the calls and table-slot stores that may release, unpublish or map
an identifier or object, in path order (for unpublish-after-free).

Nothing is classified here: which call releases and which unpublishes is knowledge
(``kb/unpublish.json``) and callee summaries, both applied in the program phase
(``keyflow``).  What only the syntax can tell is recorded instead:

- each event's arguments as written, and whether its statement runs on every path that gets
  that far (``top``: not inside a branch or a loop body);
- which events can follow which on some path of the function's control-flow graph (the lock
  engine's graph builder, fed with these events), on a path that does not reassign a variable
  the first event's arguments mention (``after``, a bit set);
- locals (and fields of local structs) set exactly once from a simple expression, so that a
  key copied into a local is still the same key (``copies``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tree_sitter import Node

from .ir import KeyEvent, KeyFacts
from .lockstate import _Builder

if TYPE_CHECKING:
    from .extract import FileContext, _Buckets, _PendingFunction

MAX_EVENTS = 256  # beyond this the path relation is not computed (generated tables, parsers)
# an argument that can carry a key: a name, a field chain, an element, a cast or & of one
_KEYLIKE = re.compile(r"^[(&*\s]*(?:\([^()]*\)\s*)?[A-Za-z_][\w.\->\[\]\s]*\)?$")
_SIMPLE = re.compile(r"^&?[A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*|\[[^\[\]]*\])*$")
_IDENT = re.compile(r"[A-Za-z_]\w*")
# f(&x), f(&x[i]): the callee may store a new value in x (or an element of it)
_OUT = re.compile(r"^&\s*([A-Za-z_]\w*)\s*(?:\[[^\[\]]*\]\s*)*$")
# the variable an argument hangs off: `&p->node` p, `(u64)x` x, `EVTCHN_ROW(e)` e
_ROOT_OF = re.compile(r"^[\s(&*]*(?:\([^()]*\)\s*)?(?:[A-Z_][A-Z0-9_]*\(\s*)?([A-Za-z_]\w*)")
_MEMBERS = re.compile(r"(?:->|\.)\s*[A-Za-z_]\w*")  # field names are no variables


def _text(n: Node) -> str:
    return " ".join(n.text.decode("utf-8", "replace").split()) if n.text is not None else ""


def _args(args: Node | None) -> tuple[str, ...]:
    if args is None:
        return ()
    return tuple(_text(a) for a in args.named_children if a.type != "comment")


def _top(n: Node, body: Node) -> bool:
    """True if n runs whenever its function gets as far as n's statement: every ancestor up
    to the body is an expression, a plain statement, or the condition of an if/switch."""
    child = n
    p = n.parent
    while p is not None and p != body:
        t = p.type
        if t in ("if_statement", "switch_statement"):
            if p.child_by_field_name("condition") != child:
                return False
        elif t in ("compound_statement", "else_clause", "case_statement", "while_statement",
                   "for_statement", "do_statement", "labeled_statement",
                   "conditional_expression") or t.startswith("preproc_"):
            return False
        elif t == "binary_expression":
            op = p.child_by_field_name("operator")
            if op is not None and _text(op) in ("&&", "||") and p.child_by_field_name(
                    "right") == child:
                return False
        child, p = p, p.parent
    return p is not None


def _slot(lhs: Node) -> tuple[str, str] | None:
    """`table[i]`, `t->map[i][j]`: (table, index) with every index joined by "][" ."""
    idx: list[str] = []
    n = lhs
    while n.type == "subscript_expression":
        i = n.child_by_field_name("index")
        if i is None:
            return None
        idx.append(_text(i))
        inner = n.child_by_field_name("argument")
        if inner is None:
            return None
        n = inner
    if not idx or not _SIMPLE.match(_text(n)):
        return None
    return _text(n), "][".join(reversed(idx))


class _EventBuilder(_Builder):
    """The lock engine's graph builder with key events in place of lock events: the same
    gotos, switch fall-through, loops, #ifdef alternatives and noreturn calls."""

    def __init__(self, pf: _PendingFunction, ctx: FileContext,
                 spans: list[tuple[int, int, int]], noreturn: list[tuple[int, int]],
                 outs: list[tuple[int, int, frozenset[str]]]) -> None:
        super().__init__(pf, ctx, {})
        # (start, end, event index) sorted by end: evaluation order, inner calls first
        self.spans = spans
        self.noreturn = noreturn
        self.outs = outs

    def events(self, start: int, end: int, skip: Node | None = None) -> list[tuple[Any, ...]]:
        out: list[tuple[int, tuple[Any, ...]]] = []
        for s, e, i in self.spans:
            if start <= s and e <= end:
                out.append((e, ("k", i)))
        for s, e in self.noreturn:
            if start <= s and e <= end:
                out.append((e, ("end",)))
        for s, e, names in self.outs:
            if start <= s and e <= end:
                out.append((e - 1, ("assign", frozenset(), names)))  # before the event itself
        out.sort(key=lambda x: x[0])
        return [ev for _, ev in out]

    def _prune(self) -> None:
        pass  # every assignment matters: it may reassign a key


_WANTED: dict[int, Callable[[str], bool]] = {}


def _wanted(spec: dict[str, Any]) -> Callable[[str], bool]:
    """Calls worth recording: the knowledge base's leaves, and functions named like a
    wrapper of one (xen_evtchn_close, foo_put_slot); one test per profile and process."""
    got = _WANTED.get(id(spec))
    if got is None:
        leaves = frozenset(spec["releases"]) | frozenset(spec["unpublishes"]) | frozenset(
            spec["setters"])
        pattern = re.compile(spec["wrapper_pattern"])
        never = re.compile(spec.get("not_wrapper_pattern") or "(?!)")

        memo: dict[str, bool] = {}

        def got(name: str) -> bool:
            hit = memo.get(name)
            if hit is None:
                hit = memo[name] = name in leaves or (pattern.search(name) is not None
                                                      and never.search(name) is None)
            return hit

        _WANTED[id(spec)] = got
    return got


def collect(pf: _PendingFunction, ctx: FileContext, assigns: _Buckets, decls: _Buckets
            ) -> KeyFacts | None:
    body = pf.body
    spec = ctx.kb.section("unpublish")
    stores = spec["store_macros"]
    wanted = _wanted(spec)
    noreturn = ctx.kb.names("noreturn")
    lock_apis = ctx.kb.lock_apis
    events: list[tuple[int, int, KeyEvent]] = []
    nr: list[tuple[int, int]] = []
    # names of calls that are no event (they may still reassign through &x); their call
    # nodes are only looked up if the path graph is built
    others: list[Node] = []
    for n, name in pf.names:
        if name in lock_apis:
            continue
        if name not in stores and name not in noreturn and not wanted(name):
            others.append(n)
            continue
        call = n.parent
        if call is None:
            continue
        if name in noreturn:
            nr.append((call.start_byte, call.end_byte))
            continue
        args_node = call.child_by_field_name("arguments")
        argv = _args(args_node)
        sp = n.start_point
        if name in stores and len(argv) >= 2 and args_node is not None:
            dst = args_node.named_children[0]
            while dst.type in ("pointer_expression", "parenthesized_expression") \
                    and dst.named_children:
                dst = dst.named_children[-1]
            got = _slot(dst)
            if got is not None:
                ev = KeyEvent("slot", name, (*got, argv[1]), sp[0] + 1, sp[1] + 1,
                              _top(call, body))
                events.append((call.start_byte, call.end_byte, ev))
            continue
        others.append(n)
        if not any(_KEYLIKE.match(a) for a in argv):
            continue
        events.append((call.start_byte, call.end_byte,
                       KeyEvent("call", name, argv, sp[0] + 1, sp[1] + 1, _top(call, body))))
    lhss = assigns.within(body.start_byte, body.end_byte)
    for lhs in lhss:
        a = lhs.parent
        if lhs.type != "subscript_expression" or a is None:
            continue
        rhs = a.child_by_field_name("right")
        got = _slot(lhs) if rhs is not None else None
        if got is not None and rhs is not None:
            sp = lhs.start_point
            ev = KeyEvent("slot", "", (*got, _text(rhs)), sp[0] + 1, sp[1] + 1, _top(a, body))
            events.append((a.start_byte, a.end_byte, ev))
    if not events:
        return None  # most functions: nothing more to read
    counts: dict[str, int] = {}
    sets: dict[str, str] = {}
    for lhs in lhss:
        a = lhs.parent
        if a is None:
            continue
        rhs = a.child_by_field_name("right")
        op = a.child_by_field_name("operator")
        target = _text(lhs)
        counts[target] = counts.get(target, 0) + 1
        if rhs is not None and op is not None and _text(op) == "=":
            sets[target] = _text(rhs)
    from .extract import _declarator_name  # extract imports this module

    declared: set[str] = set()
    for d in decls.within(body.start_byte, body.end_byte):
        for dd in d.children_by_field_name("declarator"):
            if dd.type != "init_declarator":
                var, _ = _declarator_name(dd)
                declared.add(var)
                continue
            name_node = dd.child_by_field_name("declarator")
            value = dd.child_by_field_name("value")
            if name_node is None or value is None or name_node.type != "identifier":
                continue
            var = _text(name_node)
            declared.add(var)
            counts[var] = counts.get(var, 0) + 1
            if value.type == "initializer_list":  # struct evtchn_close close = { .port = p }
                for pair in value.named_children:
                    des = pair.child_by_field_name("designator") if \
                        pair.type == "initializer_pair" else None
                    val = pair.child_by_field_name("value") if des is not None else None
                    if des is not None and val is not None and des.type == "field_designator":
                        key = f"{var}.{_text(des).lstrip('.')}"
                        counts[key] = counts.get(key, 0) + 1
                        sets[key] = _text(val)
            else:
                sets[var] = _text(value)
    events.sort(key=lambda e: (e[1], -e[0]))
    evs = [e[2] for e in events]
    locals_ = declared - {p for p, _ in pf.params}  # a parameter is set on entry already
    params = {p for p, _ in pf.params}

    def stable(v: str) -> bool:
        """The copy keeps naming the same key: what it was read from is never reassigned
        (`t = x` inside a walk that moves x is no copy of the x of later statements)."""
        roots = _IDENT.findall(_MEMBERS.sub("", v))
        return all(counts.get(r, 0) == 0 if r in params or r not in locals_
                   else counts.get(r, 0) == 1 for r in roots)

    copies = tuple(sorted((k, v) for k, v in sets.items() if counts.get(k) == 1
                          and k.split(".")[0] in locals_ and _copyable(v) and stable(v)))
    # the graph is built only when something depends on it: two events on one root variable
    # (a possible pair), or an event on every path with an early return before it
    cmap = dict(copies)
    roots = [_roots(ev, cmap) for ev in evs]
    # a pair is a release followed by an unpublish on one root: a known release (kfree) is
    # never the unpublish, a known unpublish (list_del) never the release, a table store
    # never the release; a wrapper-named call may turn out to be either
    releases, unpublishes = frozenset(spec["releases"]), frozenset(spec["unpublishes"]) | \
        frozenset(spec["setters"])
    may_release = [ev.kind == "call" and ev.callee not in unpublishes for ev in evs]
    may_unpublish = [ev.kind != "call" or ev.callee not in releases for ev in evs]
    shared = any(may_release[i] and may_unpublish[j] and not roots[i].isdisjoint(roots[j])
                 for i in range(len(evs)) for j in range(len(evs)) if i != j)
    # "on every path" (ev.sure) only matters to a summary "releases its parameter"
    exits = [ev.top and may_release[i] and not roots[i].isdisjoint(params)
             and _early_exit(ctx.text, body.start_byte, start)
             for i, ((start, _, _), ev) in enumerate(zip(events, evs, strict=True))]
    if (shared or any(exits)) and len(evs) <= MAX_EVENTS:
        evs = _order(pf, ctx, events, nr, _outs(others))
    else:
        evs = [ev._replace(sure=ev.top and not x) for ev, x in zip(evs, exits, strict=True)]
    evs = _compact(evs, params, dict(copies))
    if not evs:
        return None
    return KeyFacts(pf.name, pf.node.start_point[0] + 1, tuple(evs), copies)


_EXIT = re.compile(rb"\b(?:return|goto)\b")


def _early_exit(text: bytes, start: int, end: int) -> bool:
    return _EXIT.search(text, start, end) is not None


def _outs(names: list[Node]) -> list[tuple[int, int, frozenset[str]]]:
    """f(&x), f(&x[i]): x may hold something else after the call."""
    out = []
    for n in names:
        call = n.parent
        if call is None:
            continue
        args = call.child_by_field_name("arguments")
        if args is None or b"&" not in (args.text or b""):
            continue
        refs = frozenset(m.group(1) for a in _args(args) if (m := _OUT.match(a)))
        if refs:
            out.append((call.start_byte, call.end_byte, refs))
    return out


def _compact(evs: list[KeyEvent], params: set[str], copies: dict[str, str]) -> list[KeyEvent]:
    """Only what can matter, to keep the cached facts small.  Every key an event can name
    (an argument, a field of one, the object around an embedded node) hangs off the root
    variable of one of its arguments, after locals set once are replaced by what they were
    set from: a pair needs two events sharing a root, a summary a root that is a parameter
    (on every path).  Arguments that cannot name a key are blanked."""
    roots = [_roots(ev, copies) for ev in evs]
    after = [0] * len(evs)
    targets = 0
    for i, ev in enumerate(evs):
        for j in range(i + 1, len(evs)):
            if ev.after >> j & 1 and not roots[i].isdisjoint(roots[j]):
                after[i] |= 1 << j
        targets |= after[i]
    keep = [i for i, ev in enumerate(evs)
            if after[i] or targets >> i & 1 or (ev.top and not roots[i].isdisjoint(params))]
    new = {old: k for k, old in enumerate(keep)}
    out = []
    for old in keep:
        bits = 0
        for j, k in new.items():
            if after[old] >> j & 1:
                bits |= 1 << k
        args = tuple(a if len(a) <= 12 or _KEYLIKE.match(a) else "" for a in evs[old].args)
        out.append(evs[old]._replace(args=args, after=bits))
    return out


def _roots(ev: KeyEvent, copies: dict[str, str]) -> frozenset[str]:
    texts = ev.args[1:2] if ev.kind == "slot" else ev.args
    out = set()
    for t in texts:
        for part in t.split("]["):
            for _ in range(4):
                m = _ROOT_OF.match(part)
                if m is None:
                    break
                var = m.group(1)
                # `close.port` set once, then `&close`: the struct's fields were copies
                nxt = copies.get(var) or next((v for k, v in copies.items()
                                               if k.startswith(var + ".")), None)
                if nxt is None or not _ROOT_OF.match(nxt):
                    break
                part = nxt
            m = _ROOT_OF.match(part)
            if m is not None:
                out.add(m.group(1))
    return frozenset(out)


_MACRO1 = re.compile(r"^[A-Z_][A-Z0-9_]*\(([^(),]*)\)$")


def _copyable(v: str) -> bool:
    """A right-hand side that names a key: a simple lvalue, or one passed through an
    upper-case one-argument macro (EVTCHN_ROW(evtchn))."""
    v = v.replace(" ", "")
    m = _MACRO1.match(v)
    return bool(_SIMPLE.match(m.group(1) if m else v))


def _order(pf: _PendingFunction, ctx: FileContext, events: list[tuple[int, int, KeyEvent]],
           nr: list[tuple[int, int]], outs: list[tuple[int, int, frozenset[str]]]
           ) -> list[KeyEvent]:
    spans = [(s, e, i) for i, (s, e, _) in enumerate(events)]
    b = _EventBuilder(pf, ctx, spans, nr, outs)
    cfg = b.build()
    where: dict[int, tuple[int, int]] = {}  # event -> (node, position in the node)
    for node, evs in enumerate(cfg.events):
        for pos, ev in enumerate(evs):
            if ev[0] == "k":
                where.setdefault(ev[1], (node, pos))
    out: list[KeyEvent] = []
    for i, (_, _, ev) in enumerate(events):
        after = 0
        sure = False
        if i in where:
            kill = frozenset(_IDENT.findall(" ".join(ev.args)))
            # later events only: around a loop's back edge the key is nearly always the next
            # element's (xa_for_each's cursor is not its first argument, a retry goto re-reads)
            after = _reach(cfg.events, cfg.succ, where[i], kill) & ~((2 << i) - 1)
            sure = ev.top and _unavoidable(cfg.succ, where[i][0], _validity(ctx))
        out.append(ev._replace(after=after, sure=sure))
    return out


_PLAIN_TEST = r"^!?\s*[A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*)*$"  # `if (!p)`, `if (d->port)`


_VALIDITY: dict[int, re.Pattern[str]] = {}


def _validity(ctx: FileContext) -> re.Pattern[str]:
    """A validity test of a key (knowledge base), or a plain truth test of a variable."""
    spec = ctx.kb.section("unpublish")
    got = _VALIDITY.get(id(spec))
    if got is None:
        got = _VALIDITY[id(spec)] = re.compile(f"{spec['validity_pattern']}|{_PLAIN_TEST}")
    return got


def _unavoidable(succ: list[list[tuple[int, Any]]], node: int,
                 validity: re.Pattern[str]) -> bool:
    """No path from the entry to the exit avoids `node`, leaving aside the paths that turn at
    a validity test (`if (!p) return;`, IS_ERR(), VALID_EVTCHN()) or a build option.  A
    refcount test (`if (!refcount_dec_and_test(&d->ref)) return;`) is a real way round."""
    seen = {1}
    todo = [1]
    while todo:
        n = todo.pop()
        if n == node:
            continue
        for m, cond in succ[n]:
            if m == 0:
                return False
            if cond is not None:
                key = cond[0]
                if key[0] in ("V", "P") or (key[0] in ("C", "AND") and validity.search(key[1])):
                    continue
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return True


def _reach(events: list[list[tuple[Any, ...]]], succ: list[list[tuple[int, Any]]],
           start: tuple[int, int], kill: frozenset[str]) -> int:
    """Bit set of the key events reachable from start without passing a reassignment of a
    name in kill (or a noreturn call)."""
    bits = 0
    node, pos = start
    todo = [(node, pos + 1)]
    seen: set[int] = set()
    while todo:
        n, p = todo.pop()
        stopped = False
        for ev in events[n][p:]:
            k = ev[0]
            if k == "k":
                bits |= 1 << ev[1]
            elif k == "end" or (k == "assign" and not (ev[1] | ev[2]).isdisjoint(kill)):
                stopped = True
                break
        if stopped:
            continue
        for m, _ in succ[n]:
            if m not in seen:
                seen.add(m)
                todo.append((m, 0))
    return bits
