"""A statistical tile emulated from its exported configuration alone (no circuit solved).

:func:`emulate_errors` rebuilds the errors of a tile's matrix-vector product from the fits an
export carries (:func:`cimphys.exports.aihwkit.aihwkit_config`), the way another simulator would:
the check that the exported numbers reproduce the physics they summarise
(:func:`cimphys.exports.error_model.physics_errors`).  :func:`statistical_levels` (PCM) and
:func:`write_verify_levels` (dynamic RRAM) draw programmed levels from those fits; CrossSim's
static error (:mod:`cimphys.exports.crosssim`) uses them too.

References
----------
V. Joshi et al., Nat. Commun. 11, 2473 (2020), doi:10.1038/s41467-020-16108-9 (the PCM
statistics).  T. P. Xiao et al., "CrossSim: accuracy simulation of analog in-memory computing",
https://github.com/sandialabs/cross-sim (bit-sliced ADC, ``adc_per_ibit``).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .error_model import cell_levels

__all__ = ["emulate_errors", "statistical_levels", "write_verify_levels"]


def emulate_errors(config: dict, *, input_magnitude, weight_magnitude, n_tiles=4, batch=64, seed=0) -> np.ndarray:
    """MVM errors of a statistical tile built only from an exported aihwkit configuration.

    Weights and inputs are drawn as in
    :func:`cimphys.exports.error_model.physics_errors`; the device statistics come from the
    configuration's fits -- PCM: programming polynomial, drift, 1/f read noise, global
    compensation; dynamic RRAM: Gaussian programming error with the fitted sigma and bias
    polynomials, thermal + shot noise on every read -- the sense load of each column from its own
    conductance sum, ``1 / (1 + R_s sum_i G_ij)``, the wires' IR drop from the per-column gain
    table measured against that law (a voltage-mode load of 100 ohm on NeuRRAM makes the
    compression differ between the two columns of a pair, tile by tile), and the converter as CrossSim's bit-sliced path (``adc_per_ibit``): each input slice is
    read, rounded to the ADC step ``s_phase`` (plus ADC noise) and shift-added.  No circuit is
    solved.
    """
    c = config["cimphys"]
    table = c["ir_gain"]
    ix, iw = _index(table["input_magnitude"], input_magnitude), _index(table["weight_magnitude"], weight_magnitude)
    # the sense input resistance compresses each column by 1 / (1 + R_s sum_i G_ij) (exact without
    # wires); the wires' share is the table measured against that law (older exports: the total)
    wire = "wire" in table
    gain = np.asarray(table["wire" if wire else "value"][ix][iw])
    m, diff, b_in, b_dac = c["rows"], c["differential"], c["input_bits"], c["dac_bits"]
    x_full, n_out = 2**b_in - 1, c["cols"] // 2 if diff else c["cols"]
    step, noise = c["s_phase"][str(c["adc_bits"])], c["noise_phase"][str(c["adc_bits"])]
    shifts = b_dac * np.arange(-(-b_in // b_dac))
    levels_of = write_verify_levels if c.get("family") == "dynamic" else statistical_levels
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(n_tiles):
        w = rng.uniform(-weight_magnitude if diff else 0.0, weight_magnitude, (m, n_out))
        read, alpha = levels_of(c, cell_levels(w, diff), rng)
        x = rng.integers(0, int(round(input_magnitude * x_full)) + 1, (batch, m))
        digits = (x[None] >> shifts[:, None, None]) & ((1 << b_dac) - 1)  # (slices, batch, rows)
        cells = c["g_min_norm"] + read
        phase = gain * (digits @ cells)  # one read per slice, IR drop per column
        if wire:
            phase /= 1.0 + c["sense_r_norm"] * cells.sum(axis=0)
        if c.get("read_noise"):  # thermal + shot current noise of the column's cells, every read
            var = c["read_noise"]["thermal"] * cells.sum(axis=0) + c["read_noise"]["shot"] * (digits @ cells)
            phase += np.sqrt(var) * rng.standard_normal(phase.shape)
        phase = np.round(phase / step) * step + noise * rng.standard_normal(phase.shape)
        total = np.tensordot(2.0**shifts, phase, axes=1)  # shift-add
        u = total[:, 0::2] - total[:, 1::2] if diff else total - c["g_min_norm"] * x.sum(axis=1, keepdims=True)
        errors.append(alpha * u / x_full - (x / x_full) @ w)
    return np.concatenate([e.ravel() for e in errors])


def _index(axis, value) -> int:
    axis = np.asarray(axis, dtype=float)
    i = int(np.argmin(np.abs(axis - float(value))))
    if not np.isclose(axis[i], float(value)):
        raise InputError(f"magnitude {value!r} is not in the exported table {axis.tolist()}")
    return i


def statistical_levels(c: dict, levels: np.ndarray, rng) -> tuple[np.ndarray, float]:
    """The IBM PCM statistics on normalised levels, from the exported fits only."""
    d, r, t = c["drift"], c["read"], c["t_inference"]
    lv = levels.ravel()
    sigma = np.maximum(sum(k * lv**i for i, k in enumerate(c["prog_coeff_rel"])), 0.0)
    g_p = np.maximum(lv + sigma * rng.standard_normal(lv.shape), 0.0)
    log_g = np.log(np.maximum(lv, d["g_rel_min"]))
    mu = np.clip(d["nu_mean_slope"] * log_g + d["nu_mean_offset"], d["nu_mean_min"], d["nu_mean_max"])
    sd = np.clip(d["nu_std_slope"] * log_g + d["nu_std_offset"], d["nu_std_min"], d["nu_std_max"])
    nu = np.abs(mu + sd * rng.standard_normal(lv.shape))
    q_s = np.minimum(r["read_q"] / np.maximum(g_p ** r["read_q_exponent"], r["read_q_floor"]), r["read_q_max"])

    def read(time):
        drifted = g_p * max(time / d["t0"], 1.0) ** (-nu)
        spread = q_s * np.sqrt(np.log((time + r["t_read"]) / (2 * r["t_read"])))
        return np.maximum(drifted + drifted * spread * rng.standard_normal(lv.shape), 0.0)

    now = read(t)
    alpha = float(read(d["t0"]).sum() / read(t).sum())
    lo, hi = c["conductance_clip"]
    return np.clip(now, lo, hi).reshape(levels.shape), alpha


def write_verify_levels(c: dict, levels: np.ndarray, rng) -> tuple[np.ndarray, float]:
    """Write-verified RRAM levels from the exported fits: ``G_T + bias(G_T) + sigma(G_T) N``, no
    drift (so no compensation, ``alpha = 1``)."""
    lv = levels.ravel()
    sigma = np.maximum(np.polyval(c["prog_coeff_rel"][::-1], lv), 0.0)
    g_p = lv + np.polyval(c["prog_bias_rel"][::-1], lv) + sigma * rng.standard_normal(lv.shape)
    lo, hi = c["conductance_clip"]
    return np.clip(g_p, lo, hi).reshape(levels.shape), 1.0
