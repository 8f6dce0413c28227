"""cimphys: device-to-circuit physics of compute-in-memory hardware for LLM inference.

The layers are ``cimphys.devices`` (compact models of memory cells), ``cimphys.circuits``
(crossbar nodal analysis and periphery) and ``cimphys.layers`` (transformer matmuls on tiles).
Heavy modules (Numba kernels) are imported on first use, so ``import cimphys`` stays fast.

Examples
--------
>>> import numpy as np, cimphys
>>> xb = cimphys.Crossbar(np.full((4, 3), 1e-5), r_wl=1.0, r_bl=1.0)
>>> sol = xb.solve(np.full(4, 0.2))
"""

from __future__ import annotations

import importlib

from ._version import __version__
from .cards import list_cards, load_circuit, load_device
from .errors import CardError, CimphysWarning, ConvergenceError, InputError

# Public names that live in modules with Numba kernels: imported on first access.
_LAZY = {
    "Crossbar": "cimphys.circuits.crossbar",
    "sweep": "cimphys.sweep",
    "save": "cimphys.results",
    "open": "cimphys.results",
}
_SUBPACKAGES = ("devices", "circuits", "layers")

__all__ = [
    "CardError",
    "CimphysWarning",
    "ConvergenceError",
    "Crossbar",
    "InputError",
    "__version__",
    "list_cards",
    "load_circuit",
    "load_device",
    "open",
    "save",
    "sweep",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"cimphys.{name}")
    raise AttributeError(f"module 'cimphys' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))
