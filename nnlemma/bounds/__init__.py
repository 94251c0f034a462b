"""Sound bounds on every value of a graph over an input box (float32 or real semantics)."""

from .ibp import IBP_RULES, BoundsResult, ibp
from .interval import FLOAT32, REAL, Interval

__all__ = ["BoundsResult", "FLOAT32", "IBP_RULES", "Interval", "REAL", "ibp"]
