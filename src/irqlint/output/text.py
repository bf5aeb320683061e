"""gcc-style text: `file:line:col: warning: message [rule]`, then the explanation lines."""

from __future__ import annotations

from ..findings import Finding


def render(findings: list[Finding], stats: dict[str, object]) -> str:
    out: list[str] = []
    for f in findings:
        out.append(f"{f.file}:{f.line}:{f.column}: {f.severity}: {f.message} [{f.rule}]")
        for i, trace in enumerate(f.traces):
            if len(f.traces) > 1:
                out.append(f"  chain {i + 1}:")
            for s in trace:
                out.append(f"    {s.file}:{s.line}: {s.function}: {s.note}")
        out.extend(f"  {line}" for line in f.explanation)
    return "\n".join(out) + ("\n" if out else "")
