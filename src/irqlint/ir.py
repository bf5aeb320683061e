"""IR and fact records, declared once.

Everything a checker reads is one of these immutable records.  They are produced per file by
the front end (``extract``), cached, and never mutated afterwards; derived facts live in side
tables of the program phase.  They are NamedTuples rather than frozen dataclasses: a warm run
unpickles millions of them, and tuples are several times faster to rebuild.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

# lock kinds that are states, not locks (IRQs, BHs, preemption, RCU read side, migration):
# they order nothing and protect no write
NOT_LOCKS = frozenset({"irq", "bh", "preempt", "rcu", "srcu", "migrate"})


class Step(NamedTuple):
    """One step of a witness chain."""

    file: str
    line: int
    function: str
    note: str


# the pseudo parameter of Call.guard for a branch taken only once the kernel has warned
# (`if (WARN_ON(x))`, kb functions.json `warning_tests`)
WARNED = -1
# the pseudo parameter for a branch taken only when a reference count just dropped to zero
# (`if (refcount_dec_and_test(&x->ref))`, kb functions.json `last_put_tests`): the release
# that a caller holding its own reference never reaches
LAST_PUT = -2

# A field of a parameter stands as a parameter of its own in guards, constants and passed
# parameters: `if (cmd->flags & CMD_ASYNC)` in il_send_cmd(il, cmd) tests field `flags` of
# parameter 1; a caller's `struct il_host_cmd c = { .flags = CMD_ASYNC }; il_send_cmd(il,
# &c)` passes that field a constant.  Its index: FIELD_BASE + parameter * FIELD_SLOTS + a
# slot from the field's name; the last slot of a parameter, ZEROED, says "every field not
# named is zero" (an initializer list, a memset()).
FIELD_BASE = 1 << 20
FIELD_SLOTS = 1 << 16
ZEROED = FIELD_SLOTS - 1
# a passed field that holds the caller's parameter with more bits OR'ed in
# (`cmd.flags = flags; cmd.flags |= CMD_WANT_SKB;`): Call.passes' parameter + OR_MORE
OR_MORE = 1 << 12


def field_param(k: int, name: str) -> int:
    """The index that stands for field `name` of parameter (or argument) k."""
    return FIELD_BASE + k * FIELD_SLOTS + zlib.crc32(name.encode()) % ZEROED


def field_owner(j: int) -> int:
    """The parameter whose field index j stands for (j >= FIELD_BASE)."""
    return (j - FIELD_BASE) // FIELD_SLOTS


def zeroed(k: int) -> int:
    """The index that says the other fields of argument k are zero."""
    return FIELD_BASE + k * FIELD_SLOTS + ZEROED


def rehome(j: int, k: int) -> int:
    """Field index j moved to parameter k: the same field of another pointer."""
    return FIELD_BASE + k * FIELD_SLOTS + (j - FIELD_BASE) % FIELD_SLOTS


def need_key(need: tuple[int, bool | str]) -> tuple[int, str]:
    """Order of the (parameter, value) pairs of a guard: truth values and names mix."""
    return need[0], repr(need[1])


class Call(NamedTuple):
    """A call site.  `callee` is the called name; for an indirect call it is "" and `via` holds
    the expression the call goes through (``x->ops->irq_shutdown``).  A NamedTuple, not a
    dataclass: there are millions of these and they are built on the hot path."""

    callee: str
    via: str
    line: int
    col: int
    args: tuple[str, ...] = ()
    # the caller's flag parameters the call is reached under: (parameter index, true?) for
    # each `if (flag)` / `if (!flag)` around it or returned on before it, (parameter index,
    # "=NAME" or "!NAME") for `if (mode == NAME)` / `!=`, "&NAME" or "~NAME" for
    # `if (flags & NAME)` / `!(...)`; (WARNED, True) on the branch of an `if (WARN_ON(...))`
    guard: tuple[tuple[int, bool | str], ...] = ()
    # arguments that are constants: (argument index, true?) for `f(x, false)`, (argument
    # index, "NAME") for a named constant, `f(x, MODE_POLL)`, "A|B" for `f(x, A | B)`
    consts: tuple[tuple[int, bool | str], ...] = ()
    # arguments that are the caller's own parameters, passed on as they are: (argument
    # index, parameter index) for `g(x, wait)` in `f(x, wait)`
    passes: tuple[tuple[int, int], ...] = ()


class LockOp(NamedTuple):
    """A lock acquire/release/trylock, a lock wrapper macro already expanded."""

    op: str  # acquire | release | trylock
    api: str  # the call as written (a wrapper macro keeps its own name)
    kind: str  # spin, raw_spin, mutex, rwlock_r, ..., irq, bh, preempt, rcu
    expr: str  # the lock instance, a normalised expression ("p->lock", "irq" for pseudo locks)
    cls: str  # the lock class ("struct foo::lock", "drivers/x.c:foo_lock", "rtnl_mutex")
    irq: str | None
    bh: str | None
    line: int
    col: int
    scoped: bool = False  # guard()/scoped_guard(): released when the scope ends


class FieldWrite(NamedTuple):
    """An assignment to a struct field or a global."""

    target: str  # "foo::a.b" (struct foo), a global name, or the normalised expression
    line: int


class FnRef(NamedTuple):
    """A function name stored into a field: `.irq_shutdown = shutdown_pirq` or `x->fn = f`."""

    field: str  # "struct irq_chip::irq_shutdown" when the struct is known, else "irq_shutdown"
    target: str
    line: int


class Registration(NamedTuple):
    """A function handed to a framework (request_irq's handler, INIT_WORK's function...)."""

    api: str
    role: str
    target: str
    line: int
    args: tuple[str, ...]
    obj: str = ""  # the typed class of what it registers for (`ath11k::scan.timeout`), or ""


class Diagnostic(NamedTuple):
    """A function-local finding produced in the per-file phase (lock-imbalance)."""

    rule: str
    line: int
    col: int
    message: str
    locks: tuple[str, ...]
    trace: tuple[Step, ...]
    key: str  # stable identity inside the function, for fingerprints
    # a return holding a lock on an error path: the functions whose result is the error it
    # returns (`ret = f(); if (ret) return ret;`); if every one of them always returns 0, the
    # path cannot happen (the program phase knows the callees of other files)
    error_from: tuple[str, ...] = ()


class LockEffect(NamedTuple):
    """Net lock effect of a function, in terms of its parameters (a frozen summary)."""

    acquires: tuple[tuple[str, str], ...] = ()  # (expr over params, kind)
    releases: tuple[tuple[str, str], ...] = ()
    # released or taken on some returns only: after the call the caller cannot know
    unknown: tuple[str, ...] = ()


class WriteLocks(NamedTuple):
    """The locks around one write of a shared field or global (inconsistent-locking).  Only
    writes with something to say get one: no entry means nothing held, a shared object."""

    line: int
    held: tuple[tuple[str, str], ...] = ()  # (class, kind) held on every path to the write
    partial: tuple[tuple[str, str], ...] = ()  # held on some paths only
    dropped: tuple[str, ...] = ()  # classes of caller locks released on some path before it
    # "f": through a just-allocated object; "l": a local; "?": paths mixed, or a lock whose
    # state the engine lost (a helper that may have taken it)
    flags: str = ""


class Sharing(NamedTuple):
    """Per-function facts of the inconsistent-locking rule, kept apart from the rest."""

    writes: tuple[WriteLocks, ...] = ()
    # (line, col) of a call -> (class, kind) held on some paths to it but not all
    partial_at: tuple[tuple[int, int, tuple[tuple[str, str], ...]], ...] = ()
    entry_held: tuple[str, ...] = ()  # classes asserted held on entry (__must_hold, lockdep)
    section: str = ""  # the section annotation (__init, __exit) when it is an init path


class Function(NamedTuple):
    name: str
    file: str
    line: int
    end_line: int
    static: bool
    params: tuple[tuple[str, str], ...]  # (name, type)
    annotations: tuple[tuple[str, str], ...]  # (acquires|releases|must_hold, expr)
    has_error: bool
    calls: tuple[Call, ...]
    lock_ops: tuple[LockOp, ...]
    field_writes: tuple[FieldWrite, ...]  # with the "sharing" fact family only
    field_reads: tuple[str, ...]  # distinct field names read (also "sharing" only)
    fn_refs: tuple[FnRef, ...]
    registrations: tuple[Registration, ...]
    effect: LockEffect
    diagnostics: tuple[Diagnostic, ...]
    error_hint: str = ""  # for a function with a parse error: the name nearest the error
    # (line, col) of a call or lock operation -> the locks held there on some path, as
    # (lock class, kind, line taken); pseudo locks ("irq*", kind irq/bh/preempt/rcu) included
    held: tuple[tuple[int, int, tuple[tuple[str, str, int], ...]], ...] = ()
    irqs_off: bool = False  # asserts that IRQs are off on entry (lockdep_assert_irqs_disabled)
    sharing: Sharing = Sharing()
    # lock classes this function gives a lockdep key of their own (lockdep_set_class()):
    # the kernel tells their instances apart, a class per struct field cannot
    keyed: tuple[str, ...] = ()
    const_return: str = ""  # every return returns this literal (`0`): a call cannot fail
    # (line, column, typed class) of what each wait call waits for, when typed: the timer,
    # work or IRQ field of a struct (`ath11k::scan.timeout`)
    objs: tuple[tuple[int, int, str], ...] = ()
    # in a file that defines a static function twice (#ifdef twins): the top-level
    # conditional branches the function sits in, as (group's #if offset, branch number)
    branch: tuple[tuple[int, int], ...] = ()
    # (line, work item, workqueue) of each call queueing a work item (kb waits.json queues);
    # (line, "", workqueue) where an ordered workqueue is created and stored
    queues: tuple[tuple[int, str, str], ...] = ()


class KeyEvent(NamedTuple):
    """A call or a table-slot store that may release, unpublish or map a key (an ID or an
    object): the raw material of unpublish-after-free, classified in the program phase."""

    kind: str  # "call": callee(args); "slot": args = (table, index, value), `table[index] = value`
    callee: str
    args: tuple[str, ...]
    line: int
    col: int  # of the callee's name, as in Call, so that sites can be looked up by position
    top: bool  # in a statement every path that gets that far runs (not in a branch or loop)
    # bit j set: event j (later in the text) can follow this one on a path that does not
    # reassign a variable this event's arguments mention
    after: int = 0
    # top, and no way from the entry to a return around it but an early exit on a validity
    # test (`if (!p) return;`): what a release summary needs (a put that frees on the last
    # reference only is no release of its argument)
    sure: bool = False


class KeyFacts(NamedTuple):
    """A function's key events, and the locals set once from a simple expression."""

    function: str
    line: int
    events: tuple[KeyEvent, ...]
    copies: tuple[tuple[str, str], ...]  # ("evtchn", "info->evtchn"), ("close.port", "port")


class MacroDef(NamedTuple):
    name: str
    params: tuple[str, ...]
    body: str
    file: str
    line: int


@dataclass(slots=True)
class FileFacts:
    """What the per-file phase knows about one file (the cached unit)."""

    path: str
    functions: list[Function] = field(default_factory=list)
    fn_refs: list[FnRef] = field(default_factory=list)  # file-scope initializers
    registrations: list[Registration] = field(default_factory=list)
    structs: dict[str, dict[str, str]] = field(default_factory=dict)  # struct -> field -> type
    failed_functions: int = 0  # function bodies swallowed by top-level ERROR nodes
    error_macros: dict[str, int] = field(default_factory=dict)  # suspected culprit -> count
    seconds: dict[str, float] = field(default_factory=dict)
    key_facts: list[KeyFacts] = field(default_factory=list)  # functions with key events
    markers: tuple[str, ...] = ()  # kb sleep.json atomic_markers the file calls


class FileSummary(NamedTuple):
    """The small part of a file's facts every run needs: counts for `stats`, and the
    function-local diagnostics.  Cached ahead of the full FileFacts, so a warm run that needs
    no more never unpickles the rest."""

    path: str
    functions: int
    parse_error_functions: int  # including bodies swallowed by top-level ERROR nodes
    error_macros: dict[str, int]
    seconds: dict[str, float]
    diagnostics: tuple[tuple[str, Diagnostic], ...]  # (function, diagnostic)

    @classmethod
    def of(cls, facts: FileFacts) -> FileSummary:
        culprits = dict(facts.error_macros)
        bad = facts.failed_functions
        for fn in facts.functions:
            if fn.has_error:
                bad += 1
                culprits[fn.error_hint] = culprits.get(fn.error_hint, 0) + 1
        diags = tuple((fn.name, d) for fn in facts.functions for d in fn.diagnostics)
        return cls(facts.path, len(facts.functions) + facts.failed_functions, bad, culprits,
                   dict(facts.seconds), diags)
