"""Intraprocedural lock-state engine.

For a function that touches locks, build a control-flow graph of the statements (gotos, switch
fall-through, preprocessor alternatives and all), then propagate a *set* of abstract states
through it.  A state is the held locks (instance, kind, count, where taken), the branch facts
the path has assumed (``x`` true, ``#ifdef CONFIG_Y`` false), and trylock results bound to a
variable not yet tested.  Keeping states apart instead of joining them is what makes
`if (x) lock(); ... if (x) unlock();`, trylock and early returns quiet: a branch whose fact
contradicts the path is not taken.

Output, per function: the lock operations seen, the `lock-imbalance` diagnostics, and the net
lock effect (a frozen summary in terms of the parameters) that callers in the same file apply.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tree_sitter import Node

from . import sharing
from .ir import Diagnostic, LockEffect, LockOp, Step
from .lockexpr import normalise
from .macros import split_args

if TYPE_CHECKING:
    from .extract import FileContext, _PendingFunction

RULE = "lock-imbalance"
END = "<end>"  # the return value recorded where a function falls off its end
MAX_STATES = 48
MAX_FACTS = 32
HELD = ("H", "C")
PSEUDO = frozenset({"irq", "bh", "preempt", "rcu", "migrate"})  # CPU state, not lock objects
NESTING = frozenset({"rcu", "srcu", "irq", "bh", "preempt", "migrate", "rspin", "rwlock_r"})
# `x = ...`, `x += ...`, `x++`, `++x` (but not `++p->count`, which writes a field of *p)
_ASSIGNED = re.compile(r"(?<![=!<>\.>])\b([A-Za-z_]\w*)\s*(?:[-+*/|&^]?=(?!=)|\+\+|--)"
                       r"|(?:\+\+|--)\s*([A-Za-z_]\w*)\b(?!\s*(?:->|\.|\[))")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_ROOT = re.compile(r"[(*&\s]*([A-Za-z_]\w*)(?:\s*\(\s*[(*&\s]*([A-Za-z_]\w*))?")
_VAR_INDEX = re.compile(r"\[[^\]]*[A-Za-z_][^\]]*\]")
_ERRORISH = re.compile(r"^(-|ERR_PTR\b|ERR_CAST\b|NULL$|false$)")

# --- events -------------------------------------------------------------------------------
# ("op", LockOp, bind_var | None, success | None)   lock operation (trylock bound to a variable)
# ("assign", frozenset[str], frozenset[str])          variables written (facts about them are
#                                                     void); variables whose locks are unsure
#                                                     from here on (written or aliased)
# ("end",)                                            a noreturn call: the path stops
# ("scope", tuple[str, ...])                          guard() locks of a block go out of scope
# ("at", line, col)                                   a call starts: record what is held
# ("w", line)                                         a shared write: record what is held


@dataclass(slots=True)
class Cfg:
    events: list[list[tuple[Any, ...]]] = field(default_factory=list)
    succ: list[list[tuple[int, tuple[Any, ...] | None]]] = field(default_factory=list)
    returns: dict[int, tuple[int, str]] = field(default_factory=dict)  # node -> (line, value)
    npred: list[int] = field(default_factory=list)
    track: set[tuple[Any, ...]] = field(default_factory=set)  # branch facts worth keeping
    # of those, the ones kept longest when paths must be merged: flags the body sets to a
    # constant (`locked = true;` where it locks, `if (locked) unlock();` later)
    flags: frozenset[tuple[Any, ...]] = frozenset()
    callee_ops: set[tuple[int, int, str]] = field(default_factory=set)  # from callee summaries
    # variable -> the functions whose results are assigned to it (None: something else too)
    var_calls: dict[str, frozenset[str] | None] = field(default_factory=dict)

    def node(self) -> int:
        self.events.append([])
        self.succ.append([])
        self.npred.append(0)
        return len(self.events) - 1

    def edge(self, a: int | None, b: int, cond: tuple[Any, ...] | None = None) -> None:
        if a is not None:
            self.succ[a].append((b, cond))
            self.npred[b] += 1


def _text(n: Node) -> str:
    return n.text.decode("utf-8", "replace") if n.text is not None else ""


class _Builder:
    """Statement tree -> Cfg; events come from the calls inside each statement's range."""

    def __init__(self, pf: _PendingFunction, ctx: FileContext,
                 call_parts: dict[tuple[int, int], tuple[Node, Node]]) -> None:
        self.pf, self.ctx, self.call_parts = pf, ctx, call_parts
        self.cfg = Cfg()
        self.exit = self.cfg.node()
        self.labels: dict[str, int] = {}
        self.breaks: list[int] = []
        self.continues: list[int] = []
        self.ops: list[LockOp] = []
        self.forgotten: set[str] = set()  # lock states a callee made unknown (transitively)
        self._bound: set[str] = set()  # variables holding a trylock result
        self._sets: set[str] = set()  # variables set to a constant somewhere
        self._set_in: list[tuple[str, int, int]] = []  # (variable, lines of the block)
        # evaluation order: an inner call ends before the call it is an argument of
        calls = [(s, e) for s, e in call_parts]
        calls.sort(key=lambda c: (c[1], -c[0]))
        self.calls = calls
        self.ends = [e for _, e in calls]
        self.wstarts = [s for s, _ in pf.shared_writes]  # shared writes (inconsistent-locking)
        # `struct x *p = arg->x;`, `spinlock_t *l = &arg->lock;`, never re-pointed: p->lock is
        # arg->x->lock, l is arg->lock (one lock, one name, the one callers can substitute)
        self.alias = _aliases(pf)
        self.callee_ops: set[tuple[int, int, str]] = set()  # ops a callee's summary made

    # -- events for a byte range -----------------------------------------------------------
    def events(self, start: int, end: int, skip: Node | None = None) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        kb, ctx = self.ctx.kb, self.ctx
        lo = bisect.bisect_left(self.ends, start)
        hi = bisect.bisect_right(self.ends, end)
        for c in self.calls[lo:hi]:
            if c[0] < start:
                continue
            if skip is not None and c[0] == skip.start_byte and c[1] == skip.end_byte:
                continue
            fnode, args = self.call_parts[c]
            call = fnode.parent
            assert call is not None
            line, col = call.start_point[0] + 1, call.start_point[1] + 1
            out.append(("at", line, col))  # what is held when the call starts
            if fnode.type == "call_expression":
                op = self._guard(fnode, args, line, col)
                if op is not None:
                    out.append(("op", op, None, None))
                continue
            if fnode.type != "identifier":
                continue
            name = _text(fnode)
            if name in kb.names("noreturn") or (ctx.noreturn.get(name) and name != self.pf.name):
                out.append(("end",))
                continue
            if name in kb.lock_droppers:
                # knowledge: the call may drop those locks (a global one by its name: then
                # the callers of this function must forget it too)
                dropped = kb.lock_droppers[name]
                named = frozenset(c for c in dropped if "::" not in c)
                if named:
                    self.forgotten |= named
                    out.append(("forget", named))
                out.append(("forget_class", dropped - named))
            spec = kb.lock_apis.get(name)
            if spec is not None:
                argv = [_text(a) for a in args.named_children if a.type != "comment"]
                op = self._op(name, argv, line, col, spec)
                if op is None:
                    continue
                if _in_ternary(call):
                    out.append(("forget", frozenset({op.expr})))  # `w ? down_write : down_read`
                    continue
                if op.op == "trylock":
                    var = _bound_var(call)
                    if var:
                        self._bound.add(var)
                        out.append(("op", op, var, spec.get("success", "nonzero")))
                    continue
                out.append(("op", op, None, None))
                continue
            if name in ctx.wrappers.defs:
                argv = [_text(a) for a in args.named_children if a.type != "comment"]
                for api, aargs in ctx.wrappers.expand(name, argv, ctx.path):
                    wspec = kb.lock_apis.get(api)
                    if wspec is not None and wspec.get("op") != "trylock":
                        op = self._op(name, aargs, line, col, wspec)
                        if op is not None:
                            out.append(("op", op, None, None))
                continue
            outs = frozenset(_text(a)[1:].strip() for a in args.named_children
                             if a.type == "pointer_expression" and _text(a).startswith("&")
                             and a.named_children and a.named_children[0].type == "identifier")
            if outs:  # f(&p): p may point elsewhere afterwards
                out.append(("assign", frozenset(), outs))
            summ = ctx.summaries.get(name)
            if summ is None and name in kb.names("held_assertions"):
                continue  # assert_spin_locked(): a check, no lock operation
            if summ is None and kb.lock_function_re.search(name):
                # a lock helper defined elsewhere (a header's static inline, another file):
                # whatever it does to locks reached from its arguments is unknown to us
                roots = self.roots(args)
                if roots:
                    out.append(("forget_roots", roots))
                # a lock handed over by address (`reiserfs_mutex_lock_safe(&j->j_mutex, s)`):
                # its state is unknown here and to this function's callers
                named = frozenset(normalise(t) for a in args.named_children
                                  if a.type == "pointer_expression"
                                  and (t := _text(a)).startswith("&"))
                if named:
                    self.forgotten |= named
                    out.append(("forget", named))
                continue
            if summ is None:
                out.append(("touch", self.roots(args)))
                continue
            if name != self.pf.name and (summ[1].acquires or summ[1].releases or summ[1].unknown):
                params, eff = summ
                argv = [_text(a) for a in args.named_children if a.type != "comment"]
                subst = dict(zip(params, argv, strict=False))
                if eff.unknown:
                    lost = _unknown_at(summ, argv, self.alias)
                    self.forgotten |= lost
                    out.append(("forget", lost))
                for expr, kind in eff.releases:
                    out.append(("op", self._summary_op("release", name, expr, kind, subst,
                                                       line, col), None, None))
                for expr, kind in eff.acquires:
                    out.append(("op", self._summary_op("acquire", name, expr, kind, subst,
                                                       line, col), None, None))
        if self.wstarts:  # a store happens after the calls of its statement
            lo = bisect.bisect_left(self.wstarts, start)
            hi = bisect.bisect_left(self.wstarts, end)
            out.extend(("w", ln) for _, ln in self.pf.shared_writes[lo:hi])
        return out

    def _op(self, api: str, argv: list[str], line: int, col: int, spec: dict[str, Any],
            scoped: bool = False) -> LockOp | None:
        from .extract import lock_op_for

        op = lock_op_for(api, argv, line, col, self.pf.env, self.ctx, scoped, spec)
        if op is not None:
            op = op._replace(expr=self.unalias(op.expr))
            self.ops.append(op)
        return op

    def unalias(self, expr: str) -> str:
        return self.unalias_with(self.alias, expr)

    @staticmethod
    def unalias_with(alias: dict[str, tuple[str, bool]], expr: str) -> str:
        if not alias:
            return expr
        m = _HEAD.match(expr)
        if m is None or m.group(1) not in alias:
            return expr
        value, is_addr = alias[m.group(1)]
        if not m.group(2):
            return value
        return expr if is_addr else normalise(value + m.group(2))

    def roots(self, args: Node) -> frozenset[str]:
        """The variables the arguments hang off, and what the aliases among them stand for."""
        out = {_root(_text(a)) for a in args.named_children if a.type != "comment"} - {""}
        return frozenset(out | {_root(self.alias[r][0]) for r in out if r in self.alias})

    def _summary_op(self, op: str, api: str, expr: str, kind: str, subst: dict[str, str],
                    line: int, col: int) -> LockOp:
        from .lockexpr import lock_class

        real = _substitute(expr, subst)
        cls = lock_class(real, self.pf.env, self.ctx.globals_, self.ctx.structs, self.ctx.path)
        lop = LockOp(op, api, kind, self.unalias(real), cls, None, None, line, col)
        self.ops.append(lop)
        self.callee_ops.add((line, col, lop.expr))
        return lop

    def _guard(self, fnode: Node, args: Node, line: int, col: int) -> LockOp | None:
        """guard(class)(&lock): the inner call names the guard class."""
        inner = self.call_parts.get((fnode.start_byte, fnode.end_byte))
        if inner is None or inner[0].type != "identifier" or _text(inner[0]) != "guard":
            return None
        gclass = _text(inner[1]).strip("() ")
        spec = self.ctx.kb.guard_classes.get(gclass)
        if spec is None:
            return None
        argv = [_text(a) for a in args.named_children if a.type != "comment"]
        # guard(mutex_try): a trylock; the guarded body runs only when it succeeded
        op = "trylock" if gclass.endswith("_try") else "acquire"
        return self._op(f"guard({gclass})", argv, line, col, dict(spec, op=op), True)

    # -- statements ------------------------------------------------------------------------
    def build(self) -> Cfg:
        end = self.stmt(self.pf.body, self.cfg.node())  # node 1: the entry
        if end is not None:
            last = self.pf.body.end_point[0] + 1
            self.cfg.returns[end] = (last, END)
            self.cfg.edge(end, self.exit)
        self._prune()
        self.cfg.callee_ops = self.callee_ops
        return self.cfg

    def _prune(self) -> None:
        """Drop the parts of assignment and call events no state can care about: variables
        that no branch condition mentions and that no lock hangs off; calls that cannot touch
        a lock of this function.  Most statements then carry no event at all."""
        cond_vars: set[str] = set()
        tested: dict[tuple[Any, ...], set[int]] = {}
        for i, succ in enumerate(self.cfg.succ):
            for _, cond in succ:
                if cond is not None and isinstance(cond[0][1], str):
                    cond_vars |= _idents(cond[0][1])
                    k = cond[0]
                    keys = [("C", k[1]), *((sk[0], sk[1]) for sk in k[2])] if k[0] == "AND" \
                        else [(k[0], k[1])]
                    for k0, k1 in keys:
                        tested.setdefault((k0 if k0 != "V" else "C", k1), set()).add(i)
        # a branch fact only matters if the same condition is tested again later
        # what a returned variable is tested to be tells whether its return is an error
        returned = {v for _, v in self.cfg.returns.values() if _IDENT.fullmatch(v)}
        self.cfg.track = {k for k, heads in tested.items()
                          if len(heads) > 1 or k[0] == "P" or k[1] in self._sets
                          or _returned_test(k[1], returned)}
        # lock flags: set to a constant in a block that takes or lets go of a lock
        op_lines = sorted({op.line for op in self.ops})
        locky = {v for v, lo, hi in self._set_in
                 if bisect.bisect_left(op_lines, lo) < bisect.bisect_right(op_lines, hi)}
        self.cfg.flags = frozenset(k for k in self.cfg.track if k[1] in locky)
        lock_roots = {_root(op.expr) for op in self.ops} | {_root(e) for e in self.forgotten}
        any_global = any(r not in self.pf.env for r in lock_roots)
        watch = lock_roots | {"irq", "bh"}
        for i, evs in enumerate(self.cfg.events):
            if not evs:
                continue
            kept: list[tuple[Any, ...]] = []
            for ev in evs:
                k = ev[0]
                if k == "assign":
                    facts = ev[1] & (cond_vars | self._bound)
                    locks = ev[2] & watch
                    if facts or locks:
                        kept.append(("assign", facts, locks))
                elif k == "touch":
                    roots = ev[1] & lock_roots
                    if roots or any_global:
                        kept.append(("touch", roots))
                else:
                    kept.append(ev)
            self.cfg.events[i] = kept

    def simple(self, n: Node, cur: int | None, start: int | None = None) -> int | None:
        if cur is None:
            return None
        evs = self.events(n.start_byte if start is None else start, n.end_byte)
        assigned = _assigned(n)
        if assigned:
            self._note_calls(n, assigned)
            # facts about x go before `x = f()`; what x->lock is goes after f() ran
            evs.insert(0, ("assign", assigned, frozenset()))
            evs.append(("assign", frozenset(), assigned | _aliased(n)))
        # `locked = false;`, `r.found = true;`, `bool locked = true;`: the path now knows what
        # `if (locked)` will say
        for var, value in _const_sets(n):
            self._sets.add(var)
            # the block it is set in, not the body's own (lock flags: see _prune)
            if n.parent is not None and n.parent != self.pf.body:
                self._set_in.append((var, n.parent.start_point[0] + 1, n.parent.end_point[0] + 1))
            evs.append(("set", var, value not in ("0", "false", "NULL")))
        if not evs:
            return cur
        node = self.cfg.node()
        self.cfg.events[node] = evs
        self.cfg.edge(cur, node)
        if any(e[0] == "end" for e in evs):
            return None
        return node

    def _note_calls(self, n: Node, assigned: frozenset[str]) -> None:
        """`ret = f(...);`, `int ret = f(...);`: ret holds f's result (any other write to
        ret, or a condition's assignment, leaves what ret holds unknown)."""
        calls: dict[str, str] = {}
        pairs: list[tuple[Node | None, Node | None]] = []
        if n.type == "expression_statement" and n.named_children:
            e = n.named_children[0]
            op = e.child_by_field_name("operator")
            if e.type == "assignment_expression" and op is not None and _text(op) == "=":
                pairs.append((e.child_by_field_name("left"), e.child_by_field_name("right")))
        elif n.type == "declaration":
            pairs = [(d.child_by_field_name("declarator"), d.child_by_field_name("value"))
                     for d in n.children_by_field_name("declarator")
                     if d.type == "init_declarator"]
        for lhs, rhs in pairs:
            if lhs is not None and rhs is not None and lhs.type == "identifier" \
                    and rhs.type == "call_expression":
                fn = rhs.child_by_field_name("function")
                if fn is not None and fn.type == "identifier":
                    calls[_text(lhs)] = _text(fn)
        vc = self.cfg.var_calls
        for v in assigned:
            if v in calls and (v not in vc or vc[v] is not None):
                vc[v] = frozenset({*(vc.get(v) or ()), calls[v]})
            else:
                vc[v] = None

    def stmt(self, n: Node, cur: int | None) -> int | None:
        t = n.type
        if t == "compound_statement":
            scoped: list[str] = []
            for c in n.named_children:
                before = len(self.ops)
                cur = self.stmt(c, cur)
                scoped.extend(x for op in self.ops[before:]
                              if op.scoped and op.api.startswith("guard(")
                              and c.type != "while_statement" for x in _scope_names(op))
            if scoped and cur is not None:
                node = self.cfg.node()
                self.cfg.events[node] = [("scope", tuple(scoped))]
                self.cfg.edge(cur, node)
                cur = node
            return cur
        if t in ("expression_statement", "declaration", "ERROR", "gnu_asm_expression"):
            return self.simple(n, cur)
        if t == "if_statement":
            return self.if_stmt(n, cur)
        if t in ("while_statement", "for_statement"):
            return self.loop(n, cur)
        if t == "do_statement":
            return self.do_loop(n, cur)
        if t == "return_statement":
            if cur is None:
                return None
            cur = self.simple(n, cur)
            if cur is None:
                return None
            val = n.named_children[0] if n.named_children else None
            node = self.cfg.node()
            self.cfg.edge(cur, node)
            value = " ".join(_text(val).split()) if val else ""
            self.cfg.returns[node] = (n.start_point[0] + 1, value)
            self.cfg.edge(node, self.exit)
            return None
        if t == "goto_statement":
            lab = n.child_by_field_name("label")
            if cur is not None and lab is not None:
                jump = self.cfg.node()
                self.cfg.events[jump] = [("jump", n.start_point[0] + 1, _text(lab))]
                self.cfg.edge(cur, jump)
                self.cfg.edge(jump, self.label(_text(lab)))
            return None
        if t == "labeled_statement":
            lab = n.child_by_field_name("label")
            target = self.label(_text(lab)) if lab is not None else self.cfg.node()
            self.cfg.edge(cur, target)
            body = [c for c in n.named_children if c.type != "statement_identifier"]
            cur2: int | None = target
            for c in body:
                cur2 = self.stmt(c, cur2)
            return cur2
        if t == "break_statement":
            if self.breaks:
                self.cfg.edge(cur, self.breaks[-1])
            return None
        if t == "continue_statement":
            if self.continues:
                self.cfg.edge(cur, self.continues[-1])
            return None
        if t == "switch_statement":
            return self.switch(n, cur)
        if t == "case_statement":  # stray case outside switch body handling
            cur2 = cur
            for c in n.named_children[1:] if n.child_by_field_name("value") else n.named_children:
                cur2 = self.stmt(c, cur2)
            return cur2
        if t in ("preproc_if", "preproc_ifdef", "preproc_elif", "preproc_elifdef"):
            return self.preproc(n, cur)
        if t in ("preproc_else",):
            for c in n.named_children:
                cur = self.stmt(c, cur)
            return cur
        if t in ("comment", "type_definition", "preproc_call", "preproc_def",
                 "preproc_function_def", "preproc_include", "empty_statement", ";",
                 "struct_specifier", "enum_specifier", "union_specifier", "function_definition",
                 "attributed_statement"):
            if t == "attributed_statement":
                for c in n.named_children:
                    if c.type != "attribute_declaration":
                        cur = self.stmt(c, cur)
            return cur
        # anything else (a grammar upgrade's new node type): its calls still count
        return self.simple(n, cur)

    def label(self, name: str) -> int:
        if name not in self.labels:
            self.labels[name] = self.cfg.node()
        return self.labels[name]

    def branch(self, cond: Node | None, cur: int | None) -> tuple[int | None, int | None]:
        """Evaluate a condition; return the (true, false) successor nodes."""
        if cur is None:
            return None, None
        if cond is None:
            return cur, None
        key, try_call = _cond_key(cond, self)
        evs = self.events(cond.start_byte, cond.end_byte, skip=try_call)
        assigned = _assigned(cond)
        if assigned:
            self.cfg.var_calls.update(dict.fromkeys(assigned))
            evs.insert(0, ("assign", assigned, frozenset()))
            evs.append(("assign", frozenset(), assigned))
        head = self.cfg.node()
        self.cfg.events[head] = evs
        self.cfg.edge(cur, head)
        if any(e[0] == "end" for e in evs):
            return None, None
        if key == ("CONST", True):
            t = self.cfg.node()
            self.cfg.edge(head, t)
            return t, None
        if key == ("CONST", False):
            f = self.cfg.node()
            self.cfg.edge(head, f)
            return None, f
        t, f = self.cfg.node(), self.cfg.node()
        self.cfg.edge(head, t, (key, True))
        self.cfg.edge(head, f, (key, False))
        return t, f

    def if_stmt(self, n: Node, cur: int | None) -> int | None:
        cond = n.child_by_field_name("condition")
        t, f = self.branch(cond, cur)
        cons = n.child_by_field_name("consequence")
        end_t = self.stmt(cons, t) if cons is not None else t
        alt = n.child_by_field_name("alternative")
        if alt is not None:
            for c in alt.named_children:
                f = self.stmt(c, f)
        return self.join(end_t, f)

    def join(self, *nodes: int | None) -> int | None:
        live = [x for x in nodes if x is not None]
        if not live:
            return None
        if len(live) == 1:
            return live[0]
        j = self.cfg.node()
        for x in live:
            self.cfg.edge(x, j)
        return j

    def loop(self, n: Node, cur: int | None) -> int | None:
        if n.type == "for_statement":
            init = n.child_by_field_name("initializer")
            if init is not None:
                cur = self.simple(init, cur)
        if cur is None:
            return None
        head = self.cfg.node()
        self.cfg.edge(cur, head)
        after = self.cfg.node()
        cont = self.cfg.node()
        guard_name = self.ctx.norm.guard_loops.get(n.start_byte)
        cond = n.child_by_field_name("condition")
        body = n.child_by_field_name("body")
        if guard_name is not None and cond is not None:
            return self.scoped_guard(guard_name, cond, body, cur, head, after)
        cursor = self.ctx.norm.loops.get(n.start_byte)
        if cursor:
            # list_for_each_entry(pos, ...) assigns pos on every iteration
            self.cfg.events[head] = [("assign", frozenset({cursor}), frozenset({cursor}))]
        t, f = self.branch(cond, head)
        self.cfg.edge(f, after)
        self.breaks.append(after)
        self.continues.append(cont)
        end = self.stmt(body, t) if body is not None else t
        self.breaks.pop()
        self.continues.pop()
        self.cfg.edge(end, cont)
        upd = n.child_by_field_name("update") if n.type == "for_statement" else None
        c2 = self.simple(upd, cont) if upd is not None else cont
        self.cfg.edge(c2, head)
        return after if self.cfg_has_pred(after) else None

    def scoped_guard(self, gname: str, cond: Node, body: Node | None, cur: int, head: int,
                     after: int) -> int | None:
        parts = split_args(_text(cond).strip()[1:-1])
        spec = self.ctx.kb.guard_classes.get(parts[0]) if parts else None
        line, col = cond.start_point[0] + 1, cond.start_point[1] + 1
        evs: list[tuple[Any, ...]] = []
        op = None
        if spec is not None:
            op = self._op(f"scoped_guard({parts[0]})", parts[1:], line, col,
                          dict(spec, op="trylock" if parts[0].endswith("_try") else "acquire"),
                          True)
        if op is not None:
            evs.append(("op", op, None, None))
        self.cfg.events[head] = evs
        self.breaks.append(after)
        self.continues.append(after)
        end = self.stmt(body, head) if body is not None else head
        self.breaks.pop()
        self.continues.pop()
        if op is not None:
            # the guard ends however the body is left: its end, break or continue
            self.cfg.events[after] = [("scope", _scope_names(op))]
        self.cfg.edge(end, after)
        if gname == "scoped_cond_guard" or (parts and parts[0].endswith("_try")):
            self.cfg.edge(head, after)  # the body is skipped when the lock is not had
        return after if self.cfg_has_pred(after) else None

    def cfg_has_pred(self, node: int) -> bool:
        return self.cfg.npred[node] > 0

    def do_loop(self, n: Node, cur: int | None) -> int | None:
        if cur is None:
            return None
        head = self.cfg.node()
        self.cfg.edge(cur, head)
        after, cont = self.cfg.node(), self.cfg.node()
        self.breaks.append(after)
        self.continues.append(cont)
        body = n.child_by_field_name("body")
        end = self.stmt(body, head) if body is not None else head
        self.breaks.pop()
        self.continues.pop()
        self.cfg.edge(end, cont)
        t, f = self.branch(n.child_by_field_name("condition"), cont)
        self.cfg.edge(t, head)
        self.cfg.edge(f, after)
        return after if self.cfg_has_pred(after) else None

    def switch(self, n: Node, cur: int | None) -> int | None:
        cond = n.child_by_field_name("condition")
        if cur is None:
            return None
        head = self.simple(cond, cur) if cond is not None else cur
        if head is None:
            return None
        after = self.cfg.node()
        self.breaks.append(after)
        body = n.child_by_field_name("body")
        prev: int | None = None
        has_default = False
        for c in body.named_children if body is not None else []:
            if c.type == "case_statement":
                entry = self.cfg.node()
                self.cfg.edge(head, entry)
                self.cfg.edge(prev, entry)
                value = c.child_by_field_name("value")
                if value is None:
                    has_default = True
                stmts = [s for s in c.named_children if value is None or s != value]
                cur2: int | None = entry
                for s in stmts:
                    cur2 = self.stmt(s, cur2)
                prev = cur2
            else:
                prev = self.stmt(c, prev)
        self.breaks.pop()
        self.cfg.edge(prev, after)
        if not has_default:
            self.cfg.edge(head, after)
        return after if self.cfg_has_pred(after) else None

    def preproc(self, n: Node, cur: int | None) -> int | None:
        """#if/#ifdef inside a function: the branches are alternative paths, never both."""
        if cur is None:
            return None
        cond = n.child_by_field_name("condition") or n.child_by_field_name("name")
        key = ("P", " ".join(_text(cond).split()) if cond is not None else "", True)
        alt = n.child_by_field_name("alternative")
        head = self.cfg.node()
        self.cfg.edge(cur, head)
        t, f = self.cfg.node(), self.cfg.node()
        self.cfg.edge(head, t, (key, True))
        self.cfg.edge(head, f, (key, False))
        cur2: int | None = t
        for c in n.named_children:
            if c == cond or c == alt:
                continue
            cur2 = self.stmt(c, cur2)
        f_end = self.stmt(alt, f) if alt is not None else f
        return self.join(cur2, f_end)


_FIELD = re.compile(r"(?:->|\.)[A-Za-z_]\w*$")
_HEAD = re.compile(r"([A-Za-z_]\w*)((?:->|\.).*)?$")
_PATH = re.compile(r"&?[A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*)*$")


def _aliases(pf: _PendingFunction) -> dict[str, tuple[str, bool]]:
    """Locals initialised to a path off a parameter (`p = arg->x`, `l = &arg->lock`) and
    never assigned again nor handed out by address: name -> (path, is an address)."""
    from .extract import _declarator_name

    params = {p for p, _ in pf.params if p}
    raw = pf.body.text or b""
    body = raw.decode("utf-8", "replace")
    out: dict[str, tuple[str, bool]] = {}
    writes: dict[str, list[int]] | None = None
    for d in pf.decls:
        for dd in d.children_by_field_name("declarator"):
            if dd.type != "init_declarator":
                continue
            value = dd.child_by_field_name("value")
            name, _ = _declarator_name(dd.child_by_field_name("declarator"))
            if value is None or not name or name in params:
                continue
            v = "".join(_text(value).split())
            if not _PATH.match(v) or ("->" not in v and "." not in v):
                continue
            root = _HEAD.match(v.lstrip("&"))
            if root is None or root.group(1) not in params or root.group(1) == name:
                continue
            # the path is read where declared: the root may be re-pointed later, not before
            if writes is None:
                writes = _all_writes(body)
            before = len(raw[:dd.start_byte - pf.body.start_byte].decode("utf-8", "replace"))
            if len(writes.get(name, ())) != 1 or any(
                    end <= before for end in writes.get(root.group(1), ())):
                continue
            out[name] = (normalise(v), v.startswith("&"))
    return out


@lru_cache(maxsize=1024)
def _write_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.>])(?:&\s*{name}\b(?!\s*(?:->|\.|\[))"
                      rf"|{name}\s*(?:[-+*/|&^]?=(?!=)|\+\+|--)|(?:\+\+|--)\s*{name}\b)")


_ANY_WRITE = re.compile(r"(?<![\w.>])(?:&\s*([A-Za-z_]\w*)\b(?!\s*(?:->|\.|\[))"
                        r"|([A-Za-z_]\w*)\s*(?:[-+*/|&^]?=(?!=)|\+\+|--)"
                        r"|(?:\+\+|--)\s*([A-Za-z_]\w*)\b)")


def _all_writes(body: str) -> dict[str, list[int]]:
    """Each variable assigned (or whose address is taken) in a body -> where each such
    write ends: one scan for every name (``_write_re`` is one name's)."""
    out: dict[str, list[int]] = {}
    for m in _ANY_WRITE.finditer(body):
        out.setdefault(m.group(1) or m.group(2) or m.group(3), []).append(m.end())
    return out


def _substitute(expr: str, subst: dict[str, str]) -> str:
    """A summary's parameter-relative lock expression at a call site."""
    return normalise(re.sub(r"\b[A-Za-z_]\w*\b",
                            lambda m: f"({subst[m.group(0)]})" if m.group(0) in subst
                            else m.group(0), expr))


def _has_effect(ctx: FileContext, name: str) -> bool:
    s = ctx.summaries.get(name)
    return s is not None and bool(s[1].acquires or s[1].releases or s[1].unknown)


def _in_ternary(n: Node) -> bool:
    p = n.parent
    for _ in range(6):
        if p is None or p.type.endswith("statement") or p.type == "declaration":
            return False
        if p.type == "conditional_expression":
            return True
        p = p.parent
    return False


def _bound_var(call: Node) -> str:
    """`ret = trylock(...)` / `int ret = trylock(...)`: the variable the result goes to."""
    p = call.parent
    if p is None:
        return ""
    if p.type == "assignment_expression":
        lhs = p.child_by_field_name("left")
        return _text(lhs) if lhs is not None and lhs.type == "identifier" else ""
    if p.type == "init_declarator":
        d = p.child_by_field_name("declarator")
        return _text(d) if d is not None and d.type == "identifier" else ""
    return ""


_CONST_SET = re.compile(r"\s*([A-Za-z_]\w*(?:(?:\.|->)[A-Za-z_]\w*)*)\s*=\s*(true|false|0|1|NULL)"
                        r"\s*;\s*$")
_ALIAS = re.compile(r"\b[A-Za-z_]\w*\s*=\s*([A-Za-z_]\w*)\s*[;,)]")


def _const_sets(n: Node) -> list[tuple[str, str]]:
    """`x = true;` statements and `bool x = true, y = 0;` declarations: (x, value)."""
    if n.type == "declaration":
        out = []
        for d in n.children_by_field_name("declarator"):
            name, value = d.child_by_field_name("declarator"), d.child_by_field_name("value")
            if d.type == "init_declarator" and name is not None and value is not None \
                    and name.type == "identifier" and _text(value) in _CONSTS:
                out.append((_text(name), _text(value)))
        return out
    m = _CONST_SET.match(_text(n))
    return [(m.group(1), m.group(2))] if m else []


_CONSTS = frozenset({"true", "false", "0", "1", "NULL"})


def _aliased(n: Node) -> frozenset[str]:
    """`a = b;`: b's locks may now be released through a, so what we knew of b is unsure."""
    return frozenset(_ALIAS.findall(_text(n)))


def _assigned(n: Node) -> frozenset[str]:
    txt = _text(n)
    if "=" not in txt and "++" not in txt and "--" not in txt:
        return frozenset()
    return frozenset(a or b for a, b in _ASSIGNED.findall(txt))


def _unwrap(n: Node, wrappers: frozenset[str]) -> tuple[Node, bool]:
    """Strip parens, !, likely()/unlikely(); return (node, negated)."""
    neg = False
    while True:
        if n.type == "parenthesized_expression" and n.named_children:
            n = n.named_children[0]
        elif n.type == "unary_expression" and n.child_by_field_name("operator") is not None \
                and _text(n.child_by_field_name("operator")) == "!":  # type: ignore[arg-type]
            arg = n.child_by_field_name("argument")
            if arg is None:
                return n, neg
            n, neg = arg, not neg
        elif n.type == "call_expression":
            fn = n.child_by_field_name("function")
            args = n.child_by_field_name("arguments")
            if fn is not None and args is not None and _text(fn) in wrappers \
                    and len(args.named_children) == 1:
                n = args.named_children[0]
            else:
                return n, neg
        else:
            return n, neg


def _cond_key(cond: Node, b: _Builder) -> tuple[tuple[Any, ...], Node | None]:
    """The branch key of a condition, and the trylock call it tests (if any)."""
    n, neg = _unwrap(cond, b.ctx.kb.names("condition_wrappers"))
    txt = " ".join(_text(n).split())
    if txt in ("1", "true"):
        return ("CONST", not neg), None
    if txt in ("0", "false"):
        return ("CONST", neg), None
    if n.type == "call_expression":
        fn = n.child_by_field_name("function")
        args = n.child_by_field_name("arguments")
        name = _text(fn) if fn is not None and fn.type == "identifier" else ""
        if name in b.ctx.kb.names("config_tests"):
            return ("P", txt, not neg), None  # a build configuration, like #ifdef
        spec = b.ctx.kb.lock_apis.get(name)
        if spec is not None and spec.get("op") == "trylock" and args is not None:
            argv = [_text(a) for a in args.named_children if a.type != "comment"]
            op = b._op(name, argv, n.start_point[0] + 1, n.start_point[1] + 1, spec)
            if op is not None:
                # the lock is taken on the edge where the call's value means success
                success_true = spec.get("success", "nonzero") == "nonzero"
                return ("T", op, success_true != neg), n
    if n.type == "binary_expression":
        op_node = n.child_by_field_name("operator")
        left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
        o = _text(op_node) if op_node is not None else ""
        if o == "&&" and left is not None and right is not None and not neg:
            for side in (left, right):
                k, call = _cond_key(side, b)
                if k[0] == "T" and k[2]:
                    return ("T", k[1], True), call
        if o in ("&&", "||"):
            # `a && b` true means a true and b true (`a || b` false: both false): a path that
            # set `done = true;` does not enter `if (!done && x)`.  The whole condition stays
            # a fact of its own too, for the same test repeated.
            subs = []
            for side in _conjuncts(n, o):
                k, _ = _cond_key(side, b)
                if k[0] not in ("V", "C", "P"):
                    break
                subs.append(k if o == "&&" else (k[0], k[1], not k[2]))
            else:
                return ("AND", txt, tuple(subs), (o == "&&") != neg, not neg), None
        if left is not None and right is not None and left.type == "identifier" \
                and _text(right) in ("0", "NULL") and o in ("<", "!=", "=="):
            truthy = o != "=="
            return ("V", _text(left), truthy != neg), None
        if left is not None and right is not None and left.type == "call_expression" \
                and _text(right) == "0" and o in ("<", "!=", "=="):
            # `trylock(...) != 0`, `down_write_killable(...) < 0`: the call's truth value
            k, call = _cond_key(left, b)
            if k[0] == "T":
                flip = (o == "==") != neg
                return ("T", k[1], k[2] != flip), call
    if n.type == "identifier":
        return ("V", txt, not neg), None
    if n.type == "binary_expression":
        op_node = n.child_by_field_name("operator")
        o = _text(op_node) if op_node is not None else ""
        left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
        if o in ("==", "!=") and left is not None and right is not None:
            # `a != b`, `b != a` and `!(a == b)` are one condition
            lt, rt = sorted((" ".join(_text(left).split()), " ".join(_text(right).split())))
            return ("C", f"{lt} != {rt}", (o == "!=") != neg), None
        if o in ("<", ">", "<=", ">=") and left is not None and right is not None:
            # `a < b`, `b > a`, `!(a >= b)` are one condition: a loop's `while (++n < max)`
            # and the `if (n >= max)` after it.  `++n` is n once incremented (the increment
            # itself voids what was known of n before the test)
            lt, rt = _operand(left), _operand(right)
            if o in (">", "<="):
                lt, rt = rt, lt
            truth = (o in ("<", ">")) != neg
            if rt == "0" and _IDENT.fullmatch(lt):
                return ("V", lt, truth), None  # as `x < 0` above: x's truth value
            return ("C", f"{lt} < {rt}", truth), None
    return ("C", txt, not neg), None


def _conjuncts(n: Node, o: str) -> list[Node]:
    """The operands of a chain of one logical operator: a && (b && c) -> a, b, c."""
    while n.type == "parenthesized_expression" and n.named_children:
        n = n.named_children[0]
    op_node = n.child_by_field_name("operator")
    if n.type != "binary_expression" or op_node is None or _text(op_node) != o:
        return [n]
    left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
    if left is None or right is None:
        return [n]
    return _conjuncts(left, o) + _conjuncts(right, o)


def _operand(n: Node) -> str:
    """A comparison operand's text; a pre-increment or pre-decrement reads as its variable."""
    t = " ".join(_text(n).split())
    if n.type == "update_expression" and t[:2] in ("++", "--"):
        t = t[2:].strip()
    while t.startswith("(") and t.endswith(")") and n.type == "parenthesized_expression":
        t = t[1:-1].strip()
        break
    return t


# --- abstract interpretation ---------------------------------------------------------------
# A lock entry: (expr, status, count, kind, line, scoped, cls, touched); status "H" held,
# "R" released
# after being taken here, "U" a caller's lock released here, "C" a caller's lock retaken here,
# "?" unknown (a callee or a re-pointing made it so), "Q" taken again while unknown.
# A state: (locks: tuple[entry...] sorted by expr, facts: tuple[(key, bool)...],
#           pend: tuple[(var, LockOp, success)...])
#           jump: (line, label) of the last goto taken, to say which path a finding is on)
# `touched`: since the last lock operation, an unknown callee was given the lock's object (or,
# for a global lock, any unknown call happened): it may have released or re-taken it.
State = tuple[tuple[tuple[Any, ...], ...], tuple[tuple[Any, bool], ...],
              tuple[tuple[Any, ...], ...],
              tuple[Any, ...]]


class _Run:
    def __init__(self, cfg: Cfg, pf: _PendingFunction, path: str) -> None:
        self.cfg, self.pf, self.path = cfg, pf, path
        self.diags: dict[tuple[str, int, str], Diagnostic] = {}
        self.exits: list[tuple[State, int, str]] = []
        self.imprecise = False
        # (line, col) of a call -> the lock tuples of the states that reach it
        self.at: dict[tuple[int, int], dict[int, tuple[tuple[Any, ...], ...]]] = {}
        self.wat: dict[int, dict[int, tuple[tuple[Any, ...], ...]]] = {}  # the same per write
        self.params = frozenset(p for p, _ in pf.params if p)
        self._writes: dict[str, list[int]] = {}

    def report(self, line: int, col: int, msg: str, lock: LockOp, trace: list[Step], key: str,
               error_from: tuple[str, ...] = ()) -> None:
        k = (key, line, lock.expr)
        if k not in self.diags:
            self.diags[k] = Diagnostic(RULE, line, col, msg, (lock.cls,), tuple(trace),
                                       f"{key}:{lock.expr}", error_from)

    def step(self, line: int, note: str) -> Step:
        return Step(self.path, line, self.pf.name, note)

    def apply(self, st: State, ev: tuple[Any, ...]) -> State | None:
        locks, facts, pend, jump = st
        kind = ev[0]
        if kind == "at":
            # kept by identity, turned into held sets once the run is over; the lock-free
            # states too, so that "held on every path" can be told from "on some path"
            self.at.setdefault((ev[1], ev[2]), {})[id(locks)] = locks
            return st
        if kind == "w":
            self.wat.setdefault(ev[1], {})[id(locks)] = locks
            return st
        if kind == "end":
            return None
        if kind == "jump":
            return locks, facts, pend, ev[1:]
        if kind == "assign":
            vs = ev[1]
            facts = tuple(f for f in facts if not (_mentions(f[0], vs)))
            pend = tuple(p for p in pend if p[0] not in vs)
            # `p = next` re-points p: what we knew of p->lock is about another object now
            locks = tuple(_unsure(e) if _root(e[0]) in ev[2] else e for e in locks)
            return locks, facts, pend, jump
        if kind == "scope":
            drop = set(ev[1])
            kept: list[tuple[Any, ...]] = []
            for e in locks:
                if e[0] not in drop:
                    kept.append(e)
                elif e[2] > 1 and e[3] in NESTING and e[1] in HELD:
                    # the guard nested in a section already open (IRQs off before a
                    # scoped_guard(spinlock_irqsave)): only its own level ends
                    kept.append((*e[:2], e[2] - 1, *e[3:]))
                elif not e[5]:
                    kept.append(e)
            return tuple(kept), facts, pend, jump
        if kind == "forget":
            have = {e[0] for e in locks}
            new = tuple((x, "?", 0, "?", 0, False, x, False) for x in sorted(ev[1] - have))
            locks = tuple(_unsure(e) if e[0] in ev[1] else e for e in locks) + new
            return tuple(sorted(locks, key=lambda x: x[0])), facts, pend, jump
        if kind == "set":
            fkey = ("C", ev[1])
            if fkey in self.cfg.track:
                facts = (*(f for f in facts if f[0] != fkey), (fkey, ev[2]))[-MAX_FACTS:]
            return locks, facts, pend, jump
        if kind == "touch":
            roots, env = ev[1], self.pf.env
            return tuple(e if e[7] or not (_root(e[0]) in roots or _root(e[0]) not in env)
                         else (*e[:7], True) for e in locks), facts, pend, jump
        if kind == "forget_class":  # a callee that may drop locks of these classes
            return (tuple(_unsure(e) if e[6] in ev[1] and e[1] in HELD else e for e in locks),
                    facts, pend, jump)
        if kind == "forget_roots":
            # a lock helper may also save/restore IRQs or BHs (task_rq_unlock...)
            return (tuple(_unsure(e) if _root(e[0]) in ev[1] or e[0] in ("irq", "bh") else e
                          for e in locks), facts, pend, jump)
        op: LockOp = ev[1]
        if ev[2]:  # trylock result bound to a variable: decided when it is tested
            pend = (*(p for p in pend if p[0] != ev[2]), (ev[2], op, ev[3]))
            return locks, facts, pend, jump
        return self.lock_op(locks, op), facts, pend, jump

    def lock_op(self, locks: tuple[tuple[Any, ...], ...], op: LockOp
                ) -> tuple[tuple[Any, ...], ...]:
        cur = {e[0]: e for e in locks}
        self._apply_op(cur, op)
        # spin_lock_irqsave() also disables IRQs, spin_unlock_irqrestore() restores them: the
        # same "irq" (and "bh") section local_irq_save()/local_irq_restore() open and close
        if op.irq is not None and op.kind != "irq":
            self._apply_op(cur, _pseudo(op, "irq", op.irq in ("off", "save")))
        if op.bh is not None and op.kind != "bh":
            self._apply_op(cur, _pseudo(op, "bh", op.bh == "off"))
        return tuple(sorted(cur.values(), key=lambda x: x[0]))

    def _apply_op(self, cur: dict[str, tuple[Any, ...]], op: LockOp) -> None:
        e = cur.get(op.expr)
        # local_irq_disable()/_enable() (and spin_lock_irq()/spin_unlock_irq()) set the IRQ
        # state whatever it was: they do not nest as local_irq_save()/_restore() do
        absolute = op.kind == "irq" and op.irq in ("off", "on")
        if op.op in ("acquire", "trylock"):
            if e is not None and e[1] in HELD and absolute:
                pass  # off already
            elif e is not None and e[1] in HELD:
                if op.kind in NESTING or e[3] in NESTING:
                    cur[op.expr] = (e[0], e[1], min(e[2] + 1, 3), e[3], e[4], e[5], e[6], e[7])
                elif e[4] == op.line or _VAR_INDEX.search(op.expr) or e[7] or op.op == "trylock":
                    # the same call again around a loop; a[i]->lock with i moving; a callee
                    # given the lock's object since (it may have released it); a trylock
                    # (never blocks)
                    pass
                else:
                    self._again(op, e, "double-lock", "acquired",
                                f"acquired again while already held (taken at line {e[4]}): "
                                "self-deadlock")
            elif e is not None and e[1] in ("?", "Q"):
                cur[op.expr] = (op.expr, "Q", 1, op.kind, op.line, op.scoped, op.cls, False)
            else:
                # a caller's lock dropped here and taken again is "C": no net effect
                status = "C" if e is not None and e[1] == "U" else "H"
                cur[op.expr] = (op.expr, status, 1, op.kind, op.line, op.scoped, op.cls, False)
        else:
            if e is None:
                same = self._same_class(cur, op)
                if same is not None:  # the lock taken here, named another way
                    self._apply_op(cur, op._replace(expr=same))
                    return
                # the caller's lock ("U": released, never taken here)
                cur[op.expr] = (op.expr, "U", 0, op.kind, op.line, False, op.cls, False)
            elif e[1] in ("?", "Q"):
                cur[op.expr] = (op.expr, "?", 0, e[3], op.line, False, e[6], False)
            elif e[1] in HELD:
                if e[2] > 1 and not absolute:
                    cur[op.expr] = (e[0], e[1], e[2] - 1, e[3], e[4], e[5], e[6], e[7])
                else:
                    status = "U" if e[1] == "C" else "R"
                    cur[op.expr] = (op.expr, status, 0, e[3], op.line, False, e[6], False)
            elif op.kind not in NESTING and e[3] not in NESTING and e[4] != op.line \
                    and not _VAR_INDEX.search(op.expr) and not e[7]:
                self._again(op, e, "double-unlock", "released",
                            f"released but not held on this path (already released at line "
                            f"{e[4]})")

    def _same_class(self, cur: dict[str, tuple[Any, ...]], op: LockOp) -> str | None:
        """A release of a lock not held under its name, when the one lock of its class and
        kind held here is that lock named another way: a callee releasing `s->owner->lock`
        for the caller's `owner->lock`, or `pool->lock` unlocked after `pool` was re-pointed
        at the pool whose lock was taken.  Only for a callee's release or a lock hanging off
        a local: a parameter's lock released is the caller's (hand-over), not this one."""
        if "::" not in op.cls or op.kind in PSEUDO:
            return None
        root = _root(op.expr)
        callee = (op.line, op.col, op.expr) in self.cfg.callee_ops
        if not callee and not (root in self.pf.env and root not in self.params):
            return None
        # through a local: only if it was re-pointed after the lock was taken
        # a callee's lock class may stop at a struct this file does not define
        # (`nfs4_stid::sc_client->cl_lock`): its field name and kind then say which it is
        field = _FIELD.search(op.expr)
        held = [x for x in cur.values()
                if x[1] == "H" and x[3] == op.kind and x[0] != op.expr
                and (x[6] == op.cls or (callee and field is not None
                                        and x[0].endswith(field.group(0))))]
        if len(held) != 1:
            return None
        x = held[0]
        if not callee and not any(x[4] < ln <= op.line for ln in self.write_lines(root)):
            return None
        return str(x[0])

    def write_lines(self, name: str) -> list[int]:
        """The lines of the body that assign `name`."""
        if name not in self._writes:
            first = self.pf.body.start_point[0] + 1
            body = _text(self.pf.body).split("\n")
            rx = _write_re(name)
            self._writes[name] = [first + i for i, t in enumerate(body) if rx.search(t)]
        return self._writes[name]

    def _again(self, op: LockOp, e: tuple[Any, ...], key: str, did: str, what: str) -> None:
        """The same operation twice on one path: double lock or double unlock."""
        self.report(op.line, op.col, f"'{op.expr}' {what}", op,
                    [self.step(e[4], f"{op.expr} {did}"),
                     self.step(op.line, f"{op.api}({op.expr}) again")], key)

    def edge(self, st: State, cond: tuple[Any, ...] | None) -> State | None:
        if cond is None:
            return st
        key, val = cond
        if key[0] == "AND":
            _, txt, subs, pol, wpol = key
            s: State | None = self.edge(st, (("C", txt, wpol), val))
            if s is not None and val == pol:  # every conjunct holds
                for sk in subs:
                    s = self.edge(s, (sk, True))
                    if s is None:
                        break
            return s
        locks, facts, pend, jump = st
        if key[0] == "T":
            _, op, success_edge = key
            if val == success_edge:
                locks = self.lock_op(locks, op)
            return locks, facts, pend, jump
        if key[0] == "V":
            var = key[1]
            truthy = key[2] == val
            for p in pend:
                if p[0] == var:
                    acquired = truthy if p[2] == "nonzero" else not truthy
                    if acquired:
                        locks = self.lock_op(locks, p[1])
                    pend = tuple(q for q in pend if q[0] != var)
                    return locks, facts, pend, jump
            if not truthy:
                # `if (lock_ptr)` false: nothing hanging off a NULL pointer is held
                locks = tuple(_unsure(e) if _root(e[0]) == var else e for e in locks)
            key = ("C", var, True)
            val = truthy
        fkey = key[:2]
        if fkey not in self.cfg.track:
            return locks, facts, pend, jump
        fval = val if key[2] else not val
        for k, v in facts:
            if k == fkey:
                return (locks, facts, pend, jump) if v == fval else None
        facts = (*facts, (fkey, fval))[-MAX_FACTS:]
        return locks, facts, pend, jump

    def run(self) -> None:
        cfg = self.cfg
        start: State = ((), (), (), ())
        seen: list[set[State]] = [set() for _ in cfg.events]
        work: list[tuple[int, State]] = [(1, start)]  # node 1 is the entry
        seen[1].add(start)
        while work:
            n, st = work.pop()
            s: State | None = st
            for ev in cfg.events[n]:
                s = self.apply(s, ev)  # type: ignore[arg-type]
                if s is None:
                    break
            if s is None:
                continue
            if n in cfg.returns:
                line, val = cfg.returns[n]
                self.exits.append((s, line, val))
            for m, cond in cfg.succ[n]:
                s2 = self.edge(s, cond)
                if s2 is None or m == 0:
                    continue
                if s2 not in seen[m]:
                    if len(seen[m]) >= MAX_STATES:
                        self.imprecise = True  # branch facts dropped: paths may be mixed up
                        # the lock flags the body sets go last: without them every
                        # `if (locked) unlock();` path keeps the lock
                        kept = tuple(f for f in s2[1] if f[0] in cfg.flags) \
                            if cfg.flags and len(seen[m]) < 3 * MAX_STATES // 2 else ()
                        s2 = (s2[0], kept, s2[2], ())
                        if s2 in seen[m]:
                            continue
                        if len(seen[m]) >= 2 * MAX_STATES:
                            continue
                    seen[m].add(s2)
                    work.append((m, s2))


def _scope_names(op: LockOp) -> tuple[str, ...]:
    """What a guard's scope end releases: its lock, and the IRQ/BH section the guard class
    opened with it (guard(spinlock_irq), scoped_guard(spinlock_irqsave, ...))."""
    out = [op.expr]
    if op.irq in ("off", "save") and op.kind != "irq":
        out.append("irq")
    if op.bh == "off" and op.kind != "bh":
        out.append("bh")
    return tuple(out)


def _pseudo(op: LockOp, which: str, on: bool) -> LockOp:
    """The IRQ/BH section a lock operation opens or closes as a side effect.  Its class ends
    in "*": such a section is reported through the lock that opened it, never on its own."""
    return LockOp("acquire" if on else "release", op.api, which, which, which + "*",
                  op.irq if which == "irq" else None, None, op.line, op.col, op.scoped)


def _unsure(e: tuple[Any, ...]) -> tuple[Any, ...]:
    """A lock whose state we no longer know ("?"): taking it again is not a double lock,
    releasing it is not a double unlock, and it is not ours at a return."""
    return (e[0], "?", 0, e[3], e[4], False, e[6], False)


def _root(expr: str) -> str:
    """The variable a lock expression hangs off: p for p->lock, (*b)->lock and
    ACCESS_PRIVATE(p, lock)."""
    m = _ROOT.match(expr)
    return (m.group(2) or m.group(1)) if m else ""


def _mentions(key: tuple[Any, ...], names: frozenset[str]) -> bool:
    return isinstance(key[1], str) and not _idents(key[1]).isdisjoint(names)


@lru_cache(maxsize=4096)
def _idents(text: str) -> frozenset[str]:
    return frozenset(_IDENT.findall(text))


def _inconsistent_returns(run: _Run, pf: _PendingFunction, ctx: FileContext) -> None:
    exits = run.exits
    if len(exits) < 2 or run.imprecise:
        return
    if ctx.kb.lock_function_re.search(pf.name) or pf.annotations or pf.name in ctx.paired:
        return  # meant to return holding / releasing (by name, __acquires & co., or role)
    # *_disable / *_save / *_enter ... helpers change CPU state for their caller on purpose
    pseudo_ok = bool(ctx.kb.state_function_re.search(pf.name))
    _inconsistent_group(run, exits, pseudo_ok, ctx.kb.names("error_variables"))


_ERR_TEST = re.compile(r"(?:IS_ERR|IS_ERR_OR_NULL)\(([A-Za-z_]\w*)\)$")


def _returned_test(text: str, returned: set[str]) -> bool:
    m = _ERR_TEST.match(text)
    return text in returned or (m is not None and m.group(1) in returned)


def _known_ok(facts: tuple[tuple[Any, bool], ...], val: str) -> bool:
    """The path has tested the returned variable to be no error: `ret < 0` or `ret` false,
    `ret = 0;`, `IS_ERR(ret)` false."""
    if not _IDENT.fullmatch(val):
        return False
    known = dict(facts)
    return known.get(("C", val)) is False or any(
        known.get(("C", f"{t}({val})")) is False for t in ("IS_ERR", "IS_ERR_OR_NULL"))


def _error_from(var_calls: dict[str, frozenset[str] | None], facts: tuple[tuple[Any, bool], ...],
                val: str) -> tuple[str, ...]:
    """`ret = f(); if (ret) return ret;`: the return is taken only if f returned non-zero."""
    calls = var_calls.get(val)
    if not calls or dict(facts).get(("C", val)) is not True:
        return ()
    return tuple(sorted(calls))


def _config(st: State) -> dict[Any, bool]:
    return {k: v for k, v in st[1] if k[0] == "P"}


def _compatible(a: dict[Any, bool], b: dict[Any, bool]) -> bool:
    """Two exits can happen in one build: no #ifdef / IS_ENABLED fact differs."""
    return all(b.get(k, v) == v for k, v in a.items())


def _inconsistent_group(run: _Run, exits: list[tuple[State, int, str]], pseudo_ok: bool,
                        error_vars: frozenset[str]) -> None:
    # `if (IS_ENABLED(CONFIG_X)) local_irq_save()` is consistent in every build: an exit holding
    # a lock is compared only with exits that can occur in the same build configuration.
    held_at: dict[str, list[tuple[int, str, tuple[Any, ...], tuple[Any, ...],
                              tuple[tuple[Any, bool], ...]]]] = {}
    held_cfg: dict[str, list[dict[Any, bool]]] = {}
    for st, line, val in exits:
        for e in st[0]:
            if e[1] != "H" or e[5] or (pseudo_ok and e[3] in PSEUDO) or e[6].endswith("*"):
                continue
            if e[7] and _root(e[0]) in run.pf.env:
                continue  # its object was handed to a callee, which may have released it
            if any(x[1] == "U" and x[3] == e[3] for x in st[0]):
                continue  # hands over: released the caller's lock, returns holding another
            if _known_ok(st[1], val):
                val = f"{val} (no error)"  # returns holding on success: by design
            held_at.setdefault(e[0], []).append((line, val, e, st[3], st[1]))
            held_cfg.setdefault(e[0], []).append(_config(st))
    for expr, holding in sorted(held_at.items()):
        others = [(ln, val) for st, ln, val in exits
                  if not any(e[0] == expr and e[1] in HELD for e in st[0])
                  and any(_compatible(c, _config(st)) for c in held_cfg[expr])]
        if not others:
            continue
        # the bug shape is a return that forgot the unlock the other returns do: if no return
        # has released the lock this function took, it takes it for its caller (a *_start
        # paired with a *_stop, a helper whose caller's __cleanup destructor unlocks, boot or
        # entry code leaving IRQs off, a caller's lock a callee dropped and this one retakes)
        released = {ln for st, ln, _ in exits
                    if any(e[0] == expr and e[1] == "R" for e in st[0])}
        if not released:
            continue
        o_lines = {ln for ln, _ in others}
        h_vals = {v for _, v, _, _, _ in holding}
        o_vals = {v for _, v in others}
        if h_vals and END not in h_vals | o_vals and all(v for v in h_vals | o_vals) \
                and not (h_vals & o_vals) \
                and not any(_ERRORISH.match(v) or v in error_vars for v in h_vals):
            # the return value tells the caller whether the lock is held (1/0, ptr/NULL,
            # idx/err), and the holding returns do not look like errors: a conditional-
            # acquire function, like a trylock
            continue
        if END not in h_vals and "" not in h_vals and not any(
                _ERRORISH.match(v) or v in error_vars for v in h_vals):
            # returns holding with a value that does not look like an error (0, a pointer,
            # a count): a function whose job is to return holding on that path (a *_get,
            # a seq_file start, a kprobe handler); the bug shape is an error return
            continue
        line, val, e, jump, facts = min(holding, key=lambda x: (x[0], x[3]))
        other_line = min(released - {line} or released)
        op = LockOp("acquire", "", e[3], expr, e[6], None, None, e[4], 1)
        ret_desc = "end of function" if val == END else \
            f"return {val.removesuffix(' (no error)')}".strip()
        trace = [run.step(e[4], f"{expr} acquired")]
        if jump:
            trace.append(run.step(jump[0], f"goto {jump[1]} with {expr} held"))
        trace.append(run.step(line, f"{ret_desc} with {expr} held"))
        if line in o_lines:
            if not jump:
                # one return reached with and without the lock, and no goto to tell the paths
                # apart: conditional locking on conditions we cannot relate; not reported
                continue
            msg = (f"'{expr}' is still held here ({ret_desc}) when reached through the goto "
                   f"at line {jump[0]}; the other paths to this return release it")
        else:
            msg = (f"'{expr}' is still held here ({ret_desc}) but released before the return "
                   f"at line {other_line}: missing unlock on this path")
            trace.append(run.step(other_line, f"returns without {expr}"))
        run.report(line, 1, msg, op, trace, "held-at-return",
                   _error_from(run.cfg.var_calls, facts, val))


def _effect(run: _Run, pf: _PendingFunction, ctx: FileContext,
            ops: list[LockOp], forgotten: set[str]) -> LockEffect:
    """Frozen summary for same-file callers: caller locks released at every return; locks
    held at every return (trusted only from functions meant to return holding: named so or
    annotated, since an unseen release in a callee would otherwise leak into every caller);
    and locks whose state differs between returns, which callers must forget."""
    if not run.exits or run.imprecise:
        return LockEffect()
    params = {p for p, _ in pf.params if p}

    def over_params(expr: str) -> bool:
        return _over_params(expr, params, pf.env)

    meant_to_hold = bool(ctx.kb.lock_function_re.search(pf.name)) or any(
        k in ("acquires", "cond_acquires") for k, _ in pf.annotations)
    alias = _aliases(pf)
    said_released = set()
    for k, a in pf.annotations:
        if k == "releases":
            m = _HEAD.match(a)
            if m is not None and m.group(1) in alias and not alias[m.group(1)][1]:
                a = normalise(alias[m.group(1)][0] + (m.group(2) or ""))
            said_released.add(a)
    exprs: dict[str, str] = {op.expr: op.kind for op in ops if not op.scoped}
    for expr in forgotten:
        exprs.setdefault(expr, "?")
    for st, _, _ in run.exits:
        for e in st[0]:
            exprs.setdefault(e[0], e[3])
    acq, rel, unknown = [], [], []
    for expr, kind in sorted(exprs.items()):
        if not over_params(expr) and kind not in PSEUDO:
            continue
        if kind == "?":
            unknown.append(expr)
            continue
        status = {next((x[1] for x in st[0] if x[0] == expr and not x[5]), None)
                  for st, _, _ in run.exits}
        if status == {"H"} and meant_to_hold:
            acq.append((expr, kind))
        elif status == {"U"} or (expr in said_released and "U" in status
                                 and status <= {"U", "?"}):
            # released at every return; or so annotated (__releases) and released where
            # the lock is still known (a callee after the unlock may make it unsure)
            rel.append((expr, kind))
        elif not status <= {"R", "C", None}:
            # mixed, forgotten on the way, or held without saying so (taken and released on
            # some paths, never touched on the others, is no effect; so is a caller's lock let
            # go and taken again, "C")
            unknown.append(expr)
    return LockEffect(tuple(acq), tuple(rel), tuple(unknown))


Held = tuple[tuple[int, int, tuple[tuple[str, str, int], ...]], ...]


def _held(states: Any) -> tuple[tuple[str, str, int], ...]:
    """What is held on some path: (class, kind, line taken); a caller's lock this function
    has released: kind "-kind"."""
    out = set()
    for locks in states:
        for e in locks:
            if e[1] in HELD or e[1] == "Q":
                out.add((e[6], e[3], e[4]))
            elif e[1] == "U":
                out.add((e[6], "-" + e[3], e[4]))
    return tuple(sorted(out))


def _may_not_return(pf: _PendingFunction, ctx: FileContext) -> bool:
    """Worth building a graph to see if the function never returns: it calls a noreturn
    function or loops forever."""
    from .extract import loops_forever

    return any(_ends_path(ctx, name) for name in pf.callees) or loops_forever(ctx, pf.body)


def _ends_path(ctx: FileContext, name: str) -> bool:
    """A call of `name` never returns: a kb noreturn function (panic(), BUG()) or a function
    of this file none of whose paths returns."""
    return name in ctx.kb.names("noreturn") or bool(ctx.noreturn.get(name))


def _note_return(ctx: FileContext, pf: _PendingFunction, cfg: Cfg) -> None:
    """Same-file callers treat a call to a function no path of which returns (every body of
    it, #ifdef twins included) like a call to panic(); the calls of this one that no path
    reaches (after such a call) are dropped from its facts."""
    never = cfg.npred[0] == 0
    ctx.noreturn[pf.name] = ctx.noreturn.get(pf.name, True) and never
    if any(("end",) in evs for evs in cfg.events):
        # only calls after a noreturn one: a call the graph has no event for before it (a
        # case label's IP_VERSION(), a duplicate `case 4:` of another #ifdef) is no proof
        first = min(((n.start_point[0] + 1, n.start_point[1] + 1) for n, name in pf.names
                     if _ends_path(ctx, name)), default=None)
        if first is not None:
            every = {(n.start_point[0] + 1, n.start_point[1] + 1)
                     for n in [*(n for n, _ in pf.names), *pf.vias]}
            pf.dead_calls = frozenset(x for x in every - _reached_calls(cfg) if x > first)


def _reached_calls(cfg: Cfg) -> set[tuple[int, int]]:
    """(line, column) of the calls of a graph some path from its entry gets to: not those
    after a noreturn call (an "end" event; the builder adds no events after one in a
    block), nor those in nodes only such paths lead to."""
    n = len(cfg.events)
    seen = [False] * n
    live: set[tuple[int, int]] = set()
    work = [1] if n > 1 else []  # node 0 is the exit, 1 the entry (see _Builder.build)
    for w in work:
        seen[w] = True
    while work:
        v = work.pop()
        ended = False
        for e in cfg.events[v]:
            if e[0] == "end":
                ended = True
                break
            if e[0] == "at":
                live.add((e[1], e[2]))
        if ended:
            continue
        for t, _ in cfg.succ[v]:
            if not seen[t]:
                seen[t] = True
                work.append(t)
    return live


def _call_parts(pf: _PendingFunction) -> dict[tuple[int, int], tuple[Node, Node]]:
    """(start, end) of each call of the body -> its function and argument-list nodes."""
    out: dict[tuple[int, int], tuple[Node, Node]] = {}
    for fnode in [n for n, _ in pf.names] + list(pf.vias):
        call = fnode.parent
        args = call.child_by_field_name("arguments") if call is not None else None
        if call is not None and args is not None:
            out[(call.start_byte, call.end_byte)] = (fnode, args)
    return out


def _only_forgets(pf: _PendingFunction, ctx: FileContext) -> LockEffect | None:
    """The effect of a function whose only lock relevance is same-file callees that leave
    some of its arguments' locks unknown (no lock call of its own, no wrapper, no guard):
    every path that returns makes those locks unknown to its callers too, so no graph is
    needed.  None when the shortcut does not apply (it may never return)."""
    kb = ctx.kb
    if any(v.type == "call_expression" for v in pf.vias) or _may_not_return(pf, ctx):
        return None
    lost_by: dict[str, tuple[tuple[str, ...], LockEffect]] = {}
    for name in pf.callees:
        if name in kb.lock_apis or name in ctx.wrappers.defs:
            return None
        summ = ctx.summaries.get(name)
        if summ is not None and name != pf.name and (
                summ[1].acquires or summ[1].releases or summ[1].unknown):
            if summ[1].acquires or summ[1].releases:
                return None
            lost_by[name] = summ
    ctx.noreturn[pf.name] = False
    alias = _aliases(pf)
    params = {p for p, _ in pf.params if p}
    lost: set[str] = set()
    for fnode, name in pf.names:
        summ = lost_by.get(name)
        call = fnode.parent
        args = call.child_by_field_name("arguments") if call is not None else None
        if summ is None or args is None:
            continue
        argv = [_text(a) for a in args.named_children if a.type != "comment"]
        lost |= _unknown_at(summ, argv, alias)
    return LockEffect((), (), tuple(sorted(e for e in lost if _over_params(e, params, pf.env))))


def _with_handovers(effect: LockEffect, pf: _PendingFunction, ctx: FileContext) -> LockEffect:
    """A function that hands a lock by address to a lock helper defined elsewhere
    (`lock_journal()` -> `reiserfs_mutex_lock_safe(&SB_JOURNAL(sb)->j_mutex, sb)`) leaves
    that lock's state unknown to its callers (see _Builder.events)."""
    rx, summ = ctx.kb.lock_function_re, ctx.summaries
    params = {p for p, _ in pf.params if p}
    lost: set[str] = set()
    asserts = ctx.kb.names("held_assertions")
    for fnode, name in pf.names:
        if name in summ or name in ctx.kb.lock_apis or not rx.search(name) or name in asserts:
            continue
        call = fnode.parent
        args = call.child_by_field_name("arguments") if call is not None else None
        for a in args.named_children if args is not None else ():
            t = _text(a)
            if a.type == "pointer_expression" and t.startswith("&"):
                e = normalise(t)
                if _over_params(e, params, pf.env):
                    lost.add(e)
    if not lost:
        return effect
    return effect._replace(unknown=tuple(sorted(lost | set(effect.unknown))))


def _over_params(expr: str, params: set[str], env: dict[str, str]) -> bool:
    """A lock a caller can name: off a parameter, or not off a local (a global)."""
    root = _root(expr)
    return bool(root) and (root in params or root not in env)


def _unknown_at(summ: tuple[tuple[str, ...], LockEffect], argv: list[str],
                alias: dict[str, tuple[str, bool]]) -> frozenset[str]:
    """The locks a callee's summary leaves unknown, named as at the call site."""
    subst = dict(zip(summ[0], argv, strict=False))
    return frozenset(_Builder.unalias_with(alias, _substitute(e, subst)) for e in summ[1].unknown)


def analyse(pf: _PendingFunction, ctx: FileContext
            ) -> tuple[list[LockOp], list[Diagnostic], LockEffect, Held]:
    """Lock ops, lock-imbalance diagnostics, net effect of one function, and the locks held
    at each of its calls (for the program phase: lock order, sleeping and waiting under
    locks)."""
    kb = ctx.kb
    relevant = any(v.type == "call_expression" for v in pf.vias) or any(
        name in kb.lock_apis or name in ctx.wrappers.defs or _has_effect(ctx, name)
        for name in pf.callees)
    guarded = any(pf.body.start_byte <= off < pf.body.end_byte for off in ctx.norm.guard_loops)
    if not relevant and not guarded:
        if not pf.node.has_error and _may_not_return(pf, ctx):
            _note_return(ctx, pf, _Builder(pf, ctx, _call_parts(pf)).build())
        return [], [], _with_handovers(LockEffect(), pf, ctx), ()
    if not guarded and not pf.shared_writes and not pf.node.has_error:
        quick = _only_forgets(pf, ctx)
        if quick is not None:
            return [], [], _with_handovers(quick, pf, ctx), ()
    b = _Builder(pf, ctx, _call_parts(pf))
    cfg = b.build()
    _note_return(ctx, pf, cfg)
    run = _Run(cfg, pf, ctx.path)
    run.run()
    _inconsistent_returns(run, pf, ctx)
    status = frozenset({*HELD, "Q"})
    pf.write_held = sharing.write_locks(run.wat, run.imprecise or pf.node.has_error, status)
    pf.partial_at = sharing.partial_at(run.at, status)
    ops = sorted(set(b.ops), key=lambda o: (o.line, o.col, o.op, o.expr))
    held = tuple((ln, col, h) for (ln, col), states in sorted(run.at.items())
                 if (h := _held(states.values())))
    if pf.node.has_error or run.imprecise:
        # the grammar choked, or the state space was cut short: the paths are guesses
        return ops, [], _effect(run, pf, ctx, ops, b.forgotten), held
    diags = sorted(run.diags.values(), key=lambda d: (d.line, d.col, d.key))
    return ops, diags, _effect(run, pf, ctx, ops, b.forgotten), held
