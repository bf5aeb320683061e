"""SARIF 2.1.0 (OASIS), for GitHub code scanning and CodeChecker's report-converter.

One run.  The rule metadata is the registry's (summary, documentation, severity, default
state); each finding is a result with one codeFlow holding one threadFlow per witness chain
(per CPU for a deadlock), each step a threadFlowLocation.  File URIs are relative to the
source root, named SRCROOT in `originalUriBaseIds`: the working directory when every
analysed path lies under it (the usual `irqlint check .` in a checkout, which is what GitHub
resolves URIs against), else the common directory of the analysed paths.  A file outside the
root keeps an absolute `file:` URI.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..findings import FINGERPRINT_VERSION, Finding
from ..ir import Step
from ..rules import Rule

SCHEMA = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
          "sarif-schema-2.1.0.json")
ROOT_ID = "SRCROOT"
FINGERPRINT_KEY = f"irqlint/v{FINGERPRINT_VERSION}"
LEVELS = {"error": "error", "warning": "warning", "note": "note", "info": "note"}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def source_root(paths: Sequence[str]) -> str:
    """The directory result URIs are relative to (absolute, no trailing slash)."""
    cwd = os.getcwd()
    absolute = [os.path.abspath(p) for p in paths]
    if all(os.path.commonpath([cwd, p]) == cwd for p in absolute):
        return cwd
    dirs = [p if os.path.isdir(p) else os.path.dirname(p) for p in absolute]
    return os.path.commonpath(dirs)


def _directory_uri(path: str) -> str:
    uri = Path(path).as_uri()
    return uri if uri.endswith("/") else uri + "/"  # a base URI must end with a slash


def _level(severity: str) -> str:
    return LEVELS.get(severity, "warning")


def _what_it_does(doc: str) -> str:
    """The first section of a rule's documentation, as one paragraph."""
    m = re.search(r"## What it does\n(.*?)(?:\n## |\Z)", doc, re.DOTALL)
    body = m.group(1) if m else doc
    return " ".join(body.split())


def _descriptor(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": _what_it_does(rule.doc)},
        "help": {"text": rule.doc, "markdown": rule.doc},
        "defaultConfiguration": {"level": _level(rule.severity), "enabled": rule.default},
    }


class _Locator:
    """Finding paths (as irqlint reports them) to SARIF artifact locations."""

    def __init__(self, root: str) -> None:
        self.root = root

    def artifact(self, path: str) -> dict[str, str]:
        full = os.path.abspath(path)
        if os.path.commonpath([self.root, full]) == self.root:
            rel = Path(os.path.relpath(full, self.root)).as_posix()
            return {"uri": quote(rel, safe="/"), "uriBaseId": ROOT_ID}
        return {"uri": Path(full).as_uri()}

    def physical(self, path: str, line: int, column: int = 0) -> dict[str, Any]:
        loc: dict[str, Any] = {"artifactLocation": self.artifact(path)}
        if line >= 1:
            region: dict[str, int] = {"startLine": line}
            if column >= 1:
                region["startColumn"] = column
            loc["region"] = region
        return loc


def _function(name: str) -> list[dict[str, str]]:
    return [{"name": name, "kind": "function"}] if name else []


def _step(loc: _Locator, s: Step) -> dict[str, Any]:
    location: dict[str, Any] = {
        "physicalLocation": loc.physical(s.file, s.line),
        "message": {"text": f"{s.function}: {s.note}" if s.function else s.note},
    }
    if s.function:
        location["logicalLocations"] = _function(s.function)
    return {"location": location}


def _thread_flows(loc: _Locator, f: Finding) -> list[dict[str, Any]]:
    flows = []
    for i, trace in enumerate(f.traces):
        if not trace:  # SARIF wants at least one location per thread flow
            continue
        title = f"chain {i + 1}"
        if i < len(f.trace_titles):
            title += f" ({f.trace_titles[i]})"
        flows.append({"message": {"text": title},
                      "locations": [_step(loc, s) for s in trace]})
    return flows


def _markdown(f: Finding) -> str:
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", f.message)
    return text + "\n\n```\n" + "\n".join(f.explanation) + "\n```"


def _result(loc: _Locator, f: Finding, index: int) -> dict[str, Any]:
    message: dict[str, str] = {"text": f.message}
    if f.explanation:
        message["markdown"] = _markdown(f)
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": index,
        "level": _level(f.severity),
        "message": message,
        "locations": [{"physicalLocation": loc.physical(f.file, f.line, f.column),
                       "logicalLocations": _function(f.function)}],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
    }
    flows = _thread_flows(loc, f)
    if flows:
        result["codeFlows"] = [{"threadFlows": flows}]
    result["properties"] = {"function": f.function, "functions": list(f.functions),
                            "locks": list(f.locks), "explanation": list(f.explanation)}
    return result


def render(findings: list[Finding], stats: dict[str, Any], *, rules: Sequence[Rule],
           enabled: Collection[str], paths: Sequence[str]) -> str:
    """`rules` is the whole registry (in its order), `enabled` what this run checked,
    `paths` what the user asked to analyse (they fix the source root)."""
    root = source_root(paths)
    loc = _Locator(root)
    index = {r.id: i for i, r in enumerate(rules)}
    overrides = [{"descriptor": {"id": r.id, "index": i},
                  "configuration": {"enabled": r.id in enabled}}
                 for i, r in enumerate(rules) if (r.id in enabled) != r.default]
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if overrides:
        invocation["ruleConfigurationOverrides"] = overrides
    run = {
        "tool": {"driver": {"name": "irqlint", "version": __version__,
                            "semanticVersion": __version__,
                            "rules": [_descriptor(r) for r in rules]}},
        "invocations": [invocation],
        "originalUriBaseIds": {ROOT_ID: {"uri": _directory_uri(root)}},
        "results": [_result(loc, f, index[f.rule]) for f in findings],
        "properties": {"stats": stats},
    }
    doc = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=1) + "\n"
