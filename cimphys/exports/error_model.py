"""The statistical error model of a tile's matrix-vector product, tabulated for export.

:func:`error_model` runs the physics -- a device card programmed into a ``tile`` circuit card
(crossbar with wire resistance, DACs, sense amplifiers, ADC, shift-add) -- and tabulates the
error of the product against ``adc_bits``, the input magnitude and the weight magnitude.  The
device part is one small function per family (:mod:`cimphys.devices.programming_statistics`);
the tile part is :class:`cimphys.circuits.tile.Tile`, the one model of the chain.

* PCM (``pcm_statistical``): the card's statistical model -- programming noise, drift, 1/f read
  noise, global drift compensation.
* Dynamic RRAM (VTEAM, TEAM, Stanford-PKU, Yakopcic, linear ion drift): the device layer's
  write-verify (:func:`cimphys.devices.programming.write_verify`) on a seeded Monte-Carlo set of
  512 targets across the programming window, to within ``PROG_TOLERANCE`` (2 %) of it, with
  pulses found from the model (``programming_pulses``: fixed pulses, or incremental-step pulse
  programming for cards fixed pulses cannot program -- HP linear drift, TEAM) and the card's
  ``[variability]`` ``c2c_sigma`` if it has one.  The measured ``sigma_prog(G_T)`` and mean
  error per bin are fitted by least squares with ``c0 + c1 g + c2 g**2``
  (``g = (G_T - G_lo) / (G_hi - G_lo)``); the rms residual is exported.  Read noise: thermal +
  shot current noise of every cell on every read, ``sigma_I**2 = (4 k T G + 2 q G |V|) df`` at
  ``T = 300 K`` over the noise bandwidth ``df = 1 / (2 t_int)`` of an average over the read
  (integration) time ``t_int`` (the tile's ``t_read_s``, or ``[sense] t_int_s`` of an
  integrator); no 1/f or RTN (no card gives their parameters).  Drift/retention: none -- no
  dynamic card has a retention model (:mod:`cimphys.devices.retention` is a model of its own
  without a card), so aihwkit's model holds one time and CrossSim's ``drift_error`` is off;
  ``notes`` says so.

Units.  Weights are normalised to ``[0, 1]`` (``[-1, 1]`` for differential tiles), inputs to
``[0, 1]``; the product ``y = x @ W`` and its error are in those normalised units ("1").  A weight
level ``w`` is the cell conductance ``G = g_min + w (g_max - g_min)`` of the tile card, and the
device target ``G_lo + w (G_hi - G_lo)`` in the device's programming window (PCM: ``[0, g_max]``;
RRAM: the tile's window slid, same on/off ratio, into the card's chord-conductance range at the
tile's read voltage).  The device statistics are applied in the device's own window and mapped
linearly onto the tile's; conductances are clipped to the window.  The tile solves linear cells:
an RRAM cell enters at its chord conductance at the read voltage.

:func:`write_lut` writes the table as NetCDF, dims ``adc_bits``, ``input_magnitude``,
``weight_magnitude``: ``error_mean``, ``error_std`` (normalised output units), ``ir_gain``
(analog output with wires / without), ``wire_gain`` (with wires / the sense-load law
``sum_i G_ij v_i / (1 + R_s sum_i G_ij)`` that holds exactly without wires, ``R_s`` the sense
amplifier's input resistance), ``alpha`` (drift compensation), ``n_samples``.  The other
vocabularies: :mod:`cimphys.exports.aihwkit`, :mod:`cimphys.exports.crosssim`.

References
----------
V. Joshi et al., Nat. Commun. 11, 2473 (2020), doi:10.1038/s41467-020-16108-9 (the PCM
statistics).  C. D. Motchenbacher, J. A. Connelly, *Low-Noise Electronic System Design*, Wiley
(1993), ch. 1 (thermal and shot noise; noise bandwidth of an integrator).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import xarray as xr

from .._version import __version__
from ..cards import Card, load_circuit, load_device
from ..checks import as_array, as_scalar
from ..devices.programming_statistics import TEMPERATURE_K, DeviceStatistics, device_statistics
from ..errors import InputError
from ..results import save, variable

__all__ = ["cell_levels", "error_model", "exported_parameters", "noise_bandwidth", "pcm_card_name",
           "physics_errors", "pick_bits", "tile_device_statistics", "write_lut"]


def tile_device_statistics(card: Card, tile: Card, t: float, seed) -> DeviceStatistics:
    """The device statistics for a tile card's window, read voltage and read bandwidth."""
    return device_statistics(card, g_min=tile["g_min_s"], g_max=tile["g_max_s"], v_read=tile["v_read_v"],
                             bandwidth=noise_bandwidth(tile), t=t, seed=seed)


def _cards(device, circuit, rows, cols):
    device = device if isinstance(device, Card) else load_device(device)
    circuit = circuit if isinstance(circuit, Card) else load_circuit(circuit)
    if circuit.model != "tile":
        raise InputError(f"circuit: export needs a 'tile' circuit card, got {circuit.model!r} ({circuit.name})")
    changes = {}
    if rows is not None:
        changes["rows"] = int(as_scalar("rows", rows, low=1, high=circuit["rows"]))
    if cols is not None:
        step = 2 if circuit["differential"] else 1
        changes["cols"] = int(as_scalar("cols", cols, low=step, high=circuit["cols"])) // step * step
    circuit = circuit.with_parameters(**changes) if changes else circuit
    if circuit.sections.get("sense", {}).get("mode") == "reference":
        # The exported error model is of weights in every column, each column read on its own:
        # aihwkit and CrossSim have no reference column.  The card's reference subtraction is
        # how the layer adapter reads its offset encoding; here every column is a weight column.
        circuit = circuit.with_section("sense", mode="column")
    return device, circuit


def noise_bandwidth(tile: Card) -> float:
    """Noise bandwidth (Hz) of one read: ``1 / (2 t_int)`` for an average over the integration
    (read) time ``t_int``, the tile's ``t_read_s`` or its integrator's ``t_int_s``."""
    from ..circuits.tile_design import TileDesign

    return TileDesign(tile).bandwidth


def cell_levels(w: np.ndarray, differential: bool) -> np.ndarray:
    """Cell levels in [0, 1] for normalised weights; differential pairs interleaved (+, -)."""
    if not differential:
        return w
    out = np.empty((w.shape[0], 2 * w.shape[1]))
    out[:, 0::2], out[:, 1::2] = np.maximum(w, 0.0), np.maximum(-w, 0.0)
    return out


def physics_errors(device, circuit, *, adc_bits, input_magnitude, weight_magnitude, t_inference=3600.0,
                   n_tiles=4, batch=64, rows=None, cols=None, seed=0) -> dict:
    """Errors of ``n_tiles`` independently programmed tiles for one setting (see the module doc).

    Returns ``{"error": (n,), "ir_gain": (cols,), "alpha": float}``; the error is in normalised
    output units.  Each tile: uniform weights in ``[0, m_w]`` (``[-m_w, m_w]`` differential),
    uniform integer inputs up to ``m_x (2**input_bits - 1)``, programmed through the device's
    statistics (PCM: the card's model; RRAM: each cell takes an error measured by write-verify
    in its level's bin), read at ``t_inference`` (s) through the tile's crossbar (with the cells'
    thermal + shot noise on every read for RRAM), sense amplifiers and ADC.
    """
    out = _physics(device, circuit, np.atleast_1d(adc_bits), np.atleast_1d(input_magnitude),
                   np.atleast_1d(weight_magnitude), t_inference, n_tiles, batch, rows, cols, seed)
    return {"error": out["errors"][0, 0, 0], "ir_gain": out["ir_gain"][0, 0],
            "alpha": float(out["alpha"][0])}


def _physics(device, circuit, bits_axis, x_axis, w_axis, t_inference, n_tiles, batch, rows, cols, seed) -> dict:
    from ..circuits.tile import Tile

    device, card = _cards(device, circuit, rows, cols)
    t = as_scalar("t_inference", t_inference, unit="s", low=0.0, low_open=True)
    dev = tile_device_statistics(device, card, t, seed)
    bits_axis = [int(as_scalar("adc_bits", b, low=1, high=16)) for b in bits_axis]
    x_axis = as_array("input_magnitude", x_axis, low=0.0, high=1.0, low_open=True, ndim=1)
    w_axis = as_array("weight_magnitude", w_axis, low=0.0, high=1.0, low_open=True, ndim=1)
    m, n, diff = card["rows"], card["cols"], card["differential"]
    g_min, dg = card["g_min_s"], card["g_max_s"] - card["g_min_s"]
    errors = np.empty((len(bits_axis), len(x_axis), len(w_axis), n_tiles, batch, n // 2 if diff else n))
    ir_num = np.zeros((2, len(x_axis), len(w_axis), n))  # [0]: vs the ideal product, [1]: vs the load law
    ir_den = np.zeros_like(ir_num)
    alphas = np.empty((len(w_axis), n_tiles))
    streams = np.random.SeedSequence(int(seed)).spawn(len(w_axis) * n_tiles)
    for k, (iw, tile_no) in enumerate(np.ndindex(len(w_axis), n_tiles)):
        rng = np.random.default_rng(streams[k])
        w = rng.uniform(-w_axis[iw] if diff else 0.0, w_axis[iw], (m, n // 2 if diff else n))
        levels, alpha = dev.sample(cell_levels(w, diff), rng)
        alphas[iw, tile_no] = alpha
        g = g_min + dg * levels
        tile = Tile(card, g, seed=int(rng.integers(2**31)))
        noise = _column_noise(g, card) if dev.read_noise else None
        _read_tile(tile, card, g, w, alpha, noise, x_axis, bits_axis, batch, rng,
                   (ir_num[:, :, iw], ir_den[:, :, iw], errors[:, :, iw, tile_no]))
    ratio = ir_num / ir_den
    return {"errors": errors.reshape(errors.shape[:3] + (-1,)), "ir_gain": ratio[0], "wire_gain": ratio[1],
            "alpha": alphas.mean(axis=1), "device": dev, "card": card, "bits": bits_axis, "x": x_axis,
            "w": w_axis, "t": t}


def _read_tile(tile, card: Card, g, w, alpha, noise, x_axis, bits_axis, batch, rng, out) -> None:
    """Read one programmed tile of ``card`` (conductances ``g`` (M, N), S, of weights ``w``; drift factor
    ``alpha``) with ``batch`` seeded inputs per input magnitude of ``x_axis``.  Adds, per column,
    the sums of the least-squares gain of the wired product against the ideal one and against the
    load law into ``out[0], out[1]`` ((2, inputs, N)), and writes, per ADC resolution of
    ``bits_axis``, the error of the tile's estimate of the normalised product into ``out[2]``
    ((bits, inputs, batch, outputs))."""
    ir_num, ir_den, errors = out
    m = g.shape[0]
    b_in, g_min, dg = card["input_bits"], card["g_min_s"], card["g_max_s"] - card["g_min_s"]
    x_full = 2**b_in - 1
    transfer = tile.characterisation()["T"]
    load = 1.0 + tile.sense.r_sense * g.sum(axis=0)
    for ix, xm in enumerate(x_axis):
        x = rng.integers(0, int(round(xm * x_full)) + 1, (batch, m))
        total_wire, total_ideal = x @ transfer.T, x @ g
        for j, reference in enumerate((total_ideal, total_ideal / load)):
            ir_num[j, ix] += np.sum(total_wire * reference, axis=0)
            ir_den[j, ix] += np.sum(reference * reference, axis=0)
        ideal = (x / x_full) @ w
        offset = 0.0 if card["differential"] else g_min * x.sum(axis=1, keepdims=True)
        for ib, bits in enumerate(bits_axis):
            tile.adc = dataclasses.replace(tile.adc, bits=bits)
            y = tile.mvm(x, input_bits=b_in, rng=rng, current_noise=noise)[0]
            estimate = alpha * (tile.codes_to_dot(y, input_bits=b_in) - offset) / (dg * x_full)
            errors[ib, ix] = estimate - ideal


def _column_noise(g: np.ndarray, card: Card) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the variance (A**2) of the summed read noise of its cells as
    ``thermal + shot @ |v|``: ``4 k T df sum_i G_ij`` and ``2 q df G_ij`` (word-line voltages ``v``)."""
    from ..devices.noise import shot_noise_std, thermal_noise_std

    bandwidth = noise_bandwidth(card)
    per_siemens = float(thermal_noise_std(1.0, bandwidth, TEMPERATURE_K)) ** 2
    per_ampere = float(shot_noise_std(1.0, bandwidth)) ** 2
    return per_siemens * g.sum(axis=0), per_ampere * g


def error_model(device, circuit, *, adc_bits=(4, 6, 8), input_magnitudes=(0.25, 0.5, 1.0),
                weight_magnitudes=(0.25, 0.5, 1.0), t_inference=3600.0, n_tiles=4, batch=64, rows=None,
                cols=None, seed=0) -> xr.Dataset:
    """Tabulate the MVM error of a tile against ADC resolution, input and weight magnitude.

    Parameters
    ----------
    device, circuit : Card or str
        A device card that the device layer can program (``pcm_statistical`` or a dynamic
        memristor model: VTEAM, TEAM, Stanford-PKU, Yakopcic, linear ion drift) and a ``tile``
        circuit card (names or paths).
    adc_bits : sequence of int
        ADC resolutions to tabulate.
    input_magnitudes, weight_magnitudes : sequence of float in (0, 1]
        Upper ends of the uniform input and weight distributions (normalised).
    t_inference : float
        Time (s) from programming to the read.
    n_tiles, batch : int
        Independently programmed tiles per weight magnitude, input vectors per tile and setting.
    rows, cols : int, optional
        Use a ``rows x cols`` corner of the card's array (default: the whole array).
    seed : int
        Seeds every draw (weights, inputs, device noise, tile mismatch).

    Returns
    -------
    xarray.Dataset
        ``error_mean``, ``error_std`` ("1", normalised output units), ``ir_gain``, ``wire_gain``,
        ``alpha``, ``n_samples``; attrs carry the exported parameters (see
        :func:`cimphys.exports.aihwkit.aihwkit_config`;
        for RRAM cards also the write-verify settings, the measured sigma_prog bins and the fit
        residuals).

    Examples
    --------
    >>> ds = error_model("yakopcic2011_oblea", "isaac_128x128", adc_bits=(8,), input_magnitudes=(1.0,),
    ...                  weight_magnitudes=(1.0,), rows=4, cols=4, n_tiles=1, batch=2)
    >>> p = json.loads(ds.attrs["params"])
    >>> p["family"], [round(g * 1e6, 3) for g in p["g_window_s"]], p["write_verify"]["n_failed"]
    ('dynamic', [1.0, 10.0], 0)
    """
    r = _physics(device, circuit, adc_bits, input_magnitudes, weight_magnitudes, t_inference, n_tiles,
                 batch, rows, cols, seed)
    card, dev = r["card"], r["device"]
    dims = ("adc_bits", "input_magnitude", "weight_magnitude")
    ds = xr.Dataset(
        {
            "error_mean": variable(dims, r["errors"].mean(axis=-1), "1", "mean MVM error (normalised output)"),
            "error_std": variable(dims, r["errors"].std(axis=-1, ddof=1), "1", "std of MVM error (normalised output)"),
            "ir_gain": variable(dims[1:] + ("col",), r["ir_gain"], "1",
                                "per-column analog output with wires / without (IR drop)"),
            "wire_gain": variable(dims[1:] + ("col",), r["wire_gain"], "1",
                                  "per-column analog output with wires / the sense-load law without wires"),
            "alpha": variable(("weight_magnitude",), r["alpha"], "1", "global drift compensation factor"),
            "n_samples": variable((), r["errors"].shape[-1], "1", "error samples per setting"),
        },
        coords={"adc_bits": variable("adc_bits", np.asarray(r["bits"]), "1", "ADC resolution"),
                "input_magnitude": variable("input_magnitude", r["x"], "1", "largest input / full scale"),
                "weight_magnitude": variable("weight_magnitude", r["w"], "1", "largest weight / full scale")},
    )
    ds.attrs.update({"device_card": pcm_card_name(device), "circuit_card": card.name, "rows": card["rows"],
                     "cols": card["cols"], "differential": int(card["differential"]), "t_inference_s": r["t"],
                     "seed": int(seed), "cimphys_version": __version__,
                     "params": json.dumps(_parameters(dev, card, r["bits"], r["t"]))})
    return ds


def pcm_card_name(device) -> str:
    return device.name if isinstance(device, Card) else str(device)


def _parameters(dev: DeviceStatistics, card, bits_axis, t) -> dict:
    """Everything the exports and the emulator need, in normalised units.

    ``s_phase`` is, per ADC setting, the ADC step of one read (one input slice) in units of
    ``(g_max - g_min) * DAC code``; ``s_eff`` the single rounding step of the shift-added output of
    one physical column (normalised units) with the same variance when every slice is active:
    ``s_phase sqrt(sum_p w_p**2) / (2**input_bits - 1)``.
    """
    from ..circuits.dac import slice_inputs
    from ..circuits.tile import Tile

    m, diff, b_in = card["rows"], card["differential"], card["input_bits"]
    tile = Tile(card, np.full((m, card["cols"]), card["g_min_s"]))
    dg = card["g_max_s"] - card["g_min_s"]
    _, place, _ = slice_inputs(np.zeros(1, dtype=np.int64), b_in, tile.dac.bits, False)
    norm = dg * (2**b_in - 1)  # S * input code of one normalised output unit
    s_phase, s_eff, noise = {}, {}, {}
    for bits in bits_axis:
        adc = dataclasses.replace(tile.adc, bits=bits)
        lsb_dot = float(np.max(tile.sense.input_current(adc.lsb))) / tile.dac.lsb  # S * code per LSB
        s_phase[str(bits)] = lsb_dot / dg
        s_eff[str(bits)] = lsb_dot * float(np.sqrt(np.sum(place.astype(float) ** 2))) / norm
        noise[str(bits)] = adc.noise_lsb * s_phase[str(bits)]
    phase_full = float(np.max(tile.sense.input_current(tile.adc.hi))) / tile.dac.lsb
    return {
        "rows": m, "cols": card["cols"], "differential": bool(diff), "input_bits": b_in, "dac_bits": tile.dac.bits,
        "g_min_s": card["g_min_s"], "g_max_s": card["g_max_s"], "g_min_norm": card["g_min_s"] / dg,
        "r_wire_ohm": card["r_wire_per_cell_ohm"], "r_driver_ohm": card["r_driver_ohm"], "sense_r_norm": tile.sense.r_sense * dg, "out_bound": phase_full * float(place.sum()) / norm,
        "s_phase": s_phase, "s_eff": s_eff, "noise_phase": noise, "t_inference": t, "phase_full": phase_full,
        "read_noise": _read_noise_phase(card, tile.dac.lsb) if dev.read_noise else None,
        **dev.params, "aihwkit_device": dev.aihwkit, "crosssim_device": dev.crosssim, "notes": dev.notes,
    }


def _read_noise_phase(card: Card, v_lsb: float) -> dict:
    """Read-noise variance of one column and read in normalised phase units (``(g_max - g_min)``
    times a DAC code): ``thermal * sum_i Gn_i + shot * sum_i Gn_i d_i`` with ``Gn = G / (g_max - g_min)``
    and ``d_i`` the DAC codes, from ``4 k T df sum G + 2 q df sum G |V|`` in A**2."""
    from ..devices.noise import shot_noise_std, thermal_noise_std

    dg, bandwidth = card["g_max_s"] - card["g_min_s"], noise_bandwidth(card)
    return {"thermal": float(thermal_noise_std(1.0, bandwidth, TEMPERATURE_K)) ** 2 / (dg * v_lsb**2),
            "shot": float(shot_noise_std(1.0, bandwidth)) ** 2 / (dg * v_lsb)}


def exported_parameters(model: xr.Dataset) -> dict:
    if "params" not in model.attrs:
        raise InputError("model: expected a Dataset from cimphys.exports.error_model.error_model")
    return json.loads(model.attrs["params"])


def pick_bits(model: xr.Dataset, adc_bits) -> int:
    choices = [int(b) for b in model.adc_bits.values]
    bits = choices[-1] if adc_bits is None else int(adc_bits)
    if bits not in choices:
        raise InputError(f"adc_bits: {adc_bits!r} not in the table, which has {choices}")
    return bits


def write_lut(model: xr.Dataset, path) -> Path:
    """The look-up table as NetCDF (labelled with units)."""
    return save(model, path)
