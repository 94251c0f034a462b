"""The result of one solver call, independent of the solver."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction


@dataclass
class Outcome:
    """``status`` is ``unsat``, ``sat`` or ``unknown``; ``model`` maps each variable name to its
    value (FP: the IEEE bit pattern as an int, NaN as the canonical pattern; Real: a Fraction;
    Bool: a bool) when ``sat``; ``reason`` says why an ``unknown`` is unknown."""
    status: str
    seconds: float
    solver: str
    model: dict[str, int | Fraction | bool] = field(default_factory=dict)
    reason: str = ""
