"""VNN-COMP 2021 ACAS Xu / MNIST-FC 256x2: nnlemma vs Marabou, one fresh process per instance.

Usage::

    python benchmarks/vnncomp.py {acasxu,mnistfc} [--tools nnlemma,marabou] [--limit N]
        [--filter REGEX] [--timeout S | --timeout-scale F] [--out benchmarks/results/NAME.json]
        [--jobs 1] [--resume]

The instances come from ``../shared/benchmarks/vnncomp2021`` (next to the repository):
``acasxu/acasxu_instances.csv`` (186 rows, 116 s) and ``mnistfc/mnistfc_instances_256x2.csv``
(30 rows, 120 s); the expected verdicts from ``groundtruth.csv`` (``CONFLICT`` = sat).
``--filter`` is a regular expression searched in ``"ONNX,VNNLIB"`` (file names only).

Every (instance, tool) pair runs as one fresh subprocess in its own session; its wall time
(process start included) and peak memory (``ru_maxrss`` from ``os.wait4`` for exactly that child)
are measured here, and the runner kills the process group after timeout + grace ("timeout"). An
answer that arrives after the timeout counts as "timeout" (the raw answer is kept). A ``sat`` is
replayed independently on nnlemma's float32 kernel (``benchmarks/replay_worker.py``).

Correctness: the ground truth comes from real-arithmetic tools. An answer equal to it is correct.
nnlemma decides the float32 kernel, so a ``sat`` where the truth is ``unsat`` is counted correct
only if its float32 counterexample replays (listed under ``float32_only_sat``); every other
disagreement is wrong. ``unknown``/``timeout``/``error`` are unsolved, never wrong.

The JSON (rows + per-tool summary) is rewritten atomically after every instance, so a killed run
loses nothing; ``--resume`` skips the (tool, instance) pairs already in the output file. This
process imports no numpy/nnlemma on purpose: a child starts as a copy of its parent, so the
parent's RSS is a floor of every child's measured peak (recorded as ``meta.runner_rss_mb``).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
DATA = ROOT.parent / "shared" / "benchmarks" / "vnncomp2021"
CATEGORIES = {"acasxu": "acasxu/acasxu_instances.csv", "mnistfc": "mnistfc/mnistfc_instances_256x2.csv"}
TOOLS = ("nnlemma", "marabou")
UNSOLVED = ("unknown", "timeout", "error")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------- instances

def read_instances(data: Path, category: str) -> list[dict]:
    csv_path = data / CATEGORIES[category]
    rows = []
    with open(csv_path, newline="") as fh:
        for row in csv.reader(fh):
            if not row or not "".join(row).strip():
                continue
            onnx, spec, tmo = (c.strip() for c in row)
            rows.append({"category": category, "onnx": onnx, "vnnlib": spec, "csv_timeout_s": float(tmo),
                         "onnx_path": str(csv_path.parent / onnx), "vnnlib_path": str(csv_path.parent / spec)})
    return rows


def read_groundtruth(data: Path) -> dict:
    truth = {}
    with open(data / "groundtruth.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            verdict = r["consensus_of_9_tools"].strip()
            ref = {k: r[k] for k in ("marabou_wall_s", "marabou_result", "abcrown_wall_s", "nnenum_wall_s")
                   if k in r}
            truth[(r["category"], r["onnx"], r["vnnlib"])] = {
                "expected": "sat" if verdict == "CONFLICT" else verdict, "consensus": verdict, "vnncomp2021": ref}
    return truth


def key_of(row: dict) -> tuple:
    return (row["tool"], row["category"], row["onnx"], row["vnnlib"])


# --------------------------------------------------------------------------- processes

def run_child(cmd: list[str], timeout: float, grace: float, env: dict, cwd: Path, log_base: Path) -> dict:
    """Run ``cmd`` in its own session; kill the group after ``timeout + grace``. Returns wall time,
    exit status, whether it was killed, peak RSS (``os.wait4``) and the stdout/stderr texts."""
    out_path, err_path = log_base.with_suffix(".stdout"), log_base.with_suffix(".stderr")
    with open(out_path, "wb") as out_fh, open(err_path, "wb") as err_fh:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out_fh, stderr=err_fh, env=env,
                                cwd=str(cwd), start_new_session=True)
        box: dict = {}

        def reap():
            while True:
                try:
                    _, status, ru = os.wait4(proc.pid, 0)
                except InterruptedError:
                    continue
                box.update(t=time.monotonic(), status=status, ru=ru)
                return

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        ACTIVE.add(proc.pid)
        try:
            waiter.join(timeout + grace)
        except BaseException:  # Ctrl-C / SIGTERM of the runner: the child has its own session
            _killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            ACTIVE.discard(proc.pid)
        killed = waiter.is_alive()
        if killed:
            _killpg(proc.pid, signal.SIGTERM)
            waiter.join(2.0)
            if waiter.is_alive():
                _killpg(proc.pid, signal.SIGKILL)
            waiter.join()
    status = box["status"]
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; keep Popen consistent
    ru = box["ru"]
    return {"wall_s": box["t"] - t0, "exit_code": proc.returncode, "killed": killed,
            "max_rss_mb": ru.ru_maxrss / 1024.0,  # Linux: kilobytes
            "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
            "stdout": out_path.read_text(errors="replace"), "stderr": err_path.read_text(errors="replace")}


ACTIVE: set[int] = set()  # pids of running tool processes (each leads its own process group)


def kill_active() -> None:
    for pid in list(ACTIVE):
        _killpg(pid, signal.SIGKILL)


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the child leads its own session: its group is exactly its tree
    except (ProcessLookupError, PermissionError):
        pass


class Replayer:
    """The long-lived ``replay_worker.py`` process (started on first use, restarted if it dies)."""

    def __init__(self, env: dict):
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def __call__(self, request: dict) -> dict:
        with self.lock:
            for _ in range(2):
                if self.proc is None or self.proc.poll() is not None:
                    self.proc = subprocess.Popen([sys.executable, str(BENCH / "replay_worker.py")],
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                                 env=self.env, cwd=str(ROOT))
                try:
                    self.proc.stdin.write(json.dumps(request) + "\n")
                    self.proc.stdin.flush()
                    line = self.proc.stdout.readline()
                    if line:
                        return json.loads(line)
                except (BrokenPipeError, json.JSONDecodeError):
                    pass
                self.close()
            return {"replays": False, "error": "replay worker died"}

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


# --------------------------------------------------------------------------- tools

_PAIR = re.compile(r"\(\s*([XY])_(\d+)\s+([^\s()]+)\s*\)")
_VERDICTS = {"sat": "sat", "unsat": "unsat", "unknown": "unknown", "timeout": "timeout",
             "violated": "sat", "holds": "unsat", "error": "error"}


def parse_result_file(text: str) -> tuple[str, dict | None, list[str]]:
    """VNN-COMP result file -> (verdict, {"x": [...], "y": [...]} as printed strings, problems)."""
    problems = []
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    verdict = _VERDICTS.get(first.lower())
    if verdict is None:
        return "error", None, [f"result file: unreadable first line {first!r}"]
    if first != first.lower():
        problems.append(f"result file: verdict {first!r} is not lower case")
    if verdict != "sat":
        if any(l.strip() for l in lines[1:]):
            problems.append("result file: text after a non-sat verdict")
        return verdict, None, problems
    body = "\n".join(lines[1:])
    vals: dict = {"X": {}, "Y": {}}
    for kind, idx, v in _PAIR.findall(body):
        if int(idx) in vals[kind]:
            problems.append(f"result file: {kind}_{idx} given twice")
        vals[kind][int(idx)] = v
    cex = {}
    for kind in "XY":
        d = vals[kind]
        if sorted(d) != list(range(len(d))):
            problems.append(f"result file: {kind} indices are not 0..n-1")
        cex[kind.lower()] = [d[i] for i in sorted(d)]
    if not cex["x"]:
        problems.append("result file: sat without a counterexample")
        return verdict, None, problems
    stripped = body.strip()
    if not (stripped.startswith("(") and stripped.endswith(")")):
        problems.append("result file: counterexample is not wrapped in ( ... )")
    return verdict, cex, problems


def run_nnlemma(inst: dict, timeout: float, cfg, workdir: Path) -> dict:
    res_file, json_file = workdir / "result.txt", workdir / "report.json"
    cmd = [sys.executable, "-m", "nnlemma.cli", "verify", inst["onnx_path"], inst["vnnlib_path"],
           "--timeout", _fmt(timeout), "--result", str(res_file), "--json", str(json_file),
           "--seed", str(cfg.seed), "--quiet"]
    proc = run_child(cmd, timeout, cfg.grace, cfg.env, ROOT, workdir / "nnlemma")
    row = _base_row(proc)
    if proc["killed"]:
        row["result"] = "timeout"
        return row
    if proc["exit_code"] != 0:
        row["result"] = "error"
        row["problems"].append(f"exit code {proc['exit_code']}: {_tail(proc['stderr'])}")
        return row
    if not res_file.exists():
        row["result"] = "error"
        row["problems"].append("no result file written")
        return row
    verdict, cex, problems = parse_result_file(res_file.read_text())
    row["result"], row["problems"] = verdict, row["problems"] + problems
    try:
        report = json.loads(json_file.read_text())
        row["tool_seconds"] = report.get("seconds")
        row["tool_reason"] = report.get("reason") or ""
        row["boxes"] = report.get("boxes")
        if report.get("status") != verdict:
            row["problems"].append(f"JSON status {report.get('status')!r} != result file {verdict!r}")
        jcex = report.get("counterexample")
        if cex and jcex and ([float(v) for v in cex["x"]] != jcex["x"] or [float(v) for v in cex["y"]] != jcex["y"]):
            row["problems"].append("JSON counterexample differs from the result file's")
    except (OSError, ValueError) as exc:
        row["problems"].append(f"JSON report unreadable: {exc}")
    if verdict == "sat" and cex:
        row["counterexample"] = cex
        rep = cfg.replay({"onnx": inst["onnx_path"], "vnnlib": inst["vnnlib_path"], "x": cex["x"], "y": cex["y"],
                          "mode": "exact"})
        row["counterexample_replays"] = bool(rep.get("replays"))
        row["replay"] = {k: v for k, v in rep.items() if k != "kernel_y"}
    elif verdict == "sat":
        row["counterexample_replays"] = False
    return row


def run_marabou(inst: dict, timeout: float, cfg, workdir: Path) -> dict:
    cmd = [sys.executable, str(BENCH / "marabou_one.py"), inst["onnx_path"], inst["vnnlib_path"],
           "--timeout", _fmt(timeout)]
    proc = run_child(cmd, timeout, cfg.grace, cfg.env, ROOT, workdir / "marabou")
    row = _base_row(proc)
    if proc["killed"]:
        row["result"] = "timeout"
        return row
    lines = [l for l in proc["stdout"].splitlines() if l.startswith("RESULT ")]
    if not lines:
        row["result"] = "error"
        row["problems"].append(f"no RESULT line (exit {proc['exit_code']}): {_tail(proc['stderr'] or proc['stdout'])}")
        return row
    out = json.loads(lines[-1][len("RESULT "):])
    row["result"] = out.get("result", "error")
    row["tool_exit"] = out.get("exit_code")
    row["tool_seconds"] = out.get("solve_s")
    if out.get("error"):
        row["problems"].append(out["error"])
    if row["result"] == "sat" and "x" in out:
        row["counterexample"] = {"x": out["x"], "y": out["y"]}
        rep = cfg.replay({"onnx": inst["onnx_path"], "vnnlib": inst["vnnlib_path"], "x": out["x"], "y": out["y"],
                          "mode": "round"})
        # informational only: Marabou answers for real arithmetic; this is whether its point,
        # rounded to float32, is also a counterexample of the float32 kernel
        row["counterexample_replays_float32"] = bool(rep.get("replays"))
        row["replay"] = {k: v for k, v in rep.items() if k != "kernel_y"}
    return row


RUNNERS = {"nnlemma": run_nnlemma, "marabou": run_marabou}


def _base_row(proc: dict) -> dict:
    return {"wall_s": round(proc["wall_s"], 4), "max_rss_mb": round(proc["max_rss_mb"], 1),
            "user_s": round(proc["user_s"], 3), "sys_s": round(proc["sys_s"], 3), "exit_code": proc["exit_code"],
            "killed": proc["killed"], "problems": []}


def _fmt(x: float) -> str:
    return f"{x:g}"


def _tail(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text[-n:]


# --------------------------------------------------------------------------- judging

def judge(row: dict) -> None:
    """Set ``verdict`` (correct/wrong/unsolved), ``correct`` and ``float32_only`` on a row."""
    res, exp = row["result"], row.get("expected")
    row["float32_only"] = False
    if res in UNSOLVED or res not in ("sat", "unsat"):
        row["verdict"] = "unsolved"
    elif exp not in ("sat", "unsat"):
        row["verdict"] = "unknown_truth"
    elif row["tool"] == "nnlemma" and res == "sat" and not row.get("counterexample_replays"):
        row["verdict"] = "wrong"  # a float32 sat must replay, whatever the truth says
    elif res == exp:
        row["verdict"] = "correct"
    elif row["tool"] == "nnlemma" and res == "sat" and row.get("counterexample_replays"):
        row["verdict"] = "correct"
        row["float32_only"] = True
    else:
        row["verdict"] = "wrong"
    row["correct"] = row["verdict"] == "correct"


def stats_wall(row: dict) -> float:
    """Wall time for the statistics: a timeout counts at the instance timeout."""
    return row["timeout_s"] if row["result"] == "timeout" else row["wall_s"]


def summarize(rows: list[dict], tools: list[str]) -> dict:
    summary: dict = {}
    for tool in tools:
        rs = [r for r in rows if r["tool"] == tool]
        if not rs:
            continue
        walls = [stats_wall(r) for r in rs]
        counts = {k: sum(r["result"] == k for r in rs) for k in ("sat", "unsat", "unknown", "timeout", "error")}
        summary[tool] = {
            "instances": len(rs),
            "solved": sum(r["verdict"] == "correct" for r in rs),
            "wrong": sum(r["verdict"] == "wrong" for r in rs),
            "unsolved": sum(r["verdict"] == "unsolved" for r in rs),
            **counts,
            "wall_s_median": round(statistics.median(walls), 4),
            "wall_s_mean": round(statistics.fmean(walls), 4),
            "wall_s_total": round(sum(walls), 4),
            "max_rss_mb": max(r["max_rss_mb"] for r in rs),
            "rss_mb_median": round(statistics.median(r["max_rss_mb"] for r in rs), 1),
            "wrong_instances": [_name(r) for r in rs if r["verdict"] == "wrong"],
            "float32_only_sat": [_name(r) for r in rs if r.get("float32_only")],
            "late_answers": [_name(r) for r in rs if r.get("late")],
            "instances_with_problems": [_name(r) for r in rs if r.get("problems")],
        }
        if tool == "nnlemma":
            sats = [r for r in rs if r.get("raw_result", r["result"]) == "sat"]
            summary[tool]["counterexamples_replayed"] = sum(bool(r.get("counterexample_replays")) for r in sats)
            summary[tool]["counterexamples_not_replayed"] = [_name(r) for r in sats
                                                              if not r.get("counterexample_replays")]
        if tool == "marabou":
            sats = [r for r in rs if "counterexample_replays_float32" in r]
            summary[tool]["counterexamples_replaying_on_float32_kernel"] = \
                f"{sum(r['counterexample_replays_float32'] for r in sats)}/{len(sats)}"
    if "nnlemma" in summary and "marabou" in summary:
        by = {t: {key_of(r)[1:]: r for r in rows if r["tool"] == t} for t in ("nnlemma", "marabou")}
        common = sorted(set(by["nnlemma"]) & set(by["marabou"]))
        if common:
            n = [stats_wall(by["nnlemma"][k]) for k in common]
            m = [stats_wall(by["marabou"][k]) for k in common]
            both = [k for k in common if by["nnlemma"][k]["verdict"] == "correct"
                    and by["marabou"][k]["verdict"] == "correct"]
            summary["nnlemma_vs_marabou"] = {
                "common_instances": len(common),
                "median_wall_ratio": _ratio(statistics.median(n), statistics.median(m)),
                "total_wall_ratio": _ratio(sum(n), sum(m)),
                "solved_by_both": len(both),
                "solved_by_both_total_wall_ratio": _ratio(sum(stats_wall(by["nnlemma"][k]) for k in both),
                                                          sum(stats_wall(by["marabou"][k]) for k in both))
                if both else None,
                "only_nnlemma_solved": [",".join(k[1:]) for k in common if by["nnlemma"][k]["verdict"] == "correct"
                                        and by["marabou"][k]["verdict"] != "correct"],
                "only_marabou_solved": [",".join(k[1:]) for k in common if by["marabou"][k]["verdict"] == "correct"
                                        and by["nnlemma"][k]["verdict"] != "correct"],
                "note": "ratio = nnlemma / marabou over the instances run by both; timeouts count at the timeout",
            }
    return summary


def summarize_by_category(rows: list[dict]) -> dict:
    """``{category: {tool: ..., "nnlemma_vs_marabou": ...}}`` over all rows in the file."""
    out = {}
    for cat in sorted({r["category"] for r in rows}):
        rs = [r for r in rows if r["category"] == cat]
        out[cat] = summarize(rs, [t for t in TOOLS if any(r["tool"] == t for r in rs)])
    return out


def _ratio(a: float, b: float):
    return round(a / b, 4) if b > 0 else None


def _name(r: dict) -> str:
    return f"{r['onnx']},{r['vnnlib']}"


# --------------------------------------------------------------------------- output

def atomic_write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "nnlemma"],
                               capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + ("+dirty(nnlemma/)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def tool_version(tool: str, env: dict) -> str | None:
    code = {"nnlemma": "import importlib.metadata as m; print(m.version('nnlemma'))",
            "marabou": "import importlib.metadata as m; print(m.version('maraboupy'))"}[tool]
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description="VNN-COMP 2021 runner: nnlemma vs Marabou, one process per instance.")
    ap.add_argument("category", choices=sorted(CATEGORIES))
    ap.add_argument("--tools", default="nnlemma,marabou", help="comma-separated: nnlemma,marabou")
    ap.add_argument("--limit", type=int, help="first N instances (after --filter)")
    ap.add_argument("--filter", metavar="REGEX", help="regex searched in 'ONNX,VNNLIB' (file names)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--timeout", type=float, metavar="S", help="per-instance timeout (default: the CSV's)")
    ap.add_argument("--marabou-timeout", type=float, metavar="S",
                   help="cap Marabou's per-instance timeout at S (its timeouts count at S)")
    g.add_argument("--timeout-scale", type=float, metavar="F", help="multiply the CSV timeouts by F")
    ap.add_argument("--grace", type=float, default=5.0, metavar="S",
                    help="kill a tool at timeout + grace (default 5 s)")
    ap.add_argument("--out", type=Path, help="output JSON (default benchmarks/results/vnncomp_CATEGORY.json)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel tool processes (default 1; timings want 1)")
    ap.add_argument("--resume", action="store_true", help="skip (tool, instance) pairs already in --out")
    ap.add_argument("--threads", type=int, default=1,
                    help="set OMP/OPENBLAS/MKL_NUM_THREADS for the tools (default 1; 0: leave unset)")
    ap.add_argument("--seed", type=int, default=0, help="nnlemma --seed (default 0)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="skip the untimed nnlemma run that warms the file and bytecode caches first")
    ap.add_argument("--data", type=Path, default=DATA, help=f"vnncomp2021 folder (default {DATA})")
    ap.add_argument("--keep-logs", type=Path, metavar="DIR", help="keep each run's stdout/stderr/result files here")
    return ap.parse_args(argv)


class Config:
    pass


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt  # same clean-up as Ctrl-C: kill the running tools, keep the JSON


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    bad = [t for t in tools if t not in TOOLS]
    if bad or not tools:
        sys.exit(f"vnncomp.py: unknown tool(s) {bad}; choose from {','.join(TOOLS)}")
    if not (args.data / "groundtruth.csv").is_file():
        sys.exit(f"vnncomp.py: {args.data} not found (expected ../shared/benchmarks/vnncomp2021 next to the repo)")
    out = args.out or (BENCH / "results" / f"vnncomp_{args.category}.json")

    instances = read_instances(args.data, args.category)
    if args.filter:
        rx = re.compile(args.filter)
        instances = [i for i in instances if rx.search(f"{i['onnx']},{i['vnnlib']}")]
    if args.limit is not None:
        instances = instances[: args.limit]
    if not instances:
        sys.exit("vnncomp.py: no instance selected")
    truth = read_groundtruth(args.data)
    for inst in instances:
        inst["timeout_s"] = (args.timeout if args.timeout is not None
                             else inst["csv_timeout_s"] * (args.timeout_scale or 1.0))

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if args.threads > 0:
        env.update({v: str(args.threads) for v in THREAD_VARS})
    cfg = Config()
    cfg.env, cfg.grace, cfg.seed = env, args.grace, args.seed
    cfg.replay = Replayer(env)

    rows: list[dict] = []
    prior_runs: list = []
    if args.resume and out.exists():
        old = json.loads(out.read_text())
        rows = old.get("rows", [])  # all categories: one file may hold several runs (e.g. the smoke file)
        prior_runs = old.get("meta", {}).get("runs", [])
        print(f"resume: {len(rows)} rows already in {out}", file=sys.stderr)
    done = {key_of(r) for r in rows}
    tasks = [(inst, tool) for inst in instances for tool in tools
             if (tool, inst["category"], inst["onnx"], inst["vnnlib"]) not in done]
    wanted = {(i["category"], i["onnx"], i["vnnlib"]): i["timeout_s"] for i in instances}
    mismatched = [r for r in rows if wanted.get(key_of(r)[1:], r["timeout_s"]) != r["timeout_s"]]
    if mismatched:
        print(f"warning: {len(mismatched)} resumed rows used another timeout", file=sys.stderr)

    command = "python benchmarks/vnncomp.py " + " ".join(sys.argv[1:] if argv is None else argv)
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    meta = {
        "benchmark": "VNN-COMP 2021 (ACAS Xu, MNIST-FC 256x2)", "data": str(args.data),
        "runs": prior_runs + [{"command": command, "started": started, "category": args.category,
                               "timeout": args.timeout, "timeout_scale": args.timeout_scale}],
        "tools": tools, "versions": {t: tool_version(t, env) for t in tools}, "nnlemma_commit": git_commit(),
        "python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
        "jobs": args.jobs, "threads_env": args.threads or "unset", "grace_s": args.grace, "seed": args.seed,
        "invocation": {
            "nnlemma": "python -m nnlemma.cli verify ONNX VNNLIB --timeout T --result F --json F --seed S --quiet",
            "marabou": "python benchmarks/marabou_one.py ONNX VNNLIB --timeout T  (Marabou.read_onnx; "
                       "createOptions(numWorkers=1, timeoutInSeconds=floor(T), verbosity=0); "
                       "network.solve(propertyFilename=VNNLIB))",
        },
        "measurement": "wall: Popen..wait4 of one fresh process (process start and imports included); "
                       "max_rss_mb: ru_maxrss of that child from os.wait4; timeout: the runner kills the "
                       "process group at T + grace and an answer after T counts as timeout",
    }
    lock = threading.Lock()

    def save():
        with lock:
            meta["runner_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
            meta["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            ordered = sorted(rows, key=lambda r: (r["category"], order.get((r["category"], r["onnx"], r["vnnlib"]),
                                                                           1 << 30), TOOLS.index(r["tool"])))
            atomic_write_json(out, {"meta": meta, "summary": summarize_by_category(ordered), "rows": ordered})

    order = {(c, i["onnx"], i["vnnlib"]): k for c in CATEGORIES
             for k, i in enumerate(read_instances(args.data, c))}
    n_total, counter = len(tasks), [0]

    if args.warmup and "nnlemma" in tools and tasks:
        with tempfile.TemporaryDirectory(prefix="vnncomp_warm_") as td:
            t0 = time.monotonic()
            run_nnlemma(instances[0], min(5.0, instances[0]["timeout_s"]), cfg, Path(td))
            print(f"warm-up (file/bytecode caches): {time.monotonic() - t0:.1f} s, not recorded", file=sys.stderr)

    def tool_timeout(inst, tool):
        """Marabou may get a shorter limit (--marabou-timeout): its timeouts then count at that
        limit in the statistics, which favours Marabou in every ratio."""
        if tool == "marabou" and args.marabou_timeout is not None:
            return min(inst["timeout_s"], args.marabou_timeout)
        return inst["timeout_s"]

    def one(task):
        inst, tool = task
        with tempfile.TemporaryDirectory(prefix=f"vnncomp_{tool}_") as td:
            workdir = Path(td)
            try:
                row = RUNNERS[tool](inst, tool_timeout(inst, tool), cfg, workdir)
            except Exception as exc:  # a runner bug must not lose the other rows
                row = {"result": "error", "wall_s": 0.0, "max_rss_mb": 0.0, "killed": False,
                       "problems": [f"runner: {type(exc).__name__}: {exc}"]}
            if args.keep_logs:
                dest = args.keep_logs / args.category / f"{Path(inst['onnx']).stem}__{Path(inst['vnnlib']).stem}"
                dest.mkdir(parents=True, exist_ok=True)
                for f in workdir.iterdir():
                    (dest / f"{tool}.{f.name}").write_bytes(f.read_bytes())
        t = truth.get((inst["category"], inst["onnx"], inst["vnnlib"]), {})
        row = {"tool": tool, "category": inst["category"], "onnx": inst["onnx"], "vnnlib": inst["vnnlib"],
               "timeout_s": tool_timeout(inst, tool), **row,
               "expected": t.get("expected"), "consensus": t.get("consensus"), "vnncomp2021": t.get("vnncomp2021")}
        if row["result"] in ("sat", "unsat") and row["wall_s"] > row["timeout_s"]:
            row["raw_result"], row["result"], row["late"] = row["result"], "timeout", True
        judge(row)
        with lock:
            rows.append(row)
            counter[0] += 1
            k = counter[0]
        save()
        rep = ""
        if "counterexample_replays" in row:
            rep = "  cex replays" if row["counterexample_replays"] else "  CEX DOES NOT REPLAY"
        elif "counterexample_replays_float32" in row:
            rep = "  cex replays on float32" if row["counterexample_replays_float32"] else "  cex not a float32 cex"
        late = f" (answered {row['raw_result']} late)" if row.get("late") else ""
        probs = f"  problems: {'; '.join(row['problems'])}" if row.get("problems") else ""
        print(f"[{k}/{n_total}] {tool:<8} {inst['onnx']},{inst['vnnlib']}: {row['result']}{late} "
              f"(expected {row['expected']}) {row['verdict'].upper()}  {row['wall_s']:.2f} s  "
              f"{row['max_rss_mb']:.0f} MB{rep}{probs}", file=sys.stderr, flush=True)
        return row

    try:
        if args.jobs <= 1:
            for task in tasks:
                one(task)
        else:
            with ThreadPoolExecutor(max_workers=args.jobs) as ex:
                list(ex.map(one, tasks))
    except KeyboardInterrupt:
        kill_active()
        print("interrupted; results so far are in the output file", file=sys.stderr)
        return 130
    finally:
        cfg.replay.close()
    save()
    summary = summarize_by_category(rows).get(args.category, {})
    for tool in tools:
        s = summary.get(tool)
        if s:
            print(f"{tool}: {s['solved']}/{s['instances']} solved, {s['wrong']} wrong, sat {s['sat']} unsat "
                  f"{s['unsat']} unknown {s['unknown']} timeout {s['timeout']} error {s['error']}; wall median "
                  f"{s['wall_s_median']:.2f} s total {s['wall_s_total']:.1f} s; max RSS {s['max_rss_mb']:.0f} MB",
                  file=sys.stderr)
    if "nnlemma_vs_marabou" in summary:
        c = summary["nnlemma_vs_marabou"]
        print(f"nnlemma/marabou wall: median x{c['median_wall_ratio']}, total x{c['total_wall_ratio']} "
              f"over {c['common_instances']} instances", file=sys.stderr)
    print(f"written {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
