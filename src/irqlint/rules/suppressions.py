"""invalid-suppression, unused-suppression: findings about `irqlint: ignore[...]` comments.

They are produced by the suppression filter (filters/suppress.py) after the other rules ran,
not by a checker: their `check` finds nothing.  They live in the registry so that `irqlint
rules`, `irqlint explain`, --enable/--disable, the config file and every output format know
them like any other rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from . import Rule, register

if TYPE_CHECKING:
    from ..driver import Analysis
    from ..findings import Finding

INVALID = "invalid-suppression"
UNUSED = "unused-suppression"
META = frozenset({INVALID, UNUSED})

_PLACEMENT = """\
A suppression is a comment `/* irqlint: ignore[rule-a,rule-b] reason */` (or
`// irqlint: ignore[rule-a] reason`). At the end of a line of code it covers the findings
reported on that line; alone on its line it covers the next line of code. When that line is
part of a function's definition header (from its first line to the opening brace), it covers
every finding reported in the function."""

INVALID_DOC = f"""\
## What it does
Flags an `irqlint: ignore` comment that cannot be honoured: it gives no reason, names no
rule, or names a rule irqlint does not know (a typo, or a rule that was renamed). A comment
without a reason suppresses nothing; in a comment with an unknown name the known names still
apply.

{_PLACEMENT}

## Why is this bad?
A suppression hides a warning for good. Without a reason the next reader cannot tell a
reviewed false positive from a silenced bug; with a misspelt rule name it silently hides
nothing, and the finding it was meant for comes back as noise.

## Example
    spin_lock(&d->lock);
    /* irqlint: ignore[sleep-in-atomc] */
    kmalloc(n, GFP_KERNEL);

## Use instead
    spin_lock(&d->lock);
    /* irqlint: ignore[sleep-in-atomic] d->lock is a mutex on this config, see d_init() */
    kmalloc(n, GFP_KERNEL);

## Known false positives
Confidence: high. Only comments starting with `irqlint:` right after the comment opener are
read; the text `irqlint: ignore` inside a string literal is taken as a comment too.
"""

UNUSED_DOC = f"""\
## What it does
Flags a rule named in an `irqlint: ignore[...]` comment that suppressed no finding in this
run. Only rules enabled in the run are considered, so a suppression for a rule that is off
by default or disabled in the config is never reported as unused.

{_PLACEMENT}

## Why is this bad?
The bug it was written for was fixed, the code moved, or irqlint became more precise: the
comment now only hides whatever finding appears there next, without anybody reviewing it.

## Example
    spin_lock(&d->lock);
    /* irqlint: ignore[sleep-in-atomic] allocation is GFP_ATOMIC since v2 */
    p = kmalloc(n, GFP_ATOMIC);

## Use instead
Delete the comment.

## Known false positives
Confidence: high within one run. A suppression for a finding that needs files outside the
analysed paths (a caller, a handler in another directory) is unused when those files are not
analysed: run on the same paths as the run the suppression was written for.
"""


def _nothing(_: Analysis) -> Iterator[Finding]:
    return iter(())


register(Rule(INVALID, "warning", True,
              "an `irqlint: ignore[...]` comment with no reason, no rule or an unknown rule",
              INVALID_DOC, _nothing))
register(Rule(UNUSED, "warning", True,
              "an `irqlint: ignore[...]` comment naming an enabled rule that reported nothing "
              "there", UNUSED_DOC, _nothing))
