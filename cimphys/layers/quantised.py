"""Q4_1 matrices on CIM tiles with their own 4-bit codes as cell levels (no re-quantisation).

A Q4_1 weight is ``w = d_b · c + m_b`` with a 4-bit code ``c`` and, per block ``b`` of 32
input rows and per output column, a step ``d_b`` and a min ``m_b`` (llama.cpp's format).  Each
block becomes one 32-row tile row (:func:`cimphys.layers.mapping.map_q4_1`): one 16-level cell
per weight holding ``c`` exactly, offset-encoded against a mid-level reference column, so the
array computes ``Σ_{i∈b} x_i (c_i - 8)``; its ADC output is scaled by ``d_b`` digitally, and
``(8 d_b + m_b) Σ_{i∈b} x_i`` is added digitally (one input sum per block and token, shared by
all columns: K/32 · N multiply-adds per token, counted as digital energy).  With ideal
periphery the product equals ``x @ w`` of the dequantised weights exactly; the generic float
mapping (:func:`~cimphys.layers.mapping.map_matrix`) instead re-quantises the dequantised
weights per column.

:class:`QuantisedEngine` is an :class:`~cimphys.layers.engine.AnalogEngine` that maps the
static projections of a GGUF Q4_1 model this way.  Its tiles go to the tile cache
(:mod:`cimphys.layers.characterise`) under a key of their own: the codes, steps and mins,
every input of the configuration, the seed and the (op, layer); no tile pool.

References
----------
G. Gerganov et al., llama.cpp, ``ggml/src/ggml-quants.c`` (Q4_1).  A. Shafiee et al., ISAAC,
ISCA 2016, doi:10.1109/ISCA.2016.12 (offset encoding with a reference column).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .analog import AnalogMatrix, Costs, keep_read_state
from ..cache import cache_key as entry_key
from .characterise import CACHE_VERSION
from .engine import AnalogEngine
from .gguf import QK
from .mapping import map_q4_1

__all__ = ["QuantisedEngine", "QuantisedMatrix", "offset_config", "q4_1_sources"]


class QuantisedMatrix:
    """A Q4_1 matrix (in K, out N) as K/32 one-block-high rows of tiles; AnalogMatrix's interface.

    Parameters
    ----------
    codes : ndarray (K, N) uint8
    scale, mins : ndarray (K/32, N) float32
        Per-block step ``d`` and min ``m``.
    cfg : CimConfig
        Tile physics; the mapping is replaced by 32 rows, one 4-bit cell per weight, offset sign.
    rng : numpy.random.Generator
        Programming draws.
    """

    def __init__(self, codes, scale, mins, cfg, rng, cells=None, characterisation=None):
        k, n = codes.shape
        if k % QK or scale.shape != (k // QK, n) or mins.shape != scale.shape:
            raise InputError(f"codes: expected (K, N) with K a multiple of {QK} and (K/32, N) scales, got "
                             f"{codes.shape}, {scale.shape}, {mins.shape}")
        self.cfg = offset_config(cfg)
        self.shape = (k, n)
        self.offset = (8.0 * scale + mins).astype(np.float64)  # (K/32, N)
        self.blocks = [AnalogMatrix.program(map_q4_1(codes[b * QK:(b + 1) * QK], scale[b], self.cfg.mapping),
                                            self.cfg, rng, cells=cells,
                                            characterisation=None if characterisation is None else [characterisation[b]])
                       for b in range(k // QK)]
        self.mapped = self.blocks[0].mapped
        self.programming = Costs(write=sum(a.programmed.write_energy for a in self.blocks),
                                 write_time=sum(a.programmed.write_time for a in self.blocks),
                                 cell_writes=sum(a.programmed.cell_writes for a in self.blocks))

    @property
    def n_tiles(self) -> int:
        return sum(a.n_tiles for a in self.blocks)

    @property
    def characterisation(self) -> list:
        """Per block ``(T, Y)`` of its one row of tiles: what the tile cache stores."""
        return [a.characterisation[0] for a in self.blocks]

    @property
    def calibrated(self) -> bool:
        return all(a.calibrated for a in self.blocks)

    def calibrate(self, x, rng: np.random.Generator) -> None:
        x = np.asarray(x, np.float64)
        for b, a in enumerate(self.blocks):
            a.calibrate(x[:, b * QK:(b + 1) * QK], rng)

    def finish_calibration(self) -> None:
        for a in self.blocks:
            a.finish_calibration()

    @property
    def calibration(self):
        return [a.calibration for a in self.blocks]

    def set_calibration(self, stacked) -> None:
        for a, c in zip(self.blocks, stacked):
            a.set_calibration(c)

    def matmul(self, x) -> tuple[np.ndarray, Costs]:
        """``x @ w`` (batch, N): the blocks' analog partial sums plus the digital min terms."""
        x = np.asarray(x, np.float64)
        costs = Costs()
        y = np.zeros((x.shape[0], self.shape[1]))
        for b, a in enumerate(self.blocks):
            yb, c = a.matmul(x[:, b * QK:(b + 1) * QK])
            y += yb
            costs.add(c)
        costs.rows = x.shape[0]
        sums = x.reshape(x.shape[0], -1, QK).sum(axis=2)  # (batch, K/32)
        y += sums @ self.offset
        macs = float(x.shape[0]) * self.offset.size
        costs.digital += macs * self.cfg.digital_mac_energy + x.size * self.cfg.fp_add_energy
        return y, costs


def offset_config(cfg):
    """``cfg`` on 32-row tiles with one 4-bit cell per weight and offset encoding: a differential
    card is read single-ended, its pair sense amplifiers subtracting the reference column instead."""
    out = cfg.with_(rows=QK, cell_bits=4, n_slices=1)
    if out.design.differential:
        card = out.card.with_parameters(differential=False)
        if out.design.mode == "pair":
            card = card.with_section("sense", mode="reference")
        out = out.with_card(card)
    return out


def q4_1_sources(weights) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Canonical weight name -> (codes (K, N), scale, mins (K/32, N)) of a GGUF model's Q4_1 projections.

    ``ffn_up`` joins the gate and up matrices side by side, as the decoder's fused product.
    """
    q = weights.quant
    out = {}

    def get(name):
        t = q.get(name)
        return None if t is None or t.qtype != "Q4_1" else (t.codes.T, t.scale.T, t.min.T)

    for i in range(weights.n_layers):
        for op, g in (("query", "attn_q"), ("key", "attn_k"), ("value", "attn_v"), ("attn_out", "attn_output"),
                      ("ffn_down", "ffn_down")):
            src = get(f"blk.{i}.{g}.weight")
            if src is not None:
                out[f"layer.{i}.{op}.w"] = src
        gate, up = get(f"blk.{i}.ffn_gate.weight"), get(f"blk.{i}.ffn_up.weight")
        if gate is not None and up is not None:
            out[f"layer.{i}.ffn_up.w"] = tuple(np.concatenate([a, b], axis=1) for a, b in zip(gate, up))
    return out


class QuantisedEngine(AnalogEngine):
    """An AnalogEngine whose Q4_1 projections keep their codes (see the module docstring).

    Parameters
    ----------
    weights : LlamaWeights
        A GGUF model with Q4_1 matrices (``weights.quant``).
    config, routing, seed, cache_dir, use_cache, on_matrix, streaming
        As :class:`AnalogEngine`.
    """

    def __init__(self, weights, config=None, routing=None, *, seed: int = 0, cache_dir=None, use_cache: bool = True,
                 on_matrix=None, streaming: bool = False):
        super().__init__(config, routing, seed=seed, cache_dir=cache_dir, use_cache=use_cache, on_matrix=on_matrix,
                         streaming=streaming)
        self.sources = q4_1_sources(weights)
        if not self.sources:
            raise InputError(f"weights: {weights.path} has no Q4_1 matrices to map")
        self._by_id = {id(weights.tensors[name]): name for name in self.sources}
        self.mapping_name = "q4_1 codes: one 16-level cell per weight, 32-row blocks, offset sign"

    def program(self, model, ids, mask=None) -> int:
        return 0  # matrices are built when first used (no pool)

    def _calibration_key(self, model, ids, mask):
        return None  # the ADC ranges of code tiles (per block) are not cached: every run calibrates

    def matrix(self, op: str, layer: int, w: np.ndarray):
        name = self._by_id.get(id(w))
        key = (op, layer)
        if name is None or key in self.matrices:
            return super().matrix(op, layer, w)
        codes, scale, mins = self.sources[name]
        ckey = None if self.cache_dir is None or not self._solves else entry_key(
            "q4_1-tiles", CACHE_VERSION, self.cfg.identity(), (self.seed, op, layer), codes, scale, mins)
        char = None if ckey is None else self._load(ckey, codes.shape[0] // QK)
        self.cache_hits += char is not None
        am = QuantisedMatrix(codes, scale, mins, self.cfg, self._rng(op, layer, 0), cells=self.cells,
                             characterisation=char)
        if ckey is not None and char is None:
            self._save(ckey, am)
        if key in self._ranges:
            am.set_calibration(self._ranges[key])
        if self.streaming:
            keep_read_state(am)
        self.matrices[key] = am
        self.programming.add(am.programming)
        if self.on_matrix is not None:
            self.on_matrix(op, layer, char is not None)
        return am
