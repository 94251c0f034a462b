"""The Bitwuzla and cvc5 backends (and Z3 alongside them) on exact, known answers.

Encoder agreement through every solver: on a selection of float32 edge values, each binary op's
encoding determines ``y`` and ``y`` is the kernel's bits (every NaN equal); once with constant
operands (all pairs in one formula) and once with free operands, so the solver's own FP circuit is
exercised rather than its constant folding. Then models of special values, a bounded ReLU
obligation replayed on the kernel, Real arithmetic, timeouts, malformed scripts, crashes, and
cross-checking with a solver that lies.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from encoders import fp32
from encoders import terms as T
from encoders.smtlib import script
from nnlemma.kernels import KERNEL_RULES
from nnlemma.kernels.edge import EDGE_F32, NAN_PATTERNS
from solvers import get_solver
from solvers.cross_check import cross_check
from solvers.outcome import Outcome
from solvers.text_backends import TEXT_BACKENDS, BitwuzlaSolver, Cvc5Solver
from solvers.z3_backend import Z3Solver

CANON = 0x7FC00000
SOLVERS = {"z3": Z3Solver, "bitwuzla": BitwuzlaSolver, "cvc5": Cvc5Solver}
ALL = list(SOLVERS)
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum"]

_E = [int(p) for p in EDGE_F32.view(np.uint32)]
# ±0, subnormals, smallest normal, around 1, 3, 2^24, near ±max, ±inf, NaN, non-canonical NaNs
SEL = sorted({0x0, 0x80000000, 0x1, 0x80000001, 0x7FFFFF, 0x807FFFFF, 0x800000, 0x3F7FFFFF,
              0x3F800000, 0xBF800001, 0x40400000, 0x4B800000, 0xFF7FFFFE, 0x7F7FFFFF,
              0x7F800000, 0xFF800000, CANON} | set(NAN_PATTERNS[2:5]))
assert all(p in _E or p in NAN_PATTERNS for p in SEL)


def f32(p: int) -> np.float32:
    return np.array(p, dtype=np.uint32).view(np.float32)


def bits(x) -> int:
    return int(np.asarray(x, np.float32).view(np.uint32))


def kernel_bits(op: str, a: int, b: int) -> int:
    k = bits(KERNEL_RULES[op](f32(a), f32(b)))
    return CANON if T.is_nan_bits(k, T.F32) else k


def show(p: int) -> str:
    return f"0x{p:08x} ({f32(p)!r})"


@pytest.mark.parametrize("solver", ALL)
@pytest.mark.parametrize("op", BINARY)
def test_encoding_gives_kernel_bits_constant_operands(solver, op):
    pairs = list(itertools.product(SEL, SEL))
    ys = [T.var(f"y{i}", T.F32) for i in range(len(pairs))]
    want = [kernel_bits(op, a, b) for a, b in pairs]
    eqs = [T.eq(y, fp32.FP_RULES[op]({}, T.fp_bits(a), T.fp_bits(b))) for y, (a, b) in zip(ys, pairs)]
    out = SOLVERS[solver]().check(T.and_(*eqs), timeout_s=30)
    assert out.status == "sat", out
    bad = [f"{op}({show(a)}, {show(b)}): solver {show(out.model[y.payload])}, kernel {show(k)}"
           for y, (a, b), k in zip(ys, pairs, want) if out.model[y.payload] != k]
    assert not bad, "\n".join(bad)
    differs = T.or_(*(T.not_(T.eq(y, T.fp_bits(k))) for y, k in zip(ys, want)))
    out = SOLVERS[solver]().check(T.and_(*eqs, differs), timeout_s=30)
    assert out.status == "unsat", f"{op}: an encoding is not determined: {out}"


_SLOW_SYMBOLIC = {("z3", "div"), ("cvc5", "div")}  # ~1.5 s each


@pytest.mark.parametrize("solver,op", [
    pytest.param(s, op, marks=[pytest.mark.slow] if (s, op) in _SLOW_SYMBOLIC else [])
    for s in ALL for op in BINARY])
def test_encoding_gives_kernel_bits_free_operands(solver, op):
    """a, b free: the solver bit-blasts the op once; no selected pair may give other bits."""
    a, b, y = (T.var(n, T.F32) for n in "aby")
    cases = [T.and_(T.eq(a, T.fp_bits(p)), T.eq(b, T.fp_bits(q)),
                    T.not_(T.eq(y, T.fp_bits(kernel_bits(op, p, q)))))
             for p, q in itertools.product(SEL, SEL)]
    out = SOLVERS[solver]().check(T.and_(T.eq(y, fp32.FP_RULES[op]({}, a, b)), T.or_(*cases)),
                                  timeout_s=30)
    assert out.status == "unsat", (
        f"{op}: {solver} disagrees with the kernel: {out.status} "
        + (f"{op}({show(out.model['a'])}, {show(out.model['b'])}) = {show(out.model['y'])}"
           if out.status == "sat" else out.reason))


SPECIAL = [0x0, 0x80000000, 0x1, 0x80000001, 0x7FFFFF, 0x807FFFFF, 0x7F800000, 0xFF800000,
           0x7F7FFFFF, 0x3DCCCCCD] + NAN_PATTERNS


@pytest.mark.parametrize("solver", ALL)
def test_model_bits_of_special_values(solver):
    vs = [T.var(f"v{i}", T.F32) for i in range(len(SPECIAL))]
    out = SOLVERS[solver]().check(T.and_(*(T.eq(v, T.fp_bits(p)) for v, p in zip(vs, SPECIAL))), 10)
    assert out.status == "sat"
    want = {v.payload: CANON if T.is_nan_bits(p, T.F32) else p for v, p in zip(vs, SPECIAL)}
    assert out.model == want


@pytest.mark.parametrize("solver", ["bitwuzla", "cvc5"])
def test_check_text_reads_declared_constants(solver):
    text = ("(set-logic QF_FP)\n(declare-fun x () (_ FloatingPoint 8 24))\n(declare-fun p () Bool)\n"
            "(declare-const n (_ FloatingPoint 11 53))\n"
            "(assert (and p (fp.isSubnormal x) (fp.isNegative x) (fp.isNaN n)))\n"
            "(assert (fp.lt x (fp.neg (fp #b0 #b00000000 #b11111111111111111111110))))\n"
            "(check-sat)\n(exit)\n")
    out = SOLVERS[solver]().check_text(text, 10)
    assert out.status == "sat"
    assert out.model == {"x": 0x807FFFFF, "p": True, "n": T.nan_bits(T.F64)}


@pytest.mark.parametrize("solver", ALL)
def test_bounded_relu_obligation(solver):
    x = T.var("x", T.F32)
    box = T.and_(T.fp_geq(x, fp32.const(-1.0)), T.fp_leq(x, fp32.const(1.0)))
    out = SOLVERS[solver]().check(T.and_(box, T.fp_gt(fp32.relu(x), fp32.const(0.5))), 10)
    assert out.status == "sat"
    xv = f32(out.model["x"])
    assert -1.0 <= xv <= 1.0 and KERNEL_RULES["relu"](xv) > np.float32(0.5)
    out = SOLVERS[solver]().check(T.and_(box, T.fp_gt(fp32.relu(x), fp32.const(1.0))), 10)
    assert out.status == "unsat"


@pytest.mark.parametrize("solver", ["z3", "cvc5"])
def test_real_arithmetic(solver):
    x, third = T.var("x", T.REAL), T.real(Fraction(1, 3))
    assert SOLVERS[solver]().check(T.and_(T.r_ge(x, third), T.r_lt(x, third)), 10).status == "unsat"
    out = SOLVERS[solver]().check(T.eq(T.r_mul(x, T.real(3)), T.real(1)), 10)
    assert out.status == "sat" and out.model == {"x": Fraction(1, 3)}


@pytest.mark.parametrize("solver", ["z3", "cvc5"])
def test_fp_to_real_under_finiteness_guard(solver):
    """Mixed FP/Real (logic ALL): the real value of float32(0.1) is exactly its binary value."""
    x = T.var("x", T.F32)
    r, fact = T.fp_to_real_guarded(x, "r")
    out = SOLVERS[solver]().check(T.and_(fact, T.eq(x, fp32.const(0.1))), 10)
    assert out.status == "sat" and out.model["r"] == Fraction(float(np.float32(0.1)))
    lie = T.and_(fact, T.eq(x, fp32.const(0.1)), T.r_le(r, T.real(Fraction(1, 10))))
    assert SOLVERS[solver]().check(lie, 10).status == "unsat"  # float32(0.1) > 1/10


def test_bitwuzla_refuses_real_arithmetic():
    x = T.var("x", T.REAL)
    out = BitwuzlaSolver().check(T.r_ge(x, T.real(1)), 10)
    assert out.status == "unknown" and "Real" in out.reason


def _hard(n: int = 24) -> T.Term:
    """A fold of n multiply-adds of free, bounded variables hitting a constant (cvc5: ~14 s)."""
    xs = [T.var(f"x{i}", T.F32) for i in range(n)]
    ws = [T.var(f"w{i}", T.F32) for i in range(n)]
    bounded = [T.fp_lt(T.fp_abs(v), fp32.const(100.0)) for v in xs + ws]
    return T.and_(T.eq(fp32.fold(xs, ws), fp32.const(1234.567)), *bounded)


@pytest.mark.parametrize("solver", ALL)
def test_timeout_is_unknown(solver):
    out = SOLVERS[solver]().check(_hard(), timeout_s=0.05)
    assert out.status == "unknown" and out.reason and out.seconds < 5


@pytest.mark.parametrize("solver", ALL)
@pytest.mark.parametrize("text", [
    "(set-logic QF_FP)\n(declare-fun x () (_ FloatingPoint 8 24))\n(assert (fp.lt x (_ +zero 8 24))\n",
    "(set-logic QF_FP)\n(assert (fp.isNaN y))\n(check-sat)\n",
    "this is not SMT-LIB",
], ids=["unbalanced", "undeclared", "garbage"])
def test_malformed_script_is_unknown(solver, text):
    out = SOLVERS[solver]().check_text(text, 5)
    assert out.status == "unknown" and out.reason


@pytest.mark.parametrize("cls", [BitwuzlaSolver, Cvc5Solver])
def test_a_crash_is_unknown_never_a_proof(cls, monkeypatch):
    def boom(self, smt2, timeout_s):
        raise RuntimeError("segfault-ish")
    monkeypatch.setattr(cls, "_solve", boom)
    out = cls().check(T.FALSE, 5)
    assert out.status == "unknown" and "segfault-ish" in out.reason


def test_check_text_runs_the_exported_script():
    x = T.var("x", T.F32)
    text = script(T.and_(T.is_nan(x), T.not_(T.is_nan(x))), logic="QF_FP")
    for name in ("bitwuzla", "cvc5"):
        assert get_solver(name).check_text(text, 5).status == "unsat"


def test_registry_and_versions():
    assert TEXT_BACKENDS == {"bitwuzla": BitwuzlaSolver, "cvc5": Cvc5Solver}
    for name in ("bitwuzla", "cvc5"):
        s = get_solver(name)
        assert s.name == name and s.version.startswith(name + "-") and len(s.version) > len(name) + 1


class _Liar:
    """Answers the opposite of what cvc5 answers."""
    name = "liar"

    def check(self, formula, timeout_s):
        real = Cvc5Solver().check(formula, timeout_s).status
        return Outcome({"sat": "unsat", "unsat": "sat"}.get(real, real), 0.0, self.name)


class _Shrug:
    name = "shrug"

    def check(self, formula, timeout_s):
        return Outcome("unknown", 0.0, self.name, reason="no idea")


def test_cross_check_agrees_and_catches_a_liar(caplog):
    x = T.var("x", T.F32)
    sat_f, unsat_f = T.is_nan(x), T.and_(T.is_nan(x), T.fp_eq(x, x))
    solvers = [Z3Solver(), BitwuzlaSolver(), Cvc5Solver(), _Shrug()]
    for f, want in ((sat_f, "sat"), (unsat_f, "unsat")):
        r = cross_check(f, solvers, 10)
        assert r["agree"] and r["disagreement"] is None
        assert r["statuses"] == {"z3": want, "bitwuzla": want, "cvc5": want, "shrug": "unknown"}
    r = cross_check(unsat_f, [BitwuzlaSolver(), _Liar()], 10)
    assert not r["agree"] and r["statuses"] == {"bitwuzla": "unsat", "liar": "sat"}
    assert "liar" in r["disagreement"] and "bitwuzla" in r["disagreement"]
    assert "DISAGREEMENT" in caplog.text


def test_pysmt_backends_decide_real_obligations_and_refuse_fp():
    """pysmt (z3 and cvc5 underneath) on the QF_LRA composition lemmas: same answers, exact
    models; an FP script is unknown, never a proof."""
    from fractions import Fraction
    from solvers.pysmt_backend import PysmtSolver
    y = T.var("y", T.REAL)
    sat = T.and_(T.r_le(T.real(Fraction(1, 3)), y), T.r_le(T.r_mul(T.real(3), y), T.real(1)))
    unsat = T.and_(T.r_le(T.real(Fraction(1, 3)), y), T.r_lt(T.r_mul(T.real(3), y), T.real(1)))
    for backend in ("z3", "cvc5"):
        s = PysmtSolver(backend)
        out = s.check(sat, 10)
        assert out.status == "sat" and out.model["y"] == Fraction(1, 3), out
        assert s.check(unsat, 10).status == "unsat"
        x = T.var("x", T.F32)
        fp = s.check(T.fp_gt(x, T.fp_bits(0)), 10)
        assert fp.status == "unknown" and "FloatingPoint" in fp.reason
        assert s.check_text("(assert (bogus", 10).status == "unknown"
