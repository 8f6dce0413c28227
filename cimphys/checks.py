"""Argument checks shared by every public entry point.

Each check names the parameter, the value it got and what it expected, and raises
:class:`cimphys.errors.InputError`; none returns NaN or silently clips.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError

__all__ = ["as_array", "as_scalar", "check_shape"]


def _describe_range(low: float, high: float, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    return f"{left}{low:g}, {high:g}{right}"


def _first_bad(values: np.ndarray, mask: np.ndarray) -> str:
    index = np.unravel_index(int(np.argmax(mask)), mask.shape) if values.ndim else ()
    bad = values[index] if values.ndim else values
    where = f" at index {tuple(int(i) for i in index)}" if values.ndim else ""
    count = int(mask.sum())
    more = f" ({count} bad entries)" if count > 1 else ""
    return f"{float(bad)!r}{where}{more}"


def as_array(
    name: str,
    value,
    *,
    unit: str = "",
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    shape: tuple[int, ...] | None = None,
    ndim: int | tuple[int, ...] | None = None,
    dtype=np.float64,
) -> np.ndarray:
    """Return ``value`` as a contiguous float64 array after checking it.

    Parameters
    ----------
    name : str
        Parameter name used in the error message.
    value : array_like
        The value to check.
    unit : str
        SI unit for the message, e.g. ``"ohm"``.
    low, high : float
        Allowed range; ``low_open``/``high_open`` make the bound strict.
    shape : tuple of int, optional
        Required shape (after ``numpy.broadcast_to`` is *not* applied).
    ndim : int or tuple of int, optional
        Allowed number of dimensions.

    Raises
    ------
    InputError
        If the value is not numeric, not finite, out of range or of the wrong shape.
    """
    if np.iscomplexobj(value):  # the cast below would drop the imaginary part with a mere warning
        raise InputError(f"{name}: expected real numbers in {unit or 'SI units'}, got complex values {value!r:.80}")
    try:
        arr = np.asarray(value, dtype=dtype, order="C")
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected numbers in {unit or 'SI units'}, got {value!r:.80}") from exc
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and arr.ndim not in allowed:
        raise InputError(f"{name}: expected {' or '.join(map(str, allowed))}-D, got shape {arr.shape}")
    if shape is not None:
        check_shape(name, arr, shape)
    finite = np.isfinite(arr)
    if not finite.all():
        raise InputError(f"{name}: expected finite values, got {_first_bad(arr, ~finite)}")
    below = arr <= low if low_open else arr < low
    above = arr >= high if high_open else arr > high
    bad = below | above
    if bad.any():
        unit_txt = f" {unit}" if unit else ""
        rng = _describe_range(low, high, low_open, high_open)
        raise InputError(f"{name}: expected values in {rng}{unit_txt}, got {_first_bad(arr, bad)}")
    return arr


def as_scalar(name: str, value, **kwargs) -> float:
    """Check a scalar the way :func:`as_array` checks an array; return a float."""
    arr = as_array(name, value, ndim=0, **kwargs)
    return float(arr)


def check_shape(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise :class:`InputError` unless ``arr.shape == shape``."""
    if tuple(arr.shape) != tuple(shape):
        raise InputError(f"{name}: expected shape {tuple(shape)}, got {tuple(arr.shape)}")
