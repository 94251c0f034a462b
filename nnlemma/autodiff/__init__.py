"""Derivatives on the IR: reverse mode (vjp), forward mode (jvp) and grad, as rule tables that
build new graphs of ordinary ops (:mod:`.rules`, :mod:`.transform`)."""

from .rules import JVP_RULES, NO_JVP, NO_VJP, VJP_RULES
from .transform import backward, call, forward_tangents, grad, jvp, vjp

__all__ = ["JVP_RULES", "NO_JVP", "NO_VJP", "VJP_RULES", "backward", "call", "forward_tangents", "grad", "jvp", "vjp"]
