"""The kernel audit: the kernel agrees with the independent references on targeted ranges of
bit patterns (zeros, subnormals, ±1, the overflow edge, ±inf and NaNs, large trig arguments), a
planted kernel bug is found with its input, the symbolic check proves every encodable op and
refutes a planted encoder bug, and the CLI writes the documented JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnlemma.audit import kernel as K
from nnlemma.audit.references import REFERENCES, _round_exact, _mp_value
from nnlemma.cli import main

F32 = np.float32
RANGES = [(0x00000000, 0x00010000), (0x7F7FF000, 0x7F801000), (0x7FFFF000, 0x80001000),  # 0, max/inf, NaN|-0
          (0x807FF000, 0x80801000), (0x3F7F0000, 0x3F810000), (0xBF7F0000, 0xBF810000),    # subnormal edge, ±1
          (0xFF7FF000, 0xFF801000), (0xFFFFF000, 0xFFFFFFFF + 1),                          # -max/-inf, NaNs
          (0x42B00000, 0x42B40000), (0x48000000, 0x48000400), (0xC2CE0000, 0xC2D00000)]    # exp overflow, sin 2^17, underflow


@pytest.mark.parametrize("op", sorted(REFERENCES))
def test_kernel_matches_reference_on_targeted_ranges(op):
    for attrs in K.settings(op):
        for a, b in RANGES:
            r = K.audit_unary(op, attrs, a, b, jobs=1)
            assert r["mismatches"] == 0, (op, attrs, r["examples"])
            assert r["checked"] == b - a


@pytest.mark.parametrize("op", K.BINARY)
def test_binary_ops_match_on_edge_corpus_and_random_pairs(op):
    r = K.audit_binary(op, n_random=1 << 16)
    assert r["mismatches"] == 0, r["examples"]


def test_planted_kernel_bug_is_found_with_its_input(monkeypatch):
    """relu that returns its input for −0 (numpy's maximum does, on some builds): the audit
    reports 0x80000000 with both results."""
    from nnlemma.kernels import KERNEL_RULES
    good = KERNEL_RULES["relu"]
    monkeypatch.setitem(KERNEL_RULES, "relu", lambda x: np.where(x.view(np.uint32) == 0x80000000, x, good(x)))
    r = K.audit_unary("relu", {}, 0x7FFFFFF0, 0x80000010, jobs=1)
    assert r["mismatches"] == 1
    assert r["examples"][0] == {"input": "0x80000000", "kernel": "0x80000000", "reference": "0x00000000"}


def test_transcendental_reference_slow_path_agrees_with_mpfr():
    """The reference's mpmath rounding against the kernel's MPFR evaluation on arguments whose
    values lie near float32 midpoints or need big range reductions."""
    from nnlemma.kernels.transcendental import mpfr_eval
    rng = np.random.default_rng(0)
    xs = rng.integers(0, 1 << 32, 300, dtype=np.uint64).astype(np.uint32).view(F32)
    xs = [float(x) for x in xs if np.isfinite(x)]
    for name in ("exp", "tanh", "sigmoid", "sin", "cos"):
        for x in xs[:60]:
            want = F32(mpfr_eval(name, x))
            got = _round_exact(_mp_value(name, x))
            assert want.view(np.uint32) == got.view(np.uint32) or (np.isnan(want) and np.isnan(got)), (name, x)


def test_values_just_below_a_midpoint_round_down():
    """sigmoid(3·2^-23) = 1/2 + 1.5·2^-24 − (a 2^-69 term): just below the midpoint between two
    float32 neighbours of 1/2, so it rounds down. The exhaustive benchmark found the reference
    rounding it up when it re-rounded mpmath's 120-bit value to 53 bits (75 such inputs)."""
    x = np.array([0x34C00000, 0x35600000, 0x36780000], np.uint32).view(F32)
    got = REFERENCES["sigmoid"](x).view(np.uint32)
    assert [hex(int(v)) for v in got] == ["0x3f000001", "0x3f000003", "0x3f00000f"]
    r = K.audit_unary("sigmoid", {}, 0x34000000, 0x37000000, jobs=1, stride=97)
    assert r["mismatches"] == 0, r["examples"]


def test_symbolic_check_proves_every_encodable_op_and_refutes_a_planted_encoder_bug(monkeypatch):
    from encoders import fp32
    from encoders import terms as T
    from obligations.encoder_agreement import REFERENCE, agreement
    from solvers.z3_backend import Z3Solver
    z3 = Z3Solver()
    for op in REFERENCE:
        for attrs in K.settings(op) if op in K.UNARY else [{}]:
            assert z3.check(agreement(op, attrs).violation, 60).status == "unsat", (op, attrs)
    # relu encoded with fp.geq: relu(−0) would be −0
    monkeypatch.setitem(fp32.FP_RULES, "relu",
                        lambda attrs, x: T.ite(T.fp_geq(x, fp32.POS_ZERO), x, T.ite(T.is_nan(x), fp32.NAN, fp32.POS_ZERO)))
    out = z3.check(agreement("relu").violation, 60)
    assert out.status == "sat" and out.model["x0"] == 0x80000000


def test_cli_writes_json_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "audit.json"
    assert main(["audit", "kernel", "--op", "relu", "--op", "exp", "--op", "maximum", "--range",
                 "0x3f800000:0x3f880000", "--quiet", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert set(d["ops"]) == {"relu", "exp", "maximum"}
    assert d["ops"]["relu"]["checked"] == 0x80000 and d["ops"]["relu"]["mismatches"] == 0
    assert d["ops"]["relu"]["symbolic"]["status"] == "proved"
    assert d["ops"]["exp"]["symbolic"]["status"] == "n/a"
    assert main(["audit", "kernel", "--op", "gelu", "--quiet"]) == 2
    assert main(["audit", "kernel", "--op", "relu", "--range", "5:3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown op 'gelu'" in err and "--range 5:3" in err
