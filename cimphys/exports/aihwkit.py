"""A tile's error model in IBM aihwkit's vocabulary, and aihwkit 1.1's own objects built from it.

:func:`aihwkit_config` -- the tile of :func:`cimphys.exports.error_model.error_model` in IBM
aihwkit's inference vocabulary, one ADC setting.  PCM:

=================================  ============================================================
``noise_model.class``              ``"PCMLikeNoiseModel"``
``noise_model.g_max``              device card ``g_max`` in uS (aihwkit's unit)
``noise_model.prog_coeff``         device card ``prog_coeff`` in uS
``noise_model.t_0``, ``t_read``    device card ``t0``, ``t_read`` (s)
``noise_model.*_scale``            1.0 (prog, read, drift: the card's fits unscaled)
``drift_compensation``             ``"GlobalDriftCompensation"`` (as in the physics)
``t_inference``                    s since programming (``t_inference_aihwkit``: s since ``t_0``,
                                   aihwkit's count; :func:`rpu_config` builds the
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

The ``cimphys`` block carries what aihwkit has no field for and
:func:`cimphys.exports.emulate.emulate_errors` needs:
relative programming polynomial, drift and read-noise fits (RRAM: ``prog_bias_rel``, the fitted
mean programming error; ``read_noise``, the per-read noise in normalised units; the measured
``prog_measured`` bins, the fit residuals and the write-verify settings), ``g_min`` offset, clip
window, the IR-drop gain table and ``s_eff`` per ADC setting.

:func:`aihwkit_config` writes JSON (aihwkit has no file format of its own);
:func:`rpu_config` builds from it the ``InferenceRPUConfig`` that aihwkit's analog layers take,
with the noise model the JSON names and only the arguments that model accepts:

* ``PCMLikeNoiseModel(prog_coeff, g_max, t_read, t_0, *_scale)`` (uS, s).  Its drift and 1/f
  fits are aihwkit's built-in IBM constants; :func:`noise_model_arguments` refuses a card whose
  fits differ from them instead of silently using aihwkit's;
* ``ReRamWan2022NoiseModel(coeff_dic, g_max, noise_scale)`` with the ``coeff_dic`` keys as floats
  (JSON keys are strings);
* ``GlobalDriftCompensation`` when the JSON names it, and the ``forward`` IO parameters with
  ``w_noise_type = ADDITIVE_CONSTANT``;
* one device per weight for a single-ended tile (``SingleDeviceConductanceConverter``, 0 to
  ``g_max``): aihwkit's default pair converter would add an unused minus device whose
  programming noise, clipped at zero conductance, biases every output negative (about
  ``sigma_P(0) / sqrt(2 pi)`` per active row: -0.06 of an output of 32 rows, a third of the error
  spread); and ``mapping.weight_scaling_omega = 0``, so that a normalised weight keeps its level
  (``w = 1`` is ``g_max``).  aihwkit's single-device converter maps the matrix's own
  ``[min, max]`` onto ``[0, g_max]``: weights that span ``[0, 1]`` map as cimphys maps them.

aihwkit counts ``t_inference`` from ``t_0`` (its drift uses ``(t_inference + t_0) / t_0``);
cimphys counts from programming.  :func:`t_inference` gives aihwkit's value for the exported time.

References
----------
M. J. Rasch et al., "A flexible and fast PyTorch toolkit for simulating training and inference on
analog crossbar arrays", IEEE AICAS 2021 (aihwkit; ``aihwkit/inference/noise/pcm.py``, ``reram.py``).
W. Wan et al., Nature 608, 504 (2022), doi:10.1038/s41586-022-04992-8 (the data behind aihwkit's
``ReRamWan2022NoiseModel``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._version import __version__
from ..errors import InputError
from .error_model import exported_parameters, pick_bits

__all__ = ["IBM_PCM_FITS", "aihwkit_config", "noise_model_arguments", "rpu_config", "t_inference", "write_aihwkit",
           "write_json"]

#: The drift and 1/f read-noise constants aihwkit 1.1's PCMLikeNoiseModel has built in (Joshi et
#: al., Nat. Commun. 2020), under the names of cimphys's pcm_statistical card.
IBM_PCM_FITS = {"nu_mean_slope": -0.0155, "nu_mean_offset": 0.0244, "nu_mean_min": 0.049, "nu_mean_max": 0.1,
                "nu_std_slope": -0.0125, "nu_std_offset": -0.0059, "nu_std_min": 0.008, "nu_std_max": 0.045,
                "read_q": 0.0088, "read_q_exponent": 0.65, "read_q_floor": 1e-3, "read_q_max": 0.2}
_PCM_ARGS = ("prog_coeff", "g_max", "t_read", "t_0", "prog_noise_scale", "read_noise_scale", "drift_scale")
_RERAM_ARGS = ("g_max", "noise_scale")


def noise_model_arguments(config: dict) -> tuple[str, dict]:
    """(class name, keyword arguments) of the exported noise model, as aihwkit's constructor takes them."""
    nm = dict(config["noise_model"])
    name = nm.pop("class")
    if name == "PCMLikeNoiseModel":
        fits = {**config["cimphys"].get("drift", {}), **config["cimphys"].get("read", {})}
        differ = {k: (fits[k], v) for k, v in IBM_PCM_FITS.items() if k in fits and fits[k] != v}
        if differ:
            raise InputError(f"noise_model: the card's drift/read-noise fits differ from aihwkit's built-in "
                             f"PCMLikeNoiseModel constants {differ} (card, aihwkit); aihwkit would use its own")
        return name, {k: nm[k] for k in _PCM_ARGS if k in nm}
    if name == "ReRamWan2022NoiseModel":
        coeff = {float(t): list(c) for t, c in nm["coeff_dic"].items()}
        return name, {"coeff_dic": coeff, **{k: nm[k] for k in _RERAM_ARGS if k in nm}}
    raise InputError(f"noise_model: class {name!r} has no aihwkit builder here (PCMLikeNoiseModel, "
                     f"ReRamWan2022NoiseModel)")


def t_inference(config: dict) -> float:
    """aihwkit's ``t_inference`` (s from ``t_0``) for the exported time (s from programming)."""
    return float(config["t_inference"]) - float(config["noise_model"].get("t_0", 0.0))


def rpu_config(config: dict):
    """aihwkit's ``InferenceRPUConfig`` for an exported configuration (:func:`aihwkit_config`)."""
    from aihwkit import inference
    from aihwkit.simulator.configs import InferenceRPUConfig
    from aihwkit.simulator.parameters.enums import WeightNoiseType

    name, kwargs = noise_model_arguments(config)
    if name == "PCMLikeNoiseModel" and not config["cimphys"].get("differential", False):
        kwargs["g_converter"] = inference.SingleDeviceConductanceConverter(g_max=kwargs["g_max"], g_min=0.0)
    rpu = InferenceRPUConfig(noise_model=getattr(inference, name)(**kwargs))
    rpu.mapping.weight_scaling_omega = 0.0
    rpu.drift_compensation = (inference.GlobalDriftCompensation()
                              if config.get("drift_compensation") == "GlobalDriftCompensation" else None)
    forward = dict(config["rpu_config"]["forward"])
    if forward.pop("w_noise_type") != "AdditiveConstant":
        raise InputError("rpu_config.forward.w_noise_type: only 'AdditiveConstant' is exported")
    for key, value in forward.items():
        setattr(rpu.forward, key, value)
    rpu.forward.w_noise_type = WeightNoiseType.ADDITIVE_CONSTANT
    return rpu


def aihwkit_config(model, adc_bits: int | None = None) -> dict:
    """The tile as an aihwkit inference configuration for one ADC setting (see the module doc)."""
    p, bits = exported_parameters(model), pick_bits(model, adc_bits)
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


def write_aihwkit(model, path, adc_bits: int | None = None) -> Path:
    """Write :func:`aihwkit_config` as JSON."""
    return write_json(aihwkit_config(model, adc_bits), path)


def write_json(payload: dict, path) -> Path:
    """``payload`` as indented JSON at ``path`` (folders made as needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
