"""`nnlemma obligations report`: the Markdown/HTML report of an obligations directory agrees with
results.json (verdict, per-op counts, slowest obligations), shows every counterexample and encoder
disagreement, says when the directory is not discharged or plots are skipped, escapes what comes
from files, and streams (a synthetic 5000-entry directory)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from nnlemma.cli import main
from nnlemma.errors import InputError
from nnlemma.ir import Builder
from obligations import manifest
from obligations.fp_transfer import Dom, Gap, transfer
from obligations.generate import generate_dir
from obligations.report import MEDIAN_SAMPLE, write_report
from solvers.discharge import DischargeOptions, discharge

F32 = np.float32
HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
OPS = ["linear", "relu", "leaky_relu", "maximum", "reshape", "transpose", "add"]


def tiny_net():
    """linear(2->2) + bias, relu, leaky_relu, maximum, reshape, transpose, add of a param."""
    rng = np.random.default_rng(1)
    b = Builder()
    x = b.input((1, 2), "x")
    h = b.eqn("linear", [x, b.param(rng.standard_normal((2, 2)).astype(F32), "w"),
                         b.param(rng.standard_normal(2).astype(F32), "b")], name="fc")
    m = b.eqn("maximum", [b.eqn("relu", [h], name="relu"),
                          b.eqn("leaky_relu", [h], {"alpha": 0.1}, name="leaky")], name="max")
    t = b.eqn("transpose", [b.eqn("reshape", [m], {"shape": (2, 1)}, name="rs")], {"perm": (1, 0)}, name="tr")
    return b.build([b.eqn("add", [t, b.param(np.array([[0.5, -0.25]], F32), "c")], name="shift")])


@pytest.fixture(scope="module")
def proved_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("report") / "obl"
    generate_dir(tiny_net(), np.array([[-0.5, 0.25]], F32), np.array([[0.5, 0.5]], F32), d, model="tiny")
    summary = discharge(d, DischargeOptions(jobs=1, progress=False))
    assert summary["verdict"] == "proved"
    return d


def f(v) -> int:
    return int(np.float32(v).view(np.uint32))


def section(md: str, title: str) -> str:
    """The Markdown from the heading starting with ``title`` to the next ``## `` heading."""
    start = md.index("## " + title)
    end = md.find("\n## ", start + 1)
    return md[start:] if end < 0 else md[start:end]


def table_rows(text: str) -> list[list[str]]:
    rows = [ln.strip("|").split("|") for ln in text.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in r] for r in rows[1:]]  # without the header row


class _Balance(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags = [], [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def check_html(path) -> str:
    text = path.read_text()
    p = _Balance()
    p.feed(text)
    assert not p.errors and not p.stack, (p.errors, p.stack)
    assert {"html", "head", "body", "table"} <= p.tags
    return text


def test_report_of_a_proved_directory(proved_dir, tmp_path):
    d = proved_dir
    paths = write_report(d, tmp_path / "rep")
    assert paths == [tmp_path / "rep.md", tmp_path / "rep.html"]
    md = paths[0].read_text()
    results = json.loads((d / "results.json").read_text())
    assert "**Verdict: PROVED**" in md and "None: every node has obligations." in md
    # the per-op table is results.json's, number for number
    table = table_rows(section(md, "Obligations by kind and op"))
    assert [r[1] for r in table] == [r["op"] for r in results["by_kind_op"]]
    assert set(OPS) == {r[1] for r in table}
    for cells, r in zip(table, results["by_kind_op"]):
        assert cells[2:7] == [str(r["count"])] + [str(r.get(s, 0)) for s in
                                                  ("proved", "refuted", "unknown", "encoder-disagreement")]
    # the ten slowest, in order
    slow = sorted(results["obligations"], key=lambda r: -r["seconds"])[:10]
    rows = table_rows(section(md, "Slowest 10 obligations"))
    assert [r[1].strip("`") for r in rows] == [r["id"] for r in slow]
    assert [float(r[3]) for r in rows] == pytest.approx([r["seconds"] for r in slow], rel=1e-3)
    # widths per node, in graph order
    widths = table_rows(section(md, "Claimed bound widths per node"))
    assert [r[0].strip("`") for r in widths] == ["fc", "relu", "leaky", "max", "rs", "tr", "shift"]
    html = check_html(paths[1])
    assert "PROVED" in html
    if HAVE_MPL:
        assert html.count('src="data:image/png;base64,') == 3
        for name in ("time_per_op", "widths", "time_histogram"):
            assert f"](rep_files/{name}.png)" in md
            assert (tmp_path / "rep_files" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert "Plots skipped" not in md
    else:
        assert "pip install matplotlib" in md


def test_without_matplotlib_the_plots_are_skipped_and_said_so(proved_dir, tmp_path, monkeypatch):
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)
    md_path, html_path = write_report(proved_dir, tmp_path / "r")
    md = md_path.read_text()
    skipped = section(md, "Plots")
    for title in ("Solver time per op", "Claimed bound width per node", "Histogram of obligation times"):
        assert title in skipped
    assert skipped.count("pip install matplotlib") == 3
    assert not (tmp_path / "r_files").exists()
    assert "data:image/png" not in html_path.read_text()


def test_not_discharged_reports_the_manifest_only(proved_dir, tmp_path):
    d = tmp_path / "fresh"
    d.mkdir()
    shutil.copy(proved_dir / "manifest.json", d / "manifest.json")
    (md_path,) = write_report(d, fmt="md")
    assert md_path == d / "report.md"
    md = md_path.read_text()
    assert "Not discharged" in md and "has no results.json" in md
    assert "Verdict:" not in md
    rows = table_rows(section(md, "Obligations by kind and op"))
    counts = {r[1]: int(r[2]) for r in rows}
    assert set(counts) == set(OPS) and sum(counts.values()) == manifest.read_header(d)["counts"]["obligations"]
    assert "Claimed bound widths per node" in md
    assert not (d / "report.html").exists()


def _bad_claims_dir(d):
    """relu over [-1, 1] claimed into [0, 0.5] (refuted: 0.75 ↦ 0.75), a true claim, and a gap."""
    header = {"model": "bad<model>", "claim": "relu stays below 0.5 <b>really</b>"}
    items = [transfer("relu", {}, [Dom.interval(F32(-1), F32(1))], Dom.interval(F32(0), F32(0.5)),
                      "bad/r/fp-transfer/0", {"model": "bad", "node": "r", "op": "relu", "element": [0]}),
             transfer("relu", {}, [Dom.interval(F32(-1), F32(1))], Dom.interval(F32(0), F32(1)),
                      "bad/r/fp-transfer/1", {"model": "bad", "node": "r", "op": "relu", "element": [1]}),
             Gap("e", "exp", "no fp-transfer obligation generator for 'exp' yet")]
    manifest.write(d, header, items)
    return d


def test_refuted_obligation_shows_its_counterexample(tmp_path):
    d = _bad_claims_dir(tmp_path / "bad")
    summary = discharge(d, DischargeOptions(jobs=1, progress=False, cache=""))
    assert summary["verdict"] == "refuted"
    (row,) = [r for r in json.loads((d / "results.json").read_text())["obligations"]
              if r["status"] == "refuted"]
    bits = row["counterexample"]["x0"]
    value = np.array(bits, np.uint32).view(F32)[()]
    assert 0.5 < value <= 1
    md_path, html_path = write_report(d)
    md = md_path.read_text()
    assert "**Verdict: REFUTED**" in md
    refuted = section(md, "Refuted obligations (1)")
    assert "`bad/r/fp-transfer/0`" in refuted
    assert f"counterexample {str(value)} (0x{bits:08x})" in refuted  # bits shown as the float too
    assert f"claimed result domain: \\[0.0 (0x00000000), 0.5 (0x{f(0.5):08x})\\]" in refuted
    assert "kernel gives" in refuted
    gaps = section(md, "Gaps")
    assert "| e | exp | no fp-transfer obligation generator for 'exp' yet |" in gaps
    assert "1 gap(s)" in section(md, "Verdict") and "UNKNOWN" in section(md, "Verdict")
    # what comes from the files is escaped, in both formats
    html = check_html(html_path)
    assert "<b>really</b>" not in html and "&lt;b&gt;really&lt;/b&gt;" in html
    assert "bad&lt;model&gt;" in html
    assert "<b>really</b>" not in md and "bad&lt;model&gt;" in md


def test_encoder_disagreement_is_loud(tmp_path, monkeypatch):
    from solvers import discharge as D
    from solvers.outcome import Outcome

    class Liar:  # sat with a model that is no violation on the kernel
        name, version = "liar", "liar-1"

        def check_text(self, text, timeout_s):
            return Outcome("sat", 0.0, "liar", {"x0": f(0.25)})

    monkeypatch.setattr(D, "get_solver", lambda name: Liar())
    d = _bad_claims_dir(tmp_path / "liar")
    discharge(d, DischargeOptions(solver="liar", jobs=1, cache="", progress=False))
    md_path, html_path = write_report(d)
    md = md_path.read_text()
    assert "> **⚠ ENCODER DISAGREEMENT on 2 obligation(s)" in section(md, "Verdict")
    dis = section(md, "Encoder disagreements (2)")
    assert "`bad/r/fp-transfer/0`" in dis and "`bad/r/fp-transfer/1`" in dis
    assert f"counterexample 0.25 (0x{f(0.25):08x})" in dis and "inside the claimed domain" in dis
    assert 'class="alert">⚠ ENCODER DISAGREEMENT' in html_path.read_text()


def _synthetic_dir(d, n):
    """A manifest and results.json of ``n`` relu obligations on one node, written line by line as
    `generate`/`discharge` write them (no solver): widths 1..n, seconds a permutation."""
    d.mkdir()
    rng = np.random.default_rng(7)
    secs = rng.permutation(n) / 1000.0
    with open(d / "manifest.json", "w") as fm, open(d / "results.json", "w") as fr:
        fm.write('{\n"model": "big",\n"format": "%s",\n"obligations": [\n' % manifest.FORMAT)
        fr.write('{\n"verdict": "proved",\n"obligations": %d,\n"counts": {"proved": %d},\n'
                 '"by_kind_op": [{"kind": "fp-transfer", "op": "relu", "count": %d, "proved": %d, '
                 '"seconds_total": 1.0, "seconds_median": 0.5}],\n"obligations": [\n' % (n, n, n, n))
        for i in range(n):
            oid = f"big/n/fp-transfer/{i}"
            claim = {"lo": f(0.0), "hi": f(i + 1), "nan": False}
            e = {"id": oid, "kind": "fp-transfer", "op": "relu", "hash": str(i), "file": "x",
                 "provenance": {"node": "n"}, "replay": {"claim": claim}}
            fm.write(("," if i else "") + json.dumps(e) + "\n")
            row = {"id": oid, "kind": "fp-transfer", "op": "relu", "status": "proved",
                   "seconds": secs[i], "solver": "z3", "hash": str(i), "cached": False}
            fr.write(("," if i else "") + json.dumps(row) + "\n")
        fm.write('],\n"counts": {"obligations": %d},\n"gaps": []\n}\n' % n)
        fr.write("]\n}\n")
    return secs


def test_streams_a_large_directory(tmp_path):
    n = MEDIAN_SAMPLE + 904
    secs = _synthetic_dir(tmp_path / "big", n)
    (md_path,) = write_report(tmp_path / "big", fmt="md")
    md = md_path.read_text()
    assert "does not match" not in md
    rows = table_rows(section(md, "Slowest 10 obligations"))
    top = np.argsort(-secs)[:10]
    assert [r[1].strip("`") for r in rows] == [f"big/n/fp-transfer/{i}" for i in top]
    (w,) = table_rows(section(md, "Claimed bound widths per node"))
    assert w[2] == str(n) and w[4] == f"{n:.4g}"
    assert w[3].startswith("≈") and abs(float(w[3][1:]) - n / 2) < n / 10  # sampled median


def test_malformed_or_missing_manifest_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="nowhere: no such obligations directory"):
        write_report(tmp_path / "nowhere")
    d = tmp_path / "bad"
    d.mkdir()
    with pytest.raises(InputError, match="bad/manifest.json: cannot read"):
        write_report(d)
    (d / "manifest.json").write_text("{not json\n")
    with pytest.raises(InputError, match="manifest"):
        write_report(d)
    _synthetic_dir(tmp_path / "broken", 3)
    text = (tmp_path / "broken" / "manifest.json").read_text().replace('{"id": "big/n/fp-transfer/1"', '{"id": ')
    (tmp_path / "broken" / "manifest.json").write_text(text)
    with pytest.raises(InputError, match="entry 1 is malformed"):
        write_report(tmp_path / "broken")
    assert not (tmp_path / "broken" / "report.md").exists()


def test_cli_report(proved_dir, tmp_path, capsys):
    out = tmp_path / "cli" / "rep"
    assert main(["obligations", "report", str(proved_dir), "--out", str(out), "--format", "html"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out) + ".html"] and (tmp_path / "cli" / "rep.html").exists()
    assert main(["obligations", "report", str(tmp_path / "missing")]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nnlemma: error:")
    assert "missing: no such obligations directory" in err
