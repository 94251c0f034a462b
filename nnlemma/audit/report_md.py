"""Markdown report of a runtime audit, with PNG histograms (matplotlib, the ``report`` extra).

``OUT.md`` gets the named behaviours, a table per op (inputs checked, mismatches, max ulps,
NaN/inf disagreements, signed zeros, worst input) and its ulp histogram, the dot-product deviation
against the order-free bound, and for a model the observed deviation per output next to the
sound bound and the margin verdicts. The figures are written beside it as ``OUT.ulps.png`` and
``OUT.deviation.png`` (each file atomically).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..verify.report import atomic_save


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        raise InputError("the report's plots need matplotlib (pip install 'nnlemma[report]')") from None


def _ulp_figure(ops: dict, path: Path) -> None:
    plt = _pyplot()
    from .sweep import histogram_labels
    labels = histogram_labels()
    shown = [op for op, r in ops.items() if any(k != "0" for k in r.get("histogram", {}))]
    fig, ax = plt.subplots(figsize=(8, 4))
    if not shown:
        ax.text(0.5, 0.5, "every op agrees with the spec within 0 ulps", ha="center", va="center")
    last = max((labels.index(k) for op in shown for k in ops[op]["histogram"]), default=1)
    width = 0.8 / max(1, len(shown))
    for i, op in enumerate(shown):
        h = ops[op]["histogram"]
        counts = [h.get(lab, 0) for lab in labels[:last + 1]]
        ax.bar(np.arange(last + 1) + i * width, counts, width, label=op, log=True)
    ax.set_xticks(np.arange(last + 1) + 0.4 - width / 2, labels[:last + 1], rotation=45, fontsize=7)
    ax.set_xlabel("distance from the spec (ulps)")
    ax.set_ylabel("inputs")
    if shown:
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_save(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)


def _deviation_figure(model: dict, path: Path) -> None:
    plt = _pyplot()
    dev = np.asarray(model["deviations"], np.float64)
    fig, ax = plt.subplots(figsize=(7, 4))
    pos = dev[dev > 0]
    if pos.size:
        ax.hist(np.log2(pos), bins=40, color="tab:blue", label=f"{pos.size} nonzero of {dev.size}")
    if model["bound"]["status"] == "ok":
        ax.axvline(np.log2(max(model["bound"]["max_deviation"])), color="tab:red", label="sound bound (max)")
    ax.set_xlabel("log2 |runtime - spec| per sampled output")
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_save(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)


def write_report(path: str | os.PathLike, report: dict) -> Path:
    """``report``: the dict ``nnlemma audit runtime`` writes as JSON."""
    path = Path(path)
    rt = report["runtime"]
    lines = [f"# Runtime audit: {rt}", ""]
    if report.get("versions"):
        lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v), ""]
    if report.get("behaviours"):
        lines += ["## Named behaviours", "", "| case | result |", "|---|---|"]
        lines += [f"| `{k}` | `{v}` |" for k, v in report["behaviours"].items()] + [""]
    ops = report.get("ops") or {}
    if ops:
        ulp_png = path.with_suffix(".ulps.png")
        lines += ["## Per op against the spec", "",
                  f"Unary ops: the edge corpus plus every {report.get('stride')}-th float32 bit pattern "
                  f"(1 = exhaustive); binary ops: the edge corpus crossed with itself plus random pairs.", "",
                  "| op | checked | differ | max ulps | NaN/inf disagree | signed zero | worst input (runtime / spec) |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for op, r in ops.items():
            w = r.get("worst")
            worst = f"{w['input']} ({w['runtime']} / {w['spec']})" if w else ""
            lines.append(f"| {op} | {r['checked']:,} | {r['mismatches']:,} | {r['max_ulps']} | "
                         f"{r.get('class_mismatch', 0):,} | {r.get('signed_zero', 0):,} | {worst} |")
        _ulp_figure(ops, ulp_png)
        lines += ["", f"![ulp histogram]({ulp_png.name})", ""]
    if report.get("dot"):
        d = report["dot"]
        lines += ["## Dot products", "",
                  f"Length {d['length']}, {d['trials']} random and cancelling trials: largest |runtime - spec| "
                  f"{d['max_abs_deviation']:.3g}, {d['max_deviation_over_order_free_bound']:.3g} x the sound "
                  f"order-free bound (any two orders differ by at most 2x).", ""]
    if report.get("model"):
        m = report["model"]
        dev_png = path.with_suffix(".deviation.png")
        lines += ["## Model", "", f"Model `{m.get('path', '')}`, {m['samples']} sampled inputs of the box.", "",
                  "| output | observed max deviation | sound bound |", "|---:|---:|---:|"]
        b = m["bound"]
        bounds = b["per_output"][0] if b["status"] == "ok" else ["unknown"] * len(m["observed_max_deviation"])
        for i, (o, v) in enumerate(zip(m["observed_max_deviation"], bounds)):
            lines.append(f"| {i} | {o:.3g} | {v if isinstance(v, str) else f'{v:.3g}'} |")
        if b["status"] != "ok":
            lines += ["", f"Bound unknown: {b['reason']}"]
        else:
            lines += ["", f"Observed within the bound: **{m['within_bound']}** "
                          f"(largest observed/bound ratio {m['observed_over_bound']:.3g})."]
        if m.get("ulps_source"):
            lines += ["", f"Runtime error per op taken from: {m['ulps_source']}."]
        if m.get("margin"):
            v = m["margin"]["runtime_safe"]
            lines += ["", f"### Margin check: runtime safe = **{'unknown' if v is None else v}**", "",
                      "| case | spec | runtime safe | why |", "|---:|---|---|---|"]
            for c in m["margin"]["cases"]:
                lines.append(f"| {c['case']} | {c.get('spec', '')} | {c['runtime_safe']} | {c['why']} |")
        _deviation_figure(m, dev_png)
        lines += ["", f"![deviation histogram]({dev_png.name})", ""]
    atomic_save(path, lambda p: Path(p).write_text("\n".join(lines) + "\n"))
    return path
