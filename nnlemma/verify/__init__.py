"""Complete verification of VNN-LIB properties for the float32 kernel."""

from .api import VerifyResult, verify
from .bab import Options

__all__ = ["Options", "VerifyResult", "verify"]
