"""Analog-to-digital converters as transfer functions from an analog value to an integer code.

Every converter here is described in units of its own LSB.  An input ``x`` (V or A, whatever
the sense amplifier hands over) is mapped to ``u = (x - lo) / lsb`` by a per-column (or global)
range, then through the converter's static and random non-idealities to a code in
``[0, 2**bits - 1]``:

``u' = u * (1 + gain_error) + offset_lsb + noise``  (noise ~ N(0, noise_lsb), seeded)

- ``ideal``: mid-tread uniform quantiser, code = clip(floor(u' + 1/2)); transition levels
  ``T[k] = k - 1/2`` LSB (IEEE Std 1241 ideal code-transition levels).
- ``flash``: 2**bits - 1 comparators with offsets drawn N(0, offset_sigma_lsb); a ones-counter
  encoder gives code = #{k : T[k] <= u'}, which equals a search in the sorted thresholds, so
  bubbles in the thermometer code are handled exactly.
- ``sar``: binary-weighted capacitor DAC ``C_k = 2**k (1 + e_k)``, ``e_k ~ N(0, sigma_u /
  sqrt(2**k))`` (a bank of 2**k unit capacitors of relative mismatch ``sigma_u``), plus a unit
  termination capacitor; bit decisions by successive approximation against the DAC level
  ``V(D) = 2**bits * sum_k b_k C_k / C_total``, each comparison with its own comparator noise.
- ``ramp``: single-slope converter; a counter at ``f_clk`` counts while an RC ramp
  ``r(n) = tau (1 - exp(-n / tau))`` (tau = R*C*f_clk in clock periods; ideal ramp as tau -> inf)
  stays below the input, so ``T[k] = r(k) - 1/2``; conversion time ``2**bits / f_clk``.

Ranges come from a card, :meth:`ADC.with_range` or :meth:`ADC.calibrate` (min/max or
percentile of a calibration batch, per column or global).

References
----------
.. [1] IEEE Std 1241-2010, "IEEE Standard for Terminology and Test Methods for
   Analog-to-Digital Converters", doi:10.1109/IEEESTD.2011.5692956.
.. [2] M. J. M. Pelgrom, A. C. J. Duinmaijer, A. P. G. Welbers, "Matching properties of MOS
   transistors", IEEE JSSC 24, 1433 (1989) (sigma of a capacitor bank ~ 1/sqrt(area)).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numba
import numpy as np

from .._numba import jit, jit_parallel, prange
from ..cards import ModelSpec, Parameter, register_model
from ..checks import as_array, as_scalar
from ..errors import InputError

__all__ = ["ADC", "ADC_KINDS", "ADC_PARAMETERS", "SPEC", "quantise_uniform"]

ADC_KINDS = ("ideal", "flash", "sar", "ramp")
#: Below this many samples the kernels run on one thread: thread start-up and waiting for the
#: slowest thread on a shared machine cost more than they save (measured: 1e6 samples convert
#: 3x faster on one thread than on two busy cores).
PARALLEL_MIN_SAMPLES = 1 << 21

ADC_PARAMETERS = (
    Parameter("bits", "1", "resolution", kind="int", low=1, high=16),
    Parameter("kind", "1", "architecture", default="ideal", kind="str", choices=ADC_KINDS),
    Parameter("offset_sigma_lsb", "1", "flash comparator offset sigma, LSB", default=0.0, low=0.0, high=10.0),
    Parameter("cap_mismatch_sigma", "1", "SAR unit-capacitor relative mismatch sigma", default=0.0, low=0.0, high=0.5),
    Parameter("comparator_noise_lsb", "1", "SAR comparator noise rms per decision, LSB", default=0.0, low=0.0, high=10.0),
    Parameter("noise_lsb", "1", "input-referred thermal noise rms, LSB", default=0.0, low=0.0, high=100.0),
    Parameter("gain_error", "1", "relative gain error", default=0.0, low=-0.5, high=0.5),
    Parameter("offset_lsb", "1", "offset error, LSB", default=0.0, low=-1e3, high=1e3),
    Parameter("ramp_rc_s", "s", "RC time constant of the ramp (0: ideal linear ramp)", default=0.0, low=0.0, high=1.0),
    Parameter("f_clk_hz", "Hz", "ramp counter clock", default=1e9, low=0.0, high=1e12, low_open=True),
    Parameter("sample_rate_hz", "Hz", "conversions per second", default=1.28e9, low=0.0, high=1e12, low_open=True),
    Parameter("fom_walden_j", "J", "Walden figure of merit, J per conversion step", default=0.0, low=0.0, high=1e-9),
    Parameter("fom_schreier_db", "dB", "Schreier FOM (used when fom_walden_j is 0)", default=0.0, low=0.0, high=250.0),
    Parameter("power_w", "W", "ADC power (used when both FOMs are 0)", default=0.0, low=0.0, high=10.0),
    Parameter("seed", "1", "seed of the static mismatch draw", default=0, kind="int", low=0, high=2**63 - 1),
)

SPEC = register_model(
    ModelSpec(
        name="adc",
        kind="circuit",
        doc="an analog-to-digital converter: architecture, resolution, non-idealities, power",
        parameters=ADC_PARAMETERS,
    )
)


# --------------------------------------------------------------------------- kernels
@jit_parallel
def _quantise_uniform(x, lo, inv_lsb, gain, offset, noise, top, out):
    """Mid-tread uniform quantiser: x (n, C), lo/inv_lsb (C,), noise (n, C) or empty.

    Returns the number of non-finite inputs (their codes are left 0; the wrapper raises).
    """
    n, ncol = x.shape
    noisy = noise.size > 0
    bad = 0
    for r in prange(n):
        for c in range(ncol):  # branch-free body: the loop vectorises
            xv = x[r, c]
            u = (xv - lo[c]) * inv_lsb[c] * gain + offset
            if noisy:
                u += noise[r, c]
            q = min(max(math.floor(u + 0.5), 0.0), top)
            bad += not (abs(xv) < np.inf)
            out[r, c] = np.int64(q) if q == q else 0
    return bad


@jit  # serial: compiles 3x faster than a prange kernel, and tiles convert ~1e5 samples per MVM
def _quantise_thresholds(x, lo, inv_lsb, gain, offset, noise, thresholds, instance, out):
    """Code = number of sorted transition levels (LSB) at or below u'; binary search.

    ``thresholds`` is (converters, 2**bits - 1); column ``c`` is converted by ``instance[c]``.
    """
    n, ncol = x.shape
    noisy = noise.size > 0
    nt = thresholds.shape[1]
    bad = 0
    for r in range(n):
        for c in range(ncol):
            if not math.isfinite(x[r, c]):
                bad += 1
                out[r, c] = 0
                continue
            u = (x[r, c] - lo[c]) * inv_lsb[c] * gain + offset
            if noisy:
                u += noise[r, c]
            t = thresholds[instance[c]]
            a = 0
            b = nt
            while a < b:  # first index with t[i] > u
                m = (a + b) >> 1
                if t[m] <= u:
                    a = m + 1
                else:
                    b = m
            out[r, c] = a
    return bad


@jit_parallel
def _quantise_sar(x, lo, inv_lsb, gain, offset, noise, weights, instance, cmp_noise, out):
    """Successive approximation against a capacitor DAC of bit weights (LSB units).

    ``weights`` is (converters, bits); column ``c`` is converted by ``instance[c]``.
    ``cmp_noise`` is (n, C, bits) comparator noise in LSB, or empty.  The input is shifted by
    half an LSB so that the ideal converter is the mid-tread quantiser.

    Rows run in parallel; within a row the bit decisions go bit by bit over all columns (a
    branch-free loop over the columns, which vectorises), each column with the arithmetic of a
    scalar SAR in the same order, so the codes are those of the column-by-column loop exactly.
    Returns the number of non-finite inputs (their codes are left 0; the wrapper raises).
    """
    n, ncol = x.shape
    bits = weights.shape[1]
    noisy = noise.size > 0
    cnoisy = cmp_noise.size > 0
    wcol = np.empty((bits, ncol))  # each column's converter's bit weights, gathered once
    for c in range(ncol):
        for k in range(bits):
            wcol[k, c] = weights[instance[c], k]
    bad = 0
    for r in prange(n):
        u = np.empty(ncol)
        level = np.zeros(ncol)
        code = np.zeros(ncol, dtype=np.int64)
        nbad = 0
        for c in range(ncol):
            xv = x[r, c]
            ok = abs(xv) < np.inf
            nbad += not ok
            u[c] = ((xv if ok else lo[c]) - lo[c]) * inv_lsb[c] * gain + offset + 0.5
            if noisy:
                u[c] += noise[r, c]
        for j in range(bits):
            k = bits - 1 - j
            step = 1 << k
            for c in range(ncol):
                trial = level[c] + wcol[k, c]
                d = u[c] - trial
                if cnoisy:
                    d += cmp_noise[r, c, j]
                take = d >= 0.0
                code[c] += step * take
                level[c] = trial if take else level[c]
        for c in range(ncol):
            out[r, c] = code[c] if abs(x[r, c]) < np.inf else 0
        bad += nbad
    return bad


@jit(inline="always")
def mid_tread_code(x, lo, inv_lsb, gain, offset, top):
    """The mid-tread quantiser's code of one noiseless input ``x``: :func:`_quantise_uniform`'s
    arithmetic in its order (read kernels inline it in their loops over the channels)."""
    u = (x - lo) * inv_lsb * gain + offset
    return np.int64(min(max(math.floor(u + 0.5), 0.0), top))


@jit(inline="always")
def code_at(x, lo, inv_lsb, terms, sar_weights):
    """The code of one input ``x`` (a fused read kernel's device function; the arithmetic of
    :func:`_quantise_uniform` and :func:`_quantise_sar` without noise, in the same order).

    ``terms`` is ``(gain, offset LSB, top code)``; ``sar_weights`` the converter's capacitor
    weights (LSB), or empty for the mid-tread quantiser (an ideal converter, or a SAR whose
    weights are exactly ``2**k``: its bit decisions then give ``floor(u + 1/2)`` exactly).
    """
    bits = sar_weights.shape[0]
    if bits == 0:
        return mid_tread_code(x, lo, inv_lsb, terms[0], terms[1], terms[2])
    u = (x - lo) * inv_lsb * terms[0] + terms[1] + 0.5
    level = 0.0
    code = 0
    for j in range(bits):
        k = bits - 1 - j
        trial = level + sar_weights[k]
        if u - trial >= 0.0:
            code += 1 << k
            level = trial
    return np.int64(code)


def quantise_uniform(x, lo, lsb, bits: int) -> np.ndarray:
    """Ideal mid-tread quantiser: ``clip(floor((x - lo) / lsb + 1/2), 0, 2**bits - 1)``.

    Parameters
    ----------
    x : array_like
        Input values (any unit), 1-D or 2-D ``(samples, columns)``.
    lo, lsb : float or array_like
        Input of code 0 and the LSB size, scalars or per column.
    bits : int
        Resolution.

    Returns
    -------
    numpy.ndarray of int64, the shape of ``x``.
    """
    adc = ADC(bits=int(bits)).with_range(lo, np.asarray(lo) + np.asarray(lsb) * (2 ** int(bits) - 1))
    return adc.convert(x)


# --------------------------------------------------------------------------- model
@dataclass(frozen=True, eq=False)
class ADC:
    """An ADC: resolution, architecture, static mismatch (seeded), noise and input range.

    Parameters
    ----------
    bits : int
        Resolution, 1..16.
    kind : {"ideal", "flash", "sar", "ramp"}
        Architecture (see the module docstring for each transfer function).
    offset_sigma_lsb, cap_mismatch_sigma, comparator_noise_lsb, noise_lsb, gain_error : float
        Static mismatch, noise and gain error, as declared in :data:`ADC_PARAMETERS` (units there).
    offset_lsb, ramp_rc_s, f_clk_hz, sample_rate_hz, fom_walden_j, fom_schreier_db, power_w : float
        Offset, ramp, timing and energy figures, as declared in :data:`ADC_PARAMETERS`.
    seed : int
        Seed of the single converter's mismatch draw when ``converter_seeds`` is empty.
    lo, hi : float or array_like
        Input of code 0 and of the top code (input units, per column or global).
    converter_seeds : tuple, optional
        One entry (an int or a tuple of ints) per physical converter: converter ``k`` draws its
        own static mismatch (comparator offsets, capacitor errors) from
        ``numpy.random.default_rng(converter_seeds[k])``.  Empty (default): one converter, drawn
        from ``seed``.
    column_converter : array_like of int, optional
        Which converter digitises each column (columns sharing an ADC through a multiplexer
        share its mismatch); default: converter 0 for every column.

    Examples
    --------
    >>> adc = ADC(bits=4).with_range(0.0, 1.5)
    >>> adc.convert([0.0, 0.049, 0.051, 2.0]).tolist()
    [0, 0, 1, 15]
    """

    bits: int
    kind: str = "ideal"
    offset_sigma_lsb: float = 0.0
    cap_mismatch_sigma: float = 0.0
    comparator_noise_lsb: float = 0.0
    noise_lsb: float = 0.0
    gain_error: float = 0.0
    offset_lsb: float = 0.0
    ramp_rc_s: float = 0.0
    f_clk_hz: float = 1e9
    sample_rate_hz: float = 1.28e9
    fom_walden_j: float = 0.0
    fom_schreier_db: float = 0.0
    power_w: float = 0.0
    seed: int = 0
    lo: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(1))
    hi: np.ndarray = dataclasses.field(default_factory=lambda: np.ones(1))
    converter_seeds: tuple = ()
    column_converter: np.ndarray | None = None

    def __post_init__(self):
        values = {p.name: getattr(self, p.name) for p in ADC_PARAMETERS}
        for p in ADC_PARAMETERS:
            try:
                p.check(values[p.name])
            except ValueError as exc:
                raise InputError(f"{p.name}: got {values[p.name]!r}, expected {exc}") from None
        lo = as_array("lo", self.lo, ndim=(0, 1)).reshape(-1)
        hi = as_array("hi", self.hi, ndim=(0, 1)).reshape(-1)
        if lo.size != hi.size and min(lo.size, hi.size) != 1:
            raise InputError(f"lo, hi: sizes differ, {lo.size} vs {hi.size}")
        lo, hi = np.broadcast_arrays(lo, hi)
        if not np.all(hi > lo):
            bad = int(np.argmax(~(hi > lo)))
            raise InputError(f"hi: expected hi > lo for every column, got lo={lo[bad]!r}, hi={hi[bad]!r} at {bad}")
        object.__setattr__(self, "lo", np.ascontiguousarray(lo, dtype=np.float64))
        object.__setattr__(self, "hi", np.ascontiguousarray(hi, dtype=np.float64))
        object.__setattr__(self, "converter_seeds", tuple(self.converter_seeds))
        if self.column_converter is not None:
            which = np.ascontiguousarray(self.column_converter, dtype=np.int64).reshape(-1)
            if which.size and (which.min() < 0 or which.max() >= self.converters):
                raise InputError(f"column_converter: expected indices in [0, {self.converters - 1}], got range "
                                 f"[{which.min()}, {which.max()}]")
            object.__setattr__(self, "column_converter", which)
        object.__setattr__(self, "_static", self._draw_static())

    @classmethod
    def from_parameters(cls, params, **overrides) -> ADC:
        """Build from a card's parameter mapping (an ``adc`` card or a tile's ``[adc]`` table)."""
        names = {p.name for p in ADC_PARAMETERS}
        kwargs = {k: v for k, v in dict(params).items() if k in names}
        unknown = sorted(set(overrides) - names - {"lo", "hi", "converter_seeds", "column_converter"})
        if unknown:
            raise InputError(f"{unknown[0]}: not an ADC parameter; expected one of {sorted(names)}")
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def from_card(cls, card, **overrides) -> ADC:
        params = card.parameters if card.model == "adc" else card.sections.get("adc", {})
        return cls.from_parameters(params, **overrides)

    # ----------------------------------------------------------------- static errors
    @property
    def levels(self) -> int:
        return 2**self.bits

    @property
    def lsb(self) -> np.ndarray:
        """LSB size per column, input units."""
        return (self.hi - self.lo) / (self.levels - 1)

    @property
    def converters(self) -> int:
        """Number of physical converters (each with its own static mismatch draw)."""
        return max(1, len(self.converter_seeds))

    def _draw_static(self):
        """Static transfer of every converter: (converters, 2**bits - 1) transition levels
        (flash, ramp) or (converters, bits) capacitor weights (SAR), in LSB; None (ideal)."""
        if self.kind == "ideal":
            return None
        seeds = self.converter_seeds or (self.seed,)
        if not self._mismatched:  # every converter alike: one transfer, no generators to make
            one = self._draw_one(None)
            return np.ascontiguousarray(np.broadcast_to(one, (len(seeds), one.size)))
        return np.ascontiguousarray(np.stack([self._draw_one(np.random.default_rng(s)) for s in seeds]))

    @property
    def _mismatched(self) -> bool:
        """Whether the converters' static transfers are random draws (flash offsets, SAR capacitors)."""
        return (self.kind == "flash" and self.offset_sigma_lsb > 0.0) or (self.kind == "sar" and
                                                                            self.cap_mismatch_sigma > 0.0)

    def _draw_one(self, rng: np.random.Generator | None) -> np.ndarray:
        """One converter's static transfer (``rng`` None: without mismatch)."""
        k = np.arange(1, self.levels, dtype=np.float64)
        if self.kind == "flash":
            return k - 0.5 if rng is None else np.sort(k - 0.5 + rng.normal(0.0, self.offset_sigma_lsb, k.size))
        if self.kind == "ramp":
            tau = self.ramp_rc_s * self.f_clk_hz
            ramp = k if tau == 0.0 else tau * -np.expm1(-k / tau)
            return ramp - 0.5
        w = 2.0 ** np.arange(self.bits)  # SAR
        if rng is None:  # no mismatch: the draw times 0 would give w exactly
            return w * self.levels / (w.sum() + 1.0)
        caps = w * (1.0 + rng.normal(0.0, 1.0, self.bits) * self.cap_mismatch_sigma / np.sqrt(w))
        return caps * self.levels / (caps.sum() + 1.0)

    @property
    def transition_levels(self) -> np.ndarray:
        """Static code-transition levels T[1..2**bits-1] in LSB (SAR: from its DAC, noise-free);
        (converters, 2**bits - 1) when there are several converters."""
        if self.kind in ("flash", "ramp"):
            t = self._static.copy()
        elif self.kind == "sar":
            # T[k] = smallest u with code >= k; for a monotone DAC, level(k) - 1/2.
            codes = np.arange(1, self.levels)
            bits = (codes[:, None] >> np.arange(self.bits)) & 1
            t = (self._static[:, None, :] * bits[None]).sum(axis=-1) - 0.5  # same rounding for any count
        else:
            t = np.broadcast_to(np.arange(1, self.levels, dtype=np.float64) - 0.5, (self.converters, self.levels - 1))
        return t[0] if self.converters == 1 else np.array(t)

    @property
    def conversion_time(self) -> float:
        """Seconds per conversion: ``2**bits / f_clk`` for a ramp, else ``1 / sample_rate``."""
        return self.levels / self.f_clk_hz if self.kind == "ramp" else 1.0 / self.sample_rate_hz

    # ----------------------------------------------------------------- ranges
    def with_range(self, lo, hi) -> ADC:
        """A copy whose code 0 sits at ``lo`` and the top code at ``hi`` (per column or global)."""
        return dataclasses.replace(self, lo=np.asarray(lo, dtype=float), hi=np.asarray(hi, dtype=float))

    def calibrate(self, x_batch, method: str = "minmax", per_column: bool = True, percentile: float = 99.9) -> ADC:
        """A copy with its range set from a calibration batch ``(samples, columns)``.

        ``method="minmax"`` spans the batch's min to max; ``"percentile"`` spans the
        ``100 - percentile`` to ``percentile`` percentiles (clips rare outliers).  A column with
        no spread gets a range of one unit of its magnitude (or 1 if it is zero).
        """
        x = as_array("x_batch", x_batch, ndim=2)
        if method not in ("minmax", "percentile"):
            raise InputError(f"method: expected 'minmax' or 'percentile', got {method!r}")
        p = as_scalar("percentile", percentile, low=50.0, high=100.0, low_open=True)
        axis = 0 if per_column else None
        if method == "minmax":
            lo, hi = x.min(axis=axis), x.max(axis=axis)
        else:
            lo, hi = np.percentile(x, 100.0 - p, axis=axis), np.percentile(x, p, axis=axis)
        lo, hi = np.atleast_1d(lo).astype(float), np.atleast_1d(hi).astype(float)
        flat = ~(hi > lo)
        hi = np.where(flat, lo + np.maximum(np.abs(lo), 1.0), hi)
        return self.with_range(lo, hi)

    # ----------------------------------------------------------------- conversion
    def convert(self, x, rng=None, *, noise=None) -> np.ndarray:
        """Codes (int64, the shape of ``x``) for inputs ``x``: 1-D, or ``(samples, columns)``.

        ``rng`` (seed or ``numpy.random.Generator``) is required when the converter is noisy,
        unless ``noise`` gives the draws: ``(input noise (samples, columns) LSB or None,
        comparator noise (samples, columns, bits) LSB or None)`` as :meth:`draw_noise` makes them.
        """
        try:  # finiteness is checked inside the kernels (one pass over the data)
            x = np.asarray(x, dtype=np.float64, order="C")  # keeps 0-d (ascontiguousarray would not)
        except (TypeError, ValueError) as exc:
            raise InputError(f"x: expected numbers, got {x!r:.80}") from exc
        if x.ndim > 2:
            raise InputError(f"x: expected 0-, 1- or 2-D, got shape {x.shape}")
        shape = x.shape
        x2 = x.reshape(-1, 1) if x.ndim < 2 else x
        ncol = x2.shape[1]
        if self.lo.size not in (1, ncol):
            raise InputError(f"x: expected {self.lo.size} columns to match the ADC range, got shape {shape}")
        lo = np.ascontiguousarray(np.broadcast_to(self.lo, (ncol,)))
        inv = np.ascontiguousarray(np.broadcast_to(1.0 / self.lsb, (ncol,)))
        which = np.zeros(ncol, dtype=np.int64) if self.column_converter is None else self.column_converter
        if which.size != ncol:
            raise InputError(f"x: expected {which.size} columns to match column_converter, got shape {shape}")
        noise, cmp_noise = self._given_noise(noise, x2.shape) if noise is not None else self._noise(x2.shape, rng)
        out = np.empty(x2.shape, dtype=np.int64)
        gain = 1.0 + self.gain_error
        threads = numba.get_num_threads()
        if x2.size < PARALLEL_MIN_SAMPLES:
            numba.set_num_threads(1)
        try:
            bad = self._run(x2, lo, inv, gain, noise, cmp_noise, which, out)
        finally:
            numba.set_num_threads(threads)
        if bad:
            first = np.flatnonzero(~np.isfinite(x2.reshape(-1)))[0]
            raise InputError(f"x: expected finite values, got {x2.reshape(-1)[first]!r} at flat index {first} "
                             f"({bad} bad entries)")
        return out.reshape(shape)

    def _run(self, x2, lo, inv, gain, noise, cmp_noise, which, out) -> int:
        if self.kind == "ideal":
            return _quantise_uniform(x2, lo, inv, gain, self.offset_lsb, noise, float(self.levels - 1), out)
        if self.kind == "sar":
            return _quantise_sar(x2, lo, inv, gain, self.offset_lsb, noise, self._static, which, cmp_noise, out)
        return _quantise_thresholds(x2, lo, inv, gain, self.offset_lsb, noise, self._static, which, out)

    def kernel_terms(self, ncol: int):
        """What :func:`code_at` needs for ``ncol`` columns: ``(lo (ncol,), 1/lsb (ncol,), (gain,
        offset, top code), SAR weights (converters, bits) or (1, 0), converter per column)``;
        None for a converter the fused read cannot convert (noisy, flash or ramp): those take
        :meth:`convert`."""
        if self.noisy or self.kind not in ("ideal", "sar") or self.lo.size not in (1, ncol):
            return None
        which = np.zeros(ncol, dtype=np.int64) if self.column_converter is None else self.column_converter
        if which.size != ncol:
            return None
        weights = np.zeros((1, 0))
        if self.kind == "sar" and not np.array_equal(self._static, np.broadcast_to(2.0 ** np.arange(self.bits),
                                                                                   self._static.shape)):
            weights = self._static
        lo = np.ascontiguousarray(np.broadcast_to(self.lo, (ncol,)))
        inv = np.ascontiguousarray(np.broadcast_to(1.0 / self.lsb, (ncol,)))
        terms = np.array([1.0 + self.gain_error, self.offset_lsb, float(self.levels - 1)])
        return lo, inv, terms, weights, (which if weights.shape[1] else np.zeros(ncol, dtype=np.int64))

    @property
    def noisy(self) -> bool:
        """Whether a conversion draws random numbers (input noise or SAR comparator noise)."""
        return self.noise_lsb > 0.0 or (self.kind == "sar" and self.comparator_noise_lsb > 0.0)

    def draw_noise(self, shape, rng) -> tuple:
        """``(input noise, comparator noise)`` in LSB for conversions of ``shape`` (samples,
        columns), drawn from ``rng`` in that order; None for a part the converter lacks."""
        gen = np.random.default_rng(rng)
        noise = gen.normal(0.0, self.noise_lsb, shape) if self.noise_lsb > 0.0 else None
        cnoisy = self.kind == "sar" and self.comparator_noise_lsb > 0.0
        cmp = gen.normal(0.0, self.comparator_noise_lsb, (*shape, self.bits)) if cnoisy else None
        return noise, cmp

    def _given_noise(self, noise, shape):
        try:
            inp, cmp = noise
        except (TypeError, ValueError):
            raise InputError("noise: expected a pair (input noise or None, comparator noise or None)") from None
        inp = np.empty((0, 0)) if inp is None else as_array("noise", inp, shape=shape)
        cmp = np.empty((0, 0, 0)) if cmp is None else as_array("comparator noise", cmp, shape=(*shape, self.bits))
        return np.ascontiguousarray(inp), np.ascontiguousarray(cmp)

    def _noise(self, shape, rng):
        if not self.noisy:
            return np.empty((0, 0)), np.empty((0, 0, 0))
        if rng is None:
            raise InputError("rng: a seed or numpy Generator is required for a noisy ADC")
        return self._given_noise(self.draw_noise(shape, rng), shape)

    def codes_to_input(self, codes) -> np.ndarray:
        """Ideal reconstruction ``lo + code * lsb`` (input units) of codes ``(..., columns)``."""
        codes = as_array("codes", codes, low=0, high=self.levels - 1)
        if self.lo.size == 1:  # a global range keeps the shape of ``codes``
            return self.lo[0] + codes * self.lsb[0]
        return self.lo + codes * self.lsb

    def energy_per_conversion(self, enob: float | None = None) -> float:
        """Joules per conversion from the Walden FOM (``FOM_W 2**ENOB``), else the Schreier FOM
        (``P = (f_s/2) 10**((SNDR - FOM_S)/10)``, SNDR = 6.02 ENOB + 1.76 dB), else ``power/f_s``.

        ``enob`` defaults to ``bits``.  References: R. H. Walden, IEEE JSAC 17, 539 (1999),
        doi:10.1109/49.761034; B. Murmann, "ADC Performance Survey" (Schreier FOM).
        """
        enob = float(self.bits if enob is None else enob)
        if self.fom_walden_j > 0.0:
            return self.fom_walden_j * 2.0**enob
        if self.fom_schreier_db > 0.0:
            sndr = 6.02 * enob + 1.76
            power = 0.5 * self.sample_rate_hz * 10.0 ** ((sndr - self.fom_schreier_db) / 10.0)
            return power / self.sample_rate_hz
        return self.power_w / self.sample_rate_hz
