"""What the hardware did to the model: fidelity, energy, latency and tiles as one Dataset.

:func:`build_report` compares an analog run with the fp32 run of the same sentences:

- per (op, layer): SNR (dB) and cosine similarity of the product against the fp32 product of
  the *same* inputs, tiles used and their cell utilisation;
- per hidden state (embeddings, then after each layer): relative Frobenius error
  ``‖h - h_fp32‖ / ‖h_fp32‖`` over the real (unpadded) tokens;
- per sentence: cosine of the output embedding to its fp32 embedding;
- retrieval agreement on the sentence set: Spearman rank correlation between the off-diagonal
  entries of the two cosine-similarity matrices, and the fraction of sentences whose nearest
  neighbour (excluding itself) is the same;
- energy per token position split by array, DAC, sense, ADC, digital and write (the digital
  nonlinearities softmax, LayerNorm and GELU are ops of their own, digital bucket only:
  :data:`~cimphys.layers.op_stats.DIGITAL_OP_COUNTS`), latency per token, cell writes per token and, when dynamic products are written into arrays, the number
  of tokens before the cells reach their endurance;
- the one-off energy and time of programming the static weights (the device model's pulses).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.stats import spearmanr

from ..results import variable
from .op_stats import NONLINEAR_OPS
from .routing import ALL_OPS

__all__ = ["BUCKETS", "build_report", "retrieval_agreement"]

BUCKETS = ("array", "dac", "sense", "adc", "digital", "write")


def retrieval_agreement(emb: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(Spearman ρ of off-diagonal similarities, top-1 neighbour agreement) of two embedding sets."""
    n = emb.shape[0]
    if n < 3:
        return 1.0, 1.0
    s, r = emb @ emb.T, ref @ ref.T
    iu = np.triu_indices(n, k=1)
    rho = float(spearmanr(s[iu], r[iu]).statistic)
    np.fill_diagonal(s, -np.inf)
    np.fill_diagonal(r, -np.inf)
    return rho, float(np.mean(s.argmax(1) == r.argmax(1)))


def _state_errors(states, ref_states, mask):
    m = np.asarray(mask, bool)
    rel, cos = [], []
    for h, r in zip(states, ref_states):
        a, b = h[m].astype(np.float64), r[m].astype(np.float64)
        rel.append(np.linalg.norm(a - b) / np.linalg.norm(b))
        cos.append(float(np.mean((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))))
    return np.array(rel), np.array(cos)


def _op_table(engine) -> dict:
    """Per (op, layer) arrays of the run's statistics, and the summed latency (s) and cell writes."""
    order = ALL_OPS + NONLINEAR_OPS
    keys = sorted(engine.stats, key=lambda k: (k[1], order.index(k[0])))
    ops = [op for op in order if any(k[0] == op for k in keys)]
    layers = sorted({k[1] for k in keys})
    shape = (len(ops), len(layers))
    t = {"ops": ops, "layers": layers, "snr": np.full(shape, np.nan), "cos": np.full(shape, np.nan),
         "tiles": np.zeros(shape, np.int64), "util": np.full(shape, np.nan), "analog": np.zeros(shape, bool),
         "energy": np.zeros(shape + (len(BUCKETS),)), "latency": 0.0, "writes": 0.0}
    for (op, layer), st in engine.stats.items():
        i, j = ops.index(op), layers.index(layer)
        t["analog"][i, j] = engine.routing.is_analog(op)
        if t["analog"][i, j]:
            t["snr"][i, j] = min(st.snr_db, 300.0)  # exact products would be +inf: cap for storage
            t["cos"][i, j] = st.cosine
        c = st.costs
        t["energy"][i, j] = [getattr(c, b) for b in BUCKETS]
        t["latency"] += c.latency
        t["writes"] += c.cell_writes
        am = engine.matrices.get((op, layer))
        if am is not None:
            t["tiles"][i, j] = am.n_tiles
            t["util"][i, j] = am.mapped.utilisation
    return t


def _op_variables(t: dict, tokens: int) -> dict:
    """The Dataset variables over (op, layer) of :func:`_op_table`'s arrays."""
    return {
        "matmul_snr": variable(("op", "layer"), t["snr"], "dB", "SNR of the product vs fp32 (same inputs)"),
        "matmul_cosine": variable(("op", "layer"), t["cos"], "1", "cosine similarity of the product vs fp32"),
        "analog": variable(("op", "layer"), t["analog"], "1", "op runs on CIM tiles"),
        "tiles": variable(("op", "layer"), t["tiles"], "1", "tiles holding the weights"),
        "utilisation": variable(("op", "layer"), t["util"], "1", "fraction of tile cells holding weights"),
        "energy_by_op": variable(("op", "layer", "bucket"), t["energy"] / tokens, "J", "energy per token by op"),
    }


def build_report(engine, emb, states, ref_emb, ref_states, mask, *, sentences=None, attrs=None) -> xr.Dataset:
    """The labelled Dataset of one analog run against its fp32 reference (see module docstring)."""
    # tokens evaluated: padding positions stay off the tiles (AnalogEngine.padding_off); the
    # digital nonlinearities are still counted over every position (an upper bound for them)
    tokens = int(np.asarray(mask).sum())
    t = _op_table(engine)
    rel, hcos = _state_errors(states, ref_states, mask)
    emb_cos = (emb * ref_emb).sum(1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(ref_emb, axis=1))
    rho, top1 = retrieval_agreement(emb, ref_emb)
    per_token = t["energy"].sum(axis=(0, 1)) / tokens
    # dynamic operands go to arrays dedicated to (op, layer, head), rewritten once per sequence:
    # a cell survives `endurance` sequences of the mean length
    mean_len = float(np.asarray(mask).sum()) / np.asarray(mask).shape[0]
    life = engine.cfg.endurance * mean_len if t["writes"] else np.inf
    data = {
        **_op_variables(t, tokens),
        "hidden_error": variable(("state",), rel, "1", "relative error of hidden states vs fp32"),
        "hidden_cosine": variable(("state",), hcos, "1", "mean token cosine of hidden states vs fp32"),
        "embedding_cosine": variable(("sentence",), emb_cos, "1", "cosine of output embedding to fp32"),
        "energy_per_token": variable(("bucket",), per_token, "J", "energy per token by component"),
        "energy_total_per_token": variable((), per_token.sum(), "J", "total energy per token"),
        "latency_per_token": variable((), t["latency"] / tokens, "s", "latency per token (ops in sequence)"),
        "retrieval_spearman": variable((), rho, "1", "Spearman rho of sentence-similarity matrices vs fp32"),
        "retrieval_top1": variable((), top1, "1", "top-1 neighbour agreement with fp32"),
        "tile_count": variable((), int(t["tiles"].sum()), "1", "tiles used by static weights"),
        "cell_writes_per_token": variable((), t["writes"] / tokens, "1", "cells written per token (dynamic ops)"),
        "endurance_tokens": variable((), life, "1",
                                     "tokens until the written cells reach their endurance"),
        "programming_energy": variable((), engine.programming.write, "J",
                                       "energy of programming every static weight once (device model's pulses)"),
        "programming_time": variable((), engine.programming.write_time, "s",
                                     "time of programming the static weights (matrices one after another)"),
    }
    coords = {"op": list(t["ops"]), "layer": np.array(t["layers"]), "bucket": list(BUCKETS),
              "state": np.arange(len(states)), "sentence": np.arange(emb.shape[0])}
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"tokens": tokens, "tile_cache_hits": engine.cache_hits, **(attrs or {})})
    if sentences is not None:
        ds["sentence_text"] = variable(("sentence",), np.array(list(sentences), dtype=object).astype(str), "1",
                                       "input sentence")
    return ds
