"""What a ``tile`` card says: the array, its periphery and how its columns are sensed.

A tile card (``circuits/*.toml``, model ``tile``) holds the array in ``[parameters]`` and the
periphery in the tables ``[dac]``, ``[sense]``, ``[adc]`` (required) and ``[energy]``; an
optional ``[device]`` table names the device card of its memory cells.  :class:`TileDesign`
reads a card once into the objects every tile of that card shares: the DAC, sense-amplifier and
ADC prototypes (their per-tile mismatch is drawn by :class:`~cimphys.circuits.tile.TileStack`),
the energy model, and the **sensing scheme** (``[sense] mode``):

- ``"column"``: every physical column has its own sense amplifier and ADC channel; a
  differential card subtracts the codes of a column pair digitally.
- ``"pair"`` (differential cards): one differential sense amplifier per column pair takes
  ``I+ - I-``; one conversion per pair (Wan et al., Nature 608, 504 (2022); Le Gallo et al.,
  Nat. Electron. 6, 680 (2023)).
- ``"reference"`` (single-ended cards): the last column holds a reference level whose current
  every other column's sense amplifier subtracts (offset encoding; Shafiee et al., ISCA 2016).

The scheme is a matrix ``S`` (channels x columns) of 0/+1/-1 that maps physical column currents
to sense-amplifier input currents, ``i_sense = S i_col``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from ..cards import Card, ModelSpec, Parameter, load_circuit, register_model
from ..checks import as_array
from ..errors import CardError, InputError
from .adc import ADC, ADC_PARAMETERS
from .dac import DAC, DAC_PARAMETERS
from .energy import ENERGY_PARAMETERS, EnergyModel
from .sense import SENSE_PARAMETERS, sense_from_parameters
from .tile_cells import CELL_PARAMETERS, TileCells
from .tile_characterise import Wires

__all__ = ["DEVICE_PARAMETERS", "SENSE_MODES", "SPEC", "TileDesign", "section", "weights_to_conductances"]

SENSE_MODES = ("column", "pair", "reference")

DEVICE_PARAMETERS = (
    Parameter("card", "1", "device card of the memory cells (name or path; empty: ideal linear cells)",
              default="", kind="str"),
)

SPEC = register_model(
    ModelSpec(
        name="tile",
        kind="circuit",
        doc="a crossbar tile with drivers, sense amplifiers and ADCs",
        parameters=(
            Parameter("rows", "1", "word lines M", kind="int", low=1, high=1 << 16),
            Parameter("cols", "1", "bit lines N (physical; pairs when differential)", kind="int", low=1, high=1 << 16),
            Parameter("differential", "1", "columns (2k, 2k+1) form a (G+, G-) pair", default=False, kind="bool"),
            Parameter("g_min_s", "S", "lowest programmable conductance", low=0.0, high=1.0),
            Parameter("g_max_s", "S", "highest programmable conductance", low=0.0, high=1.0, low_open=True),
            Parameter("v_read_v", "V", "read voltage (top DAC code)", low=0.0, high=10.0, low_open=True),
            Parameter("r_wire_per_cell_ohm", "ohm", "WL and BL wire resistance per cell pitch", low=0.0, high=1e4),
            Parameter("r_driver_ohm", "ohm", "WL driver output resistance", default=0.0, low=0.0, high=1e6),
            Parameter("t_read_s", "s", "read (integration) time per phase", low=0.0, high=1.0, low_open=True),
            Parameter("input_bits", "1", "default input resolution", default=8, kind="int", low=1, high=32),
        ),
        sections={"dac": DAC_PARAMETERS, "sense": SENSE_PARAMETERS, "adc": ADC_PARAMETERS, "energy": ENERGY_PARAMETERS,
                  "device": DEVICE_PARAMETERS, "cell": CELL_PARAMETERS},
        checks=((lambda p: p["g_min_s"] < p["g_max_s"], "g_min_s must be below g_max_s"),
                (lambda p: not p["differential"] or p["cols"] % 2 == 0, "cols must be even when differential")),
    )
)


def section(card: Card, name: str, declared) -> dict:
    """A card table with the declared defaults filled in."""
    values = {p.name: p.default for p in declared}
    values.update(card.sections.get(name, {}))
    return values


def _subtraction(mode: str, cols: int, differential: bool) -> np.ndarray:
    """``S`` (channels, cols): physical column currents -> sense-amplifier input currents."""
    if mode == "pair":
        s = np.zeros((cols // 2, cols))
        s[np.arange(cols // 2), 2 * np.arange(cols // 2)] = 1.0
        s[np.arange(cols // 2), 2 * np.arange(cols // 2) + 1] = -1.0
        return s
    if mode == "reference":
        s = np.zeros((cols - 1, cols))
        s[np.arange(cols - 1), np.arange(cols - 1)] = 1.0
        s[:, -1] = -1.0
        return s
    return np.eye(cols)


def _subtraction_terms(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nonzeros of ``S`` (channels, cols), term by term: ``(columns (C, k), signs (C, k))``,
    every channel with the same number ``k`` of terms and term ``k`` of one sign for all channels."""
    rows, cols = np.nonzero(s)  # row-major: each channel's columns in order
    if rows.size % s.shape[0] or np.any(rows != np.repeat(np.arange(s.shape[0]), rows.size // s.shape[0])):
        raise InputError("subtraction: expected the same number of terms for every channel")
    idx = cols.reshape(s.shape[0], -1)
    sign = np.take_along_axis(s, idx, axis=1)
    if not (np.all(np.abs(sign) == 1.0) and np.all(sign == sign[:1])):
        raise InputError("subtraction: expected terms of +1 or -1, one sign per term for every channel")
    return idx, sign


@dataclass(frozen=True, eq=False)
class TileDesign:
    """A tile card read once: geometry, conductance window, periphery prototypes, sensing.

    Attributes
    ----------
    card : Card
    rows, cols : int
        Word lines and physical bit lines.
    differential : bool
        Columns (2k, 2k+1) hold (G+, G-) pairs.
    mode : str
        Sensing scheme, one of :data:`SENSE_MODES`.
    subtraction : ndarray (channels, cols)
        ``S``: sense-amplifier input currents ``S i_col``.
    dac, sense, adc : dict
        The card's ``[dac]``, ``[sense]``, ``[adc]`` tables with defaults.
    energy_table, device : dict
        ``[energy]`` and ``[device]`` with defaults.
    cells : cimphys.circuits.tile_cells.TileCells or None
        The ``[cell]`` table: 1T1R/1S1R/1R cells whose memory element has a state.
    binary_drivers : bool
        Every word line is driven to 0 V or one common level (see :meth:`_binary_drivers`).
    """

    card: Card

    def __post_init__(self):
        card = self.card if isinstance(self.card, Card) else load_circuit(self.card)
        if card.model != "tile":
            raise CardError(f"{card.name}: expected a 'tile' card, got model {card.model!r}")
        if "adc" not in card.sections:
            raise CardError(f"{card.name}: a tile card needs an [adc] table (at least 'bits')")
        p = card.parameters
        values = {
            "card": card, "rows": int(p["rows"]), "cols": int(p["cols"]), "differential": bool(p["differential"]),
            "dac": section(card, "dac", DAC_PARAMETERS), "sense": section(card, "sense", SENSE_PARAMETERS),
            "adc": section(card, "adc", ADC_PARAMETERS), "energy_table": section(card, "energy", ENERGY_PARAMETERS),
            "device": section(card, "device", DEVICE_PARAMETERS),
        }
        mode = values["sense"]["mode"]
        if mode == "pair" and not values["differential"]:
            raise CardError(f"{card.name}: [sense] mode = 'pair' needs differential = true")
        if mode == "reference" and (values["differential"] or values["cols"] < 2):
            raise CardError(f"{card.name}: [sense] mode = 'reference' needs a single-ended card with >= 2 columns")
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "subtraction", _subtraction(mode, values["cols"], values["differential"]))
        object.__setattr__(self, "binary_drivers", self._binary_drivers())
        if values["sense"]["kind"] == "integrator" and values["sense"]["t_int_s"] > p["t_read_s"] * (1 + 1e-12):
            raise CardError(f"{card.name}: [sense] t_int_s = {values['sense']['t_int_s']!r} s: an integrator cannot "
                            f"integrate longer than the read, t_read_s = {p['t_read_s']!r} s")
        _check_full_scale(card, self)
        object.__setattr__(self, "cells", TileCells.from_design(self))  # [cell]: cells with state, or None

    def _binary_drivers(self) -> bool:
        """Whether every word line is driven to 0 V or one common level ``V`` (1-bit DACs without
        mismatch, or pulse widths at ``v_read``): the sources then deliver ``V sum_j i_out[j]``
        (pulse widths: over the charge-equivalent voltages), and no input admittance is needed."""
        if self.dac["kind"] == "pwm":  # every pulse is 0 V or v_read, whatever its width
            return True
        dac = DAC.from_parameters(self.dac, v_max=self.v_read, t_read=self.t_read, drivers=self.rows)
        return dac.identical and dac.levels.size == 2 and dac.levels[0] == 0.0

    # ------------------------------------------------------------------ what the card gives
    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.cols

    @property
    def channels(self) -> int:
        """Sense amplifiers (and ADC channels) per tile."""
        return self.subtraction.shape[0]

    @functools.cached_property
    def _terms(self) -> tuple[np.ndarray, np.ndarray]:
        return _subtraction_terms(self.subtraction)

    def to_channels(self, a: np.ndarray, axis: int = -1, *, variance: bool = False) -> np.ndarray:
        """``S`` applied along ``axis`` of ``a`` (columns -> channels); ``variance``: ``|S|`` (variances add).

        Each channel takes one or two columns with weight +1 or -1, so the sum is gathered
        column by column instead of multiplied by the dense ``S``: the same numbers, bit for bit
        (one rounding of at most two exact terms; the zeros a dense product adds change nothing),
        in ``O(C)`` operations per row instead of the dense product's ``O(C N)``.
        """
        idx, sign = self._terms
        out = None
        for k in range(idx.shape[1]):
            term = np.take(a, idx[:, k], axis=axis)
            if not variance and sign[0, k] < 0.0:
                term = -term
            out = term if out is None else out + term
        return out

    @property
    def g_min(self) -> float:
        return float(self.card["g_min_s"])

    @property
    def g_max(self) -> float:
        return float(self.card["g_max_s"])

    @property
    def v_read(self) -> float:
        return float(self.card["v_read_v"])

    @property
    def t_read(self) -> float:
        return float(self.card["t_read_s"])

    @property
    def r_wire(self) -> float:
        return float(self.card["r_wire_per_cell_ohm"])

    @property
    def r_driver(self) -> float:
        return float(self.card["r_driver_ohm"])

    @property
    def adcs(self) -> int:
        """ADCs per tile: ``ceil(channels / cols_per_adc)`` (channels share one through a multiplexer)."""
        return -(-self.channels // int(self.energy_table["cols_per_adc"]))

    def sense_amplifier(self, offsets=0.0):
        """The card's sense amplifier with the given input offsets (V; per channel or one)."""
        sense = sense_from_parameters({**self.sense, "offset_sigma_v": 0.0}, self.channels)
        if np.any(np.asarray(offsets) != 0.0):
            sense = dataclasses.replace(sense, offset_v=offsets)
        return sense

    @property
    def r_sense(self) -> float:
        """The sense amplifier's input resistance, solved with the array (ohm)."""
        return float(self.sense_amplifier().r_sense)

    @property
    def wires(self) -> Wires:
        """The resistances every tile of the card is solved with (WL and BL per cell, driver, sense input)."""
        return Wires(self.r_wire, self.r_wire, self.r_driver, self.r_sense)

    @property
    def transimpedance(self) -> float:
        return float(self.sense_amplifier().transimpedance)

    def adc_prototype(self, **overrides) -> ADC:
        """The card's ADC with no range set (mismatch drawn from ``overrides['converter_seeds']``)."""
        return ADC.from_parameters(self.adc, **overrides)

    @property
    def t_integrate(self) -> float:
        """Time the column current is integrated per read (s): ``t_int_s`` of an integrator, else ``t_read_s``."""
        return float(self.sense["t_int_s"]) if self.sense["kind"] == "integrator" else self.t_read

    @property
    def bandwidth(self) -> float:
        """Noise bandwidth of one read, ``1 / (2 t_int)`` (Hz): an average over the integration time."""
        return 1.0 / (2.0 * self.t_integrate)

    def energy(self) -> EnergyModel:
        adc = self.adc_prototype()
        e = self.energy_table
        return EnergyModel(
            t_read=self.t_read, t_conversion=adc.conversion_time, e_conversion=adc.energy_per_conversion(),
            e_dac=self.dac["energy_per_conversion_j"], c_wordline=self.dac["c_wordline_f"],
            p_sense=self.sense["power_w"], cols_per_adc=e["cols_per_adc"], pipelined=e["pipelined"],
            e_shift_add=e["e_shift_add_j"])

    def full_scale_current(self) -> float:
        """Largest sense-amplifier input current: every cell of a column at ``g_max`` read at ``v_read`` (A)."""
        return self.rows * self.g_max * self.v_read


def _check_full_scale(card: Card, design: TileDesign) -> None:
    """Refuse a card whose reads cannot reach the ADC, the sign of a unit error: the full-scale
    column current must give a sense output of at least a thousandth of an LSB of a full-swing
    range and be a current a column can carry (1 A)."""
    i_full = design.full_scale_current()
    v_full = design.transimpedance * i_full
    swing = float(design.sense["v_swing_v"])
    lsb = 2.0 * swing / (2 ** int(design.adc["bits"]) - 1)
    if not v_full >= 1e-3 * lsb:
        raise CardError(f"{card.name}: a full column ({design.rows} cells at g_max_s = {design.g_max:g} S, "
                        f"{design.v_read:g} V) gives {v_full:.3g} V at the sense output, a thousandth of an ADC "
                        f"LSB of the {swing:g} V swing ({lsb:.3g} V) or less: check the units of g_max_s and the "
                        f"sense gain")
    if not math.isfinite(i_full) or i_full > 1.0:
        raise CardError(f"{card.name}: a full column would carry {i_full:.3g} A (g_max_s = {design.g_max:g} S): "
                        f"check the units of g_max_s (S) and v_read_v (V)")


def weights_to_conductances(card, weights, w_max: float | None = None) -> np.ndarray:
    """Differential conductances ``(M, 2N)`` for a real weight matrix ``(M, N)``.

    ``G+ = g_min + (g_max - g_min) max(w, 0) / w_max`` and ``G- = g_min + (g_max - g_min)
    max(-w, 0) / w_max``, interleaved as columns (2k, 2k+1), so ``G+ - G- = w (g_max - g_min) / w_max``.
    """
    card = card if isinstance(card, Card) else load_circuit(card)
    w = as_array("weights", weights, ndim=2)
    w_max = float(np.max(np.abs(w))) if w_max is None else float(w_max)
    if not w_max > 0.0 or np.max(np.abs(w)) > w_max:
        raise InputError(f"w_max: expected > 0 and >= max |weights|, got {w_max!r}")
    g0, g1 = card["g_min_s"], card["g_max_s"]
    out = np.empty((w.shape[0], 2 * w.shape[1]))
    out[:, 0::2] = g0 + (g1 - g0) * np.maximum(w, 0.0) / w_max
    out[:, 1::2] = g0 + (g1 - g0) * np.maximum(-w, 0.0) / w_max
    return out
