"""Scalar helpers shared by the device kernels."""

from __future__ import annotations

import math

from .._numba import jit

__all__ = ["_pow"]


@jit(inline="always")
def _pow(base, e):
    """``base ** e`` for base >= 0; integer exponents up to 64 by repeated squaring.

    Model exponents are mostly small integers (VTEAM alpha = 3, 4, 10; windows 2p = 2, 20);
    squaring is exact to rounding and several times faster than ``pow``.
    """
    n = int(e)
    if n == e and 0 <= n <= 64:
        result = 1.0
        b = base
        while n > 0:
            if n & 1:
                result *= b
            b *= b
            n >>= 1
        return result
    return math.pow(base, e)
