"""Shared wording for the whole-program rules: what is held, and lockdep-style scenarios."""

from __future__ import annotations

from ..ir import NOT_LOCKS, Step
from ..program import Program, identified, show

STATE_WORDS = {
    "irq": "IRQs disabled",
    "bh": "BHs disabled",
    "preempt": "preemption disabled",
    "rcu": "RCU read-side section",
    "local_lock": "local lock held",
}


def held_word(cls: str, kind: str) -> str:
    """`vcpu::lock`, `IRQs disabled`."""
    if kind in STATE_WORDS and (kind != "local_lock" or not identified(cls)):
        return STATE_WORDS[kind]
    return show(cls.rstrip("*"))


def strongest(
    held: tuple[tuple[str, str, int], ...], kinds: frozenset[str]
) -> tuple[str, str, int] | None:
    """The held entry that makes a point atomic: a lock before a CPU state."""
    cands = [h for h in held if h[1] in kinds]
    if not cands:
        return None
    cands.sort(key=lambda h: (h[1] in NOT_LOCKS, not identified(h[0]), h[2], h[0]))
    return cands[0]


def chain_names(*traces: list[Step]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for t in traces:
        for s in t:
            seen.setdefault(s.function, None)
    return tuple(seen)


def two_cpus(cpu0: list[str], cpu1: list[str], width: int = 38,
             outcome: str = "*** DEADLOCK ***") -> list[str]:
    """Interleave two columns: each entry of cpu0/cpu1 is one line; "" leaves the slot empty.
    The last line says what goes wrong."""
    out = [f"{'CPU0':<{width}}CPU1"]
    for a, b in zip(cpu0, cpu1, strict=True):
        out.append(f"{a:<{width}}{b}".rstrip())
    out.append(outcome)
    return out


def cpu_rows(cpu0: list[str], cpu1: list[str]) -> tuple[tuple[str, str], ...]:
    """The rows two_cpus() prints, as data (Finding.scenario)."""
    return tuple(zip(cpu0, cpu1, strict=True))


def where(prog: Program, fid: int) -> str:
    fn = prog.funcs[fid]
    return f"{fn.name}() at {fn.file}:{fn.line}"
