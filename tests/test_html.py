"""`check --format html -o DIR`: every finding in the page with its chains, snippets, scenario
and (lock-order cycles) drawing; everything escaped; the same page for any job count; and the
page as a real browser builds it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import EXAMPLES, FIXTURES, all_rules_enabled, check_json, run_cli
from html_dom import Node, parse

from irqlint.findings import Finding, OrderEdge
from irqlint.ir import Step
from irqlint.output import html
from irqlint.program import show

LOI = "lock-order-inversion"
CHROMIUM = shutil.which("chromium")


def _html(*paths: Path, out: Path, extra: tuple[str, ...] = ()) -> str:
    r = run_cli("check", *map(str, paths), "--format", "html", "-o", str(out), "--no-cache",
                "-q", *extra)
    assert r.returncode in (0, 1), r.stderr
    assert r.stderr == ""
    return (out / "index.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Node]:
    """The examples/ run as JSON (the oracle) and as an HTML report."""
    out = tmp_path_factory.mktemp("report")
    doc = check_json(EXAMPLES, extra=all_rules_enabled())
    page = _html(EXAMPLES, out=out, extra=all_rules_enabled())
    return doc, out / "index.html", parse(page)


def _by_fingerprint(dom: Node) -> dict[str, Node]:
    arts = dom.all("article", "finding")
    out = {a.attrs["data-fingerprint"]: a for a in arts}
    assert len(out) == len(arts)
    return out


def test_every_finding_appears_under_its_rule_and_file(examples: tuple[dict, Path, Node]) -> None:
    doc, _, dom = examples
    assert len(doc["findings"]) >= 8
    arts = dom.all("article", "finding")
    got = sorted((a.attrs["data-rule"], a.attrs["data-file"], int(a.attrs["data-line"]))
                 for a in arts)
    assert got == sorted((f["rule"], f["file"], f["line"]) for f in doc["findings"])
    arts_by_fp = _by_fingerprint(dom)
    for f in doc["findings"]:
        a = arts_by_fp[f["fingerprint"]]
        assert a.one("p", "message").text() == f["message"]
        assert f"{f['file']}:{f['line']}:{f['column']}" in a.one("p", "where").text()
        rule_section = a.ancestor("section", "rule")
        assert rule_section is not None and rule_section.attrs["id"] == f"rule-{f['rule']}"
        file_section = a.ancestor("section", "file")
        assert file_section is not None and file_section.one("h3").text().startswith(f["file"])


def test_summary_counts_per_rule(examples: tuple[dict, Path, Node]) -> None:
    doc, _, dom = examples
    rows = dom.one("table", "rules").one("tbody").all("tr")
    counts = {r.all("td")[0].text(): int(r.all("td")[1].text()) for r in rows}
    want: dict[str, int] = {}
    for f in doc["findings"]:
        want[f["rule"]] = want.get(f["rule"], 0) + 1
    assert counts == want
    stats = dom.one("table", "stats").text()
    assert f"functions{doc['stats']['functions']}" in stats


def test_chain_steps_in_order_with_highlighted_source(examples: tuple[dict, Path, Node]) -> None:
    doc, _, dom = examples
    arts = _by_fingerprint(dom)
    for f in doc["findings"]:
        chains = arts[f["fingerprint"]].all("section", "chain")
        assert len(chains) == len(f["traces"])
        for chain, trace in zip(chains, f["traces"], strict=True):
            steps = chain.all("li", "step")
            assert [(s.attrs["data-file"], int(s.attrs["data-line"])) for s in steps] == [
                (t["file"], t["line"]) for t in trace]
            for li, t in zip(steps, trace, strict=True):
                assert li.one("p", "note").text().endswith(f"{t['function']}: {t['note']}")
                hl = li.one("pre", "snippet").one("span", "hl")
                assert hl.one("span", "ln").text().strip() == str(t["line"])
                source = Path(t["file"]).read_text().splitlines()[t["line"] - 1]
                assert hl.text().endswith(source)


def test_cpu_scenario_is_a_two_column_table(examples: tuple[dict, Path, Node]) -> None:
    doc, _, dom = examples
    arts = _by_fingerprint(dom)
    tables = 0
    for f in doc["findings"]:
        a = arts[f["fingerprint"]]
        expl = f["explanation"]
        if expl and expl[0].startswith("CPU0") and "CPU1" in expl[0]:
            table = a.one("table", "scenario")
            assert [th.text() for th in table.all("th")] == ["CPU0", "CPU1"]
            rows = [[td.text() for td in tr.all("td")] for tr in table.one("tbody").all("tr")]
            assert all(len(r) == 2 for r in rows)
            # the same scenario as the text output prints, cell by cell
            assert [f"{a:<38}{b}".rstrip() for a, b in rows] == expl[1:-1]
            assert table.one("tfoot").text() == expl[-1]
            assert expl[-1].startswith("*** ") and expl[-1].endswith(" ***")
            tables += 1
        else:
            assert not a.all("table", "scenario")
            if expl:
                assert a.one("pre", "explanation").text() == "\n".join(expl)
    assert tables >= 2  # wait-under-lock and lock-order-inversion


def test_lock_order_inversion_has_a_drawing(examples: tuple[dict, Path, Node]) -> None:
    doc, _, dom = examples
    arts = _by_fingerprint(dom)
    assert any(f["rule"] == LOI for f in doc["findings"])
    for f in doc["findings"]:
        svgs = arts[f["fingerprint"]].all("svg", "lock-graph")
        if f["rule"] != LOI:
            assert svgs == []
            continue
        (svg,) = svgs
        cycle = {n.one("text").text() for n in svg.all("g", "cycle") if "node" in n.classes}
        assert cycle == {show(lock) for lock in f["locks"]}
        edges = [g for g in svg.all("g", "edge") if "cycle" in g.classes]
        assert len(edges) == len(f["locks"])


def test_graph_shows_edges_next_to_the_cycle(tmp_path: Path) -> None:
    dom = parse(_html(FIXTURES / "html", out=tmp_path / "r"))
    arts = {Path(a.attrs["data-file"]).name: a for a in dom.all("article", "finding")}
    assert sorted(arts) == ["order.c", "tri.c"]
    svg = arts["order.c"].one("svg", "lock-graph")
    nodes = {n.one("text").text(): "cycle" in n.classes for n in svg.all("g", "node")}
    assert nodes == {"lock_a (order.c)": True, "lock_b (order.c)": True,
                     "lock_c (order.c)": False, "lock_d (order.c)": False,
                     "lock_e (order.c)": False}
    labels = {g.one("text").text(): "cycle" in g.classes for g in svg.all("g", "label")}
    assert labels == {"ab()": True, "ba()": True, "ca()": False, "bd()": False, "ae()": False}
    tips = {g.one("title").text() for g in svg.all("g", "edge")}
    assert "held lock_c (order.c), then took lock_a (order.c) in ca()" in tips
    assert len(svg.all("g", "edge")) == 5
    tri = arts["tri.c"]
    drawn = tri.one("svg", "lock-graph")
    assert [len([g for g in drawn.all("g", kind) if "cycle" in g.classes])
            for kind in ("node", "edge", "label")] == [3, 3, 3]
    assert not tri.all("table", "scenario")  # three CPUs: the text form
    assert "CPU2: holds z_lock (tri.c)" in tri.one("pre", "explanation").text()


def test_source_from_the_tree_is_escaped(tmp_path: Path) -> None:
    page = _html(FIXTURES / "html", out=tmp_path / "r")
    assert "<script" not in page
    dom = parse(page)
    assert not dom.all("script")
    # self-contained: nothing to fetch, every link inside the page
    assert not any(k in n.attrs for n in dom.walk() for k in ("src", "srcset"))
    assert all(n.attrs["href"].startswith("#") for n in dom.all("a"))
    assert "url(" not in page and "@import" not in page and not dom.all("link")
    step = next(li for li in dom.all("li", "step")
                if li.attrs["data-file"].endswith("order.c") and li.attrs["data-line"] == "13")
    assert '/* markup in a comment: <script>alert("x & y")</script> */' in step.text()


def test_render_escapes_findings() -> None:
    evil = '<script>alert("1")</script>'
    f = Finding(
        LOI, "warning", f"message {evil} & more", 'dir/"a&b<c>.c', 3, 1, "f<g>", ("f<g>",),
        ("<a>", '"b"'),
        ((Step('dir/"a&b<c>.c', 3, "f<g>", "<img src=x onerror=alert(1)>"),),),
        "k", ("CPU0", "*** DEADLOCK ***"),
        scenario=((f"lock({evil})", ""), ("", "lock(&b)")),
        graph=(OrderEdge("<a>", '"b"', "f&g", True), OrderEdge('"b"', "<a>", "h", True)),
    )
    source = ["x", "y", f"int z; /* </pre>{evil} */", "w"]
    page = html.render([f], {"files": 1}, read=lambda path: source)
    for raw in ("<script", "<img", "<a>", "<c>", "<g>"):
        assert raw not in page
    dom = parse(page)
    a = dom.one("article", "finding")
    assert a.attrs["data-file"] == 'dir/"a&b<c>.c'
    assert a.one("p", "message").text() == f"message {evil} & more"
    assert a.one("span", "hl").text().endswith(source[2])
    assert "<img src=x onerror=alert(1)>" in a.one("p", "note").text()
    assert a.one("table", "scenario").one("tbody").all("td")[0].text() == f"lock({evil})"
    nodes = {g.one("text").text() for g in a.one("svg").all("g", "node")}
    assert nodes == {"<a>", '"b"'}


def test_unreadable_source_gets_a_note() -> None:
    steps = (Step("gone.c", 5, "f", "takes x"), Step("short.c", 99, "f", "calls g()"))
    f = Finding("lock-imbalance", "warning", "m", "gone.c", 5, 1, "f", ("f",), (), (steps,), "k")
    page = html.render([f], {}, read=lambda p: ["one line"] if p == "short.c" else None)
    notes = [n.text() for n in parse(page).all("p", "nosource")]
    assert notes == ["source not available: gone.c:5", "source not available: short.c:99"]


def test_same_page_for_any_job_count(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "html", tree / "html")
    shutil.copytree(EXAMPLES / "seed001_wait_under_lock", tree / "seed001")
    pages = []
    for jobs in ("1", "2"):
        out = tmp_path / f"r{jobs}"
        r = run_cli("check", str(tree), "--format", "html", "-o", str(out), "-j", jobs,
                    "--no-cache", "-q")
        assert r.returncode == 1, r.stderr
        page = (out / "index.html").read_text()
        # the stats table holds timings; everything else must be byte-identical
        stripped, n = re.subn(r'<table class="stats">.*?</table>', "", page, flags=re.S)
        assert n == 1
        pages.append(stripped)
    assert pages[0] == pages[1]
    assert len(parse(pages[0]).all("article", "finding")) == 4


def test_fixed_code_gives_an_empty_report(tmp_path: Path) -> None:
    page = _html(EXAMPLES / "seed002_lock_inversion" / "fixed", out=tmp_path / "r")
    dom = parse(page)
    assert dom.one("p", "clean").text() == "No findings."
    assert not dom.all("article")


def test_html_needs_an_output_directory() -> None:
    r = run_cli("check", str(FIXTURES / "html"), "--format", "html", "--no-cache")
    assert r.returncode == 2
    assert r.stderr == ("irqlint: error: --format html needs -o DIR, the directory to write "
                        "index.html into\n")


def test_html_refuses_a_file_as_directory(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("mine")
    r = run_cli("check", str(FIXTURES / "html"), "--format", "html", "-o", str(target),
                "--no-cache")
    assert r.returncode == 2
    assert r.stderr.startswith(f"irqlint: error: {target}: exists and is not a directory")
    assert r.stderr.count("\n") == 1
    assert target.read_text() == "mine"
    r = run_cli("check", str(FIXTURES / "html"), "--format", "html", "-o", str(target / "sub"),
                "--no-cache")
    assert r.returncode == 2
    assert r.stderr == (f"irqlint: error: {target / 'sub'}: cannot create directory "
                        f"({target} is not a directory)\n")
    assert target.read_text() == "mine"


def test_html_creates_the_directory(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    r = run_cli("check", str(FIXTURES / "html"), "--format", "html", "-o", str(out), "--no-cache")
    assert r.returncode == 1
    assert r.stderr == f"irqlint: 2 finding(s), report in {out / 'index.html'}\n"
    assert (out / "index.html").is_file()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_browser_builds_the_page(examples: tuple[dict, Path, Node], tmp_path: Path) -> None:
    """Headless Chromium loads the report from file:// and dumps the DOM it built: a browser's
    parser re-nests what is malformed, so the structure below holds only for sound markup."""
    assert CHROMIUM is not None
    doc, page, _ = examples
    r = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    dom = parse(r.stdout)
    arts = dom.all("article", "finding")
    assert len(arts) == len(doc["findings"])
    for a in arts:
        assert a.parent is not None and "file" in a.parent.classes
        assert a.parent.parent is not None and "rule" in a.parent.parent.classes
    svgs = dom.all("svg", "lock-graph")
    assert len(svgs) == sum(f["rule"] == LOI for f in doc["findings"])
    for svg in svgs:
        owner = svg.ancestor("article", "finding")
        assert owner is not None and owner.attrs["data-rule"] == LOI
        assert len(svg.all("rect")) >= 4 and len(svg.all("path")) >= 2
    steps = sum(len(t) for f in doc["findings"] for t in f["traces"])
    assert len(dom.all("li", "step")) == steps
    assert len(dom.all("span", "hl")) == steps
    assert not dom.all("script")
