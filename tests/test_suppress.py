"""Inline suppressions: placement, a required reason, unknown names, unused comments."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import FIXTURES, check_json, expected_markers, found

from irqlint.filters.suppress import scan

SUPPRESS = FIXTURES / "workflow" / "suppress.c"


def test_suppressions_in_every_placement() -> None:
    doc = check_json(SUPPRESS)
    assert found(doc) == expected_markers(SUPPRESS.parent)


def test_without_the_comments_every_function_reports(tmp_path: Path) -> None:
    """The fixture's bugs are real: the comments are what hides them."""
    f = tmp_path / "suppress.c"
    f.write_text(re.sub(r"(/\*|//) irqlint:[^\n]*", "", SUPPRESS.read_text()))
    doc = check_json(f)
    assert {x["rule"] for x in doc["findings"]} == {"lock-imbalance"}
    functions = {x["function"] for x in doc["findings"]}
    assert functions == {"at_end_of_line", "on_the_line_above", "whole_function",
                         "header_line", "no_reason", "unknown_name"}


def test_unused_is_judged_against_the_enabled_rules() -> None:
    line = next(i for i, t in enumerate(SUPPRESS.read_text().splitlines(), 1)
                if "ignore[irq-unsafe-lock]" in t)
    doc = check_json(SUPPRESS, extra=("--enable", "irq-unsafe-lock"))
    assert ("unused-suppression", str(SUPPRESS), line) in found(doc)
    unused = [x for x in doc["findings"] if x["line"] == line]
    assert unused[0]["function"] == "nothing_to_hide"
    assert unused[0]["message"] == ("unused suppression: no irq-unsafe-lock finding on "
                                    "this line")


def test_meta_rules_can_be_disabled() -> None:
    doc = check_json(SUPPRESS, extra=("--disable", "unused-suppression",
                                      "--disable", "invalid-suppression"))
    assert {(x["rule"], x["function"]) for x in doc["findings"]} == {
        ("lock-imbalance", "no_reason")}


def test_a_stale_comment_in_a_file_without_findings(tmp_path: Path) -> None:
    (tmp_path / "clean.c").write_text(
        "int get(struct s *s)\n{\n"
        "\treturn s->v; /* irqlint: ignore[sleep-in-atomic] was a kmalloc here */\n}\n")
    doc = check_json(tmp_path)
    (f,) = doc["findings"]
    assert (f["rule"], f["line"], f["column"], f["function"]) == (
        "unused-suppression", 3, 15, "get")
    assert f["fingerprint"] and f["traces"][0][0]["line"] == 3


def test_scan_targets() -> None:
    text = ("int a; /* irqlint: ignore[x-y] r1 */\n"
            "/* irqlint: ignore[x-y, z-w] r2 */\n"
            "// irqlint: ignore[q-r] r3\n"
            "\n"
            "int b;\n"
            "/* irqlint: ignore x */\n")
    s = scan("f.c", text)
    assert [(x.line, x.target, x.rules, x.reason) for x in s] == [
        (1, 1, ("x-y",), "r1"),
        (2, 5, ("x-y", "z-w"), "r2"),  # stacked comments cover the next line of code
        (3, 5, ("q-r",), "r3"),
        (6, 7, (), "x"),
    ]
