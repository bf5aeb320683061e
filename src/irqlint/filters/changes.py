"""Changed lines of a patch (`--patch FILE`) or of `git diff REV` (`--diff REV`).

A finding is kept when its reported line or any step of any of its chains lies on a changed
line.  Changed lines are new-side lines: added or modified lines, and for a pure deletion the
two lines either side of where the deleted text was (a removed unlock is reported on the code
around it).
"""

from __future__ import annotations

import os
import re
import subprocess

from ..errors import InputError
from ..findings import Finding

_HUNK = re.compile(r"@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

# a path as the patch names it (a/, b/ prefix stripped, patch -p1 style) -> changed lines
Changes = dict[str, set[int]]


def _strip(name: str) -> str | None:
    name = name.split("\t", 1)[0].strip()
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    if name == "/dev/null":
        return None
    parts = name.split("/", 1)
    return os.path.normpath(parts[1] if len(parts) == 2 else parts[0])


def parse(text: str) -> Changes:
    """The changed new-side lines of every file in a unified diff."""
    out: Changes = {}
    lines = text.splitlines()
    i, cur = 0, None
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("+++ "):
            cur = _strip(line[4:])
            if cur is not None:
                out.setdefault(cur, set())
            continue
        m = _HUNK.match(line)
        if m is None or cur is None:
            continue
        old_left = int(m.group(1)) if m.group(1) is not None else 1
        new = int(m.group(2))
        new_left = int(m.group(3)) if m.group(3) is not None else 1
        if new_left == 0:  # an empty new side names the line before it
            new += 1
        changed = out[cur]
        deleted_at: int | None = None  # where a run of deleted lines is, until it ends
        while i < len(lines) and (old_left > 0 or new_left > 0):
            body = lines[i]
            i += 1
            tag = body[:1]
            if tag == "\\":  # "\ No newline at end of file"
                continue
            if tag == "-":
                if deleted_at is None:
                    deleted_at = new
                old_left -= 1
                continue
            if tag == "+":
                changed.add(new)
                new_left -= 1
            else:  # context (" ", or an empty line a mail client trimmed)
                if deleted_at is not None:
                    changed.update(n for n in (deleted_at - 1, deleted_at) if n > 0)
                new_left -= 1
                old_left -= 1
            deleted_at = None
            new += 1
        if deleted_at is not None:  # a pure deletion: the lines either side of it
            changed.update(n for n in (deleted_at - 1, deleted_at) if n > 0)
    return {k: v for k, v in out.items() if v}


def git_root(paths: list[str]) -> str:
    first = paths[0] if os.path.isdir(paths[0]) else os.path.dirname(paths[0]) or "."
    r = _git(first, "rev-parse", "--show-toplevel")
    if r.returncode != 0:
        raise InputError(f"--diff: {paths[0]} is not inside a git repository")
    return r.stdout.strip()


def from_git(paths: list[str], rev: str) -> tuple[str, Changes]:
    """(repository root, changes of the working tree against `rev`)."""
    root = git_root(paths)
    if rev.startswith("-"):
        raise InputError(f"--diff: '{rev}' is not a revision")
    r = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if r.returncode != 0:
        raise InputError(f"--diff: unknown revision '{rev}' in {root}")
    r = _git(root, "diff", "-U0", "--no-color", "--no-ext-diff", "--no-renames", rev, "--")
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or ["failed"])[0]
        raise InputError(f"--diff: git diff {rev}: {msg}")
    return root, parse(r.stdout)


def from_patch(path: str) -> Changes:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: patch file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read patch ({exc.strerror})") from None
    if not _HUNK.search(text):
        raise InputError(f"{path}: not a unified diff (no @@ hunk header)")
    return parse(text)


def _git(cwd: str, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        raise InputError("--diff needs git, which is not installed") from None


def keep(findings: list[Finding], changes: Changes, root: str | None) -> list[Finding]:
    """The findings that touch a changed line.  With `root` (--diff), a patch path is
    root/path; without (--patch), it matches any analysed file whose path ends with it."""
    if root is not None:
        by_abs = {os.path.join(os.path.realpath(root), p): ln for p, ln in changes.items()}
    else:
        by_abs = {}

    resolved: dict[str, set[int]] = {}

    def lines_of(file: str) -> set[int]:
        got = resolved.get(file)
        if got is None:
            ap = os.path.realpath(file)
            if root is not None:
                got = by_abs.get(ap, set())
            else:
                got = set()
                for p, ln in changes.items():
                    if ap == p or ap.endswith(os.sep + p):
                        got |= ln
            resolved[file] = got
        return got

    out = []
    for f in findings:
        points = [(f.file, f.line)] + [(s.file, s.line) for t in f.traces for s in t]
        if any(ln in lines_of(file) for file, ln in points):
            out.append(f)
    return out
