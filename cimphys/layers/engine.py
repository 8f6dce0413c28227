"""The analog :class:`~cimphys.layers.matmul.MatmulEngine`: a model's products on CIM tiles.

:class:`AnalogEngine` routes each product (see :mod:`cimphys.layers.routing`).  A static
weight met for the first time is mapped (:mod:`cimphys.layers.mapping`), programmed and
characterised (:mod:`cimphys.layers.analog`, disk-cached by
:mod:`cimphys.layers.characterise`).  ADC ranges come from a calibration pass
(:meth:`AnalogEngine.calibrate`: the model runs on a calibration batch, every analog tile
records its sensed currents, outputs stay fp32 during that pass).  During a normal pass the
engine keeps, for every (op, layer), the fp32 product of the same inputs to measure SNR and
cosine similarity, and the energy/latency split by array, DAC, sense, ADC, digital and writes.

Random numbers: programming of (op, layer) draws from ``default_rng([seed, op, layer, 0])``,
read noise of its k-th call from ``default_rng([seed, op, layer, 1, k])``, dynamic-operand
programming from ``default_rng([seed, op, layer, 2, k])``: the same seed gives the same
numbers whatever the order of evaluation.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .analog import AnalogMatrix, Costs, program_conductances
from .characterise import TilePool, cache_key, default_cache_dir, load_cached, load_ranges, save_cached, save_ranges
from .config import CimConfig
from .mapping import map_matrix
from .matmul import DYNAMIC_OPS
from .routing import ALL_OPS, Routing

__all__ = ["AnalogEngine", "DIGITAL_OP_COUNTS", "NONLINEAR_OPS", "OpStats"]

#: fp32 (adds, multiplies) per element of the digital nonlinearities, counted for a
#: straightforward vector unit (estimates, not a measured design): exp by range reduction and a
#: degree-5 polynomial (6 adds, 7 multiplies), a division as one multiply by a reciprocal taken
#: once per row, erf by Abramowitz & Stegun 7.1.26 (a degree-5 polynomial in 1/(1 + p x) times
#: an exp), tanh(y) = 1 - 2 / (exp(2y) + 1).
#:
#: - softmax: max, subtract, exp, row sum, normalise: 9 adds, 8 multiplies;
#: - layernorm: mean, centre, variance (square, sum), normalise, gain, bias: 4 adds, 3 multiplies;
#: - gelu_erf: x/sqrt(2), erf, x/2 (1 + erf): 14 adds, 18 multiplies;
#: - gelu_tanh: c (x + 0.044715 x^3), tanh, x/2 (1 + tanh): 10 adds, 15 multiplies;
#: - rmsnorm: square and sum, normalise (the row's rsqrt taken once), gain: 1 add, 3 multiplies;
#: - silu_mul (SwiGLU's SiLU(g)·u): exp(-g), 1 + e, reciprocal by two Newton steps, g·r, ·u:
#:   9 adds, 13 multiplies.
#:
#: Energies per op: :attr:`CimConfig.fp_add_energy`, :attr:`CimConfig.fp_mul_energy`.
DIGITAL_OP_COUNTS = {"softmax": (9, 8), "layernorm": (4, 3), "gelu_erf": (14, 18), "gelu_tanh": (10, 15),
                     "rmsnorm": (1, 3), "silu_mul": (9, 13)}
#: Report names of the digital nonlinearities (both GELU forms are "gelu").
NONLINEAR_OPS = ("softmax", "layernorm", "gelu", "rmsnorm", "silu")


@dataclass
class OpStats:
    """Sums that give SNR and cosine similarity of an op's outputs against fp32."""

    ref2: float = 0.0     # Σ y_ref²
    err2: float = 0.0     # Σ (y - y_ref)²
    out2: float = 0.0     # Σ y²
    dot: float = 0.0      # Σ y · y_ref
    calls: int = 0
    costs: Costs = field(default_factory=Costs)
    macs: float = 0.0

    def add(self, y: np.ndarray, ref: np.ndarray) -> None:
        y, ref = y.astype(np.float64), ref.astype(np.float64)
        self.ref2 += float((ref * ref).sum())
        self.err2 += float(((y - ref) ** 2).sum())
        self.out2 += float((y * y).sum())
        self.dot += float((y * ref).sum())
        self.calls += 1

    @property
    def snr_db(self) -> float:
        if self.err2 == 0.0:
            return float("inf")
        return 10.0 * np.log10(self.ref2 / self.err2)

    @property
    def cosine(self) -> float:
        den = np.sqrt(self.ref2 * self.out2)
        return float(self.dot / den) if den > 0 else 1.0


def _fp32(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """float32 product; a static weight is one 2-D GEMM over all tokens (faster than stacked)."""
    x, w = np.asarray(x, np.float32), np.asarray(w, np.float32)
    if w.ndim == 2:
        return (x.reshape(-1, x.shape[-1]) @ w).reshape(x.shape[:-1] + (w.shape[1],))
    return np.matmul(x, w)


class _Recorder:
    """A float32 engine that notes each static analog weight ``(op, layer) -> w`` in call order."""

    def __init__(self, routing: Routing):
        self.routing = routing
        self.weights: dict[tuple[str, int], np.ndarray] = {}

    def matmul(self, op: str, layer: int, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        if op not in DYNAMIC_OPS and self.routing.is_analog(op):
            self.weights.setdefault((op, layer), w)
        y = _fp32(x, w)
        return y if b is None else y + np.asarray(b, np.float32)


class AnalogEngine:
    """Matrix products on simulated CIM tiles.

    Parameters
    ----------
    config : CimConfig
        Tile physics and costs (e.g. ``CimConfig.from_card("isaac_128")``).
    routing : Routing, optional
        Which ops are analog (default: static projections).
    seed : int
        Seed of every draw (programming, read noise).
    cache_dir : str or Path, optional
        Tile cache folder (see :mod:`cimphys.layers.characterise`); ``use_cache=False`` disables it.
    on_matrix : callable, optional
        Called with ``(op, layer, cached)`` after each static matrix is programmed (progress bars).
    """

    def __init__(self, config: CimConfig | None = None, routing: Routing | None = None, *, seed: int = 0,
                 cache_dir: str | Path | None = None, use_cache: bool = True, on_matrix=None):
        self.cfg = config or CimConfig()
        self.routing = routing or Routing()
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"seed: expected a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.cache_dir = default_cache_dir(cache_dir) if use_cache else None
        self.on_matrix = on_matrix
        self.matrices: dict[tuple[str, int], AnalogMatrix] = {}
        self.stats: dict[tuple[str, int], OpStats] = defaultdict(OpStats)
        self.calibrating = False
        self.cache_hits = 0
        self._calls: dict[tuple[str, int], int] = defaultdict(int)
        self._ranges: dict[tuple[str, int], np.ndarray] = {}  # (op, layer) -> stacked fs, gain, offset
        self._pending: dict[tuple[str, int], tuple] = {}  # (op, layer) -> (w, mapped, g, transfers, cache key)
        self._pool: TilePool | None = None

    # -- programming ------------------------------------------------------------------------
    def _rng(self, op: str, layer: int, *tail: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, ALL_OPS.index(op), int(layer), *tail])

    def drop_pending(self) -> None:
        """Forget matrices queued by :meth:`program` and not collected yet; stop the tile pool."""
        self._pending.clear()
        if self._pool is not None:
            self._pool.close(cancel=True)
            self._pool = None

    def _cache_lookup(self, op: str, layer: int, w: np.ndarray):
        """``(cache key, cached characterisation)`` of static weight ``w``; (None, None) without a cache."""
        if self.cache_dir is None or not self.cfg.has_wires:
            return None, None
        # ideal programming draws nothing: the tiles do not depend on the seed
        ckey = cache_key(w, self.cfg, None if self.cfg.programming == "ideal" else (self.seed, op, layer))
        return ckey, load_cached(self.cache_dir, ckey)

    def matrix(self, op: str, layer: int, w: np.ndarray) -> AnalogMatrix:
        """The programmed and characterised tiles of static weight ``w`` (in, out) of (op, layer)."""
        key = (op, layer)
        if key in self.matrices:
            return self.matrices[key]
        pending = self._pending.pop(key, None)
        if pending is not None and not (pending[0] is w or np.array_equal(pending[0], w)):
            pending = None  # queued for other weights: characterise these afresh
        cached = None
        if pending is not None:
            _, mapped, g, transfers, ckey = pending
            am = AnalogMatrix(mapped, self.cfg, None, g=g, transfers=transfers)
        else:
            mapped = map_matrix(w, self.cfg.mapping)
            ckey, cached = self._cache_lookup(op, layer, w)
            if cached is not None:
                am = AnalogMatrix(mapped, self.cfg, None, characterised=cached)
                self.cache_hits += 1
            else:
                am = AnalogMatrix(mapped, self.cfg, self._rng(op, layer, 0))
        if cached is None and ckey is not None and am.characterised is not None:
            save_cached(self.cache_dir, ckey, *am.characterised)
        if not self._pending and self._pool is not None:
            self._pool.close(cancel=True)
            self._pool = None
        if key in self._ranges:  # ADC ranges and column corrections from a cached calibration
            am.set_calibration(self._ranges[key])
        self.matrices[key] = am
        if self.on_matrix is not None:
            self.on_matrix(op, layer, cached is not None)
        return am

    def program(self, model, ids, mask=None) -> int:
        """Program every static analog matrix a forward pass of ``model`` uses, and queue the
        characterisation of all their tiles on one :class:`~cimphys.layers.characterise.TilePool`.

        A float32 forward pass of ``(ids, mask)`` finds the matrices in the order the model
        uses them; matrices in the disk cache are loaded, the others programmed (same draws as
        :meth:`matrix`: ``default_rng([seed, op, layer, 0])``) and their tiles queued, so the
        cores characterise later matrices while a pass (calibration) works on earlier ones;
        :meth:`matrix` collects each one.  The results are bit-for-bit those of characterising
        each matrix on its own.  Returns the number of tiles queued.
        """
        rec = _Recorder(self.routing)
        model.forward(ids, mask, rec)
        queued = 0
        for (op, layer), w in rec.weights.items():
            key = (op, layer)
            if key in self.matrices or key in self._pending:
                continue
            ckey, cached = self._cache_lookup(op, layer, w)
            if cached is not None or not self.cfg.has_wires or self.cfg.cell_nonlinearity > 0:
                if cached is not None:
                    self.matrix(op, layer, w)  # loads it from the cache now
                continue
            mapped = map_matrix(w, self.cfg.mapping)
            g = program_conductances(mapped.digits, self.cfg, self._rng(op, layer, 0))
            if self._pool is None:
                self._pool = TilePool(self.cfg)
            self._pending[key] = (w, mapped, g, self._pool.submit(g), ckey)
            queued += mapped.n_tiles
        return queued

    # -- the MatmulEngine interface ---------------------------------------------------------
    def matmul(self, op: str, layer: int, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        ref = _fp32(x, w)
        if b is not None:
            ref += np.asarray(b, np.float32)
        stats = self.stats[(op, layer)]
        if not self.routing.is_analog(op):
            if not self.calibrating:
                self._digital_costs(stats, x, w)
            return ref
        if op in DYNAMIC_OPS:
            if self.calibrating:
                return ref
            y = self._dynamic(op, layer, x, w, stats)
        else:
            am = self.matrix(op, layer, w)
            x2 = np.asarray(x, np.float64).reshape(-1, w.shape[0])
            if self.calibrating:
                am.calibrate(x2)
                return ref
            k = self._calls[(op, layer)]
            self._calls[(op, layer)] += 1
            y2, costs = am.matmul(x2, self._rng(op, layer, 1, k))
            stats.costs.add(costs)
            y = y2.reshape(ref.shape).astype(np.float32)
            if b is not None:
                y += np.asarray(b, np.float32)
        stats.add(y, ref)
        return y

    def nonlinear(self, kind: str, layer: int, elements: int) -> None:
        """Count the digital energy and time of a nonlinearity over ``elements`` values.

        ``kind`` is a key of :data:`DIGITAL_OP_COUNTS`; the costs go to the ``digital`` bucket
        of op ``softmax``, ``layernorm``, ``gelu``, ``rmsnorm`` or ``silu`` at ``layer`` (models call this; engines
        without it count nothing).  Latency: one op per ``digital_mac_time``.
        """
        if kind not in DIGITAL_OP_COUNTS:
            raise InputError(f"kind: expected one of {sorted(DIGITAL_OP_COUNTS)}, got {kind!r}")
        if self.calibrating:
            return
        adds, muls = DIGITAL_OP_COUNTS[kind]
        n = float(elements)
        energy = n * (adds * self.cfg.fp_add_energy + muls * self.cfg.fp_mul_energy)
        self.stats[(kind.split("_")[0], int(layer))].costs.add(
            Costs(digital=energy, latency=n * (adds + muls) * self.cfg.digital_mac_time))

    def _digital_costs(self, stats: OpStats, x: np.ndarray, w: np.ndarray) -> None:
        rows = int(np.prod(x.shape[:-1]))
        macs = float(rows) * x.shape[-1] * w.shape[-1]
        tokens = rows if w.ndim == 2 else x.shape[0] * x.shape[2]
        c = Costs(rows=tokens, digital=macs * self.cfg.digital_mac_energy, latency=macs * self.cfg.digital_mac_time)
        stats.costs.add(c)
        stats.macs += macs

    def _dynamic(self, op: str, layer: int, x: np.ndarray, w: np.ndarray, stats: OpStats) -> np.ndarray:
        """Write each (batch, head) operand into tiles, calibrate on the call's own reads, multiply."""
        k = self._calls[(op, layer)]
        self._calls[(op, layer)] += 1
        rng = self._rng(op, layer, 2, k)
        read_rng = self._rng(op, layer, 1, k)
        bsz, heads, n, _ = x.shape
        out = np.empty(x.shape[:-1] + (w.shape[-1],), np.float32)
        costs = Costs()
        for bh in range(bsz * heads):
            bi, hi = divmod(bh, heads)
            mapped = map_matrix(w[bi, hi], self.cfg.mapping)
            g = program_conductances(mapped.digits, self.cfg, rng)
            am = AnalogMatrix(mapped, self.cfg, rng, g=g)
            xb = np.asarray(x[bi, hi], np.float64)
            am.calibrate(xb)
            am.clear_calibration_data()
            y, c = am.matmul(xb, read_rng)
            out[bi, hi] = y
            m = self.cfg.mapping
            cells = mapped.n_tiles * m.rows * m.cols
            c.cell_writes = cells
            c.write = cells * self.cfg.write_energy
            c.write_time = m.rows * self.cfg.write_time  # tiles written in parallel, one row at a time
            c.latency += c.write_time
            costs.add(c)
        costs.rows = bsz * n
        stats.costs.add(costs)
        return out

    # -- calibration ------------------------------------------------------------------------
    def calibrate(self, model, ids, mask=None) -> None:
        """Run ``model.forward`` on a calibration batch and set every analog tile's ADC ranges.

        With a cache folder the ranges are stored too (key: the tile cache key material plus the
        calibration tokens and every weight of the model), so a repeated run skips this pass.
        """
        self.program(model, ids, mask)
        key = self._calibration_key(model, ids, mask) if self.cache_dir is not None else None
        cached = load_ranges(self.cache_dir, key) if key else None
        if cached is not None:
            self._ranges = cached
            for k, am in self.matrices.items():
                am.set_calibration(cached[k])
            self.cache_hits += 1
            return
        self.calibrating = True
        try:
            model.forward(ids, mask, self)
        except BaseException:
            self.drop_pending()  # no queued tiles left to run (or to wait for at exit)
            raise
        finally:
            self.calibrating = False
        for am in self.matrices.values():
            am.clear_calibration_data()
        self.stats.clear()
        if key:
            save_ranges(self.cache_dir, key, {k: am.calibration for k, am in self.matrices.items()})

    def _calibration_key(self, model, ids, mask) -> str:
        h = hashlib.sha256(b"adc-ranges-2")
        h.update(repr((self.cfg.range_identity(), self.seed, sorted(self.routing.analog))).encode())
        for a in (ids, np.ones(np.shape(ids)) if mask is None else mask):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        for name in sorted(model.weights.tensors):
            h.update(name.encode())
            h.update(np.ascontiguousarray(model.weights.tensors[name]).tobytes())
        return h.hexdigest()

    def reset_stats(self) -> None:
        self.stats.clear()
