"""The float32 edge corpus: the values where float32 semantics is most often got wrong.

±0, the smallest and largest subnormals, the smallest normals, values one ulp apart around 1 and
2^24, ±max finite and its predecessor, ±inf and NaN (plus non-canonical NaN patterns). Kernel
tests, encoder-agreement checks (an op's SMT encoding must give the kernel's bits on every pair)
and bound tests all draw from this one list.
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32
MAX_F32 = float(np.finfo(np.float32).max)
SMALLEST_SUB = 2.0 ** -149
LARGEST_SUB = 2.0 ** -126 - 2.0 ** -149
MIN_NORMAL = 2.0 ** -126
_POS = [0.0, SMALLEST_SUB, 2 * SMALLEST_SUB, LARGEST_SUB, MIN_NORMAL, MIN_NORMAL + SMALLEST_SUB,
        2.0 ** -64, 2.0 ** -24, 0.1, 0.5, 1.0 - 2.0 ** -24, 1.0, 1.0 + 2.0 ** -23, 1.0 + 2.0 ** -12,
        1.5, 3.0, 2.0 ** 24, 2.0 ** 24 + 2.0, 2.0 ** 64, 2.0 ** 127, MAX_F32 * (1 - 2.0 ** -24),
        MAX_F32, math.inf]
EDGE = [float(F32(v)) for v in _POS] + [-float(F32(v)) for v in _POS] + [math.nan]
EDGE_F32 = np.array(EDGE, dtype=np.float32)
FINITE_EDGE_F32 = EDGE_F32[np.isfinite(EDGE_F32)]
NAN_PATTERNS = [0x7FC00000, 0xFFC00000, 0x7FC00001, 0x7F800001, 0xFFFFFFFF, 0x7FBFFFFF]
