"""Project configuration: irqlint.toml at the tree root, or --config FILE.

    [rules]
    disable = ["lock-imbalance"]
    [paths]
    exclude = ["tools/", "samples/"]
    [kb.functions]
    noreturn = ["my_fatal_error"]
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError

KNOWN = {"rules": {"enable", "disable"}, "paths": {"exclude"}, "kb": None, "analysis": {"profile"}}


@dataclass(slots=True)
class Config:
    enable: list[str] = field(default_factory=list)
    disable: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    kb: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    source: str | None = None


def find_config(paths: list[str]) -> str | None:
    for p in paths:
        d = os.path.abspath(p if os.path.isdir(p) else os.path.dirname(p) or ".")
        cand = os.path.join(d, "irqlint.toml")
        if os.path.isfile(cand):
            return cand
    return None


def load(path: str | None) -> Config:
    if path is None:
        return Config()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed config: {exc}") from None
    cfg = Config(source=path)
    for section, value in data.items():
        if section not in KNOWN:
            raise InputError(f"{path}: unknown section [{section}] "
                             f"(expected one of {', '.join(sorted(KNOWN))})")
        if not isinstance(value, dict):
            raise InputError(f"{path}: [{section}] must be a table")
        allowed = KNOWN[section]
        if allowed is not None:
            for k in value:
                if k not in allowed:
                    raise InputError(f"{path}: unknown key '{k}' in [{section}]")
    rules = data.get("rules", {})
    for k in ("enable", "disable"):
        v = rules.get(k, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise InputError(f"{path}: [rules] {k} must be a list of rule ids")
        setattr(cfg, k, v)
    excl = data.get("paths", {}).get("exclude", [])
    if not isinstance(excl, list) or not all(isinstance(x, str) for x in excl):
        raise InputError(f"{path}: [paths] exclude must be a list of paths")
    cfg.exclude = excl
    cfg.kb = data.get("kb", {})
    prof = data.get("analysis", {}).get("profile")
    if prof is not None and not isinstance(prof, str):
        raise InputError(f"{path}: [analysis] profile must be a string")
    cfg.profile = prof
    return cfg
