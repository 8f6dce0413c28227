"""The error budget of a card: what each physical effect alone, then all of them, does to a model.

:func:`error_budget` runs the same sentences through the same tiles (same card, seed and
calibration sentences) with the card's effects switched on one at a time over a base in which
every effect is off, then all together, and tabulates the error each causes per hidden state and
at the output.  An effect is a set of card keys (or a layer choice) set to its ideal value:

========== =====================================================================================
wires       ``r_wire_per_cell_ohm`` and ``r_driver_ohm`` 0 (the sense input resistance stays: it
            belongs to the amplifier)
device      cells programmed exactly instead of through the device card (write error,
            variability, stuck-at faults)
read_noise  no thermal, shot, 1/f or RTN current noise of the cells
drift       read right after programming (``time = 0``)
dac         no DAC mismatch, INL or settling
sense       no sense-amplifier offset or noise, and a swing that never saturates (100 V)
adc         an ideal 16-bit converter instead of the card's ADC (architecture, resolution,
            mismatch, noise, gain and offset errors)
========== =====================================================================================

The base keeps the mapping's digital quantisation (input and weight resolution), which every
row shares; ``none`` is that base.  Nothing here models an effect: each row is a full run of the
one chain (:func:`cimphys.layers.pipeline.run_model`) on a changed card.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from ..results import variable
from .config import CimConfig

__all__ = ["EFFECTS", "budget_table", "error_budget", "without"]


def _no_wires(cfg: CimConfig) -> CimConfig:
    return cfg.with_(r_wire_per_cell_ohm=0.0, r_driver_ohm=0.0)


def _no_dac(cfg: CimConfig) -> CimConfig:
    return cfg.with_card(cfg.card.with_section("dac", mismatch_sigma=0.0, inl_lsb=[0.0], tau_s=0.0))


def _no_sense(cfg: CimConfig) -> CimConfig:
    return cfg.with_card(cfg.card.with_section("sense", offset_sigma_v=0.0, noise_v_rms=0.0, v_swing_v=100.0))


def _no_adc(cfg: CimConfig) -> CimConfig:
    return cfg.with_card(cfg.card.with_section(
        "adc", kind="ideal", bits=16, offset_sigma_lsb=0.0, cap_mismatch_sigma=0.0, comparator_noise_lsb=0.0,
        noise_lsb=0.0, gain_error=0.0, offset_lsb=0.0, ramp_rc_s=0.0))


#: effect -> (what it is, the config with it off)
EFFECTS: dict[str, tuple[str, Callable[[CimConfig], CimConfig]]] = {
    "wires": ("word/bit-line and driver resistance", _no_wires),
    "device": ("programming through the device card", lambda c: c.with_(programming="ideal")),
    "read_noise": ("the cells' read noise", lambda c: c.with_(cell_read_noise=False)),
    "drift": ("drift/retention to the read time", lambda c: c.with_(time=0.0)),
    "dac": ("DAC mismatch, INL, settling", _no_dac),
    "sense": ("sense offset, noise, saturation", _no_sense),
    "adc": ("the card's ADC vs an ideal 16-bit one", _no_adc),
}


def without(cfg: CimConfig, effects) -> CimConfig:
    """``cfg`` with every effect in ``effects`` switched off."""
    for name in effects:
        cfg = EFFECTS[name][1](cfg)
    return cfg


def error_budget(model, sentences, cfg: CimConfig, routing=None, *, seed: int = 0, cache_dir=None,
                 use_cache: bool = True, on_row=None) -> xr.Dataset:
    """Run ``sentences`` with no effect, each effect alone, and all effects; return the budget.

    Returns a Dataset with dims ``(effect, state)``: ``hidden_error`` (relative error of each
    hidden state vs fp32), and per effect ``embedding_cosine`` (mean), ``retrieval_spearman``,
    ``retrieval_top1``, ``matmul_snr_mean`` (dB).  ``effect`` runs ``none``, the effects of
    :data:`EFFECTS`, ``all``.  ``on_row(name)`` is called before each run (progress).
    """
    from .pipeline import run_model

    names = list(EFFECTS)
    rows = [("none", without(cfg, names))]
    rows += [(name, without(cfg, [n for n in names if n != name])) for name in names]
    rows.append(("all", cfg))
    results = []
    for name, row_cfg in rows:
        if on_row is not None:
            on_row(name)
        ds = run_model(model, sentences, row_cfg, routing, seed=seed, cache_dir=cache_dir, use_cache=use_cache)
        results.append(ds)
    effect = [name for name, _ in rows]
    pick = lambda f: np.array([f(ds) for ds in results])  # noqa: E731
    data = {
        "hidden_error": variable(("effect", "state"), np.stack([ds.hidden_error.values for ds in results]), "1",
                                 "relative error of the hidden state vs fp32"),
        "embedding_cosine": variable(("effect",), pick(lambda d: float(d.embedding_cosine.mean())), "1",
                                     "mean cosine of the output embeddings to fp32"),
        "retrieval_spearman": variable(("effect",), pick(lambda d: float(d.retrieval_spearman)), "1",
                                       "Spearman rho of the sentence-similarity matrix vs fp32"),
        "retrieval_top1": variable(("effect",), pick(lambda d: float(d.retrieval_top1)), "1",
                                   "top-1 neighbour agreement with fp32"),
        "matmul_snr_mean": variable(("effect",), pick(lambda d: float(np.nanmean(d.matmul_snr.values))), "dB",
                                    "mean SNR of the analog products vs fp32"),
    }
    about = {"none": "every effect off (the mapping's quantisation only)", "all": "every effect of the card on",
             **{k: v[0] for k, v in EFFECTS.items()}}
    ds = xr.Dataset(data, coords={"effect": effect, "state": results[0].state.values})
    ds["effect_description"] = variable(("effect",), np.array([about[e] for e in effect]), "1", "what the row turns on")
    ds.attrs.update({"card": cfg.card_name, "seed": seed, "sentences": results[0].sizes["sentence"],
                     "time_s": cfg.time, "temperature_k": cfg.temperature})
    return ds


def budget_table(ds: xr.Dataset) -> str:
    """The budget as a text table (one row per effect)."""
    states = ds.sizes["state"]
    head = f"{'effect':11s} {'cosine':>8s} {'1-cos':>9s} {'Spearman':>9s} {'top-1':>6s} {'SNR dB':>7s}  " + \
        " ".join(f"h{k:<6d}" for k in range(states))
    lines = [head]
    for k, e in enumerate(ds.effect.values):
        cos = float(ds.embedding_cosine[k])
        lines.append(f"{e:11s} {cos:8.5f} {1 - cos:9.2e} {float(ds.retrieval_spearman[k]):9.4f} "
                     f"{float(ds.retrieval_top1[k]):6.3f} {float(ds.matmul_snr_mean[k]):7.1f}  "
                     + " ".join(f"{v:7.1e}" for v in ds.hidden_error.values[k]))
    return "\n".join(lines)
