"""Key summaries: which functions release, unpublish or map a key given by a parameter.

Read by unpublish-after-free.  Built once per run on top of the program model (its call
resolution and strongly connected components), from every file's ``KeyFacts``:

1. each key event of a function is classified into actions: a release (``kfree(p)``,
   ``ida_free(&ida, id)``, ``HYPERVISOR_event_channel_op(EVTCHNOP_close, &close)``), an
   unpublish (``idr_remove(&idr, id)``, ``list_del(&p->node)``, ``table[k] = -1``) or a setter
   (``table[k] = v``: an unpublish when a caller passes a sentinel for v).  A call to a
   function of the analysed tree is classified by that function's summary, a call to anything
   else by the knowledge base (``kb/unpublish.json``);
2. summaries, bottom-up over the call graph's components: an action whose key is a parameter,
   or a field reached from one, becomes "f releases / unpublishes / sets param i (->field)",
   with the chain down to the leaf; an unpublish or a store must be in a statement every path
   runs that gets that far (``top``), a release must be unavoidable but for early exits on a
   validity test (``sure``), so that a put freeing on its last reference is no release;
3. keys are compared after substituting locals set once (``evtchn = info->evtchn``;
   ``close.port = port``) and stripping casts and one-argument upper-case macros.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .ir import FileFacts, KeyFacts, Step
from .keyevents import _MACRO1, _SIMPLE  # the key expressions extraction recorded
from .program import MAX_DEPTH, Program, Site, _sccs

_CAST = re.compile(r"^\(\s*(?:(?:const|volatile|struct|union|unsigned|signed)\s+)*"
                   r"[A-Za-z_]\w*\s*\**\s*\)\s*")
_ROOT = re.compile(r"^([A-Za-z_]\w*)((?:(?:->|\.)[A-Za-z_]\w*)*)$")
_PREFIX = re.compile(r"(?=->|\.|\[)")


class Effect(NamedTuple):
    """A summary entry: the function releases / unpublishes / sets `param`+`path`."""

    kind: str  # release | unpublish | setter
    param: int
    path: str  # "" or a field path: "->evtchn", ".port"
    value: int  # setter: the parameter stored under the key (-1 otherwise)
    what: str  # the leaf, for messages: "kfree()", "evtchn_to_irq[evtchn] = irq"
    chain: tuple[Step, ...]  # from this function's call or store down to the leaf


class Action(NamedTuple):
    """One event of a function, classified, with its key in the function's own terms."""

    kind: str  # release | unpublish | setter
    key: str  # canonical
    raw: str  # as the function writes it
    value: str  # setter: the value stored
    what: str
    chain: tuple[Step, ...]


def _clean(expr: str) -> str:
    s = expr.strip()
    while True:
        if s.startswith("(") and s.endswith(")") and _balanced(s[1:-1]):
            s = s[1:-1].strip()
            continue
        m = _CAST.match(s)
        if m and m.end() < len(s):
            s = s[m.end():].strip()
            continue
        return s.replace(" ", "")


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += 1 if ch == "(" else -1 if ch == ")" else 0
        if depth < 0:
            return False
    return depth == 0


def canon(expr: str, copies: dict[str, str]) -> str:
    """A key as comparable text: casts and spaces gone, locals set once replaced by what they
    were set from, one-argument upper-case macros (EVTCHN_ROW(e)) looked through; for a table
    with several indexes derived from one key, that key."""
    parts = expr.split("][")
    if len(parts) > 1:
        got = {canon(p, copies) for p in parts}
        return got.pop() if len(got) == 1 else "][".join(sorted(got))
    s = _clean(expr)
    for _ in range(6):
        m = _MACRO1.match(s)
        if m:
            s = _clean(m.group(1))
            continue
        if s in copies:
            s = _clean(copies[s])
            continue
        # the longest prefix set once: `close.port` before `close`
        cuts = [m.start() for m in _PREFIX.finditer(s)]
        for c in reversed(cuts):
            head = s[:c]
            if head in copies:
                s = _clean(copies[head]) + s[c:]
                break
        else:
            break
    return s


def _member_object(arg: str) -> str:
    """list_del(&p->node) unpublishes p; rb_erase(&x.node, ...) x; list_del(entry) entry."""
    s = _clean(arg)
    if not s.startswith("&"):
        return s
    s = s[1:]
    if "->" in s:
        return s[: s.rindex("->")]
    if "." in s:
        return s[: s.index(".")]
    return s


def substitute(arg: str, path: str) -> str | None:
    """A summary's `param`+`path` at a call passing `arg`."""
    a = _clean(arg)
    if not _SIMPLE.match(a):
        return None
    if not path:
        return a
    if a.startswith("&"):
        return a[1:] + "." + path[2:] if path.startswith("->") else a[1:] + path
    return a + path


@dataclass(slots=True)
class KeyFlow:
    prog: Program
    spec: dict[str, Any]
    keyfacts: dict[int, KeyFacts] = field(default_factory=dict)
    copies: dict[int, dict[str, str]] = field(default_factory=dict)
    summary: dict[int, tuple[Effect, ...]] = field(default_factory=dict)
    sentinels: frozenset[str] = frozenset()
    _sites: dict[int, dict[tuple[int, int], Site]] = field(default_factory=dict)

    def site(self, f: int, line: int, col: int) -> Site | None:
        table = self._sites.get(f)
        if table is None:
            table = self._sites[f] = {(s.call.line, s.call.col): s for s in self.prog.sites[f]
                                      if s.call.callee}
        return table.get((line, col))

    def sentinel(self, value: str) -> bool:
        return _clean(value) in self.sentinels

    # --- classification -----------------------------------------------------------------
    def actions(self, f: int, i: int) -> list[Action]:
        kf = self.keyfacts[f]
        ev = kf.events[i]
        fn = self.prog.funcs[f]
        copies = self.copies[f]
        here = Step(fn.file, ev.line, fn.name, "")

        def act(kind: str, raw: str, value: str, what: str, chain: tuple[Step, ...]) -> Action:
            return Action(kind, canon(raw, copies), raw, value, what, chain)

        if ev.kind == "slot":
            table, index, value = ev.args
            store = f"{table}[{index}] = {value}"
            index_key = canon(index, copies)
            if self.sentinel(value):
                return [act("unpublish", index, "", store,
                            (here._replace(note=f"{store} clears the mapping of {index_key}"),))]
            if _SIMPLE.match(_clean(value)):
                return [act("setter", index, value, f"{table}[{index}] = {{}}",
                            (here._replace(note=f"{store} stores the mapping of {index_key}"),))]
            return []
        out: list[Action] = []
        args = ev.args
        shown = f"{ev.callee}({', '.join(args)})"
        site = self.site(f, ev.line, ev.col)
        if site is not None and site.propagates:
            for t in site.callees:
                for eff in self.summary.get(t, ()):
                    if eff.param >= len(args):
                        continue
                    raw = substitute(args[eff.param], eff.path)
                    if raw is None:
                        continue
                    step = here._replace(note=f"calls {shown}")
                    if eff.kind == "setter":
                        if eff.value >= len(args):
                            continue
                        val = args[eff.value]
                        if self.sentinel(val):
                            step = step._replace(note=f"calls {shown}: stores {val}, clearing "
                                                      f"the mapping of {_clean(raw)}")
                            out.append(act("unpublish", raw, "", eff.what.format(val),
                                           (step, *eff.chain)))
                        elif _SIMPLE.match(_clean(val)):
                            out.append(act("setter", raw, val, eff.what, (step, *eff.chain)))
                    else:
                        out.append(act(eff.kind, raw, "", eff.what, (step, *eff.chain)))
        if out:
            return out
        name = ev.callee
        rel = self.spec["releases"].get(name)
        if rel is not None and rel["key"] < len(args):
            when = rel.get("when")
            if when is None or (when["arg"] < len(args)
                                and _clean(args[when["arg"]]) in when["equals"]):
                raw = args[rel["key"]]
                if "field" in rel:
                    raw = substitute(raw, "->" + rel["field"]) or ""
                if raw:
                    out.append(act("release", raw, "", f"{name}()",
                                   (here._replace(note=f"{shown} releases {_clean(raw)}"),)))
        unp = self.spec["unpublishes"].get(name)
        if unp is not None and unp["key"] < len(args):
            raw = args[unp["key"]]
            if unp.get("member"):
                raw = _member_object(raw)
            out.append(act("unpublish", raw, "", f"{name}()",
                           (here._replace(note=f"{shown} unpublishes {_clean(raw)}"),)))
        st = self.spec["setters"].get(name)
        if st is not None and max(st["key"], st["value"]) < len(args):
            raw, val = args[st["key"]], args[st["value"]]
            if self.sentinel(val):
                out.append(act("unpublish", raw, "", f"{name}() with {val}",
                               (here._replace(note=f"{shown} clears the mapping of "
                                                   f"{_clean(raw)}"),)))
            elif _SIMPLE.match(_clean(val)):
                out.append(act("setter", raw, val, f"{name}() with {{}}",
                               (here._replace(note=f"{shown} maps {_clean(raw)}"),)))
        return out

    # --- summaries ----------------------------------------------------------------------
    def summarise(self, f: int) -> bool:
        kf = self.keyfacts.get(f)
        if kf is None:
            return False
        fn = self.prog.funcs[f]
        params = {p: i for i, (p, _) in enumerate(fn.params) if p}
        got: dict[tuple[str, int, str, int], Effect] = {}
        for i, ev in enumerate(kf.events):
            if not ev.top:
                continue
            for a in self.actions(f, i):
                if a.kind == "release" and not ev.sure:
                    continue
                if len(a.chain) > MAX_DEPTH:
                    continue
                m = _ROOT.match(a.key)
                if m is None or m.group(1) not in params:
                    continue
                value = -1
                if a.kind == "setter":
                    v = canon(a.value, self.copies[f])
                    if v not in params:
                        continue
                    value = params[v]
                k = (a.kind, params[m.group(1)], m.group(2), value)
                got.setdefault(k, Effect(*k, a.what, a.chain))
        new = tuple(sorted(got.values(), key=lambda e: (e.kind, e.param, e.path, e.value)))
        if new == self.summary.get(f, ()):
            return False
        self.summary[f] = new
        return True


def build(prog: Program, facts: list[FileFacts]) -> KeyFlow:
    """The key summaries of a program (`facts` in the order the program was built from)."""
    spec = prog.kb.section("unpublish")
    kfw = KeyFlow(prog, spec, sentinels=frozenset(_clean(s) for s in spec["sentinels"]))
    base = 0
    for ff in facts:
        index = {(fn.name, fn.line): base + k for k, fn in enumerate(ff.functions)}
        for kf in ff.key_facts:
            fid = index.get((kf.function, kf.line))
            if fid is not None and fid not in kfw.keyfacts:
                kfw.keyfacts[fid] = kf
                kfw.copies[fid] = dict(kf.copies)
        base += len(ff.functions)
    for comp in _sccs(len(prog.funcs), prog.succ):
        members = [f for f in comp if f in kfw.keyfacts]
        if not members:
            continue
        for _ in range(4 if len(comp) > 1 or comp[0] in prog.succ[comp[0]] else 1):
            if not any([kfw.summarise(f) for f in members]):
                break
    return kfw
