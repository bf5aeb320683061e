"""A flag argument chooses the path (tests/fixtures/flags): a callee that sleeps, takes a lock
or waits only under `if (flag)` (or after `if (!flag) return`) does not do so for a caller
passing a constant that says otherwise; the same call with the other constant is flagged."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES, all_rules_enabled, check_json, expected_markers, found

ROOT = FIXTURES / "flags"
SRC = ROOT / "flags.c"


def _hits(doc: dict) -> list[tuple[str, int, str]]:
    return sorted((f["rule"], f["line"], f["function"]) for f in doc["findings"]
                  if Path(f["file"]).name == "flags.c")


def _hits_in(doc: dict, name: str) -> list[tuple[str, int, str]]:
    return sorted((f["rule"], f["line"], f["function"]) for f in doc["findings"]
                  if Path(f["file"]).name == name)


def _variant(tmp_path: Path, old: str, new: str) -> dict:
    src = SRC.read_text()
    assert src.count(old) == 1
    (tmp_path / "flags.c").write_text(src.replace(old, new))
    return check_json(tmp_path)


def test_flagged_exactly_where_marked() -> None:
    doc = check_json(ROOT, extra=all_rules_enabled())
    want = {(r, str(Path(p).resolve()), ln) for r, p, ln in expected_markers(ROOT)}
    assert found(doc) == want


def test_constant_argument_selects_the_sleep() -> None:
    assert _hits(check_json(SRC)) == [("sleep-in-atomic", 43, "ring_reset_sleepy")]


def test_early_return_on_the_flag(tmp_path: Path) -> None:
    """`if (!apply_now) return -1;` guards the mutex: passing 1 reaches it."""
    doc = _variant(tmp_path, "ring_apply(r, 0);", "ring_apply(r, 1);")
    assert ("sleep-in-atomic", 36, "ring_reset_atomic") in _hits(doc)


def test_lock_taken_only_without_the_flag(tmp_path: Path) -> None:
    doc = _variant(tmp_path, "ring_count(r, true);", "ring_count(r, false);")
    assert [h for h in _hits(doc) if h[0] == "lock-order-inversion"] != []


def test_wait_only_with_the_flag(tmp_path: Path) -> None:
    doc = _variant(tmp_path, "ring_quiesce(r, false);", "ring_quiesce(r, true);")
    assert ("wait-under-lock", 99, "ring_stop_locked") in _hits(doc)
    assert ("sleep-in-atomic", 99, "ring_stop_locked") in _hits(doc)


def _extract(path: Path):  # type: ignore[no-untyped-def]
    """One file's facts, as the extractor makes them."""
    from irqlint.extract import extract_file
    from irqlint.kb import KnowledgeBase
    from irqlint.macros import Wrappers

    kb = KnowledgeBase.load("linux")
    return extract_file(str(path), path.read_bytes(), kb, Wrappers.build([], set(kb.lock_apis)))


def _facts():  # type: ignore[no-untyped-def]
    return _extract(SRC)


def test_guards_and_constants_are_facts() -> None:
    calls = {(fn.name, c.callee): c for fn in _facts().functions for c in fn.calls}
    assert calls[("ring_settle", "msleep")].guard == ((1, True),)
    assert calls[("ring_apply", "mutex_lock")].guard == ((1, True),)  # after the return
    assert calls[("ring_count", "spin_lock")].guard == ((1, False),)
    assert calls[("ring_quiesce", "cancel_work")].guard == ((1, False),)  # the else branch
    assert calls[("ring_reset_atomic", "ring_settle")].consts == ((1, False),)
    assert calls[("ring_reset_atomic", "ring_apply")].consts == ((1, False),)
    assert calls[("ring_poll", "ring_count")].consts == ((1, True),)


def test_constant_literals_by_truth_value(tmp_path: Path) -> None:
    src = tmp_path / "lits.c"
    src.write_bytes(b"void f(void) { g(0644, 0x0, 0x10, 0UL, 1u, 00, NULL, true, x); }\n")
    ff = _extract(src)
    assert ff.functions[0].calls[0].consts == (
        (0, True), (1, False), (2, True), (3, False), (4, True), (5, False), (6, False),
        (7, True))


def test_flag_passed_on_through_a_helper(tmp_path: Path) -> None:
    calls = {(fn.name, c.callee): c for fn in _facts().functions for c in fn.calls}
    assert calls[("ring_settle_all", "ring_settle")].passes == ((0, 0), (1, 1))
    doc = _variant(tmp_path, "ring_settle_all(r, false);", "ring_settle_all(r, true);")
    assert ("sleep-in-atomic", 112, "ring_flush_atomic") in _hits(doc)


def test_label_after_the_early_return_ends_the_flag_range(tmp_path: Path) -> None:
    """`if (!flag) goto out; ... out: sleep()`: the label is reached with the flag false, and
    a parameter the body changes (`flag--`) tells nothing about the whole call."""
    src = tmp_path / "lab.c"
    src.write_bytes(b"""
int f(int *p, bool flag, int n)
{
	if (!flag)
		goto out;
	g(p);
out:
	h(p);
	if (!n)
		return 0;
	n--;
	k(p);
	return 1;
}
""")
    ff = _extract(src)
    calls = {c.callee: c for c in ff.functions[0].calls}
    assert calls["g"].guard == ((1, True),)
    assert calls["h"].guard == ()
    assert calls["k"].guard == ()


def test_label_only_jumped_to_past_the_early_return_keeps_the_flag(tmp_path: Path) -> None:
    """`if (!tcon) return 0; ... again: lock(); ... goto again;` (cifs_reconnect_tcon()): the
    retry label is reached only past the test, so what follows it still needs the flag; a
    label a goto from before the test reaches does not."""
    src = tmp_path / "again.c"
    src.write_bytes(b"""
int f(int *p, void *tcon, bool early)
{
	if (early)
		goto out;
	if (!tcon)
		return 0;
again:
	g(p);
	if (h(p))
		goto again;
out:
	k(p);
	return 1;
}
""")
    calls = {c.callee: c for c in _extract(src).functions[0].calls}
    # past both tests: `early` false (its goto skips them), `tcon` set
    assert calls["g"].guard == ((1, True), (2, False))
    assert calls["h"].guard == ((1, True), (2, False))
    assert calls["k"].guard == ()


def test_wait_for_a_work_that_takes_the_lock_only_with_an_object(tmp_path: Path) -> None:
    """cifs' echo work passes NULL for the tree connection; the reconnect that takes the
    session mutex returns at once without one, then retries from a label."""
    doc = check_json(ROOT / "retry.c")
    assert _hits_in(doc, "retry.c") == []
    (tmp_path / "retry.c").write_text((ROOT / "retry.c").read_text().replace(
        "reconnect_tcon(NULL, 0);", "reconnect_tcon(tcon, 0);"))
    assert _hits_in(check_json(tmp_path), "retry.c") == [("wait-under-lock", 40, "put_session")]


def test_what_changes_a_parameter(tmp_path: Path) -> None:
    """A parameter incremented or handed out by address is no flag; `x && flag`,
    `y & flag` only read it."""
    src = tmp_path / "chg.c"
    src.write_bytes(b"""
void f(int *p, bool a, bool b, bool c, bool d, int y)
{
	if (a) g1(p);
	if (b) g2(p);
	if (c) g3(p);
	if (d) g4(p);
	h(&b);
	c++;
	y = y & d;
	if (y && a) g5(p);
}
""")
    ff = _extract(src)
    guards = {c.callee: c.guard for c in ff.functions[0].calls}
    assert guards["g1"] == ((1, True),)
    assert guards["g2"] == ()
    assert guards["g3"] == ()
    assert guards["g4"] == ((4, True),)


def test_warn_on_branch_is_not_followed(tmp_path: Path) -> None:
    doc = check_json(ROOT / "warn.c")
    assert [(f["rule"], f["line"], f["function"]) for f in doc["findings"]] == [
        ("sleep-in-atomic", 36, "pool_get")]
    # the same calls outside the WARN_ON() branch are flagged
    src = (ROOT / "warn.c").read_text().replace("if (WARN_ON(p->n < 0)) {", "if (p->n < 0) {")
    (tmp_path / "warn.c").write_text(src)
    lines = {f["line"] for f in check_json(tmp_path)["findings"]}
    assert {23, 24} <= lines


def test_break_on_the_flag_ends_the_iteration(tmp_path: Path) -> None:
    """`for (;;) { ...; if (!reclaim) { ...; break; } reclaim_pages(); }` (sgx)."""
    src = tmp_path / "brk.c"
    src.write_bytes(b"""
int f(int *p, bool reclaim)
{
	for (;;) {
		if (g(p))
			break;
		if (!reclaim) {
			h(p);
			break;
		}
		k(p);
	}
	return m(p);
}
""")
    ff = _extract(src)
    guards = {c.callee: c.guard for c in ff.functions[0].calls}
    assert guards == {"g": (), "h": ((1, False),), "k": ((1, True),), "m": ()}


def test_named_constant_selects_the_path() -> None:
    """`if (opts == MBOX_CMD_POLL)` and `if (opts != MBOX_CMD_NOWAIT) return`, through a
    helper that passes the mode on, and `switch (ev)` with its default; errno names: the
    other constant is silent, the same one flagged."""
    doc = check_json(ROOT / "named.c")
    got = sorted((f["rule"], f["line"], f["function"]) for f in doc["findings"])
    assert got == [("sleep-in-atomic", 59, "mbox_bad_kick"),
                   ("sleep-in-atomic", 60, "mbox_bad_kick"),
                   ("sleep-in-atomic", 92, "mbox_notify_bad"),
                   ("sleep-in-atomic", 113, "mbox_reset_locked"),
                   ("sleep-in-atomic", 144, "mbox_key_locked"),
                   ("sleep-in-atomic", 145, "mbox_key_locked"),
                   ("sleep-in-atomic", 164, "mbox_timeout_locked")]


def test_named_constants_contradicting_is_a_dead_path() -> None:
    from irqlint.program import dead

    assert dead(((0, "=MODE_A"), (0, "=MODE_B")))
    assert dead(((0, "!MODE_A"), (0, "=MODE_A")))
    assert not dead(((0, "!MODE_A"), (0, "!MODE_B")))
    assert not dead(((0, True), (0, "=MODE_A")))


def test_bit_tests_against_named_arguments() -> None:
    from irqlint.program import _fits

    assert not _fits("CMD_ASYNC", "~CMD_ASYNC") and not _fits("A|CMD_ASYNC", "~CMD_ASYNC")
    assert _fits("GFP_KERNEL", "~__GFP_IO")  # a name's other bits are not known
    assert not _fits(False, "&CMD_ASYNC") and _fits(True, "~CMD_ASYNC")
    assert _fits("A|B", "=A") and not _fits("B", "=A")


def test_a_place_every_caller_rules_out(tmp_path: Path) -> None:
    """callers.c: qp_grp_modify() sleeps under its lock only with a spec (copied into a
    local), and every caller passes NULL, one through a helper: silent.  A caller passing
    something else, or a second assignment to the copy, makes it reachable."""
    assert _hits_in(check_json(ROOT / "callers.c"), "callers.c") == []
    src = (ROOT / "callers.c").read_text()
    for old, new in (("\tqp_grp_modify(g, 0, NULL);", "\tqp_grp_modify(g, 0, g->flow);"),
                     ("\tspin_lock(&g->lock);\n", "\tspin_lock(&g->lock);\n\tspec = g->flow;\n")):
        assert src.count(old) == 1
        (tmp_path / "callers.c").write_text(src.replace(old, new))
        got = _hits_in(check_json(tmp_path), "callers.c")
        assert [h[0] for h in got] == ["sleep-in-atomic"] and got[0][2] == "qp_grp_modify"


def test_flag_in_a_field_of_an_argument(tmp_path: Path) -> None:
    """fields.c: hc_send() sleeps unless `cmd->flags & HC_ASYNC`; callers fill a local struct
    and pass its address.  An initializer list, a memset() and an assignment say what the
    field holds, a parameter copied into it (with a bit OR'ed in) is followed to the caller's
    caller, and a pointer passed on keeps the field's test (hc_run -> hc_poll_wait).
    Whatever could change the field before the call makes the sleep reachable again."""
    name = "fields.c"
    assert _hits_in(check_json(ROOT / name), name) == [
        ("sleep-in-atomic", 83, "hc_update_locked"), ("sleep-in-atomic", 84, "hc_update_locked"),
        # an address is never NULL, but `&x` arguments are not taken for constants:
        # capturing them all cost the extraction about 8%, for one finding in Linux 6.12
        ("sleep-in-atomic", 134, "hc_show_locked"), ("sleep-in-atomic", 136, "hc_show_locked")]
    src = (ROOT / name).read_text()
    variants = [
        # the constant says synchronous
        ([("{ .id = 1, .flags = HC_ASYNC }", "{ .id = 1, .flags = 0 }")], 79),
        # the field is set after the call (in a loop it would count): not known at the call
        ([("\tm.flags = HC_ASYNC | HC_WANT_REPLY;", "\tm.id = 5;"),
         ("\thc_send(d, &m);", "\thc_send(d, &m); m.flags = HC_ASYNC;")], 80),
        # another call gets the address first and may change the field
        ([("\thc_send(d, &a);", "\thc_fill(&a); hc_send(d, &a);")], 79),
        # the field is a second assignment away from one value
        ([("\tp.polled = 1;", "\tp.polled = 1; if (d->done) p.polled = 0;")], 82),
        # the caller's caller passes the synchronous flag
        ([("hc_send_id(d, 3, HC_ASYNC);", "hc_send_id(d, 3, HC_WANT_REPLY);")], 81),
        # the callee writes the field it tests: no flag
        ([("\tif (!cmd->polled)", "\tcmd->polled = d->done; if (!cmd->polled)")], 82),
        # a switch on a field: the other command takes the sleeping case
        ([("ctl.cmd = HC_CTL_DONE;", "ctl.cmd = HC_CTL_STOP;")], 135),
        # the atomic region's function passes the command on: its caller's command decides
        ([("ctl = { .cmd = HC_CTL_DONE };\n\n\thc_ctl_send",
           "ctl = { .cmd = HC_CTL_STOP };\n\n\thc_ctl_send")], 145),
        # either label of a case fallen into takes it
        ([("ctl = { .cmd = HC_CTL_DONE };\n\n\tspin_lock(&d->lock);\n\thc_ctl2",
           "ctl = { .cmd = HC_CTL_STATS_ALL };\n\n\tspin_lock(&d->lock);\n\thc_ctl2")], 180),
        ([("ctl = { .cmd = HC_CTL_DONE };\n\n\tspin_lock(&d->lock);\n\thc_ctl2",
           "ctl = { .cmd = HC_CTL_STATS };\n\n\tspin_lock(&d->lock);\n\thc_ctl2")], 180),
    ]
    for edits, line in variants:
        text = src
        for old, new in edits:
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        (tmp_path / name).write_text(text)
        got = _hits_in(check_json(tmp_path), name)
        assert ("sleep-in-atomic", line) in [(r, ln) for r, ln, _ in got], (edits, got)


def test_field_indices() -> None:
    from irqlint.ir import OR_MORE, Call, field_owner, field_param, rehome, zeroed
    from irqlint.program import _const, bind

    j = field_param(1, "flags")
    assert field_owner(j) == 1 and field_owner(rehome(j, 3)) == 3 != field_owner(j)
    assert rehome(rehome(j, 3), 1) == j and j != field_param(1, "flag")
    # zeroed fields are false, but not one the call fills from a parameter
    assert _const({zeroed(1): False}, None, j) is False
    assert _const({zeroed(1): False}, {j: 2}, j) is None
    assert _const({zeroed(2): False}, None, j) is None
    # a field with bits OR'ed into the caller's parameter: only "bit clear" carries over
    call = Call("f", "", 1, 1, (), (), (), ((j, 2 + OR_MORE),))
    assert bind(((j, "~A"),), call) == ((2, "~A"),)
    assert bind(((j, "&A"),), call) == ()
    assert bind(((j, True),), call) == ()


def test_state_bits_of_a_pointer_argument(tmp_path: Path) -> None:
    """bits.c: the teardown cancels the work only without the reset bit; the reset path sets
    it first, the firmware-up path returns unless it is set: only the path without the bit
    waits under the lock.  The bit cleared again, set only on a branch, or the other bit
    tested, and the wait is back."""
    name = "bits.c"
    assert _hits_in(check_json(ROOT / name), name) == [("wait-under-lock", 61, "bdev_remove")]
    src = (ROOT / name).read_text()
    for old, new, line in (
            ("\tset_bit(DEV_F_FW_RESET, d->state);\n\tmutex_lock",
             "\tclear_bit(DEV_F_UP, d->state);\n\tmutex_lock", 44),
            ("\tset_bit(DEV_F_FW_RESET, d->state);\n\tmutex_lock",
             "\tif (d->queues) set_bit(DEV_F_FW_RESET, d->state);\n\tmutex_lock", 44),
            ("\tbdev_deinit(d);\n\tmutex_unlock(&d->queue_lock);\n}\n\nvoid bdev_fw_up",
             "\tbdev_deinit(d); clear_bit(DEV_F_FW_RESET, d->state);\n"
             "\tmutex_unlock(&d->queue_lock);\n}\n\nvoid bdev_fw_up", 44),
            ("\tif (!test_bit(DEV_F_FW_RESET, d->state))\n\t\treturn;",
             "\tif (!test_bit(DEV_F_UP, d->state))\n\t\treturn;", 53),
            # the teardown clears the tested bit itself: no flag of its callers'
            ("test_and_clear_bit(DEV_F_UP, d->state);",
             "test_and_clear_bit(DEV_F_FW_RESET, d->state);", 44)):
        assert src.count(old) == 1, old
        (tmp_path / name).write_text(src.replace(old, new))
        got = _hits_in(check_json(tmp_path), name)
        assert ("wait-under-lock", line) in [(r, ln) for r, ln, _ in got], (old, got)
