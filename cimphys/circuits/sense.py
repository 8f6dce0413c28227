"""Sense amplifiers: what sits at the foot of each bit line and turns its current into a voltage.

**TIA** (op-amp of open-loop gain ``A``, feedback resistor ``R_f``, non-inverting input at the
offset ``V_os``).  With ``v_o = A (V_os - v_-)`` and KCL at the inverting node
``i = (v_- - v_o) / R_f``:

``v_- = i R_f / (1 + A) + V_os A / (1 + A)``,  ``v_o = -i R_f A / (1 + A) + ...``

so the virtual ground is a resistance ``r_in = R_f / (1 + A)``: that is the crossbar's
``r_sense`` and is solved *with* the array (pass :attr:`TIA.r_sense` to ``Crossbar``).  For a
column whose array side has the Norton conductance ``g_s`` (sum of its cell conductances when
the wires are ideal), the offset and the input-referred noise ``e_n`` reach the output with the
noise gain: ``dv_o = (V_os + e_n) (1 + R_f g_s) / (1 + (1 + R_f g_s) / A)``.  We report the
non-inverted output ``v = -v_o`` (positive for a positive column current), clipped to
``+-v_swing``.

**Charge integrator** (ideal virtual ground, ``r_sense = 0``): a constant current ``i`` for the
integration time ``t`` on ``C`` with a leakage resistance ``R_l`` in parallel gives
``v = i R_l (1 - exp(-t / (R_l C)))`` (``i t / C`` without leakage), clipped to the swing.

**Load resistor** (voltage-mode sensing): ``r_sense = R_load``, ``v = i R_load``.

**Latch comparator** (current-mode sense amplifier): decides ``i > i_ref + i_os`` with a
per-column offset current ``i_os ~ N(0, sigma)`` drawn once from a seed.

References
----------
.. [1] P. R. Gray, P. J. Hurst, S. H. Lewis, R. G. Meyer, "Analysis and Design of Analog
   Integrated Circuits", 5th ed., Wiley (2009), ch. 9 (feedback, noise gain).
.. [2] W. Wan et al., "A compute-in-memory chip based on resistive random-access memory",
   Nature 608, 504 (2022), doi:10.1038/s41586-022-04992-8 (voltage-mode sensing on the BL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..cards import Parameter
from ..checks import as_array, as_scalar
from ..errors import InputError

__all__ = ["SENSE_KINDS", "SENSE_PARAMETERS", "TIA", "ChargeIntegrator", "LatchComparator", "LoadResistor",
           "sense_from_parameters"]

SENSE_KINDS = ("tia", "integrator", "load")

SENSE_PARAMETERS = (
    Parameter("kind", "1", "sense amplifier type", default="tia", kind="str", choices=SENSE_KINDS),
    Parameter("mode", "1", "what each amplifier senses: its column, a column pair's difference, or its column "
              "minus the reference column (see cimphys.circuits.tile_design)", default="column", kind="str",
              choices=("column", "pair", "reference")),
    Parameter("r_f_ohm", "ohm", "TIA feedback resistance", default=1e4, low=0.0, low_open=True),
    Parameter("gain", "1", "TIA op-amp open-loop DC gain", default=1e4, low=1.0),
    Parameter("offset_sigma_v", "V", "input offset sigma (per-column seeded draw)", default=0.0, low=0.0, high=1.0),
    Parameter("noise_v_rms", "V", "input-referred noise rms per read", default=0.0, low=0.0, high=1.0),
    Parameter("v_swing_v", "V", "output swing (saturation) magnitude", default=1.0, low=0.0, high=100.0, low_open=True),
    Parameter("c_int_f", "F", "integrator capacitance", default=1e-12, low=0.0, high=1e-6, low_open=True),
    Parameter("t_int_s", "s", "integration time", default=1e-8, low=0.0, high=1.0, low_open=True),
    Parameter("r_leak_ohm", "ohm", "integrator leakage resistance (0: none)", default=0.0, low=0.0),
    Parameter("r_load_ohm", "ohm", "voltage-mode load resistance", default=1e3, low=0.0, low_open=True),
    Parameter("power_w", "W", "static power of one sense amplifier while reading", default=0.0, low=0.0, high=1.0),
    Parameter("seed", "1", "seed of the offset draw", default=0, kind="int", low=0, high=2**63 - 1),
)


def _noise(shape, sigma: float, rng) -> np.ndarray | float:
    if sigma == 0.0:
        return 0.0
    if rng is None:
        raise InputError("rng: a seed or numpy Generator is required when noise_v_rms > 0")
    return np.random.default_rng(rng).normal(0.0, sigma, shape)


@dataclass(frozen=True, eq=False)
class TIA:
    """Transimpedance amplifier with finite open-loop gain (see the module docstring).

    Parameters
    ----------
    r_f : float, ohm
        Feedback resistance.
    gain : float
        Open-loop DC gain ``A`` (>= 1).
    offset_v : float or array_like, V
        Input offset per column (or one for all).
    noise_v_rms : float, V
        Input-referred noise rms per read (seeded at each call).
    v_swing : float, V
        Output saturates at ``+-v_swing``.

    Examples
    --------
    >>> tia = TIA(r_f=1e4, gain=999.0)
    >>> tia.r_sense, tia.transimpedance
    (10.0, 9990.0)
    """

    r_f: float = 1e4
    gain: float = 1e4
    offset_v: np.ndarray | float = 0.0
    noise_v_rms: float = 0.0
    v_swing: float = 1.0
    power_w: float = 0.0

    def __post_init__(self):
        as_scalar("r_f", self.r_f, unit="ohm", low=0.0, low_open=True)
        as_scalar("gain", self.gain, low=1.0)
        object.__setattr__(self, "offset_v", as_array("offset_v", self.offset_v, unit="V", ndim=(0, 1)))
        as_scalar("noise_v_rms", self.noise_v_rms, unit="V", low=0.0)
        as_scalar("v_swing", self.v_swing, unit="V", low=0.0, low_open=True)

    @property
    def r_sense(self) -> float:
        """Input resistance ``R_f / (1 + A)`` (ohm): the crossbar's ``r_sense``."""
        return self.r_f / (1.0 + self.gain)

    @property
    def transimpedance(self) -> float:
        """``R_f A / (1 + A)`` (ohm): output per unit column current (ideal source)."""
        return self.r_f * self.gain / (1.0 + self.gain)

    def noise_gain(self, g_source) -> np.ndarray:
        """Gain from input offset/noise to the output for a source conductance ``g_source`` (S)."""
        g = as_array("g_source", g_source, unit="S", low=0.0)
        beta_inv = 1.0 + self.r_f * g
        return beta_inv / (1.0 + beta_inv / self.gain)

    def output(self, i_out, g_source=0.0, rng=None, noise=None) -> tuple[np.ndarray, np.ndarray]:
        """Output voltage ``v`` (V, non-inverted) and a saturation mask for column currents ``i_out`` (A).

        ``i_out`` is the current from a solve with ``r_sense = self.r_sense``; ``g_source`` the
        columns' Norton conductance seen by the amplifier (for the offset/noise gain).  ``noise``
        (V, the shape of ``i_out``), if given, is the input-referred noise of this read instead
        of a draw from ``rng``.
        """
        i = as_array("i_out", i_out, unit="A")
        err = self.offset_v + (_noise(i.shape, self.noise_v_rms, rng) if noise is None else noise)
        v = self.transimpedance * i - err * self.noise_gain(g_source)
        saturated = np.abs(v) > self.v_swing
        return np.clip(v, -self.v_swing, self.v_swing), saturated

    def input_current(self, v) -> np.ndarray:
        """Inverse of the ideal transfer: column current (A) for an output ``v`` (V)."""
        return np.asarray(v) / self.transimpedance


@dataclass(frozen=True, eq=False)
class ChargeIntegrator:
    """Charge integrator on ``c_int`` for ``t_int`` with optional leakage ``r_leak`` (0: none).

    Examples
    --------
    >>> ChargeIntegrator(c_int=1e-12, t_int=1e-8).output(1e-5)[0].item()  # 1e-5 * 1e-8 / 1e-12
    0.1
    """

    c_int: float = 1e-12
    t_int: float = 1e-8
    r_leak: float = 0.0
    v_swing: float = 1.0
    offset_v: np.ndarray | float = 0.0
    noise_v_rms: float = 0.0
    power_w: float = 0.0
    gain: float = field(default=math.inf, init=False)

    def __post_init__(self):
        as_scalar("c_int", self.c_int, unit="F", low=0.0, low_open=True)
        as_scalar("t_int", self.t_int, unit="s", low=0.0, low_open=True)
        as_scalar("r_leak", self.r_leak, unit="ohm", low=0.0)
        as_scalar("v_swing", self.v_swing, unit="V", low=0.0, low_open=True)
        object.__setattr__(self, "offset_v", as_array("offset_v", self.offset_v, unit="V", ndim=(0, 1)))
        as_scalar("noise_v_rms", self.noise_v_rms, unit="V", low=0.0)

    r_sense = 0.0  # ideal virtual ground

    @property
    def transimpedance(self) -> float:
        """Output per unit constant current (ohm): ``t/C`` or ``R_l (1 - exp(-t/(R_l C)))``."""
        if self.r_leak == 0.0:
            return self.t_int / self.c_int
        return self.r_leak * -math.expm1(-self.t_int / (self.r_leak * self.c_int))

    def output(self, i_out, g_source=0.0, rng=None, noise=None) -> tuple[np.ndarray, np.ndarray]:
        """Voltage (V) after integrating constant currents ``i_out`` (A), and the saturation mask
        (``noise``: as :meth:`TIA.output`)."""
        i = as_array("i_out", i_out, unit="A")
        v = self.transimpedance * i + self.offset_v + (_noise(i.shape, self.noise_v_rms, rng) if noise is None else noise)
        saturated = np.abs(v) > self.v_swing
        return np.clip(v, -self.v_swing, self.v_swing), saturated

    def output_from_charge(self, q) -> tuple[np.ndarray, np.ndarray]:
        """Voltage for a collected charge ``q`` (C), e.g. from pulse-width inputs (no leakage)."""
        if self.r_leak != 0.0:
            raise InputError("r_leak: output_from_charge needs the current waveform when the integrator leaks")
        v = as_array("q", q, unit="C") / self.c_int + self.offset_v
        return np.clip(v, -self.v_swing, self.v_swing), np.abs(v) > self.v_swing

    def input_current(self, v) -> np.ndarray:
        return np.asarray(v) / self.transimpedance


@dataclass(frozen=True, eq=False)
class LoadResistor:
    """Voltage-mode sensing: the bit line ends in ``r_load`` to ground; ``v = i r_load``.

    The voltage is read by a buffer (the sample-and-hold or the ADC's input stage) whose input
    offset ``offset_v`` (per column) and input-referred noise ``noise_v_rms`` add to it, with
    unity gain.
    """

    r_load: float = 1e3
    v_swing: float = 1.0
    power_w: float = 0.0
    offset_v: np.ndarray | float = 0.0
    noise_v_rms: float = 0.0

    def __post_init__(self):
        as_scalar("r_load", self.r_load, unit="ohm", low=0.0, low_open=True)
        as_scalar("v_swing", self.v_swing, unit="V", low=0.0, low_open=True)
        object.__setattr__(self, "offset_v", as_array("offset_v", self.offset_v, unit="V", ndim=(0, 1)))
        as_scalar("noise_v_rms", self.noise_v_rms, unit="V", low=0.0)

    @property
    def r_sense(self) -> float:
        return self.r_load

    @property
    def transimpedance(self) -> float:
        return self.r_load

    def output(self, i_out, g_source=0.0, rng=None, noise=None) -> tuple[np.ndarray, np.ndarray]:
        """Voltage (V) ``i r_load`` plus the buffer's offset and noise, and the saturation mask
        (``noise``: as :meth:`TIA.output`)."""
        i = as_array("i_out", i_out, unit="A")
        v = self.r_load * i + self.offset_v + (_noise(i.shape, self.noise_v_rms, rng) if noise is None else noise)
        return np.clip(v, -self.v_swing, self.v_swing), np.abs(v) > self.v_swing

    def input_current(self, v) -> np.ndarray:
        return np.asarray(v) / self.r_load


@dataclass(frozen=True, eq=False)
class LatchComparator:
    """Current-mode sense amplifier: ``i_out > i_ref + i_os`` with per-column offsets (seeded).

    Parameters
    ----------
    i_ref : float, A
        Reference current.
    offset_sigma : float, A
        Sigma of the offset current, drawn once per column.
    columns : int
        Number of columns (offsets drawn).
    seed : int
        Seed of the offset draw.
    """

    i_ref: float
    offset_sigma: float = 0.0
    columns: int = 1
    seed: int = 0
    offsets: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        as_scalar("i_ref", self.i_ref, unit="A")
        sigma = as_scalar("offset_sigma", self.offset_sigma, unit="A", low=0.0)
        if not isinstance(self.columns, (int, np.integer)) or self.columns < 1:
            raise InputError(f"columns: expected a positive integer, got {self.columns!r}")
        object.__setattr__(self, "offsets", np.random.default_rng(self.seed).normal(0.0, sigma, int(self.columns)))

    def decide(self, i_out) -> np.ndarray:
        """Boolean decisions for currents ``i_out`` (A) of shape ``(..., columns)``."""
        i = as_array("i_out", i_out, unit="A")
        if i.shape[-1:] != (self.columns,):
            raise InputError(f"i_out: expected last dimension {self.columns}, got shape {i.shape}")
        return i > self.i_ref + self.offsets


def sense_from_parameters(params, columns: int):
    """Build the sense amplifier of a tile card's ``[sense]`` table (per-column offsets drawn)."""
    p = {q.name: q.default for q in SENSE_PARAMETERS}
    p.update(dict(params))
    offsets = np.random.default_rng(p["seed"]).normal(0.0, p["offset_sigma_v"], columns) if p["offset_sigma_v"] else 0.0
    if p["kind"] == "tia":
        return TIA(r_f=p["r_f_ohm"], gain=p["gain"], offset_v=offsets, noise_v_rms=p["noise_v_rms"],
                   v_swing=p["v_swing_v"], power_w=p["power_w"])
    if p["kind"] == "integrator":
        return ChargeIntegrator(c_int=p["c_int_f"], t_int=p["t_int_s"], r_leak=p["r_leak_ohm"],
                                v_swing=p["v_swing_v"], offset_v=offsets, noise_v_rms=p["noise_v_rms"],
                                power_w=p["power_w"])
    return LoadResistor(r_load=p["r_load_ohm"], v_swing=p["v_swing_v"], power_w=p["power_w"], offset_v=offsets,
                        noise_v_rms=p["noise_v_rms"])
