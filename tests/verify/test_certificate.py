"""Proof certificates: ``verify(..., certificate=...)`` records what was proved and
:func:`nnlemma.verify.checker.check` re-checks it without the search.

Small problems cover each kind of proof: input splitting with bound leaves (two cases), input
splitting down to enumerated leaves, ReLU splitting (forced with ``input_split_max_dims=0``) and a
case whose box holds no float32 point. Each valid certificate must check; each tampering (a leaf
removed, a split point moved, a bound narrowed by one ulp, a weight or the property changed, a
ReLU split with a wrong sign or element, ...) must be rejected with the reason asserted here.
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from collections import Counter
from decimal import Decimal

import numpy as np
import pytest

import nnlemma as nl
from nnlemma import nn, vnnlib
from nnlemma.cli import main
from nnlemma.ir import save
from nnlemma.ir.serialize import from_dict, to_dict
from nnlemma.verify import Options
from nnlemma.verify import boxes as bx
from nnlemma.verify import certificate as C
from nnlemma.verify.api import verify
from nnlemma.verify.checker import check
from nnlemma.verify.problem import Problem

F32 = np.float32
UP = F32(np.inf)


def mlp(h: int, seed: int):
    m = nn.Sequential(nn.Linear(2, h, seed=seed), nn.ReLU(), nn.Linear(h, h, seed=seed + 1), nn.ReLU(),
                      nn.Linear(h, 1, seed=seed + 2))
    return nl.compile(m, nl.tensor(np.zeros((1, 2), F32))).graph


def dec(v) -> str:
    return str(Decimal(float(v)))  # exact: every float is a finite decimal


def spec_text(boxes, t) -> str:
    """Cases ``X in box_i`` (an or of boxes), unsafe ``Y_0 >= t``."""
    s = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
    cases = ["(and " + " ".join(f"(>= X_{i} {dec(l)}) (<= X_{i} {dec(h)})" for i, (l, h) in enumerate(zip(lo, hi)))
             + ")" for lo, hi in boxes]
    s += f"(assert (or {' '.join(cases)}))\n" if len(cases) > 1 else f"(assert {cases[0]})\n"
    return s + f"(assert (>= Y_0 {dec(t)}))\n"


def sampled_max(g, lo, hi) -> float:
    X = (lo + np.random.default_rng(0).random((4000, 2)) * (hi - lo)).astype(F32)
    return float(Problem(g).evaluate(X).max())


class Proof:
    def __init__(self, graph, text, options=None):
        self.graph, self.text = graph, text
        self.prop = vnnlib.parse(text)
        self.result = verify(graph, self.prop, options=options, certificate=True)
        assert self.result.status == "unsat", self.result.reason
        self.cert = C.parse(C.dumps(self.result.certificate))  # through the file format

    def check(self, cert=None, graph=None, prop=None):
        return check(graph or self.graph, prop or self.prop, self.cert if cert is None else cert)

    def kinds(self, case=0) -> Counter:
        return Counter(n[1] for n in self.cert["cases"][case]["nodes"])


@pytest.fixture(scope="module")
def inp():
    """Input splitting, two cases (the halves of [-1, 1]^2), bound leaves."""
    g = mlp(12, 1)
    lo, hi = np.array([-1, -1], F32), np.array([1, 1], F32)
    t = F32(sampled_max(g, lo, hi) + 0.002)
    mid = np.array([0, 1], F32)
    return Proof(g, spec_text([(lo, mid), (np.array([0, -1], F32), hi)], t))


@pytest.fixture(scope="module")
def enum():
    """Input splitting on a 41 x 41-point box down to enumerated leaves (threshold 1 ulp above the max)."""
    g = mlp(12, 1)
    lo = np.array([0.3, -0.2], F32)
    hi = lo.copy()
    for _ in range(40):
        hi = np.nextafter(hi, UP)
    Y = Problem(g).evaluate(bx.enumerate_points(lo, hi))[:, 0]
    p = Proof(g, spec_text([(lo, hi)], np.nextafter(Y.max(), UP)))
    p.max = Y.max()
    return p


@pytest.fixture(scope="module")
def relu():
    """ReLU splitting (forced), 20 + 20 ReLUs over [-1, 1]^2."""
    g = mlp(20, 1)
    lo, hi = np.array([-1, -1], F32), np.array([1, 1], F32)
    t = F32(sampled_max(g, lo, hi) + 0.06)
    return Proof(g, spec_text([(lo, hi)], t), Options(input_split_max_dims=0))


@pytest.fixture(scope="module")
def inp_alpha():
    """Input splitting where every box CROWN leaves open is retried with alpha-CROWN slopes."""
    g = mlp(12, 1)
    lo, hi = np.array([-1, -1], F32), np.array([1, 1], F32)
    t = F32(sampled_max(g, lo, hi) + 0.002)
    return Proof(g, spec_text([(lo, hi)], t), Options(input_alpha_depth=0, input_alpha_iters=10))


# -- valid certificates ------------------------------------------------------------------------

def test_input_split_certificate_checks(inp):
    assert [c["method"] for c in inp.cert["cases"]] == ["input", "input"]
    assert inp.kinds(0)["split"] > 0 and inp.kinds(0)["bound"] == inp.kinds(0)["split"] + 1
    res = inp.check()
    assert res.valid, res.reason
    assert res.cases == 2 and res.leaves == sum(c.leaves for c in inp.result.cases) and res.batches > 0
    assert inp.cert["model_sha256"] == C.model_digest(inp.graph)
    assert inp.cert["property_sha256"] == C.property_digest(inp.prop)
    assert check(inp.graph, inp.prop, inp.result.certificate).valid  # the in-memory dict checks as well
    with pytest.raises(C.CertificateError, match="not an nnlemma-certificate"):
        check(inp.graph, inp.prop, {"format": "x"})


def test_enumerated_leaves_are_rerun_on_the_kernel(enum):
    k = enum.kinds()
    assert k["enumerated"] > 0 and k["bound"] > 0
    res = enum.check()
    assert res.valid, res.reason
    assert res.enumerated_points == enum.result.cases[0].enumerated_points > 0


def test_relu_split_certificate_checks(relu):
    assert relu.cert["cases"][0]["method"] == "relu"
    k = relu.kinds()
    assert k["relu"] > 5 and k["bound"] + k["empty"] == k["relu"] + 1
    res = relu.check()
    assert res.valid, res.reason
    assert res.leaves == relu.result.cases[0].leaves


def test_case_without_float32_points():
    g = mlp(12, 1)
    a = F32(0.1)
    gap = (Decimal(float(a)) + Decimal(float(np.nextafter(a, UP)))) / 2  # no float32 at this number
    text = ("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
            f"(assert (or (and (>= X_0 {gap}) (<= X_0 {gap}) (>= X_1 0) (<= X_1 0))\n"
            "            (and (>= X_0 -1) (<= X_0 1) (>= X_1 -1) (<= X_1 1))))\n(assert (>= Y_0 100))\n")
    p = Proof(g, text)
    assert [c["method"] for c in p.cert["cases"]] == ["empty-region", "input"]
    assert p.check().valid
    bad = copy.deepcopy(p.cert)
    bad["cases"][0]["method"] = "input"
    assert p.check(bad).reason == "case 0: the region holds no float32 point, but the method is 'input'"
    bad = copy.deepcopy(p.cert)
    bad["cases"][1]["method"] = "empty-region"
    assert p.check(bad).reason == "case 1: method 'empty-region' (the region is not empty: expected 'input' or 'relu')"


def test_recording_is_deterministic(inp):
    again = verify(inp.graph, inp.prop, certificate=True).certificate
    assert C.dumps(again) == C.dumps(inp.result.certificate)


def test_verify_writes_the_certificate_atomically(inp, tmp_path):
    path = tmp_path / "c.json"
    res = verify(inp.graph, inp.prop, certificate=path)
    assert C.read(path) == json.loads(C.dumps(res.certificate))
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_no_certificate_for_sat(tmp_path):
    g = mlp(12, 1)
    prop = vnnlib.parse(spec_text([(np.array([-1, -1], F32), np.array([1, 1], F32))], -100.0))
    res = verify(g, prop, certificate=tmp_path / "c.json")
    assert res.status == "sat" and res.certificate is None
    assert not (tmp_path / "c.json").exists()


# -- tampering ---------------------------------------------------------------------------------

def nodes(cert, case=0):
    return cert["cases"][case]["nodes"]


def first(cert, kind, case=0, last=False):
    found = [n for n in nodes(cert, case) if n[1] == kind]
    return found[-1] if last else found[0]


def nudge(s: str) -> str:
    """The next float64 toward +inf, as certificate text."""
    return C.enc(np.nextafter(C.dec64(s), np.inf))


def tampered(p, fn, **kw):
    cert = copy.deepcopy(p.cert)
    fn(cert)
    return p.check(cert, **kw)


def reject(p, fn, expect: str):
    res = tampered(p, fn)
    assert not res.valid
    assert expect in res.reason, res.reason
    return res.reason


def test_removed_leaf(inp, relu):
    for p in (inp, relu):
        leaf = first(p.cert, "bound", last=True)
        reason = reject(p, lambda c: nodes(c).remove(leaf), f"case 0 node {leaf[0]}: no entry, so no verdict")
        assert reason == f"case 0 node {leaf[0]}: no entry, so no verdict (neither split nor leaf)"


@pytest.mark.parametrize("last", [False, True])
def test_bound_narrowed_by_one_ulp(inp, relu, last):
    for p in (inp, relu):
        leaf = first(p.cert, "bound", last=last)
        row = len(leaf[2]) - 1

        def narrow(c):
            n = next(n for n in nodes(c) if n[0] == leaf[0])
            n[2][row] = nudge(n[2][row])

        reject(p, narrow, f"case 0 node {leaf[0]} row {row}: stored bound {nudge(leaf[2][row])} exceeds the "
                          f"recomputed certified bound {leaf[2][row]}")


def test_weaker_stored_bounds_still_check(inp):
    def weaken(c):
        for n in nodes(c):
            if n[1] == "bound":
                n[2] = [C.enc(np.nextafter(C.dec64(s), -np.inf)) for s in n[2]]

    assert tampered(inp, weaken).valid


def test_split_point_moved(inp):
    root, split = nodes(inp.cert)[:2]
    assert root[1] == split[1] == "split" and C.dec32(root[3]) == 0 and C.dec32(split[3]) != 0
    dim = root[2]

    def outside(c):
        nodes(c)[0][3] = c["cases"][0]["hi"][dim]

    reject(inp, outside, f"case 0 node 0: split point {float(C.dec32(inp.cert['cases'][0]['hi'][dim]))!r} is not in")
    for direction in (UP, -UP):
        def one_ulp(c):
            nodes(c)[1][3] = C.enc(np.nextafter(C.dec32(split[3]), direction))

        reject(inp, one_ulp, "exceeds the recomputed certified bound")

        def root_one_ulp(c):  # moving 0 to ±2^-149 leaves every bound's bits as they were: a valid proof
            nodes(c)[0][3] = C.enc(np.nextafter(F32(0), direction))

        assert tampered(inp, root_one_ulp).valid


def test_structure_is_a_tree(inp):
    leaf = first(inp.cert, "bound")
    split = first(inp.cert, "split", last=True)
    reject(inp, lambda c: nodes(c).append([9999, "bound", leaf[2]]), "case 0 node 9999: not reachable from the root")
    reject(inp, lambda c: nodes(c).append(copy.deepcopy(leaf)), f"case 0 node {leaf[0]}: two entries")

    def share(c):
        s = next(n for n in nodes(c) if n[0] == split[0])
        s[5] = s[4]

    reject(inp, share, f"case 0 node {split[0]}: children must be two distinct node ids")

    def loop(c):
        next(n for n in nodes(c) if n[0] == split[0])[4] = 0

    reject(inp, loop, "case 0 node 0: reached twice")
    reject(inp, lambda c: nodes(c).append([5, "split"]), "malformed node entry")

    def decimal(c):
        next(n for n in nodes(c) if n[0] == leaf[0])[2][0] = "0.5"

    reject(inp, decimal, f"case 0 node {leaf[0]}: '0.5' is not a hex float string")
    reject(inp, lambda c: c["cases"].pop(), "the property has 2 case(s), the certificate 1")

    def root_box(c):
        c["cases"][1]["lo"][0] = C.enc(np.nextafter(F32(0), UP))

    reject(inp, root_box, "case 1: root box lo[0] = 1.401298464324817e-45 is not the property's float32 region (-0.0)")


def test_batches(inp):
    leaf = first(inp.cert, "bound")

    def unbatched(c):
        for b in c["cases"][0]["batches"]:
            if leaf[0] in b:
                b.remove(leaf[0])
        c["cases"][0]["batches"] = [b for b in c["cases"][0]["batches"] if b]

    reject(inp, unbatched, f"case 0 node {leaf[0]}: a 'bound' leaf that is in no batch")
    reject(inp, lambda c: c["cases"][0]["batches"].append([leaf[0]]), f"case 0 node {leaf[0]}: in two batches")
    reject(inp, lambda c: c["cases"][0]["batches"].append([12345]), "batch member 12345 is not a node of the tree")


def test_optimised_batches_check_and_are_needed(inp_alpha):
    """Retried boxes sit in one plain and one optimised batch; the leaf's stored bound is the
    larger of the two. Dropping the optimised batches, or making one plain, is rejected."""
    batches = inp_alpha.cert["cases"][0]["batches"]
    assert any(isinstance(b, dict) and b["alpha_iters"] == 10 for b in batches)
    res = inp_alpha.check()
    assert res.valid, res.reason

    def plain_only(c):
        c["cases"][0]["batches"] = [b for b in c["cases"][0]["batches"] if not isinstance(b, dict)]

    reason = tampered(inp_alpha, plain_only).reason
    assert "exceeds the recomputed certified bound" in reason, reason

    def flattened(c):
        c["cases"][0]["batches"] = [b["nodes"] if isinstance(b, dict) else b for b in c["cases"][0]["batches"]]

    reject(inp_alpha, flattened, "in two batches of the same kind")

    def bad_steps(c):
        next(b for b in c["cases"][0]["batches"] if isinstance(b, dict))["alpha_iters"] = 0

    reject(inp_alpha, bad_steps, "alpha_iters must be an integer in 1..")


def test_leaf_kinds_are_rechecked(inp, relu):
    for p in (inp, relu):
        leaf = first(p.cert, "bound")

        def to_empty(c):
            next(n for n in nodes(c) if n[0] == leaf[0])[1:] = ["empty"]

        reject(p, to_empty, f"case 0 node {leaf[0]}: marked empty, but its ReLU sign clamps are consistent")

    def to_enumerated(c):
        next(n for n in nodes(c) if n[1] == "bound")[1:] = ["enumerated"]

    reject(relu, to_enumerated, "an enumerated leaf in a ReLU-splitting case")
    leaf = first(inp.cert, "bound")

    def minus_inf(c):
        n = next(n for n in nodes(c) if n[0] == leaf[0])
        n[2] = ["-inf"] * len(n[2])

    reject(inp, minus_inf, f"case 0 node {leaf[0]}: the stored bounds refute no atom of unsafe conjunction 0")


def test_relu_split_with_wrong_sign_or_element(relu):
    split = first(relu.cert, "relu")
    deeper = next(n for n in nodes(relu.cert) if n[1] == "relu" and n[0] in (split[4], split[5]))

    def swap(c):
        s = next(n for n in nodes(c) if n[0] == split[0])
        s[4], s[5] = s[5], s[4]

    reason = reject(relu, swap, "case 0 node ")
    assert "exceeds the recomputed certified bound" in reason or "marked empty" in reason

    def again(c):  # the child splits the element its parent already split
        d = next(n for n in nodes(c) if n[0] == deeper[0])
        d[2], d[3] = split[2], split[3]

    reject(relu, again, f"case 0 node {deeper[0]}: element {split[3]} of %{split[2]} is already split in this domain")

    size = int(np.prod(relu.graph.values()[split[2]].shape[1:]))

    def out_of_range(c):
        next(n for n in nodes(c) if n[0] == split[0])[3] = size

    reject(relu, out_of_range, f"case 0 node {split[0]}: ReLU input %{split[2]} element {size} does not exist")

    def not_relu_input(c):
        next(n for n in nodes(c) if n[0] == split[0])[2] = relu.graph.outputs[0]

    reject(relu, not_relu_input, "does not exist")

    from nnlemma.verify.relu_bab import root_context

    lo, hi = (np.array([C.dec32(s) for s in relu.cert["cases"][0][k]], F32) for k in ("lo", "hi"))
    layout = root_context(Problem(relu.graph), lo, hi)[1]
    j = int(np.flatnonzero(~layout.splittable)[0])
    z = layout.node_of(j)

    def stable(c):
        s = next(n for n in nodes(c) if n[0] == split[0])
        s[2], s[3] = z, j - layout.offset[z]

    reject(relu, stable, f"case 0 node {split[0]}: element {j - layout.offset[z]} of %{z} is not splittable")

    other = next(k for k in np.flatnonzero(layout.splittable) if k != layout.offset[split[2]] + split[3])
    zo = layout.node_of(int(other))

    def moved(c):
        s = next(n for n in nodes(c) if n[0] == split[0])
        s[2], s[3] = zo, int(other) - layout.offset[zo]

    assert not tampered(relu, moved).valid


def changed_weight(graph, fn):
    """The graph with ``fn`` applied to its last parameter (the output layer's bias)."""
    d = to_dict(graph)
    p = d["params"][-1]
    arr = np.frombuffer(base64.b64decode(p["f32le"]), "<f4").copy()
    arr = fn(arr).astype("<f4")
    p["f32le"] = base64.b64encode(arr.tobytes()).decode()
    return from_dict(d)


@pytest.mark.parametrize("which", ["inp", "relu"])
def test_changed_weight(which, request):
    p = request.getfixturevalue(which)
    g = changed_weight(p.graph, lambda a: np.nextafter(a, UP))
    assert p.check(graph=g).reason == ("model digest differs: the certificate was made for another model (a weight, "
                                       "op or shape differs)")
    # the digest is not what makes the check sound: with a matching digest, a weight change that
    # breaks the property fails the bound recomputation
    g = changed_weight(p.graph, lambda a: a + F32(1))
    cert = copy.deepcopy(p.cert)
    cert["model_sha256"] = C.model_digest(g)
    res = p.check(cert, graph=g)
    assert not res.valid and "exceeds the recomputed certified bound" in res.reason


def test_enumerated_leaf_with_a_violation(enum):
    g = changed_weight(enum.graph, lambda a: a + F32(1))  # the property now fails everywhere
    cert = copy.deepcopy(enum.cert)
    cert["model_sha256"] = C.model_digest(g)
    node = first(cert, "enumerated")[0]
    reason = enum.check(cert, graph=g).reason
    assert reason.startswith(f"case 0 node {node}: enumerated point [") and reason.endswith("] violates the property")


def test_different_property(inp):
    other = vnnlib.parse(inp.text.replace("(>= Y_0", "(> Y_0"))
    assert inp.check(prop=other).reason == "property digest differs: the certificate was made for another property"
    # with a matching digest, a weaker threshold is not refuted by the stored bounds ...
    lower = vnnlib.parse(inp.text.rsplit("(assert", 1)[0] + "(assert (>= Y_0 -0.5))\n")
    cert = copy.deepcopy(inp.cert)
    cert["property_sha256"] = C.property_digest(lower)
    assert "the stored bounds refute no atom of unsafe conjunction 0" in inp.check(cert, prop=lower).reason


# -- command line ------------------------------------------------------------------------------

@pytest.fixture
def files(inp, tmp_path):
    model, spec = tmp_path / "m.json", tmp_path / "p.vnnlib"
    save(inp.graph, model)
    spec.write_text(inp.text)
    return model, spec, tmp_path / "c.json"


def test_cli_verify_and_check(files, capsys):
    model, spec, cert = files
    assert main(["verify", str(model), str(spec), "--certificate", str(cert)]) == 0
    assert f"certificate written to {cert}" in capsys.readouterr().out
    out = cert.parent / "check.json"
    assert main(["check", str(model), str(spec), str(cert), "--json", str(out)]) == 0
    assert capsys.readouterr().out.startswith("valid  (2 case(s), ")
    report = json.loads(out.read_text())
    assert report["valid"] is True and report["reason"] == "" and report["cases"] == 2


def test_cli_check_in_a_fresh_process(files):
    """Bit-exact recomputation does not depend on the process (BLAS state, numba caches)."""
    model, spec, cert = files
    assert main(["verify", str(model), str(spec), "--certificate", str(cert)]) == 0
    r = subprocess.run([sys.executable, "-m", "nnlemma.cli", "check", str(model), str(spec), str(cert)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("valid"), r.stdout + r.stderr


def test_cli_invalid_certificate(files, capsys):
    model, spec, cert = files
    assert main(["verify", str(model), str(spec), "--certificate", str(cert)]) == 0
    d = json.loads(cert.read_text())
    leaf = next(n for n in d["cases"][0]["nodes"] if n[1] == "bound")
    d["cases"][0]["nodes"].remove(leaf)
    cert.write_text(json.dumps(d))
    capsys.readouterr()
    assert main(["check", str(model), str(spec), str(cert)]) == 1
    out = capsys.readouterr().out
    assert out == f"invalid: case 0 node {leaf[0]}: no entry, so no verdict (neither split nor leaf)\n"


@pytest.mark.parametrize("content, message", [
    ("{not json", "not JSON (Expecting property name enclosed in double quotes at line 1)"),
    ('{"format": "other"}', "not an nnlemma-certificate file (format tag missing or different)"),
    ('{"format": "nnlemma-certificate", "version": 7}', "certificate version 7 is not supported"),
    ('{"format": "nnlemma-certificate", "version": 1}', "field 'model_sha256' is missing or not a str"),
    (None, "no such certificate file"),
])
def test_cli_malformed_certificate(files, capsys, content, message):
    model, spec, cert = files
    if content is not None:
        cert.write_text(content)
    assert main(["check", str(model), str(spec), str(cert)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnlemma: error: ") and message in err and err.count("\n") == 1


def test_cli_missing_model_or_spec(files, capsys):
    model, spec, cert = files
    assert main(["check", str(model) + ".nope", str(spec), str(cert)]) == 2
    assert main(["check", str(model), str(spec) + ".nope", str(cert)]) == 2
    err = capsys.readouterr().err
    assert err.count("nnlemma: error: ") == 2 and "Traceback" not in err


def test_cli_no_certificate_for_sat(files, capsys):
    model, spec, cert = files
    spec.write_text(spec.read_text().rsplit("(assert", 1)[0] + "(assert (>= Y_0 -100))\n")
    assert main(["verify", str(model), str(spec), "--certificate", str(cert)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("sat")
    assert "no certificate written: certificates are for unsat results only (the result is sat; the " \
           "counterexample is the evidence)" in captured.err
    assert not cert.exists()


def test_cli_certificate_help_and_instances(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    assert "counterexample is the evidence" in " ".join(capsys.readouterr().out.split())
    (tmp_path / "i.csv").write_text("m.onnx,p.vnnlib,10\n")
    assert main(["verify", "--instances", str(tmp_path / "i.csv"), "--certificate", str(tmp_path / "c")]) == 2
    assert "--certificate takes a single MODEL SPEC" in capsys.readouterr().err


def test_cli_certificate_folder_missing(files, capsys):
    model, spec, cert = files
    assert main(["verify", str(model), str(spec), "--certificate", str(cert.parent / "no" / "c.json")]) == 2
    assert "the certificate's folder does not exist" in capsys.readouterr().err


# -- ACAS Xu -----------------------------------------------------------------------------------

@pytest.mark.shared_data
def test_acas_prop1_certificate(shared_benchmarks):
    acas = shared_benchmarks / "vnncomp2021" / "acasxu"
    graph, prop = nl.load_model(str(acas / "ACASXU_run2a_1_1_batch_2000.onnx")), vnnlib.load(acas / "prop_1.vnnlib")
    res = verify(graph, prop, certificate=True)
    assert res.status == "unsat"
    cert = C.parse(C.dumps(res.certificate))
    ok = check(graph, prop, cert)
    assert ok.valid and ok.leaves == res.cases[0].leaves, ok.reason
    leaf = first(cert, "bound", last=True)
    leaf[2][0] = nudge(leaf[2][0])
    assert f"node {leaf[0]} row 0: stored bound" in check(graph, prop, cert).reason


@pytest.mark.slow
@pytest.mark.shared_data
def test_acas_prop3_certificate(shared_benchmarks, tmp_path):
    acas = shared_benchmarks / "vnncomp2021" / "acasxu"
    model, spec = acas / "ACASXU_run2a_1_1_batch_2000.onnx", acas / "prop_3.vnnlib"
    cert = tmp_path / "c.json"
    for argv in (["verify", str(model), str(spec), "--certificate", str(cert)],
                 ["check", str(model), str(spec), str(cert)]):
        r = subprocess.run([sys.executable, "-m", "nnlemma.cli", *argv], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("valid  (1 case(s), ")
    graph, prop = nl.load_model(str(model)), vnnlib.load(spec)
    d = C.read(cert)
    leaf = next(n for n in reversed(d["cases"][0]["nodes"]) if n[1] == "bound")
    leaf[2][0] = nudge(leaf[2][0])
    res = check(graph, prop, d)
    assert not res.valid and f"node {leaf[0]} row 0: stored bound" in res.reason
    g = changed_weight(graph, lambda a: np.nextafter(a, UP))
    assert check(g, prop, C.read(cert)).reason.startswith("model digest differs")
