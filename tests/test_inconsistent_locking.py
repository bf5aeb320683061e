"""inconsistent-locking: outliers of a lock discipline flagged with both paths; callers'
locks, assertions, init paths, fresh objects and locals keep the discipline quiet."""

from __future__ import annotations

from pathlib import Path

from conftest import EXAMPLES, FIXTURES, check_json, expected_markers, found

RULE = "inconsistent-locking"
ON = ("--enable", RULE)
CASE = FIXTURES / "inconsistent_locking"


def _ours(doc: dict) -> list[dict]:
    return [f for f in doc["findings"] if f["rule"] == RULE]


def test_outliers_flagged_at_their_lines() -> None:
    doc = check_json(CASE / "outliers.c", extra=ON)
    want = {(r, str(Path(p).resolve()), ln) for r, p, ln in expected_markers(CASE)}
    assert len(want) == 4
    assert {m for m in found(doc) if m[0] == RULE} == want


def test_disciplined_writes_silent() -> None:
    assert _ours(check_json(CASE / "disciplined.c", extra=ON)) == []


def test_off_by_default() -> None:
    assert _ours(check_json(CASE / "outliers.c")) == []


def test_finding_shows_the_unprotected_and_a_protected_path() -> None:
    doc = check_json(CASE / "outliers.c", extra=ON)
    kick = next(f for f in _ours(doc) if f["line"] == 36)
    assert kick["function"] == "port_kick"
    assert kick["locks"] == ["port::lock"]
    assert "port::state" in kick["message"] and "3 of 4" in kick["message"]
    bad, good = kick["traces"]
    assert bad[-1]["line"] == 36 and "without port::lock" in bad[-1]["note"]
    assert "with port::lock held" in good[-1]["note"]
    assert good[-1]["function"] in ("port_start", "port_stop", "port_pause")


def test_some_path_lock_named_as_such() -> None:
    doc = check_json(CASE / "outliers.c", extra=ON)
    count = next(f for f in _ours(doc) if f["line"] == 44)
    assert "held on some paths here only" in count["traces"][0][-1]["note"]


def test_caller_lock_released_before_the_write_is_not_held_there() -> None:
    doc = check_json(CASE / "outliers.c", extra=ON)
    mode = next(f for f in _ours(doc) if f["function"] == "port_set_mode_unlocked")
    assert mode["line"] == 61
    assert [s["function"] for s in mode["traces"][0]] == ["port_set_mode_unlocked"]
    assert mode["traces"][1][0]["function"] in ("port_mode_a", "port_mode_b", "port_mode_c")


def test_seed000_shape_names_the_irq_chip_paths() -> None:
    case = EXAMPLES / "inconsistent_locking"
    doc = check_json(case / "evtchn_map.c", extra=ON)
    got = sorted((f["function"], f["line"]) for f in _ours(doc))
    assert got == [("shutdown_pirq", 106), ("startup_pirq", 95)]
    for f in _ours(doc):
        assert "irq_mapping_update_lock" in f["message"]
        assert "irq_chip::irq_" in f["traces"][0][0]["note"]
        assert f["traces"][0][-1]["function"] == "set_evtchn_to_irq"
    assert _ours(check_json(case / "fixed", extra=ON)) == []


# Each quiet case of disciplined.c, with what keeps it quiet taken away, must be reported:
# the silence above is the rule's doing, not a fixture that could never fire.
WITHOUT = {
    "caller holds the lock": ("\tchan_set_state(c, 2);\n", "\tspin_unlock(&c->lock);\n"
                              "\tchan_set_state(c, 2);\n\tspin_lock(&c->lock);\n",
                              "chan_pause"),
    "lockdep assertion": ("\tlockdep_assert_held(&c->lock);\n", "", "chan_set_level"),
    "init section": ("int __init chan_boot", "int chan_boot", "chan_boot"),
    "initcall": ("module_init(chan_module_start);", "", "chan_module_start"),
    "barrier": ("\tsmp_mb();\n", "", "link_irq"),
    "fresh object": ("struct chan *c = kzalloc(sizeof(*c), GFP_KERNEL);",
                     "struct chan *c = chan_lookup();", "chan_make"),
}


def test_quiet_cases_fire_without_their_reason(tmp_path: Path) -> None:
    text = (CASE / "disciplined.c").read_text()
    for why, (old, new, fn) in WITHOUT.items():
        assert old in text, why
        case = tmp_path / why.replace(" ", "_")
        case.mkdir()
        (case / "d.c").write_text(text.replace(old, new))
        got = {f["function"] for f in _ours(check_json(case, extra=ON))}
        assert fn in got, why
