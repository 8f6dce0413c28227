"""The one place that sets Numba's options for every kernel in cimphys.

Kernels are compiled with ``cache=True`` so that a second process starts warm, and never
with the ``nnan``/``ninf`` fast-math flags: open circuits and the checks for non-finite
values need IEEE semantics.  ``prange`` is used only in the outermost loop of a kernel.
"""

from __future__ import annotations

import numba

__all__ = ["jit", "jit_parallel", "prange"]

prange = numba.prange


def jit(*args, **kwargs):
    """``numba.njit`` with the package policy (cache on, no object mode)."""
    kwargs.setdefault("cache", True)
    kwargs.setdefault("nogil", True)
    return numba.njit(*args, **kwargs)


def jit_parallel(*args, **kwargs):
    """``jit`` with ``parallel=True``, for kernels whose outer loop is a ``prange``."""
    kwargs.setdefault("parallel", True)
    return jit(*args, **kwargs)
