"""Finding and reading the input files; every refusal is one clear line."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

from .errors import InputError

SUFFIXES = (".c", ".h")
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".pc"})


@dataclass(frozen=True, slots=True)
class Skipped:
    path: str
    reason: str


def discover(paths: list[str], exclude: list[str]) -> list[str]:
    """All .c/.h files under `paths`, sorted; a missing path is an InputError."""
    found: set[str] = set()
    for p in paths:
        if not os.path.exists(p):
            raise InputError(f"{p}: no such file or directory")
        if os.path.isfile(p):
            found.add(os.path.normpath(p))
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for f in filenames:
                if f.endswith(SUFFIXES):
                    found.add(os.path.normpath(os.path.join(dirpath, f)))
    if exclude:
        found = {f for f in found if not any(_excluded(f, e) for e in exclude)}
    return sorted(found)


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
