"""Sound bounds on every value of a graph over an input box (float32 or real semantics):
``ibp`` (interval), ``crown`` (linear, backward) and ``alpha_crown`` (optimised slopes)."""

from .crown import CrownResult, crown
from .ibp import IBP_RULES, BoundsResult, ibp
from .interval import FLOAT32, REAL, Interval
from .optimize import alpha_crown

__all__ = ["BoundsResult", "CrownResult", "FLOAT32", "IBP_RULES", "Interval", "REAL", "alpha_crown", "crown", "ibp"]
