"""Baselines: the findings a tree already has, so that a later run reports only new ones.

The file is JSON, sorted so that a re-taken baseline diffs cleanly:

    {"version": 1, "tool": "irqlint", "fingerprint_version": "1",
     "baseline": [{"fingerprint": ..., "rule": ..., "file": ..., "function": ...,
                   "message": ...}, ...]}

Matching is by fingerprint only (Finding.fingerprint: rule, file, function and a line-free
key), as a multiset: two findings with one fingerprint need two baseline entries.  The other
fields are there for the reader of the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from typing import Any

from ..errors import InputError
from ..findings import FINGERPRINT_VERSION, Finding

VERSION = 1


def document(findings: list[Finding]) -> dict[str, Any]:
    rows = sorted(({"fingerprint": f.fingerprint, "rule": f.rule, "file": f.file,
                    "function": f.function, "message": f.message} for f in findings),
                  key=lambda r: (r["file"], r["function"], r["rule"], r["fingerprint"],
                                 r["message"]))
    return {"version": VERSION, "tool": "irqlint", "fingerprint_version": FINGERPRINT_VERSION,
            "baseline": rows}


def write(path: str, findings: list[Finding]) -> None:
    """Write atomically: a temporary file in the same directory, then a rename."""
    text = json.dumps(document(findings), indent=1) + "\n"
    d = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".irqlint-baseline-", dir=d)
    except OSError as exc:
        raise InputError(f"{path}: cannot write baseline ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise InputError(f"{path}: cannot write baseline ({exc.strerror})") from None


def load(path: str) -> Counter[str]:
    """Fingerprint -> how many findings of the baseline have it."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: baseline file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: baseline is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read baseline ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed baseline (not JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("tool") != "irqlint" or "baseline" not in doc:
        raise InputError(f"{path}: not an irqlint baseline (write one with `irqlint baseline`)")
    if doc.get("version") != VERSION:
        raise InputError(f"{path}: baseline version {doc.get('version')!r} is not supported "
                         f"(expected {VERSION})")
    if doc.get("fingerprint_version") != FINGERPRINT_VERSION:
        raise InputError(f"{path}: baseline has fingerprint version "
                         f"{doc.get('fingerprint_version')!r}, this irqlint uses "
                         f"{FINGERPRINT_VERSION!r}: take the baseline again")
    rows = doc["baseline"]
    if not isinstance(rows, list):
        raise InputError(f"{path}: malformed baseline ('baseline' must be a list)")
    counts: Counter[str] = Counter()
    for i, row in enumerate(rows):
        fp = row.get("fingerprint") if isinstance(row, dict) else None
        if not isinstance(fp, str) or not fp:
            raise InputError(f"{path}: malformed baseline (entry {i + 1} has no fingerprint)")
        counts[fp] += 1
    return counts


def subtract(findings: list[Finding], known: Counter[str]) -> list[Finding]:
    """The findings the baseline does not account for, in their order."""
    left = Counter(known)
    out = []
    for f in findings:
        fp = f.fingerprint
        if left[fp] > 0:
            left[fp] -= 1
        else:
            out.append(f)
    return out
