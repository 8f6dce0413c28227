"""The KV cache in CIM arrays: each new token's key and value written once, attention read from them.

:class:`KVCimEngine` is an :class:`~cimphys.layers.engine.AnalogEngine` with ``qk`` and ``av``
analog and a persistent array per (block, sequence, KV head) for each of Kᵀ (head size rows,
one column per position) and V (one row per position, head size columns):

- a new position's key column / value row is quantised on its own (one scale per position:
  ``Kᵀ[:, t] ≈ s_t q[:, t]`` is a per-column scale of the array; for V, ``V[t, :] ≈ s_t q[t, :]``
  and ``s_t`` multiplies the softmax weight ``p_t`` digitally before the DAC), so the cells of
  earlier positions never change;
- a cell is written when its target level changes (erased cells sit at level 0 = ``g_min``; a
  new tile's reference column is written once); it keeps its programmed conductance (and its
  programming error) afterwards.  With a device card the cells are programmed by its model
  (:func:`~cimphys.layers.analog.program_matrix`) and a write costs the model's mean pulse
  energy and time per programmed cell (the layer's assumed figures without one); rows are
  written one after another, tiles in parallel; an array keeps what it holds between
  sequences, so a later sequence writes only the cells of its own positions whose level
  changes: the cells past its length (a shorter sequence after a longer one) are not written
  but masked -- they keep their old levels and conductances, their columns of Kᵀ are not used
  and their rows of V are driven at 0 V, as a real design would do rather than spend writes
  and endurance on resetting them; writes per physical cell are counted from calibration on, over
  every sequence, and :meth:`KVCimEngine.kv_writes` sets them against the cells' endurance
  (:func:`endurance_limit`: the device card's ``[endurance]`` window, else ``CimConfig.endurance``);
- reads go through the tile chain of the card (:class:`~cimphys.circuits.tile.TileStack` of
  the written tiles, wire resistance and the cells' read noise included), the ADC range of each
  (op, layer) set from the calibration pass (other text), never from the call's own reads.

Re-characterising the written tiles at every step (one crossbar solve per tile) is what makes
this slow with wires: about 4 tiles per block and KV head per generated token.

The base engine's ``_dynamic`` path, by contrast, writes the whole operand for every call.
:class:`QuantisedKVEngine` combines this KV cache with the Q4_1 code tiles of
:class:`~cimphys.layers.quantised.QuantisedEngine`.

References
----------
S. Yu et al., "Compute-in-memory chips for deep learning: recent trends and prospects", IEEE
Circuits Syst. Mag. 21, 31 (2021), doi:10.1109/MCAS.2021.3092533 (write cost and endurance as
the obstacle to CIM attention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import xarray as xr

from ..devices.variability import EnduranceWindow
from ..results import variable
from .analog import AnalogMatrix, Costs, ProgrammedMatrix, program_matrix
from .engine import AnalogEngine
from .mapping import map_integers
from .quantised import QuantisedEngine
from .routing import Routing

__all__ = ["KVCimEngine", "QuantisedKVEngine", "endurance_limit", "kv_routing", "kv_writes"]


def kv_routing(routing: Routing | None) -> Routing:
    """``routing`` (default: the static projections) with ``qk`` and ``av`` analog."""
    return (routing or Routing()).with_(qk="analog", av="analog")


@dataclass
class _KVArray:
    """One operand (Kᵀ or V) of one (sequence, KV head) as written cells."""

    source: np.ndarray     # float operand stored so far (to recognise a continued sequence)
    q: np.ndarray          # integer weights (rows, cols)
    scale: np.ndarray      # per position
    digits: np.ndarray     # (rb, cb, s, rows, cols) uint8
    g: np.ndarray          # programmed conductances, S
    writes: np.ndarray     # writes per physical cell since calibration (a view of KVCimEngine.lifetime)


def _pad(a: np.ndarray, shape) -> np.ndarray:
    """``a`` in an array of ``shape``: cut where it is larger, zeros where it is smaller."""
    out = np.zeros(shape, a.dtype)
    common = tuple(slice(0, min(s, t)) for s, t in zip(a.shape, shape))
    out[common] = a[common]
    return out


class KVCimEngine(AnalogEngine):
    """An AnalogEngine whose attention reads a KV cache written into CIM arrays (module docstring)."""

    def __init__(self, config=None, routing: Routing | None = None, **kwargs):
        super().__init__(config, kv_routing(routing), **kwargs)
        self._init_kv()

    def _init_kv(self) -> None:
        self.kv: dict[tuple, _KVArray] = {}
        # (op, layer, sequence, kv head) -> writes per physical cell since the engine was
        # calibrated, over every sequence, at the largest extent the array reached
        self.lifetime: dict[tuple, np.ndarray] = {}
        self.held: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # key -> (digits, g) the cells hold
        self._used_cells: dict[tuple, np.ndarray] = {}  # operand shape -> cells its mapping uses
        self.generation_writes = 0.0

    def max_writes_per_cell(self) -> int:
        """Most writes any KV cell has taken since calibration (every sequence generated since)."""
        return int(max((a.max() for a in self.lifetime.values() if a.size), default=0))

    def kv_writes(self):
        """Writes per KV cell against the cells' endurance: an xarray Dataset (:func:`kv_writes`)."""
        return kv_writes(self)

    def _quantise(self, op: str, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer operand and per-position scales; positions are columns of Kᵀ, rows of V."""
        m = self.cfg.mapping
        b = m.n_slices * m.cell_bits
        qmax = 2**b - 1 if m.sign == "differential" else 2 ** (b - 1) - 1
        peak = np.abs(w).max(axis=0 if op == "qk" else 1)
        scale = np.where(peak > 0, peak / qmax, 1.0)
        q = np.rint(w / (scale[None, :] if op == "qk" else scale[:, None])).astype(np.int64)
        return q, scale

    def _used(self, shape: tuple) -> np.ndarray:
        """Cells of the mapped tiles of an integer operand of ``shape`` that hold its entries (or
        a level the mapping fixes, as a reference column): those a level of ``±qmax`` or 0 sets
        nonzero; the tiles' padding past the operand stays False."""
        if shape not in self._used_cells:
            m = self.cfg.mapping
            b = m.n_slices * m.cell_bits
            qmax = 2**b - 1 if m.sign == "differential" else 2 ** (b - 1) - 1
            self._used_cells[shape] = np.any([map_integers(np.full(shape, v, np.int64), np.ones(shape[1]), m).digits
                                              for v in (qmax, -qmax, 0)], axis=0)
        return self._used_cells[shape]

    def _array(self, key, op: str, w: np.ndarray, rng) -> tuple[_KVArray, int, float]:
        """The written array of ``key`` after storing operand ``w``; (array, cells written, write time)."""
        axis = 1 if op == "qk" else 0
        n_new = w.shape[axis]
        old = self.kv.get(key)  # what the array holds: this sequence so far, or an earlier one
        n_old = 0 if old is None else old.source.shape[axis]
        keep = old is not None and n_old <= n_new and np.array_equal(np.take(w, range(n_old), axis=axis), old.source)
        q_new, s_new = self._quantise(op, np.take(w, range(n_old if keep else 0, n_new), axis=axis))
        if keep:
            q = np.concatenate([old.q, q_new], axis=axis)
            scale = np.concatenate([old.scale, s_new])
        else:
            q, scale = q_new, s_new
        mapped = map_integers(q, scale if op == "qk" else np.ones(q.shape[1]), self.cfg.mapping)
        shape = mapped.digits.shape
        # the physical array keeps what it last held, at the largest extent it reached: a new
        # sequence overwrites an earlier one's cells, and a cell is written where its level changes
        held_d, held_g = self.held.get(key, (np.zeros(shape, np.uint8), np.zeros(shape)))
        extent = tuple(max(a, b) for a, b in zip(held_d.shape, shape))
        held_d, held_g = _pad(held_d, extent), _pad(held_g, extent)
        life = _pad(self.lifetime.get(key, np.zeros(shape, np.int64)), extent)
        region = tuple(slice(0, n) for n in shape)
        prev, g = held_d[region], held_g[region]  # views: written in place
        used = self._used(q.shape)
        changed = (mapped.digits != prev) & used  # cells past the sequence's length are masked
        programmed = program_matrix(mapped.digits, self.cfg.with_(time=0.0), rng, cells=self.cells)
        g[changed] = programmed.g[changed]
        g[~changed & (prev == 0) & (g == 0)] = self.cfg.g_min  # erased cells never written
        prev[used] = mapped.digits[used]
        life[region] += changed
        self.held[key], self.lifetime[key] = (held_d, held_g), life
        writes, g = life[region], g.copy()
        rows_written = changed.any(axis=4).sum(axis=3).max() if changed.any() else 0
        arr = _KVArray(w.copy(), q, scale, mapped.digits, g, writes)
        self.kv[key] = arr
        cells = int(changed.sum())
        per_cell = programmed.write_energy / max(programmed.cell_writes, 1)
        per_row = programmed.write_time / shape[3]  # rows one after another: mean time of one row
        self._write_energy = cells * per_cell
        return arr, cells, float(rows_written) * per_row

    def _dynamic(self, op: str, layer: int, x: np.ndarray, w: np.ndarray, stats) -> np.ndarray | None:
        k = self._calls[(op, layer)]
        self._calls[(op, layer)] += 1
        if not self.calibrating and (op, layer) not in self._dynamic_range:
            from ..errors import InputError

            raise InputError(f"{op} of layer {layer}: no ADC range for the KV arrays; calibrate the engine first")
        rng, read_rng = self._rng(op, layer, 2, k), self._rng(op, layer, 1, k)
        bsz, heads, n, _ = x.shape
        out = np.empty(x.shape[:-1] + (w.shape[-1],), np.float32)
        costs = Costs()
        write_time = 0.0
        for bh in range(bsz * heads):
            bi, hi = divmod(bh, heads)
            arr, cells, t_write = self._array((op, layer, bi, hi), op, np.asarray(w[bi, hi], np.float64), rng)
            mapped = map_integers(arr.q, arr.scale if op == "qk" else np.ones(arr.q.shape[1]), self.cfg.mapping)
            noise = None
            if self.cells is not None and self.cfg.cell_read_noise:
                noise = self.cells.read_noise(arr.g, temperature=self.cfg.temperature, time=self.cfg.time)
            am = AnalogMatrix(mapped, self.cfg, ProgrammedMatrix(arr.g, noise, 1.0, 0.0, 0.0, 0),
                              read_rng.integers(0, 2**62, size=mapped.digits.shape[:3]))
            xb = np.asarray(x[bi, hi], np.float64)
            if op == "av":
                xb = xb * arr.scale[None, :]  # s_t p_t: the value row's scale applied before the DAC
            if self.calibrating:
                am.calibrate(xb, rng)
                self._dynamic_range[(op, layer)] = max(self._dynamic_range.get((op, layer), 0.0), am.observed_peak())
                continue
            for stack in am.stacks:
                stack.set_symmetric_range(self._dynamic_range[(op, layer)])
            y, c = am.matmul(xb)
            out[bi, hi] = y
            c.cell_writes = cells
            c.write = self._write_energy
            costs.add(c)
            write_time = max(write_time, t_write)  # the heads' arrays are written in parallel
        if self.calibrating:
            self.kv.clear()  # the calibration text's cache is not the generation's
            self.lifetime.clear()
            self.held.clear()
            return None
        costs.write_time = write_time
        costs.latency += write_time
        costs.rows = bsz * n
        stats.costs.add(costs)
        self.generation_writes += costs.cell_writes
        return out


class QuantisedKVEngine(KVCimEngine, QuantisedEngine):
    """Q4_1 codes on cells (:class:`~cimphys.layers.quantised.QuantisedEngine`) with the KV
    cache written into CIM arrays (:class:`KVCimEngine`): the static projections read their
    32-row code tiles, attention reads the written K and V arrays on the engine's own tiles.

    Parameters
    ----------
    weights : LlamaWeights
        A GGUF model with Q4_1 matrices.
    config, routing, seed, cache_dir, use_cache, on_matrix, streaming
        As :class:`QuantisedEngine`; ``qk`` and ``av`` are made analog.
    """

    def __init__(self, weights, config=None, routing: Routing | None = None, *, seed: int = 0, cache_dir=None,
                 use_cache: bool = True, on_matrix=None, streaming: bool = False):
        QuantisedEngine.__init__(self, weights, config, kv_routing(routing), seed=seed, cache_dir=cache_dir,
                                 use_cache=use_cache, on_matrix=on_matrix, streaming=streaming)
        self._init_kv()
        self.mapping_name += "; KV cache written into CIM arrays"


def endurance_limit(cfg) -> tuple[float, str]:
    """Writes a cell of ``cfg``'s tiles survives, and where that figure comes from.

    With an ``[endurance]`` table on the device card (:class:`~cimphys.devices.variability.EnduranceWindow`):
    the largest measured cycle count at which the window still holds the levels the tile
    programs, ``g_on(n) >= g_max`` and ``g_off(n) <= g_min`` (between measured points the window
    is interpolated as the card's model does; past the last measured point nobody measured,
    so the limit is at most that point); 0 when even the pristine window is too narrow.
    Otherwise the layer's assumed :attr:`CimConfig.endurance`.
    """
    card = cfg.device_card
    window = None if card is None else EnduranceWindow.from_card(card)
    if window is None:
        return float(cfg.endurance), "CimConfig.endurance (assumed: no [endurance] table on the device card)"
    # 2000 steps per measured range in log10(cycles) (a step of 0.7 % over 1e6 cycles)
    n = np.unique(np.concatenate([np.logspace(0.0, np.log10(window.cycles[-1]), 2001), window.cycles]))
    on, off = window.window(n)
    ok = (on >= cfg.g_max * (1 - 1e-9)) & (off <= cfg.g_min * (1 + 1e-9))
    if not ok[0]:
        limit = 0.0
    elif ok.all():
        limit = float(n[-1])
    else:
        limit = float(n[np.argmin(ok) - 1])  # the last count whose window still holds the levels
    return limit, f"[endurance] window of device card {card.name!r} against the levels {cfg.g_min:g}-{cfg.g_max:g} S"


def kv_writes(engine: KVCimEngine) -> xr.Dataset:
    """Writes per KV cell since calibration, against the cells' endurance (:func:`endurance_limit`).

    One entry per array (``op`` qk: Kᵀ, av: V; ``layer``, ``sequence``, ``kv_head``):
    ``cells`` (physical cells, every slice and reference column), ``cells_by_writes`` (array,
    writes) cells written exactly that many times, ``max_writes``, ``total_writes`` and
    ``past_endurance``, the cells written more times than the endurance limit.  Attrs:
    ``endurance`` (writes), ``endurance_source``, ``max_writes_per_cell``, ``cells_past_endurance``.
    """
    keys = sorted(engine.lifetime, key=lambda k: (k[1], k[0], k[2], k[3]))
    limit, source = endurance_limit(engine.cfg)
    top = engine.max_writes_per_cell()
    counts = np.zeros((len(keys), top + 1), np.int64)
    for i, k in enumerate(keys):
        counts[i] = np.bincount(engine.lifetime[k].reshape(-1), minlength=top + 1)
    n = np.arange(top + 1)
    past = (counts * (n > limit)).sum(axis=1)
    ds = xr.Dataset(
        {"cells_by_writes": variable(("array", "writes"), counts, "1", "KV cells written exactly this many times"),
         "cells": variable("array", counts.sum(axis=1), "1", "physical cells of the array (slices, reference columns)"),
         "max_writes": variable("array", np.array([engine.lifetime[k].max(initial=0) for k in keys], np.int64), "1",
                                "most writes of one cell of the array"),
         "total_writes": variable("array", (counts * n).sum(axis=1), "1", "cell writes of the array"),
         "past_endurance": variable("array", past, "1", "cells written more times than the endurance limit")},
        coords={"op": ("array", [k[0] for k in keys]), "layer": ("array", [int(k[1]) for k in keys]),
                "sequence": ("array", [int(k[2]) for k in keys]), "kv_head": ("array", [int(k[3]) for k in keys]),
                "writes": ("writes", n, {"units": "1"})})
    ds.attrs.update(endurance=limit, endurance_source=source, max_writes_per_cell=top,
                    cells_past_endurance=int(past.sum()))
    return ds
