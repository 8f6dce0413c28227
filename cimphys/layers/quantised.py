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

:class:`QuantisedMatrix` reads the blocks' tiles together (:class:`BlockStack`: each tile
driven by its own block's inputs), a token one read per stack of up to
:attr:`QuantisedMatrix.TILES_PER_READ` tiles rather than one per block, with the numbers of the
blocks read one by one, bit for bit.

:class:`QuantisedEngine` is an :class:`~cimphys.layers.engine.AnalogEngine` that maps the
static projections of a GGUF Q4_1 model this way.  Its tiles go to the tile cache
(:mod:`cimphys.layers.characterise`) under a key of their own: the codes, steps and mins,
every input of the configuration, the seed and the (op, layer); no tile pool.  Next to each
tile entry goes the matrix's read state (:meth:`QuantisedMatrix.read_state`: the compacted
read operands, seeds, solve reports, drift and programming costs, ``<key>.state.npz`` under that
key joined with the source of the device models), from which a cached run rebuilds the matrix
without programming or characterising it again, reading bit for bit alike.  Its ADC ranges
and column corrections go to the range cache under the float engine's key (configuration,
seed, routing, calibration tokens, every weight) joined with the mapping and every matrix's
codes, steps and mins.

References
----------
G. Gerganov et al., llama.cpp, ``ggml/src/ggml-quants.c`` (Q4_1).  A. Shafiee et al., ISAAC,
ISCA 2016, doi:10.1109/ISCA.2016.12 (offset encoding with a reference column).
"""

from __future__ import annotations

import numpy as np

from .._numba import jit
from ..cache import EntryCache
from ..cache import cache_key as entry_key
from ..circuits.tile import TileStack
from ..circuits.tile_operands import STATE_PARTS
from ..circuits.tile_report import FIELDS as REPORT_FIELDS
from ..circuits.tile_report import StackReport
from ..circuits.tile_cells import check_tiles
from ..errors import InputError
from .analog import SIGNED, Costs, ProgrammedMatrix, TileColumns, keep_read_state, program_matrix
from .characterise import CACHE_VERSION, devices_code_digest, save_cached
from .engine import AnalogEngine
from .gguf import QK
from .mapping import map_q4_1, quantise_inputs

#: Enter the tile, range and read-state cache keys of code tiles: bump when what an entry holds
#: changes (tiles 2: one row block over all of a matrix's tiles).
TILES_VERSION, RANGES_VERSION, STATE_VERSION = "q4_1-tiles-2", "q4_1-ranges-1", "q4_1-read-state-1"
#: File suffix of a matrix's read state (:meth:`QuantisedMatrix.read_state`) in the tile cache.
STATE_SUFFIX = ".state.npz"

__all__ = ["BlockStack", "QuantisedEngine", "QuantisedMatrix", "offset_config", "q4_1_sources"]


class BlockStack(TileStack):
    """A :class:`~cimphys.circuits.tile.TileStack` whose tiles read their own block's inputs.

    :meth:`mvm` and :meth:`sense_outputs` take integer inputs ``(batch, blocks, M)``: the
    ``tiles_per_drive`` consecutive tiles of block ``j`` are driven by ``x_int[:, j]`` (the DACs,
    wires, noise and energy of each tile as in a stack driven alike; the inputs are cut and
    converted once per block, and every tile keeps its own drivers where they mismatch).
    ``rng`` may also be a list of one generator per tile.
    """

    #: Tiles that one block's inputs drive (set by the matrix; 1: one drive per tile).
    tiles_per_drive = 1

    @property
    def _drive_shape(self) -> tuple:
        return self.n_tiles // self.tiles_per_drive, self.shape[0]

    def _voltages(self, digits: np.ndarray) -> np.ndarray:
        if self._dac_levels is None:
            return self.dac.convert(digits)
        digits = np.repeat(digits, self.tiles_per_drive, axis=-2)  # each tile's own drivers
        return self._dac_levels[np.arange(self.n_tiles)[:, None], np.arange(self.shape[0])[None, :], digits]

    def _generators(self, rng) -> list:
        return list(rng) if isinstance(rng, (list, tuple)) else super()._generators(rng)


class QuantisedMatrix(TileColumns):
    """A Q4_1 matrix (in K, out N) as K/32 one-block-high rows of tiles; AnalogMatrix's interface.

    The blocks' tiles are read together: up to :attr:`TILES_PER_READ` tiles (whole blocks) form
    one :class:`BlockStack`, each tile driven by its own block's 32 inputs, so a token is one read
    per stack instead of one per block.  Inputs are quantised per token and block (``input_bits``,
    one scale per 32 inputs, as llama.cpp quantises activations for Q4_1 dot products); the
    programming draws, the tiles' seeds and noise streams, the calibration reads and the digital
    back end are those of one :class:`~cimphys.layers.analog.AnalogMatrix` per block, block after
    block, so the product equals that of the blocks read one by one, bit for bit.  The blocks'
    tiles work in parallel: the latency is one read sequence's.

    Parameters
    ----------
    codes : ndarray (K, N) uint8
    scale, mins : ndarray (K/32, N) float32
        Per-block step ``d`` and min ``m``.
    cfg : CimConfig
        Tile physics; the mapping is replaced by 32 rows, one 4-bit cell per weight, offset sign.
    rng : numpy.random.Generator
        Programming draws.
    cells : CellArrayModel, optional
        The card's device, characterised once (:func:`~cimphys.layers.analog.program_matrix`).
    characterisation : list of (T, Y[, StackReport]), optional
        One entry over every tile of the matrix (from the tile cache).
    """

    #: Most tiles one read drives (whole blocks; at least one block): bounds the memory of a
    #: read of a long prompt like the float mapping's row blocks of up to about a hundred tiles.
    TILES_PER_READ = 128

    def __init__(self, codes, scale, mins, cfg, rng, cells=None, characterisation=None):
        blocks = self._layout(codes, scale, mins, cfg)
        cfg, cb, tile = self.cfg, self.cb, (self.cfg.mapping.rows, self.cfg.mapping.cols)
        programmed, seeds = [], []
        for mm in blocks:  # AnalogMatrix.program's draws, block after block
            programmed.append(program_matrix(mm.digits, cfg, rng, cells=cells))
            seeds.append(rng.integers(0, 2**62, size=mm.digits.shape[:3]).reshape(-1))
        self._set_programming(np.array([p.drift_factor for p in programmed]),
                              *(sum(getattr(p, f) for p in programmed) for f in ("write_energy", "write_time",
                                                                                 "cell_writes")))
        g = np.concatenate([p.g.reshape((cb,) + tile) for p in programmed])
        noise = None if programmed[0].cell_noise is None else [
            np.concatenate([p.cell_noise[j].reshape((cb,) + tile) for p in programmed]) for j in range(3)]
        seeds = np.concatenate(seeds)
        self.stacks = []
        for t in self._tile_slices():
            char = None if characterisation is None else (characterisation[0][0][t],
                                                          None if characterisation[0][1] is None else
                                                          characterisation[0][1][t], *(
                                                              c[t] for c in characterisation[0][2:]))
            self.stacks.append(BlockStack(cfg.design, g[t], seeds=seeds[t], cells=self._sinh_cells(g[t]),
                                          characterisation=char,
                                          cell_noise=None if noise is None else tuple(a[t] for a in noise)))
        self.cell_surrogate = None if cfg.design.cells is None else check_tiles(
            cfg.design.cells, g[None], cfg.design.wires, int(seeds[0]), cfg.design.binary_drivers)
        self._digital_columns()

    @classmethod
    def from_read_state(cls, codes, scale, mins, cfg, state: dict) -> QuantisedMatrix:
        """The matrix whose :meth:`read_state` is ``state`` (a disk cache of its programmed and
        characterised tiles), compacted, without programming it again: its reads equal those of
        the matrix that stored it after :meth:`compact`, bit for bit (tested)."""
        am = cls.__new__(cls)
        am._layout(codes, scale, mins, cfg)
        programming = np.asarray(state["programming"], dtype=np.float64)
        if programming.shape != (3,) or state["drift"].shape != (am.n_blocks,) or state["seeds"].shape != (am.n_tiles,):
            raise InputError(f"read state: expected {am.n_blocks} blocks and {am.n_tiles} tiles, got drift "
                             f"{state['drift'].shape} and seeds {state['seeds'].shape}")
        am._set_programming(np.asarray(state["drift"], dtype=np.float64), *programming)
        report = StackReport.from_arrays({f: state[f"report_{f}"] for f in REPORT_FIELDS})
        am.stacks = [BlockStack.from_read_state(am.cfg.design, state["seeds"][t], {k: state[k][t] for k in STATE_PARTS},
                                                report[t]) for t in am._tile_slices()]
        am.cell_surrogate = None
        am._digital_columns()
        return am

    def read_state(self) -> dict[str, np.ndarray] | None:
        """Every array the matrix reads with besides its ADC ranges: the stacks' read operands
        (:meth:`~cimphys.circuits.tile_operands.ReadOperands.read_state`), the tiles' seeds and
        solve reports, each block's drift factor and the programming's energy, time and cell
        writes; None where a stack's reads need more, or the card's cells are checked against a
        surrogate."""
        parts = [s.read_state() for s in self.stacks]
        if self.cell_surrogate is not None or any(p is None for p in parts):
            return None
        reports = [s.solve_report.arrays() for s in self.stacks]
        p = self.programmed
        return {**{k: np.concatenate([part[k] for part in parts]) for k in STATE_PARTS},
                **{f"report_{f}": np.concatenate([r[f] for r in reports]) for f in REPORT_FIELDS},
                "seeds": np.concatenate([s.seeds for s in self.stacks]), "drift": self.drift,
                "programming": np.array([p.write_energy, p.write_time, p.cell_writes], dtype=np.float64)}

    def _layout(self, codes, scale, mins, cfg) -> list:
        """The matrix's shape, blocks, cell digits, scales and read groups; returns the blocks'
        :class:`~cimphys.layers.mapping.MappedMatrix`."""
        k, n = codes.shape
        if k % QK or scale.shape != (k // QK, n) or mins.shape != scale.shape:
            raise InputError(f"codes: expected (K, N) with K a multiple of {QK} and (K/32, N) scales, got "
                             f"{codes.shape}, {scale.shape}, {mins.shape}")
        self.cfg = cfg = offset_config(cfg)
        m = cfg.mapping
        self.shape, self.n_blocks = (k, n), k // QK
        self.scale = np.asarray(scale, np.float64)
        self.min_term = (8.0 * scale + mins).astype(np.float64)  # (K/32, N): (8 d + m), times Σ x digitally
        blocks = [map_q4_1(codes[b * QK:(b + 1) * QK], scale[b], m) for b in range(self.n_blocks)]
        self.mapped = blocks[0]  # the layout (utilisation) of every block
        self.cb = cb = blocks[0].digits.shape[1]  # tiles per block
        self._digits = np.concatenate([mm.digits.reshape((cb, m.rows, m.cols)) for mm in blocks])  # (tiles, rows, cols)
        per = max(1, self.TILES_PER_READ // cb)
        self.groups = [range(s, min(s + per, self.n_blocks)) for s in range(0, self.n_blocks, per)]
        return blocks

    def _tile_slices(self) -> list[slice]:
        return [slice(grp.start * self.cb, grp.stop * self.cb) for grp in self.groups]

    def _set_programming(self, drift: np.ndarray, write_energy: float, write_time: float, cell_writes: float) -> None:
        self.drift = drift
        self.programmed = ProgrammedMatrix(None, None, 1.0, float(write_energy), float(write_time), int(cell_writes))
        self.programming = Costs(write=self.programmed.write_energy, write_time=self.programmed.write_time,
                                 cell_writes=self.programmed.cell_writes)

    def _digital_columns(self) -> None:
        for stack in self.stacks:  # a block's inputs drive its cb tiles
            stack.tiles_per_drive = self.cb
        shape = (self.n_tiles, self.mapped.mapping.weight_cols)
        self.gain, self.offset = np.ones(shape), np.zeros(shape)  # digital column corrections
        self._seen: list[list[np.ndarray]] = [[] for _ in self.stacks]
        self._fit = np.zeros((5,) + shape)

    @property
    def n_tiles(self) -> int:
        return self.n_blocks * self.cb

    @property
    def characterisation(self) -> list:
        """One ``(T, Y)`` over every tile of the matrix: what the tile cache stores."""
        t, y = zip(*(s.characterisation for s in self.stacks))
        return [(np.concatenate(t), None if y[0] is None else np.concatenate(y))]

    def compact(self) -> QuantisedMatrix:
        for s in self.stacks:
            s.compact()
        return self

    def _inputs(self, x: np.ndarray):
        """Integer inputs ``(batch, blocks, 32)`` and their scales ``(batch, blocks)``, per token and block."""
        p, s_x = quantise_inputs(x.reshape(-1, QK), self.mapped.mapping.input_bits)
        return p.reshape(x.shape[0], self.n_blocks, QK), s_x.reshape(x.shape[0], self.n_blocks)

    # -- calibration (AnalogMatrix.calibrate per block, the blocks' reads together) ------------
    def calibrate(self, x, rng: np.random.Generator) -> None:
        """Record a calibration batch ``x`` (batch, K): ADC ranges and column fits per tile."""
        m, cfg, cb = self.mapped.mapping, self.cfg, self.cb
        if np.shape(x)[-1] != self.shape[0]:
            raise InputError(f"x: expected (batch, {self.shape[0]}), got {np.shape(x)}")
        p, _ = self._inputs(np.asarray(x, dtype=np.float64))
        gens = []  # per block: AnalogMatrix.calibrate's spawned sequence, one generator per tile
        for _ in range(self.n_blocks):
            seq = np.random.SeedSequence(int(rng.integers(2**63))).spawn(1)[0]
            gens += [np.random.default_rng(seq)] if cb == 1 else [np.random.default_rng(s) for s in seq.spawn(cb)]
        for r, (grp, stack) in enumerate(zip(self.groups, self.stacks)):
            res, digits = stack.sense_outputs(p[:, grp.start:grp.stop], m.input_bits, signed=SIGNED,
                                              rng=gens[grp.start * cb:grp.stop * cb])
            mag = np.abs(res.v_sense)
            self._seen[r].append(mag.max(axis=0, keepdims=True) if cfg.adc_calibration == "max" else mag)
            if cfg.column_gain_calibration:
                f = self._sense_currents(stack, res.v_sense)  # (reads, tiles, wc)
                for j, b in enumerate(grp):
                    v = digits[:, :, j].reshape(-1, m.rows).astype(np.float64) * cfg.v_lsb
                    self._accumulate_fit(b, f[:, j * cb:(j + 1) * cb], v)

    def _accumulate_fit(self, b: int, f: np.ndarray, v: np.ndarray) -> None:
        """AnalogMatrix._accumulate_fit for block ``b``'s tiles (the same sums, in the same order)."""
        cb, wc = self.cb, self.mapped.mapping.weight_cols
        d = self._digits[b * cb:(b + 1) * cb].astype(np.float64) * self.cfg.delta_g  # (cb, rows, cols)
        tg = (d[..., :wc] - d[..., -1:]).transpose(1, 0, 2).reshape(QK, -1)  # no-wire targets (rows, cb * wc)
        fit = self._fit[:, b * cb:(b + 1) * cb]
        u = v.sum(axis=-1)
        f2 = f.reshape(f.shape[0], -1)
        fit[0] += (tg * (v.T @ f2)).sum(axis=0).reshape(cb, wc)
        fit[1] += (tg * ((v.T @ v) @ tg)).sum(axis=0).reshape(cb, wc)
        fit[2] += (u @ f2).reshape(cb, wc)
        fit[3] += ((u @ v) @ tg).reshape(cb, wc)
        fit[4] += float(u @ u)

    def finish_calibration(self) -> None:
        how = self.cfg.adc_calibration
        for r, stack in enumerate(self.stacks):
            if not self._seen[r]:
                continue
            stat = np.concatenate(self._seen[r], axis=0)
            stack.set_symmetric_range(stat.max(axis=0) if how == "max" else np.percentile(stat, float(how[1:]), axis=0))
            self._seen[r] = []
        if self.cfg.column_gain_calibration:
            self._solve_affine()

    @property
    def calibrated(self) -> bool:
        return all(s.calibrated for s in self.stacks)

    @property
    def calibration(self) -> dict:
        """ADC ranges (every tile's channels, flat) and column corrections, for the range cache."""
        def flat(part):
            return np.concatenate([np.broadcast_to(getattr(s.adc, part), (s.n_tiles * s.design.channels,))
                                   for s in self.stacks])
        return {"lo": flat("lo"), "hi": flat("hi"), "gain": self.gain, "offset": self.offset}

    def set_calibration(self, cal: dict) -> None:
        start = 0
        for stack in self.stacks:
            end = start + stack.n_tiles * stack.design.channels
            stack.set_adc_range(cal["lo"][start:end], cal["hi"][start:end])
            start = end
        self.gain, self.offset = np.array(cal["gain"], dtype=float), np.array(cal["offset"], dtype=float)

    # -- the product -----------------------------------------------------------------------
    def matmul(self, x) -> tuple[np.ndarray, Costs]:
        """``x @ w`` (batch, N): per block ``d_b`` times the analog partial sum, plus the digital
        min terms ``(8 d_b + m_b) Σ_{i∈b} x_i``."""
        if not self.calibrated:
            raise InputError("QuantisedMatrix: ADC ranges are not calibrated; run a calibration batch first")
        m, cfg, cb, n = self.mapped.mapping, self.cfg, self.cb, self.shape[1]
        x = np.asarray(x, np.float64)
        bsz, wc = x.shape[0], m.weight_cols
        p, s_x = self._inputs(x)
        unit = cfg.v_lsb * cfg.delta_g  # current of one integer unit of dot product, A
        costs = Costs()
        y = np.zeros((bsz, n))
        for r, (grp, stack) in enumerate(zip(self.groups, self.stacks)):
            blocks, tiles = slice(grp.start, grp.stop), slice(grp.start * cb, grp.stop * cb)
            codes, parts = stack.mvm_arrays(p[:, grp.start:grp.stop], m.input_bits, signed=SIGNED)
            i = self._weight_columns(stack.codes_to_current(codes, m.input_bits, signed=SIGNED))
            pb = p[:, blocks]
            u = cfg.v_lsb * pb.sum(axis=2, dtype=np.float64)  # (batch, blocks): summed ideal read voltages
            shape = (len(grp), cb, wc)
            _add_block_products(i.reshape(bsz, *shape), self.offset[tiles].reshape(shape),
                                self.gain[tiles].reshape(shape), u, pb.sum(axis=2, dtype=np.int64),
                                self.drift[blocks], np.ascontiguousarray(s_x[:, blocks]), self.scale[blocks], unit,
                                m.offset_correction, y)
            self._count(stack, parts, costs, first=r == 0, batch=bsz)
        costs.rows = bsz
        sums = x.reshape(bsz, -1, QK).sum(axis=2)  # (batch, K/32)
        y += sums @ self.min_term
        costs.digital += float(bsz) * self.min_term.size * cfg.digital_mac_energy + x.size * cfg.fp_add_energy
        return y, costs


@jit
def _add_block_products(i, offset, gain, u, p_sum, drift, s_x, scale, unit, offset_correction, y):
    """The digital back end of a stack of blocks, added into ``y`` (batch, N) block after block:
    per block ``j`` and weight column, ``((i - offset u_j) / (gain unit) drift_j - c P_j) s_x d_j``
    with ``i`` (batch, blocks, tiles per block, weight columns) the recombined currents, ``u_j``
    the summed ideal read voltages and ``P_j`` the summed integer inputs of the block, ``c`` the
    offset encoding's correction, ``s_x`` the inputs' scales and ``d`` the Q4_1 steps ``scale``
    (blocks, N); the operations of the array expressions they replace, in their order."""
    bsz, nb, cb, wc = i.shape
    n = y.shape[1]
    for b in range(bsz):
        for j in range(nb):
            corr = np.float64(offset_correction * p_sum[b, j])
            for t in range(cb):
                for w in range(min(wc, n - t * wc)):
                    col = t * wc + w
                    q = (i[b, j, t, w] - offset[j, t, w] * u[b, j]) / (gain[j, t, w] * unit) * drift[j]
                    y[b, col] += (q - corr) * s_x[b, j] * scale[j, col]


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
        self._devices_digest: str | None = None

    def program(self, model, ids, mask=None) -> int:
        return 0  # matrices are built when first used (no pool)

    def _calibration_key(self, model, ids, mask):
        """The float engine's key (configuration, seed, routing, calibration tokens, every
        weight) with this mapping and every matrix's codes, steps and mins."""
        parts = [a for name in sorted(self.sources) for a in (name, *self.sources[name])]
        return entry_key(RANGES_VERSION, super()._calibration_key(model, ids, mask), self.mapping_name, *parts)

    def _save(self, key, am) -> None:
        """One row block over every tile of the matrix (its stacks' tiles in order)."""
        if key is None:
            return
        (t, y), = am.characterisation
        reports = [s.solve_report.arrays() for s in am.stacks]
        save_cached(self.cache_dir, key, t[None], np.zeros(0) if y is None else y[None],
                    {f: np.concatenate([r[f] for r in reports])[None] for f in reports[0]})

    def matrix(self, op: str, layer: int, w: np.ndarray):
        name = self._by_id.get(id(w))
        key = (op, layer)
        if name is None or key in self.matrices:
            return super().matrix(op, layer, w)
        codes, scale, mins = self.sources[name]
        ckey = None if self.cache_dir is None or not self._solves else entry_key(
            TILES_VERSION, CACHE_VERSION, self.cfg.identity(), (self.seed, op, layer), codes, scale, mins)
        am = self._from_state(ckey, codes, scale, mins)
        cached = am is not None
        if am is None:
            char = None if ckey is None else self._load(ckey, 1)
            cached = char is not None
            am = QuantisedMatrix(codes, scale, mins, self.cfg, self._rng(op, layer, 0), cells=self.cells,
                                 characterisation=char)
            if ckey is not None and char is None:
                self._save(ckey, am)
            self._save_state(ckey, am)
        self.cache_hits += cached
        if key in self._ranges:
            am.set_calibration(self._ranges[key])
        if self.streaming:
            keep_read_state(am)
        self.matrices[key] = am
        self.programming.add(am.programming)
        if self.on_matrix is not None:
            self.on_matrix(op, layer, cached)
        return am

    # -- the read-state cache: programmed, characterised tiles without programming them again --
    def _state_key(self, ckey: str | None) -> str | None:
        """The tile key joined with :data:`STATE_VERSION` and the source of the device models
        (they program the cells the state was read from)."""
        if ckey is None:
            return None
        if self._devices_digest is None:
            self._devices_digest = devices_code_digest()
        return entry_key(STATE_VERSION, ckey, self._devices_digest)

    def _from_state(self, ckey, codes, scale, mins) -> QuantisedMatrix | None:
        skey = self._state_key(ckey)
        names = (*STATE_PARTS, *(f"report_{f}" for f in REPORT_FIELDS), "seeds", "drift", "programming")
        state = None if skey is None else EntryCache(self.cache_dir, STATE_SUFFIX).load(skey, names)
        return None if state is None else QuantisedMatrix.from_read_state(codes, scale, mins, self.cfg, state)

    def _save_state(self, ckey, am: QuantisedMatrix) -> None:
        skey = self._state_key(ckey)
        state = None if skey is None else am.read_state()
        if state is not None:
            EntryCache(self.cache_dir, STATE_SUFFIX).save(skey, state)
