"""The hot part of a tile read: the array's product, cell noise, sensing and conversion in one pass.

:class:`~cimphys.circuits.tile.TileStack` reads many tiles at once, and one Numba kernel,
:func:`tile_reads`, does all of a read's per-channel work, tile by tile (the tiles spread over
the cores), with no intermediate array per step:

1. **The array's product**, ``i_c = sum_m v_m (S T)_mc`` per tile and read: the operand ``S T``
   is stored transposed, ``(tiles, M, C)``, in ``PRODUCT_DTYPE`` (float32: half the memory of
   float64) and the sums are taken in float64, word line by word line (a word line driven at 0 V
   adds nothing and is skipped), so each sum has one fixed order whatever the number of threads.
   Bound of the error against float64 operands: each operand rounds to float32 (relative
   ``u = 2**-24``), each product of two float32 numbers is exact in float64 and the ``M``-term
   float64 sum adds at most ``M 2**-53`` relative (Higham, *Accuracy and Stability of
   Numerical Algorithms*, 2nd ed., SIAM 2002, eq. 3.5), so
   ``|i32 - i64| <= (u + M 2**-53) sum_m |v_m| |(S T)_mc|``: for a 128-row tile 6e-8 of the
   current a full column of ``g_max`` cells would carry, far below the half LSB of a 12-bit ADC
   over that full scale (1.2e-4) and below the cells' read noise.
2. **Cell noise**: each channel's current noise ``sqrt(var) z``, its variance ``sum_i thermal +
   sum_m (|v_m| shot_mc + v_m**2 flicker_mc)`` summed the same way (for binary drives one
   operand, ``shot + V flicker``), ``z`` the standard normal of read ``b`` and channel ``c`` under
   the tile's key for this call, computed in place by
   :func:`cimphys.circuits.counter_normals.normal_at`.
3. **Sense amplifier and clipping**: the amplifier's transfer (TIA: ``R_t i - (offset + noise)
   beta^-1``; integrator and load resistor: ``R_t i + offset + noise``), clipped at the swing.
4. For digital MVMs (``adc`` given), **the ADC code and the shift-add**: each channel's code by
   :func:`~cimphys.circuits.adc.code_at` (the converter's own arithmetic; noisy converters and
   flash or ramp transfers take the separate path) added, times its read's bit weight and sign,
   into the token's output.  Without ``adc`` the kernel returns the noisy currents, the sense
   outputs and the clipping, ``(batch, tiles, C)`` each, for calibrations.

Its NumPy twin, :func:`tile_reads_numpy`, makes the same float64 operations in the same order
with array operations and the amplifier's own ``output`` method, and agrees bit for bit (tested).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._numba import jit, jit_parallel, prange
from ..errors import InputError
from .adc import code_at, mid_tread_code
from .counter_normals import ZIGGURAT, counter_normals, normal_at
from .sense import TIA

__all__ = ["BINARY_NOISE", "NO_NOISE", "PRODUCT_DTYPE", "SEPARATE_NOISE", "SenseTerms", "sense_terms", "tile_reads",
           "tile_reads_numpy"]

#: Storage precision of a read's operands (``S T`` and the noise coefficients): float32, whose
#: rounding (bound in the module docstring, tested) is far below a 12-bit ADC's half LSB and
#: below the cells' read noise; every sum is taken in float64.
PRODUCT_DTYPE = np.float32

#: Noise operands of :func:`tile_reads`: none, one operand for binary drives (``shot + V
#: flicker``), or the shot and 1/f coefficients apart (``|v|`` and ``v**2``).
NO_NOISE, BINARY_NOISE, SEPARATE_NOISE = 0, 1, 2


@jit(inline="always")
def _accumulate(v, kv, b, a, k, power, out):
    """``out[c] += sum_m f(v[kv, b, m]) a[k, m, c]`` with ``f`` the identity (``power`` 0),
    ``|v|`` (1) or ``v**2`` (2); word lines at 0 V are skipped."""
    for m in range(a.shape[1]):
        x = np.float64(v[kv, b, m])
        if x != 0.0:
            if power == 1:
                x = abs(x)
            elif power == 2:
                x = x * x
            for c in range(out.shape[0]):
                out[c] += x * a[k, m, c]


@jit_parallel
def _tile_reads(v, tiles_per_drive, a, currents, noise_kind, shot, flicker, thermal, keys, ki, wi, fi, transimpedance,
                offset, noise_gain, tia, sense_noise, swing, lo, inv_lsb, adc_terms, sar_weights, instance, read_weight,
                tokens, i_out, v_out, sat, codes, clipped):
    """Kernel of :func:`tile_reads` (tile ``k`` driven by ``v[k // tiles_per_drive]``); ``codes`` empty: write ``i_out``, ``v_out``, ``sat`` (reads,
    tiles, C), else add each read's code times ``read_weight[read // tokens]`` into ``codes``
    (tokens, tiles, C) and count clipped outputs in ``clipped`` (tokens, tiles).  Returns the
    number of non-finite sense outputs."""
    nt, nc = offset.shape[0] // thermal.shape[1], thermal.shape[1]
    nb = v.shape[1] if currents.size == 0 else currents.shape[1]
    given = currents.size > 0
    snoisy = sense_noise.size > 0
    convert = codes.size > 0
    closed = sar_weights.shape[1] == 0  # the mid-tread quantiser (code_at's closed form)
    gain, adc_offset, top = adc_terms[0], adc_terms[1], adc_terms[2]
    bad = 0
    for k in prange(nt):
        cur = np.zeros(nc)
        var = np.zeros(nc)
        z = np.zeros(nc)
        out = np.zeros(nc)
        clip = np.zeros(nc, dtype=np.bool_)
        kv = np.int64(k) // np.int64(tiles_per_drive)
        nbad = 0
        for b in range(nb):
            if given:
                for c in range(nc):
                    cur[c] = np.float64(currents[k, b, c])
            else:
                cur[:] = 0.0
                _accumulate(v, kv, b, a, k, 0, cur)
            if noise_kind != 0:
                var[:] = 0.0
                if noise_kind == 1:
                    _accumulate(v, kv, b, shot, k, 0, var)
                else:
                    _accumulate(v, kv, b, shot, k, 1, var)
                    _accumulate(v, kv, b, flicker, k, 2, var)
                for c in range(nc):  # the normals first (branches), the rest in loops without branches
                    z[c] = normal_at(b, c, keys[k], ki, wi, fi)
                for c in range(nc):
                    cur[c] = cur[c] + math.sqrt(var[c] + thermal[k, c]) * z[c]
            base = k * nc
            if snoisy:
                for c in range(nc):
                    e = sense_noise[b, base + c]
                    out[c] = transimpedance * cur[c] - (offset[base + c] + e) * noise_gain[base + c] if tia else \
                        transimpedance * cur[c] + offset[base + c] + e
            elif tia:  # R_t i - (offset + noise) * beta^-1
                for c in range(nc):
                    out[c] = transimpedance * cur[c] - offset[base + c] * noise_gain[base + c]
            else:  # R_t i + offset + noise
                for c in range(nc):
                    out[c] = transimpedance * cur[c] + offset[base + c]
            for c in range(nc):  # clipping at the swing
                y = out[c]
                nbad += not (abs(y) < np.inf)
                clip[c] = abs(y) > swing
                out[c] = min(max(y, -swing), swing)
            if not convert:
                for c in range(nc):
                    i_out[b, k, c] = cur[c]
                    v_out[b, k, c] = out[c]
                    sat[b, k, c] = clip[c]
                continue
            t = b % tokens
            w = read_weight[b // tokens]
            if closed:  # code_at's closed form, in a loop of its own (vectorised)
                for c in range(nc):
                    codes[t, k, c] += w * mid_tread_code(out[c], lo[base + c], inv_lsb[base + c], gain, adc_offset,
                                                         top)
            else:
                for c in range(nc):
                    codes[t, k, c] += w * code_at(out[c], lo[base + c], inv_lsb[base + c], adc_terms,
                                                  sar_weights[instance[base + c]])
            nclip = 0
            for c in range(nc):
                nclip += clip[c]
            clipped[t, k] += nclip
        bad += nbad
    return bad


class SenseTerms(NamedTuple):
    """What :func:`tile_reads` takes of the sense amplifiers: transimpedance (ohm), per-channel
    offset (V) and offset/noise gain, whether they are TIAs, and the output swing (V)."""

    transimpedance: float
    offset: np.ndarray
    gain: np.ndarray
    tia: bool
    v_swing: float


def sense_terms(sense, g_source, channels: int) -> SenseTerms:
    """:class:`SenseTerms` of amplifier ``sense`` (per-channel offsets of every tile, flattened)
    seeing Norton conductances ``g_source`` (channels,) S (the TIA's offset/noise gain)."""
    offset = np.ascontiguousarray(np.broadcast_to(np.asarray(sense.offset_v, dtype=np.float64), (channels,)))
    tia = isinstance(sense, TIA)
    if tia:
        gain = np.ascontiguousarray(np.broadcast_to(sense.noise_gain(np.asarray(g_source, dtype=np.float64)),
                                                    (channels,)), dtype=np.float64)
    else:
        gain = np.ones(channels)
    return SenseTerms(float(sense.transimpedance), offset, gain, tia, float(sense.v_swing))


def _noise_arrays(noise, nt: int, nc: int, dtype):
    if noise is None:
        return NO_NOISE, np.empty((0, 0, 0), dtype), np.empty((0, 0, 0), dtype), np.zeros((nt, nc))
    kind, shot, flicker, thermal = noise
    flicker = np.empty((0, 0, 0), dtype) if flicker is None else np.ascontiguousarray(flicker, dtype=dtype)
    return (kind, np.ascontiguousarray(shot, dtype=dtype), flicker,
            np.ascontiguousarray(thermal, dtype=np.float64))


def _check_shapes(v, a, noise, keys, sense, sense_noise, currents, adc, nt: int, nc: int) -> None:
    """Refuse operands whose shapes disagree (the kernel indexes them unchecked), by name."""
    def need(name, arr, shape):
        if np.shape(arr) != shape:
            raise InputError(f"{name}: expected shape {shape}, got {np.shape(arr)}")

    if np.ndim(v) != 3 or v.shape[0] == 0 or nt % v.shape[0]:
        raise InputError(f"v: expected (drives, reads, M) with drives dividing the {nt} tiles, got {np.shape(v)}")
    nb, m = v.shape[1], v.shape[2]
    if currents is None:
        need("a", a, (nt, m, nc))
    else:
        need("currents", currents, (nt, nb, nc))
    if noise is not None:
        kind, shot, flicker, thermal = noise
        if kind not in (BINARY_NOISE, SEPARATE_NOISE):
            raise InputError(f"noise: expected kind BINARY_NOISE or SEPARATE_NOISE, got {kind!r}")
        need("noise shot", shot, (nt, m, nc))
        if kind == SEPARATE_NOISE:
            need("noise flicker", flicker, (nt, m, nc))
        need("noise thermal", thermal, (nt, nc))
        need("keys", keys, (nt,))
    need("sense offset", sense.offset, (nt * nc,))
    need("sense gain", sense.gain, (nt * nc,))
    if sense_noise is not None:
        need("sense_noise", sense_noise, (nb, nt * nc))
    if adc is not None:
        (lo, inv, terms, sar, which), read_weight, tokens = adc
        for name, arr in (("adc lo", lo), ("adc 1/lsb", inv), ("adc converter", which)):
            need(name, arr, (nt * nc,))
        if sar.shape[1] and (which.min() < 0 or which.max() >= sar.shape[0]):
            raise InputError(f"adc converter: expected indices below {sar.shape[0]}, got {which.min()}..{which.max()}")
        if int(tokens) < 1 or np.size(read_weight) * int(tokens) != nb:
            raise InputError(f"adc: expected {nb} reads = phases ({np.size(read_weight)}) x tokens, got tokens {tokens}")


def tile_reads(v, a, noise, keys, sense: SenseTerms, sense_noise=None, *, currents=None, adc=None):
    """Array product, cell noise, sense amplifier (and ADC with shift-add) of every read, in one pass.

    Parameters
    ----------
    v : ndarray (drives, reads, M), V
        Word-line voltages: one drive for every tile (``drives`` 1), one per tile, or one per
        group of ``tiles / drives`` consecutive tiles (the tiles of one Q4_1 block).
    a : ndarray (tiles, M, C), S
        ``S T`` transposed: sense-amplifier input current per word-line volt (float32 or 64).
    noise : tuple or None
        The cells' read noise: ``(BINARY_NOISE, shot + V flicker (tiles, M, C), None, thermal
        (tiles, C))`` for drives of 0 or ``V``, ``(SEPARATE_NOISE, shot, flicker, thermal)``
        otherwise (A**2, A**2/V, A**2/V**2 and A**2 per channel); None: noiseless cells.
    keys : ndarray (tiles,) uint64 or None
        Each tile's key of the standard normals of this call (read ``b``, channel ``c``:
        :func:`~cimphys.circuits.counter_normals.normal_at`).
    sense : SenseTerms
        The amplifiers (:func:`sense_terms`).
    sense_noise : ndarray (reads, tiles * C), V, optional
        The amplifiers' input-referred noise on each read.
    currents : ndarray (tiles, reads, C), A, optional
        The noiseless array's sense input currents, when solved elsewhere (nonlinear cells):
        ``v`` then only sets the noise.
    adc : (terms, read_weight (phases,) int64, tokens int), optional
        Convert every output and shift-add: ``terms`` are the converter's
        (:meth:`~cimphys.circuits.adc.ADC.kernel_terms`); read ``r`` is phase ``r // tokens`` of
        token ``r % tokens``, its code weighted by ``read_weight[phase]``.

    Returns
    -------
    ``(i_out, v_sense, saturated)`` (reads, tiles, C) each: noisy currents (A), clipped
    outputs (V), clipping; with ``adc``: ``(codes (tokens, tiles, C) int64, clipped (tokens,))``.
    """
    nt = a.shape[0] if currents is None else currents.shape[0]
    nc = a.shape[2] if currents is None else currents.shape[2]
    nb = v.shape[1]
    _check_shapes(v, a, noise, keys, sense, sense_noise, currents, adc, nt, nc)
    dtype = np.float32 if a.dtype == np.float32 else np.float64
    kind, shot, flicker, thermal = _noise_arrays(noise, nt, nc, dtype)
    if adc is None:
        i_out, v_out = np.empty((nb, nt, nc)), np.empty((nb, nt, nc))
        sat = np.empty((nb, nt, nc), dtype=np.bool_)
        codes, clipped = np.zeros((0, 0, 0), dtype=np.int64), np.zeros((0, 0), dtype=np.int64)
        lo, inv, terms, sar, which = (np.zeros(nt * nc), np.zeros(nt * nc), np.zeros(3), np.zeros((1, 0)),
                                      np.zeros(nt * nc, dtype=np.int64))
        read_weight, tokens = np.ones(1, dtype=np.int64), nb
    else:
        (lo, inv, terms, sar, which), read_weight, tokens = adc
        i_out = v_out = np.empty((0, 0, 0))
        sat = np.empty((0, 0, 0), dtype=np.bool_)
        codes, clipped = np.zeros((tokens, nt, nc), dtype=np.int64), np.zeros((tokens, nt), dtype=np.int64)
    bad = _tile_reads(np.ascontiguousarray(v, dtype=np.float64), nt // v.shape[0], np.ascontiguousarray(a, dtype=dtype),
                      np.empty((0, 0, 0)) if currents is None else np.ascontiguousarray(currents, dtype=np.float64),
                      kind, shot, flicker, thermal,
                      np.zeros(nt, dtype=np.uint64) if keys is None else np.ascontiguousarray(keys, dtype=np.uint64),
                      *ZIGGURAT, sense.transimpedance, sense.offset, sense.gain, sense.tia,
                      np.empty((0, 0)) if sense_noise is None else np.ascontiguousarray(sense_noise, dtype=np.float64),
                      sense.v_swing, lo, inv, terms, sar, which, np.asarray(read_weight, dtype=np.int64),
                      int(tokens), i_out, v_out, sat, codes, clipped)
    if bad:
        raise InputError(f"read: {bad} sense outputs are not finite (a non-finite operand, current or noise)")
    if adc is None:
        return i_out, v_out, sat
    return codes, clipped.sum(axis=1)


def tile_reads_numpy(v, a, noise, keys, sense, g_source, sense_noise=None, *, currents=None):
    """The NumPy twin of :func:`tile_reads` without ``adc``: the same float64 sums word line by
    word line, the normals of :func:`~cimphys.circuits.counter_normals.counter_normals` and the
    amplifier's ``output``."""
    v = np.asarray(v, dtype=np.float64)
    nt = a.shape[0] if currents is None else currents.shape[0]
    nc = a.shape[2] if currents is None else currents.shape[2]
    nb = v.shape[1]

    def accumulate(x, op, out):  # the kernel's sums, word line after word line
        x = np.repeat(x, nt // x.shape[0], axis=0)
        for m in range(op.shape[1]):
            out += x[:, :, m, None] * op[:, m, None, :].astype(np.float64)
        return out

    i = accumulate(v, a, np.zeros((nt, nb, nc))) if currents is None else np.asarray(currents, dtype=np.float64)
    if noise is not None:
        kind, shot, flicker, thermal = noise
        if kind == BINARY_NOISE:
            var = accumulate(v, shot, np.zeros((nt, nb, nc)))
        else:  # |v| shot, then v**2 flicker, into one sum
            var = accumulate(v * v, flicker, accumulate(np.abs(v), shot, np.zeros((nt, nb, nc))))
        z = np.stack([counter_normals(key, nb, nc) for key in keys])
        i = i + np.sqrt(var + thermal[:, None, :]) * z
    i = np.ascontiguousarray(i.transpose(1, 0, 2))
    flat = i.reshape(nb, nt * nc)
    out, sat = sense.output(flat, g_source=g_source, noise=sense_noise)
    shape = (nb, nt, nc)
    return i, np.broadcast_to(out, flat.shape).reshape(shape), np.broadcast_to(sat, flat.shape).reshape(shape)
