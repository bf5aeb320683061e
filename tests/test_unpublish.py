"""unpublish-after-free: seed 000's close-before-cleanup order and the shapes of
tests/fixtures/unpublish (objects and IDs, keys copied through locals and local structs,
setters reached through calls, across files), flagged exactly where marked; each fixed order,
other keys, exclusive branches and reassigned keys silent."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import EXAMPLES, FIXTURES, check_json, expected_markers, found, run_cli

RULE = "unpublish-after-free"
ON = ("--enable", RULE)  # off by default: its precision on real code is low
CASE = FIXTURES / "unpublish"


def _mine(doc: dict) -> list[dict]:
    return [f for f in doc["findings"] if f["rule"] == RULE]


def _at(doc: dict, name: str, line: int) -> dict:
    (f,) = [f for f in _mine(doc) if Path(f["file"]).name == name and f["line"] == line]
    return f


def test_fixtures_flagged_exactly_where_marked() -> None:
    doc = check_json(CASE, extra=ON)
    want = {m for m in expected_markers(CASE) if m[0] == RULE}
    assert len(want) == 6
    got = {m for m in found(doc) if m[0] == RULE}
    assert got == {(r, str(Path(p).resolve()), ln) for r, p, ln in want}


def test_seed000_both_callers_with_chains() -> None:
    doc = check_json(EXAMPLES / "seed000_unpublish" / "evtchn_close.c", extra=ON)
    f = _at(doc, "evtchn_close.c", 66)
    assert f["function"] == "shutdown_pirq"
    release, unpublish = f["traces"]
    assert [s["function"] for s in release] == ["shutdown_pirq", "xen_evtchn_close"]
    assert release[-1]["note"].startswith("HYPERVISOR_event_channel_op(EVTCHNOP_close")
    assert [s["function"] for s in unpublish] == [
        "shutdown_pirq", "xen_irq_info_cleanup", "set_evtchn_to_irq"]
    assert [s["line"] for s in unpublish] == [67, 41, 29]
    # the key copied into a local is named with what it was read from
    assert f["message"].startswith("evtchn (info->evtchn) is released by xen_evtchn_close()")
    assert "xen_irq_info_cleanup() at line 67" in f["message"]
    assert "evtchn_to_irq[evtchn] = -1" in f["message"]
    assert f["explanation"][0].startswith("CPU0") and "CPU1" in f["explanation"][0]
    assert "lost" in f["explanation"][-1]
    g = _at(doc, "evtchn_close.c", 83)
    assert g["function"] == "unbind_from_irq"
    assert g["fingerprint"] != f["fingerprint"]


def test_seed000_fix_is_the_swap_and_silent() -> None:
    assert _mine(check_json(EXAMPLES / "seed000_unpublish" / "fixed", extra=ON)) == []


def test_chain_across_files_through_a_two_level_table() -> None:
    doc = check_json(CASE, extra=ON)
    f = _at(doc, "events.c", 15)
    assert f["function"] == "port_unbind_bad"
    release, unpublish = f["traces"]
    assert [(Path(s["file"]).name, s["function"]) for s in release] == [
        ("events.c", "port_unbind_bad"), ("evtchn_ops.c", "port_close")]
    assert "releases close.port" in release[-1]["note"]
    assert [s["function"] for s in unpublish] == [
        "port_unbind_bad", "port_info_cleanup", "port_set_irq"]
    assert unpublish[-1]["note"].startswith("port_to_irq[row][col] = irq")


def test_setter_helper_and_id_release() -> None:
    doc = check_json(CASE / "objects.c", extra=ON)
    f = _at(doc, "objects.c", 107)
    assert f["function"] == "foo_unbind_bad"
    assert set(f["functions"]) == {"foo_unbind_bad", "foo_put_slot", "foo_clear",
                                   "foo_set_slot"}
    assert "ida_free()" in f["message"] and "foo_table[slot] = NULL" in f["message"]
    f = _at(doc, "objects.c", 19)
    assert f["message"].startswith("f is released by kfree() before list_del() at line 20")


def test_release_api_from_project_config(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_text(
        "struct t { int h; };\nstatic int map[8];\n"
        "void t_done(struct t *t)\n{\n\tmy_handle_free(t->h);\n\tmap[t->h] = -1;\n}\n")
    r = run_cli("check", str(tmp_path), "--no-cache", "--format", "json", *ON)
    assert r.returncode == 0, r.stderr
    (tmp_path / "irqlint.toml").write_text(
        "[kb.unpublish.linux.releases.my_handle_free]\nkey = 0\n")
    r = run_cli("check", str(tmp_path), "--no-cache", "--format", "json", *ON)
    assert r.returncode == 1, r.stderr
    (f,) = json.loads(r.stdout)["findings"]
    assert (f["rule"], f["line"], f["function"]) == (RULE, 5, "t_done")


def test_bad_kb_entry_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_text("void f(void)\n{\n}\n")
    (tmp_path / "irqlint.toml").write_text(
        '[kb.unpublish.linux.releases.my_free]\nkey = "first"\n')
    r = run_cli("check", str(tmp_path), "--no-cache", *ON)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("irqlint: error: knowledge base entry")
    assert "my_free" in lines[0]


def test_key_facts_are_extracted_only_for_the_rules_that_read_them(tmp_path: Path) -> None:
    """The default rules do not pay for key events or write locksets; enabling a rule that
    reads them re-extracts (another cache key) rather than trusting facts without them."""
    from irqlint.driver import Options, analyse
    from irqlint.extract import FAMILIES
    from irqlint.ir import Sharing

    seed = EXAMPLES / "seed000_unpublish" / "evtchn_close.c"
    lean = analyse([str(seed)], Options(jobs=1, cache_dir=None, full_facts=True,
                                        progress=False))
    assert lean.facts is not None and lean.facts[0].key_facts == []
    assert all(fn.sharing == Sharing() for fn in lean.facts[0].functions)
    rich = analyse([str(seed)], Options(jobs=1, cache_dir=None, full_facts=True,
                                        progress=False, families=FAMILIES))
    assert rich.facts is not None and rich.facts[0].key_facts
    cache = str(tmp_path / "cache")
    r = run_cli("check", str(seed), "--format", "json", "--cache-dir", cache)
    assert _mine(json.loads(r.stdout)) == []
    r = run_cli("check", str(seed), "--format", "json", "--cache-dir", cache, *ON)
    assert sorted(f["line"] for f in _mine(json.loads(r.stdout))) == [66, 83]
