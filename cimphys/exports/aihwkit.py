"""A tile's exported aihwkit configuration turned into aihwkit 1.1's own objects.

:func:`cimphys.export.aihwkit_config` writes JSON (aihwkit has no file format of its own);
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
"""

from __future__ import annotations

from ..errors import InputError

__all__ = ["IBM_PCM_FITS", "noise_model_arguments", "rpu_config", "t_inference"]

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
    """aihwkit's ``InferenceRPUConfig`` for an exported configuration (:func:`cimphys.export.aihwkit_config`)."""
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
