"""The float32 points that span sin or cos over an interval: piece ends around critical points.

sin is strictly monotone between consecutive critical points ``n·π/2`` (n odd), cos between
``n·π/2`` (n even). The kernel is correctly rounded (SEMANTICS.md; the audit's subject, trusted in
TRUST.md), and rounding to nearest is monotone, so on the float32 values between two consecutive
critical points the kernel is monotone too: its range over those floats is spanned by its values
at the first and last of them. A critical point other than cos's at 0 is irrational (π is transcendental), so no
float32 equals one, and the floats of ``[lo, hi]`` split into pieces at each critical point c inside: the
float just below c ends one piece, the float just above c starts the next (at 0, the float 0
ends one piece and starts the next). The range over
``[lo, hi]`` is therefore spanned by the kernel's values at lo, hi and those two floats per c.

Which side of c a float32 x lies on is decided exactly: c is enclosed in ``[c_dn, c_up]`` by MPFR
with directed rounding at 256 bits (``const_pi`` rounded down and up, then ``n·π/2`` rounded
outward), and x is compared with c only when it lies outside the enclosure. The enclosure is
narrower than 2^-120 for every float32-sized c; should a float ever fall inside it, no points are
returned and the caller falls back to the full range.

Intervals holding more than :data:`MAX_CRITICAL` critical points (or an infinite end) are spanned
by the constants ±1 instead: every correctly rounded sin/cos value lies in [−1, 1] (±1 are
floats), so a claim holding −1 and 1 holds the whole finite range.
"""

from __future__ import annotations

import math

import gmpy2
import numpy as np

F32 = np.float32
MAX_CRITICAL = 8
_PREC = 256


def _enclosure(n: int) -> tuple[gmpy2.mpfr, gmpy2.mpfr]:
    """``[c_dn, c_up]`` ∋ n·π/2, exactly (directed rounding throughout)."""
    with gmpy2.context(precision=_PREC, round=gmpy2.RoundDown):
        pi_dn = gmpy2.const_pi()
    with gmpy2.context(precision=_PREC, round=gmpy2.RoundUp):
        pi_up = gmpy2.const_pi()
    small, big = (pi_dn, pi_up) if n >= 0 else (pi_up, pi_dn)
    with gmpy2.context(precision=_PREC, round=gmpy2.RoundDown):
        c_dn = gmpy2.mpfr(n) * small / 2
    with gmpy2.context(precision=_PREC, round=gmpy2.RoundUp):
        c_up = gmpy2.mpfr(n) * big / 2
    return c_dn, c_up


def _below(x: np.float32, enc) -> bool | None:
    """x < c (True), x > c (False), or None when x lies inside c's enclosure."""
    v = gmpy2.mpfr(float(x))
    if v < enc[0]:
        return True
    if v > enc[1]:
        return False
    return None


def critical_points(op: str, lo: np.float32, hi: np.float32) -> list[int] | None:
    """The n with lo < n·π/2 < hi (odd n for sin, even for cos), or None when there are more
    than :data:`MAX_CRITICAL` or the interval has an infinite end."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    parity = 1 if op == "sin" else 0
    # float64 estimates of the range of n, widened by 2: the exact test below filters them
    first = math.floor(2 * float(lo) / math.pi) - 2
    last = math.ceil(2 * float(hi) / math.pi) + 2
    if last - first > 2 * MAX_CRITICAL + 6:
        return None
    out = []
    for n in range(first, last + 1):
        if n % 2 != parity:
            continue
        if n == 0:  # cos at 0: the one rational critical point, itself a float
            if lo < 0 < hi:
                out.append(0)
            continue
        enc = _enclosure(n)
        a, b = _below(lo, enc), _below(hi, enc)
        if a is None or b is None:
            return None
        if a and not b:  # lo < c < hi
            out.append(n)
    return out if len(out) <= MAX_CRITICAL else None


def _float_below(n: int) -> np.float32:
    """The largest float32 below n·π/2."""
    enc = _enclosure(n)
    x = F32(float(enc[0]))
    while True:
        side = _below(x, enc)
        if side is None:
            raise ArithmeticError(f"float32 {x!r} inside the enclosure of {n}·π/2")
        if side:
            break
        x = np.nextafter(x, F32(-np.inf))
    while True:
        up = np.nextafter(x, F32(np.inf))
        side = _below(up, enc)
        if side is None:
            raise ArithmeticError(f"float32 {up!r} inside the enclosure of {n}·π/2")
        if not side:
            return x
        x = up


def spanning_points(op: str, lo: np.float32, hi: np.float32) -> tuple[list[np.float32], list[float]]:
    """``(points, constants)``: the kernel's values at ``points`` together with ``constants``
    span (as an interval hull) every kernel value of ``op`` over the float32 values of
    ``[lo, hi]`` — see the module docstring. Infinite ends are kept as points (the kernel gives
    NaN there, which the claim must then admit)."""
    lo, hi = F32(lo), F32(hi)
    if lo == hi:
        return [lo], []
    crit = None
    try:
        crit = critical_points(op, lo, hi)
    except ArithmeticError:  # pragma: no cover - no float32 is that close to n·π/2
        crit = None
    if crit is None:
        return [v for v in (lo, hi) if not np.isfinite(v)], [-1.0, 1.0]
    points = [lo, hi]
    for n in crit:
        if n == 0:  # cos is monotone on [−π, 0] and on [0, π]: 0 ends both pieces
            points.append(F32(0.0))
            continue
        try:
            b = _float_below(n)
        except ArithmeticError:  # pragma: no cover
            return [lo, hi], [-1.0, 1.0]
        points += [b, np.nextafter(b, F32(np.inf))]
    return points, []
