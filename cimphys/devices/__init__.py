"""Compact models of memory cells: I-V, dI/dV and state dynamics as Numba kernels.

Importing this package registers the device-card models.
"""

from .cell import TwoTerminalCell
from .sinh import SinhCell
from .mosfet import Level1Mosfet
from .access import OneTransistorOneResistor
from .selector import SelectorMemoryCell, SelectorResistorCell, SinhSelector
from .pcm import PCMModel
from .variability import EnduranceWindow, Variability
from .drift import LinearIonDrift
from .team import TEAM, VTEAM
from .yakopcic import Yakopcic
from .stanford_pku import StanfordPKU, StanfordPKUCell
from .dynamic_model import DynamicModel, FixedStateCell
from .waveforms import Waveform, pulse_train, pwl, sinusoid, triangle
from .dynamics import integrate
from .programming import potentiation_depression, write_verify
from .calibration import calibrate
from .retention import RetentionModel
from .cell_array import CellArrayModel, ProgrammedCells

__all__ = [
    "SinhCell",
    "Level1Mosfet",
    "OneTransistorOneResistor",
    "SelectorMemoryCell",
    "SelectorResistorCell",
    "SinhSelector",
    "TwoTerminalCell",
    "PCMModel",
    "EnduranceWindow",
    "Variability",
    "DynamicModel",
    "FixedStateCell",
    "LinearIonDrift",
    "StanfordPKU",
    "StanfordPKUCell",
    "TEAM",
    "VTEAM",
    "Waveform",
    "Yakopcic",
    "integrate",
    "pulse_train",
    "pwl",
    "sinusoid",
    "triangle",
    "RetentionModel",
    "CellArrayModel",
    "ProgrammedCells",
    "calibrate",
    "potentiation_depression",
    "write_verify",
]
