"""The executable float32 semantics: one rule per op (see SEMANTICS.md)."""

from .float32 import CANONICAL_NAN, bits, canon, from_bits, same_bits
from .table import KERNEL_RULES

__all__ = ["CANONICAL_NAN", "KERNEL_RULES", "bits", "canon", "from_bits", "same_bits"]
