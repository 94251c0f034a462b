"""The report of an obligations directory: ``report.md`` and ``report.html``, with plots.

:func:`write_report` reads ``DIR/manifest.json`` (the claim, the obligations, the gaps) and, if the
directory has been discharged, ``DIR/results.json`` (the verdict and one result per obligation),
and writes what a reader needs to judge the claim: the verdict and why (gaps make it unknown),
a per-kind/per-op table, every refuted obligation with its counterexample, every encoder
disagreement (loudly: an encoder or solver bug, not a result about the model), the slowest
obligations, the claimed bound widths per node, and three plots (solver time per op, claimed
width per node, histogram of obligation times).

Both files are streamed: only aggregates are kept (counters, a top-10 heap, per-node width
statistics with a bounded median sample, the refuted and disagreeing rows), so a directory with
10^5 obligations is never held whole. The HTML is self-contained (plots inlined as base64 PNG);
the Markdown links its PNGs in ``report_files/`` next to it. matplotlib is optional: without it
the report is written without plots and says so. Everything taken from the files is escaped.
"""

from __future__ import annotations

import base64
import heapq
import html
import io
import json
import math
import os
import random
import re
import statistics
import struct
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from nnlemma.errors import InputError

from .manifest import iter_entries, read_header

STATUSES = ("proved", "refuted", "unknown", "encoder-disagreement")
SLOWEST = 10
MEDIAN_SAMPLE = 4096  # widths kept per node for the median (a uniform sample beyond that)
HIST_BINS_PER_DECADE = 4
_RESULTS_START = '"obligations": ['


# ---------------------------------------------------------------- reading (streamed) --------

def _results_summary(path: Path) -> dict:
    """The summary keys of ``results.json`` (everything before the result rows)."""
    lines = []
    try:
        with open(path) as f:
            for line in f:
                if line.strip() == _RESULTS_START:
                    break
                lines.append(line)
            else:
                raise InputError(f"{path}: no result list (not an nnlemma results file)")
        summary = json.loads("".join(lines).rstrip().rstrip(",") + "}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not an nnlemma results file ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the results ({exc.strerror})") from None
    if not isinstance(summary, dict) or "verdict" not in summary:
        raise InputError(f"{path}: not an nnlemma results file (no verdict)")
    return summary


def _iter_results(path: Path) -> Iterator[dict]:
    """The result rows of ``results.json``, one line at a time."""
    with open(path) as f:
        for line in f:
            if line.strip() == _RESULTS_START:
                break
        for k, line in enumerate(f):
            if line.startswith("]"):
                return
            try:
                row = json.loads(line[1:] if line.startswith(",") else line)
                if not isinstance(row, dict):
                    raise TypeError("not an object")
                yield row
            except (ValueError, TypeError) as exc:
                raise InputError(f"{path}: result row {k} is malformed ({exc})") from None
    raise InputError(f"{path}: the results file is truncated (no end of the result list)")


def _header(d: Path) -> dict:
    try:
        return read_header(d)
    except (UnicodeDecodeError, AttributeError) as exc:
        raise InputError(f"{d / 'manifest.json'}: not an nnlemma obligations manifest ({exc})") from None


# ---------------------------------------------------------------- aggregation ---------------

def _f32(bits: int) -> np.float32:
    return np.array(bits, np.uint32).view(np.float32)[()]


def _width(claim: dict) -> float:
    """``hi − lo`` of a claimed domain in float64 (0 for a constant; ``inf`` if unbounded)."""
    if "const" in claim:
        return 0.0
    lo, hi = (struct.unpack("<f", struct.pack("<I", claim[k]))[0] for k in ("lo", "hi"))
    if lo == hi:
        return 0.0
    return max(0.0, hi - lo)


@dataclass
class NodeWidths:
    """Claimed widths of one node's output elements. Count, max, zeros and infinities are exact;
    the median is over at most :data:`MEDIAN_SAMPLE` finite widths (a uniform reservoir sample
    beyond that, marked approximate)."""
    op: str
    n: int = 0
    zero: int = 0
    infinite: int = 0
    max: float = 0.0
    finite: int = 0
    sample: array = field(default_factory=lambda: array("d"))

    def add(self, w: float, rng: random.Random) -> None:
        self.n += 1
        if math.isinf(w):
            self.infinite += 1
            return
        self.zero += w == 0
        self.max = max(self.max, w)
        self.finite += 1
        if len(self.sample) < MEDIAN_SAMPLE:
            self.sample.append(w)
        elif (j := rng.randrange(self.finite)) < MEDIAN_SAMPLE:
            self.sample[j] = w

    @property
    def median(self) -> float | None:
        return statistics.median(self.sample) if self.sample else None

    @property
    def exact(self) -> bool:
        return self.finite <= MEDIAN_SAMPLE


@dataclass
class ManifestStats:
    entries: int = 0
    by_kind_op: Counter = field(default_factory=Counter)
    widths: dict[str, NodeWidths] = field(default_factory=dict)  # graph order (first seen)
    wanted: dict[str, dict] = field(default_factory=dict)  # id -> entry, for refuted/disagreeing


def _is_output_claim(entry: dict) -> bool:
    """The claim is the node's own output bounds (not a fold's partial sum)."""
    return entry.get("provenance", {}).get("mac") in (None, "bias", "result")


def scan_manifest(d: Path, wanted: set[str]) -> ManifestStats:
    """One pass over the manifest entries: counts per kind/op, widths per node, wanted entries."""
    stats, rng = ManifestStats(), random.Random(0)
    for k, e in enumerate(iter_entries(d)):
        try:
            stats.entries += 1
            stats.by_kind_op[(e["kind"], e["op"])] += 1
            if e["id"] in wanted:
                stats.wanted[e["id"]] = e
            claim = e.get("replay", {}).get("claim")
            if claim is not None and _is_output_claim(e):
                node = e.get("provenance", {}).get("node", "?")
                stats.widths.setdefault(node, NodeWidths(e["op"])).add(_width(claim), rng)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, struct.error) as exc:
            raise InputError(f"{d / 'manifest.json'}: obligation entry {k} is malformed "
                             f"({type(exc).__name__}: {exc})") from None
    return stats


@dataclass
class ResultStats:
    rows: int = 0
    cached: int = 0
    by_kind_op_status: Counter = field(default_factory=Counter)
    slowest: list = field(default_factory=list)  # min-heap of (seconds, -row number, row)
    hist: Counter = field(default_factory=Counter)  # log-bin index -> count
    refuted: list[dict] = field(default_factory=list)
    disagreements: list[dict] = field(default_factory=list)


def _hist_bin(seconds: float) -> int:
    return math.floor(HIST_BINS_PER_DECADE * math.log10(max(seconds, 1e-6)))


def scan_results(path: Path) -> ResultStats:
    """One pass over the result rows: status counts, slowest heap, time histogram, failures."""
    stats = ResultStats()
    for k, row in enumerate(_iter_results(path)):
        try:
            s, status = float(row["seconds"]), row["status"]
            stats.rows += 1
            stats.cached += bool(row.get("cached"))
            stats.by_kind_op_status[(row["kind"], row["op"], status)] += 1
            stats.hist[_hist_bin(s)] += 1
            slim = {key: row.get(key) for key in ("id", "op", "status", "cached")}
            item = (s, -k, slim)
            if len(stats.slowest) < SLOWEST:
                heapq.heappush(stats.slowest, item)
            elif item > stats.slowest[0]:
                heapq.heapreplace(stats.slowest, item)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise InputError(f"{path}: result row {k} is malformed ({type(exc).__name__}: {exc})") from None
        if status == "refuted":
            stats.refuted.append(row)
        elif status == "encoder-disagreement":
            stats.disagreements.append(row)
    return stats


# ---------------------------------------------------------------- document model ------------

class Code(str):
    """Inline text shown as code."""


class Bold(str):
    """Inline text shown in bold."""


# a block: ("h", level, text) | ("p", text) | ("alert", text) | ("list", [text])
#          | ("table", [header], [[cell]]) | ("img", key, title, png bytes)
# a text: a str (plain), Code, Bold, or a list of those


def _fl(bits) -> str:
    """A float32 bit pattern as its value and bits; anything else as it is."""
    if isinstance(bits, int) and not isinstance(bits, bool) and 0 <= bits < 2 ** 32:
        return f"{str(_f32(bits))} (0x{bits:08x})"  # str: the shortest float32 repr
    return str(bits)


def _dom(d: dict) -> str:
    if "const" in d:
        return f"the constant {_fl(d['const'])}"
    return f"[{_fl(d.get('lo'))}, {_fl(d.get('hi'))}]" + (" or NaN" if d.get("nan") else "")


def _g(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def _claim_blocks(d: Path, header: dict) -> list:
    keys = [("model", "model"), ("model file", "model_file"), ("spec", "spec"),
            ("model sha256", "model_sha256"), ("claim", "claim"), ("bounds", "bounds")]
    rows = [[name, str(header[k])] for name, k in keys if isinstance(header.get(k), (str, int, float))]
    box = header.get("box")
    if isinstance(box, dict) and isinstance(box.get("lo"), list) and isinstance(box.get("hi"), list):
        try:
            lo, hi = np.asarray(box["lo"], np.float64), np.asarray(box["hi"], np.float64)
            rows.append(["input box", f"{lo.size} inputs, lo in [{_g(lo.min())}, {_g(lo.max())}], "
                                      f"hi in [{_g(hi.min())}, {_g(hi.max())}], "
                                      f"widest {_g(float((hi - lo).max()))}" if lo.size else "empty"])
        except (ValueError, TypeError):
            rows.append(["input box", "unreadable"])
    counts = header.get("counts", {}) if isinstance(header.get("counts"), dict) else {}
    rows.append(["obligations", f"{counts.get('obligations', '?')} "
                                f"({counts.get('distinct_formulas', '?')} distinct formulas)"])
    rows.append(["directory", str(d)])
    return [("h", 2, "Claim and model"), ("table", ["", ""], rows)]


def _verdict_blocks(d: Path, summary: dict | None, res: ResultStats | None, man: ManifestStats,
                    gaps: list) -> list:
    out: list = [("h", 2, "Verdict")]
    if gaps:
        out.append(("alert", f"{len(gaps)} gap(s): nodes without obligations (listed below) leave the "
                             "claim about them unproved, so the verdict is UNKNOWN (unless an "
                             "obligation is refuted) until every node has obligations."))
    if summary is None:
        out.append(("alert", ["Not discharged: ", Code(str(d)), " has no results.json. Run ",
                              Code(f"nnlemma obligations discharge {d}"),
                              " to prove the obligations; below is the manifest only."]))
        return out
    c = summary.get("counts", {})
    out.insert(1, ("p", [Bold(f"Verdict: {str(summary.get('verdict', '?')).upper()}"),
                         f" — {summary.get('obligations', '?')} obligations: "
                         + ", ".join(f"{c.get(s, 0)} {s}" for s in STATUSES)]))
    out.insert(2, ("p", f"solver {summary.get('solver', '?')}, {summary.get('jobs', '?')} job(s), "
                        f"timeout {summary.get('timeout_s', '?')} s, wall {summary.get('wall_seconds', '?')} s; "
                        f"{res.cached} result(s) from the cache (their seconds are the recorded solve time)"))
    if c.get("encoder-disagreement"):
        out.append(("alert", f"ENCODER DISAGREEMENT on {c['encoder-disagreement']} obligation(s): the "
                             "solver's model does not replay on the float32 kernel. This is an "
                             "encoder or solver bug, not a result about the model (see below)."))
    return out + _consistency_alerts(summary, res, man)


def _consistency_alerts(summary: dict, res: ResultStats, man: ManifestStats) -> list:
    """results.json against itself and against the manifest (a stale or truncated discharge)."""
    out = []
    rows_by = Counter()
    for (kind, op, _), n in res.by_kind_op_status.items():
        rows_by[(kind, op)] += n
    if rows_by != man.by_kind_op:
        out.append(("alert", f"results.json does not match the manifest ({res.rows} results for "
                             f"{man.entries} obligations, or different kinds/ops): the manifest "
                             "changed after the discharge; discharge again."))
    table = {(r.get("kind"), r.get("op"), s): r.get(s, 0) for r in summary.get("by_kind_op", [])
             for s in STATUSES if r.get(s)}
    if table != dict(res.by_kind_op_status) or summary.get("obligations") != res.rows:
        out.append(("alert", "results.json's summary does not match its own result rows "
                             "(a damaged file): the numbers below are the summary's."))
    return out


def _table_blocks(summary: dict | None, man: ManifestStats) -> list:
    out: list = [("h", 2, "Obligations by kind and op")]
    if summary is None:
        rows = [[k, o, str(n)] for (k, o), n in sorted(man.by_kind_op.items())]
        return out + [("table", ["kind", "op", "count"], rows)]
    rows = [[str(r.get("kind")), str(r.get("op")), str(r.get("count"))]
            + [str(r.get(s, 0)) for s in STATUSES]
            + [_g(r.get("seconds_median")), _g(r.get("seconds_total"))]
            for r in summary.get("by_kind_op", [])]
    return out + [("table", ["kind", "op", "count", *STATUSES, "median s", "total s"], rows)]


def _gap_blocks(gaps: list) -> list:
    out: list = [("h", 2, "Gaps (nodes without obligations)")]
    if not gaps:
        return out + [("p", "None: every node has obligations.")]
    rows = [[str(g.get("node")), str(g.get("op")), str(g.get("reason"))] if isinstance(g, dict)
            else [str(g), "", ""] for g in gaps]
    return out + [("p", "Each gap makes the verdict unknown: nothing proves these nodes' bounds."),
                  ("table", ["node", "op", "reason"], rows)]


def _failure_blocks(title: str, rows: list[dict], man: ManifestStats, loud: str) -> list:
    out: list = [("h", 2, f"{title} ({len(rows)})")]
    if not rows:
        return out + [("p", "None.")]
    if loud:
        out.append(("alert", loud))
    for row in rows:
        out += _one_failure(row, man.wanted.get(row.get("id")))
    return out


def _one_failure(row: dict, entry: dict | None) -> list:
    cex = row.get("counterexample") or {}
    items = []
    if entry is not None:
        prov = entry.get("provenance", {})
        items.append(["node ", Code(str(prov.get("node"))), f", op {entry.get('op')}, element "
                      f"{prov.get('element')}" + (f", multiply-add {prov['mac']}" if "mac" in prov else "")])
        items.append(["lemma: ", str(entry.get("statement", ""))])
        rep = entry.get("replay", {})
        for i, dom in enumerate(rep.get("operands", [])):
            name = f"x{i}"
            shown = f"counterexample {_fl(cex[name])}" if name in cex else "no value in the model"
            items.append([Code(name), f" ∈ {_dom(dom)}" + ("" if "const" in dom else f": {shown}")])
        if "claim" in rep:
            items.append(["claimed result domain: ", _dom(rep["claim"])])
    else:
        items += [[Code(k), f" = {_fl(v)}"] for k, v in sorted(cex.items())]
        items.append("(the manifest has no entry with this id: operand domains not shown)")
    detail = re.sub(r"np\.float32\(([^()]*)\)", r"\1", str(row.get("detail", "—")))
    items.append(["replay on the float32 kernel: ", detail])
    return [("h", 3, [Code(str(row.get("id")))]), ("list", items)]


def _slowest_blocks(res: ResultStats) -> list:
    rows = [[str(i + 1), Code(str(r["id"])), str(r["op"]), f"{s:.4g}", str(r["status"]),
             "yes" if r["cached"] else ""]
            for i, (s, _, r) in enumerate(sorted(res.slowest, key=lambda t: (-t[0], -t[1])))]
    return [("h", 2, f"Slowest {len(rows)} obligations"),
            ("table", ["#", "id", "op", "seconds", "status", "cached"], rows)]


def _width_blocks(man: ManifestStats) -> list:
    out: list = [("h", 2, "Claimed bound widths per node"),
                 ("p", "Width = hi − lo (float64) of each output element's claimed domain, per node "
                       "in graph order; fold nodes count their output claims, not the partial sums. "
                       "The median is over finite widths (≈: estimated from a sample of "
                       f"{MEDIAN_SAMPLE}). The plot's log scale cannot show zero widths.")]
    rows = [[Code(node), w.op, str(w.n), ("" if w.exact else "≈") + _g(w.median), _g(w.max),
             str(w.zero), str(w.infinite)] for node, w in man.widths.items()]
    if not rows:
        return out + [("p", "No claimed domains in the manifest.")]
    out.append(("table", ["node", "op", "elements", "median", "max", "zero", "infinite"], rows))
    inf = sum(w.infinite for w in man.widths.values())
    if inf:
        out.append(("alert", f"{inf} element(s) have an unbounded (infinite-width) claim; they are "
                             "left out of the median and max and marked ∞ on the plot."))
    return out


# ---------------------------------------------------------------- plots ---------------------

def _plotting():
    """``(Figure, FigureCanvasAgg)`` or ``(None, reason)``: matplotlib is optional. The Agg canvas
    is used directly, so pyplot's global state and the process's backend are left alone."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        return None, f"matplotlib is not installed ({exc}); pip install matplotlib"
    return (Figure, FigureCanvasAgg), ""


def _png(fig, canvas_cls) -> bytes:
    canvas_cls(fig)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _time_per_op_plot(mpl, summary: dict) -> bytes | None:
    rows = [r for r in summary.get("by_kind_op", []) if r.get("count")]
    if not rows:
        return None
    Figure, Canvas = mpl
    kinds = {r.get("kind") for r in rows}
    labels = [str(r.get("op")) if len(kinds) == 1 else f"{r.get('kind')}/{r.get('op')}" for r in rows]
    fig = Figure(figsize=(8, 0.6 + 0.35 * len(rows) + 1))
    for i, (key, title) in enumerate([("seconds_median", "median s per obligation"),
                                      ("seconds_total", "total s")]):
        ax = fig.add_subplot(1, 2, i + 1)
        vals = [max(float(r.get(key) or 0), 1e-6) for r in rows]
        ax.barh(range(len(rows)), vals, color="C0" if i == 0 else "C1")
        ax.set_yticks(range(len(rows)), labels if i == 0 else [""] * len(rows))
        ax.set_xscale("log")
        ax.set_title(title)
        ax.invert_yaxis()
    return _png(fig, Canvas)


def _width_plot(mpl, man: ManifestStats) -> bytes | None:
    nodes = list(man.widths.items())
    pos = [(i, w) for i, (_, w) in enumerate(nodes) if w.max > 0]
    if not pos:
        return None
    Figure, Canvas = mpl
    fig = Figure(figsize=(min(16, max(6, 0.5 * len(nodes) + 2)), 4))
    ax = fig.add_subplot()
    med = [(i, w.median) for i, w in pos if w.median]
    ax.plot([i for i, _ in med], [m for _, m in med], "o", label="median")
    ax.plot([i for i, _ in pos], [w.max for _, w in pos], "^", label="max")
    ax.set_yscale("log")
    for i, (_, w) in enumerate(nodes):  # unbounded claims: a mark at the top of the axes
        if w.infinite:
            ax.annotate(f"∞×{w.infinite}", (i, 0.97), xycoords=ax.get_xaxis_transform(),
                        ha="center", va="top", color="C3")
    step = max(1, len(nodes) // 40)  # at most ~40 node names on the axis
    ax.set_xticks(range(0, len(nodes), step), [n for n, _ in nodes][::step], rotation=45, ha="right")
    ax.set_ylabel("claimed width (hi − lo)")
    ax.set_title("claimed bound width per node (graph order)")
    ax.legend()
    return _png(fig, Canvas)


def _histogram_plot(mpl, res: ResultStats) -> bytes | None:
    if not res.hist:
        return None
    from matplotlib.ticker import MaxNLocator
    Figure, Canvas = mpl
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    bins = sorted(res.hist)
    left = [10 ** (b / HIST_BINS_PER_DECADE) for b in bins]
    width = [10 ** ((b + 1) / HIST_BINS_PER_DECADE) - x for b, x in zip(bins, left)]
    ax.bar(left, [res.hist[b] for b in bins], width=width, align="edge", edgecolor="black")
    ax.set_xscale("log")
    ax.set_xlabel("seconds per obligation (≤ 1e-6 s in the first bin)")
    ax.set_ylabel("obligations")
    ax.set_title("obligation solve times")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(fig, Canvas)


PLOTS = {"time_per_op": "Solver time per op", "widths": "Claimed bound width per node",
         "time_histogram": "Histogram of obligation times"}


def _plot_blocks(summary: dict | None, res: ResultStats | None, man: ManifestStats) -> list:
    mpl, why = _plotting()
    out: list = [("h", 2, "Plots")]
    makers = {"widths": lambda: _width_plot(mpl, man)}
    if summary is not None:
        makers["time_per_op"] = lambda: _time_per_op_plot(mpl, summary)
        makers["time_histogram"] = lambda: _histogram_plot(mpl, res)
    skipped = [f"{PLOTS[k]}: the directory has not been discharged (no solver times)"
               for k in PLOTS if k not in makers]
    for key, make in makers.items():
        if mpl is None:
            skipped.append(f"{PLOTS[key]}: {why}")
            continue
        png = make()
        if png is None:
            skipped.append(f"{PLOTS[key]}: nothing to plot (no positive values)")
        else:
            out.append(("img", key, PLOTS[key], png))
    if skipped:
        out += [("p", "Plots skipped:"), ("list", skipped)]
    return out


# ---------------------------------------------------------------- rendering -----------------

def _md_text(t) -> str:
    if isinstance(t, list):
        return "".join(_md_text(x) for x in t)
    s = re.sub(r"\s+", " ", str(t))  # no line breaks: file text cannot start a block
    if isinstance(t, Code):  # a code span shows its text literally: no escaping, a longer fence
        fence = "`" * (max(map(len, re.findall("`+", s)), default=0) + 1)
        pad = " " if s.startswith("`") or s.endswith("`") else ""
        return f"{fence}{pad}{s}{pad}{fence}"
    s = html.escape(s, quote=False)
    for ch in "\\`*[]~":
        s = s.replace(ch, "\\" + ch)
    return f"**{s}**" if isinstance(t, Bold) else s


def _md_cell(t) -> str:
    return _md_text(t).replace("|", "\\|") or " "


def to_markdown(blocks: list, files_dir: str) -> tuple[str, dict[str, bytes]]:
    """The Markdown text and the PNG files it links (``files_dir/key.png``)."""
    lines, files = [], {}
    for b in blocks:
        kind = b[0]
        if kind == "h":
            lines.append("#" * b[1] + " " + _md_text(b[2]))
        elif kind == "p":
            lines.append(_md_text(b[1]))
        elif kind == "alert":
            lines.append("> **⚠ " + _md_text(b[1]) + "**")
        elif kind == "list":
            lines.append("\n".join("- " + _md_text(x) for x in b[1]))
        elif kind == "table":
            head, rows = b[1], b[2]
            lines.append("\n".join(["| " + " | ".join(_md_cell(h) for h in head) + " |",
                                    "|" + "---|" * len(head)]
                                   + ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]))
        elif kind == "img":
            files[f"{b[1]}.png"] = b[3]
            lines.append(f"![{_md_text(b[2])}]({files_dir}/{b[1]}.png)")
    return "\n\n".join(lines) + "\n", files


def _html_text(t) -> str:
    if isinstance(t, list):
        return "".join(_html_text(x) for x in t)
    s = html.escape(str(t))
    return f"<code>{s}</code>" if isinstance(t, Code) else f"<b>{s}</b>" if isinstance(t, Bold) else s


_CSS = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:2px 8px}"
        "th{background:#eee}.alert{border:2px solid #c00;background:#fee;color:#900;"
        "font-weight:bold;padding:.5em 1em}img{max-width:100%}code{background:#f4f4f4}")


def to_html(blocks: list, title: str) -> str:
    """A self-contained HTML page (PNGs inlined as base64)."""
    body = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            body.append(f"<h{b[1]}>{_html_text(b[2])}</h{b[1]}>")
        elif kind == "p":
            body.append(f"<p>{_html_text(b[1])}</p>")
        elif kind == "alert":
            body.append(f'<p class="alert">⚠ {_html_text(b[1])}</p>')
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_html_text(x)}</li>" for x in b[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{_html_text(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{_html_text(c)}</td>" for c in r) + "</tr>"
                           for r in b[2])
            body.append(f"<table><tr>{head}</tr>{rows}</table>")
        elif kind == "img":
            data = base64.b64encode(b[3]).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{_html_text(b[2])}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


# ---------------------------------------------------------------- entry point ---------------

def build(directory: str | os.PathLike) -> tuple[str, list]:
    """The report's title and blocks for ``directory`` (manifest, and results if present)."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"{d}: no such obligations directory (want the DIR of `obligations generate`)")
    header = _header(d)
    results = d / "results.json"
    summary = _results_summary(results) if results.is_file() else None
    res = scan_results(results) if summary is not None else None
    wanted = {r.get("id") for r in (res.refuted + res.disagreements)} if res else set()
    man = scan_manifest(d, wanted)
    gaps = header.get("gaps") if isinstance(header.get("gaps"), list) else []
    title = f"nnlemma obligations report: {header.get('model', d.name)}"
    blocks: list = [("h", 1, title)]
    blocks += _claim_blocks(d, header)
    blocks += _verdict_blocks(d, summary, res, man, gaps)
    blocks += _table_blocks(summary, man)
    blocks += _gap_blocks(gaps)
    if res is not None:
        blocks += _failure_blocks("Refuted obligations", res.refuted, man, "")
        blocks += _failure_blocks(
            "Encoder disagreements", res.disagreements, man,
            "ENCODER DISAGREEMENT: these models do not replay on the float32 kernel — an encoder "
            "or solver bug. They say nothing about the model; the obligations stay unproved.")
        blocks += _slowest_blocks(res)
    blocks += _width_blocks(man)
    blocks += _plot_blocks(summary, res, man)
    return title, blocks


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_report(directory: str | os.PathLike, out: str | os.PathLike | None = None,
                 fmt: str = "both") -> list[Path]:
    """Write ``PREFIX.md`` (PNGs in ``PREFIX_files/``) and/or ``PREFIX.html``; ``PREFIX`` is
    ``out`` or ``DIR/report``. Returns the report files written."""
    if fmt not in ("md", "html", "both"):
        raise InputError(f"report format must be md, html or both, not {fmt!r}")
    prefix = Path(out) if out is not None else Path(directory) / "report"
    if prefix.suffix in (".md", ".html"):
        prefix = prefix.with_suffix("")
    title, blocks = build(directory)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if fmt in ("md", "both"):
        files_dir = f"{prefix.name}_files"
        text, files = to_markdown(blocks, files_dir)
        if files:
            (prefix.parent / files_dir).mkdir(exist_ok=True)
        for name, data in files.items():
            _atomic_write(prefix.parent / files_dir / name, data)
        _atomic_write(prefix.with_name(prefix.name + ".md"), text.encode())
        written.append(prefix.with_name(prefix.name + ".md"))
    if fmt in ("html", "both"):
        _atomic_write(prefix.with_name(prefix.name + ".html"), to_html(blocks, title).encode())
        written.append(prefix.with_name(prefix.name + ".html"))
    return written
