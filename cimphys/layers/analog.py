"""A weight matrix on the tiles of a card: program, characterise, calibrate, multiply.

:class:`AnalogMatrix` is layer-level only: it lays a :class:`~cimphys.layers.mapping.MappedMatrix`
onto tiles, programs each cell through the card's device (:func:`program_matrix`), and hands the
tiles of each row block to one :class:`cimphys.circuits.tile.TileStack` -- the tile model of the
whole package, with its DACs, wires, sense amplifiers, ADCs and energy.  What stays here:

1. activations quantised per token to ``input_bits`` (sign + magnitude, ``x ~ s_x p``);
2. each row block's stack reads ``p`` (bit slices through the DACs, the crossbar with wires,
   sense amplifiers, ADCs, shift-add: :meth:`TileStack.mvm`) and gives recombined currents per
   output column (:meth:`TileStack.codes_to_current`);
3. the digital back end: the reference column subtracted when the card's sense amplifiers do not
   (offset encoding with ``[sense] mode = "column"``), a per-column affine correction fitted on a
   calibration batch (``column_gain_calibration``), the global drift compensation, the current of
   one integer unit ``v_lsb dg`` divided out, weight slices shifted and added, row blocks added,
   the offset encoding's remainder removed and the scales applied.

ADC ranges: each channel's range is symmetric about 0 V, set from ``|sense output|`` over a
calibration batch disjoint from the evaluated inputs (``adc_calibration``: the maximum or a
percentile), with 0 V on a code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..circuits.energy import COMPONENTS
from ..circuits.tile import TileStack
from ..circuits.tile_cells import check_tiles
from ..errors import InputError
from .config import CimConfig
from .mapping import MappedMatrix, quantise_inputs

__all__ = ["AnalogMatrix", "Costs", "ProgrammedMatrix", "TileColumns", "keep_read_state", "program_matrix"]

#: Activations are sign and magnitude (``|p| <= 2**(input_bits-1) - 1``): ``input_bits - 1``
#: bit-serial reads per sign phase.
SIGNED = "magnitude"


@dataclass
class Costs:
    """Energy (J), time (s) and event counts accumulated by analog products."""

    array: float = 0.0
    dac: float = 0.0
    sense: float = 0.0
    adc: float = 0.0
    digital: float = 0.0
    write: float = 0.0
    latency: float = 0.0
    write_time: float = 0.0
    conversions: float = 0.0
    cell_writes: float = 0.0
    rows: int = 0

    def add(self, other: Costs) -> None:
        for name in ("array", "dac", "sense", "adc", "digital", "write", "latency", "write_time", "conversions",
                     "cell_writes", "rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class ProgrammedMatrix:
    """The cells of a matrix's tiles at read time, and what programming them cost.

    ``g`` and each ``cell_noise`` array are ``(row blocks, col blocks, slices, rows, cols)``.
    """

    g: np.ndarray                     # S, at cfg.time after programming
    cell_noise: tuple | None          # (thermal, shot, flicker) read-noise coefficients, or None
    drift_factor: float               # global drift compensation: sum g(t0) / sum g(t)
    write_energy: float               # J, programming every cell once
    write_time: float                 # s, rows programmed one after another, tiles in parallel
    cell_writes: int


def program_matrix(digits: np.ndarray, cfg: CimConfig, rng: np.random.Generator, *, cells=None) -> ProgrammedMatrix:
    """Program cell digits ``(..., rows, cols)`` to conductances ``g_min + d dg`` (S) and read them
    ``cfg.time`` later at ``cfg.temperature``.

    With a device card on the tile card (:class:`cimphys.devices.cell_array.CellArrayModel`;
    ``cells``: that device already characterised for the card, made here when omitted):

    - ``programming="device"``: each cell as the device model programs it (PCM statistics or
      write-verify of a dynamic RRAM), with the card's d2d and c2c variability and stuck-at
      faults; ``"ideal"``: exact targets; ``"gaussian"``: N(0, sigma (g_max - g_min)), clipped at 0;
    - ``cfg.time > 0``: drift (PCM) or retention (RRAM with a ``[retention]`` table) of each cell,
      as the ratio of its conductance at ``time`` to that right after programming (so it applies
      to ideal targets too), and the global drift compensation factor ``sum g(0) / sum g(t)``
      applied digitally (``drift_compensation``);
    - ``cell_read_noise``: thermal, shot, 1/f and RTN current noise of every cell on every read.

    Without a device card the cells are ideal: no drift, no cell noise, and the write costs are
    the layer's assumed per-cell figures.
    """
    target = cfg.g_min + digits.astype(np.float64) * cfg.delta_g
    n_cells = int(target.size)
    rows = int(target.shape[-2])
    device = cfg.device_card if cells is None else None  # a card parsed per call: only when needed
    if device is not None:
        from ..devices.cell_array import CellArrayModel

        cells = CellArrayModel.from_card(device, g_min=cfg.g_min, g_max=cfg.g_max, v_read=cfg.design.v_read,
                                         bandwidth=cfg.design.bandwidth, temperature=cfg.temperature)
    prog = None if cells is None else cells.program(target, rng)
    if cfg.programming == "gaussian":
        g0 = np.maximum(target + rng.standard_normal(target.shape) * cfg.programming_sigma * (cfg.g_max - cfg.g_min), 0)
    elif cfg.programming == "device" and prog is not None:
        g0 = prog.conductance(time=0.0, temperature=cfg.temperature)
    else:
        g0 = target
    g, drift = g0, 1.0
    if prog is not None and cfg.time > 0.0:
        before = prog.conductance(time=0.0, temperature=cfg.temperature)
        after = prog.conductance(time=cfg.time, temperature=cfg.temperature)
        g = g0 * np.divide(after, before, out=np.ones_like(after), where=before > 0)
        drift = float(g0.sum() / g.sum()) if cfg.drift_compensation and g.sum() > 0 else 1.0
    noise = None
    if prog is not None and cfg.cell_read_noise:
        noise = cells.read_noise(g, temperature=cfg.temperature, time=cfg.time, g_programmed=g0)
    energy, time = cfg.write_energy * n_cells, cfg.write_time * rows
    if prog is not None and prog.write_energy is not None:
        energy = float(prog.write_energy.sum())
        # rows are written one after another, a row's cells in parallel (the slowest one sets it)
        time = float(prog.write_time.max(axis=-1).sum(axis=-1).max())
    return ProgrammedMatrix(np.clip(g, 0.0, None), noise, drift, energy, time, n_cells)


class TileColumns:
    """What a matrix of tiles does with its stacks' outputs, shared by :class:`AnalogMatrix` and
    the Q4_1 matrices (:class:`~cimphys.layers.quantised.QuantisedMatrix`): the card's cells,
    the weight columns of a read, the column fit's solution and the cost record.  A subclass
    holds ``cfg`` (:class:`CimConfig`), ``mapped`` (:class:`MappedMatrix`) and ``_fit``."""

    def _sinh_cells(self, g: np.ndarray):
        """``I = k sinh(a V)`` cells (``cell_nonlinearity = a > 0``) with ``k = g v_read / sinh(a
        v_read)``: each passes its programmed conductance's current at the full read voltage and
        less below it; every read is then a Newton solve of the crossbar.  None: linear cells.
        A card's ``[cell]`` table with ``read = "newton"``: its cells at the states that read ``g``
        (:class:`cimphys.circuits.tile_cells.TileCells`)."""
        cells = self.cfg.design.cells
        if cells is not None and cells.read == "newton":
            return [cells.cells(cells.states(tile)) for tile in g]
        a = self.cfg.cell_nonlinearity
        if a <= 0.0:
            return None
        from ..devices.sinh import SinhCell

        v = self.cfg.design.v_read
        return [SinhCell(k=tile * v / np.sinh(a * v), a=a) for tile in g]

    # -- the layer's view of a stack's outputs ------------------------------------------------
    def _weight_columns(self, i: np.ndarray) -> np.ndarray:
        """Per weight column: the reference column subtracted digitally when the sense
        amplifiers did not (offset encoding read column by column)."""
        wc = self.mapped.mapping.weight_cols
        if self.mapped.mapping.sign == "offset" and self.cfg.design.mode == "column":
            return i[..., :wc] - i[..., -1:]
        return i[..., :wc]

    def _sense_currents(self, stack: TileStack, v_sense: np.ndarray) -> np.ndarray:
        """Sense outputs (reads, tiles, channels) as currents per weight column."""
        i = stack.sense.input_current(v_sense)
        if stack.differential and stack.mode == "column":
            i = i[..., 0::2] - i[..., 1::2]
        return self._weight_columns(i)

    def _solve_affine(self) -> None:
        """Per-column least squares of i_meas on (i_target, sum v); ill-posed columns keep (1, 0)."""
        mt, tt, mu, tu, uu = self._fit
        det = tt * uu - tu * tu
        ok = (tt > 0) & (det > 1e-12 * np.maximum(tt * uu, 1e-300))
        safe = np.where(ok, det, 1.0)
        alpha = np.where(ok, (mt * uu - mu * tu) / safe, 1.0)
        beta = np.where(ok, (tt * mu - tu * mt) / safe, 0.0)
        good = ok & (alpha > 0.05)  # a column that lost its signal is not "corrected" by a huge gain
        self.gain = np.where(good, alpha, 1.0)
        self.offset = np.where(good, beta, 0.0)

    @staticmethod
    def _count(stack: TileStack, parts, costs: Costs, *, first: bool, batch: int) -> None:
        """Add one row block's energy (``parts`` of :meth:`TileStack.mvm_arrays`); the row blocks
        read in parallel, so the first one's read sequence (all tokens through the pipeline) sets
        the latency."""
        p_src, v_rows, channels, _ = parts
        e = stack.energy.per_mvm(p_src, v_rows, channels, tiles=stack.n_tiles).sum(axis=0)
        for k, name in enumerate(COMPONENTS):
            setattr(costs, name, getattr(costs, name) + float(e[k]))
        phases = p_src.shape[0]
        costs.conversions += float(phases * channels * stack.n_tiles) * batch
        if first:
            costs.latency += stack.energy.latency(phases * batch)


class AnalogMatrix(TileColumns):
    """A static weight matrix on tiles: program, characterise, calibrate, multiply.

    Parameters
    ----------
    mapped : MappedMatrix
    cfg : CimConfig
    programmed : ProgrammedMatrix
        The cells (:func:`program_matrix`).
    seeds : ndarray of int, (row blocks, col blocks * slices)
        One seed per tile: its static periphery draws and read-noise stream
        (:class:`~cimphys.circuits.tile.TileStack`).
    characterisation : list of (T, Y), optional
        Per row block, from a cache or a pool (see :mod:`cimphys.circuits.tile_characterise`).
    """

    def __init__(self, mapped: MappedMatrix, cfg: CimConfig, programmed: ProgrammedMatrix, seeds: np.ndarray, *,
                 characterisation=None):
        self.mapped, self.cfg, self.programmed = mapped, cfg, programmed
        m = mapped.mapping
        self.n_rb, self.n_cb = mapped.digits.shape[:2]
        per = self.n_cb * m.n_slices
        g = programmed.g.reshape(self.n_rb, per, m.rows, m.cols)
        noise = None if programmed.cell_noise is None else [a.reshape(self.n_rb, per, m.rows, m.cols)
                                                            for a in programmed.cell_noise]
        seeds = np.asarray(seeds).reshape(self.n_rb, per)
        self.stacks = [TileStack(cfg.design, g[r], seeds=seeds[r], cells=self._sinh_cells(g[r]),
                                 characterisation=None if characterisation is None else characterisation[r],
                                 cell_noise=None if noise is None else tuple(a[r] for a in noise))
                       for r in range(self.n_rb)]
        # [cell] cells with state read by the chord surrogate: its error against exact Newton reads
        self.cell_surrogate = None if cfg.design.cells is None else check_tiles(
            cfg.design.cells, g, cfg.design.wires, int(seeds.reshape(-1)[0]), cfg.design.binary_drivers)
        shape = (self.n_rb, per, m.weight_cols)
        self.gain = np.ones(shape)       # digital column corrections
        self.offset = np.zeros(shape)
        self._seen: list[list[np.ndarray]] = [[] for _ in range(self.n_rb)]
        self._fit = np.zeros((5,) + shape)  # sums of f t, t t, f u, t u, u u

    @classmethod
    def program(cls, mapped: MappedMatrix, cfg: CimConfig, rng: np.random.Generator, *, cells=None,
                characterisation=None) -> AnalogMatrix:
        """Program ``mapped`` through ``cfg``'s device (:func:`program_matrix`) and seed its tiles,
        all from ``rng``: the matrix a caller gets from weights and one generator."""
        programmed = program_matrix(mapped.digits, cfg, rng, cells=cells)
        seeds = rng.integers(0, 2**62, size=mapped.digits.shape[:3])
        return cls(mapped, cfg, programmed, seeds, characterisation=characterisation)

    @property
    def n_tiles(self) -> int:
        return self.mapped.n_tiles

    def compact(self) -> AnalogMatrix:
        """Compact every row block's stack (:meth:`TileStack.compact`: only what reads need); returns self."""
        for s in self.stacks:
            s.compact()
        return self

    @property
    def characterisation(self) -> list:
        """Per row block ``(T, Y)``: what the tile cache stores."""
        return [s.characterisation for s in self.stacks]

    def _inputs(self, x: np.ndarray):
        m = self.mapped.mapping
        p, s_x = quantise_inputs(x, m.input_bits)
        pad = np.zeros((p.shape[0], self.n_rb * m.rows), dtype=np.int64)
        pad[:, :self.mapped.shape[0]] = p
        return pad, s_x

    # -- calibration ---------------------------------------------------------------------
    def calibrate(self, x, rng: np.random.Generator) -> None:
        """Record a calibration batch ``x`` (batch, K), disjoint from the evaluated inputs.

        Each channel's ADC range comes from its sense outputs (:meth:`finish_calibration`);
        with ``column_gain_calibration``, an affine correction per column, the least-squares fit
        ``i ~ alpha i_target + beta sum v`` of the sensed current against what the intended
        conductances give without wires (``i_target``) and the read's summed word-line voltage
        (``sum v``, known digitally).  It absorbs the mean IR-drop attenuation, the reference
        column's mismatch and a global programming/drift gain, not pattern-dependent errors.
        """
        m, cfg = self.mapped.mapping, self.cfg
        p, _ = self._inputs(np.asarray(x, dtype=np.float64))
        seqs = np.random.SeedSequence(int(rng.integers(2**63))).spawn(self.n_rb)
        for r, stack in enumerate(self.stacks):
            block = p[:, r * m.rows:(r + 1) * m.rows]
            res, digits = stack.sense_outputs(block, m.input_bits, signed=SIGNED, rng=seqs[r])
            f = self._sense_currents(stack, res.v_sense)  # (reads, tiles, wc)
            mag = np.abs(res.v_sense)
            self._seen[r].append(mag.max(axis=0, keepdims=True) if cfg.adc_calibration == "max" else mag)
            if cfg.column_gain_calibration:
                self._accumulate_fit(r, f, digits.reshape(-1, m.rows).astype(np.float64) * cfg.v_lsb)

    def _accumulate_fit(self, r: int, f: np.ndarray, v: np.ndarray) -> None:
        """Sums over the reads of f t, t t, f u, t u, u u, with t = v Tg the no-wire target
        currents, by matrix products over the reads instead of forming t."""
        tg = self._targets()[r]  # (rows, tiles * wc)
        shape = self._fit.shape[2:]
        u = v.sum(axis=-1)
        f2 = f.reshape(f.shape[0], -1)
        self._fit[0, r] += (tg * (v.T @ f2)).sum(axis=0).reshape(shape)
        self._fit[1, r] += (tg * ((v.T @ v) @ tg)).sum(axis=0).reshape(shape)
        self._fit[2, r] += (u @ f2).reshape(shape)
        self._fit[3, r] += ((u @ v) @ tg).reshape(shape)
        self._fit[4, r] += float(u @ u)

    def _targets(self) -> np.ndarray:
        """Sensed conductances the intended digits give without wires, (rb, rows, tiles * wc), S."""
        if not hasattr(self, "_target"):
            m = self.mapped.mapping
            d = self.mapped.digits.astype(np.float64) * self.cfg.delta_g  # (rb, cb, s, rows, cols)
            d = d.reshape(self.n_rb, -1, m.rows, m.cols)
            if m.sign == "differential":
                t = d[..., 0:2 * m.weight_cols:2] - d[..., 1:2 * m.weight_cols:2]
            else:
                t = d[..., :m.weight_cols] - d[..., -1:]
            self._target = np.ascontiguousarray(t.transpose(0, 2, 1, 3).reshape(self.n_rb, m.rows, -1))
        return self._target

    def finish_calibration(self) -> None:
        """Set every channel's ADC range and the column corrections from the recorded batches."""
        how = self.cfg.adc_calibration
        for r, stack in enumerate(self.stacks):
            if not self._seen[r]:
                continue
            stat = np.concatenate(self._seen[r], axis=0)
            a = stat.max(axis=0) if how == "max" else np.percentile(stat, float(how[1:]), axis=0)
            stack.set_symmetric_range(a)
            self._seen[r] = []
        if self.cfg.column_gain_calibration:
            self._solve_affine()

    def observed_peak(self) -> float:
        """Largest |sense output| (V) of the calibration batches recorded so far."""
        return max((float(np.max(a)) for seen in self._seen for a in seen), default=0.0)

    @property
    def calibration(self) -> dict:
        """ADC ranges and column corrections, for the cache."""
        return {"lo": np.stack([np.broadcast_to(s.adc.lo, (s.n_tiles * s.design.channels,)) for s in self.stacks]),
                "hi": np.stack([np.broadcast_to(s.adc.hi, (s.n_tiles * s.design.channels,)) for s in self.stacks]),
                "gain": self.gain, "offset": self.offset}

    def set_calibration(self, cal: dict) -> None:
        for r, stack in enumerate(self.stacks):
            stack.set_adc_range(cal["lo"][r], cal["hi"][r])
        self.gain, self.offset = np.array(cal["gain"], dtype=float), np.array(cal["offset"], dtype=float)

    @property
    def calibrated(self) -> bool:
        return all(s.calibrated for s in self.stacks)

    # -- the product -----------------------------------------------------------------------
    def matmul(self, x) -> tuple[np.ndarray, Costs]:
        """``x @ w`` (batch, N) through the tiles, and the costs of doing it."""
        if not self.calibrated:
            raise InputError("AnalogMatrix: ADC ranges are not calibrated; run a calibration batch first")
        m, cfg = self.mapped.mapping, self.cfg
        x = np.asarray(x, dtype=np.float64)
        p, s_x = self._inputs(x)
        acc = np.zeros((x.shape[0], self.n_cb * m.weight_cols))
        slice_w = 2.0 ** (np.arange(m.n_slices) * m.cell_bits)
        costs = Costs(rows=x.shape[0])
        unit = cfg.v_lsb * cfg.delta_g  # current of one integer unit of dot product, A
        for r, stack in enumerate(self.stacks):
            block = p[:, r * m.rows:(r + 1) * m.rows]
            y, parts = stack.mvm_arrays(block, m.input_bits, signed=SIGNED)
            i = self._weight_columns(stack.codes_to_current(y, m.input_bits, signed=SIGNED))  # (B, tiles, wc)
            u = cfg.v_lsb * block.sum(axis=1, dtype=np.float64)  # sum_p s_p w_p (sum of the ideal read voltages)
            dot = (i - self.offset[r] * u[:, None, None]) / (self.gain[r] * unit)
            dot = dot.reshape(x.shape[0], self.n_cb, m.n_slices, m.weight_cols)
            acc += np.einsum("bcsw,s->bcw", dot, slice_w).reshape(x.shape[0], -1)
            self._count(stack, parts, costs, first=r == 0, batch=x.shape[0])
        q = acc[:, : self.mapped.shape[1]] * self.programmed.drift_factor
        if m.sign == "offset":
            q = q - m.offset_correction * p.sum(axis=1, keepdims=True)
        return q * s_x[:, None] * self.mapped.scale[None, :], costs


def keep_read_state(am) -> None:
    """Free what an :class:`AnalogMatrix` (or a Q4_1 matrix's blocks) no longer needs once its
    tiles are characterised: the programmed conductances and noise arrays (the stacks hold
    their own read state), the tiles' ``T`` and ``g``, and, once calibrated, the column fit's
    no-wire targets.  Tiles of nonlinear cells or multi-level drivers keep everything."""
    for a in getattr(am, "blocks", [am]):
        if a.programmed.g is not None:
            a.programmed = replace(a.programmed, g=None, cell_noise=None)
        for stack in a.stacks:
            stack.compact(keep_conductances=False)
        if a.calibrated:
            vars(a).pop("_target", None)  # the fit's targets (AnalogMatrix._targets): calibration only
