"""Lock expressions and lock classes.

A lock *instance* is the normalised expression as written (``rank->lock``); intraprocedural
matching uses it.  A lock *class*, as lockdep thinks of it, is what the program phase compares
across functions: ``vgic_irq_rank::lock`` for a field reached through a typed pointer,
``drivers/xen/evtchn.c:port_user_lock`` for a file-static global, the bare name for other
globals, and the normalised expression as the fallback.
"""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")
# `(struct foo *)p` but not `(p)->lock`: a cast is followed by its operand
_CAST = re.compile(r"^\((?:const\s+|volatile\s+)*(?:struct|union)?\s*\w+\s*\**\s*\)"
                   r"(?!\s*(?:->|\.|\[|$))")
_INDEX = re.compile(r"\[[^\[\]]*\]")
_BASE = re.compile(r"^([A-Za-z_]\w*)((?:(?:->|\.)[A-Za-z_]\w*|\[\])*)$")
_PAREN_NAME = re.compile(r"(?<![\w)\]])\(([A-Za-z_]\w*)\)")  # not a call's `f(x)`
_DEREF_DOT = re.compile(r"\(\*([A-Za-z_]\w*)\)\.")
# ((mas->tree))->ma_lock (a wrapper macro's parenthesised argument): parentheses around a
# member path say nothing either; `f(a->b)->lock` is a call, not one of those
_PAREN_PATH = re.compile(r"(?<![\w)\]])\(([A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*)+)\)(?=->|\.)")
_DOUBLE = re.compile(r"\(\(([^()]*)\)\)")
_ADDR_ARROW = re.compile(r"(?<![\w)\]])\(&([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\)->")
_HOP = re.compile(r"(->|\.)([A-Za-z_]\w*)|\[\]")


def _strip_parens(s: str) -> str:
    while s.startswith("(") and s.endswith(")"):
        depth = 0
        for i, c in enumerate(s):
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0 and i != len(s) - 1:
                    return s
        s = s[1:-1].strip()
    return s


def normalise(expr: str) -> str:
    """`&(p)->lock` -> `p->lock`; `&foo_lock` -> `foo_lock`; casts and blanks removed."""
    s = _WS.sub(" ", expr).strip()
    for _ in range(4):
        before = s
        s = _strip_parens(s)
        if s.startswith("&"):
            s = s[1:].strip()
        m = _CAST.match(s)
        if m:
            s = s[m.end() :].strip()
        if s == before:
            break
    s = s.replace(" ", "")
    # ((rank))->lock, (*p).lock: parentheses around a bare name say nothing
    prev = None
    while prev != s:
        prev = s
        s = _PAREN_NAME.sub(r"\1", s)
        s = _DEREF_DOT.sub(r"\1->", s)
        s = _DOUBLE.sub(r"(\1)", s)
        s = _PAREN_PATH.sub(r"\1", s)
        s = _ADDR_ARROW.sub(r"\1.", s)  # (&w)->tree->lock is w.tree->lock
    return s


def base_type(type_text: str) -> str:
    """`const struct foo *` -> `foo`; `foo_t *` -> `foo_t`."""
    t = type_text.replace("*", " ")
    words = [w for w in t.split() if w not in ("const", "volatile", "struct", "union", "enum",
                                               "static", "register", "unsigned", "signed")]
    return words[-1] if words else ""


def lock_class(
    expr: str,
    env: dict[str, str],
    globals_: dict[str, bool],
    structs: dict[str, dict[str, str]],
    path: str,
) -> str:
    """Resolve a normalised lock expression to its class (see module docstring)."""
    e = _INDEX.sub("[]", expr)
    m = _BASE.match(e)
    if not m:
        return e
    base, rest = m.group(1), m.group(2)
    if base in env:
        cur = env[base]
        hops = [(h.group(1), h.group(2)) for h in _HOP.finditer(rest) if h.group(2)]
        if not cur or not hops:
            # a local or a parameter: a lock passed by pointer, or a function-local static;
            # no class the program phase could compare with other functions' locks
            return f"{e}@local" if not hops else e
        # re-root at the deepest struct type we know: a->dev->lock with a->dev a `struct device *`
        # becomes device::lock.
        i = 0
        while i < len(hops) - 1:
            ftype = structs.get(cur, {}).get(hops[i][1])
            if ftype is None or hops[i + 1][0] != "->":
                break
            cur = ftype
            i += 1
        tail = hops[i][1] + "".join(op + name for op, name in hops[i + 1 :])
        return f"{cur}::{tail}"
    if base in globals_:
        return f"{path}:{e}" if globals_[base] else e
    return e
