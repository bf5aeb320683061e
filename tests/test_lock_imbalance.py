"""lock-imbalance on the engine fixtures: rule, file and line, and silence elsewhere."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES, check_json, expected_markers, found

LI = FIXTURES / "lock_imbalance"


def test_every_marker_found_and_nothing_else() -> None:
    doc = check_json(LI)
    expected = {(r, str(Path(p).resolve()), ln) for r, p, ln in expected_markers(LI)}
    assert found(doc) == expected


def _by_function(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in doc["findings"]:
        out.setdefault(f["function"], []).append(f)
    return out


def test_silent_shapes() -> None:
    """The shapes Coccinelle's lock scripts report falsely stay silent."""
    fns = _by_function(check_json(LI))
    for quiet in ("interruptible", "interruptible_ret", "trylock", "same_condition",
                  "goto_unwind", "never_returns", "by_switch", "by_ifdef", "scoped",
                  "dev_lock", "dev_unlock", "uses_wrappers", "lookup_locked",
                  "drops_caller_lock", "loop_lock", "rank_target_fixed",
                  # precision.c: false shapes of Linux 6.12
                  "start_for_caller", "irqs_left_off", "flag_in_declaration", "flag_in_field",
                  "loop_exit_test", "conjunct_flag", "drops_rtnl", "sock_two_locks",
                  "wait_or_park", "fault_paths", "fault_retry", "begin_object", "access_get",
                  "journal_begin_retry",
                  # aliases.c: one lock named two ways
                  "prep_request", "request", "two_requests", "close_port", "repointed",
                  "two_of_a_class"):
        assert quiet not in fns, fns.get(quiet)


def test_goto_trace_names_the_jump() -> None:
    fns = _by_function(check_json(LI))
    (f,) = fns["wrong_label"]
    notes = [(s["line"], s["note"]) for s in f["traces"][0]]
    assert notes[0] == (22, "table_lock acquired")
    assert notes[1] == (25, "goto out with table_lock held")
    assert f["locks"][0].endswith("paths.c:table_lock")  # file-static: file-qualified


def test_lock_class_through_typed_pointer_and_wrapper_macro() -> None:
    fns = _by_function(check_json(LI))
    assert fns["early_return"][0]["locks"] == ["dev::lock"]
    assert fns["rank_target"][0]["locks"] == ["vgic_irq_rank::lock"]
    assert "rank->lock" in fns["rank_target"][0]["message"]


def test_double_lock_and_unlock_messages() -> None:
    fns = _by_function(check_json(LI))
    assert "acquired again" in fns["double_lock"][0]["message"]
    assert "released but not held" in fns["double_unlock"][0]["message"]


def test_callee_of_another_file_releasing_the_lock() -> None:
    """user.c's error path leaves the unlock to bar_fail() in helper.c: alone, user.c is
    flagged; with helper.c in the run, the callee's lock effect clears it."""
    from conftest import FIXTURES, check_json

    root = FIXTURES / "crossfile"
    alone = check_json(root / "user.c")
    assert [(f["rule"], f["line"]) for f in alone["findings"]] == [("lock-imbalance", 14)]
    both = check_json(root)
    assert both["findings"] == []


def test_error_from_a_callee_that_cannot_fail() -> None:
    """resume.c returns holding console_lock when panel_powerup() fails; power.c shows that it
    always returns 0: alone, resume.c is flagged twice; with power.c, only the return whose
    callee can fail."""
    root = FIXTURES / "crossfile_zero"
    alone = check_json(root / "resume.c")
    assert [(f["function"], f["line"]) for f in alone["findings"]] == [
        ("panel_resume", 15), ("panel_resume_checked", 28)]
    both = check_json(root)
    expected = {(r, str(Path(p).resolve()), ln) for r, p, ln in expected_markers(root)}
    assert found(both) == expected
