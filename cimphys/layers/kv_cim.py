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
  written one after another, tiles in parallel; writes per cell are counted over the generation
  (:meth:`KVCimEngine.max_writes_per_cell` against ``endurance``);
- reads go through the tile chain of the card (:class:`~cimphys.circuits.tile.TileStack` of
  the written tiles, wire resistance and the cells' read noise included), the ADC range of each
  (op, layer) set from the calibration pass (other text), never from the call's own reads.

Re-characterising the written tiles at every step (one crossbar solve per tile) is what makes
this slow with wires: about 4 tiles per block and KV head per generated token.

The base engine's ``_dynamic`` path, by contrast, writes the whole operand for every call.

References
----------
S. Yu et al., "Compute-in-memory chips for deep learning: recent trends and prospects", IEEE
Circuits Syst. Mag. 21, 31 (2021), doi:10.1109/MCAS.2021.3092533 (write cost and endurance as
the obstacle to CIM attention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .analog import AnalogMatrix, Costs, ProgrammedMatrix, program_matrix
from .engine import AnalogEngine
from .mapping import map_integers
from .routing import Routing

__all__ = ["KVCimEngine"]


@dataclass
class _KVArray:
    """One operand (Kᵀ or V) of one (sequence, KV head) as written cells."""

    source: np.ndarray     # float operand stored so far (to recognise a continued sequence)
    q: np.ndarray          # integer weights (rows, cols)
    scale: np.ndarray      # per position
    digits: np.ndarray     # (rb, cb, s, rows, cols) uint8
    g: np.ndarray          # programmed conductances, S
    writes: np.ndarray     # writes per physical cell over the generation


def _pad(a: np.ndarray, shape) -> np.ndarray:
    out = np.zeros(shape, a.dtype)
    out[tuple(slice(0, s) for s in a.shape)] = a
    return out


class KVCimEngine(AnalogEngine):
    """An AnalogEngine whose attention reads a KV cache written into CIM arrays (module docstring)."""

    def __init__(self, config=None, routing: Routing | None = None, **kwargs):
        super().__init__(config, (routing or Routing()).with_(qk="analog", av="analog"), **kwargs)
        self.kv: dict[tuple, _KVArray] = {}
        self.generation_writes = 0.0

    def max_writes_per_cell(self) -> int:
        """Most writes any KV cell has taken since its array was (re)started."""
        return int(max((a.writes.max() for a in self.kv.values() if a.writes.size), default=0))

    def _quantise(self, op: str, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer operand and per-position scales; positions are columns of Kᵀ, rows of V."""
        m = self.cfg.mapping
        b = m.n_slices * m.cell_bits
        qmax = 2**b - 1 if m.sign == "differential" else 2 ** (b - 1) - 1
        peak = np.abs(w).max(axis=0 if op == "qk" else 1)
        scale = np.where(peak > 0, peak / qmax, 1.0)
        q = np.rint(w / (scale[None, :] if op == "qk" else scale[:, None])).astype(np.int64)
        return q, scale

    def _array(self, key, op: str, w: np.ndarray, rng) -> tuple[_KVArray, int, float]:
        """The written array of ``key`` after storing operand ``w``; (array, cells written, write time)."""
        axis = 1 if op == "qk" else 0
        n_new = w.shape[axis]
        old = self.kv.get(key)
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
        prev = _pad(old.digits, shape) if keep else np.zeros(shape, np.uint8)
        g = _pad(old.g, shape) if keep else np.zeros(shape)
        writes = _pad(old.writes, shape) if keep else np.zeros(shape, np.int64)
        changed = mapped.digits != prev
        programmed = program_matrix(mapped.digits, self.cfg.with_(time=0.0), rng, cells=self.cells)
        g[changed] = programmed.g[changed]
        g[~changed & (prev == 0) & (g == 0)] = self.cfg.g_min  # erased cells never written
        writes += changed
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
            return None
        costs.write_time = write_time
        costs.latency += write_time
        costs.rows = bsz * n
        stats.costs.add(costs)
        self.generation_writes += costs.cell_writes
        return out
