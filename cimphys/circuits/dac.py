"""Input side of a tile: word-line DACs, bit-serial and pulse-width input encodings, shift-add.

A DAC turns a digit ``d`` in ``[0, 2**bits - 1]`` into a word-line voltage.  Its static transfer
is that of a binary-weighted DAC whose element ``k`` (weight ``2**k``) has the relative error
``e_k ~ N(0, sigma / sqrt(2**k))`` (``2**k`` unit elements of mismatch ``sigma``), plus an optional
per-code INL table from a card:

``V(d) = v_min + lsb * (sum_k b_k(d) 2**k (1 + e_k) + inl[d])``,  ``lsb = (v_max - v_min) / (2**bits - 1)``.

Settling is first order: a driver that starts each read from 0 V (return-to-zero word lines)
reaches ``V(d) (1 - exp(-t_read / tau))`` at the sampling time.

A **pulse-width** DAC (``kind = "pwm"``, as IBM's HERMES chip drives its word lines: Le Gallo et
al., Nat. Electron. 6, 680 (2023)) holds a word line at ``v_max`` for ``d`` of the
``2**bits - 1`` unit slots of the read and at 0 V otherwise.  For linear cells the charge a
column collects is that of the constant voltage ``V(d) = v_max d (1 + e_r) / (2**bits - 1)``
over the whole read (superposition), so :meth:`DAC.convert` gives this charge-equivalent
voltage; ``e_r ~ N(0, mismatch_sigma)`` is driver ``r``'s relative pulse-width error and an INL
table adds per code.  A first-order driver edge loses ``v tau`` of charge on the rising edge and
returns it on the falling one, so settling leaves the charge unchanged: ``tau_s`` has no effect
on a pulse-width read.

Digital inputs reach the array in phases: :func:`slice_inputs` cuts integers into ``dac_bits``-wide
digits (bit-serial when ``dac_bits = 1``), signed inputs as two phases (positive and negative
magnitudes); after the ADC, :func:`shift_add` recombines the codes.  :func:`pulse_width_charge`
encodes an input as a pulse of ``x * t_unit`` seconds at a fixed read voltage and returns the
collected charge (exact for any cell: piecewise constant in time, one solve per active set).

References
----------
.. [1] M. J. M. Pelgrom et al., IEEE JSSC 24, 1433 (1989), doi:10.1109/JSSC.1989.572629
   (element mismatch scaling with 1/sqrt(area)).
.. [2] A. Shafiee et al., "ISAAC", ISCA 2016, doi:10.1109/ISCA.2016.12 (1-bit bit-serial
   inputs, shift-and-add of the ADC outputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..cards import Parameter
from ..checks import as_array, as_scalar
from ..errors import InputError

__all__ = ["DAC", "DAC_KINDS", "DAC_PARAMETERS", "pulse_width_charge", "shift_add", "slice_inputs"]

DAC_KINDS = ("voltage", "pwm")

DAC_PARAMETERS = (
    Parameter("kind", "1", "voltage levels, or pulse widths at the read voltage", default="voltage", kind="str",
              choices=DAC_KINDS),
    Parameter("bits", "1", "DAC resolution (1: bit-serial binary drivers)", default=1, kind="int", low=1, high=12),
    Parameter("mismatch_sigma", "1", "unit-element relative mismatch sigma", default=0.0, low=0.0, high=0.5),
    Parameter("inl_lsb", "1", "measured static error per code, LSB (2**bits values; [0.0]: none)",
              default=(0.0,), kind="floats", low=-10.0, high=10.0),
    Parameter("tau_s", "s", "driver settling time constant (0: instant)", default=0.0, low=0.0, high=1.0),
    Parameter("energy_per_conversion_j", "J", "DAC/driver energy per conversion", default=0.0, low=0.0, high=1e-6),
    Parameter("c_wordline_f", "F", "word-line capacitance charged per active read", default=0.0, low=0.0, high=1e-9),
    Parameter("seed", "1", "seed of the mismatch draw", default=0, kind="int", low=0, high=2**63 - 1),
)


@dataclass(frozen=True, eq=False)
class DAC:
    """A word-line DAC/driver.

    Parameters
    ----------
    bits : int
        Resolution; 1 is a binary driver (0 V or ``v_max``).
    v_max : float, V
        Output of the top code.
    v_min : float, V
        Output of code 0.
    mismatch_sigma : float
        Relative mismatch of one unit element (seeded draw, ``seed``).
    inl_lsb : array_like, optional
        Extra static error per code (``2**bits`` values, LSB), e.g. measured.
    tau : float, s
        First-order settling time constant (0: instant).
    t_read : float, s
        Time from the start of the read to the sampling instant.
    seed : int
        Seed of the mismatch draw.
    drivers : int
        Word lines, each driven by its own DAC with its own element mismatch (drawn together
        from ``seed``); 1: one DAC (or identical drivers) for every word line.

    Examples
    --------
    >>> DAC(bits=2, v_max=0.3).convert([0, 1, 3]).round(6).tolist()
    [0.0, 0.1, 0.3]
    """

    bits: int = 1
    v_max: float = 0.2
    v_min: float = 0.0
    mismatch_sigma: float = 0.0
    inl_lsb: np.ndarray | None = None
    tau: float = 0.0
    t_read: float = 1e-8
    seed: int = 0
    drivers: int = 1
    kind: str = "voltage"
    levels: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.bits, (int, np.integer)) or not 1 <= int(self.bits) <= 12:
            raise InputError(f"bits: expected an integer in [1, 12], got {self.bits!r}")
        v_max = as_scalar("v_max", self.v_max, unit="V")
        v_min = as_scalar("v_min", self.v_min, unit="V", high=v_max, high_open=True)
        sigma = as_scalar("mismatch_sigma", self.mismatch_sigma, low=0.0, high=0.5)
        tau = as_scalar("tau", self.tau, unit="s", low=0.0)
        t_read = as_scalar("t_read", self.t_read, unit="s", low=0.0, low_open=True)
        if isinstance(self.drivers, bool) or not isinstance(self.drivers, (int, np.integer)) or self.drivers < 1:
            raise InputError(f"drivers: expected a positive integer, got {self.drivers!r}")
        if self.kind not in DAC_KINDS:
            raise InputError(f"kind: expected one of {DAC_KINDS}, got {self.kind!r}")
        n = 2 ** int(self.bits)
        draws = 1 if sigma == 0.0 else int(self.drivers)  # identical drivers share one row
        if self.kind == "pwm":  # a relative pulse-width error per driver
            gain = 1.0 + np.random.default_rng(self.seed).normal(0.0, 1.0, (draws, 1)) * sigma
            units = gain * np.arange(n)[None, :]
        else:
            w = 2.0 ** np.arange(int(self.bits))
            w = w * (1.0 + np.random.default_rng(self.seed).normal(0.0, 1.0, (draws, w.size)) * sigma / np.sqrt(w))
            digits = (np.arange(n)[:, None] >> np.arange(int(self.bits))) & 1
            units = (w[:, None, :] * digits[None]).sum(axis=-1)  # (drivers or 1, 2**bits)
        if self.inl_lsb is not None:
            units = units + as_array("inl_lsb", self.inl_lsb, shape=(n,))
        settle = -math.expm1(-t_read / tau) if tau > 0.0 and self.kind == "voltage" else 1.0
        lsb = (v_max - v_min) / (n - 1)
        levels = (v_min + lsb * units) * settle
        # (2**bits,) for identical drivers, (drivers, 2**bits) when each word line has its own
        object.__setattr__(self, "levels", np.ascontiguousarray(levels[0] if draws == 1 else levels))

    @classmethod
    def from_parameters(cls, params, v_max: float, t_read: float, **overrides) -> DAC:
        """Build from a tile card's ``[dac]`` table; the top code drives ``v_max`` (the read voltage)."""
        p = dict(params)
        inl = p.get("inl_lsb", (0.0,))
        kwargs = dict(bits=p.get("bits", 1), v_max=v_max, mismatch_sigma=p.get("mismatch_sigma", 0.0),
                      drivers=overrides.pop("drivers", 1), kind=p.get("kind", "voltage"),
                      tau=p.get("tau_s", 0.0), t_read=t_read, seed=p.get("seed", 0),
                      inl_lsb=None if tuple(inl) == (0.0,) else np.asarray(inl))
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def lsb(self) -> float:
        """Ideal step, V."""
        return (self.v_max - self.v_min) / (2**self.bits - 1)

    def convert(self, codes) -> np.ndarray:
        """Word-line voltages (V, at the sampling time) for integer digits ``codes``."""
        codes = np.asarray(codes)
        if codes.dtype.kind not in "iu":
            codes = as_array("codes", codes)
            if not np.all(codes == np.floor(codes)):
                raise InputError("codes: expected integers")
            codes = codes.astype(np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= 2**self.bits):
            raise InputError(f"codes: expected integers in [0, {2**self.bits - 1}], got range "
                             f"[{codes.min()}, {codes.max()}]")
        if self.identical:
            return self.levels[codes]
        if codes.shape[-1:] != (self.levels.shape[0],):
            raise InputError(f"codes: expected a last axis of {self.levels.shape[0]} word lines, got shape {codes.shape}")
        return self.levels[np.arange(self.levels.shape[0]), codes]

    @property
    def peak(self) -> float:
        """Highest voltage a word line sees during a read (V): the top level, or ``v_max`` for PWM."""
        return float(self.v_max) if self.kind == "pwm" else float(np.max(self.levels))

    @property
    def identical(self) -> bool:
        """Whether every word line's driver has the same transfer (no element mismatch)."""
        return self.levels.ndim == 1


def _check_int_inputs(x_int, input_bits: int, signed) -> np.ndarray:
    if not isinstance(input_bits, (int, np.integer)) or not 1 <= input_bits <= 32:
        raise InputError(f"input_bits: expected an integer in [1, 32], got {input_bits!r}")
    x = np.asarray(x_int)
    if x.dtype.kind not in "iu":
        xf = as_array("x_int", x)
        if not np.all(xf == np.floor(xf)):
            raise InputError("x_int: expected integers")
        x = xf.astype(np.int64)
    if signed == "magnitude":  # sign and magnitude: input_bits - 1 magnitude bits
        lo, hi = -(2 ** (input_bits - 1) - 1), 2 ** (input_bits - 1) - 1
    elif signed:
        lo, hi = -(2 ** (input_bits - 1)), 2 ** (input_bits - 1) - 1
    else:
        lo, hi = 0, 2**input_bits - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise InputError(f"x_int: expected integers in [{lo}, {hi}] for {input_bits}-bit "
                         f"{'signed' if signed else 'unsigned'} inputs, got range [{x.min()}, {x.max()}]")
    return x.astype(np.int64)


def slice_inputs(x_int, input_bits: int, dac_bits: int = 1, signed: bool = False):
    """Cut integer inputs into DAC digits, one array read per digit.

    Returns ``(digits, weights, signs)``: ``digits`` ``(phases, *x.shape)`` int64 in
    ``[0, 2**dac_bits - 1]``, ``weights`` ``(phases,)`` the place value ``2**(dac_bits*p)``, and
    ``signs`` ``(phases,)`` +1 or -1 (signed inputs: first the positive magnitudes, then the
    negative ones) so that ``x = sum_p signs[p] * weights[p] * digits[p]``.  ``signed`` is
    False, True (two's-complement range ``[-2**(b-1), 2**(b-1))``, ``b`` magnitude bits) or
    ``"magnitude"`` (sign and magnitude, ``|x| < 2**(b-1)``: ``b - 1`` magnitude bits, one read
    fewer per phase).
    """
    x = _check_int_inputs(x_int, input_bits, signed)
    per = math.ceil((input_bits - (signed == "magnitude")) / dac_bits)
    shifts = dac_bits * np.arange(per)
    mask = (1 << dac_bits) - 1
    parts = (np.maximum(x, 0), np.maximum(-x, 0)) if signed else (x,)
    digits = np.concatenate([(m[None] >> shifts.reshape((-1,) + (1,) * x.ndim)) & mask for m in parts])
    weights = np.tile(np.left_shift(1, shifts).astype(np.int64), len(parts))
    signs = np.repeat(np.array([1, -1][: len(parts)], dtype=np.int64), per)
    return digits, weights, signs


def shift_add(codes, weights, signs) -> np.ndarray:
    """Digital recombination ``sum_p signs[p] * weights[p] * codes[p]`` (int64)."""
    codes = np.asarray(codes, dtype=np.int64)
    scale = (np.asarray(signs, dtype=np.int64) * np.asarray(weights, dtype=np.int64))
    return np.tensordot(scale, codes, axes=(0, 0))


def pulse_width_charge(current_fn, x_int, v_read: float, t_unit: float, input_bits: int) -> np.ndarray:
    """Charge (C) collected per column when input ``x`` is a pulse of ``x * t_unit`` at ``v_read``.

    All pulses start together; between consecutive pulse ends the set of driven rows is fixed,
    so ``Q = t_unit * sum_{k=1}^{max x} i_out(v_read * [x >= k])`` with ``current_fn`` mapping word-line
    voltages ``(batch, M)`` to column currents ``(batch, N)`` (one batched solve).
    """
    x = _check_int_inputs(x_int, input_bits, signed=False)
    v_read = as_scalar("v_read", v_read, unit="V")
    t_unit = as_scalar("t_unit", t_unit, unit="s", low=0.0, low_open=True)
    x2 = np.atleast_2d(x)
    top = int(x2.max(initial=0))
    if top == 0:
        i0 = np.asarray(current_fn(np.zeros((1, x2.shape[1]))))
        return np.zeros((x2.shape[0], i0.shape[-1])).reshape((*x.shape[:-1], i0.shape[-1]))
    k = np.arange(1, top + 1).reshape(-1, 1, 1)
    v = (x2[None] >= k) * v_read  # (top, batch, M)
    i = np.asarray(current_fn(v.reshape(-1, x2.shape[1])))
    q = t_unit * i.reshape(top, x2.shape[0], -1).sum(axis=0)
    return q.reshape((*x.shape[:-1], q.shape[-1]))
