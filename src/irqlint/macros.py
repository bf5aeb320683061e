"""Function-like macros of the analysed tree that wrap lock APIs (Xen's vgic_lock_rank...).

Phase 0 collects, per file, the function-like macros whose body calls something lock-ish; the
driver joins them into one ``Wrappers`` table (the transitive closure: a macro calling a lock
API or another wrapper), whose digest is part of every file's cache key.  At a call site the
extractor expands a wrapper into the lock API calls of its body, with the arguments substituted.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from .ir import MacroDef

_DEFINE = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)\(([^)]*)\)[ \t]*(.*)$",
                     re.MULTILINE)
_DEFINE_HINT = re.compile(rb"define[ \t]+[A-Za-z_]\w*\(")
_LOCKISH = re.compile(rb"lock|irq|preempt|rcu|_bh\b|\bdown|\bup_|guard")
_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_BRANCHY = re.compile(r"\b(?:if|else|switch|for|while|goto|return)\b|\?")
_WHILE0 = re.compile(r"\bwhile\s*\(\s*0\s*\)")


def function_macros(text: bytes) -> Iterator[re.Match[bytes]]:
    """Each `#define NAME(params) body` line of `text`, matched (name, params, first line of
    the body).  A literal scan finds the lines worth matching: quick on files of thousands
    of object-like #defines."""
    last = -1
    for hit in _DEFINE_HINT.finditer(text):
        ls = text.rfind(b"\n", 0, hit.start()) + 1
        if ls == last:
            continue
        last = ls
        m = _DEFINE.match(text, ls)
        if m is not None:
            yield m


def collect_macros(path: str, text: bytes) -> list[MacroDef]:
    """Function-like macros in `text` whose body mentions something lock-ish, and the
    file's other definitions of the same names (#ifdef alternatives, empty ones included:
    what such a macro does depends on the configuration)."""
    out: list[MacroDef] = []
    if b"define" not in text:
        return out
    found: list[tuple[re.Match[bytes], bytes, bool]] = []
    for m in function_macros(text):
        body = m.group(3)
        end = m.end()
        while body.endswith(b"\\"):
            nl = text.find(b"\n", end + 1)
            nl = len(text) if nl == -1 else nl
            body = body[:-1] + b" " + text[end + 1 : nl].strip()
            end = nl
        found.append((m, body, _LOCKISH.search(body) is not None))
    lockish = {m.group(1) for m, _, yes in found if yes}
    for m, body, _ in found:
        if m.group(1) not in lockish:
            continue
        params = tuple(p.strip() for p in m.group(2).decode("utf-8", "replace").split(",")
                       if p.strip())
        line = text.count(b"\n", 0, m.start()) + 1
        out.append(MacroDef(m.group(1).decode(), params, body.decode("utf-8", "replace").strip(),
                            path, line))
    return out


def split_args(s: str) -> list[str]:
    """Top-level comma split of an argument list's inside."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    tail = "".join(cur).strip()
    if tail or out:
        out.append(tail)
    return out


def body_calls(body: str) -> list[tuple[str, list[str]]]:
    """(name, argument texts) of each call in a macro body, in source order."""
    calls = []
    for m in _CALL.finditer(body):
        depth, i = 0, m.end() - 1
        while i < len(body):
            if body[i] == "(":
                depth += 1
            elif body[i] == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        calls.append((m.group(1), split_args(body[m.end() : i])))
    return calls


@dataclass(slots=True)
class Wrappers:
    """The lock-wrapper macros of the whole analysed tree."""

    defs: dict[str, list[MacroDef]] = field(default_factory=dict)
    digest: str = ""

    @classmethod
    def build(cls, macros: list[MacroDef], lock_apis: set[str]) -> Wrappers:
        by_name: dict[str, list[MacroDef]] = {}
        for m in macros:
            if m.name in lock_apis:
                continue  # the knowledge base already says what the API does
            by_name.setdefault(m.name, []).append(m)
        # only straight-line bodies are expanded: a wrapper that locks one way or another
        # (`if (x) local_irq_save(f); else spin_lock_irqsave(l, f);`) cannot be flattened
        by_name = {n: ds for n, ds in by_name.items()
                   if not any(_BRANCHY.search(_WHILE0.sub("", d.body)) for d in ds)}
        calls = {n: {c for d in ds for c, _ in body_calls(d.body)} for n, ds in by_name.items()}
        wrappers: set[str] = set()
        changed = True
        while changed:
            changed = False
            for n, cs in calls.items():
                if n not in wrappers and cs & (lock_apis | wrappers):
                    wrappers.add(n)
                    changed = True
        defs = {n: sorted(by_name[n], key=lambda d: (d.file, d.line)) for n in sorted(wrappers)}
        h = hashlib.sha256()
        for n, ds in defs.items():
            for d in ds:
                h.update(f"{n}|{d.params}|{d.body}|{d.file}\n".encode())
        return cls(defs, h.hexdigest()[:16])

    def pick(self, name: str, path: str) -> MacroDef | None:
        """The definition `path` sees, nearest first: its own, then a header's with the
        longest shared directory (another .c file's macros are not in scope).  None when the
        file's own definitions, alternatives under #ifdef, disagree on what they call: what
        the macro does is not sure (cfi_probe.c's xip_disable() is local_irq_disable() with
        CONFIG_MTD_XIP, nothing without)."""
        ds = self.defs.get(name)
        if not ds:
            return None
        own = [d for d in ds if d.file == path]
        if own:
            calls = {tuple(c for c, _ in body_calls(d.body)) for d in own}
            return own[0] if len(calls) == 1 else None
        ds = [d for d in ds if d.file.endswith(".h")]
        if not ds:
            return None
        if len(ds) == 1:
            return ds[0]
        here = os.path.dirname(path)

        def score(d: MacroDef) -> tuple[int, int]:
            if d.file == path:
                return (10_000, 0)
            common = os.path.commonpath([here, os.path.dirname(d.file)]) if here else ""
            return (len(common), 0)

        return max(ds, key=score)

    def expand(self, name: str, args: list[str], path: str, depth: int = 0
               ) -> list[tuple[str, list[str]]]:
        """Lock-relevant calls a wrapper stands for, arguments substituted."""
        d = self.pick(name, path)
        if d is None or depth > 4:
            return []
        subst = dict(zip(d.params, args, strict=False))
        out: list[tuple[str, list[str]]] = []
        for callee, cargs in body_calls(d.body):
            real = [_substitute(a, subst) for a in cargs]
            if callee in self.defs:
                out.extend(self.expand(callee, real, path, depth + 1))
            else:
                out.append((callee, real))
        return out


def _substitute(text: str, subst: dict[str, str]) -> str:
    if not subst:
        return text
    return re.sub(r"\b[A-Za-z_]\w*\b",
                  lambda m: f"({subst[m.group(0)]})" if m.group(0) in subst else m.group(0), text)
