"""One exception hierarchy for nnlemma.

Every error the library raises on purpose derives from :class:`NnlemmaError`, so a caller (and the
CLI) can catch exactly the failures that are the user's input's fault and report them in one line.
Messages name the offending equation, op, value or file.
"""


class NnlemmaError(Exception):
    """Root of every error nnlemma raises deliberately."""


class IRError(NnlemmaError):
    """An IR graph violates a structural rule: unknown op, bad arity or attribute, a value used
    before its definition or defined twice, or a shape mismatch."""


class ShapeError(IRError):
    """Operand shapes do not fit the op's shape rule."""


class KernelError(NnlemmaError):
    """The float32 kernel could not evaluate an equation (the message names the equation)."""


class ModelLoadError(NnlemmaError):
    """A model file (ONNX, JSON IR, weights) is missing, malformed, unsafe or unsupported."""


class UnsupportedOpError(ModelLoadError):
    """A model uses operators nnlemma has no rules for. ``ops`` lists every ``(op_type, node)``."""

    def __init__(self, message: str, ops: list[tuple[str, str]]):
        super().__init__(message)
        self.ops = ops


class DerivativeError(NnlemmaError):
    """A derivative was asked through an op (or operand) that has no derivative rule."""


class InputError(NnlemmaError):
    """Input data (arrays, shapes, weights) does not fit the model."""


class SpecError(NnlemmaError):
    """A property file (VNN-LIB) is malformed or outside the supported fragment; the message
    names the file and line."""


class CacheError(NnlemmaError):
    """The proof cache file cannot be used: not a SQLite database, not an nnlemma cache, written
    by a newer (unknown) schema version, locked for too long or unreadable; or a put contradicts
    a cached definitive result. The message names the file."""


class SchedulerError(NnlemmaError):
    """A Dask scheduler (``--scheduler ADDR``) cannot be used: unreachable within the connect
    timeout, without workers, or its workers cannot run the chosen solver at the client's
    version. The message names the address."""
