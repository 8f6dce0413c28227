"""Circuits: crossbar nodal analysis with wire resistance, and the periphery around it.

Importing this package registers the circuit-card models.  ``Crossbar`` and
``CrossbarSolution`` (modules with Numba kernels) are imported on first access.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Crossbar": "cimphys.circuits.crossbar",
    "CrossbarSolution": "cimphys.circuits.crossbar",
    "ADC": "cimphys.circuits.adc",
    "DAC": "cimphys.circuits.dac",
    "TIA": "cimphys.circuits.sense",
    "ChargeIntegrator": "cimphys.circuits.sense",
    "LoadResistor": "cimphys.circuits.sense",
    "LatchComparator": "cimphys.circuits.sense",
    "EnergyModel": "cimphys.circuits.energy",
    "Tile": "cimphys.circuits.tile",
    "characterise": "cimphys.circuits.characterise",
    "NewtonOptions": "cimphys.circuits.newton",
    "NonlinearSolution": "cimphys.circuits.newton",
    "solve_nonlinear": "cimphys.circuits.newton",
    "write_bias": "cimphys.circuits.sneak",
    "read_margin": "cimphys.circuits.sneak",
}

# Card models of the periphery: the 'adc' and 'tile' circuit models register on import.
importlib.import_module("cimphys.circuits.adc")
importlib.import_module("cimphys.circuits.tile")

__all__ = ["Crossbar", "CrossbarSolution", "ADC", "DAC", "TIA", "ChargeIntegrator", "LoadResistor",
           "LatchComparator", "EnergyModel", "Tile", "characterise", "NewtonOptions", "NonlinearSolution",
           "solve_nonlinear", "write_bias", "read_margin"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cimphys.circuits' has no attribute {name!r}")
