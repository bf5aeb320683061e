"""Command line: `irqlint check|baseline|stats|rules|explain`.

Exit 0 clean, 1 findings, 2 usage/input.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__, config, workflow
from .cache import Cache, default_dir
from .driver import (
    Analysis,
    Options,
    analyse,
    gc_paused,
    load,
    load_incremental,
    prepare,
    save_snapshot,
)
from .errors import InputError
from .findings import Finding
from .output import html as html_out
from .output import json as json_out
from .output import sarif as sarif_out
from .output import text as text_out
from .rules import all_rules


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        sys.stderr.write(f"irqlint: error: {message}\n")
        raise SystemExit(2)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="files or directories to analyse")
    p.add_argument("-j", "--jobs", type=int, default=0,
                   help="worker processes (default: all cores)")
    p.add_argument("--cache-dir", default=None, help=f"cache directory (default {default_dir()})")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--config", default=None, help="config file (default: irqlint.toml in the tree)")
    p.add_argument("--profile", choices=("auto", "linux", "xen"), default=None)
    p.add_argument("--exclude", action="append", default=[], help="path to leave out (repeatable)")
    p.add_argument("--max-file-size", type=int, default=16, metavar="MB",
                   help="skip files larger than this (default 16)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no skip summary")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="irqlint", description="Interrupt-path concurrency checker for kernel C.")
    p.add_argument("--version", action="version", version=f"irqlint {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    c = sub.add_parser("check", help="analyse and report findings")
    _common(c)
    c.add_argument("--format", choices=("text", "json", "sarif", "html"), default="text")
    c.add_argument("-o", "--output", default=None,
                   help="write the report here instead of stdout (html: a directory)")
    c.add_argument("--enable", action="append", default=[], help="rule to enable (repeatable)")
    c.add_argument("--disable", action="append", default=[], help="rule to disable (repeatable)")
    workflow.add_check_arguments(c)
    s = sub.add_parser("stats", help="parse coverage and time per stage")
    _common(s)
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.add_argument("--top", type=int, default=20, help="worst offenders to list")
    r = sub.add_parser("rules", help="list the rules")
    r.add_argument("--markdown", action="store_true", help="as the README's table")
    e = sub.add_parser("explain", help="document a rule")
    e.add_argument("rule")
    b = sub.add_parser("baseline", help="write the current findings to a baseline file")
    _common(b)
    b.add_argument("--enable", action="append", default=[], help="rule to enable (repeatable)")
    b.add_argument("--disable", action="append", default=[], help="rule to disable (repeatable)")
    workflow.add_baseline_arguments(b)
    return p


def _options(args: argparse.Namespace) -> tuple[Options, config.Config]:
    if args.jobs < 0:
        raise InputError("--jobs must be >= 0")
    if args.max_file_size <= 0:
        raise InputError("--max-file-size must be > 0")
    cfg_path = args.config or config.find_config(args.paths)
    cfg = config.load(cfg_path)
    base = os.path.dirname(os.path.abspath(cfg_path)) if cfg_path else "."
    exclude = [os.path.join(base, e) for e in cfg.exclude] + list(args.exclude)
    profile = args.profile or cfg.profile or "auto"
    if profile not in ("auto", "linux", "xen"):
        raise InputError(f"unknown profile '{profile}'")
    cache_dir = None if args.no_cache else (args.cache_dir or default_dir())
    opts = Options(jobs=args.jobs, cache_dir=cache_dir, profile=profile, exclude=exclude,
                   max_file_size=args.max_file_size * 1024 * 1024, kb_extra=cfg.kb,
                   progress=not args.quiet)
    return opts, cfg


def _stats(a: Analysis) -> dict[str, object]:
    fns = sum(f.functions for f in a.files)
    with_err = sum(f.parse_error_functions for f in a.files)
    return {"files": len(a.files), "skipped_files": len(a.skipped),
            "functions": fns, "functions_with_parse_errors": with_err,
            "seconds": {k: round(v, 3) for k, v in a.seconds.items()},
            "cached_files": a.cached, "profile": a.kb.profile,
            "left_out_files": sum(a.left_out.values()),
            **({"hidden": dict(a.filtered)} if a.filtered else {})}


def _shown(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _skip_note(a: Analysis, quiet: bool) -> None:
    if a.left_out and not quiet:
        dirs = ", ".join(_shown(d) + "/" for d in a.left_out)
        sys.stderr.write(f"irqlint: left out {sum(a.left_out.values())} file(s) of host and "
                         f"userspace programs under {dirs} (name a directory to check it)\n")
    if a.skipped and not quiet:
        first = a.skipped[0]
        sys.stderr.write(f"irqlint: skipped {len(a.skipped)} file(s) that cannot be analysed, "
                         f"e.g. {first[0]}: {first[1]}\n")


def _checked(args: argparse.Namespace) -> tuple[list[Finding], Analysis, set[str]]:
    """Analyse, run the enabled rules, filter (suppressions, baseline, patch)."""
    import time

    opts, cfg = _options(args)
    if getattr(args, "format", None) == "html":  # fail before the analysis, not after it
        html_out.prepare(args.output)
    flt = workflow.filters(args)
    rules = all_rules()
    known = {r.id for r in rules}
    for r in args.enable + args.disable + cfg.enable + cfg.disable:
        if r not in known:
            raise InputError(f"unknown rule '{r}' (see `irqlint rules`)")
    enabled = {r.id for r in rules if r.default} | set(cfg.enable) | set(args.enable)
    enabled -= set(cfg.disable) | set(args.disable)
    enabled |= set(args.enable)
    opts.full_facts = any(r.program for r in rules if r.id in enabled)
    opts.families = frozenset().union(*(r.facts for r in rules if r.id in enabled))
    t0 = time.perf_counter()
    plan = prepare(args.paths, opts)
    # nothing changed since a run with the same rules: its findings stand (every input is in
    # the key: each file's content, the knowledge, the lock wrappers, irqlint's version)
    rkey = hashlib.blake2b(f"{plan.digest}-{'+'.join(sorted(enabled))}".encode(),
                           digest_size=16).hexdigest()
    cache = Cache(opts.cache_dir)
    hit = cache.get_results(rkey)
    t1 = time.perf_counter()
    if hit is not None:
        files, skipped, findings = hit
        a = Analysis(files, None, skipped, plan.kb, plan.wrappers, plan.seconds,
                     cached=len(files), marked=plan.marked, left_out=plan.left_out)
        a.seconds["results-cache"] = time.perf_counter() - t1
    else:
        # a few files changed since a whole run: its program model, redone for them
        lean = opts.full_facts and not opts.families and all(
            r.lean or not r.program for r in rules if r.id in enabled)
        part = load_incremental(plan, opts) if lean else None
        a = part if part is not None else load(plan, opts)
        t1 = time.perf_counter()
        findings = []
        with gc_paused():  # the program model: millions of long-lived records
            for rule in rules:
                if rule.id in enabled:
                    t = time.perf_counter()
                    findings.extend(rule.check(a))
                    a.seconds[f"rule:{rule.id}"] = time.perf_counter() - t
        if lean:
            save_snapshot(plan, opts, a)  # after a whole build only
        findings.sort(key=Finding.sort_key)
        cache.put_results(rkey, (a.files, a.skipped, findings))
    findings = workflow.apply(flt, findings, a, known, enabled)
    a.seconds["rules"] = time.perf_counter() - t1
    a.seconds["total"] = time.perf_counter() - t0
    return findings, a, enabled


def cmd_check(args: argparse.Namespace) -> int:
    findings, a, enabled = _checked(args)
    if args.format == "html":
        path = html_out.write(args.output, findings, _stats(a))
        _skip_note(a, args.quiet)
        if not args.quiet:
            sys.stderr.write(f"irqlint: {len(findings)} finding(s), report in {path}"
                             f"{workflow.hidden_note(a)}\n")
        return 1 if findings else 0
    if args.format == "sarif":
        report = sarif_out.render(findings, _stats(a), rules=all_rules(), enabled=enabled,
                                  paths=args.paths)
    else:
        render = json_out.render if args.format == "json" else text_out.render
        report = render(findings, _stats(a))
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(report)
        except OSError as exc:
            raise InputError(f"{args.output}: cannot write report ({exc.strerror})") from None
    else:
        sys.stdout.write(report)
    _skip_note(a, args.quiet)
    if args.format == "text" and not args.quiet:
        sys.stderr.write(f"irqlint: {len(findings)} finding(s) in {len(a.files)} file(s)"
                         f"{workflow.hidden_note(a)}\n")
    return 1 if findings else 0


def cmd_baseline(args: argparse.Namespace) -> int:
    findings, a, _ = _checked(args)
    workflow.write_baseline(args, findings)
    _skip_note(a, args.quiet)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    import json

    opts, _ = _options(args)
    a = analyse(args.paths, opts)
    st = _stats(a)
    stage: dict[str, float] = {}
    culprits: dict[str, int] = {}
    for f in a.files:
        for k, v in f.seconds.items():
            stage[k] = stage.get(k, 0.0) + v
        for k, v in f.error_macros.items():
            culprits[k] = culprits.get(k, 0) + v
    st["worker_seconds"] = {k: round(v, 2) for k, v in stage.items()}
    top = sorted(culprits.items(), key=lambda kv: (-kv[1], kv[0]))[: args.top]
    st["worst_offenders"] = [{"name": k, "functions": v} for k, v in top]
    if args.format == "json":
        sys.stdout.write(json.dumps(st, indent=1) + "\n")
    else:
        total = int(st["functions"])  # type: ignore[call-overload]
        bad = int(st["functions_with_parse_errors"])  # type: ignore[call-overload]
        ok = 100.0 * (total - bad) / total if total else 100.0
        print(f"files                 {st['files']} ({st['skipped_files']} skipped, "
              f"{st['left_out_files']} userspace left out)")
        print(f"functions             {total}")
        print(f"with parse errors     {bad} ({ok:.2f}% clean)")
        print("seconds per stage     " + ", ".join(f"{k} {v:.2f}" for k, v in a.seconds.items()))
        print("worker seconds        " + ", ".join(f"{k} {v:.2f}" for k, v in stage.items()))
        if top:
            print("worst offenders (name near the first error: functions)")
            for k, v in top:
                print(f"  {k:40} {v}")
    _skip_note(a, args.quiet)
    return 0


def rules_table() -> str:
    """The README's rule table (between its rules:begin/end markers)."""
    rows = ["| rule | default | flags |", "|---|---|---|"]
    rows += [f"| `{r.id}` | {'on' if r.default else 'off'} | {r.summary.replace('|', '/')} |"
             for r in all_rules()]
    return "\n".join(rows) + "\n"


def cmd_rules(args: argparse.Namespace) -> int:
    if args.markdown:
        sys.stdout.write(rules_table())
        return 0
    for r in all_rules():
        print(f"{r.id:24} {'on ' if r.default else 'off'}  {r.summary}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    rules = {r.id: r for r in all_rules()}
    r = rules.get(args.rule)
    if r is None:
        raise InputError(f"unknown rule '{args.rule}' (known: {', '.join(sorted(rules))})")
    print(f"# {r.id}\n\n{r.summary}\n\n{r.doc}", end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"check": cmd_check, "stats": cmd_stats, "rules": cmd_rules,
                "explain": cmd_explain, "baseline": cmd_baseline}[args.cmd](args)
    except InputError as exc:
        sys.stderr.write(f"irqlint: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("irqlint: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # a bug of ours: not "findings" (1) nor bad input (2)
        if os.environ.get("IRQLINT_STRICT") or os.environ.get("IRQLINT_TRACEBACK"):
            raise
        sys.stderr.write(f"irqlint: internal error ({type(exc).__name__}: {exc}); please "
                         "report it (IRQLINT_TRACEBACK=1 shows where)\n")
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
