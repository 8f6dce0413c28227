"""Compact models of memory cells: I-V, dI/dV and state dynamics as Numba kernels.

Importing this package registers the device-card models.
"""

from .cell import TwoTerminalCell
from .sinh import SinhCell
from .mosfet import Level1Mosfet
from .access import OneTransistorOneResistor
from .selector import SelectorResistorCell, SinhSelector
from .pcm import PCMModel
from .variability import EnduranceWindow, Variability

__all__ = [
    "SinhCell",
    "Level1Mosfet",
    "OneTransistorOneResistor",
    "SelectorResistorCell",
    "SinhSelector",
    "TwoTerminalCell",
    "PCMModel",
    "EnduranceWindow",
    "Variability",
]
