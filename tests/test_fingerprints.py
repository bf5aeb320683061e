"""Fingerprints stay the same across unrelated edits (lines shifting, other functions
changing) and differ between different bugs."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from conftest import EXAMPLES, FIXTURES, all_rules_enabled, check_json

TIMER = (FIXTURES / "workflow" / "timer_drv.c").read_text()
BUG = "\tdel_timer_sync(&d->poll_timer);\n"  # inserted after `d->running = 0;` in stop()


def _with_bug(text: str) -> str:
    return text.replace("\td->running = 0;\n", "\td->running = 0;\n" + BUG, 1)


def _prints(doc: dict) -> Counter[tuple[str, str, str, str]]:
    return Counter((f["rule"], Path(f["file"]).name, f["function"], f["fingerprint"])
                   for f in doc["findings"])


def _lines(doc: dict) -> list[int]:
    return sorted(f["line"] for f in doc["findings"])


def test_examples_fingerprints_survive_shifted_lines_and_new_functions(tmp_path: Path) -> None:
    tree = tmp_path / "examples"
    shutil.copytree(EXAMPLES, tree)
    before = check_json(tree, extra=all_rules_enabled())
    for p in sorted(tree.rglob("*.c")):
        text = p.read_text()
        # three lines on top, and a new function at the end that takes a lock of its own
        p.write_text("/* one */\n/* two */\n\n" + text
                     + "\nstatic void unrelated_new(struct q *q)\n{\n\tspin_lock(&q->l);\n"
                       "\tq->n++;\n\tspin_unlock(&q->l);\n}\n")
    after = check_json(tree, extra=all_rules_enabled())
    assert len(before["findings"]) >= 8
    assert _lines(after) != _lines(before)  # the edit did move them ...
    assert _prints(after) == _prints(before)  # ... and no fingerprint changed


def test_editing_another_function_keeps_the_fingerprint(tmp_path: Path) -> None:
    f = tmp_path / "drv.c"
    f.write_text(_with_bug(TIMER))
    (one,) = check_json(f)["findings"]
    assert (one["rule"], one["function"]) == ("wait-under-lock", "poll_dev_stop")
    # poll_dev_events() grows, and poll_dev_start() moves its registration two lines down
    edited = _with_bug(TIMER).replace("\tn = d->events;\n", "\tn = d->events;\n\tn += 0;\n")
    edited = edited.replace("\ttimer_setup(", "\td->events = 0;\n\td->running = 0;\n"
                                              "\ttimer_setup(")
    f.write_text(edited)
    (two,) = check_json(f)["findings"]
    assert two["line"] == one["line"] + 2
    assert two["fingerprint"] == one["fingerprint"]


def test_a_different_bug_has_a_different_fingerprint(tmp_path: Path) -> None:
    f = tmp_path / "drv.c"
    f.write_text(_with_bug(TIMER))
    (one,) = check_json(f)["findings"]
    # the same wait in another function is another bug
    f.write_text(TIMER.replace("\tn = d->events;\n", "\tn = d->events;\n" + BUG))
    (other,) = check_json(f)["findings"]
    assert (other["rule"], other["function"]) == ("wait-under-lock", "poll_dev_events")
    assert other["fingerprint"] != one["fingerprint"]
    # the four lock-imbalance findings of one function-rich file are four fingerprints
    doc = check_json(FIXTURES / "lock_imbalance" / "paths.c")
    fps = [x["fingerprint"] for x in doc["findings"]]
    assert len(fps) >= 3 and len(set(fps)) == len(fps)


def test_fingerprint_ignores_line_and_message() -> None:
    from irqlint.findings import Finding

    base = Finding("lock-imbalance", "warning", "m", "a.c", 10, 1, "f", ("f",), (), (), "k")
    moved = Finding("lock-imbalance", "warning", "m2", "a.c", 99, 5, "f", ("f",), (), (), "k")
    assert base.fingerprint == moved.fingerprint
    for other in (Finding("lock-imbalance", "warning", "m", "b.c", 10, 1, "f", (), (), (), "k"),
                  Finding("lock-imbalance", "warning", "m", "a.c", 10, 1, "g", (), (), (), "k"),
                  Finding("sleep-in-atomic", "warning", "m", "a.c", 10, 1, "f", (), (), (), "k"),
                  Finding("lock-imbalance", "warning", "m", "a.c", 10, 1, "f", (), (), (), "j")):
        assert other.fingerprint != base.fingerprint
