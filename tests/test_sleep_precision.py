"""sleep-in-atomic precision shapes (tests/fixtures/sleep): a guard's IRQ section ends with
its scope; a callee that lets go of the caller's lock around its blocking allocation (and
allocates without it only with a mask that cannot block) does not sleep under that lock."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES, all_rules_enabled, check_json, expected_markers, found

ROOT = FIXTURES / "sleep"


def _hits(doc: dict, name: str) -> list[tuple[str, int, str, str]]:
    return [(f["rule"], f["line"], f["function"], f["message"]) for f in doc["findings"]
            if Path(f["file"]).name == name]


def test_flagged_exactly_where_marked() -> None:
    doc = check_json(ROOT, extra=all_rules_enabled())
    want = {(r, str(Path(p).resolve()), ln) for r, p, ln in expected_markers(ROOT)}
    assert found(doc) == want


def test_guard_irq_section_ends_with_its_scope() -> None:
    hits = _hits(check_json(ROOT / "guards.c"), "guards.c")
    assert [(r, ln, fn) for r, ln, fn, _ in hits] == [
        ("sleep-in-atomic", 23, "tick_read_bad"),
        ("sleep-in-atomic", 47, "tick_peek_irqs_off"),
    ]
    # IRQs were off before the guard: they stay off after it
    assert "IRQs disabled (since line 44)" in hits[1][3]


def test_lock_dropped_around_blocking_allocation() -> None:
    hits = _hits(check_json(ROOT / "nomem.c"), "nomem.c")
    assert [(r, ln, fn) for r, ln, fn, _ in hits] == [
        ("sleep-in-atomic", 67, "tree_insert_held"),
        ("sleep-in-atomic", 80, "tree_insert_irqsave"),
    ]
    assert "with tree::lock" in hits[0][3]
    # the helper lets go of the lock, not of the IRQs spin_lock_irqsave() disabled
    assert "with IRQs disabled" in hits[1][3]


def test_the_mask_test_is_what_keeps_it_silent(tmp_path: Path) -> None:
    """Without `gfpflags_allow_blocking(gfp)` the allocation in the else branch is one the
    caller's GFP_KERNEL reaches with the lock held."""
    src = (ROOT / "nomem.c").read_text().replace(
        "if (gfpflags_allow_blocking(gfp)) {", "if (c->err > 1) {")
    (tmp_path / "nomem.c").write_text(src)
    hits = _hits(check_json(tmp_path), "nomem.c")
    assert ("sleep-in-atomic", 56, "tree_insert") in [(r, ln, fn) for r, ln, fn, _ in hits]


def test_parenthesised_member_paths_name_one_lock() -> None:
    from irqlint.lockexpr import normalise

    assert normalise("&((mas->tree))->ma_lock") == "mas->tree->ma_lock"
    assert normalise("((&w))->tree->lock") == "w.tree->lock"
    assert normalise("f(a->b)->lock") == "f(a->b)->lock"


def test_class_rerooted_through_structs_of_other_files() -> None:
    from irqlint.program import _reroot

    structs = {"cursor": {"tree": "tree"}}
    assert _reroot("cursor::tree->lock", structs) == "tree::lock"
    assert _reroot("cursor::other->lock", structs) == "cursor::other->lock"
    assert _reroot("tree::lock", structs) == "tree::lock"


def test_tasks_trace_rcu_reader_may_sleep() -> None:
    """rcu_read_lock_trace() opens a sleepable read-side section (like SRCU), not an atomic
    one: only the classic rcu_read_lock() twin is flagged."""
    hits = _hits(check_json(ROOT / "rcu_trace.c"), "rcu_trace.c")
    assert [(r, ln, fn) for r, ln, fn, _ in hits] == [("sleep-in-atomic", 23, "run_classic")]


def test_a_files_own_macro_is_no_call_of_a_function_elsewhere() -> None:
    """`STORE(v)` in a file that #defines STORE() is its macro, not store.c's sleeping
    STORE(); a file without the macro calls the function; a macro standing in for the file's
    own function in one configuration leaves the call to that function."""
    doc = check_json(ROOT / "macro_shadow")
    got = sorted((Path(f["file"]).name, f["line"], f["function"]) for f in doc["findings"])
    assert got == [("twin.c", 20, "twin_put"), ("user.c", 11, "user_put")]


def test_lock_named_through_a_call_follows_the_argument() -> None:
    """`&usk(s)->lock` keeps its call: the callee's `usk(other)->lock` becomes the caller's
    `usk(peer)->lock`, released there; usk(sk)'s release leaves usk(peer)'s held."""
    from irqlint.lockexpr import normalise

    assert normalise("&usk(other)->lock") == "usk(other)->lock"
    hits = _hits(check_json(ROOT / "call_base.c"), "call_base.c")
    assert [(r, ln, fn) for r, ln, fn, _ in hits] == [
        ("sleep-in-atomic", 38, "sock_connect_bad")]
    assert "usk(peer)->lock" in hits[0][3]


def test_irq_enable_is_absolute_around_a_loop() -> None:
    hits = _hits(check_json(ROOT / "irq_loop.c"), "irq_loop.c")
    assert [(r, ln, fn) for r, ln, fn, _ in hits] == [("sleep-in-atomic", 29, "nested_save"),
                                                      ("sleep-in-atomic", 50, "exit_loop_locked")]


def test_start_kernel_may_sleep_with_irqs_off_not_under_a_lock() -> None:
    hits = _hits(check_json(ROOT / "boot.c"), "boot.c")
    assert [(r, ln, fn) for r, ln, fn, _ in hits] == [
        ("sleep-in-atomic", 30, "start_kernel"), ("sleep-in-atomic", 38, "late_setup")]
    assert "early_lock" in hits[0][3] and "IRQs disabled" in hits[1][3]


def test_what_only_start_up_code_calls_is_start_up_code(tmp_path: Path) -> None:
    src = (ROOT / "boot.c").read_text()
    (tmp_path / "boot.c").write_text(src.replace("\tparse_params(); /* expect: sleep-in-atomic */\n"
                                                 "\tlocal_irq_enable();\n}",
                                                 "\tinit_irqs();\n\tlocal_irq_enable();\n}"))
    hits = _hits(check_json(tmp_path), "boot.c")
    assert [(r, ln, fn) for r, ln, fn, _ in hits] == [
        ("sleep-in-atomic", 21, "init_irqs"), ("sleep-in-atomic", 30, "start_kernel")]


def test_macros_whose_definition_depends_on_the_configuration(tmp_path: Path) -> None:
    """xip/: probe.c's xip_disable() is local_irq_disable() under CONFIG_MTD_XIP and empty
    without; cmdset.c has a function of that name under it and an empty macro without.
    Neither is sure to turn IRQs off, and probe.c's macro is not in cmdset.c's scope."""
    root = ROOT / "xip"
    assert check_json(root)["findings"] == []
    probe = (root / "probe.c").read_text()
    alt = "#else\n#define xip_disable()\tdo { } while (0)\n#define xip_enable()\tdo { } while (0)\n"
    assert probe.count(alt) == 1
    (tmp_path / "probe.c").write_text(probe.replace(alt, ""))
    hits = _hits(check_json(tmp_path / "probe.c"), "probe.c")
    assert [(r, ln, fn) for r, ln, fn, _ in hits] == [("sleep-in-atomic", 18, "probe_chip")]
    # cmdset.c without a definition of its own: probe.c's macro is another file's ...
    cmdset = (root / "cmdset.c").read_text()
    start, end = cmdset.index("#ifdef CONFIG_MTD_XIP"), cmdset.index("#endif\n") + 7
    (tmp_path / "cmdset.c").write_text(cmdset[:start] + '#include "xip.h"\n' + cmdset[end:])
    assert _hits(check_json(tmp_path / "cmdset.c", tmp_path / "probe.c"), "cmdset.c") == []
    # ... but a header's is in scope
    (tmp_path / "xip.h").write_text("#define xip_disable(c)\tlocal_irq_disable()\n"
                                    "#define xip_enable(c)\tlocal_irq_enable()\n")
    hits = _hits(check_json(tmp_path / "cmdset.c", tmp_path / "xip.h"), "cmdset.c")
    assert [(r, fn) for r, _, fn, _ in hits] == [("sleep-in-atomic", "write_word")]


def test_the_entry_points_before_start_kernel_are_start_up_code(tmp_path: Path) -> None:
    src = (ROOT / "boot.c").read_text().replace("void start_kernel(void)",
                                                 "void xen_start_kernel(void)")
    (tmp_path / "boot.c").write_text(src)
    hits = _hits(check_json(tmp_path), "boot.c")
    assert [(r, ln, fn) for r, ln, fn, _ in hits] == [
        ("sleep-in-atomic", 30, "xen_start_kernel"), ("sleep-in-atomic", 38, "late_setup")]


def test_the_last_steps_of_power_off_are_like_start_up_code(tmp_path: Path) -> None:
    """machine_power_off() turns IRQs off once the other CPUs are stopped and system_state is
    past SYSTEM_RUNNING: its sleeping calls are not sleeps in atomic context; a lock it holds
    still counts, and a function of another name doing the same is still flagged."""
    for name in ("machine_power_off", "machine_halt", "machine_restart"):
        src = (ROOT / "boot.c").read_text().replace("void start_kernel(void)",
                                                     f"void {name}(void)")
        (tmp_path / "boot.c").write_text(src)
        hits = _hits(check_json(tmp_path), "boot.c")
        assert [(r, ln, fn) for r, ln, fn, _ in hits] == [
            ("sleep-in-atomic", 30, name), ("sleep-in-atomic", 38, "late_setup")]
    # preemption off (loongarch stops the other CPUs under preempt_disable()) is the same;
    # elsewhere it is still atomic
    src = src.replace("\tlocal_irq_disable();\n\tinit_irqs();",
                      "\tpreempt_disable();\n\tinit_irqs();")
    src = src.replace("\tlocal_irq_disable();\n\tparse_params(); /* expect",
                      "\tpreempt_disable();\n\tparse_params(); /* expect")
    (tmp_path / "boot.c").write_text(src)
    hits = _hits(check_json(tmp_path), "boot.c")
    assert [(r, ln, fn) for r, ln, fn, _ in hits] == [
        ("sleep-in-atomic", 30, "machine_restart"), ("sleep-in-atomic", 38, "late_setup")]
    assert "preemption disabled" in hits[1][3]
