"""Scalar helpers shared by the device kernels.

``exp_fast`` and ``sinh_cosh`` are written in plain arithmetic (no libm call), so that LLVM can
vectorise a loop over cells that uses them; Numba would otherwise call the scalar libm ``exp``
once per cell, several times slower than NumPy's SIMD ``exp``.
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..._numba import jit

__all__ = ["exp_fast", "int_power", "power", "sinh_cosh"]


@jit(inline="always")
def power(base, e):
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


@jit(inline="always")
def int_power(base, n):
    """``base ** n`` for an integer ``0 <= n < 128``: seven rounds of squaring, no branch.

    The same products as :func:`power` (times 1.0 for the zero bits, exact), so the same
    result to the bit, but with no loop whose trip count depends on ``n`` and no branch: a loop
    over cells that calls it with one ``n`` vectorises.  With ``n`` a compile-time constant,
    LLVM folds the rounds to the squarings and products that ``n`` needs (2p = 20: four and
    two).
    """
    result = 1.0
    b = base
    for i in range(7):
        f = b if (n >> i) & 1 else 1.0
        result = result * f
        b = b * b
    return result


@intrinsic
def _bits_to_float(typingctx, bits):
    """The float64 whose IEEE-754 bit pattern is the int64 ``bits``."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@jit(inline="always")
def exp_fast(z):
    """``exp(z)`` to about 1 ulp, in arithmetic that vectorises (no libm call, no branch).

    Cody-Waite reduction ``z = n ln2 + r``, ``|r| <= ln2/2``, Taylor polynomial of degree 13
    (truncation ``r^14/14! < 4e-18``), scaled by ``2^n`` built from its bit pattern in two
    halves so that subnormal results and overflow to inf come out right.  ``z`` is clipped to
    ``[-746, 710]`` (exp is 0 or inf beyond); a NaN gives a finite number, so callers must check
    their inputs for NaN themselves (the I-V loops do).  Reference: W. J. Cody, W. Waite,
    "Software Manual for the Elementary Functions", Prentice-Hall (1980), ch. 6.
    """
    z = z if z > -746.0 else -746.0  # also maps NaN to -746
    z = z if z < 710.0 else 710.0
    shifter = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer
    nf = (z * 1.4426950408889634 + shifter) - shifter
    r = (z - nf * 0.6931471803691238) - nf * 1.9082149292705877e-10  # ln2 = hi + lo, hi*n exact
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    n = int(nf)
    n1 = n >> 1
    n2 = n - n1
    return p * _bits_to_float((n1 + 1023) << 52) * _bits_to_float((n2 + 1023) << 52)


@jit(inline="always")
def sinh_cosh(z):
    """``(sinh z, cosh z)`` from :func:`exp_fast` of ``z`` and ``-z``, accurate to a few ulp.

    For ``|z| < 0.5`` sinh is its odd Taylor series to ``z^15`` (truncation below 1e-16
    relative); beyond, ``(e - 1/e)/2`` loses at most a factor coth(0.5) ~ 2.2 in relative
    error.  Both branches are computed and one selected, so loops vectorise.  Both overflow
    to inf for ``|z| > 709.78`` (exact sinh/cosh do only beyond 710.48).  ``exp(-z)`` is a
    second polynomial rather than ``1/exp(z)``: no division (which Numba's Python error model
    would guard with a branch) and no 1/0 at underflow.
    """
    e = exp_fast(z)
    inv = exp_fast(-z)
    z2 = z * z
    s = 1.0 / 1307674368000.0
    s = s * z2 + 1.0 / 6227020800.0
    s = s * z2 + 1.0 / 39916800.0
    s = s * z2 + 1.0 / 362880.0
    s = s * z2 + 1.0 / 5040.0
    s = s * z2 + 1.0 / 120.0
    s = s * z2 + 1.0 / 6.0
    small = z + z * z2 * s
    big = 0.5 * (e - inv)
    return (small if abs(z) < 0.5 else big), 0.5 * (e + inv)


@jit(inline="always")
def bracketed_newton_step(x, f, df, lo, hi):
    """One Newton step on ``f(x) = 0`` safeguarded by bisection: ``(x_new, lo, hi)``.

    ``f`` rises with ``x`` on the bracket ``[lo, hi]`` that holds the root, ``df = f'(x)``.
    The bracket shrinks to the side of the root (``f > 0``: the root lies below ``x``); a
    Newton step that leaves it, or a slope that is not positive, gives way to bisection, so
    the bracket at least halves every other step.
    """
    if f > 0.0:
        hi = x
    else:
        lo = x
    xn = x - f / df if df > 0.0 else 0.5 * (lo + hi)
    if not (lo < xn < hi):
        xn = 0.5 * (lo + hi)
    return xn, lo, hi
