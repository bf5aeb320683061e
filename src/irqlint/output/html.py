"""The HTML report: one static, self-contained DIR/index.html (inline CSS, no script, nothing
fetched).  A summary, then the findings grouped by rule and by file; each finding with its
chains, the source around every step, the CPU0/CPU1 scenario as a table and, for a lock-order
cycle, a drawing of the lock-order graph around it.

Source lines are read when the report is rendered; a file that cannot be read gets a note
instead of a snippet.  Everything taken from source or findings is escaped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from html import escape
from itertools import groupby

from .. import __version__
from ..errors import InputError
from ..findings import Finding
from ..ir import Step
from ..rules import all_rules
from .svg import lock_graph

CONTEXT = 2  # source lines shown either side of a step
MAX_LINE = 400  # characters of one source line shown

Reader = Callable[[str], list[str] | None]


def prepare(directory: str | None) -> str:
    """Check the report directory before the analysis runs (it is created when written)."""
    if not directory:
        raise InputError("--format html needs -o DIR, the directory to write index.html into")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise InputError(f"{directory}: exists and is not a directory (html writes DIR/index.html)")
    above = os.path.dirname(os.path.abspath(directory))
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise InputError(f"{directory}: cannot create directory ({above} is not a directory)")
    return directory


def write(directory: str, findings: list[Finding], stats: dict[str, object]) -> str:
    """Render and write DIR/index.html, creating DIR; returns the file's path."""
    path = os.path.join(prepare(directory), "index.html")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(findings, stats))
    except OSError as exc:
        raise InputError(f"{path}: cannot write report ({exc.strerror})") from None
    return path


def read_source(path: str) -> list[str] | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except (OSError, ValueError):
        return None


def render(findings: list[Finding], stats: dict[str, object], read: Reader = read_source) -> str:
    cache: dict[str, list[str] | None] = {}

    def lines_of(path: str) -> list[str] | None:
        if path not in cache:
            cache[path] = read(path)
        return cache[path]

    ordered = sorted(findings, key=lambda f: (f.rule, *f.sort_key()))
    body: list[str] = [_summary(ordered, stats)]
    n = 0
    for rule, group in groupby(ordered, key=lambda f: f.rule):
        items = list(group)
        body.append(
            f'<section class="rule" id="rule-{escape(rule)}">'
            f'<h2>{escape(rule)} <span class="count">{len(items)}</span></h2>'
            f'<p class="rule-summary">{escape(_summaries().get(rule, ""))}</p>'
        )
        for file, in_file in groupby(items, key=lambda f: f.file):
            these = list(in_file)
            body.append(
                f'<section class="file"><h3>{escape(file)} '
                f'<span class="count">{len(these)}</span></h3>'
            )
            for f in these:
                n += 1
                body.append(_finding(f, n, lines_of))
            body.append("</section>")
        body.append("</section>")
    if not ordered:
        body.append('<p class="clean">No findings.</p>')
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>irqlint report ({len(ordered)} findings)</title><style>{CSS}</style></head>"
        "<body><main>" + "\n".join(body) + "</main></body></html>\n"
    )


def _summaries() -> dict[str, str]:
    return {r.id: r.summary for r in all_rules()}


def _summary(findings: list[Finding], stats: dict[str, object]) -> str:
    files = {f.file for f in findings}
    out = [
        '<header class="summary"><h1>irqlint report</h1>',
        f'<p class="totals">{len(findings)} finding(s) in {len(files)} file(s) '
        f"&middot; irqlint {escape(__version__)}</p>",
    ]
    if findings:
        out.append('<table class="rules"><thead><tr><th>rule</th><th>findings</th>'
                   "<th>files</th><th>flags</th></tr></thead><tbody>")
        summaries = _summaries()
        for rule, group in groupby(findings, key=lambda f: f.rule):
            items = list(group)
            out.append(
                f'<tr><td><a href="#rule-{escape(rule)}">{escape(rule)}</a></td>'
                f'<td class="num">{len(items)}</td>'
                f'<td class="num">{len({f.file for f in items})}</td>'
                f"<td>{escape(summaries.get(rule, ''))}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append('<table class="stats"><tbody>')
    for key, value in stats.items():
        out.append(f"<tr><th>{escape(key.replace('_', ' '))}</th>"
                   f"<td>{escape(_stat(value))}</td></tr>")
    out.append("</tbody></table></header>")
    return "".join(out)


def _stat(value: object) -> str:
    if isinstance(value, dict):
        if "total" in value:
            return f"{value['total']} total"
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def _finding(f: Finding, n: int, lines_of: Reader) -> str:
    out = [
        f'<article class="finding" id="f{n}" data-rule="{escape(f.rule)}" '
        f'data-file="{escape(f.file)}" data-line="{f.line}" '
        f'data-fingerprint="{escape(f.fingerprint)}">',
        f'<p class="where"><a href="#f{n}">{escape(f.file)}:{f.line}:{f.column}</a> '
        f'in <code>{escape(f.function)}()</code> '
        f'<span class="severity">{escape(f.severity)}</span> '
        f'<span class="rule-id">[{escape(f.rule)}]</span></p>',
        f'<p class="message">{escape(f.message)}</p>',
    ]
    explain = (_scenario(f.scenario, f.explanation[-1] if f.explanation else "")
               if f.scenario else _lines(f.explanation))
    drawing = lock_graph(f.graph)
    if drawing:
        explain += (
            f'<figure class="graph">{drawing}<figcaption>Lock order around the cycle: an arrow '
            "A &rarr; B means B was taken while A was held, in the function named on it; "
            "the cycle is red.</figcaption></figure>"
        )
    if explain:
        out.append(f'<div class="explain">{explain}</div>')
    out.append(f'<div class="chains chains-{len(f.traces)}">')
    for i, trace in enumerate(f.traces, 1):
        title = f"chain {i}" if len(f.traces) > 1 else "chain"
        out.append(f'<section class="chain"><h4>{title}</h4><ol class="steps">')
        out.extend(_step(s, lines_of) for s in trace)
        out.append("</ol></section>")
    out.append("</div></article>")
    return "".join(out)


def _scenario(rows: Iterable[tuple[str, str]], outcome: str) -> str:
    cells = "".join(
        "<tr>" + "".join(f"<td>{_code(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        '<table class="scenario"><thead><tr><th>CPU0</th><th>CPU1</th></tr></thead>'
        f"<tbody>{cells}</tbody>"
        f'<tfoot><tr><td colspan="2">{escape(outcome)}</td></tr></tfoot></table>'
    )


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>" if text else ""


def _lines(lines: tuple[str, ...]) -> str:
    return f'<pre class="explanation">{escape(chr(10).join(lines))}</pre>' if lines else ""


def _step(s: Step, lines_of: Reader) -> str:
    head = (
        f'<li class="step" data-file="{escape(s.file)}" data-line="{s.line}">'
        f'<p class="note"><span class="loc">{escape(s.file)}:{s.line}</span> '
        f"<code>{escape(s.function)}</code>: {escape(s.note)}</p>"
    )
    return head + _snippet(s.file, s.line, lines_of) + "</li>"


def _snippet(path: str, line: int, lines_of: Reader) -> str:
    src = lines_of(path)
    if src is None or not 1 <= line <= len(src):
        return f'<p class="nosource">source not available: {escape(path)}:{line}</p>'
    lo, hi = max(1, line - CONTEXT), min(len(src), line + CONTEXT)
    width = len(str(hi))
    rows = []
    for i in range(lo, hi + 1):
        text = src[i - 1][:MAX_LINE]
        cls = "line hl" if i == line else "line"
        rows.append(f'<span class="{cls}"><span class="ln">{i:>{width}}</span>'
                    f"{escape(text) or ' '}</span>")
    return f'<pre class="snippet">{"".join(rows)}</pre>'


CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dde5;--bg:#f6f7f9;--hl:#fff1b8;--red:#c62828}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
 font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1320px;margin:0 auto;padding:24px}
code,pre,.loc,.where a{font-family:ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;
 font-size:13px}
h1{margin:0 0 4px;font-size:26px}
h2{margin:36px 0 4px;font-size:21px;border-bottom:2px solid var(--fg);padding-bottom:4px}
h3{margin:22px 0 8px;font-size:15px;font-family:ui-monospace,Menlo,Consolas,monospace}
h4{margin:0 0 6px;font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.count{display:inline-block;min-width:1.6em;padding:0 6px;border-radius:10px;background:#e3e7ee;
 font-size:12px;text-align:center;vertical-align:middle;color:var(--fg)}
.summary{background:#fff;border:1px solid var(--line);border-radius:8px;padding:18px 22px}
.totals{color:var(--muted);margin:0 0 12px}
table{border-collapse:collapse}
.rules,.stats{margin:8px 0 0;font-size:14px}
.rules th,.rules td,.stats th,.stats td{border-bottom:1px solid var(--line);padding:4px 12px 4px 0;
 text-align:left;vertical-align:top}
.stats th{font-weight:normal;color:var(--muted)}
.num{text-align:right!important;padding-right:16px!important}
.rules td:first-child{white-space:nowrap}
.rule-summary{color:var(--muted);margin:4px 0 0}
.finding{background:#fff;border:1px solid var(--line);border-left:4px solid var(--red);
 border-radius:6px;padding:14px 18px;margin:0 0 18px}
.where{margin:0;color:var(--muted)}
.where a{color:var(--fg);font-weight:600;text-decoration:none}
.severity{color:#a15c00;font-size:13px}
.rule-id{color:var(--muted);font-size:13px}
.message{margin:6px 0 12px;font-weight:600}
.explain{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start;margin:0 0 14px}
.scenario{border:1px solid var(--line);font-size:13px}
.scenario th{background:#eef1f6;padding:4px 14px;text-align:left;
 border-bottom:1px solid var(--line)}
.scenario th+th,.scenario td+td{border-left:1px solid var(--line)}
.scenario td{padding:3px 14px;height:26px;min-width:240px}
.scenario tfoot td{color:var(--red);font-weight:700;font-family:ui-monospace,monospace;
 border-top:1px solid var(--line)}
.explanation{margin:0;padding:8px 12px;background:#fafbfc;border:1px solid var(--line)}
figure.graph{margin:0;max-width:100%;overflow-x:auto}
figcaption{font-size:12px;color:var(--muted);max-width:560px}
.lock-graph{max-width:100%;height:auto;display:block}
.lock-graph text{font:13px ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;
 text-anchor:middle;dominant-baseline:central;fill:var(--fg)}
.lock-graph .node rect{fill:#eef1f6;stroke:#7a8599;stroke-width:1.2}
.lock-graph .node.cycle rect{fill:#fdecea;stroke:var(--red);stroke-width:1.8}
.lock-graph .edge path{stroke:#8a93a3;stroke-width:1.4}
.lock-graph .edge polygon{fill:#8a93a3}
.lock-graph .edge.cycle path{stroke:var(--red);stroke-width:2}
.lock-graph .edge.cycle polygon{fill:var(--red)}
.lock-graph .label text{font-size:12px;fill:#333}
.lock-graph .label rect{fill:#fff;fill-opacity:.9}
.chains{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:16px}
.chain{min-width:0}
.steps{margin:0;padding-left:22px}
.step{margin:0 0 8px}
.note{margin:0 0 3px;font-size:14px}
.loc{color:var(--muted)}
.snippet{margin:0;padding:4px 0;background:#fafbfc;border:1px solid var(--line);border-radius:4px;
 overflow-x:auto;tab-size:8;-moz-tab-size:8;
 display:grid;grid-template-columns:minmax(100%,max-content)}
.snippet .line{display:block;padding:0 10px 0 0;white-space:pre}
.snippet .ln{display:inline-block;color:#9aa2b1;padding:0 10px;margin-right:8px;
 border-right:1px solid var(--line);user-select:none}
.snippet .hl{background:var(--hl)}
.snippet .hl .ln{color:var(--fg);font-weight:700}
.nosource{margin:0;color:var(--muted);font-style:italic;font-size:13px}
.clean{font-size:18px}
"""
