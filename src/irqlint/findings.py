"""The one report model every renderer reads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .ir import Step

FINGERPRINT_VERSION = "1"


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

    @property
    def fingerprint(self) -> str:
        """Stable across runs and unrelated edits: no line numbers, no other functions."""
        parts = (FINGERPRINT_VERSION, self.rule, self.file, self.function, self.key)
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.rule, self.message)
