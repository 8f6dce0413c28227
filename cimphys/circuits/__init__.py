"""Circuits: crossbar nodal analysis with wire resistance, and the periphery around it.

Importing this package registers the circuit-card models.  ``Crossbar`` and
``CrossbarSolution`` (modules with Numba kernels) are imported on first access.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Crossbar": "cimphys.circuits.crossbar",
    "CrossbarSolution": "cimphys.circuits.crossbar",
}

__all__ = ["Crossbar", "CrossbarSolution"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cimphys.circuits' has no attribute {name!r}")
