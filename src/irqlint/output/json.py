"""The stable machine format (DESIGN.md): {"version": 1, "tool": "irqlint", ...}."""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from ..findings import Finding


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity,
        "message": f.message,
        "file": f.file,
        "line": f.line,
        "column": f.column,
        "function": f.function,
        "functions": list(f.functions),
        "locks": list(f.locks),
        "traces": [[{"file": s.file, "line": s.line, "function": s.function, "note": s.note}
                    for s in t] for t in f.traces],
        "fingerprint": f.fingerprint,
        "explanation": list(f.explanation),
    }


def render(findings: list[Finding], stats: dict[str, Any]) -> str:
    doc = {"version": 1, "tool": "irqlint", "tool_version": __version__,
           "findings": [finding_dict(f) for f in findings], "stats": stats}
    return json.dumps(doc, indent=1, sort_keys=False) + "\n"
