"""Finding and reading the input files; every refusal is one clear line."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import InputError

SUFFIXES = (".c", ".h")
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".pc"})


@dataclass(frozen=True, slots=True)
class Skipped:
    path: str
    reason: str


Layout = dict[str, list[str]]  # {"markers": [...], "userspace": [...]}, see kb/trees.json


@dataclass(frozen=True, slots=True)
class Tree:
    profile: str
    root: str
    userspace: tuple[str, ...]  # absolute directories of host and userspace programs


def find_tree(path: str, layouts: dict[str, list[Layout]]) -> Tree | None:
    """The known source tree `path` is in (or is): the nearest directory, from `path` up,
    holding every marker of one of the profiles' layouts (in the order given)."""
    d = os.path.abspath(path if os.path.isdir(path) else os.path.dirname(path))
    while True:
        for profile, options in layouts.items():
            for lay in options:
                if all(os.path.exists(os.path.join(d, m)) for m in lay["markers"]):
                    return Tree(profile, d, tuple(os.path.join(d, u) for u in lay["userspace"]))
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _c_files(top: str, prune: frozenset[str]) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS
                             and os.path.join(dirpath, d) not in prune)
        for f in filenames:
            if f.endswith(SUFFIXES):
                yield os.path.normpath(os.path.join(dirpath, f))


def discover(paths: list[str], exclude: list[str],
             layouts: dict[str, list[Layout]] | None = None) -> tuple[list[str], dict[str, int]]:
    """All .c/.h files under `paths`, sorted; a missing path is an InputError.  A directory
    inside a known tree leaves out the tree's userspace directories (unless it is in one):
    returned beside the files, each with its number of C files."""
    found: set[str] = set()
    left_out: dict[str, int] = {}
    for p in paths:
        if not os.path.exists(p):
            raise InputError(f"{p}: no such file or directory")
        if os.path.isfile(p):
            found.add(os.path.normpath(p))
            continue
        tree = find_tree(p, layouts) if layouts else None
        ap = os.path.abspath(p)
        # the userspace directories below the path (one above it, or the path itself, was
        # asked for by name)
        prune = frozenset(u for u in (tree.userspace if tree else ())
                          if u.startswith(ap + os.sep) and os.path.isdir(u))
        found.update(_c_files(p, prune))
        for u in prune:
            if u not in left_out:
                left_out[u] = sum(1 for _ in _c_files(u, frozenset()))
    if exclude:
        found = {f for f in found if not any(_excluded(f, e) for e in exclude)}
    return sorted(found), {u: n for u, n in sorted(left_out.items()) if n}


def _excluded(path: str, pattern: str) -> bool:
    ap, pat = os.path.abspath(path), os.path.abspath(pattern.rstrip("/"))
    return ap == pat or ap.startswith(pat + os.sep) or fnmatch.fnmatch(ap, pat)


def check_source(data: bytes, max_bytes: int) -> str | None:
    """Why `data` cannot be analysed, or None."""
    if len(data) > max_bytes:
        return f"larger than {max_bytes // (1024 * 1024)} MB (--max-file-size)"
    if b"\0" in data:
        return "binary file (NUL bytes)"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
    return None
