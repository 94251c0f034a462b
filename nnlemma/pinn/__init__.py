"""Certified residual bounds for physics-informed networks: ``nnlemma pinn PROBLEM.py``."""

from .problem import PDE, Condition
from .run import box_bounds, check_problem
from .search import Options

__all__ = ["PDE", "Condition", "Options", "box_bounds", "check_problem"]
