"""The statistical error model of a tile's matrix-vector product, exported for other simulators.

:func:`error_model` runs the physics -- a device card programmed into a ``tile`` circuit card
(crossbar with wire resistance, DACs, sense amplifiers, ADC, shift-add) -- and tabulates the
error of the product against ``adc_bits``, the input magnitude and the weight magnitude.  The
exports describe the same tile in three vocabularies.  The device part is one small function
per family (:mod:`cimphys.devices.programming_statistics`); the tile part is shared.

* PCM (``pcm_statistical``): the card's statistical model -- programming noise, drift, 1/f read
  noise, global drift compensation.
* Dynamic RRAM (VTEAM, TEAM, Stanford-PKU, Yakopcic, linear ion drift): the device layer's
  write-verify (:func:`cimphys.devices.programming.write_verify`) on a seeded Monte-Carlo set of
  512 targets across the programming window, to within ``PROG_TOLERANCE`` (2 %) of it, with
  pulses found from the model (``programming_pulses``: fixed pulses, or incremental-step pulse
  programming for cards fixed pulses cannot program -- HP linear drift, TEAM) and the card's
  ``[variability]`` ``c2c_sigma`` if it has one.  The measured ``sigma_prog(G_T)`` and mean error per bin are fitted by least squares
  with ``c0 + c1 g + c2 g**2`` (``g = (G_T - G_lo) / (G_hi - G_lo)``); the rms residual is
  exported.  Read noise: thermal + shot current noise of every cell on every read,
  ``sigma_I**2 = (4 k T G + 2 q G |V|) df`` at ``T = 300 K`` over the noise bandwidth
  ``df = 1 / (2 t_int)`` of an average over the read (integration) time ``t_int`` (the tile's
  ``t_read_s``, or ``[sense] t_int_s`` of an integrator); no 1/f or RTN (no card gives their
  parameters).  Drift/retention: none -- no dynamic card has a retention model
  (:mod:`cimphys.devices.retention` is a model of its own without a card), so aihwkit's model holds
  one time and CrossSim's ``drift_error`` is off; ``notes`` says so.

Units.  Weights are normalised to ``[0, 1]`` (``[-1, 1]`` for differential tiles), inputs to
``[0, 1]``; the product ``y = x @ W`` and its error are in those normalised units ("1").  A weight
level ``w`` is the cell conductance ``G = g_min + w (g_max - g_min)`` of the tile card, and the
device target ``G_lo + w (G_hi - G_lo)`` in the device's programming window (PCM: ``[0, g_max]``;
RRAM: the tile's window slid, same on/off ratio, into the card's chord-conductance range at the
tile's read voltage).  The device statistics are applied in the device's own window and mapped
linearly onto the tile's; conductances are clipped to the window.  The tile solves linear cells:
an RRAM cell enters at its chord conductance at the read voltage.

(a) :func:`write_lut` -- NetCDF look-up table, dims ``adc_bits``, ``input_magnitude``,
``weight_magnitude``: ``error_mean``, ``error_std`` (normalised output units), ``ir_gain``
(analog output with wires / without), ``wire_gain`` (with wires / the sense-load law
``sum_i G_ij v_i / (1 + R_s sum_i G_ij)`` that holds exactly without wires, ``R_s`` the sense
amplifier's input resistance), ``alpha`` (drift compensation), ``n_samples``.

(b) :func:`aihwkit_config` -- IBM aihwkit inference vocabulary, one ADC setting.  PCM:

=================================  ============================================================
``noise_model.class``              ``"PCMLikeNoiseModel"``
``noise_model.g_max``              device card ``g_max`` in uS (aihwkit's unit)
``noise_model.prog_coeff``         device card ``prog_coeff`` in uS
``noise_model.t_0``, ``t_read``    device card ``t0``, ``t_read`` (s)
``noise_model.*_scale``            1.0 (prog, read, drift: the card's fits unscaled)
``drift_compensation``             ``"GlobalDriftCompensation"`` (as in the physics)
``t_inference``                    s since programming (``t_inference_aihwkit``: s since ``t_0``,
                                   aihwkit's count; :mod:`cimphys.exports.aihwkit` builds the
                                   real ``InferenceRPUConfig``)
``forward.inp_res``                ``1 / (2 (2**input_bits - 1))``: aihwkit quantises inputs in
                                   ``[-1, 1]`` with step ``2 inp_res``; ours step ``1/(2**b - 1)``
``forward.out_bound``              ADC full scale in normalised units (``rows``; offset of
                                   ``g_min`` included)
``forward.out_res``                ``s_eff / (2 out_bound)``; ``s_eff`` is the single output step
                                   whose rounding variance equals that of the per-phase ADC
                                   codes after shift-add: ``s_eff = s_phase sqrt(sum_p w_p**2)``
                                   (times ``sqrt 2`` for differential pairs)
``forward.out_noise``              ADC input noise (``noise_lsb``) through the same shift-add
``forward.w_noise``                0 (``AdditiveConstant``): the PCM read noise is static between
                                   programming and read in this model; it is in ``noise_model``
=================================  ============================================================

Dynamic RRAM (the ``forward`` fields as for PCM, except ``w_noise``):

=================================  ============================================================
``noise_model.class``              ``"ReRamWan2022NoiseModel"`` (aihwkit
                                   ``aihwkit/inference/noise/reram.py``: a programming polynomial
                                   per time, in uS, of ``g_target / g_max``; no drift law)
``noise_model.g_max``              programming span ``G_hi - G_lo`` in uS
``noise_model.coeff_dic``          ``{t_inference: [c0, c1, c2]}`` (uS): the fitted
                                   ``sigma_prog``; one time, as no drift is modelled
``noise_model.noise_scale``        1.0
``drift_compensation``             ``None``
``forward.w_noise``                rms thermal + shot read noise of one cell over uniform levels
                                   of the tile window, relative to ``g_max - g_min``
                                   (``AdditiveConstant``, applied at every forward pass, as
                                   aihwkit's ReRAM model docstring advises for short-term noise)
=================================  ============================================================

The ``cimphys`` block carries what aihwkit has no field for and :func:`emulate_errors` needs:
relative programming polynomial, drift and read-noise fits (RRAM: ``prog_bias_rel``, the fitted
mean programming error; ``read_noise``, the per-read noise in normalised units; the measured
``prog_measured`` bins, the fit residuals and the write-verify settings), ``g_min`` offset, clip
window, the IR-drop gain table and ``s_eff`` per ADC setting.

(c) :func:`crosssim_config` -- Sandia CrossSim 3.2's own parameter tree (``core`` / ``simulation`` /
``xbar``), which ``CrossSimParameters.from_json`` loads and an ``AnalogCore`` runs; the mapping of
every field, and the notes file beside it, are in :mod:`cimphys.exports.crosssim`.

References
----------
M. J. Rasch et al., "A flexible and fast PyTorch toolkit for simulating training and inference
on analog crossbar arrays", IEEE AICAS 2021, doi:10.1109/AICAS51828.2021.9458494 (aihwkit).
T. P. Xiao et al., "CrossSim: accuracy simulation of analog in-memory computing",
https://github.com/sandialabs/cross-sim (inference manual v3).  V. Joshi et al., Nat. Commun.
11, 2473 (2020), doi:10.1038/s41467-020-16108-9 (the PCM statistics).  W. Wan et al., Nature 608,
504 (2022), doi:10.1038/s41586-022-04992-8 (the data behind aihwkit's ``ReRamWan2022NoiseModel``).
C. D. Motchenbacher, J. A. Connelly, *Low-Noise Electronic System Design*, Wiley (1993), ch. 1
(thermal and shot noise; noise bandwidth of an integrator).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import xarray as xr

from ._version import __version__
from .cards import Card, load_circuit, load_device
from .checks import as_array, as_scalar
from .devices.programming_statistics import ISPP_MAX, ISPP_STEP, ISPP_V_LIMIT  # noqa: F401 (re-exported)
from .devices.programming_statistics import TEMPERATURE_K, DeviceStatistics, device_statistics
from .errors import InputError
from .results import save, variable

__all__ = ["aihwkit_config", "crosssim_config", "emulate_errors", "error_model", "physics_errors",
           "write_aihwkit", "write_crosssim", "write_lut"]

# -- device statistics: cimphys.devices.programming_statistics -----------------------------
def _device(card: Card, tile: Card, t: float, seed) -> DeviceStatistics:
    """The device statistics for a tile card's window, read voltage and read bandwidth."""
    return device_statistics(card, g_min=tile["g_min_s"], g_max=tile["g_max_s"], v_read=tile["v_read_v"],
                             bandwidth=_bandwidth(tile), t=t, seed=seed)


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


def _bandwidth(tile: Card) -> float:
    """Noise bandwidth (Hz) of one read: ``1 / (2 t_int)`` for an average over the integration
    (read) time ``t_int``, the tile's ``t_read_s`` or its integrator's ``t_int_s``."""
    from .circuits.tile_design import TileDesign

    return TileDesign(tile).bandwidth


# -- tile physics ----------------------------------------------------------------------------
def _levels(w: np.ndarray, differential: bool) -> np.ndarray:
    """Cell levels in [0, 1] for normalised weights; differential pairs interleaved (+, -)."""
    if not differential:
        return w
    out = np.empty((w.shape[0], 2 * w.shape[1]))
    out[:, 0::2], out[:, 1::2] = np.maximum(w, 0.0), np.maximum(-w, 0.0)
    return out


def physics_errors(device, circuit, *, adc_bits, input_magnitude, weight_magnitude, t_inference=3600.0,
                   n_tiles=4, batch=64, rows=None, cols=None, seed=0) -> dict:
    """Errors of ``n_tiles`` independently programmed tiles for one setting (see module doc).

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
    from .circuits.tile import Tile

    device, card = _cards(device, circuit, rows, cols)
    t = as_scalar("t_inference", t_inference, unit="s", low=0.0, low_open=True)
    dev = _device(device, card, t, seed)
    bits_axis = [int(as_scalar("adc_bits", b, low=1, high=16)) for b in bits_axis]
    x_axis = as_array("input_magnitude", x_axis, low=0.0, high=1.0, low_open=True, ndim=1)
    w_axis = as_array("weight_magnitude", w_axis, low=0.0, high=1.0, low_open=True, ndim=1)
    m, n, diff = card["rows"], card["cols"], card["differential"]
    b_in, g_min, dg = card["input_bits"], card["g_min_s"], card["g_max_s"] - card["g_min_s"]
    x_full = 2**b_in - 1
    errors = np.empty((len(bits_axis), len(x_axis), len(w_axis), n_tiles, batch, n // 2 if diff else n))
    ir_num = np.zeros((2, len(x_axis), len(w_axis), n))  # [0]: vs the ideal product, [1]: vs the load law
    ir_den = np.zeros_like(ir_num)
    alphas = np.empty((len(w_axis), n_tiles))
    streams = np.random.SeedSequence(int(seed)).spawn(len(w_axis) * n_tiles)
    for k, (iw, tile_no) in enumerate(np.ndindex(len(w_axis), n_tiles)):
        rng = np.random.default_rng(streams[k])
        w = rng.uniform(-w_axis[iw] if diff else 0.0, w_axis[iw], (m, n // 2 if diff else n))
        levels, alpha = dev.sample(_levels(w, diff), rng)
        alphas[iw, tile_no] = alpha
        g = g_min + dg * levels
        tile = Tile(card, g, seed=int(rng.integers(2**31)))
        transfer = tile.characterisation()["T"]
        noise = _column_noise(g, card) if dev.read_noise else None
        load = 1.0 + tile.sense.r_sense * g.sum(axis=0)
        for ix, xm in enumerate(x_axis):
            x = rng.integers(0, int(round(xm * x_full)) + 1, (batch, m))
            total_wire, total_ideal = x @ transfer.T, x @ g
            for j, reference in enumerate((total_ideal, total_ideal / load)):
                ir_num[j, ix, iw] += np.sum(total_wire * reference, axis=0)
                ir_den[j, ix, iw] += np.sum(reference * reference, axis=0)
            ideal = (x / x_full) @ w
            offset = 0.0 if diff else g_min * x.sum(axis=1, keepdims=True)
            for ib, bits in enumerate(bits_axis):
                tile.adc = dataclasses.replace(tile.adc, bits=bits)
                y = tile.mvm(x, input_bits=b_in, rng=rng, current_noise=noise)[0]
                estimate = alpha * (tile.codes_to_dot(y, input_bits=b_in) - offset) / (dg * x_full)
                errors[ib, ix, iw, tile_no] = estimate - ideal
    ratio = ir_num / ir_den
    return {"errors": errors.reshape(errors.shape[:3] + (-1,)), "ir_gain": ratio[0], "wire_gain": ratio[1],
            "alpha": alphas.mean(axis=1), "device": dev, "card": card, "bits": bits_axis, "x": x_axis,
            "w": w_axis, "t": t}


def _column_noise(g: np.ndarray, card: Card) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the variance (A**2) of the summed read noise of its cells as
    ``thermal + shot @ |v|``: ``4 k T df sum_i G_ij`` and ``2 q df G_ij`` (word-line voltages ``v``)."""
    from .devices.noise import shot_noise_std, thermal_noise_std

    bandwidth = _bandwidth(card)
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
        ``alpha``, ``n_samples``; attrs carry the exported parameters (see :func:`aihwkit_config`;
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
    from .circuits.dac import slice_inputs
    from .circuits.tile import Tile

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
    from .devices.noise import shot_noise_std, thermal_noise_std

    dg, bandwidth = card["g_max_s"] - card["g_min_s"], _bandwidth(card)
    return {"thermal": float(thermal_noise_std(1.0, bandwidth, TEMPERATURE_K)) ** 2 / (dg * v_lsb**2),
            "shot": float(shot_noise_std(1.0, bandwidth)) ** 2 / (dg * v_lsb)}


# -- exports ----------------------------------------------------------------------------------
def _params(model: xr.Dataset) -> dict:
    if "params" not in model.attrs:
        raise InputError("model: expected a Dataset from cimphys.export.error_model")
    return json.loads(model.attrs["params"])


def _pick_bits(model: xr.Dataset, adc_bits) -> int:
    choices = [int(b) for b in model.adc_bits.values]
    bits = choices[-1] if adc_bits is None else int(adc_bits)
    if bits not in choices:
        raise InputError(f"adc_bits: {adc_bits!r} not in the table, which has {choices}")
    return bits


def write_lut(model: xr.Dataset, path) -> Path:
    """(a) The look-up table as NetCDF (labelled with units)."""
    return save(model, path)


def aihwkit_config(model: xr.Dataset, adc_bits: int | None = None) -> dict:
    """(b) The tile as an aihwkit inference configuration for one ADC setting (see module doc)."""
    p, bits = _params(model), _pick_bits(model, adc_bits)
    dev = p.pop("aihwkit_device")
    p.pop("crosssim_device")
    pair = np.sqrt(2.0) if p["differential"] else 1.0
    step = p["s_eff"][str(bits)] * pair
    return {
        "format": "aihwkit-inference", "generator": f"cimphys {__version__}",
        "device_card": model.attrs["device_card"], "circuit_card": model.attrs["circuit_card"],
        # only the arguments aihwkit's noise model takes (its drift fits are built in; the card's
        # are in the cimphys block): cimphys.exports.aihwkit.rpu_config builds the real objects
        "noise_model": {k: v for k, v in dev["noise_model"].items() if not k.startswith("drift_nu_")},
        "drift_compensation": dev["drift_compensation"],
        "t_inference": p["t_inference"],
        "t_inference_aihwkit": p["t_inference"] - dev["noise_model"].get("t_0", 0.0),  # aihwkit counts from t_0
        "rpu_config": {"forward": {
            "is_perfect": False, "inp_bound": 1.0, "inp_res": 1.0 / (2 * (2 ** p["input_bits"] - 1)),
            "out_bound": p["out_bound"], "out_res": step / (2 * p["out_bound"]),
            "out_noise": p["noise_phase"][str(bits)] * p["s_eff"][str(bits)] / p["s_phase"][str(bits)] * pair,
            "w_noise": dev.get("w_noise", 0.0), "w_noise_type": "AdditiveConstant",
        }},
        "cimphys": {**p, "adc_bits": bits, "ir_gain": {
            "input_magnitude": model.input_magnitude.values.tolist(),
            "weight_magnitude": model.weight_magnitude.values.tolist(), "value": model.ir_gain.values.tolist(),
            **({"wire": model.wire_gain.values.tolist()} if "wire_gain" in model else {})}},
    }


def crosssim_config(model: xr.Dataset, adc_bits: int | None = None) -> dict:
    """(c) The tile as a Sandia CrossSim 3.2 parameter tree, one ADC setting: exactly the keys
    ``CrossSimParameters`` takes (:func:`cimphys.exports.crosssim.parameters`)."""
    from .exports import crosssim

    return crosssim.parameters(_params(model), _pick_bits(model, adc_bits))


def write_aihwkit(model: xr.Dataset, path, adc_bits: int | None = None) -> Path:
    """Write :func:`aihwkit_config` as JSON."""
    return _write_json(aihwkit_config(model, adc_bits), path)


def write_crosssim(model: xr.Dataset, path, adc_bits: int | None = None) -> Path:
    """Write :func:`crosssim_config` as JSON (``CrossSimParameters.from_json`` reads it) and its
    notes, what CrossSim has no field for, as ``<stem>.notes.json`` beside it."""
    from .exports import crosssim

    return crosssim.write(_params(model), _pick_bits(model, adc_bits), path)[0]


def _write_json(payload: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


# -- emulation from the exported statistics ---------------------------------------------------
def emulate_errors(config: dict, *, input_magnitude, weight_magnitude, n_tiles=4, batch=64, seed=0) -> np.ndarray:
    """MVM errors of a statistical tile built only from an exported aihwkit configuration.

    Weights and inputs are drawn as in :func:`physics_errors`; the device statistics come from the
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
    levels_of = _write_verify_levels if c.get("family") == "dynamic" else _statistical_levels
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(n_tiles):
        w = rng.uniform(-weight_magnitude if diff else 0.0, weight_magnitude, (m, n_out))
        read, alpha = levels_of(c, _levels(w, diff), rng)
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


def _statistical_levels(c: dict, levels: np.ndarray, rng) -> tuple[np.ndarray, float]:
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


def _write_verify_levels(c: dict, levels: np.ndarray, rng) -> tuple[np.ndarray, float]:
    """Write-verified RRAM levels from the exported fits: ``G_T + bias(G_T) + sigma(G_T) N``, no
    drift (so no compensation, ``alpha = 1``)."""
    lv = levels.ravel()
    sigma = np.maximum(np.polyval(c["prog_coeff_rel"][::-1], lv), 0.0)
    g_p = lv + np.polyval(c["prog_bias_rel"][::-1], lv) + sigma * rng.standard_normal(lv.shape)
    lo, hi = c["conductance_clip"]
    return np.clip(g_p, lo, hi).reshape(levels.shape), 1.0
