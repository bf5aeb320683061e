"""The rule registry: one entry per rule, the single source for `irqlint rules`,
`irqlint explain`, the README's rule list and (later) SARIF rule metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..driver import Analysis
    from ..findings import Finding


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: str
    default: bool
    summary: str
    doc: str  # What it does / Why is this bad? / Example / Use instead / Known false positives
    check: Callable[[Analysis], Iterable[Finding]]
    program: bool = False  # reads the whole-program model (every file's full facts)
    facts: frozenset[str] = frozenset()  # optional fact families it reads (extract.FAMILIES)
    # reads no more of the program model than a snapshot keeps (snapshot.py): functions
    # without their call lists and per-statement facts, the call sites summaries and checkers
    # walk (Program.active, Program.held_sites), summaries, call graph, contexts
    lean: bool = False


REGISTRY: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if rule.id in REGISTRY:
        raise ValueError(f"duplicate rule id {rule.id}")
    REGISTRY[rule.id] = rule
    return rule


def all_rules() -> list[Rule]:
    from . import (  # noqa: F401  (each registers itself)
        devres_on_detach,
        inconsistent_locking,
        irq_unsafe_lock,
        lock_imbalance,
        lock_order_inversion,
        sleep_in_atomic,
        suppressions,
        unpublish_after_free,
        wait_under_lock,
    )

    return [REGISTRY[k] for k in sorted(REGISTRY)]
