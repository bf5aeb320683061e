"""Position-preserving normalizer for kernel C.

Kernel source is not preprocessed, so the grammar meets annotation macros, iterator macros and
cleanup-scoped guards it cannot take.  Every rewrite here keeps byte offsets and line numbers:
text is replaced by spaces of the same length (newlines kept), and an iterator macro's name is
replaced by ``while`` padded to the same length.  Facts that the blanking would lose (lock
annotations, which loops were really ``scoped_guard``) are recorded first, in side tables.
Macro shapes C has no place for are recognised by their shape, whatever the macro's name: a
word or call pasted onto a string literal, an indented `name(args) {` block, a run of
statement macros without semicolons, a statement passed as a macro argument, a token pasted
into a number-like word.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import re
from collections.abc import Iterator
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


class _LineStartRe:
    """A pattern matched at line starts only, as `^` under re.M would, but found fast: `^`
    has the engine try every offset, so the pattern is searched as a newline followed by
    the pattern (a literal the engine scans for), and tried on its own at offset 0.  A match
    must not be empty nor end with a newline (the next line's start would be passed over)."""

    def __init__(self, pattern: bytes, flags: int = 0) -> None:
        self.first = re.compile(pattern, flags)
        self.rest = re.compile(rb"\n(?:" + pattern + rb")", flags)

    def finditer(self, text: bytes, pos: int = 0) -> Iterator[tuple[int, re.Match[bytes]]]:
        """(line start, match) of each match from pos on, as found by finditer of the pattern
        behind `^` under re.M; the groups are the pattern's, its m.start() is not the line's."""
        if pos == 0:
            m = self.first.match(text)
            if m is not None:
                yield 0, m
                pos = m.end()
        elif text[pos - 1] == 10:  # pos starts a line: search from its newline
            pos -= 1
        for m in self.rest.finditer(text, pos):
            yield m.start() + 1, m


_ASCII_WORD = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")


def _top_level_bar(pattern: bytes) -> bool:
    """Whether pattern has a `|` outside parentheses (said of any pattern with a verbose
    group, whose comments are not read here)."""
    if re.search(rb"\(\?[a-zA-Z-]*x", pattern):
        return True
    depth = 0
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == 92:  # a backslash escapes the next character
            i += 1
        elif in_class:
            in_class = c != 93  # ]
        elif c == 91:  # [: a leading ] (after an optional ^) is a member
            in_class = True
            i += 1 if pattern[i + 1 : i + 2] == b"^" else 0
            i += 1 if pattern[i + 1 : i + 2] == b"]" else 0
        elif c == 40:
            depth += 1
        elif c == 41:
            depth -= 1
        elif c == 124 and depth == 0:
            return True
        i += 1
    return False


class _WordStartRe:
    """A pattern beginning with `\b`, found fast: the engine tries a pattern that begins with
    `\b` at every offset, while the rest of it alone is searched for by its first characters;
    the word boundary is checked here.  finditer() lists the matches the whole pattern's
    finditer would give."""

    def __init__(self, pattern: bytes) -> None:
        self.whole = re.compile(pattern)
        self.rest: re.Pattern[bytes] | None = None
        if pattern.startswith(rb"\b") and not _top_level_bar(pattern):
            self.rest = re.compile(pattern[2:])

    def finditer(self, text: bytes) -> list[re.Match[bytes]]:
        if self.rest is None:
            return list(self.whole.finditer(text))
        out = []
        pos = 0
        n = len(text)
        while (m := self.rest.search(text, pos)) is not None:
            p = m.start()
            if m.end() == p:  # an empty match: re's rules for those apply
                return list(self.whole.finditer(text))
            if (p > 0 and text[p - 1] in _ASCII_WORD) != (p < n and text[p] in _ASCII_WORD):
                out.append(m)
                pos = m.end()
            else:
                pos = p + 1
        return out


_IF0 = re.compile(rb"#[ \t]*if[ \t]+0\b")
# `#define DUMP_IT_BACK 0` ... `#if DUMP_IT_BACK`: a debug switch the file turns off
_DEF0 = re.compile(rb"[ \t]*#[ \t]*define[ \t]+[A-Za-z_]\w*[ \t]+\(?0\)?[ \t]*(?:/[*/].*)?")
_IF_NAME = re.compile(rb"#[ \t]*if[ \t]+([A-Za-z_]\w*)[ \t]*(?:/[*/].*)?$", re.MULTILINE)
# `#define final_version` ... `#ifndef final_version`: code the file itself switched off
_IFNDEF = re.compile(rb"#[ \t]*(?:ifndef[ \t]+([A-Za-z_]\w*)|if[ \t]+!\s*defined[ \t]*\(?[ \t]*"
                     rb"([A-Za-z_]\w*)[ \t]*\)?)[ \t]*(?:/[*/].*)?$", re.MULTILINE)
_PP_LINE = _LineStartRe(rb"[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b")


_TO_SPACE = bytes(c if c in (10, 13) else 32 for c in range(256))


def _blank(buf: bytearray, start: int, end: int) -> None:
    """Replace buf[start:end] with spaces, keeping newlines."""
    buf[start:end] = buf[start:end].translate(_TO_SPACE)


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


_CODE, _STRING, _CHAR, _COMMENT = range(4)


def _lex_state(text: bytes, pos: int) -> int:
    """Whether pos is in code, in a string or character literal, or in a comment begun on its
    line (a literal continued from an earlier line with a backslash is not seen)."""
    i = text.rfind(b"\n", 0, pos) + 1
    while i < pos:
        c = text[i]
        if c == 34 or c == 39:  # " or '
            j = i + 1
            while j < pos and text[j] != c:
                j += 2 if text[j] == 92 else 1
            if j >= pos:
                return _STRING if c == 34 else _CHAR
            i = j + 1
            continue
        if c == 47 and i + 1 < pos:  # /
            if text[i + 1] == 47:
                return _COMMENT
            if text[i + 1] == 42:
                e = text.find(b"*/", i + 2, pos)
                if e == -1:
                    return _COMMENT
                i = e + 2
                continue
        i += 1
    return _CODE


def _in_literal(text: bytes, pos: int) -> bool:
    return _lex_state(text, pos) != _CODE


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


def _group_directives(text: bytes, pos: int) -> Iterator[tuple[bytes, int]]:
    """(keyword, start) of the #elif/#else/#endif of the group open just before `pos`, up to
    and including its #endif; nested groups are skipped."""
    depth = 1
    for start, d in _PP_LINE.finditer(text, pos):
        kw = d.group(1)
        if kw in (b"if", b"ifdef", b"ifndef"):
            depth += 1
        elif kw == b"endif":
            depth -= 1
            if depth == 0:
                yield kw, start
                return
        elif depth == 1:
            yield kw, start


def _matching_endif(text: bytes, pos: int) -> int:
    """Start of the #endif closing the group open just before `pos`, or -1."""
    return next((s for kw, s in _group_directives(text, pos) if kw == b"endif"), -1)


def _zero(text: bytes, name: bytes) -> bool:
    """The file defines `name` as 0 once, and never otherwise nor #undef's it."""
    defs = re.findall(rb"^[ \t]*#[ \t]*(?:define|undef)[ \t]+" + name + rb"\b.*$", text,
                      re.MULTILINE)
    return len(defs) == 1 and _DEF0.fullmatch(defs[0]) is not None


_DEFINE = re.compile(rb"^[ \t]*#[ \t]*(define|undef)[ \t]+([A-Za-z_]\w*)", re.MULTILINE)


def _switched_off(text: bytes, cands: list[re.Match[bytes]]) -> list[re.Match[bytes]]:
    """The `#ifndef NAME` of `cands` after which NAME is surely defined: the file defines it
    once, outside any conditional, before the #ifndef, and never #undef's it."""
    # a name that does not occur before its test (a header's include guard) is not defined
    # there: most candidates go without a scan of the file
    cands = [m for m in cands if text.rfind(m.group(1) or m.group(2), 0, m.start()) != -1]
    if not cands:
        return []
    names = {m.group(1) or m.group(2) for m in cands}
    defs: dict[bytes, list[tuple[bytes, int]]] = {}
    for d in _DEFINE.finditer(text):
        if d.group(2) in names:
            defs.setdefault(d.group(2), []).append((d.group(1), d.start()))
    out = []
    for m in cands:
        ds = defs.get(m.group(1) or m.group(2), [])
        if len(ds) != 1 or ds[0][0] != b"define" or ds[0][1] > m.start():
            continue
        if not branches(text, [ds[0][1]])[ds[0][1]]:  # outside any conditional
            out.append(m)
    return out


def blank_if0(buf: bytearray) -> None:
    """Blank `#if 0 ... #endif` regions (the #else branch, if any, is kept); `#if NAME` is
    `#if 0` when the file defines NAME as 0 (and nothing else), and `#ifndef NAME` is when
    the file defines NAME unconditionally before it (`#define final_version`)."""
    text = bytes(buf)
    starts = list(_IF0.finditer(text))
    named = _IF_NAME.findall(text)
    if named:
        zero = {n for n in set(named) if _zero(text, n)}
        if zero:
            starts += [m for m in _IF_NAME.finditer(text) if m.group(1) in zero]
    ifndefs = list(_IFNDEF.finditer(text))
    if ifndefs:
        starts += _switched_off(text, ifndefs)
    starts.sort(key=lambda m: m.start())
    for m in starts:
        if not _at_line_start(text, m.start()) or buf[m.start() : m.end()].strip() == b"":
            continue  # already blanked as part of an outer #if 0
        for kw, start in _group_directives(text, m.end()):
            # blank from #if 0 to the end of its first #else/#elif/#endif line
            _blank(buf, m.start(), _line_end(text, start))
            if kw == b"else":  # keep the #else branch, blank only its #endif line
                end = _matching_endif(text, _line_end(text, start))
                if end != -1:
                    _blank(buf, end, _line_end(text, end))
            break


def blank_alternatives(text: bytes) -> bytes:
    """Keep only the first branch of every #if/#elif/#else group, directives blanked.

    Used as a fallback when a conditional splits a statement (`#ifdef X if (a) { #else if (b) {
    #endif`) and the grammar cannot take both branches at once.
    """
    buf = bytearray(text)
    stack: list[bool] = []  # per open group: are we inside a non-first branch?
    for start, d in _PP_LINE.finditer(text):
        kw = d.group(1)
        end = _line_end(text, start)
        if kw in (b"if", b"ifdef", b"ifndef"):
            stack.append(False)
        elif kw in (b"elif", b"else"):
            if stack:
                stack[-1] = True
        elif kw == b"endif":
            if stack:
                stack.pop()
            _blank(buf, start, end)
            continue
        if kw in (b"if", b"ifdef", b"ifndef"):
            _blank(buf, start, end)
        if kw in (b"elif", b"else"):
            # blank from this directive up to the next directive at the same depth
            depth = 0
            stop = len(text)
            for start2, d2 in _PP_LINE.finditer(text, end):
                k2 = d2.group(1)
                if k2 in (b"if", b"ifdef", b"ifndef"):
                    depth += 1
                elif k2 == b"endif":
                    if depth == 0:
                        stop = start2
                        break
                    depth -= 1
                elif depth == 0:
                    stop = start2
                    break
            _blank(buf, start, stop)
    return bytes(buf)


_BODY_OPEN = re.compile(rb"\n\{")
_BODY_CLOSE = re.compile(rb"\n\}")
_LABEL_LINE = re.compile(rb"[ \t]*([A-Za-z_]\w*)[ \t]*:[ \t]*$")
_OPERATOR_START = frozenset(b"|&+-*/%?:.,)]=<>^}")


def code_before(text: bytes, pos: int) -> bytes:
    """The last code line before pos (blank lines and whole-line comments skipped), stripped,
    or b"#" if a preprocessor line or the start of the file comes first."""
    end = pos
    while end > 0:
        ls = text.rfind(b"\n", 0, end - 1) + 1
        line = text[ls:end].strip()
        end = ls
        if not line:
            continue
        if line.startswith(b"#"):
            return b"#"
        if line.endswith(b"*/"):
            k = line.rfind(b"/*")
            if k == -1:  # the end of a multi-line comment: take it as a statement boundary
                return b";"
            line = line[:k].rstrip()
            if not line:
                continue
        k = line.find(b"//")
        if k != -1:
            line = line[:k].rstrip()
            if not line:
                continue
        return line
    return b"#"


_BLANKS = re.compile(rb"[ \t\r\n]*")


def _code_after(text: bytes, pos: int, stop: int) -> bytes:
    """The first code text in text[pos:stop] (whitespace and comments skipped)."""
    while pos < stop:
        pos = _BLANKS.match(text, pos, stop).end()  # type: ignore[union-attr]
        if text.startswith(b"/*", pos):
            e = text.find(b"*/", pos + 2, stop)
            if e == -1:
                return b""
            pos = e + 2
        elif text.startswith(b"//", pos):
            e = text.find(b"\n", pos, stop)
            if e == -1:
                return b""
            pos = e
        else:
            return text[pos : min(stop, pos + 8)]
    return b""


def _mid_statement(text: bytes, before: bytes, first: bytes, last: bytes) -> bool:
    if before != b"#" and before[-1:] not in (b";", b"{", b"}", b":"):
        return True
    if before[-1:] == b":" and _LABEL_LINE.fullmatch(before) and before.strip() != b"default:":
        return True  # `label:` then a conditional group: the label has no statement
    if first[:1] and first[0] in _OPERATOR_START:
        return True
    if re.match(rb"else\b", first):
        return True
    if last != b"#" and last[-1:] not in (b";", b"}", b":"):  # `{`: opens what #endif cuts
        return True
    if last != b"#" and _LABEL_LINE.fullmatch(last) and last.strip() != b"default:":
        return True
    return False


def blank_split_conditionals(buf: bytearray, text: bytes) -> None:
    """Conditional groups that split a statement or expression (`if (a ||\n#ifdef X\n b ||
    \n#endif\n c)`, an `else if` branch under #ifdef, `label:` right before #endif) lose
    their directive lines; inside a function body, such a group with #else/#elif keeps only
    its first branch.  Groups at statement boundaries are left to the grammar."""
    if b"#if" not in text:
        return
    opens: list[int] = []
    closes: list[int] = []

    def in_body(pos: int) -> bool:
        if not opens:  # computed on first use: most files need none
            opens.extend(m.start() + 1 for m in _BODY_OPEN.finditer(text))
            closes.extend(m.start() + 1 for m in _BODY_CLOSE.finditer(text))
        i = bisect.bisect_right(opens, pos) - 1
        if i < 0:
            return False
        j = bisect.bisect_right(closes, opens[i])
        return j < len(closes) and closes[j] > pos

    stack: list[list[tuple[int, int]]] = []  # per open group: (start, line end) of directives
    for start, d in _PP_LINE.finditer(text):
        kw = d.group(1)
        if kw in (b"if", b"ifdef", b"ifndef"):
            stack.append([(start, _line_end(text, start))])
            continue
        if not stack:
            continue
        stack[-1].append((start, _line_end(text, start)))
        if kw != b"endif":
            continue
        group = stack.pop()
        if buf[group[0][0]] != 35:  # already blanked inside an enclosing group
            continue
        first_end = group[1][0]
        before = code_before(text, group[0][0])
        first = _code_after(text, group[0][1], first_end)
        last = code_before(text, first_end)
        if last != b"#" and text.rfind(b"\n", 0, first_end) < group[0][1]:
            last = b"#"
        if not _mid_statement(text, before, first, last):
            continue
        if len(group) > 2:
            if not in_body(group[0][0]):
                continue
            for (s0, _), (s1, _) in itertools.pairwise(group[1:]):
                _blank(buf, s0, s1)
        _blank(buf, group[0][0], group[0][1])
        _blank(buf, group[-1][0], group[-1][1])


# A word holding one of these is tried with loop_macro_pattern.  Only those the file holds
# join the search: the engine tests every byte against the first letters of an alternation,
# while a single literal (most files hold one hint or none) is scanned for.
_LOOP_HINTS = (b"for_each", b"foreach", b"FOR_EACH", b"FOREACH", b"_walk", b"for_all_",
               b"for_other_", b"iterate_", b"scoped_guard", b"scoped_cond_guard", b"while_each",
               b"do_each")
_DEFINE_LINE = re.compile(rb"#[ \t]*define\b")


@lru_cache(maxsize=4)
def _patterns(kb: KnowledgeBase) -> tuple[frozenset[bytes], frozenset[bytes], re.Pattern[bytes],
                                          tuple[bytes, ...]]:
    norm = kb.normalize
    words = frozenset(w.encode() for w in norm["blank_words"])
    calls = frozenset(c.encode() for c in norm["blank_calls"])
    loop_re = re.compile(norm["loop_macro_pattern"].encode())
    plain = tuple(sorted(w for w in words | calls | _replace_words(kb).keys()
                         if not w.startswith(b"__")))
    return words, calls, loop_re, plain


@lru_cache(maxsize=64)
def _alternation(alternatives: tuple[bytes, ...]) -> re.Pattern[bytes]:
    return re.compile(b"|".join(alternatives))


@lru_cache(maxsize=4)
def _replace_words(kb: KnowledgeBase) -> dict[bytes, bytes]:
    """Words rewritten to a keyword of the same length (xfs's `STATIC` -> `static`)."""
    out = {}
    for w, r in kb.normalize.get("replace_words", {}).items():
        if len(w) == len(r):
            out[w.encode()] = r.encode()
    return out


def blank_defines(buf: bytearray) -> None:
    """Blank #define lines (continuations included): the grammar gains nothing from macro
    bodies, which `macros.collect_macros` reads from the raw text."""
    text = bytes(buf)
    for m in _DEFINE_LINE.finditer(text):
        if _at_line_start(text, m.start()):
            _blank(buf, m.start(), _line_end(text, m.start()))


_LOOP_PREV_WORDS = (b"else", b"do")


@lru_cache(maxsize=4)
def _type_first_re(names: tuple[str, ...]) -> tuple[re.Pattern[bytes], int] | None:
    """A type_arg_call with a type as its first argument, and the length of the longest name
    if every name is a word (else 0)."""
    if not names:
        return None
    alt = b"|".join(re.escape(n.encode()) for n in names)
    rx = re.compile(rb"\b(?:" + alt + rb")\s*\(\s*(struct|union|enum)\b")
    words = all(n and _ASCII_WORD.issuperset(n.encode()) for n in names)
    return rx, max(map(len, names)) if words else 0


# `(struct`, `( union`: where a type_arg_call's type argument can begin
_PAREN_TYPE = re.compile(rb"\(\s*(?:struct|union|enum)\b")
_SPACE = frozenset(b" \t\n\r\f\v")
_WORD_END = re.compile(rb"(?<!\w)\w+\Z")  # a whole word ending where the search ends


def _type_first_matches(text: bytes, names: tuple[str, ...]) -> Iterator[re.Match[bytes]]:
    """The matches of _type_first_re(names) in text (`offsetof(struct foo, m)`), as its
    finditer gives them.  A name's first letter is everywhere, `(struct` is not: each `(struct`
    is found first, and the pattern tried at the word before it (for names that are words;
    any other name is searched for the slow way)."""
    found = _type_first_re(names)
    if found is None:
        return
    rx, longest = found
    if not longest:
        yield from rx.finditer(text)
        return
    end = 0  # of the last match: matches do not overlap
    for paren in _PAREN_TYPE.finditer(text):
        k = paren.start()
        while k > 0 and text[k - 1] in _SPACE:
            k -= 1
        word = _WORD_END.search(text, max(0, k - longest), k)  # None if longer than any name
        if word is None or word.start() < end:
            continue
        m = rx.match(text, word.start())
        if m is not None:
            yield m
            end = m.end()


# `, struct foo *)` or `, struct foo,`: a type passed to a macro (container_of, list_entry...)
_TYPE_ARG = re.compile(rb",(\s*)(struct|union|enum)(?=\s+\w+[\s*]*[,)])")


def _args_re(rest: bytes) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """`[(,]` + rest, a pattern for a macro argument, as one pattern per character: the
    engine scans for one literal much faster than for one of a set of characters."""
    return re.compile(rb"\(" + rest), re.compile(rb"," + rest)


def _arg_matches(rxs: tuple[re.Pattern[bytes], re.Pattern[bytes]],
                 text: bytes) -> Iterator[re.Match[bytes]]:
    """The matches of `[(,]` + rest in order, as its finditer would give them, for a pattern
    whose matches hold no `(` or `,` past their first character (none can hide another's
    start)."""
    return heapq.merge(*(rx.finditer(text) for rx in rxs), key=re.Match.start)


# A type written as a macro argument that the grammar cannot take as an expression:
# `min_t(unsigned int, a, b)`, `va_arg(ap, char *)`, `alloc_percpu(      foo *)` (after the
# struct keyword was blanked).  Two or more C type keywords, or words followed by stars.
# Tried at every `(` and `,`, so it fails fast: a first word followed by neither a blank
# nor a star (`(dev,`) is no type, and what could never match if given back is not given
# back (the blanks before the argument, which starts with a letter after all of them; a
# word).
_TYPE_KW = rb"(?:unsigned|signed|int|long|short|char|const|volatile|float|double|void)"
_TYPE_WORDS = _args_re(
    rb"[ \t]*+\n?+[ \t]*+(?=[A-Za-z_]\w*+[ \t*])(?P<t>(?:" + _TYPE_KW + rb"[ \t]+)+" + _TYPE_KW
    + rb"\b[ \t]*(?:\*[ \t]*)*"
    rb"|(?:struct|union|enum)[ \t]+\w+[ \t*]*"
    rb"|(?:[A-Za-z_]\w*+[ \t]++)*[A-Za-z_]\w*+[ \t]*+\*[ \t*]*)(?=\n?[ \t]*[,)])")
_NOT_CALLEES = frozenset((b"return", b"sizeof", b"if", b"while", b"switch", b"for", b"case",
                          b"do", b"else", b"defined", b"_Alignof", b"alignof", b"__alignof__"))
_WORD_TAIL = re.compile(rb"(\w+)[ \t]*$")
_SPACE_TO_UNDERSCORE = bytes.maketrans(b" \t*", b"__ ")


_OPERATOR_ARG = re.compile(rb",[ \t]*(==|!=|<=|>=|<|>)[ \t]*,")


def rewrite_type_args(buf: bytearray, text: bytes) -> None:
    """Turn a type written as a macro argument into one identifier of the same length:
    `unsigned int` -> `unsigned_int`, `char *` -> `char  `."""
    for m in _arg_matches(_TYPE_WORDS, text):
        if text[m.start()] == 40:  # `(`: only a call's first argument, not a cast
            w = _WORD_TAIL.search(text, max(0, m.start() - 64), m.start())
            if w is None or w.group(1) in _NOT_CALLEES:
                continue
        t0, t1 = m.span("t")
        typ = text[t0:t1].rstrip(b" \t*")
        stars = text[t0 + len(typ) : t1]
        buf[t0:t1] = typ.translate(_SPACE_TO_UNDERSCORE) + stars.translate(_TO_SPACE)


@lru_cache(maxsize=4)
def _header_res(kb: KnowledgeBase) -> tuple[tuple[bytes, re.Pattern[bytes], bytes, bytes], ...]:
    out = []
    for h in kb.normalize.get("header_macros", ()):
        lit = re.match(r"\w*", h["pattern"]).group(0).encode()  # type: ignore[union-attr]
        rx = re.compile(rb"(?:" + h["pattern"].encode() + rb")\(")
        out.append((lit, rx, h["type"].encode(), h.get("prefix", "").encode()))
    return tuple(out)


def _top_commas(text: bytes, start: int, end: int) -> list[int]:
    """Offsets of the commas in text[start:end] outside nested parentheses."""
    seg = text[start:end]
    if b"(" not in seg:
        return [start + i for i, c in enumerate(seg) if c == 44]
    out, depth = [], 0
    for i, c in enumerate(seg):
        if c == 40:
            depth += 1
        elif c == 41:
            depth -= 1
        elif c == 44 and depth == 0:
            out.append(start + i)
    return out


def rewrite_headers(buf: bytearray, text: bytes, kb: KnowledgeBase) -> None:
    """A function defined through a macro, `SYSCALL_DEFINE2(kill, pid_t, pid, int, sig) {`,
    becomes `long        sys_kill( pid_t  pid, int  sig) {`: same length, the macro name
    replaced by a return type (and a name prefix when it fits), the first comma by `(`, and
    each comma between a parameter's type and its name by a space."""
    for lit, rx, rtype, prefix in _header_res(kb):
        if lit not in text:
            continue
        for m in rx.finditer(text):
            if not _at_line_start(text, m.start()):
                continue
            close = _match_paren(text, m.end() - 1)
            if close == -1:
                continue
            k = close
            while k < len(text) and text[k] in b" \t\r\n":
                k += 1
            if k >= len(text) or text[k] != 123:  # `{`: a definition, not a prototype
                continue
            commas = _top_commas(text, m.end(), close - 1)
            head_len = m.end() - m.start()
            pre = prefix if len(rtype) + 1 + len(prefix) <= head_len else b""
            if not commas:  # DEFINE0(name): rebuild on one line when that fits
                name = text[m.end() : close - 1].strip()
                new = rtype + b" " + pre + name + b"(void)"
                if len(new) <= close - m.start() and b"\n" not in text[m.start() : close]:
                    buf[m.start() : close] = new.ljust(close - m.start())
                continue
            if len(commas) % 2 or not re.fullmatch(rb"\w+", text[m.end() : commas[0]]):
                continue
            buf[m.start() : m.end()] = rtype + b" " * (head_len - len(rtype) - len(pre)) + pre
            buf[commas[0]] = 40  # (
            for c in commas[1::2]:
                buf[c] = 32


# A word or a call right before a string literal, or right after one: a macro pasted onto
# the literal (`printk(KERN_ERR DRV_NAME ": x")`, `"%" PRIu64 "\n"`, `"v" __stringify(X)`).
_WORD_OR_CLOSE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_)")
_AFTER_STRING = re.compile(rb"\"[ \t]*(?:\r?\n[ \t]*)?([A-Za-z_]\w*)")
_STRING_PREFIXES = frozenset((b"L", b"u", b"U", b"u8"))
_STRING_NEIGHBOURS = frozenset((b"return", b"case", b"sizeof", b"extern", b"else", b"do",
                                b"goto", b"asm", b"__asm__", b"__asm", b"volatile",
                                b"__volatile__", b"inline", b"__inline__", b"_Pragma"))


def _word_before(text: bytes, end: int) -> int:
    start = end
    while start > 0 and (text[start - 1] == 95 or chr(text[start - 1]).isalnum()):
        start -= 1
    return start


def _open_paren_before(text: bytes, close: int) -> int:
    """Index of the `(` matching the `)` at close, or -1 (gives up at a quote or a `;`)."""
    depth = 0
    for i in range(close, max(-1, close - 2000), -1):
        c = text[i]
        if c == 41:
            depth += 1
        elif c == 40:
            depth -= 1
            if depth == 0:
                return i
        elif c in (34, 39, 59, 123, 125):
            return -1
    return -1


def _preprocessor_line(text: bytes, pos: int) -> bool:
    ls = text.rfind(b"\n", 0, pos) + 1
    return text[ls:pos].lstrip().startswith(b"#")


# Comments, string and character literals, in one left-to-right scan (a backslash-newline
# inside a literal is an escape like any other).  A comment runs to its first `*/` or to the
# end of the text; both are taken in runs (to the next star in a comment, to the next
# escape or quote in a literal), not a character at a time.
_LITERAL = re.compile(rb"/\*(?:[^*]*+\*++(?:[^*/][^*]*+\*++)*+/|.*)|//[^\n]*"
                      rb"|\"[^\"\\\n]*+(?:\\.[^\"\\\n]*+)*+\"?"
                      rb"|'[^'\\\n]*+(?:\\.[^'\\\n]*+)*+'?", re.S)
_LITERAL_KIND = {34: _STRING, 39: _CHAR}  # by first character; anything else is a comment


class _Literals:
    """Where the comments and literals of a text are; `state(pos)` classifies a position."""

    def __init__(self, text: bytes) -> None:
        spans = [m.span() for m in _LITERAL.finditer(text)]
        self.starts = [s for s, _ in spans]
        self.ends = [e for _, e in spans]
        self.kinds = [_LITERAL_KIND.get(text[s], _COMMENT) for s in self.starts]

    def state(self, pos: int) -> int:
        """_CODE, or the kind of literal pos is in; a literal's opening quote is in it."""
        i = bisect.bisect_right(self.starts, pos) - 1
        if i >= 0 and pos < self.ends[i]:
            return self.kinds[i]
        return _CODE

    def closes_at(self, pos: int) -> bool:
        """Whether pos is the closing quote of a string literal."""
        i = bisect.bisect_right(self.starts, pos) - 1
        return i >= 0 and self.kinds[i] == _STRING and pos == self.ends[i] - 1 > self.starts[i]


def blank_string_macros(buf: bytearray) -> None:
    """Blank the macros pasted onto a string literal: C allows neither a word nor a call
    next to a literal (keywords such as `return "x"` aside), so each is a macro expanding
    to a string (DRV_NAME, PRIu64, __stringify(x)).  Repeated until a chain is gone."""
    text = bytes(buf)
    if b'"' not in text:
        return
    lits = _Literals(text)  # blanking code words moves no literal
    strings = [(s, e) for s, e, k in zip(lits.starts, lits.ends, lits.kinds, strict=True)
               if k == _STRING]
    for _ in range(4):
        text = bytes(buf)
        spans: list[tuple[int, int]] = []
        for s, e in strings:
            k = s - 1  # back over blanks and at most one newline
            while k >= 0 and text[k] in b" \t":
                k -= 1
            if k >= 0 and text[k] == 10:
                k -= 1
                if k >= 0 and text[k] == 13:
                    k -= 1
                while k >= 0 and text[k] in b" \t":
                    k -= 1
            if k >= 0 and (text[k] in _WORD_OR_CLOSE):
                span = _before_string(text, lits, k, s)
                if span is not None:
                    spans.append(span)
            m = _AFTER_STRING.match(text, e - 1)
            if m is not None and e - s > 1:
                span = _after_string(text, lits, m)
                if span is not None:
                    spans.append(span)
        if not spans:
            return
        for start, end in spans:
            _blank(buf, start, end)


def _before_string(text: bytes, lits: _Literals, last: int,
                   quote: int) -> tuple[int, int] | None:
    """The word or call ending at `last` just before the literal opening at `quote`."""
    end = last + 1
    if text[last] == 41:  # `)`: a call `name(...)` before the literal
        op = _open_paren_before(text, last)
        if op == -1:
            return None
        k = op
        while k > 0 and text[k - 1] in b" \t":
            k -= 1
        start = _word_before(text, k)
        if start == k:
            return None  # a cast `(char *)"x"` or a parenthesised expression
        name = text[start:k]
    else:
        start = _word_before(text, end)
        name = text[start:end]
        if name in _STRING_PREFIXES and quote == end:
            return None
    if (not name or name[0] in b"0123456789" or name in _STRING_NEIGHBOURS
            or _preprocessor_line(text, start) or lits.state(start) != _CODE):
        return None
    return start, end


def _after_string(text: bytes, lits: _Literals, m: re.Match[bytes]) -> tuple[int, int] | None:
    start, end = m.span(1)
    if (m.group(1) in _STRING_NEIGHBOURS or lits.state(start) != _CODE
            or _preprocessor_line(text, m.start())):
        return None
    k = end
    while k < len(text) and text[k] in b" \t":
        k += 1
    if k < len(text) and text[k] == 40:
        end = _match_paren(text, k)
        if end == -1:
            return None
    return start, end


@lru_cache(maxsize=4)
def _designated_re(kb: KnowledgeBase) -> re.Pattern[bytes] | None:
    names = kb.normalize.get("designated_arg_calls", ())
    if not names:
        return None
    return re.compile(rb"\b(?:" + b"|".join(re.escape(n.encode()) for n in names)
                      + rb")[ \t]*\(")


def rewrite_designated_args(buf: bytearray, text: bytes, kb: KnowledgeBase) -> None:
    """Designated initializers passed to a declaring macro (libbpf's `LIBBPF_OPTS(type, name,
    .flags = f, .cookie = c,);`) lose their leading dot and the trailing comma, so each is an
    assignment expression in a call: `LIBBPF_OPTS(type, name,  flags = f,  cookie = c );`."""
    rx = _designated_re(kb)
    if rx is None or not any(n.encode() in text for n in kb.normalize["designated_arg_calls"]):
        return
    for m in rx.finditer(text):
        close = _match_paren(text, m.end() - 1)
        if close == -1:
            continue
        commas = _top_commas(text, m.end(), close - 1)
        for c in commas:
            k = c + 1
            while k < close and text[k] in b" \t\r\n":
                k += 1
            if text[k] == 46 and (text[k + 1] == 95 or chr(text[k + 1]).isalpha()):  # .name
                buf[k] = 32
            elif k == close - 1:  # a trailing comma before `)`
                buf[c] = 32


@lru_cache(maxsize=4)
def _asm_res(kb: KnowledgeBase) -> tuple[_WordStartRe | None, dict[bytes, bytes],
                                         _WordStartRe | None]:
    ops = {k.encode(): f'"{v}"'.encode() for k, v in kb.normalize.get("asm_operand_macros",
                                                                        {}).items()}
    ops = {k: v for k, v in ops.items() if len(v) <= len(k)}
    clobbers = kb.normalize.get("asm_clobber_words", ())
    op_re = _WordStartRe(rb"\b(" + b"|".join(map(re.escape, sorted(ops, reverse=True)))
                         + rb")[ \t]*\(") if ops else None
    cl_re = _WordStartRe(rb"\b(?:" + b"|".join(re.escape(c.encode()) for c in clobbers)
                         + rb")\b") if clobbers else None
    return op_re, ops, cl_re


def rewrite_asm_operands(buf: bytearray, text: bytes, kb: KnowledgeBase) -> None:
    """Macros that expand to a whole asm operand or clobber list (the BPF selftests'
    `:: __imm(name), __imm_const(n, v) : __clobber_all`) become what the grammar takes:
    `:: "i"  (name), "i"        (   v) : "memory"     `."""
    if b"asm" not in text:
        return
    op_re, ops, cl_re = _asm_res(kb)
    if op_re is not None:
        for m in op_re.finditer(text):
            close = _match_paren(text, m.end() - 1)
            if close == -1:
                continue
            name = m.group(1)
            buf[m.start() : m.end(1)] = ops[name].ljust(len(name))
            commas = _top_commas(text, m.end(), close - 1)
            if commas:  # the operand's value is the last argument
                _blank(buf, m.end(), commas[-1] + 1)
    if cl_re is not None:
        for m in cl_re.finditer(text):
            buf[m.start() : m.end()] = b'"memory"'.ljust(m.end() - m.start())


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


# An indented macro call whose `{` follows on the same line: a statement-like block macro
# (`bpf_for(i, 0, n) {`, `with_intel_runtime_pm(rpm, wf) {`, `drm_exec_until_all_locked(e) {`).
# an argument list nesting parentheses up to three deep, taken a run of other characters
# at a time; it can end in one place only, so nothing in it is given back when what follows
# fails
_ARGS = rb"\([^()]*+(?:\([^()]*+(?:\([^()]*+\)[^()]*+)*+\)[^()]*+)*+\)"
# (possessive quantifiers where giving characters back could never lead to a match)
_BLOCK_MACRO = _LineStartRe(rb"[ \t]++([A-Za-z_]\w{4,}+)[ \t]*+(" + _ARGS
                            + rb")[ \t]*+\{[ \t]*+(?:$|//|/\*)", re.M)
_NOT_BLOCK_MACROS = _NOT_CALLEES | {b"__attribute__", b"__attribute", b"typeof", b"__typeof__",
                                    b"__typeof", b"asm", b"__asm__", b"__asm", b"_Generic",
                                    b"__extension__"}


def rewrite_block_macros(buf: bytearray, text: bytes, seen: set[int]) -> None:
    """An indented `name(args) {` in statement position is a loop-like block macro whatever
    its name (C has no other such shape): the name becomes `while` padded, as for the
    iterator macros of loop_macro_pattern."""
    for _, m in _BLOCK_MACRO.finditer(text):
        start, name_end = m.span(1)
        name = m.group(1)
        if start in seen or name in _NOT_BLOCK_MACROS:
            continue
        if not _is_statement_position(text, start):
            continue
        # no cursor recorded: what such a macro assigns is unknown
        buf[start:name_end] = b"while" + b" " * (name_end - start - 5)


# A number-like word with an underscore (`tg3_flag(tp, 5780_CLASS)`, `1000baseT_Full`): a
# token pasted by a macro (`TG3_FLAG_##flag`), never a C number.  Not the tail of a word
# (`u8_x` at `8`) nor of a number (`.5_`).  Searched in a copy of the text whose digits are
# all `0`: the engine scans for one literal much faster than for a class (the lookbehind
# follows it for that reason too).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_DIGIT_WORD = re.compile(rb"0(?<![\w.]0)\w*_\w*")


def rewrite_digit_words(buf: bytearray, text: bytes) -> None:
    """`5780_CLASS` -> `_780_CLASS`: an identifier of the same length."""
    lits: _Literals | None = None
    for m in _DIGIT_WORD.finditer(text.translate(_DIGITS_TO_ZERO)):
        if text[m.start() : m.start() + 2] in (b"0x", b"0X"):
            continue
        if lits is None:
            lits = _Literals(text)
        if lits.state(m.start()) == _CODE and not _preprocessor_line(text, m.start()):
            buf[m.start()] = 95  # _


# A statement passed to a macro (`PP_ASSERT_WITH_CODE(!ret, "msg", return ret);`,
# `cond_guard(lock, goto out, &l)`) and a macro declaring a static local (`static
# DECLARE_BITMAP(seen, N);` in a body), which the grammar takes only as a declaration.
# (The keyword follows all the blanks: none is given back.)
_STATEMENT_ARG = _args_re(rb"[ \t]*+\n?+[ \t]*+(return|goto|break|continue)\b")
_STATIC_MACRO = _LineStartRe(rb"[ \t]+(static)[ \t]+[A-Z_][A-Z0-9_]*[ \t]*\(")


def rewrite_statement_args(buf: bytearray, text: bytes) -> None:
    """`, return ret)` -> `,        ret)`, `, break)` -> `, 0    )`; and the `static` of an
    indented `static MACRO(...);` is blanked so the macro is a call."""
    lits: _Literals | None = None
    for m in _arg_matches(_STATEMENT_ARG, text):
        if lits is None:
            lits = _Literals(text)
        if lits.state(m.start()) != _CODE or _preprocessor_line(text, m.start()):
            continue
        s, e = m.span(1)
        k = e
        while k < len(text) and text[k] in b" \t\r\n":
            k += 1
        if m.group(1) in (b"return", b"goto") and k < len(text) and text[k] not in b"),":
            _blank(buf, s, e)
        else:
            buf[s:e] = b"0".ljust(e - s)
    for _, m in _STATIC_MACRO.finditer(text):
        close = _match_paren(text, m.end() - 1)
        if close != -1 and _code_after(text, close, len(text))[:1] == b";":
            _blank(buf, m.start(1), m.end(1))


# An indented call starting a statement, possibly the first of a run of statement macros
# written without semicolons: `switch (cmd) { N(UP) N(DOWN)\n\tN(REBOOT)\n\t}`.
_RUN_START = _LineStartRe(rb"[ \t]++([A-Za-z_]\w*+)[ \t]*+" + _ARGS + rb"\s*+\1[ \t]*\(")
_NEXT_CALL = re.compile(rb"\s*([A-Za-z_]\w*)[ \t]*\(")
_GAP = re.compile(rb"\s*")


def terminate_macro_runs(buf: bytearray, text: bytes) -> None:
    """Two or more calls of one macro in a row with nothing between them (`N(UP) N(DOWN)`)
    are statement macros that bring their own semicolon (C has no such shape otherwise): a
    space or tab after each call becomes the `;`.  Calls with only newlines after them stay
    as they are."""
    pos = 0
    for line_start, m in _RUN_START.finditer(text):
        if line_start < pos or m.group(1) in _NOT_BLOCK_MACROS:
            continue
        if not _is_statement_position(text, m.start(1)):
            continue
        closes = []
        open_pos = text.index(b"(", m.end(1))
        while True:
            close = _match_paren(text, open_pos)
            if close == -1:
                break
            closes.append(close)
            nxt = _NEXT_CALL.match(text, close)
            if nxt is None or nxt.group(1) != m.group(1):
                break
            open_pos = nxt.end() - 1
        pos = closes[-1] if closes else m.end()
        if len(closes) < 2 or _code_after(text, closes[-1], len(text))[:1] == b"{":
            continue  # `f(void) ATTR(a) ATTR(b) {`: attributes before a body
        for close in closes:
            gap = _GAP.match(text, close)
            if gap is None or text[gap.end() : gap.end() + 1] == b";":
                continue
            for k in range(close, gap.end()):
                if text[k] in b" \t":
                    buf[k] = 59  # ;
                    break


@lru_cache(maxsize=8)
def _compiled(pattern: str) -> _WordStartRe:
    return _WordStartRe(pattern.encode())


def normalize(source: bytes, kb: KnowledgeBase) -> Normalized:
    """Return the normalised text and recorded facts; len(result.text) == len(source)."""
    buf = bytearray(source)
    out = Normalized(text=b"")
    blank_if0(buf)
    blank_defines(buf)
    blank_split_conditionals(buf, bytes(buf))
    text = bytes(buf)
    words, calls, loop_re, plain = _patterns(kb)
    record = kb.normalize["record_annotations"]
    guard_names = set(kb.normalize["guard_loop_macros"])
    replace = _replace_words(kb)

    # Every annotation we blank starts with "__" or is one of a few plain words; one scan over
    # such identifiers, then a set lookup, is much cheaper than a 150-way alternation.  "__"
    # is a literal the engine scans for, but a plain word's first letter is everywhere (`n`
    # of notrace, `o` of offsetof): only the plain words the file holds join the scan.
    # Word boundaries are checked here.
    annot = _alternation((rb"__\w+", *(re.escape(w) + rb"\b" for w in plain if w in text)))
    for m in annot.finditer(text):
        name = m.group(0)
        if m.start() and (text[m.start() - 1] == 95 or chr(text[m.start() - 1]).isalnum()):
            continue
        if name in words:
            _blank(buf, m.start(), m.end())
        elif name in replace:
            buf[m.start() : m.end()] = replace[name]
        elif name in calls:
            j = m.end()
            while j < len(text) and text[j] in b" \t":
                j += 1
            if j >= len(text) or text[j] != 40 or _in_literal(text, m.start()):
                continue
            close = _match_paren(text, j)
            if close == -1:
                continue
            sname = name.decode()
            if sname in record:
                arg = text[j + 1 : close - 1].decode("utf-8", "replace").strip()
                out.annotations.append((m.start(), record[sname], arg))
            _blank(buf, m.start(), close)

    level = kb.normalize.get("log_level_pattern")
    if level:
        for m in _compiled(level).finditer(text):
            _blank(buf, m.start(), m.end())
    blank_string_macros(buf)

    text = bytes(buf)
    for m in _TYPE_ARG.finditer(text):
        _blank(buf, m.start(2), m.end(2))
    for m in _type_first_matches(text, tuple(kb.normalize.get("type_arg_calls", ()))):
        _blank(buf, m.start(1), m.end(1))
    rewrite_headers(buf, bytes(buf), kb)
    rewrite_asm_operands(buf, bytes(buf), kb)
    rewrite_designated_args(buf, bytes(buf), kb)
    rewrite_digit_words(buf, bytes(buf))
    rewrite_statement_args(buf, bytes(buf))
    rewrite_type_args(buf, bytes(buf))
    # a comparison operator passed to a macro: ASSERTCMP(a, ==, b) -> ASSERTCMP(a, 0 , b)
    text = bytes(buf)
    for m in _OPERATOR_ARG.finditer(text):
        buf[m.start(1) : m.end(1)] = b"0".ljust(m.end(1) - m.start(1))

    text = bytes(buf)
    seen_loops: set[int] = set()
    hints = tuple(re.escape(h) for h in _LOOP_HINTS if h in text)
    for hint in _alternation(hints).finditer(text) if hints else ():
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
        do_while = False
        if k < len(text) and text[k] in b";,)":
            # `} for_each_vma(vmi, vma);` closes a do-while; anything else is a call such
            # as idr_for_each(&idr, fn, data);
            if text[k] != 59 or text[ls:start].strip() != b"}":
                continue
            do_while = True
        elif not _is_statement_position(text, start):
            continue
        width = name_end - start
        buf[start:name_end] = b"while" + b" " * (width - 5)
        macro = text[start:name_end].decode()
        if do_while:
            continue
        if macro in guard_names:
            out.guard_loops[start] = macro
        else:
            # the cursor: skb_queue_walk(head, skb) names it second, *for_each*(pos, ...) first
            args = text[j + 1 : close - 1].split(b",", 2)
            pick = 1 if "_walk" in macro and len(args) > 1 else 0
            first = args[pick].strip().decode("utf-8", "replace")
            if first.isidentifier():
                out.loops[start] = first
    rewrite_block_macros(buf, bytes(buf), seen_loops)
    terminate_macro_runs(buf, bytes(buf))
    out.text = bytes(buf)
    return out


def branches(text: bytes, offsets: list[int]) -> dict[int, tuple[tuple[int, int], ...]]:
    """For each offset, the conditional branches it sits in: (offset of the group's #if,
    number of the #elif/#else branch, from 0), outermost first."""
    want = sorted(set(offsets))
    out: dict[int, tuple[tuple[int, int], ...]] = {}
    stack: list[tuple[int, int]] = []
    k = 0
    for start, d in _PP_LINE.finditer(text):
        while k < len(want) and want[k] < start:
            out[want[k]] = tuple(stack)
            k += 1
        kw = d.group(1)
        if kw in (b"if", b"ifdef", b"ifndef"):
            stack.append((start, 0))
        elif kw in (b"elif", b"else") and stack:
            stack[-1] = (stack[-1][0], stack[-1][1] + 1)
        elif kw == b"endif" and stack:
            stack.pop()
    for o in want[k:]:
        out[o] = tuple(stack)
    return out
