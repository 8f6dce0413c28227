"""The analog :class:`~cimphys.layers.matmul.MatmulEngine`: a model's products on CIM tiles.

:class:`AnalogEngine` routes each product (see :mod:`cimphys.layers.routing`).  A static
weight met for the first time is mapped (:mod:`cimphys.layers.mapping`), programmed and
characterised (:mod:`cimphys.layers.analog`, disk-cached by
:mod:`cimphys.layers.characterise`).  ADC ranges come from a calibration pass
(:meth:`AnalogEngine.calibrate`: the model runs on a calibration batch, every analog tile
records its sensed currents, outputs stay fp32 during that pass).  During a normal pass the
engine keeps, for every (op, layer), the fp32 product of the same inputs to measure SNR and
cosine similarity, and the energy/latency split by array, DAC, sense, ADC, digital and writes.

Random numbers: programming of (op, layer) and the seeds of its tiles draw from
``default_rng([seed, op, layer, 0])``; each tile's read noise comes from its own generator
(seeded by the tile's seed), so the k-th product of (op, layer) gets the same draws whatever
the other ops do; calibration reads of (op, layer) draw from ``default_rng([seed, op, layer, 4])``;
dynamic operands of its k-th call from ``default_rng([seed, op, layer, 2, k])``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..circuits.tile_characterise import CharacterisationPool
from ..circuits.tile_report import StackReport
from .analog import AnalogMatrix, Costs, keep_read_state, program_matrix
from .characterise import (cache_key, cached_device_statistics, default_cache_dir, load_cached, load_ranges,
                          pack_ranges, save_cached, save_ranges, unpack_ranges)
from .config import CimConfig
from .mapping import map_matrix
from .matmul import DYNAMIC_OPS
from .op_stats import DIGITAL_OP_COUNTS, OpStats
from .routing import ALL_OPS, Routing

__all__ = ["AnalogEngine"]

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
        The tile card and the layer-level choices (e.g. ``CimConfig.from_card("isaac_128x128")``).
    routing : Routing, optional
        Which ops are analog (default: static projections).
    seed : int
        Seed of every draw (programming, tile mismatch, read noise).
    cache_dir : str or Path, optional
        Tile cache folder (see :mod:`cimphys.layers.characterise`); ``use_cache=False`` disables it.
    on_matrix : callable, optional
        Called with ``(op, layer, cached)`` after each static matrix is programmed (progress bars).
    streaming : bool
        For models that use every static matrix once per forward pass (the decoders, the
        encoders): keep at most :attr:`LOOKAHEAD_TILES` tiles programmed ahead of the pass,
        finish each matrix's calibration at its call, and keep only each tile's read state
        (:meth:`~cimphys.circuits.tile.TileStack.compact`; the programmed conductances and
        the calibration fit's targets are dropped too).  Reads give the numbers of
        ``streaming=False`` bit for bit.

    Attributes
    ----------
    compact_tiles : bool
        Each static matrix's tile stacks keep only what reads need, in float32, once its
        characterisation is stored (:meth:`cimphys.circuits.tile.TileStack.compact`: the same
        numbers, less memory); set False before the first product to keep ``T`` (inspection).
    """

    compact_tiles: bool = True

    #: Tiles programmed and queued for characterisation ahead of the pass that uses them (streaming):
    #: at about 70 ms of CPU per 128 x 128 tile with wires, half a minute of work for two cores,
    #: and about 0.3 GB of programmed cells and transfer matrices waiting.
    LOOKAHEAD_TILES = 512

    def __init__(self, config: CimConfig | None = None, routing: Routing | None = None, *, seed: int = 0,
                 cache_dir: str | Path | None = None, use_cache: bool = True, on_matrix=None,
                 streaming: bool = False):
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
        self.programming = Costs()  # one-off: writing every static weight into its cells
        self._calls: dict[tuple[str, int], int] = defaultdict(int)
        self._ranges: dict[tuple[str, int], dict] = {}  # (op, layer) -> AnalogMatrix.calibration
        self._dynamic_range: dict[tuple[str, int], float] = {}  # (op, layer) -> ADC half range (V)
        self._pending: dict[tuple[str, int], tuple] = {}  # (op, layer) -> (w, mapped, programmed, seeds, pending, key)
        self._pool: CharacterisationPool | None = None
        self._loaded: dict[tuple[str, int], tuple] = {}  # (op, layer) -> (cache key, characterisation)
        self._cells = None
        self._tokens: np.ndarray | None = None  # (batch, seq) bool: positions sent to the tiles
        self.streaming = bool(streaming)
        self._queue: list[tuple[tuple[str, int], np.ndarray]] = []  # (op, layer), w: to queue (streaming)

    # -- programming ------------------------------------------------------------------------
    def _rng(self, op: str, layer: int, *tail: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, ALL_OPS.index(op), int(layer), *tail])

    @property
    def cells(self):
        """The tile card's device characterised once for this engine (None: ideal cells); a
        dynamic card's write-verify statistics through the disk cache when there is one."""
        cfg = self.cfg
        if self._cells is None and cfg.device_card is not None:
            from ..devices.cell_array import CellArrayModel

            inputs = dict(g_min=cfg.g_min, g_max=cfg.g_max, v_read=cfg.design.v_read, bandwidth=cfg.design.bandwidth,
                          temperature=cfg.temperature, seed=self.seed)
            stats = None if self.cache_dir is None else cached_device_statistics(self.cache_dir, cfg.device_card,
                                                                                 **inputs)
            self._cells = CellArrayModel.from_card(cfg.device_card, statistics=stats, **inputs)
        return self._cells

    def _program(self, op: str, layer: int, w: np.ndarray):
        """Map, program and seed the tiles of (op, layer): ``(mapped, programmed, seeds)``."""
        rng = self._rng(op, layer, 0)
        mapped = map_matrix(w, self.cfg.mapping)
        programmed = program_matrix(mapped.digits, self.cfg, rng, cells=self.cells)
        seeds = rng.integers(0, 2**62, size=mapped.digits.shape[:3])
        return mapped, programmed, seeds

    def drop_pending(self) -> None:
        """Forget matrices queued by :meth:`program` and not collected yet; stop the tile pool."""
        self._pending.clear()
        self._queue.clear()
        if self._pool is not None:
            self._pool.close(cancel=True)
            self._pool = None

    @property
    def _solves(self) -> bool:
        """Whether characterising a tile solves a network (linear cells and any wire, driver or
        sense resistance; nonlinear cells have no characterisation: a Newton solve per read)."""
        cells = self.cfg.design.cells  # a [cell] table read by Newton: no characterisation either
        newton = self.cfg.cell_nonlinearity != 0.0 or (cells is not None and cells.read == "newton")
        return self.cfg.design.wires.any and not newton

    def _cache_key(self, op: str, layer: int, w: np.ndarray) -> str | None:
        if self.cache_dir is None or not self._solves:
            return None  # no cache, or nothing to solve
        return cache_key(w, self.cfg, (self.seed, op, layer))

    def _load(self, key: str | None, n_rb: int):
        if key is None:
            return None
        cached = load_cached(self.cache_dir, key)
        if cached is None or cached[0].shape[0] != n_rb or (cached[1].size == 0) != self.cfg.design.binary_drivers:
            return None
        t, y = (np.asarray(a, dtype=np.float64) for a in cached[:2])
        return [(t[r], None if y.size == 0 else y[r], StackReport.from_arrays({f: a[r] for f, a in cached[2].items()}))
                for r in range(n_rb)]

    def _save(self, key: str | None, am: AnalogMatrix) -> None:
        if key is not None:
            t, y = zip(*am.characterisation)
            # float64: a run from the cache gives the numbers of a run without it, bit for bit
            y = np.zeros(0) if y[0] is None else np.stack(y)
            reports = [s.solve_report.arrays() for a in getattr(am, "blocks", [am]) for s in a.stacks]
            save_cached(self.cache_dir, key, np.stack(t), y, {f: np.stack([r[f] for r in reports]) for f in reports[0]})

    def matrix(self, op: str, layer: int, w: np.ndarray) -> AnalogMatrix:
        """The programmed and characterised tiles of static weight ``w`` (in, out) of (op, layer)."""
        key = (op, layer)
        if key in self.matrices:
            return self.matrices[key]
        pending = self._pending.pop(key, None)
        if pending is not None and not (pending[0] is w or np.array_equal(pending[0], w)):
            pending = None  # queued for other weights: characterise these afresh
        if pending is not None:
            _, mapped, programmed, seeds, queued, ckey = pending
            t, y = queued.result()
            per, report = t.shape[0] // mapped.digits.shape[0], StackReport.of(queued.reports)
            char = [(t[r * per:(r + 1) * per], None if y is None else y[r * per:(r + 1) * per],
                     report[r * per:(r + 1) * per]) for r in range(mapped.digits.shape[0])]
            cached = None
        else:
            mapped, programmed, seeds = self._program(op, layer, w)
            ckey = self._cache_key(op, layer, w)
            loaded = self._loaded.pop(key, None)  # read by program() already
            cached = char = loaded[1] if loaded is not None and loaded[0] == ckey else self._load(
                ckey, mapped.digits.shape[0])
            self.cache_hits += cached is not None
        am = AnalogMatrix(mapped, self.cfg, programmed, seeds, characterisation=char)
        if cached is None:
            self._save(ckey, am)
        if self.compact_tiles:
            am.compact()
        if self.streaming:
            keep_read_state(am)
            self._fill_pool()
        if not self._pending and self._pool is not None:
            self._pool.close(cancel=True)
            self._pool = None
        if key in self._ranges:  # ADC ranges and column corrections from a cached calibration
            am.set_calibration(self._ranges[key])
        self.matrices[key] = am
        self.programming.add(Costs(write=programmed.write_energy, write_time=programmed.write_time,
                                   cell_writes=programmed.cell_writes))
        if self.on_matrix is not None:
            self.on_matrix(op, layer, cached is not None)
        return am

    def program(self, model, ids, mask=None) -> int:
        """Program every static analog matrix a forward pass of ``model`` uses, and queue the
        characterisation of all their tiles on one
        :class:`~cimphys.circuits.tile_characterise.CharacterisationPool`.

        A float32 forward pass of ``(ids, mask)`` finds the matrices in the order the model uses
        them; matrices in the disk cache are loaded, the others programmed (the same draws as
        :meth:`matrix`) and their tiles queued, so the cores characterise later matrices while a
        pass (calibration) works on earlier ones.  Returns the number of tiles queued.
        """
        rec = _Recorder(self.routing)
        model.forward(ids, mask, rec)
        self._queue = [(key, w) for key, w in rec.weights.items()
                       if key not in self.matrices and key not in self._pending and self._solves]
        return self._fill_pool()

    def _fill_pool(self) -> int:
        """Queue the matrices of :attr:`_queue` in order (cached ones are loaded instead); when
        streaming, stop once :attr:`LOOKAHEAD_TILES` tiles wait.  Returns the tiles queued."""
        queued = 0
        waiting = sum(p[1].n_tiles for p in self._pending.values()) + sum(
            t.shape[0] for _, char in self._loaded.values() for t, *_ in char)
        while self._queue and not (self.streaming and waiting >= self.LOOKAHEAD_TILES):
            key, w = self._queue.pop(0)
            op, layer = key
            if key in self.matrices or key in self._pending:
                continue
            ckey = self._cache_key(op, layer, w)
            char = None if ckey is None else self._load(ckey, 1 + (w.shape[0] - 1) // self.cfg.mapping.rows)
            if char is not None:
                self._loaded[key] = (ckey, char)  # matrix() takes it when first used
                waiting += sum(t.shape[0] for t, *_ in char)
                continue
            mapped, programmed, seeds = self._program(op, layer, w)
            if self._pool is None:
                self._pool = CharacterisationPool(self.cfg.design.wires, not self.cfg.design.binary_drivers)
            g = programmed.g.reshape((-1,) + programmed.g.shape[-2:])
            self._pending[key] = (w, mapped, programmed, seeds, self._pool.submit(g), ckey)
            queued += mapped.n_tiles
            waiting += mapped.n_tiles
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
            y = self._dynamic(op, layer, x, w, stats)
            if self.calibrating:
                return ref
        else:
            am = self.matrix(op, layer, w)
            x2 = np.asarray(x, np.float64).reshape(-1, w.shape[0])
            keep = self._kept_rows(x.shape[:-1])
            if keep is not None:
                x2 = x2[keep]
            if self.calibrating:
                am.calibrate(x2, self._rng(op, layer, 4))
                if self.streaming:  # used once per pass: its calibration is complete
                    am.finish_calibration()
                    keep_read_state(am)
                return ref
            y2, costs = am.matmul(x2)
            stats.costs.add(costs)
            y2 = y2.astype(np.float32)
            if b is not None:
                y2 += np.asarray(b, np.float32)
            if keep is not None:  # padding rows keep the fp32 product: no real token reads them
                ref2 = ref.reshape(-1, ref.shape[-1])
                stats.add(y2, ref2[keep])
                y = ref2.copy()
                y[keep] = y2
                return y.reshape(ref.shape)
            y = y2.reshape(ref.shape)
        stats.add(y, ref)
        return y

    def _kept_rows(self, lead: tuple) -> np.ndarray | None:
        """Flat rows of an input ``(batch, seq, K)`` that go to the tiles, or None for all of them."""
        t = self._tokens
        if t is None or tuple(lead) != t.shape or t.all():
            return None
        return t.reshape(-1)

    @contextmanager
    def padding_off(self, mask):
        """Within this block, static products send only the positions with ``mask`` 1 (batch,
        seq) to the tiles; padding positions get the fp32 product, and neither the statistics nor
        the costs count them.  Exact for models that mask padding keys and pool over ``mask``
        (the encoders): no real token's output reads a padding row."""
        previous = self._tokens
        self._tokens = None if mask is None else np.asarray(mask) > 0
        try:
            yield self
        finally:
            self._tokens = previous

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

    def _dynamic(self, op: str, layer: int, x: np.ndarray, w: np.ndarray, stats: OpStats) -> np.ndarray | None:
        """Write each (batch, head) operand into tiles and multiply through them.

        The ADC range of (op, layer) is one half range for every channel, set from the sense
        outputs of the calibration pass (other sentences), never from the call's own reads.
        """
        key = (op, layer)
        k = self._calls[key]
        self._calls[key] += 1
        rng = self._rng(op, layer, 2, k)
        if not self.calibrating and key not in self._dynamic_range:
            raise InputError(f"{op} of layer {layer}: no ADC range for this dynamic product; run the engine's "
                             "calibrate() on a calibration batch first")
        bsz, heads, n, _ = x.shape
        out = np.empty(x.shape[:-1] + (w.shape[-1],), np.float32)
        costs = Costs()
        for bh in range(bsz * heads):
            bi, hi = divmod(bh, heads)
            am = AnalogMatrix.program(map_matrix(w[bi, hi], self.cfg.mapping), self.cfg, rng, cells=self.cells)
            programmed = am.programmed
            xb = np.asarray(x[bi, hi], np.float64)
            if self.calibrating:
                am.calibrate(xb, rng)
                peak = am.observed_peak()
                self._dynamic_range[key] = max(self._dynamic_range.get(key, 0.0), peak)
                continue
            for stack in am.stacks:
                stack.set_symmetric_range(self._dynamic_range[key])
            y, c = am.matmul(xb)
            out[bi, hi] = y
            c.cell_writes = programmed.cell_writes
            c.write, c.write_time = programmed.write_energy, programmed.write_time
            c.latency += c.write_time
            costs.add(c)
        if self.calibrating:
            return None
        costs.rows = bsz * n
        stats.costs.add(costs)
        return out

    # -- calibration ------------------------------------------------------------------------
    def calibrate(self, model, ids, mask=None) -> None:
        """Run ``model.forward`` on a calibration batch and set every analog tile's ADC ranges
        (and the column corrections) from it.

        With a cache folder the calibration is stored too (key: every input of the configuration,
        the seed, the routing, the calibration tokens and every weight of the model), so a
        repeated run skips this pass.
        """
        self.program(model, ids, mask)
        key = self._calibration_key(model, ids, mask) if self.cache_dir is not None else None
        cached = load_ranges(self.cache_dir, key) if key else None
        if cached is not None and not any(op in DYNAMIC_OPS for op in self.routing.analog):
            self._ranges = unpack_ranges(cached)
            for k, am in self.matrices.items():
                am.set_calibration(self._ranges[k])
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
            am.finish_calibration()
        self.stats.clear()
        self._calls.clear()
        if key:
            save_ranges(self.cache_dir, key, pack_ranges({k: am.calibration for k, am in self.matrices.items()}))

    def _calibration_key(self, model, ids, mask) -> str:
        h = hashlib.sha256(b"adc-ranges-5")  # 5: padding off the tiles, float32 array products
        h.update(repr((self.cfg.identity(), self.seed, sorted(self.routing.analog))).encode())
        h.update(b"all positions" if self._tokens is None else  # padding_off: the positions read
                 repr(self._tokens.shape).encode() + np.packbits(self._tokens).tobytes())
        for a in (ids, np.ones(np.shape(ids)) if mask is None else mask):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        for name in sorted(model.weights.tensors):
            h.update(name.encode())
            h.update(np.ascontiguousarray(model.weights.tensors[name]).tobytes())
        return h.hexdigest()

    def reset_stats(self) -> None:
        self.stats.clear()
