"""Exceptions and warnings shared by every layer of cimphys."""

from __future__ import annotations

__all__ = ["CacheWarning", "CardError", "CimphysWarning", "ConvergenceError", "InputError"]


class CimphysWarning(UserWarning):
    """A warning raised by cimphys itself (the test suite turns these into errors)."""


class CacheWarning(UserWarning):
    """A disk cache entry was refused (damaged, edited, foreign) or the cache folder is unwritable.

    The run goes on (the entry is recomputed, or the cache is skipped), so this is deliberately
    not a :class:`CimphysWarning`: the test suite does not turn it into an error, and tests that
    damage a cache expect it with ``pytest.warns``.
    """


class InputError(ValueError):
    """An argument is out of its physical range, non-finite or of the wrong shape.

    The message names the parameter, the offending value and what was expected.
    """


class CardError(ValueError):
    """A device or circuit card could not be read or failed its checks.

    The message names the file, the key, the value and what was expected.
    """


class ConvergenceError(RuntimeError):
    """A nonlinear or time-stepping solve did not meet its tolerance.

    Attributes
    ----------
    iterations : int
        Iterations (or steps) spent before giving up.
    residual : float
        The last residual norm, in the solver's own units (stated in the message).
    """

    def __init__(self, message: str, *, iterations: int, residual: float):
        super().__init__(f"{message} (after {iterations} iterations, residual {residual:.3e})")
        self.iterations = iterations
        self.residual = residual
