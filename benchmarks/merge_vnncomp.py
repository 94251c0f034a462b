"""Merge the rows of one tool from another `vnncomp.py` result file into a result file and
recompute its summary (used when the two tools ran as two concurrent sweeps, one per core).

    python benchmarks/merge_vnncomp.py INTO.json FROM.json --tool marabou
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vnncomp import atomic_write_json, key_of, summarize_by_category  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("into", type=Path)
    ap.add_argument("source", type=Path)
    ap.add_argument("--tool", required=True)
    args = ap.parse_args()
    into = json.loads(args.into.read_text())
    src = json.loads(args.source.read_text())
    rows = [r for r in into["rows"] if r["tool"] != args.tool]
    added = [r for r in src["rows"] if r["tool"] == args.tool]
    keys = {key_of(r) for r in rows}
    rows += [r for r in added if key_of(r) not in keys]
    into["rows"] = rows
    into["summary"] = summarize_by_category(rows)
    into["meta"].setdefault("merged", []).append({"tool": args.tool, "from": args.source.name,
                                                  "from_meta": src.get("meta", {})})
    atomic_write_json(args.into, into)
    print(json.dumps(into["summary"], indent=1)[:3000])


if __name__ == "__main__":
    main()
