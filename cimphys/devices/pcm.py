"""Statistical model of phase-change memory (PCM) for inference: programming noise, drift, 1/f read noise.

The model is the phenomenological description that IBM fitted to a million-device doped-GST
mushroom-cell array (90 nm CMOS) and used for inference studies (the same fits are IBM
aihwkit's ``PCMLikeNoiseModel``).  With ``g = G_T / G_max`` the normalised target:

* programming noise after iterative program-and-verify, a Gaussian of standard deviation
  ``sigma_P(G_T) = max(c0 + c1 g + c2 g**2, 0)`` (c0 = 0.26348 uS, c1 = 1.9650 uS,
  c2 = -1.1731 uS for G_max = 25 uS);
* drift ``G(t) = G_P (t / t0) ** (-nu)`` with ``nu = |N(mu_nu, sigma_nu)|`` where
  ``mu_nu = clip(-0.0155 ln g + 0.0244, 0.049, 0.1)`` and
  ``sigma_nu = clip(-0.0125 ln g - 0.0059, 0.008, 0.045)``;
* accumulated 1/f read noise, relative standard deviation
  ``sigma_nG(t) = Q_s(G) sqrt(ln((t + t_read) / (2 t_read)))`` with
  ``Q_s = min(0.0088 / max(g**0.65, 1e-3), 0.2)``, applied as ``G(t) + |G(t)| sigma_nG N(0, 1)``;
* global drift compensation: outputs are scaled by ``alpha = (sum of a reference read at
  t0) / (sum of the same read at t)``.

Every conductance is in siemens; the polynomial coefficients of a card are in siemens too
(they scale with the card's ``g_max``).  Conductances are clipped at zero after each noisy
step, as in the source (a conductance cannot be negative).

References
----------
.. [1] S. R. Nandakumar et al., "Phase-change memory models for deep learning training and
   inference", 26th IEEE ICECS (2019), pp. 727-730, doi:10.1109/ICECS46596.2019.8964852.
.. [2] V. Joshi, M. Le Gallo, S. Haefeli, I. Boybat, S. R. Nandakumar, C. Piveteau, M. Dazzi,
   B. Rajendran, A. Sebastian, E. Eleftheriou, "Accurate deep neural network inference using
   computational phase-change memory", Nat. Commun. 11, 2473 (2020), doi:10.1038/s41467-020-16108-9.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.special import erf

from ..cards import Card, ModelSpec, Parameter, register_model
from ..checks import as_array
from ..errors import InputError
from ..results import variable
from .variability import MEMORY_SECTIONS, as_generator

__all__ = ["SPEC", "PCMModel", "drift_compensation_factor", "folded_normal_mean"]

_UNIT = 1e-6  # the published polynomial is in uS for G_max = 25 uS

SPEC = register_model(
    ModelSpec(
        name="pcm_statistical",
        kind="device",
        doc="PCM statistical inference model: programming noise, drift, 1/f read noise (IBM fits)",
        parameters=(
            Parameter("g_max", "S", "maximum programmable conductance", default=25e-6, low=0.0, high=1.0, low_open=True),
            Parameter("prog_coeff", "S", "sigma_P polynomial in G_T/G_max, constant term first",
                      default=[0.26348 * _UNIT, 1.9650 * _UNIT, -1.1731 * _UNIT], low=-1.0, high=1.0, kind="floats"),
            Parameter("nu_mean_slope", "1", "d mu_nu / d ln(G_T/G_max)", default=-0.0155, low=-1.0, high=1.0),
            Parameter("nu_mean_offset", "1", "mu_nu at G_T = G_max", default=0.0244, low=-1.0, high=1.0),
            Parameter("nu_mean_min", "1", "lower clip of mu_nu", default=0.049, low=0.0, high=1.0),
            Parameter("nu_mean_max", "1", "upper clip of mu_nu", default=0.1, low=0.0, high=1.0),
            Parameter("nu_std_slope", "1", "d sigma_nu / d ln(G_T/G_max)", default=-0.0125, low=-1.0, high=1.0),
            Parameter("nu_std_offset", "1", "sigma_nu at G_T = G_max", default=-0.0059, low=-1.0, high=1.0),
            Parameter("nu_std_min", "1", "lower clip of sigma_nu", default=0.008, low=0.0, high=1.0),
            Parameter("nu_std_max", "1", "upper clip of sigma_nu", default=0.045, low=0.0, high=1.0),
            Parameter("g_rel_min", "1", "floor of G_T/G_max inside the logarithms", default=1e-7, low=0.0, high=1.0, low_open=True),
            Parameter("read_q", "1", "Q_s prefactor of the 1/f read noise", default=0.0088, low=0.0, high=1.0),
            Parameter("read_q_exponent", "1", "exponent of G/G_max in Q_s", default=0.65, low=0.0, high=5.0),
            Parameter("read_q_floor", "1", "floor of (G/G_max)**exponent in Q_s", default=1e-3, low=0.0, high=1.0, low_open=True),
            Parameter("read_q_max", "1", "upper clip of Q_s", default=0.2, low=0.0, high=10.0),
            Parameter("t0", "s", "time after programming of the reference read", default=20.0, low=0.0, high=1e9, low_open=True),
            Parameter("t_read", "s", "duration of one read", default=250e-9, low=0.0, high=1.0, low_open=True),
        ),
        sections=MEMORY_SECTIONS,
        checks=(
            (lambda p: p["nu_mean_min"] <= p["nu_mean_max"], "nu_mean_min must be <= nu_mean_max"),
            (lambda p: p["nu_std_min"] <= p["nu_std_max"], "nu_std_min must be <= nu_std_max"),
        ),
    )
)


def folded_normal_mean(mu, sigma):
    """Mean of ``|X|`` for ``X ~ N(mu, sigma**2)`` (the drift exponent is drawn this way).

    ``E|X| = sigma sqrt(2/pi) exp(-mu**2 / (2 sigma**2)) + mu erf(mu / (sigma sqrt 2))``.
    """
    mu = np.asarray(mu, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    return sigma * math.sqrt(2.0 / math.pi) * np.exp(-(mu**2) / (2 * sigma**2)) + mu * erf(mu / (sigma * math.sqrt(2)))


@dataclass(frozen=True)
class PCMModel:
    """The statistical PCM model of references [1] and [2] of the module (equations there).

    Build it from a card with :meth:`from_card` (``devices/nandakumar2019_pcm.toml``) or with
    keyword arguments named like the card's parameters; defaults are the published fits for
    ``G_max = 25 uS``.

    Examples
    --------
    >>> pcm = PCMModel()
    >>> round(float(pcm.sigma_prog(25e-6)) * 1e6, 4)   # uS at G_T = G_max
    1.0554
    """

    g_max: float = 25e-6
    prog_coeff: tuple[float, ...] = (0.26348 * _UNIT, 1.9650 * _UNIT, -1.1731 * _UNIT)
    nu_mean_slope: float = -0.0155
    nu_mean_offset: float = 0.0244
    nu_mean_min: float = 0.049
    nu_mean_max: float = 0.1
    nu_std_slope: float = -0.0125
    nu_std_offset: float = -0.0059
    nu_std_min: float = 0.008
    nu_std_max: float = 0.045
    g_rel_min: float = 1e-7
    read_q: float = 0.0088
    read_q_exponent: float = 0.65
    read_q_floor: float = 1e-3
    read_q_max: float = 0.2
    t0: float = 20.0
    t_read: float = 250e-9

    def __post_init__(self):
        # Check through the card declaration so that keyword construction gets the same ranges.
        for p in SPEC.parameters:
            value = getattr(self, p.name)
            try:
                p.check(list(value) if p.kind == "floats" else value)
            except ValueError as exc:
                raise InputError(f"{p.name}: got {value!r}, expected {exc}") from None
        object.__setattr__(self, "prog_coeff", tuple(float(c) for c in self.prog_coeff))
        for predicate, message in SPEC.checks:
            if not predicate(self.__dict__):
                raise InputError(message)

    @classmethod
    def from_card(cls, card: Card) -> PCMModel:
        """The model of a ``pcm_statistical`` device card."""
        if card.model != SPEC.name:
            raise InputError(f"card: expected a {SPEC.name!r} card, got model {card.model!r} ({card.name})")
        return cls(**dict(card.parameters))

    # ---------------------------------------------------------------- checks
    def _g(self, name: str, g) -> np.ndarray:
        return as_array(name, g, unit="S", low=0.0, high=self.g_max * (1 + 1e-12))

    def _rel(self, g: np.ndarray) -> np.ndarray:
        return np.maximum(np.abs(g) / self.g_max, self.g_rel_min)

    # ---------------------------------------------------------------- published functions
    def sigma_prog(self, g_target) -> np.ndarray:
        """Standard deviation (S) of the programmed conductance about ``g_target`` (S)."""
        g = self._g("g_target", g_target) / self.g_max
        sigma = np.zeros_like(g)
        for k, c in enumerate(self.prog_coeff):
            sigma += c * g**k
        return np.maximum(sigma, 0.0)

    def nu_mean(self, g_target) -> np.ndarray:
        """Mean ``mu_nu`` of the normal the drift exponent is drawn from (before folding)."""
        lg = np.log(self._rel(self._g("g_target", g_target)))
        return np.clip(self.nu_mean_slope * lg + self.nu_mean_offset, self.nu_mean_min, self.nu_mean_max)

    def nu_std(self, g_target) -> np.ndarray:
        """Standard deviation ``sigma_nu`` of that normal (before folding)."""
        lg = np.log(self._rel(self._g("g_target", g_target)))
        return np.clip(self.nu_std_slope * lg + self.nu_std_offset, self.nu_std_min, self.nu_std_max)

    def nu_expected(self, g_target) -> np.ndarray:
        """Expected drift exponent ``E[nu] = E|N(mu_nu, sigma_nu)|`` (folded normal)."""
        return folded_normal_mean(self.nu_mean(g_target), self.nu_std(g_target))

    def read_q_s(self, g) -> np.ndarray:
        """The 1/f noise amplitude ``Q_s(G)`` (dimensionless) at conductance ``g`` (S)."""
        g = as_array("g", g, unit="S", low=0.0)
        scaled = np.maximum((g / self.g_max) ** self.read_q_exponent, self.read_q_floor)
        return np.minimum(self.read_q / scaled, self.read_q_max)

    def sigma_read(self, g, t) -> np.ndarray:
        """Relative standard deviation of a read at time ``t`` (s) after programming."""
        t = as_array("t", t, unit="s", low=0.0, low_open=True)
        return self.read_q_s(g) * np.sqrt(np.log((t + self.t_read) / (2 * self.t_read)))

    # ---------------------------------------------------------------- sampling
    def program(self, g_target, rng) -> np.ndarray:
        """Programmed conductances (S): ``G_T + sigma_P(G_T) N(0,1)``, clipped at 0."""
        g = self._g("g_target", g_target)
        rng = as_generator(rng)
        return np.maximum(g + self.sigma_prog(g) * rng.standard_normal(g.shape), 0.0)

    def drift_exponents(self, g_target, rng) -> np.ndarray:
        """Per-device drift exponents ``nu = |N(mu_nu(G_T), sigma_nu(G_T))|``."""
        g = self._g("g_target", g_target)
        rng = as_generator(rng)
        return np.abs(self.nu_mean(g) + self.nu_std(g) * rng.standard_normal(g.shape))

    def drift(self, g_prog, nu, t) -> np.ndarray:
        """Noise-free drifted conductance ``G_P (t/t0)**(-nu)`` (S); no drift before ``t0``.

        ``t`` (s, scalar or 1-D) is the time since programming; the result has shape
        ``t.shape + g_prog.shape``.
        """
        g_prog = as_array("g_prog", g_prog, unit="S", low=0.0)
        nu = as_array("nu", nu, low=0.0, high=10.0)
        if nu.shape != g_prog.shape:
            raise InputError(f"nu: expected shape {g_prog.shape} to match g_prog, got {nu.shape}")
        t = as_array("t", t, unit="s", low=0.0, low_open=True, ndim=(0, 1))
        ratio = np.maximum(t / self.t0, 1.0).reshape(t.shape + (1,) * g_prog.ndim)
        return g_prog * ratio ** (-nu)

    def read(self, g_prog, nu, t, rng) -> np.ndarray:
        """A read (S) at time(s) ``t`` (s): drifted conductance plus accumulated 1/f noise."""
        g_drift = self.drift(g_prog, nu, t)
        t = np.asarray(t, dtype=float).reshape(np.shape(t) + (1,) * np.ndim(g_prog))
        sigma = self.sigma_read(np.asarray(g_prog, dtype=float), t)
        rng = as_generator(rng)
        return np.maximum(g_drift + g_drift * sigma * rng.standard_normal(g_drift.shape), 0.0)

    def simulate(self, g_target, times, seed, compensate: bool = True) -> xr.Dataset:
        """Program ``g_target`` (S, 1-D) and read it at ``times`` (s after programming).

        Returns a Dataset with dims ``cell`` and ``time``: ``g_target``, ``g_prog``, ``nu``,
        ``g`` (reads) and ``g_ref`` (the reference read at ``t0``).  With ``compensate``, also
        ``alpha``, the global drift compensation factor at each time, measured from a separate
        calibration read (as a chip would: one all-ones read, independent of the data read),
        and ``g_compensated = alpha * g``.
        """
        g_target = self._g("g_target", g_target)
        if g_target.ndim != 1:
            raise InputError(f"g_target: expected 1-D, got shape {g_target.shape}")
        times = as_array("times", times, unit="s", low=0.0, low_open=True, ndim=1)
        rng = as_generator(seed)
        g_prog = self.program(g_target, rng)
        nu = self.drift_exponents(g_target, rng)
        g_ref = self.read(g_prog, nu, self.t0, rng)
        g_t = self.read(g_prog, nu, times, rng)
        ds = xr.Dataset(
            {
                "g_target": variable("cell", g_target, "S", "target conductance"),
                "g_prog": variable("cell", g_prog, "S", "programmed conductance"),
                "nu": variable("cell", nu, "1", "drift exponent"),
                "g_ref": variable("cell", g_ref, "S", "reference read at t0"),
                "g": variable(("time", "cell"), g_t, "S", "read conductance"),
            },
            coords={"time": variable("time", times, "s", "time since programming")},
            attrs={"model": SPEC.name, "g_max": self.g_max, "t0": self.t0},
        )
        if compensate:
            alpha = drift_compensation_factor(g_ref, self.read(g_prog, nu, times, rng))
            ds["alpha"] = variable("time", alpha, "1", "global drift compensation factor")
            ds["g_compensated"] = variable(("time", "cell"), g_t * alpha[:, None], "S", "drift-compensated read")
        return ds


def drift_compensation_factor(g_ref, g_t) -> np.ndarray:
    """Global drift compensation ``alpha = sum(g_ref) / sum(g_t)`` over the last axis.

    ``g_ref`` (S, shape ``(cells,)``) is the reference read at ``t0``; ``g_t`` (S, shape
    ``(cells,)`` or ``(times, cells)``) the reads at later times.  In a crossbar the sums are
    the column currents of an all-ones input, read once after programming and again before
    inference (reference [2] of the module, Methods: "global drift compensation").
    """
    g_ref = as_array("g_ref", g_ref, unit="S", low=0.0, ndim=1)
    g_t = as_array("g_t", g_t, unit="S", low=0.0, ndim=(1, 2))
    if g_t.shape[-1] != g_ref.shape[0]:
        raise InputError(f"g_t: expected last axis {g_ref.shape[0]} to match g_ref, got shape {g_t.shape}")
    total = g_t.sum(axis=-1)
    if np.any(total <= 0) or g_ref.sum() <= 0:
        raise InputError("g_ref/g_t: reads sum to zero; drift compensation needs a non-zero reference")
    return g_ref.sum() / total
