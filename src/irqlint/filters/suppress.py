"""Inline suppressions: `/* irqlint: ignore[rule-a,rule-b] reason */`, `// irqlint: ...`.

Placement (documented in `irqlint explain invalid-suppression`):
- at the end of a line of code, the comment covers findings reported on that line;
- alone on its line, it covers the next line of code (blank lines and further suppression
  comments in between are skipped);
- when the covered line belongs to a function's definition header (from the function's first
  line to its opening brace), it covers every finding reported in that function.

A comment without a reason suppresses nothing.  Problems with the comments themselves become
findings of the meta rules `invalid-suppression` and `unused-suppression`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..findings import Finding
from ..ir import Step
from ..rules.suppressions import INVALID, META, UNUSED

_COMMENT = re.compile(r"(?:/\*|//)\s*irqlint:\s*ignore\b(?P<rest>.*)")
_LIST = re.compile(r"\[(?P<names>[^\]]*)\](?P<reason>.*)")
_ONLY = re.compile(r"\s*(?:/\*|//)\s*irqlint:\s*ignore\b.*")

# (name, first line, last line) of every function of a file
Ranges = list[tuple[str, int, int]]


@dataclass(frozen=True, slots=True)
class Suppression:
    file: str
    line: int  # where the comment is
    col: int
    target: int  # the line of code it covers
    rules: tuple[str, ...]  # as written
    reason: str
    text: str  # the comment, whitespace-normalised: part of the meta findings' identity


def scan(path: str, text: str) -> list[Suppression]:
    """Every `irqlint: ignore` comment of one file, in line order."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = _COMMENT.search(line)
        if m is None:
            continue
        rest = m.group("rest")
        if m.group(0).startswith("/*"):
            rest = rest.split("*/", 1)[0]
        names: tuple[str, ...] = ()
        reason = rest
        lm = _LIST.match(rest.strip())
        if lm is not None:
            names = tuple(n.strip() for n in lm.group("names").split(",") if n.strip())
            reason = lm.group("reason")
        target = i + 1
        if not line[: m.start()].strip():  # alone on its line: the next line of code
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or _ONLY.fullmatch(lines[j])):
                j += 1
            target = j + 1
        body = " ".join(m.group(0).split())
        out.append(Suppression(path, i + 1, m.start() + 1, target, names,
                               reason.strip(), body))
    return out


def _header_end(lines: list[str], first: int, last: int) -> int:
    """The line of a function's opening brace (1-based)."""
    for n in range(first, last + 1):
        if "{" in lines[n - 1]:
            return n
    return first


@dataclass(slots=True)
class _Scope:
    sup: Suppression
    valid: tuple[str, ...]  # the honoured rule names
    function: str  # the function it covers, or "" for one line
    first: int
    last: int


def _scopes(sups: list[Suppression], lines: list[str], ranges: Ranges,
            known: set[str]) -> tuple[list[_Scope], list[tuple[Suppression, str, str]]]:
    scopes, problems = [], []
    for s in sups:
        valid: list[str] = []
        if not s.rules:
            problems.append((s, "", "names no rule: write irqlint: ignore[rule-id] reason"))
        for r in s.rules:
            if r in META:
                problems.append((s, r, f"'{r}' cannot be suppressed inline; disable it in "
                                       "irqlint.toml instead"))
            elif r not in known:
                problems.append((s, r, f"unknown rule '{r}' (see `irqlint rules`)"))
            else:
                valid.append(r)
        if s.rules and not s.reason:
            problems.append((s, "", "gives no reason: say why the finding is wrong after "
                                    "the rule list; it suppresses nothing until then"))
            valid = []
        scope = _Scope(s, tuple(valid), "", s.target, s.target)
        for name, first, last in ranges:
            if first <= s.target <= _header_end(lines, first, last):
                scope = _Scope(s, tuple(valid), name, first, last)
                break
        scopes.append(scope)
    return scopes, problems


def _covers(sc: _Scope, f: Finding) -> bool:
    if f.rule not in sc.valid:
        return False
    if sc.function:
        return f.function == sc.function and sc.first <= f.line <= sc.last
    return f.line == sc.first


def _enclosing(ranges: Ranges, line: int) -> str:
    inner = [(first, name) for name, first, last in ranges if first <= line <= last]
    return max(inner)[1] if inner else ""


def _meta(rule: str, s: Suppression, ranges: Ranges, msg: str, key: str) -> Finding:
    fn = _enclosing(ranges, s.line)
    step = Step(s.file, s.line, fn, msg)
    return Finding(rule, "warning", msg, s.file, s.line, s.col, fn, (fn,) if fn else (), (),
                   ((step,),), f"{key}|{s.text}")


def apply(findings: list[Finding], files: Iterable[str], read: Callable[[str], str | None],
          ranges_of: Callable[[str], Ranges], known: set[str], enabled: set[str]
          ) -> tuple[list[Finding], list[Finding], int]:
    """(kept findings, meta findings, number suppressed).

    `files`: the files to look for comments in; `read` gives a file's text (None when it
    cannot be read: no suppressions there); `ranges_of` its functions, asked only for files
    that have suppression comments.  `known`: every rule id; `enabled`: this run's rules."""
    by_file: dict[str, tuple[list[_Scope], Ranges]] = {}
    meta: list[Finding] = []
    for path in sorted(set(files)):
        text = read(path)
        if text is None or "irqlint:" not in text:
            continue
        sups = scan(path, text)
        if not sups:
            continue
        ranges = ranges_of(path)
        scopes, problems = _scopes(sups, text.splitlines(), ranges, known)
        by_file[path] = (scopes, ranges)
        if INVALID in enabled:
            meta.extend(_meta(INVALID, s, ranges, f"invalid suppression: {why}", what)
                        for s, what, why in problems)
    used: set[tuple[int, str]] = set()  # (id of the scope, rule)
    kept = []
    for f in findings:
        hit = [sc for sc in by_file.get(f.file, ([], []))[0] if _covers(sc, f)]
        for sc in hit:
            used.add((id(sc), f.rule))
        if not hit:
            kept.append(f)
    if UNUSED in enabled:
        for scopes, ranges in by_file.values():
            for sc in scopes:
                for r in sc.valid:
                    if r in enabled and (id(sc), r) not in used:
                        where = f"in {sc.function}()" if sc.function else "on this line"
                        meta.append(_meta(UNUSED, sc.sup, ranges,
                                          f"unused suppression: no {r} finding {where}", r))
    return kept, meta, len(findings) - len(kept)
