"""The one report model every renderer reads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple

from .ir import Step

FINGERPRINT_VERSION = "1"


class OrderEdge(NamedTuple):
    """One edge of the lock-order graph: `taken` was taken in `function` (or a callee) while
    `held` was held.  Lock classes are spelled as messages show them."""

    held: str
    taken: str
    function: str
    cycle: bool  # on the finding's cycle, not merely next to it


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: str
    message: str
    file: str
    line: int
    column: int
    function: str
    functions: tuple[str, ...]
    locks: tuple[str, ...]
    traces: tuple[tuple[Step, ...], ...]
    key: str  # what the finding is about, free of line numbers (fingerprint input)
    explanation: tuple[str, ...] = field(default=())
    # what each trace is, where the rule can say ("CPU0: holds A, then takes B"); may be
    # shorter than traces
    trace_titles: tuple[str, ...] = field(default=())
    # The explanation as data, for renderers that draw instead of print: the CPU0/CPU1
    # scenario rows (either side may be ""), and the lock-order graph around a cycle.
    scenario: tuple[tuple[str, str], ...] = field(default=())
    graph: tuple[OrderEdge, ...] = field(default=())

    @property
    def fingerprint(self) -> str:
        """Stable across runs and unrelated edits: no line numbers, no other functions."""
        parts = (FINGERPRINT_VERSION, self.rule, self.file, self.function, self.key)
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.rule, self.message)
