"""Energy and latency of a matrix-vector multiplication on a tile.

One MVM of an input vector runs in ``P`` phases (input digits; twice as many for signed inputs).
Per phase, every word line is driven by its DAC, the array settles and is read for ``t_read``,
every column's sense amplifier is on for that time, and the columns are converted by ADCs shared
through ``cols_per_adc``-to-1 multiplexers.  The energy of one MVM is the sum of

- **array**: ``sum_phases P_src t_read``, with ``P_src = sum_i v_in[i] i_in[i]`` the power the word-line
  sources deliver (it equals the power dissipated in drivers, wires, cells and the sense
  amplifiers' input resistance; taken from the circuit solution);
- **dac**: ``E_dac`` per conversion (one per row and phase) plus ``C_wl V^2`` per driven row
  (charging and discharging the word-line capacitance once);
- **sense**: ``P_sense t_read`` per column and phase;
- **adc**: one conversion per column and phase at the card's energy per conversion (Walden or
  Schreier FOM, see :meth:`cimphys.circuits.adc.ADC.energy_per_conversion`);
- **digital**: ``E_add`` per column and phase for the shift-and-add.

Latency: with ``t_adc = cols_per_adc / f_s`` (or ``2**bits / f_clk`` per conversion for a ramp ADC),
a non-pipelined tile takes ``P (t_read + t_adc)``; with sample-and-hold pipelining the next read
overlaps the conversions, ``t_read + (P - 1) max(t_read, t_adc) + t_adc``.

References
----------
.. [1] A. Shafiee et al., "ISAAC: a convolutional neural network accelerator with in-situ analog
   arithmetic in crossbars", ISCA 2016, doi:10.1109/ISCA.2016.12 (ADC sharing, pipelining).
.. [2] R. H. Walden, IEEE JSAC 17, 539 (1999), doi:10.1109/49.761034 (ADC figure of merit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..cards import Parameter
from ..checks import as_array, as_scalar
from ..errors import InputError
from ..results import variable

__all__ = ["COMPONENTS", "ENERGY_PARAMETERS", "EnergyModel", "read_record", "source_power"]

COMPONENTS = ("array", "dac", "sense", "adc", "digital")

ENERGY_PARAMETERS = (
    Parameter("cols_per_adc", "1", "columns sharing one ADC through a multiplexer", default=1, kind="int", low=1, high=4096),
    Parameter("pipelined", "1", "sample-and-hold lets the next read overlap the conversions", default=True, kind="bool"),
    Parameter("e_shift_add_j", "J", "digital shift-and-add energy per column and phase", default=0.0, low=0.0, high=1e-9),
)


def source_power(v_in, i_in) -> np.ndarray:
    """Power (W) the word-line sources deliver: ``sum_i v_in[i] i_in[i]`` over the last axis."""
    v = as_array("v_in", v_in, unit="V")
    i = as_array("i_in", i_in, unit="A")
    if v.shape != i.shape:
        raise InputError(f"i_in: expected the shape of v_in {v.shape}, got {i.shape}")
    return np.einsum("...m,...m->...", v, i)


def read_record(solution, t_read: float) -> xr.Dataset:
    """Energy of one array read per input vector from a crossbar solution: ``P_src t_read``.

    ``solution`` is a :class:`~cimphys.circuits.crossbar.CrossbarSolution` (its ``power()``
    gives the sources' delivered power); the record also splits the energy dissipated in cells,
    word lines, bit lines, drivers and sense resistors (all J), with ``latency = t_read`` (s).
    """
    t = as_scalar("t_read", t_read, unit="s", low=0.0, low_open=True)
    power = solution.power()
    batch = ("batch",) if np.ndim(power["source"]) == 2 else ()

    def total(p):
        return np.asarray(p).reshape(*np.shape(power["source"])[:-1], -1).sum(axis=-1) * t

    parts = {"source": "delivered by the word-line sources", "cell": "dissipated in the cells",
             "wl": "dissipated in the word lines", "bl": "dissipated in the bit lines",
             "driver": "dissipated in the drivers", "sense": "dissipated in the sense resistors"}
    data = {f"energy_{k}": variable(batch, total(power[k]), "J", f"read energy {text}") for k, text in parts.items()}
    data["latency"] = variable((), t, "s", "read time")
    return xr.Dataset(data)


@dataclass(frozen=True)
class EnergyModel:
    """Per-event energies (J), powers (W) and times (s) of a tile.

    Parameters
    ----------
    t_read : float, s
        Read (or integration) time per phase.
    t_conversion : float, s
        Time of one ADC conversion.
    e_conversion : float, J
        Energy of one ADC conversion.
    e_dac : float, J
        DAC/driver energy per conversion (per row and phase).
    c_wordline : float, F
        Word-line capacitance charged per driven row and phase.
    p_sense : float, W
        Power of one sense amplifier while reading.
    cols_per_adc : int
        Columns multiplexed onto one ADC.
    pipelined : bool
        Whether reads overlap conversions.
    e_shift_add : float, J
        Digital shift-and-add per column and phase.
    """

    t_read: float
    t_conversion: float
    e_conversion: float
    e_dac: float = 0.0
    c_wordline: float = 0.0
    p_sense: float = 0.0
    cols_per_adc: int = 1
    pipelined: bool = True
    e_shift_add: float = 0.0

    def __post_init__(self):
        for name in ("t_read", "t_conversion"):
            as_scalar(name, getattr(self, name), unit="s", low=0.0, low_open=True)
        for name in ("e_conversion", "e_dac", "c_wordline", "p_sense", "e_shift_add"):
            as_scalar(name, getattr(self, name), low=0.0)
        if int(self.cols_per_adc) < 1:
            raise InputError(f"cols_per_adc: expected a positive integer, got {self.cols_per_adc!r}")

    def latency(self, phases: int) -> float:
        """Seconds for one MVM of ``phases`` phases (see the module docstring)."""
        t_adc = self.cols_per_adc * self.t_conversion
        if self.pipelined:
            return self.t_read + (phases - 1) * max(self.t_read, t_adc) + t_adc
        return phases * (self.t_read + t_adc)

    def per_mvm(self, p_sources, v_rows, columns: int, tiles: int = 1) -> np.ndarray:
        """Energy of one MVM per batch item by component, ``(batch, len(COMPONENTS))`` J: the
        numbers of :meth:`record` without the Dataset (for callers that read often)."""
        p = as_array("p_sources", p_sources, unit="W", ndim=2)
        v = as_array("v_rows", v_rows, unit="V", ndim=(3, 4))
        phases, batch = p.shape
        if v.shape[:2] != p.shape:
            raise InputError(f"v_rows: expected leading shape {p.shape}, got {v.shape}")
        v = v[:, :, None, :] if v.ndim == 3 else v
        if tiles % v.shape[2]:
            raise InputError(f"v_rows: expected 1, {tiles} or a divisor of {tiles} drives on axis 2, got {v.shape}")
        alike = tiles // v.shape[2]  # one array of voltages stands for that many tiles
        rows = v.shape[3]
        e = np.empty((batch, len(COMPONENTS)))
        e[:, 0] = p.sum(axis=0) * self.t_read
        e[:, 1] = phases * rows * tiles * self.e_dac
        if self.c_wordline:
            e[:, 1] += self.c_wordline * (v**2).sum(axis=(0, 2, 3)) * alike
        e[:, 2] = phases * columns * tiles * self.p_sense * self.t_read
        e[:, 3] = phases * columns * tiles * self.e_conversion
        e[:, 4] = phases * columns * tiles * self.e_shift_add
        return e

    def record(self, p_sources, v_rows, columns: int, tiles: int = 1) -> xr.Dataset:
        """Energy and latency of one MVM per batch item, over ``tiles`` tiles working in parallel.

        Parameters
        ----------
        p_sources : array_like, W
            Source power of every read, ``(phases, batch)``, summed over the tiles.
        v_rows : array_like, V
            Word-line voltages of every read, ``(phases, batch, rows)`` (alike on every tile),
            ``(phases, batch, tiles, rows)``, or ``(phases, batch, drives, rows)`` with one drive
            for each group of ``tiles / drives`` tiles.
        columns : int
            Channels converted per phase and tile (both columns of each digital pair).
        tiles : int
            Tiles read at once (each with its own DACs, sense amplifiers and ADCs).

        Returns
        -------
        xarray.Dataset
            ``energy_<component>`` for each of :data:`COMPONENTS` and ``energy_total``, (batch,)
            in J; ``latency`` in s; ``reads`` and ``conversions`` per MVM.
        """
        e = self.per_mvm(p_sources, v_rows, columns, tiles)
        v = np.asarray(v_rows)
        v = v[:, :, None, :] if v.ndim == 3 else v
        phases = v.shape[0]
        driven = (v != 0.0).sum(axis=(0, 2, 3)) * (tiles // v.shape[2])
        long = {"array": "array (sources: cells, wires, sense input)", "dac": "DACs and word-line drivers",
                "sense": "sense amplifiers", "adc": "ADC conversions", "digital": "digital shift-and-add"}
        data = {f"energy_{c}": variable("batch", e[:, k], "J", f"energy per MVM: {long[c]}")
                for k, c in enumerate(COMPONENTS)}
        data.update({
            "energy_total": variable("batch", e.sum(axis=1), "J", "energy per MVM"),
            "latency": variable((), self.latency(phases), "s", "latency of one MVM"),
            "reads": variable((), phases, "1", "array reads per MVM"),
            "conversions": variable((), phases * columns * tiles, "1", "ADC conversions per MVM"),
            "rows_driven": variable("batch", driven, "1", "row-phases with a non-zero drive"),
        })
        # One variable per component (no string coordinate: building a pandas index per MVM
        # cost more than the rest of the record).
        return xr.Dataset(data, attrs={"t_read_s": self.t_read, "t_conversion_s": self.t_conversion,
                                       "cols_per_adc": int(self.cols_per_adc), "tiles": int(tiles),
                                       "pipelined": int(bool(self.pipelined))})
