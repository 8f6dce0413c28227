"""ADC ranges of a tile stack: set them, or calibrate them on a batch's sense outputs.

:class:`AdcRanges` is the part of :class:`~cimphys.circuits.tile.TileStack` that decides each
channel's ADC input range (sense-output volts): explicitly (:meth:`AdcRanges.set_adc_range`,
:meth:`AdcRanges.set_symmetric_range`) or from the sense outputs of a calibration batch disjoint
from the inputs evaluated (:meth:`AdcRanges.calibrate`: min/max, percentiles, or a range
symmetric about 0 V with 0 V on a code).  The two channels of a digital differential pair share
one range, so that their difference is exact in codes.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .dac import slice_inputs

__all__ = ["CALIBRATION_METHODS", "AdcRanges"]

CALIBRATION_METHODS = ("minmax", "percentile", "absmax", "abspercentile")


class AdcRanges:
    """ADC range methods of :class:`~cimphys.circuits.tile.TileStack` (a mixin: it reads the
    stack's ``n_tiles``, ``design``, ``adc``, ``sense``, ``differential``, ``mode``, ``card`` and
    ``_phases``)."""

    @property
    def calibrated(self) -> bool:
        """Whether the ADC ranges were set (by a calibration or explicitly)."""
        return self._calibrated

    def set_adc_range(self, lo, hi):
        """Set the ADC input range (sense-output volts): per channel ``(tiles, channels)`` or
        flattened, per channel of every tile ``(channels,)``, or global; returns self."""
        nt, c = self.n_tiles, self.design.channels
        lo, hi = (a if np.size(a) in (1, nt * c) else np.broadcast_to(np.asarray(a, dtype=float), (nt, c)).reshape(-1)
                  for a in (np.asarray(lo, dtype=float).reshape(-1), np.asarray(hi, dtype=float).reshape(-1)))
        self.adc = self.adc.with_range(lo, hi)
        self._calibrated = True
        return self

    def set_symmetric_range(self, amplitude):
        """ADC ranges symmetric about 0 V with 0 V on a code, reaching ``amplitude`` (V; per
        channel ``(tiles, channels)``, ``(channels,)`` or one): ``lsb = a / (2**(bits-1) - 1)``,
        codes ``-2**(bits-1) ... 2**(bits-1) - 1`` about the mid code.  The two channels of a
        digital differential pair share the larger range; returns self."""
        nt, c = self.n_tiles, self.design.channels
        a = np.broadcast_to(np.asarray(amplitude, dtype=float), (nt, c)).copy()
        if self.differential and self.mode == "column":
            a[:, 0::2] = a[:, 1::2] = np.maximum(a[:, 0::2], a[:, 1::2])
        a = np.where(a > 0, a, float(self.sense.v_swing))  # a dead channel keeps the full swing
        half = 2 ** (self.adc.bits - 1)
        lsb = a / max(half - 1, 1)
        return self.set_adc_range(-half * lsb, (half - 1) * lsb + (lsb if half == 1 else 0.0))

    def sense_outputs(self, x_int, input_bits: int | None = None, signed: bool = False, rng=None):
        """``(ReadResult over (reads, tiles, channels), digits (phases, batch, M))`` of integer
        inputs: what the ADCs would convert (for calibrations)."""
        v, _, _, res, _ = self._phases(x_int, input_bits, signed, rng)
        bits = self.card["input_bits"] if input_bits is None else input_bits
        digits = slice_inputs(x_int, bits, self.dac.bits, signed)[0]
        return res, digits

    def calibrate(self, x_batch, input_bits: int | None = None, signed: bool = False, method: str = "minmax",
                  percentile: float = 99.9, per_column: bool = True, rng=None):
        """Set every channel's ADC range from the sense outputs of a calibration batch; returns self.

        ``method``: ``"minmax"`` (the outputs' min to max), ``"percentile"`` (the ``100 -
        percentile`` to ``percentile`` percentiles), ``"absmax"`` / ``"abspercentile"`` (a range
        symmetric about 0 V with 0 V on a code: ``lsb = a / (2**(bits-1) - 1)`` for ``a`` the
        largest |output| or its percentile, codes ``-2**(bits-1) ... 2**(bits-1) - 1``).  The two
        channels of a digital differential pair share one range so that their difference is exact
        in codes.
        """
        if method not in CALIBRATION_METHODS:
            raise InputError(f"method: expected one of {CALIBRATION_METHODS}, got {method!r}")
        _, _, _, res, _ = self._phases(x_batch, input_bits, signed, rng)
        nt, c = self.n_tiles, self.design.channels
        v = np.ascontiguousarray(res.v_sense).reshape(-1, nt * c)
        pairs = self.differential and self.mode == "column"
        if pairs:
            v = v.reshape(v.shape[0], -1, 2).transpose(0, 2, 1).reshape(-1, nt * c // 2)
        if method.startswith("abs"):
            mag = np.abs(res.v_sense).reshape(-1, nt * c)
            axis = 0 if per_column else None
            a = mag.max(axis=axis) if method == "absmax" else np.percentile(mag, percentile, axis=axis)
            return self.set_symmetric_range(np.broadcast_to(a, (nt * c,)).reshape(nt, c))
        cal = self.adc.calibrate(v, method=method, per_column=per_column, percentile=percentile)
        lo, hi = (np.repeat(a, 2) if pairs and np.size(a) > 1 else a for a in (cal.lo, cal.hi))
        return self.set_adc_range(lo, hi)
