"""Position-preserving normalizer for kernel C.

Kernel source is not preprocessed, so the grammar meets annotation macros, iterator macros and
cleanup-scoped guards it cannot take.  Every rewrite here keeps byte offsets and line numbers:
text is replaced by spaces of the same length (newlines kept), and an iterator macro's name is
replaced by ``while`` padded to the same length.  Facts that the blanking would lose (lock
annotations, which loops were really ``scoped_guard``) are recorded first, in side tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from .kb import KnowledgeBase


@dataclass(slots=True)
class Normalized:
    """The normalised text and what the blanking recorded."""

    text: bytes
    # (byte offset, annotation kind, argument text): __acquires(x) and friends.
    annotations: list[tuple[int, str, str]] = field(default_factory=list)
    # byte offset of a `while` that was a scoped guard macro -> guard macro name.
    guard_loops: dict[int, str] = field(default_factory=dict)
    # byte offset of a `while` that was an iterator macro -> its cursor (first argument).
    loops: dict[int, str] = field(default_factory=dict)


_IF0 = re.compile(rb"#[ \t]*if[ \t]+0\b")
_PP_LINE = re.compile(rb"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b", re.M)


_TO_SPACE = bytes(c if c in (10, 13) else 32 for c in range(256))


def _blank(buf: bytearray, start: int, end: int) -> None:
    """Replace buf[start:end] with spaces, keeping newlines."""
    buf[start:end] = bytes(buf[start:end]).translate(_TO_SPACE)


def _match_paren(text: bytes, open_pos: int) -> int:
    """Index just past the parenthesis closing the one at open_pos, or -1."""
    depth = 0
    n = len(text)
    i = open_pos
    while i < n:
        c = text[i]
        if c == 40:  # (
            depth += 1
        elif c == 41:  # )
            depth -= 1
            if depth == 0:
                return i + 1
        elif c == 34 or c == 39:  # string or char literal
            q = c
            i += 1
            while i < n and text[i] != q:
                if text[i] == 92:
                    i += 1
                i += 1
        i += 1
    return -1


def _at_line_start(text: bytes, pos: int) -> bool:
    ls = text.rfind(b"\n", 0, pos) + 1
    return not text[ls:pos].strip()


def _line_end(text: bytes, pos: int) -> int:
    """End of the logical line at pos (backslash continuations followed)."""
    n = len(text)
    while True:
        e = text.find(b"\n", pos)
        if e == -1:
            return n
        if e > 0 and text[e - 1] == 92:
            pos = e + 1
            continue
        return e


def blank_if0(buf: bytearray) -> None:
    """Blank `#if 0 ... #endif` regions (the #else branch, if any, is kept)."""
    text = bytes(buf)
    for m in _IF0.finditer(text):
        if not _at_line_start(text, m.start()) or buf[m.start() : m.end()].strip() == b"":
            continue  # already blanked as part of an outer #if 0
        depth = 0
        for d in _PP_LINE.finditer(text, m.start()):
            kw = d.group(1)
            if kw in (b"if", b"ifdef", b"ifndef"):
                depth += 1
            elif kw == b"endif":
                depth -= 1
                if depth == 0:
                    _blank(buf, m.start(), _line_end(text, d.start()))
                    break
            elif depth == 1 and kw in (b"else", b"elif"):
                # keep the #else branch: blank from #if 0 to the #else line end
                _blank(buf, m.start(), _line_end(text, d.start()))
                if kw == b"elif":
                    break
                # find the matching #endif and blank that directive line only
                depth2 = 1
                for d2 in _PP_LINE.finditer(text, d.end()):
                    k2 = d2.group(1)
                    if k2 in (b"if", b"ifdef", b"ifndef"):
                        depth2 += 1
                    elif k2 == b"endif":
                        depth2 -= 1
                        if depth2 == 0:
                            _blank(buf, d2.start(), _line_end(text, d2.start()))
                            break
                break


def blank_alternatives(text: bytes) -> bytes:
    """Keep only the first branch of every #if/#elif/#else group, directives blanked.

    Used as a fallback when a conditional splits a statement (`#ifdef X if (a) { #else if (b) {
    #endif`) and the grammar cannot take both branches at once.
    """
    buf = bytearray(text)
    stack: list[bool] = []  # per open group: are we inside a non-first branch?
    for d in _PP_LINE.finditer(text):
        kw = d.group(1)
        end = _line_end(text, d.start())
        if kw in (b"if", b"ifdef", b"ifndef"):
            stack.append(False)
        elif kw in (b"elif", b"else"):
            if stack:
                stack[-1] = True
        elif kw == b"endif":
            if stack:
                stack.pop()
            _blank(buf, d.start(), end)
            continue
        if kw in (b"if", b"ifdef", b"ifndef"):
            _blank(buf, d.start(), end)
        if kw in (b"elif", b"else"):
            # blank from this directive up to the next directive at the same depth
            depth = 0
            stop = len(text)
            for d2 in _PP_LINE.finditer(text, end):
                k2 = d2.group(1)
                if k2 in (b"if", b"ifdef", b"ifndef"):
                    depth += 1
                elif k2 == b"endif":
                    if depth == 0:
                        stop = d2.start()
                        break
                    depth -= 1
                elif depth == 0:
                    stop = d2.start()
                    break
            _blank(buf, d.start(), stop)
    return bytes(buf)


# Every annotation we blank starts with "__" or is one of a few plain words; one scan over
# such identifiers, then a set lookup, is much cheaper than a 150-way alternation.
_LOOP_HINT = re.compile(rb"for_each|scoped_guard|scoped_cond_guard|while_each|do_each")
_DEFINE_LINE = re.compile(rb"#[ \t]*define\b")


@lru_cache(maxsize=4)
def _patterns(kb: KnowledgeBase) -> tuple[frozenset[bytes], frozenset[bytes], re.Pattern[bytes],
                                          re.Pattern[bytes]]:
    norm = kb.normalize
    words = frozenset(w.encode() for w in norm["blank_words"])
    calls = frozenset(c.encode() for c in norm["blank_calls"])
    loop_re = re.compile(norm["loop_macro_pattern"].encode())
    plain = sorted(w for w in words | calls if not w.startswith(b"__"))
    # "__" is a literal prefix the regex engine scans for quickly; the few plain words get
    # their own alternation.  Word boundaries are checked by the caller.
    annot = re.compile(rb"__\w+" + b"".join(b"|" + re.escape(w) + rb"\b" for w in plain))
    return words, calls, loop_re, annot


def blank_defines(buf: bytearray) -> None:
    """Blank #define lines (continuations included): the grammar gains nothing from macro
    bodies, which `macros.collect_macros` reads from the raw text."""
    text = bytes(buf)
    for m in _DEFINE_LINE.finditer(text):
        if _at_line_start(text, m.start()):
            _blank(buf, m.start(), _line_end(text, m.start()))


_LOOP_PREV_WORDS = (b"else", b"do")


@lru_cache(maxsize=4)
def _type_first_re(names: tuple[str, ...]) -> re.Pattern[bytes] | None:
    if not names:
        return None
    alt = b"|".join(re.escape(n.encode()) for n in names)
    return re.compile(rb"\b(?:" + alt + rb")\s*\(\s*(struct|union|enum)\b")
# `, struct foo *)` or `, struct foo,`: a type passed to a macro (container_of, list_entry...)
_TYPE_ARG = re.compile(rb",(\s*)(struct|union|enum)(?=\s+\w+[\s*]*[,)])")


def _is_statement_position(text: bytes, start: int) -> bool:
    """True if an identifier at `start` begins a statement (not a declaration or expression)."""
    i = start - 1
    while True:
        while i >= 0 and text[i] in b" \t\r\n":
            i -= 1
        if i >= 1 and text[i] == 47 and text[i - 1] == 42:  # end of a /* comment */
            j = text.rfind(b"/*", 0, i - 1)
            if j == -1:
                return False
            i = j - 1
            continue
        ls = text.rfind(b"\n", 0, i + 1) + 1
        k = text.find(b"//", ls, i + 1)
        if k != -1:  # a // comment ends the previous line
            i = k - 1
            continue
        break
    if i < 0:
        return False
    c = text[i]
    if c in b";{}:)":
        return True
    if c in b"_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
        j = i
        while j >= 0 and (chr(text[j]).isalnum() or text[j] == 95):
            j -= 1
        return text[j + 1 : i + 1] in _LOOP_PREV_WORDS
    return False


def normalize(source: bytes, kb: KnowledgeBase) -> Normalized:
    """Return the normalised text and recorded facts; len(result.text) == len(source)."""
    buf = bytearray(source)
    out = Normalized(text=b"")
    blank_if0(buf)
    blank_defines(buf)
    text = bytes(buf)
    words, calls, loop_re, annot = _patterns(kb)
    record = kb.normalize["record_annotations"]
    guard_names = set(kb.normalize["guard_loop_macros"])

    for m in annot.finditer(text):
        name = m.group(0)
        if m.start() and (text[m.start() - 1] == 95 or chr(text[m.start() - 1]).isalnum()):
            continue
        if name in words:
            _blank(buf, m.start(), m.end())
        elif name in calls:
            j = m.end()
            while j < len(text) and text[j] in b" \t":
                j += 1
            if j >= len(text) or text[j] != 40:
                continue
            close = _match_paren(text, j)
            if close == -1:
                continue
            sname = name.decode()
            if sname in record:
                arg = text[j + 1 : close - 1].decode("utf-8", "replace").strip()
                out.annotations.append((m.start(), record[sname], arg))
            _blank(buf, m.start(), close)

    text = bytes(buf)
    for m in _TYPE_ARG.finditer(text):
        _blank(buf, m.start(2), m.end(2))
    first_re = _type_first_re(tuple(kb.normalize.get("type_arg_calls", ())))
    if first_re is not None:
        for m in first_re.finditer(text):
            _blank(buf, m.start(1), m.end(1))

    text = bytes(buf)
    seen_loops: set[int] = set()
    for hint in _LOOP_HINT.finditer(text):
        start, name_end = hint.start(), hint.end()
        while start > 0 and (text[start - 1] == 95 or chr(text[start - 1]).isalnum()):
            start -= 1
        while name_end < len(text) and (text[name_end] == 95 or chr(text[name_end]).isalnum()):
            name_end += 1
        if start in seen_loops or not loop_re.fullmatch(text, start, name_end):
            continue
        seen_loops.add(start)
        j = name_end
        while j < len(text) and text[j] in b" \t":
            j += 1
        if j >= len(text) or text[j] != 40:
            continue
        # skip preprocessor lines (#define list_for_each(...) ...)
        ls = text.rfind(b"\n", 0, start) + 1
        if text[ls:start].lstrip().startswith(b"#"):
            continue
        close = _match_paren(text, j)
        if close == -1:
            continue
        k = close
        while k < len(text) and text[k] in b" \t\r\n":
            k += 1
        if k < len(text) and text[k] in b";,)":
            continue  # a call such as idr_for_each(&idr, fn, data);
        if not _is_statement_position(text, start):
            continue
        width = name_end - start
        buf[start:name_end] = b"while" + b" " * (width - 5)
        name = text[start:name_end].decode()
        if name in guard_names:
            out.guard_loops[start] = name
        else:
            first = text[j + 1 : close - 1].split(b",", 1)[0].strip().decode("utf-8", "replace")
            if first.isidentifier():
                out.loops[start] = first
    out.text = bytes(buf)
    return out
