"""Device-to-device and cycle-to-cycle variation, stuck-at faults and endurance window narrowing.

Every draw takes a seed or a :class:`numpy.random.Generator` (:func:`as_generator`); the same
seed gives the same numbers.  Variation is multiplicative: a parameter ``x0`` becomes
``x0 * F`` with ``F`` lognormal by default (``F = exp(sigma N)``, median-preserving, or
``exp(sigma N - sigma**2/2)``, mean-preserving), which keeps conductances and resistances
positive, as measured spreads of filamentary RRAM and PCM are close to lognormal [1]_.  A
``"normal"`` distribution ``x0 (1 + sigma N)`` clipped at zero is available for small spreads.

References
----------
.. [1] A. Fantini et al., "Intrinsic switching variability in HfO2 RRAM", IEEE International Memory
   Workshop (2013) (lognormal resistance distributions).
.. [2] S. Yu, "Neuro-inspired computing with emerging nonvolatile memorys", Proc. IEEE 106, 260
   (2018), doi:10.1109/JPROC.2018.2790840 (stuck-at faults, endurance, variation in CIM arrays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..cards import Parameter
from ..checks import as_array, as_scalar
from ..errors import InputError
from ..results import variable

__all__ = [
    "ENDURANCE_SECTION",
    "MEMORY_SECTIONS",
    "RETENTION_SECTION",
    "RTN_SECTION",
    "VARIABILITY_SECTION",
    "EnduranceWindow",
    "Variability",
    "apply_stuck_at",
    "as_generator",
    "cycle_to_cycle",
    "device_to_device",
    "stuck_at_faults",
    "vary",
]

DISTRIBUTIONS = ("lognormal", "normal")
STUCK_OFF, HEALTHY, STUCK_ON = -1, 0, 1

# Parameters of an optional ``[variability]`` table that any device ModelSpec may declare.
VARIABILITY_SECTION = (
    Parameter("d2d_sigma", "1", "device-to-device spread (log std for lognormal)", default=0.0, low=0.0, high=3.0),
    Parameter("c2c_sigma", "1", "cycle-to-cycle spread (log std for lognormal)", default=0.0, low=0.0, high=3.0),
    Parameter("distribution", "", "distribution of the spread", default="lognormal", kind="str", choices=DISTRIBUTIONS),
    Parameter("p_stuck_on", "1", "probability that a cell is stuck at its on state", default=0.0, low=0.0, high=1.0),
    Parameter("p_stuck_off", "1", "probability that a cell is stuck at its off state", default=0.0, low=0.0, high=1.0),
)

# Parameters of an optional ``[endurance]`` table: the measured window edges after some cycles.
ENDURANCE_SECTION = (
    Parameter("cycles", "1", "switching cycles at which the window was measured (increasing, >= 1)", kind="floats",
              low=1.0, high=1e15),
    Parameter("g_on", "S", "on-state (high) conductance after that many cycles", kind="floats", low=0.0, high=1.0,
              low_open=True),
    Parameter("g_off", "S", "off-state (low) conductance after that many cycles", kind="floats", low=0.0, high=1.0,
              low_open=True),
)

# Parameters of an optional ``[retention]`` table: stretched-exponential relaxation of a programmed
# conductance with an Arrhenius time constant (the law of :class:`cimphys.devices.retention.RetentionModel`,
# whose ``retention_kww`` card declares the same keys).
RETENTION_SECTION = (
    Parameter("g_rest", "S", "conductance the state relaxes to", low=0.0, high=1.0),
    Parameter("tau_ref", "s", "relaxation time at temperature_ref", low=0.0, high=1e20, low_open=True),
    Parameter("beta", "1", "stretch exponent", default=1.0, low=0.0, high=1.0, low_open=True),
    Parameter("activation_energy", "J", "Arrhenius activation energy", default=0.0, low=0.0, high=1e-18),
    Parameter("temperature_ref", "K", "temperature of tau_ref", default=300.0, low=0.0, high=2000.0, low_open=True),
    Parameter("tau_sigma", "1", "device-to-device log std of tau", default=0.0, low=0.0, high=5.0),
)

# Parameters of an optional ``[rtn]`` table: one two-level trap per cell, a random telegraph signal
# (:func:`cimphys.devices.noise.random_telegraph`) in the conductance.
RTN_SECTION = (
    Parameter("amplitude_rel", "1", "conductance step of the trap relative to G (dG / G)", low=0.0, high=1.0),
    Parameter("tau_low", "s", "mean dwell time in the low-conductance state", low=0.0, high=1e9, low_open=True),
    Parameter("tau_high", "s", "mean dwell time in the high-conductance state", low=0.0, high=1e9, low_open=True),
)

#: The optional tables every memory-cell model declares (see :meth:`Variability.from_card`,
#: :meth:`EnduranceWindow.from_card`, :class:`cimphys.devices.cell_array.CellArrayModel`): device
#: data a card may carry beside its fitted parameters.
MEMORY_SECTIONS = {"variability": VARIABILITY_SECTION, "endurance": ENDURANCE_SECTION,
                   "retention": RETENTION_SECTION, "rtn": RTN_SECTION}


def as_generator(seed) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from a seed (int) or a Generator (returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed: expected a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def _check_distribution(distribution: str) -> str:
    if distribution not in DISTRIBUTIONS:
        raise InputError(f"distribution: expected one of {DISTRIBUTIONS}, got {distribution!r}")
    return distribution


def vary(nominal, sigma: float, size, rng, distribution: str = "lognormal", preserve: str = "median") -> np.ndarray:
    """``nominal`` times a random factor, drawn ``size`` times (broadcast against ``nominal``).

    Parameters
    ----------
    nominal : float or array_like, >= 0
        Nominal values (any SI unit; the result has the same unit).
    sigma : float
        Log standard deviation (lognormal) or relative standard deviation (normal), in [0, 3].
    size : tuple of int
        Shape of the draw; ``nominal`` broadcasts against it.
    rng : int or numpy.random.Generator
    distribution : {"lognormal", "normal"}
    preserve : {"median", "mean"}
        For the lognormal: keep the median (``exp(sigma N)``) or the mean
        (``exp(sigma N - sigma**2/2)``) of the factor at 1.
    """
    nominal = as_array("nominal", nominal, low=0.0)
    sigma = as_scalar("sigma", sigma, low=0.0, high=3.0)
    _check_distribution(distribution)
    if preserve not in ("median", "mean"):
        raise InputError(f"preserve: expected 'median' or 'mean', got {preserve!r}")
    try:
        shape = np.broadcast_shapes(tuple(size), nominal.shape)
    except (TypeError, ValueError):
        raise InputError(f"size: {size!r} does not broadcast with nominal of shape {nominal.shape}") from None
    n = as_generator(rng).standard_normal(shape)
    if distribution == "normal":
        return np.maximum(nominal * (1.0 + sigma * n), 0.0)
    shift = 0.5 * sigma**2 if preserve == "mean" else 0.0
    return nominal * np.exp(sigma * n - shift)


def device_to_device(nominal, sigma: float, shape, rng, distribution: str = "lognormal") -> np.ndarray:
    """Per-device values of shape ``shape``: one fixed draw of ``vary`` per device."""
    return vary(nominal, sigma, shape, rng, distribution)


def cycle_to_cycle(device_values, sigma: float, n_cycles: int, rng, distribution: str = "lognormal") -> xr.Dataset:
    """Values of every device on each of ``n_cycles`` switching cycles.

    ``device_values`` (1-D, e.g. from :func:`device_to_device`) are each device's median;
    each cycle redraws around it.  Returns a Dataset with ``value`` on dims ``(cycle, cell)``.
    """
    device_values = as_array("device_values", device_values, low=0.0, ndim=1)
    n = int(as_scalar("n_cycles", n_cycles, low=1, high=1e8))
    values = vary(device_values, sigma, (n, device_values.size), rng, distribution)
    return xr.Dataset(
        {"value": variable(("cycle", "cell"), values, "1", "value on each cycle (unit of device_values)")},
        coords={"cycle": np.arange(n)},
        attrs={"sigma": float(sigma), "distribution": distribution},
    )


def stuck_at_faults(shape, p_stuck_on: float, p_stuck_off: float, rng) -> np.ndarray:
    """Fault map (int8): ``1`` stuck on, ``-1`` stuck off, ``0`` healthy.

    Each cell is independently stuck on with probability ``p_stuck_on`` and stuck off with
    probability ``p_stuck_off`` (mutually exclusive; their sum must be <= 1).
    """
    p_on = as_scalar("p_stuck_on", p_stuck_on, low=0.0, high=1.0)
    p_off = as_scalar("p_stuck_off", p_stuck_off, low=0.0, high=1.0)
    if p_on + p_off > 1.0:
        raise InputError(f"p_stuck_on + p_stuck_off: expected <= 1, got {p_on + p_off!r}")
    u = as_generator(rng).random(tuple(shape))
    faults = np.zeros(u.shape, dtype=np.int8)
    faults[u < p_on] = STUCK_ON
    faults[(u >= p_on) & (u < p_on + p_off)] = STUCK_OFF
    return faults


def apply_stuck_at(g, faults, g_on: float, g_off: float) -> np.ndarray:
    """Conductances ``g`` (S) with stuck cells replaced by ``g_on`` or ``g_off`` (S)."""
    g = as_array("g", g, unit="S", low=0.0)
    faults = np.asarray(faults)
    if faults.shape != g.shape or not np.isin(faults, (STUCK_OFF, HEALTHY, STUCK_ON)).all():
        raise InputError(f"faults: expected values in {{-1, 0, 1}} with shape {g.shape}, got shape {faults.shape}")
    g_on = as_scalar("g_on", g_on, unit="S", low=0.0)
    g_off = as_scalar("g_off", g_off, unit="S", low=0.0)
    return np.where(faults == STUCK_ON, g_on, np.where(faults == STUCK_OFF, g_off, g))


@dataclass(frozen=True)
class Variability:
    """The spreads and fault rates of a ``[variability]`` card table (all dimensionless)."""

    d2d_sigma: float = 0.0
    c2c_sigma: float = 0.0
    distribution: str = "lognormal"
    p_stuck_on: float = 0.0
    p_stuck_off: float = 0.0

    def __post_init__(self):
        for p in VARIABILITY_SECTION:
            try:
                p.check(getattr(self, p.name))
            except ValueError as exc:
                raise InputError(f"{p.name}: got {getattr(self, p.name)!r}, expected {exc}") from None
        if self.p_stuck_on + self.p_stuck_off > 1.0:
            raise InputError("p_stuck_on + p_stuck_off: expected <= 1")

    @classmethod
    def from_mapping(cls, table) -> Variability:
        """From a card's ``[variability]`` table (a mapping), unknown keys rejected."""
        known = {p.name for p in VARIABILITY_SECTION}
        extra = set(table) - known
        if extra:
            raise InputError(f"variability: unknown keys {sorted(extra)}; known: {sorted(known)}")
        return cls(**dict(table))

    @classmethod
    def from_card(cls, card) -> Variability:
        """The card's ``[variability]`` table (already checked by the card loader), or no
        variation when the card has none."""
        table = card.sections.get("variability")
        return cls() if table is None else cls.from_mapping(table)

    def sample_devices(self, g_nominal, shape, g_on: float, g_off: float, rng) -> np.ndarray:
        """Per-device conductances (S): d2d variation around ``g_nominal``, then stuck-at faults."""
        rng = as_generator(rng)
        g = device_to_device(g_nominal, self.d2d_sigma, shape, rng, self.distribution)
        return apply_stuck_at(g, stuck_at_faults(g.shape, self.p_stuck_on, self.p_stuck_off, rng), g_on, g_off)


@dataclass(frozen=True)
class EnduranceWindow:
    """Narrowing of the on/off window with switching cycles, interpolated from measured points.

    ``cycles`` (increasing, >= 1), ``g_on`` and ``g_off`` (S) are the measured window edges
    after that many cycles; between points the edges are interpolated linearly in
    ``log10(cycles)`` and ``log(G)``, and held constant outside the measured range (no
    extrapolation of a failure nobody measured).
    """

    cycles: tuple[float, ...]
    g_on: tuple[float, ...]
    g_off: tuple[float, ...]

    def __post_init__(self):
        c = as_array("cycles", self.cycles, low=1.0, ndim=1)
        on = as_array("g_on", self.g_on, unit="S", low=0.0, low_open=True, shape=c.shape)
        off = as_array("g_off", self.g_off, unit="S", low=0.0, low_open=True, shape=c.shape)
        if c.size < 2 or np.any(np.diff(c) <= 0):
            raise InputError(f"cycles: expected >= 2 strictly increasing values, got {self.cycles!r}")
        if np.any(on <= off):
            raise InputError("g_on: expected g_on > g_off at every measured cycle count")
        for name, arr in (("cycles", c), ("g_on", on), ("g_off", off)):
            object.__setattr__(self, name, tuple(float(x) for x in arr))

    @classmethod
    def from_card(cls, card) -> EnduranceWindow | None:
        """The card's ``[endurance]`` table, or ``None`` when the card gives no endurance data.

        Raises :class:`~cimphys.errors.InputError` naming the card when the table is
        inconsistent (lengths differ, cycles not increasing, ``g_on <= g_off``).
        """
        table = card.sections.get("endurance")
        if table is None:
            return None
        lengths = {len(table[k]) for k in ("cycles", "g_on", "g_off")}
        try:
            if len(lengths) != 1:
                raise InputError(f"cycles, g_on, g_off: expected lists of one length, got lengths {sorted(lengths)}")
            return cls(tuple(table["cycles"]), tuple(table["g_on"]), tuple(table["g_off"]))
        except InputError as exc:
            where = card.path or card.name
            raise InputError(f"{where}: [endurance] {exc}") from None

    def window(self, n_cycles) -> tuple[np.ndarray, np.ndarray]:
        """Window edges ``(g_on, g_off)`` in S after ``n_cycles`` (>= 1) cycles."""
        n = as_array("n_cycles", n_cycles, low=1.0)
        x = np.log10(n)
        xp = np.log10(self.cycles)
        g_on = np.exp(np.interp(x, xp, np.log(self.g_on)))
        g_off = np.exp(np.interp(x, xp, np.log(self.g_off)))
        return g_on, g_off

    def narrow(self, g, n_cycles) -> np.ndarray:
        """Map conductances ``g`` (S) in the pristine window linearly into the window at ``n_cycles``."""
        on0, off0 = self.g_on[0], self.g_off[0]
        g = as_array("g", g, unit="S", low=off0 * (1 - 1e-12), high=on0 * (1 + 1e-12))
        on, off = self.window(n_cycles)
        frac = (g - off0) / (on0 - off0)
        return off + frac * (on - off)

    def on_off_ratio(self, n_cycles) -> np.ndarray:
        """``g_on / g_off`` after ``n_cycles``."""
        on, off = self.window(n_cycles)
        return on / off

