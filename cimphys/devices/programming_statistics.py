"""Programmed-conductance statistics of a device card: what programming a cell gives, per family.

One function per family turns a device card into :class:`DeviceStatistics`, the object both the
exports (:mod:`cimphys.export`) and the cell array (:mod:`cimphys.devices.cell_array`) draw
programmed cells from, so that they use the same numbers:

* PCM (``pcm_statistical``, :func:`pcm_statistics`): the card's statistical model -- programming
  noise, drift, 1/f read noise, global drift compensation (:class:`~cimphys.devices.pcm.PCMModel`).
* Dynamic RRAM (VTEAM, TEAM, Stanford-PKU, Yakopcic, linear ion drift, :func:`dynamic_statistics`):
  the device layer's write-verify (:func:`cimphys.devices.programming.write_verify`) on a seeded
  Monte-Carlo set of ``PROG_BINS * PROG_PER_BIN`` (512) targets across the programming window, to
  within ``PROG_TOLERANCE`` (2 %) of it, with pulses found from the model
  (:func:`programming_pulses`: fixed pulses, or incremental-step pulse programming for cards fixed
  pulses cannot program -- HP linear drift, TEAM) and the card's ``[variability]`` ``c2c_sigma`` if
  it has one.  The measured error, pulse count and write energy of every Monte-Carlo cell are kept
  per target bin; ``sigma_prog(G_T)`` and the mean error per bin are also fitted by least squares
  with ``c0 + c1 g + c2 g**2`` (``g = (G_T - G_lo) / (G_hi - G_lo)``) for the exports.

The programming window of a dynamic card is the tile's ``[g_min, g_max]`` slid (same on/off ratio)
into the card's chord-conductance range at the read voltage ``v_read``, or that whole range when it
is narrower; PCM programs ``[0, g_max]`` of its card.  A level ``u`` in [0, 1] is the device target
``G_lo + u (G_hi - G_lo)`` and the tile conductance ``g_min + u (g_max - g_min)``.

Nothing here knows a crossbar: the caller gives the window, the read voltage and the noise
bandwidth of one read (Hz).

References
----------
V. Joshi et al., Nat. Commun. 11, 2473 (2020), doi:10.1038/s41467-020-16108-9 (the PCM statistics).
E. Perez et al., Electronics 10, 1084 (2021), doi:10.3390/electronics10091084 (ISPP write-verify).
C. D. Motchenbacher, J. A. Connelly, *Low-Noise Electronic System Design*, Wiley (1993), ch. 1
(thermal and shot noise of the verify read).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..cards import Card
from ..errors import InputError
from .dynamic_model import model_class
from .programming import chord_conductance, pulse_response, write_verify

__all__ = ["DeviceStatistics", "ISPP_MAX", "ISPP_RANGE", "ISPP_STEP", "ISPP_V_LIMIT", "PROG_BINS",
           "PROG_MAX_PULSES", "PROG_PER_BIN", "PROG_TOLERANCE", "PULSE_WIDTH_RANGE", "TEMPERATURE_K",
           "binned_errors", "device_statistics", "dynamic_statistics", "fit_quadratic", "fixed_pulses",
           "ispp_options", "pcm_levels", "pcm_statistics", "programming_card", "programming_pulses",
           "programming_window", "pulse_amplitude", "read_sigma"]

_UNIT_US = 1e-6  # aihwkit's conductance unit

# Write-verify of a dynamic (RRAM) card, Monte-Carlo set and fit.
PROG_TOLERANCE = 0.02  # accept |G_read - G_T| <= 2 % of the window: the wider acceptance range of
#                        iterative RRAM programming (aihwkit ReRamCMONoiseModel fits 0.2 % and 2 %)
PROG_BINS, PROG_PER_BIN = 16, 32  # stratified targets: 32 uniform draws in each of 16 equal bins
PROG_MAX_PULSES = 1000
PULSE_WIDTH_RANGE = (1e-10, 1e3)  # s: shortest pulse a driver delivers ... slowest drift device
TEMPERATURE_K = 300.0  # K: default temperature of the verify reads


@dataclasses.dataclass(frozen=True)
class DeviceStatistics:
    """What programming a cell of a device card gives, in the device's programming window.

    ``sample(levels, rng)`` gives read levels (normalised to the device's programming window,
    clipped to [0, 1]) and the drift compensation factor for target levels in [0, 1] (the
    exports' draw); ``params`` the device fields of the exports; ``read_noise`` whether each
    read of the tile carries thermal + shot current noise (dynamic RRAM; the PCM read noise is
    static in its model); ``aihwkit`` and ``crosssim`` the device parts of those vocabularies;
    ``notes``.

    For the cell array: ``family`` (``"pcm"`` or ``"dynamic"``); ``model`` the device model
    (:class:`~cimphys.devices.pcm.PCMModel` or a dynamic model); ``window`` the programming window
    ``(G_lo, G_hi)`` (S); ``bounds`` the device's lowest and highest conductance at the read
    voltage (S: where a stuck-off / stuck-on cell sits); ``table`` (dynamic only) the write-verify
    Monte-Carlo per target bin: ``error`` (``G - G_T`` over the window span), ``pulses``,
    ``energy`` (J, programming pulses of the cell), ``level`` (the targets), all of shape
    ``(PROG_BINS, PROG_PER_BIN)``, and ``width`` (s) of one pulse.
    """

    sample: Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, float]]
    params: dict
    read_noise: bool
    aihwkit: dict
    crosssim: dict
    notes: str
    family: str = ""
    model: object = None
    window: tuple[float, float] = (0.0, 0.0)
    bounds: tuple[float, float] = (0.0, 0.0)
    table: dict | None = None


def device_statistics(card: Card, *, g_min: float, g_max: float, v_read: float, bandwidth: float, t: float,
                      seed, temperature: float | None = None) -> DeviceStatistics:
    """Dispatch a device card to its family's statistics (PCM or a dynamic, write-verified RRAM).

    Parameters
    ----------
    card : Card
        A ``pcm_statistical`` card or a dynamic memristor card.
    g_min, g_max : float, S
        The tile's conductance window (dynamic cards: slid into the card's range).
    v_read : float, V
        Read (and verify) voltage.
    bandwidth : float, Hz
        Noise bandwidth of one (verify) read.
    t : float, s
        Time from programming to the read, for the exports' PCM read noise and drift.
    seed : int
        Seeds the write-verify Monte-Carlo.
    temperature : float, K, optional
        Temperature of programming: the verify reads' thermal noise and, for Stanford-PKU, the
        ambient ``t0`` of its switching kinetics.  None: ``TEMPERATURE_K`` for the reads and the
        card's own ``t0``.
    """
    if card.model == "pcm_statistical":
        return pcm_statistics(card, t)
    try:
        cls = model_class(card)
    except InputError:
        raise InputError(
            f"device: card {card.name!r} (model {card.model!r}) has no programming model: it is not a "
            f"'pcm_statistical' card nor a dynamic memristor that cimphys.devices.programming.write_verify can "
            f"program, so it has no programmed-conductance statistics to export (an access transistor or a "
            f"selector is not a memory cell)") from None
    card = programming_card(card, temperature)
    return dynamic_statistics(card, cls.from_card(card), g_min=g_min, g_max=g_max, v_read=v_read,
                              bandwidth=bandwidth, t=t, seed=seed,
                              temperature=TEMPERATURE_K if temperature is None else float(temperature))


def programming_card(card: Card, temperature: float | None) -> Card:
    """The card as programming sees it: Stanford-PKU's kinetics at the programming temperature."""
    if temperature is not None and "t0" in card.parameters and card.model == "stanford_pku":
        return card.with_parameters(t0=float(temperature))
    return card


def pcm_statistics(card: Card, t: float) -> DeviceStatistics:
    """PCM: the card's own statistical model (programming polynomial, drift, 1/f read noise)."""
    from .pcm import PCMModel

    pcm = PCMModel.from_card(card)
    params = {
        "family": "pcm", "g_max_device_s": pcm.g_max, "prog_coeff_s": list(pcm.prog_coeff),
        "prog_coeff_rel": [c / pcm.g_max for c in pcm.prog_coeff],
        "drift": {k: getattr(pcm, k) for k in ("nu_mean_slope", "nu_mean_offset", "nu_mean_min", "nu_mean_max",
                                               "nu_std_slope", "nu_std_offset", "nu_std_min", "nu_std_max",
                                               "g_rel_min", "t0")},
        "read": {k: getattr(pcm, k) for k in ("read_q", "read_q_exponent", "read_q_floor", "read_q_max", "t_read")},
        "conductance_clip": [0.0, 1.0],
        "nu_at_half": [float(pcm.nu_mean(pcm.g_max / 2)), float(pcm.nu_std(pcm.g_max / 2))],
        "prog_rms_rel": float(np.sqrt(np.mean(pcm.sigma_prog(np.linspace(0, pcm.g_max, 1001)) ** 2)) / pcm.g_max),
        "read_rms_rel": float(np.sqrt(np.mean(pcm.sigma_read(np.linspace(0.01, 1, 1000) * pcm.g_max, t) ** 2))),
    }
    aihwkit = {
        "noise_model": {
            "class": "PCMLikeNoiseModel", "g_max": pcm.g_max / _UNIT_US,
            "prog_coeff": [c / _UNIT_US for c in pcm.prog_coeff], "t_0": pcm.t0, "t_read": pcm.t_read,
            "prog_noise_scale": 1.0, "read_noise_scale": 1.0, "drift_scale": 1.0,
            "drift_nu_mean": params["nu_at_half"][0], "drift_nu_std": params["nu_at_half"][1],
        },
        "drift_compensation": "GlobalDriftCompensation",
    }
    crosssim = {
        "programming_error": {"enable": True, "model": "NormalIndependentDevice", "magnitude": params["prog_rms_rel"]},
        "read_noise": {"enable": True, "model": "NormalProportionalDevice", "magnitude": params["read_rms_rel"]},
        "drift_error": {"enable": True, "model": "PCMJoshi", "magnitude": 0.0},
    }
    notes = ("programming error: rms of the IBM polynomial over uniform levels (CrossSim uses one sigma); "
             "read noise: rms relative 1/f read noise at t_inference, applied by CrossSim at every read "
             "(static in cimphys)")
    return DeviceStatistics(lambda levels, rng: pcm_levels(pcm, levels, t, rng), params, False, aihwkit, crosssim,
                            notes, family="pcm", model=pcm, window=(0.0, pcm.g_max), bounds=(0.0, pcm.g_max))


def pcm_levels(pcm, levels, t, rng) -> tuple[np.ndarray, float]:
    """Read levels (normalised to the device g_max, clipped to [0, 1]) and the drift
    compensation factor from a separate calibration read, as the physics chain does."""
    g_t = levels.ravel() * pcm.g_max
    g_p = pcm.program(g_t, rng)
    nu = pcm.drift_exponents(g_t, rng)
    read = pcm.read(g_p, nu, t, rng)
    alpha = float(pcm.read(g_p, nu, pcm.t0, rng).sum() / pcm.read(g_p, nu, t, rng).sum())
    return np.clip(read / pcm.g_max, 0.0, 1.0).reshape(levels.shape), alpha


def dynamic_statistics(card: Card, model, *, g_min: float, g_max: float, v_read: float, bandwidth: float,
                       t: float, seed, temperature: float = TEMPERATURE_K) -> DeviceStatistics:
    """Dynamic RRAM: the device layer's write-verify on a Monte-Carlo set of targets.

    The programming window is the tile's ``[g_min, g_max]`` (S) slid (same on/off ratio) into the
    card's chord-conductance range at the read voltage ``v_read`` (V), or that whole range when it is
    narrower.  Every target is reached from the window's low end by :func:`write_verify` with
    the pulses of :func:`programming_pulses` and a verify read carrying the thermal + shot noise of
    :func:`read_sigma` at the window's low end (its largest relative value); the card's
    ``[variability]`` ``c2c_sigma``, if any, spreads each pulse's state change.  The measured
    error ``G - G_T`` per bin gives ``sigma_prog`` and the bias, both fitted by least squares
    with ``c0 + c1 g + c2 g**2``, ``g = (G_T - G_lo) / (G_hi - G_lo)``.  The tile physics draws
    each cell's error from the measured errors of its bin (not from the fit), so the round trip
    through the exported polynomial is a test of the fit.  ``bandwidth`` (Hz) and ``temperature``
    (K) set the verify read's noise; ``t`` (s) labels the aihwkit polynomial; ``seed`` seeds the
    Monte-Carlo.
    """
    states, g_curve = programming_window(card, model, v_read)
    ratio = g_max / g_min
    g_lo = float(np.clip(g_min, g_curve[0], max(g_curve[-1] / ratio, g_curve[0])))
    g_hi = float(min(g_lo * ratio, g_curve[-1]))
    span, tol = g_hi - g_lo, PROG_TOLERANCE * (g_hi - g_lo)
    level, wv, options = _write_verify_levels(card, model, states, g_curve, (g_lo, g_hi), v_read, bandwidth,
                                              temperature, seed)
    error = (wv.g.values - wv.g_target.values).reshape(level.shape) / span
    centre = level.mean(axis=1)
    sigma, bias = error.std(axis=1, ddof=1), error.mean(axis=1)
    prog, prog_res = fit_quadratic(centre, sigma)
    bias_c, bias_res = fit_quadratic(centre, bias)
    u = np.linspace(0.0, 1.0, 1001)
    g_u = g_min + u * (g_max - g_min)
    sigma_g = read_sigma(g_u, v_read, bandwidth, temperature) * g_u  # S, one read of one cell
    params = {
        "family": "dynamic", "g_window_s": [g_lo, g_hi], "g_max_device_s": span,
        "prog_coeff_s": [c * span for c in prog], "prog_coeff_rel": prog, "prog_fit_residual_rel": prog_res,
        "prog_bias_rel": bias_c, "prog_bias_residual_rel": bias_res,
        "prog_measured": {"level": centre.tolist(), "sigma_rel": sigma.tolist(), "bias_rel": bias.tolist(),
                          "n_per_level": PROG_PER_BIN},
        "write_verify": {**options, "tolerance": tol, "max_pulses": PROG_MAX_PULSES,
                         "n_failed": int(wv.attrs["n_failed"]), "mean_pulses": float(wv.pulses.mean())},
        "conductance_clip": [0.0, 1.0],
        "prog_rms_rel": float(np.sqrt(np.mean(np.polyval(prog[::-1], u) ** 2))),
        "read_bandwidth_hz": bandwidth, "temperature_k": temperature,
        "read_rms_rel": float(np.sqrt(np.mean((sigma_g / g_u) ** 2))),
        "w_noise": float(np.sqrt(np.mean(sigma_g**2)) / (g_max - g_min)),
    }
    aihwkit, crosssim = _dynamic_vocabularies(params, prog, span, t)
    notes = _dynamic_notes(card, options, wv, (g_lo, g_hi), prog_res, v_read, bandwidth)
    table = {"level": level, "error": error.copy(), "pulses": wv.pulses.values.reshape(level.shape),
             "energy": wv.energy.values.reshape(level.shape), "width": float(options["width"])}
    return DeviceStatistics(binned_errors(table["error"]), params, True, aihwkit, crosssim, notes, family="dynamic",
                            model=model, window=(g_lo, g_hi), bounds=(float(g_curve[0]), float(g_curve[-1])),
                            table=table)


def _dynamic_vocabularies(params: dict, prog: list, span: float, t: float) -> tuple[dict, dict]:
    """The aihwkit and CrossSim settings of a dynamic device's statistics ``params``: the fitted
    relative programming-error polynomial ``prog`` on the window of width ``span`` (S), labelled
    with the time ``t`` (s) in aihwkit's ``coeff_dic``."""
    aihwkit = {
        "noise_model": {"class": "ReRamWan2022NoiseModel", "g_max": span / _UNIT_US,
                        "coeff_dic": {str(t): [c * span / _UNIT_US for c in prog]}, "noise_scale": 1.0},
        "drift_compensation": None, "w_noise": params["w_noise"],
    }
    crosssim = {
        "programming_error": {"enable": True, "model": "NormalIndependentDevice", "magnitude": params["prog_rms_rel"]},
        "read_noise": {"enable": True, "model": "NormalProportionalDevice", "magnitude": params["read_rms_rel"]},
        "drift_error": {"enable": False, "model": "none", "magnitude": 0.0},
    }
    return aihwkit, crosssim


def _write_verify_levels(card: Card, model, states, g_curve, window, v_read, bandwidth, temperature, seed):
    """Write-verify of ``PROG_PER_BIN`` seeded targets in each of ``PROG_BINS`` bins of the window
    ``(g_lo, g_hi)`` (S): ``(level (bins, per bin) in 0..1, write_verify Dataset, its options)``."""
    g_lo, g_hi = window
    span, tol = g_hi - g_lo, PROG_TOLERANCE * (g_hi - g_lo)
    v_set, v_reset, width, *ispp = programming_pulses(card, model, v_read,
                                                      np.interp(np.linspace(g_lo, g_hi, 17), g_curve, states), tol)
    variability = card.sections.get("variability", {})
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    level = (np.arange(PROG_BINS)[:, None] + rng.uniform(size=(PROG_BINS, PROG_PER_BIN))) / PROG_BINS
    options = {"v_set": v_set, "v_reset": v_reset, "width": width, "v_read": v_read,
               "read_sigma": float(read_sigma(g_lo, v_read, bandwidth, temperature)),
               "step_sigma": float(variability.get("c2c_sigma", 0.0)),
               "state0": float(np.interp(g_lo, g_curve, states)), **(ispp[0] if ispp else {})}
    return level, write_verify(model, g_lo + span * level.ravel(), tol, PROG_MAX_PULSES, rng, **options), options


def _dynamic_notes(card: Card, options: dict, wv, window, prog_res: float, v_read: float, bandwidth: float) -> str:
    """The export notes of :func:`dynamic_statistics`: how the device was programmed and what each field means."""
    g_lo, g_hi = window
    if "v_step" in options:
        pulses = (f"incremental-step pulses (ISPP: from {options['v_set']:.3g} / {options['v_reset']:.3g} V, "
                  f"+{options['v_step'][0]:.3g} / {options['v_step'][1]:.3g} V per pulse, at most "
                  f"{options['v_max'][0]:.3g} / {options['v_max'][1]:.3g} V)")
    else:
        pulses = f"fixed pulses ({options['v_set']:.3g} / {options['v_reset']:.3g} V)"
    return (f"device {card.name} ({card.model}) programmed by write-verify with {pulses} of {options['width']:.3g} s "
            f"to within {PROG_TOLERANCE:.0%} of its window [{g_lo:.4g}, {g_hi:.4g}] S ({int(wv.attrs['n_failed'])} of "
            f"{wv.g.size} Monte-Carlo cells did "
            f"not converge in {PROG_MAX_PULSES} pulses); programming error: rms of the fitted sigma_prog polynomial "
            f"(fit residual {prog_res:.2g} of the window); its mean (write-verify stops at the first read inside "
            f"the band) has no aihwkit or CrossSim field and is in cimphys.prog_bias_rel; read noise: thermal + shot "
            f"at {v_read:g} V over {bandwidth:.4g} Hz, applied at every read (rms relative value; it scales as "
            f"G**-1/2, not proportionally); drift/retention: {_retention_note(card)}")


def binned_errors(errors: np.ndarray):
    """The sampler of :class:`DeviceStatistics`: each level drawn an error measured in its bin."""
    def sample(levels, rng):
        lv = levels.ravel()
        row = np.minimum((lv * PROG_BINS).astype(np.int64), PROG_BINS - 1)
        pick = errors[row, rng.integers(0, PROG_PER_BIN, lv.size)]
        return np.clip(lv + pick, 0.0, 1.0).reshape(levels.shape), 1.0
    return sample


def _retention_note(card: Card) -> str:
    """What the exports say about retention and RTN of a dynamic card (neither vocabulary is fed them)."""
    if "retention" not in card.sections and "rtn" not in card.sections:
        return "none (the card has no retention model: aihwkit coeff_dic holds one time, CrossSim drift_error off)"
    tables = " and ".join(f"[{t}]" for t in ("retention", "rtn") if t in card.sections)
    return (f"the card's {tables} table is applied by cimphys.devices.cell_array (the tile), not by this export: "
            f"aihwkit coeff_dic holds one time, CrossSim drift_error off")


def programming_window(card: Card, model, v_read: float) -> tuple[np.ndarray, np.ndarray]:
    """States and chord conductances at ``v_read`` across the state bounds, by increasing G."""

    lo, hi = (float(np.min(b)) for b in model.state_bounds)
    states = np.linspace(lo, hi, 4097)
    g = chord_conductance(model, v_read, states)
    # a model whose physics clips its state (Stanford-PKU: the integrated gap may run past the
    # gap the current sees) has flat ends: the programmable states are between them
    moving = np.flatnonzero(np.diff(g) != 0.0)
    if moving.size:
        states, g = states[moving[0]:moving[-1] + 2], g[moving[0]:moving[-1] + 2]
    if np.all(np.diff(g) < 0):
        states, g = states[::-1], g[::-1]
    if not np.all(np.diff(g) > 0):
        raise InputError(f"device: card {card.name!r}: the read conductance at {v_read:g} V is not monotonic in "
                         f"the state, so a conductance target has no unique state to program")
    return states, g


def programming_pulses(card: Card, model, v_read: float, states: np.ndarray, tol: float) -> tuple:
    """SET / RESET amplitudes and one pulse width for write-verify, from the model itself.

    Amplitudes: twice the switching thresholds (models without one: +-1 V), lowered in steps
    (1.5, 1.25, 1.1 times the threshold; 0.7, 0.5, 0.35, 0.25 V) while the width needed falls
    below the shortest pulse.  Width: bisection in log(width) so that the largest conductance
    step of one pulse over the window (17 states) equals the tolerance: then a cell approached
    from below always lands inside the acceptance band.  The shorter of the two widths serves both.

    Where fixed pulses fail, incremental-step pulse programming (ISPP, ``v_step``/``v_max`` of
    :func:`cimphys.devices.programming.write_verify_dynamic`) is returned as a fourth element
    (a dict of options); fixed pulses (three elements) otherwise, so cards they program keep
    their numbers.  Fixed pulses fail (a) when SET pulses from the window's low end (where every
    cell starts) take more than ``PROG_MAX_PULSES`` to cross it, estimated as the sum over the 16
    segments of the segment's width over the step at its low end (the step of one pulse varies too
    much across the window: the HP linear-drift card, ``dG`` per pulse ``~ G**3``, ~4800 pulses;
    VTEAM-Pickett ~600, Stanford-PKU ~620, Yakopcic 50 keep fixed pulses): ISPP then starts from
    the same pulses; (b) when no amplitude tried moves less than the tolerance even at the
    shortest pulse (the TEAM card, which switches at ~10-100 mV): the shortest pulse then
    serves, and each start amplitude is bisected so that its largest step over the window is the
    tolerance.  In both, the amplitude grows by ``ISPP_STEP`` of the start per pulse up to the
    amplitude that moves the slowest state by one tolerance per pulse (:func:`ispp_options`), but at
    most ``ISPP_MAX`` times the start and ``ISPP_V_LIMIT`` volts.
    """
    fixed = fixed_pulses(card, model, v_read, states, tol)
    if fixed is not None:
        v_set, v_reset, width = fixed
        g = pulse_response(model, v_set, width, 1, states, v_read=v_read).g.values
        with np.errstate(divide="ignore"):  # states ordered by increasing G; step of each segment's low end
            crossing = np.sum(np.diff(g[0]) / np.abs(g[1] - g[0])[:-1])
        if crossing <= PROG_MAX_PULSES:
            return v_set, v_reset, width
        return v_set, v_reset, width, ispp_options(model, v_set, v_reset, width, v_read, states, tol)
    width = PULSE_WIDTH_RANGE[0]
    start = {}
    for sign in (1.0, -1.0):
        v = pulse_amplitude(model, sign, width, v_read, states, tol, np.max)
        if v is not None:
            g = pulse_response(model, v, width, 1, states, v_read=v_read).g.values
            start[1 if np.mean(g[1] - g[0]) > 0 else -1] = v
    if set(start) != {1, -1}:
        raise InputError(f"device: card {card.name!r}: no pulse of either polarity (fixed amplitudes, or a start "
                         f"amplitude of {ISPP_RANGE[0]:g} to {ISPP_RANGE[1]:g} V at {width:g} s for incremental-step "
                         f"programming) both raises and lowers the conductance within the tolerance; it cannot be "
                         f"write-verified")
    return start[1], start[-1], width, ispp_options(model, start[1], start[-1], width, v_read, states, tol)


ISPP_STEP = 0.1  # ISPP amplitude increment, fraction of the start amplitude
ISPP_MAX = 16.0  # ISPP amplitude cap: at most this many times the start amplitude
# ... and at most this many volts: a write driver's supply in an RRAM macro is a few volts (SET
# and RESET at 1-3 V, forming below ~4 V); a model without breakdown would otherwise be driven
# at amplitudes no device survives (the HP card's slowest state needs ~1000 V per tolerance).
ISPP_V_LIMIT = 5.0
ISPP_RANGE = (1e-4, 20.0)  # V: amplitudes searched for the start and the cap


def pulse_amplitude(model, sign: float, width: float, v_read: float, states: np.ndarray, tol: float, reduce):
    """Amplitude of polarity ``sign`` whose step ``reduce``-d over ``states`` is ``tol`` (bisection in
    log V over ``ISPP_RANGE``), or None when the range does not bracket it.  ``np.max``: the
    largest pulse that never steps over the band; ``np.min``: the smallest that moves every state
    by at least the band."""
    def step(log_v):
        g = pulse_response(model, sign * 10.0**log_v, width, 1, states, v_read=v_read).g.values
        return reduce(np.abs(g[1] - g[0]))

    lo, hi = np.log10(ISPP_RANGE)
    if step(lo) > tol or step(hi) <= tol:
        return None
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if step(mid) > tol else (mid, hi)
    return sign * 10.0 ** (lo if reduce is np.max else hi)


def ispp_options(model, v_set: float, v_reset: float, width: float, v_read: float, states: np.ndarray, tol: float) -> dict:
    """ISPP options from the start amplitudes: step ``ISPP_STEP`` of each, cap the amplitude that
    moves the slowest state (of those a pulse of that polarity must leave) by one tolerance,
    at most ``ISPP_MAX`` times the start and ``ISPP_V_LIMIT`` volts."""
    caps = []
    for v, part in ((v_set, states[:-1]), (v_reset, states[1:])):  # states ordered by increasing G
        need = pulse_amplitude(model, np.sign(v), width, v_read, part, tol, np.min)
        caps.append(float(min(abs(need) if need is not None else np.inf, ISPP_MAX * abs(v), ISPP_V_LIMIT)))
    return {"v_step": [ISPP_STEP * abs(v_set), ISPP_STEP * abs(v_reset)],
            "v_max": [max(c, abs(v)) for c, v in zip(caps, (v_set, v_reset))]}


def fixed_pulses(card: Card, model, v_read: float, states: np.ndarray, tol: float):
    """Fixed SET / RESET amplitudes and width of :func:`programming_pulses`, or None when none qualifies."""
    thresholds = model.thresholds
    scales = (2.0, 1.5, 1.25, 1.1) if thresholds else (1.0, 0.7, 0.5, 0.35, 0.25)
    found = {}
    for sign in (1.0, -1.0):
        base = (max(thresholds) if sign > 0 else -min(thresholds)) if thresholds else 1.0
        for scale in scales:
            amp = sign * scale * abs(base)

            def step(log_w):
                ds = pulse_response(model, amp, 10.0**log_w, 1, states, v_read=v_read)
                return ds.g.values[1] - ds.g.values[0]

            lo, hi = np.log10(PULSE_WIDTH_RANGE)
            if np.abs(step(lo)).max() > tol:
                continue  # too strong even for the shortest pulse: lower the amplitude
            if np.abs(step(hi)).max() <= tol:
                lo = hi
            for _ in range(30):
                mid = 0.5 * (lo + hi)
                lo, hi = (lo, mid) if np.abs(step(mid)).max() > tol else (mid, hi)
            found[sign] = (amp, 10.0**lo, float(np.mean(step(lo))))
            break
    moves = {s: v for s, v in found.items() if v[2] != 0.0}
    up = [v for v in moves.values() if v[2] > 0]
    down = [v for v in moves.values() if v[2] < 0]
    if not up or not down:
        return None
    return up[0][0], down[0][0], min(up[0][1], down[0][1])


def fit_quadratic(x: np.ndarray, y: np.ndarray) -> tuple[list, float]:
    """Least-squares ``c0 + c1 x + c2 x**2`` through ``(x, y)``; coefficients and rms residual."""
    design = np.vander(x, 3, increasing=True)
    coeff, *_ = np.linalg.lstsq(design, y, rcond=None)
    return [float(c) for c in coeff], float(np.sqrt(np.mean((design @ coeff - y) ** 2)))


def read_sigma(g, v_read: float, bandwidth: float, temperature: float = TEMPERATURE_K):
    """Relative rms of one read of conductance ``g`` (S) at ``v_read`` (V): thermal + shot current
    noise, ``sqrt((4 k T G + 2 q G |V|) df) / (G |V|)`` (:mod:`cimphys.devices.noise`)."""
    from .noise import shot_noise_std, thermal_noise_std

    g = np.asarray(g, dtype=float)
    i = g * abs(v_read)
    return np.hypot(thermal_noise_std(g, bandwidth, temperature), shot_noise_std(i, bandwidth)) / i

