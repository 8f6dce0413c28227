"""A tile's exported statistics as a Sandia CrossSim 3.2 parameter file that CrossSim loads.

:func:`parameters` turns the statistics :func:`cimphys.exports.error_model.error_model` computed (the ``params``
dictionary of its Dataset) into CrossSim's own parameter tree, ``core`` / ``simulation`` /
``xbar``, with no other key, so that ``CrossSimParameters.from_json(path)`` reads it and an
``AnalogCore`` runs it.  What CrossSim has no field for (provenance, the programming bias, the
approximations made) goes to a side file (:func:`write`).

Mapping (CrossSim names on the left; its conductances are normalised to ``Gmax = 1/Rmin``):

=====================================  ========================================================
``xbar.device.Rmin``, ``Rmax``         ``1 / g_max``, ``1 / g_min`` of the tile card (ohm)
``xbar.device.programming_error``      ``NormalIndependentDevice``: the static error of a cell
                                       at ``t_inference`` (programming, and for PCM also drift
                                       after global drift compensation and its 1/f read noise,
                                       both static between programming and read in the PCM
                                       model), std over uniform levels, in units of ``Gmax``
``xbar.device.read_noise``             RRAM: ``NormalProportionalDevice`` with the rms relative
                                       thermal + shot noise of one read; PCM: off (static, above)
``xbar.device.drift_error``, ``time``  off, 0: CrossSim applies the programming error only at
                                       ``time = 0`` (``IDevice.apply_write_error``) and 3.2's
                                       ``PCMJoshi`` has no drift law; the drift at
                                       ``t_inference`` is in the static error
``xbar.array.parasitics``              ``Rp_row = Rp_col`` = wire resistance per cell (ohm),
                                       ``Rp_row_terminal`` = driver, ``Rp_col_terminal`` = sense
                                       input resistance (ohm): the geometry of
                                       :class:`cimphys.Crossbar` (driver at column 0, sense after
                                       the last row)
``xbar.dac.mvm``                       ``QuantizerDAC``, ``input_bits``, sliced by ``dac_bits``
``xbar.adc.mvm``                       ``QuantizerADC``, ``bits``, one conversion per input
                                       slice, ``CALIBRATED`` range ``[0, full]``: the tile ADC's
                                       range in units of the current of one ``Gmax`` cell at a
                                       full-scale slice
``core``                               ``OFFSET`` with ``DIGITAL_OFFSET`` (the tile subtracts
                                       ``g_min * sum x`` digitally), or ``BALANCED`` one-sided
                                       for differential tiles; weights in ``[-1, 1]``, inputs
                                       in ``[0, 1]``
=====================================  ========================================================

CrossSim's offset core maps a matrix value ``a`` in ``[-1, 1]`` to ``Gmin + (a + 1)/2 (Gmax -
Gmin)``; a cimphys weight level ``w`` in ``[0, 1]`` (conductance ``g_min + w (g_max - g_min)``) is
therefore ``a = 2 w - 1`` (:func:`to_matrix`), and the product ``x @ w`` is ``(y + sum x) / 2``
of CrossSim's ``y`` (:func:`from_output`, which also adds the static error's mean: CrossSim's
errors are zero-mean, and a write-verified RRAM cell lands on average below its target).

References
----------
T. P. Xiao et al., "CrossSim: accuracy simulation of analog in-memory computing", Sandia
National Laboratories, https://github.com/sandialabs/cross-sim, release 3.2.0 (parameter
classes in ``simulator/parameters``; parasitic solvers in ``simulator/circuits/array``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._version import __version__
from .emulate import statistical_levels, write_verify_levels
from .error_model import exported_parameters, pick_bits

__all__ = ["crosssim_config", "from_output", "parameters", "static_error", "to_matrix", "write", "write_crosssim"]

#: Levels drawn to measure the static error's moments: the standard error of its std is
#: ~1/sqrt(2 n) = 0.16 % of it, far below the 5 % asked of a CrossSim run.
STATIC_SAMPLES = 200_000
#: CrossSim's parasitic solver stops when its node-voltage error is below this (in units of the
#: input voltage); its default 1e-3 would leave an error comparable with the IR drop of a 32-row
#: tile at 2.5 ohm per cell.
VERR_TH = 1e-7


def static_error(p: dict) -> tuple[float, float]:
    """Mean and std of a cell's static conductance error at ``t_inference``, in units of the
    device's programming window, over uniform target levels in ``[0, 1]``.

    Drawn (seeded) from the exported fits with the same level model as
    :func:`cimphys.exports.emulate.emulate_errors`: PCM -- programming polynomial, drift and its 1/f read
    noise at ``t_inference``, times the global drift compensation factor; RRAM -- write-verify
    bias and sigma polynomials.
    """
    rng = np.random.default_rng(0)
    levels = rng.uniform(0.0, 1.0, STATIC_SAMPLES)
    family = write_verify_levels if p.get("family") == "dynamic" else statistical_levels
    read, alpha = family(p, levels, rng)
    error = alpha * read - levels
    return float(error.mean()), float(error.std())


def parameters(p: dict, adc_bits: int) -> dict:
    """CrossSim's parameter tree (``core``, ``simulation``, ``xbar``) for the exported tile ``p``
    (the ``params`` of :func:`cimphys.exports.error_model.error_model`) with a ``adc_bits`` ADC."""
    g_max, g_min = p["g_max_s"], p["g_min_s"]
    slicing = p["dac_bits"] < p["input_bits"]
    full = p["phase_full"] / (g_max * (2 ** min(p["dac_bits"], p["input_bits"]) - 1))
    adc = {"model": "QuantizerADC", "bits": int(adc_bits), "signed": False, "stochastic_rounding": False,
           "adc_per_ibit": slicing, "adc_range_option": "CALIBRATED", "calibrated_range": [0.0, full]}
    dac = {"model": "QuantizerDAC", "bits": int(p["input_bits"]), "input_bitslicing": slicing,
           "slice_size": int(min(p["dac_bits"], p["input_bits"])), "signed": False}
    r_wire = p["r_wire_ohm"]
    r_sense = p["sense_r_norm"] / (g_max - g_min)
    r_driver = p.get("r_driver_ohm", 0.0)
    inputs = {"clipping": True, "min": 0.0, "max": 1.0, "percentile": None}
    return {
        "core": {
            "style": "BALANCED" if p["differential"] else "OFFSET",
            "rows_max": int(p["rows"]), "cols_max": int(p["cols"] // 2 if p["differential"] else p["cols"]),
            "weight_bits": 0,
            "balanced": {"style": "ONE_SIDED", "interleaved_posneg": False, "subtract_current_in_xbar": False},
            "offset": {"style": "DIGITAL_OFFSET"},
            "mapping": {"weights": {"clipping": True, "min": -1.0, "max": 1.0, "percentile": None},
                        "inputs": {"_match": True, "mvm": inputs, "vmm": dict(inputs)}},
        },
        "simulation": {"Verr_th_mvm": VERR_TH, "Niters_max_parasitics": 1000, "hide_convergence_msg": True},
        "xbar": {
            "device": _device(p),
            "array": {"parasitics": {"enable": bool(r_wire > 0 or r_sense > 0 or r_driver > 0),
                                     "Rp_row": r_wire, "Rp_col": r_wire, "Rp_row_terminal": r_driver,
                                     "Rp_col_terminal": r_sense, "current_from_input": True}},
            "adc": {"_match": True, "mvm": adc, "vmm": dict(adc)},
            "dac": {"_match": True, "mvm": dac, "vmm": dict(dac)},
        },
    }


def _device(p: dict) -> dict:
    """CrossSim's ``xbar.device`` tree for the exported tile ``p``: the window as ``Rmin``/``Rmax``
    (ohm), the static programming error in units of ``Gmax`` and the read noise."""
    g_max, g_min = p["g_max_s"], p["g_min_s"]
    span = (g_max - g_min) / g_max  # device window -> units of Gmax
    _, std = static_error(p)
    read = ({"enable": True, "model": "NormalProportionalDevice", "magnitude": p["read_rms_rel"]}
            if p.get("read_noise") else {"enable": False, "model": "IdealDevice", "magnitude": 0.0})
    return {
        "cell_bits": 0, "Rmin": 1.0 / g_max, "Rmax": 1.0 / g_min, "Vread": p.get("v_read_v", 0.1),
        "time": 0, "infinite_on_off_ratio": False, "clip_conductance": True,
        "programming_error": {"enable": std > 0, "model": "NormalIndependentDevice", "magnitude": std * span},
        "read_noise": read,
        "drift_error": {"enable": False, "model": "IdealDevice", "magnitude": 0.0},
    }


def notes(p: dict, adc_bits: int) -> dict:
    """What the CrossSim file cannot say: provenance, the static error's mean, the approximations."""
    mean, std = static_error(p)
    return {
        "format": "cimphys notes on a CrossSim 3.2 parameter file", "generator": f"cimphys {__version__}",
        "adc_bits": int(adc_bits), "t_inference_s": p["t_inference"],
        "static_error_mean_rel": mean, "static_error_std_rel": std,
        "weights": "a cimphys level w in [0, 1] is the CrossSim matrix value 2 w - 1 (differential: w in [-1, 1] "
                   "as is); the product x @ w is (y + sum x) / 2 of CrossSim's output y (differential: y), "
                   "plus static_error_mean_rel * sum x (cimphys.exports.crosssim.from_output)",
        "approximations": (
            f"one programming sigma for all levels (the std over uniform levels; the level-dependent fit is in "
            f"cimphys' LUT/aihwkit files); the static error's mean ({mean:.3g} of the window) has no CrossSim "
            f"field (add it to the product, see weights); PCM drift and 1/f read noise at t_inference are folded "
            f"into the static programming error (CrossSim 3.2's PCMJoshi has no drift law); RRAM read noise as "
            f"proportional to G (thermal + shot scale as G**0.5); differential tiles: CrossSim's BALANCED core "
            f"puts the + and - cells in two arrays, the tile interleaves them in one; PCM global drift "
            f"compensation: the tile estimates its factor from its own cells, a tile-wide error that CrossSim's "
            f"independent cell errors lack, so CrossSim's error std comes out below the physics' for PCM cards"),
        "cimphys_notes": p.get("notes", ""),
    }


def write(p: dict, adc_bits: int, path) -> tuple[Path, Path]:
    """Write the CrossSim file ``path`` and its notes ``<stem>.notes.json`` beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(parameters(p, adc_bits), indent=2) + "\n")
    side = path.with_name(path.stem + ".notes.json")
    side.write_text(json.dumps(notes(p, adc_bits), indent=2) + "\n")
    return path, side


def to_matrix(w: np.ndarray, differential: bool) -> np.ndarray:
    """CrossSim's matrix (outputs x inputs) for cimphys weights ``w`` (rows x outputs)."""
    w = np.asarray(w, dtype=float)
    return (w if differential else 2.0 * w - 1.0).T


def from_output(y: np.ndarray, x: np.ndarray, differential: bool, bias: float = 0.0) -> np.ndarray:
    """The product ``x @ w`` from CrossSim's output ``y`` for normalised inputs ``x`` (..., rows).

    ``bias`` is the static error's mean in units of the window (``static_error_mean_rel`` of the
    notes file): CrossSim draws zero-mean errors only, so a cell's mean error, the same for every
    cell on average over uniform levels, is added here as ``bias * sum x``.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    total = x.sum(axis=-1, keepdims=True)
    return (y if differential else 0.5 * (y + total)) + bias * total


def crosssim_config(model, adc_bits: int | None = None) -> dict:
    """The tile of an error model (:func:`cimphys.exports.error_model.error_model`) as a Sandia
    CrossSim 3.2 parameter tree, one ADC setting: exactly the keys ``CrossSimParameters`` takes
    (:func:`parameters`)."""
    return parameters(exported_parameters(model), pick_bits(model, adc_bits))


def write_crosssim(model, path, adc_bits: int | None = None) -> Path:
    """Write :func:`crosssim_config` as JSON (``CrossSimParameters.from_json`` reads it) and its
    notes, what CrossSim has no field for, as ``<stem>.notes.json`` beside it."""
    return write(exported_parameters(model), pick_bits(model, adc_bits), path)[0]
