"""Lyapunov verification of closed-loop systems with neural controllers (discrete and continuous
time): :class:`System` states the problem, :func:`check_system` checks every condition."""

from .run import check_system
from .system import System, loop_graph

__all__ = ["System", "check_system", "loop_graph"]
